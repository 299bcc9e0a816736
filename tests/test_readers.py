"""Tests for the readers (lifting.io.readers, through lifting.track.read_tracks: read then track) and the real-world joint sets of lifting.skeletons.

Every input file is written here, following the layout documented in the reader's docstring.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifting.cli import main
from lifting.io.readers import READER_FORMATS, detect_format
from lifting.track import read_tracks
from lifting.skeletons import BODY25, CANON16, COCO18, COCO17, H36M17, HALPE26, MEDIAPIPE33, get_skeleton, remap
from lifting.io.tracks import TrackFormatError

TEACHER = Path(__file__).resolve().parents[1] / "lifting" / "assets" / "teacher.pt"

# A standing person, pixels, by joint name (names of all skeletons); others default to mid-body.
_BASE = {
    "nose": (100, 40), "left_eye": (104, 36), "right_eye": (96, 36), "left_ear": (110, 42),
    "right_ear": (90, 42), "left_shoulder": (120, 80), "right_shoulder": (80, 80), "left_elbow": (125, 120),
    "right_elbow": (75, 120), "left_wrist": (128, 155), "right_wrist": (72, 155), "left_hip": (112, 160),
    "right_hip": (88, 160), "left_knee": (113, 220), "right_knee": (87, 220), "left_ankle": (114, 280),
    "right_ankle": (86, 280), "neck": (100, 78), "mid_hip": (100, 160), "hip": (100, 160), "head": (100, 15),
    "pelvis": (100, 160), "spine": (100, 125), "thorax": (100, 80), "neck_nose": (100, 50),
    "head_top": (100, 15),
}
_H36M_ALIAS = {"r_hip": "right_hip", "r_knee": "right_knee", "r_ankle": "right_ankle", "l_hip": "left_hip",
               "l_knee": "left_knee", "l_ankle": "left_ankle", "l_shoulder": "left_shoulder",
               "l_elbow": "left_elbow", "l_wrist": "left_wrist", "r_shoulder": "right_shoulder",
               "r_elbow": "right_elbow", "r_wrist": "right_wrist"}


def _pose(skel, t: int = 0, dx: float = 0.0) -> np.ndarray:
    """(J, 2) pixel positions of ``skel``'s joints, slightly moving with frame t."""
    out = []
    for n in skel.joint_names:
        x, y = _BASE.get(_H36M_ALIAS.get(n, n), (100, 200))
        out.append((x + dx + 0.5 * t, y + 0.3 * np.sin(t)))
    return np.asarray(out, dtype=np.float64)


def _flat(skel, t, dx=0.0, conf=0.9) -> list[float]:
    xy = _pose(skel, t, dx)
    return np.concatenate([xy, np.full((len(xy), 1), conf)], 1).ravel().round(3).tolist()


# --------------------------------------------------------------------------- writers


def _coco_results(d: Path) -> Path:
    recs = [{"image_id": t, "track_id": tid, "category_id": 1, "keypoints": _flat(COCO17, t, 200 * tid),
             "score": 0.9} for tid in (1, 2) for t in range(5)]
    p = d / "coco.json"
    p.write_text(json.dumps(recs))
    return p


def _coco_annotations(d: Path) -> Path:
    images = [{"id": 500 + t, "file_name": f"clip/frame_{10 + t:06d}.jpg", "width": 640, "height": 480}
              for t in range(6)]
    anns = []
    for t in range(6):
        flat = np.asarray(_flat(COCO17, t)).reshape(17, 3)
        flat[:, 2] = 2
        flat[0] = [0, 0, 0]  # nose not labelled
        anns.append({"id": t, "image_id": 500 + t, "category_id": 1, "keypoints": flat.ravel().tolist(),
                     "num_keypoints": 16, "bbox": [70, 10, 60, 280], "iscrowd": 0})
    p = d / "ann.json"
    p.write_text(json.dumps({"images": images, "annotations": anns,
                             "categories": [{"id": 1, "name": "person", "keypoints": list(COCO17.joint_names)}]}))
    return p


