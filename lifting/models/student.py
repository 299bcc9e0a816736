"""The SMPL student (PoseNet3D stage 2, arXiv 2003.03473 Sec. 3.2): normalised 2D keypoints
-> SMPL body-model parameters, trained by distillation from the frozen teacher.

Per frame the network predicts 24 joint rotations in the continuous 6D representation (Zhou
et al., "On the Continuity of Rotation Representations in Neural Networks", CVPR 2019,
Sec. 4: two columns, Gram-Schmidt), a camera scale, and shape coefficients that are averaged
over the frames of a window (and over a whole track at inference: one body per person).
The body model (:class:`lifting.body_model.BodyModel`) turns them into joints and,
on request, a mesh.

Frames: ``global_orient`` rotates the SMPL body frame (y up, facing +z) into the camera frame
(x right, y down, z forward), so an upright person facing the camera has
``global_orient = R_x(pi)``; the network starts there.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ..body_model import BodyModel
from ..geometry import ROOT_DEPTH, project_normalized
from .base import ModelInterface, arg
from .teacher import MLPLifterArgs, ResidualMLP, inflate_input_weights, input_features

__all__ = ["Student", "StudentConfig", "StudentOutput", "rot6d_to_rotmat", "weak_perspective_scale0"]

#: initial camera scale: normalised 2D units (unit RMS joint distance from the root) per
#: metre, for an adult whose canonical joints have ~0.45 m RMS distance from the pelvis
weak_perspective_scale0 = 2.2


def rot6d_to_rotmat(x: torch.Tensor) -> torch.Tensor:
    """6D rotation representation ``(..., 6)`` (first two columns, row-major as ``(3, 2)``)
    -> rotation matrices ``(..., 3, 3)`` by Gram-Schmidt (Zhou et al. CVPR 2019, Eq. 15-16;
    ``roma.special_gramschmidt``)."""
    import roma  # here, not at module import: roma imports torch._dynamo (~1 s)
    return roma.special_gramschmidt(x.reshape(*x.shape[:-1], 3, 2))


@dataclass
class StudentOutput:
    """Student prediction for a batch of windows ``(B, T)``.

    Attributes:
        global_orient: ``(B, T, 3, 3)`` body frame -> camera frame.
        body_pose: ``(B, T, 23, 3, 3)`` parent-relative joint rotations.
        betas: ``(B, num_betas)`` one shape per window (mean of the per-frame estimates).
        betas_frames: ``(B, T, num_betas)`` per-frame estimates (pooled over a track at
            inference, :func:`pool_betas`).
        cam: ``(B, T, 3)`` camera ``(s, tx, ty)`` in normalised 2D units: a body point ``P``
            (metres, camera frame, root-relative) projects to
            ``project_normalized(s * P) + (tx, ty)``; ``tx = ty = 0`` because the input is
            root-centred.
        joints_3d: ``(B, T, 16, 3)`` canonical joints, metres, root-relative, camera frame.
        joints_smpl: ``(B, T, 24, 3)`` SMPL joints, metres, root-relative, camera frame.
    """

    global_orient: torch.Tensor
    body_pose: torch.Tensor
    betas: torch.Tensor
    betas_frames: torch.Tensor
    cam: torch.Tensor
    joints_3d: torch.Tensor
    joints_smpl: torch.Tensor

    def project(self, points: torch.Tensor | None = None) -> torch.Tensor:
        """Normalised 2D of ``points (B, T, N, 3)`` (default the canonical joints) ->
        ``(B, T, N, 2)``."""
        p = self.joints_3d if points is None else points
        s = self.cam[..., :1, None]
        return project_normalized(s * p, ROOT_DEPTH) + self.cam[..., None, 1:]


@dataclass(frozen=True)
class StudentConfig(MLPLifterArgs):
    """The SMPL student's hyperparameters (stored as a checkpoint's ``model_config`` with
    ``arch = "smpl_student"``). Ranges are checked by
    :meth:`lifting.models.base.ModelArgs.from_dict` before any module is built.

    Attributes (besides :class:`lifting.models.teacher.MLPLifterArgs`'s):
        num_betas: shape components. learn_marker_offsets: learn the 16 canonical-marker
            rest offsets (metres; :data:`lifting.body_model.CANON16_MARKERS`).
    """

    ARCH: ClassVar[str] = "smpl_student"

    num_betas: int = arg(int, 10, 1, 300)
    learn_marker_offsets: bool = arg(bool, True)


class Student(ModelInterface, nn.Module):
    """2D -> SMPL parameters, over windows of ``window`` frames.

    Args:
        config: the :class:`StudentConfig` (default: its defaults).
        body_model: the :class:`BodyModel` (a buffer-only module, not saved in checkpoints;
            ``None`` only for a shape-only copy on the ``meta`` device).

    Forward:
        ``x (B, T, J, 2)`` normalised 2D, ``mask (B, T, J)`` bool, optional ``conf (B, T, J)``
        detector scores (read only with ``use_confidence``) -> :class:`StudentOutput`.

    Raises:
        ValueError: input of the wrong shape.
    """

    config_class = StudentConfig
    has_body_model = True
    outputs_smpl = True

    def __init__(self, config: StudentConfig | None = None, body_model: BodyModel | None = None):
        super().__init__()
        c = self.args = config if config is not None else StudentConfig()
        self.body_model = body_model
        self.num_joints, self.window, self.num_betas = c.num_joints, c.window, c.num_betas
        self.root_index = c.root_index
        self.use_confidence = c.use_confidence
        self.in_channels = 4 if c.use_confidence else 3
        self.per_frame = 24 * 6 + 1 + c.num_betas
        self.mlp = ResidualMLP(c.window * c.num_joints * self.in_channels, c.window * self.per_frame, c.width,
                               c.n_blocks, out_scale=0.01)
        with torch.no_grad():  # start at the rest pose, upright, facing the camera, mean shape
            bias = torch.zeros(c.window, self.per_frame)
            rot = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]).reshape(6)
            bias[:, : 24 * 6] = rot.repeat(24)
            bias[:, :6] = torch.tensor([[1.0, 0.0], [0.0, -1.0], [0.0, 0.0]]).reshape(6)  # R_x(pi)
            self.mlp.out.bias.copy_(bias.reshape(-1))
        self.marker_offsets = nn.Parameter(torch.zeros(16, 3), requires_grad=c.learn_marker_offsets)

    @staticmethod
    def output_joints(out: StudentOutput) -> torch.Tensor:
        """The canonical joints ``(B, T, 16, 3)`` (metres, root-relative) of a :class:`StudentOutput`."""
        return out.joints_3d

    def init_from(self, src: "Student") -> None:
        """Start from another student's weights (``model.init_checkpoint``): the same
        architecture is copied; a source without confidence input initialises a model with
        it (confidence weights zero, :func:`lifting.models.teacher.inflate_input_weights`).

        Raises:
            ValueError: any other difference.
        """
        other = {k: v for k, v in src.config.items() if k != "use_confidence"}
        mine = {k: v for k, v in self.config.items() if k != "use_confidence"}
        if other != mine or (src.use_confidence and not self.use_confidence):
            raise ValueError(f"cannot start a student {self.config} from {src.config}")
        if src.config == self.config:
            self.load_state_dict(src.state_dict())
            return
        state = {k: v for k, v in src.state_dict().items() if not k.startswith("mlp.inp.")}
        self.load_state_dict(state, strict=False)
        inflate_input_weights(self.mlp.inp, src.mlp.inp, self.window, src.window, self.in_channels, src.in_channels,
                              self.num_joints)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, conf: torch.Tensor | None = None,
                return_vertices: bool = False):
        B = x.shape[0]
        if x.shape[1:] != (self.window, self.num_joints, 2):
            raise ValueError(
                f"student expects keypoints of shape (B, {self.window}, {self.num_joints}, 2), got {tuple(x.shape)}"
            )
        feats = input_features(x, mask, conf, self.use_confidence)
        out = self.mlp(feats).reshape(B, self.window, self.per_frame).float()
        rot = rot6d_to_rotmat(out[..., : 24 * 6].reshape(B, self.window, 24, 6))
        s = weak_perspective_scale0 * torch.exp(out[..., 24 * 6].clamp(-5, 5))
        betas_frames = out[..., 24 * 6 + 1:]
        betas = betas_frames.mean(dim=1)
        return self.decode(rot[:, :, 0], rot[:, :, 1:], betas, s, betas_frames, return_vertices)

    def decode(self, global_orient, body_pose, betas, s, betas_frames=None, return_vertices: bool = False):
        """Body-model forward for predicted parameters (``betas (B, num_betas)`` shared by the
        ``T`` frames) -> :class:`StudentOutput` (plus ``.vertices (B, T, V, 3)`` root-relative
        metres when ``return_vertices``)."""
        bm = self.body_model(global_orient, body_pose, betas[:, None, :], canon_offsets=self.marker_offsets,
                             return_vertices=return_vertices)
        root = bm.joints_canon[..., self.root_index: self.root_index + 1, :]
        cam = torch.stack([s, torch.zeros_like(s), torch.zeros_like(s)], dim=-1)
        res = StudentOutput(global_orient, body_pose, betas,
                            betas[:, None].expand(-1, global_orient.shape[1], -1) if betas_frames is None else betas_frames,
                            cam, bm.joints_canon - root, bm.joints - root)
        if return_vertices:
            res.vertices = bm.vertices - root
        return res

    @classmethod
    def from_config(cls, config: StudentConfig, body_model: BodyModel | None) -> "Student":
        """Build from a :class:`StudentConfig` (the common signature of
        :meth:`lifting.models.checkpoint.build_model`). ``body_model`` may be ``None`` only to
        build a shape-only copy on the ``meta`` device. Raises nothing."""
        return cls(config, body_model)
