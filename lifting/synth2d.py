"""Detector-like training 2D from mocap (issue 15): per-view body proportions, keypoint
definitions and cameras as real videos have them, then on-the-fly detector errors.

The teacher still sees 2D only: everything here changes the 3D clip *before* it is projected
(:func:`lifting.data.project_clips` with a :class:`SynthSettings`), or corrupts the projected
2D in the training batch (:func:`draw_detector_errors` / :func:`apply_detector_errors`).

Per view (one random camera of one clip), before projection:

* **Body proportions** (:func:`scale_bones`): every bone group (thigh, shin, upper arm,
  forearm, hip width, shoulder width, lower/upper trunk, neck) is scaled by ``exp(N(0, s))``,
  left and right alike, ``s = bone_scale_std`` (default 0.06). Segment-to-stature ratios of
  adults vary with coefficients of variation of roughly 3-6% (e.g. the ANSUR II survey's
  limb and breadth measures), so 0.06 covers the adult range with margin.
* **Keypoint definitions** (:func:`shift_definitions`): each joint moves by a constant offset
  drawn per view in the body's local frame (x: right hip -> left hip, y: pelvis -> thorax,
  z: forward), of the size of the known differences between mocap joint centres and
  detector keypoints (README "The joint set": pelvis ~2 cm, thorax ~3.8 cm, head a few cm;
  hips, shoulders and spine several cm); with probability ``coco_joints_prob`` the pelvis,
  thorax and spine are then rebuilt from the hips and shoulders exactly as
  :data:`lifting.skeletons.SYNTHESIS` builds them from COCO-17 at inference.
* **Cameras** (:func:`detector_cameras`): elevation ``U[-10, 60]`` degrees (from below the
  hips to raised surveillance views), distance log-uniform in 2-15 m, horizontal field of
  view 35-95 degrees (phone main cameras ~65-75, CCTV 30-100) on common image sizes, roll
  ``N(0, 3)`` degrees; joints outside the image are masked (truncation), never the root.

Per training window, on the fly (:func:`apply_detector_errors`; COCO's OKS definition,
cocodataset.org/#keypoints-eval: the annotators' per-keypoint error has standard deviation
``sigma_i * s`` for object scale ``s`` = sqrt(segment area)):

* noise: per-joint Gaussian with Euclidean RMS ``u * sigma_i * s``, ``u ~ U[0, noise_oks_max]``
  per window (``u = 1.5`` is a typical matched detection: OKS = exp(-u^2 / 8) = 0.75);
* bursts: one joint missing over a random run of frames; left/right swaps of a limb pair
  over a run of frames; windows cut at a random frame and edge-padded, as the lift pads runs
  at track ends and gaps;
* confidence: ``sigmoid(2.5 - 1.2 e + N(0, 0.7))`` with ``e`` the joint's error in units of
  ``sigma_i * s`` (swapped joints: their displacement), so low scores flag bad joints as a
  detector's do; joints below the lift's confidence threshold are then masked, as at
  inference; a fraction of windows carries no scores (all 1), as files without scores do.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .camera import Cameras, _clip_centre, look_at
from .skeletons import CANON16, Skeleton

__all__ = ["SynthSettings", "scale_bones", "shift_definitions", "detector_cameras", "project_detector_like",
           "DetectorErrors", "draw_detector_errors", "edge_pad", "apply_detector_errors", "canon_oks_sigmas", "object_scale",
           "IMAGE_SIZES"]

#: image sizes (W, H) px the random cameras use: 1080p, 720p, portrait phone video, VGA, square
IMAGE_SIZES = np.array([(1920, 1080), (1280, 720), (1080, 1920), (640, 480), (1000, 1000)], dtype=np.float64)

#: bone groups scaled together (child joint names; the bone is child - parent), left and right alike
_BONE_GROUPS = {
    "hip_width": ("r_hip", "l_hip"), "thigh": ("r_knee", "l_knee"), "shin": ("r_ankle", "l_ankle"),
    "lower_trunk": ("spine",), "upper_trunk": ("thorax",), "neck": ("head",),
    "shoulder_width": ("l_shoulder", "r_shoulder"), "upper_arm": ("l_elbow", "r_elbow"),
    "forearm": ("l_wrist", "r_wrist"),
}

#: per-joint standard deviation (metres) of the keypoint-definition offset, per body axis
_DEFINITION_STD = {
    "pelvis": 0.02, "r_hip": 0.025, "l_hip": 0.025, "spine": 0.03, "thorax": 0.03, "head": 0.035,
    "l_shoulder": 0.025, "r_shoulder": 0.025, "r_knee": 0.012, "l_knee": 0.012, "r_ankle": 0.012,
    "l_ankle": 0.012, "l_elbow": 0.012, "r_elbow": 0.012, "l_wrist": 0.012, "r_wrist": 0.012,
}

#: OKS sigma of each canonical joint (COCO-17 sigmas; pelvis/spine: hips, thorax: shoulders,
#: head: ears; the table of :mod:`lifting.io.tracking`)
_CANON_OKS = {
    "pelvis": 0.107, "r_hip": 0.107, "l_hip": 0.107, "spine": 0.107, "thorax": 0.079, "head": 0.035,
    "r_knee": 0.087, "l_knee": 0.087, "r_ankle": 0.089, "l_ankle": 0.089, "l_shoulder": 0.079,
    "r_shoulder": 0.079, "l_elbow": 0.072, "r_elbow": 0.072, "l_wrist": 0.062, "r_wrist": 0.062,
}


@dataclass(frozen=True)
class SynthSettings:
    """Per-view randomisation of the training projections (config group ``synth``).

    Attributes:
        elevation_deg: camera elevation range (degrees above the horizontal through the
            clip's mean pelvis). distance_m: camera-to-pelvis distance range (log-uniform).
        fov_deg: horizontal field-of-view range. roll_deg: roll standard deviation.
        bone_scale_std: log-std of the per-group bone scaling (0 = mocap proportions).
        definition_scale: multiplier of the keypoint-definition offsets (0 = mocap joints).
        coco_joints_prob: probability that pelvis/thorax/spine are rebuilt as from COCO-17.
        truncate: mask joints outside the image.

    Raises:
        ValueError: (from :meth:`check`) a range that is not ``low <= high`` or out of bounds.
    """

    elevation_deg: tuple[float, float] = (-10.0, 60.0)
    distance_m: tuple[float, float] = (2.0, 15.0)
    fov_deg: tuple[float, float] = (35.0, 95.0)
    roll_deg: float = 3.0
    bone_scale_std: float = 0.06
    definition_scale: float = 1.0
    coco_joints_prob: float = 0.5
    truncate: bool = True

    def check(self) -> "SynthSettings":
        """Validate the ranges (names the ``synth.*`` key); returns ``self``."""
        for name, (lo, hi), bounds in (("elevation_deg", self.elevation_deg, (-80, 80)),
                                       ("distance_m", self.distance_m, (0.5, 100)),
                                       ("fov_deg", self.fov_deg, (5, 150))):
            if not (bounds[0] <= lo <= hi <= bounds[1]):
                raise ValueError(f"synth.{name} must be [low, high] within {list(bounds)} with low <= high, "
                                 f"got {[lo, hi]}")
        if not 0 <= self.coco_joints_prob <= 1:
            raise ValueError(f"synth.coco_joints_prob must be in [0, 1], got {self.coco_joints_prob}")
        return self


def scale_bones(joints: np.ndarray, factors: dict[str, float], skeleton: Skeleton = CANON16) -> np.ndarray:
    """Scale bone groups of a clip by forward kinematics.

    Args:
        joints: ``(T, J, 3)`` metres. factors: bone group (:data:`_BONE_GROUPS` keys) -> factor.
        skeleton: joint set with parents listed before children.

    Returns:
        ``(T, J, 3)`` metres: every bone ``child - parent`` times its group's factor (1 if
        the group is not given), the root unchanged.
    """
    f = np.ones(skeleton.num_joints)
    for group, children in _BONE_GROUPS.items():
        for c in children:
            f[skeleton.index(c)] = factors.get(group, 1.0)
    out = joints.copy()
    for j, p in enumerate(skeleton.parents):
        if p >= 0:
            out[:, j] = out[:, p] + f[j] * (joints[:, j] - joints[:, p])
    return out


def _body_frame(joints: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """Per-frame body axes ``(T, 3, 3)`` (rows x: right -> left hip, y: pelvis -> thorax
    orthogonalised, z = x cross y)."""
    x = joints[:, skeleton.index("l_hip")] - joints[:, skeleton.index("r_hip")]
    x /= np.linalg.norm(x, axis=-1, keepdims=True).clip(1e-6)
    y = joints[:, skeleton.index("thorax")] - joints[:, skeleton.index("pelvis")]
    y -= (y * x).sum(-1, keepdims=True) * x
    y /= np.linalg.norm(y, axis=-1, keepdims=True).clip(1e-6)
    return np.stack([x, y, np.cross(x, y)], axis=1)


def shift_definitions(joints: np.ndarray, offsets: np.ndarray, coco_joints: bool,
                      skeleton: Skeleton = CANON16) -> np.ndarray:
    """Move every joint by a constant offset in the body frame; optionally rebuild pelvis,
    thorax and spine from hips and shoulders as from COCO-17 (:data:`lifting.skeletons.SYNTHESIS`).

    Args:
        joints: ``(T, J, 3)`` metres. offsets: ``(J, 3)`` metres in body axes (x, y, z).
        coco_joints: rebuild pelvis = mean hips, thorax = mean shoulders, spine =
            pelvis + 0.38 (thorax - pelvis).

    Returns:
        ``(T, J, 3)`` metres.
    """
    axes = _body_frame(joints, skeleton)
    out = joints + np.einsum("jc,tcd->tjd", offsets, axes)
    if coco_joints:
        ix = skeleton.index
        out[:, ix("pelvis")] = 0.5 * (out[:, ix("l_hip")] + out[:, ix("r_hip")])
        out[:, ix("thorax")] = 0.5 * (out[:, ix("l_shoulder")] + out[:, ix("r_shoulder")])
        out[:, ix("spine")] = out[:, ix("pelvis")] + 0.38 * (out[:, ix("thorax")] - out[:, ix("pelvis")])
    return out


def detector_cameras(centre: np.ndarray, radius: float, n: int, rng: np.random.Generator,
                     settings: SynthSettings) -> tuple[Cameras, np.ndarray]:
    """``n`` random video cameras around a clip (see the module docstring).

    Args:
        centre: ``(3,)`` the clip's mean pelvis, world metres (Y up, floor at 0).
        radius: largest horizontal pelvis distance from ``centre`` (m); the horizontal
            distance is at least ``radius + 1.5`` so the person stays in front of the camera.

    Returns:
        ``(cameras, image_size (n, 2) px (W, H))``; cameras look at the centre plus
        ``N(0, 0.3 m)`` horizontal jitter, camera heights are at least 0.3 m.
    """
    s = settings
    az = rng.uniform(0, 2 * np.pi, n)
    d = np.exp(rng.uniform(np.log(s.distance_m[0]), np.log(s.distance_m[1]), n))
    el = np.deg2rad(rng.uniform(*s.elevation_deg, n))
    horiz = np.maximum(d * np.cos(el), radius + 1.5)
    height = np.maximum(centre[1] + horiz * np.tan(el), 0.3)
    pos = np.stack([centre[0] + horiz * np.sin(az), height, centre[2] + horiz * np.cos(az)], -1)
    target = centre[None] + np.stack([rng.normal(0, 0.3, n), np.zeros(n), rng.normal(0, 0.3, n)], -1)
    R = look_at(pos, target)
    roll = np.deg2rad(rng.normal(0, s.roll_deg, n))
    c, sn = np.cos(roll), np.sin(roll)
    Rz = np.zeros((n, 3, 3))
    Rz[:, 0, 0], Rz[:, 0, 1], Rz[:, 1, 0], Rz[:, 1, 1], Rz[:, 2, 2] = c, -sn, sn, c, 1.0
    size = IMAGE_SIZES[rng.integers(len(IMAGE_SIZES), size=n)]
    fov = np.deg2rad(rng.uniform(*s.fov_deg, n))
    focal = 0.5 * size[:, 0] / np.tan(0.5 * fov)
    return Cameras(Rz @ R, pos, focal, 0.5 * size), size


def project_detector_like(clip: np.ndarray, n: int, rng: np.random.Generator, settings: SynthSettings,
                          skeleton: Skeleton = CANON16, with_3d: bool = False):
    """One clip through ``n`` detector-like views (own proportions, keypoint definitions and
    camera per view).

    Args:
        clip: ``(T, J, 3)`` world metres (Y up).
        with_3d: also return the viewed body's root-relative camera-frame 3D (for the
            supervised baseline only; self-supervised training never asks for it).

    Returns:
        ``(keypoints_2d (n, T, J, 2) px, mask (n, T, J) bool)`` and, with ``with_3d``,
        ``joints_3d (n, T, J, 3)`` metres: the mask is False for joints outside the image
        (``settings.truncate``), never for the root; frames whose root falls outside the
        image keep every joint.
    """
    s, root = settings, skeleton.root_index
    centre, radius = _clip_centre(clip, root)
    cams, size = detector_cameras(centre, radius, n, rng, s)
    kp = np.empty((n,) + clip.shape[:2] + (2,))
    j3 = np.empty((n,) + clip.shape[:2] + (3,), np.float32) if with_3d else None
    std = np.array([_DEFINITION_STD[name] for name in skeleton.joint_names])[:, None]
    for v in range(n):
        body = scale_bones(clip, {g: float(np.exp(rng.normal(0, s.bone_scale_std))) for g in _BONE_GROUPS}, skeleton)
        offsets = rng.normal(0, 1, (skeleton.num_joints, 3)) * std * s.definition_scale
        body = shift_definitions(body, offsets, bool(rng.random() < s.coco_joints_prob), skeleton)
        one = Cameras(cams.R[v : v + 1], cams.position[v : v + 1], cams.focal[v : v + 1], cams.principal[v : v + 1])
        kp[v] = one.project(body)[0]
        if with_3d:
            pc = one.to_camera(body)[0]
            j3[v] = pc - pc[:, root : root + 1]
    inside = (kp >= 0).all(-1) & (kp[..., 0] < size[:, None, None, 0]) & (kp[..., 1] < size[:, None, None, 1])
    if not s.truncate:
        inside[:] = True
    inside |= ~inside[..., root : root + 1]  # root outside: keep the frame whole
    inside[..., root] = True
    return (kp.astype(np.float32), inside) + ((j3,) if with_3d else ())


def canon_oks_sigmas(skeleton: Skeleton = CANON16) -> torch.Tensor:
    """``(J,)`` OKS sigmas of the canonical joints (fractions of the object scale)."""
    return torch.tensor([_CANON_OKS[n] for n in skeleton.joint_names], dtype=torch.float32)


def object_scale(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """COCO object scale ``s`` (sqrt of the segment area) estimated from 2D joints.

    Args:
        x: ``(B, T, J, 2)`` any unit. mask: ``(B, T, J)`` bool.

    Returns:
        ``(B, T)``: ``0.85 sqrt(w h)`` of the visible joints' box (a person's segment covers
        about half of its box, which is ~1.2x the joints' box), with the shorter side at
        least a quarter of the longer one (side views with the arms down).
    """
    big = torch.finfo(x.dtype).max
    m = mask[..., None]
    lo = torch.where(m, x, torch.full_like(x, big)).amin(-2)
    hi = torch.where(m, x, torch.full_like(x, -big)).amax(-2)
    wh = (hi - lo).clamp_min(0)
    w, h = wh[..., 0], wh[..., 1]
    long = torch.maximum(w, h)
    return 0.85 * torch.sqrt(torch.maximum(w, 0.25 * long) * torch.maximum(h, 0.25 * long)).clamp_min(1e-6)


#: left/right limb pairs a detector confuses (canonical names), one drawn per swapping window
_SWAP_SETS = (("r_knee", "l_knee"), ("r_ankle", "l_ankle"), ("r_wrist", "l_wrist"), ("r_elbow", "l_elbow"))


@dataclass
class DetectorErrors:
    """Random draws of :func:`apply_detector_errors` for ``B`` windows of ``T`` frames
    (drawn once per global batch, like :class:`trainers.stages.AugPlan`, and sliceable).

    Attributes (all ``(B, ...)``): u: noise level in OKS units (0 = clean); noise
    ``(B, T, J, 2)`` standard normal; burst_joint, burst_lo, burst_hi: one joint missing in
    frames ``[lo, hi)`` (``hi = lo`` = none); swap_pair, swap_lo, swap_hi: a left/right pair
    swapped in frames ``[lo, hi)``; conf_noise ``(B, T, J)``; scored ``(B,)`` the window
    carries scores (else every score is 1).
    """

    u: torch.Tensor
    noise: torch.Tensor
    burst_joint: torch.Tensor
    burst_lo: torch.Tensor
    burst_hi: torch.Tensor
    swap_pair: torch.Tensor
    swap_lo: torch.Tensor
    swap_hi: torch.Tensor
    conf_noise: torch.Tensor
    scored: torch.Tensor
    cut_lo: torch.Tensor
    cut_hi: torch.Tensor

    def __getitem__(self, sl) -> "DetectorErrors":
        return DetectorErrors(*(getattr(self, f)[sl] for f in self.__dataclass_fields__))


def _runs(B: int, T: int, prob: float, max_len: int, g, dev) -> tuple[torch.Tensor, torch.Tensor]:
    on = torch.rand(B, generator=g, device=dev) < prob
    length = torch.randint(1, max(2, min(T, max_len) + 1), (B,), generator=g, device=dev)
    lo = (torch.rand(B, generator=g, device=dev) * T).long().clamp_max(T - 1)
    hi = torch.where(on, (lo + length).clamp_max(T), lo)
    return lo, hi


def draw_detector_errors(B: int, T: int, J: int, aug, root: int, g: torch.Generator,
                         device: torch.device) -> DetectorErrors:
    """Draw detector-like errors for ``B`` windows (config group ``aug``: ``noise_prob``,
    ``noise_oks_max``, ``burst_prob``, ``swap_prob``, ``scored_prob``)."""
    u = torch.rand(B, generator=g, device=device) * aug.noise_oks_max
    u = u * (torch.rand(B, generator=g, device=device) < aug.noise_prob)
    noise = torch.randn(B, T, J, 2, generator=g, device=device)
    bj = torch.randint(J - 1, (B,), generator=g, device=device)
    bj = bj + (bj >= root).long()  # never the root
    b_lo, b_hi = _runs(B, T, aug.burst_prob, max(1, T // 2), g, device)
    sp = torch.randint(len(_SWAP_SETS), (B,), generator=g, device=device)
    s_lo, s_hi = _runs(B, T, aug.swap_prob, max(1, T // 3), g, device)
    conf_noise = torch.randn(B, T, J, generator=g, device=device)
    scored = torch.rand(B, generator=g, device=device) < aug.scored_prob
    # a cut window keeps a run [lo, hi] of at least ceil(T / 3) frames; the rest is edge padding
    cut = torch.rand(B, generator=g, device=device) < aug.cut_prob
    keep = torch.randint(max(1, -(-T // 3)), T + 1, (B,), generator=g, device=device)
    c_lo = (torch.rand(B, generator=g, device=device) * (T - keep + 1)).long().clamp_max(T - keep)
    c_lo = torch.where(cut, c_lo, torch.zeros_like(c_lo))
    c_hi = torch.where(cut, c_lo + keep - 1, torch.full_like(c_lo, T - 1))
    return DetectorErrors(u, noise, bj, b_lo, b_hi, sp, s_lo, s_hi, conf_noise, scored, c_lo, c_hi)


def edge_pad(kp: torch.Tensor, mask: torch.Tensor, e: DetectorErrors) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows cut at ``[e.cut_lo, e.cut_hi]``: outside frames repeat the edge frame, as
    :func:`lifting.inference.window_indices` pads runs at track ends and gaps.

    Args:
        kp: ``(B, T, J, 2)``; mask: ``(B, T, J)``.

    Returns:
        ``(kp, mask)`` of the same shapes.
    """
    T = kp.shape[1]
    t = torch.arange(T, device=kp.device)[None]
    idx = torch.minimum(torch.maximum(t, e.cut_lo[:, None]), e.cut_hi[:, None])  # (B, T)
    return (torch.gather(kp, 1, idx[..., None, None].expand(-1, -1, *kp.shape[2:])),
            torch.gather(mask, 1, idx[..., None].expand(-1, -1, mask.shape[2])))


