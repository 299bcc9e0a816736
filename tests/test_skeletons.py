"""Tests for lifting.skeletons: joint sets, name-based remapping and synthesis recipes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lifting.skeletons import (
    CANON16,
    COCO17,
    H36M17,
    MOCAP21,
    SKELETONS,
    get_skeleton,
    remap,
    skeleton_for_names,
)


def _coco(seed=0, batch=()):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 500, batch + (17, 2))


def _c(name):
    return COCO17.index(name)


def _k(name):
    return CANON16.index(name)


def test_coco_to_canon_synthesis_recipes():
    kp = _coco(batch=(3,))
    out, mask = remap(kp, COCO17, CANON16)
    assert out.shape == (3, 16, 2) and mask.shape == (3, 16)
    assert mask.all()
    lh, rh = kp[:, _c("left_hip")], kp[:, _c("right_hip")]
    ls, rs = kp[:, _c("left_shoulder")], kp[:, _c("right_shoulder")]
    le, re_ = kp[:, _c("left_ear")], kp[:, _c("right_ear")]
    pelvis = (lh + rh) / 2
    thorax = (ls + rs) / 2
    head = thorax + 0.5 * ((le + re_) / 2 - thorax)
    np.testing.assert_allclose(out[:, _k("pelvis")], pelvis, atol=1e-9)
    np.testing.assert_allclose(out[:, _k("thorax")], thorax, atol=1e-9)
    np.testing.assert_allclose(out[:, _k("head")], head, atol=1e-9)
    # one-to-one joints
    for canon, coco in [("l_hip", "left_hip"), ("r_knee", "right_knee"), ("l_ankle", "left_ankle"),
                        ("r_shoulder", "right_shoulder"), ("l_elbow", "left_elbow"), ("r_wrist", "right_wrist")]:
        np.testing.assert_allclose(out[:, _k(canon)], kp[:, _c(coco)], atol=1e-12)


def test_coco_to_canon_hand_numbers():
    kp = np.zeros((17, 2))
    kp[_c("left_hip")] = (10.0, 100.0)
    kp[_c("right_hip")] = (30.0, 100.0)
    kp[_c("left_shoulder")] = (0.0, 0.0)
    kp[_c("right_shoulder")] = (40.0, 0.0)
    kp[_c("left_ear")] = (15.0, -40.0)
    kp[_c("right_ear")] = (25.0, -40.0)
    out, _ = remap(kp, "coco17", "canon16")
    np.testing.assert_allclose(out[_k("pelvis")], (20.0, 100.0))
    np.testing.assert_allclose(out[_k("thorax")], (20.0, 0.0))
    np.testing.assert_allclose(out[_k("head")], (20.0, -20.0))  # half-way thorax -> mid-ears



def test_coco_spine_recipe():
    kp = np.zeros((17, 2))
    kp[_c("left_hip")] = (10.0, 100.0)
    kp[_c("right_hip")] = (30.0, 100.0)
    kp[_c("left_shoulder")] = (0.0, 0.0)
    kp[_c("right_shoulder")] = (40.0, 0.0)
    out, _ = remap(kp, "coco17", "canon16")
    np.testing.assert_allclose(out[_k("spine")], (20.0, 62.0))  # 100 + 0.38 * (0 - 100)


def test_coco_spine_recipe_random_and_translation_equivariant():
    kp = _coco(seed=7, batch=(3,))
    out, _ = remap(kp, COCO17, CANON16)
    pelvis = (kp[:, _c("left_hip")] + kp[:, _c("right_hip")]) / 2
    thorax = (kp[:, _c("left_shoulder")] + kp[:, _c("right_shoulder")]) / 2
    np.testing.assert_allclose(out[:, _k("spine")], pelvis + 0.38 * (thorax - pelvis), atol=1e-9)
    # every synthesised joint is an affine combination: shifting the input shifts it equally
    shifted, _ = remap(kp + np.array([50.0, -20.0]), COCO17, CANON16)
    np.testing.assert_allclose(shifted - out, np.broadcast_to([50.0, -20.0], out.shape), atol=1e-9)


def test_mask_missing_shoulder_masks_spine():
    valid = np.ones(17, bool)
    valid[_c("right_shoulder")] = False
    _, mask = remap(_coco(seed=8), COCO17, CANON16, valid=valid)
    masked = {CANON16.joint_names[j] for j in np.where(~mask)[0]}
    assert masked == {"thorax", "spine", "head", "r_shoulder"}


def test_mask_missing_left_hip():
    kp = _coco(seed=1)
    valid = np.ones(17, bool)
    valid[_c("left_hip")] = False
    out, mask = remap(kp, COCO17, CANON16, valid=valid)
    masked = {CANON16.joint_names[j] for j in np.where(~mask)[0]}
    assert masked == {"pelvis", "l_hip", "spine"}
    # invalid targets are zero, never NaN
    assert np.all(out[~mask] == 0)
    assert np.isfinite(out).all()
    # valid targets unaffected by the missing joint's (garbage) coordinates
    kp2 = kp.copy()
    kp2[_c("left_hip")] = np.nan
    out2, mask2 = remap(kp2, COCO17, CANON16, valid=valid)
    assert np.array_equal(mask, mask2)
    np.testing.assert_allclose(out2, out)


def test_mask_missing_ears():
    kp = _coco(seed=2)
    for ear in ("left_ear", "right_ear"):
        valid = np.ones(17, bool)
        valid[_c(ear)] = False
        _, mask = remap(kp, COCO17, CANON16, valid=valid)
        assert [CANON16.joint_names[j] for j in np.where(~mask)[0]] == ["head"]


def test_numpy_and_torch_agree():
    kp = _coco(seed=3, batch=(4, 5))
    rng = np.random.default_rng(3)
    valid = rng.uniform(size=(4, 5, 17)) > 0.2
    out_np, mask_np = remap(kp, COCO17, CANON16, valid=valid)
    out_t, mask_t = remap(torch.from_numpy(kp), COCO17, CANON16, valid=torch.from_numpy(valid))
    assert isinstance(out_t, torch.Tensor) and isinstance(mask_t, torch.Tensor)
    assert mask_t.dtype == torch.bool
    assert np.array_equal(mask_np, mask_t.numpy())
    np.testing.assert_allclose(out_np, out_t.numpy(), atol=1e-9)
    assert (~mask_np).any() and mask_np.any()  # the random mask exercised both cases


def test_mocap_to_canon_identity_on_mapped_joints():
    rng = np.random.default_rng(4)
    kp = rng.normal(size=(6, 21, 3)).astype(np.float32)
    out, mask = remap(kp, MOCAP21, CANON16)
    assert out.dtype == np.float32
    assert mask.all()
    pairs = {"pelvis": "Hips", "r_hip": "UpperLeg_R", "r_knee": "LowerLeg_R", "r_ankle": "Foot_R",
             "l_hip": "UpperLeg_L", "l_knee": "LowerLeg_L", "l_ankle": "Foot_L", "spine": "Spine",
             "thorax": "Neck", "head": "Head", "l_shoulder": "UpperArm_L", "l_elbow": "LowerArm_L",
             "l_wrist": "Hand_L", "r_shoulder": "UpperArm_R", "r_elbow": "LowerArm_R", "r_wrist": "Hand_R"}
    assert set(pairs) == set(CANON16.joint_names)
    for canon, mocap in pairs.items():
        np.testing.assert_array_equal(out[:, _k(canon)], kp[:, MOCAP21.index(mocap)])


def test_h36m_mapping():
    rng = np.random.default_rng(5)
    kp = rng.normal(size=(2, 17, 3))
    out, mask = remap(kp, H36M17, CANON16)
    assert mask.all()
    for name in CANON16.joint_names:
        src = "neck_nose" if name == "head" else name
        np.testing.assert_allclose(out[:, _k(name)], kp[:, H36M17.index(src)])
    # head_top is not used: changing it changes nothing
    kp2 = kp.copy()
    kp2[:, H36M17.index("head_top")] += 100.0
    np.testing.assert_allclose(remap(kp2, H36M17, CANON16)[0], out)


def test_canon_to_canon_is_identity():
    kp = np.random.default_rng(6).normal(size=(16, 2))
    out, mask = remap(kp, CANON16, CANON16)
    assert mask.all()
    np.testing.assert_allclose(out, kp)


def test_wrong_joint_count_raises():
    with pytest.raises(ValueError, match=r"\(\.\.\., 17, C\)"):
        remap(np.zeros((5, 16, 2)), COCO17, CANON16)
    with pytest.raises(ValueError, match=r"\(\.\.\., 21, C\)"):
        remap(torch.zeros(21), MOCAP21, CANON16)  # 1-D input


def test_bad_valid_shape_raises():
    with pytest.raises(ValueError, match="valid mask shape"):
        remap(np.zeros((2, 17, 2)), COCO17, CANON16, valid=np.ones((2, 16), bool))


def test_unknown_skeleton_name_raises():
    with pytest.raises(ValueError, match="known") as e:
        get_skeleton("openpose25")
    for name in SKELETONS:
        assert name in str(e.value)
    with pytest.raises(ValueError, match="coco17"):
        remap(np.zeros((17, 2)), "openpose25", CANON16)
    assert get_skeleton("COCO17") is COCO17  # case-insensitive


def test_no_mapping_between_known_sets_raises():
    with pytest.raises(ValueError, match="no joint mapping"):
        remap(np.zeros((16, 2)), CANON16, COCO17)


def test_skeleton_for_names():
    assert skeleton_for_names(list(MOCAP21.joint_names)) is MOCAP21
    assert skeleton_for_names(np.array(MOCAP21.joint_names)) is MOCAP21
    assert skeleton_for_names(CANON16.joint_names) is CANON16
    names = list(MOCAP21.joint_names)
    names[4] = "HeadTop"
    with pytest.raises(ValueError, match="match no known skeleton") as e:
        skeleton_for_names(names)
    assert "Head" in str(e.value) and "mocap21" in str(e.value)
    with pytest.raises(ValueError):
        skeleton_for_names(["a", "b", "c"])


def test_canon16_parents_form_tree_rooted_at_pelvis():
    parents = CANON16.parents
    assert len(parents) == 16
    roots = [j for j, p in enumerate(parents) if p < 0]
    assert roots == [CANON16.index("pelvis")] == [CANON16.root_index]
    for j in range(16):
        seen, k = set(), j
        while parents[k] >= 0:  # walking up always reaches the root without cycles
            assert k not in seen
            seen.add(k)
            k = parents[k]
            assert 0 <= k < 16
        assert k == CANON16.root_index
    assert len(CANON16.bones()) == 15
    named = {(CANON16.joint_names[c], CANON16.joint_names[p]) for c, p in CANON16.bones()}
    for bone in [("l_knee", "l_hip"), ("r_wrist", "r_elbow"), ("head", "thorax"), ("thorax", "spine"),
                 ("spine", "pelvis"), ("l_shoulder", "thorax"), ("r_hip", "pelvis")]:
        assert bone in named


def test_mirror_pairs_canon16():
    pairs = {(CANON16.joint_names[a], CANON16.joint_names[b]) for a, b in CANON16.mirror_pairs()}
    assert pairs == {("l_" + n, "r_" + n) for n in ("hip", "knee", "ankle", "shoulder", "elbow", "wrist")}
    assert len(CANON16.mirror_pairs()) == 6


def test_mirror_pairs_coco17_and_mocap21():
    coco = {(COCO17.joint_names[a], COCO17.joint_names[b]) for a, b in COCO17.mirror_pairs()}
    assert len(coco) == 8 and ("left_ear", "right_ear") in coco
    mocap = {(MOCAP21.joint_names[a], MOCAP21.joint_names[b]) for a, b in MOCAP21.mirror_pairs()}
    assert len(mocap) == 8 and ("Hand_L", "Hand_R") in mocap


def test_skeleton_index_errors():
    with pytest.raises(KeyError, match="canon16"):
        CANON16.index("nose")
    with pytest.raises(ValueError, match="no root"):
        COCO17.root_index
