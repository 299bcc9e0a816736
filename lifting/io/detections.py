"""The one container every format reader returns: the detections of one input, one row per
detected person per frame, with the file's track ids when it has any -- before tracking.

Data flows one way: a reader (:mod:`lifting.io.readers`) converts its format into
:class:`Detections` at the edge; the tracking step (:func:`lifting.track.track`) turns them into
a :class:`lifting.io.tracks.TrackSet`.  Nothing format-specific is left here: what the tracking
step needs to know about a format is said in generic fields (``id_doubt``, ``id_hint``,
``track_names``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

__all__ = ["Detections"]


@dataclass
class Detections:
    """Cleaned per-detection rows of one input (N detections, K joints).

    Attributes:
        source: the path that was read.
        keypoint_format: joint layout, a :func:`lifting.skeletons.get_skeleton` name.
        frames: ``(N,)`` int64 frame index of each detection, in file order (not sorted).
        keypoints: ``(N, K, 3)`` float32: x, y in image pixels, confidence in [0, 1] (cleaned
            by the policy of :mod:`lifting.io.tracks`: a masked joint is x = y = 0, confidence 0).
        boxes: ``(N, 4)`` float32 person boxes ``[x, y, w, h]`` px (NaN rows: no box or a
            non-finite one), or ``None`` when no detection has a box.
        scores: ``(N,)`` float32 detection scores (detector units; NaN: none), or ``None``.
        has_box, has_score: ``(N,)`` bool, which rows the file gave a box / score for.
        file_ids: ``(N,)`` int64 track ids written in the file (meaningful where ``has_id``).
        has_id: ``(N,)`` bool, which rows carry a track id (all False: untracked input).
        fps: frame rate in frames/s (the user's, else the file's), or ``None`` if unknown.
        image_size: ``(width, height)`` px (the user's, else the file's), or ``None``.
        warnings: human-readable notes on what reading skipped, masked or converted.
        meta: the file's metadata as read, plus ``input_format`` (the format's name).
        id_hint: how to get track ids in this format (for the error when untracked
            multi-person input may not be tracked), ``""`` when the format has none.
        id_doubt: why the file's ids may not be track ids (e.g. AlphaPose ``idx`` values shared
            by several people in a frame), or ``None``; with ``tracker="auto"`` the tracker
            then runs instead of trusting them.
        track_names: file id -> the input's name for that person (VideoPose3D video names).
        where: row index -> where that detection is in the file (for error messages).
    """

    source: str
    keypoint_format: str
    frames: np.ndarray
    keypoints: np.ndarray
    boxes: np.ndarray | None
    scores: np.ndarray | None
    has_box: np.ndarray
    has_score: np.ndarray
    file_ids: np.ndarray
    has_id: np.ndarray
    fps: float | None = None
    image_size: tuple[int, int] | None = None
    warnings: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    id_hint: str = ""
    id_doubt: str | None = None
    track_names: dict[int, str] = field(default_factory=dict)
    where: Callable[[int], str] = field(default=lambda i: f"record {i}", repr=False)

    def __len__(self) -> int:
        """Number of detections N."""
        return int(self.frames.shape[0])

    @property
    def tracked(self) -> bool:
        """True when every detection carries a track id from the file."""
        return bool(len(self)) and bool(self.has_id.all())
