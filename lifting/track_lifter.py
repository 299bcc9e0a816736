"""One lifting interface for the teacher and the SMPL student.

``as_track_lifter(model, height_m)`` wraps a loaded model (:func:`lifting.models.lifters.load_lifter`)
once; the pipeline then only calls ``lifter.lift(keypoints_2d, mask, seq_offsets, fps,
causal, conf) -> LiftResult`` and, for meshes, ``lifter.meshes(result, picks) -> TrackMeshes``
(plain arrays the write step gets; :mod:`lifting.lift_result`). It never asks
which kind of model it holds: a result with ``smpl`` set has a body, one without has not.
Given a single-frame teacher next to a temporal one, ``as_track_lifter`` returns a
:class:`LifterPair`, which lifts runs shorter than :data:`MIN_TEMPORAL_RUN` frames (isolated
frames, still photos) with the single-frame model and the others with the temporal one.
Temporal models run strided (:func:`lifting.inference.strided_windows`, default
:data:`lifting.inference.DEFAULT_STRIDE`).

Both lifters run temporal models at :data:`MODEL_FPS` (the training mocap's rate): each
gap-free run is linearly resampled there and the outputs are mapped back to the input frames
(positions interpolated linearly, SMPL rotations from the nearest resampled frame).
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field

import numpy as np
import torch

from .geometry import normalize_2d
from .prepare import resample_runs
from .inference import DEFAULT_HEIGHT_M, DEFAULT_STRIDE, InferenceSettings, lift_frames, lift_smpl_frames, metric_scale
from .lift_result import MODEL_FPS, LiftResult, TrackMeshes
from .skeletons import CANON16
from .models.student import Student

__all__ = ["LiftResult", "SmplFit", "TeacherLifter", "StudentLifter", "LifterPair", "as_track_lifter", "MODEL_FPS",
           "MIN_TEMPORAL_RUN", "TrackMeshes"]

MIN_TEMPORAL_RUN = 9
"""Shortest gap-free run (frames) a :class:`LifterPair` gives its temporal model: the
temporal teachers are trained on windows cut to keep at least a third of their 27 frames
real (``lifting.synth2d`` window cuts), so shorter runs are outside what they saw and go to
the single-frame model."""

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
        pelvis_rest: ``(3,)`` metres, the body model's pelvis (SMPL joint 0) for ``betas``: where
            the body model puts it at ``transl = 0`` whatever the rotations (they turn about it).
    """

    global_orient: torch.Tensor
    body_pose: torch.Tensor
    betas: torch.Tensor
    cam: np.ndarray
    joints_smpl: np.ndarray
    body_model: dict = field(default_factory=dict)
    pelvis_rest: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))

    def smpl_transl(self, transl: np.ndarray) -> np.ndarray:
        """The body model's ``transl`` ``(T, 3)`` metres that places the body in the camera frame
        with its canonical root at ``transl (T, 3)`` (the track's root translation,
        :func:`lifting.placement.root_translation`): ``transl - pelvis_rest + joints_smpl[:, 0]``
        (SMPL vertices and joints are the rest pelvis plus ``transl`` at the root; smplx
        ``SMPL.forward(global_orient, body_pose, betas, transl)`` convention)."""
        return (np.asarray(transl, np.float64) - self.pelvis_rest + self.joints_smpl[:, 0]).astype(np.float32)

    def npz_arrays(self) -> dict[str, np.ndarray]:
        """smplx-named arrays for a track npz: ``global_orient (T, 3)`` and ``body_pose (T, 69)``
        axis-angle, ``betas``, ``cam``, ``joints_smpl``, ``smpl_joint_names``, ``body_model``
        (JSON), ``cam_convention``."""
        import roma  # here, not at module import: roma imports torch._dynamo (~1 s)
        from .body_model import SMPL_JOINT_NAMES

        f32 = lambda t: t.cpu().numpy().astype(np.float32)  # noqa: E731
        return {"global_orient": f32(roma.rotmat_to_rotvec(self.global_orient)),
                "body_pose": f32(roma.rotmat_to_rotvec(self.body_pose)).reshape(-1, 69),
                "betas": f32(self.betas), "cam": self.cam.astype(np.float32),
                "joints_smpl": self.joints_smpl.astype(np.float32),
                "smpl_joint_names": np.array(SMPL_JOINT_NAMES), "body_model": np.array(json.dumps(self.body_model)),
                "cam_convention": np.array(CAM_CONVENTION)}


