"""Training stages for the lifter: ``build`` from a config, ``step(batch) -> losses``.

* :class:`TeacherStage` — self-supervised (PoseNet3D stage 1, arXiv 2003.03473 Sec. 3.1;
  Chen et al. CVPR 2019): lift, rotate to a random view, reproject, fool a 2D critic,
  re-lift and cycle back (3D and 2D cycle consistency), plus 3D-free anatomical priors
  (left/right symmetry, bone constancy over time). Its data is a 2D-only
  :class:`lifting.data.WindowSampler`.
* :class:`StudentStage` — the SMPL student distilled from a frozen teacher (PoseNet3D stage
  2, Sec. 3.2), also 2D-only.
* :class:`SupervisedStage` — the same network trained with 3D labels (baseline only).
"""
from __future__ import annotations

import math
from collections.abc import Iterable
import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from lifting import losses
from lifting.data import (MocapClips, Projected2D, SupervisedWindows, WindowSampler, eval_views, load_mocap_npz,
                          project_clips, split_clips)
from lifting.models.discriminators import PoseCritic2D
from lifting.geometry import about_body_axis, normalize_2d, project_normalized, random_view_rotation, rms_scale
from lifting.inference import bf16_or_warn
from lifting.skeletons import CANON16
from lifting.synth2d import DetectorErrors, SynthSettings, apply_detector_errors, draw_detector_errors, edge_pad
from lifting.models.teacher import Lifter, TeacherConfig
from lifting.track_data import MixedSampler, RealPosePool, TrackReading, load_track_2d, read_pose_pool

from .config import TrainConfig, config_value

#: the 2D-only samplers the self-supervised stages accept (nothing else reaches them)
TWO_D_SAMPLERS = (WindowSampler, MixedSampler)

__all__ = ["resolve_device", "AugPlan", "draw_augmentation", "apply_augmentation", "teacher_terms", "TeacherStage",
           "StudentStage", "FinetuneStage", "SupervisedStage", "build_stage", "augment_2d", "build_lifter",
           "track_sources", "TrackSources", "TWO_D_SAMPLERS", "validate_2d", "Draws"]


#: where a model config field lives in the training config when it is not in ``model``
#: (``section.key``): the body model's size, the student's marker offsets, the image head
_MODEL_FIELD_KEYS = {"num_betas": "body_model.num_betas", "learn_marker_offsets": "student.learn_marker_offsets",
                     "n_iter": "image.ief_iterations"}


def model_args(config_class, cfg: TrainConfig, section: str = "model"):
    """The model config (a :class:`lifting.models.base.ModelArgs` subclass) a training config
    asks for: each field read from ``cfg.<section>`` (or :data:`_MODEL_FIELD_KEYS`), the joint
    set fixed to :data:`lifting.skeletons.CANON16`, any other field at the model's default.

    Raises:
        lifting.models.base.ModelConfigError: a value the model does not accept."""
    values = {}
    for name in config_class.specs():
        key = _MODEL_FIELD_KEYS.get(name, f"{section}.{name}")
        try:
            value = config_value(cfg, key)
        except AttributeError:  # a field training does not set: the model's default
            continue
        if value is not None:
            values[name] = value
    values |= {k: v for k, v in (("num_joints", CANON16.num_joints), ("root_index", CANON16.root_index))
               if k in config_class.specs()}
    return config_class.from_dict(values, "the training config")


def training_overrides(args, section: str = "model") -> list[str]:
    """The inverse of :func:`model_args`: config overrides (OmegaConf dotlist ``key=value``)
    that make a training config ask for the model config ``args`` (a
    :class:`lifting.models.base.ModelArgs`, e.g. from
    :func:`lifting.models.checkpoint.stored_args`), for every field training sets (fields
    fixed by the joint set, e.g. ``num_joints``, have no key and are left out). ``section``:
    where the model's own fields live (``model``; ``image`` for the image regressor).

    Raises nothing; a value the training config refuses is a ConfigError when loaded."""
    from .config import TrainConfig, _schema_keys

    keys = set(_schema_keys(TrainConfig))
    out = []
    for name, value in dataclasses.asdict(args).items():
        key = _MODEL_FIELD_KEYS.get(name, f"{section}.{name}")
        if key not in keys:
            continue
        if isinstance(value, (list, tuple)):
            text = "[" + ",".join(map(str, value)) + "]"
        else:
            text = str(value).lower() if isinstance(value, bool) else str(value)
        out.append(f"{key}={text}")
    return out


def build_lifter(cfg: TrainConfig) -> Lifter:
    """Lifter sized by ``cfg.model`` (:func:`model_args` of
    :class:`lifting.models.teacher.TeacherConfig`) for the canonical joint set, initialised
    from ``cfg.model.init_checkpoint`` when given.

    Raises:
        ValueError: the init checkpoint is unreadable or its architecture differs.
    """
    model = Lifter.from_config(model_args(TeacherConfig, cfg))
    init = cfg.model.init_checkpoint
    if init:
        from lifting.models.lifters import load_lifter

        src, _ = load_lifter(init)
        try:
            model.init_from(src.float())
        except ValueError as e:
            raise ValueError(f"model.init_checkpoint {init}: {e}") from None
    return model


def synth_settings(cfg: TrainConfig) -> SynthSettings | None:
    """The ``synth`` config group as :class:`lifting.synth2d.SynthSettings` (None when off)."""
    if not cfg.synth.enabled:
        return None
    s = cfg.synth
    return SynthSettings(tuple(s.elevation_deg), tuple(s.distance_m), tuple(s.fov_deg), float(s.roll_deg),
                         float(s.bone_scale_std), float(s.definition_scale), float(s.coco_joints_prob),
                         bool(s.truncate)).check()


@dataclass
class AugPlan:
    """Random draws of one :func:`augment_2d` call for a batch of ``B`` windows (so a batch can
    be augmented once, globally, then split across ranks/micro-batches with the exact same
    randomness as one process)."""

    which: torch.Tensor | None  # (B,) windows with dropped joints
    k: torch.Tensor | None  # (B,) how many joints each drops
    order: torch.Tensor | None  # (B, J) random order (the root never dropped)
    sigma: torch.Tensor | None  # (B,) noise sigma (0 for clean windows)
    noise: torch.Tensor | None  # (B, T, J, 2) standard normal
    detector: DetectorErrors | None = None  # detector-like errors (aug.noise_oks_max, burst/swap/cut_prob)
    conf_threshold: float = 0.3

    def __getitem__(self, sl) -> "AugPlan":
        parts = (self.which, self.k, self.order, self.sigma, self.noise, self.detector)
        return AugPlan(*(None if t is None else t[sl] for t in parts), conf_threshold=self.conf_threshold)


def draw_augmentation(B: int, T: int, J: int, cfg: TrainConfig, root: int, generator: torch.Generator,
                      device: torch.device) -> AugPlan:
    """Draw the randomness of :func:`augment_2d` for ``B`` windows of ``T`` frames, ``J``
    joints (``generator`` on ``device``), in this order: detector-like errors (any of
    ``aug.noise_oks_max``, ``burst_prob``, ``swap_prob``, ``cut_prob`` > 0), joint dropout
    (``aug.drop_prob`` and ``aug.drop_max`` > 0, with or without detector errors), Gaussian
    noise (``aug.noise_prob`` and ``noise_max`` > 0, without ``noise_oks_max``); each part
    off is None in the plan and draws nothing.

    Returns:
        :class:`AugPlan` with ``which, k, sigma (B,)``, ``order (B, J)``, ``noise (B, T, J, 2)``.
    """
    which = k = order = sigma = noise = detector = None
    a = cfg.aug
    if a.noise_oks_max > 0 or a.burst_prob > 0 or a.swap_prob > 0 or a.cut_prob > 0:
        detector = draw_detector_errors(B, T, J, a, root, generator, device)
    if a.drop_prob > 0 and a.drop_max > 0:
        which = torch.rand(B, generator=generator, device=device) < cfg.aug.drop_prob
        k = torch.randint(1, cfg.aug.drop_max + 1, (B,), generator=generator, device=device)
        order = torch.rand(B, J, generator=generator, device=device)
        order[:, root] = 2.0  # never drop the root
    if cfg.aug.noise_prob > 0 and cfg.aug.noise_max > 0 and a.noise_oks_max == 0:
        sigma = torch.rand(B, generator=generator, device=device) * cfg.aug.noise_max
        sigma = sigma * (torch.rand(B, generator=generator, device=device) < cfg.aug.noise_prob)
        noise = torch.randn(B, T, J, 2, generator=generator, device=device)
    return AugPlan(which, k, order, sigma, noise, detector, float(a.conf_threshold))


