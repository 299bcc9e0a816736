"""Smoke tests of training through the CLI for every stage config (tiny models, 3 steps),
plus config validation."""
from __future__ import annotations

import math

import pytest
import torch

from lifting.cli import main
from lifting.models.lifters import load_lifter
from lifting.models.checkpoint import CheckpointError, export_checkpoint, load_checkpoint, save_checkpoint
from trainers.config import CONFIG_DIR, ConfigError, load_config
from trainers.stages import build_stage

CONFIGS = [
    ("teacher", "teacher", 1),
    ("teacher_temporal", "teacher", 9),
    ("supervised", "supervised", 1),
    ("supervised_temporal", "supervised", 9),
    ("teacher_detector", "teacher", 1),
    ("teacher_detector_temporal", "teacher", 27),
    ("supervised_detector", "supervised", 1),
]


@pytest.mark.parametrize("name,stage,window", CONFIGS)
def test_train_cli_writes_loadable_checkpoints(name, stage, window, tiny_cfg_overrides, tmp_path, capsys):
    out = tmp_path / name
    rc = main(["train", stage, str(CONFIG_DIR / f"{name}.yaml"), *tiny_cfg_overrides, "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "checkpoint:" in captured.out
    assert (out / "last.pt").is_file() and (out / "best.pt").is_file()
    assert (out / "config.yaml").is_file()
    for f in ("last.pt", "best.pt"):
        model, ckpt = load_lifter(out / f)
        assert ckpt["step"] == 3
        assert ckpt["kind"] == stage
        assert model.window == window and not model.training
        assert ckpt["config"]["name"] == name
        assert ckpt["config"]["model"]["width"] == 32
        val = ckpt["val"]
        assert val is not None and all(math.isfinite(v) for v in val.values())
    # the model runs and gives finite output
    x = torch.randn(2, window, 16, 2) * 0.3
    x[..., 0, :] = 0
    assert torch.isfinite(model(x)).all()
    # no temporary files left behind by the atomic writes
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("name,stage,window", CONFIGS)
def test_stage_step_losses_finite(name, stage, window, tiny_cfg_overrides):
    cfg = load_config(CONFIG_DIR / f"{name}.yaml", tiny_cfg_overrides)
    st = build_stage(stage, cfg)
    assert st.kind == stage and st.window == window
    before = {k: v.clone() for k, v in st.lifter.state_dict().items()}
    for step in range(2):
        st.set_lr(step)
        logs = st.step(st.sampler.sample(8, st.generator))
        assert "total" in logs
        assert all(isinstance(v, float) and math.isfinite(v) for v in logs.values()), logs
    if stage == "teacher":
        expected = {"adv", "cycle_3d", "cycle_2d", "reproject", "symmetry", "critic", "total"}
        if window > 1:
            expected |= {"bone_constancy", "smoothness"}
        assert set(logs) == expected
    else:
        assert set(logs) == {"supervised_3d", "total"}
    after = st.lifter.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the lifter was updated


def test_build_stage_unknown_kind(tiny_cfg_overrides):
    cfg = load_config(CONFIG_DIR / "teacher.yaml", tiny_cfg_overrides)
    with pytest.raises(ValueError, match="unknown training stage"):
        build_stage("nonsense", cfg)


def test_lr_schedule(tiny_cfg_overrides):
    cfg = load_config(CONFIG_DIR / "teacher.yaml", [*tiny_cfg_overrides, "train.steps=100"])
    st = build_stage("teacher", cfg)
    assert st.lr_factor(0) == pytest.approx(1.0)
    assert st.lr_factor(100) == pytest.approx(float(cfg.train.min_lr_ratio))
    assert st.lr_factor(50) == pytest.approx(0.5 * (1 + float(cfg.train.min_lr_ratio)))


# --------------------------------------------------------------------------- config


def test_config_merges_base_stage_and_overrides(tiny_cfg_overrides):
    cfg = load_config(CONFIG_DIR / "teacher_temporal.yaml", [*tiny_cfg_overrides, "model.window=5"])
    assert cfg.name == "teacher_temporal"
    assert cfg.model.window == 5 and cfg.model.width == 32 and cfg.train.steps == 3
    assert cfg.train.lr == pytest.approx(2e-4)  # from base.yaml
    assert not hasattr(cfg, "base")
    # a bare name resolves in configs/
    assert load_config("supervised").name == "supervised"
    # each call is independent
    assert load_config("teacher_temporal").model.window == 9


def test_config_unknown_key_names_it():
    with pytest.raises(ConfigError, match="stepz"):
        load_config(CONFIG_DIR / "teacher.yaml", ["train.stepz=3"])
    with pytest.raises(ConfigError, match="nonsense"):
        load_config(CONFIG_DIR / "teacher.yaml", ["nonsense=1"])


def test_config_bad_override_form():
    with pytest.raises(ConfigError, match="key=value"):
        load_config(CONFIG_DIR / "teacher.yaml", ["train.steps"])


def test_config_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not found"):
        load_config("no_such_config")


def test_config_malformed_yaml(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("base: base.yaml\nmodel: [unclosed\n")
    with pytest.raises(ConfigError, match="YAML"):
        load_config(p)
    q = tmp_path / "list.yaml"
    q.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(q)


def test_cli_train_unknown_key_exit_2(tmp_path, capsys, tiny_cfg_overrides):
    out = tmp_path / "run"
    rc = main(["train", "teacher", str(CONFIG_DIR / "teacher.yaml"), *tiny_cfg_overrides, "train.stepz=3",
               "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error:") and "stepz" in err
    assert "Traceback" not in err
    assert not out.exists()


def test_cli_train_missing_config_exit_2(tmp_path, capsys):
    rc = main(["train", "teacher", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error:") and "missing.yaml" in err


def test_cli_train_missing_data_exit_2(tmp_path, capsys, tiny_cfg_overrides):
    overrides = [o for o in tiny_cfg_overrides if not o.startswith("data.npz=")]
    rc = main(["train", "teacher", "teacher", *overrides, f"data.npz={tmp_path / 'none.npz'}",
               "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error:") and "none.npz" in err


# --------------------------------------------------------------------------- checkpoints


def test_checkpoint_roundtrip_and_errors(tmp_path):
    p = save_checkpoint({"model": {"w": torch.ones(2)}, "model_config": {"num_joints": 16}, "step": 7},
                        tmp_path / "sub" / "c.pt")
    ck = load_checkpoint(p)
    assert ck["step"] == 7 and torch.equal(ck["model"]["w"], torch.ones(2))
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "none.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(bad)
    nomodel = save_checkpoint({"step": 1}, tmp_path / "nomodel.pt")
    with pytest.raises(CheckpointError, match="missing 'model'"):
        load_checkpoint(nomodel)


def test_export_checkpoint_strips_training_state(tiny_cfg_overrides, tmp_path, capsys):
    out = tmp_path / "t"
    assert main(["train", "teacher", "teacher", *tiny_cfg_overrides, "--out", str(out)]) == 0
    capsys.readouterr()
    full = load_checkpoint(out / "last.pt")
    assert "train_state" in full
    slim_path = export_checkpoint(out / "last.pt", tmp_path / "slim.pt")
    slim = load_checkpoint(slim_path)
    assert "train_state" not in slim and slim["kind"] == "teacher" and slim["step"] == 3
    m1, _ = load_lifter(out / "last.pt")
    m2, _ = load_lifter(slim_path)
    x = torch.randn(3, 1, 16, 2)
    torch.testing.assert_close(m1(x), m2(x))


def test_cli_train_window_longer_than_clips_exit_2(tmp_path, capsys, tiny_cfg_overrides):
    rc = main(["train", "teacher", "teacher", *tiny_cfg_overrides, "model.window=41", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error:") and "at least 41 frames" in err


def test_wandb_offline_writes_run_directory(tiny_cfg_overrides, tmp_path, monkeypatch, capsys):
    """wandb.mode=offline needs no key and leaves an offline run folder with the config."""
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    out = tmp_path / "run"
    rc = main(["train", "teacher", str(CONFIG_DIR / "teacher.yaml"), *tiny_cfg_overrides,
               "wandb.mode=offline", f"train.out_dir={tmp_path}", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    runs = list(tmp_path.rglob("offline-run-*"))
    assert f"wandb sync {runs[0]}" in captured.out  # where the run went and how to upload it
    assert runs, "no offline run directory written"
    assert any(p.name.endswith(".wandb") for p in runs[0].rglob("*")), "offline run has no .wandb log"
    assert (out / "val_sample.png").is_file()  # the per-evaluation sample figure logged to W&B
    assert list(runs[0].rglob("*.png")), "the sample figure did not reach the W&B run"


def test_wandb_disabled_in_the_environment_wins_over_the_config(tiny_cfg_overrides, tmp_path, monkeypatch):
    """WANDB_MODE=disabled (as in CI) keeps even a wandb.mode=offline run from writing a W&B run."""
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    assert main(["train", "teacher", str(CONFIG_DIR / "teacher.yaml"), *tiny_cfg_overrides, "wandb.mode=offline",
                 f"train.out_dir={tmp_path}", "--out", str(tmp_path / "run")]) == 0
    assert not list(tmp_path.rglob("offline-run-*")) and (tmp_path / "run" / "last.pt").is_file()


def test_train_device_errors(tiny_cfg_overrides, capsys):
    rc = main(["train", "teacher", "teacher", *tiny_cfg_overrides, "train.device=tpu"])
    assert rc == 2 and "train.device" in capsys.readouterr().err
    if not torch.cuda.is_available():
        rc = main(["train", "teacher", "teacher", *tiny_cfg_overrides, "train.device=cuda"])
        assert rc == 2 and "no GPU" in capsys.readouterr().err
