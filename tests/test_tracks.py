"""Tests for lifting.io.tracks: reading/writing COCO-style 2D keypoint track files.

All inputs are small synthetic files written into tmp_path; one test reads the real
shared file when it is present and skips otherwise.
"""

from __future__ import annotations

import json
from importlib import resources
import math
import os
from pathlib import Path

import numpy as np
import pytest

from lifting.track import read_coco_tracks
from lifting.io.tracks import (
    Track,
    TrackFormatError,
    TrackSet,
    write_coco_tracks,
)

K = 17
REAL_TRACKS = (
    Path(__file__).resolve().parents[2] / "shared/data/real_tracks/vtest_hog_blazepose_coco17.json"
)


# --------------------------------------------------------------------------- helpers


def kp_values(frame: int, person: int, k: int = K) -> list[float]:
    """Deterministic synthetic keypoints: x = 100*person + j, y = frame + 0.5*j, c in (0, 1]."""
    out: list[float] = []
    for j in range(k):
        out += [100.0 * person + j, frame + 0.5 * j, round(0.05 + 0.9 * j / (k - 1), 4)]
    return out


def record(frame, person, *, tid_key="track_id", image_id=None, k=K, **extra):
    rec = {"image_id": frame if image_id is None else image_id, "category_id": 1}
    if tid_key is not None:
        rec[tid_key] = person
    rec["bbox"] = [100.0 * person, float(frame), 40.0, 90.0]
    rec["score"] = 0.5 + 0.01 * person
    rec["keypoints"] = kp_values(frame, person, k)
    rec.update(extra)
    return rec


# person id -> frames where it is detected (gaps on purpose)
LAYOUT = {3: [0, 1, 2, 5, 6], 7: [1, 2, 3], 1: [4, 9]}


def multi_records(**kw) -> list[dict]:
    recs = [record(f, p, **kw) for p, fs in LAYOUT.items() for f in fs]
    recs.sort(key=lambda r: r["image_id"] if isinstance(r["image_id"], int) else 0)
    return recs


def write_json(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj))
    return path


def expect_error(path, *substrings, **kwargs) -> str:
    with pytest.raises(TrackFormatError) as info:
        read_coco_tracks(path, **kwargs)
    msg = str(info.value)
    assert str(path) in msg, msg
    for sub in substrings:
        assert sub in msg, f"{sub!r} not in {msg!r}"
    return msg


def check_layout(ts: TrackSet) -> None:
    assert ts.track_ids == sorted(LAYOUT)
    for t in ts.tracks:
        frames = LAYOUT[t.track_id]
        assert t.frame_ids.dtype == np.int64
        assert t.frame_ids.tolist() == frames
        assert t.keypoints.shape == (len(frames), K, 3) and t.keypoints.dtype == np.float32
        expected = np.array([kp_values(f, t.track_id) for f in frames], dtype=np.float32).reshape(-1, K, 3)
        np.testing.assert_array_equal(t.keypoints, expected)
        assert t.bbox.shape == (len(frames), 4) and t.bbox.dtype == np.float32
        np.testing.assert_array_equal(t.bbox[:, 1], np.array(frames, dtype=np.float32))
        assert t.score.shape == (len(frames),) and t.score.dtype == np.float32
        np.testing.assert_allclose(t.score, 0.5 + 0.01 * t.track_id, rtol=1e-6)
    assert ts.num_person_frames == sum(map(len, LAYOUT.values()))


# --------------------------------------------------------------------------- happy paths


def test_object_form_with_meta(tmp_path):
    meta = {"fps": 25, "width": 640, "height": 480, "frames": 10, "keypoint_format": "coco17", "video": "v.mp4"}
    path = write_json(tmp_path / "tracks.json", {"meta": meta, "annotations": multi_records()})
    ts = read_coco_tracks(path)
    check_layout(ts)
    assert ts.fps == 25.0 and isinstance(ts.fps, float)
    assert ts.image_size == (640, 480)
    assert ts.keypoint_format == "coco17"
    assert ts.source == str(path)
    assert ts.warnings == []
    assert ts.meta["video"] == "v.mp4"


