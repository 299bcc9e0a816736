"""Read and write 2D keypoint tracks stored as COCO-style keypoint result records.

This is the entry point for user-supplied 2D detections: the output of an
off-the-shelf 2D pose pipeline (MMPose, Detectron2, AlphaPose, ...) on a video,
grouped into per-person tracks that the lifting models consume.  numpy only.

Accepted file layouts (UTF-8 JSON)
----------------------------------
1. Object form (what :func:`write_coco_tracks` writes)::

       {"meta": {"fps": 10.0, "width": 768, "height": 576, "frames": 795,
                 "keypoint_format": "coco17", ...},      # optional, every key optional
        "annotations": [record, record, ...]}

2. Bare list form: ``[record, record, ...]`` -- the COCO keypoint *results* format
   written by MMPose / Detectron2 / AlphaPose.

A record follows the COCO results format (https://cocodataset.org/#format-results)
plus a track id::

    {"image_id": 12,             # frame index (int), or a file name such as "000012.jpg"
     "track_id": 3,              # optional; AlphaPose writes it as "idx"
     "category_id": 1,           # optional; records with a value other than 1 (person) are skipped
     "bbox": [x, y, w, h],       # optional, pixels; AlphaPose writes it as "box"
     "score": 0.93,              # optional, detection score
     "keypoints": [x1, y1, c1, x2, y2, c2, ...]}   # pixels, pixels, confidence

The AlphaPose spellings ``idx`` (track id) and ``box`` (bbox) are documented in
AlphaPose's ``docs/output.md``.

Cleaning policy (each applied count is reported in :attr:`TrackSet.warnings`)
-----------------------------------------------------------------------------
* Masking: a joint whose x or y is NaN or +-inf gets ``x = y = 0`` and confidence 0.
  Downstream code must treat confidence 0 as "joint missing"; the 0 coordinates are
  placeholders, never positions.  A non-finite confidence becomes 0 (x, y kept).
* Clipping: confidences are clipped to [0, 1].  Some detectors emit scores above 1
  (OpenPose-like heatmap maxima; AlphaPose documents [0, 6] for COCO models).
* Negative coordinates are legal (joints outside the image) and kept as they are.
* Records whose ``category_id`` is not 1 (person) are skipped.

All content problems raise :class:`TrackFormatError` (a ``ValueError``) with a message
naming the file, the problem and, where relevant, the record index; raw
``KeyError`` / ``TypeError`` / ``json.JSONDecodeError`` never escape the reader.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .fileio import atomic_write

__all__ = [
    "KEYPOINT_FORMATS",
    "Track",
    "TrackFormatError",
    "TrackSet",
    "read_coco_tracks",
    "write_coco_tracks",
]

#: Supported keypoint layouts: format name -> number of joints K.
KEYPOINT_FORMATS: dict[str, int] = {"coco17": 17}

# Other spellings of the format names above (matched after lower-casing).
_FORMAT_ALIASES: dict[str, str] = {"coco": "coco17", "coco_17": "coco17", "coco-17": "coco17"}

_PERSON_CATEGORY = 1
_DIGIT_RUN = re.compile(r"\d+")


class TrackFormatError(ValueError):
    """A keypoint-track file is missing, unreadable, not JSON, or not in the expected layout.

    Subclass of ``ValueError``.  The message names the file and the problem, plus the
    0-based record index (position in the annotation list) where one record is at fault.
    """


def clean_keypoints(kp: np.ndarray, warnings: list[str]) -> np.ndarray:
    """Apply the cleaning policy of the module docstring to keypoints ``(..., K, 3)`` (x, y,
    confidence); returns a float32 copy and appends one line per kind of fix to ``warnings``.
    Values that overflow float32 count as non-finite."""
    with np.errstate(over="ignore", invalid="ignore"):
        kp = np.array(kp, dtype=np.float64).astype(np.float32)
    _note_cleaning(_clean_in_place(kp), warnings)
    return kp


_CLEANING_NOTES = (
    "masked {} joint(s) with non-finite x/y (set x = y = 0, confidence 0)",
    "set {} non-finite confidence value(s) to 0",
    "clipped {} confidence value(s) outside [0, 1]",
)


def _clean_in_place(kp: np.ndarray) -> np.ndarray:
    """Clean float32 keypoints ``(..., K, 3)`` in place (policy of the module docstring);
    returns the counts ``(3,)`` int64: masked joints, non-finite confidences, clipped confidences."""
    bad_xy = ~np.isfinite(kp[..., 0]) | ~np.isfinite(kp[..., 1])
    kp[bad_xy] = 0.0
    conf = kp[..., 2]
    bad_conf = ~np.isfinite(conf)
    conf[bad_conf] = 0.0
    out_of_range = (conf < 0.0) | (conf > 1.0)
    np.clip(conf, 0.0, 1.0, out=conf)
    return np.array([bad_xy.sum(), bad_conf.sum(), out_of_range.sum()], dtype=np.int64)


def _note_cleaning(counts: np.ndarray, warnings: list[str]) -> None:
    """Append the warning line of each non-zero count of :func:`_clean_in_place`."""
    warnings.extend(note.format(int(n)) for note, n in zip(_CLEANING_NOTES, counts) if n)


# --------------------------------------------------------------------------- data classes


@dataclass
class Track:
    """One person's 2D keypoints over the frames where they were detected.

    Attributes:
        track_id: integer track identity (``track_id`` / AlphaPose ``idx`` in the file;
            0 for single-person files without ids).
        frame_ids: ``(T,)`` int64 frame indices, strictly increasing.  Gaps are allowed:
            frames where the person was not detected are simply absent.
        keypoints: ``(T, K, 3)`` float32; ``[..., 0:2]`` is x, y in image pixels (origin
            top-left, may be negative), ``[..., 2]`` the confidence in [0, 1].  A joint
            with confidence 0 is missing and its x, y are placeholders.
        bbox: ``(T, 4)`` float32 person boxes ``[x, y, w, h]`` in pixels, or ``None`` when
            none of the track's records had a box.  Rows of records without a box are NaN.
        score: ``(T,)`` float32 detection scores (detector units, not necessarily in
            [0, 1]), or ``None`` when no record had one.  Missing entries are NaN.

    Raises:
        ValueError: on construction, if the arrays have inconsistent shapes, frame_ids is
            not an integer array, or frame_ids is not strictly increasing.
    """

    track_id: int
    frame_ids: np.ndarray
    keypoints: np.ndarray
    bbox: np.ndarray | None = None
    score: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.track_id = int(self.track_id)
        frames = np.asarray(self.frame_ids)
        if frames.ndim != 1:
            raise ValueError(f"track {self.track_id}: frame_ids must be 1-D, got shape {frames.shape}")
        if frames.size and not np.issubdtype(frames.dtype, np.integer):
            raise ValueError(f"track {self.track_id}: frame_ids must be integers, got dtype {frames.dtype}")
        self.frame_ids = frames.astype(np.int64, copy=False)
        if np.any(np.diff(self.frame_ids) <= 0):
            raise ValueError(f"track {self.track_id}: frame_ids must be strictly increasing")
        n = self.frame_ids.shape[0]
        self.keypoints = np.asarray(self.keypoints, dtype=np.float32)
        if self.keypoints.ndim != 3 or self.keypoints.shape[0] != n or self.keypoints.shape[2] != 3:
            raise ValueError(
                f"track {self.track_id}: keypoints must have shape ({n}, K, 3), got {self.keypoints.shape}"
            )
        if self.bbox is not None:
            self.bbox = np.asarray(self.bbox, dtype=np.float32)
            if self.bbox.shape != (n, 4):
                raise ValueError(f"track {self.track_id}: bbox must have shape ({n}, 4), got {self.bbox.shape}")
        if self.score is not None:
            self.score = np.asarray(self.score, dtype=np.float32)
            if self.score.shape != (n,):
                raise ValueError(f"track {self.track_id}: score must have shape ({n},), got {self.score.shape}")

    def __len__(self) -> int:
        """Number of detected frames T."""
        return int(self.frame_ids.shape[0])

    @property
    def num_joints(self) -> int:
        """Number of joints K per frame."""
        return int(self.keypoints.shape[1])


@dataclass
class TrackSet:
    """All person tracks of one video, as returned by :func:`read_coco_tracks`.

    Attributes:
        tracks: list of :class:`Track`, sorted by ``track_id`` (ids are unique).
        fps: frames per second (from the ``fps`` argument or ``meta.fps``), ``None`` if unknown.
        keypoint_format: joint layout name, e.g. ``"coco17"`` (see :data:`KEYPOINT_FORMATS`).
        image_size: ``(width, height)`` in pixels from ``meta``, or ``None``.
        source: the path that was read (``""`` for sets built in memory).
        warnings: human-readable notes on records skipped and values masked or clipped.
        meta: the file's ``meta`` object as read (empty for bare-list files); other keys
            (e.g. ``frames``, ``video``) are kept here and written back by
            :func:`write_coco_tracks`.
    """

    tracks: list[Track]
    fps: float | None
    keypoint_format: str
    image_size: tuple[int, int] | None
    source: str
    warnings: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num_person_frames(self) -> int:
        """Total number of (track, frame) detections over all tracks."""
        return sum(len(t) for t in self.tracks)

    @property
    def track_ids(self) -> list[int]:
        """Track ids in ascending order."""
        return [t.track_id for t in self.tracks]


# --------------------------------------------------------------------------- small parsers


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _normalize_format(name: Any, what: str, source: str | None) -> str:
    """Return the canonical format name or raise (TrackFormatError if from a file, else ValueError)."""
    exc = ValueError if source is None else TrackFormatError
    prefix = "" if source is None else f"{source}: "
    if not isinstance(name, str):
        raise exc(f"{prefix}{what} must be a string such as 'coco17', got {_describe(name)}")
    key = name.strip().lower()
    key = _FORMAT_ALIASES.get(key, key)
    if key not in KEYPOINT_FORMATS:
        supported = ", ".join(f"{k!r} ({n} joints)" for k, n in KEYPOINT_FORMATS.items())
        raise exc(f"{prefix}unknown {what} {name!r}; supported: {supported}")
    return key


def _positive_finite(value: Any) -> bool:
    try:
        return _is_number(value) and math.isfinite(value) and value > 0
    except OverflowError:  # int too large for a float
        return False


_INT64_MAX = np.iinfo(np.int64).max


def _parse_image_id(value: Any, source: str, index: int) -> int:
    """Frame index of a record: an int, an integral float, or the last digit run of a file-name stem."""
    where = f"{source}: record {index}"
    if _is_number(value):
        if isinstance(value, float):
            if not (math.isfinite(value) and value.is_integer()):
                raise TrackFormatError(f"{where}: image_id {value!r} is not an integer frame index")
            value = int(value)
        frame = value
    elif isinstance(value, str):
        stem = os.path.splitext(value.replace("\\", "/").rsplit("/", 1)[-1])[0]
        runs = _DIGIT_RUN.findall(stem)
        if not runs:
            raise TrackFormatError(
                f"{where}: image_id {value!r} contains no integer frame number "
                "(expected an int or a name such as '000123.jpg')"
            )
        frame = int(runs[-1])
    else:
        raise TrackFormatError(
            f"{where}: image_id must be an integer frame index or a file name, got {_describe(value)}"
        )
    if frame < 0:
        raise TrackFormatError(f"{where}: image_id {frame} is negative; frame indices start at 0")
    if frame > _INT64_MAX:
        raise TrackFormatError(f"{where}: image_id {frame} is too large for a frame index")
    return frame


def _parse_track_id(rec: dict, source: str, index: int) -> int | None:
    """Track id from ``track_id`` or AlphaPose's ``idx``; None when the record has neither."""
    where = f"{source}: record {index}"
    values = {}
    for key in ("track_id", "idx"):
        raw = rec.get(key)
        if raw is None:
            continue
        # Some AlphaPose versions wrap the id in a one-element list.
        if isinstance(raw, list) and len(raw) == 1:
            raw = raw[0]
        if _is_number(raw) and (isinstance(raw, int) or (math.isfinite(raw) and raw.is_integer())):
            if abs(int(raw)) > _INT64_MAX:
                raise TrackFormatError(f"{where}: {key} {raw} is too large for a track id")
            values[key] = int(raw)
        else:
            raise TrackFormatError(f"{where}: {key} must be an integer track id, got {_describe(rec.get(key))}")
    if not values:
        return None
    if len(values) == 2 and values["track_id"] != values["idx"]:
        raise TrackFormatError(
            f"{where}: track_id {values['track_id']} and idx {values['idx']} disagree "
            "(idx is AlphaPose's name for the track id)"
        )
    return next(iter(values.values()))


