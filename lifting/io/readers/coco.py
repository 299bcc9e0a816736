"""COCO-style record files: COCO keypoint *results* (MMPose, Detectron2, AlphaPose and our own
tracks, :mod:`lifting.io.tracks`) and COCO *annotation* files.

Sources: the COCO data format (https://cocodataset.org/#format-data, "Object Keypoint
Detection") and results format (https://cocodataset.org/#format-results), AlphaPose
``docs/output.md`` (``idx``, ``box``).  One parser (:func:`_parse_records`) serves both.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..detections import Detections
from ..records import describe, meta_image_size, parse_image_id, parse_track_id, split_top_level, stream_top_level
from ..tracks import PERSON_CATEGORY, TrackFormatError
from .common import (DIGITS, MAX_FRAME_INDEX, RECORD_JOINT_SETS, DetectionRows, Input, ReadOptions, bounded_frame,
                     check_numbers, detection_score, file_fps, finish, joint_set_by_count, keep_body_part,
                     want_joint_set)

#: ``meta.keypoint_format`` values a record file may carry -> joint set (the record-file names
#: of :data:`lifting.io.readers.FORMATS`).
_META_JOINT_SETS = {"coco17": "coco17", "halpe26": "halpe26", "halpe": "halpe26", "alphapose": "halpe26"}


def read_coco(inp: Input, joint_set: str | None, opts: ReadOptions) -> Detections:
    """COCO keypoint *results* and AlphaPose results: one record per detection.

    Layout per the COCO results format (https://cocodataset.org/#format-results) and AlphaPose
    ``docs/output.md``: a list ``[{"image_id", "category_id", "keypoints": [x, y, c] * K,
    "score", "bbox" | "box": [x, y, w, h], "track_id" | "idx"}]`` (ids optional: MMPose,
    Detectron2 and AlphaPose without ``--pose_track`` write none), or the object form
    ``{"meta": {...}, "annotations": [...]}`` of :mod:`lifting.io.tracks` (``meta.fps``,
    ``meta.width`` / ``height``, ``meta.keypoint_format``).  K = 17 (COCO) or 26 (Halpe);
    whole-body K = 133 (COCO-WholeBody) or 136 (Halpe-136) are read as their body part
    (:data:`~lifting.io.readers.common.WHOLE_BODY`).
    Files over ``STREAM_BYTES`` are streamed (``ijson``).

    Returns :class:`Detections` (keypoints ``(N, K, 3)`` x, y px, confidence; boxes ``[x, y,
    w, h]`` px; ``fps`` from ``meta.fps``, ``image_size`` from ``meta.width`` / ``height``).

    Raises:
        TrackFormatError: not JSON records, a record without ``image_id`` / ``keypoints``, a
            keypoint list that is not ``3 K`` numbers, joint counts other than 17 / 26 (or
            133 / 136) or differing between records, a bad ``meta``, no person record.
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
    dets = DetectionRows(source)
    _parse_records(records, dets, warnings, flags=False, frame_of=None)
    keep_body_part(dets, warnings)
    k = dets.num_joints
    found = joint_set_by_count(k, RECORD_JOINT_SETS) or f"{k} joints"
    joint_set = want_joint_set(joint_set, found, RECORD_JOINT_SETS, source, f"records have {k} joints per person")
    size = meta_image_size(meta, source, warnings)
    fps = file_fps(meta.get("fps"), source, "meta.fps")
    meta = {**meta, "input_format": "halpe26" if joint_set == "halpe26" else "coco"}
    return finish(dets, joint_set=joint_set, opts=opts, warnings=warnings, meta=meta, fps=fps, image_size=size,
                   hint="add 'track_id' (AlphaPose 'idx') to the records")



def _meta_joint_set(value: Any, source: str) -> str:
    found = _META_JOINT_SETS.get(value.strip().lower()) if isinstance(value, str) else None
    if found is None:
        raise TrackFormatError(f"{source}: unknown meta.keypoint_format {describe(value)}; expected one of "
                               f"{list(RECORD_JOINT_SETS)}")
    return found



def _parse_records(records: Any, dets: DetectionRows, warnings: list[str], *, flags: bool,
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
            frame = bounded_frame(parse_image_id(rec["image_id"], source, i), f"{source}: {where}: image_id")
        else:
            img = rec["image_id"]
            if isinstance(img, (list, dict)) or img not in frame_of:
                raise TrackFormatError(f"{source}: {where}: image_id {describe(img)} is not in 'images'")
            frame = frame_of[img]
        kp = check_numbers(rec["keypoints"], f"{source}: {where}: keypoints")
        if len(kp) == 0 or len(kp) % 3:
            raise TrackFormatError(f"{source}: {where}: keypoints has {len(kp)} values, expected a non-zero "
                                   "multiple of 3 (x, y, confidence per joint)")
        arr = np.asarray(kp, dtype=np.float64).reshape(-1, 3)
        if flags:
            arr[:, 2] = np.where(arr[:, 2] > 0, 1.0, 0.0)
        box = rec.get("bbox", rec.get("box"))
        if box is not None:
            box = check_numbers(box, f"{source}: {where}: bbox", 4)
        score = detection_score(rec.get("score"), f"{source}: {where}: score")
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



def read_coco_annotations(inp: Input, joint_set: str | None, opts: ReadOptions) -> Detections:
    """COCO *annotation* file: ``{"images": [...], "annotations": [...], "categories": [...]}``.

    Layout per https://cocodataset.org/#format-data ("Object Keypoint Detection"):
    ``images[i] = {"id", "file_name", ...}``, ``annotations[j] = {"image_id", "keypoints":
    [x, y, v] * K, "category_id", "bbox", "track_id"?}`` with visibility flags v (0 not
    labelled, 1 labelled but occluded, 2 visible), mapped to confidence 0 / 1 / 1.  Frame
    order: the digits of each image's ``file_name`` (``"000123.jpg"`` -> 123) when every
    image has a distinct number there, else the rank of the image ``id``.

    Returns :class:`Detections` (keypoints ``(N, K, 3)`` x, y px, confidence 0 / 1).

    Raises:
        TrackFormatError: no ``images`` / ``annotations`` lists, bad or duplicate image ids,
            an annotation whose ``image_id`` is not in ``images``, malformed records.
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
        runs = DIGITS.findall(os.path.basename(name)) if isinstance(name, str) else []
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
    dets = DetectionRows(source)
    _parse_records(data["annotations"], dets, warnings, flags=True, frame_of=frame_of)
    k = dets.num_joints
    found = joint_set_by_count(k, RECORD_JOINT_SETS) or f"{k} joints"
    joint_set = want_joint_set(joint_set, found, RECORD_JOINT_SETS, source, f"annotations have {k} joints per person")
    return finish(dets, joint_set=joint_set, opts=opts, warnings=warnings,
                   meta={"input_format": "coco-annotations"}, hint="add 'track_id' to the annotations")

