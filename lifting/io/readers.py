"""Read 2D keypoint tracks from the output formats of common pose estimators.

:func:`read_tracks` is the single entry point used by ``posenet3d lift``: it detects the
format of a file or folder (or takes it from ``fmt``) and returns a
:class:`lifting.io.tracks.TrackSet` whose ``keypoint_format`` names the joint set
(a :func:`lifting.skeletons.get_skeleton` name), so :func:`lifting.lift.lift_track` can remap
it to the canonical 16 joints.

Formats (``fmt`` names; aliases in parentheses)
-----------------------------------------------
=====================  =================================================  ===============
``fmt``                input                                              joint set
=====================  =================================================  ===============
``coco`` (coco17)      COCO keypoint *results* JSON with track ids        coco17
                       (delegates to :func:`lifting.io.tracks.read_coco_tracks`)
``coco-annotations``   COCO *annotation* file (images/annotations/...)    coco17
``openpose``           folder of OpenPose ``*_keypoints.json`` files      body25 / coco18
(body25, coco18)       (or one such file)
``mmpose``             MMPose demo ``--save-predictions`` JSON            coco17 / halpe26
``mediapipe``          MediaPipe Pose 33 landmarks, JSON / NPY / NPZ      mediapipe33
``h36m`` (h36m17)      Human3.6M-order arrays ``(T, 17, 2|3)`` npy / npz  h36m17
``halpe26``            AlphaPose results with 26 (Halpe) keypoints        halpe26
(alphapose, halpe)
=====================  =================================================  ===============

Every reader applies the cleaning policy of :mod:`lifting.io.tracks`: joints with non-finite
x/y (including values that overflow float32) become ``x = y = 0``, confidence 0; non-finite
confidences become 0; confidences are clipped to [0, 1]; each applied count is reported in
``TrackSet.warnings``.  Every content problem raises :class:`TrackFormatError` (a
``ValueError``) saying what was found and what was expected; invalid *arguments* (``fmt``,
``fps``, ``image_size``) raise ``ValueError``.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any

import numpy as np

from . import tracks as tracks_mod
from .tracks import (
    Track,
    clean_keypoints,
    TrackFormatError,
    TrackSet,
    _describe,
    _load_json,
    _numbers,
    _parse_image_id,
    _parse_track_id,
    _positive_finite,
    read_coco_tracks,
)

__all__ = ["READER_FORMATS", "detect_format", "read_tracks"]

#: Reader names accepted by :func:`read_tracks` (``fmt``).
READER_FORMATS = ("coco", "coco-annotations", "openpose", "mmpose", "mediapipe", "h36m", "halpe26")

# alias -> (reader, required keypoint format or None)
_FMT_ALIASES: dict[str, tuple[str, str | None]] = {
    "coco": ("coco", None),
    "coco17": ("coco", "coco17"),
    "coco-results": ("coco", None),
    "coco-annotations": ("coco-annotations", None),
    "openpose": ("openpose", None),
    "body25": ("openpose", "body25"),
    "coco18": ("openpose", "coco18"),
    "mmpose": ("mmpose", None),
    "mediapipe": ("mediapipe", "mediapipe33"),
    "mediapipe33": ("mediapipe", "mediapipe33"),
    "h36m": ("h36m", "h36m17"),
    "h36m17": ("h36m", "h36m17"),
    "halpe26": ("halpe26", "halpe26"),
    "halpe": ("halpe26", "halpe26"),
    "alphapose": ("halpe26", "halpe26"),
}

# joints per person -> joint set, for record-style files
_JOINTS_TO_FORMAT = {17: "coco17", 26: "halpe26"}
_OPENPOSE_LENGTHS = {75: "body25", 54: "coco18"}
_DIGITS = re.compile(r"\d+")
_MAX_ABS = 1e300


def _parse_fmt(fmt: str | None) -> tuple[str | None, str | None]:
    if fmt is None:
        return None, None
    if not isinstance(fmt, str):
        raise ValueError(f"format must be a string, got {_describe(fmt)}")
    key = fmt.strip().lower().replace("_", "-")
    if key not in _FMT_ALIASES:
        raise ValueError(f"unknown input format {fmt!r}; known: {', '.join(sorted(_FMT_ALIASES))}")
    return _FMT_ALIASES[key]


# --------------------------------------------------------------------------- shared builder


def _build(
    entries: list[dict],
    *,
    source: str,
    keypoint_format: str,
    fps: float | None,
    image_size: tuple[int, int] | None,
    warnings: list[str],
    meta: dict,
    no_id_hint: str,
) -> TrackSet:
    """Group per-detection entries into tracks.

    Each entry: ``frame`` int >= 0, ``tid`` int or None, ``kp`` ``(K, 3)``, ``bbox``
    ``[x, y, w, h]`` or None, ``score`` float or None, ``where`` (for messages).
    """
    if not entries:
        raise TrackFormatError(f"{source}: no person detections found")
    with_id = [e["tid"] is not None for e in entries]
    if not any(with_id):
        seen: dict[int, dict] = {}
        for e in entries:
            if e["frame"] in seen:
                raise TrackFormatError(
                    f"{source}: frame {e['frame']} has more than one person ({seen[e['frame']]['where']} and "
                    f"{e['where']}) and no track ids; {no_id_hint}"
                )
            seen[e["frame"]] = e
        tids = [0] * len(entries)
    elif not all(with_id):
        a = entries[with_id.index(False)]["where"]
        b = entries[with_id.index(True)]["where"]
        raise TrackFormatError(f"{source}: {a} has no track id but {b} has one; give every person an id or none")
    else:
        tids = [e["tid"] for e in entries]
    owner: dict[tuple[int, int], str] = {}
    for tid, e in zip(tids, entries):
        key = (tid, e["frame"])
        if key in owner:
            raise TrackFormatError(f"{source}: track {tid} has two detections in frame {e['frame']} "
                                   f"({owner[key]} and {e['where']})")
        owner[key] = e["where"]

    kp = clean_keypoints(np.stack([np.asarray(e["kp"], dtype=np.float64) for e in entries]), warnings)
    frames = np.asarray([e["frame"] for e in entries], dtype=np.int64)
    tid_arr = np.asarray(tids, dtype=np.int64)
    order = np.lexsort((frames, tid_arr))
    starts = np.flatnonzero(np.r_[True, np.diff(tid_arr[order]) != 0])
    ends = np.r_[starts[1:], len(order)]
    tracks = []
    for s, e in zip(starts, ends):
        rows = order[s:e]
        bbox = score = None
        if any(entries[r]["bbox"] is not None for r in rows):
            bbox = np.full((len(rows), 4), np.nan, np.float32)
            for j, r in enumerate(rows):
                if entries[r]["bbox"] is not None:
                    with np.errstate(over="ignore"):
                        bbox[j] = np.asarray(entries[r]["bbox"], dtype=np.float64)
        if any(entries[r]["score"] is not None for r in rows):
            score = np.full(len(rows), np.nan, np.float32)
            for j, r in enumerate(rows):
                if entries[r]["score"] is not None:
                    with np.errstate(over="ignore"):
                        score[j] = float(entries[r]["score"])
        tracks.append(Track(int(tid_arr[rows[0]]), frames[rows], kp[rows], bbox, score))
    return TrackSet(tracks=tracks, fps=fps, keypoint_format=keypoint_format, image_size=image_size,
                    source=source, warnings=warnings, meta=meta)


def _check_numbers(value: Any, what: str, length: int | None = None) -> list:
    """``value`` must be a list of finite-or-NaN JSON numbers (optionally of ``length``)."""
    if not isinstance(value, list):
        raise TrackFormatError(f"{what} must be a list of numbers, got {_describe(value)}")
    for pos, v in enumerate(value):
        if type(v) is not float and (type(v) is not int or abs(v) > _MAX_ABS):
            raise TrackFormatError(f"{what}[{pos}] is not a usable number: {_describe(v)}")
    if length is not None and len(value) != length:
        raise TrackFormatError(f"{what} has {len(value)} values, expected {length}")
    return value


def _frame_index(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) and not (
        isinstance(value, float) and math.isfinite(value) and value.is_integer()
    ):
        raise TrackFormatError(f"{what} must be a non-negative integer frame index, got {_describe(value)}")
    value = int(value)
    if value < 0 or value > np.iinfo(np.int64).max:
        raise TrackFormatError(f"{what} {value} is out of range for a frame index")
    return value


def _digits_frame(name: str, what: str) -> int:
    runs = _DIGITS.findall(name)
    if not runs:
        raise TrackFormatError(f"{what}: file name {name!r} has no digits; expected a frame number in it")
    return int(runs[-1])


def _check_fps(fps: Any) -> float | None:
    if fps is None:
        return None
    if not _positive_finite(fps):
        raise ValueError(f"fps must be a finite number > 0, got {_describe(fps)}")
    return float(fps)


def _file_fps(value: Any, source: str, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        if value.size != 1 or not np.issubdtype(value.dtype, np.number):
            raise TrackFormatError(f"{source}: {key} must be one number > 0, got an array of shape {value.shape}")
        value = value.item()
    if not _positive_finite(value):
        raise TrackFormatError(f"{source}: {key} must be a finite number > 0, got {_describe(value)}")
    return float(value)


def _check_size(image_size: Any) -> tuple[int, int] | None:
    if image_size is None:
        return None
    try:
        w, h = image_size
    except (TypeError, ValueError):
        raise ValueError(f"image_size must be (width, height) in pixels, got {_describe(image_size)}") from None
    if not (_positive_finite(w) and _positive_finite(h)):
        raise ValueError(f"image_size must be two numbers > 0 (pixels), got {_describe(image_size)}")
    return int(w), int(h)


# --------------------------------------------------------------------------- COCO-style records


def _read_records(records: list, source: str, *, flags: bool, frame_of: dict | None, want: str | None,
                  fps: float | None, meta: dict, warnings: list[str]) -> TrackSet:
    """COCO-style person records (results or annotations) with any supported joint count.

    ``flags``: the third keypoint value is a COCO visibility flag (0 = not labelled ->
    confidence 0; 1, 2 -> confidence 1) instead of a confidence.  ``frame_of``: maps
    ``image_id`` to a frame index (COCO annotation files); else image_id is the frame.
    """
    entries: list[dict] = []
    n_values = None
    skipped = 0
    for i, rec in enumerate(records):
        where = f"record {i}"
        if not isinstance(rec, dict):
            raise TrackFormatError(f"{source}: {where} is not a JSON object (got {type(rec).__name__})")
        cat = rec.get("category_id", 1)
        if cat is not None and (isinstance(cat, bool) or cat != 1):
            skipped += 1
            continue
        for key in ("image_id", "keypoints"):
            if key not in rec:
                raise TrackFormatError(f"{source}: {where} has no {key!r}")
        if frame_of is not None:
            img = rec["image_id"]
            if isinstance(img, list) or isinstance(img, dict) or img not in frame_of:
                raise TrackFormatError(f"{source}: {where}: image_id {_describe(img)} is not in 'images'")
            frame = frame_of[img]
        else:
            frame = _parse_image_id(rec["image_id"], source, i)
        tid = _parse_track_id(rec, source, i)
        kp = _numbers(rec["keypoints"], "keypoints", source, i)
        if len(kp) == 0 or len(kp) % 3:
            raise TrackFormatError(f"{source}: {where}: keypoints has {len(kp)} values, expected a non-zero "
                                   "multiple of 3 (x, y, confidence per joint)")
        if n_values is None:
            n_values = len(kp)
        elif len(kp) != n_values:
            raise TrackFormatError(f"{source}: {where}: keypoints has {len(kp)} values but earlier records have "
                                   f"{n_values}; all records must use the same joint set")
        arr = np.asarray(kp, dtype=np.float64).reshape(-1, 3)
        if flags:
            arr[:, 2] = np.where(arr[:, 2] > 0, 1.0, 0.0)
        box = rec.get("bbox", rec.get("box"))
        if box is not None:
            box = _check_numbers(box, f"{source}: {where}: bbox", 4)
        score = rec.get("score")
        if score is not None and (type(score) not in (int, float) or abs(score) > _MAX_ABS):
            raise TrackFormatError(f"{source}: {where}: score is not a usable number: {_describe(score)}")
        entries.append(dict(frame=frame, tid=tid, kp=arr, bbox=box, score=score, where=where))
    if skipped:
        warnings.append(f"skipped {skipped} non-person record(s) (category_id != 1)")
    if not entries:
        raise TrackFormatError(f"{source}: no person records (category_id 1) among {len(records)} record(s)")
    k = n_values // 3
    fmt = _JOINTS_TO_FORMAT.get(k)
    if want is not None and fmt != want:
        raise TrackFormatError(f"{source}: records have {k} joints per person; expected {_joints(want)} ({want})")
    if fmt is None:
        raise TrackFormatError(f"{source}: records have {k} joints per person; expected 17 (coco17) or 26 (halpe26)")
    return _build(entries, source=source, keypoint_format=fmt, fps=fps, image_size=None, warnings=warnings,
                  meta=meta, no_id_hint="add 'track_id' (or AlphaPose 'idx') to the records (run a tracker)")


def _joints(fmt: str) -> int:
    from ..skeletons import get_skeleton

    return get_skeleton(fmt).num_joints


def _read_coco_annotations(data: Any, source: str, fps: float | None) -> TrackSet:
    """COCO *annotation* file: ``{"images": [...], "annotations": [...], "categories": [...]}``.

    Layout per https://cocodataset.org/#format-data ("Object Keypoint Detection"):
    ``images[i] = {"id", "file_name", ...}``, ``annotations[j] = {"image_id", "keypoints":
    [x, y, v] * K, "category_id", "bbox", "track_id"?}`` with visibility flags v (0 not
    labelled, 1 labelled but occluded, 2 visible), mapped to confidence 0 / 1 / 1.  Frame
    order: the digits of each image's ``file_name`` (``"000123.jpg"`` -> 123) when every
    image has a distinct number there, else the rank of the image ``id``.
    """
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations"), list):
        raise TrackFormatError(f"{source}: expected a COCO annotation object with 'images' and 'annotations' lists")
    ids, names = [], []
    for i, img in enumerate(data["images"]):
        if not isinstance(img, dict) or "id" not in img:
            raise TrackFormatError(f"{source}: images[{i}] is not an object with an 'id'")
        iid = img["id"]
        if not (isinstance(iid, (int, str)) and not isinstance(iid, bool)):
            raise TrackFormatError(f"{source}: images[{i}].id must be an int or string, got {_describe(iid)}")
        ids.append(iid)
        name = img.get("file_name")
        runs = _DIGITS.findall(os.path.basename(str(name))) if isinstance(name, str) else []
        names.append(int(runs[-1]) if runs else None)
    if len(set(ids)) != len(ids):
        raise TrackFormatError(f"{source}: duplicate image ids in 'images'")
    if ids and None not in names and len(set(names)) == len(names) and max(names) <= np.iinfo(np.int64).max:
        frame_of = dict(zip(ids, names))
    else:
        try:
            ranked = sorted(ids)
        except TypeError:
            raise TrackFormatError(f"{source}: image ids mix ints and strings and file names give no frame "
                                   "numbers; cannot order the frames") from None
        frame_of = {iid: r for r, iid in enumerate(ranked)}
    meta = {"input_format": "coco-annotations"}
    return _read_records(data["annotations"], source, flags=True, frame_of=frame_of, want=None, fps=fps,
                         meta=meta, warnings=[])


# --------------------------------------------------------------------------- OpenPose


def _read_openpose(path: str, want: str | None, fps: float | None) -> TrackSet:
    """OpenPose JSON output (``--write_json``): one ``<name>_<frame>_keypoints.json`` per frame.

    Layout per OpenPose ``doc/02_output.md`` ("JSON-UI Output Format"): ``{"version": ...,
    "people": [{"person_id": [-1], "pose_keypoints_2d": [x, y, c] * K, ...}]}`` with K = 25
    (BODY_25, 75 values) or 18 (COCO-18, 54 values).  The frame index is the last digit run
    of the file name before ``_keypoints``.  OpenPose has no track ids: a person id is taken
    from ``person_id`` / ``person_idx`` (OpenPose's experimental ``--tracking`` output; -1
    means none).  Without ids every frame may hold at most one person.  ``path`` is the
    folder, or one ``*_keypoints.json`` file.
    """
    if os.path.isdir(path):
        files = sorted(f for f in os.listdir(path) if f.endswith("_keypoints.json"))
        if not files:
            n_json = sum(f.endswith(".json") for f in os.listdir(path))
            raise TrackFormatError(f"{path}: folder has no OpenPose '*_keypoints.json' files "
                                   f"({n_json} other .json file(s)); expected one file per frame")
        paths = [os.path.join(path, f) for f in files]
    else:
        paths = [path]
    entries: list[dict] = []
    warnings: list[str] = []
    frames_seen: dict[int, str] = {}
    n_values = None
    empty = 0
    for p in paths:
        name = os.path.basename(p)
        stem = name[: -len("_keypoints.json")] if name.endswith("_keypoints.json") else os.path.splitext(name)[0]
        frame = _digits_frame(stem, p)
        if frame in frames_seen:
            raise TrackFormatError(f"{p}: frame {frame} again (also from {frames_seen[frame]})")
        frames_seen[frame] = name
        data = _load_json(p)
        if not isinstance(data, dict) or not isinstance(data.get("people"), list):
            raise TrackFormatError(f"{p}: expected an OpenPose object with a 'people' list, got "
                                   f"{type(data).__name__}{' with keys ' + str(sorted(map(str, data))[:6]) if isinstance(data, dict) else ''}")
        for k, person in enumerate(data["people"]):
            where = f"{name} people[{k}]"
            if not isinstance(person, dict):
                raise TrackFormatError(f"{p}: people[{k}] is not an object")
            kp = person.get("pose_keypoints_2d")
            if kp is None or kp == []:
                empty += 1
                continue
            kp = _check_numbers(kp, f"{p}: people[{k}].pose_keypoints_2d")
            if len(kp) not in _OPENPOSE_LENGTHS:
                raise TrackFormatError(f"{p}: people[{k}].pose_keypoints_2d has {len(kp)} values; expected 75 "
                                       "(BODY_25) or 54 (COCO-18)")
            if n_values is None:
                n_values = len(kp)
            elif len(kp) != n_values:
                raise TrackFormatError(f"{p}: people[{k}] has {len(kp)} values but earlier people have {n_values}; "
                                       "mixed BODY_25 / COCO-18 output")
            tid = None
            for key in ("person_idx", "person_id"):
                raw = person.get(key)
                if isinstance(raw, list) and len(raw) == 1:
                    raw = raw[0]
                if raw is None:
                    continue
                if isinstance(raw, bool) or not isinstance(raw, int) or abs(raw) > np.iinfo(np.int64).max:
                    raise TrackFormatError(f"{p}: people[{k}].{key} must be an integer id, got {_describe(raw)}")
                if raw >= 0:
                    tid = raw
                    break
            arr = np.asarray(kp, dtype=np.float64).reshape(-1, 3)
            entries.append(dict(frame=frame, tid=tid, kp=arr, bbox=None, score=None, where=where))
    if empty:
        warnings.append(f"skipped {empty} OpenPose person entr(ies) without pose_keypoints_2d")
    if not entries:
        raise TrackFormatError(f"{path}: no person with pose_keypoints_2d in {len(paths)} OpenPose file(s)")
    fmt = _OPENPOSE_LENGTHS[n_values]
    if want is not None and want != fmt:
        raise TrackFormatError(f"{path}: format {want!r} requested but the files hold {fmt} "
                               f"({n_values} values per person)")
    return _build(entries, source=path, keypoint_format=fmt, fps=fps, image_size=None, warnings=warnings,
                  meta={"input_format": "openpose"},
                  no_id_hint="OpenPose does not track people, so tracking is needed (run OpenPose with "
                             "--tracking to get person_id, or track and convert to COCO results with track_id)")


# --------------------------------------------------------------------------- MMPose


def _read_mmpose(data: Any, source: str, want: str | None, fps: float | None) -> TrackSet:
    """MMPose prediction JSON (``demo/*_demo*.py --save-predictions`` / ``MMPoseInferencer``).

    Layout per the MMPose user guide "Inference with existing models"
    (https://mmpose.readthedocs.io/en/latest/user_guides/inference.html) and the demo
    scripts: ``{"meta_info": {...}, "instance_info": [{"frame_id": i, "instances":
    [{"keypoints": [[x, y], ...], "keypoint_scores": [...], "bbox": [[x1, y1, x2, y2]],
    "bbox_score": s, "track_id": id?}]}]}``.  For a single image ``instance_info`` is the
    instance list itself (read as frame 0).  ``frame_id`` is kept as written (the video demo
    counts from 1).  ``track_id`` is not written by MMPose itself; it is accepted when present
    (assumption), else each frame may hold one person.  K = 17 (COCO) or 26 (Halpe).
    """
    if not isinstance(data, dict) or not isinstance(data.get("instance_info"), list):
        raise TrackFormatError(f"{source}: expected an MMPose object with an 'instance_info' list")
    info = data["instance_info"]
    if info and all(isinstance(x, dict) and "keypoints" in x for x in info):
        info = [{"frame_id": 0, "instances": info}]
    entries: list[dict] = []
    k_joints = None
    for i, fr in enumerate(info):
        if not isinstance(fr, dict) or "frame_id" not in fr or not isinstance(fr.get("instances"), list):
            raise TrackFormatError(f"{source}: instance_info[{i}] must be an object with 'frame_id' and an "
                                   f"'instances' list, got {_describe(fr)}")
        frame = _frame_index(fr["frame_id"], f"{source}: instance_info[{i}].frame_id")
        for j, inst in enumerate(fr["instances"]):
            where = f"instance_info[{i}].instances[{j}]"
            if not isinstance(inst, dict) or not isinstance(inst.get("keypoints"), list):
                raise TrackFormatError(f"{source}: {where} has no 'keypoints' list")
            pts = inst["keypoints"]
            k = len(pts)
            if k_joints is None:
                k_joints = k
            elif k != k_joints:
                raise TrackFormatError(f"{source}: {where} has {k} keypoints but earlier instances have {k_joints}")
            arr = np.ones((k, 3), np.float64)
            for n, pt in enumerate(pts):
                pt = _check_numbers(pt, f"{source}: {where}.keypoints[{n}]")
                if len(pt) not in (2, 3):
                    raise TrackFormatError(f"{source}: {where}.keypoints[{n}] has {len(pt)} values, expected [x, y]")
                arr[n, :2] = pt[:2]
            scores = inst.get("keypoint_scores")
            if scores is not None:
                arr[:, 2] = _check_numbers(scores, f"{source}: {where}.keypoint_scores", k)
            box = inst.get("bbox")
            if isinstance(box, list) and len(box) == 1 and isinstance(box[0], list):
                box = box[0]
            if box is not None:
                x1, y1, x2, y2 = _check_numbers(box, f"{source}: {where}.bbox", 4)
                box = [x1, y1, x2 - x1, y2 - y1]
            score = inst.get("bbox_score")
            if isinstance(score, list) and len(score) == 1:
                score = score[0]
            if score is not None:
                score = _check_numbers([score], f"{source}: {where}.bbox_score")[0]
            tid = inst.get("track_id")
            if tid is not None:
                if isinstance(tid, bool) or not isinstance(tid, int) or abs(tid) > np.iinfo(np.int64).max:
                    raise TrackFormatError(f"{source}: {where}.track_id must be an integer, got {_describe(tid)}")
            entries.append(dict(frame=frame, tid=tid, kp=arr, bbox=box, score=score, where=where))
    if not entries:
        raise TrackFormatError(f"{source}: MMPose file has no instances")
    fmt = _JOINTS_TO_FORMAT.get(k_joints)
    if fmt is None or (want is not None and want != fmt):
        raise TrackFormatError(f"{source}: MMPose instances have {k_joints} keypoints; expected "
                               f"{want or '17 (COCO) or 26 (Halpe)'}")
    return _build(entries, source=source, keypoint_format=fmt, fps=fps, image_size=None, warnings=[],
                  meta={"input_format": "mmpose"},
                  no_id_hint="MMPose does not track people; add 'track_id' to the instances (run a tracker)")


# --------------------------------------------------------------------------- MediaPipe


def _mediapipe_entries(lm: np.ndarray, frames: np.ndarray, size: tuple[int, int], source: str) -> list[dict]:
    w, h = size
    out = []
    for t in range(lm.shape[0]):
        row = lm[t]
        if not np.isfinite(row[:, :2]).any():
            continue  # no detection in this frame
        kp = np.ones((33, 3), np.float64)
        kp[:, 0] = row[:, 0] * w
        kp[:, 1] = row[:, 1] * h
        if row.shape[1] >= 4:
            kp[:, 2] = row[:, 3]
        out.append(dict(frame=int(frames[t]), tid=None, kp=kp, bbox=None, score=None, where=f"frame {frames[t]}"))
    if not out:
        raise TrackFormatError(f"{source}: no frame has MediaPipe landmarks")
    return out


def _read_mediapipe_json(data: Any, source: str, fps: float | None, size: tuple[int, int] | None) -> TrackSet:
    """MediaPipe Pose landmarks saved as JSON (layout defined here; MediaPipe has no file format).

    Landmark definition per Google AI Edge "Pose landmark detection guide"
    (https://ai.google.dev/edge/mediapipe/solutions/vision/pose_landmarker): 33 landmarks with
    normalised ``x``, ``y`` in [0, 1] of the image width / height, ``z``, ``visibility``,
    ``presence``.  Accepted file::

        {"image_width": W, "image_height": H, "fps": 30.0,        # fps optional
         "frames": [{"frame_index": 0,                            # optional, default: list position
                     "landmarks": [{"x": .5, "y": .4, "z": -.1, "visibility": .99}, ...]  # 33, or
                               # [[x, y, z, visibility], ...] (z, visibility optional) or null / []
                    }, ...]}

    Confidence = ``visibility`` (1 when absent).  Pixel = x * W, y * H; W and H are required
    (or the ``image_size`` argument), as normalised coordinates cannot be lifted in pixels.
    One person per frame (MediaPipe Pose is single-person): one track.
    """
    if not isinstance(data, dict) or not isinstance(data.get("frames"), list):
        raise TrackFormatError(f"{source}: expected a MediaPipe object with a 'frames' list")
    size = size or _json_size(data, source)
    if fps is None:
        fps = _file_fps(data.get("fps"), source, "fps")
    rows, frames = [], []
    for i, fr in enumerate(data["frames"]):
        if not isinstance(fr, dict):
            raise TrackFormatError(f"{source}: frames[{i}] is not an object")
        frame = _frame_index(fr.get("frame_index", i), f"{source}: frames[{i}].frame_index")
        lms = fr.get("landmarks")
        if lms is None or lms == []:
            continue
        if not isinstance(lms, list) or len(lms) != 33:
            raise TrackFormatError(f"{source}: frames[{i}].landmarks must be a list of 33 landmarks, got "
                                   f"{len(lms) if isinstance(lms, list) else _describe(lms)}")
        row = np.full((33, 4), np.nan)
        row[:, 2:] = [0.0, 1.0]
        for j, lm in enumerate(lms):
            what = f"{source}: frames[{i}].landmarks[{j}]"
            if isinstance(lm, dict):
                if "x" not in lm or "y" not in lm:
                    raise TrackFormatError(f"{what} has no 'x'/'y'")
                vals = [lm["x"], lm["y"], lm.get("z", 0.0), lm.get("visibility", 1.0)]
                vals = _check_numbers(vals, what + " (x, y, z, visibility)")
            else:
                vals = _check_numbers(lm, what)
                if not 2 <= len(vals) <= 4:
                    raise TrackFormatError(f"{what} has {len(vals)} values, expected [x, y, z?, visibility?]")
            row[j, : len(vals)] = vals
        rows.append(row)
        frames.append(frame)
    if not rows:
        raise TrackFormatError(f"{source}: no frame has MediaPipe landmarks")
    if len(set(frames)) != len(frames):
        raise TrackFormatError(f"{source}: a frame_index occurs twice; MediaPipe Pose gives one person per frame")
    entries = _mediapipe_entries(np.stack(rows), np.asarray(frames), size, source)
    return _build(entries, source=source, keypoint_format="mediapipe33", fps=fps, image_size=size, warnings=[],
                  meta={"input_format": "mediapipe"}, no_id_hint="")


def _json_size(data: dict, source: str) -> tuple[int, int]:
    w = data.get("image_width", data.get("width"))
    h = data.get("image_height", data.get("height"))
    if w is None or h is None:
        raise TrackFormatError(f"{source}: MediaPipe landmarks are normalised to [0, 1]; the file needs "
                               "'image_width' and 'image_height' (pixels) to convert them")
    for name, v in (("image_width", w), ("image_height", h)):
        if not _positive_finite(v) or v > 1e7:
            raise TrackFormatError(f"{source}: {name} must be a positive number of pixels, got {_describe(v)}")
    return int(w), int(h)


# --------------------------------------------------------------------------- arrays (npy / npz)


def _load_arrays(path: str) -> tuple[dict[str, np.ndarray], bool]:
    """Arrays of a .npy (key '') or .npz file; raises TrackFormatError on anything unreadable."""
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
        if magic.startswith(b"PK"):
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}, True
        return {"": np.load(path, allow_pickle=False)}, False
    except ValueError as e:
        if "Object arrays" in str(e):
            raise TrackFormatError(
                f"{path}: holds Python objects (e.g. the VideoPose3D per-subject dictionaries); expected plain "
                "numeric arrays (T, 17, 2|3) - extract one sequence with numpy first") from e
        raise TrackFormatError(f"{path}: not a readable .npy/.npz array file ({e})") from e
    except Exception as e:  # zipfile.BadZipFile, EOFError, OSError, ...
        raise TrackFormatError(f"{path}: not a readable .npy/.npz array file ({type(e).__name__}: {e})") from e


def _numeric(a: np.ndarray, source: str, key: str) -> np.ndarray:
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise TrackFormatError(f"{source}: array {key or '(npy)'} has dtype {a.dtype}; expected numbers")
    return a.astype(np.float64)


def _read_arrays(path: str, reader: str | None, fps: float | None, size: tuple[int, int] | None) -> TrackSet:
    """Human3.6M-order 2D arrays or MediaPipe landmark arrays in .npy / .npz.

    Human3.6M (``h36m``): ``(T, 17, 2)`` pixels or ``(T, 17, 3)`` pixels + confidence, joints
    in the 17-joint Human3.6M order of VideoPose3D (``DATASETS.md`` of
    facebookresearch/VideoPose3D; ``positions_2d``) -- see :data:`lifting.skeletons.H36M17`.
    npz key ``keypoints_2d`` or ``positions_2d``, or the only array; optional scalar ``fps``.
    Frame t of the array is frame index t.

    MediaPipe (``mediapipe``): ``(T, 33, C)`` normalised landmarks, C = 2 (x, y), 3 (+ z), 4
    (+ visibility = confidence) or 5 (+ presence), the order of the MediaPipe Pose landmark
    model; npz key ``landmarks`` (or the only array) plus scalars ``image_width``,
    ``image_height`` (required unless ``image_size`` is given) and optional ``fps``.
    All-NaN frames (no detection) are dropped.
    """
    arrays, is_npz = _load_arrays(path)
    if not arrays:
        raise TrackFormatError(f"{path}: npz archive holds no arrays")
    keys = [k for k in ("keypoints_2d", "positions_2d", "landmarks") if k in arrays]
    if keys:
        key = keys[0]
    elif len([k for k, a in arrays.items() if a.ndim == 3]) == 1:
        key = next(k for k, a in arrays.items() if a.ndim == 3)
    else:
        raise TrackFormatError(f"{path}: npz keys {sorted(arrays)}; expected 'keypoints_2d', 'positions_2d', "
                               "'landmarks' or a single (T, J, C) array")
    a = arrays[key]
    if a.ndim != 3 or a.shape[0] == 0:
        raise TrackFormatError(f"{path}: array {key or '(npy)'} has shape {a.shape}; expected (T, 17, 2|3) "
                               "Human3.6M or (T, 33, 2..5) MediaPipe with T >= 1")
    a = _numeric(a, path, key)
    if reader is None:
        reader = "mediapipe" if a.shape[1] == 33 or key == "landmarks" else "h36m"
    if fps is None:
        fps = _file_fps(arrays.get("fps"), path, "fps")
    frames = np.arange(a.shape[0])
    if reader == "h36m":
        if a.shape[1] != 17 or a.shape[2] not in (2, 3):
            raise TrackFormatError(f"{path}: array {key or '(npy)'} has shape {a.shape}; expected (T, 17, 2|3) "
                                   "in Human3.6M joint order")
        kp = np.ones((a.shape[0], 17, 3))
        kp[..., : a.shape[2]] = a
        entries = [dict(frame=t, tid=None, kp=kp[t], bbox=None, score=None, where=f"frame {t}")
                   for t in range(a.shape[0]) if np.isfinite(kp[t, :, :2]).any()]
        if not entries:
            raise TrackFormatError(f"{path}: every frame is NaN; no keypoints")
        return _build(entries, source=path, keypoint_format="h36m17", fps=fps, image_size=None, warnings=[],
                      meta={"input_format": "h36m"}, no_id_hint="")
    if a.shape[1] != 33 or not 2 <= a.shape[2] <= 5:
        raise TrackFormatError(f"{path}: array {key or '(npy)'} has shape {a.shape}; expected (T, 33, 2..5) "
                               "MediaPipe landmarks")
    if size is None:
        if "image_width" not in arrays or "image_height" not in arrays:
            raise TrackFormatError(f"{path}: MediaPipe landmarks are normalised to [0, 1]; the npz needs "
                                   "'image_width' and 'image_height' (or pass image_size=(w, h)); a .npy cannot "
                                   "carry them")
        vals = []
        for k in ("image_width", "image_height"):
            v = arrays[k]
            if v.size != 1 or not np.issubdtype(v.dtype, np.number) or not _positive_finite(v.item()) \
                    or v.item() > 1e7:
                raise TrackFormatError(f"{path}: {k} must be one positive number of pixels")
            vals.append(int(v.item()))
        size = (vals[0], vals[1])
    entries = _mediapipe_entries(a, frames, size, path)
    return _build(entries, source=path, keypoint_format="mediapipe33", fps=fps, image_size=size, warnings=[],
                  meta={"input_format": "mediapipe"}, no_id_hint="")


# --------------------------------------------------------------------------- detection / entry point


def _record_joints(records: Any) -> int | None:
    """Joints per person of the first record with a keypoint list (COCO-style results)."""
    if isinstance(records, dict):
        records = records.get("annotations")
    if not isinstance(records, list):
        return None
    for rec in records:
        if isinstance(rec, dict) and isinstance(rec.get("keypoints"), list):
            return len(rec["keypoints"]) // 3
    return None


def _detect_json(data: Any, source: str) -> str:
    if isinstance(data, dict):
        if "people" in data:
            return "openpose"
        if "instance_info" in data:
            return "mmpose"
        if "images" in data and "annotations" in data:
            return "coco-annotations"
        if "frames" in data:
            return "mediapipe"
        if "annotations" in data:
            return "halpe26" if _record_joints(data) == 26 else "coco"
        keys = ", ".join(sorted(map(str, data))[:8]) or "none"
        raise TrackFormatError(
            f"{source}: unrecognised JSON object (keys: {keys}); expected COCO results ('annotations' or a "
            "record list), a COCO annotation file ('images' + 'annotations'), OpenPose ('people'), MMPose "
            "('instance_info') or MediaPipe ('frames')")
    if isinstance(data, list):
        return "halpe26" if _record_joints(data) == 26 else "coco"
    raise TrackFormatError(f"{source}: top-level JSON is a {type(data).__name__}; expected an object or a list")


def detect_format(path: str | os.PathLike) -> str:
    """The reader name (one of :data:`READER_FORMATS`) :func:`read_tracks` would use for ``path``."""
    source = os.fsdecode(os.fspath(path))
    return _detect(source)[0]


def _detect(source: str) -> tuple[str, Any]:
    if not os.path.exists(source):
        raise TrackFormatError(f"{source}: file not found")
    if os.path.isdir(source):
        return "openpose", None
    if source.lower().endswith((".npy", ".npz")):
        arrays, _ = _load_arrays(source)
        shapes = [a.shape for a in arrays.values() if a.ndim == 3]
        if "landmarks" in arrays or any(s[1] == 33 for s in shapes):
            return "mediapipe", None
        return "h36m", None
    if os.path.getsize(source) > tracks_mod.STREAM_BYTES:
        return _detect_json(_json_sample(source), source), None  # large: read later, streamed if COCO
    data = _load_json(source)
    return _detect_json(data, source), data


def _json_sample(source: str) -> Any:
    """A small stand-in for a large JSON document, enough for :func:`_detect_json`: a
    top-level list becomes ``[first item]``; an object becomes its top-level keys with list
    values cut to their first item. Parsed incrementally (``ijson``), in constant memory."""
    import ijson

    with open(source, "rb") as f:
        head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    try:
        if head[:1] == b"[":
            with open(source, "rb") as f:
                return [next(iter(ijson.items(f, "item", use_float=True)), None)]
        if head[:1] != b"{":
            raise TrackFormatError(f"{source}: top level is not a JSON list or object")
        keys = []
        with open(source, "rb") as f:
            for prefix, event, value in ijson.parse(f, use_float=True):
                if prefix == "" and event == "map_key":
                    keys.append(value)
        sample: dict[str, Any] = {k: None for k in keys}
        for k in keys:
            with open(source, "rb") as f:
                first = next(iter(ijson.items(f, f"{k}.item", use_float=True)), None)
            if first is not None:
                sample[k] = [first]
        return sample
    except ijson.JSONError as e:
        raise TrackFormatError(f"{source}: invalid JSON ({e})") from None


def read_tracks(
    path: str | os.PathLike,
    fmt: str | None = None,
    fps: float | None = None,
    *,
    image_size: tuple[int, int] | None = None,
) -> TrackSet:
    """Read 2D person tracks from any supported pose-estimator output (see module docstring).

    Args:
        path: file, or folder of OpenPose ``*_keypoints.json`` files.
        fmt: reader or joint-set name (``coco``, ``coco17``, ``coco-annotations``,
            ``openpose``, ``body25``, ``coco18``, ``mmpose``, ``mediapipe``, ``h36m``,
            ``halpe26``, ...); ``None`` = detect from the content.
        fps: frame rate; overrides any rate stored in the file.
        image_size: ``(width, height)`` pixels for normalised MediaPipe landmarks whose file
            does not carry them.

    Returns:
        :class:`TrackSet` with ``keypoint_format`` a :func:`lifting.skeletons.get_skeleton`
        name and finite float32 keypoints ``(T, K, 3)``.

    Raises:
        ValueError: invalid ``fmt``, ``fps`` or ``image_size`` argument.
        TrackFormatError: missing, unreadable or inconsistent input (message says what was
            found and what was expected).
    """
    reader, want = _parse_fmt(fmt)
    fps = _check_fps(fps)
    size = _check_size(image_size)
    source = os.fsdecode(os.fspath(path))
    data = None
    if reader is None:
        reader, data = _detect(source)
    elif not os.path.exists(source):
        raise TrackFormatError(f"{source}: file not found")

    if reader == "coco":
        return read_coco_tracks(source, fps=fps, keypoint_format=want)  # float32 overflow: masked there
    if reader == "openpose":
        return _read_openpose(source, want, fps)
    if reader in ("mediapipe", "h36m") and (os.path.isdir(source) or source.lower().endswith((".npy", ".npz"))):
        return _read_arrays(source, reader, fps, size)
    if os.path.isdir(source):
        raise TrackFormatError(f"{source}: is a directory; format {reader!r} expects a file")
    if data is None:
        data = _load_json(source)
    if reader == "coco-annotations":
        return _read_coco_annotations(data, source, fps)
    if reader == "mmpose":
        return _read_mmpose(data, source, want, fps)
    if reader == "mediapipe":
        return _read_mediapipe_json(data, source, fps, size)
    if reader == "halpe26":
        return _read_halpe(data, source, fps)
    raise TrackFormatError(f"{source}: format {reader!r} expects a .npy/.npz array file")


def _read_halpe(data: Any, source: str, fps: float | None) -> TrackSet:
    """AlphaPose results with the Halpe-26 keypoints (``--format`` default JSON output).

    Layout per AlphaPose ``docs/output.md``: a list of ``{"image_id": "0.jpg", "category_id":
    1, "keypoints": [x, y, score] * 26, "score": s, "box": [x, y, w, h], "idx": track id}``
    (also the ``{"annotations": [...]}`` object form of :mod:`lifting.io.tracks`).  Joint order
    of the Halpe-FullBody README (https://github.com/Fang-Haoshu/Halpe-FullBody), see
    :data:`lifting.skeletons.HALPE26`.  AlphaPose scores above 1 are clipped.
    """
    meta: dict = {"input_format": "halpe26"}
    records = data
    if isinstance(data, dict):
        records = data.get("annotations")
        file_meta = data.get("meta", {})
        if isinstance(file_meta, dict) and fps is None:
            fps = _file_fps(file_meta.get("fps"), source, "meta.fps")
    if not isinstance(records, list):
        raise TrackFormatError(f"{source}: expected a list of AlphaPose records (or {{'annotations': [...]}})")
    return _read_records(records, source, flags=False, frame_of=None, want="halpe26", fps=fps, meta=meta,
                         warnings=[])
