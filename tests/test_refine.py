"""Tests for lifting.refine.fit_track (``posenet3d lift --fit track``) and
lifting.metrics.reprojection_residual (the per-track 2D agreement in ``summary.json``)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lifting.lift import lift_file
from lifting.metrics import reprojection_residual
from lifting.options import LiftOptions
from lifting.refine import FitWeights, fit_track
from lifting.skeletons import CANON16
from lifting.models.teacher import Lifter
from lifting.models.checkpoint import save_checkpoint

PARENTS = CANON16.parents


def _walker(T: int = 40, seed: int = 0) -> np.ndarray:
    """A moving root-relative canon16 skeleton ``(T, 16, 3)`` metres with rigid bones (a rest
    pose turned about the vertical axis and swinging its limbs)."""
    rng = np.random.default_rng(seed)
    rest = np.zeros((16, 3))
    offsets = rng.normal(0, 0.05, (16, 3)) + np.array([0, 0.25, 0])  # bones point down by default
    offsets[[7, 8, 9]] = [[0, -0.25, 0.02], [0, -0.25, 0], [0, -0.2, 0.02]]  # spine, thorax, head up
    for j in range(1, 16):
        rest[j] = rest[PARENTS[j]] + offsets[j]
    out = []
    for t in range(T):
        a = 0.6 * np.sin(t / 6)
        R = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
        out.append(rest @ R.T)
    return np.stack(out)


def _project(y: np.ndarray, s: float = 400.0, c=(320.0, 240.0)) -> np.ndarray:
    return s * y[..., :2] + np.asarray(c)


def test_fit_pulls_a_wrong_lift_onto_its_2d_and_keeps_depth_prior():
    truth = _walker()
    kp = _project(truth)
    rng = np.random.default_rng(1)
    lift = truth + rng.normal(0, 0.04, truth.shape)  # a lift that does not follow its 2D
    lift[:, 0] = 0
    mask = np.ones(kp.shape[:2], bool)
    before = np.nanmedian(reprojection_residual(lift, kp, mask))
    fitted = fit_track(lift, kp, mask)
    after = np.nanmedian(reprojection_residual(fitted, kp, mask))
    assert fitted.shape == lift.shape and fitted.dtype == np.float32
    np.testing.assert_allclose(fitted[:, 0], 0.0, atol=1e-6)  # root stays at 0
    assert after < 0.25 * before
    err = lambda y: np.linalg.norm(y - truth, axis=-1).mean()  # noqa: E731
    assert err(fitted) < err(lift)  # closer to the truth in 3D too (x, y fixed by the 2D; bones shared)


def test_fit_of_an_exact_lift_stays_within_a_centimetre():
    truth = _walker()
    fitted = fit_track(truth, _project(truth), np.ones(truth.shape[:2], bool))
    # only the smoothness term (the walker accelerates) moves it, by a few millimetres
    assert np.abs(fitted - truth).max() < 0.01


def test_masked_joints_have_no_2d_term_and_runs_are_independent():
    truth = _walker(30)
    kp = _project(truth)
    mask = np.ones(kp.shape[:2], bool)
    mask[:, CANON16.index("l_wrist")] = False
    kp[:, CANON16.index("l_wrist")] = 1e4  # garbage where the joint is masked
    lift = truth.copy()
    fitted = fit_track(lift, kp, mask, seq_offsets=np.array([0, 10, 30]))
    assert np.abs(fitted - truth).max() < 0.01  # the garbage 2D of the masked wrist is ignored


def test_fit_rejects_bad_input():
    y = _walker(5)
    kp, mask = _project(y), np.ones((5, 16), bool)
    with pytest.raises(ValueError, match="must be"):
        fit_track(y[:, :10], kp, mask)
    with pytest.raises(ValueError, match="seq_offsets"):
        fit_track(y, kp, mask, seq_offsets=np.array([0, 3]))
    bad = kp.copy()
    bad[2, 3] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        fit_track(y, bad, mask)
    assert fit_track(y, kp, mask, weights=FitWeights(iterations=0)).tolist() == y.astype(np.float32).tolist()


def test_reprojection_residual_is_scale_and_shift_free():
    y = _walker(4)
    mask = np.ones((4, 16), bool)
    np.testing.assert_allclose(reprojection_residual(y, _project(y, 123.0, (5, 7)), mask), 0.0, atol=1e-9)
    kp = _project(y)
    kp[:, 5] += [30.0, 0.0]
    r = reprojection_residual(y, kp, mask)
    assert (r > 0.01).all() and (r < 0.2).all()
    one = mask.copy()
    one[0, 1:] = False
    assert np.isnan(reprojection_residual(y, kp, one)[0])
    with pytest.raises(ValueError, match="must be"):
        reprojection_residual(y, kp[:, :3], mask)


def test_lift_fit_option_and_summary_fields(tmp_path):
    torch.manual_seed(0)
    m = Lifter(16, window=1, width=32, n_blocks=1, root_index=CANON16.root_index)
    ck = save_checkpoint({"model": m.state_dict(), "model_config": m.config, "kind": "teacher"}, tmp_path / "t.pt")
    truth = _walker(20)
    coco = {"left_hip": 4, "right_hip": 1, "left_knee": 5, "right_knee": 2, "left_ankle": 6, "right_ankle": 3,
            "left_shoulder": 10, "right_shoulder": 13, "left_elbow": 11, "right_elbow": 14, "left_wrist": 12,
            "right_wrist": 15, "nose": 9, "left_eye": 9, "right_eye": 9, "left_ear": 9, "right_ear": 9}
    from lifting.skeletons import COCO17
    recs = []
    for t, pose in enumerate(_project(truth)):
        kp = np.array([[*pose[coco[n]], 0.9] for n in COCO17.joint_names])
        recs.append({"image_id": t, "track_id": 1, "keypoints": kp.ravel().round(2).tolist()})
    src = tmp_path / "tracks.json"
    src.write_text(json.dumps(recs))
    res = {}
    for fit in ("none", "track"):
        s = lift_file(src, tmp_path / fit, LiftOptions(checkpoint=ck, fit=fit, max_figures=0, uncertainty="off"))
        assert s["fit"] == fit and s["fps"] is None and s["fps_assumed"] == 30.0
        assert any("no frame rate" in w for w in s["warnings"])
        res[fit] = s["tracks"][0]["reprojection_residual_pct"]
    assert 0 <= res["none"] < 5 and 0 <= res["track"] < 2  # % of the person's height: the fit follows its 2D
    with pytest.raises(ValueError, match="--fit"):
        LiftOptions(fit="bundle")


def test_second_difference_operator_matches_its_dense_form():
    from lifting.refine import _second_differences

    seg = np.array([0, 5, 6, 12])
    T = 12
    D = np.zeros((0, T))
    for a, b in zip(seg[:-1], seg[1:]):
        for k in range(a + 1, b - 1):
            row = np.zeros(T)
            row[k - 1:k + 2] = [1, -2, 1]
            D = np.vstack([D, row])
    dense = D.T @ D
    ab = _second_differences(seg, T)  # lower band: ab[i - j, j] = A[i, j]
    rebuilt = np.zeros((T, T))
    for i in range(T):
        for j in range(max(0, i - 2), i + 1):
            rebuilt[i, j] = rebuilt[j, i] = ab[i - j, j]
    np.testing.assert_allclose(rebuilt, dense)
    assert (ab[1, -1:] == 0).all() and (ab[2, -2:] == 0).all()  # nothing past the end: bands can be laid end to end


def test_fit_equals_the_per_joint_dense_solve():
    """The block solve of all joints at once (lifting.refine._fit_xy) against the energy's
    normal equations solved per joint and coordinate with dense matrices."""
    from lifting.refine import _second_differences

    T, J, r = 12, 16, CANON16.root_index
    rng = np.random.default_rng(5)
    y0 = _walker(T) + rng.normal(0, 0.03, (T, J, 3))
    y0 -= y0[:, r:r + 1]
    kp, mask = _project(_walker(T)) + rng.normal(0, 2, (T, J, 2)), rng.random((T, J)) > 0.2
    conf, seg = rng.uniform(0.3, 1, (T, J)), np.array([0, 7, T])
    got = fit_track(y0, kp, mask, conf, seg, weights=FitWeights(rigid=False, iterations=3))
    w = np.where(mask, conf, 0.0)
    w = np.where((w > 0).sum(-1, keepdims=True) >= 2, w, 0.0)
    R2 = (y0 ** 2).sum(-1).mean()
    band = _second_differences(seg, T)
    S = np.diag(band[0]) + np.diag(band[1, :-1], -1) + np.diag(band[1, :-1], 1) + np.diag(band[2, :-2], -2) + \
        np.diag(band[2, :-2], 2)
    ws = w.sum(-1)
    km = (w[..., None] * kp).sum(1) / ws[:, None]
    size2 = (w * ((kp - km[:, None]) ** 2).sum(-1)).sum(-1) / ws
    y = y0.copy()
    for _ in range(3):
        xm = (w[..., None] * y[..., :2]).sum(1) / ws[:, None]
        xc, kc = y[..., :2] - xm[:, None], kp - km[:, None]
        s = (w[..., None] * xc * kc).sum((1, 2)) / (w[..., None] * xc * xc).sum((1, 2))
        d = km - s[:, None] * xm
        for j in range(J):
            A = (S + 0.1 * np.eye(T)) / R2 + np.diag(w[:, j] * s ** 2 / size2)
            b = w[:, j, None] * (s / size2)[:, None] * (kp[:, j] - d) + 0.1 / R2 * y0[:, j, :2]
            y[:, j, :2] = np.linalg.solve(A, b)
        y -= y[:, r:r + 1]
    y[..., 2] = np.linalg.solve(S + 0.1 * np.eye(T), 0.1 * y0[..., 2])
    np.testing.assert_allclose(got, y - y[:, r:r + 1], atol=1e-6)


def test_rigid_bones_gives_one_length_per_bone_and_body_and_keeps_directions():
    from lifting.refine import rigid_bones

    truth = _walker(20)
    rng = np.random.default_rng(3)
    stretched = truth * rng.uniform(0.8, 1.2, (20, 1, 1))  # every frame a different size
    stretched[:, 0] = 0
    out = rigid_bones(stretched, PARENTS, np.array([0, 8, 20]))
    child = [j for j, p in enumerate(PARENTS) if p >= 0]
    par = [PARENTS[j] for j in child]
    lengths = np.linalg.norm(out[:, child] - out[:, par], axis=-1)
    for a, b in ((0, 8), (8, 20)):
        np.testing.assert_allclose(lengths[a:b], np.broadcast_to(np.median(lengths[a:b], 0), (b - a, 15)), rtol=1e-9)
    d_in, d_out = stretched[:, child] - stretched[:, par], out[:, child] - out[:, par]
    cos = (d_in * d_out).sum(-1) / np.linalg.norm(d_in, axis=-1) / np.linalg.norm(d_out, axis=-1)
    np.testing.assert_allclose(cos, 1.0, atol=1e-9)
    with pytest.raises(ValueError, match="precede"):
        rigid_bones(stretched, [-1, 2, 0] + list(PARENTS[3:]), np.array([0, 20]))


def test_fit_shares_bone_lengths_across_gaps_but_not_across_identity_switches():
    truth = _walker(30)
    kp, mask = _project(truth), np.ones((30, 16), bool)
    lift = truth * np.where(np.arange(30) < 15, 1.0, 1.3)[:, None, None]  # "another person" from frame 15
    runs = np.array([0, 10, 15, 30])  # a gap at 10, a switch at 15
    out = fit_track(lift, kp, mask, seq_offsets=runs, body_offsets=np.array([0, 15, 30]))
    leg = np.linalg.norm(out[:, CANON16.index("r_knee")] - out[:, CANON16.index("r_hip")], axis=-1)
    assert np.ptp(leg[:15]) < 1e-5 and np.ptp(leg[15:]) < 1e-5  # one length per person, across the gap
    assert leg[20] / leg[5] > 1.2  # the second person keeps its own size
