"""What one lift produces, as plain arrays: :class:`LiftResult` per track and the
:class:`TrackMeshes` of the frames that get meshes. The write step
(:mod:`lifting.outputs`, :mod:`lifting.io.exports`) reads only these; the models live in
:mod:`lifting.track_lifter` (which re-exports both names).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .skeletons import CANON16

if TYPE_CHECKING:  # the student's parameters (torch); this module stays model-free
    from .track_lifter import SmplFit

__all__ = ["LiftResult", "TrackMeshes", "MODEL_FPS"]

MODEL_FPS = 30.0
"""Frame rate of the training mocap; temporal models resample other rates to this."""


@dataclass
class TrackMeshes:
    """Body meshes of some frames of one track, decoded by a student
    (:meth:`lifting.track_lifter.StudentLifter.meshes`).

    Attributes:
        index: ``(M,)`` int64 indices into the track's :class:`LiftResult` frames, ascending.
        vertices: ``(M, V, 3)`` float32 metres, root-relative, camera frame (x right, y
            down, z forward).
        faces: ``(F, 3)`` int vertex indices of the body model's triangles.
    """

    index: np.ndarray
    vertices: np.ndarray
    faces: np.ndarray

    def at(self, picks: np.ndarray) -> np.ndarray:
        """Vertices ``(len(picks), V, 3)`` of frames ``picks`` (indices into the result).

        Raises:
            KeyError: a pick that these meshes do not hold."""
        where = {int(i): k for k, i in enumerate(self.index)}
        return self.vertices[[where[int(i)] for i in picks]]


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
        smpl: :class:`lifting.track_lifter.SmplFit` for a student, ``None`` for a teacher.
        joints_3d_std: ``(T, J)`` float32 metres, per-joint 3D uncertainty
            (:mod:`lifting.uncertainty`), ``None`` when not computed.
        lifted_by: ``((start, stop, model name), ...)`` which model lifted which frames
            (indices into this result; a :class:`LifterPair` uses two models).
        name: the input's name for the track (a VideoPose3D video), ``""`` when none.
        transl: ``(T, 3)`` float32 metres, the root's camera-frame position
            (:mod:`lifting.placement`), ``None`` without camera intrinsics.
        meshes: :class:`TrackMeshes` of the frames the figures and videos show (decoded by
            the lift step, :func:`lifting.lift.lift_file`), ``None`` when none are shown or
            the model has no body.
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
    lifted_by: tuple = ()
    name: str = ""
    transl: np.ndarray | None = None
    meshes: TrackMeshes | None = None

    @property
    def stem(self) -> str:
        """File stem of this track's outputs (:func:`lifting.io.tracks.track_stem`)."""
        from .io.tracks import track_stem

        return track_stem(self.track_id, self.name)

    @classmethod
    def empty(cls, track_id: int, skipped_frame_ids: np.ndarray, num_joints: int = CANON16.num_joints):
        """A result without lifted frames."""
        return cls(int(track_id), np.zeros(0, np.int64), np.zeros((0, num_joints, 3), np.float32),
                   np.zeros((0, num_joints, 2), np.float32), np.zeros((0, num_joints), bool),
                   np.asarray(skipped_frame_ids))
