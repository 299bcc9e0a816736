"""Contextual Normalization (CoNorm) block.

OCHMR (Khirodkar et al., "Occluded Human Mesh Recovery", CVPR 2022, arXiv 2203.13349,
Sec. 3, Contextual Normalization): a small conv net reads the body-centre context
(contextual + instance centermaps, :mod:`occlusion.centermap`) and predicts a per-pixel scale
``s`` and bias ``b`` that modulate the normalised intermediate features of the top-down
backbone, ``s * Norm(x) + b`` (a SPADE-style spatially-adaptive modulation: Park et al.,
CVPR 2019, Sec. 3).

Our inference (the paper gives ``s * Norm(x) + b`` without an identity start): the block
predicts ``1 + s`` and maps the modulated features back with the input's own statistics,
``x' = sigma * ((1 + s) * xhat + b) + mu`` with ``xhat = (x - mu) / sigma``, and the two heads
are zero-initialised, so a fresh block is exactly the identity and can be inserted into an
ImageNet-pretrained backbone without changing its features.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CoNorm"]


class CoNorm(nn.Module):
    """Contextual Normalization block (OCHMR Sec. 3; see the module docstring).

    Context ``c (B, Cc, h', w')`` is resized bilinearly to the features' ``(H, W)``, passed
    through ``conv3x3 + ReLU`` (``hidden`` channels) and two ``conv3x3`` heads giving the
    per-pixel scale ``s`` and bias ``b`` ``(B, channels, H, W)``. Features are normalised per
    sample and channel over ``H, W`` (instance-norm statistics, ``mu`` and
    ``sigma = sqrt(var + eps)``, biased variance), and the output is
    ``x' = sigma * ((1 + s) * xhat + b) + mu``, computed as the equivalent
    ``x + s * (x - mu) + sigma * b`` (exactly ``x`` when ``s = b = 0``).

    Args:
        channels: feature channels ``C``.
        context_channels: context channels ``Cc`` (2: contextual and instance centermaps).
        hidden: channels of the shared conv layer.
        eps: variance floor of the normalisation.

    Raises:
        ValueError: non-positive channel counts.
    """

    def __init__(self, channels: int, context_channels: int = 2, hidden: int = 64, eps: float = 1e-5) -> None:
        super().__init__()
        for name, v in (("channels", channels), ("context_channels", context_channels), ("hidden", hidden)):
            if int(v) != v or v <= 0:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        self.channels, self.context_channels, self.eps = int(channels), int(context_channels), float(eps)
        self.shared = nn.Sequential(nn.Conv2d(self.context_channels, int(hidden), 3, padding=1), nn.ReLU(inplace=True))
        self.scale_head = nn.Conv2d(int(hidden), self.channels, 3, padding=1)
        self.bias_head = nn.Conv2d(int(hidden), self.channels, 3, padding=1)
        for head in (self.scale_head, self.bias_head):
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def modulation(self, x: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scale and bias maps ``(s, b)``, each ``(B, C, H, W)``, for features ``x (B, C, H, W)``
        and ``context (B, Cc, h', w')`` (resized bilinearly, ``align_corners=False``).

        Raises:
            ValueError: see :meth:`forward`."""
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != self.channels or not x.is_floating_point():
            raise ValueError(f"features must be a float tensor (B, {self.channels}, H, W), got "
                             f"{tuple(getattr(x, 'shape', ()))} {getattr(x, 'dtype', type(x).__name__)}")
        if not isinstance(context, torch.Tensor) or context.ndim != 4 or context.shape[1] != self.context_channels:
            raise ValueError(f"context must be a tensor (B, {self.context_channels}, h, w), got "
                             f"{tuple(getattr(context, 'shape', ()))}")
        if context.shape[0] != x.shape[0]:
            raise ValueError(f"batch mismatch: features have B = {x.shape[0]}, context has B = {context.shape[0]}")
        c = context.to(dtype=x.dtype)
        if c.shape[-2:] != x.shape[-2:]:
            c = F.interpolate(c, size=x.shape[-2:], mode="bilinear", align_corners=False)
        hid = self.shared(c)
        return self.scale_head(hid), self.bias_head(hid)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Modulate features ``x (B, C, H, W)`` by ``context (B, Cc, h', w')``; returns
        ``(B, C, H, W)``, same dtype as ``x``.

        Raises:
            ValueError: ``x`` not a float ``(B, C, H, W)`` tensor with ``C = channels``;
                ``context`` not ``(B, Cc, h', w')`` with ``Cc = context_channels``; batch
                sizes differ."""
        s, b = self.modulation(x, context)
        mu = x.mean(dim=(2, 3), keepdim=True)
        sigma = torch.sqrt(x.var(dim=(2, 3), keepdim=True, unbiased=False) + self.eps)
        return x + s * (x - mu) + sigma * b
