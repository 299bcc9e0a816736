"""Untrusted files cannot run code: SMPL pickles go through an exact-global allow-list
(lifting.body_model._SMPLUnpickler), checkpoints are read with weights_only and can only
*name* a body model (never make the loader open a stored path). Every payload here would
create a marker file if it ran; the tests check that it does not and that the error names
the refused global."""
from __future__ import annotations

import functools
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from lifting.body_model import BodyModel, BodyModelError, load_smpl_data
from lifting.models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from lifting.cli import main
from lifting.models.lifters import bundled_student, load_lifter

sys.path.insert(0, str(Path(__file__).parent))
from test_body_model import _random_smpl  # noqa: E402


class _Reduce:
    """Pickles as ``func(*args)`` (what a malicious pickle does with REDUCE)."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _smpl_dict_with(payload) -> dict:
    """A plausible SMPL dict with ``payload`` hidden in one entry."""
    return dict(_random_smpl(V=50), bs_style="lbs", extra=payload)


def _touch_code(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').close()"


def _payloads(tmp_path: Path, marker: Path) -> dict[str, tuple[bytes, str]]:
    """name -> (pickle bytes, the global the error must name)."""
    touch = f"touch {marker}"
    out = {}
    # 1. numpy.testing's runstring = exec(string): the first payload (text opcodes,
    #    so the test does not depend on where numpy keeps the function)
    code = _touch_code(marker)
    out["runstring"] = (b"cnumpy.testing._private.utils\nrunstring\n" + pickle.dumps((code, {}), protocol=0)[:-1]
                        + b"R.", "numpy.testing._private.utils.runstring")
    # 2. numpy.load(path, None, True): allow_pickle by position, loading a pickled .npy
    inner = tmp_path / "inner.npy"
    with open(inner, "wb") as fh:
        np.lib.format.write_array(fh, np.array([_Reduce(os.system, touch)], dtype=object), allow_pickle=True)
    out["numpy.load"] = (pickle.dumps(_smpl_dict_with(_Reduce(np.load, str(inner), None, True)), protocol=2),
                         "numpy.load")
    out["os.system"] = (pickle.dumps(_smpl_dict_with(_Reduce(os.system, touch)), protocol=4), "system")
    out["eval"] = (pickle.dumps(_smpl_dict_with(_Reduce(eval, code)), protocol=2), "__builtin__.eval")  # py2 name
    out["exec"] = (pickle.dumps(_Reduce(exec, code), protocol=5), "builtins.exec")
    out["Popen"] = (pickle.dumps(_Reduce(subprocess.Popen, ["touch", str(marker)]), protocol=3), "subprocess.Popen")
    out["partial"] = (pickle.dumps(_smpl_dict_with(_Reduce(functools.partial(os.system, touch))), protocol=4),
                      "functools.partial")
    out["frombuffer"] = (pickle.dumps(_Reduce(np.frombuffer, b"\0" * 8, np.dtype("O")), protocol=2),
                         "numpy.frombuffer")
    out["getattr"] = (pickle.dumps(_Reduce(getattr, np.ndarray, "tofile"), protocol=2), "__builtin__.getattr")
    # protocol-0 INST opcode: instantiates module.name(*args) through find_class too
    out["INST"] = (b"(S'" + touch.encode() + b"'\nios\nsystem\n.", "os.system")
    # a payload nested in the state of an allowed scipy object
    m = sp.csc_matrix(np.eye(3))
    m.__dict__["data"] = _Reduce(os.system, touch)
    out["in-scipy"] = (pickle.dumps(_smpl_dict_with(m), protocol=2), "system")
    # copyreg._reconstructor is allowed, but only with allowed classes
    out["reconstructor"] = (pickle.dumps(_Reduce(__import__("copyreg")._reconstructor, subprocess.Popen, object,
                                                 None), protocol=2), "commands.Popen")  # py2 name
    return out


PAYLOADS = ["runstring", "numpy.load", "os.system", "eval", "exec", "Popen", "partial", "frombuffer", "getattr",
            "INST", "in-scipy", "reconstructor"]


@pytest.mark.parametrize("name", PAYLOADS)
def test_pickle_payloads_are_refused_by_name(tmp_path, name):
    marker = tmp_path / "PWNED"
    data, glob = _payloads(tmp_path, marker)[name]
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(data)
    with pytest.raises(BodyModelError, match="refusing to load global") as e:
        load_smpl_data(evil)
    assert glob in str(e.value) and str(evil) in str(e.value)
    assert not marker.exists()


def test_payloads_would_run_without_the_allow_list(tmp_path):
    """Control: the payloads are real (a plain pickle.load runs them)."""
    marker = tmp_path / "PWNED"
    for name in ("runstring", "numpy.load", "eval"):
        data, _ = _payloads(tmp_path, marker)[name]
        pickle.loads(data)
        assert marker.exists(), name
        marker.unlink()


def test_every_entry_point_refuses_an_evil_body_model(tmp_path, capsys, tiny_mocap_npz, tiny_cfg_overrides):
    marker = tmp_path / "PWNED"
    data, _ = _payloads(tmp_path, marker)["runstring"]
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(data)
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "SMPL_NEUTRAL.pkl").write_bytes(data)
    example = str(Path(__file__).resolve().parents[1] / "lifting" / "assets" / "example_track.json")
    runs = [
        ["pose-bank", "--data", str(tiny_mocap_npz), "--frames", "4", "--iters", "1", "--body-model", str(evil),
         "-o", str(tmp_path / "bank.npz")],
        ["train", "student", "student", *tiny_cfg_overrides, f"body_model.path={folder}", "--out",
         str(tmp_path / "st")],
    ]
    if bundled_student() is not None and Path(example).is_file():
        runs += [["lift", example, "-o", str(tmp_path / f"lift{i}"), "--checkpoint", "student", "--body-model", bm]
                 for i, bm in enumerate((str(evil), str(folder)))]
    for argv in runs:
        rc = main(argv)
        err = capsys.readouterr().err
        assert rc == 2 and "refusing to load global numpy.testing._private.utils.runstring" in err, (argv, err)
        assert "Traceback" not in err
        assert not marker.exists(), argv


def test_legit_pickles_load_with_every_protocol(tmp_path):
    """Real numpy/scipy objects (arrays of every dtype SMPL uses, numpy scalars, csc/csr
    matrices and arrays, Fortran-ordered arrays) round-trip through the allow-list."""
    ref = _random_smpl(V=60, seed=3)
    for proto in (2, 3, 4, 5):
        for sparse in (sp.csc_matrix, sp.csr_matrix, sp.csc_array):
            d = dict(ref, J_regressor=sparse(ref["J_regressor"].astype(np.float64)),
                     weights=np.asfortranarray(ref["weights"].astype(np.float64)),
                     kintree_table=ref["kintree_table"].astype(np.uint32), bs_style="lbs", bs_type="lrotmin",
                     scale=np.float64(1.0), count=np.int64(3), names=np.array(["a", "b"]))
            path = tmp_path / f"SMPL_{proto}_{sparse.__name__}.pkl"
            path.write_bytes(pickle.dumps(d, protocol=proto))
            got = load_smpl_data(path)
            np.testing.assert_allclose(got["J_regressor"], ref["J_regressor"], rtol=1e-6)
            np.testing.assert_allclose(got["weights"], ref["weights"], rtol=1e-6)
            np.testing.assert_array_equal(got["f"], ref["f"])
    # ... and a legit SMPL-like pickle builds a body model with the same identity as its npz
    np.savez(tmp_path / "same.npz", **ref)
    assert BodyModel(path).sha256 == BodyModel(tmp_path / "same.npz").sha256


def test_python2_style_pickle_loads(tmp_path):
    """Official SMPL pickles were written by Python 2 (protocol 2, ``copy_reg``,
    ``__builtin__``, numpy.core module names, latin-1 byte strings)."""
    ref = _random_smpl(V=40, seed=4)
    data = pickle.dumps(ref, protocol=2)
    data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    path = tmp_path / "py2.pkl"
    path.write_bytes(data)
    np.testing.assert_array_equal(load_smpl_data(path)["v_template"], ref["v_template"])


def test_malformed_sparse_matrices_are_refused(tmp_path):
    ref = _random_smpl(V=40, seed=5)
    bad_index = sp.csc_matrix(ref["J_regressor"])
    bad_index.indices[0] = 10**6  # would read outside the data buffer in toarray()
    huge = sp.csc_matrix(ref["J_regressor"])
    huge._shape = (10**6, 10**6)  # would allocate 8 TB in toarray()
    for name, m in (("index", bad_index), ("huge", huge)):
        path = tmp_path / f"{name}.pkl"
        path.write_bytes(pickle.dumps(dict(ref, J_regressor=m), protocol=4))
        with pytest.raises(BodyModelError, match="'J_regressor' is a malformed sparse matrix"):
            load_smpl_data(path)


def test_object_arrays_in_required_entries_are_refused(tmp_path):
    ref = _random_smpl(V=40, seed=6)
    path = tmp_path / "obj.pkl"
    path.write_bytes(pickle.dumps(dict(ref, f=np.array([[None, 1, 2]], dtype=object)), protocol=2))
    with pytest.raises(BodyModelError, match="'f' holds object data"):
        load_smpl_data(path)


def test_checkpoint_with_pickled_code_is_refused(tmp_path):
    marker = tmp_path / "PWNED"
    p = tmp_path / "evil.pt"
    torch.save({"model": {}, "model_config": {}, "x": _Reduce(os.system, f"touch {marker}")}, p)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(p)
    assert not marker.exists()


def _student_ckpt_pointing_at(tmp_path: Path, record: dict) -> Path:
    """The bundled student's weights with a forged body-model record."""
    ck = torch.load(bundled_student(), weights_only=True)
    ck["body_model"] = record
    return save_checkpoint(ck, tmp_path / "shared_student.pt")


