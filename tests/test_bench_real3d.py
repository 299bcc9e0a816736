"""scripts/bench_real3d.py reads the shared Pose2Sim data right: the calibration and the TRC
axes put each person's 3D onto that person's OpenPose keypoints, and a lifted camera folder
is matched and scored (skipped without ../shared/data/pose2sim)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import bench_real3d as B  # noqa: E402

pytestmark = pytest.mark.skipif(not (B.POSE2SIM / "calib.toml").is_file(),
                                reason=f"shared Pose2Sim data not found at {B.POSE2SIM}")


def test_projected_3d_lands_on_the_openpose_keypoints():
    from lifting.io.readers import read_detections
    from lifting.track import track
    from lifting.skeletons import CANON16, remap

    cal = B.read_calibration(B.POSE2SIM / "calib.toml")
    markers = B.read_trc(B.POSE2SIM / "balancing" / B.TRIALS[0][1][0][1])
    _, uv = B.person_in_camera(markers, cal["cam01"])
    ts = track(read_detections(B.POSE2SIM / "balancing" / "cam01"))
    idx = [CANON16.joint_names.index(j) for j in B.JOINTS]
    best = []
    for tr in ts.tracks:
        kp, m = remap(np.asarray(tr.keypoints)[..., :2], ts.keypoint_format, CANON16,
                      valid=np.asarray(tr.keypoints)[..., 2] > 0.3)
        d = np.where(m[:, idx], np.linalg.norm(kp[:, idx] - uv[np.asarray(tr.frame_ids)], axis=-1), np.nan)
        best.append(np.nanmedian(d))
    assert min(best) < 25.0  # px, on a person ~1,000 px tall (the README's check: 8-19 px)


def test_one_camera_is_matched_and_scored(tmp_path):
    cal = B.read_calibration(B.POSE2SIM / "calib.toml")
    people = {label: B.read_trc(B.POSE2SIM / "two_people" / f) for label, f in B.TRIALS[1][1]}
    tracks = B.lift_folder("teacher_single", B.POSE2SIM / "two_people" / "cam01", tmp_path / "cam01", None,
                           {"fit": "none", "flip": False})
    res = B.score_camera(tracks, people, cal["cam01"])
    for p, v in res.items():
        assert len(v["pa"]) >= 90, p  # both people found in (almost) every frame
        pa, floor = 1000 * np.mean(v["pa"]), 1000 * np.mean(v["floor"])
        assert 30 < pa < 200 and 30 < floor < 200, (p, pa, floor)
