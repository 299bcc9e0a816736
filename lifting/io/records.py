"""Low-level parsing shared by the keypoint readers (:mod:`lifting.io.readers`): the cleaning
policy of keypoint arrays, value checks, COCO-style record fields (``image_id``, track ids),
input-file checks and JSON loading (whole, or streamed for large files).

The layouts and the cleaning policy are described in :mod:`lifting.io.tracks`; every content
problem raises :class:`lifting.io.tracks.TrackFormatError` naming the file.
"""
from __future__ import annotations

import json
import math
import os
import re
import stat
from typing import Any

import numpy as np

from .tracks import MAX_ABS_PX, TrackFormatError

__all__ = ["clean_keypoints", "clean_in_place", "note_cleaning", "CLEANING_NOTES", "is_number", "describe",
           "positive_finite", "parse_image_id", "parse_track_id", "alphapose_idx", "check_input_file", "load_json", "STREAM_BYTES",
           "stream_top_level", "stream_record_blocks", "split_top_level", "meta_image_size"]

_DIGIT_RUN = re.compile(r"\d+")


def clean_keypoints(kp: np.ndarray, warnings: list[str]) -> np.ndarray:
    """Apply the cleaning policy of the module docstring to keypoints ``(..., K, 3)`` (x, y,
    confidence); returns a float32 copy and appends one line per kind of fix to ``warnings``.
    Values that overflow float32 count as non-finite."""
    with np.errstate(over="ignore", invalid="ignore"):
        kp = np.array(kp, dtype=np.float64).astype(np.float32)
    note_cleaning(clean_in_place(kp), warnings)
    return kp


CLEANING_NOTES = (
    "masked {} joint(s) with non-finite x/y or |x|, |y| > MAX_ABS_PX (set x = y = 0, confidence 0)",
    "set {} non-finite confidence value(s) to 0",
    "clipped {} confidence value(s) outside [0, 1]",
)


def clean_in_place(kp: np.ndarray) -> np.ndarray:
    """Clean float32 keypoints ``(..., K, 3)`` in place (policy of the module docstring);
    returns the counts ``(3,)`` int64: masked joints, non-finite confidences, clipped confidences."""
    with np.errstate(invalid="ignore"):
        bad_xy = ~(np.abs(kp[..., 0]) <= MAX_ABS_PX) | ~(np.abs(kp[..., 1]) <= MAX_ABS_PX)  # NaN compares False
    kp[bad_xy] = 0.0
    conf = kp[..., 2]
    bad_conf = ~np.isfinite(conf)
    conf[bad_conf] = 0.0
    out_of_range = (conf < 0.0) | (conf > 1.0)
    np.clip(conf, 0.0, 1.0, out=conf)
    return np.array([bad_xy.sum(), bad_conf.sum(), out_of_range.sum()], dtype=np.int64)


def note_cleaning(counts: np.ndarray, warnings: list[str]) -> None:
    """Append the warning line of each non-zero count of :func:`clean_in_place`."""
    warnings.extend(note.format(int(n)) for note, n in zip(CLEANING_NOTES, counts) if n)


# --------------------------------------------------------------------------- data classes


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def positive_finite(value: Any) -> bool:
    try:
        return is_number(value) and math.isfinite(value) and value > 0
    except OverflowError:  # int too large for a float
        return False


_INT64_MAX = np.iinfo(np.int64).max


def parse_image_id(value: Any, source: str, index: int) -> int:
    """Frame index of a record: an int, an integral float, or the last digit run of a file-name stem."""
    where = f"{source}: record {index}"
    if is_number(value):
        if isinstance(value, float):
            if not (math.isfinite(value) and value.is_integer()):
                raise TrackFormatError(f"{where}: image_id {value!r} is not an integer frame index")
            value = int(value)
        frame = value
    elif isinstance(value, str):
        stem = os.path.splitext(value.replace("\\", "/").rsplit("/", 1)[-1])[0]
        runs = _DIGIT_RUN.findall(stem)
        if not runs:
            raise TrackFormatError(
                f"{where}: image_id {value!r} contains no integer frame number "
                "(expected an int or a name such as '000123.jpg')"
            )
        frame = int(runs[-1])
    else:
        raise TrackFormatError(
            f"{where}: image_id must be an integer frame index or a file name, got {describe(value)}"
        )
    if frame < 0:
        raise TrackFormatError(f"{where}: image_id {frame} is negative; frame indices start at 0")
    if frame > _INT64_MAX:
        raise TrackFormatError(f"{where}: image_id {frame} is too large for a frame index")
    return frame


