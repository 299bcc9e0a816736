"""Write the large keypoint input of the 1M person-frame benchmark (BENCHMARKS.md, "Speed (2 cores)").

Default: one COCO results file (the object form ``{"meta": {...}, "annotations": [...]}`` of
:mod:`lifting.io.tracks`, 30 fps, 1920 x 1080 px) of 100 people x 10,000 frames **without
track ids** (the lift has to track them): the people stand on a 10 x 10 grid of cells
(192 x 108 px) spread over the frame, each walking back and forth inside its cell (+-40 px,
about 1 px/frame) with the poses of the bundled example track
(``lifting/assets/example_track.json``, a real walker about 80 px tall; played forwards and
backwards from a random start per person, so the poses stay continuous), 1 px Gaussian noise
per coordinate, the example's detector scores. ``--tracked`` writes the same people with
``track_id`` (the tracked variant: no tracking needed).

    python scripts/make_large_tracks.py /tmp/big_untracked.json
    python scripts/make_large_tracks.py /tmp/big_tracked.json --tracked
    python scripts/make_large_tracks.py /tmp/small.json --frames 1000     # 100,000 person-frames

Deterministic (seed 0). Takes about half a minute for 1M records (~0.5 GB).
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from lifting.io.readers import read_detections
from lifting.track import track

EXAMPLE = Path(__file__).resolve().parents[1] / "lifting" / "assets" / "example_track.json"
WIDTH, HEIGHT, GRID = 1920, 1080, 10


def people(frames: int, seed: int = 0) -> np.ndarray:
    """``(P = 100, frames, 17, 3)`` float32 COCO-17 keypoints (x, y px, score) of the grid of
    walkers described in the module docstring."""
    ex = track(read_detections(str(EXAMPLE), "coco")).tracks[0].keypoints  # (285, 17, 3)
    rel = ex.copy()
    rel[..., :2] -= ex[:, 11:13, :2].mean(1, keepdims=True)  # pelvis-relative poses
    rng = np.random.default_rng(seed)
    n, t = len(ex), np.arange(frames)
    out = np.empty((GRID * GRID, frames, 17, 3), np.float32)
    for p in range(GRID * GRID):
        cx, cy = (p % GRID + 0.5) * WIDTH / GRID, (p // GRID + 0.5) * HEIGHT / GRID
        k = (t + rng.integers(0, 2 * n - 2)) % (2 * n - 2)
        idx = np.where(k < n, k, 2 * n - 2 - k)  # forwards then backwards: no jump
        x = cx + 40.0 * np.sin(2 * np.pi * t / 250.0 + rng.uniform(0, 2 * np.pi))
        out[p] = rel[idx]
        out[p, :, :, 0] += x[:, None]
        out[p, :, :, 1] += cy
        out[p, :, :, :2] += rng.normal(0, 1.0, (frames, 17, 2)).astype(np.float32)
    return out


def write(path: str, kp: np.ndarray, tracked: bool) -> None:
    """Write ``kp (P, T, 17, 3)`` as records sorted by frame then person (``track_id`` = person
    index when ``tracked``), 2 decimals for pixels, 3 for scores."""
    meta = {"keypoint_format": "coco17", "fps": 30.0, "width": WIDTH, "height": HEIGHT,
            "source": "scripts/make_large_tracks.py" + (" --tracked" if tracked else "")}
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write('{"meta": ' + json.dumps(meta) + ', "annotations": [\n')
        for t in range(kp.shape[1]):
            lines = []
            for p in range(kp.shape[0]):
                k = kp[p, t]
                nums = ",".join(f"{x:.2f},{y:.2f},{c:.3f}" for x, y, c in k.tolist())
                tid = f'"track_id": {p}, ' if tracked else ""
                lines.append(f'{{"image_id": {t}, {tid}"category_id": 1, "score": {float(k[:, 2].mean()):.3f}, '
                             f'"keypoints": [{nums}]}}')
            f.write(",\n".join(lines) + ("\n]}\n" if t == kp.shape[1] - 1 else ",\n"))
    os.replace(tmp, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="output JSON path")
    ap.add_argument("--frames", type=int, default=10_000, help="frames (x 100 people)")
    ap.add_argument("--tracked", action="store_true", help="write track ids (the tracked variant)")
    a = ap.parse_args()
    write(a.out, people(a.frames), a.tracked)
    print(f"wrote {a.out}: {100 * a.frames:,} person-frames, {'with' if a.tracked else 'without'} track ids")


if __name__ == "__main__":
    main()
