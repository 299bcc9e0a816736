"""VideoPose3D custom 2D archives (``data_2d_custom_<name>.npz``).

Source: VideoPose3D ``INFERENCE.md`` and ``data/prepare_data_2d_custom.py``.
"""

from __future__ import annotations

import numpy as np

from ..detections import Detections
from ..records import describe
from ..tracks import TrackFormatError
from .arrays import add_array_frames, numeric_array
from .common import DetectionRows, Input, ReadOptions, finish, pixels


def read_videopose3d(inp: Input, joint_set: str | None, opts: ReadOptions) -> Detections:
    """VideoPose3D custom 2D archive ``data_2d_custom_<name>.npz``.

    Layout per VideoPose3D ``INFERENCE.md`` and ``data/prepare_data_2d_custom.py``: pickled
    ``positions_2d = {video: {"custom": [array (T, 17, 2|3)]}}`` and ``metadata = {"layout_name":
    "coco", "num_joints": 17, "keypoints_symmetry": ..., "video_metadata": {video: {"w", "h"}}}``,
    from its Detectron2 inference script (COCO-17 keypoint order, one person per video).  Read
    with a restricted unpickler (arrays and dictionaries only).  Each video is one track (ids
    0, 1, ... in sorted video-name order; ``meta["videos"]`` maps id -> name); ``image_size``
    is set when all videos share one size.  ``layout_name`` ``"h36m"`` gives h36m17.

    Returns :class:`Detections` (keypoints ``(N, 17, 3)`` x, y px, confidence 1 or the third
    channel; ``track_names`` = the video names).

    Raises:
        TrackFormatError: no ``positions_2d`` dictionary, a video without a ``(T, 17, 2|3)``
            array, an unknown ``layout_name`` or one contradicting ``--format``, bad
            ``video_metadata``.
    """
    source, arrays = inp.source, inp.data
    if inp.kind != "arrays":
        raise TrackFormatError(f"{source}: format 'videopose3d' expects a data_2d_custom_*.npz archive")
    pos, meta_arr = arrays.get("positions_2d"), arrays.get("metadata")
    pos = pos.item() if isinstance(pos, np.ndarray) and pos.dtype == object and pos.size == 1 else pos
    meta = meta_arr.item() if isinstance(meta_arr, np.ndarray) and meta_arr.dtype == object else meta_arr
    if not isinstance(pos, dict) or not pos:
        raise TrackFormatError(f"{source}: expected VideoPose3D 'positions_2d' = {{video: {{'custom': [array]}}}}")
    meta = meta if isinstance(meta, dict) else {}
    layout = meta.get("layout_name", "coco")
    found = {"coco": "coco17", "h36m": "h36m17"}.get(layout) if isinstance(layout, str) else None
    if found is None:
        raise TrackFormatError(f"{source}: metadata.layout_name {describe(layout)}; expected 'coco' or 'h36m'")
    if joint_set is not None and joint_set != found:
        raise TrackFormatError(f"{source}: --format {joint_set!r} requested but layout_name is {layout!r}")
    names = sorted(map(str, pos))
    rows = DetectionRows(source, lambda a, b: f"video {names[b]!r} frame {a}")
    for tid, name in enumerate(names):
        entry = pos[name] if name in pos else pos[next(k for k in pos if str(k) == name)]
        cams = entry.get("custom") if isinstance(entry, dict) else None
        if not isinstance(cams, (list, tuple)) or not cams:
            raise TrackFormatError(f"{source}: positions_2d[{name!r}] has no 'custom' list of arrays")
        a = numeric_array(cams[0], source, f"positions_2d[{name!r}]['custom'][0]")
        if a.ndim != 3 or a.shape[1] != 17 or a.shape[2] not in (2, 3, 4):
            raise TrackFormatError(f"{source}: positions_2d[{name!r}]['custom'][0] has shape {a.shape}; expected "
                                   "(T, 17, 2|3)")
        add_array_frames(rows, a, tid)
    video_meta = meta.get("video_metadata") or {}
    if not isinstance(video_meta, dict):
        raise TrackFormatError(f"{source}: metadata.video_metadata must be a dictionary {{video: {{'w', 'h'}}}}, got "
                               f"{describe(video_meta)}")
    sizes = set()
    for name in names:
        vm = video_meta.get(name, {})
        if isinstance(vm, dict) and "w" in vm and "h" in vm:
            sizes.add((pixels(vm["w"], f"{source}: video_metadata[{name!r}].w"),
                       pixels(vm["h"], f"{source}: video_metadata[{name!r}].h")))
    size = sizes.pop() if len(sizes) == 1 else None
    dets = finish(rows, joint_set=found, opts=opts, warnings=[], image_size=size, hint="",
                  meta={"input_format": "videopose3d", "videos": dict(enumerate(names))})
    dets.track_names = dict(enumerate(names))  # one track per video, its id the video's index: outputs carry the name
    return dets

