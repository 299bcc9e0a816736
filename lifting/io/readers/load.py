"""Check an input path and load it once (:func:`load`): a folder, a CSV table, a JSON document
(or, over :data:`lifting.io.records.STREAM_BYTES`, a note that it is to be streamed) or the
arrays of a .npy/.npz.  FIFOs, devices and sockets are refused (:func:`lifting.io.records.check_input_file`).
"""

from __future__ import annotations

import csv
import io
import os

from .. import records
from ..records import check_input_file, load_json
from ..tracks import TrackFormatError
from .arrays import load_arrays
from .common import Input, not_a_known_format


def load(source: str) -> Input:
    """Check ``source`` and load it once (see :class:`Input`)."""
    size = check_input_file(source, allow_dir=True)
    if os.path.isdir(source):
        return Input(source, "dir")
    with open(source, "rb") as f:
        head = f.read(8)
    if head.startswith(b"PK") or head.startswith(b"\x93NUMPY"):
        return Input(source, "arrays", load_arrays(source, head))
    if source.lower().endswith((".npy", ".npz")):
        raise TrackFormatError(f"{source}: not a readable .npy/.npz array file (no npy/zip signature)")
    if size > records.STREAM_BYTES:  # read through the module: tests lower it
        return Input(source, "stream")  # parsed incrementally by the reader; sampled only to detect
    table = _csv_table(source)
    if table is not None:
        return Input(source, "csv", table)
    try:
        return Input(source, "json", load_json(source))
    except TrackFormatError as e:
        if "invalid JSON" in str(e) and not _starts_like_json(source):
            raise not_a_known_format(source, "neither JSON, nor a table, nor a .npy/.npz array file") from None
        raise



def _starts_like_json(source: str) -> bool:
    with open(source, "rb") as f:
        return f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"[")



def _csv_table(source: str) -> list[list[str]] | None:
    """The rows of a text file that is a comma/semicolon/tab separated table (a header and at
    least one row, 2+ columns, not starting like JSON), parsed by the standard ``csv`` module;
    None for anything else (JSON is then tried)."""
    try:
        with open(source, encoding="utf-8-sig", newline="") as f:
            text = f.read(records.STREAM_BYTES + 1)
    except (UnicodeDecodeError, OSError):
        return None
    if not text.strip() or text.lstrip()[:1] in ("{", "["):
        return None
    first = text.lstrip().split("\n", 1)[0]
    delim = max(",;\t", key=first.count)
    if not first.count(delim):
        return None
    try:
        rows = [r for r in csv.reader(io.StringIO(text), delimiter=delim) if any(c.strip() for c in r)]
    except csv.Error:
        return None
    return rows if len(rows) >= 2 and len(rows[0]) >= 2 else None

