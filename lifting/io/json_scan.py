"""Fast reading of large JSON record files (issue 23): one vectorised byte scan finds the
top-level structure, and the records are parsed in blocks by ``orjson``.

:func:`scan_top_level` reads the file once in blocks of :data:`SCAN_BLOCK` bytes and, with
numpy, finds the quotes, backslashes, braces and brackets (a few vectorised byte comparisons),
then for those alone whether they are inside a string (quote parity, escaped quotes excluded)
and their nesting depth; the top-level colons and commas are then looked for only in the
stretches outside strings at depth 1. It returns the top-level keys with the byte span of
each value (an object at the top) or the spans of the items (a list at the top), and for
every top-level array the spans of its object items. :func:`record_blocks` then parses a top-level array's
objects :data:`RECORD_BLOCK` at a time (``orjson.loads`` of the bytes between the first
object's ``{`` and the last one's ``}``; only whitespace and one comma may lie between
consecutive objects).

Anything this does not handle the way the streaming reader (``ijson``) would -- non-object
items, duplicate top-level keys, invalid JSON, NaN literals, a key longer than
:data:`MAX_KEY_BYTES` -- raises :class:`ScanFallback`, and the caller uses the streaming
reader, which gives the usual error messages. Memory: a block's byte masks plus 16 bytes per
record.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

__all__ = ["ScanFallback", "TopLevel", "scan_top_level", "record_blocks", "RecordBlocks", "Block", "parse_value",
           "SCAN_BLOCK", "RECORD_BLOCK"]

SCAN_BLOCK = 2**20
"""Bytes scanned at a time (numpy temporaries of a few times this)."""
RECORD_BLOCK = 1024
"""Records parsed per ``orjson.loads`` call."""
MAX_KEY_BYTES = 4096
_WS = b" \t\r\n"
_KEY_AT_END = re.compile(rb'"((?:[^"\\]|\\.)*)"\s*$', re.S)


class ScanFallback(Exception):
    """The fast path does not apply to this file: read it with the streaming reader."""


@dataclass
class TopLevel:
    """The top-level structure of a JSON file (:func:`scan_top_level`).

    Attributes:
        kind: ``"list"`` or ``"object"``.
        values: object: ``{key: (start, end)}`` byte span of each value (end exclusive).
        arrays: ``{key: (starts (M,), ends (M,), open, close)}``: int64 byte spans of the
            object items of each top-level array value (key ``""`` for a top-level list) and
            the positions of its ``[`` and ``]``.
    """

    kind: str
    values: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)


_CLASS = np.zeros(256, np.uint8)
for _code, _ch in enumerate(b'"{}[]\\', start=1):
    _CLASS[_ch] = _code
_QUOTE, _OPEN_OBJ, _CLOSE_OBJ, _OPEN_ARR, _CLOSE_ARR, _BACKSLASH = range(1, 7)


class _Scan:
    """Per-block state (string parity, trailing backslashes, depth) and what was found. Only
    the quotes, braces, brackets and backslashes of a block are looked at, as a compact array;
    for an object at the top, the stretches between them that lie outside strings at depth 1
    (``gaps``, where the top-level colons and commas are) are kept as byte spans."""

    def __init__(self):
        self.in_str, self.backslashes, self.depth, self.offset = False, 0, 0, 0
        self.top_ends, self.obj_starts, self.obj_ends = [], [], []
        self.arr_opens, self.arr_closes, self.first = [], [], None
        self.gap_starts, self.gap_ends, self.open_gap = [], [], None

    def block(self, buf) -> None:
        b = np.frombuffer(buf, np.uint8)
        if self.first is None:
            text = bytes(buf).lstrip(_WS)
            self.first = text[0] if text else None
        pos, c = _structural(b)
        quote = c == _QUOTE
        bs = c == _BACKSLASH
        if bs.any() or self.backslashes:
            quote &= ~self._escaped(pos, bs, len(b))
        parity = (np.cumsum(quote) + self.in_str) % 2 == 1  # inside a string (and on its opening quote)
        outside = ~parity & ~quote
        step = (outside & ((c == _OPEN_OBJ) | (c == _OPEN_ARR))).astype(np.int32) \
            - (outside & ((c == _CLOSE_OBJ) | (c == _CLOSE_ARR)))
        after = self.depth + np.cumsum(step, dtype=np.int32)
        before = after - step
        self._collect(pos + self.offset, c, outside, before, after)
        if self.first == 123:
            self._gaps(pos + self.offset, ~parity & (after == 1))
        if len(pos):
            self.in_str, self.depth = bool(parity[-1]), int(after[-1])
        self.offset += len(b)

    def _escaped(self, pos: np.ndarray, bs: np.ndarray, n: int) -> np.ndarray:
        """``(M,)`` True at the entries of the compact array (positions ``pos`` in a block of
        ``n`` bytes, ``bs`` backslashes) that follow an odd run of backslashes; updates the
        carry of backslashes ending the block."""
        k = np.arange(len(pos))
        near = np.r_[False, np.diff(pos) == 1]  # entry i is the byte right after entry i - 1
        joined = bs & np.r_[False, bs[:-1]] & near
        start = np.maximum.accumulate(np.where(bs & ~joined, k, 0))
        run = np.where(bs, k - start + 1, 0)
        if len(pos) and pos[0] == 0 and bs[0]:  # the block starts inside the last block's run
            run = np.where(bs & (start == 0), run + self.backslashes, run)
        prev = np.r_[self.backslashes if len(pos) and pos[0] == 0 else 0, np.where(near[1:], run[:-1], 0)]
        self.backslashes = int(run[-1]) if len(pos) and bs[-1] and pos[-1] == n - 1 else 0
        return prev % 2 == 1

    def _collect(self, pos, c, outside, before, after) -> None:
        self.top_ends.append(pos[outside & (before == 1) & (after == 0)])  # the closing brace / bracket
        level = 1 if self.first == 91 else 2  # depth of a record array's items
        self.obj_starts.append(pos[outside & (c == _OPEN_OBJ) & (before == level)])
        self.obj_ends.append(pos[outside & (c == _CLOSE_OBJ) & (after == level)] + 1)
        self.arr_opens.append(pos[outside & (c == _OPEN_ARR) & (before == level - 1)])
        self.arr_closes.append(pos[outside & (c == _CLOSE_ARR) & (after == level - 1)])

    def _gaps(self, pos: np.ndarray, at_top: np.ndarray) -> None:
        """Keep the byte spans ``(start, end)`` that follow the entries at file positions
        ``pos`` (``(M,)`` int64) where ``at_top`` (outside strings at depth 1 after the entry);
        a span ending after the block is closed by the next block's first entry."""
        if len(pos) and self.open_gap is not None:
            self.open_gap[-1] = pos[0]
            self.open_gap = None
        ends = np.r_[pos[1:], -1][at_top]
        self.gap_starts.append(pos[at_top] + 1)
        self.gap_ends.append(ends)
        if len(ends) and ends[-1] == -1:
            self.open_gap = ends


