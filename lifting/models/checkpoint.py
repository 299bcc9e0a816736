"""Checkpoints: the one module that builds a checkpoint dict (:func:`make_checkpoint`), reads
it (:func:`load_checkpoint`), tells its model kind (:func:`model_kind`, :func:`model_class`),
rebuilds its model (:func:`build_model`) and exports it (:func:`export_checkpoint`).

Layout (a dict of tensors and plain containers)::

    model            state dict: parameter name -> tensor
    model_config     the model's config (``ModelArgs.to_dict()``), with its kind in "arch"
    body_model       identity of the body model (models with ``has_body_model`` only)
    format_version   1
    ...              what the writer adds: kind (the training stage), step, config (the run
                     config), val, train_state, best, teacher_model / teacher_model_config

The model kind is ``model_config["arch"]``, looked up in :data:`MODEL_CLASSES`. Old layout:
teacher checkpoints written before the kind was recorded for every model have no ``arch``;
they read as ``"teacher"``.

Files are written atomically (temporary file in the same folder + ``os.replace``), so a crash
never leaves a half-written file under the final name, and read with
``torch.load(weights_only=True)`` (tensors and plain containers only: a checkpoint cannot run
code when it is loaded).
"""
from __future__ import annotations

import importlib
from pathlib import Path

import torch
from torch import nn

from ..body_model import BodyModelError, body_model_record
from ..io.fileio import atomic_write
from .base import CheckpointError, ModelConfigError
from .student import Student
from .teacher import Lifter

__all__ = ["save_checkpoint", "load_checkpoint", "CheckpointError", "ModelConfigError", "MODEL_CLASSES",
           "model_kind", "model_class", "model_entries", "make_checkpoint", "check_weights", "stored_args",
           "build_model", "export_checkpoint", "inference_checkpoint", "FORMAT_VERSION"]

FORMAT_VERSION = 1

#: the kind a checkpoint without ``model_config["arch"]`` has (the old teacher layout)
_DEFAULT_KIND = Lifter.config_class.ARCH

#: model kind (``model_config["arch"]``, a config's ``ARCH``) -> model class, or
#: ``"module:Class"`` imported on first use: the image regressor lives in :mod:`occlusion`, which
#: imports :mod:`lifting` (a lazy entry keeps the import one-way)
MODEL_CLASSES: dict[str, type[nn.Module] | str] = {
    Lifter.config_class.ARCH: Lifter,
    Student.config_class.ARCH: Student,
    "image_regressor": "occlusion.regressor:ImageRegressor",
}


def model_kind(ck: dict) -> str:
    """The model kind of a checkpoint dict (or of a bare ``model_config`` dict): its
    ``model_config["arch"]``, ``"teacher"`` when absent (old layout).

    Raises:
        CheckpointError: a kind that is not registered (naming the known kinds), or no
            ``model_config`` dict."""
    config = ck.get("model_config", ck) if isinstance(ck, dict) else None
    if not isinstance(config, dict):
        raise CheckpointError(f"not a posenet3d checkpoint: model_config must be a dict, got {type(config).__name__}")
    kind = config.get("arch", _DEFAULT_KIND)
    if kind not in MODEL_CLASSES:
        raise CheckpointError(f"unknown model_config.arch {kind!r} (model kind); the known kinds are "
                              f"{', '.join(repr(k) for k in MODEL_CLASSES)}")
    return kind


def model_class(ck: dict | str) -> type[nn.Module]:
    """The model class of a checkpoint dict, a ``model_config`` dict, or a kind string
    (:data:`MODEL_CLASSES`; a lazy entry is imported now).

    Raises:
        CheckpointError: unknown kind (naming the known kinds)."""
    kind = ck if isinstance(ck, str) else model_kind(ck)
    if kind not in MODEL_CLASSES:
        raise CheckpointError(f"unknown model kind {kind!r}; the known kinds are "
                              f"{', '.join(repr(k) for k in MODEL_CLASSES)}")
    entry = MODEL_CLASSES[kind]
    if isinstance(entry, str):
        module, name = entry.split(":")
        entry = MODEL_CLASSES[kind] = getattr(importlib.import_module(module), name)
    return entry


def stored_args(ck: dict, source: str = "checkpoint", prefix: str = ""):
    """The validated model config (a :class:`lifting.models.base.ModelArgs` subclass instance:
    ``TeacherConfig``, ``StudentConfig``, ...) of a checkpoint dict's ``{prefix}model_config``,
    either layout.

    Raises:
        CheckpointError: unknown kind (naming the known kinds); ModelConfigError: a field of
            the wrong type, out of range or unknown (naming ``source`` and the field)."""
    stored = ck[f"{prefix}model_config"]
    return model_class(stored).config_class.from_dict(stored, source)


