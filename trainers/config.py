"""Typed training configs: ``base`` file -> stage file -> command-line ``key=value`` overrides,
merged onto an OmegaConf structured schema (the dataclasses below) and validated once.

* The schema fixes every key and its type; ``configs/base.yaml`` gives every value (the
  schema holds no defaults of its own, so there is one place for them). The ``model``
  section's fields, types and ranges come from the teacher's config dataclass
  (:class:`lifting.models.teacher.TeacherConfig`), and ``student.learn_marker_offsets`` /
  ``body_model.num_betas`` from :class:`lifting.models.student.StudentConfig`, the image
  network's keys from :class:`occlusion.regressor.ImageRegressorConfig`, so a model
  hyperparameter is declared once; :func:`trainers.stages.model_args` builds the model configs. An unknown key, a
  value of the wrong type or a key without a value is a :class:`ConfigError` naming the key
  (with a "did you mean" for near misses).
* :func:`load_config` then checks ranges (positive counts, probabilities in [0, 1], finite
  floats, an odd window, ``low <= high`` pairs, choices), each error naming the key.
* :func:`check_stage` checks what depends on the stage being trained: files that must exist
  and checkpoints of the right kind (a student given where a teacher is expected, and the
  reverse). :func:`trainers.loop.train` calls it before any work.

No global state: each call returns a fresh config.
"""
from __future__ import annotations


import difflib
import math
import re
from dataclasses import asdict, dataclass, field, fields, is_dataclass, make_dataclass
from pathlib import Path
from typing import Any, Callable, List, Optional

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lifting.models.student import StudentConfig as _StudentArgs
from lifting.models.teacher import TeacherConfig
from occlusion.regressor import ImageRegressorConfig

__all__ = ["ConfigError", "load_config", "check_stage", "resolve_config_path", "section_type", "CONFIG_DIR",
           "TrainConfig", "STAGES", "STAGE_NEEDS", "StageNeeds", "config_dict", "config_value"]

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"

#: the stages ``posenet3d train`` knows
@dataclass(frozen=True)
class StageNeeds:
    """What a training stage needs from its config, checked by :func:`check_stage` (one row of
    :data:`STAGE_NEEDS` per stage instead of branches on its name).

    Attributes:
        body_model: the SMPL body model (``body_model.path`` must exist when set).
        prior_3d: may use the "unpaired 3D prior" pose bank (``prior_3d``).
        images: trains on COCO-format images (``image.*``), not on 2D keypoints.
        mocap_only: reads 3D mocap for its training data (``data.npz``), never keypoint files.
        init: the model kind ``model.init_checkpoint`` must hold ("teacher" / "student").
        init_required: ``model.init_checkpoint`` must be set.
        teacher: needs a teacher lifter (``student.teacher_checkpoint``).
    """

    body_model: bool = False
    prior_3d: bool = False
    images: bool = False
    mocap_only: bool = False
    init: str = "teacher"
    init_required: bool = False
    teacher: bool = False


#: The training stages ``posenet3d train`` knows and what each needs.
STAGE_NEEDS = {
    "teacher": StageNeeds(),
    "student": StageNeeds(body_model=True, init="student", teacher=True),
    "finetune": StageNeeds(body_model=True, prior_3d=True, init="student", init_required=True, teacher=True),
    "supervised": StageNeeds(mocap_only=True),
    "image": StageNeeds(body_model=True, prior_3d=True, images=True),
}
STAGES = tuple(STAGE_NEEDS)

#: joints of the canonical lifting set (lifting.skeletons.CANON16); the root is never dropped
_NUM_JOINTS = 16


class ConfigError(ValueError):
    """A config file is missing or malformed, or a key is unknown, mistyped, unset or out of range
    (the message names the key)."""


# --------------------------------------------------------------------------- value checks
# Each check takes a value and returns None when it is fine, else what is wrong ("must be ...").

Check = Callable[[Any], Optional[str]]


