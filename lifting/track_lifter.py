"""One lifting interface for the teacher and the SMPL student.

``as_track_lifter(model, height_m)`` wraps a loaded model (:func:`lifting.lifters.load_lifter`)
once; the pipeline then only calls ``lifter.lift(keypoints_2d, mask, seq_offsets, fps,
causal) -> LiftResult`` and, for meshes, ``lifter.vertices(result, picks)``. It never asks
which kind of model it holds: a result with ``smpl`` set has a body, one without has not.

Both lifters run temporal models at :data:`MODEL_FPS` (the training mocap's rate): each
gap-free run is linearly resampled there and the outputs are mapped back to the input frames
(positions interpolated linearly, SMPL rotations from the nearest resampled frame).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import roma
import torch

from .geometry import normalize_2d
from .inference import DEFAULT_HEIGHT_M, lift_frames, lift_smpl_frames, metric_scale
from .skeletons import CANON16
from .student import Student

__all__ = ["LiftResult", "SmplFit", "TeacherLifter", "StudentLifter", "as_track_lifter", "MODEL_FPS"]

MODEL_FPS = 30.0
"""Frame rate of the training mocap; temporal models resample other rates to this."""

#: how a student's ``cam`` relates metres to pixels (written into every npz)
CAM_CONVENTION = ("weak perspective, pixels: pixel ~ s * P_xy + (tx, ty), P root-relative metres in the camera "
                  "frame")


@dataclass
class SmplFit:
    """SMPL parameters of one track, decoded once by the student's body model.

    Attributes:
        global_orient: ``(T, 3, 3)`` body frame -> camera frame. body_pose: ``(T, 23, 3, 3)``
        parent-relative rotations. betas: ``(num_betas,)`` one shape per track (mean of the
        per-frame estimates weighted by the number of observed joints). cam: ``(T, 3)``
        pixel weak-perspective camera ``(s, tx, ty)`` (:data:`CAM_CONVENTION`).
        joints_smpl: ``(T, 24, 3)`` SMPL joints, root-relative metres, camera frame.
        body_model: the body model's ``describe()`` dict.
    """

    global_orient: torch.Tensor
    body_pose: torch.Tensor
    betas: torch.Tensor
    cam: np.ndarray
    joints_smpl: np.ndarray
    body_model: dict = field(default_factory=dict)

    def npz_arrays(self) -> dict[str, np.ndarray]:
        """smplx-named arrays for a track npz: ``global_orient (T, 3)`` and ``body_pose (T, 69)``
        axis-angle, ``betas``, ``cam``, ``joints_smpl``, ``smpl_joint_names``, ``body_model``
        (JSON), ``cam_convention``."""
        from .body_model import SMPL_JOINT_NAMES

        f32 = lambda t: t.cpu().numpy().astype(np.float32)  # noqa: E731
        return {"global_orient": f32(roma.rotmat_to_rotvec(self.global_orient)),
                "body_pose": f32(roma.rotmat_to_rotvec(self.body_pose)).reshape(-1, 69),
                "betas": f32(self.betas), "cam": self.cam.astype(np.float32),
                "joints_smpl": self.joints_smpl.astype(np.float32),
                "smpl_joint_names": np.array(SMPL_JOINT_NAMES), "body_model": np.array(json.dumps(self.body_model)),
                "cam_convention": np.array(CAM_CONVENTION)}


@dataclass
class LiftResult:
    """The lift of one track (or of one array of frames).

    Attributes:
        track_id: int (``-1`` for arrays lifted outside a track).
        frame_ids: ``(T,)`` int64 lifted frames.
        joints_3d: ``(T, J, 3)`` float32 root-relative metres, camera frame (x right, y down,
            z forward), canonical joints (:data:`lifting.skeletons.CANON16`).
        keypoints_2d: ``(T, J, 2)`` float32 canonical input pixels. mask: ``(T, J)`` bool
            observed joints. skipped_frame_ids: frames of the track that could not be lifted.
        identity_switches: runs split by a 2D root jump (see :mod:`lifting.lift`).
        smpl: :class:`SmplFit` for a student, ``None`` for a teacher.
        joints_3d_std: ``(T, J)`` float32 metres, per-joint 3D uncertainty
            (:mod:`lifting.uncertainty`), ``None`` when not computed.
    """

    track_id: int
    frame_ids: np.ndarray
    joints_3d: np.ndarray
    keypoints_2d: np.ndarray
    mask: np.ndarray
    skipped_frame_ids: np.ndarray
    identity_switches: int = 0
    smpl: SmplFit | None = None
    joints_3d_std: np.ndarray | None = None

    @classmethod
    def empty(cls, track_id: int, skipped_frame_ids: np.ndarray, num_joints: int = CANON16.num_joints):
        """A result without lifted frames."""
        return cls(int(track_id), np.zeros(0, np.int64), np.zeros((0, num_joints, 3), np.float32),
                   np.zeros((0, num_joints, 2), np.float32), np.zeros((0, num_joints), bool),
                   np.asarray(skipped_frame_ids))


def _resample(kp: np.ndarray, m: np.ndarray, seg: np.ndarray, ratio: float):
    """Linearly resample each gap-free segment of ``kp (N, J, 2)``, ``m (N, J)`` by ``ratio``
    (target fps / source fps). Returns resampled ``(kp, mask, offsets)`` and, per original
    frame, its position in the resampled sequence ``(N,)`` (float index)."""
    kps, ms, offs, pos = [], [], [0], np.empty(len(kp))
    for a, b in zip(seg[:-1], seg[1:]):
        n = b - a
        n_new = max(1, int(round((n - 1) * ratio)) + 1)
        t = np.linspace(0, n - 1, n_new) if n > 1 else np.zeros(1)
        i0 = np.floor(t).astype(int)
        i1 = np.minimum(i0 + 1, n - 1)
        w = (t - i0)[:, None, None]
        kps.append((1 - w) * kp[a:b][i0] + w * kp[a:b][i1])
        ms.append(m[a:b][i0] & m[a:b][i1])
        pos[a:b] = offs[-1] + np.arange(n) * ((n_new - 1) / max(n - 1, 1))
        offs.append(offs[-1] + n_new)
    return np.concatenate(kps), np.concatenate(ms), np.asarray(offs, np.int64), pos


def _resampling(window: int, fps: float | None) -> bool:
    return window > 1 and fps is not None and abs(fps - MODEL_FPS) > 1e-3


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


class TeacherLifter:
    """2D-only lifter (:class:`lifting.teacher.Lifter`) with the anthropometric metric scale
    (:func:`lifting.inference.metric_scale`: one scale per track, the median over frames of
    the ratio of metric to normalised size, for a subject of ``height_m`` metres)."""

    faces = None
    body_model = None

    def __init__(self, model, height_m: float = DEFAULT_HEIGHT_M):
        self.model, self.height_m, self.window = model, float(height_m), int(model.window)

    def lift(self, keypoints_2d: np.ndarray, mask: np.ndarray, seq_offsets: np.ndarray | None = None,
             fps: float | None = None, causal: bool = False) -> LiftResult:
        """Lift ``keypoints_2d (N, J, 2)`` pixels with ``mask (N, J)`` (root visible in every
        frame), runs ``seq_offsets (S+1,)`` (default one run), source rate ``fps``.

        Returns:
            :class:`LiftResult` (``track_id -1``, ``frame_ids = arange(N)``).

        Raises:
            ValueError: bad shapes/NaN input (:func:`lifting.inference.lift_frames`) or
                non-finite output.
        """
        kp, mask = np.asarray(keypoints_2d, np.float32), np.asarray(mask, bool)
        seg = np.array([0, len(kp)]) if seq_offsets is None else np.asarray(seq_offsets)
        dev = _device(self.model)
        run = lambda k, m, s: lift_frames(self.model, torch.from_numpy(k).float().to(dev),  # noqa: E731
                                          torch.from_numpy(m).to(dev), s, causal=causal).cpu()
        if _resampling(self.window, fps):
            kp_r, m_r, seg_r, pos = _resample(kp, mask, seg, MODEL_FPS / fps)
            pred_r = run(kp_r.astype(np.float32), m_r, seg_r).numpy()
            i0 = np.floor(pos).astype(int)
            i1 = np.minimum(i0 + 1, len(pred_r) - 1)
            # causal: never interpolate towards a later resampled frame
            w = np.zeros_like(pos)[:, None, None] if causal else (pos - i0)[:, None, None]
            pred = torch.from_numpy(((1 - w) * pred_r[i0] + w * pred_r[i1]).astype(np.float32))
        else:
            pred = run(kp, mask, seg)
        per_frame = metric_scale(pred, CANON16, self.height_m)
        ratio = (per_frame.norm(dim=-1).sum(-1) / pred.norm(dim=-1).sum(-1).clamp_min(1e-9)).median()
        joints = (pred * ratio).numpy().astype(np.float32)
        if not np.isfinite(joints).all():
            raise ValueError("lifting produced non-finite values")
        return LiftResult(-1, np.arange(len(kp)), joints, kp, mask, np.zeros(0, np.int64))

    def vertices(self, result: LiftResult, picks: np.ndarray) -> np.ndarray:
        """A teacher has no mesh. Raises: ValueError."""
        raise ValueError("a teacher checkpoint has no body model: meshes need an SMPL student checkpoint")


class StudentLifter:
    """SMPL student (:class:`lifting.student.Student`): per-frame SMPL parameters, one
    ``betas`` per track (mean of the per-frame estimates weighted by the number of observed
    joints), metric size from the body model (no height prior)."""

    def __init__(self, model: Student):
        self.model, self.window = model, int(model.window)
        self.body_model = model.body_model
        self.faces = model.body_model.faces

    def _frames(self, kp: np.ndarray, mask: np.ndarray, seg: np.ndarray, fps, causal) -> dict:
        dev = _device(self.model)
        kp_t, m_t = torch.from_numpy(kp).float().to(dev), torch.from_numpy(mask).to(dev)
        if not _resampling(self.window, fps):
            return {k: v.cpu() for k, v in lift_smpl_frames(self.model, kp_t, m_t, seg, causal=causal).items()}
        kp_r, m_r, seg_r, pos = _resample(kp, mask, seg, MODEL_FPS / fps)
        res = lift_smpl_frames(self.model, torch.from_numpy(kp_r).float().to(dev), torch.from_numpy(m_r).to(dev),
                               seg_r, causal=causal)
        near = torch.from_numpy(np.clip(np.round(pos).astype(np.int64), 0, len(kp_r) - 1)).to(dev)
        res = {k: v[near].cpu() for k, v in res.items() if k not in ("norm_scale", "root_px")}
        _, norm = normalize_2d(kp_t, m_t, self.model.root_index)
        res["norm_scale"], res["root_px"] = norm[..., 0].cpu(), kp_t[:, self.model.root_index].cpu()
        return res

    def lift(self, keypoints_2d: np.ndarray, mask: np.ndarray, seq_offsets: np.ndarray | None = None,
             fps: float | None = None, causal: bool = False) -> LiftResult:
        """As :meth:`TeacherLifter.lift`; the result carries :class:`SmplFit`."""
        kp, mask = np.asarray(keypoints_2d, np.float32), np.asarray(mask, bool)
        seg = np.array([0, len(kp)]) if seq_offsets is None else np.asarray(seq_offsets)
        res = self._frames(kp, mask, seg, fps, causal)
        w = torch.from_numpy(mask).sum(-1).float()
        betas = (res["betas"] * w[:, None]).sum(0) / w.sum()
        dev = _device(self.model)
        with torch.no_grad():
            out = self.model.decode(res["global_orient"][None].to(dev), res["body_pose"][None].to(dev),
                                    betas[None].to(dev), res["scale"][None].to(dev))
        joints = out.joints_3d[0].cpu().numpy().astype(np.float32)
        if not np.isfinite(joints).all() or not torch.isfinite(betas).all():
            raise ValueError("lifting produced non-finite values")
        s_px = res["scale"] * res["norm_scale"]
        smpl = SmplFit(res["global_orient"], res["body_pose"], betas,
                       torch.cat([s_px[:, None], res["root_px"]], dim=-1).numpy().astype(np.float32),
                       out.joints_smpl[0].cpu().numpy().astype(np.float32), self.body_model.describe())
        return LiftResult(-1, np.arange(len(kp)), joints, kp, mask, np.zeros(0, np.int64), smpl=smpl)

    def vertices(self, result: LiftResult, picks: np.ndarray) -> np.ndarray:
        """Root-relative camera-frame vertices ``(len(picks), V, 3)`` metres of frames
        ``picks`` (indices into ``result``)."""
        s, dev = result.smpl, _device(self.model)
        picks = torch.as_tensor(np.asarray(picks, np.int64))
        with torch.no_grad():
            out = self.model.decode(s.global_orient[picks][None].to(dev), s.body_pose[picks][None].to(dev),
                                    s.betas[None].to(dev), torch.ones(1, len(picks), device=dev),
                                    return_vertices=True)
        return out.vertices[0].cpu().numpy()


def as_track_lifter(model, height_m: float = DEFAULT_HEIGHT_M) -> TeacherLifter | StudentLifter:
    """Wrap a model from :func:`lifting.lifters.load_lifter`: a :class:`Student` becomes a
    :class:`StudentLifter`, any other lifter a :class:`TeacherLifter` (``height_m`` metres
    sets its metric scale)."""
    return StudentLifter(model) if isinstance(model, Student) else TeacherLifter(model, height_m)
