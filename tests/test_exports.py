"""`posenet3d lift --export bvh,csv,json --smooth savgol`: the extra per-track files."""
from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pytest

from lifting.cli import main

EXAMPLE = str(resources.files("lifting") / "assets" / "example_track.json")


def test_lift_exports_and_smoothing(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["lift", EXAMPLE, "-o", str(out), "--export", "bvh,csv,json", "--smooth", "savgol",
                 "--max-figures", "0", "--checkpoint", "teacher"]) == 0
    z = np.load(out / "track_0105.npz")
    T = len(z["frame_ids"])
    fids = z["frame_ids"]
    span = int(fids[-1] - fids[0] + 1)  # the example (10 fps) has gaps of 1-2 frames: all filled
    assert span > T
    rows = (out / "track_0105.csv").read_text().splitlines()
    # the example has an image size: the track is placed (a guessed camera), so the root's camera-frame
    # position comes with every row
    assert rows[0] == "frame_id,joint,x,y,z,observed,interpolated,std,root_x,root_y,root_z"
    assert len(rows) == 1 + span * 16
    first = rows[2].split(",")
    assert int(first[0]) == int(fids[0]) and first[1] == "r_hip"
    assert float(first[2]) == pytest.approx(float(z["joints_3d"][0, 1, 0]), abs=1e-5)
    interp = {int(r.split(",")[0]) for r in rows[1:] if r.split(",")[6] == "1"}
    assert all((r.split(",")[7] == "") == (int(r.split(",")[0]) in interp) for r in rows[1:])  # no std on filled
    first_root = np.array([float(v) for v in rows[1].split(",")[8:11]])
    np.testing.assert_allclose(first_root, z["transl"][0], atol=1e-5)
    assert interp == set(range(int(fids[0]), int(fids[-1]) + 1)) - set(fids.tolist())
    assert all(r.split(",")[5] == "0" for r in rows[1:] if r.split(",")[6] == "1")  # filled joints are not observed
    doc = json.loads((out / "track_0105.json").read_text())
    assert np.asarray(doc["joints_3d"]).shape == (span, 16, 3) and doc["units"] == "m"
    assert doc["frame_ids"] == list(range(int(fids[0]), int(fids[-1]) + 1))
    assert sum(doc["interpolated"]) == span - T and doc["clips"][0]["bvh"] == "track_0105.bvh"
    lifted = np.isin(doc["frame_ids"], fids)
    np.testing.assert_allclose(np.asarray(doc["joints_3d"])[lifted], z["joints_3d"], atol=1e-5)
    summary = json.loads((out / "summary.json").read_text())
    assert {"track_0105.bvh", "track_0105.csv", "track_0105.json"} <= set(summary["files"])
    assert summary["smoothing"] == {"method": "savgol", "window": 9}
    bvhio = pytest.importorskip("bvhio")
    root = bvhio.readAsHierarchy(str(out / "track_0105.bvh"))
    assert len(root.Keyframes) == span  # the BVH keeps the video's timing: one frame per frame id
    assert bvhio.readAsBvh(str(out / "track_0105.bvh")).FrameTime == pytest.approx(0.1)
    # root motion: the BVH's root follows transl (Y up: x, -y, -z of the camera frame)
    hips = []
    for t in (0, span - 1):
        root.loadPose(t)
        p = root.PositionWorld
        hips.append((p.x, p.y, p.z))
    want = np.stack([z["transl"][0], z["transl"][-1]]) * [1.0, -1.0, -1.0]
    np.testing.assert_allclose(np.array(hips), want, atol=1e-3)
    assert np.linalg.norm(np.subtract(*hips)) > 0.05  # the walker moves
    # smoothing the 2D changes the lift a little, not wildly
    raw = tmp_path / "raw"
    assert main(["lift", EXAMPLE, "-o", str(raw), "--max-figures", "0"]) == 0
    d = np.abs(np.load(raw / "track_0105.npz")["joints_3d"] - z["joints_3d"])
    assert 0 < d.mean() < 0.05


def test_bad_export_name(tmp_path, capsys):
    assert main(["lift", EXAMPLE, "-o", str(tmp_path / "o"), "--export", "fbx"]) == 2
    assert "fbx" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_lift_video_gif(tmp_path, capsys):
    import shutil

    from PIL import Image

    out = tmp_path / "v"
    assert main(["lift", EXAMPLE, "-o", str(out), "--video", "gif", "--video-max-frames", "5",
                 "--max-figures", "1"]) == 0
    assert "video:" in capsys.readouterr().out
    with Image.open(out / "track_0105.gif") as im:
        assert im.n_frames == 5
        frames = []
        for k in (0, 4):
            im.seek(k)
            frames.append(np.asarray(im.convert("RGB"), dtype=np.int16))
    # artists are updated per frame: the person moved, so the frames differ
    assert np.abs(frames[0] - frames[1]).max() > 0
    assert (np.abs(frames[0] - frames[1]).sum(-1) > 0).sum() > 100
    assert json.loads((out / "summary.json").read_text())["videos"] == ["track_0105.gif"]
    if shutil.which("ffmpeg") is None:
        assert main(["lift", EXAMPLE, "-o", str(tmp_path / "m"), "--video", "mp4"]) == 2
        assert "ffmpeg" in capsys.readouterr().err
        assert not (tmp_path / "m").exists()


def test_mesh_sequence_all_frames(tmp_path):
    out = tmp_path / "seq"
    assert main(["lift", EXAMPLE, "-o", str(out), "--checkpoint", "student", "--mesh-frames", "all",
                 "--mesh-format", "ply", "--max-figures", "0"]) == 0
    T = len(np.load(out / "track_0105.npz")["frame_ids"])
    meshes = json.loads((out / "summary.json").read_text())["meshes"]
    assert len(meshes) == T and all(m.endswith(".ply") for m in meshes)
