"""The teacher lifter (PoseNet3D stage 1): normalised 2D keypoints -> root-relative 3D.

Architecture: a residual MLP (Martinez et al. ICCV 2017; width/blocks configurable) over a
window of ``T`` frames. Per joint it predicts a depth offset ``d`` (and a 2D position used
only for joints that are masked in the input); the 3D pose follows the perspective lifting
model of Chen et al. CVPR 2019 / ElePose CVPR 2022 (:func:`lifting.geometry.lift_depths`),
so the visible joints reproject exactly onto the input.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .geometry import ROOT_DEPTH, lift_depths

__all__ = ["ResidualMLP", "Lifter", "ConfigField", "MAX_WINDOW", "MAX_WIDTH", "MAX_BLOCKS"]

#: largest window (frames) a stored model config may ask for (VideoPose3D's largest
#: receptive field is 243 frames; this leaves room without allowing absurd inputs)
MAX_WINDOW = 1023
#: widest residual MLP a stored config may ask for (the paper's models use 1024)
MAX_WIDTH = 8192
#: most residual blocks a stored config may ask for (the paper's models use 2-4)
MAX_BLOCKS = 64


@dataclass(frozen=True)
class ConfigField:
    """Type and range of one constructor argument stored in a checkpoint's ``model_config``
    (checked by :func:`lifting.lifters.check_model_config` before any module is built).

    Attributes:
        kind: ``int``, ``float``, ``bool`` or ``str`` (``bool`` is not accepted as ``int``).
        lo, hi: inclusive range for numbers (``None``: unbounded).
        odd: the value must be odd (centred temporal windows).
    """

    kind: type
    lo: float | None = None
    hi: float | None = None
    odd: bool = False


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


class Lifter(nn.Module):
    """2D -> 3D lifter over windows of ``window`` frames.

    Args:
        num_joints: J. window: T (1 = single-frame model). width, n_blocks: MLP size.
        root_index: root joint index (pelvis). root_depth: ``c`` of the lifting model.
        refine_visible: if True the 2D of visible joints is refined by a predicted offset
            (denoising) before back-projection; if False visible joints keep their input 2D
            exactly (the lift then reprojects onto the input).

    Forward:
        ``x (B, T, J, 2)`` normalised 2D (:func:`lifting.geometry.normalize_2d`),
        ``mask (B, T, J)`` bool visible joints (masked joints are zeroed in the input and
        their 2D position is predicted) -> ``joints_3d (B, T, J, 3)`` root-relative, in the
        same normalised units as ``x``.

    Raises:
        ValueError: input of the wrong shape (names the expected one).
    """

    #: the stored ``config``'s fields (see :class:`ConfigField`)
    config_fields = {
        "num_joints": ConfigField(int, 1, 256), "window": ConfigField(int, 1, MAX_WINDOW, odd=True),
        "width": ConfigField(int, 1, MAX_WIDTH), "n_blocks": ConfigField(int, 0, MAX_BLOCKS),
        "root_index": ConfigField(int, 0, 255), "root_depth": ConfigField(float, 1e-3, 1e3),
        "refine_visible": ConfigField(bool),
    }

    def __init__(
        self,
        num_joints: int = 16,
        window: int = 1,
        width: int = 512,
        n_blocks: int = 3,
        root_index: int = 0,
        root_depth: float = ROOT_DEPTH,
        refine_visible: bool = False,
    ):
        super().__init__()
        self.num_joints, self.window, self.root_index, self.root_depth = num_joints, window, root_index, root_depth
        self.refine_visible = refine_visible
        self.config = dict(num_joints=num_joints, window=window, width=width, n_blocks=n_blocks,
                           root_index=root_index, root_depth=root_depth, refine_visible=refine_visible)
        self.mlp = ResidualMLP(window * num_joints * 3, window * num_joints * 3, width, n_blocks, out_scale=0.1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        B = x.shape[0]
        if x.shape[1:] != (self.window, self.num_joints, 2):
            raise ValueError(
                f"lifter expects keypoints of shape (B, {self.window}, {self.num_joints}, 2), got {tuple(x.shape)}"
            )
        if mask is None:
            mask = torch.ones(x.shape[:-1], dtype=torch.bool, device=x.device)
        m = mask.to(x.dtype)[..., None]
        feats = torch.cat([x * m, m], dim=-1).reshape(B, -1)
        out = self.mlp(feats).reshape(B, self.window, self.num_joints, 3).to(x.dtype)
        visible_xy = x + out[..., :2] if self.refine_visible else x
        xy = torch.where(mask[..., None].bool(), visible_xy, out[..., :2])
        xy = xy - xy[..., self.root_index : self.root_index + 1, :]
        return lift_depths(xy, out[..., 2], self.root_index, self.root_depth)

    @classmethod
    def from_config(cls, config: dict) -> "Lifter":
        """Build from the ``config`` dict stored in checkpoints (validate it first with
        :func:`lifting.lifters.check_model_config`)."""
        return cls(**config)

