"""Checkpoint loading (lifting.models.lifters): bundled names, corrupt model configs (each a clear
ModelConfigError naming the field, built on the meta device so no huge allocation happens),
arch/weights consistency, body-model identity checks."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lifting.body_model import BodyModel, BodyModelError
from lifting.models.checkpoint import CheckpointError, save_checkpoint
from lifting.cli import main
from lifting.models.lifters import BUNDLED, ModelConfigError, check_model_config, load_lifter
from lifting.models.student import Student, StudentConfig
from lifting.models.teacher import Lifter

sys.path.insert(0, str(Path(__file__).parent))
from test_body_model import _random_smpl  # noqa: E402


@pytest.fixture(scope="module")
def small_model():
    path_dir = Path(__import__("tempfile").mkdtemp())
    np.savez(path_dir / "SMPL_NEUTRAL.npz", **_random_smpl(V=60, seed=11))
    return path_dir / "SMPL_NEUTRAL.npz"


def _teacher(tmp_path: Path, **cfg_changes) -> Path:
    m = Lifter(16, width=8, n_blocks=1)
    return save_checkpoint({"model": m.state_dict(), "model_config": dict(m.config, **cfg_changes),
                            "kind": "teacher"}, tmp_path / "teacher.pt")


def _student(tmp_path: Path, bm: BodyModel, **cfg_changes) -> Path:
    st = Student(StudentConfig(width=8, n_blocks=1), bm)
    return save_checkpoint({"model": st.state_dict(), "model_config": dict(st.config, **cfg_changes),
                            "body_model": bm.describe(), "kind": "student"}, tmp_path / "student.pt")


@pytest.mark.parametrize("change,fragment", [
    ({"window": -1}, "model_config.window = -1 is outside [1, 1023]"),
    ({"window": 0}, "model_config.window = 0"),
    ({"window": 4}, "window = 4 must be odd"),
    ({"window": 10**6 + 1}, "model_config.window"),
    ({"window": "3"}, "model_config.window must be int, got '3'"),
    ({"window": True}, "model_config.window must be int"),
    ({"width": 2_000_000}, "model_config.width = 2000000 is outside [1, 8192]"),
    ({"width": 8.0}, "model_config.width must be int"),
    ({"width": 10**400}, "model_config.width"),
    ({"n_blocks": 1_000_000}, "model_config.n_blocks = 1000000 is outside [0, 64]"),
    ({"root_depth": math.nan}, "model_config.root_depth"),
    ({"root_depth": -1.0}, "model_config.root_depth"),
    ({"root_index": 16}, "model_config.root_index"),
    ({"num_joints": 17}, "17 joints, expected 16"),
    ({"refine_visible": "yes"}, "model_config.refine_visible must be bool"),
    ({"dropout": 0.1}, "['dropout'] are not fields of the 'teacher' model config"),
    # teacher fields under a student arch
    ({"arch": "smpl_student"}, "are not fields of the 'smpl_student' model config"),
    ({"arch": "image_regressor"}, "mesh-image"),
    ({"arch": "transformer"}, "unknown model_config.arch 'transformer'"),
])
def test_corrupt_teacher_configs_are_clear_errors(tmp_path, change, fragment):
    p = _teacher(tmp_path, **change)
    with pytest.raises(ModelConfigError) as e:
        load_lifter(p)
    assert fragment in str(e.value) and str(p) in str(e.value)


def test_corrupt_configs_through_the_cli(tmp_path, capsys):
    example = Path(__file__).resolve().parents[1] / "lifting" / "assets" / "example_track.json"
    if not example.is_file():
        pytest.skip("bundled example track lifting/assets/example_track.json not present")
    for change in ({"window": -1}, {"width": 2_000_000}, {"n_blocks": 1_000_000}):
        p = _teacher(tmp_path, **change)
        out = tmp_path / "out"
        rc = main(["lift", str(example), "-o", str(out), "--checkpoint", str(p)])
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith("error:") and next(iter(change)) in err and "Traceback" not in err
        assert not out.exists()


def test_config_that_fits_its_ranges_but_not_its_weights(tmp_path, small_model):
    # a consistent-looking config whose sizes are not the stored weights' (no allocation: meta)
    p = _teacher(tmp_path, width=4096, n_blocks=64)
    with pytest.raises(ModelConfigError, match=r"weights do not match the model config .*mlp\.inp\.weight"):
        load_lifter(p)
    # a teacher's weights under a student config (arch + student fields)
    m = Lifter(16, width=8, n_blocks=1)
    cfg = dict(arch="smpl_student", num_joints=16, window=1, width=8,
               n_blocks=1, num_betas=10, root_index=0, learn_marker_offsets=True)
    p = save_checkpoint({"model": m.state_dict(), "model_config": cfg}, tmp_path / "t_as_s.pt")
    with pytest.raises(ModelConfigError, match="describes a 'smpl_student' model but the weights are a 'teacher' model"):
        load_lifter(p)
    # a student's weights under a teacher config
    st = Student(StudentConfig(width=8, n_blocks=1), BodyModel(small_model))
    tcfg = dict(num_joints=16, window=1, width=8, n_blocks=1, root_index=0)
    p = save_checkpoint({"model": st.state_dict(), "model_config": tcfg}, tmp_path / "s_as_t.pt")
    with pytest.raises(ModelConfigError, match="describes a 'teacher' model but the weights are a 'smpl_student'"):
        load_lifter(p)


def test_non_finite_weights_are_refused(tmp_path):
    m = Lifter(16, width=8, n_blocks=1)
    sd = m.state_dict()
    sd["mlp.out.weight"][0, 0] = math.nan
    p = save_checkpoint({"model": sd, "model_config": m.config}, tmp_path / "nan.pt")
    with pytest.raises(ModelConfigError, match="mlp.out.weight contains NaN"):
        load_lifter(p)


def test_malformed_checkpoint_entries(tmp_path):
    m = Lifter(16, width=8, n_blocks=1)
    for bad, fragment in (({"model": m.state_dict(), "model_config": [1]}, "model_config must be a dict"),
                          ({"model": [1, 2], "model_config": m.config}, "'model' must be a state dict"),
                          ({"model": m.state_dict(), "model_config": m.config, "body_model": "x"},
                           "body_model entry must be a dict"),
                          ({"model": m.state_dict(), "model_config": m.config, "body_model": {"gender": "robot"}},
                           "body_model.gender 'robot'")):
        p = save_checkpoint(bad, tmp_path / "bad.pt")
        with pytest.raises(CheckpointError, match=fragment):
            load_lifter(p)


def test_check_model_config_returns_the_class():
    assert check_model_config(Lifter(16, width=8, n_blocks=1).config) is Lifter
    assert check_model_config(dict(arch="smpl_student", num_joints=16, window=3)) is Student


def test_unknown_bundled_name_lists_the_bundled_ones(tmp_path, capsys):
    with pytest.raises(CheckpointError) as e:
        load_lifter("studnet")
    msg = str(e.value)
    assert "checkpoint not found: studnet" in msg and all(repr(n) in msg for n in BUNDLED)
    rc = main(["lift", "whatever.json", "-o", str(tmp_path / "o"), "--checkpoint", "studnet"])
    err = capsys.readouterr().err
    assert rc == 2 and "'teacher', 'teacher_single', 'student'" in err


def test_teacher_with_a_body_model_is_an_error(tmp_path, small_model):
    with pytest.raises(ValueError, match="SMPL students only"):
        load_lifter(_teacher(tmp_path), small_model)


def test_student_body_model_identity(tmp_path, small_model):
    """A student trained with a user's model: it must be passed explicitly, and it must be that
    model (same content hash: the same arrays as .npz or .pkl load; other arrays do not)."""
    import pickle

    bm = BodyModel(small_model)
    p = _student(tmp_path, bm)
    with pytest.raises(BodyModelError, match=r"'SMPL_NEUTRAL.npz' \(60 vertices, sha256 [0-9a-f]{16}\).*--body-model"):
        load_lifter(p)
    model, ck = load_lifter(p, small_model)
    assert model.body_model.sha256 == ck["body_model"]["sha256"] == bm.sha256
    # the same model as a float64 pickle in a folder: same identity
    folder = tmp_path / "pkl"
    folder.mkdir()
    data = {k: (v.astype(np.float64) if v.dtype == np.float32 else v) for k, v in _random_smpl(V=60, seed=11).items()}
    (folder / "basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl").write_bytes(pickle.dumps(data, protocol=2))
    load_lifter(p, folder)
    # another model of the same topology: refused, naming both
    other = tmp_path / "other.npz"
    np.savez(other, **_random_smpl(V=60, seed=12))
    with pytest.raises(BodyModelError, match=r"trained with the body model 'SMPL_NEUTRAL.npz'.*other.npz is "
                                             r"'other.npz'.*not the same model"):
        load_lifter(p, other)
    # the bundled model is not it either
    with pytest.raises(BodyModelError, match="vertex"):
        load_lifter(p, BodyModel().model_path)


def test_student_num_betas_beyond_the_model(tmp_path, small_model):
    p = _student(tmp_path, BodyModel(small_model), num_betas=300)
    with pytest.raises(ModelConfigError, match="weights do not match"):
        load_lifter(p, small_model)


def test_loading_does_not_import_the_pipeline():
    """Trainers load lifters without the inference pipeline (issue 14 §4)."""
    import subprocess

    code = ("import sys, lifting.models.lifters, trainers.stages, trainers.loop; "
            "assert 'lifting.lift' not in sys.modules, 'lifting.lift imported'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_bundled_checkpoints_load():
    for name in BUNDLED:
        p = Path(__file__).resolve().parents[1] / "lifting" / "assets" / BUNDLED[name]
        if not p.is_file():
            pytest.skip(f"bundled {name} not built")
        model, ck = load_lifter(name)
        assert not model.training
        x = torch.zeros(2, model.window, 16, 2)
        x[..., 1, 0] = 0.3
        out = model(x)
        assert torch.isfinite(out if isinstance(out, torch.Tensor) else out.joints_3d).all()


def test_a_local_file_named_like_a_bundled_model_does_not_replace_it(tmp_path, monkeypatch):
    """A bundled name always means the bundled file; ``./teacher_single`` means the local one."""
    from lifting.models.lifters import bundled_checkpoint, resolve_checkpoint

    monkeypatch.chdir(tmp_path)
    m = Lifter(16, window=1, width=32, n_blocks=1, root_index=0)
    save_checkpoint({"model": m.state_dict(), "model_config": m.config, "kind": "teacher"}, tmp_path / "teacher_single")
    assert resolve_checkpoint("teacher_single") == bundled_checkpoint("teacher_single")
    assert resolve_checkpoint("./teacher_single").resolve() == tmp_path / "teacher_single"
    assert load_lifter("teacher_single")[0].config["width"] != 32


def test_a_failed_checkpoint_write_is_an_oserror_and_leaves_the_old_file(tmp_path, monkeypatch):
    """torch.save reports a full disk / file-size limit as a RuntimeError: save_checkpoint raises
    an OSError naming the path (the CLI's clear-error path), and the previous file survives."""
    path = save_checkpoint({"model": {}, "model_config": {}}, tmp_path / "best.pt")
    before = path.read_bytes()

    def full_disk(obj, f):
        raise RuntimeError("[enforce fail at inline_container.cc] . PytorchStreamWriter failed writing file data/0")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match="best.pt"):
        save_checkpoint({"model": {}, "model_config": {}}, path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["best.pt"]