def apply_augmentation(kp: torch.Tensor, mask: torch.Tensor, plan: AugPlan, root: int):
    """Apply an :class:`AugPlan` (see :func:`augment_2d` for arguments and returns)."""
    B, T, J = mask.shape
    m_in = mask
    if plan.which is not None:
        rank = plan.order.argsort(dim=1).argsort(dim=1)
        drop = plan.which[:, None] & (rank < plan.k[:, None])
        m_in = mask & ~drop[:, None, :]
    x_in, scale = normalize_2d(kp, m_in, root, per_window=T > 1)
    if plan.sigma is not None:
        noise = plan.noise * plan.sigma[:, None, None, None]
        noise[..., root, :] = 0.0
        x_in = x_in + noise * m_in[..., None]
    conf = None
    if plan.detector is not None:
        x_in, m_in, conf = apply_detector_errors(x_in, m_in, plan.detector, plan.conf_threshold, root)
        # normalised again, as the lift normalises the detector's 2D it is given
        s = rms_scale(x_in, m_in, dims=(-2, -1) if T > 1 else (-1,))
        x_in, scale = x_in / s[..., None], scale * s
    return x_in, m_in, scale, conf


def augment_2d(kp: torch.Tensor, mask: torch.Tensor, cfg: TrainConfig, root: int, generator: torch.Generator):
    """Random joint dropout and 2D noise, as seen at inference on detector output.

    Args:
        kp: ``(B, T, J, 2)`` pixels (or already normalised 2D); mask: ``(B, T, J)`` bool.
        generator: on ``kp``'s device.

    Returns:
        ``(x_in (B, T, J, 2) normalised noisy input, m_in (B, T, J) bool, scale, conf)`` where
        ``scale`` (``(B, T, 1)`` or ``(B, 1, 1)`` per window) is the normalisation divisor in
        ``kp`` units and ``conf (B, T, J)`` simulated detector scores (None without
        detector-like errors). Dropout masks the same joints in every frame of a window, never the
        root; noise sigma is ``U[0, noise_max]`` normalised units for a ``noise_prob``
        fraction of windows, or with ``aug.noise_oks_max > 0`` detector-like errors
        (:func:`lifting.synth2d.apply_detector_errors`: per-joint OKS-scaled noise, bursts,
        swaps, scores; window cuts are applied to the batch by the stages).
    """
    B, T, J = mask.shape
    return apply_augmentation(kp, mask, draw_augmentation(B, T, J, cfg, root, generator, kp.device), root)


