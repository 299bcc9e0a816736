"""Virtual pinhole cameras for mocap clips: the fixed 4-camera evaluation rig of DESIGN.md §4
and random training cameras.

World frame: the shared mocap's Y up, floor at y = 0, metres. Camera frame: OpenCV (x right,
y down, z forward). ``X_cam = R (X_world - position)``; pixels ``p = f X_cam[:2] / X_cam[2] + c``.
NumPy (float64) because cameras are built once per clip during data preparation.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Cameras", "look_at", "eval_rig", "random_cameras", "RIG_FOCAL", "RIG_PRINCIPAL", "RIG_SIZE"]

RIG_FOCAL = 1145.0
RIG_PRINCIPAL = (500.0, 500.0)
RIG_SIZE = (1000, 1000)
RIG_HEIGHT = 1.6


@dataclass
class Cameras:
    """A batch of ``N`` pinhole cameras.

    Attributes:
        R: ``(N, 3, 3)`` world-to-camera rotations (det +1).
        position: ``(N, 3)`` camera centres in world metres.
        focal: ``(N,)`` focal lengths in pixels.
        principal: ``(N, 2)`` principal points in pixels.
    """

    R: np.ndarray
    position: np.ndarray
    focal: np.ndarray
    principal: np.ndarray

    def __len__(self) -> int:
        return len(self.R)

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points ``(T, J, 3)`` -> camera-frame points ``(N, T, J, 3)`` (metres)."""
        return np.einsum("nij,ntkj->ntki", self.R, points[None] - self.position[:, None, None, :])

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points ``(T, J, 3)`` -> pixels ``(N, T, J, 2)``.

        Raises:
            ValueError: a point lies at or behind a camera (depth <= 1 cm).
        """
        pc = self.to_camera(points)
        z = pc[..., 2:3]
        if np.any(z <= 0.01):
            raise ValueError("a joint lies behind or on a camera plane; move the cameras further away")
        return self.focal[:, None, None, None] * pc[..., :2] / z + self.principal[:, None, None, :]


def look_at(position: np.ndarray, target: np.ndarray, up=(0.0, 1.0, 0.0)) -> np.ndarray:
    """World-to-camera rotations for cameras at ``position (N, 3)`` looking at
    ``target (N, 3)`` with world ``up``; returns ``(N, 3, 3)`` with rows (right, down, forward).

    Raises:
        ValueError: the viewing direction is parallel to ``up`` or has zero length.
    """
    fwd = target - position
    n = np.linalg.norm(fwd, axis=-1, keepdims=True)
    if np.any(n < 1e-9):
        raise ValueError("camera position equals its target")
    fwd = fwd / n
    right = np.cross(fwd, np.asarray(up, dtype=fwd.dtype))
    rn = np.linalg.norm(right, axis=-1, keepdims=True)
    if np.any(rn < 1e-9):
        raise ValueError("camera looks straight along the up axis")
    right = right / rn
    down = np.cross(fwd, right)
    return np.stack([right, down, fwd], axis=-2)


def _clip_centre(clip_joints: np.ndarray, root_index: int) -> tuple[np.ndarray, float]:
    pelvis = clip_joints[:, root_index].astype(np.float64)
    centre = pelvis.mean(axis=0)
    horiz = pelvis[:, [0, 2]] - centre[[0, 2]]
    radius = float(np.sqrt((horiz**2).sum(-1)).max()) if len(pelvis) else 0.0
    return centre, radius


def eval_rig(clip_joints: np.ndarray, root_index: int, elevation_deg: float | None = None) -> Cameras:
    """The fixed evaluation rig of DESIGN.md §4 for one clip.

    Camera k (k = 0..3) stands ``d = max(5, R + 3)`` m horizontally from the clip's mean
    pelvis position (``R`` = largest horizontal pelvis distance from that mean) at azimuth
    ``45 + 90 k`` degrees (position ``centre + d (sin a, ., cos a)`` in the x-z plane),
    1.6 m above the floor, looking at the mean pelvis; focal 1145 px, principal point
    (500, 500), 1000 x 1000 px, no distortion.

    Args:
        clip_joints: ``(T, J, 3)`` world joints in metres (Y up).
        root_index: pelvis index in ``J``.
        elevation_deg: ``None`` = the DESIGN.md rig above; a number raises the four cameras
            (same horizontal distance) to that elevation above the mean pelvis (the raised
            "surveillance" variant of issue 15, e.g. 45).

    Returns:
        :class:`Cameras` with ``N = 4``.
    """
    centre, radius = _clip_centre(clip_joints, root_index)
    d = max(5.0, radius + 3.0)
    az = np.deg2rad(45.0 + 90.0 * np.arange(4))
    height = RIG_HEIGHT if elevation_deg is None else centre[1] + d * np.tan(np.deg2rad(elevation_deg))
    pos = np.stack([centre[0] + d * np.sin(az), np.full(4, height), centre[2] + d * np.cos(az)], -1)
    R = look_at(pos, np.repeat(centre[None], 4, 0))
    return Cameras(R, pos, np.full(4, RIG_FOCAL), np.tile(np.asarray(RIG_PRINCIPAL), (4, 1)))


def random_cameras(clip_joints: np.ndarray, root_index: int, n: int, rng: np.random.Generator,
                   height_range: tuple[float, float] = (0.6, 2.6)) -> Cameras:
    """Random training cameras for one clip (only their 2D projections are used).

    Azimuth ``U[0, 360)`` degrees, horizontal distance ``max(U[4, 9], R + 2)`` m from the
    mean pelvis, height ``U[*height_range]`` m (default 0.6-2.6 m, i.e. within ~15 degrees of
    horizontal; widen it for raised surveillance-style cameras), looking at the mean pelvis plus ``N(0, 0.3 m)``
    horizontal jitter (so the person is not always centred), focal ``U[700, 1600]`` px,
    principal point ``(500, 500)``.

    Args:
        clip_joints: ``(T, J, 3)`` world joints, metres. root_index: pelvis index.
        n: number of cameras. rng: NumPy random generator.

    Returns:
        :class:`Cameras` with ``N = n``.
    """
    centre, radius = _clip_centre(clip_joints, root_index)
    az = rng.uniform(0, 2 * np.pi, n)
    d = np.maximum(rng.uniform(4.0, 9.0, n), radius + 2.0)
    h = rng.uniform(height_range[0], height_range[1], n)
    target = centre[None] + np.stack([rng.normal(0, 0.3, n), np.zeros(n), rng.normal(0, 0.3, n)], -1)
    pos = np.stack([centre[0] + d * np.sin(az), h, centre[2] + d * np.cos(az)], -1)
    R = look_at(pos, target)
    return Cameras(R, pos, rng.uniform(700.0, 1600.0, n), np.tile(np.asarray(RIG_PRINCIPAL), (n, 1)))
