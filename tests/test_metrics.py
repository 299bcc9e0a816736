"""Tests for lifting.metrics (hand-made, deterministic, CPU-only, fast)."""

import math

import pytest
import torch

from lifting import metrics as M

ATOL = 1e-6


def _rot(axis, angle, dtype=torch.float64):
    """Hand-built rotation matrix about a coordinate axis."""
    c, s = math.cos(angle), math.sin(angle)
    if axis == "x":
        r = [[1, 0, 0], [0, c, -s], [0, s, c]]
    elif axis == "y":
        r = [[c, 0, s], [0, 1, 0], [-s, 0, c]]
    else:
        r = [[c, -s, 0], [s, c, 0], [0, 0, 1]]
    return torch.tensor(r, dtype=dtype)


def _pose(j=17, seed=0, dtype=torch.float64):
    """Deterministic non-planar, root-relative pose (J, 3) in metres."""
    g = torch.Generator().manual_seed(seed)
    p = 0.3 * torch.randn(j, 3, generator=g, dtype=torch.float64)
    p = p - p[0]
    return p.to(dtype)


def _poses(shape, j=17, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (0.3 * torch.randn(*shape, j, 3, generator=g, dtype=torch.float64)).to(dtype)


# --------------------------------------------------------------------------- #
# identity / basic values
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_identical_poses_give_zero_error_and_full_pck(dtype):
    t = _poses((4,), dtype=dtype)
    res = M.compute_all(t.clone(), t)
    for k in ("mpjpe", "n_mpjpe", "pa_mpjpe"):
        assert res[k].shape == (4,)
        assert res[k].dtype == dtype
        assert torch.allclose(res[k], torch.zeros_like(res[k]), atol=1e-5), k
    assert torch.equal(res["pck3d"], torch.ones(4, dtype=dtype))
    assert torch.allclose(res["auc"], torch.ones(4, dtype=dtype))
    s = M.summarize(res)
    assert s["pck3d"] == pytest.approx(100.0)
    assert s["auc"] == pytest.approx(100.0)
    assert s["mpjpe_mm"] == pytest.approx(0.0, abs=1e-3)
    assert s["pa_mpjpe_mm"] == pytest.approx(0.0, abs=1e-2)
    assert s["n"] == 4


def test_mpjpe_hand_computed():
    target = torch.zeros(2, 3, dtype=torch.float64)
    pred = torch.tensor([[0.3, 0.4, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    # errors 0.5 and 1.0 -> mean 0.75
    assert M.mpjpe(pred, target).item() == pytest.approx(0.75)


def test_unit_offset_10mm():
    t = _poses((5,))
    p = t + torch.tensor([0.010, 0.0, 0.0], dtype=t.dtype)
    e = M.mpjpe(p, t)
    assert torch.allclose(e, torch.full((5,), 0.010, dtype=t.dtype), atol=1e-12)
    s = M.summarize(M.compute_all(p, t))
    assert s["mpjpe_mm"] == pytest.approx(10.0, abs=1e-9)
    assert s["n"] == 5
    # a pure translation is removed by Procrustes
    assert s["pa_mpjpe_mm"] == pytest.approx(0.0, abs=1e-6)
    s_raw = M.summarize(M.compute_all(p, t), to_mm=False)
    assert s_raw["mpjpe"] == pytest.approx(0.010)
    assert s_raw["pck3d"] == pytest.approx(1.0)


def test_offset_along_diagonal_is_euclidean():
    t = _poses((3,))
    d = 0.010 / math.sqrt(3.0)
    p = t + d
    assert torch.allclose(M.mpjpe(p, t), torch.full((3,), 0.010, dtype=t.dtype))


# --------------------------------------------------------------------------- #
# alignment
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_similarity_transform_gives_zero_pa_mpjpe(dtype):
    roma = pytest.importorskip("roma")
    t = _pose(dtype=torch.float64)
    rot = roma.rotvec_to_rotmat(torch.tensor([0.4, -1.1, 0.7], dtype=torch.float64))
    trans = torch.tensor([0.5, -0.2, 3.0], dtype=torch.float64)
    p = (1.7 * t @ rot.T + trans).to(dtype)
    t = t.to(dtype)
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    assert M.pa_mpjpe(p, t).item() < tol
    assert M.mpjpe(p, t).item() > 0.5
    aligned = M.procrustes_align(p, t)
    assert aligned.dtype == dtype and aligned.shape == t.shape
    assert torch.allclose(aligned, t, atol=tol * 10)
    # recovered transform maps target onto pred: R ~ rot^T, scale ~ 1/1.7
    r, s, _ = M.procrustes_fit(p, t)
    assert torch.allclose(r.to(torch.float64), rot.T, atol=1e-4)
    assert s.item() == pytest.approx(1 / 1.7, rel=1e-4)


def test_hand_built_rotation_similarity():
    t = _pose(seed=3)
    rot = _rot("z", 0.9) @ _rot("x", -0.3)
    p = 1.7 * t @ rot.T + torch.tensor([0.1, 0.2, -0.3], dtype=t.dtype)
    assert M.pa_mpjpe(p, t).item() < 1e-10
    assert M.mpjpe(p, t).item() > 0.1


def test_reflection_is_not_forgiven():
    t = _pose(seed=1)
    p = t.clone()
    p[..., 0] = -p[..., 0]  # mirror x -> -x
    # sanity: the pose is non-planar (rank 3 after centring)
    centred = t - t.mean(0)
    assert torch.linalg.matrix_rank(centred).item() == 3
    err = M.pa_mpjpe(p, t).item()
    assert err > 0.05  # clearly > 0 (metres), not ~0
    r, _, _ = M.procrustes_fit(p, t)
    assert torch.linalg.det(r).item() == pytest.approx(1.0, abs=1e-9)


def test_rotation_is_always_proper():
    pred = _poses((6,), seed=11)
    target = _poses((6,), seed=12)
    r, s, t = M.procrustes_fit(pred, target)
    assert r.shape == (6, 3, 3) and s.shape == (6,) and t.shape == (6, 3)
    dets = torch.linalg.det(r)
    assert torch.allclose(dets, torch.ones_like(dets), atol=1e-9)
    eye = torch.eye(3, dtype=r.dtype).expand_as(r)
    assert torch.allclose(r @ r.transpose(-1, -2), eye, atol=1e-9)


def test_pa_mpjpe_never_worse_than_mpjpe_after_centring():
    pred = _poses((8,), seed=5)
    target = _poses((8,), seed=6)
    pc = pred - pred.mean(-2, keepdim=True)
    tc = target - target.mean(-2, keepdim=True)
    # PA-MPJPE minimises the squared error, so compare RMS quantities
    aligned = M.procrustes_align(pred, target)
    rms_aligned = ((aligned - target) ** 2).sum(-1).mean(-1)
    rms_centred = ((pc - tc) ** 2).sum(-1).mean(-1)
    assert bool((rms_aligned <= rms_centred + 1e-12).all())


def test_pure_scaling_gives_zero_n_mpjpe():
    t = _poses((3,), seed=2)
    p = 0.6 * t
    assert torch.allclose(M.n_mpjpe(p, t), torch.zeros(3, dtype=t.dtype), atol=1e-12)
    assert bool((M.mpjpe(p, t) > 0.01).all())
    assert torch.allclose(M.scale_align(p, t), t, atol=1e-12)


def test_scale_align_closed_form():
    t = _pose(seed=4)
    p = _pose(seed=5)
    s = (p * t).sum() / (p * p).sum()
    assert torch.allclose(M.scale_align(p, t), s * p)
    # optimality: perturbing s increases the squared error
    def sq(k):
        return ((k * p - t) ** 2).sum().item()
    assert sq(s.item()) <= sq(s.item() * 1.01) and sq(s.item()) <= sq(s.item() * 0.99)


def test_n_mpjpe_does_not_remove_rotation():
    t = _pose(seed=7)
    p = t @ _rot("y", 0.8).T
    assert M.n_mpjpe(p, t).item() > 0.01
    assert M.pa_mpjpe(p, t).item() < 1e-10


# --------------------------------------------------------------------------- #
# PCK / AUC
# --------------------------------------------------------------------------- #
def test_pck_threshold_boundary():
    target = torch.zeros(4, 3, dtype=torch.float64)
    pred = torch.zeros(4, 3, dtype=torch.float64)
    pred[0, 0] = 0.1499  # below 150 mm -> correct
    pred[1, 1] = 0.1501  # above -> wrong
    pred[2, 2] = 0.0     # perfect -> correct
    pred[3, 0] = 1.0     # way off -> wrong
    assert M.pck3d(pred, target).item() == pytest.approx(0.5)
    # all joints just below / just above the default threshold
    below = torch.zeros(4, 3, dtype=torch.float64)
    below[:, 0] = 0.1499
    above = torch.zeros(4, 3, dtype=torch.float64)
    above[:, 0] = 0.1501
    assert M.pck3d(below, target).item() == 1.0
    assert M.pck3d(above, target).item() == 0.0
    # custom threshold
    assert M.pck3d(above, target, threshold=0.2).item() == 1.0
    assert M.pck3d(below, target, threshold=0.1).item() == 0.0


def test_pck_bad_threshold():
    t = _pose()
    with pytest.raises(ValueError, match="threshold"):
        M.pck3d(t, t, threshold=-0.1)


def test_auc_perfect_and_bad():
    t = _poses((2,))
    assert torch.allclose(M.auc(t, t), torch.ones(2, dtype=t.dtype))
    bad = t + 1.0  # ~1.7 m error on every joint
    assert torch.equal(M.auc(bad, t), torch.zeros(2, dtype=t.dtype))
    assert M.summarize(M.compute_all(t, t))["auc"] == pytest.approx(100.0)
    assert M.summarize(M.compute_all(bad, t))["auc"] == pytest.approx(0.0)


def test_auc_intermediate_value():
    # every joint has an error of exactly 72.5 mm (between the 70 and 75 mm
    # thresholds): correct for thresholds 75..150 mm -> 16 of 31
    target = torch.zeros(5, 3, dtype=torch.float64)
    pred = target.clone()
    pred[:, 2] = 0.0725
    assert M.auc(pred, target).item() == pytest.approx(16 / 31)
    # custom thresholds
    assert M.auc(pred, target, thresholds=[0.05, 0.1]).item() == pytest.approx(0.5)
    assert M.auc(pred, target, thresholds=torch.tensor([0.1])).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="thresholds"):
        M.auc(pred, target, thresholds=[])


def test_default_auc_thresholds():
    assert len(M.AUC_THRESHOLDS) == 31
    assert M.AUC_THRESHOLDS[0] == 0.0
    assert M.AUC_THRESHOLDS[-1] == pytest.approx(0.150)
    assert M.AUC_THRESHOLDS[1] == pytest.approx(0.005)


# --------------------------------------------------------------------------- #
# masks
# --------------------------------------------------------------------------- #
def test_mask_excludes_joint_from_all_metrics():
    g = torch.Generator().manual_seed(9)
    t = _poses((3,), seed=8)
    p = t + 0.02 * torch.randn(t.shape, generator=g, dtype=t.dtype)
    mask = torch.ones(3, 17, dtype=torch.bool)
    mask[:, 5] = False
    base = M.compute_all(p, t, mask)
    p_bad = p.clone()
    p_bad[:, 5] += torch.tensor([50.0, -30.0, 80.0], dtype=t.dtype)  # huge error, masked
    res = M.compute_all(p_bad, t, mask)
    for k in base:
        assert torch.allclose(res[k], base[k], atol=1e-9), k
    # and it matches simply dropping the joint
    keep = [j for j in range(17) if j != 5]
    dropped = M.compute_all(p[:, keep], t[:, keep])
    for k in base:
        assert torch.allclose(res[k], dropped[k], atol=1e-9), k
    # without the mask the huge error shows up
    assert bool((M.mpjpe(p_bad, t) > 1.0).all())
    assert bool((M.pa_mpjpe(p_bad, t) > 0.1).all())


def test_float_mask_equals_bool_mask():
    t = _poses((2,), seed=1)
    p = _poses((2,), seed=2)
    mb = torch.ones(2, 17, dtype=torch.bool)
    mb[0, :3] = False
    mb[1, 10] = False
    mf = mb.to(torch.float32)
    a = M.compute_all(p, t, mb)
    b = M.compute_all(p, t, mf)
    for k in a:
        assert torch.allclose(a[k], b[k]), k


def test_fully_masked_sample_is_nan_and_skipped_by_summarize():
    t = _poses((3,), seed=1)
    p = t + 0.01
    mask = torch.ones(3, 17, dtype=torch.bool)
    mask[1] = False
    res = M.compute_all(p, t, mask)
    for k in res:
        assert torch.isnan(res[k][1]), k
        assert bool(torch.isfinite(res[k][[0, 2]]).all()), k
    s = M.summarize(res)
    assert s["n"] == 2
    assert s["mpjpe_mm"] == pytest.approx(10.0 * math.sqrt(3.0))
    assert all(math.isfinite(v) for v in s.values())


# --------------------------------------------------------------------------- #
# batching
# --------------------------------------------------------------------------- #
def test_batched_leading_dims_match_loop():
    B, T, J = 2, 3, 17
    t = _poses((B, T), j=J, seed=20)
    g = torch.Generator().manual_seed(21)
    p = 1.3 * t @ _rot("z", 0.5).T + 0.05 * torch.randn(t.shape, generator=g, dtype=t.dtype)
    mask = torch.rand(B, T, J, generator=g) > 0.2
    for m in (None, mask):
        res = M.compute_all(p, t, m)
        for k, v in res.items():
            assert v.shape == (B, T), k
        for b in range(B):
            for i in range(T):
                mi = None if m is None else m[b, i]
                single = M.compute_all(p[b, i], t[b, i], mi)
                for k, v in single.items():
                    assert v.shape == (), k
                    assert torch.allclose(res[k][b, i], v, atol=1e-10), (k, b, i)
        aligned = M.procrustes_align(p, t, m)
        assert aligned.shape == (B, T, J, 3)
        assert M.scale_align(p, t, m).shape == (B, T, J, 3)


def test_summarize_averages_over_all_samples():
    per = {
        "mpjpe": torch.tensor([[0.01, 0.03], [0.02, 0.04]]),
        "n_mpjpe": torch.tensor([[0.0, 0.0], [0.0, 0.004]]),
        "pa_mpjpe": torch.tensor([[0.001, 0.001], [0.001, 0.001]]),
        "pck3d": torch.tensor([[1.0, 0.5], [0.5, 0.0]]),
        "auc": torch.tensor([[0.2, 0.4], [0.6, 0.8]]),
    }
    s = M.summarize(per)
    assert set(s) == {"mpjpe_mm", "n_mpjpe_mm", "pa_mpjpe_mm", "pck3d", "auc", "n"}
    assert s["mpjpe_mm"] == pytest.approx(25.0)
    assert s["n_mpjpe_mm"] == pytest.approx(1.0)
    assert s["pa_mpjpe_mm"] == pytest.approx(1.0)
    assert s["pck3d"] == pytest.approx(50.0)
    assert s["auc"] == pytest.approx(50.0)
    assert s["n"] == 4
    assert all(isinstance(v, (int, float)) for v in s.values())
    with pytest.raises(ValueError):
        M.summarize({})
    with pytest.raises(ValueError, match="different numbers"):
        M.summarize({"mpjpe": torch.zeros(3), "auc": torch.zeros(2)})


# --------------------------------------------------------------------------- #
# degenerate input
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_degenerate_inputs_are_finite(dtype):
    t = _pose(dtype=dtype)
    point = torch.full((17, 3), 0.37, dtype=dtype)  # all joints at one point
    zeros = torch.zeros(17, 3, dtype=dtype)
    cases = [(point, t), (zeros, t), (t, point), (zeros, zeros), (point, point)]
    for p, q in cases:
        res = M.compute_all(p, q)
        for k, v in res.items():
            assert bool(torch.isfinite(v).all()), k
        assert bool(torch.isfinite(M.procrustes_align(p, q)).all())
        assert bool(torch.isfinite(M.scale_align(p, q)).all())
    # zero-variance pred -> every joint mapped to the target centroid
    aligned = M.procrustes_align(point, t)
    assert torch.allclose(aligned, t.mean(0).expand_as(t), atol=1e-5)
    # single joint and collinear poses
    one = torch.tensor([[0.1, 0.2, 0.3]], dtype=dtype)
    assert bool(torch.isfinite(M.pa_mpjpe(one, one * 2)).all())
    line = torch.linspace(0, 1, 17, dtype=dtype)[:, None] * torch.tensor([1.0, 2.0, 0.5], dtype=dtype)
    assert M.pa_mpjpe(line * 1.5 + 0.2, line).item() < 1e-4


def test_degenerate_with_mask_only_one_valid_joint():
    t = _pose()
    p = _pose(seed=1)
    mask = torch.zeros(17, dtype=torch.bool)
    mask[4] = True
    e = M.pa_mpjpe(p, t, mask)
    assert torch.isfinite(e)
    assert e.item() == pytest.approx(0.0, abs=1e-12)  # a single point is matched by translation


def test_planar_pose_pa_is_exact():
    # planar (rank-2) pose: the reflection fix must still recover a rotation
    t = _pose(seed=2)
    t[:, 2] = 0.0
    rot = _rot("x", 0.7) @ _rot("z", -1.2)
    p = 0.8 * t @ rot.T + 0.3
    assert M.pa_mpjpe(p, t).item() < 1e-10


# --------------------------------------------------------------------------- #
# validation errors
# --------------------------------------------------------------------------- #
def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shape mismatch"):
        M.mpjpe(torch.zeros(2, 17, 3), torch.zeros(2, 16, 3))
    with pytest.raises(ValueError, match="shape mismatch"):
        M.compute_all(torch.zeros(17, 3), torch.zeros(1, 17, 3))


def test_last_dim_not_3_raises():
    with pytest.raises(ValueError, match="last dimension must be 3"):
        M.pa_mpjpe(torch.zeros(4, 17, 2), torch.zeros(4, 17, 2))
    with pytest.raises(ValueError, match=r"\(\.\.\., J, 3\)"):
        M.mpjpe(torch.zeros(3), torch.zeros(3))


def test_bad_mask_shape_raises():
    t = torch.zeros(2, 17, 3)
    with pytest.raises(ValueError, match="mask shape"):
        M.mpjpe(t, t, mask=torch.ones(2, 16, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask shape"):
        M.procrustes_align(t, t, mask=torch.ones(17, dtype=torch.bool))
    with pytest.raises(ValueError, match="negative"):
        M.mpjpe(t, t, mask=-torch.ones(2, 17))


@pytest.mark.parametrize(
    "fn",
    [M.mpjpe, M.n_mpjpe, M.pa_mpjpe, M.pck3d, M.auc, M.scale_align, M.procrustes_align, M.compute_all],
)
def test_nan_raises_with_count(fn):
    t = _poses((2,))
    p = t.clone()
    p[0, 3, 1] = float("nan")
    p[1, 4, 0] = float("nan")
    with pytest.raises(ValueError, match=r"pred contains 2 non-finite"):
        fn(p, t)
    q = t.clone()
    q[1, 2, 2] = float("inf")
    with pytest.raises(ValueError, match=r"target contains 1 non-finite"):
        fn(t, q)


# --------------------------------------------------------------------------- #
# dtype / autograd
# --------------------------------------------------------------------------- #
def test_output_dtype_follows_input():
    t = _poses((2,), dtype=torch.float32)
    p = (t * 1.1).contiguous()
    for k, v in M.compute_all(p, t).items():
        assert v.dtype == torch.float32, k
    assert M.procrustes_align(p, t).dtype == torch.float32


def test_mpjpe_and_pa_mpjpe_are_differentiable():
    t = _pose(seed=3)
    p = _pose(seed=4).requires_grad_(True)
    loss = M.mpjpe(p, t) + M.pa_mpjpe(p, t) + M.n_mpjpe(p, t)
    loss.backward()
    assert p.grad is not None and bool(torch.isfinite(p.grad).all())


# --------------------------------------------------------------------------- #
# plausibility of lifted tracks: knee angles, bone-length CV
# --------------------------------------------------------------------------- #
def _standing(knee_deg=180.0):
    """Canon16 pose (16, 3), metres, Y up: straight legs, or both knees bent to ``knee_deg``
    (the shank rotated about the x axis at the knee)."""
    from lifting.skeletons import CANON16

    p = {"pelvis": (0, 0, 0), "r_hip": (-0.1, 0, 0), "l_hip": (0.1, 0, 0), "spine": (0, 0.25, 0),
         "thorax": (0, 0.5, 0), "head": (0, 0.7, 0), "l_shoulder": (0.18, 0.48, 0), "r_shoulder": (-0.18, 0.48, 0),
         "l_elbow": (0.2, 0.2, 0), "r_elbow": (-0.2, 0.2, 0), "l_wrist": (0.2, -0.05, 0), "r_wrist": (-0.2, -0.05, 0)}
    bend = math.radians(180.0 - knee_deg)
    for side, x in (("r", -0.1), ("l", 0.1)):
        p[f"{side}_knee"] = (x, -0.45, 0)
        p[f"{side}_ankle"] = (x, -0.45 - 0.42 * math.cos(bend), -0.42 * math.sin(bend))
    return torch.tensor([p[n] for n in CANON16.joint_names], dtype=torch.float64)


@pytest.mark.parametrize("deg", [180.0, 150.0, 90.0, 30.0])
def test_knee_angles_of_constructed_bends(deg):
    k = M.knee_angles(_standing(deg))
    assert k.shape == (2,)
    assert torch.allclose(k, torch.full((2,), deg, dtype=torch.float64), atol=1e-6)


def test_knee_angles_rigid_invariant_batched_numpy_and_degenerate():
    pose = torch.stack([_standing(170.0), _standing(100.0)])  # (T=2, 16, 3)
    moved = pose @ _rot("y", 0.7).T @ _rot("x", -0.3).T + torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    k = M.knee_angles(moved.numpy())  # arrays are accepted
    assert k.shape == (2, 2)
    assert torch.allclose(k, torch.tensor([[170.0, 170.0], [100.0, 100.0]], dtype=torch.float64), atol=1e-6)
    bad = _standing()
    bad[2] = bad[1]  # r_knee on r_hip: no thigh, no angle
    k = M.knee_angles(bad)
    assert torch.isnan(k[0]) and torch.isclose(k[1], torch.tensor(180.0, dtype=torch.float64))


def test_bone_length_cv_rigid_is_zero_and_scaled_is_known():
    frames = torch.stack([_standing(180.0 - 10 * t) @ _rot("y", 0.3 * t).T for t in range(8)])  # (8, 16, 3)
    cv = M.bone_length_cv(frames)
    assert cv.shape == (15,)
    assert float(cv.abs().max()) < 1e-9  # a rigid skeleton in any pose and orientation
    s = torch.tensor([0.9, 1.1] * 4, dtype=torch.float64)  # bones +-10% frame to frame
    cv = M.bone_length_cv(frames * s[:, None, None])
    assert torch.allclose(cv, torch.full((15,), 0.1, dtype=torch.float64), atol=1e-9)
    batch = M.bone_length_cv(torch.stack([frames, frames * s[:, None, None]]))
    assert batch.shape == (2, 15) and torch.allclose(batch[1], cv)


def test_track_plausibility_summary():
    straight = torch.stack([_standing(175.0)] * 12)  # 12 frames, rigid
    bent = torch.stack([_standing(100.0)] * 4)       # 4 frames: too short for the CV
    s = torch.tensor([0.8, 1.2] * 6, dtype=torch.float64)
    wobbly = torch.stack([_standing(160.0)] * 12) * s[:, None, None]
    r = M.track_plausibility([straight, bent, wobbly.numpy()], min_frames=10)
    assert r["tracks"] == 3 and r["frames"] == 28 and r["tracks_for_cv"] == 2
    assert r["knee_median_deg"] == 160.0  # 56 knee values: 24 x 175, 8 x 100, 24 x 160
    assert r["knee_below_120_pct"] == round(100 * 4 / 28, 1)
    assert r["bone_cv_median_pct"] == 10.0  # median of the track CVs 0 and 20 %


@pytest.mark.parametrize("bad, msg", [
    (torch.zeros(5, 17, 3), "shape"),
    (torch.zeros(5, 16, 2), "shape"),
    (torch.full((5, 16, 3), float("nan")), "NaN"),
])
def test_plausibility_bad_input(bad, msg):
    with pytest.raises(ValueError, match=msg):
        M.knee_angles(bad)
    with pytest.raises(ValueError, match=msg):
        M.bone_length_cv(bad)


def test_plausibility_bad_input_names_problem():
    with pytest.raises(ValueError, match="at least 2"):
        M.bone_length_cv(torch.zeros(1, 16, 3))
    with pytest.raises(ValueError, match="no tracks"):
        M.track_plausibility([])
    with pytest.raises(ValueError, match="min_frames"):
        M.track_plausibility([_standing()[None]], min_frames=1)
    with pytest.raises(ValueError, match="track 1: .*NaN"):
        M.track_plausibility([_standing()[None], torch.full((3, 16, 3), float("nan"))])
    with pytest.raises(ValueError, match="track 0: expected one track"):
        M.track_plausibility([_standing()])