def test_bare_list_form(tmp_path):
    path = write_json(tmp_path / "results.json", multi_records())
    ts = read_coco_tracks(path)
    check_layout(ts)
    assert ts.fps is None and ts.image_size is None
    assert ts.keypoint_format == "coco17"  # inferred from K = 17


def test_records_in_any_order(tmp_path):
    recs = multi_records()[::-1]
    ts = read_coco_tracks(write_json(tmp_path / "r.json", recs))
    check_layout(ts)


def test_alphapose_idx_box_and_string_image_ids(tmp_path):
    recs = []
    for r in multi_records(tid_key="idx"):
        r["image_id"] = f"{r['image_id']:06d}.jpg"
        r["box"] = r.pop("bbox")
        recs.append(r)
    ts = read_coco_tracks(write_json(tmp_path / "alphapose-results.json", recs))
    check_layout(ts)


def test_alphapose_idx_as_one_element_list(tmp_path):
    recs = multi_records(tid_key=None)
    for r in recs:
        r["idx"] = [float(r["bbox"][0] / 100.0)]
    check_layout(read_coco_tracks(write_json(tmp_path / "r.json", recs)))


def test_string_image_id_variants(tmp_path):
    recs = [
        record(0, 0, tid_key=None, image_id="video_3/frame_000010.png"),
        record(0, 0, tid_key=None, image_id="11"),
        record(0, 0, tid_key=None, image_id=12.0),
    ]
    ts = read_coco_tracks(write_json(tmp_path / "r.json", recs))
    assert ts.tracks[0].frame_ids.tolist() == [10, 11, 12]


def test_single_person_without_track_ids(tmp_path):
    recs = [record(f, 0, tid_key=None) for f in (4, 0, 2)]
    ts = read_coco_tracks(write_json(tmp_path / "one.json", recs))
    assert len(ts.tracks) == 1
    t = ts.tracks[0]
    assert t.track_id == 0 and t.frame_ids.tolist() == [0, 2, 4]


def test_optional_bbox_and_score(tmp_path):
    recs = []
    for f in range(3):
        r = record(f, 0)
        del r["bbox"], r["score"], r["category_id"]
        recs.append(r)
    t = read_coco_tracks(write_json(tmp_path / "r.json", recs)).tracks[0]
    assert t.bbox is None and t.score is None


def test_partial_bbox_rows_are_nan(tmp_path):
    recs = [record(f, 0) for f in range(3)]
    del recs[1]["bbox"]
    ts = read_coco_tracks(write_json(tmp_path / "r.json", recs))
    bbox = ts.tracks[0].bbox
    assert np.isnan(bbox[1]).all() and np.isfinite(bbox[[0, 2]]).all()
    assert any("without bbox" in w for w in ts.warnings)


def test_fps_argument_overrides_meta(tmp_path):
    path = write_json(tmp_path / "r.json", {"meta": {"fps": 25}, "annotations": multi_records()})
    assert read_coco_tracks(path, fps=50).fps == 50.0
    for bad in (0, -1, float("nan"), float("inf"), "30", True):
        with pytest.raises(ValueError, match="fps"):
            read_coco_tracks(path, fps=bad)


def test_keypoint_format_argument(tmp_path):
    path = write_json(tmp_path / "r.json", multi_records())
    assert read_coco_tracks(path, keypoint_format="COCO17").keypoint_format == "coco17"
    with pytest.raises(ValueError, match="must be one of"):
        read_coco_tracks(path, keypoint_format="h36m")


def test_nan_joints_are_masked(tmp_path):
    recs = [record(f, 0) for f in range(3)]
    recs[1]["keypoints"][3 * 4] = float("nan")  # x of joint 4
    recs[2]["keypoints"][3 * 6 + 1] = float("inf")  # y of joint 6
    recs[2]["keypoints"][3 * 7 + 2] = float("nan")  # confidence of joint 7
    path = tmp_path / "nan.json"
    path.write_text(json.dumps(recs))  # Python's json writes NaN / Infinity tokens
    ts = read_coco_tracks(path)
    kp = ts.tracks[0].keypoints
    assert np.isfinite(kp).all()
    np.testing.assert_array_equal(kp[1, 4], [0, 0, 0])
    np.testing.assert_array_equal(kp[2, 6], [0, 0, 0])
    assert kp[2, 7, 2] == 0 and kp[2, 7, 0] == 7.0  # x, y kept
    assert kp[0, 4, 2] > 0  # untouched
    assert any("masked 2 joint" in w for w in ts.warnings), ts.warnings
    assert any("non-finite confidence" in w for w in ts.warnings), ts.warnings


