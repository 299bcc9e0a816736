"""Running a lifter over sequences: windows with edge padding, normalisation, batching, and
conversion from normalised units to metres.
"""
from __future__ import annotations

import numpy as np
import torch

from .geometry import check_finite, normalize_2d
from .skeletons import Skeleton
from .teacher import Lifter

__all__ = ["lift_smpl_frames", "window_indices", "output_index", "lift_frames", "metric_scale", "HEIGHT_PROXY_FRACTION", "DEFAULT_HEIGHT_M"]

DEFAULT_HEIGHT_M = 1.70
"""Assumed standing height when converting scale-free lifts to metres."""

HEIGHT_PROXY_FRACTION = 0.84
"""Length of the chain ankle-knee-hip (mean of both legs) + pelvis-spine-thorax-head as a
fraction of standing height H, from the Drillis & Contini (1966) segment heights (ankle
0.039 H, knee 0.285 H, hip 0.530 H, shoulder/neck base ~0.82 H, head joint ~0.87 H) as
tabulated in Winter, Biomechanics and Motor Control of Human Movement, Fig. 4.1."""


def window_indices(seq_offsets: np.ndarray, window: int, causal: bool = False) -> np.ndarray:
    """Frame indices of a window for every frame, clamped inside its clip.

    Args:
        seq_offsets: ``(C+1,)`` clip boundaries in a frame array of length ``N``.
        window: T.
        causal: False: centred windows, the output frame is index ``T // 2`` of the window;
            True (online use): the window ends at the frame (index ``T - 1``), so no future
            frame is used (the first frames of a clip repeat the clip's first frame).

    Returns:
        ``(N, T)`` int64 indices.
    """
    seq_offsets = np.asarray(seq_offsets, dtype=np.int64)
    n = int(seq_offsets[-1])
    clip = np.repeat(np.arange(len(seq_offsets) - 1), np.diff(seq_offsets))
    lo, hi = seq_offsets[:-1][clip], seq_offsets[1:][clip] - 1
    idx = np.arange(n)[:, None] + np.arange(window)[None] - (window - 1 if causal else window // 2)
    return np.clip(idx, lo[:, None], hi[:, None])


def output_index(window: int, causal: bool = False) -> int:
    """Which frame of a window is reported for the frame it was built around."""
    return window - 1 if causal else window // 2


@torch.no_grad()
def lift_frames(
    model: Lifter,
    keypoints_2d: torch.Tensor,
    mask: torch.Tensor,
    seq_offsets: np.ndarray | None = None,
    batch_size: int = 4096,
    dtype: torch.dtype | None = None,
    causal: bool = False,
) -> torch.Tensor:
    """Lift every frame of one or more sequences.

    Args:
        model: a :class:`Lifter` or :class:`lifting.student.Student` (window T taken from it).
        keypoints_2d: ``(N, J, 2)`` pixels, frames of consecutive sequences.
        mask: ``(N, J)`` bool visible joints (the root must be visible in every frame).
        seq_offsets: ``(C+1,)`` sequence boundaries; default one sequence.
        batch_size: windows per forward pass.
        dtype: optional autocast dtype (e.g. ``torch.bfloat16`` on CPU).
        causal: temporal models see only the current and past frames (online mode: the
            window ends at the frame, :func:`window_indices`); the model is used as trained,
            reporting the last frame of each window, so expect somewhat larger errors than
            with centred windows.

    Returns:
        ``(N, J, 3)`` float32 root-relative 3D in normalised units for a lifter (see
        :func:`metric_scale` for metres), in metres for the student.

    Raises:
        ValueError: NaN/inf keypoints, shape mismatch, or frames without a visible root.
    """
    check_finite("keypoints_2d", keypoints_2d)
    if keypoints_2d.ndim != 3 or keypoints_2d.shape[-1] != 2 or mask.shape != keypoints_2d.shape[:-1]:
        raise ValueError(f"expected keypoints (N, J, 2) and mask (N, J), got {tuple(keypoints_2d.shape)} and {tuple(mask.shape)}")
    n = keypoints_2d.shape[0]
    if seq_offsets is None:
        seq_offsets = np.array([0, n])
    T = model.window
    idx = torch.from_numpy(window_indices(seq_offsets, T, causal)).to(keypoints_2d.device)
    c = output_index(T, causal)
    out = torch.empty(n, keypoints_2d.shape[1], 3, dtype=torch.float32, device=keypoints_2d.device)
    was_training = model.training
    model.eval()
    try:
        for s in range(0, n, batch_size):
            w = idx[s : s + batch_size]
            kp, m = keypoints_2d[w].float(), mask[w].bool()
            x, _ = normalize_2d(kp, m, model.root_index, per_window=T > 1)
            with torch.autocast(keypoints_2d.device.type, dtype=dtype, enabled=dtype is not None):
                pred = model(x, m)
            if not torch.is_tensor(pred):  # the SMPL student: its canonical joints
                pred = pred.joints_3d
            out[s : s + batch_size] = pred[:, c].float()
    finally:
        model.train(was_training)
    return out


def lift_smpl_frames(
    student,
    keypoints_2d: torch.Tensor,
    mask: torch.Tensor,
    seq_offsets: np.ndarray | None = None,
    batch_size: int = 4096,
    causal: bool = False,
) -> dict[str, torch.Tensor]:
    """Run the SMPL student over every frame of one or more sequences (the window centred
    on each frame, as :func:`lift_frames`).

    Args:
        student: :class:`lifting.student.Student`. keypoints_2d: ``(N, J, 2)`` pixels.
        mask: ``(N, J)`` bool. seq_offsets: ``(C+1,)`` sequence boundaries. causal: see
        :func:`lift_frames`.

    Returns:
        Per frame: ``global_orient (N, 3, 3)``, ``body_pose (N, 23, 3, 3)``,
        ``betas (N, num_betas)`` (per-frame estimates, to be pooled per person), ``scale
        (N,)`` camera scale in normalised units per metre, ``norm_scale (N,)`` pixels per
        normalised unit (the frame's own 2D RMS size), ``root_px (N, 2)``.

    Raises:
        ValueError: as :func:`lift_frames`.
    """
    check_finite("keypoints_2d", keypoints_2d)
    if keypoints_2d.ndim != 3 or keypoints_2d.shape[-1] != 2 or mask.shape != keypoints_2d.shape[:-1]:
        raise ValueError(f"expected keypoints (N, J, 2) and mask (N, J), got {tuple(keypoints_2d.shape)} and {tuple(mask.shape)}")
    n = keypoints_2d.shape[0]
    if seq_offsets is None:
        seq_offsets = np.array([0, n])
    T, c = student.window, output_index(student.window, causal)
    idx = torch.from_numpy(window_indices(seq_offsets, T, causal)).to(keypoints_2d.device)
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in ("global_orient", "body_pose", "betas", "scale")}
    was_training = student.training
    student.eval()
    try:
        with torch.no_grad():
            for s in range(0, n, batch_size):
                w = idx[s: s + batch_size]
                kp, m = keypoints_2d[w].float(), mask[w].bool()
                x, _ = normalize_2d(kp, m, student.root_index, per_window=T > 1)
                o = student(x, m)
                parts["global_orient"].append(o.global_orient[:, c])
                parts["body_pose"].append(o.body_pose[:, c])
                parts["betas"].append(o.betas_frames[:, c])
                parts["scale"].append(o.cam[:, c, 0])
    finally:
        student.train(was_training)
    res = {k: torch.cat(v) for k, v in parts.items()}
    kp, m = keypoints_2d.float(), mask.bool()
    _, norm = normalize_2d(kp, m, student.root_index)
    res["norm_scale"] = norm[..., 0]
    res["root_px"] = kp[:, student.root_index]
    return res


