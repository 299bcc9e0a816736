"""Tests for the AGORA-style multi-person metrics (occlusion.metrics) on constructed scenes with
known answers: people of the standing test skeleton projected by a pinhole camera."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import standing_pose

from occlusion.metrics import (MATCH_THRESHOLD, PersonSet, detection_scores, evaluate_multiperson,
                               match_people, person_sizes)

F, CX, CY = 1000.0, 640.0, 360.0  # pinhole camera, pixels
REST = standing_pose()  # (21, 3) metres, Y up, root (Hips) = joint 0
J, V = REST.shape[0], 40


def _project(x: np.ndarray) -> np.ndarray:
    """(..., 3) camera-frame metres (Y up) -> (..., 2) pixels (y down)."""
    return np.stack([F * x[..., 0] / x[..., 2] + CX, -F * x[..., 1] / x[..., 2] + CY], -1)


def _scene(xs=(-1.5, 0.0, 1.5), depth=5.0, seed=0):
    """GT people standing at the given x positions: (joints (P, J, 3), vertices (P, V, 3))."""
    rng = np.random.default_rng(seed)
    joints = np.stack([REST + [x, -0.9, depth] for x in xs])
    verts = joints[:, rng.integers(0, J, V)] + rng.normal(0, 0.05, (len(xs), V, 3))
    return joints, verts


def _people(joints, verts=None, **kw) -> PersonSet:
    return PersonSet(keypoints_2d=_project(joints), joints_3d=joints, vertices=verts, **kw)


def test_perfect_predictions_score_f1_one_and_zero_error():
    scenes = [_scene(), _scene((0.5,), depth=4.0)]
    gts = [_people(j, v) for j, v in scenes]
    preds = [_people(j.copy(), v.copy()) for j, v in scenes]
    r = evaluate_multiperson(preds, gts)
    assert (r["tp"], r["fp"], r["fn"], r["images"]) == (4, 0, 0, 2)
    assert r["precision"] == r["recall"] == r["f1"] == 1.0
    for k in ("mpjpe_mm", "pa_mpjpe_mm", "mve_mm", "nmje_mm", "nmve_mm"):
        assert r[k] == pytest.approx(0.0, abs=1e-6), k
    np.testing.assert_array_equal(r["matches"][0].pred_indices, [0, 1, 2])
    np.testing.assert_array_equal(r["per_person"]["image"], [0, 0, 0, 1])
    assert r["per_person"]["mpjpe_mm"].shape == (4,)


def test_shuffled_and_2d_swapped_predictions_are_matched_to_the_right_people():
    joints, verts = _scene()
    gt = _people(joints, verts)
    perm = np.array([2, 0, 1])
    pred = _people(joints[perm], verts[perm])
    m = match_people(pred, gt)
    np.testing.assert_array_equal(m.gt_indices, [0, 1, 2])
    np.testing.assert_array_equal(perm[m.pred_indices], m.gt_indices)  # pred p is gt perm[p]
    r = evaluate_multiperson([pred], [gt])
    assert r["f1"] == 1.0 and r["mpjpe_mm"] == pytest.approx(0.0, abs=1e-6)
    # Two people whose predictions come in swapped order: pairing by index would give errors
    # of metres (a mismatched pose), the 2D matching gives 0.
    j2, v2 = _scene((-0.4, 0.4))
    j2[1, 1:] += np.random.default_rng(1).normal(0, 0.1, (J - 1, 3))  # a different pose
    r2 = evaluate_multiperson([_people(j2[::-1].copy(), v2[::-1].copy())], [_people(j2, v2)])
    np.testing.assert_array_equal(r2["matches"][0].pred_indices, [1, 0])
    assert r2["mpjpe_mm"] == pytest.approx(0.0, abs=1e-6) and r2["mve_mm"] == pytest.approx(0.0, abs=1e-6)


def test_missing_person_lowers_recall_and_nmje_is_mpjpe_over_f1():
    joints, verts = _scene()
    pj, pv = joints[[0, 2]].copy(), verts[[0, 2]].copy()
    pj[:, 1:] += [0.0, 0.03, 0.04]  # every non-root joint 50 mm off
    r = evaluate_multiperson([_people(pj, pv)], [_people(joints, verts)])
    assert (r["tp"], r["fp"], r["fn"]) == (2, 0, 1)
    np.testing.assert_array_equal(r["matches"][0].false_negatives, [1])
    assert r["precision"] == 1.0 and r["recall"] == pytest.approx(2 / 3)
    assert r["f1"] == pytest.approx(0.8)  # 2 TP / (2 TP + FP + FN) = 4 / 5
    assert r["mpjpe_mm"] == pytest.approx(50.0 * (J - 1) / J)
    assert r["nmje_mm"] == r["mpjpe_mm"] / r["f1"]
    assert r["nmve_mm"] == r["mve_mm"] / r["f1"]


def test_extra_false_positive_lowers_precision():
    joints, verts = _scene()
    far, far_v = _scene((3.5,))  # a person where there is none
    pred = _people(np.concatenate([joints, far]), np.concatenate([verts, far_v]))
    r = evaluate_multiperson([pred], [_people(joints, verts)])
    assert (r["tp"], r["fp"], r["fn"]) == (3, 1, 0)
    np.testing.assert_array_equal(r["matches"][0].false_positives, [3])
    assert r["precision"] == pytest.approx(0.75) and r["recall"] == 1.0
    assert r["f1"] == pytest.approx(6 / 7)
    assert r["mpjpe_mm"] == pytest.approx(0.0, abs=1e-6)  # the FP does not enter the errors


def test_pelvis_alignment_removes_translation_and_keeps_per_joint_offsets():
    joints, verts = _scene()
    gt = _people(joints, verts)
    shift = np.array([0.3, -0.2, 0.5])  # whole body moved in 3D, same 2D keypoints
    moved = PersonSet(gt.keypoints_2d, joints + shift, verts + shift)
    r = evaluate_multiperson([moved], [gt])
    for k in ("mpjpe_mm", "pa_mpjpe_mm", "mve_mm"):
        assert r[k] == pytest.approx(0.0, abs=1e-6), k
    # Per-joint offsets of 50 mm (in varying directions) on every joint but the root, and on
    # every vertex: MPJPE = 50 mm x (J - 1) / J, MVE = 50 mm, plus the body translation.
    rng = np.random.default_rng(3)
    for root in (0, 5, -1):
        d = rng.normal(size=(3, J, 3))
        d = 0.05 * d / np.linalg.norm(d, axis=-1, keepdims=True)
        d[:, root] = 0.0
        dv = rng.normal(size=(3, V, 3))
        dv = 0.05 * dv / np.linalg.norm(dv, axis=-1, keepdims=True)
        pred = PersonSet(gt.keypoints_2d, joints + d + shift, verts + dv + shift)
        r = evaluate_multiperson([pred], [gt], root_index=root)
        assert r["mpjpe_mm"] == pytest.approx(50.0 * (J - 1) / J), root
        assert r["mve_mm"] == pytest.approx(50.0), root
        np.testing.assert_allclose(r["per_person"]["mpjpe_mm"], 50.0 * (J - 1) / J)
        assert 0.0 < r["pa_mpjpe_mm"] <= r["mpjpe_mm"]  # Procrustes can only reduce the error


def test_hungarian_maximises_matches_and_threshold_is_exclusive():
    # 1 keypoint per person, boxes with 100 px diagonal: cost = distance / 100.
    box = [[0, 0, 60, 80]] * 2
    j3 = np.zeros((2, 1, 3))
    gt = PersonSet(np.array([[[0.0, 0.0]], [[11.0, 0.0]]]), j3, boxes=box)
    pred = PersonSet(np.array([[[5.0, 0.0]], [[-10.0, 0.0]]]), j3)
    m = match_people(pred, gt)
    np.testing.assert_allclose(m.cost_matrix, [[0.05, 0.06], [0.10, 0.21]])
    # Greedy would take (0, 0) first and leave pred 1 unmatched (0.21 >= 0.2): we keep both.
    np.testing.assert_array_equal(m.pred_indices, [1, 0])
    np.testing.assert_allclose(m.costs, [0.10, 0.06])
    assert (m.tp, m.fp, m.fn) == (2, 0, 0)
    assert match_people(pred, gt, threshold=0.1).tp == 1  # 0.10 is not below 0.1
    one = PersonSet(np.array([[[19.0, 0.0]]]), j3[:1])
    assert match_people(one, PersonSet(gt.keypoints_2d[:1], j3[:1], boxes=box[:1])).tp == 1
    off = PersonSet(np.array([[[21.0, 0.0]]]), j3[:1])
    m = match_people(off, PersonSet(gt.keypoints_2d[:1], j3[:1], boxes=box[:1]))
    assert (m.tp, m.fp, m.fn) == (0, 1, 1) and MATCH_THRESHOLD == 0.2


def test_invisible_gt_keypoints_are_ignored_and_unmatchable_gt_is_a_miss():
    joints, _ = _scene((0.0, 1.5))
    kp = _project(joints)
    vis = np.ones((2, J), bool)
    vis[0, 10:] = False
    kp_gt = kp.copy()
    kp_gt[0, 10:] = np.nan  # unannotated
    vis[1] = False  # person 1 fully occluded: cannot be matched
    gt = PersonSet(kp_gt, joints, visibility=vis)
    kp_pred = kp.copy()
    kp_pred[0, 10:] += 500.0  # wrong only where GT is invisible
    m = match_people(PersonSet(kp_pred, joints), gt)
    assert m.tp == 1 and m.costs[0] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_array_equal(m.false_negatives, [1])
    np.testing.assert_array_equal(m.false_positives, [1])
    assert np.isinf(m.cost_matrix[:, 1]).all()
    sizes = person_sizes(gt)
    ext = kp[0, :10].max(0) - kp[0, :10].min(0)
    assert sizes[0] == pytest.approx(math.hypot(*ext)) and np.isnan(sizes[1])
    assert person_sizes(PersonSet(kp, joints, boxes=[[0, 0, 3, 4], [1, 1, 6, 8]])).tolist() == [5.0, 10.0]


def test_empty_images_and_no_detections():
    joints, verts = _scene((0.0,))
    empty = PersonSet(np.zeros((0, J, 2)), np.zeros((0, J, 3)))
    gt, pred = _people(joints, verts), _people(joints.copy(), verts.copy())
    r = evaluate_multiperson([empty, pred, empty, pred], [empty, gt, gt, empty])
    assert (r["tp"], r["fp"], r["fn"], r["images"]) == (1, 1, 1, 4)
    assert [(m.tp, m.fp, m.fn) for m in r["matches"]] == [(0, 0, 0), (1, 0, 0), (0, 0, 1), (0, 1, 0)]
    assert r["f1"] == pytest.approx(0.5) and r["mve_mm"] == pytest.approx(0.0, abs=1e-6)
    # Nothing to find, nothing found: every score is undefined.
    r = evaluate_multiperson([empty], [empty])
    assert math.isnan(r["precision"]) and math.isnan(r["f1"]) and math.isnan(r["nmje_mm"])
    assert r["mve_mm"] is None and r["nmve_mm"] is None and r["per_person"]["mpjpe_mm"].shape == (0,)
    # People but no detection: F1 = 0, errors undefined, normalised errors infinite.
    r = evaluate_multiperson([empty], [gt])
    assert r["f1"] == 0.0 and r["recall"] == 0.0 and math.isnan(r["precision"])
    assert math.isnan(r["mpjpe_mm"]) and math.isnan(r["mve_mm"]) and r["nmje_mm"] == math.inf
    assert evaluate_multiperson([], [])["images"] == 0
    assert detection_scores(3, 1, 2) == {"precision": 0.75, "recall": 0.6, "f1": 6 / 9}


def test_torch_inputs_give_the_same_result_as_numpy():
    joints, verts = _scene()
    pj = joints + np.random.default_rng(5).normal(0, 0.02, joints.shape)
    ref = evaluate_multiperson([_people(pj, verts)], [_people(joints, verts)])
    t = torch.from_numpy
    pred = PersonSet(t(_project(pj)).float(), t(pj).float(), t(verts).float())
    out = evaluate_multiperson([pred], [PersonSet(t(_project(joints)), t(joints), t(verts))])
    for k in ("mpjpe_mm", "pa_mpjpe_mm", "mve_mm", "f1"):
        assert out[k] == pytest.approx(ref[k], rel=1e-5), k
    assert ref["mpjpe_mm"] > 10.0


def test_invalid_inputs_raise_clear_value_errors():
    joints, verts = _scene((0.0, 1.5))
    kp = _project(joints)
    gt = _people(joints, verts)
    with pytest.raises(ValueError, match="keypoints_2d must have shape"):
        PersonSet(kp[..., :1], joints)
    with pytest.raises(ValueError, match="joints_3d must have shape"):
        PersonSet(kp, joints[:1])
    with pytest.raises(ValueError, match="vertices must have shape"):
        PersonSet(kp, joints, verts[:1])
    with pytest.raises(ValueError, match="visibility must have shape"):
        PersonSet(kp, joints, visibility=np.ones((2, J - 1), bool))
    with pytest.raises(ValueError, match=r"boxes of people \[1\]"):
        PersonSet(kp, joints, boxes=[[0, 0, 10, 10], [0, 0, 0, 10]])
    bad = kp.copy()
    bad[0, 3] = np.nan
    with pytest.raises(ValueError, match="pred keypoints_2d contains 2 non-finite"):
        match_people(PersonSet(bad, joints), gt)
    with pytest.raises(ValueError, match="visible keypoint"):
        match_people(gt, PersonSet(bad, joints))  # NaN on a visible GT keypoint
    with pytest.raises(ValueError, match="K=20 keypoints"):
        match_people(PersonSet(kp[:, 1:], joints), gt)
    for thr in (0.0, -1.0, math.nan, "0.2", True):
        with pytest.raises(ValueError, match="threshold"):
            match_people(gt, gt, threshold=thr)
    nan3d = joints.copy()
    nan3d[1, 2, 0] = np.nan
    with pytest.raises(ValueError, match="image 0: pred joints_3d contains 1 non-finite"):
        evaluate_multiperson([PersonSet(kp, nan3d, verts)], [gt])
    with pytest.raises(ValueError, match="root_index 21 is out of range"):
        evaluate_multiperson([gt], [gt], root_index=J)
    with pytest.raises(ValueError, match="vertices given for gt only"):
        evaluate_multiperson([PersonSet(kp, joints)], [gt])
    with pytest.raises(ValueError, match="1 images but ground truth for 2"):
        evaluate_multiperson([gt], [gt, gt])
    with pytest.raises(ValueError, match="J=20 joints"):
        evaluate_multiperson([PersonSet(kp, joints[:, 1:], verts)], [gt])
    with pytest.raises(ValueError, match="some images"):
        evaluate_multiperson([gt, PersonSet(kp, joints)], [gt, PersonSet(kp, joints)])