@pytest.mark.skipif(bundled_student() is None, reason="bundled student lifting/assets/student.pt not built")
@pytest.mark.parametrize("record", [
    {"path": "EVIL", "gender": "neutral", "num_betas": 10, "num_vertices": 13718},  # old format
    {"name": "EVIL", "bundled": False, "num_vertices": 13718},  # new format: a user model
])
def test_checkpoint_cannot_point_the_loader_at_a_file(tmp_path, capsys, record):
    """A weights_only-clean student checkpoint whose record names an evil pickle: the loader
    never opens it and asks for --body-model instead."""
    marker = tmp_path / "PWNED"
    data, _ = _payloads(tmp_path, marker)["runstring"]
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(data)
    rec = {k: (str(evil) if v == "EVIL" else v) for k, v in record.items()}
    p = _student_ckpt_pointing_at(tmp_path, rec)
    with pytest.raises(BodyModelError, match="--body-model") as e:
        load_lifter(p)
    assert "evil.pkl" in str(e.value) and "never opened" in str(e.value)
    assert not marker.exists()
    # through the CLI too, and exporting it writes a name, not the path
    example = str(Path(__file__).resolve().parents[1] / "lifting" / "assets" / "example_track.json")
    assert main(["lift", example, "-o", str(tmp_path / "out"), "--checkpoint", str(p)]) == 2
    assert "--body-model" in capsys.readouterr().err and not marker.exists()
    assert main(["export", str(p), str(tmp_path / "exported.pt")]) == 0
    exported = torch.load(tmp_path / "exported.pt", weights_only=True)["body_model"]
    assert "path" not in exported and exported["name"] == "evil.pkl" and exported["bundled"] is False
    assert str(tmp_path) not in repr(exported)
    assert not marker.exists()