def test_confidence_clipped_and_negative_coordinates_kept(tmp_path):
    recs = [record(f, 0) for f in range(2)]
    recs[0]["keypoints"][2] = 3.7  # AlphaPose-style score > 1
    recs[0]["keypoints"][5] = -0.2
    recs[1]["keypoints"][0] = -15.5
    ts = read_coco_tracks(write_json(tmp_path / "r.json", recs))
    kp = ts.tracks[0].keypoints
    assert kp[0, 0, 2] == 1.0 and kp[0, 1, 2] == 0.0
    assert kp[1, 0, 0] == -15.5
    assert (kp[..., 2] >= 0).all() and (kp[..., 2] <= 1).all()
    assert any("clipped 2 confidence" in w for w in ts.warnings), ts.warnings


def test_non_person_records_skipped(tmp_path):
    recs = multi_records()
    recs.insert(2, {"image_id": 0, "category_id": 3, "bbox": [0, 0, 5, 5], "score": 0.9})  # a car, no keypoints
    recs.append(record(4, 99, category_id=2))
    ts = read_coco_tracks(write_json(tmp_path / "r.json", recs))
    check_layout(ts)
    assert any("skipped 2 non-person" in w for w in ts.warnings), ts.warnings


def test_round_trip(tmp_path):
    src = write_json(
        tmp_path / "in.json",
        {"meta": {"fps": 30, "width": 1920, "height": 1080, "frames": 10, "video": "x"}, "annotations": multi_records()},
    )
    ts = read_coco_tracks(src)
    out = tmp_path / "sub" / "out.json"
    out.parent.mkdir()
    write_coco_tracks(ts, out)
    assert sorted(os.listdir(out.parent)) == ["out.json"]  # no temp file left behind
    json.loads(out.read_text())  # strict JSON
    back = read_coco_tracks(out)
    check_layout(back)
    assert (back.fps, back.image_size, back.keypoint_format) == (30.0, (1920, 1080), "coco17")
    assert back.meta["frames"] == 10 and back.meta["video"] == "x"
    for a, b in zip(ts.tracks, back.tracks):
        np.testing.assert_array_equal(a.keypoints, b.keypoints)  # float32 exact
        np.testing.assert_array_equal(a.bbox, b.bbox)
        np.testing.assert_array_equal(a.score, b.score)


def test_write_in_memory_trackset_and_overwrite(tmp_path):
    rng = np.random.default_rng(0)
    kp = rng.uniform(-50, 700, size=(4, K, 3)).astype(np.float32)
    kp[..., 2] = rng.uniform(0, 1, size=(4, K))
    kp[2, 3, 0] = np.nan  # masked on write
    tracks = [Track(5, np.array([0, 2, 3, 8]), kp), Track(2, np.array([1]), kp[:1], score=np.array([0.25]))]
    ts = TrackSet(tracks=tracks, fps=None, keypoint_format="coco17", image_size=None, source="")
    path = tmp_path / "made.json"
    path.write_text("old content")
    write_coco_tracks(ts, path)
    back = read_coco_tracks(path)
    assert back.track_ids == [2, 5] and back.fps is None and back.image_size is None
    t5 = back.tracks[1]
    assert t5.frame_ids.tolist() == [0, 2, 3, 8] and t5.bbox is None and t5.score is None
    np.testing.assert_array_equal(t5.keypoints[2, 3], [0, 0, 0])
    mask = np.ones((4, K), bool)
    mask[2, 3] = False
    np.testing.assert_array_equal(t5.keypoints[mask], kp[mask])
    assert back.tracks[0].score.tolist() == [0.25]


def test_track_validates_shapes():
    with pytest.raises(ValueError, match="strictly increasing"):
        Track(0, np.array([0, 2, 2]), np.zeros((3, K, 3)))
    with pytest.raises(ValueError, match="shape"):
        Track(0, np.array([0, 1]), np.zeros((3, K, 3)))
    with pytest.raises(ValueError, match="integers"):
        Track(0, np.array([0.0, 1.0]), np.zeros((2, K, 3)))


