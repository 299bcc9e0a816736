"""2D keypoint tracks (:class:`Track`, :class:`TrackSet`) and their COCO-style record layout:
written here (:func:`write_coco_tracks`), read by :func:`lifting.io.readers.read_detections`
(:mod:`lifting.io.readers.coco`, with the shared parsing of :mod:`lifting.io.records`) and
grouped into a :class:`TrackSet` by the track step (:func:`lifting.track.track`;
:func:`lifting.track.read_coco_tracks` does both).

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
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .fileio import atomic_write

__all__ = [
    "Track",
    "TrackFormatError",
    "TrackSet",
    "write_coco_tracks",
    "track_stem",
]

#: COCO category id of a person (records of other categories are skipped by the readers)
PERSON_CATEGORY = 1

#: Largest accepted keypoint coordinate magnitude in pixels; joints beyond it are masked as
#: missing by every reader (cleaning policy of the module docstring).
MAX_ABS_PX = 1e6


class TrackFormatError(ValueError):
    """A keypoint-track file is missing, unreadable, not JSON, or not in the expected layout.

    Subclass of ``ValueError``.  The message names the file and the problem, plus the
    0-based record index (position in the annotation list) where one record is at fault.
    """


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
        name: the input's name for it when it has one (a VideoPose3D video), else ``""``;
            outputs carry it (:func:`track_stem`).

    Raises:
        ValueError: on construction, if the arrays have inconsistent shapes, frame_ids is
            not an integer array, or frame_ids is not strictly increasing.
    """

    track_id: int
    frame_ids: np.ndarray
    keypoints: np.ndarray
    bbox: np.ndarray | None = None
    score: np.ndarray | None = None
    name: str = ""

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
    """All person tracks of one video, as returned by the track step (:func:`lifting.track.track`).

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


# --------------------------------------------------------------------------- writing


def _short_floats(values: np.ndarray) -> list[float]:
    """float32 values as the shortest decimal floats that read back to the same float32."""
    return [float(s) for s in np.asarray(values, dtype=np.float32).ravel().astype(str)]


def track_stem(track_id: int, name: str = "") -> str:
    """The file stem of a track's outputs: ``track_0003``, or ``track_0003_walk`` for a track
    named ``walk.mp4`` (the name's stem, characters other than letters, digits, ``-``, ``_``
    and ``.`` replaced by ``_``, at most 60)."""
    stem = f"track_{int(track_id):04d}"
    if not name:
        return stem
    clean = re.sub(r"[^A-Za-z0-9._-]", "_", Path(str(name)).stem)[:60].strip("._")
    return f"{stem}_{clean}" if clean else stem


def write_coco_tracks(trackset: TrackSet, path: str | os.PathLike) -> None:
    """Write a :class:`TrackSet` as ``{"meta": {...}, "annotations": [records]}`` JSON.

    The output is the object form read by :func:`lifting.track.read_coco_tracks` (records follow the COCO
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
                "category_id": PERSON_CATEGORY,
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
