"""COCO-style record files: COCO keypoint *results* (MMPose, Detectron2, AlphaPose and our own
tracks, :mod:`lifting.io.tracks`) and COCO *annotation* files.

Sources: the COCO data format (https://cocodataset.org/#format-data, "Object Keypoint
Detection") and results format (https://cocodataset.org/#format-results), AlphaPose
``docs/output.md`` (``idx``, ``box``).  One parser (:func:`_parse_records`) serves both.
"""

from __future__ import annotations

import gc
import os
from contextlib import contextmanager
from itertools import chain, repeat
from operator import itemgetter
from typing import Any, Iterator

import numpy as np
from tqdm import tqdm

from ..detections import Detections
from ..json_scan import RECORD_BLOCK, ScanFallback
from ..records import (_INT64_MAX, describe, meta_image_size, parse_image_id, parse_track_id, split_top_level,
                       stream_record_blocks, stream_top_level)
from ..tracks import PERSON_CATEGORY, TrackFormatError
from . import common  # its limits read at call time (as DetectionRows.add does)
from .common import (_MAX_ABS, DIGITS, MAX_FRAME_INDEX, RECORD_JOINT_SETS, DetectionRows, Input,
                     ReadOptions, bounded_frame, check_numbers, detection_score, file_fps, finish, joint_set_by_count,
                     keep_body_part, want_joint_set)


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
    if inp.kind not in ("stream", "json"):
        raise TrackFormatError(f"{source}: COCO-style records must be a JSON file")
    try:
        meta, dets, joint_set = _read_records(inp, joint_set, warnings, fast=inp.kind == "stream")
    except ScanFallback:  # a large file the fast path leaves to the streaming parser
        warnings = []
        meta, dets, joint_set = _read_records(inp, joint_set, warnings, fast=False)
    keep_body_part(dets, warnings)
    k = dets.num_joints
    found = joint_set_by_count(k, RECORD_JOINT_SETS) or f"{k} joints"
    joint_set = want_joint_set(joint_set, found, RECORD_JOINT_SETS, source, f"records have {k} joints per person")
    size = meta_image_size(meta, source, warnings)
    fps = file_fps(meta.get("fps"), source, "meta.fps")
    meta = {**meta, "input_format": "halpe26" if joint_set == "halpe26" else "coco"}
    return finish(dets, joint_set=joint_set, opts=opts, warnings=warnings, meta=meta, fps=fps, image_size=size,
                   hint="add 'track_id' (AlphaPose 'idx') to the records")



def _read_records(inp: Input, joint_set: str | None, warnings: list[str],
                  fast: bool) -> tuple[dict, DetectionRows, str | None]:
    """``(meta, rows, joint set)`` of a record file: parsed whole (``inp.kind == "json"``),
    streamed (``ijson``), or, with ``fast``, scanned and parsed in blocks
    (:func:`lifting.io.records.stream_record_blocks`; raises ScanFallback when it does not
    apply). The joint set is ``joint_set``, else the one ``meta.keypoint_format`` names (a bad
    one fails before the records are read), else None."""
    source = inp.source
    if fast:
        meta, records = stream_record_blocks(source, inp.top_level())
    elif inp.kind == "stream":
        meta, records = stream_top_level(source)
    else:
        meta, records = split_top_level(inp.data, source)
    if joint_set is None and meta.get("keypoint_format") is not None:
        joint_set = _meta_joint_set(meta["keypoint_format"], source)
    dets = DetectionRows(source)
    _parse_records(records, dets, warnings, flags=False, frame_of=None, blocks=fast)
    return meta, dets, joint_set


def _meta_joint_set(value: Any, source: str) -> str:
    """The joint set a ``meta.keypoint_format`` names: a record-file entry of
    :data:`lifting.io.readers.FORMATS` with a joint set. Raises TrackFormatError: any other value."""
    from . import FORMATS  # the one table of format names (it imports this module)

    entry = FORMATS.get(value.strip().lower()) if isinstance(value, str) else None
    found = entry.joint_set if entry is not None and entry.reader is read_coco else None
    if found is None:
        raise TrackFormatError(f"{source}: unknown meta.keypoint_format {describe(value)}; expected one of "
                               f"{list(RECORD_JOINT_SETS)}")
    return found



