"""NumPy array files (.npy / .npz), loaded safely: every array's declared size is checked
against :data:`~lifting.io.readers.common.MAX_ARRAY_BYTES` before it is read, and pickled
object arrays (VideoPose3D's dictionaries) go through an unpickler that builds only numpy
arrays, dtypes and scalars.  Also the helpers that turn a ``(T, J, C)`` array into rows.

Source: the .npy format of NumPy's ``numpy.lib.format`` documentation (NEP 1).
"""

from __future__ import annotations

import io
import pickle
import zipfile
from typing import Any

import numpy as np

from ..tracks import TrackFormatError
from . import common
from .common import DetectionRows, MAX_ARRAY_BYTES


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler for the object arrays of ``np.save`` (VideoPose3D's dictionaries): only numpy
    arrays, dtypes and scalars may be constructed, so a file cannot run code."""

    _ALLOWED = {(m, n) for m in ("numpy.core.multiarray", "numpy._core.multiarray")
                for n in ("_reconstruct", "scalar")} | {("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        found = super().find_class(module, name)
        return _sized(found) if name == "_reconstruct" else found


def _sized(reconstruct):
    """numpy's ``_reconstruct(subtype, shape, dtype)`` refusing arrays over
    :data:`MAX_ARRAY_BYTES` before allocating them: a pickle of a few bytes can ask for an
    array of any size (the hostile-input audit's 2e9-element npz)."""
    def checked(subtype, shape, dtype):
        n = np.prod(np.asarray(shape, dtype=np.float64)) * np.dtype(dtype).itemsize
        if not n <= MAX_ARRAY_BYTES:
            raise pickle.UnpicklingError(f"a pickled array of shape {tuple(shape)} ({n / 2**20:.0f} MB) is larger "
                                         f"than MAX_ARRAY_BYTES = {MAX_ARRAY_BYTES >> 20} MB")
        return reconstruct(subtype, shape, dtype)
    return checked



def _read_npy(f: Any, source: str, key: str) -> Any:
    """One .npy stream, its header checked against :data:`MAX_ARRAY_BYTES` before reading."""
    what = f"{source}: array {key or '(npy)'}"
    try:
        version = np.lib.format.read_magic(f)
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = reader(f)
    except Exception as e:  # ValueError on a malformed header, EOFError, ...
        raise TrackFormatError(f"{what}: not a readable .npy header ({type(e).__name__}: {e})") from None
    if dtype.hasobject:
        blob = f.read(MAX_ARRAY_BYTES + 1)
        if len(blob) > MAX_ARRAY_BYTES:
            raise TrackFormatError(f"{what}: pickled object data larger than MAX_ARRAY_BYTES = {MAX_ARRAY_BYTES}")
        try:
            return _ArrayUnpickler(io.BytesIO(blob), encoding="latin1").load()
        except Exception as e:
            raise TrackFormatError(f"{what}: holds Python objects that are not plain arrays / dictionaries "
                                   f"({type(e).__name__}: {e})") from None
    nbytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if nbytes > MAX_ARRAY_BYTES:
        raise TrackFormatError(f"{what}: declares shape {shape} {dtype} ({nbytes / 2**20:.0f} MB), larger than "
                               f"MAX_ARRAY_BYTES = {MAX_ARRAY_BYTES >> 20} MB")
    data = f.read(nbytes)
    if len(data) != nbytes:
        raise TrackFormatError(f"{what}: truncated ({len(data)} of {nbytes} bytes for shape {shape})")
    return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C")



def load_arrays(source: str, head: bytes) -> dict[str, Any]:
    """Arrays of a .npy (key ``""``) or .npz file, each size-checked before it is read."""
    try:
        if head.startswith(b"PK"):
            out = {}
            with zipfile.ZipFile(source) as z:
                for info in z.infolist():
                    key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                    with z.open(info) as f:
                        out[key] = _read_npy(f, source, key)
            return out
        with open(source, "rb") as f:
            return {"": _read_npy(f, source, "")}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, NotImplementedError) as e:
        raise TrackFormatError(f"{source}: not a readable .npy/.npz array file ({type(e).__name__}: {e})") from None



def numeric_array(a: Any, source: str, key: str) -> np.ndarray:
    """``a`` as float64, when it is a numeric array whose float64 copy fits :data:`MAX_ARRAY_BYTES`
    x 8 (the raw limit at 1 byte per value). Raises TrackFormatError otherwise."""
    if not isinstance(a, np.ndarray) or not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise TrackFormatError(f"{source}: array {key or '(npy)'} holds {getattr(a, 'dtype', type(a).__name__)}; "
                               "expected numbers")
    if a.size * 8 > 8 * MAX_ARRAY_BYTES:
        raise TrackFormatError(f"{source}: array {key or '(npy)'} has {a.size} values, more than MAX_ARRAY_BYTES = "
                               f"{MAX_ARRAY_BYTES >> 20} MB allows")
    try:
        return a.astype(np.float64)
    except MemoryError:
        raise TrackFormatError(f"{source}: array {key or '(npy)'} of shape {a.shape} does not fit in memory") from None



def main_array(arrays: dict, source: str) -> tuple[str, np.ndarray]:
    """The keypoint array of a .npy/.npz and its key: ``keypoints_2d``, ``positions_2d`` or
    ``landmarks`` when present, else the only 3-D array; float64 ``(T, J, C)``, T >= 1.

    Raises:
        TrackFormatError: pickled objects only, no or several candidate arrays, a shape that
            is not ``(T, J, C)``, or more than :data:`MAX_PERSON_FRAMES` frames.
    """
    keys = [k for k in ("keypoints_2d", "positions_2d", "landmarks") if k in arrays]
    three = [k for k, a in arrays.items() if isinstance(a, np.ndarray) and a.ndim == 3]
    objects = [k for k, a in arrays.items() if not isinstance(a, np.ndarray) or a.dtype == object]
    if objects and not three and not keys:
        raise TrackFormatError(
            f"{source}: holds Python objects (e.g. the VideoPose3D per-subject dictionaries of data_2d_h36m_*.npz) "
            "in " + ", ".join(repr(k or '(npy)') for k in objects) + "; expected numeric arrays (T, 17, 2|3) or a "
            "VideoPose3D data_2d_custom_*.npz (positions_2d[video]['custom'])")
    if keys:
        key = keys[0]
    elif len(three) == 1:
        key = three[0]
    else:
        raise TrackFormatError(f"{source}: npz keys {sorted(arrays)}; expected 'keypoints_2d', 'positions_2d', "
                               "'landmarks' or a single (T, J, C) array")
    a = numeric_array(arrays[key], source, key)
    if a.ndim != 3 or a.shape[0] == 0:
        raise TrackFormatError(f"{source}: array {key or '(npy)'} has shape {a.shape}; expected (T, 17, 2|3) "
                               "Human3.6M or (T, 33, 2..5) MediaPipe with T >= 1")
    if a.shape[0] > common.MAX_PERSON_FRAMES:
        raise TrackFormatError(f"{source}: {a.shape[0]} frames, more than MAX_PERSON_FRAMES = "
                               f"{common.MAX_PERSON_FRAMES}")
    return key, a



def add_array_frames(dets: DetectionRows, a: np.ndarray, tid: int | None) -> None:
    """``(T, J, 2|3|4)`` pixel arrays -> one row per frame with any finite joint (confidence 1
    when the array has only x, y; a 4th channel is ignored)."""
    kp = np.ones(a.shape[:2] + (3,))
    c = min(a.shape[2], 3)
    kp[..., :c] = a[..., :c]
    for t in np.flatnonzero(np.isfinite(kp[:, :, :2]).any(axis=(1, 2))):
        dets.add(int(t), tid, kp[t], None, None, (int(t), 0 if tid is None else tid))
    if not len(dets):
        raise TrackFormatError(f"{dets.source}: every frame is NaN; no keypoints")

