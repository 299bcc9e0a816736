"""Per-track test-time fit of a lift to its own 2D (``posenet3d lift --fit track``).

A lifter maps each window of 2D to 3D on its own; on real detector input its output need not
reproject onto the 2D it was given (issue 20: the temporal teacher leaves 7-11 % of the
person's height between its projection and its input on Pose2Sim). The fit treats the whole
track as one problem and solves, for root-relative joints ``Y (T, J, 3)`` initialised at the
lift ``Y0``, the least-squares energy

    E(Y, L) =   sum_t,j  c_tj ||Pi_t(Y_t)_j - x_tj||^2 / size_t^2              (2D)
              + w_prior  sum_t,j ||Y_tj - Y0_tj||^2 / R^2                        (lifter prior)
              + w_bones  sum_t,b (||Y_t,b - Y_t,parent(b)|| - L_rb)^2 / R^2      (one skeleton per run)
              + w_smooth sum_t,j ||Y_t-1,j - 2 Y_tj + Y_t+1,j||^2 / R^2         (within runs)

``Pi_t`` is the per-frame weak-perspective camera (scale and 2D shift, HMR's ``cam``,
Kanazawa et al. CVPR 2018 Eq. 1) solved in closed form from ``Y_t`` at every step, ``x`` the
observed keypoints with detector scores ``c`` (masked joints have no 2D term), ``size_t`` the
person's 2D RMS size, ``R`` the RMS joint distance from the root of ``Y0`` over the track (so
the weights are unit-free), ``L_rb`` one length per bone and gap-free run (free variables).
This is the classic model-based fit of a 3D skeleton to a 2D track (Taylor, CVIU 2000; the
SMPLify-style energy of Bogo et al. ECCV 2016 Eq. 1, with the lifter's output as the pose
prior); solved with L-BFGS (``torch.optim.LBFGS``). The root stays at 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["FitWeights", "fit_track"]


@dataclass(frozen=True)
class FitWeights:
    """Weights of :func:`fit_track`'s energy (unit-free, see the module docstring) and the
    L-BFGS iteration budget. Values measured in BENCHMARKS.md "Real input"."""

    prior: float = 0.1
    bones: float = 1.0
    smooth: float = 1.0
    iterations: int = 60


def _weak_perspective(y: torch.Tensor, kp: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Projection of ``y (T, J, 3)`` by the per-frame scale + shift that best maps its x, y
    onto ``kp (T, J, 2)`` with joint weights ``w (T, J)``: ``(T, J, 2)`` px."""
    ws = w.sum(-1, keepdim=True).clamp_min(1e-9)[..., None]
    xy = y[..., :2]
    xm, km = (w[..., None] * xy).sum(-2, keepdim=True) / ws, (w[..., None] * kp).sum(-2, keepdim=True) / ws
    xc, kc = xy - xm, kp - km
    s = (w[..., None] * xc * kc).sum((-2, -1)) / (w[..., None] * xc * xc).sum((-2, -1)).clamp_min(1e-12)
    return s[:, None, None] * xc + km


def _check(joints_3d, keypoints_2d, mask, conf, seq_offsets):
    y0 = np.asarray(joints_3d, np.float64)
    kp, m = np.asarray(keypoints_2d, np.float64), np.asarray(mask, bool)
    T = len(y0)
    if y0.ndim != 3 or y0.shape[-1] != 3 or kp.shape != y0.shape[:-1] + (2,) or m.shape != y0.shape[:-1]:
        raise ValueError(f"fit_track: joints_3d {y0.shape}, keypoints_2d {kp.shape}, mask {m.shape} must be "
                         f"(T, J, 3), (T, J, 2), (T, J)")
    c = np.ones(m.shape) if conf is None else np.asarray(conf, np.float64)
    if c.shape != m.shape:
        raise ValueError(f"fit_track: conf {c.shape} must match the mask {m.shape}")
    seg = np.array([0, T]) if seq_offsets is None else np.asarray(seq_offsets, np.int64)
    if seg[0] != 0 or seg[-1] != T or (np.diff(seg) <= 0).any():
        raise ValueError(f"fit_track: seq_offsets must rise from 0 to {T}, got {seg.tolist()}")
    if not (np.isfinite(y0).all() and np.isfinite(kp[m]).all()):
        raise ValueError("fit_track: non-finite joints_3d or observed keypoints_2d")
    return y0, kp, m, np.where(m, np.clip(c, 0, 1), 0.0), seg


