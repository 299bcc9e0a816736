"""OmegaConf configs: ``base`` file -> stage file -> command-line ``key=value`` overrides.

Every key must exist in the base file: an unknown or mistyped key is an error naming it.
No global state: each call returns a fresh resolved config.
"""
from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

__all__ = ["ConfigError", "load_config", "CONFIG_DIR"]

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


class ConfigError(ValueError):
    """A config file is missing, malformed, or uses a key the base config does not define."""


def _read(path: Path) -> DictConfig:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        cfg = OmegaConf.load(path)
    except Exception as e:  # yaml errors come in several types
        raise ConfigError(f"{path}: cannot parse YAML ({e})") from None
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"{path}: top level must be a mapping")
    return cfg


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A path as given, or a bare name (``teacher``) looked up in the repository's
    ``configs/`` folder."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    cand = CONFIG_DIR / (p.name if p.suffix else p.name + ".yaml")
    if not p.parent.parts and cand.is_file():
        return cand
    raise ConfigError(f"config file not found: {name_or_path}")


def load_config(path: str | Path, overrides: list[str] | None = None) -> DictConfig:
    """Load and validate a stage config.

    Args:
        path: stage YAML (may name a ``base:`` YAML relative to itself) or a bare config name.
        overrides: OmegaConf dotlist, e.g. ``["train.steps=100", "model.window=9"]``.

    Returns:
        The merged, resolved config (a new object).

    Raises:
        ConfigError: missing/malformed file, an unknown key (named in the message), or a
            value of the wrong type.
    """
    path = resolve_config_path(path)
    stage = _read(path)
    base_name = stage.pop("base", None)
    if base_name is not None:
        base = _read((path.parent / str(base_name)).resolve())
        base.pop("base", None)
    else:
        base = OmegaConf.create({})
    OmegaConf.set_struct(base, True)
    try:
        cfg = OmegaConf.merge(base, stage)
        for item in overrides or []:
            if "=" not in item:
                raise ConfigError(f"override {item!r} is not of the form key=value")
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist([item]))
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or getattr(e, "key", None)
        raise ConfigError(f"invalid config key or value {key!r} ({path}): {e.msg if hasattr(e, 'msg') else e}") from None
    OmegaConf.set_struct(cfg, True)
    return cfg
