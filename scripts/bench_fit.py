"""Time the per-track steps after the model (``lifting.lift._finish_track``: the fit of
:func:`lifting.refine.fit_track` and the root translation of
:func:`lifting.placement.root_translation`) on tracks of 10,000 frames, one core.

Sources of tracks (``--source``):

* ``synthetic`` (default): a rigid canon16 walker (:func:`walker`) seen by a
  pinhole camera (1920 x 1080 px, focal 1920 px, 4-6 m away) with 1 px 2D noise, a lift with
  4 cm of noise per coordinate, 10 % of the joints masked, scores in [0.3, 1], a frame gap
  about every 2,000 frames and one identity switch.
* ``lifted``: the people of ``scripts/make_large_tracks.py`` (the 1M person-frame benchmark's
  input; the example track's real 2D), prepared and lifted by the bundled teachers with
  ``--fit none``, then finished with ``--fit track`` and the guessed camera (the 1M run's steps).
  The model part takes a few seconds per track and is not timed.

Prints CPU ms per 10k-frame track (median over tracks, best of ``--repeat``) for the fit, the
placement and ``_finish_track`` as a whole, and the max abs difference of ``joints_3d`` and
``transl`` against :func:`reference_fit` / :func:`reference_transl` (the implementation
before issue "fit speed": one ``scipy.linalg.solve_banded`` LU per joint and iteration, kept
here only as the reference).

Usage::

    OMP_NUM_THREADS=1 python scripts/bench_fit.py [--tracks 5] [--frames 10000] [--source lifted]
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from lifting.lift import _finish_track  # noqa: E402
from lifting.lift_batch import PreparedTrack  # noqa: E402
from lifting.lift_result import LiftResult  # noqa: E402
from lifting.options import LiftOptions  # noqa: E402
from lifting.placement import Intrinsics, TRANSL_SMOOTH, guess_intrinsics, root_translation  # noqa: E402
from lifting.prepare import identity_switches, run_offsets  # noqa: E402
from lifting.refine import FitWeights, fit_track  # noqa: E402
from lifting.skeletons import CANON16  # noqa: E402

CAMERA = guess_intrinsics((1920, 1080))


# --- the reference: fit_track and root_translation's smoothing as they were (per-joint LU solves)
def _reference_band(seg: np.ndarray, T: int) -> np.ndarray:
    """``(5, T)`` ``solve_banded`` form of ``D^T D`` for second differences within runs."""
    ab = np.zeros((5, T))
    k = np.concatenate([np.arange(a + 1, b - 1) for a, b in zip(seg[:-1], seg[1:])] or [np.zeros(0, int)])
    for row, col, v in ((2, k - 1, 1.0), (2, k, 4.0), (2, k + 1, 1.0), (1, k, -2.0), (1, k + 1, -2.0),
                        (0, k + 1, 1.0), (3, k - 1, -2.0), (3, k, -2.0), (4, k - 1, 1.0)):
        np.add.at(ab[row], col, v)
    return ab


def _reference_check(joints_3d, keypoints_2d, mask, conf, seq_offsets):
    """float64 ``(T, J, 3)`` lift, ``(T, J, 2)`` keypoints (0 where masked), ``(T, J)`` weights, runs."""
    y0, kp, m = np.asarray(joints_3d, np.float64), np.asarray(keypoints_2d, np.float64), np.asarray(mask, bool)
    c = np.ones(m.shape) if conf is None else np.asarray(conf, np.float64)
    seg = np.array([0, len(y0)]) if seq_offsets is None else np.asarray(seq_offsets, np.int64)
    return y0, np.where(m[..., None], kp, 0.0), np.where(m, np.clip(c, 0, 1), 0.0), seg


def _reference_cameras(y, kp, w):
    """Per-frame weak-perspective camera (scale ``(T,)``, shift ``(T, 2)``) of ``y (T, J, 3)``."""
    ws = np.maximum(w.sum(-1, keepdims=True), 1e-12)
    xm, km = (w[..., None] * y[..., :2]).sum(1) / ws, (w[..., None] * kp).sum(1) / ws
    xc, kc = y[..., :2] - xm[:, None], kp - km[:, None]
    s = (w[..., None] * xc * kc).sum((1, 2)) / np.maximum((w[..., None] * xc * xc).sum((1, 2)), 1e-12)
    return s, km - s[:, None] * xm


def _reference_rigid(y: np.ndarray, parents, seg: np.ndarray) -> np.ndarray:
    """:func:`lifting.refine.rigid_bones` on ``(T, J, 3)`` as it was."""
    child = [j for j, p in enumerate(parents) if p >= 0]
    vec = y[:, child] - y[:, [parents[j] for j in child]]
    n = np.linalg.norm(vec, axis=-1)
    med = np.stack([np.median(n[a:b], axis=0) for a, b in zip(seg[:-1], seg[1:])])
    length = np.repeat(med, np.diff(seg), axis=0)
    unit = vec / np.maximum(n, 1e-12)[..., None]
    out = y.copy()
    for b, j in enumerate(child):
        out[:, j] = out[:, parents[j]] + unit[:, b] * length[:, b, None]
    return out


def reference_fit(joints_3d, keypoints_2d, mask, conf=None, seq_offsets=None, body_offsets=None,
                  weights: FitWeights = FitWeights()) -> np.ndarray:
    """:func:`lifting.refine.fit_track` before the speed-up (canon16; same arguments)."""
    from scipy.linalg import solve_banded

    y0, kp, w, seg = _reference_check(joints_3d, keypoints_2d, mask, conf, seq_offsets)
    T, J = y0.shape[:2]
    r = CANON16.root_index
    R2 = float((y0 ** 2).sum(-1).mean()) or 1.0
    ws = np.maximum(w.sum(-1, keepdims=True), 1e-12)
    km = (w[..., None] * kp).sum(1) / ws
    size2 = np.maximum((w * ((kp - km[:, None]) ** 2).sum(-1)).sum(-1) / ws[:, 0], 1e-6)
    w = np.where((w > 0).sum(-1, keepdims=True) >= 2, w, 0.0)
    smooth = weights.smooth * _reference_band(seg, T) / R2
    prior = weights.prior / R2
    y = y0.copy()
    for _ in range(int(weights.iterations)):
        s, d = _reference_cameras(y, kp, w)
        a = w * (s ** 2 / size2)[:, None]
        b = w[..., None] * (s / size2)[:, None, None] * (kp - d[:, None])
        for j in range(J):
            ab = smooth.copy()
            ab[2] += a[:, j] + prior
            y[:, j, :2] = solve_banded((2, 2), ab, b[:, j] + prior * y0[:, j, :2])
        y -= y[:, r:r + 1]
    ab = smooth.copy()
    ab[2] += prior
    y[..., 2] = solve_banded((2, 2), ab, prior * y0[..., 2])
    y -= y[:, r:r + 1]
    y = _reference_rigid(y, CANON16.parents, seg if body_offsets is None else np.asarray(body_offsets, np.int64))
    return y.astype(np.float32)


def reference_transl(joints_3d, kp, mask, K: Intrinsics, seg, conf) -> np.ndarray:
    """:func:`lifting.placement.root_translation` before the speed-up (default smoothing)."""
    from scipy.linalg import solve_banded

    X, uv, m = np.asarray(joints_3d, np.float64), np.asarray(kp, np.float64), np.asarray(mask, bool)
    w = m * np.clip(np.asarray(conf, np.float64), 1e-3, 1.0)
    du, dv = (uv[..., 0] - K.cx) / K.fx, (uv[..., 1] - K.cy) / K.fy
    A = np.zeros(X.shape[:2] + (2, 3))
    A[..., 0, 0], A[..., 0, 2], A[..., 1, 1], A[..., 1, 2] = 1.0, -du, 1.0, -dv
    b = np.stack([du * X[..., 2] - X[..., 0], dv * X[..., 2] - X[..., 1]], -1)
    Aw = A * w[..., None, None]
    N, rhs = np.einsum("tjki,tjkl->til", Aw, A), np.einsum("tjki,tjk->ti", Aw, b)
    ok = m.sum(-1) >= 2
    t = np.full((len(X), 3), np.nan)
    t[ok] = np.linalg.solve(N[ok] + 1e-12 * np.eye(3), rhs[ok][..., None])[..., 0]
    if len(X) > 2 and ok.all():
        ab = TRANSL_SMOOTH * _reference_band(np.asarray(seg, np.int64), len(X))
        ab[2] += 1.0
        t = solve_banded((2, 2), ab, t)
    return t.astype(np.float32)


# --- tracks
def walker(T: int, seed: int) -> np.ndarray:
    """``(T, 16, 3)`` metres: a rigid canon16 rest pose (random bones, as ``tests/test_refine.py``)
    turning about the vertical axis."""
    rng = np.random.default_rng(seed)
    offsets = rng.normal(0, 0.05, (16, 3)) + [0, 0.25, 0]  # bones point down (y down) ...
    offsets[[7, 8, 9]] = [[0, -0.25, 0.02], [0, -0.25, 0], [0, -0.2, 0.02]]  # ... but spine, thorax, head
    rest = np.zeros((16, 3))
    for j in range(1, 16):
        rest[j] = rest[CANON16.parents[j]] + offsets[j]
    a = 0.6 * np.sin(np.arange(T) / 6)
    c, s, z = np.cos(a), np.sin(a), np.zeros(T)
    R = np.stack([np.stack([c, z, s], -1), np.stack([z, z + 1, z], -1), np.stack([-s, z, c], -1)], -2)  # (T, 3, 3)
    return np.einsum("tij,kj->tki", R, rest)


def synthetic(T: int, seed: int) -> tuple[PreparedTrack, LiftResult]:
    """One synthetic track (module docstring) as ``_finish_track``'s input."""
    rng = np.random.default_rng(seed)
    truth = walker(T, seed)
    t = np.arange(T)
    root = np.stack([0.5 * np.sin(t / 300), np.zeros(T), 5 + np.cos(t / 500)], -1)  # 4-6 m in front
    cam = truth + root[:, None]
    kp = CAMERA.fx * cam[..., :2] / cam[..., 2:] + [CAMERA.cx, CAMERA.cy] + rng.normal(0, 1.0, cam.shape[:2] + (2,))
    mask = rng.random(kp.shape[:2]) > 0.1
    mask[:, CANON16.root_index] = True
    lift = truth + rng.normal(0, 0.04, truth.shape)
    lift -= lift[:, CANON16.root_index:CANON16.root_index + 1]
    frame_ids = np.arange(T) + np.cumsum(rng.random(T) < 1 / 2000)  # a frame gap about every 2,000 frames
    starts = np.r_[True, np.diff(frame_ids) != 1]
    starts[T // 2] = True  # one identity switch
    p = PreparedTrack(seed, f"synthetic {seed}", np.where(mask[..., None], kp, 0).astype(np.float32), mask,
                      rng.uniform(0.3, 1.0, mask.shape).astype(np.float32), frame_ids, np.zeros(0, np.int64), starts)
    res = replace(LiftResult.empty(seed, np.zeros(0, np.int64)), joints_3d=lift.astype(np.float32), mask=mask,
                  lifted_by=((0, T, "synthetic"),))
    return p, res


def lifted(n: int, T: int) -> list[tuple[PreparedTrack, LiftResult]]:
    """The first ``n`` people of ``make_large_tracks.people(T)`` lifted by the bundled teachers,
    not fitted: ``[(PreparedTrack, LiftResult)]``."""
    import torch
    from make_large_tracks import people
    from lifting.io.tracks import Track
    from lifting.lift import _model_stage, load_track_lifter

    torch.set_num_threads(1)
    kp = people(T)[:n]
    o = LiftOptions(fit="none", uncertainty_samples=0, max_figures=0)
    tracks = [Track(i, np.arange(T), k) for i, k in enumerate(kp)]
    staged = _model_stage(load_track_lifter(o)[0], tracks, "coco17", 30.0, o, None)
    return [(p, res) for _, p, res, _ in staged]


def _timed(f) -> tuple[float, object]:
    """CPU seconds of ``f()`` (``time.process_time``: one thread, steadier than wall time on a
    shared machine) and its result."""
    t0 = time.process_time()
    out = f()
    return time.process_time() - t0, out


def _reference(p: PreparedTrack, args: tuple, body: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The reference fit and placement of one track: ``joints_3d``, ``transl``."""
    y = reference_fit(*args, body_offsets=body)
    return y, reference_transl(y, p.kp, p.mask, CAMERA, p.seg, p.conf)


def measure(p: PreparedTrack, res: LiftResult, repeat: int, reference: bool) -> list[float]:
    """Best-of-``repeat`` seconds of fit_track, root_translation, _finish_track (and the
    reference fit + placement, run in turn with them), then the max abs differences of
    ``joints_3d`` and ``transl`` from the reference (NaN without it)."""
    body = run_offsets(identity_switches(p.starts, p.frame_ids))
    args = (res.joints_3d, p.kp, p.mask, p.conf, p.seg)
    o = LiftOptions(fit="track")
    best = np.full(4, np.inf)
    for _ in range(repeat):
        t_fit, y = _timed(lambda: fit_track(*args, body_offsets=body))
        t_place, _ = _timed(lambda: root_translation(y, p.kp, p.mask, CAMERA, p.seg, p.conf))
        t_all, done = _timed(lambda: _finish_track(res, p, o, CAMERA))
        t_ref, (y_ref, tr) = _timed(lambda: _reference(p, args, body)) if reference else (np.nan, (None, None))
        best = np.fmin(best, [t_fit, t_place, t_all, t_ref])
    if not reference:
        return [*best, np.nan, np.nan]
    return [*best, float(np.abs(done.joints_3d - y_ref).max()), float(np.nanmax(np.abs(done.transl - tr)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracks", type=int, default=5)
    ap.add_argument("--frames", type=int, default=10_000)
    ap.add_argument("--source", choices=("synthetic", "lifted"), default="synthetic")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-reference", action="store_true", help="skip the reference (timing only)")
    a = ap.parse_args()
    data = [synthetic(a.frames, s) for s in range(a.tracks)] if a.source == "synthetic" else lifted(a.tracks, a.frames)
    per = 10_000 / a.frames * 1e3
    rows = [measure(p, res, a.repeat, not a.no_reference) for p, res in data]
    r = np.array(rows)
    r[:, :4] *= per
    print(f"{a.source}: {len(data)} tracks of {a.frames} frames, ms per 10k-frame track (median, best of {a.repeat})")
    print(f"  fit_track {np.median(r[:, 0]):.1f}  root_translation {np.median(r[:, 1]):.1f}  "
          f"_finish_track {np.median(r[:, 2]):.1f}")
    if not a.no_reference:
        print(f"  reference fit + placement {np.median(r[:, 3]):.1f}  (ratio {np.median(r[:, 3] / r[:, 2]):.1f}x)")
        print(f"  max |joints_3d - reference| {r[:, 4].max():.3g} m, max |transl - reference| {r[:, 5].max():.3g} m")


if __name__ == "__main__":
    main()
