"""Geometry shared by data, models and evaluation: 2D normalisation, the lifting model's
perspective camera, random views and reprojection.

Conventions: channels last ``(..., J, C)``; camera frame x right, y down, z forward
(OpenCV); lifted poses live in *normalised units* in which the input 2D pose has unit RMS
joint distance from the root and the root sits at depth ``c`` (default 10) on the optical
axis (Chen et al. CVPR 2019, ElePose CVPR 2022: fixed root depth ``c = 10``).
"""
from __future__ import annotations

import math

import torch

__all__ = [
    "normalize_2d",
    "lift_depths",
    "project_normalized",
    "random_view_rotation",
    "rms_scale",
    "check_finite",
]

ROOT_DEPTH = 10.0


def check_finite(name: str, x: torch.Tensor) -> None:
    """Raise ``ValueError`` naming ``name`` if ``x`` has NaN or inf (with the count)."""
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        raise ValueError(f"{name} contains {int(bad.sum())} non-finite values (NaN/inf)")


def rms_scale(x: torch.Tensor, mask: torch.Tensor | None = None, dims: tuple[int, ...] = (-1,)) -> torch.Tensor:
    """Root-mean-square joint norm.

    Args:
        x: ``(..., J, C)`` root-relative coordinates.
        mask: ``(..., J)`` joints to include (default all).
        dims: joint-axis dims of ``x.norm(dim=-1)`` to average over; ``(-1,)`` per frame,
            ``(-2, -1)`` per window for ``(..., T, J, C)`` input.

    Returns:
        Scale with the averaged dims kept as size 1, e.g. ``(..., 1)``; clamped to >= 1e-6.
    """
    sq = (x * x).sum(-1)
    if mask is None:
        mask = torch.ones_like(sq)
    mask = mask.to(sq.dtype)
    num = (sq * mask).sum(dim=dims, keepdim=True)
    den = mask.sum(dim=dims, keepdim=True).clamp_min(1.0)
    return (num / den).clamp_min(1e-12).sqrt().clamp_min(1e-6)


