"""Per-track test-time fit of a lift to its own 2D (``posenet3d lift --fit track``).

A lifter maps each window of 2D to 3D on its own; on real detector input its output need not
reproject onto the 2D it was given (issue 20: the temporal teacher leaves 7-11 % of the
person's height between its projection and its input on Pose2Sim). The fit treats the whole
track as one least-squares problem: for root-relative joints ``Y (T, J, 3)`` initialised at
the lift ``Y0``,

    E(Y) =   sum_t,j  c_tj ||s_t Y_tj,xy + d_t - x_tj||^2 / size_t^2                (2D)
           + w_prior  sum_t,j ||Y_tj - Y0_tj||^2 / R^2                              (lifter prior)
           + w_smooth sum_t,j ||Y_t-1,j - 2 Y_tj + Y_t+1,j||^2 / R^2               (within runs)

``(s_t, d_t)`` is the per-frame weak-perspective camera (scale and 2D shift, HMR's ``cam``,
Kanazawa et al. CVPR 2018 Eq. 1), ``x`` the observed keypoints with detector scores ``c``
(masked joints have no 2D term: prior and smoothness fill them), ``size_t`` the person's 2D
RMS size, ``R`` the RMS joint distance from the root of ``Y0`` over the track (so the weights
are unit-free). It is the model-based fit of a skeleton to a 2D track (Taylor, CVIU 2000;
the data + prior energy of SMPLify, Bogo et al. ECCV 2016 Eq. 1, with the lifter's output as
the pose prior). Solved by alternating exact steps, each lowering ``E``: the cameras in closed
form (weighted least squares per frame), then ``Y`` in closed form (for fixed cameras ``E`` is
quadratic in ``Y``; per joint and coordinate one pentadiagonal system over the track's frames,
``scipy.linalg.solve_banded``). Depth is moved only by the smoothness term. The root stays at 0.
Last (``FitWeights.rigid``), every bone takes its run's median length along its fitted
direction (:func:`rigid_bones`): a person's bones do not stretch, and on real tracks the
lifters' bone lengths vary by 14-18 % over a track. Costs a few tens of microseconds per frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import solve_banded

from .skeletons import CANON16, Skeleton

__all__ = ["FitWeights", "fit_track", "rigid_bones"]


@dataclass(frozen=True)
class FitWeights:
    """Weights of :func:`fit_track`'s energy (unit-free, see the module docstring), the
    number of camera / pose alternations, and ``rigid``: end with one bone length per bone and
    run (:func:`rigid_bones`; needs ``parents``). Values measured in BENCHMARKS.md "Real input"."""

    prior: float = 0.1
    smooth: float = 1.0
    iterations: int = 5
    rigid: bool = True


def _cameras(y: np.ndarray, kp: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame weak-perspective camera mapping ``y (T, J, 3)`` x, y onto ``kp (T, J, 2)`` with
    joint weights ``w (T, J)`` (weighted least squares): scale ``(T,)`` and shift ``(T, 2)``."""
    ws = np.maximum(w.sum(-1, keepdims=True), 1e-12)
    xm, km = (w[..., None] * y[..., :2]).sum(1) / ws, (w[..., None] * kp).sum(1) / ws
    xc, kc = y[..., :2] - xm[:, None], kp - km[:, None]
    s = (w[..., None] * xc * kc).sum((1, 2)) / np.maximum((w[..., None] * xc * xc).sum((1, 2)), 1e-12)
    return s, km - s[:, None] * xm


def _second_differences(seg: np.ndarray, T: int) -> np.ndarray:
    """``(5, T)`` banded form (``solve_banded`` layout, 2 bands each side) of ``D^T D`` for the
    second differences ``D`` of consecutive frames inside each run of ``seg``."""
    ab = np.zeros((5, T))  # ab[2 + i - j, j] = A[i, j]
    k = np.concatenate([np.arange(a + 1, b - 1) for a, b in zip(seg[:-1], seg[1:])] or [np.zeros(0, int)])
    # each interior frame k adds the outer product of (1, -2, 1) at frames (k-1, k, k+1)
    for row, col, v in ((2, k - 1, 1.0), (2, k, 4.0), (2, k + 1, 1.0),      # diagonal
                        (1, k, -2.0), (1, k + 1, -2.0), (0, k + 1, 1.0),    # above it
                        (3, k - 1, -2.0), (3, k, -2.0), (4, k - 1, 1.0)):   # below it
        np.add.at(ab[row], col, v)
    return ab


def _check(joints_3d, keypoints_2d, mask, conf, seq_offsets):
    y0 = np.asarray(joints_3d, np.float64)
    kp, m = np.asarray(keypoints_2d, np.float64), np.asarray(mask, bool)
    if y0.ndim != 3 or y0.shape[-1] != 3 or kp.shape != y0.shape[:-1] + (2,) or m.shape != y0.shape[:-1]:
        raise ValueError(f"fit_track: joints_3d {y0.shape}, keypoints_2d {kp.shape}, mask {m.shape} must be "
                         f"(T, J, 3), (T, J, 2), (T, J)")
    T = len(y0)
    c = np.ones(m.shape) if conf is None else np.asarray(conf, np.float64)
    if c.shape != m.shape:
        raise ValueError(f"fit_track: conf {c.shape} must match the mask {m.shape}")
    seg = np.array([0, T]) if seq_offsets is None else np.asarray(seq_offsets, np.int64)
    if seg[0] != 0 or seg[-1] != T or (np.diff(seg) <= 0).any():
        raise ValueError(f"fit_track: seq_offsets must rise from 0 to {T}, got {seg.tolist()}")
    if not (np.isfinite(y0).all() and np.isfinite(kp[m]).all()):
        raise ValueError("fit_track: non-finite joints_3d or observed keypoints_2d")
    return y0, np.where(m[..., None], kp, 0.0), np.where(m, np.clip(c, 0, 1), 0.0), seg