def model_entries(model: nn.Module, prefix: str = "") -> dict:
    """The entries that store ``model``: ``{prefix}model`` (state dict), ``{prefix}model_config``
    (``model.config``, kind included) and, for the checkpoint's main model (no ``prefix``) with
    ``has_body_model``, ``body_model`` (its identity, :meth:`lifting.body_model.BodyModel.describe`).
    A prefixed model (a co-trained teacher or keypoint student) shares the checkpoint's body
    model record (:func:`build_model` reads ``body_model`` for it too). Raises nothing."""
    out = {f"{prefix}model": model.state_dict(), f"{prefix}model_config": dict(model.config)}
    if model.has_body_model and not prefix:
        out["body_model"] = model.body_model.describe()
    return out


def make_checkpoint(model: nn.Module, **extra) -> dict:
    """The checkpoint dict of ``model`` (:func:`model_entries` + ``format_version``) with
    ``extra`` entries (``kind`` = training stage, ``step``, ``config``, ``val``, ``train_state``,
    ...; plain containers and tensors only). Write it with :func:`save_checkpoint`.

    Raises:
        ValueError: ``extra`` overrides an entry that stores the model."""
    ck = model_entries(model) | {"format_version": FORMAT_VERSION}
    clash = sorted(set(extra) & (set(ck) - {"format_version"}))
    if clash:
        raise ValueError(f"make_checkpoint: extra entries {clash} would replace the model's")
    return ck | extra


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
    """Load a checkpoint written by :func:`save_checkpoint` (either layout, see the module).

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


def _shape_of(cls: type[nn.Module], config) -> dict[str, tuple]:
    """Names and shapes of ``cls(config)``'s state dict, built on the ``meta`` device (no memory)."""
    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in cls.from_config(config, None).state_dict().items()}


def _other_kind(cls: type[nn.Module], stored: dict, names: set[str]) -> str | None:
    """The kind of another 2D lifter whose parameter names are exactly ``names`` when built from
    the ``stored`` config's common fields (to explain a config/weights mix-up), else None."""
    for kind in list(MODEL_CLASSES):
        other = model_class(kind)
        if other is cls or not other.lifts_2d:
            continue
        fields = {k: v for k, v in stored.items() if k in other.config_class.specs()}
        try:
            if set(_shape_of(other, other.config_class.from_dict(fields))) == names:
                return kind
        except (ValueError, TypeError):
            continue
    return None


def check_weights(cls: type[nn.Module], config, weights: dict, source: str = "checkpoint") -> None:
    """Compare ``weights``' names and shapes with ``cls(config)``'s, built on the ``meta``
    device (shapes only, no memory), and check that they are finite.

    Raises:
        ModelConfigError: names/shapes disagree (named; the weights of another lifter kind
            are said so) or a weight is NaN/inf.
    """
    want = _shape_of(cls, config)
    got = {k: tuple(v.shape) for k, v in weights.items()}
    missing, unexpected = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    if missing or unexpected:
        other = _other_kind(cls, config.to_dict(), set(got))
        if other is not None:
            raise ModelConfigError(f"{source}: model_config describes a {cls.config_class.ARCH!r} model but the "
                                   f"weights are a {other!r} model's: the weights do not match the model config")
    wrong = [f"{k}: stored {got[k]}, config needs {want[k]}" for k in want if k in got and got[k] != want[k]]
    if missing or unexpected or wrong:
        detail = wrong[:3]
        if unexpected:
            detail.insert(0, f"unexpected {unexpected}")
        if missing:
            detail.insert(0, f"missing {missing}")
        raise ModelConfigError(f"{source}: weights do not match the model config {config.to_dict()} "
                               f"({'; '.join(detail)})")
    for k, v in weights.items():
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise ModelConfigError(f"{source}: weight {k} contains NaN/inf")


