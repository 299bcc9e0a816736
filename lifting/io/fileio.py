"""Atomic file writing: write to a temporary file in the destination folder, then
``os.replace`` it onto the final name, so a crash never leaves a half-written output."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

__all__ = ["atomic_write"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` to produce the file, fsync it, then rename it to ``path``.

    The temporary file keeps ``path``'s suffix (some writers, e.g. ``np.savez``, add one
    otherwise) and gets the usual permissions (0666 minus the umask). Parent folders are
    created. On any error the temporary file is removed and the error re-raised.

    Returns:
        ``path`` as a :class:`Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix + ".tmp" if not path.suffix else path.suffix,
                               dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