def _at_least(lo) -> Check:
    return lambda v: None if v is None or v >= lo else f"must be >= {lo}"


def _between(lo, hi, hi_open: bool = False) -> Check:
    def check(v):
        if v is None:
            return None
        ok = lo <= v < hi if hi_open else lo <= v <= hi
        return None if ok else f"must be in [{lo}, {hi}{')' if hi_open else ']'}"
    return check


def _positive(v) -> Optional[str]:
    return None if v is None or v > 0 else "must be > 0"


def _one_of(*choices) -> Check:
    return lambda v: None if v in choices else f"must be one of {', '.join(map(str, choices))}"


def _odd_window(v) -> Optional[str]:
    return None if v >= 1 and v % 2 == 1 else "must be an odd number of frames >= 1 (the centre frame is lifted)"


def _low_high(v) -> Optional[str]:
    if len(v) != 2:
        return f"must be [low, high], got {len(v)} values"
    return None if v[0] <= v[1] else f"must be [low, high] with low <= high, got [{v[0]}, {v[1]}]"


def _each(check: Check) -> Check:
    def run(v):
        for i, x in enumerate(v):
            msg = check(x)
            if msg:
                return f"entry {i} ({x!r}) {msg}"
        return None
    return run


def _device(v) -> Optional[str]:
    return None if re.fullmatch(r"cpu|cuda|cuda:\d+|auto", v) else "must be cpu, cuda, cuda:N or auto"


def _drop_max(v) -> Optional[str]:
    n = _NUM_JOINTS - 2
    return None if 0 <= v <= n else (f"must be in [0, {n}]: at least one of the {_NUM_JOINTS - 1} non-root joints "
                                     f"must stay visible (the root is never dropped; 2D is normalised by joint distances)")


_PROB = _between(0.0, 1.0)
_WEIGHT = _at_least(0.0)


def _key(check: Check | None = None):
    """A schema field without a default (``configs/base.yaml`` sets it) and its range check."""
    return field(default=MISSING, metadata={"check": check})


def _model_key(config_class, name: str, check: Check | None = None):
    """A schema field for the model config field ``config_class.name``: its type and range
    come from the model's config dataclass (:class:`lifting.models.base.ModelArgs`), so they
    are stated once; ``check`` adds what training requires beyond what a model allows (run
    first). ``configs/base.yaml`` sets the value."""
    spec = config_class.specs()[name]

    def run(v):
        msg = check(v) if check is not None else None
        if msg is None and v is not None:
            msg = spec.problem(v)
            msg = None if msg is None else f"model limit: {msg.lstrip('= ')}"
        return msg
    return field(default=MISSING, metadata={"check": run})


def _section(cls):
    return field(default_factory=cls)


# --------------------------------------------------------------------------- schema


@dataclass
class DataConfig:
    npz: Optional[str] = _key()  # null: train on data.tracks alone (no mocap)
    train_split: str = _key(_one_of("train", "val", "test", "all"))
    val_split: str = _key(_one_of("train", "val", "test", "all"))
    balance: str = _key(_one_of("content", "none"))
    camera_height: List[float] = _key(_low_high)
    n_views: int = _key(_at_least(1))
    val_max_clips: int = _key(_at_least(0))
    # reserved for training on keypoint tracks (issue 14); validated, no behaviour yet
    tracks: List[str] = _key()
    mix: List[float] = _key(_each(_WEIGHT))
    tracks_fps: Optional[float] = _key(_positive)
    tracks_conf_threshold: float = _key(_PROB)
    val_tracks: float = _key(_between(0.0, 1.0, hi_open=True))


#: teacher-lifter fields that training does not choose: the canonical joint set fixes them
#: (:func:`trainers.stages.model_args`), or the model's default is used (``root_depth``)
_FIXED_MODEL_FIELDS = ("num_joints", "root_index", "root_depth")
#: what training requires beyond the model's own ranges
_TRAINING_CHECKS: dict[str, Check] = {"window": _odd_window, "width": _at_least(1), "n_blocks": _at_least(1)}

