"""Loading trained lifters: the bundled checkpoints by name, and any teacher or SMPL-student
checkpoint, validated before a single module is built.

``load_lifter`` is the one way to turn a checkpoint into a model (inference, evaluation and
training all use it; it does not depend on the inference pipeline in :mod:`lifting.lift`).
What it guarantees for an untrusted ``.pt`` file (see RELIABILITY.md):

* no code runs while reading it (``torch.load(weights_only=True)``,
  :func:`lifting.models.checkpoint.load_checkpoint`);
* the stored ``model_config`` is checked field by field (type, range, odd windows, no
  unknown fields; :class:`lifting.models.teacher.ConfigField`) and its architecture against the
  weights' names and shapes on the ``meta`` device (no memory is allocated for a config
  that claims a huge model), so a corrupt config is a clear :class:`ModelConfigError`,
  not a traceback or a ``MemoryError``;
* a student's body model is resolved from its identity record only: the bundled open model
  or the user's explicit ``body_model_path`` (:func:`lifting.body_model.load_recorded_body_model`);
  a path stored in the checkpoint is never opened.
"""
from __future__ import annotations

import math
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from .checkpoint import CheckpointError, load_checkpoint
from ..skeletons import CANON16
from .student import Student
from .teacher import ConfigField, Lifter

__all__ = [
    "BUNDLED", "ARCHS", "ModelConfigError", "bundled_checkpoint", "default_checkpoint", "bundled_student",
    "bundled_single_frame", "bundled_teacher_for_window", "resolve_checkpoint", "check_model_config", "load_lifter",
    "is_student_config",
]

#: short names accepted wherever a checkpoint path is: the bundled models. ``teacher`` (the
#: default) is temporal; ``teacher_single`` is the single-frame teacher that the default lift
#: uses for isolated frames and still photos (optional: a build without it lifts everything
#: with ``teacher``); ``student`` is the SMPL student.
BUNDLED = {"teacher": "teacher.pt", "teacher_single": "teacher_single.pt", "student": "student.pt"}

#: ``model_config["arch"]`` -> model class; a config without ``arch`` is a teacher :class:`Lifter`
ARCHS: dict[str, type[nn.Module]] = {"smpl_student": Student}

#: archs of other posenet3d checkpoints and the command that loads them
_OTHER_ARCHS = {"image_regressor": "an image-branch checkpoint: use `posenet3d mesh-image --checkpoint ...`"}


class ModelConfigError(CheckpointError):
    """A checkpoint's ``model_config`` is malformed, out of range, or does not describe its
    weights (a :class:`lifting.models.checkpoint.CheckpointError`, hence a ``ValueError``)."""


def _assets() -> Path:
    return Path(str(resources.files("lifting") / "assets"))


def bundled_checkpoint(name: str) -> Path:
    """Path of a bundled checkpoint by its short name (:data:`BUNDLED`).

    Raises:
        CheckpointError: unknown name (lists the bundled ones), or this build lacks the file.
    """
    if name not in BUNDLED:
        raise CheckpointError(f"unknown bundled checkpoint {name!r}; the bundled ones are {', '.join(BUNDLED)}")
    p = _assets() / BUNDLED[name]
    if not p.is_file():
        raise CheckpointError(f"the bundled {name} checkpoint is missing from this installation: {p}")
    return p


def default_checkpoint() -> Path:
    """Path of the teacher checkpoint shipped in the package (``lifting/assets/teacher.pt``)."""
    return _assets() / BUNDLED["teacher"]


def bundled_student() -> Path | None:
    """Path of the SMPL student shipped in the package, or ``None`` if this build has none."""
    p = _assets() / BUNDLED["student"]
    return p if p.is_file() else None


def bundled_teacher_for_window(window: int) -> Path:
    """The bundled teacher a model of ``window`` frames pairs with (e.g. the default teacher of
    a student's distillation): the single-frame ``teacher_single`` for ``window == 1`` when this
    build has it, else the default bundled ``teacher``."""
    single = bundled_single_frame()
    return single if int(window) == 1 and single is not None else default_checkpoint()


