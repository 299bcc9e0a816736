"""Tests for lifting.geometry (normalisation, lifting model, random views) and
lifting.camera (evaluation rig, projection, look_at)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lifting.camera import RIG_FOCAL, RIG_PRINCIPAL, Cameras, eval_rig, look_at, random_cameras
from lifting.geometry import (
    ROOT_DEPTH,
    check_finite,
    lift_depths,
    normalize_2d,
    project_normalized,
    random_view_rotation,
    rms_scale,
)

ROOT = 0


def _kp(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, 2, generator=g, dtype=torch.float64) * 400 + 50


# --------------------------------------------------------------------------- normalize_2d


def test_normalize_2d_root_zero_unit_rms_over_visible():
    kp = _kp((5, 16))
    mask = torch.ones(5, 16, dtype=torch.bool)
    mask[1, [3, 7]] = False
    mask[4, 15] = False
    x, scale = normalize_2d(kp, mask, ROOT)
    assert x.shape == kp.shape and scale.shape == (5, 1)
    assert torch.all(x[:, ROOT] == 0)
    assert torch.all(x[~mask] == 0)  # invisible joints are zeroed
    rms = ((x**2).sum(-1) * mask).sum(-1) / mask.sum(-1)
    torch.testing.assert_close(rms.sqrt(), torch.ones(5, dtype=torch.float64))
    # scale is in input units: x * scale + root gives back the visible input
    back = x * scale[..., None] + kp[:, ROOT : ROOT + 1]
    torch.testing.assert_close(back[mask], kp[mask])


def test_normalize_2d_invisible_garbage_does_not_matter():
    kp = _kp((2, 16), seed=1)
    mask = torch.ones(2, 16, dtype=torch.bool)
    mask[:, 5] = False
    kp2 = kp.clone()
    kp2[:, 5] = 1e6
    x1, s1 = normalize_2d(kp, mask, ROOT)
    x2, s2 = normalize_2d(kp2, mask, ROOT)
    torch.testing.assert_close(x1, x2)
    torch.testing.assert_close(s1, s2)


def test_normalize_2d_per_window_shares_scale():
    kp = _kp((3, 4, 16), seed=2)
    kp[:, 2] = (kp[:, 2] - kp[:, 2, :1]) * 3 + kp[:, 2, :1]  # frame 2 is 3x larger
    mask = torch.ones(3, 4, 16, dtype=torch.bool)
    x, scale = normalize_2d(kp, mask, ROOT, per_window=True)
    assert scale.shape == (3, 1, 1)
    rms_window = ((x**2).sum(-1).mean(dim=(-2, -1))).sqrt()
    torch.testing.assert_close(rms_window, torch.ones(3, dtype=torch.float64))
    # relative sizes within the window survive (per-frame normalisation would erase them)
    per_frame = (x**2).sum(-1).mean(-1).sqrt()  # (3, 4)
    kp_rel = kp - kp[..., :1, :]
    raw = (kp_rel**2).sum(-1).mean(-1).sqrt()
    torch.testing.assert_close(per_frame / per_frame[:, :1], raw / raw[:, :1])
    xf, sf = normalize_2d(kp, mask, ROOT, per_window=False)
    assert sf.shape == (3, 4, 1)
    torch.testing.assert_close((xf**2).sum(-1).mean(-1).sqrt(), torch.ones(3, 4, dtype=torch.float64))


def test_normalize_2d_missing_root_raises():
    kp = _kp((3, 16))
    mask = torch.ones(3, 16, dtype=torch.bool)
    mask[1, ROOT] = False
    with pytest.raises(ValueError, match="root"):
        normalize_2d(kp, mask, ROOT)


def test_rms_scale_clamped_and_masked():
    x = torch.zeros(2, 16, 3)
    assert torch.all(rms_scale(x) >= 1e-6)
    x = torch.zeros(1, 4, 2)
    x[0, 1] = torch.tensor([3.0, 4.0])
    x[0, 2] = torch.tensor([100.0, 0.0])
    m = torch.tensor([[True, True, False, True]])
    torch.testing.assert_close(rms_scale(x, m), torch.tensor([[math.sqrt(25 / 3)]]))


def test_check_finite():
    check_finite("ok", torch.zeros(3))
    with pytest.raises(ValueError, match="bad thing contains 2 non-finite"):
        check_finite("bad thing", torch.tensor([0.0, float("nan"), float("inf")]))


# --------------------------------------------------------------------------- lifting model


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_projection_round_trip(seed):
    g = torch.Generator().manual_seed(seed)
    kp = torch.rand(8, 3, 16, 2, generator=g) * 300
    x, _ = normalize_2d(kp, torch.ones(8, 3, 16, dtype=torch.bool), ROOT)
    d = torch.randn(8, 3, 16, generator=g) * 2.0  # depth offsets; |d| << c so no clamping
    X = lift_depths(x, d, ROOT)
    assert X.shape == (8, 3, 16, 3)
    torch.testing.assert_close(X[..., ROOT, :], torch.zeros(8, 3, 3))  # root-relative
    torch.testing.assert_close(project_normalized(X), x, atol=1e-5, rtol=0)
    # depth offsets are relative to the root's: adding a constant changes nothing
    torch.testing.assert_close(lift_depths(x, d + 5.0, ROOT), X, atol=1e-5, rtol=0)
    # z follows the depth offsets
    torch.testing.assert_close(X[..., 2], d - d[..., ROOT : ROOT + 1], atol=1e-5, rtol=0)


def test_project_normalized_keeps_size_at_root_depth():
    X = torch.tensor([[0.0, 0.0, 0.0], [1.0, -2.0, 0.0], [1.0, 1.0, ROOT_DEPTH]])
    y = project_normalized(X)
    torch.testing.assert_close(y[:2], X[:2, :2])
    torch.testing.assert_close(y[2], torch.tensor([0.5, 0.5]))  # twice as far: half size


def test_random_view_rotation_is_proper_and_elevation_bounded():
    g = torch.Generator().manual_seed(0)
    emax = math.pi / 9
    R = random_view_rotation((500,), elevation_max=emax, generator=g, dtype=torch.float64)
    assert R.shape == (500, 3, 3)
    eye = torch.eye(3, dtype=torch.float64).expand(500, 3, 3)
    torch.testing.assert_close(R @ R.transpose(-1, -2), eye, atol=1e-10, rtol=0)
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(500, dtype=torch.float64))
    # R = R_x(elev) R_y(azim): the rotated y axis leaves the y axis by exactly |elev|
    y_rot = R[:, :, 1]
    angle = torch.arccos(y_rot[:, 1].clamp(-1, 1))
    assert float(angle.max()) <= emax + 1e-9
    assert float(angle.max()) > 0.8 * emax  # the range is actually used
    # azimuth spreads over the full circle: rotated z axis projected on x-z plane
    z_rot = R[:, :, 2]
    azim = torch.atan2(z_rot[:, 0], z_rot[:, 2])
    assert float(azim.min()) < -2.5 and float(azim.max()) > 2.5


def test_random_view_rotation_generator_reproducible():
    a = random_view_rotation((4, 2), generator=torch.Generator().manual_seed(3))
    b = random_view_rotation((4, 2), generator=torch.Generator().manual_seed(3))
    assert a.shape == (4, 2, 3, 3) and a.dtype == torch.float32
    torch.testing.assert_close(a, b)


# --------------------------------------------------------------------------- camera


def _clip(radius=0.0, T=20):
    """A (T, 3, 3) 'clip': root walking on a circle of ``radius`` around (1, ., -2)."""
    t = np.linspace(0, 2 * np.pi, T, endpoint=False)
    root = np.stack([1.0 + radius * np.cos(t), np.full(T, 0.95), -2.0 + radius * np.sin(t)], -1)
    return np.stack([root, root + [0, 0.5, 0], root + [0.1, -0.9, 0]], axis=1)


@pytest.mark.parametrize("radius,expected_d", [(0.0, 5.0), (1.0, 5.0), (3.5, 6.5)])
def test_eval_rig_layout(radius, expected_d):
    clip = _clip(radius)
    cams = eval_rig(clip, 0)
    assert len(cams) == 4
    centre = clip[:, 0].mean(0)
    np.testing.assert_allclose(cams.position[:, 1], 1.6)
    horiz = cams.position[:, [0, 2]] - centre[[0, 2]]
    np.testing.assert_allclose(np.linalg.norm(horiz, axis=-1), expected_d, atol=1e-9)
    az = np.rad2deg(np.arctan2(horiz[:, 0], horiz[:, 1])) % 360
    np.testing.assert_allclose(az, [45, 135, 225, 315], atol=1e-9)
    np.testing.assert_allclose(cams.focal, RIG_FOCAL)
    np.testing.assert_allclose(cams.principal, np.tile(RIG_PRINCIPAL, (4, 1)))
    # looking at the mean pelvis: it projects to the principal point
    px = cams.project(centre[None, None])
    assert px.shape == (4, 1, 1, 2)
    np.testing.assert_allclose(px[:, 0, 0], np.tile([500.0, 500.0], (4, 1)), atol=1e-6)
    # every joint of the clip is in front of every camera and the head is above the pelvis
    all_px = cams.project(clip)
    assert all_px.shape == (4, len(clip), 3, 2)
    assert np.all(all_px[:, :, 1, 1] < all_px[:, :, 0, 1])  # image y grows downwards


def test_project_point_behind_camera_raises():
    cams = eval_rig(_clip(), 0)
    fwd = cams.R[0, 2]
    behind = cams.position[0] - 1.0 * fwd
    with pytest.raises(ValueError, match="behind"):
        cams.project(behind[None, None])
    with pytest.raises(ValueError):
        cams.project(cams.position[0][None, None])  # on the camera centre


def test_look_at_is_proper_rotation():
    rng = np.random.default_rng(0)
    pos = rng.uniform(-5, 5, (10, 3))
    target = rng.uniform(-1, 1, (10, 3))
    R = look_at(pos, target)
    np.testing.assert_allclose(R @ np.swapaxes(R, -1, -2), np.broadcast_to(np.eye(3), (10, 3, 3)), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)  # no reflection
    fwd = (target - pos) / np.linalg.norm(target - pos, axis=-1, keepdims=True)
    np.testing.assert_allclose(R[:, 2], fwd, atol=1e-12)
    assert np.all(R[:, 1, 1] < 0)  # camera "down" points against world up
    assert np.allclose(R[:, 0, 1], 0)  # camera x axis is horizontal (no roll)


def test_look_at_handedness_example():
    # camera at +z looking at the origin: world +x appears on the image's right, +y up
    R = look_at(np.array([[0.0, 0.0, 5.0]]), np.zeros((1, 3)))
    cams = Cameras(R, np.array([[0.0, 0.0, 5.0]]), np.array([100.0]), np.array([[0.0, 0.0]]))
    px = cams.project(np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]]))
    assert px[0, 0, 0, 0] > 0  # facing -z with y up, world +x lies to the camera's right
    assert px[0, 0, 1, 1] < 0  # world up is image up (negative y)
    # from the opposite side world +x is on the left (a rotation, not a mirror)
    R2 = look_at(np.array([[0.0, 0.0, -5.0]]), np.zeros((1, 3)))
    cams2 = Cameras(R2, np.array([[0.0, 0.0, -5.0]]), np.array([100.0]), np.array([[0.0, 0.0]]))
    assert cams2.project(np.array([[[1.0, 0.0, 0.0]]]))[0, 0, 0, 0] < 0


def test_look_at_degenerate_raises():
    with pytest.raises(ValueError, match="target"):
        look_at(np.zeros((1, 3)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="up"):
        look_at(np.zeros((1, 3)), np.array([[0.0, 3.0, 0.0]]))


def test_random_cameras_ranges():
    clip = _clip(radius=1.0)
    cams = random_cameras(clip, 0, 64, np.random.default_rng(0))
    assert len(cams) == 64
    centre = clip[:, 0].mean(0)
    d = np.linalg.norm(cams.position[:, [0, 2]] - centre[[0, 2]], axis=-1)
    assert np.all(d >= 4.0 - 1e-9) and np.all(d <= 9.0 + 1e-9)
    assert np.all((cams.position[:, 1] >= 0.6) & (cams.position[:, 1] <= 2.6))
    assert np.all((cams.focal >= 700) & (cams.focal <= 1600))
    np.testing.assert_allclose(np.linalg.det(cams.R), 1.0, atol=1e-12)
    px = cams.project(clip)
    assert np.isfinite(px).all()