#: the ``model`` section: every trainable field of :class:`lifting.models.teacher.TeacherConfig`
#: (type and range from there; the student reads the fields it shares), plus ``init_checkpoint``
ModelConfig = make_dataclass("ModelConfig", [
    (name, spec.kind, _model_key(TeacherConfig, name, _TRAINING_CHECKS.get(name)))
    for name, spec in TeacherConfig.specs().items() if name not in _FIXED_MODEL_FIELDS
] + [("init_checkpoint", Optional[str], _key())])


@dataclass
class StudentConfig:
    teacher_checkpoint: Optional[str] = _key()
    learn_marker_offsets: bool = _model_key(_StudentArgs, "learn_marker_offsets")


@dataclass
class BodyModelConfig:
    path: Optional[str] = _key()
    gender: str = _key(_one_of("neutral", "male", "female"))
    num_betas: int = _model_key(_StudentArgs, "num_betas")


@dataclass
class Prior3DConfig:
    enabled: bool = _key()
    pose_bank: Optional[str] = _key()


@dataclass
class CriticConfig:
    width: int = _key(_at_least(1))
    n_blocks: int = _key(_at_least(1))
    real_tracks: List[str] = _key()  # reserved (issue 14)


@dataclass
class TrainSection:
    steps: int = _key(_at_least(1))
    batch_size: int = _key(_at_least(1))
    lr: float = _key(_positive)
    critic_lr: float = _key(_positive)
    weight_decay: float = _key(_at_least(0.0))
    min_lr_ratio: float = _key(_PROB)
    grad_clip: float = _key(_at_least(0.0))
    eval_every: int = _key(_at_least(1))
    log_every: int = _key(_at_least(1))
    critic_warmup: int = _key(_at_least(0))
    select_guards: List[str] = _key()
    keep_snapshots: bool = _key()
    out_dir: str = _key()
    threads: int = _key(_at_least(0))
    device: str = _key(_device)
    bf16: bool = _key()
    fp16: bool = _key()
    grad_accum: int = _key(_at_least(1))
    compile: bool = _key()


@dataclass
class AugConfig:
    noise_prob: float = _key(_PROB)
    noise_max: float = _key(_at_least(0.0))
    drop_prob: float = _key(_PROB)
    drop_max: int = _key(_drop_max)
    noise_oks_max: float = _key(_between(0.0, 10.0))
    burst_prob: float = _key(_PROB)
    swap_prob: float = _key(_PROB)
    cut_prob: float = _key(_PROB)
    scored_prob: float = _key(_PROB)
    conf_threshold: float = _key(_between(0.0, 1.0, hi_open=True))


@dataclass
class SynthConfig:
    enabled: bool = _key()
    elevation_deg: List[float] = _key(_low_high)
    distance_m: List[float] = _key(_low_high)
    fov_deg: List[float] = _key(_low_high)
    roll_deg: float = _key(_between(0.0, 45.0))
    bone_scale_std: float = _key(_between(0.0, 0.5))
    definition_scale: float = _key(_between(0.0, 5.0))
    coco_joints_prob: float = _key(_PROB)
    truncate: bool = _key()


@dataclass
class ViewsConfig:
    elevation_max_deg: float = _key(_between(0.0, 90.0))
    rotate_about: str = _key(_one_of("camera", "body"))
    augment_relift: bool = _key()


@dataclass
class TeacherLoss:
    adv: float = _key(_WEIGHT)
    cycle_3d: float = _key(_WEIGHT)
    cycle_2d: float = _key(_WEIGHT)
    reproject: float = _key(_WEIGHT)
    symmetry: float = _key(_WEIGHT)
    consistency: float = _key(_WEIGHT)
    bone_constancy: float = _key(_WEIGHT)
    smoothness: float = _key(_WEIGHT)


