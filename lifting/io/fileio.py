"""Atomic outputs: single files (:func:`atomic_write`: write to a temporary file in the
destination folder, then ``os.replace`` it onto the final name) and whole output folders
(:func:`staged_output_folder`: write into a staging folder, then rename it into place), so a
crash, a full disk or ``kill -9`` never leaves a half-written or mixed old/new output."""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

__all__ = ["atomic_write", "staged_output_folder", "check_output_folder", "clean_stale_staging"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` to produce the file, fsync it, then rename it to ``path``.

    The temporary file keeps ``path``'s suffix (some writers, e.g. ``np.savez``, add one
    otherwise) and gets the usual permissions (0666 minus the umask). Parent folders are
    created. On any error the temporary file is removed and the error re-raised; an
    ``OSError`` that names no file (a full disk inside a writer) is re-raised naming ``path``.

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
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.filename is None and e.errno is not None:  # e.g. a full disk inside np.savez
            raise OSError(e.errno, f"{e.strerror} (writing {path})") from e
        raise
    return path


# --------------------------------------------------------------------------- output folders

STAGING_TAG = ".posenet3d_staging_"
OLD_TAG = ".posenet3d_old_"
_OURS = re.compile(r"^\.(?P<name>.+)(?P<tag>\.posenet3d_staging_|\.posenet3d_old_)(?P<pid>\d+)$")


def _pid_alive(pid: int) -> bool:
    """True if a process ``pid`` exists on this machine (signal 0 probes without sending)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def clean_stale_staging(parent: str | Path, name: str | None = None) -> list[Path]:
    """Tidy what killed runs left in ``parent``: staging folders
    ``.NAME.posenet3d_staging_PID`` and set-aside old outputs ``.NAME.posenet3d_old_PID``
    whose process ``PID`` is no longer alive (folders of live runs are never touched).

    A set-aside old output whose final folder ``NAME`` is missing (the run was killed between
    the two renames of :func:`staged_output_folder`) is renamed back to ``NAME``; every other
    stale folder is deleted. With ``name`` only that output's folders are considered.

    Returns:
        The paths removed or restored.
    """
    parent = Path(parent)
    done = []
    if not parent.is_dir():
        return done
    for p in sorted(parent.iterdir()):
        m = _OURS.match(p.name)
        if not m or not p.is_dir() or (name is not None and m["name"] != name) or _pid_alive(int(m["pid"])):
            continue
        final = parent / m["name"]
        if m["tag"] == OLD_TAG and not final.exists():
            os.rename(p, final)
        else:
            shutil.rmtree(p, ignore_errors=True)
        done.append(p)
    return done


def check_output_folder(out: str | Path, overwrite: bool = False, marker: str = "summary.json",
                        option: str = "-o/--output") -> Path:
    """Check that ``out`` may receive a run's outputs (call it before any long work).

    Returns:
        ``out`` as an absolute path with symbolic links resolved.

    Raises:
        ValueError: ``out`` is an existing file, a non-empty folder without ``overwrite``, or
            (with ``overwrite``) a non-empty folder without ``marker`` (not an output of ours:
            never deleted). The message names ``option`` and the folder.
    """
    out = Path(os.path.realpath(out))
    if out.exists() and not out.is_dir():
        raise ValueError(f"{option} {out} is an existing file; give a folder name")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ValueError(f"{option} {out} is not empty; pass --overwrite to replace the previous outputs "
                             f"or choose another folder")
        if not (out / marker).is_file():
            raise ValueError(f"{option} {out} is not empty and has no {marker}: not a posenet3d output folder, "
                             f"refusing to replace it")
    return out


@contextmanager
def staged_output_folder(out: str | Path, overwrite: bool = False, marker: str = "summary.json",
                         option: str = "-o/--output"):
    """Write an output folder as one atomic unit.

    Yields a fresh staging folder ``.NAME.posenet3d_staging_PID`` beside ``out``; everything
    (``marker`` included) is written there. On normal exit it is moved into place in one
    ``os.rename``; on any error it is deleted and ``out`` is left exactly as it was.

    Replacing an existing folder (empty, or with ``overwrite`` a previous output, i.e. a
    folder holding ``marker``): the old folder is renamed aside to ``.NAME.posenet3d_old_PID``,
    the staging folder renamed to ``out``, then the old one deleted. A kill between the two
    renames leaves the complete old outputs in the aside folder (and the complete new ones
    in the staging folder); the next run into the same parent restores the old one
    (:func:`clean_stale_staging`). Stale folders of dead runs are cleaned before starting.

    Raises:
        ValueError: see :func:`check_output_folder`.
    """
    out = Path(os.path.realpath(out))
    parent = out.parent
    clean_stale_staging(parent, out.name)  # first: it may restore a set-aside previous output
    check_output_folder(out, overwrite, marker, option)
    parent.mkdir(parents=True, exist_ok=True)
    staging = parent / f".{out.name}{STAGING_TAG}{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    try:
        yield staging
        if out.exists():
            aside = parent / f".{out.name}{OLD_TAG}{os.getpid()}"
            os.rename(out, aside)
            try:
                os.rename(staging, out)
            except BaseException:
                os.rename(aside, out)  # the old outputs back in place
                raise
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.rename(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
