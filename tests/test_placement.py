"""Tests for lifting.placement (issue 24): the camera-frame root translation ``transl`` of a
lift, recovered exactly from clean 2D of synthetic cameras, and its outputs."""
from __future__ import annotations

import json

import numpy as np
import pytest

from lifting.placement import Intrinsics, guess_intrinsics, read_camera, root_translation, track_motion

K = Intrinsics(1500.0, 1450.0, 960.0, 540.0, "test")


def _walk(T: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Root-relative joints ``(T, 16, 3)`` (a rigid figure turning) and a root path ``(T, 3)``
    walking across at 3-6 m, camera frame metres."""
    rng = np.random.default_rng(0)
    body = rng.normal(0, 0.3, (16, 3)) * [1.0, 2.0, 0.5]
    body[0] = 0
    out = []
    for t in range(T):
        a = 0.05 * t
        R = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
        out.append(body @ R.T)
    transl = np.stack([np.linspace(-1.5, 1.5, T), np.full(T, 0.3), np.linspace(3.0, 6.0, T)], -1)
    return np.stack(out), transl


def _project(X: np.ndarray, K: Intrinsics) -> np.ndarray:
    return np.stack([K.fx * X[..., 0] / X[..., 2] + K.cx, K.fy * X[..., 1] / X[..., 2] + K.cy], -1)


def test_exact_translation_from_clean_2d_of_a_known_camera():
    joints, transl = _walk()
    kp = _project(joints + transl[:, None], K)
    mask = np.ones(kp.shape[:2], bool)
    got = root_translation(joints, kp, mask, K, smooth=0.0)
    np.testing.assert_allclose(got, transl, atol=1e-4)
    smoothed = root_translation(joints, kp, mask, K)  # a straight walk at constant speed: smoothing keeps it
    np.testing.assert_allclose(smoothed, transl, atol=1e-3)
    mask[:, 5:] = False  # only 5 joints seen: still exact
    np.testing.assert_allclose(root_translation(joints, kp, mask, K, smooth=0.0), transl, atol=1e-4)
    mask[3, 1:] = False  # one joint in a frame: no translation there
    assert np.isnan(root_translation(joints, kp, mask, K, smooth=0.0)[3]).all()


def test_runs_are_smoothed_apart_and_motion_is_measured():
    joints, transl = _walk(20)
    transl[10:] += [2.0, 0.0, 1.0]  # another person from frame 10 (an identity switch)
    kp = _project(joints + transl[:, None], K)
    got = root_translation(joints, kp, np.ones(kp.shape[:2], bool), K, seq_offsets=np.array([0, 10, 20]))
    np.testing.assert_allclose(got, transl, atol=1e-3)  # no smoothing across the jump
    m = track_motion(transl[:10], np.arange(10), fps=10.0)
    step = np.linalg.norm(transl[1] - transl[0])
    assert m["distance_m"] == pytest.approx(9 * step, rel=1e-3) and m["speed_mps"] == pytest.approx(10 * step, rel=1e-3)


def test_intrinsics_from_a_calibration_file_or_a_guess(tmp_path):
    cal = tmp_path / "calib.toml"
    cal.write_text('[cam_01]\nname = "cam_01"\nsize = [1088.0, 1920.0]\nmatrix = [[1681.2, 0.0, 533.0], '
                   '[0.0, 1681.0, 948.1], [0.0, 0.0, 1.0]]\n[cam_02]\nname = "cam_02"\nmatrix = [[1600.0, 0.0, 500.0], '
                   '[0.0, 1600.0, 900.0], [0.0, 0.0, 1.0]]\n[metadata]\nadjusted = false\n')
    k = read_camera(f"{cal}:cam_02")
    assert (k.fx, k.cx, k.cy) == (1600.0, 500.0, 900.0) and "cam_02" in k.source
    with pytest.raises(ValueError, match="FILE:NAME"):
        read_camera(cal)  # two cameras: which one?
    with pytest.raises(ValueError, match="calib.toml"):
        read_camera(tmp_path / "missing.toml")
    g = guess_intrinsics((1920, 1080))
    assert (g.fx, g.cx, g.cy) == (1920.0, 960.0, 540.0) and "guess" in g.source


def test_lift_writes_transl_and_says_when_it_cannot(tmp_path):
    from lifting.lift import lift_file
    from lifting.options import LiftOptions

    example = __import__("importlib").resources.files("lifting") / "assets" / "example_track.json"
    opts = dict(checkpoint="teacher_single", max_figures=0, uncertainty="off")
    s = lift_file(str(example), tmp_path / "a", LiftOptions(**opts, focal_px=1000.0))
    assert s["camera"]["source"].startswith("--focal-px") and s["camera"]["focal_px"] == [1000.0, 1000.0]
    f = next((tmp_path / "a").glob("track_*.npz"))
    with np.load(f) as d:
        assert d["transl"].shape == (len(d["frame_ids"]), 3) and (d["transl"][:, 2] > 0).all()
        np.testing.assert_allclose(d["joints_3d_cam"], d["joints_3d"] + d["transl"][:, None], atol=1e-5)
    assert s["tracks"][0]["distance_m"] >= 0 and s["tracks"][0]["speed_mps"] is not None
    # a bare record list has no image size: without a calibration, root-relative only, and one line says why
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(json.loads(example.read_text())["annotations"]))
    s = lift_file(bare, tmp_path / "b", LiftOptions(**opts))
    assert s["camera"] is None and any("root-relative output only" in w for w in s["warnings"])
    with np.load(next((tmp_path / "b").glob("track_*.npz"))) as d:
        assert "transl" not in d.files
    with pytest.raises(ValueError, match="--focal-px or --camera"):
        LiftOptions(focal_px=1000.0, camera="calib.toml")
    json.dumps(s)  # summary stays JSON


def test_floor_from_feet_ignores_raised_feet_and_gives_heights():
    """A camera 1.5 m up, tilted down 20 degrees: the floor fitted to foot points (a fifth of
    them raised by jumps) puts the true floor at 0 and a root 0.9 m above it."""
    from lifting.placement import fit_floor

    rng = np.random.default_rng(0)
    a = np.deg2rad(20)
    R = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    to_cam = lambda w: ((w - [0.0, 1.5, 0.0]) * [1.0, -1.0, 1.0]) @ R.T  # noqa: E731 (world y up -> camera)
    world = np.c_[rng.uniform(-2, 2, 200), np.zeros(200), rng.uniform(3, 8, 200)]
    world[:40, 1] += rng.uniform(0.1, 0.6, 40)
    floor = fit_floor(to_cam(world), to_cam(np.array([0.0, 0.9, 4.0])))
    assert floor.camera_height_m == pytest.approx(1.5, abs=1e-6)
    np.testing.assert_allclose(floor.to_floor(to_cam(world[40:]))[:, 1], 0.0, atol=1e-6)
    np.testing.assert_allclose(floor.to_floor(to_cam(np.array([0.0, 0.9, 4.0]))), [0.0, 0.9, 0.0], atol=1e-6)
    np.testing.assert_allclose(floor.rotation @ floor.rotation.T, np.eye(3), atol=1e-9)
    assert np.linalg.det(floor.rotation) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 10"):
        fit_floor(to_cam(world[:5]), np.zeros(3))


def test_lift_reports_the_floor_and_draws_the_paths(tmp_path):
    from lifting.lift import lift_file
    from lifting.options import LiftOptions

    example = __import__("importlib").resources.files("lifting") / "assets" / "example_track.json"
    s = lift_file(str(example), tmp_path / "o", LiftOptions(checkpoint="teacher_single", uncertainty="off"))
    assert s["floor"]["camera_height_m"] > 0 and len(s["floor"]["rotation_camera_to_floor"]) == 3
    assert s["paths_figure"] == "paths_topdown.png" and (tmp_path / "o" / "paths_topdown.png").stat().st_size > 1000
    # every placed track's npz has its joints in that floor frame: y up, origin under the first root
    with np.load(next((tmp_path / "o").glob("track_*.npz"))) as d:
        R, o = np.asarray(s["floor"]["rotation_camera_to_floor"]), np.asarray(s["floor"]["origin_camera_frame_m"])
        np.testing.assert_allclose(d["joints_3d_floor"], (d["joints_3d_cam"] - o) @ R.T, atol=2e-3)
        head, ankles = d["joints_3d_floor"][:, 0 + list(d["joint_names"]).index("head")], \
            d["joints_3d_floor"][:, [list(d["joint_names"]).index(n) for n in ("l_ankle", "r_ankle")]]
        assert (head[:, 1] > ankles[..., 1].max(-1)).mean() > 0.9  # y is up
        first_root = d["joints_3d_floor"][0, list(d["joint_names"]).index("pelvis")]
        np.testing.assert_allclose(first_root[[0, 2]], 0.0, atol=2e-3)
        assert str(d["floor_frame"]).startswith("floor: y up")


def test_student_transl_places_the_body_model_in_the_camera_frame(tmp_path):
    """The student's npz ``smpl_transl`` is the body model's ``transl``: its forward with the
    npz's global_orient, body_pose, betas and that translation puts the canonical root at
    ``transl`` (the placed mesh), frame by frame."""
    import roma
    import torch

    from lifting.lift import lift_file
    from lifting.models.lifters import load_lifter
    from lifting.options import LiftOptions

    example = __import__("importlib").resources.files("lifting") / "assets" / "example_track.json"
    lift_file(str(example), tmp_path / "s", LiftOptions(checkpoint="student", max_figures=0, uncertainty="off",
                                                         focal_px=1000.0))
    student, _ = load_lifter("student")
    with np.load(next((tmp_path / "s").glob("track_*.npz"))) as d:
        go = roma.rotvec_to_rotmat(torch.from_numpy(d["global_orient"]))[None]
        bp = roma.rotvec_to_rotmat(torch.from_numpy(d["body_pose"]).reshape(-1, 23, 3))[None]
        betas = torch.from_numpy(d["betas"])[None, None].expand(1, go.shape[1], -1)
        with torch.no_grad():
            out = student.body_model(go, bp, betas, canon_offsets=student.marker_offsets)
        root = out.joints_canon[0, :, student.root_index].numpy() + d["smpl_transl"]
        np.testing.assert_allclose(root, d["transl"], atol=2e-3)
        offset = np.linalg.norm(d["smpl_transl"] - d["transl"], axis=-1)
        assert (offset > 1e-3).all()  # not the root translation itself: the pelvis is not the canonical root
