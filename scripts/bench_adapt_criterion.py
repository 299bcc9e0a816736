"""Does ``adapt``'s 3D-free selection criterion predict 3D error? (issue 20 §3)

``posenet3d adapt`` ships, per stage, the snapshot with the lowest 3D-free validation value
(:data:`trainers.adapt.SELECTION_KEY` of :func:`trainers.stages.validate_2d`, on held-out tracks)
and the starting model when no snapshot beats it. That is only worth something if the value
ranks checkpoints the way their 3D error does. This benchmark measures it on two sets with 3D:

* ``hdm05``: HDM05 single-camera tracks, 5 px noise (``scripts/make_hdm05_tracks.py``, seed 0),
  scored against the mocap in each clip's camera (PA-MPJPE);
* ``pose2sim``: the 8 real OpenPose camera folders of ``../shared/data/pose2sim``, adapted on
  all of them together and scored with ``scripts/bench_real3d.py`` (mean PA-MPJPE).

For each set, ``adapt`` (teacher stage) runs with ``--steps`` at each learning rate of
``--lrs``, saving every validated snapshot (``snapshots=True``); each snapshot and the start
is lifted (default lift options) and scored in 3D. Printed per set: every checkpoint's 3D-free
values and 3D error, and the Spearman rank correlation (scipy) of each 3D-free value with the
3D error across the checkpoints (+1: ranks them exactly as 3D does), and which snapshot
``adapt``'s rule shipped at each learning rate with its 3D error beside the unadapted one.

Usage::

    python scripts/bench_adapt_criterion.py -w /tmp/crit [--checkpoint teacher_single] [--steps 200]
        [--lrs 2e-4 1e-3] [--sets hdm05 pose2sim] [--out res.json]
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
SHARED = ROOT / ".." / "shared" / "data"
HDM05 = SHARED / "hdm05" / "hdm05_joints.npz"


def _inputs(name: str, work: Path) -> tuple[list[str], callable]:
    """The adapt inputs of a set and its scorer ``checkpoint -> 3D PA-MPJPE mm``."""
    from lifting.lift import lift_file
    from lifting.options import LiftOptions

    if name == "hdm05":
        import make_hdm05_tracks

        tracks = work / "hdm05_tracks_s0.json"
        if not tracks.is_file():
            make_hdm05_tracks.main(["-o", str(tracks), "--seed", "0", "--data", str(HDM05)])

        def score(ckpt: str) -> float:
            dest = work / "lift" / Path(ckpt).stem
            lift_file(tracks, dest, LiftOptions(checkpoint=ckpt, max_figures=0, progress=False, overwrite=True,
                                                uncertainty="off"))
            return make_hdm05_tracks.score(dest, tracks.with_suffix(".cameras.npz"))["pa_mpjpe_mm"]
        return [str(tracks)], score
    if name == "pose2sim":
        import bench_real3d as b

        folders = [str(b.POSE2SIM / t / c) for t, _ in b.TRIALS for c in b.CAMS]
        return folders, lambda ckpt: b.run_model(ckpt, work / "p2s" / Path(ckpt).stem)["mean"]["pa_mpjpe"]
    raise ValueError(f"unknown set {name!r} (hdm05, pose2sim)")


def run_set(name: str, work: Path, checkpoint: str, steps: int, lrs: list[float]) -> dict:
    """Adapt at each learning rate with snapshots, score every checkpoint; returns the rows and
    the Spearman correlations."""
    from scipy.stats import spearmanr

    from lifting.models.lifters import resolve_checkpoint
    from lifting.options import LiftOptions
    from trainers.adapt import AdaptSettings, adapt

    inputs, score = _inputs(name, work)
    rows = {"start": {"pa_mpjpe_mm": score(str(resolve_checkpoint(checkpoint)))}}
    shipped = {}
    for lr in lrs:
        out = work / f"adapt_lr{lr:g}"
        t0 = time.perf_counter()
        s = adapt(inputs, out, checkpoint, AdaptSettings(steps=steps, snapshots=True, overrides=(f"train.lr={lr}",)),
                  LiftOptions(max_figures=0, progress=False, overwrite=True), progress=False)
        by_step = s["selection"]["teacher"]["by_step"]
        rows["start"] |= {k: v for k, v in by_step[0].items()}
        for f in sorted((out / "runs" / "teacher").glob("step_*.pt")):
            step = int(f.stem.split("_")[1])
            rows[f"lr {lr:g} step {step}"] = {"pa_mpjpe_mm": score(str(f))} | by_step[step]
        chosen = s["selection"]["teacher"]["chosen_step"]
        shipped[f"lr {lr:g}"] = {"chosen_step": chosen, "pa_mpjpe_mm": rows["start"]["pa_mpjpe_mm"] if chosen == 0
                                 else rows[f"lr {lr:g} step {chosen}"]["pa_mpjpe_mm"]}
        print(f"[{name}] lr {lr:g}: adapt {time.perf_counter() - t0:.0f} s, chosen step {chosen}", flush=True)
    keys = [k for k in rows["start"] if k != "pa_mpjpe_mm"]
    err = [r["pa_mpjpe_mm"] for r in rows.values()]
    rho = {k: round(float(spearmanr([r[k] for r in rows.values()], err).statistic), 2) for k in keys}
    return {"inputs": inputs, "rows": rows, "spearman": rho, "shipped": shipped}


def table(name: str, res: dict) -> str:
    keys = list(res["spearman"])
    lines = [f"| {name} checkpoint | 3D PA-MPJPE mm | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys)]
    for label, r in res["rows"].items():
        lines.append(f"| {label} | {r['pa_mpjpe_mm']} | " + " | ".join(f"{r[k]:.4f}" for k in keys) + " |")
    lines.append("| **Spearman with 3D error** | | " + " | ".join(str(res["spearman"][k]) for k in keys) + " |")
    start = res["rows"]["start"]["pa_mpjpe_mm"]
    for lr, r in res.get("shipped", {}).items():
        lines.append(f"\n{name}, {lr}: adapt ships step {r['chosen_step']} ({'the start' if not r['chosen_step'] else 'adapted'}): "
                     f"{r['pa_mpjpe_mm']} mm vs {start} mm unadapted")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-w", "--work", required=True)
    p.add_argument("--checkpoint", default="teacher_single", help="teacher to adapt (file or bundled name)")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--lrs", type=float, nargs="+", default=[2e-4, 1e-3])
    p.add_argument("--sets", nargs="+", default=["hdm05", "pose2sim"])
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    res = {}
    for name in a.sets:
        work = Path(a.work) / name
        work.mkdir(parents=True, exist_ok=True)
        res[name] = run_set(name, work, a.checkpoint, a.steps, a.lrs)
        print("\n" + table(name, res[name]) + "\n", flush=True)
    cmd = "python scripts/bench_adapt_criterion.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    print(f"`{cmd}`")
    if a.out:
        Path(a.out).write_text(json.dumps({"command": cmd, "sets": res}, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