def _parse_records(records: Any, dets: DetectionRows, warnings: list[str], *, flags: bool,
                   frame_of: dict | None, blocks: bool = False) -> None:
    """Add COCO-style person records to ``dets`` (the one record parser).

    ``flags``: the third keypoint value is a COCO visibility flag (0 -> confidence 0; 1, 2 ->
    1).  ``frame_of``: ``image_id`` -> frame (annotation files); else ``image_id`` is the frame.
    ``blocks``: ``records`` yields lists of records (:func:`lifting.io.json_scan.record_blocks`);
    a list of records parsed whole is taken :data:`RECORD_BLOCK` at a time the same way. A
    block of plain records (no flags, no ``frame_of``) is added in one go
    (:func:`_add_plain_block`), any other record by record, with the same checks and messages;
    streamed records (``ijson``) record by record.
    """
    source = dets.source
    skipped: dict[str, int] = {}
    n = 0
    total = getattr(records, "n_records", None) if blocks else len(records) if isinstance(records, list) else None
    bar = tqdm(total=total, unit="record", desc="read", disable=None, leave=False, mininterval=1.0,
               dynamic_ncols=True)  # disable=None: only on a terminal
    if blocks and total:
        dets.expect(total)
    whole = not blocks and isinstance(records, list)
    chunks = (records if blocks else
              (records[i:i + RECORD_BLOCK] for i in range(0, len(records), RECORD_BLOCK)) if whole else
              ([r] for r in records))
    with _gc_paused(blocks):
        for block in chunks:
            if (blocks or whole) and not flags and frame_of is None and _add_plain_block(block, dets, n):
                n += len(block)
            else:
                for rec in block:
                    _add_record(rec, n, dets, skipped, flags, frame_of)
                    n += 1
            bar.update(len(block))
    bar.close()
    if skipped:
        detail = ", ".join(f"{k}: {v}" for k, v in sorted(skipped.items()))
        warnings.append(f"skipped {sum(skipped.values())} non-person record(s) (category_id != 1; {detail})")
    if not n:
        raise TrackFormatError(f"{source}: annotation list is empty (no detections)")
    if not len(dets):
        raise TrackFormatError(f"{source}: no person records (category_id 1) among {n} record(s)")


@contextmanager
def _gc_paused(pause: bool) -> Iterator[None]:
    """Turn Python's cyclic garbage collector off for the block, when ``pause``: the parsed
    records (a million dicts and lists) hold no cycles and are freed by reference counting, and
    the collector would otherwise walk them again and again while they are made."""
    was = pause and gc.isenabled()
    if was:
        gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _add_record(rec: Any, i: int, dets: DetectionRows, skipped: dict, flags: bool, frame_of: dict | None) -> None:
    """Check record ``i`` and add it to ``dets`` (a non-person record is counted in ``skipped``)."""
    source, where = dets.source, f"record {i}"
    if not isinstance(rec, dict):
        raise TrackFormatError(f"{source}: {where} is not a JSON object (got {type(rec).__name__})")
    cat = rec.get("category_id", PERSON_CATEGORY)
    if cat is not None and (isinstance(cat, bool) or cat != 1):
        skipped[describe(cat)] = skipped.get(describe(cat), 0) + 1
        return
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


_PLAIN_KEYS = frozenset(("image_id", "category_id", "keypoints", "score", "bbox", "track_id"))
_OPTIONAL = frozenset(("score", "bbox", "track_id"))
_NUMBER = frozenset((int, float))


def _numbers(values: list, width: int, checked: bool = False) -> np.ndarray | None:
    """``(n, width)`` float64 of ``values`` (lists of ``width`` JSON numbers each), or None when
    any is not such a list or holds an int beyond :data:`~lifting.io.readers.common._MAX_ABS`.
    ``checked``: the values are known to hold no string, bool or null (:func:`_only_numbers`),
    so the conversion itself rejects what is not a number (a nested list or object)."""
    if set(map(type, values)) != {list} or set(map(len, values)) != {width}:
        return None
    if not checked and not set(map(type, chain.from_iterable(values))) <= _NUMBER:
        return None
    try:
        arr = np.fromiter(chain.from_iterable(values), np.float64, count=len(values) * width)
    except (OverflowError, TypeError, ValueError):
        return None
    return None if (np.abs(arr) > _MAX_ABS).any() else arr.reshape(len(values), width)


