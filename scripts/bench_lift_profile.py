"""Where the time of ``posenet3d lift`` goes, per step (issue 23; BENCHMARKS.md "Speed (2 cores)").

Runs the whole command under cProfile (``python -m lifting.cli lift INPUT -o OUT
--max-figures 0 ...``, or reads a saved profile) and prints the cumulative seconds of each
step: read (parse), track, prepare, lift (model), uncertainty (since issue 23 one model call
for both where the teacher does not resample: ``lift_with_uncertainty``, and with the flip
uncertainty, the default since then, ``lift_with_flip_spread``), fit, placement,
write, with their share of the command. Profiling slows Python-level code more than the model, so the
shares, not the absolute times, are the result; time whole commands with ``/usr/bin/time -v``.
Works on the code before issue 23 too (per-track ``lift_track``: its uncertainty's lifts are
taken out of "lift"). Since issue 23 ``lift`` fits, places and writes each group of tracks on a
worker thread while the next group is in the model; cProfile sees only the main thread, so
this script runs that work inline (``lifting.lift.ThreadPoolExecutor`` replaced by
:class:`_Inline`): every step is counted, and the whole command is the sum of its steps
rather than the overlapped wall time. "write" includes the summary's per-track 2D residual.

    python scripts/make_large_tracks.py /tmp/big_untracked.json
    python scripts/bench_lift_profile.py /tmp/big_untracked.json --threads 1 [--save prof.out]
    python scripts/bench_lift_profile.py --profile prof.out        # a saved profile
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile

#: step -> (file suffix, function name) whose cumulative times add up to it
STEPS = {
    "read (parse)": [("lifting/io/readers/__init__.py", "read_detections")],
    "track": [("lifting/track.py", "track")],
    "prepare": [("lifting/prepare.py", "canonical_track"), ("lifting/smoothing.py", "smooth_tracks")],
    "lift (model)": [("lifting/track_lifter.py", "lift")],
    "uncertainty": [("lifting/uncertainty.py", "lift_uncertainty")],
    "lift + uncertainty (one model call, issue 23)": [("lifting/lift_batch.py", "lift_with_uncertainty"),
                                                      ("lifting/lift_batch.py", "lift_with_flip_spread")],
    "fit": [("lifting/refine.py", "fit_track")],
    "placement": [("lifting/placement.py", "root_translation")],
    "person check": [("lifting/prepare.py", "person_check")],
    "write": [("lifting/lift.py", "_write_track")],
}


class _Inline:
    """A stand-in for ``ThreadPoolExecutor(max_workers=1)`` that runs each task at once."""

    class _Done:
        def __init__(self, value):
            self.value = value

        def result(self):
            return self.value

    def __init__(self, max_workers: int = 1):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> bool:
        return False

    def submit(self, fn, *args, **kwargs):
        return self._Done(fn(*args, **kwargs))


def _cumulative(stats: dict, where: str, name: str) -> float:
    return sum(v[3] for (f, _, fn), v in stats.items() if f.endswith(where) and fn == name)


def step_table(profile: str) -> list[tuple[str, float]]:
    """``[(step, seconds)]`` of a saved cProfile of ``lifting.cli`` (module docstring), the
    whole command first."""
    st = pstats.Stats(profile).stats
    rows = [(k, sum(_cumulative(st, f, n) for f, n in v)) for k, v in STEPS.items()]
    lift_fn = _cumulative(st, "lifting/track_lifter.py", "lift")
    if lift_fn:  # before issue 23: the uncertainty called lifter.lift (its cost is its own row)
        unc_lift = sum(v[3] for (f, _, fn), v in st.items() if f.endswith("lifting/uncertainty.py")
                       and fn == "<lambda>")
        rows = [(k, s - unc_lift if k == "lift (model)" else s) for k, s in rows]
    whole = _cumulative(st, "lifting/cli.py", "main")
    return [("whole command", whole)] + rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", nargs="?", help="keypoint file to lift")
    ap.add_argument("--profile", help="print the table of this saved profile instead")
    ap.add_argument("--save", help="keep the profile here")
    ap.add_argument("--threads", default="1", help="--threads of the lift (1: shares closest to a quiet run)")
    a = ap.parse_args()
    prof = a.profile
    if prof is None:
        if a.input is None:
            ap.error("give an input file or --profile")
        import lifting.lift
        from lifting import cli

        lifting.lift.ThreadPoolExecutor = _Inline  # the worker's steps in the profile (module docstring)
        prof = a.save or tempfile.mktemp(suffix=".prof")
        with tempfile.TemporaryDirectory() as out:
            sys.argv = ["posenet3d", "lift", a.input, "-o", out, "--max-figures", "0", "--threads", a.threads,
                        "--overwrite"]
            cProfile.runctx("cli.main()", {"cli": cli}, {}, prof)
    rows = step_table(prof)
    whole = rows[0][1] or 1.0
    print("| step | seconds (cProfile) | share of the command |\n|---|---|---|")
    for k, s in rows:
        print(f"| {k} | {s:.1f} | {100 * s / whole:.0f}% |")


if __name__ == "__main__":
    main()