def alphapose_idx(raw: Any) -> int | None:
    """AlphaPose's ``idx`` as a track id, or None when it is none. AlphaPose writes ``idx`` as
    a number (``0.0``), a one-element list (``[0.0]``) or, for boxes its pose NMS merged, a
    nested list (``[[0.0], [0.0]]``); without its tracker (``--pose_track`` / ``--pose_flow``)
    it is 0 for everyone (AlphaPose ``docs/output.md`` and its writer). An integer-valued
    number, bare or in a one-element list, is an id; anything else is not."""
    if isinstance(raw, list) and len(raw) == 1:
        raw = raw[0]
    if is_number(raw) and (isinstance(raw, int) or (math.isfinite(raw) and raw.is_integer())) \
            and abs(int(raw)) <= _INT64_MAX:
        return int(raw)
    return None


def parse_track_id(rec: dict, source: str, index: int) -> int | None:
    """Track id from ``track_id`` (an integer, strictly; a one-element list is unwrapped),
    else AlphaPose's ``idx`` when it is one (:func:`alphapose_idx`); None when the record has
    no usable id.

    Raises:
        TrackFormatError: a ``track_id`` that is not an integer, or ``track_id`` and an
            ``idx`` id that disagree.
    """
    where = f"{source}: record {index}"
    idx = alphapose_idx(rec["idx"]) if rec.get("idx") is not None else None
    raw = rec.get("track_id")
    if raw is None:
        return idx
    if isinstance(raw, list) and len(raw) == 1:
        raw = raw[0]
    if not (is_number(raw) and (isinstance(raw, int) or (math.isfinite(raw) and raw.is_integer()))):
        raise TrackFormatError(f"{where}: track_id must be an integer track id, got {describe(rec.get('track_id'))}")
    if abs(int(raw)) > _INT64_MAX:
        raise TrackFormatError(f"{where}: track_id {raw} is too large for a track id")
    if idx is not None and idx != int(raw):
        raise TrackFormatError(f"{where}: track_id {int(raw)} and idx {idx} disagree (idx is AlphaPose's name "
                               "for the track id)")
    return int(raw)


# --------------------------------------------------------------------------- reading