def build_model(ck: dict, body_model_path: str | Path | None = None, source: str = "checkpoint",
                prefix: str = "") -> nn.Module:
    """Rebuild the model a checkpoint dict stores (``{prefix}model`` / ``{prefix}model_config``),
    validated before a single module is built: the config field by field
    (:meth:`lifting.models.base.ModelArgs.from_dict`), then the weights' names, shapes and
    finiteness on the ``meta`` device. A model with ``has_body_model`` gets its body model from
    the recorded identity only (:func:`lifting.body_model.load_recorded_body_model`: the bundled
    open model or ``body_model_path``; a path stored in the checkpoint is never opened).

    Returns:
        The model with the stored weights, in eval mode, float32 (half-precision exports are
        loaded into float32 parameters).

    Raises:
        CheckpointError: unknown kind (naming the known kinds); ModelConfigError (a
            CheckpointError): a corrupt config or weights that do not fit it.
        lifting.body_model.BodyModelError (a ValueError): the recorded body model is not the
            bundled one and ``body_model_path`` is missing, another model, or unreadable.
        ValueError: ``body_model_path`` given for a model without a body model.
    """
    from ..body_model import load_recorded_body_model

    config = stored_args(ck, source, prefix)
    cls = model_class(config.ARCH)
    weights = ck[f"{prefix}model"]
    check_weights(cls, config, weights, source)
    body_model = None
    if cls.has_body_model:
        body_model = load_recorded_body_model(ck.get("body_model"), body_model_path, config.num_betas, source)
    elif body_model_path is not None:
        raise ValueError(f"{source} is a {config.ARCH!r} model (joints only): a body model ({body_model_path}) "
                         f"applies to SMPL students only")
    model = cls.from_config(config, body_model)
    model.load_state_dict(weights)
    return model.eval()


def _scrub_body_model_path(config: dict) -> dict:
    """The run config with ``body_model.path`` cut to its file name (an exported checkpoint
    names its body model by identity, ``ck["body_model"]``, never by the sender's path; see
    RELIABILITY.md section 1.3). Returns a copy; other keys are unchanged."""
    bm = config.get("body_model")
    if not isinstance(bm, dict) or not bm.get("path"):
        return config
    return {**config, "body_model": {**bm, "path": Path(str(bm["path"])).name}}


def export_checkpoint(ckpt_path: str | Path, dest: str | Path, half: bool = False, which: str = "model") -> Path:
    """Strip a training checkpoint to the inference part (``model``, ``model_config``, ``kind``,
    ``step``, run ``config``, ``val``, ``format_version``, ``body_model``), e.g. for shipping in
    the package; written atomically. ``half`` stores the weights as float16 (half the size;
    :func:`build_model` loads them into a float32 model). ``which="teacher"`` extracts the
    co-trained teacher of a fine-tuning checkpoint (``teacher_model`` / ``teacher_model_config``;
    its ``val`` is the ``teacher_*`` metrics). The stored run config's ``body_model.path`` keeps
    only its file name (the body model is recorded by identity; an export is not resumable).
    Either checkpoint layout is accepted; the layout is kept.

    Returns:
        ``dest``.

    Raises:
        CheckpointError: unreadable checkpoint. ValueError: no teacher in it, or ``which``
            not ``"model"`` / ``"teacher"``. OSError: ``dest`` could not be written.
    """
    return save_checkpoint(inference_checkpoint(load_checkpoint(ckpt_path), half, which, str(ckpt_path)), dest)


def inference_checkpoint(ck: dict, half: bool = False, which: str = "model", source: str = "checkpoint") -> dict:
    """The inference part of a loaded training checkpoint ``ck`` (what :func:`export_checkpoint`
    writes; arguments as there).

    Raises:
        ValueError: no teacher in it (naming ``source``), or ``which`` not ``"model"`` / ``"teacher"``.
    """
    if which == "teacher":
        if "teacher_model" not in ck:
            raise ValueError(f"{source}: no co-trained teacher in this checkpoint (only fine-tuning has one)")
        ck = {k: v for k, v in ck.items() if k not in ("body_model",)} | {
            "model": ck["teacher_model"], "model_config": ck["teacher_model_config"], "kind": "teacher",
            "val": {k[len("teacher_"):]: v for k, v in (ck.get("val") or {}).items() if k.startswith("teacher_")}}
    elif which != "model":
        raise ValueError(f"export: which must be 'model' or 'teacher', got {which!r}")
    slim = {k: ck[k] for k in ("model", "model_config", "kind", "step", "config", "val", "format_version",
                               "body_model") if k in ck}
    if isinstance(slim.get("config"), dict):
        slim["config"] = _scrub_body_model_path(slim["config"])
    if half:
        slim["model"] = {k: v.half() if v.is_floating_point() else v for k, v in slim["model"].items()}
    return slim
