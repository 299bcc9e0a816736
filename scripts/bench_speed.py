"""Speed benchmark for BENCHMARKS.md, on whatever machine runs it (run alone: other load
distorts the numbers).

Reports: whether the CPU has native bf16 (:func:`lifting.inference.native_bf16`), the thread
choice (:func:`lifting.inference.choose_threads`), fp32 lifting throughput (batched frames/s)
and batch-1 latency (ms per frame, one window per forward pass) through the real inference
path :func:`lifting.inference.lift_frames` for the default temporal model (T=27, width 512,
3 blocks) at the chosen stride and at stride 1 and for the single-frame model, the whole
``posenet3d lift`` on the real tracks, optionally the accuracy cost of the stride on the
Bandai test rig, and teacher training frames/s.

    python scripts/bench_speed.py [--temporal CKPT] [--single CKPT] [--accuracy CKPT] [--train]

Without ``--temporal`` the temporal model is the bundled teacher inflated to T=27
(:meth:`lifting.models.teacher.Lifter.init_from`): right for speed, meaningless for accuracy.
"""
from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lifting.inference import DEFAULT_STRIDE, InferenceSettings, choose_threads, lift_frames, metric_scale, native_bf16
from lifting.lift import lift_file
from lifting.models.lifters import bundled_single_frame, default_checkpoint, load_lifter
from lifting.options import LiftOptions
from lifting.skeletons import CANON16
from lifting.models.teacher import Lifter, TeacherConfig

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
BANDAI = SHARED / "bandai_namco" / "bandai_namco_joints.npz"


def _seconds(fn, min_s: float = 2.0) -> float:
    """Mean seconds per call of ``fn`` (one warm-up call, then at least ``min_s`` seconds)."""
    fn()
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_s or reps < 2:
        fn()
        reps += 1
    return (time.perf_counter() - t0) / reps


