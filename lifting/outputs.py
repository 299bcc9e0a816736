"""The write step of ``posenet3d lift``: everything one run produces, written into the
(staging) folder it is given (:func:`lifting.io.fileio.staged_output_folder` moves it into
place), in the order the pipeline produces it. It gets plain arrays only
(:class:`lifting.lift_result.LiftResult` with its :class:`lifting.lift_result.TrackMeshes`;
the lift step decodes every mesh written here) and imports nothing model-side:

1. :meth:`LiftOutputs.add` per lifted track: ``track_XXXX.npz``, the BVH/CSV/JSON exports;
   the longest tracks are kept for figures (:meth:`LiftOutputs.shown_frames` says, before
   ``add``, which frames a track's figure and video would show).
2. :meth:`LiftOutputs.add_meshes` per part of the ``--mesh-frames`` meshes of a track.
3. :meth:`LiftOutputs.finish`: figures, videos and default meshes of the kept tracks, then
   the summary fields.
"""
from __future__ import annotations

import heapq
from pathlib import Path

import numpy as np

from .io.bvh import bvh_residual
from .io.exports import write_track_exports, write_track_npz
from .io.fileio import atomic_write
from .lift_result import MODEL_FPS, LiftResult, TrackMeshes
from .options import LiftOptions
from .skeletons import CANON16

__all__ = ["LiftOutputs", "write_meshes"]


def write_meshes(folder: Path, result: LiftResult, meshes: TrackMeshes, fmt: str) -> list[str]:
    """Mesh files ``meshes/track_XXXX_frame_YYYYYY.<fmt>`` (``fmt`` ``obj`` or ``ply``) of the
    frames ``meshes.index`` of ``result``: y up and z towards the viewer (camera frame turned
    180 deg about x), metres, root-relative.

    Returns:
        Names relative to ``folder`` (``meshes/...``). Raises: OSError from the file system.
    """
    import trimesh

    names = []
    verts = meshes.vertices * np.array([1.0, -1.0, -1.0], dtype=np.float32)
    for v, fid in zip(verts, result.frame_ids[meshes.index]):
        mesh = trimesh.Trimesh(vertices=v, faces=meshes.faces, process=False)
        p = folder / "meshes" / f"{result.stem}_frame_{int(fid):06d}.{fmt}"
        atomic_write(p, lambda tmp, m=mesh: m.export(tmp, file_type=fmt))
        names.append(f"meshes/{p.name}")
    return names


def _residual_pct(res: LiftResult) -> float | None:
    """Median over the track's frames of :func:`lifting.metrics.reprojection_residual` in % of
    the person's 2D height: how far the lift's own projection is from its input (0 = exact)."""
    from .metrics import reprojection_residual

    r = reprojection_residual(res.joints_3d, res.keypoints_2d, res.mask) if len(res.frame_ids) else np.zeros(0)
    r = r[np.isfinite(r)]
    return round(100 * float(np.median(r)), 2) if len(r) else None


