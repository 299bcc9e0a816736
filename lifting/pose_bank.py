"""Pose bank for the optional "unpaired 3D prior" mode (HMR, Kanazawa et al. CVPR 2018
Sec. 3.3): SMPL parameters obtained by fitting the body model to mocap joints, used as the
"real" samples of :class:`lifting.models.discriminators.SMPLDiscriminator`.

This reads **3D** mocap: it is only for the clearly labelled ``prior_3d`` mode; the default
training of every stage stays 3D-free.

Fitting (per frame, all frames of a batch at once, Adam): ``global_orient`` and
``body_pose`` (axis-angle), one ``betas`` for the whole set and one set of canonical-marker
offsets (as a motion-capture calibration, cf. MoSh, Loper et al. SIGGRAPH Asia 2014), to
minimise the squared distance between the body model's canonical markers and the mocap's
canonical joints, both root-relative, plus small priors (rotations towards rest, no twist
about single-child bones). The root rotation starts from a Procrustes fit of the torso.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import roma
import torch

from .body_model import BodyModel, SMPL_JOINT_NAMES
from .data import MocapClips
from .io.fileio import atomic_write
from .losses import rotation_prior, twist_angle
from .skeletons import CANON16

__all__ = ["fit_pose_bank", "save_pose_bank", "load_pose_bank", "PoseBankError"]

_TORSO = ("pelvis", "l_hip", "r_hip", "spine", "thorax", "l_shoulder", "r_shoulder")
_LEAVES = ("left_ankle", "right_ankle", "left_foot", "right_foot", "head", "left_wrist", "right_wrist",
           "left_hand", "right_hand")
_SINGLE_CHILD = {"left_hip": "left_knee", "right_hip": "right_knee", "left_knee": "left_ankle",
                 "right_knee": "right_ankle", "left_shoulder": "left_elbow", "right_shoulder": "right_elbow",
                 "left_elbow": "left_wrist", "right_elbow": "right_wrist"}


class PoseBankError(ValueError):
    """A pose-bank file is missing or malformed."""


def _kabsch(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """Rotations ``(N, 3, 3)`` best mapping centred ``src (N, K, 3)`` onto ``dst (N, K, 3)``."""
    src = src - src.mean(-2, keepdim=True)
    dst = dst - dst.mean(-2, keepdim=True)
    return roma.rigid_points_registration(src, dst)[0]


def fit_pose_bank(clips: MocapClips, body_model: BodyModel, n_frames: int = 20000, iters: int = 300,
                  seed: int = 0, lr: float = 0.05) -> dict[str, np.ndarray]:
    """Fit the body model to ``n_frames`` random frames of ``clips``.

    Args:
        clips: mocap in the canonical joint set (metres, Y up), e.g. the train split.
        body_model: the model whose parameters the bank will hold.

    Returns:
        ``global_orient (N, 3)``, ``body_pose (N, 69)`` axis-angle, ``betas (10,)``,
        ``marker_offsets (16, 3)``, ``fit_error_mm (N,)`` mean marker error per frame.

    Raises:
        ValueError: clips not in the canonical joint set, or empty.
    """
    if clips.skeleton.joint_names != CANON16.joint_names:
        raise ValueError("fit_pose_bank needs clips in the canonical joint set (lifting.data.load_mocap_npz)")
    total = clips.joints.shape[0]
    if total == 0:
        raise ValueError("fit_pose_bank: no frames")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(total, size=min(n_frames, total), replace=False))
    target = torch.as_tensor(clips.joints[idx], dtype=torch.float32)
    target = target - target[:, :1]
    N = target.shape[0]
    torso = [CANON16.index(n) for n in _TORSO]
    with torch.no_grad():
        rest = body_model(torch.eye(3)[None], torch.eye(3).expand(1, 23, 3, 3), torch.zeros(1, body_model.num_betas))
        rest_canon = rest.joints_canon[0] - rest.joints_canon[0, :1]
        R0 = _kabsch(rest_canon[torso].expand(N, -1, -1), target[:, torso])
    go = torch.nn.Parameter(roma.rotmat_to_rotvec(R0))
    pose = torch.nn.Parameter(torch.zeros(N, 23, 3))
    betas = torch.nn.Parameter(torch.zeros(1, body_model.num_betas))
    offsets = torch.nn.Parameter(torch.zeros(16, 3))
    idx_j = {n: i for i, n in enumerate(SMPL_JOINT_NAMES)}
    w = torch.ones(23)
    w[[idx_j[n] - 1 for n in _LEAVES]] = 20.0
    tw_j = torch.tensor([idx_j[p] - 1 for p in _SINGLE_CHILD])
    J = body_model.J_template
    axes = torch.stack([J[idx_j[c]] - J[idx_j[p]] for p, c in _SINGLE_CHILD.items()])
    axes = axes / axes.norm(dim=-1, keepdim=True)
    opt = torch.optim.Adam([go, pose, betas, offsets], lr=lr)
    for it in range(iters):
        bp = roma.rotvec_to_rotmat(pose)
        out = body_model(roma.rotvec_to_rotmat(go), bp, betas.expand(N, -1), canon_offsets=offsets)
        pred = out.joints_canon - out.joints_canon[:, :1]
        loss = (pred - target).square().sum(-1).mean() \
            + 1e-4 * rotation_prior(bp, w) + 1e-4 * twist_angle(bp[:, tw_j], axes).square().mean() \
            + 1e-4 * betas.square().sum() + 1e-2 * offsets.square().sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        bp = roma.rotvec_to_rotmat(pose)
        out = body_model(roma.rotvec_to_rotmat(go), bp, betas.expand(N, -1), canon_offsets=offsets)
        err = ((out.joints_canon - out.joints_canon[:, :1]) - target).norm(dim=-1).mean(-1) * 1000
    return {
        "global_orient": go.detach().numpy().astype(np.float32),
        "body_pose": pose.detach().reshape(N, 69).numpy().astype(np.float32),
        "betas": betas.detach()[0].numpy().astype(np.float32),
        "marker_offsets": offsets.detach().numpy().astype(np.float32),
        "fit_error_mm": err.numpy().astype(np.float32),
    }


def save_pose_bank(bank: dict[str, np.ndarray], path: str | Path, **info) -> Path:
    """Write a bank (atomically) with provenance strings in ``info``."""
    meta = {k: np.array(str(v)) for k, v in info.items()}
    return atomic_write(path, lambda tmp: np.savez_compressed(tmp, **bank, **meta))


def load_pose_bank(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a bank written by :func:`save_pose_bank`: ``body_pose (N, 23, 3, 3)`` rotation
    matrices and ``betas (N, 10)`` (the fitted shape, repeated).

    Raises:
        PoseBankError: missing file, missing keys, bad shapes or non-finite values.
    """
    path = Path(path)
    if not path.is_file():
        raise PoseBankError(f"pose bank not found: {path} (make one with `posenet3d pose-bank`)")
    try:
        with np.load(path) as z:
            bp, betas = z["body_pose"], z["betas"]
    except Exception as e:
        raise PoseBankError(f"{path}: not a pose bank ({type(e).__name__}: {e})") from None
    if bp.ndim != 2 or bp.shape[1] != 69 or betas.ndim != 1 or not len(bp):
        raise PoseBankError(f"{path}: expected body_pose (N, 69) and betas (B,), got {bp.shape} and {betas.shape}")
    if not (np.isfinite(bp).all() and np.isfinite(betas).all()):
        raise PoseBankError(f"{path}: non-finite values")
    rot = roma.rotvec_to_rotmat(torch.from_numpy(bp).float().reshape(-1, 23, 3))
    return {"body_pose": rot, "betas": torch.from_numpy(betas).float().expand(len(bp), -1).clone()}