def _resampling(window: int, fps: float | None) -> bool:
    return window > 1 and fps is not None and abs(fps - MODEL_FPS) > 1e-3


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _inputs(keypoints_2d, mask, seq_offsets, conf):
    """Arrays of a ``lift`` call: ``kp (N, J, 2) float32, mask (N, J) bool, seg (S+1,),
    conf (N, J) float32 or None`` (0 at masked joints)."""
    kp, mask = np.asarray(keypoints_2d, np.float32), np.asarray(mask, bool)
    seg = np.array([0, len(kp)]) if seq_offsets is None else np.asarray(seq_offsets)
    if conf is not None:
        conf = np.asarray(conf, np.float32)
        if conf.shape != mask.shape:
            raise ValueError(f"detector scores conf of shape {conf.shape} do not match the mask {mask.shape}")
        conf = np.where(mask, conf, 0.0).astype(np.float32)
    return kp, mask, seg, conf


def _tensor(a: np.ndarray | None, dev: torch.device):
    return None if a is None else torch.from_numpy(a).to(dev)


class TeacherLifter:
    """2D-only lifter (:class:`lifting.models.teacher.Lifter`) with the anthropometric metric scale
    (:func:`lifting.inference.metric_scale`: one scale per track, the median over frames of
    the ratio of metric to normalised size, for a subject of ``height_m`` metres). ``name``
    is what :attr:`LiftResult.lifted_by` records; ``stride``: see
    :func:`lifting.inference.strided_windows`; ``flip``: test-time flip augmentation
    (:class:`lifting.inference.InferenceSettings`)."""

    faces = None
    body_model = None
    #: many tracks can go through one model call (:meth:`normalised`, :mod:`lifting.lift_batch`)
    batches_tracks = True
    #: mirrored input can be lifted and mapped back (test-time flip, the flip uncertainty
    #: :func:`lifting.lift_batch.lift_with_flip_spread`)
    mirrors = True

    def __init__(self, model, height_m: float = DEFAULT_HEIGHT_M, stride: int = DEFAULT_STRIDE,
                 name: str = "checkpoint", flip: bool = False):
        self.model, self.height_m, self.window = model, float(height_m), int(model.window)
        self.stride, self.name, self.flip = int(stride), str(name), bool(flip)

    def unflipped(self) -> "TeacherLifter":
        """This lifter without test-time flipping (what the per-joint uncertainty is calibrated on)."""
        c = copy.copy(self)
        c.flip = False
        return c

    def normalised(self, kp: np.ndarray, mask: np.ndarray, seg: np.ndarray, fps, causal: bool,
                   conf: np.ndarray | None) -> torch.Tensor:
        """Root-relative 3D ``(N, J, 3)`` in normalised units (CPU) of :func:`_inputs` arrays."""
        dev = _device(self.model)
        how = InferenceSettings(causal=causal, stride=self.stride, flip=self.flip)
        run = lambda k, m, s, c: lift_frames(self.model, torch.from_numpy(k).float().to(dev),  # noqa: E731
                                             torch.from_numpy(m).to(dev), s, _tensor(c, dev), how).cpu()
        if not _resampling(self.window, fps):
            return run(kp, mask, seg, conf)
        kp_r, m_r, seg_r, pos, conf_r = resample_runs(kp, mask, seg, MODEL_FPS / fps, conf)
        pred_r = run(kp_r.astype(np.float32), m_r, seg_r, conf_r).numpy()
        i0 = np.floor(pos).astype(int)
        i1 = np.minimum(i0 + 1, len(pred_r) - 1)
        # causal: never interpolate towards a later resampled frame
        w = np.zeros_like(pos)[:, None, None] if causal else (pos - i0)[:, None, None]
        return torch.from_numpy(((1 - w) * pred_r[i0] + w * pred_r[i1]).astype(np.float32))

    def metres_per_unit(self, pred: torch.Tensor) -> torch.Tensor:
        """The one metric scale of a track's normalised lift ``pred (N, J, 3)``: the median over
        frames of the ratio of metric (:func:`lifting.inference.metric_scale`, ``height_m``)
        to normalised size; a 0-d tensor, metres per normalised unit."""
        per_frame = metric_scale(pred, CANON16, self.height_m)
        return (per_frame.norm(dim=-1).sum(-1) / pred.norm(dim=-1).sum(-1).clamp_min(1e-9)).median()

    def to_metres(self, pred: torch.Tensor, per_unit: torch.Tensor | None = None) -> np.ndarray:
        """Normalised ``(N, J, 3)`` -> metres with one scale per call (the track):
        ``per_unit`` when the caller has it already, else :meth:`metres_per_unit` of ``pred``.

        Raises:
            ValueError: non-finite output."""
        joints = (pred * (self.metres_per_unit(pred) if per_unit is None else per_unit)).numpy().astype(np.float32)
        if not np.isfinite(joints).all():
            raise ValueError("lifting produced non-finite values")
        return joints

    def flips(self) -> bool | None:
        """Whether :meth:`normalised` averages with the mirrored lift (test-time flip)."""
        return self.flip

    def resamples(self, fps: float | None) -> bool:
        """Whether :meth:`normalised` resamples input at ``fps`` to :data:`MODEL_FPS`."""
        return _resampling(self.window, fps)

    def runs_by(self, seg: np.ndarray) -> tuple:
        """``((0, N, name),)``: this one model lifts all ``N = seg[-1]`` frames."""
        return ((0, int(seg[-1]), self.name),)

    def lift(self, keypoints_2d: np.ndarray, mask: np.ndarray, seq_offsets: np.ndarray | None = None,
             fps: float | None = None, causal: bool = False, conf: np.ndarray | None = None) -> LiftResult:
        """Lift ``keypoints_2d (N, J, 2)`` pixels with ``mask (N, J)`` (root visible in every
        frame), runs ``seq_offsets (S+1,)`` (default one run), source rate ``fps``, optional
        detector scores ``conf (N, J)`` in [0, 1] (read by ``use_confidence`` models; None =
        1 for visible joints).

        Returns:
            :class:`LiftResult` (``track_id -1``, ``frame_ids = arange(N)``).

        Raises:
            ValueError: bad shapes/NaN input (:func:`lifting.inference.lift_frames`) or
                non-finite output.
        """
        kp, mask, seg, conf = _inputs(keypoints_2d, mask, seq_offsets, conf)
        joints = self.to_metres(self.normalised(kp, mask, seg, fps, causal, conf))
        return LiftResult(-1, np.arange(len(kp)), joints, kp, mask, np.zeros(0, np.int64),
                          lifted_by=self.runs_by(seg))

    def vertices(self, result: LiftResult, picks: np.ndarray) -> np.ndarray:
        """A teacher has no mesh. Raises: ValueError."""
        raise ValueError("a teacher checkpoint has no body model: meshes need an SMPL student checkpoint")

    def meshes(self, result: LiftResult, picks: np.ndarray) -> TrackMeshes:
        """A teacher has no mesh. Raises: ValueError (as :meth:`vertices`)."""
        return TrackMeshes(np.asarray(picks, np.int64), self.vertices(result, picks), self.faces)