class LiftOutputs:
    """Collects one run's per-track outputs and statistics (see the module docstring).

    Args:
        folder: where to write (the staging folder). options: :class:`LiftOptions`. fps:
        the tracks' frame rate (``None`` unknown: exports use :data:`MODEL_FPS`). title:
        figure title prefix. has_body: the model has a body (meshes can be written).
    """

    def __init__(self, folder: Path, options: LiftOptions, fps: float | None, title: str, has_body: bool = False):
        self.folder, self.options, self.fps, self.title = Path(folder), options, fps, title
        self.has_body = bool(has_body)
        self.files: list[str] = []
        self.meshes: list[str] = []
        self.tracks: list[dict] = []
        self.frames_lifted = self.frames_skipped = 0
        self._kept: list = []  # heap of (frames, -order, result): the longest tracks, for figures/videos
        self._mesh_hits: set[int] = set()

    def _views(self, T: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices of the figure's frames and of the video's frames (empty without
        ``--video``) of a ``T``-frame track."""
        from .viz import figure_frames

        fig = figure_frames(T)
        if not self.options.video:
            return fig, fig[:0]
        return fig, figure_frames(T, self.options.video_max_frames)

    def shown_frames(self, T: int) -> np.ndarray:
        """Indices (ascending) of the frames that the figure and video of the next track,
        with ``T`` lifted frames, show if :meth:`add` keeps it among the longest; empty if it
        would not be kept. Ask before :meth:`add`."""
        o = self.options
        if T < max(o.min_figure_frames, 1) or o.max_figures <= 0:
            return np.zeros(0, np.int64)
        if len(self._kept) >= o.max_figures and T <= self._kept[0][0]:
            return np.zeros(0, np.int64)
        return np.union1d(*self._views(T))

    def add(self, res: LiftResult) -> None:
        """Write the files of one lifted track and record its statistics; ``res.meshes`` must
        hold the :meth:`shown_frames` when the model has a body."""
        o = self.options
        T = len(res.frame_ids)
        self.tracks.append({"track_id": res.track_id, **({"name": res.name} if res.name else {}),
                            "frames_lifted": int(T),
                            "frames_skipped": int(len(res.skipped_frame_ids)),
                            "identity_switches": res.identity_switches,
                            "observed_joint_fraction": float(res.mask.mean()) if T else 0.0,
                            "reprojection_residual_pct": _residual_pct(res)})
        self.frames_lifted += T
        self.frames_skipped += len(res.skipped_frame_ids)
        if not T:
            return
        self.files.append(write_track_npz(self.folder, res, self.fps))
        self.files += write_track_exports(self.folder, res, o.export, self.fps or MODEL_FPS)
        if "bvh" in o.export:
            self.tracks[-1]["bvh_residual_cm"] = round(100 * bvh_residual(res.joints_3d), 2)
        if T >= o.min_figure_frames and o.max_figures > 0:
            item = (T, -len(self.tracks), res)
            if len(self._kept) < o.max_figures:
                heapq.heappush(self._kept, item)
            elif item[:2] > self._kept[0][:2]:
                heapq.heapreplace(self._kept, item)

    def add_meshes(self, res: LiftResult, meshes: TrackMeshes) -> None:
        """Write the ``--mesh-frames`` meshes ``meshes`` of track ``res`` (one part of them at
        a time keeps a long mesh sequence out of memory)."""
        self._mesh_hits.update(int(f) for f in res.frame_ids[meshes.index])
        self.meshes += write_meshes(self.folder, res, meshes, self.options.mesh_format)

    def missing_mesh_frames(self) -> list[int]:
        """Requested ``mesh_frames`` ids that no lifted track has."""
        o = self.options
        if o.mesh_frames is None or o.mesh_frames == "all" or not self.has_body:
            return []
        return sorted(set(o.mesh_frames) - self._mesh_hits)

    def finish(self) -> dict:
        """Figures, videos and (when ``mesh_frames`` is None) default meshes of the longest
        tracks. Returns ``{"figures", "videos"}`` file names."""
        o = self.options
        figures, videos = [], []
        for _, _, res in sorted(self._kept, key=lambda k: (-k[0], -k[1])):
            fig, vid = self._views(len(res.frame_ids))
            if res.meshes is not None and o.mesh_frames is None:
                self.meshes += write_meshes(self.folder, res, TrackMeshes(fig, res.meshes.at(fig), res.meshes.faces),
                                            o.mesh_format)
            figures.append(self._figure(res, fig))
            if o.video:
                videos.append(self._video(res, vid))
        return {"figures": figures, "videos": videos}

    def _figure(self, res: LiftResult, picks: np.ndarray) -> str:
        from .viz import MeshFrames, plot_mesh_frames, plot_track_frames

        path = self.folder / f"{res.stem}.png"
        title = f"{self.title}: track {res.track_id}"
        if res.meshes is None:
            return plot_track_frames(path, CANON16, res.keypoints_2d, res.mask, res.joints_3d, res.frame_ids,
                                     title=title).name
        return plot_mesh_frames(path, CANON16, res.keypoints_2d[picks], res.mask[picks],
                                MeshFrames(res.meshes.at(picks), res.meshes.faces, res.smpl.cam[picks]),
                                res.frame_ids[picks], title=title).name

    def _video(self, res: LiftResult, picks: np.ndarray) -> str:
        from .viz import MeshFrames, RenderStyle, animate_track

        rate = (self.fps or MODEL_FPS) * len(picks) / len(res.frame_ids)
        mesh = None
        if res.meshes is not None:
            mesh = MeshFrames(res.meshes.at(picks), res.meshes.faces, res.smpl.cam[picks])
        style = RenderStyle(fps=rate, max_frames=len(picks), progress=self.options.progress,
                            title=f"{self.title}: track {res.track_id}")
        return animate_track(self.folder / f"{res.stem}.{self.options.video}", CANON16, res.keypoints_2d[picks],
                             res.mask[picks], res.joints_3d[picks], res.frame_ids[picks], mesh, style).name