def fit_track(joints_3d, keypoints_2d, mask, parents, conf=None, seq_offsets=None,
              weights: FitWeights = FitWeights(), root_index: int = 0) -> np.ndarray:
    """Fit a track's lift to its 2D (the energy of the module docstring).

    Args:
        joints_3d: ``(T, J, 3)`` root-relative lift, camera frame (x right, y down), any unit
            (metres from :mod:`lifting.lift`); the output keeps it.
        keypoints_2d: ``(T, J, 2)`` input pixels. mask: ``(T, J)`` bool observed joints.
        parents: ``(J,)`` parent index per joint (-1 for the root).
        conf: ``(T, J)`` detector scores in [0, 1] weighting the 2D term (None = 1).
        seq_offsets: ``(S+1,)`` gap-free runs (smoothness and bone lengths never cross a run
            boundary); None = one run.
        weights: :class:`FitWeights`. root_index: the joint kept at 0.

    Returns:
        ``(T, J, 3)`` float32 fitted joints, root at 0.

    Raises:
        ValueError: shapes that do not match, non-finite input, bad ``seq_offsets``.
    """
    y0, kp, m, c, seg = _check(joints_3d, keypoints_2d, mask, conf, seq_offsets)
    T, J = y0.shape[:2]
    if T == 0 or weights.iterations <= 0:
        return y0.astype(np.float32)
    y0_t, kp_t, w_t = torch.from_numpy(y0), torch.from_numpy(kp), torch.from_numpy(c)
    R = float(np.sqrt((y0 ** 2).sum(-1).mean())) or 1.0
    ws = w_t.sum(-1, keepdim=True).clamp_min(1e-9)
    km = (w_t[..., None] * kp_t).sum(-2, keepdim=True) / ws[..., None]
    size2 = ((w_t * ((kp_t - km) ** 2).sum(-1)).sum(-1) / ws[:, 0]).clamp_min(1e-6)  # (T,)
    child = torch.tensor([j for j in range(J) if parents[j] >= 0])
    par = torch.tensor([parents[j] for j in range(J) if parents[j] >= 0])
    run = torch.from_numpy(np.repeat(np.arange(len(seg) - 1), np.diff(seg)))
    inner = torch.from_numpy(np.setdiff1d(np.arange(1, T - 1), np.concatenate([seg[1:-1] - 1, seg[1:-1]])))
    free = torch.ones(J, dtype=torch.bool)
    free[root_index] = False

    bone0 = (y0_t[:, child] - y0_t[:, par]).norm(dim=-1)
    lengths = torch.stack([bone0[run == r].median(0).values for r in range(len(seg) - 1)])  # (S, B)
    offs = y0_t[:, free].clone().requires_grad_(True)
    lengths = lengths.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([offs, lengths], lr=1.0, max_iter=weights.iterations, line_search_fn="strong_wolfe")

    def energy():
        opt.zero_grad()
        y = torch.zeros_like(y0_t)
        y[:, free] = offs
        e2d = (w_t * ((_weak_perspective(y, kp_t, w_t) - kp_t) ** 2).sum(-1)).sum(-1) / size2
        e = e2d.sum() + weights.prior * ((y - y0_t) ** 2).sum() / R ** 2
        bones = (y[:, child] - y[:, par]).norm(dim=-1)
        e = e + weights.bones * ((bones - lengths[run]) ** 2).sum() / R ** 2
        if len(inner):
            acc = y[inner - 1] - 2 * y[inner] + y[inner + 1]
            e = e + weights.smooth * (acc ** 2).sum() / R ** 2
        e.backward()
        return e

    opt.step(energy)
    with torch.no_grad():
        y = torch.zeros_like(y0_t)
        y[:, free] = offs
    out = y.numpy().astype(np.float32)
    if not np.isfinite(out).all():  # L-BFGS diverged: keep the lift
        return y0.astype(np.float32)
    return out
