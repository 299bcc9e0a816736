"""read_tracks on files laid out exactly as the tools write them by default: several people per
frame, no track ids, spurious detections; plus the input limits of issue 12 (sizes, frame
numbers, non-regular files, absurd coordinates, non-finite scores).

Untracked multi-person files go through :mod:`lifting.io.tracking`; until that module is
merged, the ``tracking`` fixture installs a small stand-in with the agreed interface.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from lifting.io.readers import common as readers_common
from lifting.io.readers import detect_format
from lifting.track import read_tracks
from lifting.io.tracks import TrackFormatError
from lifting.skeletons import BODY25, BODY25B, COCO17, HALPE26, get_skeleton

REAL_TRACKS = Path("/work/shared/data/real_tracks/vtest_hog_blazepose_coco17.json")

# A standing person 1 unit tall (x right, y down), by joint name.
_TEMPLATE = {
    "nose": (0.0, 0.06), "left_eye": (0.015, 0.045), "right_eye": (-0.015, 0.045), "left_ear": (0.04, 0.055),
    "right_ear": (-0.04, 0.055), "left_shoulder": (0.11, 0.19), "right_shoulder": (-0.11, 0.19),
    "left_elbow": (0.13, 0.33), "right_elbow": (-0.13, 0.33), "left_wrist": (0.14, 0.46),
    "right_wrist": (-0.14, 0.46), "left_hip": (0.07, 0.52), "right_hip": (-0.07, 0.52),
    "left_knee": (0.075, 0.74), "right_knee": (-0.075, 0.74), "left_ankle": (0.08, 0.96),
    "right_ankle": (-0.08, 0.96), "upper_neck": (0.0, 0.13), "head_top": (0.0, 0.0),
    "left_big_toe": (0.1, 1.0), "left_small_toe": (0.12, 0.99), "left_heel": (0.07, 0.99),
    "right_big_toe": (-0.1, 1.0), "right_small_toe": (-0.12, 0.99), "right_heel": (-0.07, 0.99),
}
_TEMPLATE.update(neck=(0.0, 0.19), mid_hip=(0.0, 0.52), hip=(0.0, 0.52), head=(0.0, 0.0))


def _person(skel, x: float, y: float, height: float, t: int, rng) -> np.ndarray:
    """``(J, 3)`` x, y px, confidence of one person of ``height`` px at (x, y) (top)."""
    out = np.zeros((skel.num_joints, 3))
    for j, name in enumerate(skel.joint_names):
        u, v = _TEMPLATE[name]
        swing = 0.03 * np.sin(0.4 * t) * (1 if "left" in name else -1) if ("ankle" in name or "wrist" in name) else 0
        out[j] = (x + (u + swing) * height, y + v * height, 0.9)
    out[:, :2] += rng.normal(0, 0.4, (skel.num_joints, 2))
    return out


def scene(skel, frames: int = 30, people: int = 3, spurious_every: int = 4, seed: int = 0):
    """Per frame, a shuffled list of ``(true person id or -1, (J, 3) keypoints)``: ``people``
    walkers 120-170 px tall crossing the image, plus a tiny low-confidence false positive every
    ``spurious_every`` frames (as detectors emit)."""
    rng = np.random.default_rng(seed)
    start = rng.uniform(50, 600, people)
    speed = rng.uniform(-4, 4, people)
    heights = rng.uniform(120, 170, people)
    out = []
    for t in range(frames):
        dets = [(p, _person(skel, start[p] + speed[p] * t, 100 + 150 * p, heights[p], t, rng)) for p in range(people)]
        if spurious_every and t % spurious_every == 1:
            junk = _person(skel, rng.uniform(0, 700), rng.uniform(0, 500), 10.0, t, rng)
            junk[:, 2] = 0.05
            dets.append((-1, junk))
        out.append([dets[i] for i in rng.permutation(len(dets))])
    return out


# --------------------------------------------------------------------------- writers (tools' defaults)


def write_openpose(folder: Path, frames, name=lambda t: f"cam01.{t:04d}.json") -> Path:
    """OpenPose --write_json: one file per frame, ``person_id: [-1]`` (no --tracking)."""
    folder.mkdir(parents=True, exist_ok=True)
    for t, dets in enumerate(frames):
        people = [{"person_id": [-1], "pose_keypoints_2d": kp.round(3).ravel().tolist(),
                   "face_keypoints_2d": [], "hand_left_keypoints_2d": [], "hand_right_keypoints_2d": [],
                   "pose_keypoints_3d": [], "face_keypoints_3d": [], "hand_left_keypoints_3d": [],
                   "hand_right_keypoints_3d": []} for _, kp in dets]
        (folder / name(t)).write_text(json.dumps({"version": 1.3, "people": people}))
    return folder


def _instance(kp: np.ndarray) -> dict:
    x1, y1 = kp[:, :2].min(0) - 5
    x2, y2 = kp[:, :2].max(0) + 5
    return {"keypoints": kp[:, :2].round(3).tolist(), "keypoint_scores": kp[:, 2].round(3).tolist(),
            "bbox": [[float(x1), float(y1), float(x2), float(y2)]], "bbox_score": 0.9}


def write_mmpose_save_predictions(path: Path, frames, first_frame: int = 1) -> Path:
    """MMPose demo --save-predictions: meta_info + instance_info per frame, no track ids."""
    info = [{"frame_id": t + first_frame, "instances": [_instance(kp) for _, kp in dets]}
            for t, dets in enumerate(frames)]
    path.write_text(json.dumps({"meta_info": {"dataset_name": "coco"}, "instance_info": info}))
    return path


def write_mmpose_inferencer(path: Path, frames, per_result: bool) -> Path:
    """MMPose 1.x inferencer results: ``{"predictions": [[inst, ...], ...]}`` or, one result
    per frame, ``[{"predictions": [[inst, ...]], "visualization": []}, ...]``."""
    preds = [[_instance(kp) for _, kp in dets] for dets in frames]
    doc = [{"predictions": [p], "visualization": []} for p in preds] if per_result else {"predictions": preds}
    path.write_text(json.dumps(doc))
    return path


def write_coco_results(path: Path, frames) -> Path:
    """COCO keypoint results (MMPose / Detectron2 / AlphaPose without tracking): no track_id."""
    recs = []
    for t, dets in enumerate(frames):
        for _, kp in dets:
            box = [*(kp[:, :2].min(0) - 5), *(kp[:, :2].max(0) - kp[:, :2].min(0) + 10)]
            recs.append({"image_id": t, "category_id": 1, "keypoints": kp.round(3).ravel().tolist(),
                         "score": float(kp[:, 2].mean()), "bbox": [round(float(v), 2) for v in box]})
    path.write_text(json.dumps(recs))
    return path


def _check_tracked(ts, frames, people: int) -> None:
    """``people`` tracks, each following one true person through most frames; spurious
    detections not in them."""
    assert ts.tracking["method"] == "oks+iou", ts.tracking  # auto's default cost
    long = [t for t in ts.tracks if len(t) >= len(frames) // 2]
    assert len(long) == people, [len(t) for t in ts.tracks]
    for tr in long:
        assert np.all(np.diff(tr.frame_ids) > 0)
        x = tr.keypoints[:, :, 0].mean(1)
        assert np.abs(np.diff(x)).max() < 20  # one walker, never a jump to another person
        assert tr.keypoints[:, :, 2].mean() > 0.5  # no low-confidence junk


# --------------------------------------------------------------------------- the tools' layouts


@pytest.mark.parametrize("skel", [BODY25, BODY25B])
def test_openpose_folder_cam_naming_untracked_multi_person(tmp_path, skel):
    frames = scene(skel)
    folder = write_openpose(tmp_path / "cam01", frames)
    (folder / "calibration.json").write_text(json.dumps({"K": [1, 0, 0]}))  # no 'people': skipped
    assert detect_format(folder) == "openpose"
    ts = read_tracks(folder)
    assert ts.keypoint_format == skel.name and ts.meta["input_format"] == "openpose"
    assert any("without a 'people' list" in w for w in ts.warnings)
    _check_tracked(ts, frames, 3)


def test_openpose_default_demo_naming_and_single_file(tmp_path):
    frames = scene(BODY25, frames=4, people=1, spurious_every=0)
    folder = write_openpose(tmp_path / "op", frames, name=lambda t: f"video_{t:012d}_keypoints.json")
    ts = read_tracks(folder)
    assert ts.tracking["method"] == "single" and ts.tracks[0].frame_ids.tolist() == [0, 1, 2, 3]
    one = read_tracks(folder / "video_000000000002_keypoints.json")
    assert one.tracks[0].frame_ids.tolist() == [2] and one.keypoint_format == "body25"


def test_openpose_body25b_single_person_is_not_read_as_body25(tmp_path):
    folder = write_openpose(tmp_path / "b", scene(BODY25B, frames=5, people=1, spurious_every=0))
    assert read_tracks(folder).keypoint_format == "body25b"
    assert read_tracks(folder, "body25").keypoint_format == "body25"  # --format is trusted


def test_openpose_body135_uses_the_body_part(tmp_path):
    skel = get_skeleton("body135")
    frames = scene(BODY25B, frames=4, people=1, spurious_every=0)
    frames = [[(p, np.concatenate([kp, np.tile([[0.0, 0.0, 0.0]], (110, 1))])) for p, kp in d] for d in frames]
    ts = read_tracks(write_openpose(tmp_path / "b135", frames))
    assert ts.keypoint_format == "body135" and ts.tracks[0].num_joints == skel.num_joints


def test_openpose_ambiguous_25_joint_layout_asks_for_format(tmp_path):
    frames = [[(0, np.tile([[5.0, 5.0, 0.9]], (25, 1)))] for _ in range(3)]  # all joints in one spot
    with pytest.raises(TrackFormatError, match="--format body25 or --format body25b"):
        read_tracks(write_openpose(tmp_path / "amb", frames))


def test_openpose_folder_of_several_cameras_is_refused(tmp_path):
    frames = scene(BODY25, frames=2, people=1, spurious_every=0)
    folder = write_openpose(tmp_path / "all", frames)
    write_openpose(folder, frames, name=lambda t: f"cam02.{t:04d}.json")
    with pytest.raises(TrackFormatError, match="cam01.0000.json and cam02.0000.json are both frame 0"):
        read_tracks(folder)


def test_openpose_person_id_is_used_when_set(tmp_path):
    frames = scene(BODY25, frames=4, people=2, spurious_every=0)
    folder = tmp_path / "tracked"
    folder.mkdir()
    for t, dets in enumerate(frames):
        people = [{"person_id": [10 + p], "pose_keypoints_2d": kp.ravel().tolist()} for p, kp in dets]
        (folder / f"cam01.{t:04d}.json").write_text(json.dumps({"people": people}))
    ts = read_tracks(folder)
    assert ts.tracking["method"] == "ids" and ts.track_ids == [10, 11]


@pytest.mark.parametrize("writer", ["save_predictions", "inferencer", "inferencer_per_result"])
def test_mmpose_untracked_multi_person(tmp_path, writer):
    frames = scene(COCO17)
    path = tmp_path / "mm.json"
    if writer == "save_predictions":
        write_mmpose_save_predictions(path, frames)
    else:
        write_mmpose_inferencer(path, frames, per_result=writer.endswith("per_result"))
    assert detect_format(path) == "mmpose"
    ts = read_tracks(path)
    assert ts.keypoint_format == "coco17" and all(t.bbox is not None for t in ts.tracks)
    _check_tracked(ts, frames, 3)
    first = 1 if writer == "save_predictions" else 0  # the video demo counts frames from 1
    assert min(int(t.frame_ids[0]) for t in ts.tracks) == first


def test_mmpose_pred_out_dir_image_file(tmp_path):
    path = tmp_path / "img.json"
    path.write_text(json.dumps([_instance(scene(COCO17, frames=1, people=1)[0][0][1])]))
    ts = read_tracks(path)
    assert ts.tracks[0].frame_ids.tolist() == [0] and ts.keypoint_format == "coco17"


@pytest.mark.parametrize("skel", [COCO17, HALPE26])
def test_coco_results_untracked_multi_person(tmp_path, skel):
    frames = scene(skel)
    path = write_coco_results(tmp_path / "results.json", frames)
    assert detect_format(path) == ("coco" if skel is COCO17 else "halpe26")
    ts = read_tracks(path)
    assert ts.keypoint_format == skel.name
    _check_tracked(ts, frames, 3)


def write_alphapose(path: Path, frames, idx=lambda t, p, k: [0.0], merged_every: int = 5) -> Path:
    """AlphaPose ``--format`` default results (``docs/output.md``): ``image_id`` a file name,
    ``box`` and ``idx``; without ``--pose_track`` every ``idx`` is ``[0.0]``, and every
    ``merged_every`` frames one person comes from boxes its pose NMS merged (nested ``idx``)."""
    recs = []
    for t, dets in enumerate(frames):
        for k, (p, kp) in enumerate(dets):
            box = [*(kp[:, :2].min(0) - 5), *(kp[:, :2].max(0) - kp[:, :2].min(0) + 10)]
            i = [[0.0], [0.0]] if merged_every and t % merged_every == 0 and k == 0 else idx(t, p, k)
            recs.append({"image_id": f"{t}.jpg", "category_id": 1, "keypoints": kp.round(3).ravel().tolist(),
                         "score": float(kp[:, 2].mean() * 3), "box": [round(float(v), 2) for v in box], "idx": i})
    path.write_text(json.dumps(recs))
    return path


@pytest.mark.parametrize("skel", [COCO17, HALPE26])
def test_alphapose_idx_without_its_tracker_is_not_an_id(tmp_path, skel):
    frames = scene(skel)
    path = write_alphapose(tmp_path / "alphapose-results.json", frames)
    ts = read_tracks(path)
    assert "AlphaPose idx is not a track id" in ts.tracking["reason"], ts.tracking
    _check_tracked(ts, frames, 3)
    flat = write_alphapose(tmp_path / "flat.json", frames, idx=lambda t, p, k: 0.0, merged_every=0)
    ts = read_tracks(flat)  # 0.0 for everyone: shared within a frame
    assert "several people in one frame" in ts.tracking["reason"]
    _check_tracked(ts, frames, 3)
    with pytest.raises(TrackFormatError, match="track id"):
        read_tracks(path, tracker="none")  # 'none' takes the file's ids only


def test_alphapose_idx_from_its_tracker_is_used(tmp_path):
    frames = scene(COCO17, spurious_every=0)
    path = write_alphapose(tmp_path / "tracked.json", frames, idx=lambda t, p, k: [float(p + 1)], merged_every=0)
    ts = read_tracks(path)
    assert ts.tracking["method"] == "ids" and sorted(t.track_id for t in ts.tracks) == [1, 2, 3]
    assert read_tracks(path, tracker="oks").tracking["method"] == "oks"  # forced: the ids are ignored


def test_tracker_option(tmp_path):
    frames = scene(COCO17, frames=12)
    path = write_coco_results(tmp_path / "results.json", frames)
    with pytest.raises(TrackFormatError, match="tracker='none'"):
        read_tracks(path, tracker="none")
    with pytest.raises(ValueError, match="tracker must be one of"):
        read_tracks(path, tracker="sort")
    for cost in ("oks+iou", "oks", "iou"):
        assert read_tracks(path, tracker=cost).tracking["method"] == cost
    assert read_tracks(path).tracking["method"] == "oks+iou"  # auto
    single = write_coco_results(tmp_path / "one.json", scene(COCO17, frames=5, people=1, spurious_every=0))
    assert read_tracks(single).tracking["method"] == "single"
    assert read_tracks(single, tracker="oks").tracking["method"] == "oks"  # forced: retracked


def test_videopose3d_custom_archive(tmp_path):
    """data_2d_custom_*.npz as VideoPose3D's prepare_data_2d_custom.py writes it (pickled dicts)."""
    rng = np.random.default_rng(0)
    a = np.stack([_person(COCO17, 300, 100, 150, t, rng)[:, :2] for t in range(8)]).astype(np.float32)
    b = a[:5] + 10
    meta = {"layout_name": "coco", "num_joints": 17,
            "keypoints_symmetry": [[1, 3, 5, 7, 9, 11, 13, 15], [2, 4, 6, 8, 10, 12, 14, 16]],
            "video_metadata": {"walk.mp4": {"w": 1280, "h": 720}, "run.mp4": {"w": 1280, "h": 720}}}
    path = tmp_path / "data_2d_custom_myvideos.npz"
    np.savez_compressed(path, positions_2d={"walk.mp4": {"custom": [a]}, "run.mp4": {"custom": [b]}}, metadata=meta)
    assert detect_format(path) == "videopose3d"
    ts = read_tracks(path)
    assert ts.keypoint_format == "coco17" and ts.image_size == (1280, 720)
    assert [len(t) for t in ts.tracks] == [5, 8] and ts.meta["videos"] == {0: "run.mp4", 1: "walk.mp4"}
    assert [t.name for t in ts.tracks] == ["run.mp4", "walk.mp4"]
    np.testing.assert_allclose(ts.tracks[1].keypoints[..., :2], a)
    # the outputs keep each video's name: file names, summary.json and the npz
    from lifting.lift import lift_file
    from lifting.options import LiftOptions

    s = lift_file(path, tmp_path / "out", LiftOptions(checkpoint="teacher_single", max_figures=0, export=("csv",)))
    assert sorted(s["files"]) == ["track_0000_run.csv", "track_0000_run.npz", "track_0001_walk.csv",
                                  "track_0001_walk.npz"]
    assert [t["name"] for t in s["tracks"]] == ["run.mp4", "walk.mp4"]
    assert str(np.load(tmp_path / "out" / "track_0001_walk.npz")["name"]) == "walk.mp4"


