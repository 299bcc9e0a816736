"""Tests for lifting.lift and ``posenet3d lift`` / ``posenet3d demo``: COCO-17 tracks ->
per-track 3D npz files, masking, skipping, resampling for temporal models, input errors."""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch

from lifting.cli import main
from lifting.lift import MODEL_FPS, lift_file, lift_track
from lifting.models.lifters import load_lifter
from lifting.options import LiftOptions
from lifting.track_lifter import as_track_lifter
from lifting.skeletons import CANON16, COCO17
from lifting.models.teacher import Lifter
from lifting.io.readers import read_detections
from lifting.track import track
from lifting.io.tracks import Track, write_coco_tracks
from lifting.models.checkpoint import save_checkpoint

# A standing person in pixels (x right, y down), COCO-17 order.
_COCO_PX = {
    "nose": (100, 40), "left_eye": (104, 36), "right_eye": (96, 36), "left_ear": (110, 40),
    "right_ear": (90, 40), "left_shoulder": (120, 70), "right_shoulder": (80, 70),
    "left_elbow": (126, 110), "right_elbow": (74, 110), "left_wrist": (128, 148),
    "right_wrist": (72, 148), "left_hip": (112, 150), "right_hip": (88, 150),
    "left_knee": (114, 210), "right_knee": (86, 210), "left_ankle": (115, 270),
    "right_ankle": (85, 270),
}
BASE = np.array([_COCO_PX[n] for n in COCO17.joint_names], np.float64)


def _keypoints(frame: int, person: int) -> np.ndarray:
    """(17, 3) x, y, confidence with a little motion."""
    xy = BASE + [200.0 * person + 2.0 * frame, 0.0]
    xy[COCO17.index("left_wrist")] += [5 * np.sin(frame / 3), 3 * np.cos(frame / 2)]
    xy[COCO17.index("right_knee")] += [2 * np.sin(frame / 4), 0.0]
    return np.concatenate([xy, np.full((17, 1), 0.9)], -1)


TRACK1_FRAMES = list(range(0, 12)) + list(range(15, 25))  # gap 12..14
TRACK2_FRAMES = list(range(3, 9))
HIPLESS = (1, 5)        # (track, frame) with both hips missing -> skipped
LOWCONF = (1, 2, "left_wrist")  # joint below the confidence threshold -> masked


def _records():
    recs = []
    for tid, frames in ((1, TRACK1_FRAMES), (2, TRACK2_FRAMES)):
        for f in frames:
            kp = _keypoints(f, tid)
            if (tid, f) == HIPLESS:
                kp[[COCO17.index("left_hip"), COCO17.index("right_hip")], 2] = 0.0
            if (tid, f) == LOWCONF[:2]:
                kp[COCO17.index(LOWCONF[2]), 2] = 0.1
            recs.append({"image_id": f, "track_id": tid, "category_id": 1, "score": 0.9,
                         "keypoints": [round(float(v), 3) for v in kp.ravel()]})
    return recs


def _write_json(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj))
    return path


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    """Randomly initialised single-frame and temporal (window 5) lifter checkpoints."""
    d = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    out = {}
    for name, window in (("single", 1), ("temporal", 5)):
        m = Lifter(16, window=window, width=32, n_blocks=1, root_index=CANON16.root_index)
        out[name] = save_checkpoint({"model": m.state_dict(), "model_config": m.config, "kind": "teacher"},
                                    d / f"{name}.pt")
    return out


@pytest.fixture
def tracks_bare(tmp_path):
    return _write_json(tmp_path / "bare.json", _records())


@pytest.fixture
def tracks_object(tmp_path):
    return _write_json(tmp_path / "object.json", {"meta": {"fps": 10.0, "keypoint_format": "coco17"},
                                                  "annotations": _records()})


def _expected_frames(tid):
    frames = TRACK1_FRAMES if tid == 1 else TRACK2_FRAMES
    return [f for f in frames if (tid, f) != HIPLESS]


