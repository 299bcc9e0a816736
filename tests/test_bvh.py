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
