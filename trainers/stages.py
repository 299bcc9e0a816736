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

import torch
from omegaconf import DictConfig

from lifting import losses
from lifting.data import MocapClips, SupervisedWindows, WindowSampler, load_mocap_npz, project_clips, split_clips
from lifting.discriminators import PoseCritic2D
from lifting.geometry import normalize_2d, project_normalized, random_view_rotation, rms_scale
from lifting.skeletons import CANON16
from lifting.teacher import Lifter

__all__ = ["resolve_device", "TeacherStage", "StudentStage", "SupervisedStage", "build_stage", "augment_2d", "build_lifter"]


def build_lifter(cfg: DictConfig) -> Lifter:
    """Lifter sized by ``cfg.model`` for the canonical joint set, initialised from
    ``cfg.model.init_checkpoint`` when given.

    Raises:
        ValueError: the init checkpoint is unreadable or its architecture differs.
    """
    model = Lifter(CANON16.num_joints, int(cfg.model.window), int(cfg.model.width), int(cfg.model.n_blocks),
                   CANON16.root_index, refine_visible=bool(cfg.model.refine_visible))
    init = cfg.model.get("init_checkpoint")
    if init:
        from lifting.lift import load_lifter

        src, _ = load_lifter(init)
        if src.config != model.config:
            raise ValueError(f"model.init_checkpoint {init}: architecture {src.config} != configured {model.config}")
        model.load_state_dict(src.state_dict())
    return model


def augment_2d(kp: torch.Tensor, mask: torch.Tensor, cfg: DictConfig, root: int, generator: torch.Generator):
    """Random joint dropout and 2D noise, as seen at inference on detector output.

    Args:
        kp: ``(B, T, J, 2)`` pixels (or already normalised 2D); mask: ``(B, T, J)`` bool.
        generator: on ``kp``'s device.

    Returns:
        ``(x_in (B, T, J, 2) normalised noisy input, m_in (B, T, J) bool, scale)`` where
        ``scale`` (``(B, T, 1)`` or ``(B, 1, 1)`` per window) is the normalisation divisor in
        ``kp`` units. Dropout masks the same joints in every frame of a window, never the
        root; noise sigma is ``U[0, noise_max]`` normalised units for a ``noise_prob``
        fraction of windows.
    """
    B, T, J = mask.shape
    dev = kp.device
    drop = torch.zeros(B, J, dtype=torch.bool, device=dev)
    if cfg.aug.drop_prob > 0 and cfg.aug.drop_max > 0:
        which = torch.rand(B, generator=generator, device=dev) < cfg.aug.drop_prob
        k = torch.randint(1, int(cfg.aug.drop_max) + 1, (B,), generator=generator, device=dev)
        order = torch.rand(B, J, generator=generator, device=dev)
        order[:, root] = 2.0  # never drop the root
        rank = order.argsort(dim=1).argsort(dim=1)
        drop = which[:, None] & (rank < k[:, None])
    m_in = mask & ~drop[:, None, :]
    x_in, scale = normalize_2d(kp, m_in, root, per_window=T > 1)
    if cfg.aug.noise_prob > 0 and cfg.aug.noise_max > 0:
        sigma = torch.rand(B, generator=generator, device=dev) * cfg.aug.noise_max
        sigma = sigma * (torch.rand(B, generator=generator, device=dev) < cfg.aug.noise_prob)
        noise = torch.randn(x_in.shape, generator=generator, device=dev) * sigma[:, None, None, None]
        noise[..., root, :] = 0.0
        x_in = x_in + noise * m_in[..., None]
    return x_in, m_in, scale


def _unit(x: torch.Tensor, per_window: bool) -> tuple[torch.Tensor, torch.Tensor]:
    s = rms_scale(x, dims=(-2, -1) if per_window else (-1,))
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