class LifterPair(TeacherLifter):
    """A temporal teacher with a single-frame teacher for what the temporal one was not
    trained on: gap-free runs shorter than ``min_run`` frames (:data:`MIN_TEMPORAL_RUN`;
    isolated frames, every track of ``--tracker stills``) are lifted by ``single``, the other
    runs by ``temporal``; one metric scale per track over both (:meth:`TeacherLifter.to_metres`).

    Args:
        temporal, single: :class:`TeacherLifter` of a model with window > 1 and of one with
            window 1.

    Raises:
        ValueError: the windows are not (> 1, 1).
    """

    def __init__(self, temporal: TeacherLifter, single: TeacherLifter, min_run: int = MIN_TEMPORAL_RUN):
        if temporal.window <= 1 or single.window != 1:
            raise ValueError(f"a lifter pair needs a temporal (window > 1) and a single-frame (window 1) teacher, "
                             f"got windows {temporal.window} and {single.window}")
        self.temporal, self.single, self.min_run = temporal, single, int(min_run)
        self.model, self.height_m, self.window = temporal.model, temporal.height_m, temporal.window
        self.stride, self.name = temporal.stride, temporal.name

    def unflipped(self) -> "LifterPair":
        """Both models without test-time flipping."""
        c = copy.copy(self)
        c.temporal, c.single = self.temporal.unflipped(), self.single.unflipped()
        return c

    def normalised(self, kp: np.ndarray, mask: np.ndarray, seg: np.ndarray, fps, causal: bool,
                   conf: np.ndarray | None) -> torch.Tensor:
        """As :meth:`TeacherLifter.normalised`: runs of ``seg`` shorter than ``min_run`` frames by
        the single-frame model, the others by the temporal one."""
        long_run = np.diff(seg) >= self.min_run
        pred = torch.empty(len(kp), kp.shape[1], 3)
        for lifter, runs in ((self.temporal, long_run), (self.single, ~long_run)):
            if not runs.any():
                continue
            frames = np.concatenate([np.arange(a, b) for a, b in zip(seg[:-1][runs], seg[1:][runs])])
            sub_seg = np.concatenate([[0], np.cumsum(np.diff(seg)[runs])])
            pred[frames] = lifter.normalised(kp[frames], mask[frames], sub_seg, fps, causal,
                                             None if conf is None else conf[frames])
        return pred

    def flips(self) -> bool | None:
        """Whether both models flip (None when only one does)."""
        return self.temporal.flip if self.temporal.flip == self.single.flip else None

    def runs_by(self, seg: np.ndarray) -> tuple:
        """``((first frame, end frame, model name), ...)`` per run of ``seg``."""
        return tuple((int(a), int(b), (self.temporal if b - a >= self.min_run else self.single).name)
                     for a, b in zip(seg[:-1], seg[1:]))