@dataclass
class StudentLoss:
    distill: float = _key(_WEIGHT)
    reproject: float = _key(_WEIGHT)
    adv: float = _key(_WEIGHT)
    smoothness: float = _key(_WEIGHT)
    betas: float = _key(_WEIGHT)
    pose_prior: float = _key(_WEIGHT)
    unobserved_prior: float = _key(_WEIGHT)
    twist: float = _key(_WEIGHT)
    marker_offsets: float = _key(_WEIGHT)


@dataclass
class FinetuneLoss:
    agree_teacher: float = _key(_WEIGHT)
    student_cycle: float = _key(_WEIGHT)
    velocity_agree: float = _key(_WEIGHT)
    prior_3d_adv: float = _key(_WEIGHT)


@dataclass
class ImageLoss:
    reproject: float = _key(_WEIGHT)
    distill: float = _key(_WEIGHT)
    adv: float = _key(_WEIGHT)
    betas: float = _key(_WEIGHT)
    kp_reproject: float = _key(_WEIGHT)
    consistency: float = _key(_WEIGHT)


@dataclass
class LossConfig:
    teacher: TeacherLoss = _section(TeacherLoss)
    student: StudentLoss = _section(StudentLoss)
    finetune: FinetuneLoss = _section(FinetuneLoss)
    image: ImageLoss = _section(ImageLoss)


@dataclass
class ImageAugConfig:
    scale: float = _key(_at_least(0.0))
    shift: float = _key(_at_least(0.0))
    rot_deg: float = _key(_between(0.0, 180.0))
    rot_prob: float = _key(_PROB)
    flip_prob: float = _key(_PROB)
    colour: float = _key(_at_least(0.0))
    occlusion_prob: float = _key(_PROB)
    occluder_target_prob: float = _key(_PROB)


@dataclass
class TerseConfig:
    enabled: bool = _key()
    prob: float = _key(_PROB)
    lr: float = _key(_positive)
    realism: float = _key(_WEIGHT)
    patch_size: int = _key(_at_least(1))


@dataclass
class ImageConfig:
    train_images: str = _key()
    train_annotations: str = _key()
    val_images: Optional[str] = _key()
    val_annotations: Optional[str] = _key()
    keypoint_student: Optional[str] = _key()
    crop_size: int = _key(_at_least(8))
    heatmap_size: int = _key(_at_least(1))
    padding: float = _key(_positive)
    min_keypoints: int = _key(_between(1, _NUM_JOINTS))
    depth: int = _model_key(ImageRegressorConfig, "depth")
    base_width: int = _model_key(ImageRegressorConfig, "base_width")
    pretrained: Optional[str] = _key()
    conorm_after: List[str] = _model_key(ImageRegressorConfig, "conorm_after")
    use_centermaps: bool = _model_key(ImageRegressorConfig, "use_centermaps")
    ief_iterations: int = _model_key(ImageRegressorConfig, "n_iter")
    head_width: int = _model_key(ImageRegressorConfig, "head_width")
    dropout: float = _model_key(ImageRegressorConfig, "dropout", _between(0.0, 1.0, hi_open=True))  # 1 drops all
    joint_finetune: bool = _key()
    other_crops: bool = _key()
    aug: ImageAugConfig = _section(ImageAugConfig)
    terse: TerseConfig = _section(TerseConfig)


@dataclass
class WandbConfig:
    mode: str = _key(_one_of("online", "offline", "disabled"))
    project: str = _key()
    entity: Optional[str] = _key()
    run_name: Optional[str] = _key()
    tags: List[str] = _key()


