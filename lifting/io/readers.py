"""Read 2D keypoint tracks from the output formats of common pose estimators.

:func:`read_tracks` is the single entry point used by ``posenet3d lift``.  Data flows one way:
the input is checked and **loaded once** (:func:`_load`: a folder, a JSON document -- streamed
when large -- or the arrays of a .npy/.npz), its format is detected from that content (or taken
from ``fmt``), the format's reader turns it into per-detection rows (:class:`_Detections`), and
:func:`_finish` cleans the keypoints, assigns track ids (from the file, or by running the tracker
of :mod:`lifting.io.tracking` on untracked multi-person input) and groups the rows into a
:class:`lifting.io.tracks.TrackSet` whose ``keypoint_format`` is a
:func:`lifting.skeletons.get_skeleton` name.

Formats (:data:`FORMATS` is the one table of ``fmt`` names)
-----------------------------------------------------------
=====================  =====================================================  ==================
``fmt`` (aliases)      input, as the tool writes it                           joint set
=====================  =====================================================  ==================
``coco`` (coco17,      COCO keypoint *results* (list of records, or           coco17 / halpe26
coco-results)          ``{"meta", "annotations"}``), ``track_id`` optional
``halpe26`` (halpe,    AlphaPose results (``idx`` = track id, ``box``)        halpe26
alphapose)
``coco-annotations``   COCO *annotation* file (images / annotations)          coco17
``openpose`` (body25,  folder of OpenPose ``--write_json`` files (any         body25 / body25b /
body25b, coco18,       ``*.json`` holding ``people``), or one such file       coco18 / body135
body135)
``mmpose``             MMPose ``--save-predictions`` (``instance_info``) and  coco17 / halpe26
                       1.x inferencer output (``predictions``)
``mediapipe``          MediaPipe Pose 33 landmarks, JSON / NPY / NPZ          mediapipe33
``h36m`` (h36m17)      Human3.6M-order arrays ``(T, 17, 2|3)`` npy / npz      h36m17
``videopose3d``        VideoPose3D ``data_2d_custom_*.npz``                   coco17 / h36m17
=====================  =====================================================  ==================

Tracking (``tracker`` option)
-----------------------------
``"auto"`` (default): ids from the file when it has them; a file with at most one person per
frame and no ids is one track (id 0); otherwise the detections are tracked online
(:func:`lifting.io.tracking.track_detections`, detections it leaves unconfirmed or filters as
spurious are dropped) with the mean of OKS and box IoU (the detector's boxes when every
detection has one, else the tight keypoint boxes): on synthetic sequences with exact ids it
is the one cost close to the best both with and without detector boxes (BENCHMARKS.md,
"Tracking").
``"none"``: never track (untracked multi-person input is an error).  ``"oks+iou"`` / ``"oks"``
/ ``"iou"``: always track with that similarity, ignoring ids in the file.
``TrackSet.tracking`` records what was done.

Cleaning and limits (one rule for every reader)
-----------------------------------------------
Keypoints follow the cleaning policy of :mod:`lifting.io.tracks`: non-finite x/y, and
``|x|`` or ``|y|`` above :data:`lifting.io.tracks.MAX_ABS_PX` (1e6 px), are masked (x = y = 0,
confidence 0); non-finite confidences become 0; confidences are clipped to [0, 1].  Non-finite
detection scores and boxes become NaN (unknown).  Each applied count is in ``TrackSet.warnings``.
Inputs are bounded before anything is allocated: at most :data:`MAX_PERSON_FRAMES` detections,
arrays of at most :data:`MAX_ARRAY_BYTES`, frame indices at most :data:`MAX_FRAME_INDEX`, JSON
read whole only up to :data:`lifting.io.records.STREAM_BYTES` (larger COCO record files are
streamed); FIFOs, devices and sockets are refused.  Every content problem raises
:class:`TrackFormatError` (a ``ValueError``) naming the file and what was expected; invalid
*arguments* raise ``ValueError``.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
import pickle
import re
import warnings as _warnings
import zipfile
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..skeletons import get_skeleton
from . import records
from .records import (check_input_file, clean_in_place, describe, load_json, meta_image_size,
                      note_cleaning, parse_image_id, parse_track_id, positive_finite, split_top_level,
                      stream_top_level)
from .tracks import PERSON_CATEGORY, Track, TrackFormatError, TrackSet

__all__ = ["FORMATS", "READER_FORMATS", "RECORD_JOINT_SETS", "MAX_PERSON_FRAMES", "MAX_ARRAY_BYTES",
           "MAX_FRAME_INDEX", "TRACKERS", "InputFormat", "TrackingNeeded", "detect_format", "read_tracks",
           "read_coco_tracks"]

#: Most detections (person-frames) one input may hold: ~18 h of one person at 30 fps.
MAX_PERSON_FRAMES = 2_000_000
#: Largest numeric array (bytes, as declared in its .npy header) read from a .npy/.npz.
MAX_ARRAY_BYTES = 512 * 2**20
#: Largest accepted frame index (a 40-digit frame number in a file name is a mistake).
MAX_FRAME_INDEX = 10**12
#: Values of the ``tracker`` option of :func:`read_tracks`.
TRACKERS = ("auto", "none", "oks+iou", "oks", "iou", "stills")
#: Joint sets a COCO-style record file may hold, by joints per record.
RECORD_JOINT_SETS = ("coco17", "halpe26")
_OPENPOSE_JOINT_SETS = ("body25", "body25b", "coco18", "body135")
_MMPOSE_JOINT_SETS = ("coco17", "halpe26")
_MAX_ABS = 1e300
_DIGITS = re.compile(r"\d+")


class TrackingNeeded(TrackFormatError):
    """Untracked multi-person input read with ``tracker="none"`` (a :class:`TrackFormatError`)."""


# --------------------------------------------------------------------------- loaded input


@dataclass
class _Input:
    """The input, loaded once. ``kind``: ``"dir"`` (data None), ``"json"`` (parsed document),
    ``"stream"`` (a JSON file over ``STREAM_BYTES``; data None), ``"arrays"`` (dict
    key -> ndarray or, for pickled VideoPose3D entries, Python objects)."""

    source: str
    kind: str
    data: Any = None


@dataclass(frozen=True)
class _Options:
    fps: float | None
    image_size: tuple[int, int] | None
    tracker: str
    tracker_config: Any


# --------------------------------------------------------------------------- detections


class _Detections:
    """Per-detection rows while a file is read, in growing numpy buffers (no Python object per
    row, so memory follows the keypoint arrays): ``frames (N,)`` int64, file track ids ``(N,)``
    (``has_tid`` False = none), ``keypoints (N, K, 3)`` float32 (x, y px, confidence; float32
    overflow -> inf, masked later), ``boxes (N, 4)`` ``[x, y, w, h]`` px and ``scores (N,)``
    (NaN = none), and a location ``(N, 2)`` int64 that ``describe(a, b)`` turns into text for
    messages.  Enforces :data:`MAX_PERSON_FRAMES` and one joint count."""

    def __init__(self, source: str, describe: Callable[[int, int], str] = lambda a, b: f"record {a}") -> None:
        self.source, self.describe, self.n = source, describe, 0
        self.cap = 0
        self.num_joints = 0
        self.idx_records = self.idx_unusable = 0  # AlphaPose idx (no track_id): records, and those not an id

    def _grow(self, k: int) -> None:
        cap = max(16, 2 * self.cap)
        new = dict(frames=np.zeros(cap, np.int64), tids=np.zeros(cap, np.int64), has_tid=np.zeros(cap, bool),
                   keypoints=np.zeros((cap, k, 3), np.float32), boxes=np.full((cap, 4), np.nan, np.float32),
                   scores=np.full(cap, np.nan, np.float32), has_box=np.zeros(cap, bool),
                   has_score=np.zeros(cap, bool), loc=np.zeros((cap, 2), np.int64))
        for name, arr in new.items():
            if self.cap:
                arr[: self.n] = getattr(self, name)[: self.n]
            setattr(self, name, arr)
        self.cap = cap

    def add(self, frame: int, tid: int | None, kp: np.ndarray, box: Any, score: Any, loc: tuple[int, int]) -> None:
        if self.n >= MAX_PERSON_FRAMES:
            raise TrackFormatError(f"{self.source}: more than MAX_PERSON_FRAMES = {MAX_PERSON_FRAMES} detections; "
                                   "split the input")
        if self.n and kp.shape[0] != self.num_joints:
            raise TrackFormatError(f"{self.source}: {self.describe(*loc)} has {kp.shape[0]} joints but "
                                   f"{self.where(0)} has {self.num_joints}; all detections must use the same "
                                   "joint set")
        if self.n == 0:
            self.num_joints = kp.shape[0]
        if self.n == self.cap:
            self._grow(kp.shape[0])
        i = self.n
        with np.errstate(over="ignore", invalid="ignore"):
            self.keypoints[i] = kp
            if box is not None:
                self.boxes[i] = box
            if score is not None:
                self.scores[i] = score
        self.frames[i], self.loc[i] = frame, loc
        self.has_box[i], self.has_score[i] = box is not None, score is not None
        if tid is not None:
            self.tids[i], self.has_tid[i] = tid, True
        self.n = i + 1

    def __len__(self) -> int:
        return self.n

    def where(self, i: int) -> str:
        return self.describe(*map(int, self.loc[i]))


def _float_column(values: np.ndarray, given: np.ndarray, warnings: list[str], what: str) -> np.ndarray | None:
    """``values`` ``(N,)`` / ``(N, 4)`` with rows not ``given`` NaN; given rows with a non-finite
    value become NaN (unknown) and are counted in ``warnings``.  None when no row is given."""
    if not given.any():
        return None
    finite = np.isfinite(values) if values.ndim == 1 else np.isfinite(values).all(axis=1)
    bad = given & ~finite
    if bad.any():
        values[bad] = np.nan
        warnings.append(f"set {int(bad.sum())} non-finite {what}(s) to NaN (unknown)")
    return values


def _finish(dets: _Detections, *, joint_set: str, opts: _Options, warnings: list[str], meta: dict,
            hint: str, fps: float | None = None, image_size: tuple[int, int] | None = None) -> TrackSet:
    """Clean, assign track ids and group the rows into a :class:`TrackSet` (see module docstring)."""
    source = dets.source
    if not len(dets):
        raise TrackFormatError(f"{source}: no person detections found")
    n = len(dets)
    kp = dets.keypoints[:n]
    note_cleaning(clean_in_place(kp), warnings)
    frames = dets.frames[:n]
    boxes = _float_column(dets.boxes[:n], dets.has_box[:n], warnings, "bbox")
    scores = _float_column(dets.scores[:n], dets.has_score[:n], warnings, "detection score")
    ids, keep, tracking = _assign_tracks(dets, frames, kp, boxes, joint_set, opts, hint)
    keep = np.flatnonzero(keep)
    order = keep[np.lexsort((frames[keep], ids[keep]))]
    dup = np.flatnonzero((np.diff(ids[order]) == 0) & (np.diff(frames[order]) == 0))
    if dup.size:  # report the repeat that comes first in the file
        first = dup[np.argmin(np.maximum(order[dup], order[dup + 1]))]
        a, b = sorted((order[first], order[first + 1]))
        raise TrackFormatError(f"{source}: track {ids[a]} has two detections in frame {frames[a]} "
                               f"({dets.where(a)} and {dets.where(b)})")
    starts = np.flatnonzero(np.r_[True, np.diff(ids[order]) != 0]) if order.size else np.zeros(0, int)
    tracks, no_box, no_score = [], 0, 0
    for s, e in zip(starts, np.r_[starts[1:], order.size]):
        rows = order[s:e]
        box = None if boxes is None or not dets.has_box[rows].any() else boxes[rows]
        score = None if scores is None or not dets.has_score[rows].any() else scores[rows]
        no_box += 0 if box is None else int((~dets.has_box[rows]).sum())
        no_score += 0 if score is None else int((~dets.has_score[rows]).sum())
        tracks.append(Track(int(ids[rows[0]]), frames[rows], kp[rows], box, score))
    if no_box:
        warnings.append(f"{no_box} record(s) without bbox in tracks that have boxes (rows set to NaN)")
    if no_score:
        warnings.append(f"{no_score} record(s) without score in tracks that have scores (set to NaN)")
    if not tracks:
        raise TrackFormatError(f"{source}: the tracker confirmed no track among {len(frames)} detections "
                               f"(stats: {tracking})")
    return TrackSet(tracks=tracks, fps=opts.fps if opts.fps is not None else fps, keypoint_format=joint_set,
                    image_size=opts.image_size or image_size, source=source, warnings=warnings, meta=meta,
                    tracking=tracking)


def _assign_tracks(dets: _Detections, frames: np.ndarray, kp: np.ndarray, boxes: np.ndarray | None,
                   joint_set: str, opts: _Options, hint: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """``(N,)`` int64 track id per detection, ``(N,)`` bool kept (False: dropped by the tracker)
    and the ``tracking`` record."""
    source = dets.source
    has = dets.has_tid[: len(dets)]
    if opts.tracker == "stills":  # independent photos (e.g. a COCO annotation file): no identity to follow
        return (np.arange(len(frames), dtype=np.int64), np.ones(len(frames), bool),
                {"method": "stills", "reason": "requested with tracker='stills': every person its own one-frame track"})
    if opts.tracker not in ("auto", "none"):
        return _run_tracker(frames, kp, boxes, joint_set, opts, "requested with tracker=" + repr(opts.tracker))
    not_ids = _idx_not_ids(dets, frames) if opts.tracker == "auto" else None
    if not_ids:
        return _run_tracker(frames, kp, boxes, joint_set, opts, f"AlphaPose idx is not a track id ({not_ids})")
    if has.all():
        return dets.tids[: len(dets)].copy(), has, {"method": "ids", "reason": "track ids in the file"}
    if has.any():
        a, b = dets.where(int(np.argmin(has))), dets.where(int(np.argmax(has)))
        raise TrackFormatError(f"{source}: {a} has no track id but {b} has one; give every person an id or none "
                               "(or pass tracker='oks' to ignore the ids and track)")
    order = np.argsort(frames, kind="stable")
    repeat = np.flatnonzero(np.diff(frames[order]) == 0)
    if not repeat.size:
        return np.zeros(len(frames), np.int64), ~has, {"method": "single",
                                                 "reason": "no track ids, at most one person per frame"}
    if opts.tracker == "none":
        r = repeat[np.argmin(order[repeat + 1])]  # the repeat that comes first in the file
        a, b = order[r], order[r + 1]
        raise TrackingNeeded(f"{source}: frame {frames[a]} has more than one person ({dets.where(a)} and "
                             f"{dets.where(b)}) and no track ids, and tracker='none'; {hint}, or use "
                             "tracker='auto' / 'oks' to track them")
    return _run_tracker(frames, kp, boxes, joint_set, opts, "no track ids and several people per frame")


def _idx_not_ids(dets: _Detections, frames: np.ndarray) -> str | None:
    """Why the AlphaPose ``idx`` values of ``dets`` are not track ids (None when they are, or
    when the file has none): some are nested or non-integer (pose-NMS merges), or one value is
    shared by several people in a frame (AlphaPose without its tracker writes 0 for all)."""
    if not dets.idx_records:
        return None
    if dets.idx_unusable:
        return f"{dets.idx_unusable} of {dets.idx_records} record(s) have a nested or non-integer idx"
    n = len(dets)
    has, ids = dets.has_tid[:n], dets.tids[:n]
    pairs = np.stack([frames[has], ids[has]], axis=1)
    if len(np.unique(pairs, axis=0)) < len(pairs):
        return "the same idx for several people in one frame"
    return None


def _run_tracker(frames, kp, boxes, joint_set, opts, reason) -> tuple[np.ndarray, np.ndarray, dict]:
    from .tracking import TrackerConfig, oks_sigmas, track_detections

    method = "oks+iou" if opts.tracker == "auto" else opts.tracker
    config = opts.tracker_config
    if config is None:
        config = TrackerConfig(cost=method)
    elif config.cost != method:
        config = dataclasses.replace(config, cost=method)
    sigmas = oks_sigmas(get_skeleton(joint_set).joint_names)
    xywh = None
    if boxes is not None and np.isfinite(boxes).all():
        xywh = boxes.astype(np.float64)
    res = track_detections(frames, kp, sigmas, xywh, config)
    ids = np.asarray(res.track_ids, dtype=np.int64)
    stats = dict(res.stats)
    return ids, ids >= 0, {"method": method, "reason": reason, **stats, "n_dropped": int((ids < 0).sum())}


# --------------------------------------------------------------------------- small checks


def _check_numbers(value: Any, what: str, length: int | None = None) -> list:
    """``value`` must be a list of JSON numbers (NaN/inf allowed; masked later), of ``length``."""
    if not isinstance(value, list):
        raise TrackFormatError(f"{what} must be a list of numbers, got {describe(value)}")
    for pos, v in enumerate(value):
        if type(v) is not float:
            if type(v) is not int:  # excludes bool, str, None, nested lists
                raise TrackFormatError(f"{what}[{pos}] is not a number: {describe(v)}")
            if abs(v) > _MAX_ABS:
                raise TrackFormatError(f"{what}[{pos}] is too large: {describe(v)}")
    if length is not None and len(value) != length:
        raise TrackFormatError(f"{what} has {len(value)} values, expected {length} values")
    return value


def _score(value: Any, what: str) -> float | None:
    """A detection score: a JSON number (non-finite -> NaN later), ``[s]`` or None."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if value is None:
        return None
    return _check_numbers([value], what)[0]


