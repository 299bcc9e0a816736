"""The fast reader of large record files (lifting/io/json_scan.py): the same detections as the
streaming (ijson) reader, and a fallback to it for what the scan does not handle."""
import json

import numpy as np
import pytest

import lifting.io.json_scan as js
import lifting.io.readers.coco as coco
import lifting.io.records as records
from lifting.io.readers import read_detections
from lifting.io.tracks import TrackFormatError


def _records(n: int, seed: int = 0) -> list[dict]:
    """Plain records (added a block at a time) and, from record 200 on, irregular ones."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        rec = {"image_id": i // 3, "category_id": 1, "keypoints": rng.uniform(0, 500, 51).round(2).tolist(),
               "score": float(rng.uniform()), "track_id": i % 3}
        if i < 200:
            out.append(rec)
            continue
        if i % 7 == 3:  # blocks with irregular records go record by record
            rec["bbox"] = [1, 2, 30.5, 40]
        if i % 11 == 5:
            rec["category_id"] = 2
        if i % 13 == 0:
            rec["note"] = 'a "quoted" \\ {[,:'
        out.append(rec)
    return out


def _read_both(path, monkeypatch):
    """(fast, streamed) reads of ``path`` as a streamed file."""
    monkeypatch.setattr(records, "STREAM_BYTES", 0)
    fast = read_detections(str(path))

    def no_scan(*a, **k):
        raise js.ScanFallback("test")

    monkeypatch.setattr(coco, "stream_record_blocks", no_scan)
    slow = read_detections(str(path))
    return fast, slow


@pytest.mark.parametrize("layout", ["list", "object"])
@pytest.mark.parametrize("block", [pytest.param(1, marks=pytest.mark.slow), 7, 2**20])  # 1-byte blocks: ~9 s each
def test_fast_reader_matches_the_streaming_reader(tmp_path, monkeypatch, layout, block):
    recs = _records(300)
    plain = []
    monkeypatch.setattr(coco, "_add_plain_block", lambda b, d, f, add=coco._add_plain_block: plain.append(add(b, d, f))
                        or plain[-1])
    doc = recs if layout == "list" else {"meta": {"fps": 25.0, "note": 'x\\"}'}, "annotations": recs}
    p = tmp_path / "r.json"
    p.write_text(json.dumps(doc, indent=1))
    monkeypatch.setattr(js, "SCAN_BLOCK", block)
    monkeypatch.setattr(js, "RECORD_BLOCK", 16)
    fast, slow = _read_both(p, monkeypatch)
    for name in ("frames", "keypoints", "boxes", "scores", "has_box", "has_score", "file_ids", "has_id"):
        a, b = getattr(fast, name), getattr(slow, name)
        assert (a is None and b is None) or np.array_equal(a, b, equal_nan=True), name
    assert fast.warnings == slow.warnings and fast.fps == slow.fps
    assert "skipped" in " ".join(fast.warnings)  # the category-2 records
    assert plain.count(True) >= 200 // 16 and False in plain  # both ways were taken
    assert [fast.where(i) for i in (0, 150, len(fast) - 1)] == [slow.where(i) for i in (0, 150, len(slow) - 1)]


@pytest.mark.parametrize("text, message", [
    ('[{"image_id": 0, "keypoints": [1, 2, NaN]}]', "strict JSON"),           # orjson refuses: ijson's message
    ('[5, {"image_id": 0, "keypoints": [1, 2, 1]}]', "not a JSON object"),     # a non-object item
    ('{"annotations": [{"image_id": 0}], "annotations": []}', "annotation list is empty|has no 'keypoints'"),
])
def test_fast_reader_falls_back_with_the_usual_errors(tmp_path, monkeypatch, text, message):
    p = tmp_path / "bad.json"
    p.write_text(text)
    monkeypatch.setattr(records, "STREAM_BYTES", 0)
    with pytest.raises(TrackFormatError, match=message):
        read_detections(str(p), "coco")


def test_scan_finds_top_level_values_and_records(tmp_path):
    p = tmp_path / "o.json"
    p.write_text(json.dumps({"meta": {"a": [1, {"b": "]}"}]}, "annotations": [{"k": "{"}, {"q": [[1]]}], "z": 3}))
    top = js.scan_top_level(str(p))
    assert top.kind == "object" and set(top.values) == {"meta", "annotations", "z"}
    assert js.parse_value(str(p), top.values["meta"]) == {"a": [1, {"b": "]}"}]}
    assert [r for b in js.record_blocks(str(p), top.arrays["annotations"]) for r in b] == [{"k": "{"}, {"q": [[1]]}]


@pytest.mark.parametrize("block", [1, 2, 3, 5, 2**20])
def test_scan_top_level_colons_and_commas_at_every_block_size(tmp_path, monkeypatch, block):
    doc = {"a,b:": 1, "m\\\"{": {"x": "]},:"}, "annotations": [{"k": "\\\\"}, {"q": ":,"}], "z": "q,:\\", "n": None}
    p = tmp_path / "o.json"
    p.write_text(json.dumps(doc, indent=1))
    monkeypatch.setattr(js, "SCAN_BLOCK", block)
    top = js.scan_top_level(str(p))
    assert {k: js.parse_value(str(p), v) for k, v in top.values.items()} == doc
    assert [r for b in js.record_blocks(str(p), top.arrays["annotations"]) for r in b] == doc["annotations"]


@pytest.mark.parametrize("bad, message", [
    ("true", r"keypoints\[1\] is not a number"), ("null", r"keypoints\[1\] is not a number"),
    ('"2"', r"keypoints\[1\] is not a number"), ("[2]", r"keypoints\[1\] is not a number"),
    ("{}", r"keypoints\[1\] is not a number"),
])
def test_plain_blocks_refuse_what_is_not_a_number(tmp_path, monkeypatch, bad, message):
    """A block of plain records whose text holds only numbers skips the per-value type check;
    any other value in a keypoint list still gets the record parser's message."""
    good = ", ".join(["1.5"] * 51)
    recs = [f'{{"image_id": {i}, "score": 0.5, "keypoints": [{good}]}}' for i in range(40)]
    recs[20] = recs[20].replace("[1.5, 1.5", f"[1.5, {bad}", 1)
    p = tmp_path / "r.json"
    p.write_text("[" + ",\n".join(recs) + "]")
    monkeypatch.setattr(records, "STREAM_BYTES", 0)
    monkeypatch.setattr(js, "RECORD_BLOCK", 16)
    with pytest.raises(TrackFormatError, match=message):
        read_detections(str(p), "coco")


def test_only_numbers_sees_strings_and_literals():
    keys = 2  # {"image_id": ..., "keypoints": ...}
    assert coco._only_numbers(bytearray(b'[{"image_id": 1, "keypoints": [1, 2.5e3, -1]}]'), keys)
    for text in (b'[{"image_id": 1, "keypoints": [1, true, 1]}]', b'[{"image_id": 1, "keypoints": [1, null, 1]}]',
                 b'[{"image_id": 1, "keypoints": [1, false, 1]}]', b'[{"image_id": 1, "keypoints": [1, "2", 1]}]',
                 b'[{"image_id": 1, "keypoints": [1, {"a": 1}, 1]}]'):
        assert not coco._only_numbers(bytearray(text), keys), text
    assert not coco._only_numbers(None, keys)
