"""What every checkpointed model shares: its config dataclass (:class:`ModelArgs`: fields with
types and ranges, validated before a module is built), the errors a checkpoint raises, and the
small interface the code uses instead of asking what a model is (:class:`ModelInterface`).

A model's config is a frozen dataclass next to the model (``TeacherConfig`` in
:mod:`lifting.models.teacher`, ``StudentConfig`` in :mod:`lifting.models.student`,
``ImageRegressorConfig`` in :mod:`occlusion.regressor`); the model is built from it
(``Model(config)``), and :mod:`lifting.models.checkpoint` stores ``config.to_dict()`` as a
checkpoint's ``model_config`` and rebuilds the model from it.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

__all__ = ["CheckpointError", "ModelConfigError", "ConfigField", "arg", "ModelArgs", "ModelInterface"]


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, or not a posenet3d checkpoint."""


class ModelConfigError(CheckpointError):
    """A checkpoint's ``model_config`` is malformed, out of range, or does not describe its
    weights (a :class:`CheckpointError`, hence a ``ValueError``)."""


@dataclass(frozen=True)
class ConfigField:
    """Type and range of one field of a model config (a :class:`ModelArgs` subclass).

    Attributes:
        kind: ``int``, ``float``, ``bool``, ``str`` or ``list`` (``bool`` is not accepted as
            ``int``; an ``int`` is accepted as ``float``).
        lo, hi: inclusive range for numbers (``None``: unbounded).
        odd: the value must be odd (centred temporal windows).
        choices: the allowed values (``None``: any); for a list, the allowed entries.
    """

    kind: type
    lo: float | None = None
    hi: float | None = None
    odd: bool = False
    choices: tuple | None = None

    def problem(self, value) -> str | None:
        """What is wrong with ``value`` (``"must be int, got '3'"``, ``"= 0 is outside [1, 9]"``),
        or ``None`` when it is fine. Pure; raises nothing."""
        numbers = {int: (int,), float: (int, float)}.get(self.kind)
        ok = isinstance(value, numbers or self.kind) and not (numbers and isinstance(value, bool))
        if not ok:
            return f"must be {self.kind.__name__}, got {value!r}"
        if self.choices is not None:
            bad = [v for v in (value if isinstance(value, list) else [value]) if v not in self.choices]
            if bad:
                return f"= {value!r} must be one of {', '.join(map(repr, self.choices))}"
        if numbers is None:
            return None
        if (isinstance(value, float) and not math.isfinite(value)) or (self.lo is not None and value < self.lo) or (
                self.hi is not None and value > self.hi):
            lo, hi = ("-inf" if self.lo is None else f"{self.lo:g}"), ("inf" if self.hi is None else f"{self.hi:g}")
            return f"= {value!r} is outside [{lo}, {hi}]"
        if self.odd and value % 2 != 1:
            return f"= {value!r} must be odd (a centred window)"
        return None


def arg(kind: type, default: Any, lo: float | None = None, hi: float | None = None, odd: bool = False,
        choices: tuple | None = None):
    """A :class:`ModelArgs` field: its default and its :class:`ConfigField` (type, range).
    A list default is copied per instance. Raises nothing."""
    spec = ConfigField(kind, lo, hi, odd, choices)
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"spec": spec})
    return dataclasses.field(default=default, metadata={"spec": spec})


@dataclass(frozen=True)
class ModelArgs:
    """Base of the model config dataclasses. Subclasses set ``ARCH`` (the model kind recorded
    in a checkpoint's ``model_config["arch"]``) and declare their fields with :func:`arg`.

    ``to_dict()`` is what a checkpoint stores; ``from_dict(stored)`` validates a stored dict
    (``arch`` may be present or absent) before any module is built; missing fields take the
    defaults (checkpoints older than a field)."""

    ARCH: ClassVar[str] = ""

    @classmethod
    def specs(cls) -> dict[str, ConfigField]:
        """Field name -> :class:`ConfigField`, in declaration order."""
        return {f.name: f.metadata["spec"] for f in dataclasses.fields(cls)}

    def to_dict(self) -> dict:
        """``{"arch": ARCH, field: value, ...}`` (plain Python values, lists copied): the
        ``model_config`` a checkpoint stores."""
        return {"arch": self.ARCH} | {k: (list(v) if isinstance(v, (list, tuple)) else v)
                                      for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, stored: dict, source: str = "checkpoint"):
        """Validate a stored ``model_config`` and build the config.

        Raises:
            ModelConfigError: a field that is not one of this config's (listing them), of the
                wrong type, out of range, or an ``arch`` of another kind; naming ``source``.
        """
        stored = dict(stored)
        arch = stored.pop("arch", cls.ARCH)
        if arch != cls.ARCH:
            raise ModelConfigError(f"{source}: model_config.arch {arch!r} is not a {cls.__name__} ({cls.ARCH!r})")
        specs = cls.specs()
        unknown = sorted(set(stored) - set(specs))
        if unknown:
            raise ModelConfigError(f"{source}: model_config field(s) {unknown} are not fields of the {cls.ARCH!r} "
                                   f"model config ({cls.__name__}); expected some of {sorted(specs)}")
        for name, value in stored.items():
            msg = specs[name].problem(value)
            if msg:
                raise ModelConfigError(f"{source}: model_config.{name} {msg}")
        config = cls(**stored)
        config.check(source)
        return config

    def check(self, source: str = "checkpoint") -> None:
        """Checks across fields, after the per-field ones (subclasses extend it).

        Raises:
            ModelConfigError: naming ``source`` and the field."""


class ModelInterface:
    """The class attributes and output helpers every checkpointed model has, so that no code
    asks what a model is (``isinstance``, ``hasattr``, the type of its output).

    Attributes:
        config_class: the model's :class:`ModelArgs` subclass (its ``ARCH`` is the kind).
        has_body_model: the model carries a :class:`lifting.body_model.BodyModel` (built
            with one; its identity is recorded in checkpoints as ``body_model``).
        lifts_2d: the model maps normalised 2D keypoints ``(B, T, J, 2)`` to 3D (a lifter
            that ``lift`` can run), as opposed to an image model.
        outputs_smpl: the forward returns SMPL parameters
            (:class:`lifting.models.student.StudentOutput`) rather than a joints tensor.
    """

    config_class: ClassVar[type[ModelArgs]]
    has_body_model: ClassVar[bool] = False
    lifts_2d: ClassVar[bool] = True
    outputs_smpl: ClassVar[bool] = False

    @property
    def config(self) -> dict:
        """The stored form of the model's config (``self.args.to_dict()``)."""
        return self.args.to_dict()

    @staticmethod
    def output_joints(out) -> torch.Tensor:
        """Root-relative 3D joints ``(B, T, J, 3)`` of a forward output (a tensor for
        joint lifters; overridden by SMPL models)."""
        return out