def _frame_index(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) and not (
        isinstance(value, float) and math.isfinite(value) and value.is_integer()
    ):
        raise TrackFormatError(f"{what} must be a non-negative integer frame index, got {describe(value)}")
    return _bounded_frame(int(value), what)


def _bounded_frame(value: int, what: str) -> int:
    if value < 0 or value > MAX_FRAME_INDEX:
        raise TrackFormatError(f"{what}: frame index {describe(value)} is out of range "
                               f"(0 .. MAX_FRAME_INDEX = {MAX_FRAME_INDEX})")
    return value


def _file_fps(value: Any, source: str, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        if value.size != 1 or not np.issubdtype(value.dtype, np.number):
            raise TrackFormatError(f"{source}: {key} must be one number > 0, got an array of shape {value.shape}")
        value = value.item()
    if not positive_finite(value):
        raise TrackFormatError(f"{source}: {key} must be a finite number > 0, got {describe(value)}")
    return float(value)


def _pixels(value: Any, what: str) -> int:
    if isinstance(value, np.ndarray):
        value = value.item() if value.size == 1 and np.issubdtype(value.dtype, np.number) else None
    if not positive_finite(value) or value > 1e7:
        raise TrackFormatError(f"{what} must be a positive number of pixels, got {describe(value)}")
    return int(value)


def _want(joint_set: str | None, found: str, allowed: tuple[str, ...], source: str, what: str) -> str:
    """The joint set to use: ``found`` (from the content) must be in ``allowed`` and equal a
    requested ``joint_set``."""
    if joint_set is not None and joint_set != found:
        raise TrackFormatError(f"{source}: format {joint_set!r} has {get_skeleton(joint_set).num_joints} joints "
                               f"but {what} ({found})")
    if found not in allowed:
        raise TrackFormatError(f"{source}: {what}; expected one of {list(allowed)}")
    return found


#: Whole-body layouts whose leading joints are a body set we read: joint count -> (body set,
#: its joints, layout name). Halpe-136 (Halpe-FullBody README; AlphaPose's 136-keypoint
#: models): Halpe-26 then 68 face and 42 hand points. COCO-WholeBody-133 (Jin et al. ECCV
#: 2020; MMPose/RTMPose/DWPose wholebody models): COCO-17, 6 foot, 68 face, 42 hand points.
WHOLE_BODY = {136: ("halpe26", 26, "Halpe-136"), 133: ("coco17", 17, "COCO-WholeBody-133")}


def _body_part(dets: _Detections, warnings: list[str]) -> None:
    """Keep only the body joints of a whole-body layout (:data:`WHOLE_BODY`), in place, and
    say so; other joint counts are left as they are."""
    if dets.num_joints not in WHOLE_BODY or not len(dets):
        return
    body, k, name = WHOLE_BODY[dets.num_joints]
    dets.keypoints = np.ascontiguousarray(dets.keypoints[:, :k])
    dets.num_joints = k
    warnings.append(f"{name} whole-body keypoints: the {k} body joints ({body}) are read, face and hands are not")


def _by_count(k: int, allowed: tuple[str, ...]) -> str | None:
    hits = [n for n in allowed if get_skeleton(n).num_joints == k]
    return hits[0] if len(hits) == 1 else None


# --------------------------------------------------------------------------- COCO-style records


def _read_coco(inp: _Input, joint_set: str | None, opts: _Options) -> TrackSet:
    """COCO keypoint *results* and AlphaPose results: one record per detection.

    Layout per the COCO results format (https://cocodataset.org/#format-results) and AlphaPose
    ``docs/output.md``: a list ``[{"image_id", "category_id", "keypoints": [x, y, c] * K,
    "score", "bbox" | "box": [x, y, w, h], "track_id" | "idx"}]`` (ids optional: MMPose,
    Detectron2 and AlphaPose without ``--pose_track`` write none), or the object form
    ``{"meta": {...}, "annotations": [...]}`` of :mod:`lifting.io.tracks` (``meta.fps``,
    ``meta.width`` / ``height``, ``meta.keypoint_format``).  K = 17 (COCO) or 26 (Halpe);
    whole-body K = 133 (COCO-WholeBody) or 136 (Halpe-136) are read as their body part
    (:data:`WHOLE_BODY`).
    Files over ``STREAM_BYTES`` are streamed (``ijson``).
    """
    source, warnings = inp.source, []
    if inp.kind == "stream":
        meta, records = stream_top_level(source)
    elif inp.kind == "json":
        meta, records = split_top_level(inp.data, source)
    else:
        raise TrackFormatError(f"{source}: COCO-style records must be a JSON file")
    if joint_set is None and meta.get("keypoint_format") is not None:
        joint_set = _meta_joint_set(meta["keypoint_format"], source)
    dets = _Detections(source)
    _parse_records(records, dets, warnings, flags=False, frame_of=None)
    _body_part(dets, warnings)
    k = dets.num_joints
    found = _by_count(k, RECORD_JOINT_SETS) or f"{k} joints"
    joint_set = _want(joint_set, found, RECORD_JOINT_SETS, source, f"records have {k} joints per person")
    size = meta_image_size(meta, source, warnings)
    fps = _file_fps(meta.get("fps"), source, "meta.fps")
    meta = {**meta, "input_format": "halpe26" if joint_set == "halpe26" else "coco"}
    return _finish(dets, joint_set=joint_set, opts=opts, warnings=warnings, meta=meta, fps=fps, image_size=size,
                   hint="add 'track_id' (AlphaPose 'idx') to the records")


def _meta_joint_set(value: Any, source: str) -> str:
    entry = FORMATS.get(value.strip().lower()) if isinstance(value, str) else None
    if entry is None or entry.joint_set not in RECORD_JOINT_SETS:
        raise TrackFormatError(f"{source}: unknown meta.keypoint_format {describe(value)}; expected one of "
                               f"{list(RECORD_JOINT_SETS)}")
    return entry.joint_set


def _parse_records(records: Any, dets: _Detections, warnings: list[str], *, flags: bool,
                   frame_of: dict | None) -> None:
    """Add COCO-style person records to ``dets`` (the one record parser).

    ``flags``: the third keypoint value is a COCO visibility flag (0 -> confidence 0; 1, 2 ->
    1).  ``frame_of``: ``image_id`` -> frame (annotation files); else ``image_id`` is the frame.
    """
    source = dets.source
    skipped: dict[str, int] = {}
    n = 0
    for i, rec in enumerate(records):
        n = i + 1
        where = f"record {i}"
        if not isinstance(rec, dict):
            raise TrackFormatError(f"{source}: {where} is not a JSON object (got {type(rec).__name__})")
        cat = rec.get("category_id", PERSON_CATEGORY)
        if cat is not None and (isinstance(cat, bool) or cat != 1):
            skipped[describe(cat)] = skipped.get(describe(cat), 0) + 1
            continue
        for key in ("image_id", "keypoints"):
            if key not in rec:
                raise TrackFormatError(f"{source}: {where} has no {key!r}")
        if frame_of is None:
            frame = _bounded_frame(parse_image_id(rec["image_id"], source, i), f"{source}: {where}: image_id")
        else:
            img = rec["image_id"]
            if isinstance(img, (list, dict)) or img not in frame_of:
                raise TrackFormatError(f"{source}: {where}: image_id {describe(img)} is not in 'images'")
            frame = frame_of[img]
        kp = _check_numbers(rec["keypoints"], f"{source}: {where}: keypoints")
        if len(kp) == 0 or len(kp) % 3:
            raise TrackFormatError(f"{source}: {where}: keypoints has {len(kp)} values, expected a non-zero "
                                   "multiple of 3 (x, y, confidence per joint)")
        arr = np.asarray(kp, dtype=np.float64).reshape(-1, 3)
        if flags:
            arr[:, 2] = np.where(arr[:, 2] > 0, 1.0, 0.0)
        box = rec.get("bbox", rec.get("box"))
        if box is not None:
            box = _check_numbers(box, f"{source}: {where}: bbox", 4)
        score = _score(rec.get("score"), f"{source}: {where}: score")
        tid = parse_track_id(rec, source, i)
        if rec.get("track_id") is None and rec.get("idx") is not None:
            dets.idx_records += 1
            dets.idx_unusable += tid is None
        dets.add(frame, tid, arr, box, score, (i, 0))
    if skipped:
        detail = ", ".join(f"{k}: {v}" for k, v in sorted(skipped.items()))
        warnings.append(f"skipped {sum(skipped.values())} non-person record(s) (category_id != 1; {detail})")
    if not n:
        raise TrackFormatError(f"{source}: annotation list is empty (no detections)")
    if not len(dets):
        raise TrackFormatError(f"{source}: no person records (category_id 1) among {n} record(s)")


def _read_coco_annotations(inp: _Input, joint_set: str | None, opts: _Options) -> TrackSet:
    """COCO *annotation* file: ``{"images": [...], "annotations": [...], "categories": [...]}``.

    Layout per https://cocodataset.org/#format-data ("Object Keypoint Detection"):
    ``images[i] = {"id", "file_name", ...}``, ``annotations[j] = {"image_id", "keypoints":
    [x, y, v] * K, "category_id", "bbox", "track_id"?}`` with visibility flags v (0 not
    labelled, 1 labelled but occluded, 2 visible), mapped to confidence 0 / 1 / 1.  Frame
    order: the digits of each image's ``file_name`` (``"000123.jpg"`` -> 123) when every
    image has a distinct number there, else the rank of the image ``id``.
    """
    source, data = inp.source, inp.data
    if inp.kind != "json" or not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations"), list):
        raise TrackFormatError(f"{source}: expected a COCO annotation object with 'images' and 'annotations' lists")
    ids, names, seen = [], [], {}
    for i, img in enumerate(data["images"]):
        if not isinstance(img, dict) or "id" not in img:
            raise TrackFormatError(f"{source}: images[{i}] is not an object with an 'id'")
        iid = img["id"]
        if not (isinstance(iid, (int, str)) and not isinstance(iid, bool)):
            raise TrackFormatError(f"{source}: images[{i}].id must be an int or string, got {describe(iid)}")
        if iid in seen:  # the same image listed twice is one image; two images with one id are an error
            if seen[iid] != img:
                raise TrackFormatError(f"{source}: duplicate image id {iid!r} in 'images' with different entries")
            continue
        seen[iid] = img
        ids.append(iid)
        name = img.get("file_name")
        runs = _DIGITS.findall(os.path.basename(name)) if isinstance(name, str) else []
        names.append(int(runs[-1]) if runs and len(runs[-1]) <= 12 else None)
    if ids and None not in names and len(set(names)) == len(names) and max(names) <= MAX_FRAME_INDEX:
        frame_of = dict(zip(ids, names))
    else:
        try:
            frame_of = {iid: r for r, iid in enumerate(sorted(ids))}
        except TypeError:
            raise TrackFormatError(f"{source}: image ids mix ints and strings and file names give no frame "
                                   "numbers; cannot order the frames") from None
    warnings: list[str] = []
    dets = _Detections(source)
    _parse_records(data["annotations"], dets, warnings, flags=True, frame_of=frame_of)
    k = dets.num_joints
    joint_set = _want(joint_set, _by_count(k, RECORD_JOINT_SETS) or f"{k} joints", RECORD_JOINT_SETS, source,
                      f"annotations have {k} joints per person")
    return _finish(dets, joint_set=joint_set, opts=opts, warnings=warnings,
                   meta={"input_format": "coco-annotations"}, hint="add 'track_id' to the annotations")


# --------------------------------------------------------------------------- OpenPose


def _openpose_frame(name: str, what: str) -> int | None:
    """Frame index = last digit group of the file name (``cam01.0000.json`` -> 0,
    ``video_000000000012_keypoints.json`` -> 12); None when the name has no digits."""
    stem = os.path.splitext(name)[0]
    if stem.endswith("_keypoints"):
        stem = stem[: -len("_keypoints")]
    runs = _DIGITS.findall(stem)
    if not runs:
        return None
    if len(runs[-1]) > 15:
        raise TrackFormatError(f"{what}: frame number {runs[-1][:20]}... in the file name has {len(runs[-1])} "
                               f"digits; frame indices go up to MAX_FRAME_INDEX = {MAX_FRAME_INDEX}")
    return _bounded_frame(int(runs[-1]), what)


def _openpose_documents(inp: _Input, warnings: list[str]) -> list[tuple[int, str, dict]]:
    """``(frame, file name, document)`` per OpenPose file, sorted by frame."""
    source = inp.source
    if inp.kind == "json":
        frame = _openpose_frame(os.path.basename(source), source)
        return [(0 if frame is None else frame, os.path.basename(source), inp.data)]
    if inp.kind != "dir":
        raise TrackFormatError(f"{source}: OpenPose output is a folder of per-frame .json files (or one of them)")
    names = sorted(f for f in os.listdir(source) if f.lower().endswith(".json"))
    if len(names) > MAX_PERSON_FRAMES:
        raise TrackFormatError(f"{source}: {len(names)} .json files, more than MAX_PERSON_FRAMES = "
                               f"{MAX_PERSON_FRAMES}")
    docs, owner, other, undated = [], {}, [], []
    for name in names:
        path = os.path.join(source, name)
        data = load_json(path)
        if not isinstance(data, dict) or not isinstance(data.get("people"), list):
            other.append(name)
            continue
        frame = _openpose_frame(name, path)
        if frame is None:
            undated.append(name)
            continue
        if frame in owner:
            raise TrackFormatError(
                f"{source}: {owner[frame]} and {name} are both frame {frame} (frame = last digit group of the "
                "name); the folder mixes several videos or cameras - pass a folder with one camera's files")
        owner[frame] = name
        docs.append((frame, name, data))
    if not docs:
        raise TrackFormatError(f"{source}: no OpenPose per-frame .json file (an object with a 'people' list) "
                               f"among {len(names)} .json file(s)" + (f"; {len(undated)} have no frame number in "
                                                                      "their name" if undated else ""))
    if other:
        warnings.append(f"skipped {len(other)} .json file(s) without a 'people' list (e.g. {other[0]})")
    if undated:
        warnings.append(f"skipped {len(undated)} OpenPose file(s) without a frame number in the name "
                        f"(e.g. {undated[0]})")
    return sorted(docs, key=lambda d: d[0])


def _person_id(person: dict, what: str) -> int | None:
    """``person_id`` / ``person_idx`` (``[-1]`` = not tracked, OpenPose's default)."""
    for key in ("person_idx", "person_id"):
        raw = person.get(key)
        if isinstance(raw, list) and len(raw) == 1:
            raw = raw[0]
        if raw is None:
            continue
        if isinstance(raw, bool) or not isinstance(raw, int) or abs(raw) > np.iinfo(np.int64).max:
            raise TrackFormatError(f"{what}.{key} must be an integer id, got {describe(raw)}")
        if raw >= 0:
            return raw
    return None


def _read_openpose(inp: _Input, joint_set: str | None, opts: _Options) -> TrackSet:
    """OpenPose JSON output (``--write_json``): one file per frame.

    Layout per OpenPose ``doc/02_output.md`` ("JSON-UI Output Format"): ``{"version": ...,
    "people": [{"person_id": [-1], "pose_keypoints_2d": [x, y, c] * K, ...}]}``; the demo names
    files ``<video>_<12 digits>_keypoints.json``, other tools ``cam01.0000.json`` and the like:
    every ``*.json`` holding ``people`` is read, its frame index is the last digit group of the
    file name.  K = 25 (BODY_25, or BODY_25B of openpose_train's experimental_models README; told
    apart by geometry, :func:`_body25_variant`), 18 (COCO-18) or 135 (BODY_135, body part used).
    ``person_id`` (OpenPose ``--tracking``) is the track id when set (>= 0); OpenPose's default
    ``[-1]`` means untracked, and multi-person untracked files are tracked (module docstring).
    """
    warnings: list[str] = []
    docs = _openpose_documents(inp, warnings)
    dets = _Detections(inp.source, lambda a, b: f"{docs[a][1]} people[{b}]")
    empty = 0
    for d, (frame, name, data) in enumerate(docs):
        if not isinstance(data, dict) or not isinstance(data.get("people"), list):
            raise TrackFormatError(f"{inp.source}: expected an OpenPose object with a 'people' list")
        for k, person in enumerate(data["people"]):
            what = f"{name} people[{k}]"
            if not isinstance(person, dict):
                raise TrackFormatError(f"{inp.source}: {what} is not an object")
            kp = person.get("pose_keypoints_2d")
            if kp is None or kp == []:
                empty += 1
                continue
            kp = _check_numbers(kp, f"{inp.source}: {what}.pose_keypoints_2d")
            if len(kp) % 3:
                raise TrackFormatError(f"{inp.source}: {what}.pose_keypoints_2d has {len(kp)} values, not x, y, c "
                                       "triples")
            arr = np.asarray(kp, dtype=np.float64).reshape(-1, 3)
            dets.add(frame, _person_id(person, f"{inp.source}: {what}"), arr, None, None, (d, k))
    if empty:
        warnings.append(f"skipped {empty} OpenPose person entr(ies) without pose_keypoints_2d")
    if not len(dets):
        raise TrackFormatError(f"{inp.source}: no person with pose_keypoints_2d in the OpenPose file(s)")
    k = dets.num_joints
    found = _by_count(k, _OPENPOSE_JOINT_SETS)
    if k == 25:
        found = _resolve_25(dets, joint_set if joint_set in ("body25", "body25b") else None, inp.source, warnings)
    found = found or f"{k} joints"
    joint_set = _want(joint_set, found, _OPENPOSE_JOINT_SETS, inp.source,
                      f"OpenPose people have {k} joints ({3 * k} values; BODY_25 / BODY_25B have 75, COCO-18 54, "
                      "BODY_135 405)")
    return _finish(dets, joint_set=joint_set, opts=opts, warnings=warnings, meta={"input_format": "openpose"},
                   hint="run OpenPose with --tracking to get person_id")


#: median geometry residual below which a BODY_25 / BODY_25B hypothesis is accepted
_LAYOUT_TOLERANCE = 0.3


def _residual(kp: np.ndarray, j: int, a: int, b: int, scale: np.ndarray) -> np.ndarray:
    """``(N,)`` distance of joint j from the midpoint of a and b over ``scale``; NaN where any
    of the three is undetected."""
    seen = (kp[:, [j, a, b], 2] > 0.05).all(axis=1)
    d = np.linalg.norm(kp[:, j, :2] - 0.5 * (kp[:, a, :2] + kp[:, b, :2]), axis=1)
    return np.where(seen, d / scale, np.nan)


def _layout_residuals(kp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per detection of 25-joint OpenPose keypoints ``(N, 25, 3)``: how far the BODY_25 and
    the BODY_25B relations are from holding, ``(N,)`` each (NaN where unseen).

    BODY_25 has a Neck (1) at the middle of the shoulders (2, 5) and a MidHip (8) at the middle
    of the hips (9, 12) (openpose doc/02_output.md).  BODY_25B has COCO order with an UpperNeck
    (17) between the mid-shoulder point and the nose (0) (openpose_train experimental_models
    README).  Residuals are in units of max(width of the pair, 0.2 x the person's height)."""
    kp = kp.astype(np.float64)
    vis = kp[..., 2] > 0.05
    ys = np.where(vis, kp[..., 1], np.nan)
    with np.errstate(invalid="ignore"), _warnings.catch_warnings():
        _warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: no usable detection
        height = np.nanmax(ys, axis=1) - np.nanmin(ys, axis=1)
        floor = np.maximum(0.2 * np.nan_to_num(height), 1.0)

        def scale(a, b):
            return np.maximum(np.linalg.norm(kp[:, a, :2] - kp[:, b, :2], axis=1), floor)

        e25 = np.nanmean(np.stack([_residual(kp, 1, 2, 5, scale(2, 5)), _residual(kp, 8, 9, 12, scale(9, 12))]), 0)
    mid = kp.copy()
    mid[:, 5, :2] = 0.5 * (kp[:, 5, :2] + kp[:, 6, :2])
    mid[:, 5, 2] = np.minimum(kp[:, 5, 2], kp[:, 6, 2])
    return e25, _residual(mid, 17, 5, 0, scale(5, 6))


def _layout_of(e25: np.ndarray, e25b: np.ndarray) -> tuple[str | None, float, float]:
    """The layout whose median residual is below :data:`_LAYOUT_TOLERANCE` while the other's is
    not (None when both or neither fit), and the two medians."""
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore", RuntimeWarning)
        m25, m25b = float(np.nanmedian(e25)) if e25.size else np.nan, float(np.nanmedian(e25b)) if e25b.size else np.nan
    fits = {"body25": m25 < _LAYOUT_TOLERANCE, "body25b": m25b < _LAYOUT_TOLERANCE}
    return (next(k for k, v in fits.items() if v) if sum(fits.values()) == 1 else None), m25, m25b


def _body25_variant(kp: np.ndarray, source: str) -> str:
    """``"body25"`` or ``"body25b"`` for 25-joint OpenPose keypoints ``(N, 25, 3)``, by geometry
    (:func:`_layout_residuals`, first 5,000 detections).

    Raises:
        TrackFormatError: both or neither hypothesis fits (asks for ``--format``).
    """
    layout, m25, m25b = _layout_of(*_layout_residuals(kp[:5000]))
    if layout is not None:
        return layout
    raise TrackFormatError(
        f"{source}: 25 joints per person, but the geometry does not tell BODY_25 from BODY_25B (median residual "
        f"of Neck/MidHip at mid-shoulders/mid-hips: {m25:.2f}; of UpperNeck between shoulders and nose: "
        f"{m25b:.2f}; a layout fits below {_LAYOUT_TOLERANCE}); pass --format body25 or --format body25b")


#: BODY_25B joint (by name) for each BODY_25 joint; Neck and MidHip are the middles of the
#: shoulders and of the hips (how BODY_25 defines them)
_B_TO_25 = {"neck": ("left_shoulder", "right_shoulder"), "mid_hip": ("left_hip", "right_hip")}


def _convert_25(kp: np.ndarray, src: str, dst: str) -> np.ndarray:
    """``(N, 25, 3)`` keypoints of layout ``src`` in the joint order of ``dst`` (BODY_25 <->
    BODY_25B, by joint name): BODY_25's Neck / MidHip from the shoulders / hips (the lower
    score), BODY_25B's UpperNeck / HeadTop missing (score 0)."""
    s, d = get_skeleton(src), get_skeleton(dst)
    out = np.zeros_like(kp)
    for j, name in enumerate(d.joint_names):
        if name in s.joint_names:
            out[:, j] = kp[:, s.index(name)]
        elif name in _B_TO_25:
            a, b = (kp[:, s.index(n)] for n in _B_TO_25[name])
            seen = (a[:, 2] > 0) & (b[:, 2] > 0)
            out[:, j, :2] = np.where(seen[:, None], 0.5 * (a[:, :2] + b[:, :2]), 0.0)
            out[:, j, 2] = np.where(seen, np.minimum(a[:, 2], b[:, 2]), 0.0)
    return out


def _resolve_25(dets: _Detections, forced: str | None, source: str, warnings: list[str]) -> str:
    """BODY_25 or BODY_25B for a 25-joint OpenPose input, decided per file: files of the other
    layout than the majority are converted to it (:func:`_convert_25`) with a warning; a forced
    ``--format`` wins but is warned about when the geometry says otherwise."""
    n = len(dets)
    kp, doc = dets.keypoints[:n], dets.loc[:n, 0]
    e25, e25b = _layout_residuals(kp)
    per_file = {}
    for d in np.unique(doc):  # a file decides only when its geometry is clear (few people: noisy)
        rows = doc == d
        layout, m25, m25b = _layout_of(e25[rows], e25b[rows])
        own, other = (m25, m25b) if layout == "body25" else (m25b, m25)
        clear = layout is not None and own < _LAYOUT_TOLERANCE / 2 and other > 2 * _LAYOUT_TOLERANCE
        per_file[int(d)] = layout if clear else None
    counts = {k: sum(v == k for v in per_file.values()) for k in ("body25", "body25b")}
    if forced is not None:
        other = "body25b" if forced == "body25" else "body25"
        if counts[other] > counts[forced]:
            warnings.append(f"--format {forced}, but the geometry of {counts[other]} of {len(per_file)} file(s) "
                            f"fits {other.upper().replace('BODY', 'BODY_')}: read as {forced} as asked")
        return forced
    if not counts["body25"] and not counts["body25b"]:
        return _body25_variant(kp, source)  # no single file decides: the whole input (or the error)
    major = "body25" if counts["body25"] >= counts["body25b"] else "body25b"
    minor = "body25b" if major == "body25" else "body25"
    if counts[minor]:
        convert = np.isin(doc, [d for d, v in per_file.items() if v == minor])
        dets.keypoints[:n][convert] = _convert_25(kp[convert], minor, major)
        warnings.append(f"mixed OpenPose layouts: {counts[major]} file(s) BODY_{major[4:].upper()} and "
                        f"{counts[minor]} BODY_{minor[4:].upper()} (by geometry); the {counts[minor]} were "
                        f"converted to BODY_{major[4:].upper()} by joint name")
    return major


# --------------------------------------------------------------------------- MMPose


def _mmpose_frames(data: Any, source: str) -> list[tuple[int, list, str]]:
    """``(frame, instances, location)`` of every MMPose layout (see :func:`_read_mmpose`)."""
    def frame_list(items: list, where: str) -> list[tuple[int, list, str]]:
        if items and all(isinstance(x, dict) and "keypoints" in x for x in items):
            return [(0, items, where)]  # one image: the instance list itself
        out = []
        for i, fr in enumerate(items):
            w = f"{where}[{i}]"
            if not isinstance(fr, dict) or "frame_id" not in fr or not isinstance(fr.get("instances"), list):
                raise TrackFormatError(f"{source}: {w} must be an object with 'frame_id' and an 'instances' list, "
                                       f"got {describe(fr)}")
            out.append((_frame_index(fr["frame_id"], f"{source}: {w}.frame_id"), fr["instances"], w))
        return out

    def predictions(preds: Any, where: str, first: int) -> list[tuple[int, list, str]]:
        if not isinstance(preds, list) or not all(isinstance(p, list) for p in preds):
            raise TrackFormatError(f"{source}: {where} must be a list with one list of instances per image")
        return [(first + i, p, f"{where}[{i}]") for i, p in enumerate(preds)]

    if isinstance(data, dict) and "instance_info" in data:
        if not isinstance(data["instance_info"], list):
            raise TrackFormatError(f"{source}: 'instance_info' must be a list")
        return frame_list(data["instance_info"], "instance_info")
    if isinstance(data, dict) and "predictions" in data:
        return predictions(data["predictions"], "predictions", 0)
    if isinstance(data, list) and data and isinstance(data[0], dict) and "predictions" in data[0]:
        out: list[tuple[int, list, str]] = []
        for i, res in enumerate(data):
            if not isinstance(res, dict) or "predictions" not in res:
                raise TrackFormatError(f"{source}: [{i}] has no 'predictions' (one inferencer result per frame)")
            out += predictions(res["predictions"], f"[{i}].predictions", len(out))
        return out
    if isinstance(data, list):
        return frame_list(data, "")
    raise TrackFormatError(f"{source}: expected MMPose output ('instance_info' or 'predictions')")


def _read_mmpose(inp: _Input, joint_set: str | None, opts: _Options) -> TrackSet:
    """MMPose predictions: demo ``--save-predictions`` and the 1.x ``MMPoseInferencer``.

    Layouts per the MMPose user guide "Inference with existing models"
    (https://mmpose.readthedocs.io/en/latest/user_guides/inference.html) and the demo scripts:
    ``{"meta_info": {...}, "instance_info": [{"frame_id": i, "instances": [inst, ...]}]}``
    (``--save-predictions``; for one image ``instance_info`` is the instance list), the
    inferencer's ``pred_out_dir`` files (a list of ``{"frame_id", "instances"}`` for a video,
    the instance list for an image) and its results ``{"predictions": [[inst, ...]]}`` (one
    list per image; a JSON list of such results is read frame after frame).  An instance is
    ``{"keypoints": [[x, y], ...], "keypoint_scores": [...], "bbox": [[x1, y1, x2, y2]],
    "bbox_score": s, "track_id"?}``; MMPose writes no ``track_id``, so multi-person files are
    tracked (module docstring).  ``frame_id`` is kept as written.  K = 17 (COCO) or 26 (Halpe);
    whole-body K = 133 (COCO-WholeBody) or 136 (Halpe) are read as their body part (:data:`WHOLE_BODY`).
    """
    source = inp.source
    if inp.kind != "json":
        raise TrackFormatError(f"{source}: MMPose predictions must be a JSON file")
    frames = _mmpose_frames(inp.data, source)
    dets = _Detections(source, lambda a, b: f"{frames[a][2]}.instances[{b}]" if frames[a][2] else f"[{b}]")
    for f, (frame, instances, fw) in enumerate(frames):
        if not isinstance(instances, list):
            raise TrackFormatError(f"{source}: {fw}.instances must be a list")
        for j, inst in enumerate(instances):
            _add_mmpose_instance(dets, frame, inst, (f, j))
    if not len(dets):
        raise TrackFormatError(f"{source}: MMPose file has no instances")
    warnings: list[str] = []
    _body_part(dets, warnings)
    k = dets.num_joints
    joint_set = _want(joint_set, _by_count(k, _MMPOSE_JOINT_SETS) or f"{k} joints", _MMPOSE_JOINT_SETS, source,
                      f"MMPose instances have {k} keypoints")
    return _finish(dets, joint_set=joint_set, opts=opts, warnings=warnings, meta={"input_format": "mmpose"},
                   hint="add 'track_id' to the instances")


def _add_mmpose_instance(dets: _Detections, frame: int, inst: Any, loc: tuple[int, int]) -> None:
    """One MMPose instance (layout of :func:`_read_mmpose`) -> one detection row."""
    what = f"{dets.source}: {dets.describe(*loc)}"
    if not isinstance(inst, dict) or not isinstance(inst.get("keypoints"), list):
        raise TrackFormatError(f"{what} has no 'keypoints' list")
    pts = inst["keypoints"]
    arr = np.ones((len(pts), 3), np.float64)
    for n, pt in enumerate(pts):
        pt = _check_numbers(pt, f"{what}.keypoints[{n}]")
        if len(pt) not in (2, 3):
            raise TrackFormatError(f"{what}.keypoints[{n}] has {len(pt)} values, expected [x, y]")
        arr[n, :2] = pt[:2]
    if inst.get("keypoint_scores") is not None:
        arr[:, 2] = _check_numbers(inst["keypoint_scores"], f"{what}.keypoint_scores", len(pts))
    box = inst.get("bbox")
    if isinstance(box, list) and len(box) == 1 and isinstance(box[0], list):
        box = box[0]
    if box is not None:
        x1, y1, x2, y2 = _check_numbers(box, f"{what}.bbox", 4)
        box = [x1, y1, x2 - x1, y2 - y1]
    tid = inst.get("track_id")
    if tid is not None and (isinstance(tid, bool) or not isinstance(tid, int) or abs(tid) > np.iinfo(np.int64).max):
        raise TrackFormatError(f"{what}.track_id must be an integer, got {describe(tid)}")
    dets.add(frame, tid, arr, box, _score(inst.get("bbox_score"), f"{what}.bbox_score"), loc)


# --------------------------------------------------------------------------- MediaPipe


def _add_mediapipe_frames(dets: _Detections, lm: np.ndarray, frames: np.ndarray, size: tuple[int, int]) -> None:
    """Normalised landmarks ``(T, 33, C)`` -> pixel rows; all-NaN frames (no detection) skipped."""
    w, h = size
    for t in range(lm.shape[0]):
        row = lm[t]
        if not np.isfinite(row[:, :2]).any():
            continue
        kp = np.ones((33, 3), np.float64)
        kp[:, 0] = row[:, 0] * w
        kp[:, 1] = row[:, 1] * h
        if row.shape[1] >= 4:
            kp[:, 2] = row[:, 3]
        dets.add(int(frames[t]), None, kp, None, None, (int(frames[t]), 0))
    if not len(dets):
        raise TrackFormatError(f"{dets.source}: no frame has MediaPipe landmarks")


_MP_FRAME = ("frame", "frame_index", "frame_id", "frame_idx", "frame_no", "frame_number", "image_id")
_MP_LANDMARK = ("landmarkid", "landmark_id", "landmark", "landmark_index", "joint", "joint_id", "keypoint", "id")
_MP_COORD = {"x": 0, "y": 1, "z": 2, "visibility": 3, "v": 3, "vis": 3}
_MP_WIDE = (re.compile(r"^(?P<c>x|y|z|visibility|vis|v)_?(?P<i>\d+)$"),
            re.compile(r"^(?:landmark_?|lm_?|kp_?)?(?P<i>\d+)_?(?P<c>x|y|z|visibility|vis|v)$"))


def _csv_float(value: str, what: str) -> float:
    try:
        return float(value) if value.strip() else np.nan
    except ValueError:
        raise TrackFormatError(f"{what}: {describe(value)} is not a number") from None


def _mediapipe_csv(table: list[list[str]], source: str) -> tuple[np.ndarray, np.ndarray] | None:
    """``(frames (T,), landmarks (T, 33, 4))`` (x, y, z, visibility; NaN = absent, visibility
    1 when the layout has none) of a MediaPipe CSV table, or None when its header is no
    MediaPipe layout. Layouts (the ones MediaPipe scripts write; MediaPipe has no file format):
    long, one row per landmark (``Frame,LandmarkID,X,Y[,Z][,Visibility]``; without a frame
    column, rows of 33 landmarks per frame such as ``Landmark_X,Landmark_Y,Landmark_Z``), and
    wide, one row per frame (``x0,y0,z0,visibility0,...,x32,...`` or ``0_x,...``, an optional
    frame column). Column names are case-insensitive.

    Raises:
        TrackFormatError: cells that are not numbers, landmark ids outside 0-32, a frame twice.
    """
    head = [h.strip().lower().replace(" ", "_") for h in table[0]]
    rows = table[1:]
    frame_col = next((head.index(n) for n in _MP_FRAME if n in head), None)
    wide = {}
    for k, h in enumerate(head):
        m = next((p.match(h) for p in _MP_WIDE if p.match(h)), None)
        if m and int(m["i"]) < 33:
            wide[k] = (int(m["i"]), _MP_COORD[m["c"]])
    coords = {k: _MP_COORD[h.rsplit("_", 1)[-1]] for k, h in enumerate(head)
              if h.rsplit("_", 1)[-1] in ("x", "y", "z", "visibility") and k not in wide}
    if {j for j, _ in wide.values()} >= set(range(33)):  # wide: x0..x32 at least
        frames = np.array([_csv_float(r[frame_col], f"{source}: row {i + 2}") if frame_col is not None else i
                           for i, r in enumerate(rows)], np.float64)
        lm = np.full((len(rows), 33, 4), np.nan)
        lm[..., 3] = 1.0
        for i, r in enumerate(rows):
            for k, (j, c) in wide.items():
                lm[i, j, c] = _csv_float(r[k] if k < len(r) else "", f"{source}: row {i + 2}, column {table[0][k]!r}")
        return frames, lm
    if not {0, 1} <= set(coords.values()):
        return None
    lm_col = next((head.index(n) for n in _MP_LANDMARK if n in head), None)
    values = np.full((len(rows), 4), np.nan)
    values[:, 3] = 1.0
    for i, r in enumerate(rows):
        for k, c in coords.items():
            values[i, c] = _csv_float(r[k] if k < len(r) else "", f"{source}: row {i + 2}, column {table[0][k]!r}")
    if lm_col is None:  # blocks of 33 rows, one per frame
        if len(rows) % 33:
            raise TrackFormatError(f"{source}: {len(rows)} landmark rows without a landmark id column; expected "
                                   "blocks of 33 (one per frame)")
        return np.arange(len(rows) // 33, dtype=np.float64), values.reshape(-1, 33, 4)
    ids = np.array([_csv_float(r[lm_col], f"{source}: row {i + 2}") for i, r in enumerate(rows)])
    if not ((ids >= 0) & (ids < 33) & (ids == np.round(ids))).all():
        raise TrackFormatError(f"{source}: landmark ids must be 0-32 (MediaPipe Pose's 33 landmarks)")
    fr = (np.array([_csv_float(r[frame_col], f"{source}: row {i + 2}") for i, r in enumerate(rows)])
          if frame_col is not None else np.arange(len(rows)) // 33)
    frames, inv = np.unique(fr, return_inverse=True)
    lm = np.full((len(frames), 33, 4), np.nan)
    lm[..., 3] = 1.0
    lm[inv, ids.astype(int)] = values
    return frames, lm


def _read_mediapipe_csv(inp: _Input, opts: _Options) -> TrackSet:
    """A MediaPipe CSV table (:func:`_mediapipe_csv`) -> tracks: normalised coordinates (all
    x, y within [-0.5, 1.5]) need ``--image-size WxH``; larger ones are taken as pixels."""
    source = inp.source
    parsed = _mediapipe_csv(inp.data, source)
    if parsed is None:
        raise _not_a_known_format(source, "a CSV table whose columns are no MediaPipe layout")
    frames, lm = parsed
    if not (np.isfinite(frames).all() and (frames == np.round(frames)).all() and (frames >= 0).all()):
        raise TrackFormatError(f"{source}: frame numbers must be integers >= 0")
    if len(np.unique(frames)) != len(frames):
        raise TrackFormatError(f"{source}: a frame occurs twice; MediaPipe Pose gives one person per frame")
    xy = lm[..., :2][np.isfinite(lm[..., :2])]
    normalised = bool(xy.size) and float(np.abs(xy - 0.5).max()) <= 1.0
    size = opts.image_size
    if normalised and size is None:
        raise TrackFormatError(f"{source}: the landmarks are normalised to [0, 1] and the CSV has no image size: "
                               "pass --image-size WxH (the video's width and height in pixels)")
    dets = _Detections(source, lambda a, b: f"frame {a}")
    _add_mediapipe_frames(dets, lm, frames.astype(np.int64), size if normalised else (1, 1))
    return _finish(dets, joint_set="mediapipe33", opts=opts, warnings=[],
                   meta={"input_format": "mediapipe-csv", "normalised": normalised}, hint="",
                   image_size=size if normalised else None)


def _read_mediapipe(inp: _Input, joint_set: str | None, opts: _Options) -> TrackSet:
    """MediaPipe Pose landmarks, as JSON (layout defined here; MediaPipe has no file format) or
    arrays (:func:`_read_arrays`).

    Landmark definition per Google AI Edge "Pose landmark detection guide"
    (https://ai.google.dev/edge/mediapipe/solutions/vision/pose_landmarker): 33 landmarks with
    normalised ``x``, ``y`` in [0, 1] of the image width / height, ``z``, ``visibility``.
    Accepted JSON::

        {"image_width": W, "image_height": H, "fps": 30.0,        # fps optional
         "frames": [{"frame_index": 0,                            # optional, default: list position
                     "landmarks": [{"x": .5, "y": .4, "z": -.1, "visibility": .99}, ...]  # 33, or
                               # [[x, y, z, visibility], ...] (z, visibility optional) or null / []
                    }, ...]}

    Confidence = ``visibility`` (1 when absent).  Pixel = x * W, y * H; W and H are required
    (or the ``image_size`` argument).  One person per frame (MediaPipe Pose is single-person).
    CSV tables as MediaPipe scripts write them: :func:`_mediapipe_csv`.
    """
    if inp.kind == "arrays":
        return _read_arrays(inp, "mediapipe", opts)
    if inp.kind == "csv":
        return _read_mediapipe_csv(inp, opts)
    source, data = inp.source, inp.data
    if inp.kind != "json" or not isinstance(data, dict) or not isinstance(data.get("frames"), list):
        raise TrackFormatError(f"{source}: expected a MediaPipe object with a 'frames' list")
    size = opts.image_size
    if size is None:
        if data.get("image_width", data.get("width")) is None or data.get("image_height", data.get("height")) is None:
            raise TrackFormatError(f"{source}: MediaPipe landmarks are normalised to [0, 1]; the file needs "
                                   "'image_width' and 'image_height' (pixels) to convert them")
        size = (_pixels(data.get("image_width", data.get("width")), f"{source}: image_width"),
                _pixels(data.get("image_height", data.get("height")), f"{source}: image_height"))
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
                                   f"{len(lms) if isinstance(lms, list) else describe(lms)}")
        if len(rows) >= MAX_PERSON_FRAMES:
            raise TrackFormatError(f"{source}: more than MAX_PERSON_FRAMES = {MAX_PERSON_FRAMES} frames")
        row = np.full((33, 4), np.nan)
        row[:, 2:] = [0.0, 1.0]
        for j, lm in enumerate(lms):
            what = f"{source}: frames[{i}].landmarks[{j}]"
            if isinstance(lm, dict):
                if "x" not in lm or "y" not in lm:
                    raise TrackFormatError(f"{what} has no 'x'/'y'")
                vals = _check_numbers([lm["x"], lm["y"], lm.get("z", 0.0), lm.get("visibility", 1.0)],
                                      what + " (x, y, z, visibility)")
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
    dets = _Detections(source, lambda a, b: f"frame {a}")
    _add_mediapipe_frames(dets, np.stack(rows), np.asarray(frames), size)
    return _finish(dets, joint_set="mediapipe33", opts=opts, warnings=[], meta={"input_format": "mediapipe"},
                   hint="", fps=_file_fps(data.get("fps"), source, "fps"), image_size=size)


# --------------------------------------------------------------------------- arrays (npy / npz)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler for the object arrays of ``np.save`` (VideoPose3D's dictionaries): only numpy
    arrays, dtypes and scalars may be constructed, so a file cannot run code."""

    _ALLOWED = {(m, n) for m in ("numpy.core.multiarray", "numpy._core.multiarray")
                for n in ("_reconstruct", "scalar")} | {("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _read_npy(f: Any, source: str, key: str) -> Any:
    """One .npy stream, its header checked against :data:`MAX_ARRAY_BYTES` before reading."""
    what = f"{source}: array {key or '(npy)'}"
    try:
        version = np.lib.format.read_magic(f)
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = reader(f)
    except Exception as e:  # ValueError on a malformed header, EOFError, ...
        raise TrackFormatError(f"{what}: not a readable .npy header ({type(e).__name__}: {e})") from None
    if dtype.hasobject:
        blob = f.read(MAX_ARRAY_BYTES + 1)
        if len(blob) > MAX_ARRAY_BYTES:
            raise TrackFormatError(f"{what}: pickled object data larger than MAX_ARRAY_BYTES = {MAX_ARRAY_BYTES}")
        try:
            return _ArrayUnpickler(io.BytesIO(blob), encoding="latin1").load()
        except Exception as e:
            raise TrackFormatError(f"{what}: holds Python objects that are not plain arrays / dictionaries "
                                   f"({type(e).__name__}: {e})") from None
    nbytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if nbytes > MAX_ARRAY_BYTES:
        raise TrackFormatError(f"{what}: declares shape {shape} {dtype} ({nbytes / 2**20:.0f} MB), larger than "
                               f"MAX_ARRAY_BYTES = {MAX_ARRAY_BYTES >> 20} MB")
    data = f.read(nbytes)
    if len(data) != nbytes:
        raise TrackFormatError(f"{what}: truncated ({len(data)} of {nbytes} bytes for shape {shape})")
    return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C")


def _load_arrays(source: str, head: bytes) -> dict[str, Any]:
    """Arrays of a .npy (key ``""``) or .npz file, each size-checked before it is read."""
    try:
        if head.startswith(b"PK"):
            out = {}
            with zipfile.ZipFile(source) as z:
                for info in z.infolist():
                    key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                    with z.open(info) as f:
                        out[key] = _read_npy(f, source, key)
            return out
        with open(source, "rb") as f:
            return {"": _read_npy(f, source, "")}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, NotImplementedError) as e:
        raise TrackFormatError(f"{source}: not a readable .npy/.npz array file ({type(e).__name__}: {e})") from None


def _numeric(a: Any, source: str, key: str) -> np.ndarray:
    """``a`` as float64, when it is a numeric array whose float64 copy fits :data:`MAX_ARRAY_BYTES`
    x 8 (the raw limit at 1 byte per value). Raises TrackFormatError otherwise."""
    if not isinstance(a, np.ndarray) or not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise TrackFormatError(f"{source}: array {key or '(npy)'} holds {getattr(a, 'dtype', type(a).__name__)}; "
                               "expected numbers")
    if a.size * 8 > 8 * MAX_ARRAY_BYTES:
        raise TrackFormatError(f"{source}: array {key or '(npy)'} has {a.size} values, more than MAX_ARRAY_BYTES = "
                               f"{MAX_ARRAY_BYTES >> 20} MB allows")
    try:
        return a.astype(np.float64)
    except MemoryError:
        raise TrackFormatError(f"{source}: array {key or '(npy)'} of shape {a.shape} does not fit in memory") from None


def _main_array(arrays: dict, source: str) -> tuple[str, np.ndarray]:
    keys = [k for k in ("keypoints_2d", "positions_2d", "landmarks") if k in arrays]
    three = [k for k, a in arrays.items() if isinstance(a, np.ndarray) and a.ndim == 3]
    objects = [k for k, a in arrays.items() if not isinstance(a, np.ndarray) or a.dtype == object]
    if objects and not three and not keys:
        raise TrackFormatError(
            f"{source}: holds Python objects (e.g. the VideoPose3D per-subject dictionaries of data_2d_h36m_*.npz) "
            "in " + ", ".join(repr(k or '(npy)') for k in objects) + "; expected numeric arrays (T, 17, 2|3) or a "
            "VideoPose3D data_2d_custom_*.npz (positions_2d[video]['custom'])")
    if keys:
        key = keys[0]
    elif len(three) == 1:
        key = three[0]
    else:
        raise TrackFormatError(f"{source}: npz keys {sorted(arrays)}; expected 'keypoints_2d', 'positions_2d', "
                               "'landmarks' or a single (T, J, C) array")
    a = _numeric(arrays[key], source, key)
    if a.ndim != 3 or a.shape[0] == 0:
        raise TrackFormatError(f"{source}: array {key or '(npy)'} has shape {a.shape}; expected (T, 17, 2|3) "
                               "Human3.6M or (T, 33, 2..5) MediaPipe with T >= 1")
    if a.shape[0] > MAX_PERSON_FRAMES:
        raise TrackFormatError(f"{source}: {a.shape[0]} frames, more than MAX_PERSON_FRAMES = {MAX_PERSON_FRAMES}")
    return key, a


def _read_h36m(inp: _Input, joint_set: str | None, opts: _Options) -> TrackSet:
    """Human3.6M-order 2D arrays ``(T, 17, 2)`` pixels or ``(T, 17, 3)`` pixels + confidence.

    Joints in the 17-joint Human3.6M order of VideoPose3D (``DATASETS.md`` of
    facebookresearch/VideoPose3D) -- :data:`lifting.skeletons.H36M17`.  npz key
    ``keypoints_2d`` or ``positions_2d``, or the only 3-D array; optional scalar ``fps``.
    Frame t of the array is frame index t; all-NaN frames are dropped.
    """
    return _read_arrays(inp, "h36m", opts)


def _read_arrays(inp: _Input, reader: str, opts: _Options) -> TrackSet:
    source = inp.source
    if inp.kind != "arrays":
        raise TrackFormatError(f"{source}: format {reader!r} expects a .npy/.npz array file")
    arrays = inp.data
    if not arrays:
        raise TrackFormatError(f"{source}: npz archive holds no arrays")
    key, a = _main_array(arrays, source)
    fps = _file_fps(arrays.get("fps"), source, "fps")
    dets = _Detections(source, lambda a, b: f"frame {a}")
    if reader == "h36m":
        if a.shape[1] != 17 or a.shape[2] not in (2, 3):
            raise TrackFormatError(f"{source}: array {key or '(npy)'} has shape {a.shape}; expected (T, 17, 2|3) "
                                   "in Human3.6M joint order")
        _add_array_frames(dets, a, None)
        return _finish(dets, joint_set="h36m17", opts=opts, warnings=[], meta={"input_format": "h36m"}, hint="",
                       fps=fps)
    if a.shape[1] != 33 or not 2 <= a.shape[2] <= 5:
        raise TrackFormatError(f"{source}: array {key or '(npy)'} has shape {a.shape}; expected (T, 33, 2..5) "
                               "MediaPipe landmarks")
    size = opts.image_size
    if size is None:
        if "image_width" not in arrays or "image_height" not in arrays:
            raise TrackFormatError(f"{source}: MediaPipe landmarks are normalised to [0, 1]; the npz needs "
                                   "'image_width' and 'image_height' (or pass image_size=(w, h)); a .npy cannot "
                                   "carry them")
        size = (_pixels(arrays["image_width"], f"{source}: image_width"),
                _pixels(arrays["image_height"], f"{source}: image_height"))
    _add_mediapipe_frames(dets, a, np.arange(a.shape[0]), size)
    return _finish(dets, joint_set="mediapipe33", opts=opts, warnings=[], meta={"input_format": "mediapipe"},
                   hint="", fps=fps, image_size=size)


def _add_array_frames(dets: _Detections, a: np.ndarray, tid: int | None) -> None:
    """``(T, J, 2|3|4)`` pixel arrays -> one row per frame with any finite joint (confidence 1
    when the array has only x, y; a 4th channel is ignored)."""
    kp = np.ones(a.shape[:2] + (3,))
    c = min(a.shape[2], 3)
    kp[..., :c] = a[..., :c]
    for t in np.flatnonzero(np.isfinite(kp[:, :, :2]).any(axis=(1, 2))):
        dets.add(int(t), tid, kp[t], None, None, (int(t), 0 if tid is None else tid))
    if not len(dets):
        raise TrackFormatError(f"{dets.source}: every frame is NaN; no keypoints")


def _read_videopose3d(inp: _Input, joint_set: str | None, opts: _Options) -> TrackSet:
    """VideoPose3D custom 2D archive ``data_2d_custom_<name>.npz``.

    Layout per VideoPose3D ``INFERENCE.md`` and ``data/prepare_data_2d_custom.py``: pickled
    ``positions_2d = {video: {"custom": [array (T, 17, 2|3)]}}`` and ``metadata = {"layout_name":
    "coco", "num_joints": 17, "keypoints_symmetry": ..., "video_metadata": {video: {"w", "h"}}}``,
    from its Detectron2 inference script (COCO-17 keypoint order, one person per video).  Read
    with a restricted unpickler (arrays and dictionaries only).  Each video is one track (ids
    0, 1, ... in sorted video-name order; ``meta["videos"]`` maps id -> name); ``image_size``
    is set when all videos share one size.  ``layout_name`` ``"h36m"`` gives h36m17.
    """
    source, arrays = inp.source, inp.data
    if inp.kind != "arrays":
        raise TrackFormatError(f"{source}: format 'videopose3d' expects a data_2d_custom_*.npz archive")
    pos, meta_arr = arrays.get("positions_2d"), arrays.get("metadata")
    pos = pos.item() if isinstance(pos, np.ndarray) and pos.dtype == object and pos.size == 1 else pos
    meta = meta_arr.item() if isinstance(meta_arr, np.ndarray) and meta_arr.dtype == object else meta_arr
    if not isinstance(pos, dict) or not pos:
        raise TrackFormatError(f"{source}: expected VideoPose3D 'positions_2d' = {{video: {{'custom': [array]}}}}")
    meta = meta if isinstance(meta, dict) else {}
    layout = meta.get("layout_name", "coco")
    found = {"coco": "coco17", "h36m": "h36m17"}.get(layout) if isinstance(layout, str) else None
    if found is None:
        raise TrackFormatError(f"{source}: metadata.layout_name {describe(layout)}; expected 'coco' or 'h36m'")
    if joint_set is not None and joint_set != found:
        raise TrackFormatError(f"{source}: --format {joint_set!r} requested but layout_name is {layout!r}")
    names = sorted(map(str, pos))
    dets = _Detections(source, lambda a, b: f"video {names[b]!r} frame {a}")
    for tid, name in enumerate(names):
        entry = pos[name] if name in pos else pos[next(k for k in pos if str(k) == name)]
        cams = entry.get("custom") if isinstance(entry, dict) else None
        if not isinstance(cams, (list, tuple)) or not cams:
            raise TrackFormatError(f"{source}: positions_2d[{name!r}] has no 'custom' list of arrays")
        a = _numeric(cams[0], source, f"positions_2d[{name!r}]['custom'][0]")
        if a.ndim != 3 or a.shape[1] != 17 or a.shape[2] not in (2, 3, 4):
            raise TrackFormatError(f"{source}: positions_2d[{name!r}]['custom'][0] has shape {a.shape}; expected "
                                   "(T, 17, 2|3)")
        _add_array_frames(dets, a, tid)
    video_meta = meta.get("video_metadata") or {}
    if not isinstance(video_meta, dict):
        raise TrackFormatError(f"{source}: metadata.video_metadata must be a dictionary {{video: {{'w', 'h'}}}}, got "
                               f"{describe(video_meta)}")
    sizes = set()
    for name in names:
        vm = video_meta.get(name, {})
        if isinstance(vm, dict) and "w" in vm and "h" in vm:
            sizes.add((_pixels(vm["w"], f"{source}: video_metadata[{name!r}].w"),
                       _pixels(vm["h"], f"{source}: video_metadata[{name!r}].h")))
    size = sizes.pop() if len(sizes) == 1 else None
    ts = _finish(dets, joint_set=found, opts=opts, warnings=[], image_size=size, hint="",
                 meta={"input_format": "videopose3d", "videos": dict(enumerate(names))})
    for t in ts.tracks:  # one track per video (its id the video's index): outputs carry the video's name
        t.name = names[t.track_id] if 0 <= t.track_id < len(names) else ""
    return ts


# --------------------------------------------------------------------------- loading, detection, entry point


def _load(source: str) -> _Input:
    """Check ``source`` and load it once (see :class:`_Input`)."""
    size = check_input_file(source, allow_dir=True)
    if os.path.isdir(source):
        return _Input(source, "dir")
    with open(source, "rb") as f:
        head = f.read(8)
    if head.startswith(b"PK") or head.startswith(b"\x93NUMPY"):
        return _Input(source, "arrays", _load_arrays(source, head))
    if source.lower().endswith((".npy", ".npz")):
        raise TrackFormatError(f"{source}: not a readable .npy/.npz array file (no npy/zip signature)")
    if size > records.STREAM_BYTES:  # read through the module: tests lower it
        return _Input(source, "stream")  # parsed incrementally by the reader; sampled only to detect
    table = _csv_table(source)
    if table is not None:
        return _Input(source, "csv", table)
    try:
        return _Input(source, "json", load_json(source))
    except TrackFormatError as e:
        if "invalid JSON" in str(e) and not _starts_like_json(source):
            raise _not_a_known_format(source, "neither JSON, nor a table, nor a .npy/.npz array file") from None
        raise


def _starts_like_json(source: str) -> bool:
    with open(source, "rb") as f:
        return f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"[")


def _csv_table(source: str) -> list[list[str]] | None:
    """The rows of a text file that is a comma/semicolon/tab separated table (a header and at
    least one row, 2+ columns, not starting like JSON), parsed by the standard ``csv`` module;
    None for anything else (JSON is then tried)."""
    try:
        with open(source, encoding="utf-8-sig", newline="") as f:
            text = f.read(records.STREAM_BYTES + 1)
    except (UnicodeDecodeError, OSError):
        return None
    if not text.strip() or text.lstrip()[:1] in ("{", "["):
        return None
    first = text.lstrip().split("\n", 1)[0]
    delim = max(",;\t", key=first.count)
    if not first.count(delim):
        return None
    try:
        rows = [r for r in csv.reader(io.StringIO(text), delimiter=delim) if any(c.strip() for c in r)]
    except csv.Error:
        return None
    return rows if len(rows) >= 2 and len(rows[0]) >= 2 else None


def _not_a_known_format(source: str, what: str) -> TrackFormatError:
    """The error for input that is no format we read: says what it looks like and lists the formats."""
    return TrackFormatError(f"{source}: {what}; the formats read are {', '.join(READER_FORMATS)} (the README's "
                            "format table; CSV tables: MediaPipe landmarks). Pass --format if it is one of them")


def _is_mmpose(data: Any) -> bool:
    if isinstance(data, dict):
        return "instance_info" in data or "predictions" in data
    first = data[0] if isinstance(data, list) and data else None
    return isinstance(first, dict) and ("predictions" in first or "instances" in first or "keypoint_scores" in first)


def _record_joints(records: Any) -> int | None:
    """Joints per person of the first record with a keypoint list (COCO-style results)."""
    if isinstance(records, dict):
        records = records.get("annotations")
    for rec in records if isinstance(records, list) else ():
        if isinstance(rec, dict) and isinstance(rec.get("keypoints"), list):
            return len(rec["keypoints"]) // 3
    return None


def _detect(inp: _Input) -> str:
    """The :data:`FORMATS` name for loaded input."""
    data, source = inp.data, inp.source
    if inp.kind == "stream":
        data = _json_sample(source)
    if inp.kind == "dir":
        return "openpose"
    if inp.kind == "csv":
        if _mediapipe_csv(inp.data, source) is None:
            raise _not_a_known_format(source, "a CSV table whose columns are no MediaPipe layout")
        return "mediapipe"
    if inp.kind == "arrays":
        pos = data.get("positions_2d")
        if isinstance(pos, dict) or (isinstance(pos, np.ndarray) and pos.dtype == object):
            return "videopose3d"
        shapes = [a.shape for a in data.values() if isinstance(a, np.ndarray) and a.ndim == 3]
        return "mediapipe" if "landmarks" in data or any(s[1] == 33 for s in shapes) else "h36m"
    if _is_mmpose(data):
        return "mmpose"
    if isinstance(data, dict):
        if "people" in data:
            return "openpose"
        if "images" in data and "annotations" in data:
            return "coco-annotations"
        if "frames" in data:
            return "mediapipe"
        if "annotations" not in data:
            keys = ", ".join(sorted(map(str, data))[:8]) or "none"
            raise TrackFormatError(
                f"{source}: unrecognised JSON object (keys: {keys}); expected COCO results ('annotations' or a "
                "record list), a COCO annotation file ('images' + 'annotations'), OpenPose ('people'), MMPose "
                "('instance_info' / 'predictions') or MediaPipe ('frames')")
    elif not isinstance(data, list):
        raise TrackFormatError(f"{source}: top-level JSON is a {type(data).__name__}; expected an object or a list")
    return "halpe26" if _record_joints(data) == 26 else "coco"


def detect_format(path: str | os.PathLike) -> str:
    """The :data:`FORMATS` name :func:`read_tracks` would use for ``path`` (e.g. ``"coco"``).

    Raises:
        TrackFormatError: unreadable or unrecognised input.
    """
    return _detect(_load(os.fsdecode(os.fspath(path))))


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




@dataclass(frozen=True)
class InputFormat:
    """One ``fmt`` name: the reader that parses it and the joint set it forces (``None``: the
    reader infers it from the content)."""

    reader: Callable[[_Input, str | None, _Options], TrackSet]
    joint_set: str | None = None


#: The one table of input-format names (``--format`` values) -> reader and joint set.
FORMATS: dict[str, InputFormat] = {
    "coco": InputFormat(_read_coco), "coco-results": InputFormat(_read_coco),
    "coco17": InputFormat(_read_coco, "coco17"),
    "halpe26": InputFormat(_read_coco, "halpe26"), "halpe": InputFormat(_read_coco, "halpe26"),
    "alphapose": InputFormat(_read_coco, "halpe26"),
    "coco-annotations": InputFormat(_read_coco_annotations),
    "openpose": InputFormat(_read_openpose), "body25": InputFormat(_read_openpose, "body25"),
    "body25b": InputFormat(_read_openpose, "body25b"), "coco18": InputFormat(_read_openpose, "coco18"),
    "body135": InputFormat(_read_openpose, "body135"),
    "mmpose": InputFormat(_read_mmpose),
    "mediapipe": InputFormat(_read_mediapipe, "mediapipe33"), "mediapipe33": InputFormat(_read_mediapipe, "mediapipe33"),
    "h36m": InputFormat(_read_h36m, "h36m17"), "h36m17": InputFormat(_read_h36m, "h36m17"),
    "videopose3d": InputFormat(_read_videopose3d), "vp3d": InputFormat(_read_videopose3d),
}
#: The primary format names (one per layout; the others in :data:`FORMATS` are aliases).
READER_FORMATS = ("coco", "coco-annotations", "openpose", "mmpose", "mediapipe", "h36m", "halpe26", "videopose3d")


def _format_entry(fmt: Any) -> InputFormat | None:
    if fmt is None:
        return None
    if not isinstance(fmt, str):
        raise ValueError(f"format must be a string, got {describe(fmt)}")
    key = fmt.strip().lower().replace("_", "-")
    key = {"body-25": "body25", "body-25b": "body25b", "body-135": "body135"}.get(key, key)
    if key not in FORMATS:
        raise ValueError(f"unknown input format {fmt!r}; known: {', '.join(sorted(FORMATS))}")
    return FORMATS[key]


def _options(fps: Any, image_size: Any, tracker: Any, tracker_config: Any) -> _Options:
    if fps is not None and not positive_finite(fps):
        raise ValueError(f"fps must be a finite number > 0, got {describe(fps)}")
    if image_size is not None:
        try:
            w, h = image_size
        except (TypeError, ValueError):
            raise ValueError(f"image_size must be (width, height) in pixels, got {describe(image_size)}") from None
        if not (positive_finite(w) and positive_finite(h)):
            raise ValueError(f"image_size must be two numbers > 0 (pixels), got {describe(image_size)}")
        image_size = (int(w), int(h))
    if tracker not in TRACKERS:
        raise ValueError(f"tracker must be one of {list(TRACKERS)}, got {describe(tracker)}")
    if tracker_config is not None and not hasattr(tracker_config, "cost"):
        raise ValueError(f"tracker_config must be a lifting.io.tracking.TrackerConfig, got {describe(tracker_config)}")
    return _Options(None if fps is None else float(fps), image_size, tracker, tracker_config)


def read_tracks(
    path: str | os.PathLike,
    fmt: str | None = None,
    fps: float | None = None,
    *,
    image_size: tuple[int, int] | None = None,
    tracker: str = "auto",
    tracker_config: Any = None,
) -> TrackSet:
    """Read 2D person tracks from any supported pose-estimator output (module docstring).

    Args:
        path: file, or folder of OpenPose per-frame JSON files.
        fmt: a :data:`FORMATS` name (``coco``, ``coco17``, ``halpe26``, ``coco-annotations``,
            ``openpose``, ``body25``, ``body25b``, ``coco18``, ``body135``, ``mmpose``,
            ``mediapipe``, ``h36m``, ``videopose3d``, ...); ``None`` = detect from the content.
        fps: frame rate; overrides any rate stored in the file.
        image_size: ``(width, height)`` pixels; needed for normalised MediaPipe landmarks whose
            file does not carry them, and overrides a size from the file.
        tracker: ``"auto"``, ``"none"``, ``"oks+iou"``, ``"oks"`` or ``"iou"`` (module
            docstring, "Tracking"); ``"stills"``: the frames are unrelated photos, every
            person becomes its own one-frame track (e.g. a COCO annotation file as real poses).
        tracker_config: a :class:`lifting.io.tracking.TrackerConfig` (its ``cost`` is set from
            ``tracker``); ``None`` = its defaults.

    Returns:
        :class:`TrackSet`: ``keypoint_format`` a :func:`lifting.skeletons.get_skeleton` name,
        tracks with ``frame_ids (T,)`` int64, ``keypoints (T, K, 3)`` float32 (x, y pixels,
        confidence in [0, 1]), ``bbox (T, 4)`` ``[x, y, w, h]`` px / ``score (T,)`` or None;
        ``tracking`` says how ids were obtained.

    Raises:
        ValueError: invalid ``fmt``, ``fps``, ``image_size``, ``tracker`` or ``tracker_config``.
        TrackFormatError: missing, non-regular, oversized, unreadable or inconsistent input,
            untracked multi-person input with ``tracker="none"``, a 25-joint OpenPose file whose
            layout is ambiguous (the message says what was found and what was expected).
    """
    entry = _format_entry(fmt)
    opts = _options(fps, image_size, tracker, tracker_config)
    inp = _load(os.fsdecode(os.fspath(path)))
    if entry is None:
        entry = FORMATS[_detect(inp)]
    return entry.reader(inp, entry.joint_set, opts)


def read_coco_tracks(
    path: str | os.PathLike,
    *,
    fps: float | None = None,
    keypoint_format: str | None = None,
    tracker: str = "auto",
) -> TrackSet:
    """Read a COCO-style keypoint results JSON file (layouts of :mod:`lifting.io.tracks`).

    A thin wrapper around :func:`read_tracks` with ``fmt="coco"`` (or
    ``fmt=keypoint_format`` when given): there is one record parser, in
    this module.  See :func:`read_tracks` for the returned
    arrays (``keypoints (T, K, 3)`` float32, x, y pixels, confidence in [0, 1]), the
    tracking of untracked multi-person files and the errors raised
    (:class:`TrackFormatError` for content, ``ValueError`` for arguments).
    """
    if keypoint_format is not None and (not isinstance(keypoint_format, str)
                                        or keypoint_format.strip().lower() not in ("coco", *RECORD_JOINT_SETS)):
        raise ValueError(f"keypoint_format must be one of {list(RECORD_JOINT_SETS)} for COCO-style records, "
                         f"got {describe(keypoint_format)}")
    return read_tracks(path, "coco" if keypoint_format is None else keypoint_format, fps, tracker=tracker)
