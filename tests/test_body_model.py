"""Body-model layer: exact agreement with smplx on SMPL-format files (synthetic ones with
pose correctives, so every term is exercised), broadcasting, joints-only path, bad files."""
from __future__ import annotations

import pickle
import sys
import types

import numpy as np
import pytest
import roma
import torch

from lifting.body_model import (
    SMPL_PARENTS, BodyModel, BodyModelError, load_smpl_data, resolve_model_path,
)


def _random_smpl(V: int = 300, seed: int = 0, posedirs: bool = True) -> dict:
    rng = np.random.default_rng(seed)
    joints = np.zeros((24, 3))
    for j in range(1, 24):
        joints[j] = joints[SMPL_PARENTS[j]] + rng.normal(0, 0.12, 3)
    owner = rng.integers(0, 24, V)
    v_template = joints[owner] + rng.normal(0, 0.03, (V, 3))
    J_regressor = np.zeros((24, V))
    for j in range(24):
        near = np.argsort(((v_template - joints[j]) ** 2).sum(1))[:8]
        J_regressor[j, near] = 1 / 8
    w = np.exp(rng.normal(0, 1, (V, 24)) * 2) * (rng.random((V, 24)) < 0.15)
    w[np.arange(V), owner] += 1.0
    w /= w.sum(1, keepdims=True)
    return dict(
        v_template=v_template.astype(np.float32),
        shapedirs=rng.normal(0, 0.01, (V, 3, 10)).astype(np.float32),
        posedirs=(rng.normal(0, 0.01, (V, 3, 207)) * posedirs).astype(np.float32),
        J_regressor=J_regressor.astype(np.float32),
        weights=w.astype(np.float32),
        kintree_table=np.stack([np.array([4294967295] + list(SMPL_PARENTS[1:])), np.arange(24)]).astype(np.int64),
        f=rng.integers(0, V, (50, 3)).astype(np.int64),
    )


@pytest.fixture(scope="module")
def smpl_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("smpl") / "SMPL_NEUTRAL.npz"
    np.savez(path, **_random_smpl())
    return path


