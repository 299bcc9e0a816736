"""The teacher lifter (PoseNet3D stage 1): normalised 2D keypoints -> root-relative 3D.

Architecture: a residual MLP (Martinez et al. ICCV 2017; width/blocks configurable) over a
window of ``T`` frames. Per joint it predicts a depth offset ``d`` (and a 2D position used
only for joints that are masked in the input); the 3D pose follows the perspective lifting
model of Chen et al. CVPR 2019 / ElePose CVPR 2022 (:func:`lifting.geometry.lift_depths`),
so the visible joints reproject exactly onto the input.

Its hyperparameters are a :class:`TeacherConfig` (stored in checkpoints as ``model_config``,
validated field by field before a module is built); ``Lifter.from_config(config)`` builds it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ..geometry import ROOT_DEPTH, lift_depths
from ..skeletons import CANON16
from .base import ModelArgs, ModelConfigError, ModelInterface, arg

__all__ = ["ResidualMLP", "Lifter", "TeacherConfig", "check_canonical_joints", "MAX_WINDOW", "MAX_WIDTH", "MAX_BLOCKS",
           "input_features", "inflate_input_weights"]

#: largest window (frames) a stored model config may ask for (VideoPose3D's largest
#: receptive field is 243 frames; this leaves room without allowing absurd inputs)
MAX_WINDOW = 1023
#: widest residual MLP a stored config may ask for (the paper's models use 1024)
MAX_WIDTH = 8192
#: most residual blocks a stored config may ask for (the paper's models use 2-4)
MAX_BLOCKS = 64


@dataclass(frozen=True)
class MLPLifterArgs(ModelArgs):
    """The fields every residual-MLP lifter of 2D keypoint windows has (the teacher's and the
    SMPL student's configs extend it).

    Attributes:
        num_joints: J input joints (the canonical 16). window: T frames (odd; 1 = single-frame).
        width, n_blocks: residual MLP size. root_index: the input's root joint (pelvis).
        use_confidence: the detector score is a fourth input channel.
    """

    num_joints: int = arg(int, 16, 1, 256)
    window: int = arg(int, 1, 1, MAX_WINDOW, odd=True)
    width: int = arg(int, 512, 1, MAX_WIDTH)
    n_blocks: int = arg(int, 3, 0, MAX_BLOCKS)
    root_index: int = arg(int, 0, 0, 255)
    use_confidence: bool = arg(bool, False)

    def check(self, source: str = "checkpoint") -> None:
        """Raises ModelConfigError: not the canonical 16 joints, or a root outside them."""
        check_canonical_joints(self.num_joints, self.root_index, source)


@dataclass(frozen=True)
class TeacherConfig(MLPLifterArgs):
    """The teacher lifter's hyperparameters (stored as a checkpoint's ``model_config``; old
    teacher checkpoints have no ``arch`` entry). Ranges are checked by
    :meth:`lifting.models.base.ModelArgs.from_dict` before any module is built.

    Attributes (besides :class:`MLPLifterArgs`'s):
        root_depth: ``c`` of the lifting model (normalised units).
        refine_visible: visible joints' 2D is refined by a predicted offset.
    """

    ARCH: ClassVar[str] = "teacher"

    root_depth: float = arg(float, ROOT_DEPTH, 1e-3, 1e3)
    refine_visible: bool = arg(bool, False)


def check_canonical_joints(num_joints: int, root_index: int, source: str) -> None:
    """A lifter's joint set must be :data:`lifting.skeletons.CANON16` (16 joints, the root one
    of them).

    Raises:
        ModelConfigError: naming ``source``."""
    if num_joints != CANON16.num_joints:
        raise ModelConfigError(f"{source}: model has {num_joints} joints, expected {CANON16.num_joints} (canon16)")
    if not 0 <= root_index < CANON16.num_joints:
        raise ModelConfigError(f"{source}: model_config.root_index {root_index} is not a joint of canon16")


def input_features(x: torch.Tensor, mask: torch.Tensor | None, conf: torch.Tensor | None,
                   use_confidence: bool) -> torch.Tensor:
    """Per-joint network input, flattened per window: ``(x, y, visible)`` or, for models with
    ``use_confidence``, ``(x, y, visible, confidence)``; masked joints are all zero.

    Args:
        x: ``(B, T, J, 2)`` normalised 2D. mask: ``(B, T, J)`` bool (None = all visible).
        conf: ``(B, T, J)`` detector scores in [0, 1] (None = 1 for visible joints; ignored
            without ``use_confidence``).

    Returns:
        ``(B, T * J * C)`` with ``C = 3`` or ``4``.

    Raises:
        ValueError: ``conf`` of another shape than ``mask``, or non-finite scores.
    """
    if mask is None:
        mask = torch.ones(x.shape[:-1], dtype=torch.bool, device=x.device)
    m = mask.to(x.dtype)[..., None]
    parts = [x * m, m]
    if use_confidence:
        if conf is None:
            c = m
        else:
            if conf.shape != mask.shape:
                raise ValueError(f"confidence of shape {tuple(conf.shape)} does not match the mask {tuple(mask.shape)}")
            c = conf.to(x.dtype).clamp(0, 1)[..., None] * m
        parts.append(c)
    return torch.cat(parts, dim=-1).reshape(x.shape[0], -1)


def inflate_input_weights(dst: nn.Linear, src: nn.Linear, window: int, src_window: int, channels: int,
                          src_channels: int, num_joints: int) -> None:
    """Initialise a first layer from a smaller model's: the source's weights go to the centre
    frame of the window (I3D-style "inflation" with a centre kernel, Carreira & Zisserman CVPR
    2017) and to its first ``src_channels`` channels; the other weights are zero, so the new
    model starts as the source model applied to the centre frame.

    Args:
        dst, src: ``Linear(window * J * channels, W)`` and ``Linear(src_window * J * src_channels, W)``.

    Raises:
        ValueError: incompatible sizes (``src_window`` must be 1 or ``window``).
    """
    if src_window not in (1, window) or src_channels > channels or dst.out_features != src.out_features:
        raise ValueError(f"cannot initialise a window-{window} x {channels}-channel layer from a window-{src_window} "
                         f"x {src_channels}-channel one of width {src.out_features} (need width {dst.out_features})")
    with torch.no_grad():
        w = torch.zeros(dst.out_features, window, num_joints, channels)
        sw = src.weight.reshape(src.out_features, src_window, num_joints, src_channels)
        if src_window == window:
            w[..., :src_channels] = sw
        else:
            w[:, window // 2, :, :src_channels] = sw[:, 0]
        dst.weight.copy_(w.reshape(dst.out_features, -1))
        dst.bias.copy_(src.bias)


class ResidualMLP(nn.Module):
    """``Linear(in, width)`` -> ``n_blocks`` x [Linear-LeakyReLU-Linear + skip, LeakyReLU]
    -> ``Linear(width, out)``. Inputs ``(B, in_dim)``, outputs ``(B, out_dim)``."""

    def __init__(self, in_dim: int, out_dim: int, width: int = 512, n_blocks: int = 3, out_scale: float = 1.0):
        super().__init__()
        self.inp = nn.Linear(in_dim, width)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(width, width), nn.LeakyReLU(0.2), nn.Linear(width, width)) for _ in range(n_blocks)
        )
        self.act = nn.LeakyReLU(0.2)
        self.out = nn.Linear(width, out_dim)
        with torch.no_grad():
            self.out.weight.mul_(out_scale)
            self.out.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.inp(x))
        for blk in self.blocks:
            h = self.act(h + blk(h))
        return self.out(h)


class Lifter(ModelInterface, nn.Module):
    """2D -> 3D lifter over windows of ``window`` frames.

    Args:
        num_joints: J. window: T (1 = single-frame model). width, n_blocks: MLP size.
        root_index: root joint index (pelvis). root_depth: ``c`` of the lifting model.
        refine_visible: if True the 2D of visible joints is refined by a predicted offset
            (denoising) before back-projection; if False visible joints keep their input 2D
            exactly (the lift then reprojects onto the input).
        use_confidence: the per-joint detector score is a fourth input channel
            (:func:`input_features`).

    Forward:
        ``x (B, T, J, 2)`` normalised 2D (:func:`lifting.geometry.normalize_2d`),
        ``mask (B, T, J)`` bool visible joints (masked joints are zeroed in the input and
        their 2D position is predicted), optional ``conf (B, T, J)`` detector scores in [0, 1]
        (read only by models with ``use_confidence``; default 1 for visible joints) -> ``joints_3d (B, T, J, 3)`` root-relative, in the
        same normalised units as ``x``.

    Raises:
        ValueError: input of the wrong shape (names the expected one).
    """

    config_class = TeacherConfig

    def __init__(
        self,
        num_joints: int = 16,
        window: int = 1,
        width: int = 512,
        n_blocks: int = 3,
        root_index: int = 0,
        root_depth: float = ROOT_DEPTH,
        refine_visible: bool = False,
        use_confidence: bool = False,
    ):
        super().__init__()
        self.args = TeacherConfig(num_joints=num_joints, window=window, width=width, n_blocks=n_blocks,
                                  root_index=root_index, root_depth=root_depth, refine_visible=refine_visible,
                                  use_confidence=use_confidence)
        self.num_joints, self.window, self.root_index, self.root_depth = num_joints, window, root_index, root_depth
        self.refine_visible, self.use_confidence = refine_visible, use_confidence
        self.in_channels = 4 if use_confidence else 3
        self.mlp = ResidualMLP(window * num_joints * self.in_channels, window * num_joints * 3, width, n_blocks,
                               out_scale=0.1)

    def init_from(self, src: "Lifter") -> None:
        """Start from another lifter's weights (``model.init_checkpoint``): the same
        architecture is copied; a single-frame source initialises a temporal model (every
        frame of the window predicted from the centre frame, :func:`inflate_input_weights`,
        output weights repeated per frame), a source without confidence input a model
        with it (the confidence weights start at zero), and a model that differs in
        ``refine_visible`` starts with zero 2D outputs (visible joints keep their input).

        Raises:
            ValueError: other differences (width, blocks, joints, root).
        """
        same = ("num_joints", "width", "n_blocks", "root_index", "root_depth")
        diff = {k: (src.config.get(k), self.config[k]) for k in same if src.config.get(k) != self.config[k]}
        if diff or src.window not in (1, self.window) or (src.use_confidence and not self.use_confidence):
            raise ValueError(f"cannot start a lifter {self.config} from {src.config}")
        if src.config == self.config:
            self.load_state_dict(src.state_dict())
            return
        state = {k: v for k, v in src.mlp.state_dict().items() if not k.startswith(("inp.", "out."))}
        self.mlp.load_state_dict(state, strict=False)
        inflate_input_weights(self.mlp.inp, src.mlp.inp, self.window, src.window, self.in_channels, src.in_channels,
                              self.num_joints)
        with torch.no_grad():
            reps = self.window // src.window
            self.mlp.out.weight.copy_(src.mlp.out.weight.repeat(reps, 1))
            self.mlp.out.bias.copy_(src.mlp.out.bias.repeat(reps))
            if self.refine_visible != src.refine_visible:  # 2D outputs change meaning: start at "keep the input"
                xy = torch.arange(self.mlp.out.out_features, device=self.mlp.out.bias.device) % 3 < 2
                self.mlp.out.weight[xy] = 0.0
                self.mlp.out.bias[xy] = 0.0

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, conf: torch.Tensor | None = None) -> torch.Tensor:
        B = x.shape[0]
        if x.shape[1:] != (self.window, self.num_joints, 2):
            raise ValueError(
                f"lifter expects keypoints of shape (B, {self.window}, {self.num_joints}, 2), got {tuple(x.shape)}"
            )
        if mask is None:
            mask = torch.ones(x.shape[:-1], dtype=torch.bool, device=x.device)
        feats = input_features(x, mask, conf, self.use_confidence)
        out = self.mlp(feats).reshape(B, self.window, self.num_joints, 3).to(x.dtype)
        visible_xy = x + out[..., :2] if self.refine_visible else x
        xy = torch.where(mask[..., None].bool(), visible_xy, out[..., :2])
        xy = xy - xy[..., self.root_index : self.root_index + 1, :]
        return lift_depths(xy, out[..., 2], self.root_index, self.root_depth)

    @classmethod
    def from_config(cls, config: TeacherConfig, body_model=None) -> "Lifter":
        """Build from a :class:`TeacherConfig` (``body_model`` is ignored: the common
        signature of :meth:`lifting.models.checkpoint.build_model`). Raises nothing."""
        return cls(**dataclasses.asdict(config))
