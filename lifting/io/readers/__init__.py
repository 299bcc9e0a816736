"""Read 2D keypoints from the output formats of common pose estimators: the *read* step of
``posenet3d lift`` (read -> track -> prepare -> lift -> write).

:func:`read_detections` is the entry point.  Data flows one way: the input is checked and
**loaded once** (:func:`lifting.io.readers.load.load`: a folder, a CSV table, a JSON document --
streamed when large -- or the arrays of a .npy/.npz), its format is decided from that content
(:func:`lifting.io.readers.detect.detect`) or taken from ``fmt``, and the format's reader -- one
module per format family, looked up in :data:`FORMATS` -- converts it at the edge into the one
container, :class:`lifting.io.detections.Detections` (cleaned per-detection rows, the file's
track ids when it has any).  Nothing here tracks: :func:`lifting.track.track` is the next step.

Formats (:data:`FORMATS` is the one table of ``fmt`` names)
-----------------------------------------------------------
=====================  =====================================================  ==================  =============
``fmt`` (aliases)      input, as the tool writes it                           joint set           module
=====================  =====================================================  ==================  =============
``coco`` (coco17,      COCO keypoint *results* (list of records, or           coco17 / halpe26    ``coco``
coco-results)          ``{"meta", "annotations"}``; MMPose, Detectron2, our
                       tracks), ``track_id`` optional
``halpe26`` (halpe,    AlphaPose results (``idx`` = track id, ``box``)        halpe26             ``coco``
alphapose)
``coco-annotations``   COCO *annotation* file (images / annotations)          coco17              ``coco``
``openpose`` (body25,  folder of OpenPose ``--write_json`` files (any         body25 / body25b /  ``openpose``
body25b, coco18,       ``*.json`` holding ``people``), or one such file       coco18 / body135
body135)
``mmpose``             MMPose ``--save-predictions`` (``instance_info``) and  coco17 / halpe26    ``mmpose``
                       1.x inferencer output (``predictions``)
``mediapipe``          MediaPipe Pose 33 landmarks, JSON / CSV / NPY / NPZ    mediapipe33         ``mediapipe``
``h36m`` (h36m17)      Human3.6M-order arrays ``(T, 17, 2|3)`` npy / npz      h36m17              ``h36m``
``videopose3d``        VideoPose3D ``data_2d_custom_*.npz``                   coco17 / h36m17     ``videopose3d``
=====================  =====================================================  ==================  =============

Each module's docstring names the format's documentation it follows.  Cleaning and limits are
one rule for every reader (:mod:`lifting.io.readers.common`): inputs are bounded before
anything is allocated (:data:`MAX_PERSON_FRAMES` detections, :data:`MAX_ARRAY_BYTES` per array,
frame indices up to :data:`MAX_FRAME_INDEX`, JSON read whole only up to
:data:`lifting.io.records.STREAM_BYTES`); FIFOs, devices and sockets are refused.  Every content
problem raises :class:`~lifting.io.tracks.TrackFormatError` (a ``ValueError``) naming the file
and what was expected; invalid *arguments* raise ``ValueError``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

from ..detections import Detections
from ..records import describe, positive_finite
from .coco import read_coco, read_coco_annotations
from .common import (MAX_ARRAY_BYTES, MAX_FRAME_INDEX, MAX_PERSON_FRAMES, READER_FORMATS, RECORD_JOINT_SETS, Input,
                     ReadOptions)
from .detect import detect
from .h36m import read_h36m
from .load import load
from .mediapipe import read_mediapipe
from .mmpose import read_mmpose
from .openpose import read_openpose
from .videopose3d import read_videopose3d

__all__ = ["FORMATS", "READER_FORMATS", "RECORD_JOINT_SETS", "MAX_PERSON_FRAMES", "MAX_ARRAY_BYTES",
           "MAX_FRAME_INDEX", "InputFormat", "detect_format", "read_detections"]


@dataclass(frozen=True)
class InputFormat:
    """One ``fmt`` name: the reader that parses it and the joint set it forces (``None``: the
    reader infers it from the content)."""

    reader: Callable[[Input, str | None, ReadOptions], Detections]
    joint_set: str | None = None


#: The one table of input-format names (``--format`` values) -> reader and joint set.
FORMATS: dict[str, InputFormat] = {
    "coco": InputFormat(read_coco), "coco-results": InputFormat(read_coco),
    "coco17": InputFormat(read_coco, "coco17"),
    "halpe26": InputFormat(read_coco, "halpe26"), "halpe": InputFormat(read_coco, "halpe26"),
    "alphapose": InputFormat(read_coco, "halpe26"),
    "coco-annotations": InputFormat(read_coco_annotations),
    "openpose": InputFormat(read_openpose), "body25": InputFormat(read_openpose, "body25"),
    "body25b": InputFormat(read_openpose, "body25b"), "coco18": InputFormat(read_openpose, "coco18"),
    "body135": InputFormat(read_openpose, "body135"),
    "mmpose": InputFormat(read_mmpose),
    "mediapipe": InputFormat(read_mediapipe, "mediapipe33"), "mediapipe33": InputFormat(read_mediapipe, "mediapipe33"),
    "h36m": InputFormat(read_h36m, "h36m17"), "h36m17": InputFormat(read_h36m, "h36m17"),
    "videopose3d": InputFormat(read_videopose3d), "vp3d": InputFormat(read_videopose3d),
}


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


def _options(fps: Any, image_size: Any) -> ReadOptions:
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
    return ReadOptions(None if fps is None else float(fps), image_size)


def detect_format(path: str | os.PathLike) -> str:
    """The :data:`FORMATS` name :func:`read_detections` would use for ``path`` (e.g. ``"coco"``).

    Raises:
        TrackFormatError: unreadable or unrecognised input.
    """
    return detect(load(os.fsdecode(os.fspath(path))))


def read_detections(
    path: str | os.PathLike,
    fmt: str | None = None,
    fps: float | None = None,
    *,
    image_size: tuple[int, int] | None = None,
) -> Detections:
    """Read the 2D person detections of any supported pose-estimator output (module docstring).

    Args:
        path: file, or folder of OpenPose per-frame JSON files.
        fmt: a :data:`FORMATS` name (``coco``, ``coco17``, ``halpe26``, ``coco-annotations``,
            ``openpose``, ``body25``, ``body25b``, ``coco18``, ``body135``, ``mmpose``,
            ``mediapipe``, ``h36m``, ``videopose3d``, ...); ``None`` = detect from the content.
        fps: frame rate in frames/s; overrides any rate stored in the file.
        image_size: ``(width, height)`` pixels; needed for normalised MediaPipe landmarks whose
            file does not carry them, and overrides a size from the file.

    Returns:
        :class:`~lifting.io.detections.Detections`: ``keypoint_format`` a
        :func:`lifting.skeletons.get_skeleton` name, ``frames (N,)`` int64, ``keypoints
        (N, K, 3)`` float32 (x, y pixels, confidence in [0, 1]), boxes ``(N, 4)`` ``[x, y, w,
        h]`` px / scores ``(N,)`` or None, the file's track ids (``file_ids``, ``has_id``; no
        id is assigned here), ``fps`` / ``image_size`` (the arguments', else the file's).

    Raises:
        ValueError: invalid ``fmt``, ``fps`` or ``image_size``.
        TrackFormatError: missing, non-regular, oversized, unreadable or inconsistent input,
            input that could be two formats or none (asks for ``--format``), a 25-joint
            OpenPose file whose layout is ambiguous (the message says what was found and what
            was expected).
    """
    entry = _format_entry(fmt)
    opts = _options(fps, image_size)
    inp = load(os.fsdecode(os.fspath(path)))
    if entry is None:
        entry = FORMATS[detect(inp)]
    return entry.reader(inp, entry.joint_set, opts)
