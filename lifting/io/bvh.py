"""BVH export of lifted skeleton motion (importable in Blender, MotionBuilder, ...).

BVH (Biovision Hierarchy; format description in the Blender manual's BVH importer page and
the common "BVH file format" notes by M. Meredith & S. Maddock, 2001): a HIERARCHY block of
joints with constant OFFSETs from their parents, then a MOTION block with, per frame, the
root position and every joint's Euler rotation.

Written here: the canonical 16-joint skeleton (:data:`lifting.skeletons.CANON16`), Y up
(the camera frame turned 180 degrees about x, as for mesh files), metres; the root channels
``Xposition Yposition Zposition Zrotation Xrotation Yrotation`` and ``Zrotation Xrotation
Yrotation`` for every other joint (rotation ``R = Rz Rx Ry`` applied to column vectors,
degrees). Joints without children (ankles, head, wrists) get an ``End Site``.

Rest pose: the first frame's bone directions with the median bone lengths of the sequence.
Each frame's joint rotations are solved top-down: a joint's world rotation maps the rest
offsets of its children to their current directions (Kabsch fit for the pelvis and thorax,
which have several children; the minimal rotation for single-child joints). A rigid input
(constant bone lengths, e.g. the SMPL student's joints) is reproduced exactly up to float
precision; a non-rigid one (the teacher's per-frame bone lengths vary) gets the
best-fitting rigid skeleton.

Timing: a BVH file has one frame every ``Frame Time`` seconds, so a track with missing
frames is first cut into :func:`motion_clips`: short gaps (<= :data:`MAX_FILL_GAP_S`) are
filled with slerp-interpolated rotations, long gaps start a new clip.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .fileio import atomic_write
from ..skeletons import CANON16, Skeleton

__all__ = ["write_bvh", "bvh_frames", "bvh_residual", "motion_clips", "MotionClip", "MAX_FILL_GAP_S"]

_CAMERA_TO_YUP = np.diag([1.0, -1.0, -1.0])


def _children(skeleton: Skeleton) -> list[list[int]]:
    ch: list[list[int]] = [[] for _ in skeleton.joint_names]
    for j, p in enumerate(skeleton.parents):
        if p >= 0:
            ch[p].append(j)
    return ch


def _minimal_rotation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Rotations ``(T, 3, 3)`` turning unit vectors ``a (T, 3)`` onto ``b (T, 3)`` by the
    smallest angle (Rodrigues about ``a x b``)."""
    import roma  # here, not at module import: roma imports torch._dynamo (~1 s)
    axis = torch.cross(a, b, dim=-1)
    s = axis.norm(dim=-1, keepdim=True)
    c = (a * b).sum(-1, keepdim=True).clamp(-1.0, 1.0)
    angle = torch.atan2(s, c)
    # antiparallel vectors: any axis perpendicular to a
    perp = torch.cross(a, torch.tensor([1.0, 0.0, 0.0], dtype=a.dtype).expand_as(a), dim=-1)
    perp2 = torch.cross(a, torch.tensor([0.0, 1.0, 0.0], dtype=a.dtype).expand_as(a), dim=-1)
    perp = torch.where(perp.norm(dim=-1, keepdim=True) > 1e-6, perp, perp2)
    axis = torch.where(s > 1e-9, axis / s.clamp_min(1e-12), perp / perp.norm(dim=-1, keepdim=True))
    return roma.rotvec_to_rotmat(axis * angle)