def _random_pose(shape, scale=0.6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return roma.rotvec_to_rotmat(torch.randn(*shape, 3, generator=g) * scale)


def test_matches_smplx_exactly(smpl_file):
    import smplx

    from smplx.utils import Struct
    from smplx.vertex_ids import vertex_ids as VERTEX_IDS

    # smplx's SMPL reads only pickles from a path; data read by our loader goes in as data_struct
    ref = smplx.SMPLLayer(model_path=str(smpl_file), data_struct=Struct(**load_smpl_data(smpl_file)), num_betas=10,
                          vertex_ids={k: 0 for k in VERTEX_IDS['smplh']})
    bm = BodyModel(smpl_file)
    assert bm.has_pose_correctives
    go, bp = _random_pose((5,), seed=1), _random_pose((5, 23), seed=2)
    betas = torch.randn(5, 10, generator=torch.Generator().manual_seed(3))
    transl = torch.randn(5, 3)
    want = ref(betas=betas, global_orient=go, body_pose=bp, transl=transl)
    got = bm(go, bp, betas, transl=transl, return_vertices=True)
    torch.testing.assert_close(got.joints, want.joints[:, :24], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got.vertices, want.vertices, atol=1e-5, rtol=1e-5)
    # joints-only path gives the same joints and no vertices
    fast = bm(go, bp, betas, transl=transl)
    assert fast.vertices is None
    torch.testing.assert_close(fast.joints, got.joints)
    # CPU skinning in chunks (here 2 bodies per chunk, 5 bodies) gives the same mesh
    bm.skin_chunk = 2
    torch.testing.assert_close(bm(go, bp, betas, transl=transl, return_vertices=True).vertices, want.vertices,
                               atol=1e-5, rtol=1e-5)


def test_broadcast_track_betas_and_leading_dims(smpl_file):
    bm = BodyModel(smpl_file)
    go, bp = _random_pose((2, 4), seed=4), _random_pose((2, 4, 23), seed=5)
    betas = torch.randn(2, 1, 10)
    out = bm(go, bp, betas, return_vertices=True)
    assert out.joints.shape == (2, 4, 24, 3) and out.joints_canon.shape == (2, 4, 16, 3)
    assert out.vertices.shape == (2, 4, 300, 3)
    flat = bm(go.reshape(8, 3, 3), bp.reshape(8, 23, 3, 3), betas.expand(2, 4, 10).reshape(8, 10), return_vertices=True)
    torch.testing.assert_close(out.vertices.reshape(8, 300, 3), flat.vertices)
    with pytest.raises(ValueError, match="broadcast"):
        bm(go, bp, torch.randn(3, 1, 10))
    with pytest.raises(ValueError, match="body_pose"):
        bm(go, bp[..., :22, :, :], betas)
    with pytest.raises(ValueError, match="betas"):
        bm(go, bp, torch.randn(2, 1, 7))


def test_canonical_markers_follow_their_parts(smpl_file):
    bm = BodyModel(smpl_file)
    eye = torch.eye(3).expand(1, 3, 3)
    rest = bm(eye, torch.eye(3).expand(1, 23, 3, 3), torch.zeros(1, 10))
    # at rest, markers sit on their SMPL joints (pelvis, hips, knees, ... in CANON16 order)
    for c, j in [(0, 0), (1, 2), (2, 5), (4, 1), (9, 15), (12, 20)]:
        torch.testing.assert_close(rest.joints_canon[0, c], rest.joints[0, j])
    # offsets move markers rigidly with their part: a rotated body rotates the offset too
    off = torch.zeros(16, 3)
    off[10] = torch.tensor([0.0, 0.05, 0.0])
    R = roma.rotvec_to_rotmat(torch.tensor([[0.0, 0.0, 1.0]]))
    a = bm(R, torch.eye(3).expand(1, 23, 3, 3), torch.zeros(1, 10), canon_offsets=off)
    b = bm(R, torch.eye(3).expand(1, 23, 3, 3), torch.zeros(1, 10))
    torch.testing.assert_close(a.joints_canon[0, 10] - b.joints_canon[0, 10], R[0] @ off[10])


def test_gradients_flow(smpl_file):
    bm = BodyModel(smpl_file)
    rv = (torch.randn(3, 24, 3) * 0.3).requires_grad_()
    betas = torch.zeros(3, 10, requires_grad=True)
    rot = roma.rotvec_to_rotmat(rv)
    out = bm(rot[:, 0], rot[:, 1:], betas, return_vertices=True)
    (out.joints_canon.square().sum() + out.vertices.square().sum()).backward()
    assert torch.isfinite(rv.grad).all() and rv.grad.abs().sum() > 0
    assert torch.isfinite(betas.grad).all() and betas.grad.abs().sum() > 0


def test_pickle_with_chumpy_arrays_loads_without_chumpy(tmp_path, smpl_file):
    data = _random_smpl(seed=1)
    # an "old SMPL pickle": shapedirs stored as a chumpy object (fake chumpy module)
    ch = types.ModuleType("chumpy.ch")

    class Ch:
        pass

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    ch.Ch = Ch
    pkg = types.ModuleType("chumpy")
    pkg.ch = ch
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = pkg, ch
    try:
        obj = Ch()
        obj.x = data["shapedirs"]
        obj.dterms = ("x",)
        data_pkl = dict(data, shapedirs=obj)
        path = tmp_path / "basicmodel_m_lbs_10_207_0_v1.1.0.pkl"
        path.write_bytes(pickle.dumps(data_pkl, protocol=2))
        expr = Ch()
        expr.a = 1  # a chumpy expression: no plain data
        bad = tmp_path / "bad" / "SMPL_NEUTRAL.pkl"
        bad.parent.mkdir()
        bad.write_bytes(pickle.dumps(dict(data, shapedirs=expr), protocol=2))
    finally:
        del sys.modules["chumpy"], sys.modules["chumpy.ch"]
    loaded = load_smpl_data(path)
    np.testing.assert_array_equal(loaded["shapedirs"], data["shapedirs"])
    assert resolve_model_path(tmp_path, "male") == path
    BodyModel(tmp_path, gender="male")  # loads through smplx
    with pytest.raises(BodyModelError, match="chumpy"):
        load_smpl_data(bad)


def test_bad_files_raise_clear_errors(tmp_path):
    with pytest.raises(BodyModelError, match="not found"):
        resolve_model_path(tmp_path / "nope.pkl")
    with pytest.raises(BodyModelError, match="no female SMPL file"):
        resolve_model_path(tmp_path, "female")
    with pytest.raises(BodyModelError, match="gender"):
        resolve_model_path(None, "robot")
    junk = tmp_path / "SMPL_MALE.pkl"
    junk.write_bytes(b"not a pickle")
    with pytest.raises(BodyModelError, match="not a readable"):
        load_smpl_data(junk)
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"x": print}))
    with pytest.raises(BodyModelError, match="refusing"):
        load_smpl_data(evil)
    d = _random_smpl()
    d.pop("weights")
    np.savez(tmp_path / "noweights.npz", **d)
    with pytest.raises(BodyModelError, match="missing"):
        load_smpl_data(tmp_path / "noweights.npz")
    d = _random_smpl()
    d["J_regressor"] = d["J_regressor"][:17]
    np.savez(tmp_path / "h36m.npz", **d)
    with pytest.raises(BodyModelError, match="J_regressor"):
        load_smpl_data(tmp_path / "h36m.npz")
    d = _random_smpl()
    d["v_template"][0, 0] = np.nan
    np.savez(tmp_path / "nan.npz", **d)
    with pytest.raises(BodyModelError, match="NaN"):
        BodyModel(tmp_path / "nan.npz")
