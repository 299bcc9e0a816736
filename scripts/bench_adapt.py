"""Benchmark of ``posenet3d adapt`` (issue 14 §3 and §5): does self-supervised adaptation to
single-view 2D tracks pay off, for the teacher and for the student?

1. HDM05 single-view noisy tracks (``scripts/make_hdm05_tracks.py``: one virtual camera per
   clip, 5 px noise, COCO results, no 3D), made here (seeds 0 and 1) unless ``--tracks`` gives them.
2. Variants, each trained on all the tracks files together with the same budget:
   ``none`` (the bundled models), ``distill`` (teacher stage 1, then the student distilled
   from it) and ``finetune`` (teacher stage 1, then student + teacher jointly: stage 3).
   Each adaptation runs in its own process: wall time and peak RSS are that process's.
3. Every teacher AND student is scored (a) with the 3D protocol of DESIGN.md §4 on HDM05
   (:func:`lifting.evaluate.evaluate_lifter`: 4-camera rig, GT 2D, canon16, ``--split all``:
   the protocol of the 99.1 mm unadapted-teacher figure) and (b) on the tracks' own frames
   (:func:`make_hdm05_tracks.score`: each clip's own camera, PA-MPJPE / N-MPJPE, mm).
   HDM05 3D is used for scoring only; choosing options by these numbers is transductive.
4. Real tracks (``--real``, default the shared vtest BlazePose file): the default ``adapt``
   on them, and, before/after, the median knee angle (deg, 180 = straight), the % of frames
   with a knee below 120 deg and the median over tracks of the mean per-bone coefficient of
   variation of bone length over time (tracks of >= 10 frames), plus wall time and peak RSS.

Prints markdown tables and the command; writes ``WORK/bench_adapt.json``.

Usage::

    python scripts/bench_adapt.py -w /tmp/bench_adapt [--tracks A.json B.json] [--minutes 3]
        [--steps N] [--variants none distill finetune] [--critic-real FILE] [--critic-warmup 50]
        [--override key=value ...] [--real FILE | --no-real]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import shlex
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from bench_real import lift_to, plausibility  # real-track lifting and plausibility
SHARED = ROOT / ".." / "shared" / "data"
HDM05 = SHARED / "hdm05" / "hdm05_joints.npz"
REAL = SHARED / "real_tracks" / "vtest_hog_blazepose_coco17.json"
VARIANTS = ("none", "distill", "finetune")


def _peak_rss_mib() -> float:
    """This process's peak resident memory (``VmHWM``, MiB). Not ``getrusage``: its maxrss
    carries the forking parent's RSS across exec, so a spawned child would report the bench's."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # not Linux


def _adapt_child(kwargs: dict, queue) -> None:
    """Runs in a fresh process: ``trainers.adapt.adapt(**kwargs)``, then its wall time and peak RSS."""
    import torch

    torch.set_num_threads(1)
    from lifting.options import LiftOptions
    from trainers.adapt import AdaptSettings, adapt

    t0 = time.perf_counter()
    try:
        inputs, out, critic_real = kwargs.pop("inputs"), kwargs.pop("out_dir"), kwargs.pop("critic_real", None)
        s = adapt(inputs, out, kwargs.pop("checkpoint", None), AdaptSettings(**kwargs),
                  LiftOptions(max_figures=0, progress=False, overwrite=True), critic_real, progress=False)
        queue.put({"wall_s": round(time.perf_counter() - t0, 1), "steps": s["steps"],
                   "seconds_train": s["seconds_train"], "validation": s["validation"],
                   "peak_rss_mib": _peak_rss_mib()})
    except Exception as e:  # reported by the parent, which names the variant
        queue.put({"error": f"{type(e).__name__}: {e}"})


