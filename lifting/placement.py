"""Where people are: the camera-frame root translation ``transl (T, 3)`` of a lifted track.

A lift is root-relative (pelvis at 0). Its metric joints and the 2D they came from fix where
the person stands in front of a pinhole camera, up to the camera's intrinsics: for joint
``X_j`` (camera frame, metres, root-relative) seen at pixel ``(u_j, v_j)``, the translation
``t`` satisfies ``u_j = fx (X_j + t_x) / (Z_j + t_z) + cx`` (and the same for ``v``). Multiplying
out gives two equations per joint that are linear in ``t`` (the algebraic error of the DLT,
Hartley & Zisserman, Multiple View Geometry, 2nd ed., Sec. 4.1); :func:`root_translation`
solves them per frame by weighted least squares over the observed joints, then smooths each
gap-free run with the second-difference penalty of :mod:`lifting.refine`.

Intrinsics come from a calibration file (:func:`read_camera`: Pose2Sim / anipose
``calib.toml``), ``--focal-px``, or a guess from the image size (:func:`guess_intrinsics`:
focal length = the image's longer side, principal point at the centre, i.e. a ~53 degree field
of view along the long side); the output records which. The person's metric size comes from
the lift (``--height`` for a teacher, the body model for a student): depth scales with it.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.linalg import solveh_banded

from .refine import _second_differences

__all__ = ["Intrinsics", "read_camera", "guess_intrinsics", "root_translation", "track_motion", "TRANSL_SMOOTH",
           "Floor", "fit_floor", "lowest_feet"]

TRANSL_SMOOTH = 10.0
"""Weight of the second-difference penalty on the translation (metres^2 per frame^2 against
the per-frame solution): depth from a person's 2D size is noisy frame to frame."""


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels: focal lengths ``fx, fy``, principal point ``cx, cy``, and
    ``source`` (how they were obtained, recorded in ``summary.json``)."""

    fx: float
    fy: float
    cx: float
    cy: float
    source: str

    def describe(self) -> dict:
        return {"focal_px": [round(self.fx, 2), round(self.fy, 2)], "principal_px": [round(self.cx, 2),
                round(self.cy, 2)], "source": self.source}


def guess_intrinsics(image_size: tuple[int, int]) -> Intrinsics:
    """Intrinsics guessed from ``(width, height)`` pixels: focal length = the longer side,
    principal point at the centre (no calibration; a phone's main camera is within ~15 %).

    Raises:
        ValueError: a non-positive size."""
    w, h = (float(v) for v in image_size)
    if not (w > 0 and h > 0):
        raise ValueError(f"image size must be positive pixels, got {image_size}")
    f = max(w, h)
    return Intrinsics(f, f, w / 2, h / 2, f"guess from the image size {int(w)}x{int(h)}: focal = longer side")


def read_camera(spec: str | Path) -> Intrinsics:
    """Intrinsics from a calibration file: ``FILE`` or ``FILE:NAME`` for a Pose2Sim / anipose
    ``calib.toml`` (sections with ``matrix`` = K and ``name``; NAME picks the section by its
    key or ``name`` when the file has several cameras).

    Raises:
        ValueError: unreadable file, no camera section, several without NAME, or a bad matrix.
    """
    text = str(spec)
    path, _, name = text.partition(":") if not Path(text).is_file() else (text, "", "")
    try:
        cal = tomllib.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ValueError(f"--camera {text}: not a readable calib.toml ({e})") from None
    cams = {k: v for k, v in cal.items() if isinstance(v, dict) and "matrix" in v}
    if name:
        cams = {k: v for k, v in cams.items() if name in (k, str(v.get("name")))}
    if len(cams) != 1:
        found = ", ".join(cal) or "none"
        raise ValueError(f"--camera {text}: expected one camera section with a 'matrix' (give FILE:NAME when the "
                         f"file has several); sections: {found}")
    key, cam = next(iter(cams.items()))
    K = np.asarray(cam["matrix"], dtype=np.float64)
    if K.shape != (3, 3) or not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(f"--camera {text}: [{key}] matrix must be a 3x3 camera matrix with positive focal lengths")
    return Intrinsics(K[0, 0], K[1, 1], K[0, 2], K[1, 2], f"calibration {Path(path).name} [{key}]")


def root_translation(joints_3d: np.ndarray, keypoints_2d: np.ndarray, mask: np.ndarray, K: Intrinsics,
                     seq_offsets: np.ndarray | None = None, conf: np.ndarray | None = None,
                     smooth: float = TRANSL_SMOOTH) -> np.ndarray:
    """Camera-frame root translation of a track (module docstring).

    Args:
        joints_3d: ``(T, J, 3)`` root-relative metres, camera frame (x right, y down, z forward).
        keypoints_2d: ``(T, J, 2)`` pixels. mask: ``(T, J)`` observed joints (>= 2 per frame).
        K: the camera's :class:`Intrinsics`. seq_offsets: ``(S+1,)`` gap-free runs (smoothing
            never crosses them; an identity switch starts a run). conf: ``(T, J)`` weights.
        smooth: second-difference weight (0 = per-frame solutions).

    Returns:
        ``(T, 3)`` float32 metres; NaN for frames with fewer than 2 observed joints.

    Raises:
        ValueError: shapes that do not match.
    """
    X, uv, m = np.asarray(joints_3d), np.asarray(keypoints_2d), np.asarray(mask, bool)
    if X.ndim != 3 or uv.shape != X.shape[:-1] + (2,) or m.shape != X.shape[:-1]:
        raise ValueError(f"root_translation: joints_3d {X.shape}, keypoints_2d {uv.shape}, mask {m.shape} must be "
                         f"(T, J, 3), (T, J, 2), (T, J)")
    X, uv = (np.ascontiguousarray(a.transpose(2, 1, 0), np.float64) for a in (X, uv))  # (3 or 2, J, T)
    w = m.T * (1.0 if conf is None else np.clip(np.asarray(conf, np.float64).T, 1e-3, 1.0))  # (J, T)
    du, dv = (uv[0] - K.cx) / K.fx, (uv[1] - K.cy) / K.fy  # normalised image coordinates
    # rows per joint: [1, 0, -du] t = du Z - X and [0, 1, -dv] t = dv Z - Y (weights w)
    bu, bv = du * X[2] - X[0], dv * X[2] - X[1]
    wdu, wdv = w * du, w * dv
    # normal equations [[W, 0, -U], [0, W, -V], [-U, -V, Q]] t = (ru, rv, rz), + 1e-12 on the
    # diagonal; solved by eliminating t_x, t_y (t_x = (ru + U t_z) / W, t_y likewise)
    W, U, V = w.sum(0) + 1e-12, wdu.sum(0), wdv.sum(0)
    Q = np.einsum("jt,jt->t", wdu, du) + np.einsum("jt,jt->t", wdv, dv) + 1e-12
    ru, rv = np.einsum("jt,jt->t", w, bu), np.einsum("jt,jt->t", w, bv)
    rz = -np.einsum("jt,jt->t", wdu, bu) - np.einsum("jt,jt->t", wdv, bv)
    tz = (rz + (U * ru + V * rv) / W) / (Q - (U * U + V * V) / W)
    t = np.stack([(ru + U * tz) / W, (rv + V * tz) / W, tz], -1)
    ok = m.sum(-1) >= 2
    t[~ok] = np.nan
    seg = np.array([0, len(ok)]) if seq_offsets is None else np.asarray(seq_offsets, np.int64)
    if smooth > 0 and len(ok) > 2 and ok.all():
        ab = smooth * _second_differences(seg, len(ok))
        ab[0] += 1.0
        t = solveh_banded(ab, t, lower=True, overwrite_ab=True, overwrite_b=True, check_finite=False)
    return t.astype(np.float32)


def track_motion(transl: np.ndarray, frame_ids: np.ndarray, fps: float) -> dict:
    """Distance travelled (metres, summed over consecutive frames, camera frame) and the
    median speed (m/s) of a track's root ``transl (T, 3)``; gaps are not crossed."""
    t = np.asarray(transl, np.float64)
    cons = np.flatnonzero(np.diff(np.asarray(frame_ids)) == 1)
    step = np.linalg.norm(t[cons + 1] - t[cons], axis=-1)
    step = step[np.isfinite(step)]
    return {"distance_m": round(float(step.sum()), 3) if step.size else 0.0,
            "speed_mps": round(float(np.median(step) * fps), 3) if step.size else None}


