"""Human3.6M-order 2D keypoint arrays (.npy / .npz), as VideoPose3D and many lifting codes keep them.

Source: the 17-joint Human3.6M order of VideoPose3D's ``DATASETS.md``
(facebookresearch/VideoPose3D), :data:`lifting.skeletons.H36M17`.
"""

from __future__ import annotations

from ..detections import Detections
from ..tracks import TrackFormatError
from .arrays import add_array_frames, main_array
from .common import DetectionRows, Input, ReadOptions, file_fps, finish


def read_h36m(inp: Input, joint_set: str | None, opts: ReadOptions) -> Detections:
    """Human3.6M-order 2D arrays ``(T, 17, 2)`` pixels or ``(T, 17, 3)`` pixels + confidence.

    npz key ``keypoints_2d`` or ``positions_2d``, or the only 3-D array; optional scalar
    ``fps`` (frames/s).  Frame t of the array is frame index t; all-NaN frames are dropped.
    ``joint_set`` is always ``"h36m17"`` here (the format forces it).

    Raises:
        TrackFormatError: not an array file, no usable array, a shape other than
            ``(T, 17, 2|3)``, a bad ``fps``, or every frame NaN.
    """
    source = inp.source
    if inp.kind != "arrays":
        raise TrackFormatError(f"{source}: format 'h36m' expects a .npy/.npz array file")
    arrays = inp.data
    if not arrays:
        raise TrackFormatError(f"{source}: npz archive holds no arrays")
    key, a = main_array(arrays, source)
    fps = file_fps(arrays.get("fps"), source, "fps")
    if a.shape[1] != 17 or a.shape[2] not in (2, 3):
        raise TrackFormatError(f"{source}: array {key or '(npy)'} has shape {a.shape}; expected (T, 17, 2|3) "
                               "in Human3.6M joint order")
    dets = DetectionRows(source, lambda a, b: f"frame {a}")
    add_array_frames(dets, a, None)
    return finish(dets, joint_set="h36m17", opts=opts, warnings=[], meta={"input_format": "h36m"}, hint="",
                  fps=fps)
