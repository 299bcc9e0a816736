"""Critics on 2D poses, and HMR's factorized discriminator on SMPL parameters.

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

from ..skeletons import Skeleton
from .teacher import ResidualMLP

__all__ = ["PoseCritic2D", "SMPLDiscriminator"]


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


class SMPLDiscriminator(nn.Module):
    """HMR's factorized adversarial prior on SMPL parameters (Kanazawa et al., "End-to-end
    Recovery of Human Shape and Pose", CVPR 2018, Sec. 3.3): one discriminator per joint
    rotation, one on the whole pose, one on the shape.

    Each of the 23 parent-relative rotation matrices goes through a shared per-joint embedding
    (the paper's 1x1 convolutions, 9 -> 32 -> 32 with ReLU); 23 per-joint heads score the
    embeddings, a full-pose head scores their concatenation (FC 1024 - FC 1024 - 1), and a
    shape head scores ``betas`` (FC 10 - 5 - 1). Trained with LSGAN (every score has target 1
    for real, 0 for fake).

    Forward: ``body_pose (N, 23, 3, 3)``, ``betas (N, num_betas)`` -> ``scores (N, 25)``
    (23 joints, full pose, shape).

    Raises:
        ValueError: inputs of the wrong shape.
    """

    def __init__(self, num_betas: int = 10, num_joints: int = 23, embed: int = 32, width: int = 1024):
        super().__init__()
        self.num_joints, self.num_betas = num_joints, num_betas
        self.embed = nn.Sequential(nn.Linear(9, embed), nn.ReLU(), nn.Linear(embed, embed), nn.ReLU())
        # 23 independent linear heads, as one batched weight
        self.joint_w = nn.Parameter(torch.randn(num_joints, embed) * embed ** -0.5)
        self.joint_b = nn.Parameter(torch.zeros(num_joints))
        self.pose_head = nn.Sequential(nn.Linear(num_joints * embed, width), nn.ReLU(), nn.Linear(width, width),
                                       nn.ReLU(), nn.Linear(width, 1))
        self.shape_head = nn.Sequential(nn.Linear(num_betas, 5), nn.ReLU(), nn.Linear(5, 1))

    def forward(self, body_pose: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
        N = body_pose.shape[0]
        if body_pose.shape[1:] != (self.num_joints, 3, 3) or betas.shape != (N, self.num_betas):
            raise ValueError(f"SMPLDiscriminator expects body_pose (N, {self.num_joints}, 3, 3) and betas "
                             f"(N, {self.num_betas}), got {tuple(body_pose.shape)} and {tuple(betas.shape)}")
        e = self.embed(body_pose.reshape(N, self.num_joints, 9))  # (N, 23, embed)
        joints = (e * self.joint_w).sum(-1) + self.joint_b  # (N, 23)
        pose = self.pose_head(e.reshape(N, -1))  # (N, 1)
        shape = self.shape_head(betas)  # (N, 1)
        return torch.cat([joints, pose, shape], dim=-1)