@dataclass
class TrainConfig:
    """The whole training config (every key of ``configs/base.yaml``)."""

    name: str = _key()
    seed: int = _key(_at_least(0))
    data: DataConfig = _section(DataConfig)
    model: ModelConfig = _section(ModelConfig)
    student: StudentConfig = _section(StudentConfig)
    body_model: BodyModelConfig = _section(BodyModelConfig)
    prior_3d: Prior3DConfig = _section(Prior3DConfig)
    critic: CriticConfig = _section(CriticConfig)
    train: TrainSection = _section(TrainSection)
    aug: AugConfig = _section(AugConfig)
    synth: SynthConfig = _section(SynthConfig)
    views: ViewsConfig = _section(ViewsConfig)
    loss: LossConfig = _section(LossConfig)
    image: ImageConfig = _section(ImageConfig)
    wandb: WandbConfig = _section(WandbConfig)


# --------------------------------------------------------------------------- loading


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
    ``configs/`` folder.

    Raises:
        ConfigError: no such file.
    """
    p = Path(name_or_path)
    if p.is_file():
        return p
    cand = CONFIG_DIR / (p.name if p.suffix else p.name + ".yaml")
    if not p.parent.parts and cand.is_file():
        return cand
    raise ConfigError(f"config file not found: {name_or_path}")


def section_type(f):
    """The schema dataclass of a section field (``TrainConfig.train`` -> :class:`TrainSection`),
    None for a value field."""
    sub = f.default_factory
    return sub if isinstance(sub, type) and is_dataclass(sub) else None


def _schema_keys(cls, prefix: str = "") -> list[str]:
    out = []
    for f in fields(cls):
        out.append(prefix + f.name)
        if section_type(f) is not None:
            out += _schema_keys(section_type(f), prefix + f.name + ".")
    return out


def _did_you_mean(key: str) -> str:
    keys = _schema_keys(TrainConfig)
    last = key.rsplit(".", 1)[-1]
    same_leaf = [k for k in keys if k.rsplit(".", 1)[-1] == last and k.split(".")[0] == key.split(".")[0]]
    close = same_leaf or difflib.get_close_matches(key, keys, n=1, cutoff=0.75)
    return f"; did you mean {' or '.join(repr(k) for k in close[:4])}?" if close else ""


def _explain(e: OmegaConfBaseException, source: str, fallback_key: str | None = None) -> ConfigError:
    """A ConfigError naming the key of an OmegaConf error (with "did you mean" for unknown keys)."""
    key = getattr(e, "full_key", None) or getattr(e, "key", None) or fallback_key or "?"
    key = str(key)
    msg = str(getattr(e, "msg", None) or e).splitlines()[0]
    if "not in" in msg or type(e).__name__ == "ConfigKeyError":
        return ConfigError(f"unknown config key {key!r} ({source}){_did_you_mean(key)}")
    if "Missing mandatory value" in msg:
        return ConfigError(f"config key {key!r} has no value ({source}; configs/base.yaml sets every key)")
    if "is not a subclass of" in msg:
        return ConfigError(f"config key {key!r} is a section, not a value ({source}): set one of its keys, "
                           f"e.g. {key}.<name>=value")
    return ConfigError(f"invalid value for config key {key!r} ({source}): {msg}")


def _check_ranges(cfg: DictConfig, cls=TrainConfig, prefix: str = "") -> None:
    for f in fields(cls):
        value, key = cfg[f.name], prefix + f.name
        if section_type(f) is not None:
            _check_ranges(value, section_type(f), key + ".")
            continue
        plain = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
        floats = plain if isinstance(plain, list) else [plain]
        bad = [x for x in floats if isinstance(x, float) and not math.isfinite(x)]
        if bad:
            raise ConfigError(f"config key {key!r} must be a finite number, got {plain!r}")
        check = f.metadata.get("check")
        msg = check(plain) if check is not None else None
        if msg:
            raise ConfigError(f"config key {key}={plain!r}: {msg}")


def _check_combinations(cfg: DictConfig) -> None:
    if cfg.train.bf16 and cfg.train.fp16:
        raise ConfigError("config keys train.bf16 and train.fp16 are both true: choose one")
    if cfg.data.mix and (len(cfg.data.mix) != 2 or not cfg.data.tracks or not cfg.data.npz):
        raise ConfigError(f"config key data.mix mixes data.tracks with data.npz: it needs both set and two "
                          f"weights [w_tracks, w_npz], got {list(cfg.data.mix)}")
    if cfg.data.mix and sum(cfg.data.mix) <= 0:
        raise ConfigError("config key data.mix: the weights sum to 0")


def load_config(path: str | Path, overrides: list[str] | None = None) -> "TrainConfig":
    """Load and validate a stage config.

    Args:
        path: stage YAML (may name a ``base:`` YAML relative to itself) or a bare config name.
        overrides: OmegaConf dotlist, e.g. ``["train.steps=100", "model.window=9"]``.

    Returns:
        The merged config as a :class:`TrainConfig` (plain dataclasses, one per section: what
        every stage, the loop and ``adapt`` receive; :func:`config_dict` gives its plain dict).

    Raises:
        ConfigError: missing/malformed file, an override not of the form ``key=value``, an
            unknown key (with a "did you mean"), a value of the wrong type, a key without a value,
            or a value out of range; every message names the key.
    """
    path = resolve_config_path(path)
    stage = _read(path)
    layers: list[tuple[str, DictConfig]] = []
    base_name = stage.pop("base", None)
    if base_name is not None:
        base_path = (path.parent / str(base_name)).resolve()
        base = _read(base_path)
        base.pop("base", None)
        layers.append((str(base_path), base))
    layers.append((str(path), stage))
    cfg = OmegaConf.structured(TrainConfig)
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
    try:
        for source, layer in layers:
            cfg = _merge(cfg, layer, source)
        for item in overrides or []:
            cfg = _merge(cfg, OmegaConf.from_dotlist([item]), f"override {item!r}", item.split("=", 1)[0])
        OmegaConf.resolve(cfg)
        missing = sorted(OmegaConf.missing_keys(cfg))
    except OmegaConfBaseException as e:
        raise _explain(e, str(path)) from None
    if missing:
        raise ConfigError(f"config key {missing[0]!r} has no value ({path}; configs/base.yaml sets every key)")
    _check_ranges(cfg)
    _check_combinations(cfg)
    return OmegaConf.to_object(cfg)


def config_dict(cfg: "TrainConfig") -> dict:
    """``cfg`` as nested plain dicts and lists (what checkpoints, ``config.yaml`` and W&B store)."""
    return asdict(cfg)


def config_value(cfg: "TrainConfig", key: str):
    """The value of a dotted ``key`` (``"data.tracks"``) of ``cfg``.

    Raises:
        AttributeError: no such key."""
    value = cfg
    for part in key.split("."):
        value = getattr(value, part)
    return value


def _merge(cfg: DictConfig, layer: DictConfig, source: str, key: str | None = None) -> DictConfig:
    try:
        return OmegaConf.merge(cfg, layer)
    except OmegaConfBaseException as e:
        raise _explain(e, source, key) from None


# --------------------------------------------------------------------------- per-stage checks


def _need_file(cfg: "TrainConfig", key: str, what: str, folder: bool = False) -> None:
    value = config_value(cfg, key)
    if value is None:
        raise ConfigError(f"config key {key} is not set ({what} is required)")
    p = Path(str(value))
    if not (p.is_dir() if folder else p.exists()):
        raise ConfigError(f"config key {key}: {what} not found: {p}")


def _checkpoint_arch(cfg: "TrainConfig", key: str, want: type, default: str | None = None) -> None:
    """``cfg[key]`` (a checkpoint path or a bundled name) must hold a model of ``want``'s kind
    (a :class:`lifting.models.base.ModelArgs` subclass: :class:`lifting.models.teacher.TeacherConfig`
    for a teacher lifter, :class:`lifting.models.student.StudentConfig` for an SMPL student),
    read by :func:`lifting.models.checkpoint.model_kind`.

    Raises:
        ConfigError: unreadable checkpoint, unknown kind, or another kind (naming the key)."""
    from lifting.models.checkpoint import load_checkpoint, model_kind
    from lifting.models.lifters import resolve_checkpoint

    value = config_value(cfg, key) or default
    if value is None:
        return
    try:
        ck = load_checkpoint(resolve_checkpoint(str(value)))
        kind = model_kind(ck)
    except ValueError as e:
        raise ConfigError(f"config key {key}: {e}") from None
    if kind != want.ARCH:
        names = {TeacherConfig.ARCH: "a teacher lifter (posenet3d train teacher / supervised)",
                 _StudentArgs.ARCH: "an SMPL student (posenet3d train student / finetune)"}
        raise ConfigError(f"config key {key}: {value} holds {names.get(kind, f'a {kind!r} model')} "
                          f"({ck.get('kind')!r} checkpoint), but {names[want.ARCH]} is expected here")


def check_stage(cfg: "TrainConfig", kind: str, with_sources: bool = False) -> None:
    """What ``kind`` needs beyond :func:`load_config`'s checks: input files that exist and
    checkpoints of the right kind (``student.teacher_checkpoint`` a teacher,
    ``model.init_checkpoint`` / ``image.keypoint_student`` a student where one is trained).
    ``with_sources``: the 2D training data is given already read (``posenet3d adapt``), so a
    self-supervised stage needs no ``data.npz`` / ``data.tracks``.

    Raises:
        ConfigError: unknown stage, a missing file, or a checkpoint of the wrong kind (naming the key).
    """
    if kind not in STAGE_NEEDS:
        raise ConfigError(f"unknown training stage {kind!r}; choose {', '.join(STAGES)}")
    needs = STAGE_NEEDS[kind]
    for key in ("data.tracks", "critic.real_tracks"):
        for i, p in enumerate(config_value(cfg, key)):
            if not Path(p).exists():
                raise ConfigError(f"config key {key}[{i}]: keypoint file or folder not found: {p}")
    if cfg.body_model.path is not None and needs.body_model:
        _need_file(cfg, "body_model.path", "the body model file or folder")
    if cfg.prior_3d.enabled and needs.prior_3d:
        if cfg.prior_3d.pose_bank is None:
            raise ConfigError("config key prior_3d.pose_bank is not set: prior_3d.enabled needs a pose bank "
                              "(make one with `posenet3d pose-bank`)")
        _need_file(cfg, "prior_3d.pose_bank", "the pose bank")
    if needs.images:
        _check_image_inputs(cfg)
        return
    if cfg.data.npz is not None or needs.mocap_only or not (cfg.data.tracks or with_sources):
        _need_file(cfg, "data.npz", "the mocap npz (null only with data.tracks, for self-supervised stages)")
    if needs.teacher:
        _checkpoint_arch(cfg, "student.teacher_checkpoint", TeacherConfig, default="teacher")
    _checkpoint_arch(cfg, "model.init_checkpoint", _StudentArgs if needs.init == "student" else TeacherConfig)
    if needs.init_required and not cfg.model.init_checkpoint:
        raise ConfigError(f"config key model.init_checkpoint is not set: {kind} starts from a {needs.init} "
                          f"(e.g. model.init_checkpoint={needs.init})")


def _check_image_inputs(cfg: "TrainConfig") -> None:
    """The image branch's folders and files exist; its keypoint student is an SMPL student.

    Raises:
        ConfigError: naming the key."""
    _need_file(cfg, "image.train_images", "the training image folder", folder=True)
    _need_file(cfg, "image.train_annotations", "the training annotation file")
    if cfg.image.val_annotations is not None:
        _need_file(cfg, "image.val_images", "the validation image folder", folder=True)
        _need_file(cfg, "image.val_annotations", "the validation annotation file")
    if cfg.image.pretrained is not None:
        _need_file(cfg, "image.pretrained", "the pretrained backbone file")
    _checkpoint_arch(cfg, "image.keypoint_student", _StudentArgs, default="student")