def _openpose(d: Path, skel=BODY25, people_per_frame=1, ids=False, frames=range(3, 9)) -> Path:
    folder = d / f"openpose_{skel.name}"
    folder.mkdir()
    for t in frames:
        people = [{"person_id": [k if ids else -1], "pose_keypoints_2d": _flat(skel, t, 200 * k),
                   "face_keypoints_2d": [], "hand_left_keypoints_2d": []} for k in range(people_per_frame)]
        (folder / f"video_{t:012d}_keypoints.json").write_text(json.dumps({"version": 1.3, "people": people}))
    return folder


def _mmpose(d: Path, k_skel=COCO17) -> Path:
    info = []
    for t in range(1, 7):
        xy = _pose(k_skel, t)
        info.append({"frame_id": t, "instances": [{
            "keypoints": xy.round(3).tolist(), "keypoint_scores": [0.95] * len(xy),
            "bbox": [[70.0, 10.0, 130.0, 290.0]], "bbox_score": 0.99}]})
    p = d / "mmpose.json"
    p.write_text(json.dumps({"meta_info": {"dataset_name": "coco", "num_keypoints": len(k_skel.joint_names)},
                             "instance_info": info}))
    return p


def _mediapipe_json(d: Path, with_size=True) -> Path:
    w, h = 640, 480
    frames = []
    for t in range(6):
        xy = _pose(MEDIAPIPE33, t)
        lms = [{"x": x / w, "y": y / h, "z": -0.1, "visibility": 0.98, "presence": 0.99} for x, y in xy]
        frames.append({"frame_index": t, "landmarks": lms})
    frames.append({"frame_index": 6, "landmarks": None})  # no detection
    doc = {"fps": 25.0, "frames": frames}
    if with_size:
        doc.update(image_width=w, image_height=h)
    p = d / "mediapipe.json"
    p.write_text(json.dumps(doc))
    return p


def _mediapipe_npz(d: Path) -> Path:
    w, h = 640, 480
    lm = np.stack([np.concatenate([_pose(MEDIAPIPE33, t) / [w, h], np.zeros((33, 1)), np.full((33, 1), 0.9)], 1)
                   for t in range(5)])
    lm[2] = np.nan  # no detection in frame 2
    p = d / "mediapipe.npz"
    np.savez(p, landmarks=lm, image_width=w, image_height=h)
    return p


def _h36m_npy(d: Path) -> Path:
    p = d / "h36m.npy"
    np.save(p, np.stack([_pose(H36M17, t) for t in range(7)]).astype(np.float32))
    return p


def _h36m_npz(d: Path) -> Path:
    a = np.stack([np.concatenate([_pose(H36M17, t), np.full((17, 1), 0.8)], 1) for t in range(7)])
    p = d / "h36m.npz"
    np.savez(p, positions_2d=a, fps=50.0)
    return p


def _halpe(d: Path) -> Path:
    recs = [{"image_id": f"{t}.jpg", "category_id": 1, "idx": tid, "keypoints": _flat(HALPE26, t, 200 * tid, 1.7),
             "score": 2.5, "box": [70, 10, 60, 280]} for tid in (3, 4) for t in range(5)]
    p = d / "halpe.json"
    p.write_text(json.dumps(recs))
    return p


# name, writer, reader name, keypoint format, (tracks, frames per track, joints)
CASES = [
    ("coco", _coco_results, "coco", "coco17", (2, 5, 17)),
    ("coco-annotations", _coco_annotations, "coco-annotations", "coco17", (1, 6, 17)),
    ("openpose-body25", _openpose, "openpose", "body25", (1, 6, 25)),
    ("openpose-coco18", lambda d: _openpose(d, COCO18), "openpose", "coco18", (1, 6, 18)),
    ("mmpose", _mmpose, "mmpose", "coco17", (1, 6, 17)),
    ("mediapipe-json", _mediapipe_json, "mediapipe", "mediapipe33", (1, 6, 33)),
    ("mediapipe-npz", _mediapipe_npz, "mediapipe", "mediapipe33", (1, 4, 33)),
    ("h36m-npy", _h36m_npy, "h36m", "h36m17", (1, 7, 17)),
    ("h36m-npz", _h36m_npz, "h36m", "h36m17", (1, 7, 17)),
    ("halpe26", _halpe, "halpe26", "halpe26", (2, 5, 26)),
]


