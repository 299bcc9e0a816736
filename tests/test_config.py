"""The typed training config (trainers.config): every shipped YAML loads in the schema, bad
values are refused on load with the key named, unknown keys get a "did you mean", and the
per-stage checks catch missing files and checkpoints of the wrong kind. All CPU, no training."""
from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest
import dataclasses

from omegaconf import OmegaConf

from lifting.cli import main
from trainers.config import CONFIG_DIR, ConfigError, TrainConfig, check_stage, load_config, section_type


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_yaml_loads_in_the_schema(path):
    cfg = load_config(path)
    assert type(cfg) is TrainConfig  # the typed config itself is what the code receives
    assert all(dataclasses.is_dataclass(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)
               if f.name not in ("name", "seed"))  # every section typed too
    # typed: no casts needed downstream
    assert isinstance(cfg.train.steps, int) and isinstance(cfg.train.lr, float)
    assert isinstance(cfg.model.window, int) and cfg.model.window % 2 == 1


def _leaf_keys(cls, prefix=""):
    for f in fields(cls):
        if section_type(f) is not None:
            yield from _leaf_keys(section_type(f), prefix + f.name + ".")
        else:
            yield prefix + f.name


def test_base_yaml_sets_every_key_and_no_other():
    base = OmegaConf.load(CONFIG_DIR / "base.yaml")
    flat = set()

    def walk(node, prefix=""):
        for k, v in node.items():
            if OmegaConf.is_dict(v):
                walk(v, f"{prefix}{k}.")
            else:
                flat.add(f"{prefix}{k}")
    walk(base)
    assert flat == set(_leaf_keys(TrainConfig))


def test_reserved_track_keys_default_off():
    cfg = load_config("teacher")
    assert list(cfg.data.tracks) == [] and list(cfg.data.mix) == [] and list(cfg.critic.real_tracks) == []
    assert cfg.data.tracks_fps is None and cfg.data.tracks_conf_threshold == 0.3 and cfg.data.val_tracks == 0.1


# every finding of the issue: (override, the key the message must name, a phrase it must contain)
BAD = [
    ("train.lr=nan", "train.lr", "finite"),
    ("train.lr=inf", "train.lr", "finite"),
    ("train.lr=abc", "train.lr", "Float"),
    ("train.lr=-1e-4", "train.lr", "> 0"),
    ("model.window=0", "model.window", "odd"),
    ("model.window=-3", "model.window", "odd"),
    ("model.window=2", "model.window", "odd"),
    ("train.batch_size=0", "train.batch_size", ">= 1"),
    ("train.batch_size=-4", "train.batch_size", ">= 1"),
    ("train.eval_every=0", "train.eval_every", ">= 1"),
    ("train.log_every=0", "train.log_every", ">= 1"),
    ("data.n_views=0", "data.n_views", ">= 1"),
    ("train=5", "train", "section"),
    ("model.width=0", "model.width", ">= 1"),
    ("model.n_blocks=-1", "model.n_blocks", ">= 1"),
    ("aug.noise_prob=2", "aug.noise_prob", "[0.0, 1.0]"),
    ("train.steps=0", "train.steps", ">= 1"),
    ("train.steps=abc", "train.steps", "Integer"),
    ("data.camera_height=[4,1]", "data.camera_height", "low <= high"),
    ("data.camera_height=[1]", "data.camera_height", "[low, high]"),
    ("aug.drop_max=100", "aug.drop_max", "non-root joints"),
    ("wandb.mode=sometimes", "wandb.mode", "online, offline, disabled"),
    ("train.device=tpu", "train.device", "cuda:N"),
    ("data.balance=rare", "data.balance", "content, none"),
    ("data.val_split=validation", "data.val_split", "train, val, test, all"),
    ("image.terse.prob=1.5", "image.terse.prob", "[0.0, 1.0]"),
    ("image.depth=20", "image.depth", "18, 34, 50"),
    ("image.conorm_after=[layer5]", "image.conorm_after", "layer4"),
    ("loss.teacher.adv=-1", "loss.teacher.adv", ">= 0"),
    ("seed=-1", "seed", ">= 0"),
    ("data.tracks_conf_threshold=1.5", "data.tracks_conf_threshold", "[0.0, 1.0]"),
    ("data.val_tracks=1.0", "data.val_tracks", "1.0)"),
    ("data.tracks_fps=0", "data.tracks_fps", "> 0"),
    ("data.mix=[1,1]", "data.mix", "two weights"),
    ("train.fp16=true", "train.fp16", "choose one"),  # with train.bf16=true below
    ("model.window=null", "model.window", "model.window"),
]


@pytest.mark.parametrize("override,key,phrase", BAD, ids=[b[0] for b in BAD])
def test_bad_values_name_the_key(override, key, phrase):
    extra = ["train.bf16=true"] if override.startswith("train.fp16") else []
    with pytest.raises(ConfigError) as e:
        load_config("teacher", [*extra, override])
    assert key in str(e.value) and phrase in str(e.value), str(e.value)


@pytest.mark.parametrize("override,key", [("train.lr=nan", "train.lr"), ("train=5", "train"),
                                          ("train.steps=0", "train.steps"), ("aug.drop_max=100", "aug.drop_max"),
                                          ("data.camera_height=[4,1]", "data.camera_height")])
