"""Rendering speed of the ``posenet3d lift --video`` animations (issue 23), for BENCHMARKS.md.

Lifts the shared real tracks (``shared/data/real_tracks``) once with the bundled teacher
(``--video`` off, so the lift is not timed), then renders the animations ``lift --video``
would write: the ``--max-figures`` longest tracks, each subsampled to ``--video-max-frames``
frames, with :func:`lifting.viz.animate_track`, and reports per file and in total the
rendered frames per second (wall clock of the rendering alone, file written).

    python scripts/bench_render.py [--video gif|mp4] [--tracks FILE ...] [--keep DIR]

Timings depend on the machine and its load: run it alone, and say when the machine was shared.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from lifting.lift import lift_file
from lifting.options import LiftOptions
from lifting.skeletons import CANON16
from lifting.viz import RenderStyle, animate_track, figure_frames

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real_tracks"


def _longest_tracks(folder: Path, n: int) -> list[dict]:
    """The arrays of the ``n`` longest lifted tracks in ``folder`` (``track_XXXX.npz``)."""
    tracks = []
    for f in sorted(folder.glob("track_*.npz")):
        with np.load(f) as z:
            tracks.append({k: z[k] for k in ("keypoints_2d", "mask", "joints_3d", "frame_ids")} | {"stem": f.stem})
    return sorted(tracks, key=lambda t: -len(t["frame_ids"]))[:n]


def bench(tracks_file: Path, video: str, o: LiftOptions, keep: Path | None) -> list[tuple[str, int, float]]:
    """Lift ``tracks_file`` and render its animations; ``[(file name, frames, seconds)]``."""
    with tempfile.TemporaryDirectory() as tmp:
        lift_file(tracks_file, Path(tmp) / "lift", o)
        out = keep or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        rows = []
        for t in _longest_tracks(Path(tmp) / "lift", o.max_figures):
            T = len(t["frame_ids"])
            picks = figure_frames(T, o.video_max_frames)
            t0 = time.perf_counter()
            animate_track(out / f"{t['stem']}.{video}", CANON16, t["keypoints_2d"][picks], t["mask"][picks],
                          t["joints_3d"][picks], t["frame_ids"][picks],
                          style=RenderStyle(fps=10.0, max_frames=len(picks), progress=False, title=tracks_file.name))
            rows.append((f"{tracks_file.name}:{t['stem']}.{video}", len(picks), time.perf_counter() - t0))
        return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--video", choices=("gif", "mp4"), default="gif")
    ap.add_argument("--tracks", nargs="*", type=Path, default=None, help="default: every *.json in real_tracks")
    ap.add_argument("--keep", type=Path, default=None, help="write the animations here (default: discarded)")
    args = ap.parse_args()
    o = LiftOptions(progress=False, max_figures=4, video_max_frames=300)
    rows = []
    for f in args.tracks or sorted(REAL.glob("*.json")):
        rows += bench(f, args.video, o, args.keep)
    for name, n, s in rows:
        print(f"{name:60s} {n:4d} frames {s:7.2f} s {n / s:7.1f} frames/s")
    n, s = sum(r[1] for r in rows), sum(r[2] for r in rows)
    print(f"{'total':60s} {n:4d} frames {s:7.2f} s {n / s:7.1f} frames/s")


if __name__ == "__main__":
    main()
