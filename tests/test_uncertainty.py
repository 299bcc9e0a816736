"""Per-joint 3D uncertainty (lifting.uncertainty) and its outputs."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lifting.models.checkpoint import save_checkpoint
from lifting.lift import lift_file, lift_track
from lifting.models.lifters import load_lifter
from lifting.options import LiftOptions
from lifting.io.tracks import Track
from lifting.skeletons import CANON16
from lifting.synth2d import canon_oks_sigmas, object_scale
from lifting.models.teacher import Lifter
from lifting.track_lifter import as_track_lifter
from lifting.uncertainty import (FlipSpread, UncertaintySettings, flip_spread, joint_spread, lift_uncertainty,
                                 perturb_keypoints)

ROOT = CANON16.root_index
J = CANON16.num_joints


def _pose_2d(n: int = 6, seed: int = 0) -> np.ndarray:
    """``(n, 16, 2)`` pixels: a person ~300 px tall with some jitter."""
    rng = np.random.default_rng(seed)
    base = rng.uniform([-60, -150], [60, 150], size=(J, 2))
    base[ROOT] = 0.0
    return (base[None] + rng.normal(0, 5, (n, J, 2)) + np.array([640.0, 360.0])).astype(np.float32)


def _identity_lift(k, m, o):
    """'Lifter' returning its root-relative 2D (px -> metres at 1 mm/px), depth 0."""
    x = (k - k[:, ROOT:ROOT + 1]) * 1e-3 * m[..., None]
    return np.concatenate([x, np.zeros_like(x[..., :1])], axis=-1)


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(0)
    return as_track_lifter(Lifter(16, window=5, width=32, n_blocks=1, root_index=ROOT))


def test_spread_is_the_oks_scaled_input_noise_for_an_identity_lifter():
    kp, mask = _pose_2d(), np.ones((6, J), bool)
    mask[2, CANON16.index("l_wrist")] = False
    std = joint_spread(_identity_lift, kp, mask, settings=UncertaintySettings(2000, 1.0, 3, 1.0))
    assert std.shape == (6, J) and std.dtype == np.float32
    s = object_scale(torch.from_numpy(kp)[None], torch.from_numpy(mask)[None])[0].numpy()
    expected = 1e-3 * canon_oks_sigmas().numpy()[None] * s[:, None]  # RMS u * sigma_i * s, in metres
    ok = mask.copy()
    ok[:, ROOT] = False
    np.testing.assert_allclose(std[ok], expected[ok], rtol=0.08)
    assert std[2, CANON16.index("l_wrist")] == 0.0  # an unobserved joint is not perturbed
    assert (std[:, ROOT] == 0).all()
    # level and calibration scale it linearly
    std2 = joint_spread(_identity_lift, kp, mask, settings=UncertaintySettings(2000, 2.0, 3, 0.5))
    np.testing.assert_allclose(std2, std, rtol=1e-5, atol=1e-9)


def test_a_joint_the_lifter_ignores_gets_only_its_own_output_spread():
    """A lifter whose output for joint j ignores every input but joint j's: perturbing the
    other joints leaves j's output fixed, so masking j in the input makes its std 0 while a
    lifter that mixes joints (output j = mean of all inputs) still reports spread for j."""
    kp, mask = _pose_2d(4), np.ones((4, J), bool)
    j = CANON16.index("r_ankle")
    mask[:, j] = False
    std_local = joint_spread(_identity_lift, kp, mask, settings=UncertaintySettings(16, seed=0))
    assert (std_local[:, j] == 0).all() and (std_local[:, CANON16.index("l_ankle")] > 0).all()

    def mixing(k, m, o):  # every non-root output = mean of all inputs
        out = np.repeat(_identity_lift(k, m, o).mean(1, keepdims=True), J, axis=1)
        out[:, ROOT] = 0.0
        return out
    assert (joint_spread(mixing, kp, mask, settings=UncertaintySettings(16, seed=0))[:, j] > 0).all()
    const = lambda k, m, o: np.ones((len(k), J, 3))  # noqa: E731 (ignores its input entirely)
    assert (joint_spread(const, kp, mask, settings=UncertaintySettings(4)) == 0).all()


def test_teacher_lifter_shape_units_zero_noise_and_seed(teacher):
    kp, mask = _pose_2d(12), np.ones((12, J), bool)
    offs = np.array([0, 7, 12])
    std = lift_uncertainty(teacher, kp, mask, offs, fps=30.0, settings=UncertaintySettings(6, seed=1))
    assert std.shape == (12, J) and std.dtype == np.float32 and np.isfinite(std).all()
    assert (std[:, ROOT] == 0).all() and (std[:, np.arange(J) != ROOT] > 0).all()
    assert std.max() < 1.0  # metres: a random model moves joints by cm, not metres, under OKS noise
    again = lift_uncertainty(teacher, kp, mask, offs, fps=30.0, settings=UncertaintySettings(6, seed=1))
    np.testing.assert_array_equal(std, again)
    other_seed = lift_uncertainty(teacher, kp, mask, offs, fps=30.0, settings=UncertaintySettings(6, seed=2))
    assert not np.array_equal(std, other_seed)
    zero = lift_uncertainty(teacher, kp, mask, offs, fps=30.0, settings=UncertaintySettings(3, level=0.0))
    assert np.abs(zero).max() < 1e-6


def test_bad_values_are_named():
    kp, mask = _pose_2d(2), np.ones((2, J), bool)
    for kw, word in (({"samples": 0}, "samples"), ({"samples": 2.5}, "samples"), ({"level": -1.0}, "level"),
                     ({"level": float("nan")}, "level")):
        with pytest.raises(ValueError, match=word):
            perturb_keypoints(kp, mask, **kw)
    with pytest.raises(ValueError, match="calibration"):
        joint_spread(_identity_lift, kp, mask, settings=UncertaintySettings(calibration=-1.0))
    bad = kp.copy()
    bad[0, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        perturb_keypoints(bad, mask)
    with pytest.raises(ValueError, match="expected keypoints_2d"):
        perturb_keypoints(kp[:, :10], mask[:, :10])
    with pytest.raises(ValueError, match="returned shape"):
        joint_spread(lambda k, m, o: np.zeros((1, J, 3)), kp, mask)
    with pytest.raises(ValueError, match="--uncertainty-samples"):
        LiftOptions(uncertainty_samples=-1)
    with pytest.raises(ValueError, match="--uncertainty-samples"):
        LiftOptions(uncertainty_samples=100_000_000)  # each sample is one more lift: bounded


def _track(n: int = 15) -> Track:
    """A COCO-17 track of a standing person (~250 px tall) waving the left wrist."""
    from lifting.skeletons import COCO17

    xy = {"nose": (0, -110), "left_eye": (4, -114), "right_eye": (-4, -114), "left_ear": (10, -110),
          "right_ear": (-10, -110), "left_shoulder": (20, -80), "right_shoulder": (-20, -80),
          "left_elbow": (26, -40), "right_elbow": (-26, -40), "left_wrist": (28, 0), "right_wrist": (-28, 0),
          "left_hip": (12, 0), "right_hip": (-12, 0), "left_knee": (14, 60), "right_knee": (-14, 60),
          "left_ankle": (15, 120), "right_ankle": (-15, 120)}
    base = np.array([xy[name] for name in COCO17.joint_names], np.float32) + np.array([400.0, 300.0], np.float32)
    kp = np.repeat(np.concatenate([base, np.full((17, 1), 0.9, np.float32)], -1)[None], n, axis=0)
    kp[:, COCO17.index("left_wrist"), 1] -= 30 * np.sin(np.arange(n) / 3)
    return Track(7, np.arange(n, dtype=np.int64), kp)


def test_lift_track_option_and_outputs(teacher, tmp_path):
    tr = _track()
    res = lift_track(teacher, tr, "coco17", 30.0, LiftOptions(uncertainty="sampled", uncertainty_samples=4))
    assert res.joints_3d_std.shape == (len(res.frame_ids), J) and (res.joints_3d_std[:, ROOT] == 0).all()
    assert lift_track(teacher, tr, "coco17", 30.0, LiftOptions(uncertainty="off")).joints_3d_std is None
    again = lift_track(teacher, tr, "coco17", 30.0, LiftOptions(uncertainty="sampled", uncertainty_samples=4))
    np.testing.assert_array_equal(res.joints_3d_std, again.joints_3d_std)  # seeded by the track id

    ckpt = save_checkpoint({"model": teacher.model.state_dict(), "model_config": teacher.model.config,
                            "kind": "teacher"}, tmp_path / "t.pt")
    recs = [{"image_id": int(f), "track_id": 7, "category_id": 1,
             "keypoints": tr.keypoints[i].ravel().tolist(), "score": 0.9} for i, f in enumerate(tr.frame_ids)]
    src = tmp_path / "tracks.json"
    src.write_text(json.dumps({"meta": {"fps": 30.0, "keypoint_format": "coco17"}, "annotations": recs}))
    for method, has in (("sampled", True), ("flip", True), ("off", False)):
        out = tmp_path / f"out_{method}"
        lift_file(src, out, LiftOptions(checkpoint=ckpt, uncertainty=method, uncertainty_samples=3,
                                        export=("csv", "json"), max_figures=0))
        with np.load(out / "track_0007.npz") as z:
            assert ("joints_3d_std" in z.files) == has
            if has:
                assert z["joints_3d_std"].shape == z["joints_3d"].shape[:2] and z["joints_3d_std"].dtype == np.float32
                doc = json.loads((out / "track_0007.json").read_text())
                np.testing.assert_allclose(np.asarray(doc["joints_3d_std"]), z["joints_3d_std"], atol=1e-6)
        header = (out / "track_0007.csv").read_text().splitlines()[0]
        assert header.endswith(",std") == has


def test_student_lifter_spread():
    """The SMPL student through its lifter: per-track betas are shared by all copies, so the
    spread is the pose's (finite, non-negative, 0 at the root, seeded)."""
    from lifting.body_model import BodyModel
    from lifting.models.student import Student, StudentConfig

    torch.manual_seed(0)
    student = as_track_lifter(Student(StudentConfig(width=32, n_blocks=1), BodyModel()))
    kp, mask = _pose_2d(5), np.ones((5, J), bool)
    std = lift_uncertainty(student, kp, mask, settings=UncertaintySettings(4, seed=5))
    assert std.shape == (5, J) and np.isfinite(std).all() and (std >= 0).all() and (std[:, ROOT] == 0).all()
    assert std.max() > 0
    np.testing.assert_array_equal(std, lift_uncertainty(student, kp, mask, settings=UncertaintySettings(4, seed=5)))