def bvh_frames(joints_3d: np.ndarray, skeleton: Skeleton = CANON16):
    """Solve the BVH rest offsets and per-frame world rotations.

    Args:
        joints_3d: ``(T, J, 3)`` metres, camera frame (x right, y down, z forward),
            root-relative or not.

    Returns:
        ``(offsets (J, 3) rest offsets from the parent (root: 0), rotations (T, J, 3, 3)
        world rotations, root (T, 3) root positions)``, all Y up, metres.

    Raises:
        ValueError: wrong shape, fewer than one frame, or non-finite values.
    """
    import roma  # here, not at module import: roma imports torch._dynamo (~1 s)
    x = np.asarray(joints_3d, dtype=np.float64)
    J = skeleton.num_joints
    if x.ndim != 3 or x.shape[1:] != (J, 3) or x.shape[0] < 1:
        raise ValueError(f"BVH export expects joints (T, {J}, 3) with T >= 1, got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("BVH export: joints contain NaN/inf")
    x = x @ _CAMERA_TO_YUP.T
    parents, children = skeleton.parents, _children(skeleton)
    r = skeleton.root_index
    bones = np.stack([x[:, j] - x[:, p] if p >= 0 else np.zeros_like(x[:, j]) for j, p in enumerate(parents)], 1)
    lengths = np.linalg.norm(bones, axis=-1)  # (T, J)
    med = np.median(lengths, axis=0)
    d0 = bones[0] / np.maximum(lengths[0], 1e-9)[:, None]
    offsets = d0 * med[:, None]
    offsets[r] = 0.0
    T = x.shape[0]
    xt = torch.from_numpy(x)
    off = torch.from_numpy(offsets)
    Rw = torch.zeros(T, J, 3, 3, dtype=torch.float64)
    Rw[:] = torch.eye(3, dtype=torch.float64)
    order = [r]
    for j in order:  # breadth-first from the root
        order.extend(children[j])
    for j in order:
        ch = children[j]
        if not ch:
            Rw[:, j] = Rw[:, parents[j]] if parents[j] >= 0 else Rw[:, j]
            continue
        cur = torch.stack([xt[:, c] - xt[:, j] for c in ch], 1)  # (T, C, 3)
        rest = off[ch]  # (C, 3)
        if len(ch) == 1:
            a = (rest[0] / rest[0].norm().clamp_min(1e-12)).expand(T, 3)
            b = cur[:, 0] / cur[:, 0].norm(dim=-1, keepdim=True).clamp_min(1e-12)
            Rw[:, j] = _minimal_rotation(a, b)
        else:
            Rw[:, j] = roma.rigid_vectors_registration(rest.expand(T, -1, -1), cur)
    return offsets, Rw.numpy(), x[:, r]


def write_bvh(path: str | Path, joints_3d: np.ndarray, fps: float, skeleton: Skeleton = CANON16) -> Path:
    """Write ``joints_3d (T, J, 3)`` (metres, camera frame) as a BVH file, atomically.

    Returns:
        The path.

    Raises:
        ValueError: see :func:`bvh_frames`; ``fps`` not positive.
    """
    import roma  # here, not at module import: roma imports torch._dynamo (~1 s)
    if not (fps and fps > 0):
        raise ValueError(f"BVH export needs a positive frame rate, got {fps}")
    offsets, Rw, root = bvh_frames(joints_3d, skeleton)
    parents, children = skeleton.parents, _children(skeleton)
    names = skeleton.joint_names
    r = skeleton.root_index
    lines = ["HIERARCHY"]
    order: list[int] = []

    def emit(j: int, depth: int) -> None:
        pad = "  " * depth
        order.append(j)
        kind = "ROOT" if j == r else "JOINT"
        lines.append(f"{pad}{kind} {names[j]}")
        lines.append(f"{pad}{{")
        o = offsets[j]
        lines.append(f"{pad}  OFFSET {o[0]:.6f} {o[1]:.6f} {o[2]:.6f}")
        if j == r:
            lines.append(f"{pad}  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation")
        else:
            lines.append(f"{pad}  CHANNELS 3 Zrotation Xrotation Yrotation")
        if children[j]:
            for c in children[j]:
                emit(c, depth + 1)
        else:
            lines.append(f"{pad}  End Site")
            lines.append(f"{pad}  {{")
            lines.append(f"{pad}    OFFSET 0.000000 0.000000 0.000000")
            lines.append(f"{pad}  }}")
        lines.append(f"{pad}}}")

    emit(r, 0)
    T = Rw.shape[0]
    Rt = torch.from_numpy(Rw)
    local = torch.empty_like(Rt)
    for j in range(len(names)):
        p = parents[j]
        local[:, j] = Rt[:, j] if p < 0 else Rt[:, p].transpose(-1, -2) @ Rt[:, j]
    # R = Rz Rx Ry: intrinsic Z, then X, then Y
    euler = roma.rotmat_to_euler("ZXY", local, degrees=True).numpy()  # (T, J, 3)
    lines += ["MOTION", f"Frames: {T}", f"Frame Time: {1.0 / fps:.8f}"]
    for t in range(T):
        vals = [*root[t]]
        for j in order:
            vals += list(euler[t, j])
        lines.append(" ".join(f"{v:.6f}" for v in vals))
    text = "\n".join(lines) + "\n"
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


# --------------------------------------------------------------------------- timing: gaps and clips

MAX_FILL_GAP_S = 0.5
"""Gaps of at most this many seconds (``floor(MAX_FILL_GAP_S * fps)`` missing frames) are
filled by interpolation; longer gaps split the motion into separate clips."""


@dataclass
class MotionClip:
    """A run of consecutive frames ready for a BVH file (no frame missing).

    Attributes:
        frame_ids: ``(F,)`` consecutive frame ids. joints_3d: ``(F, J, 3)`` metres, camera
        frame. observed: ``(F, J)`` bool (all False on interpolated frames).
        interpolated: ``(F,)`` bool, True for frames filled in a short gap.
    """

    frame_ids: np.ndarray
    joints_3d: np.ndarray
    observed: np.ndarray
    interpolated: np.ndarray


def _forward_kinematics(offsets: np.ndarray, Rw: torch.Tensor, root: torch.Tensor, skeleton: Skeleton) -> torch.Tensor:
    """Joint positions ``(T, J, 3)`` (Y up) of world rotations ``Rw (T, J, 3, 3)`` (a joint's
    rotation moves its children's rest ``offsets (J, 3)``) and root positions ``(T, 3)``."""
    T, J = Rw.shape[:2]
    pos = torch.zeros(T, J, 3, dtype=Rw.dtype)
    off = torch.from_numpy(offsets).to(Rw.dtype)
    order = [skeleton.root_index]
    for j in order:
        order.extend(_children(skeleton)[j])
    for j in order:
        p = skeleton.parents[j]
        pos[:, j] = root if p < 0 else pos[:, p] + Rw[:, p] @ off[j]
    return pos


def bvh_residual(joints_3d: np.ndarray, skeleton: Skeleton = CANON16) -> float:
    """How far the BVH of ``joints_3d (T, J, 3)`` (metres) is from them: the median over
    frames and joints of the distance between the joints and the BVH's forward kinematics
    (one rest skeleton + per-frame rotations, :func:`bvh_frames`), metres. 0 for a rigid
    skeleton; the lift's bone lengths, when they vary over the track, cannot all be kept.

    Raises:
        ValueError: see :func:`bvh_frames`."""
    offsets, Rw, root = bvh_frames(joints_3d, skeleton)
    pos = _forward_kinematics(offsets, torch.from_numpy(Rw), torch.from_numpy(root), skeleton).numpy()
    return float(np.median(np.linalg.norm(pos - np.asarray(joints_3d, np.float64) @ _CAMERA_TO_YUP.T, axis=-1)))


def _fill(joints: np.ndarray, frame_ids: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """Joints ``(last - first + 1, J, 3)`` (camera frame) of a clip with short gaps: lifted
    frames as given, missing frames from the rigid skeleton of :func:`bvh_frames` with every
    joint's parent-relative rotation interpolated by slerp (Shoemake, "Animating rotation with
    quaternion curves", SIGGRAPH 1985; ``roma.rotmat_slerp``) and the root position linearly
    between the two frames around the gap."""
    import roma  # here, not at module import: roma imports torch._dynamo (~1 s)
    offsets, Rw, root = bvh_frames(joints, skeleton)
    Rw, root = torch.from_numpy(Rw), torch.from_numpy(root)
    parents = skeleton.parents
    local = torch.stack([Rw[:, j] if p < 0 else Rw[:, p].transpose(-1, -2) @ Rw[:, j]
                         for j, p in enumerate(parents)], 1)
    full = np.arange(frame_ids[0], frame_ids[-1] + 1)
    out = np.empty((len(full), skeleton.num_joints, 3))
    out[frame_ids - frame_ids[0]] = joints
    for k in np.flatnonzero(np.diff(frame_ids) > 1):
        a, b = frame_ids[k], frame_ids[k + 1]
        steps = torch.from_numpy((np.arange(a + 1, b) - a) / (b - a))
        loc = roma.rotmat_slerp(local[k], local[k + 1], steps)  # (G, J, 3, 3)
        world = [None] * len(parents)
        order = [skeleton.root_index]
        for j in order:
            order.extend(_children(skeleton)[j])
        for j in order:
            world[j] = loc[:, j] if parents[j] < 0 else world[parents[j]] @ loc[:, j]
        rt = root[k] + steps[:, None] * (root[k + 1] - root[k])
        pos = _forward_kinematics(offsets, torch.stack(world, 1), rt, skeleton).numpy()
        out[np.arange(a + 1, b) - frame_ids[0]] = pos @ _CAMERA_TO_YUP  # back to the camera frame (self-inverse)
    return out


def motion_clips(joints_3d: np.ndarray, frame_ids: np.ndarray, observed: np.ndarray, fps: float,
                 max_gap_s: float = MAX_FILL_GAP_S, skeleton: Skeleton = CANON16) -> list[MotionClip]:
    """Split a track with frame gaps into BVH-ready clips that keep the video's timing.

    A gap of ``g`` missing frames with ``g <= floor(max_gap_s * fps)`` is filled
    (:func:`_fill`: slerp of the joint rotations, marked ``interpolated``); a longer gap
    starts a new clip. Every clip then has one row per frame id from its first to its last,
    so ``frames * (1 / fps)`` equals its duration in the video.

    Args:
        joints_3d: ``(T, J, 3)`` metres, camera frame. frame_ids: ``(T,)`` strictly
        increasing ints. observed: ``(T, J)`` bool. fps: frames per second (> 0).

    Returns:
        Clips in time order (at least one).

    Raises:
        ValueError: shapes that disagree, no frames, frame ids not increasing, or a
            non-positive ``fps`` / negative ``max_gap_s``.
    """
    joints_3d, frame_ids, observed = np.asarray(joints_3d, np.float64), np.asarray(frame_ids), np.asarray(observed)
    T = len(frame_ids)
    if T == 0 or joints_3d.shape[:1] != (T,) or observed.shape != joints_3d.shape[:2]:
        raise ValueError(f"motion_clips: need T >= 1 frames with joints (T, J, 3), frame_ids (T,) and observed (T, J); "
                         f"got {joints_3d.shape}, {frame_ids.shape}, {observed.shape}")
    if np.any(np.diff(frame_ids) <= 0):
        raise ValueError("motion_clips: frame_ids must be strictly increasing")
    if not (fps and fps > 0) or max_gap_s < 0:
        raise ValueError(f"motion_clips: need fps > 0 and max_gap_s >= 0, got {fps}, {max_gap_s}")
    max_fill = int(np.floor(max_gap_s * fps + 1e-9))
    cuts = np.flatnonzero(np.diff(frame_ids) - 1 > max_fill) + 1
    clips = []
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, T]):
        f = frame_ids[a:b]
        full = np.arange(f[0], f[-1] + 1)
        real = np.isin(full, f)
        obs = np.zeros((len(full), observed.shape[1]), bool)
        obs[real] = observed[a:b]
        joints = joints_3d[a:b] if real.all() else _fill(joints_3d[a:b], f, skeleton)
        clips.append(MotionClip(full, joints.astype(np.float32), obs, ~real))
    return clips
