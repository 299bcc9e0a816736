"""The one checkpoint module (lifting.models.checkpoint): every model kind goes through
make_checkpoint -> save -> load_checkpoint -> model_kind / model_class -> build_model unchanged;
the old layout (teacher configs without "arch", the bundled files) still loads; an unknown kind
is a clear CheckpointError; the training config and stages derive from the model configs."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from lifting.body_model import BodyModel
from lifting.models.base import CheckpointError, ModelConfigError
from lifting.models.checkpoint import (MODEL_CLASSES, build_model, export_checkpoint, load_checkpoint,
                                       make_checkpoint, model_class, model_kind, save_checkpoint, stored_args)
from lifting.models.lifters import BUNDLED, bundled_checkpoint, load_lifter
from lifting.models.student import Student, StudentConfig
from lifting.models.teacher import Lifter, TeacherConfig
from occlusion.regressor import ImageRegressor, ImageRegressorConfig, load_image_regressor

ASSETS = Path(__file__).resolve().parents[1] / "lifting" / "assets"


def _models():
    torch.manual_seed(0)
    bm = BodyModel()
    return {
        "teacher": Lifter(16, window=3, width=8, n_blocks=1, use_confidence=True),
        "smpl_student": Student(StudentConfig(window=3, width=8, n_blocks=1), bm),
        "image_regressor": ImageRegressor(ImageRegressorConfig(base_width=8, head_width=16, conorm_after=["layer4"]),
                                          bm, torch.randn(16, 3) * 0.01),
    }


def _inputs(model):
    g = torch.Generator().manual_seed(1)
    if not model.lifts_2d:
        return (torch.randn(2, 3, 64, 64, generator=g), torch.rand(2, 2, 16, 16, generator=g))
    return (torch.randn(2, model.window, 16, 2, generator=g), torch.ones(2, model.window, 16, dtype=torch.bool))


@pytest.mark.parametrize("kind", ["teacher", "smpl_student", "image_regressor"])
def test_every_kind_round_trips(tmp_path, kind):
    model = _models()[kind].eval()
    path = save_checkpoint(make_checkpoint(model, kind="stage-name", step=5), tmp_path / "m.pt")
    ck = load_checkpoint(path)
    assert ck["model_config"]["arch"] == kind and ck["kind"] == "stage-name" and ck["step"] == 5
    assert ("body_model" in ck) == type(model).has_body_model
    assert model_kind(ck) == kind and model_class(ck) is type(model)
    rebuilt = build_model(ck, source=str(path))
    assert type(rebuilt) is type(model) and rebuilt.args == model.args and not rebuilt.training
    assert rebuilt.config == model.config
    for k, v in model.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[k], v), k
    with torch.no_grad():
        a, b = model(*_inputs(model)), rebuilt(*_inputs(model))
    torch.testing.assert_close(type(model).output_joints(b), type(model).output_joints(a), rtol=0, atol=0)


def test_the_image_regressor_loads_through_its_loader_and_is_refused_as_a_lifter(tmp_path):
    model = _models()["image_regressor"]
    path = save_checkpoint(make_checkpoint(model, kind="image"), tmp_path / "img.pt")
    loaded, _ = load_image_regressor(path)
    assert loaded.config == model.config
    with pytest.raises(ModelConfigError, match="mesh-image"):
        load_lifter(path)
    with pytest.raises(ValueError, match="not an image-branch checkpoint"):
        load_image_regressor(bundled_checkpoint("teacher"))


def test_old_layout_teacher_without_arch_still_loads(tmp_path):
    m = Lifter(16, width=8, n_blocks=1)
    old = {k: v for k, v in m.config.items() if k != "arch"}  # written before every kind was recorded
    path = save_checkpoint({"model": m.state_dict(), "model_config": old, "kind": "teacher", "format_version": 1},
                           tmp_path / "old.pt")
    ck = load_checkpoint(path)
    assert model_kind(ck) == "teacher" and model_class(ck) is Lifter
    rebuilt, _ = load_lifter(path)
    assert rebuilt.args == m.args and torch.equal(rebuilt.mlp.out.weight, m.mlp.out.weight)
    # an export keeps the layout it read
    slim = load_checkpoint(export_checkpoint(path, tmp_path / "slim.pt", half=True))
    assert "arch" not in slim["model_config"] and slim["model"]["mlp.out.weight"].dtype == torch.float16
    assert build_model(slim).mlp.out.weight.dtype == torch.float32


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_checkpoints_are_identified_and_built(name):
    path = bundled_checkpoint(name)
    ck = load_checkpoint(path)
    want = Student if name == "student" else Lifter
    assert model_class(ck) is want
    model, _ = load_lifter(name)
    assert type(model) is want and model.args == want.config_class.from_dict(ck["model_config"])


def test_unknown_kind_names_the_known_kinds(tmp_path):
    m = Lifter(16, width=8, n_blocks=1)
    ck = {"model": m.state_dict(), "model_config": dict(m.config, arch="transformer")}
    for call in (lambda: model_kind(ck), lambda: model_class(ck), lambda: build_model(ck)):
        with pytest.raises(CheckpointError) as e:
            call()
        assert "'transformer'" in str(e.value) and all(repr(k) in str(e.value) for k in MODEL_CLASSES)
    path = save_checkpoint(ck, tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="the known kinds are 'teacher', 'smpl_student', 'image_regressor'"):
        load_image_regressor(path)


def test_make_checkpoint_refuses_to_overwrite_the_model_entries():
    with pytest.raises(ValueError, match=r"\['model_config'\]"):
        make_checkpoint(Lifter(16, width=8, n_blocks=1), model_config={"window": 3})


@pytest.mark.parametrize("cls, bad, fragment", [
    (ImageRegressorConfig, {"depth": 19}, "model_config.depth = 19 must be one of 18, 34, 50"),
    (ImageRegressorConfig, {"conorm_after": ["layer9"]}, "must be one of 'layer1'"),
    (ImageRegressorConfig, {"dropout": 1.5}, "model_config.dropout = 1.5 is outside [0, 1]"),
    (StudentConfig, {"num_betas": 0}, "model_config.num_betas = 0 is outside [1, 300]"),
    (StudentConfig, {"arch": "teacher"}, "model_config.arch 'teacher' is not a StudentConfig"),
    (TeacherConfig, {"window": 4}, "must be odd"),
])
def test_model_configs_check_their_fields(cls, bad, fragment):
    with pytest.raises(ModelConfigError) as e:
        cls.from_dict(bad, "src.pt")
    assert fragment in str(e.value) and str(e.value).startswith("src.pt: ")


def test_training_config_and_stages_derive_from_the_model_configs(tiny_cfg_overrides):
    from trainers.config import ModelConfig, StudentConfig as StudentSection, load_config
    from trainers.stages import build_lifter, model_args

    trained = [f.name for f in dataclasses.fields(ModelConfig)]
    assert trained == [n for n in TeacherConfig.specs() if n not in ("num_joints", "root_index", "root_depth")] + [
        "init_checkpoint"]
    assert [f.name for f in dataclasses.fields(StudentSection)] == ["teacher_checkpoint", "learn_marker_offsets"]
    cfg = load_config("student", [*tiny_cfg_overrides, "model.window=3", "model.use_confidence=true",
                                  "body_model.num_betas=8", "student.learn_marker_offsets=false"])
    assert model_args(StudentConfig, cfg) == StudentConfig(window=3, width=cfg.model.width, n_blocks=cfg.model.n_blocks,
                                                           num_betas=8, learn_marker_offsets=False, use_confidence=True)
    assert build_lifter(cfg).args == TeacherConfig(window=3, width=cfg.model.width, n_blocks=cfg.model.n_blocks,
                                                   refine_visible=cfg.model.refine_visible, use_confidence=True)
    from trainers.config import ConfigError

    with pytest.raises(ConfigError, match=r"model.width=9000: model limit: 9000 is outside \[1, 8192\]"):
        load_config("teacher", [*tiny_cfg_overrides, "model.width=9000"])


@pytest.mark.parametrize("args, stage, section", [
    (TeacherConfig(window=3, width=16, n_blocks=2, refine_visible=True, use_confidence=True), "teacher", "model"),
    (StudentConfig(window=5, width=16, n_blocks=1, num_betas=8, learn_marker_offsets=False), "student", "model"),
    (ImageRegressorConfig(depth=34, base_width=8, conorm_after=["layer3"], n_iter=2, head_width=32, dropout=0.25,
                          num_betas=8, use_centermaps=True), "image", "image"),
])
def test_training_overrides_ask_for_the_stored_model(tiny_cfg_overrides, args, stage, section):
    """A checkpoint's model config -> training-config overrides -> the same model config (what
    `posenet3d adapt` needs instead of hand-written key=value strings)."""
    from trainers.config import load_config
    from trainers.stages import model_args, training_overrides

    m = model_class(args.ARCH)
    ck = {"model_config": args.to_dict()}
    ov = training_overrides(stored_args(ck), section)
    assert not any(o.startswith(("model.num_joints", "model.root_index", "model.root_depth")) for o in ov)
    cfg = load_config(stage, [*tiny_cfg_overrides, *ov])
    assert model_args(m.config_class, cfg, section) == args
