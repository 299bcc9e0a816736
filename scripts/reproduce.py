"""One command that retrains the bundled models from the shared data and regenerates the
BENCHMARKS.md tables that depend on them (issue 15 §4).

Stages of ``--stage bundled`` (``--stage bench``: only g), in order:

  a. base_teacher: ``posenet3d train teacher configs/teacher.yaml`` 30k steps, exported to
     ``runs/bundled/base_teacher.pt`` (the recipe of the previous bundled teacher);
  b. base_student: ``configs/student.yaml`` 15k steps distilled from it, exported to
     ``runs/bundled/base_student.pt``;
  c. teacher_single: single-frame detector teacher (``configs/teacher_detector.yaml``) from a;
  d. teacher: temporal detector teacher (``configs/teacher_detector_temporal.yaml``) from a
     (c and d run side by side, one thread each, with ``--parallel``);
  e. student: ``configs/student_detector.yaml`` from b, distilled from c;
  f. export: c, d, e -> ``lifting/assets/{teacher_single,teacher,student}.pt`` (``--half``);
  g. benchmarks: ``bench_accuracy.py`` (bandai_test, bandai_test_raised45 and hdm05_all, GT 2D
     and 5 px noise),
     ``bench_real.py``, ``bench_real3d.py`` (Pose2Sim: the default command too), ``bench_speed.py``, ``bench_uncertainty.py`` (when present) on the
     three bundled models and the previous ones (a, b); each one's output goes to
     ``runs/bundled/bench/NAME.md``.

Skipping (make-like): a stage is skipped when all its outputs exist, none is older than an
existing input (an output of an earlier stage it reads), and no training folder of it holds
an unfinished run; ``--force`` redoes every selected stage. Inside a stage that runs, a
training command whose folder holds a finished run (``best.pt`` and ``train_log.jsonl`` at
the config's ``train.steps``) is skipped and an unfinished one (``last.pt``) is resumed with
``--resume`` (a fresh start with ``--force``).

Every command is printed before it runs; its output is shown prefixed with the stage name and
kept in ``runs/bundled/logs/STAGE.log``. Results (per command: status, reason, wall time, exit
code; the total wall time at the end) go to ``runs/bundled/reproduce.json`` after every
command, the benchmark tables to ``runs/bundled/tables.md``; both are written atomically.
The first failing command stops the run (exit code 1; a stage running beside it finishes)
with the record written. ``--dry-run`` prints the plan with each stage's
status and writes nothing.

Usage::

    python scripts/reproduce.py --stage bundled [--parallel] [--force] [--dry-run]
    python scripts/reproduce.py --stage bench [--dry-run]
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = "runs/bundled"
ASSETS = "lifting/assets"
MODELS = {"teacher": f"{ASSETS}/teacher.pt", "teacher_single": f"{ASSETS}/teacher_single.pt",
          "student": f"{ASSETS}/student.pt"}


@dataclass(frozen=True)
class Command:
    """One command line (``argv[0]`` is ``posenet3d`` or a ``scripts/*.py`` path; paths are
    relative to the repository root). ``run_dir``: the training output folder it writes."""

    argv: tuple[str, ...]
    run_dir: str | None = None

    def __str__(self) -> str:
        return ("python " if self.argv[0].endswith(".py") else "") + shlex.join(self.argv)


@dataclass(frozen=True)
class Stage:
    """A unit of the reproduction: its commands, the files it produces (``outputs``) and the
    files of earlier stages it reads (``inputs``). ``parallel``: stages with the same key may
    run side by side. ``bench``: its stdout is the output file (``outputs[0]``, a .md).
    ``optional``: skipped with a note when its script is missing."""

    name: str
    commands: tuple[Command, ...]
    outputs: tuple[str, ...]
    inputs: tuple[str, ...] = ()
    parallel: str | None = None
    bench: bool = False
    optional: bool = False


def _train(kind: str, config: str, out: str, *overrides: str) -> Command:
    return Command(("posenet3d", "train", kind, config, *overrides, "--out", out), run_dir=out)


def _export(src: str, dst: str, half: bool = False) -> Command:
    return Command(("posenet3d", "export", src, dst) + (("--half",) if half else ()))


def bundled_stages(runs: str = RUNS) -> list[Stage]:
    """Stages a-f (training and export) of the bundled models; ``runs`` is the run folder."""
    bt, bs = f"{runs}/base_teacher.pt", f"{runs}/base_student.pt"
    best = {m: f"{runs}/{m}/best.pt" for m in MODELS}
    th = "train.threads=1"
    return [
        Stage("a_base_teacher", (_train("teacher", "configs/teacher.yaml", f"{runs}/base_teacher_run",
                                        "train.steps=30000", th),
                                 _export(f"{runs}/base_teacher_run/best.pt", bt)), (bt,)),
        Stage("b_base_student", (_train("student", "configs/student.yaml", f"{runs}/base_student_run",
                                        "train.steps=15000", f"student.teacher_checkpoint={bt}"),
                                 _export(f"{runs}/base_student_run/best.pt", bs)), (bs,), (bt,)),
        Stage("c_teacher_single", (_train("teacher", "configs/teacher_detector.yaml", f"{runs}/teacher_single",
                                          f"model.init_checkpoint={bt}", th),),
              (best["teacher_single"],), (bt,), parallel="detector_teachers"),
        Stage("d_teacher", (_train("teacher", "configs/teacher_detector_temporal.yaml", f"{runs}/teacher",
                                   f"model.init_checkpoint={bt}", th),),
              (best["teacher"],), (bt,), parallel="detector_teachers"),
        Stage("e_student", (_train("student", "configs/student_detector.yaml", f"{runs}/student",
                                   f"model.init_checkpoint={bs}",
                                   f"student.teacher_checkpoint={best['teacher_single']}", th),),
              (best["student"],), (bs, best["teacher_single"])),
        Stage("f_export", tuple(_export(best[m], MODELS[m], half=True) for m in MODELS),
              tuple(MODELS.values()), tuple(best.values())),
    ]


def bench_stages(runs: str = RUNS, root: Path = ROOT) -> list[Stage]:
    """Stage g: one stage per benchmark script on the three bundled models."""
    # the previous bundled models (the base stages a and b) are measured beside them: before/after
    named = tuple(f"{m}={p}" for m, p in MODELS.items()) + (
        f"previous_teacher={runs}/base_teacher.pt", f"previous_student={runs}/base_student.pt")
    inputs = tuple(MODELS.values())
    b = f"{runs}/bench"
    sets = "bandai_test,bandai_test_raised45,hdm05_all"
    return [
        Stage("g_accuracy", (Command(("scripts/bench_accuracy.py", *named, "--sets", sets,
                                      "--out", f"{b}/accuracy.json")),),
              (f"{b}/accuracy.md",), inputs, bench=True),
        Stage("g_real", (Command(("scripts/bench_real.py", *named, "--out", f"{b}/real.json")),),
              (f"{b}/real.md",), inputs, bench=True),
        Stage("g_real3d", (Command(("scripts/bench_real3d.py", "default command=default", *named,
                                    "--out", f"{b}/real3d.json")),),
              (f"{b}/real3d.md",), inputs, bench=True),
        Stage("g_speed", (Command(("scripts/bench_speed.py", "--temporal", MODELS["teacher"], "--single",
                                         MODELS["teacher_single"], "--accuracy", MODELS["teacher"])),),
              (f"{b}/speed.md",), inputs, bench=True),
        Stage("g_uncertainty", (Command(("scripts/bench_uncertainty.py", MODELS["teacher"], "--fit", "--levels", "4",
                                         "--stride", "10", "--val-clip-stride", "4")),),
              (f"{b}/uncertainty.md",), inputs, bench=True, optional=True),
    ]


def plan(stage: str, runs: str = RUNS) -> list[Stage]:
    """The stages of ``--stage`` (``bundled``: a-g, ``bench``: g). Raises ValueError otherwise."""
    if stage == "bundled":
        return bundled_stages(runs) + bench_stages(runs)
    if stage == "bench":
        return bench_stages(runs)
    raise ValueError(f"--stage must be 'bundled' or 'bench', got {stage!r}")


# --- status ----------------------------------------------------------------------------


def run_progress(run_dir: Path) -> tuple[int, int] | None:
    """``(last logged step, config train.steps)`` of a training folder, or None when it holds
    no run (no ``config.yaml``). An unreadable log counts as step 0."""
    cfg = run_dir / "config.yaml"
    if not cfg.is_file():
        return None
    from omegaconf import OmegaConf

    steps = int(OmegaConf.load(cfg).train.steps)
    last = 0
    log = run_dir / "train_log.jsonl"
    if log.is_file():
        for line in log.read_text().splitlines():
            try:
                last = max(last, int(json.loads(line)["step"]))
            except (ValueError, KeyError, TypeError):
                continue  # a line cut by a kill
    return last, steps


def run_finished(run_dir: Path) -> bool:
    """A training folder holds a finished run: ``best.pt`` and the log at ``train.steps``."""
    p = run_progress(run_dir)
    return p is not None and p[0] >= p[1] and (run_dir / "best.pt").is_file()


def stage_status(st: Stage, root: Path) -> tuple[bool, str]:
    """``(done, reason)`` of a stage from the files under ``root`` (see the module doc)."""
    missing = [o for o in st.outputs if not (root / o).is_file()]
    if missing:
        return False, f"missing {', '.join(missing)}"
    for c in st.commands:
        p = run_progress(root / c.run_dir) if c.run_dir else None
        if p is not None and not run_finished(root / c.run_dir):
            return False, f"unfinished run in {c.run_dir} (step {p[0]} of {p[1]})"
    oldest = min((root / o).stat().st_mtime for o in st.outputs)
    newer = [i for i in st.inputs if (root / i).is_file() and (root / i).stat().st_mtime > oldest]
    if newer:
        return False, f"out of date: {', '.join(newer)} newer than the outputs"
    return True, "outputs exist and are up to date"


def command_action(c: Command, root: Path, force: bool) -> tuple[str, Command]:
    """What to do with one command of a running stage: ``("run"|"resume"|"skip", command)``."""
    if c.run_dir is None or force:
        return "run", c
    d = root / c.run_dir
    if run_finished(d):
        return "skip", c
    if run_progress(d) is not None and (d / "last.pt").is_file():
        return "resume", Command(c.argv + ("--resume", f"{c.run_dir}/last.pt"), c.run_dir)
    return "run", c


# --- running ---------------------------------------------------------------------------


@dataclass
class Record:
    """``runs/bundled/reproduce.json``: what ran, with status and wall time, written after
    every command (atomically) so a failure or kill leaves an honest record."""

    path: Path
    data: dict = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, entry: dict) -> None:
        from lifting.io.fileio import atomic_write

        with self.lock:
            self.data.setdefault("commands", []).append(entry)
            atomic_write(self.path, lambda tmp: Path(tmp).write_text(json.dumps(self.data, indent=1)))


def _argv(c: Command) -> list[str]:
    """The process to start for ``c``: ``posenet3d`` through this interpreter (the tree under
    ``ROOT`` first on ``PYTHONPATH``), scripts with this interpreter."""
    if c.argv[0] == "posenet3d":
        return [sys.executable, "-c", "import sys; from lifting.cli import main; sys.exit(main())", *c.argv[1:]]
    return [sys.executable, *c.argv]


def execute(c: Command, root: Path, tag: str, log: Path) -> tuple[int, str, float]:
    """Run ``c`` in ``root``; stdout+stderr echoed as ``[tag] line`` and appended to ``log``.
    Returns ``(exit code, its output, wall seconds)``."""
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(root), *filter(None, [os.environ.get("PYTHONPATH")])]),
                        "PYTHONUNBUFFERED": "1"}
    log.parent.mkdir(parents=True, exist_ok=True)
    for o in ("--out",):  # the folder of a benchmark's JSON output
        if o in c.argv:
            (root / c.argv[c.argv.index(o) + 1]).parent.mkdir(parents=True, exist_ok=True)
    out: list[str] = []
    t0 = time.perf_counter()
    with open(log, "a") as fh:
        fh.write(f"$ {c}\n")
        p = subprocess.Popen(_argv(c), cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in p.stdout:
            out.append(line)
            fh.write(line)
            print(f"[{tag}] {line}", end="", flush=True)
        rc = p.wait()
    return rc, "".join(out), round(time.perf_counter() - t0, 1)


def run_stage(st: Stage, root: Path, runs: Path, record: Record, force: bool) -> bool:
    """Run the commands of one stage (see the module doc); False when one failed."""
    from lifting.io.fileio import atomic_write

    for c in st.commands:
        if st.optional and not (root / c.argv[0]).is_file():
            print(f"[{st.name}] skip: {c.argv[0]} not found", flush=True)
            record.add({"stage": st.name, "command": str(c), "status": "skipped", "reason": f"{c.argv[0]} not found"})
            continue
        action, cmd = command_action(c, root, force)
        if action == "skip":
            print(f"[{st.name}] skip (finished run in {c.run_dir}): {c}", flush=True)
            record.add({"stage": st.name, "command": str(c), "status": "skipped", "reason": "finished run"})
            continue
        print(f"[{st.name}] $ {cmd}", flush=True)
        rc, text, wall = execute(cmd, root, st.name, runs / "logs" / f"{st.name}.log")
        record.add({"stage": st.name, "command": str(cmd), "status": "ran" if rc == 0 else "failed",
                    "action": action, "rc": rc, "wall_s": wall})
        if rc != 0:
            print(f"error: stage {st.name}: `{cmd}` exited with {rc} (log {runs / 'logs' / f'{st.name}.log'})",
                  file=sys.stderr)
            return False
        if st.bench:
            atomic_write(root / st.outputs[0], lambda tmp, s=f"`{cmd}`\n\n{text}": Path(tmp).write_text(s))
    return True


def _groups(stages: list[Stage], parallel: bool) -> list[list[Stage]]:
    """Consecutive stages sharing a ``parallel`` key form one group when ``parallel``."""
    groups: list[list[Stage]] = []
    for st in stages:
        if parallel and st.parallel and groups and groups[-1][0].parallel == st.parallel:
            groups[-1].append(st)
        else:
            groups.append([st])
    return groups


def tables_md(stages: list[Stage], root: Path) -> str:
    """``tables.md``: per benchmark stage its command, then the markdown table lines of its
    output, or the whole output as a code block when it prints no table; an output older
    than the models it measured is marked ``> stale: ...``."""
    parts = ["# Benchmark tables of the bundled models (scripts/reproduce.py)", ""]
    for st in stages:
        f = root / st.outputs[0]
        if not st.bench or not f.is_file():
            continue
        cmd, _, text = f.read_text().partition("\n\n")
        rows = [ln for ln in text.splitlines() if ln.startswith("|")]
        body = "\n".join(rows) if rows else f"```\n{text.rstrip()}\n```"
        done, why = stage_status(st, root)
        parts += [f"## {st.name[2:]}", "", cmd, ""] + ([] if done else [f"> stale: {why}", ""]) + [body, ""]
    return "\n".join(parts)


def print_plan(stages: list[Stage], root: Path, force: bool, parallel: bool) -> None:
    """The dry-run: each stage with its status now and its commands."""
    for group in _groups(stages, parallel):
        if len(group) > 1:
            print(f"-- in parallel: {', '.join(s.name for s in group)}")
        for st in group:
            done, why = stage_status(st, root)
            if st.optional and not all((root / c.argv[0]).is_file() for c in st.commands):
                done, why = True, f"{st.commands[0].argv[0]} not found"
            print(f"{st.name}: {'skip' if done and not force else 'run'} ({why})")
            for c in st.commands:
                action, cmd = command_action(c, root, force)
                print(f"    {'(skip: finished run) ' if action == 'skip' else ''}{cmd}")
    print("(a stage marked skip is still run when an earlier stage it reads is redone)")


def reproduce(stage: str, root: Path = ROOT, runs: str = RUNS, force: bool = False, parallel: bool = False,
              dry_run: bool = False) -> int:
    """Run (or with ``dry_run`` print) the plan of ``stage``; returns the exit code (0 ok,
    1 a command failed). Raises ValueError for an unknown ``stage``."""
    stages = plan(stage, runs)
    if dry_run:
        print_plan(stages, root, force, parallel)
        return 0
    rdir = root / runs
    record = Record(rdir / "reproduce.json", {"stage": stage, "force": force, "parallel": parallel,
                                              "started": time.strftime("%Y-%m-%dT%H:%M:%S")})
    ok, t0 = True, time.perf_counter()
    for group in _groups(stages, parallel):
        todo = []
        for st in group:
            done, why = stage_status(st, root)
            print(f"== {st.name}: {'skip' if done and not force else 'run'} ({why})", flush=True)
            if done and not force:
                record.add({"stage": st.name, "status": "skipped", "reason": why})
            else:
                todo.append(st)
        results = _run_group(todo, root, rdir, record, force)
        if not all(results):
            ok = False
            break
    from lifting.io.fileio import atomic_write

    atomic_write(rdir / "tables.md", lambda tmp: Path(tmp).write_text(tables_md(stages, root)))
    record.data |= {"finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "wall_s": round(time.perf_counter() - t0, 1),
                    "ok": ok, "tables": f"{runs}/tables.md"}
    record.add({"stage": "-", "status": "tables", "reason": f"{runs}/tables.md"})
    print(f"{'done' if ok else 'stopped'}: {runs}/reproduce.json, {runs}/tables.md", flush=True)
    return 0 if ok else 1


def _run_group(todo: list[Stage], root: Path, rdir: Path, record: Record, force: bool) -> list[bool]:
    """Run stages one after the other, or side by side (threads) when there are several."""
    if len(todo) <= 1:
        return [run_stage(st, root, rdir, record, force) for st in todo]
    results = [False] * len(todo)

    def work(i: int) -> None:
        results[i] = run_stage(todo[i], root, rdir, record, force)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(todo))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stage", required=True, choices=("bundled", "bench"),
                   help="bundled: retrain, export and benchmark (a-g); bench: benchmarks only (g)")
    p.add_argument("--force", action="store_true", help="redo every selected stage even when its outputs exist")
    p.add_argument("--parallel", action="store_true", help="train the two detector teachers (c, d) side by side")
    p.add_argument("--dry-run", action="store_true", help="print the plan and each stage's status; run nothing")
    p.add_argument("--root", default=str(ROOT), help="repository root the paths are relative to (default: this one)")
    a = p.parse_args(argv)
    root = Path(a.root).resolve()
    if not (root / "configs").is_dir():
        p.error(f"--root {root}: not a posenet3d checkout (no configs/ folder)")
    return reproduce(a.stage, root=root, force=a.force, parallel=a.parallel, dry_run=a.dry_run)


if __name__ == "__main__":
    sys.exit(main())
