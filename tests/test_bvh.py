"""BVH export, checked by parsing our file back with a maintained BVH reader (bvhio) and
comparing its forward-kinematics joint positions with ours."""
from __future__ import annotations

import numpy as np
import pytest
import roma
import torch

from lifting.io.bvh import write_bvh
from lifting.skeletons import CANON16

bvhio = pytest.importorskip("bvhio", reason="bvhio (dev extra) is needed to parse BVH back")


def _rigid_motion(T=25, seed=0):
    """A rigid CANON16 skeleton moved by random joint rotations (camera frame, metres)."""
    g = torch.Generator().manual_seed(seed)
    parents = CANON16.parents
    rest = torch.randn(16, 3, generator=g, dtype=torch.float64) * 0.2
    rest[0] = 0
    rot = roma.rotvec_to_rotmat(torch.randn(T, 16, 3, generator=g, dtype=torch.float64) * 0.5)
    Rw = [None] * 16
    pos = torch.zeros(T, 16, 3, dtype=torch.float64)
    for j in range(16):
        p = parents[j]
        if p < 0:
            Rw[j] = rot[:, j]
            pos[:, j] = torch.randn(3, generator=g, dtype=torch.float64) * 0.1
        else:
            Rw[j] = Rw[p] @ rot[:, j]
            pos[:, j] = pos[:, p] + (Rw[p] @ rest[j])
    return pos.numpy()


def _read_positions(path, T):
    root = bvhio.readAsHierarchy(str(path))
    joints = {j.Name: j for j, _, _ in root.layout()}
    out = np.zeros((T, 16, 3))
    for t in range(T):
        root.loadPose(t)
        for k, name in enumerate(CANON16.joint_names):
            p = joints[name].PositionWorld
            out[t, k] = (p.x, p.y, p.z)
    return out


def test_rigid_motion_round_trips_through_a_bvh_reader(tmp_path):
    x = _rigid_motion()
    path = write_bvh(tmp_path / "motion.bvh", x, fps=30.0)
    got = _read_positions(path, len(x))
    want = x * np.array([1.0, -1.0, -1.0])  # written Y up
    assert np.abs(got - want).max() < 1e-4  # float text precision (6 decimals)
    text = path.read_text()
    assert text.startswith("HIERARCHY") and "Frames: 25" in text and "Frame Time: 0.03333333" in text


def test_nonrigid_lifts_get_the_best_rigid_skeleton(tmp_path):
    x = _rigid_motion(seed=1)
    noisy = x + np.random.default_rng(0).normal(0, 0.01, x.shape)  # bone lengths vary by ~1 cm
    path = write_bvh(tmp_path / "noisy.bvh", noisy, fps=25.0)
    got = _read_positions(path, len(x))
    err = np.linalg.norm(got - noisy * np.array([1.0, -1.0, -1.0]), axis=-1)
    assert err.mean() < 0.03  # a few cm at most, accumulating down the chains


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="T, 16, 3"):
        write_bvh(tmp_path / "a.bvh", np.zeros((5, 17, 3)), fps=30)
    with pytest.raises(ValueError, match="NaN"):
        write_bvh(tmp_path / "a.bvh", np.full((5, 16, 3), np.nan), fps=30)
    with pytest.raises(ValueError, match="frame rate"):
        write_bvh(tmp_path / "a.bvh", np.zeros((5, 16, 3)), fps=0)
    assert not (tmp_path / "a.bvh").exists()


# --------------------------------------------------------------------------- timing: gaps and clips


def _frame_time(path) -> float:
    return float(bvhio.readAsBvh(str(path)).FrameTime)


def test_short_gaps_are_filled_and_keep_the_timing(tmp_path):
    """A track with frame ids 168-368 and short gaps plays for 201 frames at the video's rate."""
    from lifting.io.bvh import motion_clips

    x = _rigid_motion(T=201, seed=2)
    full = np.arange(168, 369)
    keep = ~np.isin(full, [170, 171, 172, 250, 300, 301])  # gaps of 3, 1 and 2 frames at 10 fps (limit 5)
    clips = motion_clips(x[keep], full[keep], np.ones((keep.sum(), 16), bool), fps=10.0)
    assert len(clips) == 1
    c = clips[0]
    assert c.frame_ids.tolist() == full.tolist() and c.interpolated.tolist() == (~keep).tolist()
    assert not c.observed[~keep].any() and c.observed[keep].all()
    np.testing.assert_allclose(c.joints_3d[keep], x[keep], atol=1e-6)  # lifted frames untouched
    path = write_bvh(tmp_path / "gaps.bvh", c.joints_3d, fps=10.0)
    root = bvhio.readAsHierarchy(str(path))
    assert len(root.Keyframes) * _frame_time(path) == pytest.approx((368 - 168 + 1) / 10.0)
    # the filled frames are rigid poses between their neighbours (slerp of the joint rotations)
    got = _read_positions(path, len(full)) * np.array([1.0, -1.0, -1.0])
    np.testing.assert_allclose(got[~keep], c.joints_3d[~keep], atol=1e-4)
    bones = lambda p: np.linalg.norm(p[:, 1:] - p[:, CANON16.parents[1:]], axis=-1)  # noqa: E731
    np.testing.assert_allclose(bones(c.joints_3d[~keep]), np.broadcast_to(bones(x[:1]), (6, 15)), atol=1e-4)