class StudentLifter:
    """SMPL student (:class:`lifting.models.student.Student`): per-frame SMPL parameters, one
    ``betas`` per track (mean of the per-frame estimates weighted by the number of observed
    joints), metric size from the body model (no height prior)."""

    #: one ``betas`` per track: lifted one track at a time (:mod:`lifting.lift_batch`)
    batches_tracks = False
    #: no test-time flip (its ``betas`` and body pose are not mirrored back)
    mirrors = False

    def __init__(self, model: Student, stride: int = DEFAULT_STRIDE, name: str = "checkpoint"):
        self.model, self.window, self.stride, self.name = model, int(model.window), int(stride), str(name)
        self.body_model = model.body_model
        self.faces = model.body_model.faces

    def unflipped(self) -> "StudentLifter":
        """A student never flips: itself."""
        return self

    def _frames(self, kp: np.ndarray, mask: np.ndarray, seg: np.ndarray, fps, causal, conf) -> dict:
        dev = _device(self.model)
        kp_t, m_t = torch.from_numpy(kp).float().to(dev), torch.from_numpy(mask).to(dev)
        if not _resampling(self.window, fps):
            return {k: v.cpu() for k, v in lift_smpl_frames(self.model, kp_t, m_t, seg, causal=causal,
                                                            conf=_tensor(conf, dev), stride=self.stride).items()}
        kp_r, m_r, seg_r, pos, conf_r = resample_runs(kp, mask, seg, MODEL_FPS / fps, conf)
        res = lift_smpl_frames(self.model, torch.from_numpy(kp_r).float().to(dev), torch.from_numpy(m_r).to(dev),
                               seg_r, causal=causal, conf=_tensor(conf_r, dev), stride=self.stride)
        near = torch.from_numpy(np.clip(np.round(pos).astype(np.int64), 0, len(kp_r) - 1)).to(dev)
        res = {k: v[near].cpu() for k, v in res.items() if k not in ("norm_scale", "root_px")}
        _, norm = normalize_2d(kp_t, m_t, self.model.root_index)
        res["norm_scale"], res["root_px"] = norm[..., 0].cpu(), kp_t[:, self.model.root_index].cpu()
        return res

    def lift(self, keypoints_2d: np.ndarray, mask: np.ndarray, seq_offsets: np.ndarray | None = None,
             fps: float | None = None, causal: bool = False, conf: np.ndarray | None = None) -> LiftResult:
        """As :meth:`TeacherLifter.lift`; the result carries :class:`SmplFit`."""
        kp, mask, seg, conf = _inputs(keypoints_2d, mask, seq_offsets, conf)
        res = self._frames(kp, mask, seg, fps, causal, conf)
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
        with torch.no_grad():
            pelvis = self.body_model.rest_joints(betas[None].to(dev))[0, 0].cpu().numpy().astype(np.float32)
        smpl = SmplFit(res["global_orient"], res["body_pose"], betas,
                       torch.cat([s_px[:, None], res["root_px"]], dim=-1).numpy().astype(np.float32),
                       out.joints_smpl[0].cpu().numpy().astype(np.float32), self.body_model.describe(), pelvis)
        return LiftResult(-1, np.arange(len(kp)), joints, kp, mask, np.zeros(0, np.int64), smpl=smpl,
                          lifted_by=((0, len(kp), self.name),))

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

    def meshes(self, result: LiftResult, picks: np.ndarray) -> TrackMeshes:
        """:class:`TrackMeshes` of frames ``picks`` (indices into ``result``, ascending): the
        :meth:`vertices` of those frames, decoded in one batch, with the body model's faces."""
        return TrackMeshes(np.asarray(picks, np.int64), self.vertices(result, picks), self.faces)


