"""Checkpoints written atomically (temporary file in the same folder + ``os.replace``), so
a crash never leaves a half-written file under the final name."""
from __future__ import annotations

from pathlib import Path

import torch

from .io.fileio import atomic_write

__all__ = ["save_checkpoint", "load_checkpoint", "CheckpointError"]


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, or not a posenet3d checkpoint."""


def save_checkpoint(obj: dict, path: str | Path) -> Path:
    """``torch.save`` ``obj`` to ``path`` atomically; creates parent folders. Returns the path."""
    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint`.

    Raises:
        CheckpointError: missing file, unreadable content, or no ``model`` entry.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "model_config" not in ckpt:
        raise CheckpointError(f"{path}: not a posenet3d lifter checkpoint (missing 'model'/'model_config')")
    return ckpt
