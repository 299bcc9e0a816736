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

from lifting.models.checkpoint import load_checkpoint
from lifting.cli import main
from lifting.skeletons import CANON16
from trainers.config import CONFIG_DIR, load_config
from trainers.stages import FinetuneStage, augment_2d, build_stage, draw_augmentation

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
    assert main([*args, "--out", str(tmp_path / "b")]) == 130  # Ctrl-C: a hint, not a traceback
    assert "--resume" in capsys.readouterr().err
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


@pytest.mark.slow  # run by .ci/run (pytest -m slow), not by the README's default command
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


def test_finetune_trains_both_and_exports_the_teacher(tiny_cfg_overrides, tmp_path, capsys):
    """Stage 3 through the CLI: tiny teacher -> tiny student -> joint fine-tuning; both
    networks change, the checkpoint holds both, and the teacher can be exported and evaluated."""
    t, s, f = tmp_path / "t", tmp_path / "s", tmp_path / "f"
    assert main(["train", "teacher", "teacher", *tiny_cfg_overrides, "--out", str(t)]) == 0
    assert main(["train", "student", "student", *tiny_cfg_overrides, f"student.teacher_checkpoint={t / 'last.pt'}",
                 "--out", str(s)]) == 0
    args = ["train", "finetune", "finetune", *tiny_cfg_overrides, f"student.teacher_checkpoint={t / 'last.pt'}",
            f"model.init_checkpoint={s / 'last.pt'}", "train.log_every=1"]
    assert main([*args, "--out", str(f)]) == 0, capsys.readouterr().err
    ck = load_checkpoint(f / "last.pt")
    assert ck["kind"] == "finetune" and "teacher_model" in ck
    assert "pa_mpjpe_mm" in ck["val"] and "teacher_pa_mpjpe_mm" in ck["val"]
    t0, s0 = load_checkpoint(t / "last.pt")["model"], load_checkpoint(s / "last.pt")["model"]
    assert any(not torch.equal(t0[k], ck["teacher_model"][k]) for k in t0)  # the teacher trained too
    assert any(not torch.equal(s0[k], ck["model"][k]) for k in s0)
    logs = _log(f)
    assert {"teacher_cycle_3d", "student_distill", "agree_teacher", "student_cycle", "critic"} <= set(logs[0])
    assert main(["export", str(f / "last.pt"), str(tmp_path / "ft_teacher.pt"), "--which", "teacher"]) == 0
    from lifting.models.lifters import load_lifter
    from lifting.models.teacher import Lifter

    model, slim = load_lifter(tmp_path / "ft_teacher.pt")
    assert isinstance(model, Lifter) and slim["kind"] == "teacher"
    assert all(torch.equal(model.state_dict()[k], ck["teacher_model"][k]) for k in ck["teacher_model"])
    assert main(["export", str(t / "last.pt"), str(tmp_path / "x.pt"), "--which", "teacher"]) == 2
    # resume works for the three-optimiser stage too
    assert main([*args, "train.steps=4", "--out", str(f), "--resume", str(f / "last.pt")]) == 0
    assert load_checkpoint(f / "last.pt")["step"] == 4
    # fine-tuning without a student is refused
    cfg = [*tiny_cfg_overrides, "model.init_checkpoint=null"]
    assert main(["train", "finetune", "finetune", *cfg, "--out", str(tmp_path / "g")]) == 2


def test_pose_bank_and_unpaired_3d_prior_mode(tiny_cfg_overrides, tiny_mocap_npz, tmp_path, capsys):
    """The optional HMR prior: a pose bank fitted to mocap, then fine-tuning with the factorized
    SMPL discriminator (its loss is logged; its weights are checkpointed)."""
    import numpy as np

    from lifting.models.discriminators import SMPLDiscriminator
    from lifting.pose_bank import PoseBankError, load_pose_bank

    bank = tmp_path / "bank.npz"
    assert main(["pose-bank", "--data", str(tiny_mocap_npz), "--frames", "64", "--iters", "150",
                 "-o", str(bank)]) == 0
    assert "marker fit error" in capsys.readouterr().out
    with np.load(bank) as z:
        assert z["body_pose"].shape == (64, 69) and z["betas"].shape == (10,)
        assert float(np.mean(z["fit_error_mm"])) < 30.0  # the synthetic skeleton is fitted closely
    loaded = load_pose_bank(bank)
    d = SMPLDiscriminator()
    assert d(loaded["body_pose"][:5], loaded["betas"][:5]).shape == (5, 25)
    with pytest.raises(ValueError, match="expects"):
        d(loaded["body_pose"][:5, :22], loaded["betas"][:5])
    with pytest.raises(PoseBankError, match="not found"):
        load_pose_bank(tmp_path / "none.npz")
    t, s = tmp_path / "t", tmp_path / "s"
    assert main(["train", "teacher", "teacher", *tiny_cfg_overrides, "--out", str(t)]) == 0
    assert main(["train", "student", "student", *tiny_cfg_overrides, f"student.teacher_checkpoint={t / 'last.pt'}",
                 "--out", str(s)]) == 0
    args = ["train", "finetune", "finetune", *tiny_cfg_overrides, f"student.teacher_checkpoint={t / 'last.pt'}",
            f"model.init_checkpoint={s / 'last.pt'}", "prior_3d.enabled=true", "train.log_every=1"]
    assert main([*args, "--out", str(tmp_path / "no_bank")]) == 2
    assert "pose_bank" in capsys.readouterr().err
    assert main([*args, f"prior_3d.pose_bank={bank}", "--out", str(tmp_path / "f")]) == 0
    assert {"prior_3d_adv", "smpl_disc"} <= set(_log(tmp_path / "f")[0])
    assert "smpl_disc" in load_checkpoint(tmp_path / "f" / "last.pt")["train_state"]


