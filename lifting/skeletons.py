"""Joint sets and name-based remapping.

Every joint set is a :class:`Skeleton`: an ordered tuple of joint names plus parents. Code
never indexes joints by hard-coded numbers; it asks a skeleton for ``index(name)`` or uses
:func:`remap`, which converts keypoints of one set into another by *names* and returns a
mask of the joints the source could not provide.

The canonical lifting set :data:`CANON16` is the 16-joint Human3.6M order without the nose
(the evaluation joints of DESIGN.md §4). Some of its joints do not exist in every source and
are *synthesised* (see :data:`SYNTHESIS`); their known biases, measured on the Bandai-Namco
mocap (metres, mean over 100k frames) or taken from anthropometric tables, are:

=========  =====================  ==================================================================
joint      from COCO-17           bias against the mocap definition
=========  =====================  ==================================================================
pelvis     mean(left_hip,          COCO hip keypoints lie on the skin/greater trochanter, a few cm
           right_hip)              lateral of the hip joint centres; their mean is ~2 cm from the
                                   mocap Hips node (mean of mocap hip joints vs Hips: 2.2 cm).
thorax     mean(left_shoulder,     The mocap thorax is the Neck node (neck base); the mid-shoulder
           right_shoulder)         point lies 3.8 cm below it on average (3.3 cm down, 1.5 cm back).
spine      pelvis + 0.38 *         Mocap Spine sits at 0.38 of the pelvis->neck segment (projected
           (thorax - pelvis)       fraction measured on Bandai-Namco); the synthesised point inherits
                                   the pelvis/thorax biases above and ignores spine curvature.
head       thorax + 0.5 *          The mocap Head node is the head joint at the top of the neck
           (mid_ears - thorax)     (6.5 cm above Neck). Ears sit ~0.118 x height above the shoulders
                                   (Drillis & Contini 1966 segment heights: shoulder 0.818 H, ear
                                   ~0.936 H), so half-way between shoulders and ears approximates
                                   the head joint; expect a few cm of error, more when the head tilts.
=========  =====================  ==================================================================

All other canonical joints (hips, knees, ankles, shoulders, elbows, wrists) map one to one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence, Union

import numpy as np

if TYPE_CHECKING:  # torch is imported only where a tensor is given (fast CLI start-up)
    import torch

__all__ = [
    "Skeleton",
    "Recipe",
    "CANON16",
    "COCO17",
    "H36M17",
    "MOCAP21",
    "SKELETONS",
    "SYNTHESIS",
    "get_skeleton",
    "remap",
    "skeleton_for_names",
]


@dataclass(frozen=True)
class Skeleton:
    """An ordered joint set.

    Attributes:
        name: short identifier, e.g. ``"canon16"``.
        joint_names: ``(J,)`` joint names in array order.
        parents: ``(J,)`` parent index per joint, ``-1`` for the root; ``None`` if the set
            has no kinematic tree (e.g. COCO-17 keypoints).
        root: name of the root joint (``None`` if there is none).
    """

    name: str
    joint_names: tuple[str, ...]
    parents: tuple[int, ...] | None = None
    root: str | None = None

    def __post_init__(self) -> None:
        if len(set(self.joint_names)) != len(self.joint_names):
            raise ValueError(f"skeleton {self.name!r} has duplicate joint names")
        if self.parents is not None and len(self.parents) != len(self.joint_names):
            raise ValueError(f"skeleton {self.name!r}: parents and joint_names lengths differ")

    @property
    def num_joints(self) -> int:
        """Number of joints J."""
        return len(self.joint_names)

    def index(self, name: str) -> int:
        """Index of joint ``name``; raises ``KeyError`` naming the skeleton if absent."""
        try:
            return self.joint_names.index(name)
        except ValueError:
            raise KeyError(f"joint {name!r} is not in skeleton {self.name!r}: {self.joint_names}") from None

    def indices(self, names: Sequence[str]) -> list[int]:
        """Indices of several joints (see :meth:`index`)."""
        return [self.index(n) for n in names]

    @property
    def root_index(self) -> int:
        """Index of the root joint; raises ``ValueError`` if the skeleton has no root."""
        if self.root is None:
            raise ValueError(f"skeleton {self.name!r} has no root joint")
        return self.index(self.root)

    def bones(self) -> list[tuple[int, int]]:
        """``(child, parent)`` index pairs of the kinematic tree (empty without parents)."""
        if self.parents is None:
            return []
        return [(j, p) for j, p in enumerate(self.parents) if p >= 0]

    def mirror_pairs(self) -> list[tuple[int, int]]:
        """Index pairs of left/right counterparts (names with ``l_``/``r_`` or ``_L``/``_R``,
        ``left_``/``right_``)."""
        pairs = []
        for i, n in enumerate(self.joint_names):
            for a, b in (("l_", "r_"), ("left_", "right_")):
                if n.startswith(a) and b + n[len(a):] in self.joint_names:
                    pairs.append((i, self.index(b + n[len(a):])))
            if n.endswith("_L") and n[:-2] + "_R" in self.joint_names:
                pairs.append((i, self.index(n[:-2] + "_R")))
        return pairs


# --- joint sets -------------------------------------------------------------------------

CANON16 = Skeleton(
    "canon16",
    (
        "pelvis", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "spine",
        "thorax", "head", "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist",
    ),
    (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 8, 10, 11, 8, 13, 14),
    root="pelvis",
)
"""Canonical lifting set = evaluation joints (Human3.6M-17 order without the nose)."""

COCO17 = Skeleton(
    "coco17",
    (
        "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
        "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
        "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
)
"""COCO person keypoints (Lin et al. ECCV 2014), no kinematic tree."""

H36M17 = Skeleton(
    "h36m17",
    (
        "pelvis", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "spine",
        "thorax", "neck_nose", "head_top", "l_shoulder", "l_elbow", "l_wrist", "r_shoulder",
        "r_elbow", "r_wrist",
    ),
    (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15),
    root="pelvis",
)
"""Human3.6M 17-joint set as used by VideoPose3D/Martinez et al. (index 9 "neck/nose",
index 10 head top)."""

MOCAP21 = Skeleton(
    "mocap21",
    (
        "Hips", "Spine", "Chest", "Neck", "Head", "Shoulder_L", "UpperArm_L", "LowerArm_L",
        "Hand_L", "Shoulder_R", "UpperArm_R", "LowerArm_R", "Hand_R", "UpperLeg_L", "LowerLeg_L",
        "Foot_L", "Toes_L", "UpperLeg_R", "LowerLeg_R", "Foot_R", "Toes_R",
    ),
    (-1, 0, 1, 2, 3, 2, 5, 6, 7, 2, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19),
    root="Hips",
)
"""The 21-joint layout of the shared Bandai-Namco / HDM05 mocap files."""

SKELETONS: dict[str, Skeleton] = {s.name: s for s in (CANON16, COCO17, H36M17, MOCAP21)}


def get_skeleton(name: str) -> Skeleton:
    """Look up a skeleton by name (``canon16``, ``coco17``, ``h36m17``, ``mocap21``).

    Raises:
        ValueError: unknown name (the message lists the known ones).
    """
    try:
        return SKELETONS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown keypoint format {name!r}; known: {sorted(SKELETONS)}") from None


def skeleton_for_names(joint_names: Sequence[str]) -> Skeleton:
    """Return the known skeleton whose joint names equal ``joint_names`` (e.g. from a mocap
    npz). Raises ``ValueError`` naming the unmatched names otherwise."""
    names = tuple(str(n) for n in joint_names)
    for s in SKELETONS.values():
        if s.joint_names == names:
            return s
    best = max(SKELETONS.values(), key=lambda s: len(set(s.joint_names) & set(names)))
    missing = sorted(set(best.joint_names) - set(names))
    raise ValueError(
        f"joint names {list(names)} match no known skeleton (closest {best.name!r}, missing {missing})"
    )


# --- synthesis recipes ------------------------------------------------------------------

@dataclass(frozen=True)
class Recipe:
    """A target joint as a weighted sum of source joints (weights sum to 1).

    ``terms`` is a tuple of ``(weight, name)``; a name may refer to another *target* joint
    already defined earlier in the same recipe table (prefixed with ``@``)."""

    terms: tuple[tuple[float, str], ...]


def _same(name: str) -> Recipe:
    return Recipe(((1.0, name),))


def _mean(*names: str) -> Recipe:
    return Recipe(tuple((1.0 / len(names), n) for n in names))


_COCO_TO_CANON: dict[str, Recipe] = {
    "pelvis": _mean("left_hip", "right_hip"),
    "r_hip": _same("right_hip"),
    "r_knee": _same("right_knee"),
    "r_ankle": _same("right_ankle"),
    "l_hip": _same("left_hip"),
    "l_knee": _same("left_knee"),
    "l_ankle": _same("left_ankle"),
    "thorax": _mean("left_shoulder", "right_shoulder"),
    # spine = pelvis + 0.38 (thorax - pelvis)
    "spine": Recipe(((0.62, "@pelvis"), (0.38, "@thorax"))),
    # head = thorax + 0.5 (mid_ears - thorax)
    "head": Recipe(((0.5, "@thorax"), (0.25, "left_ear"), (0.25, "right_ear"))),
    "l_shoulder": _same("left_shoulder"),
    "l_elbow": _same("left_elbow"),
    "l_wrist": _same("left_wrist"),
    "r_shoulder": _same("right_shoulder"),
    "r_elbow": _same("right_elbow"),
    "r_wrist": _same("right_wrist"),
}

_H36M_TO_CANON: dict[str, Recipe] = {
    **{n: _same(n) for n in CANON16.joint_names if n in H36M17.joint_names},
    # the mocap Head node (top of the neck) is closest to H36M's "neck/nose" joint.
    "head": _same("neck_nose"),
}

_MOCAP_TO_CANON: dict[str, Recipe] = {
    "pelvis": _same("Hips"),
    "r_hip": _same("UpperLeg_R"),
    "r_knee": _same("LowerLeg_R"),
    "r_ankle": _same("Foot_R"),
    "l_hip": _same("UpperLeg_L"),
    "l_knee": _same("LowerLeg_L"),
    "l_ankle": _same("Foot_L"),
    "spine": _same("Spine"),
    "thorax": _same("Neck"),
    "head": _same("Head"),
    "l_shoulder": _same("UpperArm_L"),
    "l_elbow": _same("LowerArm_L"),
    "l_wrist": _same("Hand_L"),
    "r_shoulder": _same("UpperArm_R"),
    "r_elbow": _same("LowerArm_R"),
    "r_wrist": _same("Hand_R"),
}

SYNTHESIS: dict[tuple[str, str], Mapping[str, Recipe]] = {
    ("coco17", "canon16"): _COCO_TO_CANON,
    ("h36m17", "canon16"): _H36M_TO_CANON,
    ("mocap21", "canon16"): _MOCAP_TO_CANON,
    ("canon16", "canon16"): {n: _same(n) for n in CANON16.joint_names},
}
"""Recipes ``(source, target) -> {target joint: Recipe}``; a target joint absent from a
table is missing in that source (mask False)."""

Array = Union[np.ndarray, "torch.Tensor"]


def _compile(src: Skeleton, dst: Skeleton) -> tuple[np.ndarray, np.ndarray]:
    """Weight matrix ``W (J_dst, J_src)`` with ``x_dst = W @ x_src`` and the list of source
    joints each target depends on, as a boolean ``(J_dst, J_src)`` dependency matrix."""
    key = (src.name, dst.name)
    if key not in SYNTHESIS:
        raise ValueError(f"no joint mapping from {src.name!r} to {dst.name!r}; known: {sorted(SYNTHESIS)}")
    table = SYNTHESIS[key]
    W = np.zeros((dst.num_joints, src.num_joints), dtype=np.float64)
    # build in the table's own order (dependency order: "@thorax" is defined before spine)
    for tname, recipe in table.items():
        t = dst.index(tname)
        for w, name in recipe.terms:
            if name.startswith("@"):
                W[t] += w * W[dst.index(name[1:])]
            else:
                W[t, src.index(name)] += w
    return W, np.abs(W) > 0


def remap(
    keypoints: Array,
    src: Skeleton | str,
    dst: Skeleton | str = CANON16,
    valid: Array | None = None,
) -> tuple[Array, Array]:
    """Convert joints of one set into another by joint names.

    Args:
        keypoints: ``(..., J_src, C)`` joint coordinates (any C, e.g. 2 pixels or 3 metres),
            numpy array or torch tensor.
        src, dst: source and target skeletons (or their names).
        valid: optional ``(..., J_src)`` bool, which source joints are present (e.g.
            confidence above a threshold). Default: all present.

    Returns:
        ``(out (..., J_dst, C), mask (..., J_dst) bool)``; a target joint is valid only if
        every source joint it is built from is valid. Invalid target joints are set to 0
        (never NaN), so downstream code must use the mask. Same array type as the input.

    Raises:
        ValueError: unknown mapping, or ``keypoints.shape[-2] != J_src``, or a ``valid``
            shape that does not match.
    """
    src = get_skeleton(src) if isinstance(src, str) else src
    dst = get_skeleton(dst) if isinstance(dst, str) else dst
    if keypoints.ndim < 2 or keypoints.shape[-2] != src.num_joints:
        raise ValueError(
            f"expected keypoints of shape (..., {src.num_joints}, C) for {src.name!r}, got {tuple(keypoints.shape)}"
        )
    W, dep = _compile(src, dst)
    is_torch = type(keypoints).__module__.startswith("torch")  # no torch import for numpy input
    if is_torch:
        import torch
    if valid is not None and tuple(valid.shape) != tuple(keypoints.shape[:-1]):
        raise ValueError(f"valid mask shape {tuple(valid.shape)} != keypoints shape[:-1] {tuple(keypoints.shape[:-1])}")
    has_recipe = dep.any(axis=1)  # (J_dst,)
    if is_torch:
        Wt = torch.as_tensor(W, dtype=keypoints.dtype, device=keypoints.device)
        v = torch.ones(keypoints.shape[:-1], dtype=torch.bool, device=keypoints.device) if valid is None else valid.bool()
        dep_t = torch.as_tensor(dep, device=keypoints.device)
        # target valid iff all dependencies valid: count missing dependencies
        missing = (~v).to(keypoints.dtype) @ dep_t.to(keypoints.dtype).T  # (..., J_dst)
        mask = (missing == 0) & torch.as_tensor(has_recipe, device=keypoints.device)
        kp = torch.where(v[..., None], keypoints, torch.zeros((), dtype=keypoints.dtype, device=keypoints.device))
        out = torch.einsum("ts,...sc->...tc", Wt, kp)
        out = torch.where(mask[..., None], out, torch.zeros((), dtype=out.dtype, device=out.device))
        return out, mask
    kp = np.asarray(keypoints)
    v = np.ones(kp.shape[:-1], dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    missing = (~v).astype(np.float64) @ dep.T.astype(np.float64)
    mask = (missing == 0) & has_recipe
    kp = np.where(v[..., None], kp, 0)
    out = _apply_weights(W, kp).astype(kp.dtype if np.issubdtype(kp.dtype, np.floating) else np.float64)
    out = np.where(mask[..., None], out, 0).astype(out.dtype)
    return out, mask


def _apply_weights(W: np.ndarray, kp: np.ndarray) -> np.ndarray:
    """``W (J_dst, J_src) @ kp (..., J_src, C)`` as one float64 matrix product (the joints
    axis first, every other axis flattened into the columns): ``(..., J_dst, C)``. One GEMM
    instead of ``einsum`` over the leading axes (issue 23: 3.7 s -> ~0.1 s for a million
    frames)."""
    lead, (j_src, c) = kp.shape[:-2], kp.shape[-2:]
    cols = np.moveaxis(kp.reshape(-1, j_src, c), 1, 0).reshape(j_src, -1).astype(np.float64)  # (J_src, N C)
    out = (W @ cols).reshape(len(W), -1, c)  # (J_dst, N, C)
    return np.moveaxis(out, 0, 1).reshape(*lead, len(W), c)


# --- real-world detector joint sets ---------------------------------------------------------
# Appended for lifting.io.readers.  Joint names reuse the COCO-17 spelling ("left_hip", ...) so the
# COCO recipes apply unchanged; joints a source adds get descriptive snake_case names.  Canonical
# joints a source provides directly (OpenPose Neck / MidHip, Halpe Neck / Hip) are used as they
# are; everything else follows the COCO-17 definitions of the table in the module docstring, so
# the documented biases carry over:
#
# =============  ======================  ====================  ===================================
# source         pelvis                  thorax                spine / head
# =============  ======================  ====================  ===================================
# body25         MidHip (own joint)      Neck (own joint)      COCO-17 definitions (@pelvis/@thorax,
#                                                              mid-ears)
# coco18         mean(hips) as COCO-17   Neck (own joint)      COCO-17 definitions
# mediapipe33    mean(hips) as COCO-17   mean(shoulders)       COCO-17 definitions (all as COCO-17)
# halpe26        Hip (own joint)         Neck (own joint)      COCO-17 definitions
# =============  ======================  ====================  ===================================
#
# OpenPose's Neck and MidHip are trained on points derived from the COCO shoulder / hip pairs, so
# they carry the COCO thorax / pelvis biases above.  Halpe's "head" keypoint is the top of the head
# (like H36M's head_top, which the H36M recipe also avoids); the canonical head is the top of the
# neck, so the ear-based COCO definition is kept instead of Halpe's head.

BODY25 = Skeleton(
    "body25",
    (
        "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
        "left_elbow", "left_wrist", "mid_hip", "right_hip", "right_knee", "right_ankle",
        "left_hip", "left_knee", "left_ankle", "right_eye", "left_eye", "right_ear", "left_ear",
        "left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe",
        "right_heel",
    ),
)
"""OpenPose BODY_25 (openpose doc/02_output.md, "Pose Output Format (BODY_25)"), no tree."""

COCO18 = Skeleton(
    "coco18",
    (
        "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
        "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip",
        "left_knee", "left_ankle", "right_eye", "left_eye", "right_ear", "left_ear",
    ),
)
"""OpenPose COCO-18 = COCO-17 plus Neck, in OpenPose order (openpose doc/02_output.md)."""

MEDIAPIPE33 = Skeleton(
    "mediapipe33",
    (
        "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
        "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
        "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
        "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip",
        "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel",
        "right_heel", "left_foot_index", "right_foot_index",
    ),
)
"""MediaPipe Pose / Pose Landmarker 33 landmarks (Google AI Edge docs, "Pose landmark
detection guide", landmark model figure)."""

HALPE26 = Skeleton(
    "halpe26",
    (
        "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
        "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
        "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "head", "neck",
        "hip", "left_big_toe", "right_big_toe", "left_small_toe", "right_small_toe",
        "left_heel", "right_heel",
    ),
)
"""Halpe-26 = COCO-17 + head (top), neck, hip, feet (Halpe-FullBody README; AlphaPose
docs/MODEL_ZOO.md "Halpe dataset (26 keypoints)")."""

SKELETONS.update({s.name: s for s in (BODY25, COCO18, MEDIAPIPE33, HALPE26)})

_BODY25_TO_CANON: dict[str, Recipe] = {
    **_COCO_TO_CANON,
    "pelvis": _same("mid_hip"),
    "thorax": _same("neck"),
}
_COCO18_TO_CANON: dict[str, Recipe] = {**_COCO_TO_CANON, "thorax": _same("neck")}
_HALPE_TO_CANON: dict[str, Recipe] = {**_COCO_TO_CANON, "pelvis": _same("hip"), "thorax": _same("neck")}

SYNTHESIS.update({
    ("body25", "canon16"): _BODY25_TO_CANON,
    ("coco18", "canon16"): _COCO18_TO_CANON,
    ("mediapipe33", "canon16"): dict(_COCO_TO_CANON),
    ("halpe26", "canon16"): _HALPE_TO_CANON,
})
__all__ += ["BODY25", "COCO18", "MEDIAPIPE33", "HALPE26"]

CROWDPOSE14 = Skeleton(
    "crowdpose14",
    (
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "head", "neck",
    ),
)
"""CrowdPose 14 keypoints (Li et al. CVPR 2019; the CrowdPose annotation files'
``categories[0].keypoints``): COCO limbs plus head (top) and neck, no face points."""
SKELETONS[CROWDPOSE14.name] = CROWDPOSE14
# the canonical head is the top of the neck: CrowdPose's head top is too high, so it stays missing
SYNTHESIS[("crowdpose14", "canon16")] = {k: v for k, v in _COCO18_TO_CANON.items() if k != "head"}
__all__ += ["CROWDPOSE14"]

# --- OpenPose experimental models: BODY_25B and the body part of BODY_135 -------------------
# Joint order of the README of experimental_models in CMU-Perceptual-Computing-Lab/openpose_train
# (also openpose src/openpose/pose/poseParameters.cpp, POSE_BODY_25B / POSE_BODY_135_BODY_PARTS):
# indices 0-16 are the COCO-17 keypoints in COCO order, 17 "UpperNeck", 18 "HeadTop", 19-24 the
# feet as in BODY_25 (LBigToe, LSmallToe, LHeel, RBigToe, RSmallToe, RHeel). BODY_135 keeps these
# 25 body joints first and adds 40 hand joints (left then right, 20 each, wrists shared with the
# body) and 70 face points. Unlike BODY_25 there is no Neck (mid-shoulder) or MidHip joint, so
# pelvis / thorax / spine follow the COCO-17 definitions (and biases) of the module docstring.
# UpperNeck is the top of the neck (MPII's "upper neck"), i.e. the canonical head joint itself:
# it is used directly instead of the ear-based COCO synthesis. HeadTop stays unused (too high,
# as for H36M / Halpe / CrowdPose).

_FEET = ("left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel")

BODY25B = Skeleton("body25b", COCO17.joint_names + ("upper_neck", "head_top") + _FEET)
"""OpenPose BODY_25B (openpose_train experimental_models README): COCO-17 order + UpperNeck,
HeadTop, six foot points. No tree."""

BODY135 = Skeleton(
    "body135",
    BODY25B.joint_names
    + tuple(f"left_hand_{i}" for i in range(1, 21))
    + tuple(f"right_hand_{i}" for i in range(1, 21))
    + tuple(f"face_{i}" for i in range(70)),
)
"""OpenPose BODY_135 (openpose_train experimental_models README): the 25 BODY_25B joints, then
20 left-hand and 20 right-hand points (hand keypoints 1-20; 0 is the body wrist) and 70 face
points. Only the body part is used for lifting."""

SKELETONS.update({s.name: s for s in (BODY25B, BODY135)})
_BODY25B_TO_CANON: dict[str, Recipe] = {**_COCO_TO_CANON, "head": _same("upper_neck")}
SYNTHESIS.update({
    ("body25b", "canon16"): _BODY25B_TO_CANON,
    ("body135", "canon16"): dict(_BODY25B_TO_CANON),
})
__all__ += ["BODY25B", "BODY135"]