def test_cli_option_and_summary(teacher, tmp_path, capsys):
    from lifting.cli import main

    tr = _track(6)
    ckpt = save_checkpoint({"model": teacher.model.state_dict(), "model_config": teacher.model.config,
                            "kind": "teacher"}, tmp_path / "t.pt")
    recs = [{"image_id": int(f), "track_id": 7, "category_id": 1,
             "keypoints": tr.keypoints[i].ravel().tolist(), "score": 0.9} for i, f in enumerate(tr.frame_ids)]
    src = tmp_path / "tracks.json"
    src.write_text(json.dumps(recs))
    for method in ("off", "sampled", "flip"):
        out = tmp_path / f"o_{method}"
        assert main(["lift", str(src), "-o", str(out), "--checkpoint", str(ckpt), "--max-figures", "0",
                     "--uncertainty", method, "--uncertainty-samples", "2"]) == 0
        summary = json.loads((out / "summary.json").read_text())
        with np.load(out / "track_0007.npz") as z:
            assert ("joints_3d_std" in z.files) == (method != "off")
        assert (summary["uncertainty"] is None) == (method == "off")
        if method != "off":
            assert summary["uncertainty"]["method"] == method
        if method == "sampled":
            assert summary["uncertainty"]["samples"] == 2
    for bad in (["--uncertainty-samples", "-3"], ["--uncertainty-samples", "0"], ["--uncertainty", "both"]):
        try:
            code = main(["lift", str(src), "-o", str(tmp_path / "bad"), "--checkpoint", str(ckpt), *bad])
        except SystemExit as e:  # argparse's own choices check
            code = e.code
        assert code == 2
        err = capsys.readouterr().err
        assert bad[0] in err
        if bad[1] == "0":
            assert "--uncertainty off" in err  # says how to skip it


