"""What every format reader shares: the loaded input, the per-detection row buffer, the
number / frame / size checks with their error messages, and :func:`finish`, which cleans the
rows and hands them on as the one container, :class:`lifting.io.detections.Detections`.

Cleaning (one rule for every reader): keypoints follow the policy of :mod:`lifting.io.tracks`
-- non-finite x/y, and ``|x|`` or ``|y|`` above :data:`lifting.io.tracks.MAX_ABS_PX` (1e6 px),
are masked (x = y = 0, confidence 0); non-finite confidences become 0; confidences are clipped
to [0, 1].  Non-finite detection scores and boxes become NaN (unknown).  Each applied count is
in ``Detections.warnings``.  Limits: at most :data:`MAX_PERSON_FRAMES` detections, arrays of at
most :data:`MAX_ARRAY_BYTES`, frame indices at most :data:`MAX_FRAME_INDEX`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ...skeletons import get_skeleton
from ..detections import Detections
from ..records import clean_in_place, describe, note_cleaning, positive_finite
from ..tracks import TrackFormatError


#: Most detections (person-frames) one input may hold: ~18 h of one person at 30 fps.
MAX_PERSON_FRAMES = 2_000_000
#: Largest numeric array (bytes, as declared in its .npy header) read from a .npy/.npz.
MAX_ARRAY_BYTES = 512 * 2**20
#: Largest accepted frame index (a 40-digit frame number in a file name is a mistake).
MAX_FRAME_INDEX = 10**12
#: Joint sets a COCO-style record file may hold, by joints per record.
RECORD_JOINT_SETS = ("coco17", "halpe26")
#: The primary format names (one per layout; :data:`lifting.io.readers.FORMATS` adds aliases).
READER_FORMATS = ("coco", "coco-annotations", "openpose", "mmpose", "mediapipe", "h36m", "halpe26", "videopose3d")
_MAX_ABS = 1e300
#: a run of digits (frame numbers in file names)
DIGITS = re.compile(r"\d+")


@dataclass
class Input:
    """The input, loaded once (:func:`lifting.io.readers.load.load`). ``kind``: ``"dir"``
    (data None), ``"json"`` (parsed document), ``"stream"`` (a JSON file over
    ``records.STREAM_BYTES``; data None), ``"csv"`` (the table's rows of cells), ``"arrays"``
    (dict key -> ndarray or, for pickled VideoPose3D entries, Python objects)."""

    source: str
    kind: str
    data: Any = None
    _top: Any = field(default=None, repr=False, compare=False)

    def top_level(self):
        """The byte scan of a ``"stream"`` input (:func:`lifting.io.json_scan.scan_top_level`),
        made on first use and kept with the input, so that format detection and the reader
        scan the file once.

        Raises:
            ScanFallback: the file is left to the streaming reader (every call, from one scan)."""
        from ..json_scan import ScanFallback, scan_top_level

        if self._top is None:
            try:
                self._top = scan_top_level(self.source)
            except ScanFallback as e:
                self._top = e
        if isinstance(self._top, ScanFallback):
            raise self._top
        return self._top


@dataclass(frozen=True)
class ReadOptions:
    """What the user gave about the input: ``fps`` (frames/s, overrides the file's) and
    ``image_size`` (``(width, height)`` px, overrides the file's); None = not given."""

    fps: float | None
    image_size: tuple[int, int] | None


class DetectionRows:
    """Per-detection rows while a file is read, in growing numpy buffers (no Python object per
    row, so memory follows the keypoint arrays): ``frames (N,)`` int64, file track ids ``(N,)``
    (``has_tid`` False = none), ``keypoints (N, K, 3)`` float32 (x, y px, confidence; float32
    overflow -> inf, masked later), ``boxes (N, 4)`` ``[x, y, w, h]`` px and ``scores (N,)``
    (NaN = none), and a location ``(N, 2)`` int64 that ``describe(a, b)`` turns into text for
    messages.  Enforces :data:`MAX_PERSON_FRAMES` and one joint count."""

    def __init__(self, source: str, describe: Callable[[int, int], str] = lambda a, b: f"record {a}") -> None:
        self.source, self.describe, self.n = source, describe, 0
        self.cap = self.expected = 0
        self.num_joints = 0
        self.idx_records = self.idx_unusable = 0  # AlphaPose idx (no track_id): records, and those not an id

    def expect(self, n: int) -> None:
        """Size the buffers for ``n`` rows (at most :data:`MAX_PERSON_FRAMES`) when they are
        first made, instead of doubling them up to it (one copy less of each array at the
        end of a large file)."""
        self.expected = min(n, MAX_PERSON_FRAMES)

    def _grow(self, k: int) -> None:
        cap = max(16, 2 * self.cap, self.expected)
        new = dict(frames=np.zeros(cap, np.int64), tids=np.zeros(cap, np.int64), has_tid=np.zeros(cap, bool),
                   keypoints=np.zeros((cap, k, 3), np.float32), boxes=np.full((cap, 4), np.nan, np.float32),
                   scores=np.full(cap, np.nan, np.float32), has_box=np.zeros(cap, bool),
                   has_score=np.zeros(cap, bool), loc=np.zeros((cap, 2), np.int64))
        for name, arr in new.items():
            if self.cap:
                arr[: self.n] = getattr(self, name)[: self.n]
            setattr(self, name, arr)
        self.cap = cap

    def add(self, frame: int, tid: int | None, kp: np.ndarray, box: Any, score: Any, loc: tuple[int, int]) -> None:
        """Append one detection: ``frame``, file track id (None = none), keypoints ``(K, 3)``
        (x, y px, confidence), box ``[x, y, w, h]`` px or None, score or None, and its
        location ``loc`` for messages.

        Raises:
            TrackFormatError: more than :data:`MAX_PERSON_FRAMES` rows, or a joint count
                other than the first detection's.
        """
        if self.n >= MAX_PERSON_FRAMES:
            raise TrackFormatError(f"{self.source}: more than MAX_PERSON_FRAMES = {MAX_PERSON_FRAMES} detections; "
                                   "split the input")
        if self.n and kp.shape[0] != self.num_joints:
            raise TrackFormatError(f"{self.source}: {self.describe(*loc)} has {kp.shape[0]} joints but "
                                   f"{self.where(0)} has {self.num_joints}; all detections must use the same "
                                   "joint set")
        if self.n == 0:
            self.num_joints = kp.shape[0]
        if self.n == self.cap:
            self._grow(kp.shape[0])
        i = self.n
        with np.errstate(over="ignore", invalid="ignore"):
            self.keypoints[i] = kp
            if box is not None:
                self.boxes[i] = box
            if score is not None:
                self.scores[i] = score
        self.frames[i], self.loc[i] = frame, loc
        self.has_box[i], self.has_score[i] = box is not None, score is not None
        if tid is not None:
            self.tids[i], self.has_tid[i] = tid, True
        self.n = i + 1

    def add_many(self, frames: np.ndarray, tids: np.ndarray | None, kp: np.ndarray, boxes: np.ndarray | None,
                 scores: np.ndarray | None, records: np.ndarray) -> None:
        """Append ``M`` checked detections at once (as ``M`` calls of :meth:`add`): ``frames
        (M,)`` int64, file track ids ``(M,)`` or None, keypoints ``(M, K, 3)`` with ``K`` the
        rows' joint count, boxes ``(M, 4)`` / scores ``(M,)`` or None, ``records (M,)`` their
        record numbers (location ``(record, 0)``). The caller checked the counts and limits."""
        m, i = len(frames), self.n
        if i == 0:
            self.num_joints = kp.shape[1]
        while self.cap < i + m:
            self._grow(kp.shape[1])
        with np.errstate(over="ignore", invalid="ignore"):
            self.keypoints[i:i + m] = kp
            if boxes is not None:
                self.boxes[i:i + m] = boxes
            if scores is not None:
                self.scores[i:i + m] = scores
        self.frames[i:i + m], self.loc[i:i + m, 0], self.loc[i:i + m, 1] = frames, records, 0
        self.has_box[i:i + m], self.has_score[i:i + m] = boxes is not None, scores is not None
        if tids is not None:
            self.tids[i:i + m], self.has_tid[i:i + m] = tids, True
        self.n = i + m

    def __len__(self) -> int:
        return self.n

    def where(self, i: int) -> str:
        """Where row ``i`` is in the file, in words (e.g. ``"record 12"``)."""
        return self.describe(*map(int, self.loc[i]))



def _float_column(values: np.ndarray, given: np.ndarray, warnings: list[str], what: str) -> np.ndarray | None:
    """``values`` ``(N,)`` / ``(N, 4)`` with rows not ``given`` NaN; given rows with a non-finite
    value become NaN (unknown) and are counted in ``warnings``.  None when no row is given."""
    if not given.any():
        return None
    finite = np.isfinite(values) if values.ndim == 1 else np.isfinite(values).all(axis=1)
    bad = given & ~finite
    if bad.any():
        values[bad] = np.nan
        warnings.append(f"set {int(bad.sum())} non-finite {what}(s) to NaN (unknown)")
    return values



def check_numbers(value: Any, what: str, length: int | None = None) -> list:
    """``value`` must be a list of JSON numbers (NaN/inf allowed; masked later), of ``length``."""
    if not isinstance(value, list):
        raise TrackFormatError(f"{what} must be a list of numbers, got {describe(value)}")
    for pos, v in enumerate(value):
        if type(v) is not float:
            if type(v) is not int:  # excludes bool, str, None, nested lists
                raise TrackFormatError(f"{what}[{pos}] is not a number: {describe(v)}")
            if abs(v) > _MAX_ABS:
                raise TrackFormatError(f"{what}[{pos}] is too large: {describe(v)}")
    if length is not None and len(value) != length:
        raise TrackFormatError(f"{what} has {len(value)} values, expected {length} values")
    return value



def detection_score(value: Any, what: str) -> float | None:
    """A detection score: a JSON number (non-finite -> NaN later), ``[s]`` or None."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if value is None:
        return None
    return check_numbers([value], what)[0]



def frame_index(value: Any, what: str) -> int:
    """A frame index written as a JSON number (an integer, or a float with no fraction).

    Raises:
        TrackFormatError: not a non-negative integer, or above :data:`MAX_FRAME_INDEX`.
    """
    if isinstance(value, bool) or not isinstance(value, int) and not (
        isinstance(value, float) and math.isfinite(value) and value.is_integer()
    ):
        raise TrackFormatError(f"{what} must be a non-negative integer frame index, got {describe(value)}")
    return bounded_frame(int(value), what)



def bounded_frame(value: int, what: str) -> int:
    """``value`` when it is in ``0 .. MAX_FRAME_INDEX``; else a TrackFormatError naming ``what``."""
    if value < 0 or value > MAX_FRAME_INDEX:
        raise TrackFormatError(f"{what}: frame index {describe(value)} is out of range "
                               f"(0 .. MAX_FRAME_INDEX = {MAX_FRAME_INDEX})")
    return value



def file_fps(value: Any, source: str, key: str) -> float | None:
    """The frame rate stored under ``key`` of a file (frames/s): a number or one-element
    numeric array > 0, or None when absent.

    Raises:
        TrackFormatError: anything else (an array of several values, 0, NaN, a string...).
    """
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        if value.size != 1 or not np.issubdtype(value.dtype, np.number):
            raise TrackFormatError(f"{source}: {key} must be one number > 0, got an array of shape {value.shape}")
        value = value.item()
    if not positive_finite(value):
        raise TrackFormatError(f"{source}: {key} must be a finite number > 0, got {describe(value)}")
    return float(value)



def pixels(value: Any, what: str) -> int:
    """An image width or height stored in a file: a number (or one-element array) in
    ``(0, 1e7]`` pixels, as an int.

    Raises:
        TrackFormatError: anything else, naming ``what``.
    """
    if isinstance(value, np.ndarray):
        value = value.item() if value.size == 1 and np.issubdtype(value.dtype, np.number) else None
    if not positive_finite(value) or value > 1e7:
        raise TrackFormatError(f"{what} must be a positive number of pixels, got {describe(value)}")
    return int(value)



def want_joint_set(joint_set: str | None, found: str, allowed: tuple[str, ...], source: str, what: str) -> str:
    """The joint set to use: ``found`` (from the content) must be in ``allowed`` and equal a
    requested ``joint_set``."""
    if joint_set is not None and joint_set != found:
        raise TrackFormatError(f"{source}: format {joint_set!r} has {get_skeleton(joint_set).num_joints} joints "
                               f"but {what} ({found})")
    if found not in allowed:
        raise TrackFormatError(f"{source}: {what}; expected one of {list(allowed)}")
    return found



#: Whole-body layouts whose leading joints are a body set we read: joint count -> (body set,
#: its joints, layout name). Halpe-136 (Halpe-FullBody README; AlphaPose's 136-keypoint
#: models): Halpe-26 then 68 face and 42 hand points. COCO-WholeBody-133 (Jin et al. ECCV
#: 2020; MMPose/RTMPose/DWPose wholebody models): COCO-17, 6 foot, 68 face, 42 hand points.
WHOLE_BODY = {136: ("halpe26", 26, "Halpe-136"), 133: ("coco17", 17, "COCO-WholeBody-133")}



def keep_body_part(dets: DetectionRows, warnings: list[str]) -> None:
    """Keep only the body joints of a whole-body layout (:data:`WHOLE_BODY`), in place, and
    say so; other joint counts are left as they are."""
    if dets.num_joints not in WHOLE_BODY or not len(dets):
        return
    body, k, name = WHOLE_BODY[dets.num_joints]
    dets.keypoints = np.ascontiguousarray(dets.keypoints[:, :k])
    dets.num_joints = k
    warnings.append(f"{name} whole-body keypoints: the {k} body joints ({body}) are read, face and hands are not")



def joint_set_by_count(k: int, allowed: tuple[str, ...]) -> str | None:
    """The one joint set of ``allowed`` with ``k`` joints, or None (none, or several)."""
    hits = [n for n in allowed if get_skeleton(n).num_joints == k]
    return hits[0] if len(hits) == 1 else None



def not_a_known_format(source: str, what: str) -> TrackFormatError:
    """The error for input that is no format we read: says what it looks like and lists the formats."""
    return TrackFormatError(f"{source}: {what}; the formats read are {', '.join(READER_FORMATS)} (the README's "
                            "format table; CSV tables: MediaPipe landmarks). Pass --format if it is one of them")



def _idx_not_ids(rows: DetectionRows, frames: np.ndarray) -> str | None:
    """Why the AlphaPose ``idx`` values of ``rows`` are not track ids (None when they are, or
    when the file has none): some are nested or non-integer (pose-NMS merges), or one value is
    shared by several people in a frame (AlphaPose without its tracker writes 0 for all)."""
    if not rows.idx_records:
        return None
    if rows.idx_unusable:
        return f"{rows.idx_unusable} of {rows.idx_records} record(s) have a nested or non-integer idx"
    n = len(rows)
    has, ids = rows.has_tid[:n], rows.tids[:n]
    pairs = np.stack([frames[has], ids[has]], axis=1)
    if len(np.unique(pairs, axis=0)) < len(pairs):
        return "the same idx for several people in one frame"
    return None


def finish(rows: DetectionRows, *, joint_set: str, opts: ReadOptions, warnings: list[str], meta: dict,
           hint: str, fps: float | None = None, image_size: tuple[int, int] | None = None) -> Detections:
    """The rows of a format reader, cleaned (module docstring), as :class:`Detections`.

    Args:
        rows: what the reader parsed.
        joint_set: the :func:`lifting.skeletons.get_skeleton` name of the keypoints.
        opts: the user's ``fps`` / ``image_size``; they win over ``fps`` / ``image_size``.
        warnings: the reader's notes so far (the cleaning counts are appended).
        meta: the file's metadata, with ``input_format``.
        hint: how to get track ids in this format, for the tracking step's error message.
        fps: frame rate stored in the file (frames/s), or None.
        image_size: ``(width, height)`` px stored in the file, or None.

    Raises:
        TrackFormatError: no detection at all.
    """
    if not len(rows):
        raise TrackFormatError(f"{rows.source}: no person detections found")
    n = len(rows)
    kp = rows.keypoints[:n]
    note_cleaning(clean_in_place(kp), warnings)
    frames = rows.frames[:n]
    boxes = _float_column(rows.boxes[:n], rows.has_box[:n], warnings, "bbox")
    scores = _float_column(rows.scores[:n], rows.has_score[:n], warnings, "detection score")
    return Detections(source=rows.source, keypoint_format=joint_set, frames=frames, keypoints=kp, boxes=boxes,
                      scores=scores, has_box=rows.has_box[:n], has_score=rows.has_score[:n], file_ids=rows.tids[:n],
                      has_id=rows.has_tid[:n], fps=opts.fps if opts.fps is not None else fps,
                      image_size=opts.image_size or image_size, warnings=warnings, meta=meta, id_hint=hint,
                      id_doubt=_idx_not_ids(rows, frames), where=rows.where)