def check_input_file(source: str, *, allow_dir: bool = False) -> int:
    """Refuse what cannot be read safely; return the file size in bytes (0 for a folder).

    Raises:
        TrackFormatError: ``source`` is missing ("file not found"), a symlink loop, a folder
            (unless ``allow_dir``), or not a regular file (FIFO, device, socket: reading
            those can block forever or never end, e.g. ``/dev/zero``; ``<(cmd)`` process
            substitution is a pipe, so write the output to a file first).
    """
    try:
        st = os.stat(source)
    except OSError as e:
        if os.path.islink(source):
            raise TrackFormatError(f"{source}: symbolic link that cannot be followed ({e.strerror or e}; a "
                                   "symlink loop or a dangling link)") from None
        if isinstance(e, FileNotFoundError):
            raise TrackFormatError(f"{source}: file not found") from None
        raise TrackFormatError(f"{source}: cannot access ({e.strerror or e})") from None
    if stat.S_ISDIR(st.st_mode):
        if allow_dir:
            return 0
        raise TrackFormatError(f"{source}: is a directory, expected a file")
    if not stat.S_ISREG(st.st_mode):
        kind = ("a FIFO/pipe" if stat.S_ISFIFO(st.st_mode) else "a device" if stat.S_ISCHR(st.st_mode)
                or stat.S_ISBLK(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
        raise TrackFormatError(f"{source}: is {kind}; keypoint input must be a regular file (write a pipe's "
                               "output to a file first)")
    return int(st.st_size)


def load_json(source: str) -> Any:
    """Parse a JSON file of at most :data:`STREAM_BYTES` bytes (checked before reading)."""
    size = check_input_file(source)
    if size > STREAM_BYTES:
        raise TrackFormatError(f"{source}: {size / 2**20:.0f} MB is larger than the {STREAM_BYTES >> 20} MB read "
                               "whole for this format (only COCO-style record files are streamed)")
    try:
        with open(source, encoding="utf-8-sig") as f:
            text = f.read(STREAM_BYTES + 1)  # bounded even if the file grew since the size check
    except UnicodeDecodeError as e:
        raise TrackFormatError(f"{source}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    except OSError as e:
        raise TrackFormatError(f"{source}: cannot read file ({e.strerror or e})") from e
    if not text.strip():
        raise TrackFormatError(f"{source}: file is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise TrackFormatError(
            f"{source}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}"
        ) from e
    except RecursionError as e:
        raise TrackFormatError(f"{source}: invalid JSON: nested too deeply") from e


#: JSON files larger than this are not read whole: COCO-style record files are parsed
#: incrementally (``ijson``) into the readers' numpy buffers, other formats are refused.
STREAM_BYTES = 64 * 2**20


def stream_top_level(source: str) -> tuple[dict, Any]:
    """Streaming counterpart of ``split_top_level(load_json(source))`` for large files:
    ``(meta, lazy iterator of records)``. Large files must be strict JSON (no NaN literals)."""
    import ijson

    with open(source, "rb") as f:
        head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head[:1] == b"[":
        meta: Any = {}
        prefix = "item"
    elif head[:1] == b"{":
        try:
            with open(source, "rb") as f:
                metas = list(ijson.items(f, "meta", use_float=True))
        except ijson.JSONError as e:
            raise TrackFormatError(f"{source}: invalid JSON ({e})") from None
        meta = metas[0] if metas and metas[0] is not None else {}
        if not isinstance(meta, dict):
            raise TrackFormatError(f"{source}: 'meta' must be a JSON object, got {type(meta).__name__}")
        prefix = "annotations.item"
    else:
        raise TrackFormatError(f"{source}: top level is not a JSON list or object")

    def records():
        try:
            with open(source, "rb") as f:
                yield from ijson.items(f, prefix, use_float=True)
        except ijson.JSONError as e:
            raise TrackFormatError(f"{source}: invalid JSON ({e}); files over {STREAM_BYTES >> 20} MB are read "
                                   "as strict JSON (no NaN/Infinity literals)") from None

    return meta, records()


def stream_record_blocks(source: str, top) -> tuple[dict, Any]:
    """The fast counterpart of :func:`stream_top_level` (:mod:`lifting.io.json_scan`):
    ``(meta, iterator of lists of records)`` of the file ``source`` whose byte scan is ``top``
    (:class:`lifting.io.json_scan.TopLevel`).

    Raises:
        ScanFallback: the file is to be read by :func:`stream_top_level` instead (which then
            raises the usual errors). TrackFormatError: a ``meta`` that is not an object."""
    from .json_scan import RecordBlocks, ScanFallback, parse_value

    if top.kind == "list":
        return {}, RecordBlocks(source, top.arrays[""])
    if "annotations" not in top.arrays:
        raise ScanFallback("no 'annotations' array")
    meta = parse_value(source, top.values["meta"]) if "meta" in top.values else None
    meta = {} if meta is None else meta
    if not isinstance(meta, dict):
        raise TrackFormatError(f"{source}: 'meta' must be a JSON object, got {type(meta).__name__}")
    return meta, RecordBlocks(source, top.arrays["annotations"])


def split_top_level(data: Any, source: str) -> tuple[dict, list]:
    if isinstance(data, list):
        meta: Any = {}
        records = data
    elif isinstance(data, dict):
        if "annotations" not in data:
            keys = ", ".join(sorted(map(str, data))[:8]) or "none"
            raise TrackFormatError(
                f"{source}: top-level JSON object has no 'annotations' list (keys: {keys}); expected "
                "{'meta': {...}, 'annotations': [records]} or a bare list of records"
            )
        records = data["annotations"]
        if not isinstance(records, list):
            raise TrackFormatError(f"{source}: 'annotations' must be a list of records, got {type(records).__name__}")
        meta = data.get("meta")
        if meta is None:
            meta = {}
        if not isinstance(meta, dict):
            raise TrackFormatError(f"{source}: 'meta' must be a JSON object, got {type(meta).__name__}")
    else:
        raise TrackFormatError(
            f"{source}: top level is a JSON {type(data).__name__}; expected a list of records "
            "or an object with an 'annotations' list"
        )
    if not records:
        raise TrackFormatError(f"{source}: annotation list is empty (no detections)")
    return meta, records


def meta_image_size(meta: dict, source: str, warnings: list[str]) -> tuple[int, int] | None:
    width, height = meta.get("width"), meta.get("height")
    if width is None and height is None:
        return None
    if width is None or height is None:
        warnings.append("meta has only one of width/height; image_size left unknown")
        return None
    size = []
    for name, v in (("width", width), ("height", height)):
        if not (positive_finite(v) and float(v).is_integer()):
            raise TrackFormatError(f"{source}: meta.{name} must be a positive integer (pixels), got {describe(v)}")
        size.append(int(v))
    return size[0], size[1]
