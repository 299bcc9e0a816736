"""Which format is this input?  Decided from the loaded content (:func:`detect`); the
``--format`` option bypasses it.  Input no format claims, and a CSV table whose columns are no
MediaPipe layout, raise :class:`~lifting.io.tracks.TrackFormatError` asking for ``--format``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..json_scan import ScanFallback, record_blocks
from ..tracks import TrackFormatError
from .common import Input, not_a_known_format
from .mediapipe import mediapipe_csv
from .openpose import is_per_image_dict


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



def detect(inp: Input) -> str:
    """The :data:`lifting.io.readers.FORMATS` name for loaded input ``inp``.

    Rules, in order: a folder is OpenPose; a CSV table is MediaPipe when its columns are a
    MediaPipe layout; arrays are VideoPose3D (``positions_2d`` dictionaries), MediaPipe
    (``landmarks`` or 33 joints) or Human3.6M; JSON is MMPose (``instance_info`` /
    ``predictions``), OpenPose (``people``, or AlphaPose's per-image dictionary of such documents),
    a COCO annotation file (``images`` +
    ``annotations``), MediaPipe (``frames``), else COCO-style records (Halpe-26 when the
    first record has 26 joints).  Large JSON is sampled (:func:`_json_sample`).

    Raises:
        TrackFormatError: a CSV table or JSON document no format claims (the message lists
            what was expected and asks for ``--format``).
    """
    data, source = inp.data, inp.source
    if inp.kind == "stream":
        data = _json_sample(inp)
    if inp.kind == "dir":
        return "openpose"
    if inp.kind == "csv":
        if mediapipe_csv(inp.data, source) is None:
            raise not_a_known_format(source, "a CSV table whose columns are no MediaPipe layout")
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
        if "people" in data or is_per_image_dict(data):
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


def _json_sample(inp: Input) -> Any:
    """A small stand-in for a large JSON document, enough for :func:`detect`: a
    top-level list becomes ``[first item]``; an object becomes its top-level keys with list
    values cut to their first item. From the input's byte scan (:meth:`Input.top_level`, kept
    for the reader) when it applies, else parsed incrementally (``ijson``), in constant memory."""
    try:
        return _scanned_sample(inp)
    except ScanFallback:
        return _streamed_sample(inp.source)


def _scanned_sample(inp: Input) -> Any:
    """:func:`_json_sample` from the byte scan. Raises ScanFallback where it does not apply
    (e.g. a top-level array whose items are not objects)."""
    top = inp.top_level()
    first = {k: next(record_blocks(inp.source, a, size=1), [None])[0] for k, a in top.arrays.items()}
    if top.kind == "list":
        return [first[""]]
    return {k: None if first.get(k) is None else [first[k]] for k in top.values}


def _streamed_sample(source: str) -> Any:
    """:func:`_json_sample` parsed with ``ijson``."""
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

