"""The *track* step of ``posenet3d lift`` (read -> track -> prepare -> lift -> write): turn the
detections a reader returned (:class:`lifting.io.detections.Detections`) into person tracks
(:class:`lifting.io.tracks.TrackSet`).

Tracking (``tracker`` option of :func:`track`)
----------------------------------------------
``"auto"`` (default): ids from the file when it has them (and they are ids: AlphaPose ``idx``
values that are nested, non-integer or shared by several people in a frame are not, and the
detections are tracked instead); a file with at most one person per frame and no ids is one
track (id 0); otherwise the detections are tracked online
(:func:`lifting.io.tracking.track_detections`; detections it leaves unconfirmed or filters as
spurious are dropped) with the mean of OKS and box IoU (the detector's boxes when every
detection has one, else the tight keypoint boxes): on synthetic sequences with exact ids it is
the one cost close to the best both with and without detector boxes (BENCHMARKS.md,
"Tracking").  When the frame rate is known (``Detections.fps``: the user's or the file's), the
tracker gets it, so its birth and death times are in seconds
(:meth:`lifting.io.tracking.TrackerConfig.frame_counts`); unknown, they are frame counts.
``"none"``: never track (untracked multi-person input is an error, :class:`TrackingNeeded`).
``"oks+iou"`` / ``"oks"`` / ``"iou"``: always track with that similarity, ignoring ids in the
file.  ``"stills"``: the frames are unrelated photos, every person its own one-frame track.
``TrackSet.tracking`` records what was done.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from .io.detections import Detections
from .io.readers import RECORD_JOINT_SETS, read_detections
from .io.records import describe
from .io.tracking import TrackerConfig, oks_sigmas, track_detections
from .io.tracks import Track, TrackFormatError, TrackSet
from .skeletons import get_skeleton

__all__ = ["TRACKERS", "TrackingNeeded", "track", "read_tracks", "read_coco_tracks"]

#: Values of the ``tracker`` option of :func:`track`.
TRACKERS = ("auto", "none", "oks+iou", "oks", "iou", "stills")


class TrackingNeeded(TrackFormatError):
    """Untracked multi-person input tracked with ``tracker="none"`` (a :class:`TrackFormatError`)."""


def _check_tracker(tracker: Any, config: Any) -> None:
    if tracker not in TRACKERS:
        raise ValueError(f"tracker must be one of {list(TRACKERS)}, got {describe(tracker)}")
    if config is not None and not isinstance(config, TrackerConfig):
        raise ValueError(f"tracker_config must be a lifting.io.tracking.TrackerConfig, got {describe(config)}")


def _run_tracker(dets: Detections, tracker: str, config: TrackerConfig | None,
                 reason: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """Track ``dets`` with the cost ``tracker`` names (``"auto"``: ``"oks+iou"``), passing the
    frame rate when known; ``(N,)`` ids (-1 = dropped), ``(N,)`` kept and the record."""
    method = "oks+iou" if tracker == "auto" else tracker
    if config is None:
        config = TrackerConfig(cost=method)
    elif config.cost != method:
        config = dataclasses.replace(config, cost=method)
    sigmas = oks_sigmas(get_skeleton(dets.keypoint_format).joint_names)
    xywh = None
    if dets.boxes is not None and np.isfinite(dets.boxes).all():
        xywh = dets.boxes.astype(np.float64)
    res = track_detections(dets.frames, dets.keypoints, sigmas, xywh, config, fps=dets.fps)
    ids = np.asarray(res.track_ids, dtype=np.int64)
    return ids, ids >= 0, {"method": method, "reason": reason, **dict(res.stats), "n_dropped": int((ids < 0).sum())}


def _assign_ids(dets: Detections, tracker: str, config: TrackerConfig | None) -> tuple[np.ndarray, np.ndarray, dict]:
    """``(N,)`` int64 track id per detection, ``(N,)`` bool kept (False: dropped by the tracker)
    and the ``tracking`` record (module docstring)."""
    n, has, frames = len(dets), dets.has_id, dets.frames
    if tracker == "stills":  # independent photos (e.g. a COCO annotation file): no identity to follow
        return (np.arange(n, dtype=np.int64), np.ones(n, bool),
                {"method": "stills", "reason": "requested with tracker='stills': every person its own one-frame track"})
    if tracker not in ("auto", "none"):
        return _run_tracker(dets, tracker, config, "requested with tracker=" + repr(tracker))
    if tracker == "auto" and dets.id_doubt:
        return _run_tracker(dets, tracker, config, f"AlphaPose idx is not a track id ({dets.id_doubt})")
    if has.all():
        return dets.file_ids.copy(), has, {"method": "ids", "reason": "track ids in the file"}
    if has.any():
        a, b = dets.where(int(np.argmin(has))), dets.where(int(np.argmax(has)))
        raise TrackFormatError(f"{dets.source}: {a} has no track id but {b} has one; give every person an id or "
                               "none (or pass tracker='oks' to ignore the ids and track)")
    order = np.argsort(frames, kind="stable")
    repeat = np.flatnonzero(np.diff(frames[order]) == 0)
    if not repeat.size:
        return np.zeros(n, np.int64), ~has, {"method": "single", "reason": "no track ids, at most one person per frame"}
    if tracker == "none":
        r = repeat[np.argmin(order[repeat + 1])]  # the repeat that comes first in the file
        a, b = order[r], order[r + 1]
        raise TrackingNeeded(f"{dets.source}: frame {frames[a]} has more than one person ({dets.where(a)} and "
                             f"{dets.where(b)}) and no track ids, and tracker='none'; {dets.id_hint}, or use "
                             "tracker='auto' / 'oks' to track them")
    return _run_tracker(dets, tracker, config, "no track ids and several people per frame")


def _group(dets: Detections, ids: np.ndarray, keep: np.ndarray, warnings: list[str]) -> list[Track]:
    """The kept detections grouped by id into :class:`Track` s (frames ascending, ids ascending).

    Raises:
        TrackFormatError: one id has two detections in one frame.
    """
    frames, boxes, scores = dets.frames, dets.boxes, dets.scores
    keep = np.flatnonzero(keep)
    order = keep[np.lexsort((frames[keep], ids[keep]))]
    dup = np.flatnonzero((np.diff(ids[order]) == 0) & (np.diff(frames[order]) == 0))
    if dup.size:  # report the repeat that comes first in the file
        first = dup[np.argmin(np.maximum(order[dup], order[dup + 1]))]
        a, b = sorted((order[first], order[first + 1]))
        raise TrackFormatError(f"{dets.source}: track {ids[a]} has two detections in frame {frames[a]} "
                               f"({dets.where(a)} and {dets.where(b)})")
    starts = np.flatnonzero(np.r_[True, np.diff(ids[order]) != 0]) if order.size else np.zeros(0, int)
    tracks, no_box, no_score = [], 0, 0
    for s, e in zip(starts, np.r_[starts[1:], order.size]):
        rows = order[s:e]
        box = None if boxes is None or not dets.has_box[rows].any() else boxes[rows]
        score = None if scores is None or not dets.has_score[rows].any() else scores[rows]
        no_box += 0 if box is None else int((~dets.has_box[rows]).sum())
        no_score += 0 if score is None else int((~dets.has_score[rows]).sum())
        tid = int(ids[rows[0]])
        tracks.append(Track(tid, frames[rows], dets.keypoints[rows], box, score, dets.track_names.get(tid, "")))
    if no_box:
        warnings.append(f"{no_box} record(s) without bbox in tracks that have boxes (rows set to NaN)")
    if no_score:
        warnings.append(f"{no_score} record(s) without score in tracks that have scores (set to NaN)")
    return tracks


def track(detections: Detections, tracker: str = "auto", *, config: TrackerConfig | None = None) -> TrackSet:
    """Group a reader's detections into person tracks (module docstring, "Tracking").

    Args:
        detections: what :func:`lifting.io.readers.read_detections` returned (not modified).
            Its ``fps`` (frames/s, the user's or the file's; None = unknown) is passed to the
            tracker.
        tracker: one of :data:`TRACKERS`.
        config: a :class:`lifting.io.tracking.TrackerConfig` (its ``cost`` is set from
            ``tracker``); ``None`` = its defaults.

    Returns:
        :class:`TrackSet`: tracks sorted by id, each ``frame_ids (T,)`` int64 ascending,
        ``keypoints (T, K, 3)`` float32 (x, y pixels, confidence in [0, 1]), ``bbox (T, 4)``
        ``[x, y, w, h]`` px / ``score (T,)`` or None; ``fps``, ``image_size``, ``meta`` and
        ``keypoint_format`` from the detections, their ``warnings`` plus this step's;
        ``tracking`` says how ids were obtained.

    Raises:
        ValueError: ``tracker`` not in :data:`TRACKERS`, ``config`` not a ``TrackerConfig``.
        TrackingNeeded: untracked multi-person input with ``tracker="none"``.
        TrackFormatError: some detections have file ids and others not, one id has two
            detections in one frame, or the tracker confirmed no track.
    """
    _check_tracker(tracker, config)
    ids, keep, tracking = _assign_ids(detections, tracker, config)
    warnings = list(detections.warnings)
    tracks = _group(detections, ids, keep, warnings)
    if not tracks:
        raise TrackFormatError(f"{detections.source}: the tracker confirmed no track among {len(detections)} "
                               f"detections (stats: {tracking})")
    return TrackSet(tracks=tracks, fps=detections.fps, keypoint_format=detections.keypoint_format,
                    image_size=detections.image_size, source=detections.source, warnings=warnings,
                    meta=detections.meta, tracking=tracking)


def read_tracks(path: str | os.PathLike, fmt: str | None = None, fps: float | None = None, *,
                image_size: tuple[int, int] | None = None, tracker: str = "auto",
                tracker_config: TrackerConfig | None = None) -> TrackSet:
    """Read then track, the two steps in a row: :func:`lifting.io.readers.read_detections`
    (``path``, ``fmt``, ``fps`` in frames/s, ``image_size`` in px) and :func:`track`
    (``tracker``, ``tracker_config``).  Returns their :class:`TrackSet`.

    Raises:
        ValueError: invalid arguments (checked before the file is read).
        TrackFormatError: as the two steps raise it.
    """
    _check_tracker(tracker, tracker_config)
    return track(read_detections(path, fmt, fps, image_size=image_size), tracker, config=tracker_config)


def read_coco_tracks(path: str | os.PathLike, *, fps: float | None = None, keypoint_format: str | None = None,
                     tracker: str = "auto") -> TrackSet:
    """Read and track a COCO-style keypoint results JSON file (layouts of :mod:`lifting.io.tracks`):
    :func:`read_tracks` with ``fmt="coco"`` (or ``fmt=keypoint_format``, one of
    :data:`lifting.io.readers.RECORD_JOINT_SETS` or ``"coco"``).  Same arrays
    (``keypoints (T, K, 3)`` float32, x, y pixels, confidence in [0, 1]) and errors.

    Raises:
        ValueError: a ``keypoint_format`` that is no record joint set, or other invalid arguments.
        TrackFormatError: as :func:`read_tracks`.
    """
    if keypoint_format is not None and (not isinstance(keypoint_format, str)
                                        or keypoint_format.strip().lower() not in ("coco", *RECORD_JOINT_SETS)):
        raise ValueError(f"keypoint_format must be one of {list(RECORD_JOINT_SETS)} for COCO-style records, "
                         f"got {describe(keypoint_format)}")
    return read_tracks(path, "coco" if keypoint_format is None else keypoint_format, fps, tracker=tracker)
