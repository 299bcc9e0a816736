"""Critics on 2D poses.

:class:`PoseCritic2D` scores a normalised 2D window ``(B, T, J, 2)``: realism of each pose
(coordinates plus the kinematic-chain-space Gram matrix of its bones, Wandt & Rosenhahn
RepNet, CVPR 2019, Eq. 3-4, here on 2D bones) and, for ``T > 1``, of the motion (frame
differences) — the 2D pose/motion critic of PoseNet3D (arXiv 2003.03473, Sec. 3.1) and the
discriminator of Chen et al. CVPR 2019 (Sec. 3.3). Trained with the least-squares GAN
objective (Mao et al. ICCV 2017, Eq. 2), see :mod:`lifting.losses`.
"""
from __future__ import annotations

import torch
from torch import nn

from .skeletons import Skeleton
from .teacher import ResidualMLP

__all__ = ["PoseCritic2D"]


class PoseCritic2D(nn.Module):
    """2D realism critic.

    Args:
        skeleton: joint set (its ``bones()`` define the KCS features).
        window: frames per window T.
        width, n_blocks: MLP size.

    Forward: ``x (B, T, J, 2)`` -> ``scores (B,)`` (unbounded; LSGAN targets 1 real / 0 fake).
    """

    def __init__(self, skeleton: Skeleton, window: int = 1, width: int = 256, n_blocks: int = 2):
        super().__init__()
        bones = skeleton.bones()
        child = torch.tensor([c for c, _ in bones])
        parent = torch.tensor([p for _, p in bones])
        self.register_buffer("child", child, persistent=False)
        self.register_buffer("parent", parent, persistent=False)
        nb = len(bones)
        iu = torch.triu_indices(nb, nb)
        self.register_buffer("iu", iu, persistent=False)
        J = skeleton.num_joints
        self.window = window
        feat = window * (J * 2 + iu.shape[1]) + (window - 1) * J * 2
        self.mlp = ResidualMLP(feat, 1, width, n_blocks)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, J, 2)`` -> ``(B, F)``: coordinates, 2D KCS Gram entries, velocities."""
        B, T = x.shape[:2]
        b = x[:, :, self.child] - x[:, :, self.parent]  # (B, T, nb, 2)
        gram = b @ b.transpose(-1, -2)  # (B, T, nb, nb)
        parts = [x.reshape(B, -1), gram[:, :, self.iu[0], self.iu[1]].reshape(B, -1)]
        if T > 1:
            parts.append((x[:, 1:] - x[:, :-1]).reshape(B, -1) * 4.0)
        return torch.cat(parts, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.features(x)).squeeze(-1)
