"""The read step (lifting.io.readers.read_detections) and the track step (lifting.track.track)
are separate: reading assigns no ids, tracking does, and the frame rate reaches the tracker."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lifting.io.detections import Detections
from lifting.io.readers import FORMATS, READER_FORMATS, read_detections
from lifting.io.tracking import TrackerConfig
from lifting.skeletons import BODY25, COCO17
from lifting.track import TrackingNeeded, track
from test_readers_tools import scene, write_coco_results, write_openpose


def test_read_step_assigns_no_ids_and_the_track_step_does(tmp_path):
    frames = scene(COCO17, frames=30, people=3)  # 3 walkers + a spurious detection every 4th frame
    n = sum(len(f) for f in frames)
    dets = read_detections(write_coco_results(tmp_path / "r.json", frames))
    assert isinstance(dets, Detections) and len(dets) == n and not dets.tracked
    assert not dets.has_id.any() and dets.keypoints.shape == (n, 17, 3) and dets.frames.shape == (n,)
    assert dets.boxes.shape == (n, 4) and dets.fps is None and dets.keypoint_format == "coco17"
    warnings_before, frames_before = list(dets.warnings), dets.frames.copy()
    ts = track(dets)
    assert ts.tracking["method"] == "oks+iou" and ts.tracking["reason"] == "no track ids and several people per frame"
    assert len([t for t in ts.tracks if len(t) >= 15]) == 3  # one long track per walker
    assert ts.tracking["n_dropped"] > 0  # the spurious detections are in no track
    assert dets.warnings == warnings_before and np.array_equal(dets.frames, frames_before)  # input untouched


def test_file_ids_pass_through_the_track_step(tmp_path):
    recs = [{"image_id": t, "track_id": p + 7, "category_id": 1, "keypoints": kp.round(3).ravel().tolist()}
            for t, f in enumerate(scene(COCO17, frames=6, people=2, spurious_every=0)) for p, kp in f]
    path = tmp_path / "ids.json"
    path.write_text(json.dumps(recs))
    dets = read_detections(path)
    assert dets.tracked and sorted(set(dets.file_ids.tolist())) == [7, 8]
    ts = track(dets)
    assert ts.tracking["method"] == "ids" and ts.track_ids == [7, 8] and [len(t) for t in ts.tracks] == [6, 6]
    assert track(dets, "oks").tracking["method"] == "oks"  # forced: the ids are ignored


@pytest.mark.parametrize("given, in_file, expected", [(None, None, None), (60.0, None, 60.0), (None, 25.0, 25.0),
                                                      (60.0, 25.0, 60.0)])
def test_the_frame_rate_reaches_the_tracker(tmp_path, given, in_file, expected):
    """The user's fps, else the file's, is the tracker's: birth / death in seconds
    (TrackerConfig.frame_counts); unknown, the frame counts."""
    path = write_coco_results(tmp_path / "r.json", scene(COCO17, frames=40, people=2))
    if in_file is not None:
        path.write_text(json.dumps({"meta": {"fps": in_file}, "annotations": json.loads(path.read_text())}))
    ts = track(read_detections(path, fps=given))
    assert ts.fps == expected and ts.tracking["fps"] == expected
    assert (ts.tracking["min_hits"], ts.tracking["max_missed"]) == TrackerConfig().frame_counts(expected)
    if expected == 60.0:  # seconds at 60 fps are more frames than the 10 fps frame defaults
        assert ts.tracking["max_missed"] > TrackerConfig().max_missed


def test_untracked_input_with_tracker_none_names_the_formats_way_to_ids(tmp_path):
    dets = read_detections(write_openpose(tmp_path / "op", scene(BODY25, frames=4, people=2, spurious_every=0)))
    assert dets.keypoint_format == "body25" and not dets.has_id.any()
    assert dets.id_hint == "run OpenPose with --tracking to get person_id"
    with pytest.raises(TrackingNeeded, match="run OpenPose with --tracking to get person_id"):
        track(dets, "none")


def test_track_step_rejects_bad_options(tmp_path):
    dets = read_detections(write_coco_results(tmp_path / "r.json", scene(COCO17, frames=3, people=1)))
    with pytest.raises(ValueError, match="tracker must be one of"):
        track(dets, "sort")
    with pytest.raises(ValueError, match="TrackerConfig"):
        track(dets, config={"cost": "oks"})


def test_one_table_dispatches_every_format():
    """Each primary format name is in FORMATS, and every reader lives in its format's module."""
    assert set(READER_FORMATS) <= set(FORMATS)
    modules = {e.reader.__module__ for e in FORMATS.values()}
    assert modules == {f"lifting.io.readers.{m}" for m in ("coco", "openpose", "mmpose", "mediapipe", "h36m",
                                                            "videopose3d")}


def test_record_meta_names_follow_the_format_table():
    """``meta.keypoint_format`` of a record file takes the FORMATS names that force a record joint set."""
    from lifting.io.readers import RECORD_JOINT_SETS, coco

    from lifting.io.tracks import TrackFormatError

    for name, e in FORMATS.items():
        if e.joint_set in RECORD_JOINT_SETS:
            assert coco._meta_joint_set(name, "f") == e.joint_set
            assert coco._meta_joint_set(name.upper(), "f") == e.joint_set
        elif e.joint_set is not None:
            with pytest.raises(TrackFormatError, match="keypoint_format"):
                coco._meta_joint_set(name, "f")