@pytest.mark.parametrize("meta", [{"layout_name": ["coco"]}, {"layout_name": {"coco": 1}},
                                  {"layout_name": np.array(["coco"])}, {"video_metadata": ["walk.mp4"]},
                                  {"video_metadata": "1280x720"}])
def test_videopose3d_malformed_metadata_is_a_clear_error(tmp_path, meta):
    """Unhashable layout names and a video_metadata that is not a dictionary: an error naming
    the field, not a traceback (issue 22 hostile-input audit)."""
    a = np.zeros((4, 17, 2), np.float32) + np.arange(17)[None, :, None]
    path = tmp_path / "data_2d_custom_bad.npz"
    np.savez_compressed(path, positions_2d={"v.mp4": {"custom": [a]}}, metadata=meta)
    with pytest.raises(TrackFormatError, match="layout_name|video_metadata"):
        read_tracks(path)


def test_pickled_npz_cannot_run_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.npz"
    np.savez(path, positions_2d=np.array([Evil()], dtype=object))
    with pytest.raises(TrackFormatError, match="refusing to load"):
        read_tracks(path)


def test_tiny_pickle_asking_for_a_huge_array_is_refused_before_allocating(tmp_path):
    """The hostile-input audit's ~1 KB npz whose pickle builds a 2e9-element array: refused by
    size before numpy allocates it (issue 22), naming the limit."""
    class Huge:
        def __reduce__(self):
            return (np.ndarray.__reduce__(np.zeros(1))[0], (np.ndarray, (2_000_000_000,), b"d"))

    path = tmp_path / "data_2d_custom_huge.npz"
    np.savez(path, positions_2d=np.array([Huge()], dtype=object))
    assert path.stat().st_size < 2048
    with pytest.raises(TrackFormatError, match="MAX_ARRAY_BYTES"):
        read_tracks(path)


