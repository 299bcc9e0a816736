"""The shipped licence-free SMPL-format body model (lifting/assets/body_models/SMPL_NEUTRAL.npz,
built from anny by scripts/build_open_body_model.py), loaded the way users load it: smplx.SMPL with
the npz arrays as data_struct (smplx 0.1.28 reads model_path with pickle, which cannot open an npz).
No anny import: anny is only needed to rebuild the file. The measured values quoted in comments
are from the shipped build (seed 0, 1000 shapes)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import smplx
import torch
from smplx.utils import Struct

import lifting

MODEL = Path(lifting.__file__).resolve().parent / "assets" / "body_models" / "SMPL_NEUTRAL.npz"
SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
N_VERTS, N_FACES = 13718, 27420


@pytest.fixture(scope="module")
def arrays() -> dict[str, np.ndarray]:
    with np.load(MODEL) as npz:  # allow_pickle=False: plain arrays and unicode strings only
        return {k: npz[k] for k in npz.files}


@pytest.fixture(scope="module")
def model(arrays):
    return smplx.SMPL(model_path=str(MODEL), data_struct=Struct(**arrays),
                      vertex_ids=json.loads(str(arrays["vertex_ids"])))


def run(model, batch: int = 1, **params):
    params.setdefault("betas", torch.zeros(batch, 10))
    params.setdefault("body_pose", torch.zeros(batch, 69))
    params.setdefault("global_orient", torch.zeros(batch, 3))
    params.setdefault("transl", torch.zeros(batch, 3))
    with torch.no_grad():
        out = model(**params)
    return out.vertices.numpy(), out.joints.numpy()


def stature(v: np.ndarray) -> float:
    return float(v[:, 1].max() - v[:, 1].min())


def volume(v: np.ndarray, faces: np.ndarray) -> float:
    a, b, c = (v[faces[:, i]].astype(np.float64) for i in range(3))
    return float(np.einsum("fc,fc->", a, np.cross(b, c)) / 6.0)


def edges(faces: np.ndarray) -> np.ndarray:
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    return np.unique(np.sort(e, axis=1), axis=0)


def test_file_size_keys_and_dtypes(arrays):
    assert MODEL.stat().st_size < 15e6  # 1.96 MB
    shapes = {"v_template": (N_VERTS, 3), "shapedirs": (N_VERTS, 3, 10), "posedirs": (N_VERTS, 3, 207),
              "J_regressor": (24, N_VERTS), "weights": (N_VERTS, 24), "kintree_table": (2, 24),
              "f": (N_FACES, 3), "joints_template": (24, 3)}
    for key, shape in shapes.items():
        assert arrays[key].shape == shape, key
    for key in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "joints_template"):
        assert arrays[key].dtype == np.float32, key
        assert np.isfinite(arrays[key]).all(), key
    # Pose correctives are not modelled.
    assert not arrays["posedirs"].any()
    info = json.loads(str(arrays["build_info"]))
    assert info["anny_version"] == "0.6.2" and info["n_shapes"] == 1000 and info["seed"] == 0


def test_zero_pose_and_betas_give_the_template(model, arrays):
    verts, joints = run(model)
    np.testing.assert_allclose(verts[0], arrays["v_template"], rtol=0, atol=1e-5)  # 1.2e-7 measured
    np.testing.assert_allclose(joints[0, :24], arrays["J_regressor"] @ arrays["v_template"], rtol=0, atol=1e-5)


def test_regressor_reproduces_anny_joints(arrays):
    reg = arrays["J_regressor"].astype(np.float64)
    np.testing.assert_allclose(reg.sum(1), 1.0, atol=1e-4)
    err = np.linalg.norm(reg @ arrays["v_template"] - arrays["joints_template"], axis=1)
    assert err.max() < 2e-3  # 0.003 mm measured (held-out anny shapes: 0.14 mm mean, 2.0 mm max)
    # The mean shape's pelvis is the origin; left joints at +x mirror the right ones at -x.
    j = arrays["joints_template"]
    assert np.abs(j[0]).max() < 1e-4
    left, right = [1, 4, 7, 10, 13, 16, 18, 20, 22], [2, 5, 8, 11, 14, 17, 19, 21, 23]
    assert (j[left, 0] > 0).all()
    np.testing.assert_allclose(j[left] * [-1, 1, 1], j[right], atol=1e-3)


def test_kinematic_tree_is_smpl(model, arrays):
    kt = arrays["kintree_table"]
    assert kt[0, 0] == 2 ** 32 - 1 and kt[0, 1:].tolist() == SMPL_PARENTS[1:]
    assert kt[1].tolist() == list(range(24))
    assert model.parents.tolist() == SMPL_PARENTS
    assert list(arrays["joint_names"][[0, 15, 22]]) == ["pelvis", "head", "left_hand"]


def test_skinning_weights(arrays):
    w = arrays["weights"]
    assert w.min() >= 0.0
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-5)
    # Every joint drives some vertices (the collars fewest: 39 each).
    assert (np.bincount(w.argmax(1), minlength=24) > 20).all()


def test_faces(arrays):
    f = arrays["f"]
    assert np.issubdtype(f.dtype, np.integer)
    assert f.min() == 0 and f.max() == N_VERTS - 1
    assert len(np.unique(f)) == N_VERTS  # no unused vertex
    assert ((f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])).all()
    # Wound outwards: positive enclosed volume, of an adult (73.3 L measured).
    assert 50.0 < 1000 * volume(arrays["v_template"], f) < 100.0


def test_template_is_an_adult_in_t_pose_facing_z(arrays):
    v, j = arrays["v_template"], arrays["joints_template"]
    assert 1.5 < stature(v) < 1.9  # 1.828 m
    # Arms horizontal along +-x (shoulder, elbow, wrist and hand at one height), legs vertical.
    arm = j[[16, 18, 20, 22]]
    assert np.ptp(arm[:, 1]) < 1e-3 and np.ptp(arm[:, 2]) < 1e-3 and (np.diff(arm[:, 0]) > 0.05).all()
    leg = j[[1, 4, 7]]
    assert np.ptp(leg[:, 0]) < 1e-3 and np.ptp(leg[:, 2]) < 1e-3 and (np.diff(leg[:, 1]) < -0.3).all()
    # y up (head above pelvis above ankles), facing +z (the toes are in front of the ankles).
    assert j[15, 1] > j[0, 1] > j[7, 1]
    assert j[10, 2] - j[7, 2] > 0.1


def test_first_shape_component_is_stature(model):
    heights = {}
    for b1 in (-2.0, 2.0):
        betas = torch.zeros(1, 10)
        betas[0, 0] = b1
        heights[b1] = stature(run(model, betas=betas)[0][0])
    # Measured: 1.504 m at -2 and 1.899 m at +2 (~10 cm per sigma: anny's WHO-calibrated adults).
    assert heights[2.0] - heights[-2.0] > 0.3
    assert 1.4 < heights[-2.0] < 1.6 and 1.8 < heights[2.0] < 2.0


def test_third_shape_component_is_girth(model, arrays):
    f, v0 = arrays["f"], arrays["v_template"]
    j = arrays["joints_template"]
    torso = np.abs(v0[:, 0]) < 0.3  # excludes the arms (T-pose)

    def measures(k: int, value: float):
        betas = torch.zeros(1, 10)
        betas[0, k] = value
        v = run(model, betas=betas)[0][0]
        # Waist: a 2 cm slice of the torso at spine1's height (in the template).
        waist = v[torso & (np.abs(v0[:, 1] - j[3, 1]) < 0.01)]
        return volume(v, f), stature(v), np.ptp(waist[:, 2])

    gains = []
    for k in range(1, 10):
        (vol_lo, h_lo, _), (vol_hi, h_hi, _) = measures(k, -2.0), measures(k, 2.0)
        gains.append(vol_hi / vol_lo if abs(h_hi - h_lo) < 0.02 else 0.0)
    # gains[i] is for betas[:, i + 1]. Of the components that keep the stature, beta3 (index 2)
    # changes the volume most: 43.2 L -> 96.0 L between -2 and +2 sigma, waist depth 0.135 m ->
    # 0.297 m (the next best, beta5, only x1.13).
    assert int(np.argmax(gains)) + 1 == 2
    assert gains[1] > 1.5
    (_, _, depth_lo), (_, _, depth_hi) = measures(2, -2.0), measures(2, 2.0)
    assert depth_hi - depth_lo > 0.05


def test_random_poses_do_not_explode(model, arrays):
    """Random moderate poses, N(0, 0.3 rad) per axis on all 23 body joints. Linear blend skinning
    stretches a few short edges near the armpits and the crotch (measured on these poses: 0.03 % of
    the edges above 3x their rest length, max ratio 9.6 on a 3.5 mm edge, max lengthening 7.5 cm),
    so a plain "every edge < 3x" bound does not hold. A broken vertex does tear its edges: doubling
    one vertex's weights lengthens an edge by 1.06 m, a misplaced regressor row by 0.73 m."""
    g = torch.Generator().manual_seed(0)
    n = 32
    poses = torch.randn(n, 69, generator=g) * 0.3
    verts, joints = run(model, batch=n, body_pose=poses)
    assert np.isfinite(verts).all()
    # Every vertex within 1.5 m of the pelvis (max measured: 1.29 m, arms raised; 1.01 m in T-pose).
    assert np.linalg.norm(verts - joints[:, :1], axis=-1).max() < 1.5
    e = edges(arrays["f"])
    rest = np.linalg.norm(arrays["v_template"][e[:, 0]] - arrays["v_template"][e[:, 1]], axis=-1)
    posed = np.linalg.norm(verts[:, e[:, 0]] - verts[:, e[:, 1]], axis=-1)
    assert (posed - rest).max() < 0.15
    assert (posed > 3 * rest).mean() < 1e-3


