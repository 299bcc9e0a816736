"""MMPose predictions: the demo's ``--save-predictions`` files and the 1.x ``MMPoseInferencer``
results.

Source: the MMPose user guide "Inference with existing models"
(https://mmpose.readthedocs.io/en/latest/user_guides/inference.html) and its demo scripts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..detections import Detections
from ..records import describe
from ..tracks import TrackFormatError
from .common import (DetectionRows, Input, ReadOptions, check_numbers, detection_score, finish, frame_index,
                     joint_set_by_count, keep_body_part, want_joint_set)

_MMPOSE_JOINT_SETS = ("coco17", "halpe26")


def _mmpose_frames(data: Any, source: str) -> list[tuple[int, list, str]]:
    """``(frame, instances, location)`` of every MMPose layout (see :func:`read_mmpose`)."""
    def frame_list(items: list, where: str) -> list[tuple[int, list, str]]:
        if items and all(isinstance(x, dict) and "keypoints" in x for x in items):
            return [(0, items, where)]  # one image: the instance list itself
        out = []
        for i, fr in enumerate(items):
            w = f"{where}[{i}]"
            if not isinstance(fr, dict) or "frame_id" not in fr or not isinstance(fr.get("instances"), list):
                raise TrackFormatError(f"{source}: {w} must be an object with 'frame_id' and an 'instances' list, "
                                       f"got {describe(fr)}")
            out.append((frame_index(fr["frame_id"], f"{source}: {w}.frame_id"), fr["instances"], w))
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



def read_mmpose(inp: Input, joint_set: str | None, opts: ReadOptions) -> Detections:
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
    tracked by the next step (:func:`lifting.track.track`).  ``frame_id`` is kept as written.
    K = 17 (COCO) or 26 (Halpe); whole-body K = 133 (COCO-WholeBody) or 136 (Halpe) are read as
    their body part (:data:`~lifting.io.readers.common.WHOLE_BODY`).

    Returns :class:`Detections` (keypoints ``(N, K, 3)`` x, y px, score; boxes converted from
    ``[x1, y1, x2, y2]`` to ``[x, y, w, h]`` px).

    Raises:
        TrackFormatError: not JSON, none of the layouts above, malformed instances, a joint
            count other than 17 / 26 (or 133 / 136), no instance.
    """
    source = inp.source
    if inp.kind != "json":
        raise TrackFormatError(f"{source}: MMPose predictions must be a JSON file")
    frames = _mmpose_frames(inp.data, source)
    dets = DetectionRows(source, lambda a, b: f"{frames[a][2]}.instances[{b}]" if frames[a][2] else f"[{b}]")
    for f, (frame, instances, fw) in enumerate(frames):
        if not isinstance(instances, list):
            raise TrackFormatError(f"{source}: {fw}.instances must be a list")
        for j, inst in enumerate(instances):
            _add_mmpose_instance(dets, frame, inst, (f, j))
    if not len(dets):
        raise TrackFormatError(f"{source}: MMPose file has no instances")
    warnings: list[str] = []
    keep_body_part(dets, warnings)
    k = dets.num_joints
    found = joint_set_by_count(k, _MMPOSE_JOINT_SETS) or f"{k} joints"
    joint_set = want_joint_set(joint_set, found, _MMPOSE_JOINT_SETS, source, f"MMPose instances have {k} keypoints")
    return finish(dets, joint_set=joint_set, opts=opts, warnings=warnings, meta={"input_format": "mmpose"},
                   hint="add 'track_id' to the instances")



def _add_mmpose_instance(dets: DetectionRows, frame: int, inst: Any, loc: tuple[int, int]) -> None:
    """One MMPose instance (layout of :func:`read_mmpose`) -> one detection row."""
    what = f"{dets.source}: {dets.describe(*loc)}"
    if not isinstance(inst, dict) or not isinstance(inst.get("keypoints"), list):
        raise TrackFormatError(f"{what} has no 'keypoints' list")
    pts = inst["keypoints"]
    arr = np.ones((len(pts), 3), np.float64)
    for n, pt in enumerate(pts):
        pt = check_numbers(pt, f"{what}.keypoints[{n}]")
        if len(pt) not in (2, 3):
            raise TrackFormatError(f"{what}.keypoints[{n}] has {len(pt)} values, expected [x, y]")
        arr[n, :2] = pt[:2]
    if inst.get("keypoint_scores") is not None:
        arr[:, 2] = check_numbers(inst["keypoint_scores"], f"{what}.keypoint_scores", len(pts))
    box = inst.get("bbox")
    if isinstance(box, list) and len(box) == 1 and isinstance(box[0], list):
        box = box[0]
    if box is not None:
        x1, y1, x2, y2 = check_numbers(box, f"{what}.bbox", 4)
        box = [x1, y1, x2 - x1, y2 - y1]
    tid = inst.get("track_id")
    if tid is not None and (isinstance(tid, bool) or not isinstance(tid, int) or abs(tid) > np.iinfo(np.int64).max):
        raise TrackFormatError(f"{what}.track_id must be an integer, got {describe(tid)}")
    dets.add(frame, tid, arr, box, detection_score(inst.get("bbox_score"), f"{what}.bbox_score"), loc)

