"""Loss functions (pure; each cites its source). Shapes: ``(B, T, J, C)`` unless stated;
every loss returns a scalar tensor (mean over the batch)."""
from __future__ import annotations

import roma
import torch

from .geometry import rms_scale
from .skeletons import Skeleton

__all__ = [
    "lsgan_generator",
    "lsgan_critic",
    "joint_distance",
    "bone_lengths",
    "bone_symmetry",
    "bone_constancy",
    "scale_free_3d",
    "acceleration",
]


def lsgan_generator(fake_scores: torch.Tensor) -> torch.Tensor:
    """Least-squares GAN generator loss ``mean((D(fake) - 1)^2) / 2`` (Mao et al. ICCV 2017,
    Eq. 2). ``fake_scores (B,)``."""
    return 0.5 * ((fake_scores - 1.0) ** 2).mean()


def lsgan_critic(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Least-squares GAN critic loss ``(mean((D(real)-1)^2) + mean(D(fake)^2)) / 2`` (Mao et
    al. ICCV 2017, Eq. 2). ``real_scores (B,)``, ``fake_scores (B',)``."""
    return 0.5 * (((real_scores - 1.0) ** 2).mean() + (fake_scores**2).mean())


def joint_distance(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean Euclidean distance per joint ``||pred - target||`` over ``(..., J, C)``; with
    ``mask (..., J)`` only masked-in joints count. Used for the 2D and 3D cycle losses of
    Chen et al. CVPR 2019 (Eq. 4-5) and PoseNet3D (Sec. 3.1)."""
    d = (pred - target).pow(2).sum(-1).add(1e-12).sqrt()
    if mask is None:
        return d.mean()
    m = mask.to(d.dtype)
    return (d * m).sum() / m.sum().clamp_min(1.0)


def bone_lengths(joints: torch.Tensor, skeleton: Skeleton) -> torch.Tensor:
    """``(..., J, C)`` -> ``(..., n_bones)`` bone lengths along ``skeleton.bones()``."""
    child, parent = zip(*skeleton.bones())
    return (joints[..., list(child), :] - joints[..., list(parent), :]).norm(dim=-1)


def _mirror_bone_pairs(skeleton: Skeleton) -> list[tuple[int, int]]:
    pairs = dict(skeleton.mirror_pairs())
    bones = skeleton.bones()
    index = {b: k for k, b in enumerate(bones)}
    out = []
    for k, (c, p) in enumerate(bones):
        if c in pairs:
            mb = (pairs[c], pairs.get(p, p))
            if mb in index:
                out.append((k, index[mb]))
    return out


def bone_symmetry(joints_3d: torch.Tensor, skeleton: Skeleton) -> torch.Tensor:
    """Left/right bone-length symmetry ``mean |log(l_left / l_right)|`` over mirrored bones
    (a 3D-free anatomical prior; cf. the bone-length constraints of Dabral et al. ECCV 2018).
    ``joints_3d (..., J, 3)``."""
    pairs = _mirror_bone_pairs(skeleton)
    L = bone_lengths(joints_3d, skeleton).clamp_min(1e-6)
    a = torch.tensor([p[0] for p in pairs], device=L.device)
    b = torch.tensor([p[1] for p in pairs], device=L.device)
    return (L[..., a].log() - L[..., b].log()).abs().mean()


def bone_constancy(joints_3d: torch.Tensor, skeleton: Skeleton) -> torch.Tensor:
    """Bone lengths constant over a window: mean over bones of ``std_t(l) / mean_t(l)`` for
    ``joints_3d (B, T, J, 3)``, T > 1 (the temporal bone-length consistency used by Pavllo
    et al. CVPR 2019, Sec. 4, semi-supervised bone-length loss; here without 3D targets)."""
    L = bone_lengths(joints_3d, skeleton)  # (B, T, nb)
    return (L.std(dim=1) / L.mean(dim=1).clamp_min(1e-6)).mean()


def scale_free_3d(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Supervised loss after normalising each window to unit RMS joint norm:
    ``joint_distance(pred / rms(pred), target / rms(target))`` (the scale-normalised loss
    of Rhodin et al. CVPR 2018, Sec. 3.3, applied to root-relative poses ``(B, T, J, 3)``)."""
    sp = rms_scale(pred, dims=(-2, -1))[..., None]
    st = rms_scale(target, dims=(-2, -1))[..., None]
    return joint_distance(pred / sp, target / st)


def acceleration(joints: torch.Tensor) -> torch.Tensor:
    """Temporal smoothness: mean norm of the second difference ``X_{t+1} - 2 X_t + X_{t-1}``
    over ``joints (B, T, J, C)``, T >= 3 (the acceleration error of Kanazawa et al. CVPR 2019,
    Sec. 4, used here as a 3D-free penalty on jitter)."""
    acc = joints[:, 2:] - 2 * joints[:, 1:-1] + joints[:, :-2]
    return acc.pow(2).sum(-1).add(1e-12).sqrt().mean()


def rotation_prior(rotmats: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Pull rotations toward the identity (the body model's rest pose): mean of
    ``1 - cos(angle) = (3 - trace R) / 2`` (~ angle^2 / 2 for small angles; smooth at 0,
    unlike the geodesic angle). ``rotmats (..., K, 3, 3)``; optional per-rotation
    ``weights (K,)``. A 3D-free pose regulariser [inferred, in the spirit of the pose priors
    of SMPLify, Bogo et al. ECCV 2016]."""
    tr = rotmats.diagonal(dim1=-2, dim2=-1).sum(-1)
    pen = (3.0 - tr) / 2
    if weights is not None:
        pen = pen * weights
    return pen.mean()


def twist_angle(rotmats: torch.Tensor, axes: torch.Tensor) -> torch.Tensor:
    """Twist of each rotation about a unit axis (swing-twist decomposition: the twist is the
    quaternion's component along the axis, ``2 atan2(q_v . a, q_w)``).

    Args:
        rotmats: ``(..., K, 3, 3)``. axes: ``(K, 3)`` unit axes in the same frame.

    Returns:
        ``(..., K)`` signed twist angles in radians, in ``(-pi, pi]``.
    """
    q = roma.rotmat_to_unitquat(rotmats)  # (..., K, 4) XYZW
    sign = torch.where(q[..., 3:] < 0, -1.0, 1.0)
    q = q * sign
    along = (q[..., :3] * axes.to(q.dtype)).sum(-1)
    return 2 * torch.atan2(along, q[..., 3])