def test_slerp_fill_of_a_constant_rotation_speed_motion_is_close():
    """Every joint turning at a constant rate about a fixed axis: slerp nearly recovers the
    missing frame (not exactly: the BVH solve uses twist-free rotations for one-child joints)."""
    from lifting.io.bvh import motion_clips

    parents = CANON16.parents
    rest = torch.randn(16, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64) * 0.2
    T = 9
    angle = torch.linspace(0, 0.8, T, dtype=torch.float64)
    axis = torch.nn.functional.normalize(torch.randn(16, 3, generator=torch.Generator().manual_seed(4),
                                                     dtype=torch.float64), dim=-1)
    rot = roma.rotvec_to_rotmat(angle[:, None, None] * axis[None])
    pos, Rw = torch.zeros(T, 16, 3, dtype=torch.float64), [None] * 16
    for j in range(16):
        p = parents[j]
        Rw[j] = rot[:, j] if p < 0 else Rw[p] @ rot[:, j]
        if p >= 0:
            pos[:, j] = pos[:, p] + Rw[p] @ rest[j]
    x = pos.numpy()
    keep = np.ones(T, bool)
    keep[4] = False
    c = motion_clips(x[keep], np.arange(T)[keep], np.ones((T - 1, 16), bool), fps=30.0)[0]
    assert c.interpolated.tolist() == (~keep).tolist()
    err = np.linalg.norm(c.joints_3d[4] - x[4], axis=-1)
    assert err.max() < 0.015  # measured 7.5 mm


def test_long_gaps_start_new_clips_with_their_own_timing(tmp_path):
    from lifting.io.bvh import MAX_FILL_GAP_S, motion_clips

    fps = 10.0
    limit = int(MAX_FILL_GAP_S * fps)  # 5 missing frames are filled, 6 split
    frames = np.r_[np.arange(0, 20), np.arange(20 + limit, 40), np.arange(40 + limit + 1, 60)]
    x = _rigid_motion(T=len(frames), seed=5)
    clips = motion_clips(x, frames, np.ones((len(frames), 16), bool), fps)
    assert [(int(c.frame_ids[0]), int(c.frame_ids[-1])) for c in clips] == [(0, 39), (46, 59)]
    assert clips[0].interpolated.sum() == limit and not clips[1].interpolated.any()
    for k, c in enumerate(clips):
        path = write_bvh(tmp_path / f"c{k}.bvh", c.joints_3d, fps)
        span = (c.frame_ids[-1] - c.frame_ids[0] + 1) / fps
        assert len(bvhio.readAsHierarchy(str(path)).Keyframes) * _frame_time(path) == pytest.approx(span)


def test_motion_clips_bad_input():
    from lifting.io.bvh import motion_clips

    x = np.zeros((3, 16, 3))
    with pytest.raises(ValueError, match="strictly increasing"):
        motion_clips(x, np.array([0, 2, 1]), np.ones((3, 16), bool), 10.0)
    with pytest.raises(ValueError, match="fps"):
        motion_clips(x, np.arange(3), np.ones((3, 16), bool), 0.0)
    with pytest.raises(ValueError, match="T >= 1"):
        motion_clips(x[:0], np.arange(0), np.ones((0, 16), bool), 10.0)


def test_bvh_residual_is_what_a_bvh_reader_sees(tmp_path):
    """bvh_residual (in summary.json per track) equals the median joint distance between the
    file read back with bvhio and the joints it was written from."""
    from lifting.io.bvh import bvh_residual

    x = _rigid_motion(seed=2)
    assert bvh_residual(x) < 1e-9  # a rigid skeleton: exact
    noisy = x + np.random.default_rng(1).normal(0, 0.01, x.shape)
    path = write_bvh(tmp_path / "noisy.bvh", noisy, fps=25.0)
    read = np.median(np.linalg.norm(_read_positions(path, len(x)) - noisy * np.array([1.0, -1.0, -1.0]), axis=-1))
    assert bvh_residual(noisy) == pytest.approx(read, abs=2e-4)  # 6-decimal text