def as_track_lifter(model, height_m: float = DEFAULT_HEIGHT_M, single_frame_model=None,
                    stride: int = DEFAULT_STRIDE, names: tuple[str, str] = ("temporal", "single_frame"),
                    flip: bool = False):
    """Wrap a model from :func:`lifting.models.lifters.load_lifter`: a model with SMPL outputs
    (``outputs_smpl``, :class:`lifting.models.base.ModelInterface`: the :class:`Student`) becomes a
    :class:`StudentLifter`, any other lifter a :class:`TeacherLifter` (``height_m`` metres
    sets its metric scale), and a temporal teacher given with a ``single_frame_model``
    (window 1) a :class:`LifterPair` (``names``: what ``lifted_by`` records for each).
    ``stride``: temporal inference stride (:func:`lifting.inference.strided_windows`).
    ``flip``: teachers lift with test-time flip augmentation (:class:`lifting.inference.InferenceSettings`);
    a student ignores it.

    Raises:
        ValueError: ``single_frame_model`` given with a student, a single-frame ``model`` or
            a ``single_frame_model`` whose window is not 1.
    """
    if model.outputs_smpl:
        if single_frame_model is not None:
            raise ValueError("a single-frame companion model applies to temporal teachers only, not to a student")
        return StudentLifter(model, stride)
    if single_frame_model is None:
        return TeacherLifter(model, height_m, stride, flip=flip)
    return LifterPair(TeacherLifter(model, height_m, stride, names[0], flip),
                      TeacherLifter(single_frame_model, height_m, stride, names[1], flip))