@dataclass(frozen=True)
class Floor:
    """The ground plane of a static camera's scene and the floor frame built on it.

    Attributes:
        rotation: ``(3, 3)`` camera frame -> floor frame (right-handed: x to the camera's right,
            y up, z towards the camera, along the floor). origin: ``(3,)`` camera-frame point of
            the floor frame's origin (on
            the floor under the first root). residual_m: median distance of the support points
            kept by the fit from the plane. camera_height_m: the camera's height above it.
    """

    rotation: np.ndarray
    origin: np.ndarray
    residual_m: float
    camera_height_m: float

    def to_floor(self, points_cam: np.ndarray) -> np.ndarray:
        """Camera-frame points ``(..., 3)`` -> floor frame (metres, y up)."""
        return (np.asarray(points_cam, np.float64) - self.origin) @ self.rotation.T

    def describe(self) -> dict:
        """``summary.json``'s ``floor``: the up axis and origin in camera coordinates, the
        camera height and the fit residual."""
        return {"rotation_camera_to_floor": np.round(self.rotation, 6).tolist(),
                "up_in_camera_frame": np.round(self.rotation[1], 4).tolist(),
                "origin_camera_frame_m": np.round(self.origin, 4).tolist(),
                "camera_height_m": round(self.camera_height_m, 3), "residual_m": round(self.residual_m, 4)}