@pytest.mark.parametrize("name,writer,reader,kfmt,counts", CASES, ids=[c[0] for c in CASES])
def test_read_each_format(tmp_path, name, writer, reader, kfmt, counts):
    path = writer(tmp_path)
    assert detect_format(path) == reader
    for fmt in (None, reader):
        ts = read_tracks(path, fmt=fmt)
        n_tracks, n_frames, n_joints = counts
        assert ts.keypoint_format == kfmt
        assert len(ts.tracks) == n_tracks
        assert all(len(t) == n_frames and t.num_joints == n_joints for t in ts.tracks)
        for t in ts.tracks:
            assert np.isfinite(t.keypoints).all()
            assert (t.keypoints[..., 2] >= 0).all() and (t.keypoints[..., 2] <= 1).all()
        assert get_skeleton(ts.keypoint_format).num_joints == n_joints


def test_format_specific_details(tmp_path):
    ann = read_tracks(_coco_annotations(tmp_path))
    t = ann.tracks[0]
    assert t.frame_ids.tolist() == list(range(10, 16))  # from file-name digits, not image ids
    assert t.keypoints[0, 0, 2] == 0 and (t.keypoints[0, 1:, 2] == 1).all()  # v flags -> 0 / 1
    op = read_tracks(_openpose(tmp_path))
    assert op.tracks[0].frame_ids.tolist() == list(range(3, 9))
    mp = read_tracks(_mediapipe_json(tmp_path))
    np.testing.assert_allclose(mp.tracks[0].keypoints[0, :, :2], _pose(MEDIAPIPE33, 0), atol=1e-3)
    assert mp.fps == 25.0 and mp.image_size == (640, 480)
    mm = read_tracks(_mmpose(tmp_path))
    assert mm.tracks[0].frame_ids.tolist() == list(range(1, 7))
    np.testing.assert_allclose(mm.tracks[0].bbox[0], [70, 10, 60, 280])  # xyxy -> xywh
    h = read_tracks(_h36m_npz(tmp_path))
    assert h.fps == 50.0 and h.tracks[0].frame_ids.tolist() == list(range(7))
    assert read_tracks(_h36m_npz(tmp_path), fps=10).fps == 10.0
    hp = read_tracks(_halpe(tmp_path))
    assert hp.track_ids == [3, 4] and (hp.tracks[0].keypoints[..., 2] == 1).all()
    assert any("clipped" in w for w in hp.warnings)
    two = read_tracks(_openpose_ids(tmp_path))
    assert two.track_ids == [0, 1]
    npy = tmp_path / "mp.npy"
    np.save(npy, np.load(_mediapipe_npz(tmp_path))["landmarks"])
    assert read_tracks(npy, image_size=(640, 480)).image_size == (640, 480)


def _openpose_ids(tmp_path: Path) -> Path:
    sub = tmp_path / "ids"
    sub.mkdir()
    return _openpose(sub, people_per_frame=2, ids=True)


@pytest.mark.parametrize("name,writer,reader,kfmt,counts", CASES, ids=[c[0] for c in CASES])
def test_cli_lift_each_format(tmp_path, capsys, name, writer, reader, kfmt, counts):
    path = writer(tmp_path)
    out = tmp_path / "out"
    argv = ["lift", str(path), "-o", str(out), "--checkpoint", str(TEACHER), "--max-figures", "0"]
    if name == "coco-annotations":
        argv += ["--format", reader]
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["keypoint_format"] == kfmt
    npz = sorted(out.glob("track_*.npz"))
    assert len(npz) == counts[0]
    with np.load(npz[0]) as z:
        assert z["joints_3d"].shape[1:] == (16, 3) and np.isfinite(z["joints_3d"]).all()
        assert len(z["frame_ids"]) == counts[1]