def _numbers(value: Any, name: str, source: str, index: int) -> list:
    """Check that ``value`` is a JSON array of numbers (NaN/inf allowed) and return it."""
    where = f"{source}: record {index}"
    if not isinstance(value, list):
        raise TrackFormatError(f"{where}: {name} must be a list of numbers, got {_describe(value)}")
    for pos, v in enumerate(value):
        if type(v) is not float:
            if type(v) is not int:  # excludes bool, str, None, nested lists
                raise TrackFormatError(f"{where}: {name}[{pos}] is not a number: {_describe(v)}")
            if abs(v) > 1e300:
                raise TrackFormatError(f"{where}: {name}[{pos}] is too large: {_describe(v)}")
    return value


# --------------------------------------------------------------------------- reading


def _load_json(source: str) -> Any:
    if not os.path.exists(source):
        raise TrackFormatError(f"{source}: file not found")
    if os.path.isdir(source):
        raise TrackFormatError(f"{source}: is a directory, expected a JSON file")
    try:
        with open(source, encoding="utf-8-sig") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise TrackFormatError(f"{source}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    except OSError as e:
        raise TrackFormatError(f"{source}: cannot read file ({e.strerror or e})") from e
    if not text.strip():
        raise TrackFormatError(f"{source}: file is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise TrackFormatError(
            f"{source}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}"
        ) from e
    except RecursionError as e:
        raise TrackFormatError(f"{source}: invalid JSON: nested too deeply") from e


#: files larger than this are parsed incrementally (``ijson``); records of any file go straight
#: into per-track numpy buffers, so memory follows the keypoint arrays rather than Python's
#: object tree of the whole document
STREAM_BYTES = 64 * 2**20


def _stream_top_level(source: str) -> tuple[dict, Any]:
    """Streaming counterpart of ``_split_top_level(_load_json(source))`` for large files:
    ``(meta, lazy iterator of records)``. Large files must be strict JSON (no NaN literals)."""
    import ijson

    with open(source, "rb") as f:
        head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head[:1] == b"[":
        meta: Any = {}
        prefix = "item"
    elif head[:1] == b"{":
        try:
            with open(source, "rb") as f:
                metas = list(ijson.items(f, "meta", use_float=True))
        except ijson.JSONError as e:
            raise TrackFormatError(f"{source}: invalid JSON ({e})") from None
        meta = metas[0] if metas and metas[0] is not None else {}
        if not isinstance(meta, dict):
            raise TrackFormatError(f"{source}: 'meta' must be a JSON object, got {type(meta).__name__}")
        prefix = "annotations.item"
    else:
        raise TrackFormatError(f"{source}: top level is not a JSON list or object")

    def records():
        try:
            with open(source, "rb") as f:
                yield from ijson.items(f, prefix, use_float=True)
        except ijson.JSONError as e:
            raise TrackFormatError(f"{source}: invalid JSON ({e}); files over {STREAM_BYTES >> 20} MB are read "
                                   "as strict JSON (no NaN/Infinity literals)") from None

    return meta, records()


def _split_top_level(data: Any, source: str) -> tuple[dict, list]:
    if isinstance(data, list):
        meta: Any = {}
        records = data
    elif isinstance(data, dict):
        if "annotations" not in data:
            keys = ", ".join(sorted(map(str, data))[:8]) or "none"
            raise TrackFormatError(
                f"{source}: top-level JSON object has no 'annotations' list (keys: {keys}); expected "
                "{'meta': {...}, 'annotations': [records]} or a bare list of records"
            )
        records = data["annotations"]
        if not isinstance(records, list):
            raise TrackFormatError(f"{source}: 'annotations' must be a list of records, got {type(records).__name__}")
        meta = data.get("meta")
        if meta is None:
            meta = {}
        if not isinstance(meta, dict):
            raise TrackFormatError(f"{source}: 'meta' must be a JSON object, got {type(meta).__name__}")
    else:
        raise TrackFormatError(
            f"{source}: top level is a JSON {type(data).__name__}; expected a list of records "
            "or an object with an 'annotations' list"
        )
    if not records:
        raise TrackFormatError(f"{source}: annotation list is empty (no detections)")
    return meta, records


def _image_size(meta: dict, source: str, warnings: list[str]) -> tuple[int, int] | None:
    width, height = meta.get("width"), meta.get("height")
    if width is None and height is None:
        return None
    if width is None or height is None:
        warnings.append("meta has only one of width/height; image_size left unknown")
        return None
    size = []
    for name, v in (("width", width), ("height", height)):
        if not (_positive_finite(v) and float(v).is_integer()):
            raise TrackFormatError(f"{source}: meta.{name} must be a positive integer (pixels), got {_describe(v)}")
        size.append(int(v))
    return size[0], size[1]


class _TrackBuffer:
    """One track's records while a file is read, as numpy rows (no Python object per record).

    Columns: ``frame_ids`` ``(n,)`` int64, ``records`` ``(n,)`` int64 (position of each record
    in the file, for error messages), ``keypoints`` ``(n, 3K)`` float32 (values that overflow
    float32 become inf, masked later), and -- from the first record that has one -- ``bbox``
    ``(n, 4)`` / ``score`` ``(n,)`` float32 with NaN rows for records without.  The capacity
    doubles when full, so appends cost amortised O(1) and at most half of it is unused.
    """

    def __init__(self, n_values: int, capacity: int = 16) -> None:
        self.size = 0
        self.frame_ids = np.empty(capacity, np.int64)
        self.records = np.empty(capacity, np.int64)
        self.keypoints = np.empty((capacity, n_values), np.float32)
        self.bbox: np.ndarray | None = None
        self.score: np.ndarray | None = None
        self.n_bbox = self.n_score = 0  # records that had a bbox / a score

    def append(self, record: int, frame: int, keypoints: list, bbox: list | None, score: float | None) -> None:
        """Add one record (``keypoints`` 3K numbers, ``bbox`` 4 numbers or None, ``score`` or None)."""
        n = self.size
        if n == len(self.frame_ids):
            self.frame_ids, self.records, self.keypoints, self.bbox, self.score = (
                None if a is None else _doubled(a)
                for a in (self.frame_ids, self.records, self.keypoints, self.bbox, self.score))
        if bbox is not None and self.bbox is None:
            self.bbox = np.empty((len(self.frame_ids), 4), np.float32)
            self.bbox[:n] = np.nan
        if score is not None and self.score is None:
            self.score = np.empty(len(self.frame_ids), np.float32)
            self.score[:n] = np.nan
        self.frame_ids[n] = frame
        self.records[n] = record
        with np.errstate(over="ignore"):  # float32 overflow -> inf: keypoints masked, bbox/score kept as inf
            self.keypoints[n] = keypoints
            if self.bbox is not None:
                self.bbox[n] = np.nan if bbox is None else bbox
            if self.score is not None:
                self.score[n] = np.nan if score is None else score
        self.n_bbox += bbox is not None
        self.n_score += score is not None
        self.size = n + 1

    def frame_order(self) -> np.ndarray:
        """``(n,)`` indices sorting the rows by frame; rows of one frame stay in file order."""
        return np.argsort(self.frame_ids[: self.size], kind="stable")

    def first_repeat(self, order: np.ndarray) -> tuple[int, int, int] | None:
        """``(first record, second record, frame)`` of the earliest record (in file order)
        whose frame an earlier record of this buffer already has, or None."""
        frames, records = self.frame_ids[order], self.records[order]
        repeats = np.flatnonzero(frames[1:] == frames[:-1])  # row p + 1 repeats row p
        if not repeats.size:
            return None
        p = repeats[np.argmin(records[repeats + 1])]
        return int(records[p]), int(records[p + 1]), int(frames[p])


def _doubled(a: np.ndarray) -> np.ndarray:
    """A copy of ``a`` with twice as many rows; the new rows are uninitialised."""
    out = np.empty((2 * len(a),) + a.shape[1:], a.dtype)
    out[: len(a)] = a
    return out


def read_coco_tracks(
    path: str | os.PathLike,
    *,
    fps: float | None = None,
    keypoint_format: str | None = None,
) -> TrackSet:
    """Read per-person 2D keypoint tracks from a COCO-style keypoint results JSON file.

    Accepts the object form ``{"meta": {...}, "annotations": [records]}`` and the bare
    record list of the COCO results format (https://cocodataset.org/#format-results);
    the module docstring lists the record fields.  The track id is ``track_id`` or
    AlphaPose's ``idx`` (AlphaPose docs/output.md).  ``image_id`` is the frame index: an
    int, or a file name whose stem's last digit run is the frame (``"000123.jpg"`` -> 123).
    Records without any track id form one track (id 0) provided no frame has more than
    one record.  Non-finite x/y are masked (x = y = 0, confidence 0), confidences are
    clipped to [0, 1], records with ``category_id`` != 1 are skipped; each is counted in
    ``TrackSet.warnings``.

    Args:
        path: JSON file to read.
        fps: frame rate; overrides ``meta.fps``.  Must be finite and > 0.
        keypoint_format: joint layout (a key of :data:`KEYPOINT_FORMATS`, e.g.
            ``"coco17"``); overrides ``meta.keypoint_format``.  When neither is given it
            is inferred from the number of joints K (17 -> ``"coco17"``).

    Returns:
        :class:`TrackSet` whose tracks hold ``frame_ids`` ``(T,)`` int64,
        ``keypoints`` ``(T, K, 3)`` float32 (x, y in pixels; confidence in [0, 1]),
        ``bbox`` ``(T, 4)`` float32 ``[x, y, w, h]`` pixels or None, ``score`` ``(T,)``
        float32 or None.

    Raises:
        ValueError: ``fps`` or ``keypoint_format`` arguments are invalid.
        TrackFormatError: (a ``ValueError``) file missing or unreadable, empty file,
            invalid JSON (with line/column), wrong top-level layout, empty annotation
            list, a record that is not an object or lacks ``keypoints`` / ``image_id``,
            non-numeric values, keypoint list length not a multiple of 3 or different
            across records, K not matching the keypoint format, invalid meta values,
            multi-person frames without track ids, some records with and some without
            track ids, or two records for the same (track, frame).
    """
    if fps is not None:
        if not _positive_finite(fps):
            raise ValueError(f"fps must be a finite number > 0, got {_describe(fps)}")
        fps = float(fps)
    if keypoint_format is not None:
        keypoint_format = _normalize_format(keypoint_format, "keypoint_format argument", None)

    source = os.fspath(path)
    if isinstance(source, bytes):
        source = os.fsdecode(source)
    if os.path.isfile(source) and os.path.getsize(source) > STREAM_BYTES:
        meta, records = _stream_top_level(source)
    else:
        meta, records = _split_top_level(_load_json(source), source)
    warnings: list[str] = []

    buffers: dict[int | None, _TrackBuffer] = {}  # track id (None: record without one) -> rows
    n_values: int | None = None
    first_kept = -1
    skipped_categories: dict[str, int] = {}

    n_records = 0
    for i, rec in enumerate(records):
        n_records = i + 1
        if not isinstance(rec, dict):
            raise TrackFormatError(f"{source}: record {i} is not a JSON object (got {type(rec).__name__})")
        category = rec.get("category_id", _PERSON_CATEGORY)
        if category is None:
            category = _PERSON_CATEGORY
        if isinstance(category, bool) or category != _PERSON_CATEGORY:
            key = _describe(category)
            skipped_categories[key] = skipped_categories.get(key, 0) + 1
            continue
        if "image_id" not in rec:
            raise TrackFormatError(f"{source}: record {i} has no 'image_id' (frame index)")
        if "keypoints" not in rec:
            raise TrackFormatError(f"{source}: record {i} has no 'keypoints'")
        frame = _parse_image_id(rec["image_id"], source, i)
        tid = _parse_track_id(rec, source, i)
        kp = _numbers(rec["keypoints"], "keypoints", source, i)
        if len(kp) == 0 or len(kp) % 3:
            raise TrackFormatError(
                f"{source}: record {i}: keypoints has {len(kp)} values, expected a non-zero "
                "multiple of 3 (x, y, confidence per joint)"
            )
        if n_values is None:
            n_values, first_kept = len(kp), i
        elif len(kp) != n_values:
            raise TrackFormatError(
                f"{source}: record {i}: keypoints has {len(kp)} values ({len(kp) // 3} joints) but "
                f"record {first_kept} has {n_values} ({n_values // 3} joints); all records must use "
                "the same keypoint format"
            )
        box = rec.get("bbox", rec.get("box"))
        if box is not None:
            box = _numbers(box, "bbox", source, i)
            if len(box) != 4:
                raise TrackFormatError(f"{source}: record {i}: bbox must have 4 values [x, y, w, h], got {len(box)}")
        score = rec.get("score")
        if score is not None and not (_is_number(score) and not (isinstance(score, int) and abs(score) > 1e300)):
            raise TrackFormatError(f"{source}: record {i}: score is not a usable number: {_describe(score)}")

        if tid not in buffers:
            buffers[tid] = _TrackBuffer(n_values)
        buffers[tid].append(i, frame, kp, box, score)

    if skipped_categories:
        total = sum(skipped_categories.values())
        detail = ", ".join(f"{k}: {v}" for k, v in sorted(skipped_categories.items()))
        warnings.append(f"skipped {total} non-person record(s) (category_id != 1; {detail})")
    if not n_records:
        raise TrackFormatError(f"{source}: annotation list is empty (no detections)")
    if not buffers:
        raise TrackFormatError(f"{source}: no person records (category_id 1) among {n_records} record(s)")

    # ---- keypoint format
    assert n_values is not None
    n_joints = n_values // 3
    if keypoint_format is None and meta.get("keypoint_format") is not None:
        keypoint_format = _normalize_format(meta["keypoint_format"], "meta.keypoint_format", source)
    if keypoint_format is None:
        by_count = {n: name for name, n in KEYPOINT_FORMATS.items()}
        if n_joints not in by_count:
            supported = ", ".join(f"{n} ({name})" for n, name in sorted(by_count.items()))
            raise TrackFormatError(
                f"{source}: cannot infer the keypoint format from {n_joints} joints per record; "
                f"supported joint counts: {supported}"
            )
        keypoint_format = by_count[n_joints]
    elif KEYPOINT_FORMATS[keypoint_format] != n_joints:
        raise TrackFormatError(
            f"{source}: keypoint format {keypoint_format!r} has {KEYPOINT_FORMATS[keypoint_format]} joints "
            f"but record {first_kept} has {n_joints} ({n_values} values)"
        )

    # ---- meta: fps, image size
    if fps is None and meta.get("fps") is not None:
        if not _positive_finite(meta["fps"]):
            raise TrackFormatError(f"{source}: meta.fps must be a finite number > 0, got {_describe(meta['fps'])}")
        fps = float(meta["fps"])
    image_size = _image_size(meta, source, warnings)

    # ---- track ids: all records have one or none has (then one track, id 0, one record per frame)
    if None in buffers and len(buffers) > 1:
        missing = int(buffers[None].records[0])
        present = min(int(b.records[0]) for t, b in buffers.items() if t is not None)
        raise TrackFormatError(
            f"{source}: record {missing} has no track id but record {present} has one; "
            "either every person record has a track id ('track_id' or 'idx') or none does"
        )
    orders = {tid: buf.frame_order() for tid, buf in buffers.items()}
    repeats = {tid: buf.first_repeat(orders[tid]) for tid, buf in buffers.items()}
    repeats = {tid: rep for tid, rep in repeats.items() if rep is not None}
    if repeats:  # report the repeat that comes first in the file, as a one-pass check would
        tid = min(repeats, key=lambda t: repeats[t][1])
        first, second, frame = repeats[tid]
        if tid is None:
            raise TrackFormatError(
                f"{source}: records {first} and {second} are both in frame {frame} and there are no "
                "track ids; track ids ('track_id' or AlphaPose 'idx') are required for multi-person "
                "files (this reader does not track people)"
            )
        raise TrackFormatError(f"{source}: track {tid} has two records for frame {frame} "
                               f"(records {first} and {second})")

    # ---- tracks in id order, each buffer freed once its track is built; cleaning counts summed
    tracks: list[Track] = []
    cleaned = np.zeros(3, np.int64)
    missing_box = missing_score = 0
    for tid in sorted(buffers, key=lambda t: 0 if t is None else t):
        buf, rows = buffers.pop(tid), orders.pop(tid)
        kp = buf.keypoints[rows].reshape(len(rows), n_joints, 3)
        cleaned += _clean_in_place(kp)
        bbox = score = None
        if buf.n_bbox:
            bbox, missing_box = buf.bbox[rows], missing_box + buf.size - buf.n_bbox
        if buf.n_score:
            score, missing_score = buf.score[rows], missing_score + buf.size - buf.n_score
        tracks.append(Track(0 if tid is None else tid, buf.frame_ids[rows], kp, bbox, score))
        del buf
    _note_cleaning(cleaned, warnings)
    if missing_box:
        warnings.append(f"{missing_box} record(s) without bbox in tracks that have boxes (rows set to NaN)")
    if missing_score:
        warnings.append(f"{missing_score} record(s) without score in tracks that have scores (set to NaN)")

    return TrackSet(
        tracks=tracks,
        fps=fps,
        keypoint_format=keypoint_format,
        image_size=image_size,
        source=source,
        warnings=warnings,
        meta=dict(meta),
    )


# --------------------------------------------------------------------------- writing


def _short_floats(values: np.ndarray) -> list[float]:
    """float32 values as the shortest decimal floats that read back to the same float32."""
    return [float(s) for s in np.asarray(values, dtype=np.float32).ravel().astype(str)]


def write_coco_tracks(trackset: TrackSet, path: str | os.PathLike) -> None:
    """Write a :class:`TrackSet` as ``{"meta": {...}, "annotations": [records]}`` JSON.

    The output is the object form read by :func:`read_coco_tracks` (records follow the COCO
    results format, https://cocodataset.org/#format-results, plus ``track_id``), one record
    per line, sorted by frame then track id.  ``meta`` is ``trackset.meta`` updated with
    ``keypoint_format``, ``fps`` and ``width`` / ``height`` (pixels) from the TrackSet
    fields.  Per record: ``keypoints`` has K*3 values (x, y pixels, confidence);
    ``bbox`` ``[x, y, w, h]`` pixels and ``score`` are written when present and finite.
    Joints with non-finite x/y are written masked (0, 0, 0) and non-finite confidences as
    0, so the file is strict JSON.  float32 values round-trip exactly.

    The write is atomic: the text goes to a temporary file in the target directory, which
    then replaces ``path`` with ``os.replace``; a failed write leaves ``path`` untouched.

    Raises:
        ValueError: duplicate track ids in ``trackset``.
        TypeError: ``trackset.meta`` holds values that are not JSON-serialisable.
        OSError: the directory does not exist or is not writable.
    """
    ids = [t.track_id for t in trackset.tracks]
    if len(set(ids)) != len(ids):
        raise ValueError("trackset has duplicate track ids; each track id must be unique")

    meta = dict(trackset.meta)
    meta["keypoint_format"] = trackset.keypoint_format
    if trackset.fps is not None:
        meta["fps"] = float(trackset.fps)
    else:
        meta.pop("fps", None)
    if trackset.image_size is not None:
        meta["width"], meta["height"] = (int(v) for v in trackset.image_size)
    else:
        meta.pop("width", None)
        meta.pop("height", None)

    entries: list[tuple[int, int, dict]] = []
    for track in trackset.tracks:
        kp = np.array(track.keypoints, dtype=np.float32)  # copy: masked below
        bad_xy = ~np.isfinite(kp[..., 0]) | ~np.isfinite(kp[..., 1])
        kp[bad_xy] = 0.0
        kp[..., 2][~np.isfinite(kp[..., 2])] = 0.0
        for j, frame in enumerate(track.frame_ids):
            rec: dict[str, Any] = {
                "image_id": int(frame),
                "track_id": track.track_id,
                "category_id": _PERSON_CATEGORY,
            }
            if track.bbox is not None and np.all(np.isfinite(track.bbox[j])):
                rec["bbox"] = _short_floats(track.bbox[j])
            if track.score is not None and np.isfinite(track.score[j]):
                rec["score"] = _short_floats(track.score[j : j + 1])[0]
            rec["keypoints"] = _short_floats(kp[j])
            entries.append((int(frame), track.track_id, rec))
    entries.sort(key=lambda item: (item[0], item[1]))

    lines = ",\n".join(json.dumps(rec, allow_nan=False) for _, _, rec in entries)
    text = '{"meta": ' + json.dumps(meta, allow_nan=False) + ',\n"annotations": [\n' + lines + "\n]}\n"

    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