def _poses(n: int, run: int = 300, seed: int = 0):
    """``n`` frames of plausible moving 2D (a standing pose plus noise) in runs of ``run``."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(CANON16.num_joints, 2, generator=g) * 60 + 400
    kp = base + torch.cumsum(torch.randn(n, CANON16.num_joints, 2, generator=g), 0) * 0.5
    seg = np.unique(np.r_[np.arange(0, n, run), n])
    return kp, torch.ones(n, CANON16.num_joints, dtype=torch.bool), torch.rand(n, CANON16.num_joints, generator=g), seg


def _speed(name: str, model, stride: int, batch: int, n: int) -> None:
    kp, mask, conf, seg = _poses(n)
    dt = _seconds(lambda: lift_frames(model, kp, mask, seg, conf,
                                      InferenceSettings(batch_size=batch, stride=stride)))
    kp1, mask1, conf1, seg1 = _poses(270, run=270)
    dt1 = _seconds(lambda: lift_frames(model, kp1, mask1, seg1, conf1,
                                       InferenceSettings(batch_size=1, stride=stride)))
    print(f"{name} stride {min(stride, model.window)}: fp32 batched ({batch} windows/pass) {n / dt:,.0f} frames/s; "
          f"batch 1 {1000 * dt1 / 270:.3f} ms/frame")


def _accuracy(ckpt: str, strides: list[int], noise_px: float) -> None:
    from lifting.data import eval_views, load_mocap_npz, split_clips
    from lifting.evaluate import evaluate_predictions

    model, _ = load_lifter(ckpt)
    clips = load_mocap_npz(BANDAI)
    views = eval_views(clips.select(split_clips(clips.seq_names, "test")))
    g = torch.Generator().manual_seed(0)
    kp = torch.from_numpy(views.keypoints_2d)
    kp = kp + noise_px * torch.randn(kp.shape, generator=g)
    mask = torch.ones(kp.shape[1:3], dtype=torch.bool)
    for s in strides:
        pred = torch.stack([lift_frames(model, kp[v], mask, views.seq_offsets,
                                         settings=InferenceSettings(stride=s)) for v in range(len(kp))])
        r = evaluate_predictions(metric_scale(pred, views.skeleton), views)["overall"]
        print(f"accuracy {Path(ckpt).name} Bandai test rig, {noise_px:g} px noise, stride {s}: "
              f"MPJPE {r['mpjpe_mm']:.1f} mm, PA-MPJPE {r['pa_mpjpe_mm']:.1f} mm (n={r['n']})")


def _train_speed(config: str) -> None:
    from trainers.config import load_config
    from trainers.stages import TeacherStage
    from lifting.data import WindowSampler, load_mocap_npz, project_clips, split_clips

    cfg = load_config(config, [])
    clips = load_mocap_npz(BANDAI)
    clips = clips.select(split_clips(clips.seq_names, "test"))
    st = TeacherStage(cfg, WindowSampler(project_clips(clips, 2, 0), int(cfg.model.window)))
    bs = int(cfg.train.batch_size)
    dt = _seconds(lambda: st.step(st.sampler.sample(bs, st.generator)), min_s=5.0)
    print(f"teacher training ({Path(config).stem}, batch {bs}, fp32): {bs * st.window / dt:,.0f} frames/s, "
          f"{1 / dt:.2f} it/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--temporal", default=None, help="temporal teacher checkpoint (default: bundled teacher "
                                                     "inflated to T=27, width 512, 3 blocks)")
    ap.add_argument("--single", default=None, help="single-frame teacher (default: the bundled teacher_single, "
                                                   "else the bundled teacher)")
    ap.add_argument("--tracks", default=str(SHARED / "real_tracks" / "vtest_hog_blazepose_coco17.json"))
    ap.add_argument("--stride", type=int, default=DEFAULT_STRIDE)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--frames", type=int, default=100_000, help="frames of the batched measurement")
    ap.add_argument("--threads", type=int, default=0, help="0 = auto (as posenet3d lift)")
    ap.add_argument("--accuracy", default=None, help="trained temporal checkpoint: PA-MPJPE at stride 1 vs --stride")
    ap.add_argument("--noise-px", type=float, default=5.0, help="2D noise of the accuracy check")
    ap.add_argument("--train", action="store_true", help="also time teacher training")
    ap.add_argument("--train-config", default="configs/teacher_detector_temporal.yaml")
    a = ap.parse_args()
    n_threads, why = choose_threads(a.threads)
    torch.set_num_threads(n_threads)
    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"native bf16: {'yes' if native_bf16('cpu') else 'no'}; threads: {why}")

    single_ckpt = a.single or bundled_single_frame() or default_checkpoint()
    single, _ = load_lifter(single_ckpt)
    if a.temporal:
        temporal, _ = load_lifter(a.temporal)
        tname = Path(a.temporal).name
    else:
        src, _ = load_lifter(default_checkpoint())
        cfg = dict(src.config, window=27, use_confidence=True)
        temporal = Lifter.from_config(TeacherConfig.from_dict(cfg)).eval()
        if src.window == 1:
            temporal.init_from(src)
        tname = f"inflated {Path(default_checkpoint()).name}"
    c = temporal.config
    label = f"temporal ({tname}, T={c['window']}, width {c['width']}, {c['n_blocks']} blocks)"
    _speed(label, temporal, a.stride, a.batch, a.frames)
    _speed(label, temporal, 1, a.batch, a.frames // 4)
    _speed(f"single-frame ({Path(single_ckpt).name})", single, 1, a.batch, a.frames)

    if Path(a.tracks).is_file():
        runs = [("default models", LiftOptions(max_figures=0, overwrite=True, stride=a.stride))]
        if a.temporal:
            runs += [(f"{tname} stride {s}", LiftOptions(checkpoint=a.temporal, max_figures=0, overwrite=True,
                                                         stride=s)) for s in (a.stride, 1)]
        for what, opts in runs:
            with tempfile.TemporaryDirectory() as d:
                lift_file(a.tracks, d, opts)
                t0 = time.perf_counter()
                s = lift_file(a.tracks, d, opts)
                dt = time.perf_counter() - t0
            print(f"posenet3d lift ({what}) on {Path(a.tracks).name}: {s['frames_lifted']} frames in {dt:.2f} s "
                  f"(read + track + lift + write, no figures) = {s['frames_lifted'] / dt:,.0f} frames/s; "
                  f"models {sorted(s['models'])}")
    if a.accuracy:
        _accuracy(a.accuracy, sorted({1, a.stride}), a.noise_px)
    if a.train:
        _train_speed(a.train_config)
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