def _structural(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(positions (M,) int64, classes (M,) uint8)`` of the quotes, backslashes, braces and
    brackets of the bytes ``b`` (``(n,)`` uint8). ``b & 0xD9 == 0x59`` holds for ``{ [ } ]``
    and only ``Y y _`` and DEL beside them, which the class table then drops."""
    candidate = (b & 0xD9) == 0x59
    candidate |= b == 34  # "
    candidate |= b == 92  # backslash
    pos = np.flatnonzero(candidate)
    c = _CLASS[b[pos]]
    keep = c != 0
    return pos[keep], c[keep]


def _top_marks(f, s: _Scan) -> tuple[np.ndarray, np.ndarray]:
    """``(colons, ends)``: the sorted file positions of the top-level colons and of the ends of
    the top-level values (commas at depth 1, and the closing brace), from the depth-1 spans."""
    cat = lambda parts: np.concatenate(parts) if parts else np.zeros(0, np.int64)  # noqa: E731
    colons, commas = [], []
    for a, e in zip(cat(s.gap_starts).tolist(), cat(s.gap_ends).tolist()):
        if e > a:
            f.seek(a)
            text = f.read(e - a)
            colons += [a + m.start() for m in re.finditer(b":", text)]
            commas += [a + m.start() for m in re.finditer(b",", text)]
    ends = np.sort(np.r_[np.array(commas, np.int64), cat(s.top_ends)])
    return np.array(colons, np.int64), ends


def _key_before(f, colon: int) -> str:
    import orjson

    f.seek(max(0, colon - MAX_KEY_BYTES))
    text = f.read(colon - max(0, colon - MAX_KEY_BYTES))
    m = _KEY_AT_END.search(text)
    if m is None:
        raise ScanFallback("top-level key not found")
    try:
        key = orjson.loads(m.group(0).strip())
    except orjson.JSONDecodeError:
        raise ScanFallback("bad key") from None
    return key


def scan_top_level(source: str) -> TopLevel:
    """The top-level structure of the JSON file ``source`` (module docstring). Readers get it
    through their input (:meth:`lifting.io.readers.common.Input.top_level`), which scans once.

    Raises:
        ScanFallback: a file this fast path leaves to the streaming reader (unbalanced or
            unusual structure, duplicate keys)."""
    s = _Scan()
    with open(source, "rb") as f:
        buf = bytearray(SCAN_BLOCK)
        while n := f.readinto(buf):
            s.block(memoryview(buf)[:n])
        cat = lambda parts: np.concatenate(parts) if parts else np.zeros(0, np.int64)  # noqa: E731
        if s.depth != 0 or s.in_str or s.first not in (91, 123):
            raise ScanFallback("not one balanced JSON list or object")
        starts, ends = cat(s.obj_starts), cat(s.obj_ends)
        opens, closes = cat(s.arr_opens), cat(s.arr_closes)
        if len(starts) != len(ends) or len(opens) != len(closes) or (len(starts) and (ends <= starts).any()):
            raise ScanFallback("unbalanced records")
        if s.first == 91:
            return TopLevel("list", {}, {"": (starts, ends, int(opens[0]), int(closes[0]))})
        colons, stops = _top_marks(f, s)
        out = TopLevel("object")
        for c in colons:
            key = _key_before(f, int(c))
            if key in out.values:
                raise ScanFallback("duplicate top-level key")
            end = int(stops[np.searchsorted(stops, c)])
            out.values[key] = (int(c) + 1, end)
    for key, (a, e) in out.values.items():
        inside = (opens > a) & (opens < e)
        if inside.sum() == 1:
            lo, hi = int(opens[inside][0]), int(closes[inside][0])
            keep = (starts > lo) & (starts < hi)
            out.arrays[key] = (starts[keep], ends[keep], lo, hi)
    return out


class RecordBlocks:
    """The blocks of :func:`record_blocks` as an iterable that knows how many records it holds
    (``n_records``, for a progress bar)."""

    def __init__(self, source: str, array: tuple):
        self.source, self.array, self.n_records = source, array, len(array[0])

    def __iter__(self) -> Iterator[list]:
        return record_blocks(self.source, self.array)


class Block(list):
    """One block of :func:`record_blocks`: the parsed records (a list of dicts) and ``text``,
    the JSON text they were parsed from (``[`` + the records' bytes + ``]``, a bytearray)."""

    text: bytearray


def record_blocks(source: str, array: tuple, size: int | None = None) -> Iterator[Block]:
    """The objects of one top-level array (``TopLevel.arrays`` entry of :func:`scan_top_level`)
    as :class:`Block` lists of parsed dicts, ``size`` (default :data:`RECORD_BLOCK`) at a time,
    in file order. Between two records only one comma and whitespace may lie: ``orjson``
    parses the block's bytes in brackets as one JSON list, and it must hold exactly the
    block's records (anything else between them is an extra item or invalid JSON).

    Raises:
        ScanFallback: invalid JSON inside a record (e.g. a NaN literal), or anything but one
            comma and whitespace between two records; raised before any block of that part
            is returned."""
    import orjson

    starts, ends, lo, hi = array
    size = size or RECORD_BLOCK
    with open(source, "rb") as f:
        if len(starts):
            for x, y in ((lo + 1, int(starts[0])), (int(ends[-1]), hi)):  # nothing but space around the records
                f.seek(x)
                if f.read(y - x).strip(_WS):
                    raise ScanFallback("an item that is not an object")
        elif hi - lo > 1:
            f.seek(lo + 1)
            if f.read(hi - lo - 1).strip(_WS):
                raise ScanFallback("items that are not objects")
        for s in range(0, len(starts), size):
            a, e = int(starts[s]), int(ends[min(s + size, len(starts)) - 1])
            f.seek(a)
            buf = bytearray(e - a + 2)
            buf[0], buf[-1] = 91, 93  # [ ... ]
            if f.readinto(memoryview(buf)[1:-1]) != e - a:
                raise ScanFallback("the file changed")
            try:
                block = Block(orjson.loads(buf))
            except orjson.JSONDecodeError:
                raise ScanFallback("invalid JSON in a record") from None
            if len(block) != min(size, len(starts) - s):
                raise ScanFallback("something between two records")
            block.text = buf
            yield block


def parse_value(source: str, span: tuple[int, int]):
    """The JSON value at byte ``span`` of ``source`` (a ``TopLevel.values`` entry), parsed.

    Raises:
        ScanFallback: it is not valid JSON for ``orjson``."""
    import orjson

    with open(source, "rb") as f:
        f.seek(span[0])
        text = f.read(span[1] - span[0])
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ScanFallback("invalid JSON value") from None