# --------------------------------------------------------------------------- errors


def _write(tmp_path: Path, name: str, content) -> Path:
    p = tmp_path / name
    p.write_text(content if isinstance(content, str) else json.dumps(content))
    return p


def _op_frame(tmp_path: Path, values: int, people: int = 1) -> Path:
    folder = tmp_path / "op"
    folder.mkdir()
    for t in range(2):
        (folder / f"x_{t}_keypoints.json").write_text(json.dumps(
            {"people": [{"person_id": [-1], "pose_keypoints_2d": [1.0] * values} for _ in range(people)]}))
    return folder


@pytest.mark.parametrize("make,fragments", [
    (lambda d: _op_frame(d, 60), ("60 values", "75", "54")),
    (lambda d: _op_frame(d, 75, people=2), ("BODY_25 from BODY_25B", "--format body25")),
    (lambda d: (d / "empty").mkdir() or d / "empty", ("no OpenPose per-frame .json", "'people'")),
    (lambda d: _mediapipe_json(d, with_size=False), ("image_width", "normalised")),
    (lambda d: _write(d, "mp.json", {"image_width": 10, "image_height": 10, "frames": [{"landmarks": [[0.1, 0.2]] * 5}]}),
     ("33 landmarks", "5")),
    (lambda d: (np.save(d / "x.npy", np.zeros((4, 16, 2))), d / "x.npy")[1], ("(4, 16, 2)", "(T, 17, 2|3)")),
    (lambda d: (np.save(d / "x.npy", np.zeros((4, 33, 3))), d / "x.npy")[1], ("image_width",)),
    (lambda d: (np.save(d / "o.npy", np.array([{"S1": 1}], dtype=object)), d / "o.npy")[1], ("Python objects",)),
    (lambda d: _write(d, "bad.npz", "not a zip"), ("not a readable",)),
    (lambda d: _write(d, "mm.json", {"instance_info": [
        {"frame_id": 0, "instances": [{"keypoints": [[1, 2]] * 17}]},
        {"frame_id": 1, "instances": [{"keypoints": [[1, 2]] * 16}]}]}), ("16 joints", "17")),
    (lambda d: _write(d, "mm.json", {"instance_info": [
        {"frame_id": 0, "instances": [{"keypoints": [[1, 2]] * 17}, {"keypoints": [[1, 2]] * 17}]}]}),
     ("more than one person", "track_id", "tracker='none'")),
    (lambda d: _write(d, "mm.json", {"instance_info": [{"frame_id": -1, "instances": []}]}), ("frame_id",)),
    (lambda d: _write(d, "ann.json", {"images": [{"id": 1, "file_name": "1.jpg"}], "categories": [],
                                      "annotations": [{"image_id": 7, "keypoints": [0] * 51}]}),
     ("image_id 7", "'images'")),
    (lambda d: _write(d, "what.json", {"foo": 1}), ("unrecognised", "foo", "OpenPose")),
    (lambda d: _write(d, "h.json", [{"image_id": 0, "keypoints": [1.0] * 78}, {"image_id": 0, "keypoints": [1.0] * 78}]),
     ("more than one person",)),
    (lambda d: _write(d, "c.json", [{"image_id": 0, "keypoints": [1.0] * 18}]), ("6 joints",)),
])
def test_malformed_inputs(tmp_path, make, fragments):
    path = make(tmp_path)
    with pytest.raises(TrackFormatError) as ei:
        read_tracks(path, tracker="none")  # untracked multi-person input is an error only without the tracker
    for f in fragments:
        assert f in str(ei.value), str(ei.value)


