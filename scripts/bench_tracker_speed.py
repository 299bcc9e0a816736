"""Time the tracker alone on a detections file: ms per frame and the tracks it finds.

Reads the file once (not timed), then runs :func:`lifting.io.tracking.track_detections` with
the defaults the track step uses (frame rate from the file, keypoint boxes unless every
detection has a box) ``--repeat`` times and prints the best wall and CPU (process) times
per frame (CPU time is the steadier figure on a shared machine).  One thread.

    python scripts/make_large_tracks.py /tmp/trk_100k.json --frames 1000
    python scripts/bench_tracker_speed.py /tmp/trk_100k.json [--tracker OLD_tracking.py]
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import time  # noqa: E402

import numpy as np  # noqa: E402

from lifting.io.readers import read_detections  # noqa: E402
from lifting.skeletons import get_skeleton  # noqa: E402
from scripts.bench_tracking import load_tracker  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("detections", help="detections file (e.g. COCO results JSON without track ids)")
    ap.add_argument("--format", default="coco", help="reader format (default coco)")
    ap.add_argument("--repeat", type=int, default=1, help="runs; the best time is printed")
    ap.add_argument("--tracker", default=None, metavar="FILE", help="time this tracking.py instead")
    a = ap.parse_args()
    dets = read_detections(a.detections, a.format)
    tr = load_tracker(a.tracker)
    sigmas = tr.oks_sigmas(get_skeleton(dets.keypoint_format).joint_names)
    boxes = dets.boxes.astype(np.float64) if dets.boxes is not None and np.isfinite(dets.boxes).all() else None
    wall, cpu, res = np.inf, np.inf, None
    for _ in range(a.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        res = tr.track_detections(dets.frames, dets.keypoints, sigmas, boxes, tr.TrackerConfig(), fps=dets.fps)
        wall, cpu = min(wall, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
    s = res.stats
    print(f"{a.tracker or 'lifting.io.tracking'}: {s['n_detections']:,} detections, {s['n_frames']:,} frames: "
          f"{wall:.2f} s wall = {1e3 * wall / s['n_frames']:.2f} ms/frame ({1e3 * cpu / s['n_frames']:.2f} ms/frame "
          f"CPU); {s['n_tracks']} tracks, {s['n_unassigned']} detections unassigned")


if __name__ == "__main__":
    main()
