"""Speed benchmark for BENCHMARKS.md: lifting frames/s (batch 1 latency and batched
throughput, fp32 and bf16), the real-track `lift` end to end, training frames/s and peak
memory, on whatever machine runs it (run alone: other load distorts the numbers).

    python scripts/bench_speed.py --checkpoint lifting/assets/teacher.pt [--tracks FILE]
"""
from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lifting.lift import lift_file
from lifting.lifters import default_checkpoint, load_lifter
from lifting.options import LiftOptions
from lifting.skeletons import CANON16

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _rate(fn, n_items: int, min_s: float = 2.0) -> float:
    fn()
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_s:
        fn()
        reps += 1
    return reps * n_items / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=str(default_checkpoint()))
    ap.add_argument("--tracks", default=str(SHARED / "real_tracks" / "vtest_hog_blazepose_coco17.json"))
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--train-config", default="configs/teacher.yaml")
    a = ap.parse_args()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    model, _ = load_lifter(a.checkpoint)
    T, J = model.window, CANON16.num_joints
    g = torch.Generator().manual_seed(0)
    for dtype in (None, torch.bfloat16):
        tag = "fp32" if dtype is None else "bf16"
        for bs in (1, a.batch):
            x = torch.randn(bs, T, J, 2, generator=g)
            m = torch.ones(bs, T, J, dtype=torch.bool)

            def run():
                with torch.inference_mode(), torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
                    model(x, m)

            r = _rate(run, bs)
            extra = f", {1000.0 / r:.3f} ms/frame" if bs == 1 else ""
            print(f"lifter forward {tag} batch {bs}: {r:,.0f} windows/s{extra}")
    if Path(a.tracks).is_file():
        with tempfile.TemporaryDirectory() as d:
            s = lift_file(a.tracks, d, LiftOptions(checkpoint=a.checkpoint, max_figures=0, overwrite=True))
            t0 = time.perf_counter()
            s = lift_file(a.tracks, d, LiftOptions(checkpoint=a.checkpoint, max_figures=0, overwrite=True))
            dt = time.perf_counter() - t0
            print(f"posenet3d lift on {Path(a.tracks).name}: {s['frames_lifted']} frames in {dt:.2f} s "
                  f"(read + lift + write, no figures) = {s['frames_lifted'] / dt:,.0f} frames/s")
    from trainers.config import load_config
    from trainers.stages import TeacherStage
    from lifting.data import WindowSampler, load_mocap_npz, project_clips, split_clips

    for bf16 in (False, True):
        cfg = load_config(a.train_config, [f"train.bf16={str(bf16).lower()}"])
        clips = load_mocap_npz(SHARED / "bandai_namco" / "bandai_namco_joints.npz")
        clips = clips.select(split_clips(clips.seq_names, "test"))
        st = TeacherStage(cfg, WindowSampler(project_clips(clips, 2, 0), int(cfg.model.window)))
        bs = int(cfg.train.batch_size)
        r = _rate(lambda: st.step(st.sampler.sample(bs, st.generator)), bs * st.window, min_s=5.0)
        print(f"teacher training ({Path(a.train_config).stem}, batch {bs}, {'bf16' if bf16 else 'fp32'}): "
              f"{r:,.0f} frames/s")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