def metric_scale(joints_3d: torch.Tensor, skeleton: Skeleton, height_m: float = DEFAULT_HEIGHT_M) -> torch.Tensor:
    """Scale normalised root-relative poses to metres with an anthropometric prior.

    A lifter trained without 3D cannot know absolute size; each pose is scaled so that its
    leg (mean of both sides, ankle-knee-hip) plus trunk (pelvis-spine-thorax-head) chain
    equals ``HEIGHT_PROXY_FRACTION * height_m``. Scale-free metrics (N-MPJPE, PA-MPJPE) are
    unaffected; MPJPE and PCK3D depend on this assumption.

    Args:
        joints_3d: ``(..., J, 3)`` canonical-set poses (normalised units).
        skeleton: must contain the canonical joint names (``l_/r_ankle``, ``knee``, ``hip``,
            ``pelvis``, ``spine``, ``thorax``, ``head``).

    Returns:
        ``(..., J, 3)`` metres.
    """
    j = {n: joints_3d[..., skeleton.index(n), :] for n in (
        "l_ankle", "l_knee", "l_hip", "r_ankle", "r_knee", "r_hip", "pelvis", "spine", "thorax", "head")}
    seg = lambda a, b: (j[a] - j[b]).norm(dim=-1)  # noqa: E731
    legs = 0.5 * (seg("l_ankle", "l_knee") + seg("l_knee", "l_hip") + seg("r_ankle", "r_knee") + seg("r_knee", "r_hip"))
    trunk = seg("pelvis", "spine") + seg("spine", "thorax") + seg("thorax", "head")
    chain = (legs + trunk).clamp_min(1e-6)
    return joints_3d * (HEIGHT_PROXY_FRACTION * height_m / chain)[..., None, None]