def _unit(x: torch.Tensor, per_window: bool, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    s = rms_scale(x, mask, dims=(-2, -1) if per_window else (-1,))
    return x / s[..., None], s


def resolve_device(name: str) -> torch.device:
    """``train.device``: ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (a GPU when there is one).

    Raises:
        ValueError: an unknown name, or a GPU asked for where torch sees none.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(f"train.device must be cpu, cuda, cuda:N or auto, got {name!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"train.device={name} but torch sees no GPU (torch {torch.__version__})")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"train.device must be cpu, cuda, cuda:N or auto, got {name!r}")
    return dev


@dataclass
class Draws:
    """The inputs and randomness of one global batch of 2D windows (drawn in the same order on
    every rank by :meth:`_Stage._global_draws`); ``draws[sl]`` is a micro-batch's share.

    Attributes:
        x_full: ``(B, T, J, 2)`` clean 2D, root-relative and scale-normalised
            (:func:`lifting.geometry.normalize_2d`); 0 at unobserved joints.
        x_in: ``(B, T, J, 2)`` the augmented input (noise, dropped joints, detector errors).
        m_in: ``(B, T, J)`` bool, the joints the input shows. mask: ``(B, T, J)`` bool, the
            joints observed in the clean 2D.
        R: ``(B, 3, 3)`` random views of the lift/rotate/reproject cycle (Chen et al. CVPR 2019).
        plan_y: the re-lift input's augmentation (``views.augment_relift``), or None.
        conf: ``(B, T, J)`` detector scores of the input (0 where ``m_in`` is False), or None.
    """

    x_full: torch.Tensor
    x_in: torch.Tensor
    m_in: torch.Tensor
    mask: torch.Tensor
    R: torch.Tensor
    plan_y: "AugPlan | None" = None
    conf: torch.Tensor | None = None

    def __getitem__(self, sl) -> "Draws":
        return Draws(self.x_full[sl], self.x_in[sl], self.m_in[sl], self.mask[sl], self.R[sl],
                     None if self.plan_y is None else self.plan_y[sl], None if self.conf is None else self.conf[sl])


class _Stage:
    """Common parts: config, network, optimisers, schedule, precision, data parallelism.

    **Data parallel** (``torchrun``, see ``trainers.loop``): every rank draws the same global
    batch and the same augmentation/view randomness (same seed), then works on its own
    ``1 / world_size`` share, split further into ``train.grad_accum`` micro-batches; the
    gradients of each update are averaged over micro-batches and ranks (one all-reduce of
    the flattened gradients per optimiser step), so N ranks compute the same update as one
    process on the whole batch. (An explicit all-reduce rather than the
    ``DistributedDataParallel`` wrapper: these GAN stages run several forward passes and two
    optimisers per step, and the models are small enough that overlapping communication with
    backward buys nothing.)

    **Precision**: ``train.bf16`` (CPU or GPU autocast) or ``train.fp16`` (GPU autocast with
    one gradient scaler per optimiser; optimisers trained by one scaled loss are all stepped by the
    scaler that scaled it, :meth:`_step_scaled_by`); fp32 otherwise. ``train.compile`` wraps the trained
    network in ``torch.compile``.
    """

    kind = "base"

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.device = resolve_device(cfg.train.device)
        self.rank, self.world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
        self.accum = cfg.train.grad_accum
        if cfg.train.fp16 and self.device.type != "cuda":
            raise ValueError("train.fp16 needs a GPU (train.device=cuda); use train.bf16 on the CPU")
        bf16 = cfg.train.bf16 and bf16_or_warn(self.device)  # emulated bf16 (no AVX512-BF16/AMX): fp32
        self.amp_dtype = torch.bfloat16 if bf16 else torch.float16 if cfg.train.fp16 else None
        self.generator = torch.Generator(device=self.device).manual_seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        self.lifter = self.build_model(cfg).to(self.device)
        self.net = torch.compile(self.lifter) if cfg.train.compile else self.lifter
        self.root = CANON16.root_index
        self.window = cfg.model.window
        #: optimisers by name (the name of the model they train, see :meth:`models`)
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        #: the critics' optimisers (they alone learn during the critic warm-up, :meth:`set_lr`)
        self.critics: set[str] = set()
        self.add_optimizer("lifter", self.lifter.parameters(), cfg.train.lr)
        self.val_views = None  # lifting.data.EvalViews for validation (set by trainers.loop)

    def build_model(self, cfg: TrainConfig) -> torch.nn.Module:
        """The trained network (stored in checkpoints as ``model``)."""
        return build_lifter(cfg)

    def add_optimizer(self, name: str, params, lr: float, adam_w: bool = True,
                      critic: bool = False) -> torch.optim.Optimizer:
        """Register the optimiser ``name`` (AdamW with ``train.weight_decay``, or plain Adam) of
        ``params``, with its gradient scaler; returns it. ``critic``: it trains a critic
        (it learns during the critic warm-up, :meth:`set_lr`).

        Raises:
            ValueError: ``name`` is taken.
        """
        if name in self.optimizers:
            raise ValueError(f"optimiser {name!r} registered twice")
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=self.cfg.train.weight_decay) if adam_w \
            else torch.optim.Adam(params, lr=lr)
        self.optimizers[name] = opt
        if critic:
            self.critics.add(name)
        self.scalers[name] = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        return opt

    def lr_factor(self, step: int) -> float:
        """Cosine decay from 1 to ``min_lr_ratio`` over ``train.steps``."""
        t = min(1.0, step / max(1, self.cfg.train.steps))
        r = self.cfg.train.min_lr_ratio
        return r + (1 - r) * 0.5 * (1 + math.cos(math.pi * t))

    @property
    def warming_up(self) -> bool:
        """Whether the current step (:meth:`set_lr`) is in the critic warm-up
        (``train.critic_warmup`` steps)."""
        return getattr(self, "step_index", 0) < self.cfg.train.critic_warmup

    def set_lr(self, step: int) -> None:
        """Set every optimiser's learning rate for (0-based) ``step``; also records the step.
        During the critic warm-up every optimiser but the critics' (:attr:`critics`) is at 0:
        the networks keep their weights (a fresh critic's gradients would only disturb them)
        while their Adam moments follow the gradients; measured, that trained better than
        not stepping them (``posenet3d adapt``: HDM05 79.5 vs 94.8 mm, Pose2Sim 61.4 vs 97.7,
        BENCHMARKS.md "Adapting")."""
        self.step_index = step
        f = self.lr_factor(step)
        for name, opt in self.optimizers.items():
            on = name in self.critics or not self.warming_up
            for g in opt.param_groups:
                g.setdefault("base_lr", g["lr"])
                g["lr"] = g["base_lr"] * f if on else 0.0

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype or torch.bfloat16,
                              enabled=self.amp_dtype is not None)

    def chunks(self, batch_size: int) -> list[slice]:
        """This rank's micro-batches of a global batch of ``batch_size`` windows.

        Raises:
            ValueError: ``batch_size`` is not divisible by ``world_size * grad_accum``.
        """
        n = self.world * self.accum
        if batch_size % n:
            raise ValueError(f"train.batch_size={batch_size} must be divisible by world size x grad_accum = {n}")
        b = batch_size // n
        return [slice(c * b, (c + 1) * b) for c in range(self.rank * self.accum, (self.rank + 1) * self.accum)]

    def _backward(self, loss: torch.Tensor, name: str) -> None:
        """Backward of one micro-batch's loss for optimiser ``name`` (averaged over micro-batches)."""
        self.scalers[name].scale(loss / self.accum).backward()

    def _step(self, name: str, params) -> None:
        """Average gradients over ranks, unscale, clip, step optimiser ``name`` whose loss was
        scaled by its own gradient scaler (:meth:`_backward` with ``name``)."""
        self._step_scaled_by({name: params}, name)

    def _step_scaled_by(self, params: dict[str, Iterable[torch.nn.Parameter]], scaler: str) -> None:
        """Step the optimisers named by ``params`` (``{name: their parameters}``), whose gradients
        come from losses scaled by the one gradient scaler ``scaler`` (:meth:`_backward` with
        ``scaler``): each averages its gradients over ranks, is unscaled by that scaler, clipped
        and stepped (skipped on inf/NaN gradients); then that scaler is updated once, as torch.amp
        steps several optimisers of one scaled backward.

        Raises:
            KeyError: an unknown optimiser or scaler name.
        """
        s = self.scalers[scaler]
        for name, ps in params.items():
            ps = self._average_grads(ps)
            opt = self.optimizers[name]
            s.unscale_(opt)
            if self.cfg.train.grad_clip:
                torch.nn.utils.clip_grad_norm_(ps, self.cfg.train.grad_clip)
            s.step(opt)
        s.update()

    def _average_grads(self, params: Iterable[torch.nn.Parameter]) -> list[torch.nn.Parameter]:
        """The trainable ``params`` (a list), their gradients averaged over ranks (one
        all-reduce; a missing gradient counts as zeros)."""
        params = [p for p in params if p.requires_grad]
        if self.world > 1:
            grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
            flat = torch.cat([g.reshape(-1) for g in grads])
            dist.all_reduce(flat)
            flat /= self.world
            off = 0
            for p in params:
                n = p.numel()
                p.grad = flat[off:off + n].view_as(p).clone()
                off += n
        return params

    def _zero(self, name: str) -> None:
        self.optimizers[name].zero_grad(set_to_none=True)

    def models(self) -> dict[str, torch.nn.Module]:
        """Trained modules by name (checkpointed, kept in sync across ranks)."""
        return {"lifter": self.lifter}

    def extra_checkpoint(self) -> dict:
        """Entries added to checkpoints besides the main model (e.g. a co-trained teacher)."""
        return {}

    def eval_models(self) -> dict[str, torch.nn.Module]:
        """Models validated during training, by metric-name prefix (``""`` picks best.pt)."""
        return {"": self.lifter}

    #: whether higher values of the validation metric (:attr:`best_key`) are better
    higher_is_better = False
    #: the config keys that select the validation data (for messages)
    validation_source = "data.val_split, data.val_max_clips (or data.val_tracks with data.npz=null)"
    #: held-out keypoint tracks (a 2D-only :class:`lifting.data.Projected2D`), validated without 3D
    #: when there are no mocap ``val_views`` (set by :func:`build_stage` for ``data.tracks``)
    val_tracks = None

    @property
    def best_key(self) -> str:
        """The validation metric that picks ``best.pt``: PA-MPJPE on mocap views, else the
        held-out tracks' hidden-joint 2D error (:func:`validate_2d`)."""
        return "pa_mpjpe_mm" if self.val_views is not None or self.val_tracks is None else "heldout_joint_2d"

    @property
    def has_validation(self) -> bool:
        return self.val_views is not None or self.val_tracks is not None

    def validate(self) -> dict[str, float] | None:
        """Validation metrics of :meth:`eval_models` on ``self.val_views`` (the DESIGN.md §4 rig,
        GT 2D; :func:`lifting.evaluate.evaluate_lifter`): ``{prefix + metric: value}`` in mm
        (``pa_mpjpe_mm``, ``n_mpjpe_mm``, ``mpjpe_mm``, ...); without mocap views, the 3D-free
        metrics of :func:`validate_2d` on ``self.val_tracks`` (``{prefix + metric: value}``
        too); None without either."""
        if self.val_views is None:
            if self.val_tracks is None:
                return None
            return {f"{prefix}{k}": v for prefix, model in self.eval_models().items()
                    for k, v in validate_2d(self, self.val_tracks, model=model).items()}
        from lifting.evaluate import evaluate_lifter

        val = {}
        for prefix, model in self.eval_models().items():
            res = evaluate_lifter(model, self.val_views)["overall"]
            val |= {f"{prefix}{k}": v for k, v in res.items()}
        return val

    def describe(self, val: dict[str, float]) -> str:
        """One line per validated model of :meth:`validate`'s result."""
        if self.val_views is None:
            return f"held-out tracks: hidden-joint 2D error {100 * val['heldout_joint_2d']:.1f}% of the person's size"
        return "; ".join(f"{prefix.rstrip('_') or 'val'} PA-MPJPE {val[prefix + 'pa_mpjpe_mm']:.1f} mm, "
                         f"N-MPJPE {val[prefix + 'n_mpjpe_mm']:.1f} mm, MPJPE {val[prefix + 'mpjpe_mm']:.1f} mm"
                         for prefix in self.eval_models())

    def score(self, val: dict[str, float]) -> float:
        """``val[best_key]`` signed so that lower is better (the value kept as ``best``)."""
        return -val[self.best_key] if self.higher_is_better else val[self.best_key]

    def sample_figure(self, path) -> str | None:
        """Figure of a few validation frames (2D input beside the model's 3D), for W&B; returns its
        path (None without mocap validation views)."""
        from lifting.inference import lift_frames, metric_scale
        from lifting.viz import plot_track_frames

        v = self.val_views
        if v is None:
            return None
        n = min(int(v.seq_offsets[1]), 120)
        kp = torch.as_tensor(v.keypoints_2d[0, :n]).float().to(self.device)
        mask = torch.ones(kp.shape[:-1], dtype=torch.bool, device=self.device)
        pred = metric_scale(lift_frames(self.lifter, kp, mask).cpu(), v.skeleton).numpy()
        return str(plot_track_frames(path, v.skeleton, kp.cpu().numpy(), mask.cpu().numpy(), pred, np.arange(n),
                                     title="validation sample"))

    def state_dict(self) -> dict:
        """Everything needed to resume: models, optimisers, scalers, and RNG states."""
        d = {name: m.state_dict() for name, m in self.models().items()}
        d["optimizers"] = {name: o.state_dict() for name, o in self.optimizers.items()}
        d["scalers"] = {name: s.state_dict() for name, s in self.scalers.items()}
        d["rng"] = {"generator": self.generator.get_state(), "torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            d["rng"]["cuda"] = torch.cuda.get_rng_state(self.device)
        return d

    def load_state_dict(self, d: dict) -> None:
        """Restore :meth:`state_dict` (raises ``ValueError`` naming a missing/mismatched part)."""
        try:
            for name, m in self.models().items():
                m.load_state_dict(d[name])
            if set(d["optimizers"]) != set(self.optimizers):
                raise ValueError(f"optimisers {sorted(d['optimizers'])} in the checkpoint, this run has "
                                 f"{sorted(self.optimizers)}")
            for name, o in self.optimizers.items():
                o.load_state_dict(d["optimizers"][name])
                self.scalers[name].load_state_dict(d["scalers"][name])
            self.generator.set_state(d["rng"]["generator"].to("cpu") if self.device.type == "cpu"
                                     else d["rng"]["generator"].cpu())
            torch.set_rng_state(d["rng"]["torch"].cpu())
            if "cuda" in d["rng"] and self.device.type == "cuda":
                torch.cuda.set_rng_state(d["rng"]["cuda"].cpu(), self.device)
        except (KeyError, RuntimeError, ValueError, TypeError) as e:
            raise ValueError(f"the resume checkpoint does not match this run's models/optimisers ({e})") from None

    def _global_draws(self, batch: dict[str, torch.Tensor], relift: bool = False) -> Draws:
        """Everything random for the whole global batch, drawn in the same order on every rank
        (:class:`Draws`): the re-lift augmentation only with ``relift`` and
        ``views.augment_relift``; the input's detector scores are the batch's own ``conf``
        (tracks) times the simulated ones, either alone when the other is absent (None with
        neither)."""
        cfg, T, root = self.cfg, self.window, self.root
        kp, mask, conf = batch["keypoints_2d"], batch["mask"], batch.get("conf")  # conf: the tracks' own scores
        B, _, J = mask.shape
        plan = draw_augmentation(B, T, J, cfg, root, self.generator, self.device)
        if plan.detector is not None and T > 1:  # cut windows: the edge padding of track ends and gaps
            conf = None if conf is None else edge_pad(conf[..., None], mask, plan.detector)[0][..., 0]
            kp, mask = edge_pad(kp, mask, plan.detector)
        x_full, _ = normalize_2d(kp, mask, root, per_window=T > 1)
        x_in, m_in, _, c_in = apply_augmentation(kp, mask, plan, root)
        if conf is not None:  # real scores, times the simulated ones when both exist
            c_in = torch.where(m_in, conf if c_in is None else conf * c_in, 0.0)
        R = random_view_rotation((B,), elevation_max=math.radians(cfg.views.elevation_max_deg),
                                 generator=self.generator, device=self.device)
        plan_y = draw_augmentation(B, T, J, cfg, root, self.generator, self.device) \
            if relift and cfg.views.augment_relift else None
        return Draws(x_full, x_in, m_in, mask, R, plan_y, c_in)

    def _critic_pass(self, parts: list[slice], x_full: torch.Tensor, fakes: list[torch.Tensor],
                     sums: dict[str, torch.Tensor]) -> None:
        """One LSGAN update of ``self.critic`` (optimiser ``"critic"``): real = this rank's clean 2D,
        fake = the micro-batches' random-view projections; with a real-pose pool
        (``critic.real_tracks``) the reals come from it and the fakes get its masks."""
        self._zero("critic")
        pool = getattr(self, "real_pool", None)
        for sl, y in zip(parts, fakes):
            real = x_full[sl]
            if pool is not None:
                real, y = pool.real(real.shape[0], self.generator), pool.mask_like(y, self.generator)
            with self.autocast():
                l_critic = losses.lsgan_critic(self.critic(real).float(), self.critic(y).float())
            self._backward(l_critic, "critic")
            _accumulate(sums, {"critic": l_critic}, len(parts))
        self._step("critic", self.critic.parameters())

    def _adv_critic(self, y: torch.Tensor) -> torch.Tensor:
        """The 2D critic as the generators' adversarial terms see it: with a real-pose pool
        (:class:`lifting.track_data.RealPosePool`) the fakes ``y (b, T, J, 2)`` first get the
        masks of random real poses, as in the critic's own update."""
        pool = getattr(self, "real_pool", None)
        return self.critic(y if pool is None else pool.mask_like(y, self.generator))

    def _reduce(self, logs: dict[str, torch.Tensor]) -> dict[str, float]:
        """Per-rank micro-batch means -> global means (floats), identical on every rank."""
        keys = sorted(logs)
        v = torch.stack([logs[k].detach().float() for k in keys])
        if self.world > 1:
            dist.all_reduce(v)
            v /= self.world
        return dict(zip(keys, v.tolist()))


def teacher_terms(net, critic, d: Draws, cfg: TrainConfig, root: int):
    """Generator losses of the self-supervised teacher on one micro-batch (PoseNet3D stage 1,
    arXiv 2003.03473 Sec. 3.1; Chen et al. CVPR 2019 Sec. 3).

    Args:
        net: the lifter. critic: the 2D critic. d: the micro-batch (:class:`Draws`: augmented
        input ``x_in (b, T, J, 2)`` with ``m_in`` and ``conf`` (None: 1 for visible joints),
        the clean ``x_full`` with ``mask``, random views ``R (b, 3, 3)``, the re-lift
        augmentation ``plan_y`` or None). cfg: the stage config. root: the root joint index.

    Returns:
        ``(terms {name: (weight, loss)}, y (b, T, J, 2) random-view 2D (the critic's fakes),
        X (b, T, J, 3) the lift)``.
    """
    w = cfg.loss.teacher
    x_in, m_in, x_full, mask, R, plan_y, c_in = d.x_in, d.m_in, d.x_full, d.mask, d.R, d.plan_y, d.conf
    per_window = x_in.shape[1] > 1
    T = x_in.shape[1]
    # detector tracks mask joints (x_full is 0 there): compare 2D on observed joints only,
    # normalised over them as x_full is; None (mocap, every joint observed) = the plain path
    obs = None if bool(mask.all()) else mask
    X = net(x_in, m_in, c_in).float()  # (b, T, J, 3)
    if cfg.views.rotate_about == "body":
        R = about_body_axis(R, X, CANON16)
    Xr = torch.einsum("bij,btkj->btki", R, X)
    y, s_y = _unit(project_normalized(Xr), per_window)
    # the re-lift sees the new view with the same dropout/noise as real input: the rotated
    # pose is a known 3D target for it, so this teaches robustness with a 3D-free pseudo label
    if plan_y is not None:
        y_in, m_y, s_aug, c_y = apply_augmentation(y, torch.ones_like(mask), plan_y, root)
    else:
        y_in, m_y, s_aug, c_y = y, torch.ones_like(mask), torch.ones_like(s_y), None
    s_y = s_y * s_aug
    Y = net(y_in, m_y, c_y).float()
    # 3D cycle: re-lifting the new view returns the rotated pose (Chen et al. Eq. 5)
    l_cyc3 = losses.joint_distance(Y, Xr / s_y[..., None])
    # 2D cycle: rotating the re-lift back and projecting gives the original 2D (Eq. 4)
    back = torch.einsum("bji,btkj->btki", R, Y * s_y[..., None])
    l_cyc2 = losses.joint_distance(_unit(project_normalized(back), per_window, obs)[0], x_full, obs)
    # reprojection of the first lift onto the clean, complete 2D (trains inpainting of masked
    # joints and denoising)
    l_rep = losses.joint_distance(_unit(project_normalized(X), per_window, obs)[0], x_full, obs)
    terms = {  # name: (weight, loss)
        "adv": (w.adv, losses.lsgan_generator(critic(y).float())),
        "cycle_3d": (w.cycle_3d, l_cyc3),
        "cycle_2d": (w.cycle_2d, l_cyc2),
        "reproject": (w.reproject, l_rep),
        "symmetry": (w.symmetry, losses.bone_symmetry(X, CANON16)),
    }
    if w.consistency > 0:
        # self-consistency: the lift of the dropped/noisy input matches the (frozen) lift of
        # the clean, complete 2D, both scale-normalised
        with torch.no_grad():
            X_clean = net(x_full, mask).float()
        terms["consistency"] = (w.consistency, losses.joint_distance(
            _unit(X, per_window)[0], _unit(X_clean, per_window)[0]))
    if T > 1:
        terms["bone_constancy"] = (w.bone_constancy, losses.bone_constancy(X, CANON16))
    if T > 2:
        terms["smoothness"] = (w.smoothness, losses.acceleration(X))
    return terms, y, X


class TeacherStage(_Stage):
    """Self-supervised teacher (no 3D). ``sampler`` must be a 2D-only
    :class:`lifting.data.WindowSampler` (or a :class:`lifting.track_data.MixedSampler` of
    them); ``real_pool`` optional real 2D poses for the critic (``critic.real_tracks``)."""

    kind = "teacher"

    def __init__(self, cfg: TrainConfig, sampler: WindowSampler, real_pool: RealPosePool | None = None):
        if not isinstance(sampler, TWO_D_SAMPLERS):
            raise TypeError("the self-supervised teacher trains on a 2D-only WindowSampler")
        super().__init__(cfg)
        self.sampler = sampler.to(self.device)
        self.real_pool = None if real_pool is None else real_pool.to(self.device)
        self.critic = PoseCritic2D(CANON16, self.window, cfg.critic.width, cfg.critic.n_blocks).to(self.device)
        self.add_optimizer("critic", self.critic.parameters(), cfg.train.critic_lr, critic=True)

    def models(self) -> dict[str, torch.nn.Module]:
        return {"lifter": self.lifter, "critic": self.critic}

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One generator + one critic update on a global batch of 2D windows
        (``keypoints_2d (B, T, J, 2)`` pixels, ``mask (B, T, J)``); returns global mean losses."""
        cfg, root = self.cfg, self.root
        # all randomness for the global batch first (same on every rank), then this rank's share
        draws = self._global_draws(batch, relift=True)
        parts = self.chunks(draws.mask.shape[0])
        sums: dict[str, torch.Tensor] = {}
        fakes = []
        self._zero("lifter")
        for sl in parts:
            with self.autocast():
                terms, y, _ = teacher_terms(self.net, self._adv_critic, draws[sl], cfg, root)
                total = sum(weight * loss for weight, loss in terms.values())
            self._backward(total, "lifter")
            _accumulate(sums, {name: loss for name, (_, loss) in terms.items()} | {"total": total}, len(parts))
            fakes.append(y.detach())
        self._step("lifter", self.lifter.parameters())
        self._critic_pass(parts, draws.x_full, fakes, sums)
        return self._reduce(sums)


def _accumulate(sums: dict[str, torch.Tensor], values: dict[str, torch.Tensor], n: int) -> None:
    for k, v in values.items():
        v = v.detach().float() / n
        sums[k] = sums[k] + v if k in sums else v


class SupervisedStage(_Stage):
    """Supervised baseline: scale-free 3D loss against camera-frame ground truth."""

    kind = "supervised"

    def __init__(self, cfg: TrainConfig, sampler: SupervisedWindows):
        super().__init__(cfg)
        self.sampler = sampler.to(self.device)

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        kp, mask = batch["keypoints_2d"], batch["mask"]
        B, T, J = mask.shape
        plan = draw_augmentation(B, T, J, self.cfg, self.root, self.generator, self.device)
        if plan.detector is not None and T > 1:
            (kp, mask), (X3, _) = edge_pad(kp, mask, plan.detector), edge_pad(batch["joints_3d"], mask, plan.detector)
            batch = batch | {"joints_3d": X3}
        x_in, m_in, _, c_in = apply_augmentation(kp, mask, plan, self.root)
        parts = self.chunks(B)
        sums: dict[str, torch.Tensor] = {}
        self._zero("lifter")
        for sl in parts:
            with self.autocast():
                X = self.net(x_in[sl], m_in[sl], None if c_in is None else c_in[sl]).float()
                loss = losses.scale_free_3d(X, batch["joints_3d"][sl])
            self._backward(loss, "lifter")
            _accumulate(sums, {"supervised_3d": loss, "total": loss}, len(parts))
        self._step("lifter", self.lifter.parameters())
        return self._reduce(sums)


# SMPL joints whose rotation moves no canonical marker: only priors constrain them
_UNOBSERVED = ("left_ankle", "right_ankle", "left_foot", "right_foot", "head", "left_wrist", "right_wrist",
               "left_hand", "right_hand")
# joints with a single child: the twist about the bone to it leaves every joint in place
_TWIST_CHILD = {"left_hip": "left_knee", "right_hip": "right_knee", "left_knee": "left_ankle",
                "right_knee": "right_ankle", "spine1": "spine2", "spine2": "spine3", "neck": "head",
                "left_collar": "left_shoulder", "right_collar": "right_shoulder",
                "left_shoulder": "left_elbow", "right_shoulder": "right_elbow", "left_elbow": "left_wrist",
                "right_elbow": "right_wrist"}


class StudentStage(_Stage):
    """SMPL student distilled from a frozen teacher (PoseNet3D stage 2; no 3D labels).

    Losses (weights in ``cfg.loss.student``), per batch of 2D windows:

    * ``distill``: ``||J_s / rms(J_s) - J_t / rms(J_t)||`` per joint, student canonical joints
      vs the frozen teacher's lift of the clean 2D, both root-aligned and divided by their RMS
      joint distance from the root (per frame, per window for T > 1). Scale-normalising makes
      the teacher's arbitrary units irrelevant; the student's metric size comes from its
      ``betas`` (kept near the mean by ``betas``) [PoseNet3D Sec. 3.2; normalisation choice
      ours, as in Rhodin et al. CVPR 2018 Sec. 3.3].
    * ``reproject``: the student's joints through its camera onto the clean 2D (observed joints;
      this term alone sets the camera scale).
    * ``adv``: LSGAN 2D critic (trained here on the real 2D) on random-view projections of
      the student's joints (Chen et al. CVPR 2019 Sec. 3.2 applied to the student).
    * ``betas``, ``pose_prior``, ``unobserved_prior``, ``twist``: 3D-free regularisers on
      shape, rotations, and the rotations no joint constrains; ``marker_offsets``: keeps the
      learned canonical-marker offsets small; ``smoothness`` for windows T > 2.

    The student sees the augmented (dropped/noisy) input; the teacher sees the clean 2D.

    Raises:
        ValueError: teacher and student windows differ; unreadable teacher/body model.
    """

    kind = "student"

    def __init__(self, cfg: TrainConfig, sampler: WindowSampler, real_pool: RealPosePool | None = None):
        if not isinstance(sampler, TWO_D_SAMPLERS):
            raise TypeError("the student trains on a 2D-only WindowSampler")
        from lifting.models.lifters import load_lifter

        from lifting.models.lifters import bundled_teacher_for_window

        self.teacher, _ = load_lifter(cfg.student.teacher_checkpoint or bundled_teacher_for_window(cfg.model.window))
        if self.teacher.window != cfg.model.window:
            raise ValueError(f"student.teacher_checkpoint has window {self.teacher.window}, "
                             f"model.window is {cfg.model.window}: they must match")
        self.teacher.requires_grad_(False).eval()
        super().__init__(cfg)
        self.teacher.to(self.device)
        self.sampler = sampler.to(self.device)
        self.real_pool = None if real_pool is None else real_pool.to(self.device)
        self.critic = PoseCritic2D(CANON16, self.window, cfg.critic.width, cfg.critic.n_blocks).to(self.device)
        self.add_optimizer("critic", self.critic.parameters(), cfg.train.critic_lr, critic=True)
        from lifting.body_model import SMPL_JOINT_NAMES

        idx = {n: i for i, n in enumerate(SMPL_JOINT_NAMES)}
        w = torch.ones(23)
        w[[idx[n] - 1 for n in _UNOBSERVED]] = cfg.loss.student.unobserved_prior / max(cfg.loss.student.pose_prior, 1e-12)
        self.prior_weights = w.to(self.device)
        self.twist_joints = torch.tensor([idx[n] for n in _TWIST_CHILD], device=self.device)
        J = self.lifter.body_model.J_template
        axes = torch.stack([J[idx[c]] - J[idx[p]] for p, c in _TWIST_CHILD.items()])
        self.twist_axes = axes / axes.norm(dim=-1, keepdim=True)

    def build_model(self, cfg: TrainConfig) -> torch.nn.Module:
        from lifting.body_model import BodyModel
        from lifting.models.student import Student, StudentConfig

        bm = BodyModel(cfg.body_model.path, cfg.body_model.gender, cfg.body_model.num_betas)
        model = Student(model_args(StudentConfig, cfg), bm)
        init = cfg.model.init_checkpoint
        if init:  # e.g. continue distillation from the bundled student on new 2D data
            from lifting.models.lifters import load_lifter

            src, _ = load_lifter(init, cfg.body_model.path)
            if not src.outputs_smpl:
                raise ValueError(f"model.init_checkpoint {init}: not an SMPL student ({getattr(src, 'config', None)})")
            try:
                model.init_from(src.float())
            except ValueError as e:
                raise ValueError(f"model.init_checkpoint {init}: {e}") from None
        return model

    def models(self) -> dict[str, torch.nn.Module]:
        return {"lifter": self.lifter, "critic": self.critic}

    def student_terms(self, net, d: Draws, X_t: torch.Tensor):
        """Student losses on one micro-batch (see the class docstring).

        Args:
            net: the student. d: the micro-batch (:class:`Draws`; ``plan_y`` unused). X_t:
            ``(b, T, J, 3)`` the distillation target (the teacher's lift, no gradient).

        Returns:
            ``(terms {name: (weight, loss)}, y (b, T, J, 2) random-view 2D of the student's
            joints (the critic's fakes), out :class:`lifting.models.student.StudentOutput`)``.
        """
        w = self.cfg.loss.student
        x_in, x_full, mask, R = d.x_in, d.x_full, d.mask, d.R
        per_window = x_in.shape[1] > 1
        out = net(x_in, d.m_in, d.conf)
        Jc = out.joints_3d
        if self.cfg.views.rotate_about == "body":
            R = about_body_axis(R, X_t, CANON16)
        l_distill = losses.joint_distance(_unit(Jc, per_window)[0], _unit(X_t, per_window)[0])
        # not scale-normalised: this is what trains the camera scale (x_full has unit RMS)
        l_rep = losses.joint_distance(out.project(), x_full, mask)
        Xr = torch.einsum("bij,btkj->btki", R, Jc * out.cam[..., :1, None])
        y, _ = _unit(project_normalized(Xr), per_window)
        twist = losses.twist_angle(out.body_pose[:, :, self.twist_joints - 1], self.twist_axes)
        terms = {
            "distill": (w.distill, l_distill),
            "reproject": (w.reproject, l_rep),
            "adv": (w.adv, losses.lsgan_generator(self._adv_critic(y).float())),
            "betas": (w.betas, out.betas.square().sum(-1).mean()),
            "pose_prior": (w.pose_prior, losses.rotation_prior(out.body_pose, self.prior_weights)),
            "twist": (w.twist, twist.square().mean()),
            "marker_offsets": (w.marker_offsets, self.lifter.marker_offsets.square().sum(-1).mean()),
        }
        if x_in.shape[1] > 2:
            terms["smoothness"] = (w.smoothness, losses.acceleration(Jc))
        return terms, y, out

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One student + one critic update on a global batch of 2D windows
        (``keypoints_2d (B, T, J, 2)`` pixels, ``mask (B, T, J)``); returns global mean losses."""
        draws = self._global_draws(batch)
        parts = self.chunks(draws.mask.shape[0])
        sums: dict[str, torch.Tensor] = {}
        fakes = []
        self._zero("lifter")
        for sl in parts:
            d = draws[sl]
            with torch.no_grad(), self.autocast():
                X_t = self.teacher(d.x_full, d.mask).float()
            with self.autocast():
                terms, y, _ = self.student_terms(self.net, d, X_t)
                total = sum(weight * loss for weight, loss in terms.values())
            self._backward(total, "lifter")
            _accumulate(sums, {name: loss for name, (_, loss) in terms.items()} | {"total": total}, len(parts))
            fakes.append(y.detach())
        self._step("lifter", self.lifter.parameters())
        self._critic_pass(parts, draws.x_full, fakes, sums)
        return self._reduce(sums)


class FinetuneStage(StudentStage):
    """Joint fine-tuning of teacher and student (PoseNet3D stage 3, arXiv 2003.03473 Sec. 3.3;
    no 3D labels). Both networks train; one 2D critic judges random-view projections of both.

    Losses (``cfg.loss.finetune`` weights, and ``cfg.loss.teacher`` / ``cfg.loss.student``
    for the networks' own terms) per micro-batch:

    * the teacher's self-supervised terms (:func:`teacher_terms`: adversarial, 2D/3D cycle,
      reprojection, symmetry, temporal bone constancy/smoothness), logged ``teacher_*``;
    * the student's terms (:meth:`StudentStage.student_terms`), with the distillation target
      now the *current* teacher's lift of the clean 2D, logged ``student_*``;
    * ``agree_teacher``: the teacher's scale-normalised joints towards the student's
      (detached): agreement in both directions (``distill`` is the other one);
    * ``student_cycle``: the student's joints through the rotate-project-relift cycle (its
      random view re-lifted by the student equals the rotated joints; Chen et al. CVPR 2019
      Eq. 5 applied to the student);
    * ``velocity_agree`` (windows T > 1): the student's frame-to-frame joint velocities equal
      the teacher's (scale-normalised);
    * only in the optional, clearly labelled **"unpaired 3D prior" mode** (``prior_3d.enabled``;
      HMR, Kanazawa et al. CVPR 2018 Sec. 3.3): ``prior_3d_adv``, HMR's factorized
      discriminator (:class:`lifting.models.discriminators.SMPLDiscriminator`) on the student's SMPL
      parameters against a pose bank fitted to mocap (:mod:`lifting.pose_bank`). This mode
      uses unpaired 3D poses; the default is 3D-free.

    Starts from ``student.teacher_checkpoint`` (teacher) and ``model.init_checkpoint``
    (student; both default to the bundled models in ``configs/finetune.yaml``). For the first
    ``train.critic_warmup`` steps only the (fresh) critic trains (:meth:`_Stage.set_lr`).

    Raises:
        ValueError: no student checkpoint given, or windows differ.
    """

    kind = "finetune"

    def __init__(self, cfg: TrainConfig, sampler: WindowSampler, real_pool: RealPosePool | None = None):
        if not cfg.model.init_checkpoint:
            raise ValueError("fine-tuning starts from a student: set model.init_checkpoint (e.g. 'student')")
        super().__init__(cfg, sampler, real_pool)
        self.teacher.requires_grad_(True).train()
        self.teacher_net = torch.compile(self.teacher) if cfg.train.compile else self.teacher
        # the teacher's gradients come from the joint loss scaled by the "lifter" gradient scaler,
        # which also unscales and steps it (train.fp16); its own scaler is kept for checkpoints only
        self.add_optimizer("teacher", self.teacher.parameters(), cfg.train.lr)
        self.prior_3d = cfg.prior_3d.enabled
        if self.prior_3d:  # "unpaired 3D prior" mode: the only place 3D (fitted poses) enters
            from lifting.models.discriminators import SMPLDiscriminator
            from lifting.pose_bank import load_pose_bank

            if not cfg.prior_3d.pose_bank:
                raise ValueError("prior_3d.enabled needs prior_3d.pose_bank (make one with `posenet3d pose-bank`)")
            bank = load_pose_bank(cfg.prior_3d.pose_bank)
            if bank["betas"].shape[1] != cfg.body_model.num_betas:
                raise ValueError(f"pose bank has {bank['betas'].shape[1]} betas, body_model.num_betas is "
                                 f"{cfg.body_model.num_betas}")
            self.bank = {k: v.to(self.device) for k, v in bank.items()}
            self.smpl_disc = SMPLDiscriminator(cfg.body_model.num_betas).to(self.device)
            self.add_optimizer("smpl_disc", self.smpl_disc.parameters(), cfg.train.critic_lr, critic=True)

    def models(self) -> dict[str, torch.nn.Module]:
        m = {"lifter": self.lifter, "critic": self.critic, "teacher": self.teacher}
        if self.prior_3d:
            m["smpl_disc"] = self.smpl_disc
        return m

    def extra_checkpoint(self) -> dict:
        from lifting.models.checkpoint import model_entries

        return model_entries(self.teacher, prefix="teacher_")

    def eval_models(self) -> dict[str, torch.nn.Module]:
        return {"": self.lifter, "teacher_": self.teacher}

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One update of student and teacher, then one of the critic, on a global batch of 2D
        windows (``keypoints_2d (B, T, J, 2)`` pixels, ``mask (B, T, J)``)."""
        cfg, T, root = self.cfg, self.window, self.root
        per_window = T > 1
        w = cfg.loss.finetune
        draws = self._global_draws(batch, relift=True)
        B = draws.mask.shape[0]
        parts = self.chunks(B)
        sums: dict[str, torch.Tensor] = {}
        fakes, smpl_fakes = [], []
        self._zero("lifter")
        self._zero("teacher")
        if self.prior_3d:  # real samples for the SMPL discriminator, drawn for the global batch
            real_idx = torch.randint(len(self.bank["body_pose"]), (B * T,), generator=self.generator,
                                     device=self.device).reshape(B, T)
        for sl in parts:
            d = draws[sl]
            x_full, mask_c, R = d.x_full, d.mask, d.R
            with self.autocast():
                t_terms, y_t, X = teacher_terms(self.teacher_net, self._adv_critic, d, cfg, root)
                with torch.no_grad():
                    X_clean = self.teacher_net(x_full, mask_c).float()
                s_terms, y_s, out = self.student_terms(self.net, d, X_clean)
                Js = _unit(out.joints_3d, per_window)[0]
                terms = {f"teacher_{k}": v for k, v in t_terms.items()} | {f"student_{k}": v for k, v in s_terms.items()}
                terms["agree_teacher"] = (w.agree_teacher, losses.joint_distance(_unit(X, per_window)[0], Js.detach()))
                # the student's own cycle: its random view, re-lifted by the student, is the
                # rotated pose (scale-normalised)
                rot_s = torch.einsum("bij,btkj->btki", R, out.joints_3d)
                again = self.net(y_s, torch.ones_like(mask_c)).joints_3d
                terms["student_cycle"] = (w.student_cycle, losses.joint_distance(
                    _unit(again, per_window)[0], _unit(rot_s, per_window)[0]))
                if T > 1:
                    vel = lambda P: P[:, 1:] - P[:, :-1]  # noqa: E731
                    terms["velocity_agree"] = (w.velocity_agree, losses.joint_distance(
                        vel(Js), vel(_unit(X_clean, per_window)[0])))
                if self.prior_3d:
                    bp = out.body_pose.reshape(-1, 23, 3, 3)
                    be = out.betas[:, None].expand(-1, T, -1).reshape(bp.shape[0], -1)
                    terms["prior_3d_adv"] = (w.prior_3d_adv, losses.lsgan_generator(self.smpl_disc(bp, be).float()))
                    smpl_fakes.append((bp.detach(), be.detach()))
                total = sum(weight * loss for weight, loss in terms.values())
            self._backward(total, "lifter")
            _accumulate(sums, {name: loss for name, (_, loss) in terms.items()} | {"total": total}, len(parts))
            fakes.append(torch.cat([y_t.detach(), y_s.detach()]))
        # the critic's gradients from the generator pass are discarded by _zero("critic"); one
        # backward of the joint loss, scaled by the "lifter" scaler, trains both networks
        self._step_scaled_by({"lifter": self.lifter.parameters(), "teacher": self.teacher.parameters()}, "lifter")
        self._critic_pass(parts, draws.x_full, fakes, sums)
        if self.prior_3d:
            self._zero("smpl_disc")
            for sl, (bp, be) in zip(parts, smpl_fakes):
                ri = real_idx[sl].reshape(-1)
                with self.autocast():
                    l_d = losses.lsgan_critic(self.smpl_disc(self.bank["body_pose"][ri], self.bank["betas"][ri]).float(),
                                              self.smpl_disc(bp, be).float())
                self._backward(l_d, "smpl_disc")
                _accumulate(sums, {"smpl_disc": l_d}, len(parts))
            self._step("smpl_disc", self.smpl_disc.parameters())
        return self._reduce(sums)


def build_stage(kind: str, cfg: TrainConfig, clips: MocapClips | None = None, validation: bool = False,
                sources: "TrackSources | None" = None):
    """Build the stage ``kind`` on the training data named in ``cfg``.

    Args:
        kind: ``teacher``, ``student``, ``finetune``, ``supervised`` (mocap npz ``cfg.data``)
            or ``image`` (COCO-format crops ``cfg.image``, :func:`trainers.image.build_image_stage`).
        clips: the loaded ``cfg.data.npz`` (loaded here if not given).
        validation: also prepare the validation data (``stage.val_views``: the
            ``data.val_split`` clips, at most ``data.val_max_clips``, through the evaluation rig).
        sources: 2D training data already read from keypoint files (:class:`TrackSources`;
            ``posenet3d adapt`` reads its inputs with the lift options); default: from
            ``data.tracks`` / ``critic.real_tracks`` when set (:func:`track_sources`).

    For the self-supervised stages the 3D clips are projected to 2D by
    :func:`lifting.data.project_clips` and only that 2D reaches the stage (3D is read only for
    validation). With ``data.tracks`` or ``critic.real_tracks`` they get their 2D from keypoint
    files instead (:func:`track_sources`).

    Raises:
        ValueError: unknown kind, or data errors from the loader.
    """
    if kind == "image":
        from .image import build_image_stage

        return build_image_stage(cfg)
    lifters = {"teacher": TeacherStage, "student": StudentStage, "finetune": FinetuneStage}
    if kind not in (*lifters, "supervised"):
        raise ValueError(f"unknown training stage {kind!r}; choose teacher, student, finetune, supervised or image")
    if kind in lifters and (sources is not None or cfg.data.tracks or cfg.critic.real_tracks):
        if validation and cfg.data.npz and clips is None:  # read once: validation and data.mix share it
            clips = load_mocap_npz(cfg.data.npz)
        sources = sources if sources is not None else track_sources(cfg, clips)
        stage = lifters[kind](cfg, sources.sampler, sources.real_pool)
        stage.val_tracks = sources.val  # held-out tracks, 2D only
        if validation and clips is not None:
            _attach_val_views(stage, cfg, clips)
        return stage
    clips = clips if clips is not None else load_mocap_npz(cfg.data.npz)
    train_ids = split_clips(clips.seq_names, cfg.data.train_split)
    if not len(train_ids):
        raise ValueError(f"data.train_split={cfg.data.train_split!r}: no clips of {cfg.data.npz} in that split")
    train = clips.select(train_ids)
    window, views, seed = cfg.model.window, cfg.data.n_views, cfg.seed
    heights, balance = tuple(cfg.data.camera_height), cfg.data.balance
    if kind in lifters:
        sampler = WindowSampler(project_clips(train, views, seed, height_range=heights, synth=synth_settings(cfg)),
                                window, balance)
        stage = lifters[kind](cfg, sampler)
    else:
        stage = SupervisedStage(cfg, SupervisedWindows(train, window, views, seed, balance, heights,
                                                       synth_settings(cfg)))
    if validation:
        _attach_val_views(stage, cfg, clips)
    return stage


def _attach_val_views(stage, cfg: TrainConfig, clips: MocapClips) -> None:
    """``stage.val_views``: the ``data.val_split`` clips (at most ``data.val_max_clips``) through
    the evaluation rig, or ``None`` when the split is empty."""
    ids = split_clips(clips.seq_names, cfg.data.val_split)
    if cfg.data.val_max_clips > 0:
        ids = ids[:: max(1, len(ids) // cfg.data.val_max_clips)][: cfg.data.val_max_clips]
    stage.val_views = eval_views(clips.select(ids)) if len(ids) else None


# --- training on the user's own keypoint files (data.tracks / critic.real_tracks) ------------

@dataclass(frozen=True)
class TrackSources:
    """The 2D data of a self-supervised stage trained on keypoint files (no 3D anywhere).

    Attributes:
        sampler: training windows (:class:`lifting.data.WindowSampler`, or a
            :class:`lifting.track_data.MixedSampler` of tracks and mocap projections).
        real_pool: the 2D critic's real poses (:class:`lifting.track_data.RealPosePool`), or
            None for the sampler's own.
        val: the 2D windows of the 3D-free validation (:func:`validate_2d`: held-out tracks,
            :class:`lifting.data.Projected2D`), or None for no validation.
    """

    sampler: object
    real_pool: RealPosePool | None
    val: Projected2D | None


def track_sources(cfg: TrainConfig, clips: MocapClips | None = None) -> TrackSources:
    """The 2D sources of a self-supervised stage when ``data.tracks`` or
    ``critic.real_tracks`` is set (:class:`TrackSources`; ``val`` the held-out tracks).

    ``data.tracks`` (files/folders, :func:`lifting.track_data.load_track_2d` with
    ``data.tracks_fps``, ``data.tracks_conf_threshold``, ``data.val_tracks``) alone, or mixed
    with the ``data.npz`` projections by ``data.mix`` (``[w_tracks, w_npz]``; ``data.npz``
    null = tracks alone). ``critic.real_tracks`` gives the critic's real poses; with tracks
    and no ``critic.real_tracks`` the training tracks' own poses are the reals (masked like
    every fake, :class:`lifting.track_data.RealPosePool`), never zero-filled joints.

    Raises:
        ValueError: too little usable 2D, unreadable files.
    """
    window, seed, thr = cfg.model.window, cfg.seed, cfg.data.tracks_conf_threshold
    sources, split = [], None
    if cfg.data.tracks:
        split = load_track_2d(list(cfg.data.tracks), TrackReading(fps=cfg.data.tracks_fps, conf_threshold=thr),
                              window=window, val_fraction=cfg.data.val_tracks, seed=seed)
        sources.append(WindowSampler(split.train, window, "none"))
    if cfg.data.npz and (not sources or cfg.data.mix):
        clips = clips if clips is not None else load_mocap_npz(cfg.data.npz)
        train = clips.select(split_clips(clips.seq_names, cfg.data.train_split))
        sources.append(WindowSampler(project_clips(train, cfg.data.n_views, seed,
                                                   height_range=tuple(cfg.data.camera_height),
                                                   synth=synth_settings(cfg)),
                                     window, cfg.data.balance))
    # data.mix ([w_tracks, w_npz], with both sources) is checked by trainers.config on load
    sampler = MixedSampler(sources, list(cfg.data.mix)) if len(sources) > 1 else sources[0]
    if cfg.critic.real_tracks:
        pool = RealPosePool(read_pose_pool(list(cfg.critic.real_tracks), conf_threshold=thr, window=window), window)
    else:
        pool = RealPosePool(split.train, window) if split is not None else None
    return TrackSources(sampler, pool, split.val if split is not None else None)


@torch.no_grad()
def validate_2d(stage, val: Projected2D, n: int = 1024, seed: int = 0, model=None) -> dict[str, float]:
    """3D-free validation of a stage's model (or ``model``: e.g. the co-trained teacher of a
    fine-tuning stage) on held-out 2D windows ``val`` (the same draws every call).

    Returns (floats, lower is better):
        ``heldout_joint_2d``: two random observed non-root joints per window are hidden; the
        mean 2D distance between where the model puts them (its lift projected back) and where
        the detector saw them, in units of the person's 2D RMS size (x 100 = % of the size).
        ``visible_joint_2d``: the same for the joints it was given (how well it follows its input).
        ``flip_3d`` (teachers): mean 3D distance (normalised units) between the lift and the
        mirrored-back lift of the mirrored input (left/right swapped): 0 for a lifter that
        treats both sides alike.
        ``cycle_2d`` / ``cycle_3d`` / ``adv`` (teacher stages only): the stage-1 terms (Chen et
        al. CVPR 2019 Eq. 4-5, and the LSGAN generator loss against the stage's critic) on the
        clean held-out input.

    Raises:
        ValueError: ``val`` has no window of the model's length.
    """
    model = stage.lifter if model is None else model
    window, root = stage.window, stage.root
    gen = torch.Generator(device=stage.device).manual_seed(seed)
    b = WindowSampler(val, window).to(stage.device).sample(n, gen)
    kp, mask = b["keypoints_2d"], b["mask"]
    order = torch.rand(mask.shape[0], mask.shape[2], generator=gen, device=stage.device)
    order = torch.where(mask.all(1), order, torch.full_like(order, 2.0))  # only joints observed all window
    order[:, root] = 2.0
    hide = order.argsort(1).argsort(1) < 2
    hide &= mask.all(1)
    m_in = mask & ~hide[:, None]
    x_in, scale = normalize_2d(kp, m_in, root, per_window=window > 1)
    x_true = (kp - kp[..., root:root + 1, :]) / scale[..., None]
    was, rng = model.training, stage.generator.get_state()  # the critic's masks draw from it: restored below
    model.eval()
    try:
        out = model(x_in, m_in)
        proj = out.project() if model.outputs_smpl else project_normalized(out)
        err = (proj - x_true).norm(dim=-1)
        h = hide[:, None].expand_as(err)
        vis = m_in.expand_as(err)
        res = {"heldout_joint_2d": float(err[h].mean()) if bool(h.any()) else float("nan"),
               "visible_joint_2d": float(err[vis].mean()) if bool(vis.any()) else float("nan")}
        if not model.outputs_smpl:
            res["flip_3d"] = _flip_disagreement(model, x_in, m_in, out)
            x_full, _ = normalize_2d(kp, mask, root, per_window=window > 1)
            R = random_view_rotation((mask.shape[0],), elevation_max=math.radians(stage.cfg.views.elevation_max_deg),
                                     generator=gen, device=stage.device)
            terms, _, _ = teacher_terms(model, stage._adv_critic, Draws(x_full, x_full, mask, mask, R), stage.cfg, root)
            res |= {k: float(terms[k][1]) for k in ("cycle_2d", "cycle_3d", "adv")}
    finally:
        model.train(was)
        stage.generator.set_state(rng)
    return res


def _flip_disagreement(model, x_in: torch.Tensor, m_in: torch.Tensor, out: torch.Tensor) -> float:
    """Mean 3D distance between ``out`` (the lift of ``x_in (B, T, J, 2)``) and the lift of the
    mirrored input, mirrored back (:func:`lifting.inference.mirror_permutation`)."""
    from lifting.inference import mirror_permutation

    perm = mirror_permutation(x_in.shape[-2])
    sign2, sign3 = torch.tensor([-1.0, 1.0], device=x_in.device), torch.tensor([-1.0, 1.0, 1.0], device=x_in.device)
    back = model(x_in[..., perm, :] * sign2, m_in[..., perm])[..., perm, :] * sign3
    return float((back - out).norm(dim=-1).mean())
