"""Quick accuracy check used for the issue-15 training-data ablation (BENCHMARKS.md): PA-MPJPE
(mm) with GT 2D and 5 px noise on subsets that take seconds, so short runs can be compared.

Sets: ``val`` = 30 clips of the Bandai-Namco val split (every k-th) through the DESIGN.md rig;
``val_raised45`` = the same clips, rig raised to 45 degrees (:func:`lifting.camera.eval_rig`);
``hdm05`` = every 3rd HDM05 clip through the rig.

    python scripts/bench_ablation.py NAME=CKPT [NAME=CKPT ...] [--sets val,val_raised45,hdm05]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from lifting.data import eval_views, load_mocap_npz, split_clips
from lifting.evaluate import evaluate_lifter
from lifting.models.lifters import load_lifter

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def views_for(name: str):
    """The evaluation views of one set (see the module docstring). Raises KeyError."""
    if name == "hdm05":
        clips = load_mocap_npz(SHARED / "hdm05" / "hdm05_joints.npz")
        return eval_views(clips.select(split_clips(clips.seq_names, "all")[::3]))
    elevation = {"val": None, "val_raised45": 45.0}[name]
    clips = load_mocap_npz(SHARED / "bandai_namco" / "bandai_namco_joints.npz")
    ids = split_clips(clips.seq_names, "val")
    return eval_views(clips.select(ids[:: max(1, len(ids) // 30)][:30]), elevation)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="NAME=CHECKPOINT")
    ap.add_argument("--sets", default="val,val_raised45,hdm05")
    a = ap.parse_args(argv)
    models = dict(m.split("=", 1) for m in a.models)
    sets = a.sets.split(",")
    rows = {name: [] for name in models}
    for s in sets:
        views = views_for(s)
        for name, ckpt in models.items():
            model, _ = load_lifter(ckpt)
            gt = evaluate_lifter(model, views, noise_px=0.0)["overall"]["pa_mpjpe_mm"]
            n5 = evaluate_lifter(model, views, noise_px=5.0)["overall"]["pa_mpjpe_mm"]
            rows[name].append(f"{gt:.1f} / {n5:.1f}")
    print("| model | " + " | ".join(f"{s} GT / 5 px" for s in sets) + " |")
    print("|---|" + "---|" * len(sets))
    for name, cells in rows.items():
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
