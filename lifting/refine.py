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
quadratic in ``Y``: per joint one symmetric positive definite pentadiagonal system over the
track's frames, x and y its two right-hand sides; the joints' systems are laid end to end in one
band and solved by one banded Cholesky, ``scipy.linalg.solveh_banded``, per alternation). Depth
is moved only by the smoothness term. The root stays at 0.
Last (``FitWeights.rigid``), every bone takes its run's median length along its fitted
direction (:func:`rigid_bones`): a person's bones do not stretch, and on real tracks the
lifters' bone lengths vary by 14-18 % over a track. Costs about 7 microseconds of one core per
frame (a 10,000-frame track: ~70 ms, two thirds of it the five banded solves of 16 x 10,000
unknowns, ~9.5 ms each; ``scripts/bench_fit.py``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import solveh_banded

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


def _cameras(y: np.ndarray, wkc: np.ndarray, km: np.ndarray, w: np.ndarray, ws: np.ndarray):
    """Per-frame weak-perspective camera mapping the x, y of ``y (2, J, T)`` onto the keypoints
    with joint weights ``w (J, T)`` (weighted least squares), given the keypoints' weighted
    mean ``km (2, T)``, ``wkc = w * (keypoints - km) (2, J, T)`` and ``ws = max(sum_j w, 1e-12)
    (T,)``: scale ``(T,)`` and shift ``(2, T)``."""
    wy = w * y
    xm = wy.sum(1) / ws  # (2, T)
    num = np.einsum("cjt,cjt->t", wkc, y)  # sum_j w (y - xm)(kp - km): the xm term sums to 0
    den = np.einsum("cjt,cjt->t", wy, y) - ws * (xm * xm).sum(0)  # sum_j w |y - xm|^2
    s = num / np.maximum(den, 1e-12)
    return s, km - s * xm


def _second_differences(seg: np.ndarray, T: int) -> np.ndarray:
    """``(3, T)`` lower banded form (``scipy.linalg.solveh_banded(lower=True)`` layout:
    ``ab[i - j, j] = A[i, j]``) of ``D^T D`` for the second differences ``D`` of consecutive
    frames inside each run of ``seg``. Every interior frame ``k`` of a run adds the outer
    product of ``(1, -2, 1)`` at frames ``(k-1, k, k+1)``; entries past a run's end are 0, so
    the bands of several tracks or joints laid end to end form one block-diagonal system."""
    inner = np.ones(T + 2)  # inner[1 + k]: frame k is interior (0 off the ends)
    inner[[0, -1]] = 0
    inner[1 + np.asarray(seg[:-1])] = 0
    inner[np.asarray(seg[1:])] = 0  # the last frame of each run
    ab = np.empty((3, T))
    ab[0] = inner[:-2] + 4 * inner[1:-1] + inner[2:]
    ab[1] = -2 * (inner[1:-1] + inner[2:])
    ab[2] = inner[2:]
    return ab


def _check(joints_3d, keypoints_2d, mask, conf, seq_offsets):
    """:func:`fit_track`'s inputs checked and laid out frames last (contiguous rows, as the
    banded solver takes them): float64 ``y0 (3, J, T)``, ``kp (2, J, T)`` px (0 where masked),
    weights ``w (J, T)`` (``conf`` clipped to [0, 1], 0 where masked), and the runs ``seg``.

    Raises:
        ValueError: as :func:`fit_track`."""
    y0, kp, m = np.asarray(joints_3d), np.asarray(keypoints_2d), np.asarray(mask, bool)
    if y0.ndim != 3 or y0.shape[-1] != 3 or kp.shape != y0.shape[:-1] + (2,) or m.shape != y0.shape[:-1]:
        raise ValueError(f"fit_track: joints_3d {y0.shape}, keypoints_2d {kp.shape}, mask {m.shape} must be "
                         f"(T, J, 3), (T, J, 2), (T, J)")
    T, J = m.shape
    c = np.ones(m.shape) if conf is None else np.asarray(conf)
    if c.shape != m.shape:
        raise ValueError(f"fit_track: conf {c.shape} must match the mask {m.shape}")
    seg = np.array([0, T]) if seq_offsets is None else np.asarray(seq_offsets, np.int64)
    if seg[0] != 0 or seg[-1] != T or (np.diff(seg) <= 0).any():
        raise ValueError(f"fit_track: seq_offsets must rise from 0 to {T}, got {seg.tolist()}")
    y0 = np.ascontiguousarray(y0.transpose(2, 1, 0), np.float64)
    kp_t, w = np.zeros((2, J, T)), np.zeros((J, T))
    np.copyto(kp_t, kp.transpose(2, 1, 0), where=m.T)
    np.copyto(w, np.clip(c.T, 0, 1), where=m.T)
    if not (np.isfinite(y0).all() and np.isfinite(kp_t).all()):
        raise ValueError("fit_track: non-finite joints_3d or observed keypoints_2d")
    return y0, kp_t, w, seg


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
    y = np.asarray(joints_3d, np.float64).transpose(2, 1, 0)
    return _rigid(np.ascontiguousarray(y), parents, np.asarray(seq_offsets, np.int64)).transpose(2, 1, 0)


def _rigid(y: np.ndarray, parents, seg: np.ndarray) -> np.ndarray:
    """:func:`rigid_bones` of ``y (3, J, T)`` (frames last: contiguous rows), a new array."""
    parents = list(parents)
    if any(p >= j for j, p in enumerate(parents)):
        raise ValueError(f"rigid_bones: parents must precede their children, got {parents}")
    child = [j for j, p in enumerate(parents) if p >= 0]
    vec = y[:, child] - y[:, [parents[j] for j in child]]  # (3, B, T)
    n = np.sqrt(np.einsum("cbt,cbt->bt", vec, vec))  # (B, T)
    length = np.empty_like(n)
    for a, b in zip(seg[:-1], seg[1:]):  # one median per bone and run
        length[:, a:b] = np.median(n[:, a:b], axis=1, keepdims=True)
    vec /= np.maximum(n, 1e-12)
    vec *= length
    out = np.empty_like(y)
    roots = [j for j, p in enumerate(parents) if p < 0]
    out[:, roots] = y[:, roots]
    for b, j in enumerate(child):  # parents first: each joint from its placed parent
        np.add(out[:, parents[j]], vec[:, b], out=out[:, j])
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
        numpy.linalg.LinAlgError: a singular system (only with ``weights.prior`` 0).
    """
    y0, kp, w, seg = _check(joints_3d, keypoints_2d, mask, conf, seq_offsets)  # (3, J, T), (2, J, T), (J, T)
    J, T = w.shape
    if J != skeleton.num_joints:
        raise ValueError(f"fit_track: {J} joints, but the skeleton {skeleton.name} has {skeleton.num_joints}")
    if T == 0 or weights.iterations <= 0:
        return y0.transpose(2, 1, 0).astype(np.float32)
    R2 = float((y0 ** 2).sum(0).mean()) or 1.0
    ws = np.maximum(w.sum(0), 1e-12)
    km = (w * kp).sum(1) / ws  # (2, T)
    size2 = np.maximum((w * ((kp - km[:, None]) ** 2).sum(0)).sum(0) / ws, 1e-6)  # (T,) px^2
    w = np.where((w > 0).sum(0) >= 2, w, 0.0)  # a camera needs 2 observed joints
    smooth = weights.smooth * _second_differences(seg, T) / R2
    prior = weights.prior / R2
    y = _fit_xy(y0, kp, w, size2, smooth, prior, int(weights.iterations), skeleton.root_index)
    ab = smooth.copy()
    ab[0] += prior
    z = solveh_banded(ab, prior * y0[2].T, lower=True, check_finite=False)  # depth: the prior, smoothed
    y = np.concatenate([y, z.T[None]])
    y -= y[:, skeleton.root_index, None]
    if weights.rigid and skeleton.parents is not None:
        y = _rigid(y, skeleton.parents, seg if body_offsets is None else np.asarray(body_offsets, np.int64))
    return y.transpose(2, 1, 0).astype(np.float32)


def _fit_xy(y0, kp, w, size2, smooth, prior: float, iterations: int, root: int) -> np.ndarray:
    """The alternation of :func:`fit_track` for x, y: ``iterations`` times the cameras, then
    all joints' x, y in one banded Cholesky solve (the J per-joint pentadiagonal systems laid
    end to end along the band: ``J T`` unknowns, x and y the two right-hand sides).

    Args:
        y0: ``(3, J, T)`` lift. kp: ``(2, J, T)`` px. w: ``(J, T)`` 2D weights. size2: ``(T,)``
            px^2. smooth: ``(3, T)`` weighted band (:func:`_second_differences`). prior: weight.

    Returns:
        ``(2, J, T)`` x, y relative to joint ``root``.
    """
    J, T = w.shape
    ws = np.maximum(w.sum(0), 1e-12)
    km = (w * kp).sum(1) / ws  # (2, T)
    wkc = w * (kp - km[:, None])
    band = np.tile(smooth.T, (J, 1)).T  # (3, J T) Fortran order (LAPACK's layout): one block per joint
    band[0] += prior
    py0 = prior * y0[:2]
    y = y0[:2].copy()
    for _ in range(iterations):
        s, d = _cameras(y, wkc, km, w, ws)
        ab = band.copy(order="F")
        ab[0] += (w * (s ** 2 / size2)).ravel()  # the 2D term's weight of each joint's x and y
        rhs = kp - d[:, None]  # (2, J, T): the 2D term's pull, then the prior's
        rhs *= w * (s / size2)
        rhs += py0
        y = solveh_banded(ab, rhs.reshape(2, J * T).T, lower=True, overwrite_ab=True, overwrite_b=True,
                          check_finite=False).T.reshape(2, J, T)
        y -= y[:, root, None]
    return y