def test_critic_warmup_keeps_the_networks(tiny_cfg_overrides, tmp_path):
    """During ``train.critic_warmup`` only the critic trains: a teacher and a fine-tuning run
    whose warm-up covers every step end with the weights they started from."""
    t, s, f = tmp_path / "t", tmp_path / "s", tmp_path / "f"
    assert main(["train", "teacher", "teacher", *tiny_cfg_overrides, "--out", str(t)]) == 0
    assert main(["train", "teacher", "teacher", *tiny_cfg_overrides, f"model.init_checkpoint={t / 'last.pt'}",
                 "train.critic_warmup=100000", "--out", str(tmp_path / "t2")]) == 0
    t_start, t_end = load_checkpoint(t / "last.pt")["model"], load_checkpoint(tmp_path / "t2" / "last.pt")["model"]
    assert all(torch.equal(t_start[k], t_end[k]) for k in t_start)
    assert main(["train", "student", "student", *tiny_cfg_overrides, f"student.teacher_checkpoint={t / 'last.pt'}",
                 "--out", str(s)]) == 0
    assert main(["train", "finetune", "finetune", *tiny_cfg_overrides, f"student.teacher_checkpoint={t / 'last.pt'}",
                 f"model.init_checkpoint={s / 'last.pt'}", "train.critic_warmup=3", "--out", str(f)]) == 0
    ck = load_checkpoint(f / "last.pt")
    s0, t0 = load_checkpoint(s / "last.pt")["model"], load_checkpoint(t / "last.pt")["model"]
    assert all(torch.equal(s0[k], ck["model"][k]) for k in s0)
    assert all(torch.equal(t0[k], ck["teacher_model"][k]) for k in t0)


_NO_DETECTOR_ERRORS = ("aug.noise_oks_max=0", "aug.burst_prob=0", "aug.swap_prob=0", "aug.cut_prob=0")


