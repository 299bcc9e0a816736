"""Accuracy benchmark (DESIGN.md §4 protocol) for BENCHMARKS.md.

Evaluates each checkpoint on the Bandai-Namco test split and on all of HDM05 (``--sets``;
also ``bandai_test_raised45``: the rig raised to 45 degrees, and ``bandai_val``), with GT 2D and
with 5 px Gaussian noise, plus the all-joints-at-root-depth reference, and prints a Markdown
table (PA-MPJPE / N-MPJPE / MPJPE in mm, PCK3D@150 mm and AUC in %).

    python scripts/bench_accuracy.py NAME=CKPT[+flip][+fit] [NAME=CKPT ...] [--out results.json]

``CKPT+fit``: every clip's lift fitted to its 2D as ``posenet3d lift --fit track`` does;
``CKPT+flip``: test-time flip augmentation (``lift --flip``); both: ``CKPT+flip+fit``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from lifting.data import eval_views, load_mocap_npz, split_clips
from lifting.evaluate import evaluate_lifter, flat_baseline
from lifting.inference import InferenceSettings
from lifting.models.lifters import load_lifter
from lifting.refine import FitWeights

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SETS = {
    "bandai_test": (SHARED / "bandai_namco" / "bandai_namco_joints.npz", "test"),
    "hdm05_all": (SHARED / "hdm05" / "hdm05_joints.npz", "all"),
    "bandai_val": (SHARED / "bandai_namco" / "bandai_namco_joints.npz", "val"),
    # the same rig raised to 45 degrees above the pelvis (surveillance-style views, issue 15)
    "bandai_test_raised45": (SHARED / "bandai_namco" / "bandai_namco_joints.npz", "test", 45.0),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", help="NAME=CHECKPOINT")
    ap.add_argument("--noise-px", type=float, default=5.0)
    ap.add_argument("--out", default=None)
    ap.add_argument("--sets", default="bandai_test,hdm05_all")
    ap.add_argument("--bf16", action="store_true", help="also evaluate every model with bfloat16 autocast")
    a = ap.parse_args()
    torch.manual_seed(0)
    models = dict(m.split("=", 1) for m in a.models)
    results: dict = {}
    for set_name in a.sets.split(","):
        path, split, *elevation = SETS[set_name]
        clips = load_mocap_npz(path)
        views = eval_views(clips.select(split_clips(clips.seq_names, split)), *elevation)
        for noise in (0.0, a.noise_px):
            key = f"{set_name}/{'gt2d' if noise == 0 else f'noise{noise:g}px'}"
            results[f"root-depth reference|{key}"] = flat_baseline(views, noise_px=noise)["overall"]
            for name, ckpt in models.items():
                path, *extras = ckpt.split("+")  # NAME=CKPT+flip+fit: as lift --flip / --fit track
                fit, flip = (FitWeights() if "fit" in extras else None), "flip" in extras
                model, _ = load_lifter(path)
                for dtype in (None, torch.bfloat16) if a.bf16 else (None,):
                    label = name if dtype is None else f"{name} (bf16)"
                    t0 = time.perf_counter()
                    how = InferenceSettings(dtype=dtype, flip=flip)
                    results[f"{label}|{key}"] = evaluate_lifter(model, views, noise_px=noise, fit=fit,
                                                                settings=how)["overall"]
                    print(f"{label} {key}: {results[f'{label}|{key}']['pa_mpjpe_mm']:.1f} mm PA "
                          f"({time.perf_counter() - t0:.1f} s)", flush=True)
    print("\n| model | set / input | PA-MPJPE | N-MPJPE | MPJPE | PCK3D | AUC |\n|---|---|---|---|---|---|---|")
    for k, r in results.items():
        name, key = k.split("|")
        print(f"| {name} | {key} | {r['pa_mpjpe_mm']:.1f} | {r['n_mpjpe_mm']:.1f} | {r['mpjpe_mm']:.1f} "
              f"| {r['pck3d']:.1f} | {r['auc']:.1f} |")
    if a.out:
        Path(a.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