def normalize_2d(
    keypoints_2d: torch.Tensor,
    mask: torch.Tensor,
    root_index: int,
    per_window: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Root-centre 2D keypoints and divide by their RMS joint distance from the root.

    Args:
        keypoints_2d: ``(..., J, 2)`` pixels (or any consistent unit).
        mask: ``(..., J)`` bool, visible joints; the root must be visible.
        root_index: index of the root joint.
        per_window: if True, the input is ``(..., T, J, 2)`` and one scale is shared by all T
            frames of a window (motion stays consistent); otherwise one scale per frame.

    Returns:
        ``(x (..., J, 2), scale)`` with invisible joints set to 0 and ``scale`` in input units
        per normalised unit, shaped ``(..., 1)`` per frame or ``(..., 1, 1)`` per window.

    Raises:
        ValueError: the root is not visible in some frame.
    """
    mask = mask.bool()
    if not bool(mask[..., root_index].all()):
        raise ValueError(f"{int((~mask[..., root_index]).sum())} frames have no visible root joint")
    x = keypoints_2d - keypoints_2d[..., root_index : root_index + 1, :]
    x = torch.where(mask[..., None], x, torch.zeros((), dtype=x.dtype, device=x.device))
    scale = rms_scale(x, mask, dims=(-2, -1) if per_window else (-1,))
    return x / scale[..., None], scale


def lift_depths(
    x: torch.Tensor, depth: torch.Tensor, root_index: int, c: float = ROOT_DEPTH
) -> torch.Tensor:
    """Back-project normalised 2D with per-joint depth offsets to root-relative 3D.

    The lifting model of Chen et al. (CVPR 2019, Sec. 3.1) and ElePose (CVPR 2022, Eq. 1):
    ``z_i = max(1, c + d_i - d_root)``, ``X_i = (x_i z_i / c, y_i z_i / c, z_i)``, then the
    root ``(0, 0, c)`` is subtracted. Subtracting ``d_root`` pins the root at depth ``c`` so
    that :func:`project_normalized` of the result returns ``x`` exactly.

    Args:
        x: ``(..., J, 2)`` normalised 2D (root at 0).
        depth: ``(..., J)`` predicted depth offsets (normalised units).

    Returns:
        ``(..., J, 3)`` root-relative 3D in normalised units.
    """
    d = depth - depth[..., root_index : root_index + 1]
    z = (c + d).clamp_min(1.0)
    xy = x * (z / c)[..., None]
    out = torch.cat([xy, (z - c)[..., None]], dim=-1)
    return out


def project_normalized(joints_3d: torch.Tensor, c: float = ROOT_DEPTH) -> torch.Tensor:
    """Perspective projection of root-relative 3D placed with its root at depth ``c``.

    ``y = c * X_xy / max(X_z + c, 1)`` (focal length ``c`` so that a point at the root depth
    keeps its size). Args: ``joints_3d (..., J, 3)``. Returns ``(..., J, 2)``.
    """
    z = (joints_3d[..., 2:3] + c).clamp_min(1.0)
    return c * joints_3d[..., :2] / z


def random_view_rotation(
    batch_shape: tuple[int, ...],
    *,
    elevation_max: float = math.pi / 9,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Random virtual-view rotations ``R = R_x(elev) R_y(azim)`` in the camera frame, with
    ``azim ~ U[-pi, pi]`` and ``elev ~ U[-elevation_max, elevation_max]`` (Chen et al.
    CVPR 2019 Sec. 3.2; ElePose code uses pi/9 for the elevation range).

    Returns:
        ``(*batch_shape, 3, 3)`` rotation matrices (roma, extrinsic "yx" Euler angles).
    """
    import roma  # here, not at module import: roma imports torch._dynamo (~1 s)
    u = torch.rand(*batch_shape, 2, generator=generator, device=device, dtype=dtype)
    azim = (2 * u[..., 0] - 1) * math.pi
    elev = (2 * u[..., 1] - 1) * elevation_max
    # extrinsic y then x: R = R_x(elev) @ R_y(azim)
    return roma.euler_to_rotmat("yx", torch.stack([azim, elev], dim=-1))


def about_body_axis(R: torch.Tensor, joints_3d: torch.Tensor, skeleton, max_tilt: float = math.radians(65)) -> torch.Tensor:
    """Turn camera-frame view rotations into the same rotations about the lifted body's own
    up axis: ``A^T R A``, with ``A`` the smallest rotation taking the body's up direction (the
    window-mean pelvis -> thorax direction) to the camera's up (-y), its tilt limited to
    ``max_tilt``.

    For a level camera ``A`` is about the identity and nothing changes; for a raised camera the
    random view keeps the camera's elevation relative to the body, so the 2D critic compares
    the random views with real views of the same kind (the random-rotation cycle of Chen et al.
    CVPR 2019 assumes the camera's y axis is the body's vertical; ElePose CVPR 2022 Sec. 3.3
    handles raised cameras by predicting the elevation instead).

    Args:
        R: ``(B, 3, 3)`` view rotations (:func:`random_view_rotation`).
        joints_3d: ``(B, T, J, 3)`` lifted root-relative joints, camera frame (y down);
            used without gradient.
        skeleton: the joint set (needs ``pelvis`` and ``thorax``).

    Returns:
        ``(B, 3, 3)`` rotations.
    """
    import roma  # here, not at module import: roma imports torch._dynamo (~1 s)
    with torch.no_grad():
        X = joints_3d.detach().float()
        up = (X[..., skeleton.index("thorax"), :] - X[..., skeleton.index("pelvis"), :]).mean(1)  # (B, 3)
        up = up / up.norm(dim=-1, keepdim=True).clamp_min(1e-9)
        target = torch.tensor([0.0, -1.0, 0.0], device=up.device, dtype=up.dtype).expand_as(up)
        axis = torch.cross(up, target, dim=-1)
        sin = axis.norm(dim=-1, keepdim=True)
        angle = torch.atan2(sin, (up * target).sum(-1, keepdim=True)).clamp_max(max_tilt)
        A = roma.rotvec_to_rotmat(axis / sin.clamp_min(1e-9) * angle).to(R.dtype)
    return A.transpose(-1, -2) @ R @ A
