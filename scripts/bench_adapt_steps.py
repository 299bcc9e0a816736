"""Seconds per training step of the stages ``posenet3d adapt`` runs, and where a joint
fine-tuning step's time goes (issue 23: "find why the student stage costs 2.3x the teacher's
per step").

Builds, on the shared real street tracks, the teacher stage (the bundled single-frame
teacher), the student distilled from it (``--student-mode distill``) and the student
fine-tuned jointly with it (``finetune``, the default for a student), with ``adapt``'s
configs; times 5 steps of batch 256 after one untimed step (1 torch thread), then profiles 5
fine-tuning steps with cProfile (cumulative time).

    python scripts/bench_adapt_steps.py
"""
from __future__ import annotations

import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TRACKS = ROOT / ".." / "shared" / "data" / "real_tracks" / "vtest_hog_blazepose_coco17.json"


def build_stages() -> dict:
    """The three stages, on the street tracks read as ``adapt`` reads them."""
    from lifting.data import WindowSampler
    from lifting.models.checkpoint import load_checkpoint, stored_args
    from lifting.models.lifters import bundled_checkpoint
    from lifting.track_data import RealPosePool, TrackReading, load_track_2d
    from trainers.adapt import adapt_config
    from trainers.stages import TrackSources, build_stage

    split = load_track_2d(TRACKS, TrackReading(), window=1)
    sources = TrackSources(WindowSampler(split.train, 1), RealPosePool(split.train, 1), split.val)
    teacher, student = bundled_checkpoint("teacher_single"), bundled_checkpoint("student")
    t_args, s_args = stored_args(load_checkpoint(teacher)), stored_args(load_checkpoint(student))
    s_over = [f"model.init_checkpoint={student}", f"student.teacher_checkpoint={teacher}"]
    return {"teacher": build_stage("teacher", adapt_config("teacher", t_args, [f"model.init_checkpoint={teacher}"]),
                                   sources=sources),
            "student (distill)": build_stage("student", adapt_config("student", s_args, s_over), sources=sources),
            "student (finetune)": build_stage("finetune", adapt_config("finetune", s_args, s_over), sources=sources)}


def seconds_per_step(stage, n: int = 5, batch: int = 256) -> float:
    """Mean seconds of ``n`` steps after one untimed one (past the critic warm-up)."""
    stage.set_lr(100)
    stage.step(stage.sampler.sample(batch, stage.generator))
    t0 = time.perf_counter()
    for _ in range(n):
        stage.step(stage.sampler.sample(batch, stage.generator))
    return (time.perf_counter() - t0) / n


def main() -> int:
    if not TRACKS.is_file():
        print(f"error: {TRACKS} not found (the shared real tracks)", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    stages = build_stages()
    times = {name: seconds_per_step(st) for name, st in stages.items()}
    print("| stage | s/step (batch 256, 1 thread) | x teacher |\n|---|---|---|")
    for name, s in times.items():
        print(f"| {name} | {s:.3f} | {s / times['teacher']:.2f} |")
    ft = stages["student (finetune)"]
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(5):
        ft.step(ft.sampler.sample(256, ft.generator))
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(25)
    print(out.getvalue())
    print("`python scripts/bench_adapt_steps.py`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