# --------------------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    expect_error(tmp_path / "nope.json", "not found")


def test_directory_instead_of_file(tmp_path):
    expect_error(tmp_path, "directory")


@pytest.mark.parametrize("content", ["", "  \n\t"])
def test_empty_file(tmp_path, content):
    path = tmp_path / "empty.json"
    path.write_text(content)
    expect_error(path, "empty")


def test_invalid_json_reports_line_and_column(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('[\n  {"image_id": 0,\n   "keypoints": [1, 2, 3,]}\n]')
    expect_error(path, "invalid JSON", "line 3, column")


def test_truncated_json(tmp_path):
    path = tmp_path / "cut.json"
    path.write_text(json.dumps(multi_records())[:-40])
    expect_error(path, "invalid JSON", "line 1")


def test_not_utf8(tmp_path):
    path = tmp_path / "bin.json"
    path.write_bytes(b"\xff\xfe\x00[\x00\x81")
    expect_error(path, "UTF-8")


@pytest.mark.parametrize("top", ['"hello"', "42", "null", "true"])
def test_top_level_scalar(tmp_path, top):
    path = tmp_path / "top.json"
    path.write_text(top)
    expect_error(path, "top level", "annotations")


def test_object_without_annotations(tmp_path):
    expect_error(write_json(tmp_path / "o.json", {"meta": {}, "images": []}), "no 'annotations'")


def test_annotations_not_a_list(tmp_path):
    expect_error(write_json(tmp_path / "o.json", {"annotations": {"0": {}}}), "'annotations' must be a list")


def test_meta_not_an_object(tmp_path):
    expect_error(write_json(tmp_path / "o.json", {"meta": [1], "annotations": multi_records()}), "'meta'")


@pytest.mark.parametrize("obj", [[], {"meta": {"fps": 10}, "annotations": []}])
def test_empty_annotation_list(tmp_path, obj):
    expect_error(write_json(tmp_path / "e.json", obj), "annotation list is empty")


def test_record_not_an_object(tmp_path):
    recs = multi_records()
    recs.insert(3, [0, 1, 2])
    expect_error(write_json(tmp_path / "r.json", recs), "record 3", "not a JSON object")


@pytest.mark.parametrize("field", ["keypoints", "image_id"])
def test_missing_required_field(tmp_path, field):
    recs = multi_records()
    del recs[4][field]
    expect_error(write_json(tmp_path / "r.json", recs), "record 4", f"'{field}'")


def test_keypoints_not_multiple_of_three(tmp_path):
    recs = multi_records()
    recs[2]["keypoints"] = recs[2]["keypoints"][:-1]
    expect_error(write_json(tmp_path / "r.json", recs), "record 2", "50 values", "multiple of 3")


def test_keypoints_empty(tmp_path):
    recs = multi_records()
    recs[0]["keypoints"] = []
    expect_error(write_json(tmp_path / "r.json", recs), "record 0", "0 values")


def test_keypoints_inconsistent_across_records(tmp_path):
    recs = multi_records()
    recs[5]["keypoints"] = recs[5]["keypoints"][:-3]
    expect_error(write_json(tmp_path / "r.json", recs), "record 5", "16 joints", "record 0")


@pytest.mark.parametrize("bad", ["12.5", None, [1.0], True, {"x": 1}])
def test_non_numeric_keypoint(tmp_path, bad):
    recs = multi_records()
    recs[6]["keypoints"][10] = bad
    expect_error(write_json(tmp_path / "r.json", recs), "record 6", "keypoints[10]", "not a number")


def test_keypoints_not_a_list(tmp_path):
    recs = multi_records()
    recs[1]["keypoints"] = "1,2,3"
    expect_error(write_json(tmp_path / "r.json", recs), "record 1", "keypoints must be a list")


def test_non_numeric_bbox_and_score(tmp_path):
    recs = multi_records()
    recs[1]["bbox"] = [0, 0, "w", 10]
    expect_error(write_json(tmp_path / "a.json", recs), "record 1", "bbox[2]")
    recs = multi_records()
    recs[2]["bbox"] = [0, 0, 10]
    expect_error(write_json(tmp_path / "b.json", recs), "record 2", "4 values")
    recs = multi_records()
    recs[3]["score"] = "high"
    expect_error(write_json(tmp_path / "c.json", recs), "record 3", "score")


@pytest.mark.parametrize(
    "image_id, substring",
    [("frame.jpg", "no integer frame number"), (3.5, "not an integer"), (-1, "negative"), ([1], "image_id must be")],
)
def test_bad_image_id(tmp_path, image_id, substring):
    recs = multi_records()
    recs[7]["image_id"] = image_id
    expect_error(write_json(tmp_path / "r.json", recs), "record 7", substring)


@pytest.mark.parametrize("tid", ["a", 1.5, [1, 2], False])
def test_bad_track_id(tmp_path, tid):
    recs = multi_records()
    recs[1]["track_id"] = tid
    expect_error(write_json(tmp_path / "r.json", recs), "record 1", "track_id must be an integer")


def test_track_id_and_idx_disagree(tmp_path):
    recs = multi_records()
    recs[0]["idx"] = recs[0]["track_id"] + 1
    expect_error(write_json(tmp_path / "r.json", recs), "record 0", "disagree")


def test_multi_person_without_track_ids(tmp_path):
    recs = [record(f, p, tid_key=None) for f in range(3) for p in range(2)]
    msg = expect_error(write_json(tmp_path / "r.json", recs), "no track ids", "tracker='none'", tracker="none")
    assert "frame 0" in msg and "record 0 and record 1" in msg


def test_some_records_without_track_id(tmp_path):
    recs = multi_records()
    del recs[3]["track_id"]
    expect_error(write_json(tmp_path / "r.json", recs), "record 3 has no track id")


def test_duplicate_track_frame(tmp_path):
    recs = multi_records()
    recs.append(record(5, 3))
    msg = expect_error(write_json(tmp_path / "r.json", recs), "track 3", "frame 5")
    assert f"record {[r['image_id'] for r in recs[:-1]].index(5)} and record {len(recs) - 1}" in msg


def test_duplicate_via_string_image_ids(tmp_path):
    recs = [record(0, 0, image_id="000004.jpg"), record(0, 0, image_id="4.png")]
    expect_error(write_json(tmp_path / "r.json", recs), "track 0", "frame 4")


def test_unknown_joint_count(tmp_path):
    recs = [record(f, 0, k=33) for f in range(2)]
    msg = expect_error(write_json(tmp_path / "r.json", recs), "33 joints")
    assert "coco17" in msg and "halpe26" in msg


def test_declared_format_disagrees_with_joint_count(tmp_path):
    recs = [record(f, 0, k=16) for f in range(2)]
    expect_error(
        write_json(tmp_path / "a.json", {"meta": {"keypoint_format": "coco17"}, "annotations": recs}),
        "'coco17' has 17 joints",
        "16",
    )
    expect_error(write_json(tmp_path / "b.json", recs), "'coco17' has 17 joints", keypoint_format="coco17")


def test_unknown_format_in_meta(tmp_path):
    obj = {"meta": {"keypoint_format": "openpose25"}, "annotations": multi_records()}
    expect_error(write_json(tmp_path / "r.json", obj), "unknown meta.keypoint_format", "coco17")


@pytest.mark.parametrize(
    "meta, substring",
    [({"fps": 0}, "meta.fps"), ({"fps": "25"}, "meta.fps"), ({"width": -5, "height": 10}, "meta.width"),
     ({"width": 640, "height": 480.5}, "meta.height")],
)
def test_bad_meta_values(tmp_path, meta, substring):
    expect_error(write_json(tmp_path / "r.json", {"meta": meta, "annotations": multi_records()}), substring)


def test_only_non_person_records(tmp_path):
    recs = [record(f, 0, category_id=2) for f in range(2)]
    expect_error(write_json(tmp_path / "r.json", recs), "no person records")


def test_errors_are_value_errors(tmp_path):
    assert issubclass(TrackFormatError, ValueError)
    with pytest.raises(ValueError):
        read_coco_tracks(tmp_path / "missing.json")


# --------------------------------------------------------------------------- real data


def test_real_shared_file():
    if not REAL_TRACKS.is_file():
        pytest.skip(f"real track file not available at {REAL_TRACKS} (shared data not mounted)")
    ts = read_coco_tracks(REAL_TRACKS)
    assert ts.keypoint_format == "coco17"
    assert ts.fps == 10.0
    assert ts.image_size == (768, 576)
    assert ts.warnings == []
    assert ts.num_person_frames == 4094
    # The README says "193 track ids", but the file holds 156 distinct ids (values 0..191,
    # some unused); we assert what the data contains.  The other README figures match.
    assert len(ts.tracks) == 156
    lengths = sorted((len(t) for t in ts.tracks), reverse=True)
    assert lengths[0] == 285
    assert sum(n >= 30 for n in lengths) == 39
    for t in ts.tracks:
        assert t.keypoints.shape == (len(t), 17, 3)
        assert np.all(np.diff(t.frame_ids) > 0)
        assert t.frame_ids.min() >= 0 and t.frame_ids.max() < ts.meta["frames"]
        assert t.bbox.shape == (len(t), 4) and t.score.shape == (len(t),)
        c = t.keypoints[..., 2]
        assert c.min() >= 0 and c.max() <= 1
        assert math.isfinite(float(t.keypoints.sum()))


def test_large_files_stream_to_the_same_result(tmp_path, monkeypatch):
    """Files over STREAM_BYTES are parsed incrementally (ijson): same tracks as json.load,
    for both the object and the bare-list form, and the same errors for empty/invalid files."""
    import lifting.io.records as rec

    pytest.importorskip("ijson")
    example = Path(str(resources.files("lifting") / "assets" / "example_track.json"))
    doc = json.loads(example.read_text())
    paths = {"object": example, "bare": tmp_path / "bare.json"}
    paths["bare"].write_text(json.dumps(doc["annotations"]))
    want = {k: read_coco_tracks(p) for k, p in paths.items()}
    monkeypatch.setattr(rec, "STREAM_BYTES", 0)
    for k, p in paths.items():
        got = read_coco_tracks(p)
        assert [t.track_id for t in got.tracks] == [t.track_id for t in want[k].tracks]
        for a, b in zip(got.tracks, want[k].tracks):
            np.testing.assert_array_equal(a.frame_ids, b.frame_ids)
            np.testing.assert_array_equal(a.keypoints, b.keypoints)
        assert got.fps == want[k].fps
    empty = tmp_path / "empty.json"
    empty.write_text('{"meta": {}, "annotations": []}')
    with pytest.raises(TrackFormatError, match="empty"):
        read_coco_tracks(empty)
    broken = tmp_path / "broken.json"
    broken.write_text('[{"image_id": 0, "keypoints": [1, 2, 0.5]}, {"image_id": ')
    with pytest.raises(TrackFormatError, match="invalid JSON"):
        read_coco_tracks(broken)


def test_large_file_format_detection_streams(tmp_path, monkeypatch):
    """Auto-detection of large files reads a small sample incrementally, not the whole file."""
    import lifting.io.records as rec
    from lifting.io.readers import detect_format
    from lifting.track import read_tracks

    pytest.importorskip("ijson")
    example = Path(str(resources.files("lifting") / "assets" / "example_track.json"))
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(json.loads(example.read_text())["annotations"]))
    mm = tmp_path / "mm.json"
    mm.write_text(json.dumps({"meta_info": {}, "instance_info": [{"frame_id": 0, "instances": []}]}))
    small = {p: detect_format(p) for p in (example, bare, mm)}
    monkeypatch.setattr(rec, "STREAM_BYTES", 0)
    assert {p: detect_format(p) for p in (example, bare, mm)} == small == {example: "coco", bare: "coco", mm: "mmpose"}
    got = read_tracks(example)
    assert len(got.tracks) == 1 and len(got.tracks[0].frame_ids) == 285


def test_track_stem_keeps_a_safe_name():
    from lifting.io.tracks import track_stem

    assert track_stem(3) == "track_0003"
    assert track_stem(3, "walk.mp4") == "track_0003_walk"
    assert track_stem(12, "../a b/c?d.avi") == "track_0012_c_d"  # no path, no odd characters
    assert track_stem(1, "...") == "track_0001"