def _only_numbers(text: Any, n_keys: int) -> bool:
    """True when the JSON ``text`` of a block of records whose ``n_keys`` keys in all are
    :data:`_PLAIN_KEYS` holds no string but those keys (two quotes each) and no ``true`` /
    ``false`` / ``null`` (no ``u`` or ``l``, which no plain key has): every value in it is then
    a number, or a list or empty object. False when unknown (no text)."""
    if text is None:
        return False
    quotes = np.count_nonzero(np.frombuffer(text, np.uint8) == 34)
    return quotes == 2 * n_keys and b"u" not in text and b"l" not in text


def _int64(values: list, low: int, high: int) -> np.ndarray | None:
    """``(n,)`` int64 of ``values`` when all are JSON integers in ``low .. high``, else None."""
    if set(map(type, values)) != {int}:
        return None
    try:
        arr = np.array(values, np.int64)
    except OverflowError:
        return None
    return arr if arr.min() >= low and arr.max() <= high else None


def _plain_keys(recs: list) -> frozenset | None:
    """The optional fields (``score``, ``bbox``, ``track_id``) that every record of ``recs``
    has, when all are dicts with keys among :data:`_PLAIN_KEYS`, ``image_id`` and ``keypoints``
    included, and differ at most in having ``category_id``; else None."""
    if not recs or set(map(type, recs)) != {dict}:
        return None
    kinds = set(map(frozenset, recs))
    if not all(k <= _PLAIN_KEYS and "image_id" in k and "keypoints" in k for k in kinds):
        return None
    optional = {k & _OPTIONAL for k in kinds}
    return optional.pop() if len(optional) == 1 else None


def _persons(recs: list) -> bool:
    """Every record is a person: ``category_id`` 1 (an int) or none."""
    cats = list(map(dict.get, recs, repeat("category_id")))
    return set(map(type, cats)) <= {int, type(None)} and cats.count(1) + cats.count(None) == len(cats)


def _add_plain_block(recs: list, dets: DetectionRows, first: int) -> bool:
    """Add a block of plain records in one go: every record a person (``category_id`` 1 or
    none) with an integer ``image_id`` in range, ``keypoints`` of the first record's joint
    count, the same optional fields present in all (``score`` a number, ``bbox`` 4 numbers,
    ``track_id`` an integer) and nothing else that the record parser reads. False (nothing
    added) for any other block: :func:`_add_record` then checks record by record. A
    :class:`~lifting.io.json_scan.Block` whose text holds only numbers (:func:`_only_numbers`)
    skips the per-value type check."""
    keys = _plain_keys(recs)
    if keys is None or not _persons(recs):
        return False
    frames = _int64(list(map(itemgetter("image_id"), recs)), 0, MAX_FRAME_INDEX)
    if frames is None:
        return False
    checked = _only_numbers(getattr(recs, "text", None), sum(map(len, recs)))
    kps = list(map(itemgetter("keypoints"), recs))
    k3 = len(kps[0]) if type(kps[0]) is list else 0
    kp = _numbers(kps, k3, checked) if k3 and k3 % 3 == 0 else None
    too_many = len(dets) + len(recs) > common.MAX_PERSON_FRAMES  # the record path raises it
    if kp is None or (len(dets) and k3 // 3 != dets.num_joints) or too_many:
        return False
    box = _numbers(list(map(itemgetter("bbox"), recs)), 4, checked) if "bbox" in keys else None
    scores = list(map(itemgetter("score"), recs)) if "score" in keys else None
    tids = _int64(list(map(itemgetter("track_id"), recs)), -_INT64_MAX, _INT64_MAX) if "track_id" in keys else None
    if ("bbox" in keys and box is None) or (scores is not None and not set(map(type, scores)) <= _NUMBER) \
            or ("track_id" in keys and tids is None):
        return False
    dets.add_many(frames, tids, kp.reshape(len(recs), -1, 3), box,
                  None if scores is None else np.array(scores, np.float64), np.arange(first, first + len(recs)))
    return True


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

