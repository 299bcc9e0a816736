"""The trainer: kill-and-resume reproduces an uninterrupted run, resume errors, gradient
accumulation and 2-process data parallelism (torchrun, gloo) match one process."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lifting.checkpoint import load_checkpoint
from lifting.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _log(out: Path) -> list[dict]:
    return [json.loads(ln) for ln in (out / "train_log.jsonl").read_text().splitlines() if ln]


def _assert_same_logs(a: list[dict], b: list[dict], tol: float) -> None:
    assert [r["step"] for r in a] == [r["step"] for r in b]
    for ra, rb in zip(a, b):
        assert set(ra) == set(rb)
        for k in ra:
            assert ra[k] == pytest.approx(rb[k], abs=tol, rel=tol), (ra["step"], k, ra[k], rb[k])


@pytest.mark.parametrize("stage,config", [("teacher", "teacher"), ("student", "student")])
def test_kill_and_resume_reproduces_the_losses(stage, config, tiny_cfg_overrides, tmp_path, monkeypatch, capsys):
    args = ["train", stage, config, *tiny_cfg_overrides, "train.steps=6", "train.eval_every=3", "train.log_every=1"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    # the same run, killed during step 5 (its last checkpoint is from step 3)
    import trainers.stages as stages

    stage_cls = {"teacher": stages.TeacherStage, "student": stages.StudentStage}[stage]
    real_step, calls = stage_cls.step, {"n": 0}

    def dying_step(self, batch):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt("killed")
        return real_step(self, batch)

    monkeypatch.setattr(stage_cls, "step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        main([*args, "--out", str(tmp_path / "b")])
    monkeypatch.setattr(stage_cls, "step", real_step)
    assert load_checkpoint(tmp_path / "b" / "last.pt")["step"] == 3
    assert [r["step"] for r in _log(tmp_path / "b")] == [1, 2, 3, 4]
    assert main([*args, "--out", str(tmp_path / "b"), "--resume", str(tmp_path / "b" / "last.pt")]) == 0
    _assert_same_logs(_log(tmp_path / "a"), _log(tmp_path / "b"), tol=1e-6)
    wa = load_checkpoint(tmp_path / "a" / "last.pt")["model"]
    wb = load_checkpoint(tmp_path / "b" / "last.pt")["model"]
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)


def test_resume_errors(tiny_cfg_overrides, tmp_path, capsys):
    args = ["train", "teacher", "teacher", *tiny_cfg_overrides]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    ck = str(tmp_path / "a" / "last.pt")
    rc = main([*args, "--out", str(tmp_path / "b"), "--resume", str(tmp_path / "missing.pt")])
    assert rc == 2 and "not found" in capsys.readouterr().err
    rc = main([*args, "model.width=64", "--out", str(tmp_path / "b"), "--resume", ck])
    err = capsys.readouterr().err
    assert rc == 2 and "model.width" in err and "differs" in err
    rc = main(["train", "supervised", "supervised", *tiny_cfg_overrides, "--out", str(tmp_path / "b"), "--resume", ck])
    assert rc == 2 and "'teacher' checkpoint" in capsys.readouterr().err
    assert main(["export", ck, str(tmp_path / "slim.pt")]) == 0
    rc = main([*args, "--out", str(tmp_path / "b"), "--resume", str(tmp_path / "slim.pt")])
    assert rc == 2 and "no training state" in capsys.readouterr().err
    # a longer schedule may continue a finished run
    assert main([*args, "train.steps=5", "--out", str(tmp_path / "a"), "--resume", ck]) == 0
    assert load_checkpoint(tmp_path / "a" / "last.pt")["step"] == 5


def test_gradient_accumulation_matches_one_batch(tiny_cfg_overrides, tmp_path):
    args = ["train", "teacher", "teacher", *tiny_cfg_overrides, "train.steps=3", "train.log_every=1"]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    assert main([*args, "train.grad_accum=4", "--out", str(tmp_path / "acc")]) == 0
    _assert_same_logs(_log(tmp_path / "one"), _log(tmp_path / "acc"), tol=1e-4)
    assert main([*args, "train.grad_accum=3", "--out", str(tmp_path / "bad")]) == 2  # 16 % 3 != 0


def test_two_process_data_parallel_matches_one_process(tiny_cfg_overrides, tmp_path):
    """torchrun --nproc_per_node 2 (gloo, CPU): same global batch -> same losses and weights
    as one process, and the ranks' parameters stay identical (checked by the trainer)."""
    args = ["train", "teacher", "teacher", *tiny_cfg_overrides, "train.steps=3", "train.log_every=1",
            "train.threads=1"]
    assert main([*args, "--out", str(tmp_path / "single")]) == 0
    env = dict(os.environ, WANDB_MODE="disabled", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "lifting.cli", *args, "--out", str(tmp_path / "ddp")]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "x 2 ranks (parameters in sync)" in res.stdout + res.stderr
    _assert_same_logs(_log(tmp_path / "single"), _log(tmp_path / "ddp"), tol=1e-4)
    ws = load_checkpoint(tmp_path / "single" / "last.pt")["model"]
    wd = load_checkpoint(tmp_path / "ddp" / "last.pt")["model"]
    assert all(torch.allclose(ws[k], wd[k], atol=1e-5) for k in ws)
