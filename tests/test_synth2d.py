"""Detector-like training 2D (lifting/synth2d.py) and the lifter's confidence input and
initialisation from a smaller lifter (lifting/teacher.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from conftest import make_mocap
from lifting.data import Projected2D, load_mocap_npz, project_clips
from lifting.skeletons import CANON16
from lifting.synth2d import (SynthSettings, apply_detector_errors, detector_cameras, draw_detector_errors, edge_pad,
                             object_scale, project_detector_like, scale_bones, shift_definitions)
from lifting.models.teacher import Lifter

ix = CANON16.index


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    path = tmp_path_factory.mktemp("synth") / "m.npz"
    np.savez(path, **make_mocap(n_frames=30, names=("a_1", "b_2", "c_3")))
    return load_mocap_npz(path)


def _aug(**kw):
    base = dict(noise_prob=1.0, noise_oks_max=0.0, burst_prob=0.0, swap_prob=0.0, scored_prob=1.0, cut_prob=0.0)
    return OmegaConf.create(base | kw)


def _bone(j, a, b):
    return np.linalg.norm(j[:, ix(a)] - j[:, ix(b)], axis=-1)


def test_scale_bones_scales_only_its_group(clips):
    c = clips.clip(0).astype(np.float64)
    out = scale_bones(c, {"thigh": 1.2})
    np.testing.assert_allclose(_bone(out, "r_knee", "r_hip"), 1.2 * _bone(c, "r_knee", "r_hip"), rtol=1e-9)
    np.testing.assert_allclose(_bone(out, "l_knee", "l_hip"), 1.2 * _bone(c, "l_knee", "l_hip"), rtol=1e-9)
    np.testing.assert_allclose(_bone(out, "r_ankle", "r_knee"), _bone(c, "r_ankle", "r_knee"), rtol=1e-9)
    np.testing.assert_allclose(out[:, 0], c[:, 0])  # the root stays
    np.testing.assert_allclose(scale_bones(c, {}), c)


def test_shift_definitions_offsets_and_coco_rebuild(clips):
    c = clips.clip(0).astype(np.float64)
    np.testing.assert_allclose(shift_definitions(c, np.zeros((16, 3)), False), c)
    off = np.zeros((16, 3))
    off[ix("head"), 1] = 0.05  # 5 cm along the body's up axis
    moved = shift_definitions(c, off, False)
    assert np.allclose(np.linalg.norm(moved - c, axis=-1)[:, ix("head")], 0.05)
    assert np.allclose(np.delete(moved - c, ix("head"), axis=1), 0)
    coco = shift_definitions(c, np.zeros((16, 3)), True)
    np.testing.assert_allclose(coco[:, ix("pelvis")], 0.5 * (c[:, ix("l_hip")] + c[:, ix("r_hip")]))
    np.testing.assert_allclose(coco[:, ix("thorax")], 0.5 * (c[:, ix("l_shoulder")] + c[:, ix("r_shoulder")]))


def test_detector_cameras_cover_raised_views_and_stay_above_floor():
    rng = np.random.default_rng(0)
    s = SynthSettings()
    centre = np.array([0.0, 0.95, 0.0])
    cams, size = detector_cameras(centre, 0.5, 2000, rng, s)
    d = cams.position - centre
    el = np.degrees(np.arctan2(d[:, 1], np.linalg.norm(d[:, [0, 2]], axis=-1)))
    assert el.max() > 50 and el.min() < -5 and el.max() <= 60.5
    assert (cams.position[:, 1] >= 0.3 - 1e-9).all()
    assert set(map(tuple, size)) <= {(1920, 1080), (1280, 720), (1080, 1920), (640, 480), (1000, 1000)}
    np.testing.assert_allclose(cams.principal, 0.5 * size)
    assert np.allclose(np.linalg.det(cams.R), 1.0)


def test_projection_masks_only_joints_outside_the_image(clips):
    rng = np.random.default_rng(1)
    s = SynthSettings(distance_m=(2.0, 2.0), fov_deg=(35.0, 35.0))  # close and narrow: truncation happens
    kp, mask = project_detector_like(clips.clip(0).astype(np.float64), 16, rng, s)
    assert kp.shape == (16, 30, 16, 2) and mask.shape == (16, 30, 16)
    assert mask[..., 0].all()  # never the root
    assert (~mask).any()
    assert np.isfinite(kp).all()
    untruncated = project_detector_like(clips.clip(0).astype(np.float64), 4, np.random.default_rng(1),
                                        SynthSettings(truncate=False))[1]
    assert untruncated.all()


def test_project_clips_synth_is_2d_only_with_a_mask(clips):
    p = project_clips(clips, 3, 0, synth=SynthSettings())
    assert isinstance(p, Projected2D) and p.keypoints_2d.shape == (3, 90, 16, 2) and p.mask.shape == (3, 90, 16)
    q = project_clips(clips, 3, 0, synth=SynthSettings())
    np.testing.assert_array_equal(p.keypoints_2d, q.keypoints_2d)  # seeded
    with pytest.raises(ValueError, match="synth.elevation_deg"):
        project_clips(clips, 3, 0, synth=SynthSettings(elevation_deg=(30.0, 10.0)))


def _batch(B=64, T=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, 16, 2, generator=g) * 0.4
    x[..., 0, :] = 0
    return x, torch.ones(B, T, 16, dtype=torch.bool), g


def test_clean_settings_leave_the_input_unchanged():
    x, m, g = _batch()
    e = draw_detector_errors(64, 9, 16, _aug(), 0, g, torch.device("cpu"))
    x_in, m_in, conf = apply_detector_errors(x, m, e, 0.3, 0)
    torch.testing.assert_close(x_in, x)
    assert m_in.all()
    # no noise: every joint scores ~ sigmoid(2.5 + noise), mostly high
    assert 0.8 < float(conf.mean()) < 1.0 and (conf[..., 0] == 1).all()


def test_noise_scales_with_the_person_and_the_oks_sigmas():
    x, m, g = _batch(B=2000, T=1)
    e = draw_detector_errors(2000, 1, 16, _aug(noise_oks_max=2.0), 0, g, torch.device("cpu"))
    x_in, _, _ = apply_detector_errors(x, m, e, 0.0, 0)
    x2_in, _, _ = apply_detector_errors(3 * x, m, e, 0.0, 0)
    torch.testing.assert_close(x2_in, 3 * x_in, rtol=1e-4, atol=1e-5)  # proportional to the 2D size
    err = (x_in - x).norm(dim=-1) / object_scale(x, m)[..., None]
    assert float(err[..., ix("l_hip")].mean()) > 1.4 * float(err[..., ix("l_wrist")].mean())  # 0.107 vs 0.062
    assert (err[..., 0] == 0).all()


def test_bursts_swaps_and_scores():
    x, m, g = _batch(B=256, T=9)
    e = draw_detector_errors(256, 9, 16, _aug(burst_prob=1.0, swap_prob=1.0), 0, g, torch.device("cpu"))
    x_in, m_in, conf = apply_detector_errors(x, m, e, 0.3, 0)
    assert m_in[..., 0].all()
    assert (~m_in).any(dim=(1, 2)).float().mean() > 0.9  # every window loses a joint somewhere
    assert (conf[~m_in] == 0).all() and (conf[m_in] >= 0.3).all() and (x_in[~m_in] == 0).all()
    # a swapped pair: in some frame a knee/ankle/elbow/wrist holds its partner's clean position
    b = 0
    t = int(e.swap_lo[b])
    pair = [(ix(a), ix(c)) for a, c in (("r_knee", "l_knee"), ("r_ankle", "l_ankle"), ("r_wrist", "l_wrist"),
                                        ("r_elbow", "l_elbow"))][int(e.swap_pair[b])]
    if bool(m_in[b, t, pair[0]]):
        torch.testing.assert_close(x_in[b, t, pair[0]], x[b, t, pair[1]])
    # windows without scores (as files without them): every visible joint scores 1
    unscored = draw_detector_errors(256, 9, 16, _aug(burst_prob=1.0, scored_prob=0.0), 0, g, torch.device("cpu"))
    _, m_u, conf_u = apply_detector_errors(x, m, unscored, 0.3, 0)
    assert (conf_u[m_u] == 1).all()


def test_edge_pad_matches_the_lift_padding():
    x, m, g = _batch(B=1, T=9)
    e = draw_detector_errors(1, 9, 16, _aug(cut_prob=1.0), 0, g, torch.device("cpu"))
    lo, hi = int(e.cut_lo[0]), int(e.cut_hi[0])
    kp, mk = edge_pad(x, m, e)
    for t in range(9):
        torch.testing.assert_close(kp[0, t], x[0, min(max(t, lo), hi)])
    assert hi - lo + 1 >= 3


def test_confidence_input_and_initialisation_from_a_single_frame_lifter():
    torch.manual_seed(0)
    src = Lifter(16, 1, 32, 1, 0)
    x, m, _ = _batch(B=4, T=9)
    for refine in (False, True):
        dst = Lifter(16, 9, 32, 1, 0, refine_visible=refine, use_confidence=True)
        dst.init_from(src)
        out = dst(x, m)
        torch.testing.assert_close(out[:, 4], src(x[:, 4:5], m[:, 4:5])[:, 0], atol=1e-5, rtol=1e-5)
        # confidence weights start at zero: scores do not change the initial output
        torch.testing.assert_close(dst(x, m, torch.rand(4, 9, 16)), out)
    with torch.no_grad():
        dst.mlp.inp.weight.normal_()
    assert not torch.allclose(dst(x, m, torch.rand(4, 9, 16)), dst(x, m))
    plain = Lifter(16, 9, 32, 1, 0)
    torch.testing.assert_close(plain(x, m, torch.rand(4, 9, 16)), plain(x, m))  # old models ignore scores
    with pytest.raises(ValueError, match="cannot start"):
        Lifter(16, 9, 64, 1, 0).init_from(src)
    with pytest.raises(ValueError, match="does not match"):
        dst(x, m, torch.rand(4, 9, 15))


def test_views_about_the_body_axis_keep_the_body_up_and_the_camera_case():
    import math

    import roma

    from lifting.camera import eval_rig
    from lifting.geometry import about_body_axis, random_view_rotation

    g = torch.Generator().manual_seed(0)
    R = random_view_rotation((6,), elevation_max=0.0, generator=g)  # azimuth only
    upright = torch.zeros(6, 1, 16, 3)
    upright[..., ix("thorax"), 1] = -0.5  # camera frame: y down, so up is -y
    torch.testing.assert_close(about_body_axis(R, upright, CANON16), R)  # level camera: unchanged
    tilt = roma.rotvec_to_rotmat(torch.tensor([math.radians(40), 0.0, 0.0]))  # a raised camera's view
    tilted = upright @ tilt.T
    Rb = about_body_axis(R, tilted, CANON16)
    up = tilted[:, 0, ix("thorax")] / 0.5
    torch.testing.assert_close(torch.einsum("bij,bj->bi", Rb, up), up, atol=1e-5, rtol=1e-5)  # turns about it
    assert torch.allclose(torch.det(Rb), torch.ones(6))
    # the raised evaluation rig: same distance, cameras at the asked elevation above the pelvis
    c = np.zeros((5, 16, 3))
    c[:, :, 1] = 1.0
    rig = eval_rig(c, 0, 45.0)
    d = rig.position - c[0, 0]
    np.testing.assert_allclose(np.degrees(np.arctan2(d[:, 1], np.linalg.norm(d[:, [0, 2]], axis=-1))), 45.0)
