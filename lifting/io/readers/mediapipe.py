"""MediaPipe Pose landmarks (33, normalised to the image): JSON, CSV tables and .npy / .npz arrays.

Source: Google AI Edge "Pose landmark detection guide"
(https://ai.google.dev/edge/mediapipe/solutions/vision/pose_landmarker) for the landmarks;
MediaPipe has no file format, so the JSON layout is defined here (:func:`read_mediapipe`) and
the CSV layouts are the ones MediaPipe scripts commonly write (:func:`mediapipe_csv`).
"""

from __future__ import annotations

import re

import numpy as np

from ..records import describe
from ..detections import Detections
from ..tracks import TrackFormatError
from . import common
from .arrays import main_array
from .common import (DetectionRows, Input, ReadOptions, check_numbers, file_fps, finish, frame_index,
                     not_a_known_format, pixels)


def _add_mediapipe_frames(dets: DetectionRows, lm: np.ndarray, frames: np.ndarray, size: tuple[int, int]) -> None:
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



def mediapipe_csv(table: list[list[str]], source: str) -> tuple[np.ndarray, np.ndarray] | None:
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



def _read_mediapipe_csv(inp: Input, opts: ReadOptions) -> Detections:
    """A MediaPipe CSV table (:func:`mediapipe_csv`) -> tracks: normalised coordinates (all
    x, y within [-0.5, 1.5]) need ``--image-size WxH``; larger ones are taken as pixels."""
    source = inp.source
    parsed = mediapipe_csv(inp.data, source)
    if parsed is None:
        raise not_a_known_format(source, "a CSV table whose columns are no MediaPipe layout")
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
    dets = DetectionRows(source, lambda a, b: f"frame {a}")
    _add_mediapipe_frames(dets, lm, frames.astype(np.int64), size if normalised else (1, 1))
    return finish(dets, joint_set="mediapipe33", opts=opts, warnings=[],
                   meta={"input_format": "mediapipe-csv", "normalised": normalised}, hint="",
                   image_size=size if normalised else None)



def read_mediapipe(inp: Input, joint_set: str | None, opts: ReadOptions) -> Detections:
    """MediaPipe Pose landmarks, as JSON (layout defined here; MediaPipe has no file format) or
    arrays (:func:`_read_mediapipe_arrays`).

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
    CSV tables as MediaPipe scripts write them: :func:`mediapipe_csv`.

    Returns :class:`Detections` (keypoints ``(N, 33, 3)`` x, y px, visibility; one per frame).

    Raises:
        TrackFormatError: no ``frames`` list, a frame without 33 landmarks, a landmark without
            x / y, no image size for normalised landmarks, a frame index twice, no landmarks.
    """
    if inp.kind == "arrays":
        return _read_mediapipe_arrays(inp, opts)
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
        size = (pixels(data.get("image_width", data.get("width")), f"{source}: image_width"),
                pixels(data.get("image_height", data.get("height")), f"{source}: image_height"))
    rows, frames = [], []
    for i, fr in enumerate(data["frames"]):
        if not isinstance(fr, dict):
            raise TrackFormatError(f"{source}: frames[{i}] is not an object")
        frame = frame_index(fr.get("frame_index", i), f"{source}: frames[{i}].frame_index")
        lms = fr.get("landmarks")
        if lms is None or lms == []:
            continue
        if not isinstance(lms, list) or len(lms) != 33:
            raise TrackFormatError(f"{source}: frames[{i}].landmarks must be a list of 33 landmarks, got "
                                   f"{len(lms) if isinstance(lms, list) else describe(lms)}")
        if len(rows) >= common.MAX_PERSON_FRAMES:
            raise TrackFormatError(f"{source}: more than MAX_PERSON_FRAMES = {common.MAX_PERSON_FRAMES} frames")
        row = np.full((33, 4), np.nan)
        row[:, 2:] = [0.0, 1.0]
        for j, lm in enumerate(lms):
            what = f"{source}: frames[{i}].landmarks[{j}]"
            if isinstance(lm, dict):
                if "x" not in lm or "y" not in lm:
                    raise TrackFormatError(f"{what} has no 'x'/'y'")
                vals = check_numbers([lm["x"], lm["y"], lm.get("z", 0.0), lm.get("visibility", 1.0)],
                                      what + " (x, y, z, visibility)")
            else:
                vals = check_numbers(lm, what)
                if not 2 <= len(vals) <= 4:
                    raise TrackFormatError(f"{what} has {len(vals)} values, expected [x, y, z?, visibility?]")
            row[j, : len(vals)] = vals
        rows.append(row)
        frames.append(frame)
    if not rows:
        raise TrackFormatError(f"{source}: no frame has MediaPipe landmarks")
    if len(set(frames)) != len(frames):
        raise TrackFormatError(f"{source}: a frame_index occurs twice; MediaPipe Pose gives one person per frame")
    dets = DetectionRows(source, lambda a, b: f"frame {a}")
    _add_mediapipe_frames(dets, np.stack(rows), np.asarray(frames), size)
    return finish(dets, joint_set="mediapipe33", opts=opts, warnings=[], meta={"input_format": "mediapipe"},
                   hint="", fps=file_fps(data.get("fps"), source, "fps"), image_size=size)



def _read_mediapipe_arrays(inp: Input, opts: ReadOptions) -> Detections:
    """MediaPipe landmarks as arrays: a .npy ``(T, 33, C)`` or a .npz with key ``landmarks`` (or
    ``keypoints_2d`` / ``positions_2d`` / the only 3-D array), C = 2..5 (x, y normalised, z,
    visibility, presence), and ``image_width`` / ``image_height`` (px; or ``image_size``), an
    optional scalar ``fps``.  Frame t of the array is frame index t; all-NaN frames are dropped."""
    source, arrays = inp.source, inp.data
    if not arrays:
        raise TrackFormatError(f"{source}: npz archive holds no arrays")
    key, a = main_array(arrays, source)
    fps = file_fps(arrays.get("fps"), source, "fps")
    if a.shape[1] != 33 or not 2 <= a.shape[2] <= 5:
        raise TrackFormatError(f"{source}: array {key or '(npy)'} has shape {a.shape}; expected (T, 33, 2..5) "
                               "MediaPipe landmarks")
    size = opts.image_size
    if size is None:
        if "image_width" not in arrays or "image_height" not in arrays:
            raise TrackFormatError(f"{source}: MediaPipe landmarks are normalised to [0, 1]; the npz needs "
                                   "'image_width' and 'image_height' (or pass image_size=(w, h)); a .npy cannot "
                                   "carry them")
        size = (pixels(arrays["image_width"], f"{source}: image_width"),
                pixels(arrays["image_height"], f"{source}: image_height"))
    dets = DetectionRows(source, lambda a, b: f"frame {a}")
    _add_mediapipe_frames(dets, a, np.arange(a.shape[0]), size)
    return finish(dets, joint_set="mediapipe33", opts=opts, warnings=[], meta={"input_format": "mediapipe"},
                  hint="", fps=fps, image_size=size)