def rigid_bones(joints_3d: np.ndarray, parents, seq_offsets: np.ndarray) -> np.ndarray:
    """One length per bone and gap-free run: every bone keeps its direction and takes the
    run's median length, placed from the root outwards (a skeleton's bones do not stretch;
    Taylor, CVIU 2000).

    Args:
        joints_3d: ``(T, J, 3)`` root-relative joints. parents: ``(J,)`` parent per joint (-1
            the root), parents before their children. seq_offsets: ``(S+1,)`` runs.

    Returns:
        ``(T, J, 3)`` float64 joints, root unchanged.

    Raises:
        ValueError: a parent listed after its child.
    """
    parents = list(parents)
    if any(p >= j for j, p in enumerate(parents)):
        raise ValueError(f"rigid_bones: parents must precede their children, got {parents}")
    y = np.asarray(joints_3d, np.float64)
    seg = np.asarray(seq_offsets, np.int64)
    child = [j for j, p in enumerate(parents) if p >= 0]
    vec = y[:, child] - y[:, [parents[j] for j in child]]  # (T, B, 3)
    n = np.linalg.norm(vec, axis=-1)  # (T, B)
    med = np.stack([np.median(n[a:b], axis=0) for a, b in zip(seg[:-1], seg[1:])])  # (S, B): one call per run
    length = np.repeat(med, np.diff(seg), axis=0)  # (T, B)
    unit = vec / np.maximum(n, 1e-12)[..., None]
    out = y.copy()
    for b, j in enumerate(child):  # parents first: each joint from its placed parent
        out[:, j] = out[:, parents[j]] + unit[:, b] * length[:, b, None]
    return out


def fit_track(joints_3d, keypoints_2d, mask, conf=None, seq_offsets=None, weights: FitWeights = FitWeights(),
              skeleton: Skeleton = CANON16, body_offsets=None) -> np.ndarray:
    """Fit a track's lift to its 2D (the energy of the module docstring).

    Args:
        joints_3d: ``(T, J, 3)`` root-relative lift, camera frame (x right, y down), any unit
            (metres from :mod:`lifting.lift`); the output keeps it.
        keypoints_2d: ``(T, J, 2)`` input pixels. mask: ``(T, J)`` bool observed joints.
        conf: ``(T, J)`` detector scores in [0, 1] weighting the 2D term (None = 1).
        seq_offsets: ``(S+1,)`` gap-free runs (smoothness never crosses a run boundary);
            None = one run.
        weights: :class:`FitWeights`.
        skeleton: the joint set (:data:`lifting.skeletons.CANON16`): its root stays at 0 and,
            with ``weights.rigid``, its bones end with one length per body (:func:`rigid_bones`).
        body_offsets: ``(B+1,)`` stretches of one person for the bone lengths (a track cut
            only at identity switches, not at frame gaps); None = ``seq_offsets``.

    Returns:
        ``(T, J, 3)`` float32 fitted joints, root at 0 (the lift unchanged for frames with
        fewer than 2 observed joints' worth of 2D).

    Raises:
        ValueError: shapes that do not match, non-finite input, bad ``seq_offsets``.
    """
    y0, kp, w, seg = _check(joints_3d, keypoints_2d, mask, conf, seq_offsets)
    T, J = y0.shape[:2]
    if J != skeleton.num_joints:
        raise ValueError(f"fit_track: {J} joints, but the skeleton {skeleton.name} has {skeleton.num_joints}")
    root_index = skeleton.root_index
    if T == 0 or weights.iterations <= 0:
        return y0.astype(np.float32)
    R2 = float((y0 ** 2).sum(-1).mean()) or 1.0
    ws = np.maximum(w.sum(-1, keepdims=True), 1e-12)
    km = (w[..., None] * kp).sum(1) / ws
    size2 = np.maximum((w * ((kp - km[:, None]) ** 2).sum(-1)).sum(-1) / ws[:, 0], 1e-6)  # (T,)
    w = np.where((w > 0).sum(-1, keepdims=True) >= 2, w, 0.0)  # a camera needs 2 observed joints
    smooth = weights.smooth * _second_differences(seg, T) / R2
    prior = weights.prior / R2
    y = y0.copy()
    for _ in range(int(weights.iterations)):
        s, d = _cameras(y, kp, w)
        a = w * (s ** 2 / size2)[:, None]  # (T, J) 2D weight of each joint's x, y
        b = w[..., None] * (s / size2)[:, None, None] * (kp - d[:, None])  # (T, J, 2)
        for j in range(J):
            ab = smooth.copy()
            ab[2] += a[:, j] + prior
            y[:, j, :2] = solve_banded((2, 2), ab, b[:, j] + prior * y0[:, j, :2])
        y -= y[:, root_index:root_index + 1]
    ab = smooth.copy()
    ab[2] += prior
    y[..., 2] = solve_banded((2, 2), ab, prior * y0[..., 2])  # depth: the prior, smoothed
    y -= y[:, root_index:root_index + 1]
    if weights.rigid and skeleton.parents is not None:
        y = rigid_bones(y, skeleton.parents, seg if body_offsets is None else np.asarray(body_offsets, np.int64))
    return y.astype(np.float32)