def run_adapt(inputs: list[str], out_dir: Path, **kwargs) -> dict:
    """``adapt`` in a spawned process (clean memory accounting); raises RuntimeError on failure."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_adapt_child, args=({"inputs": inputs, "out_dir": str(out_dir)} | kwargs, q))
    p.start()
    res = q.get()
    p.join()
    if "error" in res:
        raise RuntimeError(f"adapt -> {out_dir}: {res['error']}")
    return res


def protocol_3d(ckpt: str, clips) -> float:
    """PA-MPJPE (mm) of ``ckpt`` with the DESIGN.md §4 rig protocol on ``clips`` (GT 2D)."""
    from lifting.evaluate import evaluate_lifter
    from lifting.models.lifters import load_lifter

    model, _ = load_lifter(ckpt)
    return round(evaluate_lifter(model, clips)["overall"]["pa_mpjpe_mm"], 1)


def score_models(models: dict[str, str], tracks: list[str], clips, work: Path) -> dict:
    """``{model: {"protocol_3d": mm, "<tracks stem>": {pa_mpjpe_mm, n_mpjpe_mm, frames}}}``."""
    from make_hdm05_tracks import score

    out = {}
    for name, ck in models.items():
        out[name] = {"protocol_3d": protocol_3d(ck, clips)}
        for t in tracks:
            d = lift_to(ck, t, work / f"lift_{name}_{Path(t).stem}")
            out[name][Path(t).stem] = score(d, Path(t).with_suffix(".cameras.npz"))
    return out


def make_tracks(work: Path) -> list[str]:
    """The two HDM05 single-view track files (seeds 0, 1) in ``work``."""
    import make_hdm05_tracks

    out = []
    for seed in (0, 1):
        f = work / f"hdm05_tracks_s{seed}.json"
        if not f.is_file():
            make_hdm05_tracks.main(["-o", str(f), "--seed", str(seed), "--data", str(HDM05)])
        out.append(str(f))
    return out


def bench_hdm05(a, work: Path, knobs: dict) -> dict:
    from lifting.data import load_mocap_npz

    tracks = [str(Path(t).resolve()) for t in a.tracks] if a.tracks else make_tracks(work)
    clips = load_mocap_npz(str(HDM05))
    res = {"tracks": tracks, "variants": {}}
    for v in a.variants:
        if v == "none":
            res["variants"][v] = {"scores": score_models({"teacher": "teacher", "student": "student"}, tracks,
                                                         clips, work / v)}
            continue
        out = work / f"adapt_{v}"
        run = run_adapt(tracks, out, checkpoint="student", student_mode=v, **knobs)
        run["scores"] = score_models({"teacher": str(out / "teacher.pt"), "student": str(out / "student.pt")},
                                     tracks, clips, work / v)
        res["variants"][v] = run
        print(f"[{v}] {json.dumps(run['scores'])}", flush=True)
    return res


def bench_real(real: Path, work: Path, knobs: dict) -> dict:
    before = {k: plausibility(lift_to(k, str(real), work / f"real_before_{k}")) for k in ("teacher", "student")}
    out = work / "adapt_real"
    run = run_adapt([str(real)], out, checkpoint="student", **knobs)
    after = {"student": plausibility(out / "lift"),
             "teacher": plausibility(lift_to(str(out / "teacher.pt"), str(real), work / "real_after_teacher"))}
    return {"file": str(real), "before": before, "after": after, "adapt": run}


def _heldout(run: dict, model: str) -> str:
    """The 3D-free held-out joint 2D error (% of the person's 2D size) of ``model`` after
    adapting, or "-" (no adaptation)."""
    v = run.get("validation", {})
    key = "teacher_finetuned" if model == "teacher" and "teacher_finetuned" in v else f"{model}_after"
    return f"{100 * v[key]['heldout_joint_2d']:.1f}" if key in v else "-"


def tables(res: dict) -> str:
    lines = []
    h = res.get("hdm05")
    if h:
        stems = [Path(t).stem for t in h["tracks"]]
        lines += ["| variant | model | steps/stage | HDM05 3D protocol PA-MPJPE | "
                  + " | ".join(f"{s} PA / N-MPJPE" for s in stems) + " | held-out 2D % | adapt wall s | peak RSS MiB |",
                  "|---|---|---|---|" + "---|" * len(stems) + "---|---|---|"]
        for v, r in h["variants"].items():
            for m, sc in r["scores"].items():
                cells = [f"{sc[s]['pa_mpjpe_mm']} / {sc[s]['n_mpjpe_mm']}" for s in stems]
                steps = r.get("steps", {}).get("student" if m == "student" and "student" in r.get("steps", {})
                                               else "teacher", "-")
                lines.append(f"| {v} | {m} | {steps} | {sc['protocol_3d']} | " + " | ".join(cells)
                             + f" | {_heldout(r, m)} | {r.get('wall_s', '-')} | {r.get('peak_rss_mib', '-')} |")
    r = res.get("real")
    if r:
        lines += ["", f"Real tracks `{Path(r['file']).name}`: adapt {r['adapt']['wall_s']} s wall, peak RSS "
                      f"{r['adapt']['peak_rss_mib']} MiB, steps {r['adapt']['steps']}", "",
                  "| model | when | knee median deg | % frames knee < 120 deg | median bone-length CV % | frames |",
                  "|---|---|---|---|---|---|"]
        for m in ("teacher", "student"):
            for when in ("before", "after"):
                p = r[when][m]
                lines.append(f"| {m} | {when} | {p['knee_median_deg']} | {p['knee_below_120_pct']} | "
                             f"{p['bone_cv_median_pct']} | {p['frames']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-w", "--work", required=True, help="work folder (tracks, adapted models, lifts, results)")
    p.add_argument("--tracks", nargs="+", default=None, help="existing HDM05 track files (with .cameras.npz)")
    p.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=VARIANTS)
    p.add_argument("--minutes", type=float, default=None, help="adapt budget (default: adapt's)")
    p.add_argument("--steps", type=int, default=None, help="steps per stage instead of a time budget")
    p.add_argument("--critic-real", nargs="+", default=None, help="critic pool files (adapt --critic-real)")
    p.add_argument("--critic-warmup", type=int, default=50)
    p.add_argument("--override", nargs="*", default=[], help="stage config key=value (adapt overrides)")
    p.add_argument("--real", default=str(REAL), help="real tracks file for the plausibility part")
    p.add_argument("--no-real", action="store_true", help="skip the real-tracks part")
    a = p.parse_args(argv)
    if not HDM05.is_file() and a.variants:
        print(f"error: {HDM05} not found (the shared HDM05 data is needed for scoring)", file=sys.stderr)
        return 2
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    knobs = {"minutes": a.minutes, "steps": a.steps, "critic_real": a.critic_real,
             "critic_warmup": a.critic_warmup, "overrides": tuple(a.override)}
    res = {"command": "python scripts/bench_adapt.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
           "knobs": knobs}
    if a.variants:
        res["hdm05"] = bench_hdm05(a, work, knobs)
    if not a.no_real:
        if not Path(a.real).is_file():
            print(f"error: --real {a.real} not found", file=sys.stderr)
            return 2
        res["real"] = bench_real(Path(a.real), work, {k: v for k, v in knobs.items()})
    (work / "bench_adapt.json").write_text(json.dumps(res, indent=1))
    print(tables(res))
    print(f"\n`{res['command']}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