def bundled_single_frame() -> Path | None:
    """Path of the bundled single-frame teacher (``teacher_single``), or ``None`` if this build
    has none."""
    p = _assets() / BUNDLED["teacher_single"]
    return p if p.is_file() else None


def resolve_checkpoint(path: str | Path | None) -> Path:
    """A checkpoint argument -> a file: ``None`` (the bundled teacher), a bundled name
    (:data:`BUNDLED`: always the bundled file, even when the current folder holds a file of
    that name: write ``./teacher`` for that one), or an existing file.

    Raises:
        CheckpointError: neither a bundled name nor a file (says so and lists the names).
    """
    if path is None:
        return default_checkpoint()
    if isinstance(path, str) and path in BUNDLED:
        return bundled_checkpoint(path)
    p = Path(path).expanduser()
    if p.is_file():
        return p
    raise CheckpointError(f"checkpoint not found: {path} is not a file, and not one of the bundled checkpoints "
                          f"({', '.join(repr(n) for n in BUNDLED)})")


def _check_field(name: str, value, spec: ConfigField, source: str) -> None:
    numbers = {int: (int,), float: (int, float)}.get(spec.kind)
    if numbers is None:
        kind_ok = isinstance(value, spec.kind)
    else:  # a bool is not a number here
        kind_ok = isinstance(value, numbers) and not isinstance(value, bool)
    if not kind_ok:
        raise ModelConfigError(f"{source}: model_config.{name} must be {spec.kind.__name__}, got {value!r}")
    if numbers is None:
        return
    if (isinstance(value, float) and not math.isfinite(value)) or (spec.lo is not None and value < spec.lo) or (
            spec.hi is not None and value > spec.hi):
        lo, hi = ("-inf" if spec.lo is None else f"{spec.lo:g}"), ("inf" if spec.hi is None else f"{spec.hi:g}")
        raise ModelConfigError(f"{source}: model_config.{name} = {value!r} is outside [{lo}, {hi}]")
    if spec.odd and value % 2 != 1:
        raise ModelConfigError(f"{source}: model_config.{name} = {value!r} must be odd (a centred window)")


def is_student_config(model_config: dict) -> bool:
    """Whether a checkpoint's ``model_config`` builds an SMPL student (:data:`ARCHS`): the one
    place a model kind is read from a checkpoint."""
    return ARCHS.get(dict(model_config).get("arch")) is Student


def check_model_config(config: dict, source: str = "checkpoint") -> type[nn.Module]:
    """Validate a stored ``model_config`` and return the class it builds.

    Checks: ``arch`` names a lifter class (:data:`ARCHS`; none = teacher :class:`Lifter`),
    every field is one of that class's ``config_fields`` with the right type and range
    (windows odd and <= :data:`lifting.models.teacher.MAX_WINDOW`, width <= ``MAX_WIDTH``, blocks
    <= ``MAX_BLOCKS``), ``num_joints`` is the canonical set's (16) and ``root_index`` a
    joint of it. Missing fields take the constructor's defaults.

    Raises:
        ModelConfigError: naming ``source`` and the offending field.
    """
    arch = config.get("arch")
    if arch in _OTHER_ARCHS:
        raise ModelConfigError(f"{source}: {_OTHER_ARCHS[arch]}, not a 2D-to-3D lifter")
    if arch is not None and arch not in ARCHS:
        raise ModelConfigError(f"{source}: unknown model_config.arch {arch!r}; lifters are teacher (no arch) or "
                               f"{', '.join(repr(a) for a in ARCHS)}")
    cls = ARCHS.get(arch, Lifter)
    unknown = sorted(set(config) - set(cls.config_fields))
    if unknown:
        raise ModelConfigError(f"{source}: model_config field(s) {unknown} are not fields of a {cls.__name__} "
                               f"(arch {arch!r}); expected some of {sorted(cls.config_fields)}")
    for name, value in config.items():
        _check_field(name, value, cls.config_fields[name], source)
    if config.get("num_joints") != CANON16.num_joints:
        raise ModelConfigError(f"{source}: model has {config.get('num_joints')} joints, expected "
                               f"{CANON16.num_joints} (canon16)")
    if not 0 <= config.get("root_index", 0) < CANON16.num_joints:
        raise ModelConfigError(f"{source}: model_config.root_index {config['root_index']} is not a joint of canon16")
    return cls


