"""Per-joint uncertainty benchmark (lifting.uncertainty) for BENCHMARKS.md.

Bandai-Namco through the evaluation rig (DESIGN.md §4, as scripts/bench_accuracy.py): every
frame is lifted (clean + K perturbed copies per view, one batched pass; single-frame models
only the scored frames), every ``--stride``-th frame is scored. Per non-root joint (the root is at 0
by definition): predicted ``joints_3d_std`` (times the frame's Procrustes scale, so it is in the
ground truth's metres) against the actual error after Procrustes alignment of the frame
(:func:`lifting.metrics.procrustes_align`). Reported: Spearman rank correlation, the RMS ratio
actual / predicted, the fraction of joints with error <= 1 and <= 2 predicted stds, and a
decile table (predicted std -> mean / RMS actual error, mm).

Inputs: GT 2D, ``--noise-px`` Gaussian pixel noise, and ``--input-oks`` OKS-scaled noise
(the noise model of lifting.uncertainty itself, at a typical detector's level).

``--fit``: fit the calibration factor (RMS actual / RMS raw spread, pooled over the three
inputs) on the *val* split for each ``--levels`` value; then check on *test* with the fitted
factor of the level with the highest val Spearman.

``--method flip``: the flip uncertainty (:func:`lifting.uncertainty.flip_spread`) instead:
half the disagreement of the lift and the mirrored lift mapped back, against the error of
their average (the lift ``posenet3d lift`` reports); ``--fit`` fits its factor and floor by
maximum likelihood of the errors under an isotropic 3D Gaussian (:func:`fit_flip`) on *val*.

    python scripts/bench_uncertainty.py CKPT [--fit] [--levels 1,2,3] [--stride 10] [--val-clip-stride 1]
    python scripts/bench_uncertainty.py CKPT --method flip [--fit]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from lifting.data import eval_views, load_mocap_npz, split_clips
from lifting.inference import flip_average, lift_frames, metric_scale, mirror_back, mirror_permutation
from lifting.models.lifters import load_lifter
from lifting.metrics import procrustes_align, procrustes_fit
from lifting.skeletons import CANON16
from lifting.uncertainty import (CALIBRATION, DEFAULT_LEVEL_OKS, DEFAULT_SAMPLES, FLIP_FACTOR, FLIP_FLOOR_M,
                                 FlipSpread, UncertaintySettings, flip_spread, joint_spread, perturb_keypoints)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
BANDAI = SHARED / "bandai_namco" / "bandai_namco_joints.npz"
CHI3 = {1: 0.608, 2: 0.993}  # P(|e| <= k * RMS) for an isotropic 3D Gaussian error (chi^2_3 CDF at 3 k^2)


def noisy_input(views, noise: tuple[str, float], seed: int = 0) -> torch.Tensor:
    """``(4, N, J, 2)`` rig 2D with ``("px", sigma)`` Gaussian pixel noise (as
    lifting.evaluate) or ``("oks", u)`` the OKS-scaled noise of lifting.uncertainty."""
    kind, amount = noise
    kp = torch.from_numpy(views.keypoints_2d)
    if kind == "px" and amount > 0:
        kp = kp + amount * torch.randn(kp.shape, generator=torch.Generator().manual_seed(seed))
    elif kind == "oks":
        ones = np.ones(kp.shape[1:3], bool)
        kp = torch.stack([torch.from_numpy(perturb_keypoints(kp[v].numpy(), ones, 1, amount, seed + 100 + v)[0])
                          for v in range(kp.shape[0])])
    return kp


def spread_and_error(model, views, noise: tuple[str, float], level: float, samples: int, stride: int, seed: int = 0):
    """Raw spread (calibration 1, in the GT frame via the Procrustes scale) and PA error,
    both ``(M,)`` metres over the scored non-root joints of all views, for input ``noise``
    (:func:`noisy_input`)."""
    kp_all = noisy_input(views, noise, seed)
    lift = lambda k, m, o: metric_scale(lift_frames(model, torch.from_numpy(k), torch.from_numpy(m), o),  # noqa: E731
                                        CANON16).numpy()
    keep, offsets, gt_all = np.arange(0, kp_all.shape[1], stride), views.seq_offsets, views.joints_3d
    if model.window == 1:  # single-frame model: lift only the scored frames (each its own sequence)
        kp_all, gt_all, offsets, keep = kp_all[:, keep], gt_all[:, keep], np.arange(len(keep) + 1), np.arange(len(keep))
    nonroot = np.arange(CANON16.num_joints) != CANON16.root_index
    stds, errs = [], []
    for v in range(kp_all.shape[0]):
        kp = kp_all[v].numpy().astype(np.float32)
        mask = np.ones(kp.shape[:2], bool)
        std = joint_spread(lift, kp, mask, offsets, UncertaintySettings(samples, level, seed + 1 + v, 1.0))[keep]
        pred = torch.from_numpy(lift(kp, mask, offsets)[keep])
        gt = torch.from_numpy(gt_all[v][keep])
        err = (procrustes_align(pred, gt) - gt).norm(dim=-1).numpy()
        scale = procrustes_fit(pred, gt)[1].numpy()
        stds.append((std * scale[:, None])[:, nonroot].ravel())
        errs.append(err[:, nonroot].ravel())
    return np.concatenate(stds), np.concatenate(errs)


def flip_half_and_error(model, views, noise: tuple[str, float], stride: int, seed: int = 0):
    """Half the flip disagreement (:func:`lifting.uncertainty.flip_spread` with factor 1, floor
    0; in the ground truth's metres via the Procrustes scale) and the PA error of the
    flip-averaged lift, both ``(M,)`` metres over the scored non-root joints of all views."""
    kp_all = noisy_input(views, noise, seed)
    perm = mirror_permutation(CANON16.num_joints)
    sign = torch.tensor([-1.0, 1.0])
    nonroot = np.arange(CANON16.num_joints) != CANON16.root_index
    halves, errs = [], []
    for v in range(kp_all.shape[0]):
        kp, offsets = kp_all[v].float(), views.seq_offsets
        keep, gt_all = np.arange(0, kp.shape[0], stride), views.joints_3d[v]
        if model.window == 1:  # single-frame model: lift only the scored frames
            kp, gt_all, offsets, keep = kp[keep], gt_all[keep], np.arange(len(keep) + 1), np.arange(len(keep))
        mask = torch.ones(kp.shape[:2], dtype=torch.bool)
        clean = lift_frames(model, kp, mask, offsets)
        mirror = lift_frames(model, kp[:, perm] * sign, mask, offsets)
        pred = flip_average(clean, mirror)[keep]
        gt = torch.from_numpy(gt_all[keep])
        scale = procrustes_fit(pred, gt)[1].numpy()[:, None, None]
        back = mirror_back(mirror)[keep].numpy()
        half = flip_spread(clean[keep].numpy() * scale, back * scale, FlipSpread(1.0, 0.0))
        err = (procrustes_align(pred, gt) - gt).norm(dim=-1).numpy()
        halves.append(half[:, nonroot].ravel())
        errs.append(err[:, nonroot].ravel())
    return np.concatenate(halves), np.concatenate(errs)


def fit_flip(half: np.ndarray, err: np.ndarray) -> tuple[float, float]:
    """``(factor, floor_m)`` maximising the likelihood of the errors ``err (M,)`` metres under
    an isotropic 3D Gaussian of RMS ``sqrt((factor half)^2 + floor^2)`` (per axis
    ``sigma^2 = RMS^2 / 3``): the negative log-likelihood per joint is
    ``1.5 log sigma^2 + err^2 / (2 sigma^2)`` (the Maxwell density's ``err``-dependent part)."""
    from scipy.optimize import minimize

    def nll(p):
        sig2 = ((np.exp(p[0]) * half) ** 2 + np.exp(p[1]) ** 2) / 3
        return float(np.mean(1.5 * np.log(sig2) + err ** 2 / (2 * sig2)))

    r = minimize(nll, [np.log(2.0), np.log(0.05)], method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-9})
    return float(np.exp(r.x[0])), float(np.exp(r.x[1]))


def report(std: np.ndarray, err: np.ndarray) -> dict:
    """Spearman (over all joints, and over the 15 joint types' means), RMS ratio,
    within-1/2-std fractions and deciles of ``std`` (metres; ``(M,)`` blocks of 15 joints)."""
    edges = np.quantile(std, np.linspace(0, 1, 11))
    dec = np.clip(np.searchsorted(edges, std, side="right") - 1, 0, 9)
    rows = [(1000 * std[dec == d].mean(), 1000 * err[dec == d].mean(), 1000 * np.sqrt((err[dec == d] ** 2).mean()))
            for d in range(10)]
    safe = np.maximum(std, 1e-12)
    joint = np.arange(len(std)) % (CANON16.num_joints - 1)
    per_joint = [(std[joint == j].mean(), err[joint == j].mean()) for j in range(CANON16.num_joints - 1)]
    return {"spearman": float(spearmanr(std, err)[0]), "joint_spearman": float(spearmanr(*zip(*per_joint))[0]), "rms_ratio": float(np.sqrt((err ** 2).mean() / (std ** 2).mean())),
            "within1": float((err <= safe).mean()), "within2": float((err <= 2 * safe).mean()),
            "mean_std_mm": float(1000 * std.mean()), "mean_err_mm": float(1000 * err.mean()), "deciles": rows,
            "n": int(len(std))}


def views_of(split: str, clip_stride: int = 1):
    """Rig views of every ``clip_stride``-th clip of a Bandai-Namco split."""
    clips = load_mocap_npz(BANDAI)
    return eval_views(clips.select(split_clips(clips.seq_names, split)[::clip_stride]))


def fit_sampled(model, a, inputs) -> tuple[float, float]:
    """``(level, factor)`` of the perturbed copies: the level of the highest val Spearman of
    ``a.levels`` and its RMS-matching factor (prints the val table)."""
    val = views_of("val", a.val_clip_stride)
    print("| level u (OKS) | val Spearman | val factor (RMS err / RMS spread) | s |\n|---|---|---|---|")
    best = None
    for u in (float(x) for x in a.levels.split(",")):
        t0 = time.perf_counter()
        parts = [spread_and_error(model, val, n, u, a.samples, a.stride) for n in inputs]
        std, err = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        r = report(std, err)
        print(f"| {u:g} | {r['spearman']:.3f} | {r['rms_ratio']:.2f} | {time.perf_counter() - t0:.0f} |", flush=True)
        if best is None or r["spearman"] > best[0]:
            best = (r["spearman"], u, r["rms_ratio"])
    print(f"\nchosen: level {best[1]:g}, factor {best[2]:.3f}\n")
    return best[1], best[2]


def fit_flip_on_val(model, a, inputs) -> FlipSpread:
    """The flip uncertainty's factor and floor fitted on val (:func:`fit_flip`, inputs pooled)."""
    val = views_of("val", a.val_clip_stride)
    parts = [flip_half_and_error(model, val, n, a.stride) for n in inputs]
    factor, floor = fit_flip(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    print(f"val (every {a.val_clip_stride}th clip): maximum-likelihood factor {factor:.3f}, floor {1000 * floor:.1f} mm\n")
    return FlipSpread(factor, floor)


def print_test(std_and_error, inputs, title: str) -> None:
    """The Bandai *test* tables of ``std_and_error(views, noise) -> (std (M,), err (M,))`` metres."""
    test = views_of("test")
    print(f"Bandai test, {title}:\n")
    print("| input | Spearman | per-joint-type Spearman | RMS err / RMS std | err <= 1 std | err <= 2 std | mean std mm | mean err mm | n |\n"
          "|---|---|---|---|---|---|---|---|---|")
    tables = {}
    for noise in inputs:
        r = report(*std_and_error(test, noise))
        name = {"px": "GT 2D" if noise[1] == 0 else f"{noise[1]:g} px noise", "oks": f"OKS noise u={noise[1]:g}"}[noise[0]]
        tables[name] = r["deciles"]
        print(f"| {name} | {r['spearman']:.3f} | {r['joint_spearman']:.2f} | {r['rms_ratio']:.2f} | {100 * r['within1']:.1f}% "
              f"| {100 * r['within2']:.1f}% | {r['mean_std_mm']:.1f} | {r['mean_err_mm']:.1f} | {r['n']} |", flush=True)
    print(f"\n(isotropic 3D Gaussian reference: {100 * CHI3[1]:.1f}% within 1 RMS, {100 * CHI3[2]:.1f}% within 2)\n")
    print("| decile of predicted std | " + " | ".join(f"{n}: std / mean err / RMS err mm" for n in tables)
          + " |\n|---|" + "---|" * len(tables))
    for d in range(10):
        print(f"| {d + 1} | " + " | ".join(f"{t[d][0]:.1f} / {t[d][1]:.1f} / {t[d][2]:.1f}" for t in tables.values())
              + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="teacher or student checkpoint, or 'teacher' / 'student' (bundled)")
    ap.add_argument("--method", choices=["sampled", "flip"], default="sampled")
    ap.add_argument("--samples", type=int, default=DEFAULT_SAMPLES)
    ap.add_argument("--level", type=float, default=DEFAULT_LEVEL_OKS, help="OKS units (without --fit)")
    ap.add_argument("--calibration", type=float, default=CALIBRATION, help="factor (without --fit)")
    ap.add_argument("--fit", action="store_true", help="fit level and factor (flip: factor and floor) on val first")
    ap.add_argument("--levels", default="0.5,1,2", help="levels tried by --fit")
    ap.add_argument("--noise-px", type=float, default=5.0)
    ap.add_argument("--input-oks", type=float, default=1.5,
                    help="third test input: OKS-scaled noise of this level (1.5: a typical matched detection)")
    ap.add_argument("--stride", type=int, default=10, help="score every N-th frame")
    ap.add_argument("--val-clip-stride", type=int, default=1,
                    help="--fit uses every N-th val clip (temporal models lift every frame of the clips used)")
    a = ap.parse_args()
    if not BANDAI.exists():
        sys.exit(f"{BANDAI} not found (shared data)")
    model, _ = load_lifter(a.checkpoint)
    print(f"`python scripts/bench_uncertainty.py {' '.join(sys.argv[1:])}` (every {a.stride}th frame, "
          f"window {model.window})\n")
    inputs = [("px", 0.0), ("px", a.noise_px), ("oks", a.input_oks)]
    if a.method == "flip":
        f = fit_flip_on_val(model, a, inputs) if a.fit else FlipSpread(FLIP_FACTOR, FLIP_FLOOR_M)

        def flip_std(views, noise):
            half, err = flip_half_and_error(model, views, noise, a.stride)
            return np.sqrt((f.factor * half) ** 2 + f.floor_m ** 2), err

        print_test(flip_std, inputs, f"flip uncertainty, factor {f.factor:.3f}, floor {1000 * f.floor_m:.1f} mm")
        return
    level, factor = fit_sampled(model, a, inputs) if a.fit else (a.level, a.calibration)
    print_test(lambda views, noise: (lambda se: (factor * se[0], se[1]))(
        spread_and_error(model, views, noise, level, a.samples, a.stride)), inputs,
        f"K = {a.samples} perturbed copies, level {level:g} OKS, calibration {factor:.3f}")


if __name__ == "__main__":
    main()