def test_cli_bad_value_exit_2_naming_the_key(override, key, tmp_path, capsys):
    rc = main(["train", "teacher", "teacher", override, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error:") and key in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()  # refused before anything is written


@pytest.mark.parametrize("override,suggestion", [("train.stepz=3", "train.steps"),
                                                 ("loss.adv=1", "loss.teacher.adv"),
                                                 ("loss.image_distill=0.2", "loss.image.distill"),
                                                 ("modl.window=3", "model")])
def test_unknown_key_did_you_mean(override, suggestion):
    with pytest.raises(ConfigError, match="unknown config key") as e:
        load_config("teacher", [override])
    assert f"did you mean {suggestion!r}" in str(e.value), str(e.value)


def test_stage_file_errors_name_the_file_and_key(tmp_path):
    p = tmp_path / "mine.yaml"
    p.write_text("base: %s\ntrain:\n  stepz: 3\n" % (CONFIG_DIR / "base.yaml"))
    with pytest.raises(ConfigError, match=r"train\.stepz.*mine\.yaml"):
        load_config(p)
    p.write_text("base: %s\nmodel:\n  width: wide\n" % (CONFIG_DIR / "base.yaml"))
    with pytest.raises(ConfigError, match=r"model\.width.*mine\.yaml"):
        load_config(p)
    q = tmp_path / "nobase.yaml"  # no base: every key must be set
    q.write_text("name: x\n")
    with pytest.raises(ConfigError, match="has no value"):
        load_config(q)


def test_configs_are_independent():
    a = load_config("teacher", ["train.steps=7"])
    b = load_config("teacher")
    assert a.train.steps == 7 and b.train.steps != 7


# --------------------------------------------------------------------------- per-stage checks


def test_student_checkpoint_where_a_teacher_is_expected(tiny_cfg_overrides):
    cfg = load_config("student", [*tiny_cfg_overrides, "student.teacher_checkpoint=student"])
    with pytest.raises(ConfigError, match=r"student\.teacher_checkpoint.*SMPL student.*teacher lifter"):
        check_stage(cfg, "student")
    cfg = load_config("student", [*tiny_cfg_overrides, "model.init_checkpoint=teacher"])
    with pytest.raises(ConfigError, match=r"model\.init_checkpoint.*teacher lifter.*SMPL student"):
        check_stage(cfg, "student")
    cfg = load_config("teacher", [*tiny_cfg_overrides, "model.init_checkpoint=student"])
    with pytest.raises(ConfigError, match=r"model\.init_checkpoint.*SMPL student.*teacher lifter"):
        check_stage(cfg, "teacher")
    cfg = load_config("finetune", [*tiny_cfg_overrides])
    check_stage(cfg, "finetune")  # bundled teacher + bundled student: fine


def test_cli_student_checkpoint_as_teacher_exit_2(tiny_cfg_overrides, tmp_path, capsys):
    rc = main(["train", "student", "student", *tiny_cfg_overrides, "student.teacher_checkpoint=student",
               "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert rc == 2 and "student.teacher_checkpoint" in err and "Traceback" not in err


def test_missing_files_name_the_key(tiny_cfg_overrides, tmp_path):
    def cfg(name, *extra):
        return load_config(name, [*tiny_cfg_overrides, *extra])

    with pytest.raises(ConfigError, match=r"data\.npz.*none\.npz"):
        check_stage(cfg("teacher", f"data.npz={tmp_path / 'none.npz'}"), "teacher")
    with pytest.raises(ConfigError, match=r"student\.teacher_checkpoint.*not found"):
        check_stage(cfg("student", f"student.teacher_checkpoint={tmp_path / 'none.pt'}"), "student")
    with pytest.raises(ConfigError, match=r"prior_3d\.pose_bank"):
        check_stage(cfg("finetune", "prior_3d.enabled=true"), "finetune")
    with pytest.raises(ConfigError, match=r"body_model\.path"):
        check_stage(cfg("student", f"body_model.path={tmp_path / 'smpl'}"), "student")
    with pytest.raises(ConfigError, match=r"data\.tracks\[0\]"):
        check_stage(cfg("teacher", f"data.tracks=[{tmp_path / 'no_tracks.json'}]"), "teacher")
    with pytest.raises(ConfigError, match=r"image\.train_annotations"):
        check_stage(cfg("image", f"image.train_images={tmp_path}", f"image.train_annotations={tmp_path / 'a.json'}"),
                    "image")
    with pytest.raises(ConfigError, match=r"model\.init_checkpoint is not set"):
        check_stage(cfg("finetune", "model.init_checkpoint=null"), "finetune")
    with pytest.raises(ConfigError, match="unknown training stage"):
        check_stage(cfg("teacher"), "nonsense")


def test_data_functions_name_the_setting(tiny_mocap_npz):
    """Library calls below the config (lifting.data) say which setting a bad value belongs to."""
    from lifting.data import WindowSampler, load_mocap_npz, project_clips

    clips = load_mocap_npz(tiny_mocap_npz)
    with pytest.raises(ValueError, match=r"data\.camera_height"):
        project_clips(clips, 2, height_range=(4.0, 1.0))
    with pytest.raises(ValueError, match=r"data\.n_views"):
        project_clips(clips, 0)
    proj = project_clips(clips.select(np.arange(2)), 1)
    with pytest.raises(ValueError, match=r"model\.window=41"):
        WindowSampler(proj, 41)
    with pytest.raises(ValueError, match=r"data\.balance"):
        WindowSampler(proj, 1, "rare")
