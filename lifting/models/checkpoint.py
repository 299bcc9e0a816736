"""Checkpoints written atomically (temporary file in the same folder + ``os.replace``), so
a crash never leaves a half-written file under the final name, and read with
``torch.load(weights_only=True)`` (tensors and plain containers only: a checkpoint cannot
run code when it is loaded)."""
from __future__ import annotations

from pathlib import Path

import torch

from ..body_model import BodyModelError, body_model_record
from ..io.fileio import atomic_write

__all__ = ["save_checkpoint", "load_checkpoint", "CheckpointError"]


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, or not a posenet3d checkpoint."""


def save_checkpoint(obj: dict, path: str | Path) -> Path:
    """``torch.save`` ``obj`` to ``path`` atomically; creates parent folders. Returns the path.

    Raises:
        OSError: the file could not be written (full disk, file-size limit, permissions); the
            previous ``path`` is left as it was. torch reports a failed write as a RuntimeError
            ("PytorchStreamWriter failed writing file"): it is raised as an OSError naming the path.
    """
    def write(tmp):
        try:
            torch.save(obj, tmp)
        except RuntimeError as e:
            raise OSError(f"could not write the checkpoint {path} ({e}); is the disk full?") from None

    return atomic_write(path, write)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint`.

    The result has ``model`` (a state dict: name -> tensor) and ``model_config`` (a dict);
    its ``body_model`` entry, if any, is normalised by
    :func:`lifting.body_model.body_model_record` (a model identity; a body-model path
    stored by an old checkpoint is dropped, never returned), so everything that copies it
    on (``posenet3d export``, resumed training) writes an identity, not a path.

    Raises:
        CheckpointError: missing file, unreadable content (including pickled objects other
            than tensors and plain containers), no ``model`` / ``model_config`` entry, or a
            malformed one, or a malformed ``body_model`` entry.
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
    if not isinstance(ckpt["model_config"], dict):
        raise CheckpointError(f"{path}: model_config must be a dict, got {type(ckpt['model_config']).__name__}")
    weights = ckpt["model"]
    if not isinstance(weights, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                for k, v in weights.items()):
        raise CheckpointError(f"{path}: 'model' must be a state dict (parameter name -> tensor)")
    if "body_model" in ckpt:
        try:
            ckpt["body_model"] = body_model_record(ckpt["body_model"], str(path))
        except BodyModelError as e:
            raise CheckpointError(str(e)) from None
    return ckpt