def _build(cls: type[nn.Module], config: dict, body_model) -> nn.Module:
    return Student.from_config(config, body_model) if cls is Student else Lifter.from_config(config)


def _check_weights(cls: type[nn.Module], config: dict, weights: dict, source: str) -> None:
    """Compare the weights' names and shapes with the config's model, built on the ``meta``
    device (shapes only, no memory), and check that they are finite.

    Raises:
        ModelConfigError: arch/keys/shapes disagree (named) or a weight is NaN/inf.
    """
    with torch.device("meta"):
        shell = _build(cls, config, None)
    want = {k: tuple(v.shape) for k, v in shell.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in weights.items()}
    missing, unexpected = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    if "marker_offsets" in missing:
        raise ModelConfigError(f"{source}: model_config says arch 'smpl_student' but the weights are a teacher "
                               f"lifter's (no marker_offsets): the weights do not match the model config")
    if "marker_offsets" in unexpected:
        raise ModelConfigError(f"{source}: model_config describes a teacher lifter but the weights are an SMPL "
                               f"student's (they have marker_offsets; arch 'smpl_student' is missing): the weights "
                               f"do not match the model config")
    wrong = [f"{k}: stored {got[k]}, config needs {want[k]}" for k in want if k in got and got[k] != want[k]]
    if missing or unexpected or wrong:
        detail = wrong[:3]
        if unexpected:
            detail.insert(0, f"unexpected {unexpected}")
        if missing:
            detail.insert(0, f"missing {missing}")
        detail = "; ".join(detail)
        raise ModelConfigError(f"{source}: weights do not match the model config {config} ({detail})")
    for k, v in weights.items():
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise ModelConfigError(f"{source}: weight {k} contains NaN/inf")


def load_lifter(path: str | Path | None = None, body_model_path: str | Path | None = None):
    """Load a teacher-lifter or SMPL-student checkpoint (default: the bundled teacher).

    Args:
        path: checkpoint file, or a bundled name (:data:`BUNDLED`: ``"teacher"``,
            ``"teacher_single"``, ``"student"``).
        body_model_path: students only: the SMPL file/folder the student was trained with,
            when it is not the bundled open model. It must be the recorded model (same
            :func:`lifting.body_model.model_sha256`; old checkpoints: same vertex count).

    Returns:
        ``(model in eval mode, checkpoint dict)``; the model is a :class:`Lifter` (input
        ``(B, T, 16, 2)`` normalised 2D -> ``(B, T, 16, 3)``) or a
        :class:`lifting.models.student.Student`.

    Raises:
        lifting.models.checkpoint.CheckpointError (a ValueError): missing/unreadable file, unknown
            bundled name, not a posenet3d checkpoint; :class:`ModelConfigError` for a
            corrupt ``model_config`` or weights that do not fit it.
        lifting.body_model.BodyModelError (a ValueError): the student's body model is not
            the bundled one and ``body_model_path`` is not given, is another model, or is
            unreadable.
        ValueError: ``body_model_path`` given for a teacher.
    """
    from ..body_model import load_recorded_body_model

    file = resolve_checkpoint(path)
    source = str(file)
    ckpt = load_checkpoint(file)
    cfg = dict(ckpt["model_config"])
    cls = check_model_config(cfg, source)
    _check_weights(cls, cfg, ckpt["model"], source)
    body_model = None
    if cls is Student:
        body_model = load_recorded_body_model(ckpt.get("body_model"), body_model_path,
                                              int(cfg.get("num_betas", 10)), source)
    elif body_model_path is not None:
        raise ValueError(f"{source} is a teacher lifter (joints only): a body model ({body_model_path}) applies "
                         f"to SMPL students only")
    model = _build(cls, cfg, body_model)
    model.load_state_dict(ckpt["model"])
    return model.eval(), ckpt