def test_flip_spread_values():
    """Half the disagreement of the root-aligned lifts, times the factor, with the floor added
    in quadrature; 0 at the root; errors named."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, J, 3))
    b = a + 0.5  # a shift of every joint, the root too: root-aligned, no disagreement
    s = flip_spread(a, b, FlipSpread(factor=2.0, floor_m=0.03))
    assert s.shape == (4, J) and s.dtype == np.float32 and (s[:, ROOT] == 0).all()
    np.testing.assert_allclose(np.delete(s, ROOT, 1), 0.03, rtol=1e-6)
    c = a.copy()
    c[:, 5] += [0.0, 0.3, 0.4]  # one joint 0.5 m apart: half is 0.25 m
    np.testing.assert_allclose(flip_spread(a, c, FlipSpread(2.0, 0.0))[:, 5], 0.5, rtol=1e-6)
    np.testing.assert_allclose(flip_spread(a, c, FlipSpread(2.0, 0.0))[:, 6], 0.0, atol=1e-7)
    with pytest.raises(ValueError, match="factor"):
        flip_spread(a, c, FlipSpread(-1.0, 0.0))
    with pytest.raises(ValueError, match="non-finite"):
        flip_spread(a, np.full_like(a, np.nan))
    with pytest.raises(ValueError, match="must both be"):
        flip_spread(a, a[:, :3])


def test_flip_spread_in_the_batched_lift(teacher):
    """lift_with_flip_spread: the lift is the flip-averaged lift of lift_prepared (same numbers
    up to float rounding), the std is finite, positive off the root, per track; a student
    falls back to the sampled uncertainty."""
    from dataclasses import replace as dc_replace

    from lifting.lift import uncertainty_method
    from lifting.lift_batch import lift_prepared, lift_with_flip_spread, prepare_track

    tracks = [prepare_track(_track(n), "coco17", LiftOptions()) for n in (15, 40)]
    tracks[1] = dc_replace(tracks[1], track_id=8)
    flipping = type(teacher)(teacher.model, teacher.height_m, teacher.stride, teacher.name, flip=True)
    for lifter, fps in ((flipping, 30.0), (flipping, 60.0), (teacher, 30.0)):  # flip on, resampled, flip off
        lifts, stds = lift_with_flip_spread(lifter, tracks, fps, False)
        ref = lift_prepared(lifter, tracks, fps, False)
        for res, r, std, t in zip(lifts, ref, stds, tracks):
            np.testing.assert_allclose(res.joints_3d, r.joints_3d, atol=1e-6)
            assert std.shape == (len(t.kp), J) and np.isfinite(std).all() and (std[:, ROOT] == 0).all()
            assert (np.delete(std, ROOT, 1) > 0).all()
    from lifting.body_model import BodyModel
    from lifting.models.student import Student, StudentConfig

    student = as_track_lifter(Student(StudentConfig(width=32, n_blocks=1), BodyModel()))
    assert uncertainty_method(student, LiftOptions()) == "sampled"
    assert uncertainty_method(flipping, LiftOptions()) == "flip"
    with pytest.raises(ValueError, match="mirrored lift"):
        lift_with_flip_spread(student, tracks, 30.0, False)
