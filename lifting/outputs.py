"""The write step of ``posenet3d lift``: everything one run produces, written into the
(staging) folder it is given (:func:`lifting.io.fileio.staged_output_folder` moves it into
place), in the order the pipeline produces it:

1. :meth:`LiftOutputs.add` per lifted track: ``track_XXXX.npz``, the BVH/CSV/JSON exports,
   the chosen meshes; the longest tracks are kept for figures.
2. :meth:`LiftOutputs.finish`: figures, videos and default meshes of the kept tracks (their
   vertices decoded once per track), then the summary fields.
"""
from __future__ import annotations

import heapq
from pathlib import Path

import numpy as np

from .io.bvh import bvh_residual
from .io.exports import write_track_exports, write_track_npz
from .io.fileio import atomic_write
from .options import LiftOptions
from .skeletons import CANON16
from .track_lifter import MODEL_FPS, LiftResult

__all__ = ["LiftOutputs", "write_meshes"]


def write_meshes(folder: Path, lifter, result: LiftResult, picks: np.ndarray, fmt: str, chunk: int = 64,
                 vertices: np.ndarray | None = None) -> list[str]:
    """Mesh files ``meshes/track_XXXX_frame_YYYYYY.<fmt>`` for frames ``picks`` (indices into
    ``result``), y up and z towards the viewer (camera frame turned 180 deg about x), metres,
    root-relative. Vertices ``(len(picks), V, 3)`` may be given; else they are decoded
    ``chunk`` frames at a time (a long mesh sequence never holds all its vertices at once).

    Returns:
        Names relative to ``folder`` (``meshes/...``).
    """
    import trimesh

    names = []
    for s in range(0, len(picks), chunk):
        sel = picks[s:s + chunk]
        verts = lifter.vertices(result, sel) if vertices is None else vertices[s:s + chunk]
        for v, fid in zip(verts * np.array([1.0, -1.0, -1.0], dtype=np.float32), result.frame_ids[sel]):
            mesh = trimesh.Trimesh(vertices=v, faces=lifter.faces, process=False)
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
        folder: where to write (the staging folder). lifter: a
        :mod:`lifting.track_lifter` lifter. options: :class:`LiftOptions`. fps: the tracks'
        frame rate (``None`` unknown: exports use :data:`MODEL_FPS`). title: figure title prefix.
    """

    def __init__(self, folder: Path, lifter, options: LiftOptions, fps: float | None, title: str):
        self.folder, self.lifter, self.options, self.fps, self.title = Path(folder), lifter, options, fps, title
        self.files: list[str] = []
        self.meshes: list[str] = []
        self.tracks: list[dict] = []
        self.frames_lifted = self.frames_skipped = 0
        self._kept: list = []  # heap of (frames, -order, result): the longest tracks, for figures/videos
        self._mesh_hits: set[int] = set()

    def add(self, res: LiftResult) -> None:
        """Write the files of one lifted track and record its statistics."""
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
        if res.smpl is not None and o.mesh_frames is not None:
            picks = np.arange(T) if o.mesh_frames == "all" else np.flatnonzero(np.isin(res.frame_ids, o.mesh_frames))
            self._mesh_hits.update(int(f) for f in res.frame_ids[picks])
            self.meshes += write_meshes(self.folder, self.lifter, res, picks, o.mesh_format)
        if T >= o.min_figure_frames and o.max_figures > 0:
            item = (T, -len(self.tracks), res)
            if len(self._kept) < o.max_figures:
                heapq.heappush(self._kept, item)
            elif item[:2] > self._kept[0][:2]:
                heapq.heapreplace(self._kept, item)

    def missing_mesh_frames(self) -> list[int]:
        """Requested ``mesh_frames`` ids that no lifted track has."""
        o = self.options
        if o.mesh_frames is None or o.mesh_frames == "all" or self.lifter.faces is None:
            return []
        return sorted(set(o.mesh_frames) - self._mesh_hits)

    def finish(self) -> dict:
        """Figures, videos and (when ``mesh_frames`` is None) default meshes of the longest
        tracks. Returns ``{"figures", "videos"}`` file names."""
        from .viz import figure_frames

        o = self.options
        figures, videos = [], []
        for _, _, res in sorted(self._kept, key=lambda k: (-k[0], -k[1])):
            T = len(res.frame_ids)
            fig = figure_frames(T)
            vid = fig[:0]
            if o.video:
                vid = np.unique(np.linspace(0, T - 1, min(T, o.video_max_frames)).round().astype(int))
            verts = None
            if res.smpl is not None:  # one decode for the figure, the video and the default meshes
                both = np.union1d(fig, vid)
                all_v = self.lifter.vertices(res, both)
                verts = {int(i): v for i, v in zip(both, all_v)}
                if o.mesh_frames is None:
                    self.meshes += write_meshes(self.folder, self.lifter, res, fig, o.mesh_format,
                                                vertices=np.stack([verts[int(i)] for i in fig]))
            figures.append(self._figure(res, fig, verts))
            if o.video:
                videos.append(self._video(res, vid, verts))
        return {"figures": figures, "videos": videos}

    def _figure(self, res: LiftResult, picks: np.ndarray, verts: dict | None) -> str:
        from .viz import plot_mesh_frames, plot_track_frames

        path = self.folder / f"{res.stem}.png"
        title = f"{self.title}: track {res.track_id}"
        if verts is None:
            return plot_track_frames(path, CANON16, res.keypoints_2d, res.mask, res.joints_3d, res.frame_ids,
                                     title=title).name
        return plot_mesh_frames(path, CANON16, res.keypoints_2d[picks], res.mask[picks],
                                np.stack([verts[int(i)] for i in picks]), self.lifter.faces, res.smpl.cam[picks],
                                res.frame_ids[picks], title=title).name

    def _video(self, res: LiftResult, picks: np.ndarray, verts: dict | None) -> str:
        from .viz import animate_track

        rate = (self.fps or MODEL_FPS) * len(picks) / len(res.frame_ids)
        v = cam = faces = None
        if verts is not None:
            v, cam, faces = np.stack([verts[int(i)] for i in picks]), res.smpl.cam[picks], self.lifter.faces
        return animate_track(self.folder / f"{res.stem}.{self.options.video}", CANON16,
                             res.keypoints_2d[picks], res.mask[picks], res.joints_3d[picks], res.frame_ids[picks],
                             fps=rate, vertices=v, faces=faces, cam=cam, max_frames=len(picks),
                             progress=self.options.progress, title=f"{self.title}: track {res.track_id}").name