def fit_floor(feet_cam: np.ndarray, first_root: np.ndarray, keep: float = 0.5, rounds: int = 5) -> Floor:
    """Fit the ground plane to the feet of every person of a static-camera video.

    Per frame and person the lowest foot (the ankle lower in the image frame's y) is a support
    candidate. A least-squares plane is fitted to them, then refitted ``rounds`` times to the
    ``keep`` fraction lowest points below or near it: jumps, raised legs and sitting people lift
    feet off the floor, never below it, so the lower envelope is the floor.

    Args:
        feet_cam: ``(N, 3)`` candidate support points, camera frame metres (y down).
        first_root: ``(3,)`` camera-frame root of the first frame: the origin is under it.

    Returns:
        :class:`Floor`.

    Raises:
        ValueError: fewer than 10 finite points, or points that span no plane.
    """
    P = np.asarray(feet_cam, np.float64)
    P = P[np.isfinite(P).all(-1)]
    if len(P) < 10:
        raise ValueError(f"fit_floor: {len(P)} foot points; at least 10 are needed")
    use = np.ones(len(P), bool)
    for _ in range(max(1, rounds)):
        c = P[use].mean(0)
        _, sv, vt = np.linalg.svd(P[use] - c, full_matrices=False)
        n = vt[-1] * (1 if vt[-1][1] < 0 else -1)  # the normal pointing up (camera y is down)
        height = (P - c) @ n  # > 0 above the plane
        use = height <= np.quantile(height, keep)
    if sv[-2] < 1e-6:
        raise ValueError("fit_floor: the foot points span no plane (all on a line)")
    resid = float(np.median(np.abs(height[use])))
    z = n * n[2] - np.array([0.0, 0.0, 1.0])  # towards the camera, along the floor
    z /= np.linalg.norm(z)
    R = np.stack([np.cross(n, z), n, z])  # rows: the floor axes x (right), y (up), z in camera coordinates
    root = np.asarray(first_root, np.float64)
    origin = root - ((root - c) @ n) * n  # under the first root
    return Floor(R, origin, resid, float(-c @ n))


def lowest_feet(joints_cam: np.ndarray) -> np.ndarray:
    """``(T, 3)``: per frame the lower of the two ankles (larger camera y) of camera-frame
    canon16 joints ``(T, 16, 3)``: the floor-support candidates of :func:`fit_floor`."""
    from .skeletons import CANON16

    ankles = joints_cam[:, [CANON16.index("l_ankle"), CANON16.index("r_ankle")]]
    return ankles[np.arange(len(ankles)), np.argmax(ankles[..., 1], axis=1)]