# --------------------------------------------------------------------------- limits (issue 12)


def test_forty_digit_frame_number(tmp_path):
    folder = write_openpose(tmp_path / "op", scene(BODY25, frames=1, people=1), name=lambda t: "f" + "9" * 40 + ".json")
    with pytest.raises(TrackFormatError, match="40 digits"):
        read_tracks(folder)


def test_npz_declaring_a_huge_array_is_refused_before_allocating(tmp_path):
    path = tmp_path / "big.npy"
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (6000000, 17, 3)})
        f.write(b"\0" * 1000)
    with pytest.raises(TrackFormatError, match=r"declares shape \(6000000, 17, 3\)"):
        read_tracks(path)
    np.save(tmp_path / "short.npy", np.zeros((10, 17, 3)))
    data = (tmp_path / "short.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(data[:-100])
    with pytest.raises(TrackFormatError, match="truncated"):
        read_tracks(tmp_path / "cut.npy")


def test_person_frame_cap(tmp_path, monkeypatch):
    path = write_coco_results(tmp_path / "r.json", scene(COCO17, frames=10, people=1, spurious_every=0))
    monkeypatch.setattr(readers_common, "MAX_PERSON_FRAMES", 5)
    with pytest.raises(TrackFormatError, match="MAX_PERSON_FRAMES = 5"):
        read_tracks(path)


def test_non_regular_files_are_refused(tmp_path):
    with pytest.raises(TrackFormatError, match="device"):
        read_tracks("/dev/zero")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(TrackFormatError, match="FIFO"):
        read_tracks(fifo)  # returns at once: never opened
    loop = tmp_path / "loop"
    os.symlink(loop, loop)
    with pytest.raises(TrackFormatError, match="symlink loop"):
        read_tracks(loop)
    with pytest.raises(TrackFormatError, match="file not found"):
        read_tracks(tmp_path / "missing.json")


def _one_rule_files(tmp_path: Path, x: float, score: float) -> list[Path]:
    """The same two-frame single-person input as coco, coco-annotations, halpe26 and mmpose,
    with joint 0's x set to ``x`` in frame 1 and a detection score ``score``."""
    out = []
    for skel, kind in ((COCO17, "coco"), (HALPE26, "halpe26"), (COCO17, "mmpose"), (COCO17, "coco-annotations")):
        rng = np.random.default_rng(0)
        kps = [_person(skel, 200, 50, 150, t, rng) for t in range(2)]
        kps[1][0, 0] = x
        p = tmp_path / f"{kind}.json"
        if kind == "mmpose":
            info = [{"frame_id": t, "instances": [{**_instance(kp), "bbox_score": score}]} for t, kp in enumerate(kps)]
            p.write_text(json.dumps({"instance_info": info}))
        elif kind == "coco-annotations":
            anns = [{"image_id": t, "category_id": 1, "keypoints": kp.ravel().tolist(), "score": score}
                    for t, kp in enumerate(kps)]
            p.write_text(json.dumps({"images": [{"id": 0, "file_name": "0.jpg"}, {"id": 1, "file_name": "1.jpg"}],
                                     "annotations": anns}))
        else:
            p.write_text(json.dumps([{"image_id": t, "keypoints": kp.ravel().tolist(), "score": score}
                                     for t, kp in enumerate(kps)]))
        out.append(p)
    return out


@pytest.mark.parametrize("x", [1e30, 3e38, -2e6])
def test_absurd_coordinates_are_masked_by_every_reader(tmp_path, x):
    for path in _one_rule_files(tmp_path, x, 0.9):
        ts = read_tracks(path)
        kp = ts.tracks[0].keypoints
        assert kp[1, 0].tolist() == [0.0, 0.0, 0.0], path.name
        assert np.abs(kp[..., :2]).max() < 1e6
        assert any("MAX_ABS_PX" in w for w in ts.warnings), (path.name, ts.warnings)


def test_non_finite_scores_one_rule(tmp_path):
    for path in _one_rule_files(tmp_path, 210.0, float("nan")):
        ts = read_tracks(path)
        assert np.isnan(ts.tracks[0].score).all(), path.name
        assert any("non-finite detection score" in w for w in ts.warnings), (path.name, ts.warnings)


# --------------------------------------------------------------------------- shared real tracks


@pytest.fixture(scope="module")
def real_frames():
    if not REAL_TRACKS.is_file():
        pytest.skip(f"shared real tracks not found at {REAL_TRACKS}")
    try:
        import lifting.io.tracking  # noqa: F401
    except ImportError:
        pytest.skip("lifting.io.tracking (the tracker) is not merged into this branch yet")
    ts = read_tracks(REAL_TRACKS)
    frames: dict[int, list] = {}
    for tr in ts.tracks:
        for f, kp in zip(tr.frame_ids, tr.keypoints):
            frames.setdefault(int(f), []).append((tr.track_id, kp.astype(np.float64)))
    return ts, [frames.get(t, []) for t in range(max(frames) + 1)]


def _to_body25(kp: np.ndarray) -> np.ndarray:
    """COCO-17 -> BODY_25 by joint names (Neck / MidHip as OpenPose defines them, feet missing)."""
    out = np.zeros((25, 3))
    for j, name in enumerate(BODY25.joint_names):
        if name in COCO17.joint_names:
            out[j] = kp[COCO17.index(name)]
    for name, (a, b) in {"neck": ("left_shoulder", "right_shoulder"), "mid_hip": ("left_hip", "right_hip")}.items():
        pa, pb = kp[COCO17.index(a)], kp[COCO17.index(b)]
        out[BODY25.index(name)] = [*(pa[:2] + pb[:2]) / 2, min(pa[2], pb[2])]
    return out


@pytest.mark.parametrize("tool", ["openpose", "mmpose", "mmpose_inferencer", "coco"])
def test_shared_real_tracks_without_ids_are_detected_and_tracked(tmp_path, real_frames, tool):
    ref, frames = real_frames
    if tool == "openpose":
        path = write_openpose(tmp_path / "cam01", [[(p, _to_body25(kp)) for p, kp in d] for d in frames])
    elif tool == "mmpose":
        path = write_mmpose_save_predictions(tmp_path / "mm.json", frames, first_frame=0)
    elif tool == "mmpose_inferencer":
        path = write_mmpose_inferencer(tmp_path / "mm1.json", frames, per_result=True)
    else:
        path = write_coco_results(tmp_path / "results.json", frames)
    ts = read_tracks(path)
    assert ts.keypoint_format == ("body25" if tool == "openpose" else "coco17")
    assert ts.tracking["method"] == "oks+iou" and ts.tracking["config"]["cost"] == "oks+iou"
    # plausible tracks: most detections kept (the tracker drops duplicate HOG boxes and unconfirmed
    # blips), no jumps between people, reference tracks mostly kept in one track
    assert ts.num_person_frames > 0.7 * ref.num_person_frames, (ts.num_person_frames, ref.num_person_frames)
    long = [t for t in ts.tracks if len(t) >= 30]
    assert len(long) >= 15, len(long)
    col = BODY25.index("left_shoulder") if tool == "openpose" else COCO17.index("left_shoulder")
    steps = []
    for tr in long:
        xy = tr.keypoints[:, col, :2]
        gap = np.diff(tr.frame_ids)
        steps += (np.linalg.norm(np.diff(xy, axis=0), axis=1) / gap)[gap == 1].tolist()
    assert np.mean(np.asarray(steps) > 30) < 0.02, np.mean(np.asarray(steps) > 30)  # people move ~1-5 px/frame
    new_of = {(int(f), round(float(k[col, 0]), 1)): tr.track_id for tr in ts.tracks
              for f, k in zip(tr.frame_ids, tr.keypoints)}
    share = []
    for tr in ref.tracks:
        if len(tr) >= 30:
            got = [new_of.get((int(f), round(float(k[5, 0]), 1))) for f, k in zip(tr.frame_ids, tr.keypoints)]
            share.append(max(got.count(g) for g in set(got) - {None}) / len(tr) if set(got) - {None} else 0.0)
    assert np.mean(share) > 0.5, share  # the reference ids fragment (greedy IoU), so not ~1


def test_body25b_and_body135_remap_to_canon16():
    from lifting.skeletons import CANON16, remap

    kp = np.stack([_person(BODY25B, 100, 50, 150, 0, np.random.default_rng(0))[:, :2]])
    out, mask = remap(kp, "body25b")
    assert mask.all() and out.shape == (1, 16, 2)
    np.testing.assert_allclose(out[0, CANON16.index("head")], kp[0, BODY25B.index("upper_neck")])
    pelvis = kp[0, [BODY25B.index("left_hip"), BODY25B.index("right_hip")]].mean(0)
    np.testing.assert_allclose(out[0, CANON16.index("pelvis")], pelvis)
    full = np.concatenate([kp, np.zeros((1, 110, 2))], axis=1)
    np.testing.assert_allclose(remap(full, "body135")[0], out)


@pytest.mark.parametrize("body, extra, name", [(HALPE26, 110, "Halpe-136"), (COCO17, 116, "COCO-WholeBody-133")])
def test_whole_body_layouts_read_their_body_part(tmp_path, body, extra, name):
    """AlphaPose Halpe-136 results and MMPose COCO-WholeBody-133 predictions: the leading body
    joints are read; the face and hand points after them are not."""
    frames = scene(body, frames=12, spurious_every=0)
    rng = np.random.default_rng(1)
    whole = [[(p, np.concatenate([kp, np.c_[rng.uniform(0, 700, (extra, 2)), np.full(extra, 0.9)]]))
              for p, kp in dets] for dets in frames]
    alphapose = write_alphapose(tmp_path / "ap.json", whole, merged_every=0)
    mmpose = write_mmpose_save_predictions(tmp_path / "mm.json", whole)
    for path in (alphapose, mmpose):
        ts = read_tracks(path)
        assert ts.keypoint_format == body.name
        assert ts.tracks[0].keypoints.shape[1] == body.num_joints, path.name
        assert any(name in w for w in ts.warnings), ts.warnings
        _check_tracked(ts, frames, 3)


def test_openpose_mixed_body25_and_body25b_files_are_decided_per_file(tmp_path):
    """55 BODY_25 and 5 BODY_25B files in one folder (issue 22 §6), scaled down: each file's
    layout is decided by its own geometry, the minority converted by joint name, with a warning."""
    a = scene(BODY25, frames=14, people=1, spurious_every=0, seed=3)
    b = scene(BODY25B, frames=14, people=1, spurious_every=0, seed=3)
    folder = write_openpose(tmp_path / "mixed", a[:11] + b[11:])
    ts = read_tracks(folder)
    assert ts.keypoint_format == "body25"
    assert any("mixed OpenPose layouts" in w and "3 BODY_25B" in w for w in ts.warnings), ts.warnings
    kp = ts.tracks[0].keypoints
    # the converted frames have BODY_25's MidHip between the hips, like the others
    mid = 0.5 * (kp[:, BODY25.index("left_hip"), :2] + kp[:, BODY25.index("right_hip"), :2])
    np.testing.assert_allclose(kp[:, BODY25.index("mid_hip"), :2][11:], mid[11:], atol=1e-3)
    # a forced format that the geometry contradicts is read as asked, with a warning
    forced = read_tracks(write_openpose(tmp_path / "b25", a[:6]), fmt="body25b")
    assert forced.keypoint_format == "body25b"
    assert any("--format body25b" in w and "fits BODY_25" in w for w in forced.warnings), forced.warnings


def _mediapipe_frames(n: int = 6) -> np.ndarray:
    """``(n, 33, 4)`` normalised landmarks (x, y, z, visibility) of a standing person."""
    rng = np.random.default_rng(5)
    mp = get_skeleton("mediapipe33")

    def near(name):  # MediaPipe's face / hand / foot points at their COCO-17 neighbour
        for part, base in (("eye", "nose"), ("mouth", "nose"), ("pinky", "wrist"), ("index", "wrist"),
                           ("thumb", "wrist"), ("heel", "ankle"), ("foot", "ankle")):
            if part in name and name not in COCO17.joint_names:
                side = "left_" if name.startswith("left") else "right_" if name.startswith("right") else ""
                return (side + base) if side + base in COCO17.joint_names else "nose"
        return name

    coco = np.stack([_person(COCO17, 300, 100, 300, t, rng) for t in range(n)])
    px = coco[:, [COCO17.index(near(j)) for j in mp.joint_names]]
    lm = np.zeros((n, 33, 4))
    lm[..., 0], lm[..., 1] = px[..., 0] / 640, px[..., 1] / 480
    lm[..., 2], lm[..., 3] = -0.1, 0.95
    return lm


def write_mediapipe_long(path: Path, lm: np.ndarray, frame_col: bool = True) -> Path:
    """Long form, one row per landmark: ``Frame,LandmarkID,X,Y`` (normalised, no visibility), or
    without a frame column ``Landmark_X,Landmark_Y,Landmark_Z`` in blocks of 33 rows."""
    lines = ["Frame,LandmarkID,X,Y"] if frame_col else ["Landmark_X,Landmark_Y,Landmark_Z"]
    for t, frame in enumerate(lm):
        for j, (x, y, z, _) in enumerate(frame):
            lines.append(f"{t},{j},{x:.6f},{y:.6f}" if frame_col else f"{x:.6f},{y:.6f},{z:.6f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def write_mediapipe_wide(path: Path, lm: np.ndarray, scale=(1.0, 1.0)) -> Path:
    """Wide form, one row per frame: ``frame,x0,y0,z0,visibility0,...,x32,...``."""
    head = ["frame"] + [f"{c}{j}" for j in range(33) for c in ("x", "y", "z", "visibility")]
    rows = [",".join([str(t)] + [f"{v * (scale[0] if c == 0 else scale[1] if c == 1 else 1):.4f}"
                                 for j in range(33) for c, v in enumerate(lm[t, j])]) for t in range(len(lm))]
    path.write_text(",".join(head) + "\n" + "\n".join(rows) + "\n")
    return path


def test_mediapipe_csv_long_and_wide_layouts(tmp_path):
    """MediaPipe scripts' CSV (issue 22 §3): long and wide, normalised or pixels; normalised
    without a size names --image-size; other text lists the formats, never 'invalid JSON'."""
    lm = _mediapipe_frames()
    want = lm[..., :2] * [640, 480]
    for path in (write_mediapipe_long(tmp_path / "long.csv", lm), write_mediapipe_long(tmp_path / "blocks.csv", lm,
                 frame_col=False), write_mediapipe_wide(tmp_path / "wide.csv", lm)):
        assert detect_format(path) == "mediapipe"
        with pytest.raises(TrackFormatError, match="--image-size"):
            read_tracks(path)
        ts = read_tracks(path, image_size=(640, 480))
        assert ts.keypoint_format == "mediapipe33" and len(ts.tracks) == 1 and len(ts.tracks[0]) == len(lm)
        np.testing.assert_allclose(ts.tracks[0].keypoints[..., :2], want, atol=0.1)  # 4-6 decimals written
    pixels = read_tracks(write_mediapipe_wide(tmp_path / "px.csv", lm, scale=(640, 480)))  # no size needed
    np.testing.assert_allclose(pixels.tracks[0].keypoints[..., :2], want, atol=1e-2)
    np.testing.assert_allclose(pixels.tracks[0].keypoints[..., 2], 0.95, atol=1e-3)
    other = tmp_path / "table.csv"
    other.write_text("name,age\nann,3\n")
    text = tmp_path / "notes.txt"
    text.write_text("this is not a keypoint file\n")
    for path in (other, text):
        with pytest.raises(TrackFormatError, match="the formats read are") as e:
            read_tracks(path)
        assert "invalid JSON" not in str(e.value)


@pytest.mark.parametrize("form", ["open", "cmu"])
def test_alphapose_openpose_style_dictionary_reads_as_coco18(tmp_path, form):
    """AlphaPose ``--format open`` / ``--format cmu`` (as its writer lays them out: one JSON
    object, image name -> ``{"version", "people": [{"pose_keypoints_2d"}]}`` or ``{"version",
    "bodies": [{"joints"}]}``, 18 COCO-18 keypoints, no ids): detected as OpenPose-style,
    frames from the image names, the people tracked."""
    skel = get_skeleton("coco18")
    frames = scene(skel, frames=20, people=3)
    key = "people" if form == "open" else "bodies"
    field = "pose_keypoints_2d" if form == "open" else "joints"
    doc = {f"{t}.jpg": {"version": "AlphaPose v0.3", key: [{field: kp.round(3).ravel().tolist()} for _, kp in dets]}
           for t, dets in enumerate(frames)}
    path = tmp_path / "alphapose-results.json"
    path.write_text(json.dumps(doc))
    assert detect_format(path) == "openpose"
    ts = read_tracks(path)
    assert ts.keypoint_format == "coco18" and len(ts.tracks) == 3
    assert sorted(int(f) for t in ts.tracks for f in t.frame_ids) == sorted(list(range(20)) * 3)
    doc["x.jpg"] = doc["0.jpg"]  # an image name without a frame number is named in the error
    path.write_text(json.dumps(doc))
    with pytest.raises(TrackFormatError, match="no frame number"):
        read_tracks(path)