def test_extra_keypoints_are_on_this_mesh(model, arrays):
    """smplx's 21 extra keypoints come from the model's own vertex_ids (SMPL-H's ids would pick
    arbitrary vertices of this mesh)."""
    _, joints = run(model)
    j = joints[0]
    assert j.shape == (24 + 21, 3)
    names = list(arrays["joint_names"])
    kp = dict(zip(["nose", "reye", "leye", "rear", "lear", "LBigToe", "LSmallToe", "LHeel", "RBigToe",
                   "RSmallToe", "RHeel", "lthumb", "lindex", "lmiddle", "lring", "lpinky", "rthumb",
                   "rindex", "rmiddle", "rring", "rpinky"], j[24:]))
    head, neck = j[names.index("head")], j[names.index("neck")]
    assert kp["nose"][2] > head[2] + 0.08 and abs(kp["nose"][0]) < 0.01  # 0.153 vs 0.024
    assert kp["leye"][1] > kp["nose"][1] > neck[1] and kp["leye"][0] > 0 > kp["reye"][0]
    assert kp["lear"][0] > kp["leye"][0] > 0 > kp["reye"][0] > kp["rear"][0]
    for side, ankle, hand in (("L", "left_ankle", "left_hand"), ("R", "right_ankle", "right_hand")):
        a = j[names.index(ankle)]
        assert kp[f"{side}BigToe"][2] > a[2] + 0.15 and kp[f"{side}Heel"][2] < a[2] - 0.03
        sx = 1 if side == "L" else -1
        tips = np.stack([kp[f"{side.lower()}{f}"] for f in ("index", "middle", "ring", "pinky")])
        assert (sx * tips[:, 0] > sx * j[names.index(hand)][0] + 0.03).all()