def _check_outputs(out: Path, summary: dict, window: int, figure: bool = True):
    files = sorted(p.name for p in out.iterdir())
    assert files == ["summary.json", "track_0001.npz"] + (["track_0001.png"] if figure else []) + ["track_0002.npz"]
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk == summary
    assert summary["files"] == ["track_0001.npz", "track_0002.npz"]
    # track 2 is shorter than 10 frames: no figure
    assert summary["figures"] == (["track_0001.png"] if figure else [])
    assert summary["window"] == window and summary["model_kind"] == "teacher"
    assert summary["keypoint_format"] == "coco17" and summary["units"] == "m"
    total = 0
    for tid in (1, 2):
        with np.load(out / f"track_{tid:04d}.npz") as z:
            T = len(_expected_frames(tid))
            assert z["joints_3d"].shape == (T, 16, 3) and z["joints_3d"].dtype == np.float32
            assert np.isfinite(z["joints_3d"]).all()
            np.testing.assert_allclose(z["joints_3d"][:, CANON16.root_index], 0.0, atol=1e-5)
            assert z["frame_ids"].tolist() == _expected_frames(tid)
            assert list(z["joint_names"]) == list(CANON16.joint_names)
            assert z["keypoints_2d"].shape == (T, 16, 2)
            assert z["mask"].shape == (T, 16) and z["mask"].dtype == bool
            assert str(z["units"]) == "m"
            assert int(z["track_id"]) == tid
            skipped = z["skipped_frame_ids"].tolist()
            assert skipped == ([HIPLESS[1]] if tid == HIPLESS[0] else [])
            if tid == LOWCONF[0]:
                row = z["frame_ids"].tolist().index(LOWCONF[1])
                masked = [CANON16.joint_names[j] for j in np.where(~z["mask"][row])[0]]
                assert masked == ["l_wrist"]
                other = np.delete(z["mask"], row, axis=0)
                assert other.all()
            # metric scale: a plausible body size (leg ~ 0.8 m for a 1.70 m person)
            leg = np.linalg.norm(z["joints_3d"][:, CANON16.index("l_ankle")]
                                 - z["joints_3d"][:, CANON16.index("l_hip")], axis=-1)
            assert np.all(leg > 0.2) and np.all(leg < 1.5)
            total += T
    assert summary["frames_lifted"] == total
    assert summary["frames_skipped"] == 1
    per = {t["track_id"]: t for t in summary["tracks"]}
    assert per[1]["frames_lifted"] == len(_expected_frames(1)) and per[1]["frames_skipped"] == 1
    assert per[2]["frames_lifted"] == len(TRACK2_FRAMES) and per[2]["frames_skipped"] == 0
    assert 0.99 < per[1]["observed_joint_fraction"] < 1.0
    assert per[2]["observed_joint_fraction"] == 1.0
    assert not [f for f in files if f.startswith(".")]


def test_lift_file_bare_list(ckpts, tracks_bare, tmp_path):
    out = tmp_path / "out"
    summary = lift_file(tracks_bare, out, LiftOptions(checkpoint=ckpts["single"]))
    assert summary["fps"] is None
    _check_outputs(out, summary, window=1)
    with np.load(out / "track_0001.npz") as z:
        assert np.isnan(z["fps"])


