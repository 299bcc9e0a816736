"""Tests for the reproduction and real-track benchmark scripts: ``scripts/reproduce.py`` (the
plan, the skip / resume logic and the runner, with stand-in commands: no training) and
``scripts/bench_real.py`` (a tiny random lifter on tracks made from the tiny mocap)."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import bench_real
import reproduce as R


def _touch(path: Path, text: str = "x", age_s: float = 0.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if age_s:
        t = time.time() - age_s
        os.utime(path, (t, t))
    return path


def _fake_run(d: Path, steps: int, logged: int, best: bool = True, age_s: float = 0.0) -> Path:
    """A training folder as trainers.loop writes it: config.yaml, train_log.jsonl, last.pt, best.pt."""
    _touch(d / "config.yaml", f"train:\n  steps: {steps}\n", age_s)
    _touch(d / "train_log.jsonl", "".join(json.dumps({"step": s, "total": 1.0}) + "\n" for s in range(1, logged + 1))
           + '{"step": 9', age_s)  # a line cut by a kill is ignored
    _touch(d / "last.pt", age_s=age_s)
    if best:
        _touch(d / "best.pt", age_s=age_s)
    return d


# --- the plan ----------------------------------------------------------------------------


def test_dry_run_prints_the_issue_plan_and_writes_nothing(tmp_path, capsys):
    assert R.reproduce("bundled", root=tmp_path, dry_run=True, parallel=True) == 0
    out = capsys.readouterr().out
    for line in (
        "posenet3d train teacher configs/teacher.yaml train.steps=30000 train.threads=1 --out runs/bundled/base_teacher_run",
        "posenet3d export runs/bundled/base_teacher_run/best.pt runs/bundled/base_teacher.pt",
        "posenet3d train student configs/student.yaml train.steps=15000 student.teacher_checkpoint="
        "runs/bundled/base_teacher.pt --out runs/bundled/base_student_run",
        "posenet3d train teacher configs/teacher_detector.yaml model.init_checkpoint=runs/bundled/base_teacher.pt "
        "train.threads=1 --out runs/bundled/teacher_single",
        "posenet3d train teacher configs/teacher_detector_temporal.yaml model.init_checkpoint="
        "runs/bundled/base_teacher.pt train.threads=1 --out runs/bundled/teacher",
        "posenet3d train student configs/student_detector.yaml model.init_checkpoint=runs/bundled/base_student.pt "
        "student.teacher_checkpoint=runs/bundled/teacher_single/best.pt train.threads=1 --out runs/bundled/student",
        "posenet3d export runs/bundled/teacher/best.pt lifting/assets/teacher.pt --half",
        "posenet3d export runs/bundled/teacher_single/best.pt lifting/assets/teacher_single.pt --half",
        "posenet3d export runs/bundled/student/best.pt lifting/assets/student.pt --half",
        "python scripts/bench_accuracy.py teacher=lifting/assets/teacher.pt",
        "python scripts/bench_real.py teacher=lifting/assets/teacher.pt",
        "python scripts/bench_speed.py --temporal lifting/assets/teacher.pt",
        "-- in parallel: c_teacher_single, d_teacher",
        "g_uncertainty: skip (scripts/bench_uncertainty.py not found)",
    ):
        assert line in out, line
    names = [ln.split(":")[0] for ln in out.splitlines() if ln and not ln.startswith((" ", "-", "("))]
    assert names == ["a_base_teacher", "b_base_student", "c_teacher_single", "d_teacher", "e_student", "f_export",
                     "g_accuracy", "g_real", "g_real3d", "g_speed", "g_uncertainty"]
    assert list(tmp_path.iterdir()) == []  # a dry run writes nothing


def test_bench_stage_is_only_g_and_bad_stage_is_named(tmp_path):
    assert [s.name for s in R.plan("bench")] == ["g_accuracy", "g_real", "g_real3d", "g_speed", "g_uncertainty"]
    with pytest.raises(ValueError, match="--stage must be"):
        R.plan("everything")
    with pytest.raises(SystemExit):
        R.main(["--stage", "bench", "--dry-run", "--root", str(tmp_path)])  # no configs/: not a checkout


# --- skip / resume logic -------------------------------------------------------------------


def test_status_skip_resume_and_out_of_date(tmp_path):
    st = {s.name: s for s in R.bundled_stages()}
    runs = tmp_path / "runs/bundled"
    # a: the exported base teacher alone (no run folder) is enough to skip it
    _touch(runs / "base_teacher.pt", age_s=100)
    assert R.stage_status(st["a_base_teacher"], tmp_path) == (True, "outputs exist and are up to date")
    # c: a killed run (best.pt exists, log at step 4 of 10) is not done and resumes from last.pt
    run = _fake_run(runs / "teacher_single", steps=10, logged=4, age_s=50)
    done, why = R.stage_status(st["c_teacher_single"], tmp_path)
    assert not done and "unfinished run in runs/bundled/teacher_single (step 4 of 10)" in why
    action, cmd = R.command_action(st["c_teacher_single"].commands[0], tmp_path, force=False)
    assert action == "resume" and str(cmd).endswith("--resume runs/bundled/teacher_single/last.pt")
    assert R.command_action(st["c_teacher_single"].commands[0], tmp_path, force=True)[0] == "run"
    # finished: skipped as a stage and as a command
    _fake_run(run, steps=10, logged=10, age_s=50)
    assert R.stage_status(st["c_teacher_single"], tmp_path)[0]
    assert R.command_action(st["c_teacher_single"].commands[0], tmp_path, force=False)[0] == "skip"
    # a newer input (a re-exported base teacher) makes it out of date
    _touch(runs / "base_teacher.pt")
    done, why = R.stage_status(st["c_teacher_single"], tmp_path)
    assert not done and why == "out of date: runs/bundled/base_teacher.pt newer than the outputs"
    # d: no run folder, no output
    assert R.stage_status(st["d_teacher"], tmp_path) == (False, "missing runs/bundled/teacher/best.pt")
    assert R.command_action(st["d_teacher"].commands[0], tmp_path, force=False)[0] == "run"
    # f: the old bundled models exist but are older than the new runs -> re-exported
    for m in ("teacher", "teacher_single", "student"):
        _touch(tmp_path / f"lifting/assets/{m}.pt", age_s=1000)
        _touch(runs / m / "best.pt")
    done, why = R.stage_status(st["f_export"], tmp_path)
    assert not done and why.startswith("out of date: runs/bundled/teacher/best.pt")


def test_parallel_groups():
    stages = R.bundled_stages()
    assert [len(g) for g in R._groups(stages, parallel=True)] == [1, 1, 2, 1, 1]
    assert [len(g) for g in R._groups(stages, parallel=False)] == [1] * 6


# --- the runner, with stand-in commands ----------------------------------------------------


def _stand_in_plan(tmp_path, monkeypatch, fail: bool = False):
    """Two 'benchmark' stages whose scripts print a table (the second fails with ``fail``), one
    optional stage whose script is missing; the real runner writes the record and tables."""
    script = _touch(tmp_path / "scripts/fake_bench.py",
                    "import sys\nprint('progress line')\nprint('| model | x |')\nprint('|---|---|')\n"
                    "print(f'| {sys.argv[1]} | 1.0 |')\nsys.exit(int(sys.argv[2]))\n")
    assert script.is_file()
    stages = [R.Stage(f"g_{n}", (R.Command(("scripts/fake_bench.py", n, str(rc))),), (f"runs/bundled/bench/{n}.md",),
                      ("lifting/assets/teacher.pt",), bench=True)
              for n, rc in (("one", 0), ("two", int(fail)))]
    stages.append(R.Stage("g_missing", (R.Command(("scripts/nope.py",)),), ("runs/bundled/bench/missing.md",),
                          bench=True, optional=True))
    monkeypatch.setattr(R, "plan", lambda stage, runs=R.RUNS: stages)
    _touch(tmp_path / "lifting/assets/teacher.pt", age_s=100)


def test_runner_records_runs_skips_and_tables(tmp_path, monkeypatch, capsys):
    _stand_in_plan(tmp_path, monkeypatch)
    assert R.reproduce("bench", root=tmp_path) == 0
    out = capsys.readouterr().out
    assert "[g_one] $ python scripts/fake_bench.py one 0" in out and "[g_one] progress line" in out
    rec = json.loads((tmp_path / "runs/bundled/reproduce.json").read_text())
    ran = [c for c in rec["commands"] if c["status"] == "ran"]
    assert [c["stage"] for c in ran] == ["g_one", "g_two"] and all(c["rc"] == 0 and c["wall_s"] >= 0 for c in ran)
    assert {"stage": "g_missing", "command": "python scripts/nope.py", "status": "skipped",
            "reason": "scripts/nope.py not found"} in rec["commands"]
    assert rec["ok"] is True
    tables = (tmp_path / "runs/bundled/tables.md").read_text()
    assert "## one\n\n`python scripts/fake_bench.py one 0`\n\n| model | x |\n|---|---|\n| one | 1.0 |" in tables
    assert "progress line" not in tables
    assert "fake_bench.py one 0" in (tmp_path / "runs/bundled/logs/g_one.log").read_text()
    # second run: outputs exist and are newer than the model -> skipped; --force reruns
    assert R.reproduce("bench", root=tmp_path) == 0
    rec = json.loads((tmp_path / "runs/bundled/reproduce.json").read_text())
    assert [c["status"] for c in rec["commands"] if c["stage"] in ("g_one", "g_two")] == ["skipped", "skipped"]
    assert R.reproduce("bench", root=tmp_path, force=True) == 0
    rec = json.loads((tmp_path / "runs/bundled/reproduce.json").read_text())
    assert [c["status"] for c in rec["commands"] if c["stage"] in ("g_one", "g_two")] == ["ran", "ran"]
    assert rec["ok"] is True and rec["wall_s"] >= 0
    # a new model makes the benchmarks out of date, and tables.md says so
    _touch(tmp_path / "lifting/assets/teacher.pt")
    assert "out of date" in R.stage_status(R.plan("bench")[0], tmp_path)[1]
    stale = R.tables_md(R.plan("bench"), tmp_path)
    assert "> stale: out of date: lifting/assets/teacher.pt newer than the outputs" in stale


def test_parallel_stages_both_run(tmp_path, monkeypatch):
    _touch(tmp_path / "scripts/slow.py", "import sys, time\ntime.sleep(0.5)\nprint('| t |', sys.argv[1])\n")
    stages = [R.Stage(f"g_{n}", (R.Command(("scripts/slow.py", n)),), (f"runs/bundled/bench/{n}.md",),
                      parallel="p", bench=True) for n in ("x", "y")]
    monkeypatch.setattr(R, "plan", lambda stage, runs=R.RUNS: stages)
    assert R.reproduce("bench", root=tmp_path, parallel=True) == 0
    rec = json.loads((tmp_path / "runs/bundled/reproduce.json").read_text())
    assert sorted(c["stage"] for c in rec["commands"] if c["status"] == "ran") == ["g_x", "g_y"]
    assert (tmp_path / "runs/bundled/bench/y.md").read_text().endswith("| t | y\n")


def test_runner_stops_at_a_failing_command(tmp_path, monkeypatch, capsys):
    _stand_in_plan(tmp_path, monkeypatch, fail=True)
    assert R.reproduce("bench", root=tmp_path) == 1
    assert "error: stage g_two: `python scripts/fake_bench.py two 1` exited with 1" in capsys.readouterr().err
    rec = json.loads((tmp_path / "runs/bundled/reproduce.json").read_text())
    assert rec["ok"] is False
    assert [(c["stage"], c["status"]) for c in rec["commands"]][:2] == [("g_one", "ran"), ("g_two", "failed")]
    assert all(c["stage"] != "g_missing" for c in rec["commands"])  # later stages do not run
    assert not (tmp_path / "runs/bundled/bench/two.md").exists()  # no output from a failed benchmark
    assert "| one | 1.0 |" in (tmp_path / "runs/bundled/tables.md").read_text()


def test_posenet3d_commands_run_through_this_interpreter(tmp_path):
    rc, text, wall = R.execute(R.Command(("posenet3d", "export", "--help")), ROOT, "t", tmp_path / "log")
    assert rc == 0 and "--half" in text and wall >= 0


# --- bench_real ------------------------------------------------------------------------------


def test_bench_real_lifts_and_measures(tmp_path, tiny_mocap_npz, monkeypatch, capsys):
    import make_hdm05_tracks

    from lifting.models.checkpoint import save_checkpoint
    from lifting.skeletons import CANON16
    from lifting.models.teacher import Lifter

    tracks = tmp_path / "tracks.json"
    assert make_hdm05_tracks.main(["-o", str(tracks), "--data", str(tiny_mocap_npz), "--noise-px", "0"]) == 0
    torch.manual_seed(0)
    m = Lifter(16, window=1, width=32, n_blocks=1, root_index=CANON16.root_index)
    ck = save_checkpoint({"model": m.state_dict(), "model_config": m.config, "kind": "teacher"}, tmp_path / "t.pt")
    monkeypatch.setattr(bench_real, "REFERENCES", (("tiny mocap", tiny_mocap_npz, None),
                                                   ("tiny mocap, walk", tiny_mocap_npz, "_walk_")))
    out = tmp_path / "res.json"
    assert bench_real.main([f"tiny={ck}", "--tracks", str(tracks), "--work", str(tmp_path / "w"),
                            "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    r = res["models"]["tiny"]
    assert r["tracks"] == 12 and r["frames"] == 12 * 40 and r["tracks_for_cv"] == 12
    assert 0 <= r["knee_median_deg"] <= 180 and r["bone_cv_median_pct"] >= 0
    from lifting.data import load_mocap_npz
    from lifting.metrics import track_plausibility

    clips = load_mocap_npz(tiny_mocap_npz)  # its joints wiggle independently: bones are not rigid
    assert res["references"]["tiny mocap"] == track_plausibility([clips.clip(k) for k in range(12)])
    assert res["references"]["tiny mocap, walk"]["tracks"] == 4
    text = capsys.readouterr().out
    assert f"| tiny | {r['knee_median_deg']} | {r['knee_below_120_pct']} | {r['bone_cv_median_pct']} (12 tracks) | 480 |" \
        in text
    # the lifted files are what the numbers were made from
    joints = [np.load(f)["joints_3d"] for f in sorted((tmp_path / "w" / "tiny").glob("track_*.npz"))]
    assert track_plausibility(joints)["knee_median_deg"] == r["knee_median_deg"]


@pytest.mark.parametrize("spec", ["noequals", "=x.pt", "a="])
def test_bench_real_bad_model_spec(spec, capsys):
    with pytest.raises(SystemExit):
        bench_real.main([spec])
    assert "NAME=CHECKPOINT" in capsys.readouterr().err


def test_bench_real_missing_tracks(tmp_path, capsys):
    assert bench_real.main(["t=teacher", "--tracks", str(tmp_path / "none.json")]) == 2
    assert "--tracks" in capsys.readouterr().err
