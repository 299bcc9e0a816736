"""Loading trained lifters for ``lift``: the bundled checkpoints by name, and any teacher or
SMPL-student checkpoint, validated before a single module is built.

``load_lifter`` turns a checkpoint file into a 2D-to-3D lifter (inference, evaluation and
training all use it; it does not depend on the inference pipeline in :mod:`lifting.lift`).
It identifies and builds the model through :mod:`lifting.models.checkpoint` (the one place
that reads a checkpoint's kind). What it guarantees for an untrusted ``.pt`` file (see
RELIABILITY.md):

* no code runs while reading it (``torch.load(weights_only=True)``,
  :func:`lifting.models.checkpoint.load_checkpoint`);
* the stored ``model_config`` is checked field by field (type, range, odd windows, no
  unknown fields; the model's config dataclass, :class:`lifting.models.base.ModelArgs`) and
  its architecture against the weights' names and shapes on the ``meta`` device (no memory
  is allocated for a config that claims a huge model), so a corrupt config is a clear
  :class:`ModelConfigError`, not a traceback or a ``MemoryError``;
* a student's body model is resolved from its identity record only: the bundled open model
  or the user's explicit ``body_model_path`` (:func:`lifting.body_model.load_recorded_body_model`);
  a path stored in the checkpoint is never opened.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from torch import nn

from .base import CheckpointError, ModelConfigError
from .checkpoint import build_model, load_checkpoint, model_class

__all__ = [
    "BUNDLED", "ModelConfigError", "bundled_checkpoint", "default_checkpoint", "bundled_student",
    "bundled_single_frame", "bundled_teacher_for_window", "resolve_checkpoint", "check_model_config", "load_lifter",
]

#: short names accepted wherever a checkpoint path is: the bundled models. ``teacher`` (the
#: default) is temporal; ``teacher_single`` is the single-frame teacher that the default lift
#: uses for isolated frames and still photos (optional: a build without it lifts everything
#: with ``teacher``); ``student`` is the SMPL student.
BUNDLED = {"teacher": "teacher.pt", "teacher_single": "teacher_single.pt", "student": "student.pt"}

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


def check_model_config(config: dict, source: str = "checkpoint") -> type[nn.Module]:
    """Validate a stored ``model_config`` as a 2D-to-3D lifter's and return the class it builds.

    Checks: ``arch`` names a registered kind (:data:`lifting.models.checkpoint.MODEL_CLASSES`;
    none = teacher) whose model lifts 2D keypoints, and every field is one of its config's
    (:class:`lifting.models.teacher.TeacherConfig`, :class:`lifting.models.student.StudentConfig`)
    with the right type and range (windows odd and <= ``MAX_WINDOW``, width <= ``MAX_WIDTH``,
    blocks <= ``MAX_BLOCKS``, the canonical 16 joints, ``root_index`` a joint of them). Missing
    fields take the config's defaults.

    Raises:
        ModelConfigError: naming ``source`` and the offending field; an image-model config
            says which command loads it.
    """
    try:
        cls = model_class(config)
    except CheckpointError as e:  # an unknown kind: named with the known ones
        raise ModelConfigError(f"{source}: {e}") from None
    if not cls.lifts_2d:
        raise ModelConfigError(f"{source}: an {cls.config_class.ARCH!r} checkpoint is not a 2D-to-3D lifter; "
                               f"load it with {cls.load_hint}")
    cls.config_class.from_dict(config, source)
    return cls


def load_lifter(path: str | Path | None = None, body_model_path: str | Path | None = None):
    """Load a teacher-lifter or SMPL-student checkpoint (default: the bundled teacher).

    Args:
        path: checkpoint file, or a bundled name (:data:`BUNDLED`: ``"teacher"``,
            ``"teacher_single"``, ``"student"``).
        body_model_path: students only: the SMPL file/folder the student was trained with,
            when it is not the bundled open model. It must be the recorded model (same
            :func:`lifting.body_model.model_sha256`; old checkpoints: same vertex count).

    Returns:
        ``(model in eval mode, checkpoint dict)``; the model is a
        :class:`lifting.models.teacher.Lifter` (input ``(B, T, 16, 2)`` normalised 2D ->
        ``(B, T, 16, 3)``) or a :class:`lifting.models.student.Student`, built by
        :func:`lifting.models.checkpoint.build_model`.

    Raises:
        lifting.models.checkpoint.CheckpointError (a ValueError): missing/unreadable file, unknown
            bundled name, not a posenet3d checkpoint; :class:`ModelConfigError` for a
            corrupt ``model_config`` or weights that do not fit it.
        lifting.body_model.BodyModelError (a ValueError): the student's body model is not
            the bundled one and ``body_model_path`` is not given, is another model, or is
            unreadable.
        ValueError: ``body_model_path`` given for a teacher.
    """
    file = resolve_checkpoint(path)
    ckpt = load_checkpoint(file)
    check_model_config(ckpt["model_config"], str(file))
    return build_model(ckpt, body_model_path, str(file)), ckpt
