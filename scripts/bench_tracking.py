"""Tracking benchmark for BENCHMARKS.md ("Tracking"): strip the track ids of detections,
re-track them with :func:`lifting.io.tracking.track_detections`, and score the new ids
against the original ones with the standard MOT identity metrics of ``motmetrics``
(IDF1 / IDP / IDR, Ristani et al. ECCV-W 2016; ID switches and MOTA, Bernardin &
Stiefelhagen 2008).  Detections are fixed, so only association is scored: a hypothesis
matches the ground truth object of the *same detection* (distance 0), nothing else.

Inputs:
* a synthetic multi-person sequence with exact ids (people crossing, missed frames and
  occlusion gaps, spurious detections; :func:`synthetic_sequence`), also used to tune the
  defaults (``--sweep``);
* the shared real tracks (their ids come from a greedy IoU tracker with gaps <= 5 frames, so
  they fragment and contain false positives: a reference, not ground truth);
* the 1 M-record large input of ``scripts/make_large_tracks.py`` for speed (detections/s) and
  peak memory of the tracking call alone (tracemalloc), with 1 thread.

    python scripts/bench_tracking.py [--real PATH] [--large PATH] [--sweep]

Needs the ``dev`` extra (``motmetrics``).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc

import numpy as np

from lifting.io.tracking import TrackerConfig, oks_sigmas, track_detections
from lifting.io.readers import read_coco_tracks
from lifting.skeletons import COCO17

DEFAULT_REAL = os.path.join("..", "shared", "data", "real_tracks", "vtest_hog_blazepose_coco17.json")
EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "lifting", "assets", "example_track.json")
COSTS = ("oks+iou", "oks", "iou")
METRICS = ["idf1", "idp", "idr", "num_switches", "mota", "num_false_positives", "num_misses"]


# --------------------------------------------------------------------------- data


def flatten(trackset) -> dict[str, np.ndarray]:
    """Per-detection arrays of a TrackSet: frames (N,), keypoints (N, K, 3), boxes (N, 4)
    (NaN where absent), ids (N,) = the original track ids."""
    tracks = trackset.tracks
    boxes = [t.bbox if t.bbox is not None else np.full((len(t), 4), np.nan, np.float32) for t in tracks]
    return {
        "frames": np.concatenate([t.frame_ids for t in tracks]),
        "keypoints": np.concatenate([t.keypoints for t in tracks]),
        "boxes": np.concatenate(boxes),
        "ids": np.concatenate([np.full(len(t), t.track_id, np.int64) for t in tracks]),
    }


def synthetic_sequence(seed: int = 0, n_people: int = 10, n_frames: int = 300, fps: float = 10.0,
                       size: tuple[int, int] = (768, 576)) -> dict[str, np.ndarray]:
    """A street-like scene with exact identities, modelled on the shared real tracks (10 fps,
    768 x 576 px, people 80-130 px tall).

    Each person walks at 0.3-1.0 body heights/s (3-10 % of the height per frame at 10 fps)
    mostly left-right, so paths cross, with a slowly turning heading, using the articulated
    poses of the bundled example track (scaled to the person's height).  Keypoint noise 1.5 %
    of the height; 10 % of joints dropped (confidence 0); each person-frame missed with
    probability 0.08 plus occlusion gaps of 2-6 frames (2 per person on average); people are
    detected only inside the image.  Spurious detections: on average 0.5 per frame, lasting
    1-2 frames, random pose at a random place, confidence U(0.15, 0.6), a quarter of them
    tiny (10-20 px).  Boxes = keypoint extent padded by 10 %.

    Returns:
        ``frames (N,)``, ``keypoints (N, 17, 3)`` px, ``boxes (N, 4)`` px, ``ids (N,)`` with
        the person index, ``-1`` for spurious detections.
    """
    rng = np.random.default_rng(seed)
    poses = _example_poses()  # (P, 17, 2), unit height, pelvis at the origin
    w, h = size
    rows = []
    for p in range(n_people):
        height = rng.uniform(80, 130)
        speed = rng.uniform(0.3, 1.0) * height / fps
        heading = rng.choice([0.0, np.pi]) + rng.normal(0, 0.3)
        start = rng.integers(0, n_frames // 2)
        pos = np.array([rng.uniform(0.1, 0.9) * w, rng.uniform(0.3, 0.85) * h])
        phase = rng.integers(len(poses))
        gaps = set()
        for _ in range(rng.poisson(2)):
            g0 = rng.integers(start, n_frames)
            gaps.update(range(g0, g0 + rng.integers(2, 7)))
        for t in range(start, n_frames):
            heading += rng.normal(0, 0.05)
            pos = pos + speed * np.array([np.cos(heading), 0.3 * np.sin(heading)])
            if not (0 <= pos[0] < w and 0 <= pos[1] < h) or t in gaps or rng.random() < 0.08:
                continue
            kp = _noisy(poses[(phase + t) % len(poses)] * height + pos, height, rng, conf=(0.6, 1.0))
            rows.append((t, kp, p))
    for t in range(n_frames):
        for _ in range(rng.poisson(0.25)):  # each lasts 1-2 frames: 0.5 per frame on average
            height = rng.uniform(10, 20) if rng.random() < 0.25 else rng.uniform(60, 130)
            kp0 = poses[rng.integers(len(poses))] * height + rng.uniform([0, 0], [w, h])
            for dt in range(rng.integers(1, 3)):
                rows.append((t + dt, _noisy(kp0, height, rng, conf=(0.15, 0.6)), -1))
    rows = [r for r in rows if r[0] < n_frames]
    kp = np.stack([r[1] for r in rows])
    return {"frames": np.array([r[0] for r in rows], np.int64), "keypoints": kp, "boxes": _padded_boxes(kp),
            "ids": np.array([r[2] for r in rows], np.int64)}


def _example_poses() -> np.ndarray:
    """``(P, 17, 2)`` poses of the bundled example track, pelvis-centred, unit height."""
    kp = read_coco_tracks(EXAMPLE).tracks[0].keypoints[..., :2].astype(np.float64)
    kp = kp - kp[:, 11:13].mean(1, keepdims=True)
    return kp / np.ptp(kp[..., 1], axis=1)[:, None, None]


def _noisy(xy: np.ndarray, height: float, rng, conf: tuple[float, float]) -> np.ndarray:
    kp = np.empty((17, 3))
    kp[:, :2] = xy + rng.normal(0, 0.015 * height, xy.shape)
    kp[:, 2] = rng.uniform(*conf, 17) * (rng.random(17) >= 0.1)
    return kp


def _padded_boxes(kp: np.ndarray) -> np.ndarray:
    lo, hi = kp[..., :2].min(1), kp[..., :2].max(1)
    pad = 0.1 * (hi - lo)
    return np.concatenate([lo - pad, hi - lo + 2 * pad], 1)


# --------------------------------------------------------------------------- scoring


def identity_metrics(frames: np.ndarray, gt: np.ndarray, hyp: np.ndarray) -> dict[str, float]:
    """motmetrics summary of hypothesis ids ``hyp`` against ground-truth ids ``gt`` (both
    ``(N,)`` per detection, ``-1`` = no object / no hypothesis)."""
    import motmetrics as mm

    acc = mm.MOTAccumulator(auto_id=False)
    order = np.argsort(frames, kind="stable")
    bounds = np.flatnonzero(np.r_[True, np.diff(frames[order]) != 0, True])
    for a, b in zip(bounds[:-1], bounds[1:]):
        rows = order[a:b]
        g, h = rows[gt[rows] >= 0], rows[hyp[rows] >= 0]
        dist = np.where(g[:, None] == h[None], 0.0, np.nan)  # a hypothesis is its own detection
        acc.update(gt[g].tolist(), hyp[h].tolist(), dist, frameid=int(frames[rows[0]]))
    summary = mm.metrics.create().compute(acc, metrics=METRICS, name="run")
    return {m: float(summary[m].iloc[0]) for m in METRICS}


def score(data: dict, config: TrackerConfig) -> dict:
    res = track_detections(data["frames"], data["keypoints"], oks_sigmas(COCO17.joint_names), data["boxes"], config)
    return {**identity_metrics(data["frames"], data["ids"], res.track_ids), "n_tracks": res.stats["n_tracks"],
            "n_gt": len(set(data["ids"][data["ids"] >= 0].tolist()))}


def table(rows: list[tuple[str, dict]]) -> str:
    head = "| input | tracker | IDF1 | IDP | IDR | ID sw. | MOTA | FP | FN | tracks (GT) |\n|---|---|---|---|---|---|---|---|---|---|"
    lines = [head]
    for name, m in rows:
        lines.append(f"| {name} | {100 * m['idf1']:.1f} | {100 * m['idp']:.1f} | {100 * m['idr']:.1f} | "
                     f"{m['num_switches']:.0f} | {100 * m['mota']:.1f} | {m['num_false_positives']:.0f} | "
                     f"{m['num_misses']:.0f} | {m['n_tracks']} ({m['n_gt']}) |")
    return "\n".join(lines)


def synthetic_benchmark(seeds: range) -> dict[str, np.ndarray]:
    """Several :func:`synthetic_sequence` runs back to back (frames and ids offset, 50 empty
    frames between runs so no track survives from one to the next)."""
    parts = []
    for s in seeds:
        d = synthetic_sequence(seed=s)
        parts.append({**d, "frames": d["frames"] + 350 * s, "ids": np.where(d["ids"] >= 0, d["ids"] + 1000 * s, -1)})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def sweep(data: dict) -> str:
    """IDF1 / ID switches over the OKS gate and max_missed (defaults tuned on this)."""
    gates, misses = (0.05, 0.1, 0.2, 0.3, 0.5), (3, 5, 10, 20)
    lines = ["| min_similarity \\ max_missed | " + " | ".join(map(str, misses)) + " |",
             "|---|" + "---|" * len(misses)]
    for g in gates:
        cells = []
        for mm_ in misses:
            m = score(data, TrackerConfig(min_similarity=g, max_missed=mm_))
            cells.append(f"{100 * m['idf1']:.1f} / {m['num_switches']:.0f}")
        lines.append(f"| {g} | " + " | ".join(cells) + " |")
    return "IDF1 % / ID switches, synthetic, cost oks\n\n" + "\n".join(lines)


def speed(path: str, costs: tuple[str, ...] = ("oks+iou",)) -> str:
    """Time and peak traced memory (tracemalloc) of tracking the large input with its ids
    stripped (the ids are read but never passed to the tracker), per cost.  No identity
    metrics: the large input is 100 jittered copies of one track, so identity is ill-posed."""
    t0 = time.perf_counter()
    data = flatten(read_coco_tracks(path))
    t_read = time.perf_counter() - t0
    sig = oks_sigmas(COCO17.joint_names)
    n = len(data["frames"])
    out = []
    for cost in costs:
        tracemalloc.start()
        t0 = time.perf_counter()
        res = track_detections(data["frames"], data["keypoints"], sig, data["boxes"], TrackerConfig(cost=cost))
        dt = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        out.append(f"| large input, {n:,} detections, {len(np.unique(data['frames'])):,} frames | {cost} | {dt:.1f} s | "
                   f"{n / dt:,.0f} | {peak / 2**20:.0f} MiB | {res.stats['n_tracks']} |")
    head = ("| input | tracker | time (tracking only) | detections/s | peak traced memory (tracking) | tracks |\n"
            "|---|---|---|---|---|---|")
    return f"(reading {path}: {t_read:.1f} s)\n\n" + head + "\n" + "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--real", default=DEFAULT_REAL, help="shared real tracks (COCO results JSON with track ids)")
    ap.add_argument("--large", default=None, help="large input from scripts/make_large_tracks.py (speed rows)")
    ap.add_argument("--seeds", type=int, default=5, help="synthetic sequences (0: only the --large speed rows)")
    ap.add_argument("--sweep", action="store_true", help="also print the min_similarity x max_missed sweep")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    print("command: python scripts/bench_tracking.py " + " ".join(sys.argv[1:] if argv is None else argv) + "\n")
    if args.seeds == 0:  # speed rows only
        print(speed(args.large) if args.large else "nothing to do: --seeds 0 and no --large")
        return
    synth = synthetic_benchmark(range(args.seeds))
    if args.sweep:
        print(sweep(synth) + "\n")
    nobox = {**synth, "boxes": np.full_like(synth["boxes"], np.nan)}  # tracker falls back to keypoint boxes
    rows = [(f"synthetic ({args.seeds} x 300 frames), detector boxes | {c}", score(synth, TrackerConfig(cost=c)))
            for c in COSTS]
    rows += [(f"synthetic ({args.seeds} x 300 frames), keypoints only | {c}", score(nobox, TrackerConfig(cost=c)))
             for c in COSTS]
    if os.path.exists(args.real):
        real = flatten(read_coco_tracks(args.real))
        rows += [(f"real vtest (ids of a greedy IoU tracker) | {c}", score(real, TrackerConfig(cost=c)))
                 for c in COSTS]
    else:
        print(f"(real tracks not found at {args.real}: skipped)")
    print(table(rows) + "\n")
    if args.large:
        print(speed(args.large))


if __name__ == "__main__":
    main()