@pytest.mark.parametrize("drop_prob", [1.0, 0.0])
def test_joint_dropout_without_detector_errors(tiny_cfg_overrides, drop_prob):
    """``aug.drop_prob`` masks joints with detector-like errors off too (issue 20: the dropout was
    drawn only with them): at 1 every window loses 1..``drop_max`` non-root joints, the same ones
    in every frame; at 0 none."""
    cfg = load_config(CONFIG_DIR / "teacher.yaml", [*tiny_cfg_overrides, *_NO_DETECTOR_ERRORS,
                                                    f"aug.drop_prob={drop_prob}", "aug.drop_max=3"])
    B, T, J, root = 64, 3, CANON16.num_joints, CANON16.root_index
    plan = draw_augmentation(B, T, J, cfg, root, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert plan.detector is None  # the case of the bug: no detector-like errors
    mask = torch.ones(B, T, J, dtype=torch.bool)
    _, m_in, _, _ = augment_2d(torch.randn(B, T, J, 2), mask, cfg, root, torch.Generator().manual_seed(0))
    dropped = (~m_in).sum(-1)  # (B, T)
    if drop_prob == 0:
        assert torch.equal(m_in, mask)
    else:
        assert bool(((dropped >= 1) & (dropped <= 3)).all()), dropped
        assert torch.equal(m_in, m_in[:, :1].expand_as(m_in)) and bool(m_in[..., root].all())


def _record_step_grads(stage) -> dict[str, list[torch.Tensor]]:
    """Wrap every optimiser's ``step`` of ``stage`` to record copies of the gradients it steps with
    (unscaled, as the optimiser sees them), by optimiser name."""
    seen: dict[str, list[torch.Tensor]] = {}
    for name, opt in stage.optimizers.items():
        def step(*a, _name=name, _opt=opt, _step=opt.step, **kw):
            seen[_name] = [p.grad.clone() for g in _opt.param_groups for p in g["params"] if p.grad is not None]
            return _step(*a, **kw)

        opt.step = step
    return seen


def test_finetune_loss_scaling_leaves_every_optimisers_gradients_unchanged(tiny_cfg_overrides, tmp_path):
    """fp16 loss scaling (a GradScaler per optimiser; here enabled on the CPU, each with its own
    power-of-two scale, exact in fp32) must not change the gradients any optimiser steps with.
    FinetuneStage scales its joint student + teacher loss with the "lifter" scaler, so the
    teacher's optimiser must be unscaled and stepped by that scaler too (issue 20: it was stepped
    with the "teacher" scaler, which never scaled a loss: an error, or a wrong unscale factor)."""
    t, s = tmp_path / "t", tmp_path / "s"
    assert main(["train", "teacher", "teacher", *tiny_cfg_overrides, "train.steps=1", "--out", str(t)]) == 0
    assert main(["train", "student", "student", *tiny_cfg_overrides, "train.steps=1",
                 f"student.teacher_checkpoint={t / 'last.pt'}", "--out", str(s)]) == 0
    cfg = load_config(CONFIG_DIR / "finetune.yaml", [
        *tiny_cfg_overrides, f"student.teacher_checkpoint={t / 'last.pt'}", f"model.init_checkpoint={s / 'last.pt'}",
        "train.critic_warmup=0", "train.grad_clip=0"])  # no clipping: it would hide a wrong gradient scale
    grads, params = {}, {}
    for scaled in (False, True):
        stage = build_stage("finetune", cfg)
        assert isinstance(stage, FinetuneStage)
        if scaled:
            stage.scalers = {name: torch.amp.GradScaler("cpu", init_scale=2.0 ** (3 + 4 * i))
                             for i, name in enumerate(stage.scalers)}
        grads[scaled] = _record_step_grads(stage)
        stage.step(stage.sampler.sample(cfg.train.batch_size, torch.Generator().manual_seed(0)))
        params[scaled] = {k: v.detach().clone() for k, v in stage.teacher.state_dict().items()}
    assert set(grads[True]) == set(grads[False]) == {"lifter", "teacher", "critic"}
    assert any(bool(g.abs().sum() > 0) for g in grads[False]["teacher"])  # the teacher does train
    for name, plain in grads[False].items():
        assert len(plain) == len(grads[True][name])
        for a, b in zip(plain, grads[True][name]):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-12, msg=lambda m, n=name: f"{n}: {m}")
    for k, v in params[False].items():
        torch.testing.assert_close(params[True][k], v, rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------------- reliability
# A subprocess that trains and SIGKILLs itself while writing its N-th last.pt (after half the
# bytes reached the temporary file, before the atomic rename), as a kill or power loss would.
_DYING = """
import os, signal, sys
import torch
from lifting.cli import main
real_save, die_at, calls = torch.save, int(sys.argv[1]), [0]
def dying_save(obj, path):
    real_save(obj, path)
    if os.path.basename(str(path)).startswith(".last."):
        calls[0] += 1
        if calls[0] == die_at:
            with open(path, "r+b") as f:
                f.truncate(os.path.getsize(path) // 2)
            os.kill(os.getpid(), signal.SIGKILL)
torch.save = dying_save
sys.exit(main(sys.argv[2:]))
"""


def _run_dying(die_at: int, args: list[str], cwd: Path) -> None:
    env = dict(os.environ, WANDB_MODE="disabled", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-c", _DYING, str(die_at), *args], env=env, capture_output=True, text=True,
                         timeout=300, cwd=cwd)
    assert res.returncode == -9, res.stdout[-2000:] + res.stderr[-2000:]


def _hidden(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name.startswith("."))


def test_killed_during_first_save_says_so_and_a_new_run_cleans_up(tiny_cfg_overrides, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "teacher", "teacher", *tiny_cfg_overrides, "train.steps=6", "train.eval_every=3",
            "--out", str(out)]
    _run_dying(1, args, tmp_path)
    assert not (out / "last.pt").exists() and [n for n in _hidden(out) if n.startswith(".last.")]
    rc = main([*args, "--resume", str(out / "last.pt")])
    err = capsys.readouterr().err
    assert rc == 2 and "killed while writing its first checkpoint" in err and "without --resume" in err
    assert main(args) == 0  # starting again in the same folder removes the partial file
    assert _hidden(out) == [] and load_checkpoint(out / "last.pt")["step"] == 6


def test_kill_then_resume_with_a_torn_log_line_cleans_up(tiny_cfg_overrides, tmp_path):
    out = tmp_path / "run"
    args = ["train", "teacher", "teacher", *tiny_cfg_overrides, "train.steps=6", "train.eval_every=3",
            "train.log_every=1", "--out", str(out)]
    _run_dying(2, args, tmp_path)  # dies saving step 6: last.pt is step 3's
    assert load_checkpoint(out / "last.pt")["step"] == 3 and [n for n in _hidden(out) if n.startswith(".last.")]
    log = (out / "train_log.jsonl").read_text()
    (out / "train_log.jsonl").write_text(log[: len(log) - 25])  # the last line torn mid-record
    with pytest.raises(json.JSONDecodeError):
        _log(out)
    assert main([*args, "--resume", str(out / "last.pt")]) == 0
    assert _hidden(out) == []
    assert [r["step"] for r in _log(out)] == [1, 2, 3, 4, 5, 6]
    assert load_checkpoint(out / "last.pt")["step"] == 6


def test_interrupted_before_the_first_checkpoint(tiny_cfg_overrides, tmp_path, monkeypatch, capsys):
    import trainers.stages as stages

    def interrupted(self, batch):
        raise KeyboardInterrupt

    monkeypatch.setattr(stages.TeacherStage, "step", interrupted)
    assert main(["train", "teacher", "teacher", *tiny_cfg_overrides, "--out", str(tmp_path / "r")]) == 130
    assert "nothing to resume" in capsys.readouterr().err


def test_resume_past_train_steps_and_into_another_folder(tiny_cfg_overrides, tmp_path, capsys):
    args = ["train", "teacher", "teacher", *tiny_cfg_overrides]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    ck = str(tmp_path / "a" / "last.pt")
    rc = main([*args, "train.steps=2", "--out", str(tmp_path / "b"), "--resume", ck])
    assert rc == 2 and "train.steps=2" in capsys.readouterr().err
    # nothing left to train: the checkpoint it prints exists
    assert main([*args, "--out", str(tmp_path / "c"), "--resume", ck]) == 0
    printed = capsys.readouterr().out.split("checkpoint: ")[-1].strip()
    assert Path(printed).is_file() and load_checkpoint(printed)["step"] == 3


def test_progress_bar_refreshes_every_few_seconds_in_logs(tiny_cfg_overrides, tmp_path, monkeypatch):
    import trainers.loop as loop

    seen = {}

    class Recording(loop.tqdm):
        def __init__(self, *a, **kw):
            seen.update(kw)
            super().__init__(*a, **kw)

    monkeypatch.setattr(loop, "tqdm", Recording)
    assert main(["train", "teacher", "teacher", *tiny_cfg_overrides, "--out", str(tmp_path / "r")]) == 0
    assert seen["mininterval"] <= 5.0  # stderr is not a terminal under pytest (a log file)


def test_optimisers_are_named_after_their_models(tiny_cfg_overrides, tmp_path):
    t, s, f = tmp_path / "t", tmp_path / "s", tmp_path / "f"
    assert main(["train", "teacher", "teacher", *tiny_cfg_overrides, "--out", str(t)]) == 0
    state = load_checkpoint(t / "last.pt")["train_state"]
    assert set(state["optimizers"]) == set(state["scalers"]) == {"lifter", "critic"}
    assert main(["train", "student", "student", *tiny_cfg_overrides, f"student.teacher_checkpoint={t / 'last.pt'}",
                 "--out", str(s)]) == 0
    assert main(["train", "finetune", "finetune", *tiny_cfg_overrides, f"student.teacher_checkpoint={t / 'last.pt'}",
                 f"model.init_checkpoint={s / 'last.pt'}", "train.steps=1", "--out", str(f)]) == 0
    assert set(load_checkpoint(f / "last.pt")["train_state"]["optimizers"]) == {"lifter", "critic", "teacher"}


def test_a_new_run_that_fails_before_its_first_checkpoint_leaves_nothing(tiny_cfg_overrides, tmp_path, monkeypatch,
                                                                         capsys):
    """A full disk at the first checkpoint (issue 22 audit: config.yaml and train_log.jsonl were
    left without a checkpoint): a clear error, and no partial run folder."""
    import trainers.loop as loop

    def full_disk(obj, path):
        raise OSError(f"could not write the checkpoint {path} (No space left on device); is the disk full?")

    monkeypatch.setattr(loop, "save_checkpoint", full_disk)
    out = tmp_path / "run"
    rc = main(["train", "teacher", "teacher", *tiny_cfg_overrides, "train.steps=3", "train.eval_every=3",
               "--out", str(out)])
    assert rc == 2 and "disk full" in capsys.readouterr().err
    assert not out.exists()