def test_format_argument_checks(tmp_path):
    coco = _coco_results(tmp_path)
    with pytest.raises(ValueError, match="xyz"):
        read_tracks(coco, fmt="xyz")
    with pytest.raises(TrackFormatError, match="body25.*coco18|coco18"):
        read_tracks(_openpose(tmp_path), fmt="coco18")
    with pytest.raises(TrackFormatError, match="'halpe26' has 26 joints"):
        read_tracks(coco, fmt="halpe26")
    with pytest.raises(TrackFormatError, match="not found"):
        read_tracks(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="fps"):
        read_tracks(coco, fps=-1)


def test_cli_lift_reader_error(tmp_path, capsys):
    folder = _op_frame(tmp_path, 75, people=2)
    out = tmp_path / "out"
    rc = main(["lift", str(folder), "-o", str(out), "--checkpoint", str(TEACHER), "--max-figures", "0"])
    err = capsys.readouterr().err
    assert rc == 2 and "--format body25" in err and "Traceback" not in err


# --------------------------------------------------------------------------- skeleton remaps


def _mask(skel, missing=()):
    valid = np.ones(skel.num_joints, bool)
    for n in missing:
        valid[skel.index(n)] = False
    _, m = remap(np.zeros((skel.num_joints, 2)), skel, CANON16, valid=valid)
    return dict(zip(CANON16.joint_names, m.tolist()))


def test_new_skeletons_remap_masks():
    for skel in (BODY25, COCO18, MEDIAPIPE33, HALPE26):
        assert all(_mask(skel).values()), skel.name
        assert get_skeleton(skel.name) is skel
    # BODY_25 MidHip is the pelvis: missing hips do not hide it, a missing MidHip does.
    m = _mask(BODY25, ["left_hip", "right_hip"])
    assert m["pelvis"] and not m["l_hip"] and not m["r_hip"]
    assert not _mask(BODY25, ["mid_hip"])["pelvis"]
    # OpenPose / Halpe Neck is the thorax
    for skel in (BODY25, COCO18, HALPE26):
        m = _mask(skel, ["left_shoulder"])
        assert m["thorax"] and m["spine"] and not m["l_shoulder"]
        assert not _mask(skel, ["neck"])["thorax"]
    # COCO-18 has no mid-hip: pelvis needs both hips, as COCO-17
    assert not _mask(COCO18, ["left_hip"])["pelvis"]
    assert not _mask(MEDIAPIPE33, ["left_hip"])["pelvis"]
    assert not _mask(MEDIAPIPE33, ["left_shoulder"])["thorax"]
    m = _mask(HALPE26, ["left_hip", "right_hip"])
    assert m["pelvis"] and m["spine"]
    # head: ear-based COCO definition everywhere (Halpe's head keypoint is the head top)
    assert _mask(HALPE26, ["head"])["head"] and not _mask(HALPE26, ["left_ear"])["head"]
    # values: BODY_25 pelvis equals its MidHip, COCO-18 spine = 0.62 pelvis + 0.38 neck
    x = np.random.default_rng(0).normal(size=(BODY25.num_joints, 2))
    out, _ = remap(x, BODY25, CANON16)
    np.testing.assert_allclose(out[CANON16.index("pelvis")], x[BODY25.index("mid_hip")])
    y = np.random.default_rng(1).normal(size=(COCO18.num_joints, 2))
    out, _ = remap(y, COCO18, CANON16)
    pel = (y[COCO18.index("left_hip")] + y[COCO18.index("right_hip")]) / 2
    np.testing.assert_allclose(out[CANON16.index("spine")], 0.62 * pel + 0.38 * y[COCO18.index("neck")])


# --------------------------------------------------------------------------- property-based

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=6),
    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=8), kids, max_size=5),
    max_leaves=20,
)
_PROPS = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