@pytest.mark.skipif(bundled_student() is None, reason="bundled student lifting/assets/student.pt not built")
def test_old_record_of_the_bundled_model_still_loads(tmp_path):
    """Old checkpoints stored ``path: None`` (the bundled model) or the bundled file's path
    of some installation: both resolve to this installation's bundled model."""
    for stored in (None, "/elsewhere/site-packages/lifting/assets/body_models/SMPL_NEUTRAL.npz"):
        p = _student_ckpt_pointing_at(tmp_path, {"path": stored, "gender": "neutral", "num_betas": 10,
                                                 "num_vertices": 13718})
        model, ck = load_lifter(p)
        assert model.body_model.is_default and ck["body_model"]["bundled"] and "path" not in ck["body_model"]
    # a forged "bundled" record whose hash is not the bundled model's is refused
    p = _student_ckpt_pointing_at(tmp_path, {"bundled": True, "sha256": "0" * 64})
    with pytest.raises(BodyModelError, match="not the same model"):
        load_lifter(p)


def test_lift_outputs_record_identity_not_path(tmp_path):
    """``posenet3d lift`` with a student trained on a user's model: the npz and summary name
    the model by identity; the user's folder appears nowhere."""
    import json

    from lifting.lift import lift_file
    from lifting.options import LiftOptions
    from lifting.models.student import Student, StudentConfig

    user = tmp_path / "private_folder"
    user.mkdir()
    np.savez(user / "SMPL_NEUTRAL.npz", **_random_smpl(V=80, seed=7))
    bm = BodyModel(user)
    st = Student(StudentConfig(width=8, n_blocks=1), bm)
    ck = save_checkpoint({"model": st.state_dict(), "model_config": st.config, "body_model": bm.describe(),
                          "kind": "student"}, tmp_path / "st.pt")
    example = Path(__file__).resolve().parents[1] / "lifting" / "assets" / "example_track.json"
    if not example.is_file():
        pytest.skip("bundled example track lifting/assets/example_track.json not present")
    s = lift_file(example, tmp_path / "out", LiftOptions(checkpoint=ck, body_model_path=user, max_figures=0,
                                                         mesh_frames=(), progress=False))
    assert s["body_model"]["sha256"] == bm.sha256 and "path" not in s["body_model"]
    z = np.load(sorted((tmp_path / "out").glob("track_*.npz"))[0])
    rec = json.loads(str(z["body_model"]))
    assert rec["sha256"] == bm.sha256 and rec["name"] == "SMPL_NEUTRAL.npz"
    assert "private_folder" not in (tmp_path / "out" / "summary.json").read_text()
    assert "private_folder" not in str(z["body_model"])


@pytest.mark.skipif(bundled_student() is None, reason="bundled student lifting/assets/student.pt not built")
def test_export_keeps_only_the_file_name_of_the_run_configs_body_model_path(tmp_path):
    """A training checkpoint's run config holds ``body_model.path`` as the user typed it;
    ``posenet3d export`` writes only its file name, and the export still loads."""
    ck = torch.load(bundled_student(), weights_only=True)
    secret = tmp_path / "home" / "alice" / "smpl" / "SMPL_NEUTRAL.pkl"
    ck["config"] = {"body_model": {"path": str(secret), "gender": "neutral"}, "train": {"steps": 3}}
    p = save_checkpoint(ck, tmp_path / "train_best.pt")
    assert main(["export", str(p), str(tmp_path / "exported.pt")]) == 0
    exported = torch.load(tmp_path / "exported.pt", weights_only=True)
    assert exported["config"]["body_model"] == {"path": "SMPL_NEUTRAL.pkl", "gender": "neutral"}
    assert exported["config"]["train"] == {"steps": 3}
    assert "alice" not in repr(exported)
    assert torch.load(p, weights_only=True)["config"]["body_model"]["path"] == str(secret)  # source untouched
    load_lifter(tmp_path / "exported.pt")
