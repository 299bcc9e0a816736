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
* Masking: a joint whose x or y is NaN, +-inf or beyond :data:`MAX_ABS_PX` in magnitude
  (1e6 px: no camera image is that large; such values are numerical garbage that would
  flatten the lifted skeleton onto the depth axis) gets ``x = y = 0`` and confidence 0.
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
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .fileio import atomic_write

__all__ = [
    "Track",
    "TrackFormatError",
    "TrackSet",
    "read_coco_tracks",
    "write_coco_tracks",
]

_PERSON_CATEGORY = 1

#: Largest accepted keypoint coordinate magnitude in pixels; joints beyond it are masked as
#: missing by every reader (cleaning policy of the module docstring).
MAX_ABS_PX = 1e6
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
    "masked {} joint(s) with non-finite x/y or |x|, |y| > MAX_ABS_PX (set x = y = 0, confidence 0)",
    "set {} non-finite confidence value(s) to 0",
    "clipped {} confidence value(s) outside [0, 1]",
)


def _clean_in_place(kp: np.ndarray) -> np.ndarray:
    """Clean float32 keypoints ``(..., K, 3)`` in place (policy of the module docstring);
    returns the counts ``(3,)`` int64: masked joints, non-finite confidences, clipped confidences."""
    with np.errstate(invalid="ignore"):
        bad_xy = ~(np.abs(kp[..., 0]) <= MAX_ABS_PX) | ~(np.abs(kp[..., 1]) <= MAX_ABS_PX)  # NaN compares False
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
        keypoint_format: joint layout name, e.g. ``"coco17"`` (a :func:`lifting.skeletons.get_skeleton` name).
        image_size: ``(width, height)`` in pixels from ``meta``, or ``None``.
        source: the path that was read (``""`` for sets built in memory).
        warnings: human-readable notes on records skipped and values masked or clipped.
        meta: the file's ``meta`` object as read (empty for bare-list files); other keys
            (e.g. ``frames``, ``video``) are kept here and written back by
            :func:`write_coco_tracks`.
        tracking: JSON-able record of how detections became tracks (for summary.json):
            ``{"method": "ids" | "single" | "oks+iou" | "oks" | "iou", "reason": str}`` plus, when a
            tracker ran, the :class:`lifting.io.tracking.TrackingResult` ``stats`` and
            ``n_dropped`` (detections left without a track). Empty for sets built in memory.
    """

    tracks: list[Track]
    fps: float | None
    keypoint_format: str
    image_size: tuple[int, int] | None
    source: str
    warnings: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    tracking: dict[str, Any] = field(default_factory=dict)

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


# --------------------------------------------------------------------------- reading


def check_input_file(source: str, *, allow_dir: bool = False) -> int:
    """Refuse what cannot be read safely; return the file size in bytes (0 for a folder).

    Raises:
        TrackFormatError: ``source`` is missing ("file not found"), a symlink loop, a folder
            (unless ``allow_dir``), or not a regular file (FIFO, device, socket: reading
            those can block forever or never end, e.g. ``/dev/zero``; ``<(cmd)`` process
            substitution is a pipe, so write the output to a file first).
    """
    try:
        st = os.stat(source)
    except OSError as e:
        if os.path.islink(source):
            raise TrackFormatError(f"{source}: symbolic link that cannot be followed ({e.strerror or e}; a "
                                   "symlink loop or a dangling link)") from None
        if isinstance(e, FileNotFoundError):
            raise TrackFormatError(f"{source}: file not found") from None
        raise TrackFormatError(f"{source}: cannot access ({e.strerror or e})") from None
    if stat.S_ISDIR(st.st_mode):
        if allow_dir:
            return 0
        raise TrackFormatError(f"{source}: is a directory, expected a file")
    if not stat.S_ISREG(st.st_mode):
        kind = ("a FIFO/pipe" if stat.S_ISFIFO(st.st_mode) else "a device" if stat.S_ISCHR(st.st_mode)
                or stat.S_ISBLK(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
        raise TrackFormatError(f"{source}: is {kind}; keypoint input must be a regular file (write a pipe's "
                               "output to a file first)")
    return int(st.st_size)


def _load_json(source: str) -> Any:
    """Parse a JSON file of at most :data:`STREAM_BYTES` bytes (checked before reading)."""
    size = check_input_file(source)
    if size > STREAM_BYTES:
        raise TrackFormatError(f"{source}: {size / 2**20:.0f} MB is larger than the {STREAM_BYTES >> 20} MB read "
                               "whole for this format (only COCO-style record files are streamed)")
    try:
        with open(source, encoding="utf-8-sig") as f:
            text = f.read(STREAM_BYTES + 1)  # bounded even if the file grew since the size check
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


#: JSON files larger than this are not read whole: COCO-style record files are parsed
#: incrementally (``ijson``) into the readers' numpy buffers, other formats are refused.
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


def read_coco_tracks(
    path: str | os.PathLike,
    *,
    fps: float | None = None,
    keypoint_format: str | None = None,
    tracker: str = "auto",
) -> TrackSet:
    """Read a COCO-style keypoint results JSON file (layouts of the module docstring).

    A thin wrapper around :func:`lifting.io.readers.read_tracks` with ``fmt="coco"`` (or
    ``fmt=keypoint_format`` when given): there is one record parser, in
    :mod:`lifting.io.readers`.  See :func:`~lifting.io.readers.read_tracks` for the returned
    arrays (``keypoints (T, K, 3)`` float32, x, y pixels, confidence in [0, 1]), the
    tracking of untracked multi-person files and the errors raised
    (:class:`TrackFormatError` for content, ``ValueError`` for arguments).
    """
    from .readers import read_tracks

    from .readers import RECORD_JOINT_SETS

    if keypoint_format is not None and (not isinstance(keypoint_format, str)
                                        or keypoint_format.strip().lower() not in ("coco", *RECORD_JOINT_SETS)):
        raise ValueError(f"keypoint_format must be one of {list(RECORD_JOINT_SETS)} for COCO-style records, "
                         f"got {_describe(keypoint_format)}")
    return read_tracks(path, "coco" if keypoint_format is None else keypoint_format, fps, tracker=tracker)


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