def _check_outcome(path, fmt=None, **kw):
    try:
        ts = read_tracks(path, fmt=fmt, **kw)
    except TrackFormatError:
        return
    assert ts.tracks
    get_skeleton(ts.keypoint_format)
    for t in ts.tracks:
        assert np.isfinite(t.keypoints).all()
        assert (t.keypoints[..., 2] >= 0).all() and (t.keypoints[..., 2] <= 1).all()


@_PROPS
@given(doc=_json, fmt=st.sampled_from([None, *READER_FORMATS]))
def test_random_json_never_crashes(tmp_path_factory, doc, fmt):
    p = tmp_path_factory.mktemp("rj") / "x.json"
    p.write_text(json.dumps(doc))
    _check_outcome(p, fmt)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


def _set(obj, path, value):
    if not path:
        return value
    parent = obj
    for k in path[:-1]:
        parent = parent[k]
    parent[path[-1]] = value
    return obj


_JSON_WRITERS = [_coco_results, _coco_annotations, _mmpose, _mediapipe_json, _halpe]


@_PROPS
@given(which=st.integers(0, len(_JSON_WRITERS) - 1), pick=st.integers(0, 10**6), value=_json,
       extreme=st.sampled_from([None, float("nan"), float("inf"), 1e300, -1e39, 5e38, 7]))
def test_corrupted_json_never_crashes(tmp_path_factory, which, pick, value, extreme):
    d = tmp_path_factory.mktemp("cj")
    doc = json.loads(_JSON_WRITERS[which](d).read_text())
    paths = list(_paths(doc))
    doc = _set(doc, paths[pick % len(paths)], value if extreme is None else extreme)
    p = d / "corrupt.json"
    p.write_text(json.dumps(doc))
    _check_outcome(p)


@_PROPS
@given(t=st.integers(0, 4), j=st.sampled_from([16, 17, 33]), c=st.integers(1, 6),
       fill=st.sampled_from([0.0, np.nan, np.inf, 1e38, 3e38, -5.0]), seed=st.integers(0, 2**16),
       npz=st.booleans(), key=st.sampled_from(["keypoints_2d", "positions_2d", "landmarks", "other"]))
def test_random_arrays_never_crash(tmp_path_factory, t, j, c, fill, seed, npz, key):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(t, j, c)) * 100
    a[rng.random(a.shape) < 0.3] = fill
    d = tmp_path_factory.mktemp("ra")
    if npz:
        p = d / "a.npz"
        np.savez(p, **{key: a, "image_width": 640, "image_height": 480})
    else:
        p = d / "a.npy"
        np.save(p, a)
    _check_outcome(p)
    _check_outcome(p, image_size=(640, 480))


# --------------------------------------------------------------------------- large (streamed) COCO results


def _read_both(path: Path, monkeypatch) -> tuple:
    """read_tracks of ``path`` parsed whole (json) and incrementally (ijson, STREAM_BYTES = 0)."""
    import lifting.io.records as tracks_mod

    pytest.importorskip("ijson")
    whole = read_tracks(path)
    with monkeypatch.context() as m:
        m.setattr(tracks_mod, "STREAM_BYTES", 0)
        return whole, read_tracks(path)


def _errors_both(path: Path, monkeypatch, **kwargs) -> list[str]:
    """Error messages of reading ``path`` parsed whole and incrementally."""
    import lifting.io.records as tracks_mod

    pytest.importorskip("ijson")
    out = []
    for limit in (tracks_mod.STREAM_BYTES, 0):
        with monkeypatch.context() as m, pytest.raises(TrackFormatError) as info:
            m.setattr(tracks_mod, "STREAM_BYTES", limit)
            read_tracks(path, **kwargs)
        out.append(str(info.value).split(": ", 1)[1])
    return out


