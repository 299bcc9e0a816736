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
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import roma
import torch

from .fileio import atomic_write
from ..skeletons import CANON16, Skeleton

__all__ = ["write_bvh", "bvh_frames"]

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