class _Stage:
    """Common parts: config, lifter, optimiser, schedule, autocast."""

    kind = "base"

    def __init__(self, cfg: DictConfig):
        self.cfg = cfg
        self.device = resolve_device(str(cfg.train.device))
        self.generator = torch.Generator(device=self.device).manual_seed(int(cfg.seed))
        torch.manual_seed(int(cfg.seed))
        self.lifter = self.build_model(cfg).to(self.device)
        self.root = CANON16.root_index
        self.window = int(cfg.model.window)
        self.opt = torch.optim.AdamW(self.lifter.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
        self.optimizers = [self.opt]

    def build_model(self, cfg: DictConfig) -> torch.nn.Module:
        """The trained network (stored in checkpoints as ``model``)."""
        return build_lifter(cfg)

    def lr_factor(self, step: int) -> float:
        """Cosine decay from 1 to ``min_lr_ratio`` over ``train.steps``."""
        t = min(1.0, step / max(1, int(self.cfg.train.steps)))
        r = float(self.cfg.train.min_lr_ratio)
        return r + (1 - r) * 0.5 * (1 + math.cos(math.pi * t))

    def set_lr(self, step: int) -> None:
        f = self.lr_factor(step)
        for opt in self.optimizers:
            for g in opt.param_groups:
                g.setdefault("base_lr", g["lr"])
                g["lr"] = g["base_lr"] * f

    def autocast(self):
        device_type = next(self.lifter.parameters()).device.type
        return torch.autocast(device_type, dtype=torch.bfloat16, enabled=bool(self.cfg.train.bf16))

    def _update(self, opt: torch.optim.Optimizer, loss: torch.Tensor, params) -> None:
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.train.grad_clip:
            torch.nn.utils.clip_grad_norm_(params, float(self.cfg.train.grad_clip))
        opt.step()

    def state_dict(self) -> dict:
        return {"lifter": self.lifter.state_dict(), "optimizers": [o.state_dict() for o in self.optimizers]}


class TeacherStage(_Stage):
    """Self-supervised teacher (no 3D). ``sampler`` must be a 2D-only
    :class:`lifting.data.WindowSampler`."""

    kind = "teacher"

    def __init__(self, cfg: DictConfig, sampler: WindowSampler):
        if not isinstance(sampler, WindowSampler):
            raise TypeError("the self-supervised teacher trains on a 2D-only WindowSampler")
        super().__init__(cfg)
        self.sampler = sampler.to(self.device)
        self.critic = PoseCritic2D(CANON16, self.window, int(cfg.critic.width), int(cfg.critic.n_blocks)).to(self.device)
        self.critic_opt = torch.optim.AdamW(self.critic.parameters(), lr=cfg.train.critic_lr,
                                            weight_decay=cfg.train.weight_decay)
        self.optimizers.append(self.critic_opt)

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One generator + one critic update on a batch of 2D windows
        (``keypoints_2d (B, T, J, 2)`` pixels, ``mask (B, T, J)``)."""
        cfg, T, root = self.cfg, self.window, self.root
        per_window = T > 1
        kp, mask = batch["keypoints_2d"], batch["mask"]
        B = kp.shape[0]
        x_full, _ = normalize_2d(kp, mask, root, per_window=per_window)
        x_in, m_in, _ = augment_2d(kp, mask, cfg, root, self.generator)
        w = cfg.loss
        with self.autocast():
            X = self.lifter(x_in, m_in).float()  # (B, T, J, 3)
            R = random_view_rotation((B,), elevation_max=math.radians(w.elevation_max_deg), generator=self.generator,
                                     device=self.device)
            Xr = torch.einsum("bij,btkj->btki", R, X)
            y, s_y = _unit(project_normalized(Xr), per_window)
            # the re-lift sees the new view with the same dropout/noise as real input: the
            # rotated pose is a known 3D target for it, so this teaches robustness with a
            # 3D-free pseudo label
            y_in, m_y, s_aug = augment_2d(y, torch.ones_like(mask), cfg, root, self.generator) if w.augment_relift \
                else (y, torch.ones_like(mask), torch.ones_like(s_y))
            s_y = s_y * s_aug
            Y = self.lifter(y_in, m_y).float()
            # 3D cycle: re-lifting the new view returns the rotated pose (Chen et al. Eq. 5)
            target_3d = Xr / s_y[..., None]
            l_cyc3 = losses.joint_distance(Y, target_3d)
            # 2D cycle: rotating the re-lift back and projecting gives the original 2D (Eq. 4)
            back = torch.einsum("bji,btkj->btki", R, Y * s_y[..., None])
            l_cyc2 = losses.joint_distance(_unit(project_normalized(back), per_window)[0], x_full)
            # reprojection of the first lift onto the clean, complete 2D (trains inpainting
            # of masked joints and denoising)
            l_rep = losses.joint_distance(_unit(project_normalized(X), per_window)[0], x_full)
            terms = {  # name: (weight, loss)
                "adv": (w.adv, losses.lsgan_generator(self.critic(y).float())),
                "cycle_3d": (w.cycle_3d, l_cyc3),
                "cycle_2d": (w.cycle_2d, l_cyc2),
                "reproject": (w.reproject, l_rep),
                "symmetry": (w.symmetry, losses.bone_symmetry(X, CANON16)),
            }
            if w.consistency > 0:
                # self-consistency: the lift of the dropped/noisy input matches the (frozen)
                # lift of the clean, complete 2D, both scale-normalised
                with torch.no_grad():
                    X_clean = self.lifter(x_full, mask).float()
                terms["consistency"] = (w.consistency, losses.joint_distance(
                    _unit(X, per_window)[0], _unit(X_clean, per_window)[0]))
            if T > 1:
                terms["bone_constancy"] = (w.bone_constancy, losses.bone_constancy(X, CANON16))
            if T > 2:
                terms["smoothness"] = (w.smoothness, losses.acceleration(X))
            total = sum(weight * loss for weight, loss in terms.values())
            out = {name: loss for name, (_, loss) in terms.items()}
        self._update(self.opt, total, self.lifter.parameters())
        with self.autocast():
            l_critic = losses.lsgan_critic(self.critic(x_full).float(), self.critic(y.detach()).float())
        self._update(self.critic_opt, l_critic, self.critic.parameters())
        out["critic"] = l_critic
        out["total"] = total
        return {k: float(v.detach()) for k, v in out.items()}

    def state_dict(self) -> dict:
        d = super().state_dict()
        d["critic"] = self.critic.state_dict()
        return d


class SupervisedStage(_Stage):
    """Supervised baseline: scale-free 3D loss against camera-frame ground truth."""

    kind = "supervised"

    def __init__(self, cfg: DictConfig, sampler: SupervisedWindows):
        super().__init__(cfg)
        self.sampler = sampler.to(self.device)

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        x_in, m_in, _ = augment_2d(batch["keypoints_2d"], batch["mask"], self.cfg, self.root, self.generator)
        with self.autocast():
            X = self.lifter(x_in, m_in).float()
            loss = losses.scale_free_3d(X, batch["joints_3d"])
        self._update(self.opt, loss, self.lifter.parameters())
        return {"supervised_3d": float(loss.detach()), "total": float(loss.detach())}


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

    Losses (weights in ``cfg.loss``), per batch of 2D windows:

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

    def __init__(self, cfg: DictConfig, sampler: WindowSampler):
        if not isinstance(sampler, WindowSampler):
            raise TypeError("the student trains on a 2D-only WindowSampler")
        from lifting.lift import load_lifter

        self.teacher, _ = load_lifter(cfg.student.teacher_checkpoint)
        if self.teacher.window != int(cfg.model.window):
            raise ValueError(f"student.teacher_checkpoint has window {self.teacher.window}, "
                             f"model.window is {int(cfg.model.window)}: they must match")
        self.teacher.requires_grad_(False).eval()
        super().__init__(cfg)
        self.teacher.to(self.device)
        self.sampler = sampler.to(self.device)
        self.critic = PoseCritic2D(CANON16, self.window, int(cfg.critic.width), int(cfg.critic.n_blocks)).to(self.device)
        self.critic_opt = torch.optim.AdamW(self.critic.parameters(), lr=cfg.train.critic_lr,
                                            weight_decay=cfg.train.weight_decay)
        self.optimizers.append(self.critic_opt)
        from lifting.body_model import SMPL_JOINT_NAMES

        idx = {n: i for i, n in enumerate(SMPL_JOINT_NAMES)}
        w = torch.ones(23)
        w[[idx[n] - 1 for n in _UNOBSERVED]] = float(cfg.loss.unobserved_prior) / max(float(cfg.loss.pose_prior), 1e-12)
        self.prior_weights = w.to(self.device)
        self.twist_joints = torch.tensor([idx[n] for n in _TWIST_CHILD], device=self.device)
        J = self.lifter.body_model.J_template
        axes = torch.stack([J[idx[c]] - J[idx[p]] for p, c in _TWIST_CHILD.items()])
        self.twist_axes = axes / axes.norm(dim=-1, keepdim=True)

    def build_model(self, cfg: DictConfig) -> torch.nn.Module:
        from lifting.body_model import BodyModel
        from lifting.student import Student

        bm = BodyModel(cfg.body_model.path, str(cfg.body_model.gender), int(cfg.body_model.num_betas))
        model = Student(bm, CANON16.num_joints, int(cfg.model.window), int(cfg.model.width), int(cfg.model.n_blocks),
                        int(cfg.body_model.num_betas), CANON16.root_index, bool(cfg.student.learn_marker_offsets))
        init = cfg.model.get("init_checkpoint")
        if init:  # e.g. continue distillation from the bundled student on new 2D data
            from lifting.lift import load_lifter

            src, _ = load_lifter(init, cfg.body_model.path)
            if getattr(src, "config", None) != model.config:
                raise ValueError(f"model.init_checkpoint {init}: architecture {getattr(src, 'config', None)} "
                                 f"!= configured {model.config}")
            model.load_state_dict(src.state_dict())
        return model

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One student + one critic update on 2D windows (``keypoints_2d (B, T, J, 2)``
        pixels, ``mask (B, T, J)``)."""
        cfg, T, root = self.cfg, self.window, self.root
        per_window = T > 1
        kp, mask = batch["keypoints_2d"], batch["mask"]
        B = kp.shape[0]
        x_full, _ = normalize_2d(kp, mask, root, per_window=per_window)
        x_in, m_in, _ = augment_2d(kp, mask, cfg, root, self.generator)
        w = cfg.loss
        with torch.no_grad(), self.autocast():
            X_t = self.teacher(x_full, mask).float()
        with self.autocast():
            out = self.lifter(x_in, m_in)
            J = out.joints_3d
            l_distill = losses.joint_distance(_unit(J, per_window)[0], _unit(X_t, per_window)[0])
            # not scale-normalised: this is what trains the camera scale (x_full has unit RMS)
            l_rep = losses.joint_distance(out.project(), x_full, mask)
            R = random_view_rotation((B,), elevation_max=math.radians(w.elevation_max_deg), generator=self.generator,
                                     device=self.device)
            Xr = torch.einsum("bij,btkj->btki", R, J * out.cam[..., :1, None])
            y, _ = _unit(project_normalized(Xr), per_window)
            twist = losses.twist_angle(out.body_pose[:, :, self.twist_joints - 1], self.twist_axes)
            terms = {
                "distill": (w.distill, l_distill),
                "reproject": (w.reproject, l_rep),
                "adv": (w.adv, losses.lsgan_generator(self.critic(y).float())),
                "betas": (w.betas, out.betas.square().sum(-1).mean()),
                "pose_prior": (w.pose_prior, losses.rotation_prior(out.body_pose, self.prior_weights)),
                "twist": (w.twist, twist.square().mean()),
                "marker_offsets": (w.marker_offsets, self.lifter.marker_offsets.square().sum(-1).mean()),
            }
            if T > 2:
                terms["smoothness"] = (w.smoothness, losses.acceleration(J))
            total = sum(weight * loss for weight, loss in terms.values())
            logs = {name: loss for name, (_, loss) in terms.items()}
        self._update(self.opt, total, [p for p in self.lifter.parameters() if p.requires_grad])
        with self.autocast():
            l_critic = losses.lsgan_critic(self.critic(x_full).float(), self.critic(y.detach()).float())
        self._update(self.critic_opt, l_critic, self.critic.parameters())
        logs["critic"] = l_critic
        logs["total"] = total
        return {k: float(v.detach()) for k, v in logs.items()}

    def state_dict(self) -> dict:
        d = super().state_dict()
        d["critic"] = self.critic.state_dict()
        return d


def build_stage(kind: str, cfg: DictConfig, clips: MocapClips | None = None):
    """Build the stage on the training split named in ``cfg.data``.

    Args:
        kind: ``teacher`` or ``supervised``.
        clips: the loaded ``cfg.data.npz`` (loaded here if not given).

    For ``teacher`` the 3D clips are projected to 2D by :func:`lifting.data.project_clips`
    and only that 2D reaches the stage.

    Raises:
        ValueError: unknown kind, or data errors from the loader.
    """
    if kind not in ("teacher", "student", "supervised"):
        raise ValueError(f"unknown training stage {kind!r}; choose teacher, student or supervised")
    clips = clips if clips is not None else load_mocap_npz(cfg.data.npz)
    train = clips.select(split_clips(clips.seq_names, cfg.data.train_split))
    window, views, seed = int(cfg.model.window), int(cfg.data.n_views), int(cfg.seed)
    heights, balance = tuple(cfg.data.camera_height), str(cfg.data.balance)
    if kind in ("teacher", "student"):
        sampler = WindowSampler(project_clips(train, views, seed, height_range=heights), window, balance)
        return TeacherStage(cfg, sampler) if kind == "teacher" else StudentStage(cfg, sampler)
    return SupervisedStage(cfg, SupervisedWindows(train, window, views, seed, balance, heights))