def test_streamed_records_build_the_same_tracks(tmp_path, monkeypatch):
    """Interleaved, out-of-order records of 3 tracks (40 frames each: the per-track buffers
    grow past their first capacity) give the same tracks parsed whole or streamed, equal to
    the records sorted by frame and cleaned; bbox / score rows missing in a record are NaN."""
    rng = np.random.default_rng(3)
    ids, n = (7, -2, 30), 40
    kp = rng.uniform(0, 600, (3, n, 17, 3))
    kp[..., 2] = rng.uniform(0, 1, (3, n, 17))
    kp[0, 5, 3, 0] = 1e39  # overflows float32 -> masked joint
    kp[1, 9, 4, 2], kp[2, 0, 0, 2] = 1.5, -0.25  # clipped confidences
    recs = []
    for k, tid in enumerate(ids):
        for t in range(n):
            rec = {"image_id": f"f_{t:04d}.jpg" if t % 7 == 0 else t, "track_id": tid,
                   "keypoints": kp[k, t].ravel().tolist()}
            if tid == 7 and t % 3 == 1:
                rec["bbox"] = [t, 2.0, 50.0, 90.5]
            if tid == 30 and t % 2 == 0:
                rec["score"] = t / n
            recs.append(rec)
    recs = [recs[i] for i in rng.permutation(len(recs))]
    recs.insert(17, {"image_id": 3, "category_id": 2, "keypoints": [1.0, 2.0, 3.0]})
    p = tmp_path / "interleaved.json"
    p.write_text(json.dumps({"meta": {"fps": 30.0, "width": 640, "height": 480}, "annotations": recs}))

    whole, streamed = _read_both(p, monkeypatch)
    with np.errstate(over="ignore"):
        want_kp = kp.astype(np.float32)
    want_kp[0, 5, 3] = 0.0
    want_kp[..., 2] = want_kp[..., 2].clip(0, 1)
    for ts in (whole, streamed):
        assert ts.track_ids == [-2, 7, 30] and ts.fps == 30.0 and ts.image_size == (640, 480)
        assert ts.warnings == [
            "skipped 1 non-person record(s) (category_id != 1; 2: 1)",
            "masked 1 joint(s) with non-finite x/y or |x|, |y| > MAX_ABS_PX (set x = y = 0, confidence 0)",
            "clipped 2 confidence value(s) outside [0, 1]",
            f"{n - 13} record(s) without bbox in tracks that have boxes (rows set to NaN)",
            f"{n // 2} record(s) without score in tracks that have scores (set to NaN)",
        ]
        by_id = {t.track_id: t for t in ts.tracks}
        for k, tid in enumerate(ids):
            t = by_id[tid]
            assert t.frame_ids.dtype == np.int64 and t.keypoints.dtype == np.float32
            np.testing.assert_array_equal(t.frame_ids, np.arange(n))
            np.testing.assert_array_equal(t.keypoints, want_kp[k])
        box_rows = np.arange(n) % 3 == 1
        np.testing.assert_array_equal(by_id[7].bbox[box_rows, 0], np.arange(n)[box_rows])
        assert np.isnan(by_id[7].bbox[~box_rows]).all() and by_id[7].score is None
        np.testing.assert_allclose(by_id[30].score[::2], np.arange(0, n, 2) / n, rtol=1e-6)
        assert np.isnan(by_id[30].score[1::2]).all() and by_id[30].bbox is None
        assert by_id[-2].bbox is None and by_id[-2].score is None
    for a, b in zip(whole.tracks, streamed.tracks):
        for name in ("frame_ids", "keypoints", "bbox", "score"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_streamed_records_report_the_first_conflict(tmp_path, monkeypatch):
    """Repeated frames and mixed track ids are reported for the earliest offending record in
    file order (positions count skipped non-person records), parsed whole or streamed."""
    kp = _flat(COCO17, 0)
    other = {"image_id": 0, "category_id": 3, "keypoints": kp}

    def write(name, rows):
        recs = [other] + [{"image_id": f, "keypoints": kp} | ({} if tid is None else {"track_id": tid})
                          for f, tid in rows]
        p = tmp_path / name
        p.write_text(json.dumps(recs))
        return p

    # track 5 repeats frame 3 at records 4, 9, 10; track 1 repeats frame 0 at records 2, 12
    rows = [(0, 5), (0, 1), (1, 5), (3, 5), (2, 1), (4, 1), (5, 5), (6, 5), (3, 5), (3, 5), (7, 1), (0, 1)]
    assert _errors_both(write("dup.json", rows), monkeypatch) == [
        "track 5 has two detections in frame 3 (record 4 and record 9)"] * 2
    no_ids = [(0, None), (2, None), (1, None), (4, None), (7, None), (4, None), (2, None)]
    assert _errors_both(write("noid.json", no_ids), monkeypatch, tracker="none") == [
        "frame 4 has more than one person (record 4 and record 6) and no track ids, and tracker='none'; add "
        "'track_id' (AlphaPose 'idx') to the records, or use tracker='auto' / 'oks' to track them"] * 2
    mixed = [(0, None), (1, 4), (1, None), (2, 3)]
    assert _errors_both(write("mixed.json", mixed), monkeypatch) == [
        "record 1 has no track id but record 2 has one; give every person an id or none (or pass "
        "tracker='oks' to ignore the ids and track)"] * 2


def test_streamed_reader_memory_follows_the_tracks(tmp_path, monkeypatch):
    """Streaming 12,000 COCO-17 records keeps no Python object per record: the traced peak
    stays within a few times the returned arrays (collecting the records first needed ~7x)
    plus what the fast reader holds at a time, whatever the file's length: one scan block and
    one block of parsed records (:mod:`lifting.io.json_scan`; ~10 kB traced per parsed record)."""
    import tracemalloc

    import lifting.io.records as tracks_mod
    from lifting.io.json_scan import RECORD_BLOCK, SCAN_BLOCK

    pytest.importorskip("ijson")
    rng = np.random.default_rng(0)
    kp = rng.uniform(0, 500, (3000, 4, 51)).round(2)
    p = tmp_path / "big.json"
    p.write_text(json.dumps([{"image_id": t, "track_id": k, "keypoints": kp[t, k].tolist()}
                             for t in range(3000) for k in range(4)]))
    del kp
    monkeypatch.setattr(tracks_mod, "STREAM_BYTES", 0)
    tracemalloc.start()
    try:
        ts = read_tracks(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    result = sum(t.keypoints.nbytes + t.frame_ids.nbytes for t in ts.tracks)
    assert ts.num_person_frames == 12000 and result == 12000 * (17 * 3 * 4 + 8)
    held = 12 * SCAN_BLOCK + 10_000 * RECORD_BLOCK
    assert RECORD_BLOCK < 12000 / 4 and peak < 3.5 * result + held, \
        f"traced peak {peak / 1e6:.1f} MB for {result / 1e6:.1f} MB of tracks"


def test_coco_annotation_stills_every_person_one_track_and_repeated_image_entries(tmp_path):
    """tracker='stills': unrelated photos, every annotated person its own one-frame track; an
    image listed twice with the same entry is one image, two different entries with one id an error."""
    kp = np.tile(np.array([100.0, 200.0, 2.0]), (17, 1))
    kp[:, 0] += np.arange(17) * 3
    anns = [{"id": i, "image_id": i // 2, "category_id": 1, "keypoints": (kp + [10 * i, 0, 0]).ravel().tolist()}
            for i in range(6)]
    images = [{"id": j, "file_name": f"photo_{j}.jpg"} for j in range(3)]
    path = tmp_path / "stills.json"
    path.write_text(json.dumps({"images": images + images[:1], "annotations": anns, "categories": [{"id": 1}]}))
    ts = read_tracks(path, tracker="stills")
    assert len(ts.tracks) == 6 and all(len(t) == 1 for t in ts.tracks)
    assert ts.tracking["method"] == "stills"
    path.write_text(json.dumps({"images": images + [{"id": 0, "file_name": "other.jpg"}], "annotations": anns}))
    with pytest.raises(ValueError, match="duplicate image id 0"):
        read_tracks(path, tracker="stills")