def test_cli_lift_object_form(ckpts, tracks_object, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["lift", str(tracks_object), "-o", str(out), "--checkpoint", str(ckpts["single"])])
    stdout = capsys.readouterr().out
    assert rc == 0
    assert "lifted 27 frames of 2 tracks (1 frames skipped" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["fps"] == 10.0
    _check_outputs(out, summary, window=1)
    # a PNG really is a PNG
    assert (out / "track_0001.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_single_frame_model_ignores_fps(ckpts, tracks_bare, tmp_path):
    a = lift_file(tracks_bare, tmp_path / "a", LiftOptions(checkpoint=ckpts["single"], max_figures=0))
    b = lift_file(tracks_bare, tmp_path / "b", LiftOptions(checkpoint=ckpts["single"], fps=10.0, max_figures=0))
    assert a["frames_lifted"] == b["frames_lifted"]
    with np.load(tmp_path / "a" / "track_0001.npz") as za, np.load(tmp_path / "b" / "track_0001.npz") as zb:
        np.testing.assert_allclose(za["joints_3d"], zb["joints_3d"])


def test_temporal_model_with_resampling(ckpts, tracks_object, tmp_path):
    out = tmp_path / "temporal"
    summary = lift_file(tracks_object, out, LiftOptions(checkpoint=ckpts["temporal"]))  # meta fps 10 -> resampled to 30
    assert summary["fps"] == 10.0 and MODEL_FPS == 30.0
    _check_outputs(out, summary, window=5)
    # at the model's own frame rate there is no resampling; both outputs are finite and complete
    out30 = tmp_path / "t30"
    s30 = lift_file(tracks_object, out30, LiftOptions(checkpoint=ckpts["temporal"], fps=30.0, max_figures=0))
    assert s30["fps"] == 30.0
    _check_outputs(out30, s30, window=5, figure=False)


def test_lift_track_resampling_length_and_consistency(ckpts):
    model = as_track_lifter(load_lifter(ckpts["temporal"])[0])
    frames = np.arange(0, 13)
    kp = np.stack([_keypoints(int(f), 0) for f in frames]).astype(np.float32)
    tr = Track(7, frames, kp)
    for fps in (10.0, 12.5, 60.0, 30.0, None):
        lt = lift_track(model, tr, "coco17", fps=fps)
        assert lt.joints_3d.shape == (len(frames), 16, 3)
        assert np.isfinite(lt.joints_3d).all()
        assert lt.frame_ids.tolist() == frames.tolist()
        assert lt.skipped_frame_ids.size == 0
    # a static person gives the same pose at every frame, with or without resampling (with one
    # window per frame: strided windows read frames at different window positions, which an
    # untrained model maps differently)
    model = as_track_lifter(load_lifter(ckpts["temporal"])[0], stride=1)
    static = Track(8, frames, np.repeat(_keypoints(0, 0)[None], len(frames), 0).astype(np.float32))
    a = lift_track(model, static, "coco17", fps=10.0).joints_3d
    b = lift_track(model, static, "coco17", fps=30.0).joints_3d
    np.testing.assert_allclose(a, np.broadcast_to(a[:1], a.shape), atol=1e-5)
    np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("which,fps", [("single", None), ("temporal", 10.0), ("temporal", None)])
def test_one_frame_track(ckpts, tmp_path, which, fps):
    p = _write_json(tmp_path / "one.json", [{"image_id": 42, "keypoints": _keypoints(0, 0).ravel().tolist()}])
    out = tmp_path / "out"
    summary = lift_file(p, out, LiftOptions(checkpoint=ckpts[which], fps=fps))
    assert summary["frames_lifted"] == 1 and summary["figures"] == []
    with np.load(out / "track_0000.npz") as z:
        assert z["joints_3d"].shape == (1, 16, 3) and np.isfinite(z["joints_3d"]).all()
        assert z["frame_ids"].tolist() == [42]


def test_low_confidence_threshold_option(ckpts, tracks_bare, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["lift", str(tracks_bare), "-o", str(out), "--checkpoint", str(ckpts["single"]),
                 "--conf-threshold", "0.05", "--max-figures", "0"]) == 0
    capsys.readouterr()
    with np.load(out / "track_0001.npz") as z:
        assert z["mask"].all()  # 0.1 confidence now counts as observed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["conf_threshold"] == 0.05 and summary["figures"] == []
    assert not list(out.glob("*.png"))


def test_min_joints_skips_sparse_frames(ckpts, tmp_path):
    recs = _records()
    sparse = np.array(recs[0]["keypoints"]).reshape(17, 3)
    keep = {COCO17.index(n) for n in ("left_hip", "right_hip", "left_shoulder", "right_shoulder")}
    for j in range(17):
        if j not in keep:
            sparse[j, 2] = 0.0
    recs[0]["keypoints"] = sparse.ravel().tolist()
    frame0 = recs[0]["image_id"]
    summary = lift_file(_write_json(tmp_path / "s.json", recs), tmp_path / "out",
                        LiftOptions(checkpoint=ckpts["single"], max_figures=0))
    with np.load(tmp_path / "out" / f"track_{recs[0]['track_id']:04d}.npz") as z:
        assert frame0 in z["skipped_frame_ids"].tolist()
        assert frame0 not in z["frame_ids"].tolist()
    assert summary["frames_skipped"] == 2


# --------------------------------------------------------------------------- bad input


def _assert_cli_error(argv, out: Path, capsys, *fragments):
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("error:"), err
    assert "Traceback" not in err
    for f in fragments:
        assert f in err, err
    assert not out.exists() or not any(out.iterdir()), sorted(p.name for p in out.iterdir())


@pytest.mark.parametrize("content,fragment", [
    ("{\"annotations\": [", "invalid JSON"),
    ("", "empty"),
    (json.dumps([{"image_id": 0, "track_id": 1, "keypoints": [1.0, 2.0, 0.9] * 6}]), "6 joints"),
    ("[{\"image_id\": 0, \"keypoints\": [" + ", ".join(["NaN, NaN, 0.9"] * 17) + "]}]", "no frame"),
    (json.dumps({"meta": {}, "annotations": []}), "empty"),
])
def test_cli_lift_bad_tracks(ckpts, tmp_path, capsys, content, fragment):
    p = tmp_path / "bad.json"
    p.write_text(content)
    out = tmp_path / "out"
    _assert_cli_error(["lift", str(p), "-o", str(out), "--checkpoint", str(ckpts["single"])], out, capsys,
                      fragment)


def test_cli_lift_unknown_format(ckpts, tracks_bare, tmp_path, capsys):
    out = tmp_path / "out"
    _assert_cli_error(["lift", str(tracks_bare), "-o", str(out), "--checkpoint", str(ckpts["single"]),
                       "--format", "xyz"], out, capsys, "xyz", "coco17")


def test_cli_lift_bad_fps(ckpts, tracks_bare, tmp_path, capsys):
    out = tmp_path / "out"
    _assert_cli_error(["lift", str(tracks_bare), "-o", str(out), "--checkpoint", str(ckpts["single"]),
                       "--fps", "0"], out, capsys, "fps")


def test_cli_lift_missing_tracks_file(ckpts, tmp_path, capsys):
    out = tmp_path / "out"
    _assert_cli_error(["lift", str(tmp_path / "none.json"), "-o", str(out), "--checkpoint", str(ckpts["single"])],
                      out, capsys, "not found")


def test_cli_lift_missing_checkpoint(tracks_bare, tmp_path, capsys):
    out = tmp_path / "out"
    _assert_cli_error(["lift", str(tracks_bare), "-o", str(out), "--checkpoint", str(tmp_path / "none.pt")],
                      out, capsys, "checkpoint not found")


def test_cli_lift_checkpoint_not_a_checkpoint(tracks_bare, tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_text("not a checkpoint")
    out = tmp_path / "out"
    _assert_cli_error(["lift", str(tracks_bare), "-o", str(out), "--checkpoint", str(bad)], out, capsys,
                      "not a readable checkpoint")
    other = save_checkpoint({"weights": {}}, tmp_path / "other.pt")
    _assert_cli_error(["lift", str(tracks_bare), "-o", str(out), "--checkpoint", str(other)], out, capsys,
                      "not a posenet3d lifter checkpoint")


def test_load_lifter_wrong_joint_count(tmp_path):
    m = Lifter(17, width=8, n_blocks=1)
    p = save_checkpoint({"model": m.state_dict(), "model_config": m.config}, tmp_path / "j17.pt")
    with pytest.raises(ValueError, match="17 joints, expected 16"):
        load_lifter(p)
    m16 = Lifter(16, width=8, n_blocks=1)
    cfg = dict(m16.config, width=16)
    p2 = save_checkpoint({"model": m16.state_dict(), "model_config": cfg}, tmp_path / "mismatch.pt")
    with pytest.raises(ValueError, match="do not match"):
        load_lifter(p2)


def test_write_then_lift_roundtrip(ckpts, tmp_path):
    """Tracks written with lifting.tracks.write_coco_tracks lift like the hand-written file."""
    ts = track(read_detections(_write_json(tmp_path / "in.json", _records()), "coco", fps=10.0))
    p = tmp_path / "written.json"
    write_coco_tracks(ts, p)
    s = lift_file(p, tmp_path / "out", LiftOptions(checkpoint=ckpts["single"], max_figures=0))
    assert s["fps"] == 10.0 and s["frames_lifted"] == 27 and s["frames_skipped"] == 1


# --------------------------------------------------------------------------- demo

_ASSETS = Path(str(resources.files("lifting") / "assets"))


@pytest.mark.skipif(not ((_ASSETS / "teacher.pt").is_file() and (_ASSETS / "example_track.json").is_file()),
                    reason="bundled assets lifting/assets/teacher.pt and example_track.json not built yet")
def test_demo(tmp_path, capsys):
    out = tmp_path / "demo"
    rc = main(["demo", "-o", str(out)])
    stdout = capsys.readouterr().out
    assert rc == 0
    assert "figure:" in stdout
    assert list(out.glob("track_*.png")) and list(out.glob("track_*.npz"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames_lifted"] > 0
    with np.load(sorted(out.glob("track_*.npz"))[0]) as z:
        assert np.isfinite(z["joints_3d"]).all()
        if (_ASSETS / "student.pt").is_file():  # the demo uses the bundled student: SMPL + meshes
            assert summary["model_kind"] == "student" and "meshes:" in stdout
            assert z["body_pose"].shape == (len(z["frame_ids"]), 69) and np.isfinite(z["betas"]).all()
            assert len(summary["meshes"]) == 4 and all((out / m).is_file() for m in summary["meshes"])


def test_demo_with_stand_in_teacher(ckpts, tmp_path, capsys, monkeypatch):
    """The demo command path (bundled example track, default checkpoint) with the default
    checkpoint pointed at a stand-in, so it runs before the real asset exists."""
    import lifting.lift
    import lifting.models.lifters

    if not (_ASSETS / "example_track.json").is_file():
        pytest.skip("bundled example track lifting/assets/example_track.json not present")
    for mod in (lifting.models.lifters, lifting.lift):  # the loader's default and the summary's
        monkeypatch.setattr(mod, "default_checkpoint", lambda: Path(ckpts["single"]), raising=False)
    monkeypatch.setattr(lifting.models.lifters, "bundled_student", lambda: None)
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "figure:" in stdout
    assert len(list(out.glob("track_*.png"))) == 1  # the demo draws one figure
    assert list(out.glob("track_*.npz"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["checkpoint"] == str(ckpts["single"]) and summary["frames_lifted"] > 0


def test_track_without_liftable_frames_gets_no_file(ckpts, tmp_path):
    recs = _records()
    for r in recs:
        if r["track_id"] == 2:
            kp = np.array(r["keypoints"]).reshape(17, 3)
            kp[COCO17.index("right_hip"), 2] = 0.0  # pelvis needs both hips
            r["keypoints"] = kp.ravel().tolist()
    out = tmp_path / "out"
    s = lift_file(_write_json(tmp_path / "t.json", recs), out, LiftOptions(checkpoint=ckpts["single"], max_figures=0))
    assert s["files"] == ["track_0001.npz"]
    assert sorted(p.name for p in out.iterdir()) == ["summary.json", "track_0001.npz"]
    per = {t["track_id"]: t for t in s["tracks"]}
    assert per[2] == {"track_id": 2, "frames_lifted": 0, "frames_skipped": len(TRACK2_FRAMES),
                      "identity_switches": 0, "observed_joint_fraction": 0.0, "reprojection_residual_pct": None}
    assert s["frames_skipped"] == 1 + len(TRACK2_FRAMES)


def test_cli_lift_output_is_a_file(ckpts, tracks_bare, tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("x")
    rc = main(["lift", str(tracks_bare), "-o", str(target), "--checkpoint", str(ckpts["single"])])
    assert rc == 2
    assert capsys.readouterr().err.startswith("error:")
    assert target.read_text() == "x"


def test_lifted_input_spine_lies_between_pelvis_and_thorax(ckpts, tracks_bare, tmp_path):
    lift_file(tracks_bare, tmp_path / "out", LiftOptions(checkpoint=ckpts["single"], max_figures=0))
    with np.load(tmp_path / "out" / "track_0002.npz") as z:
        kp = z["keypoints_2d"]
    pelvis, spine, thorax = (kp[:, CANON16.index(n)] for n in ("pelvis", "spine", "thorax"))
    np.testing.assert_allclose(spine, pelvis + 0.38 * (thorax - pelvis), atol=1e-3)


# --------------------------------------------------------------------------- causal (online) mode


def test_causal_mode_never_uses_future_frames(ckpts):
    """With --causal a frame's lift depends only on itself and earlier frames: lifting a
    prefix of the sequence gives the same result for those frames; the centred mode differs."""
    from lifting.inference import InferenceSettings, lift_frames, window_indices
    from lifting.models.lifters import load_lifter

    model, _ = load_lifter(ckpts["temporal"])
    g = torch.Generator().manual_seed(0)
    kp = torch.randn(40, 16, 2, generator=g) * 50 + 300
    mask = torch.ones(40, 16, dtype=torch.bool)
    full = lift_frames(model, kp, mask, settings=InferenceSettings(causal=True))
    prefix = lift_frames(model, kp[:25], mask[:25], settings=InferenceSettings(causal=True))
    torch.testing.assert_close(full[:25], prefix)
    centred_full, centred_prefix = lift_frames(model, kp, mask), lift_frames(model, kp[:25], mask[:25])
    assert not torch.allclose(centred_full[22:25], centred_prefix[22:25])  # centred windows look ahead
    idx = window_indices(np.array([0, 10]), 5, causal=True)
    assert (idx <= np.arange(10)[:, None]).all() and (idx[:, -1] == np.arange(10)).all()


def test_causal_flag_through_the_cli(ckpts, tracks_object, tmp_path):
    out = tmp_path / "o"
    assert main(["lift", str(tracks_object), "-o", str(out), "--checkpoint", str(ckpts["temporal"]), "--causal",
                 "--max-figures", "0"]) == 0
    assert json.loads((out / "summary.json").read_text())["causal"] is True


# --------------------------------------------------------------------------- id switches, one-frame tracks


def test_identity_switch_splits_the_run(ckpts):
    """A tracker id switch (the same id jumps to a person 200 px away) starts a new run: the
    temporal model's windows never mix the two people, and the summary counts the switch."""
    from lifting.prepare import run_starts

    frames = np.arange(20)
    kp = np.stack([_keypoints(int(f), 0 if f < 10 else 1) for f in frames])  # person 1 is 200 px right
    tr = Track(7, frames, kp)
    model = as_track_lifter(load_lifter(ckpts["temporal"])[0])
    lt = lift_track(model, tr, "coco17")
    assert lt.identity_switches == 1
    # each side lifted alone gives the same result as the joint track: no leakage across the switch
    a = lift_track(model, Track(7, frames[:10], kp[:10]), "coco17")
    b = lift_track(model, Track(7, frames[10:], kp[10:]), "coco17")
    unit = lambda x: x / np.linalg.norm(x, axis=(1, 2), keepdims=True)  # noqa: E731 (one metric scale per track)
    np.testing.assert_allclose(unit(lt.joints_3d[:10]), unit(a.joints_3d), atol=1e-5)
    np.testing.assert_allclose(unit(lt.joints_3d[10:]), unit(b.joints_3d), atol=1e-5)
    # normal walking motion (2 px per frame) is not a switch
    from lifting.skeletons import remap

    kp_c, m_c = remap(kp[:10, :, :2].astype(np.float32), COCO17, CANON16)
    assert run_starts(frames[:10], kp_c, m_c).sum() == 1


@pytest.mark.parametrize("which", ["single", "temporal"])
def test_one_frame_tracks_lift(ckpts, which):
    model = as_track_lifter(load_lifter(ckpts[which])[0])
    lt = lift_track(model, Track(3, np.array([42]), _keypoints(42, 0)[None]), "coco17")
    assert lt.joints_3d.shape == (1, 16, 3) and np.isfinite(lt.joints_3d).all() and lt.identity_switches == 0


def test_2d_that_is_not_a_person_is_said(ckpts, tmp_path):
    """Uniform noise and all-zero VideoPose3D arrays lift, but summary.json says their 2D does
    not look like a person; a real track is not flagged (issue 22 hostile-input audit)."""
    rng = np.random.default_rng(0)
    noise = tmp_path / "noise.npz"
    np.savez(noise, keypoints_2d=rng.uniform(0, 500, (40, 17, 2)).astype(np.float32))
    zeros = tmp_path / "data_2d_custom_zero.npz"
    np.savez_compressed(zeros, positions_2d={"v.mp4": {"custom": [np.zeros((20, 17, 2), np.float32)]}},
                        metadata={"layout_name": "coco"})
    opts = LiftOptions(checkpoint=ckpts["single"], max_figures=0, uncertainty="off")
    for path, why in ((noise, "noise, not motion"), (zeros, "all joints at one point")):
        s = lift_file(path, tmp_path / path.stem, opts)
        assert any("does not look like a person" in w and why in w for w in s["warnings"]), s["warnings"]
    real = lift_file(_write_json(tmp_path / "real.json", _records()), tmp_path / "real", opts)
    assert not any("does not look like a person" in w for w in real["warnings"])