def apply_detector_errors(x: torch.Tensor, mask: torch.Tensor, e: DetectorErrors, conf_threshold: float,
                          root: int, skeleton: Skeleton = CANON16):
    """Corrupt normalised 2D like a detector (see the module docstring).

    Args:
        x: ``(B, T, J, 2)`` normalised clean 2D (root at 0). mask: ``(B, T, J)`` bool.
        e: :class:`DetectorErrors` for these ``B`` windows. conf_threshold: joints scored
            below it are masked (the lift's ``--conf-threshold``).

    Returns:
        ``(x_in (B, T, J, 2), mask_in (B, T, J) bool, conf (B, T, J) float in [0, 1])``;
        masked joints have ``x_in = 0`` and ``conf = 0``; the root is never masked or moved.
    """
    B, T, J, _ = x.shape
    dev = x.device
    sig = canon_oks_sigmas(skeleton).to(dev)
    s = object_scale(x, mask)  # (B, T)
    std = (e.u[:, None, None] * sig[None, None] * s[..., None] / np.sqrt(2.0))  # per coordinate
    shift = e.noise * std[..., None]
    shift[..., root, :] = 0.0
    t = torch.arange(T, device=dev)[None]
    # left/right swap of one pair over a run of frames
    pairs = torch.tensor([[skeleton.index(a), skeleton.index(b)] for a, b in _SWAP_SETS], device=dev)
    in_swap = (t >= e.swap_lo[:, None]) & (t < e.swap_hi[:, None])  # (B, T)
    a_idx, b_idx = pairs[e.swap_pair, 0], pairs[e.swap_pair, 1]
    perm = torch.arange(J, device=dev).repeat(B, T, 1)
    bi = torch.arange(B, device=dev)
    perm[bi, :, a_idx] = torch.where(in_swap, b_idx[:, None], a_idx[:, None])
    perm[bi, :, b_idx] = torch.where(in_swap, a_idx[:, None], b_idx[:, None])
    x_sw = torch.gather(x, 2, perm[..., None].expand(-1, -1, -1, 2))
    m_sw = torch.gather(mask, 2, perm)
    x_in = x_sw + shift
    err = (x_in - x).norm(dim=-1) / (sig[None, None] * s[..., None]).clamp_min(1e-6)  # OKS units
    conf = torch.sigmoid(2.5 - 1.2 * err + 0.7 * e.conf_noise)
    conf = torch.where(e.scored[:, None, None], conf, torch.ones_like(conf))
    burst = (t >= e.burst_lo[:, None]) & (t < e.burst_hi[:, None])  # (B, T)
    burst = burst[..., None] & (torch.arange(J, device=dev)[None, None] == e.burst_joint[:, None, None])
    m_in = m_sw & ~burst & (conf >= conf_threshold)
    m_in[..., root] = mask[..., root]
    conf = torch.where(m_in, conf, torch.zeros_like(conf))
    conf[..., root] = torch.where(m_in[..., root], torch.ones_like(conf[..., root]), conf[..., root])
    x_in = torch.where(m_in[..., None], x_in, torch.zeros_like(x_in))
    return x_in, m_in, conf
