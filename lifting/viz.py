"""Figures (matplotlib, Agg backend): 2D input beside the lifted 3D skeleton."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .io.fileio import atomic_write
from .skeletons import Skeleton

__all__ = ["plot_track_frames", "plot_mesh_frames", "figure_frames", "animate_track", "plot_paths_topdown",
           "MeshFrames", "RenderStyle"]


def _limb_colour(skeleton: Skeleton, j: int) -> str:
    n = skeleton.joint_names[j]
    return "tab:red" if n.startswith(("r_", "right")) else "tab:blue" if n.startswith(("l_", "left")) else "0.3"


def _draw_2d(ax, skeleton: Skeleton, kp: np.ndarray, m: np.ndarray, lw: float, size: float) -> None:
    """The observed 2D joints ``kp (J, 2)`` (mask ``m (J,)``) and the bones between them."""
    for c, p in skeleton.bones():
        if m[c] and m[p]:
            ax.plot(kp[[c, p], 0], kp[[c, p], 1], color=_limb_colour(skeleton, c), lw=lw)
    ax.scatter(kp[m, 0], kp[m, 1], s=size, c="k", zorder=3)


def _side_legend(fig) -> None:
    """A figure legend for the limb colours (left / right / centre), below the plots."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c, lw=2, label=lab) for c, lab in
               (("tab:blue", "left limbs"), ("tab:red", "right limbs"), ("0.3", "spine / head"))]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8, frameon=False)


def _save_png(fig, path: str | Path, title: str) -> Path:
    """Title, the side legend, tighten (leaving room for both), write atomically as PNG, close."""
    import matplotlib.pyplot as plt

    if title:
        fig.suptitle(title, fontsize=10)
    _side_legend(fig)
    fig.tight_layout(rect=(0, 0.06, 1, 0.97 if title else 1))
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=80, format="png"))
    finally:
        plt.close(fig)


def figure_frames(T: int, n_frames: int = 4) -> np.ndarray:
    """Indices of ``n_frames`` evenly spaced frames of a ``T``-frame track (fewer if short)."""
    return np.unique(np.linspace(0, T - 1, min(n_frames, T)).round().astype(int))


MESH_COLOUR = (0.55, 0.7, 0.9)  # RGB of lit mesh faces


@dataclass(frozen=True)
class MeshFrames:
    """A student's body meshes of ``n`` frames, for :func:`plot_mesh_frames` and
    :func:`animate_track`.

    Attributes:
        vertices: ``(n, V, 3)`` root-relative metres, camera frame (x right, y down, z forward).
        faces: ``(F, 3)`` int vertex indices. cam: ``(n, 3)`` pixel weak-perspective camera
            ``(s, tx, ty)`` (``pixel ~ s * P_xy + (tx, ty)``,
            :data:`lifting.track_lifter.CAM_CONVENTION`).
    """

    vertices: np.ndarray
    faces: np.ndarray
    cam: np.ndarray


def _draw_mesh(ax, pts: np.ndarray, depth: np.ndarray, faces: np.ndarray, colour=MESH_COLOUR) -> None:
    """Painter's-algorithm mesh drawing on a 2D axis: ``pts (V, 2)`` plot coordinates,
    ``depth (V,)`` distance from the viewer; back faces culled, Lambert shading with the
    light at the viewer."""
    from matplotlib.collections import PolyCollection

    tri2, shade = _mesh_polygons(pts, depth, faces)
    ax.add_collection(PolyCollection(tri2, facecolors=shade[:, None] * np.asarray(colour)[None], edgecolors="none"))


def _mesh_polygons(pts: np.ndarray, depth: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Front faces of a mesh, far first: ``(F', 3, 2)`` triangles and ``(F',)`` Lambert shade."""
    tri2 = pts[faces]  # (F, 3, 2)
    tri3 = np.concatenate([tri2, depth[faces][..., None]], -1)
    n = np.cross(tri3[:, 1] - tri3[:, 0], tri3[:, 2] - tri3[:, 0])
    n /= np.linalg.norm(n, axis=-1, keepdims=True).clip(1e-12)
    # plot axes here are (right, down, away), so faces seen from the viewer have n_z < 0
    front = n[:, 2] < 0
    order = np.argsort(-tri3[front, :, 2].mean(-1))  # far first
    return tri2[front][order], np.clip(-n[front, 2][order], 0.2, 1.0)


def plot_mesh_frames(
    path: str | Path,
    skeleton: Skeleton,
    keypoints_2d: np.ndarray,
    mask: np.ndarray,
    mesh: MeshFrames,
    frame_ids: np.ndarray,
    title: str = "",
) -> Path:
    """Save a figure of a student's meshes: top row the mesh projected into the image with
    its weak-perspective camera, under the observed 2D keypoints; bottom row the mesh seen
    from the subject's side (orthographic, metres).

    Args:
        keypoints_2d: ``(n, J, 2)`` pixels; mask: ``(n, J)``; mesh: :class:`MeshFrames` of
            the same ``n`` frames; frame_ids ``(n,)``.

    Returns:
        The written path (PNG, written atomically).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(frame_ids)
    vertices, faces, cam = mesh.vertices, np.asarray(mesh.faces), mesh.cam
    fig, axes = plt.subplots(2, n, figsize=(3.2 * n, 6.4), squeeze=False)
    for col in range(n):
        ax = axes[0, col]
        v, (s, tx, ty) = vertices[col], cam[col]
        _draw_mesh(ax, v[:, :2] * s + np.array([tx, ty]), v[:, 2], faces)
        m = mask[col].astype(bool)
        _draw_2d(ax, skeleton, keypoints_2d[col], m, lw=1.5, size=8)
        ax.autoscale_view()
        ax.set_aspect("equal")
        ax.invert_yaxis()
        ax.set_title(f"mesh on 2D input, frame {int(frame_ids[col])}", fontsize=9)
        ax.tick_params(labelsize=7)
        ax2 = axes[1, col]
        # side view: the viewer stands on the camera's right (+x), looking along -x, so
        # (right, down, away) = (z, y, -x), a proper rotation of the camera frame
        _draw_mesh(ax2, np.stack([v[:, 2], v[:, 1]], -1), -v[:, 0], faces)
        ax2.set_xlim(-1.1, 1.1)
        ax2.set_ylim(1.2, -1.1)
        ax2.set_aspect("equal")
        ax2.set_title("side view (m)", fontsize=9)
        ax2.tick_params(labelsize=7)
    return _save_png(fig, path, title)


def plot_track_frames(
    path: str | Path,
    skeleton: Skeleton,
    keypoints_2d: np.ndarray,
    mask: np.ndarray,
    joints_3d: np.ndarray,
    frame_ids: np.ndarray,
    title: str = "",
    n_frames: int = 4,
) -> Path:
    """Save a figure of ``n_frames`` evenly spaced frames: top row the 2D input (pixels,
    observed joints only, the number of masked ones printed), bottom row the 3D skeleton (metres,
    camera frame shown with y up).

    Args:
        keypoints_2d: ``(T, J, 2)`` pixels; mask: ``(T, J)`` observed joints;
        joints_3d: ``(T, J, 3)`` root-relative metres, camera frame (x right, y down, z fwd);
        frame_ids: ``(T,)``.

    Returns:
        The written path (PNG, written atomically).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    picks = figure_frames(len(frame_ids), n_frames)
    fig = plt.figure(figsize=(3.2 * len(picks), 6.4))
    bones = skeleton.bones()
    lim = max(0.9, float(np.abs(joints_3d[picks]).max()) * 1.05)
    for col, t in enumerate(picks):
        ax = fig.add_subplot(2, len(picks), col + 1)
        m = mask[t].astype(bool)
        _draw_2d(ax, skeleton, keypoints_2d[t], m, lw=2, size=10)
        n_miss = int((~m).sum())
        if n_miss:
            ax.text(0.02, 0.02, f"{n_miss} joints masked", transform=ax.transAxes, fontsize=7)
        ax.set_aspect("equal")
        ax.invert_yaxis()
        ax.set_title(f"2D input, frame {int(frame_ids[t])}", fontsize=9)
        ax.set_xlabel("x (px)", fontsize=7)
        ax.set_ylabel("y (px)", fontsize=7)
        ax.tick_params(labelsize=7)
        ax3 = fig.add_subplot(2, len(picks), len(picks) + col + 1, projection="3d")
        # camera frame -> plot frame: x right, z forward (depth), -y up
        P = np.stack([joints_3d[t, :, 0], joints_3d[t, :, 2], -joints_3d[t, :, 1]], -1)
        for c, p in bones:
            ax3.plot(P[[c, p], 0], P[[c, p], 1], P[[c, p], 2], color=_limb_colour(skeleton, c), lw=2)
        ax3.set_xlim(-lim, lim)
        ax3.set_ylim(-lim, lim)
        ax3.set_zlim(-lim, lim)
        ax3.set_box_aspect((1, 1, 1))
        ticks = [-round(lim / 2, 1), 0.0, round(lim / 2, 1)]
        ax3.set_xticks(ticks)
        ax3.set_yticks(ticks)
        ax3.set_zticks(ticks)
        ax3.view_init(elev=10, azim=-70)
        ax3.set_xlabel("x (m)", fontsize=7)
        ax3.set_ylabel("depth (m)", fontsize=7)
        ax3.set_zlabel("up (m)", fontsize=7)
        ax3.tick_params(labelsize=6)
        ax3.set_title("3D (root-relative)", fontsize=9)
    return _save_png(fig, path, title)


@dataclass(frozen=True)
class RenderStyle:
    """How :func:`animate_track` renders.

    Attributes:
        fps: source frame rate (frames/s) of the arrays given; playback keeps their duration.
        max_frames: longer tracks are subsampled evenly to at most this many frames (the
            playback rate is lowered to keep the duration).
        progress: show a progress bar (tqdm). title: the figure's title ("" none).
        dpi: pixels per inch of the frames (the 8 x 4 inch figure: 576 x 288 at 72).
    """

    fps: float = 30.0
    max_frames: int = 300
    progress: bool = True
    title: str = ""
    dpi: int = 72


def animate_track(
    path: str | Path,
    skeleton: Skeleton,
    keypoints_2d: np.ndarray,
    mask: np.ndarray,
    joints_3d: np.ndarray,
    frame_ids: np.ndarray,
    mesh: MeshFrames | None = None,
    style: RenderStyle = RenderStyle(),
) -> Path:
    """Render an animation: the 2D input (and, for a student, its mesh projected with the
    pixel camera) beside the 3D skeleton. One figure is drawn once; each frame redraws only
    the moving artists over a copy of that still background (blitting) and hands the pixels
    to the encoder (:class:`_FrameSink`).

    Args:
        path: ``.gif`` (Pillow, always available) or ``.mp4`` (needs ``ffmpeg`` on PATH).
        keypoints_2d: ``(T, J, 2)`` pixels; mask ``(T, J)``; joints_3d ``(T, J, 3)`` metres,
            camera frame; frame_ids ``(T,)``.
        mesh: a student's :class:`MeshFrames` of the same ``T`` frames, or None.
        style: :class:`RenderStyle` (playback rate, subsampling, progress bar, title, dpi).

    Returns:
        The written path (written atomically).

    Raises:
        ValueError: unknown suffix, mp4 without ffmpeg, or inconsistent array shapes.
    """
    import sys

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from tqdm import tqdm

    path = Path(path)
    sink = _FrameSink.for_path(path)
    T = len(frame_ids)
    if keypoints_2d.shape[0] != T or joints_3d.shape[0] != T or mask.shape[0] != T:
        raise ValueError("keypoints_2d, mask, joints_3d and frame_ids must have the same number of frames")
    picks = figure_frames(T, style.max_frames)
    scene = _AnimationScene(skeleton, keypoints_2d, mask, joints_3d, frame_ids, mesh, style)
    bar = tqdm(total=len(picks), desc=f"render {path.name}", disable=not style.progress, leave=False,
               mininterval=0.5 if sys.stderr.isatty() else 30.0)

    def render(tmp: Path) -> None:
        with sink.open(tmp, max(1.0, style.fps * len(picks) / max(T, 1))) as add:
            for t in picks:
                add(scene.frame(int(t)))
                bar.update(1)

    try:
        return atomic_write(path, render)
    finally:
        bar.close()
        plt.close(scene.fig)


class _AnimationScene:
    """The figure of :func:`animate_track`, built once: a 2D axis (mesh, bones, joints, the
    frame's title) and a 3D axis (bones), their moving artists marked animated. The still
    background is drawn once; :meth:`frame` restores it, updates and draws the moving
    artists, and returns the frame's pixels ``(H, W, 4)`` uint8 RGBA."""

    def __init__(self, skeleton: Skeleton, keypoints_2d, mask, joints_3d, frame_ids, mesh, style: RenderStyle):
        import matplotlib.pyplot as plt
        from matplotlib.collections import LineCollection, PolyCollection
        from matplotlib.colors import to_rgba
        from mpl_toolkits.mplot3d.art3d import Line3DCollection

        self.kp, self.mask, self.j3, self.frame_ids, self.mesh = keypoints_2d, mask.astype(bool), joints_3d, \
            frame_ids, mesh
        self.bones = skeleton.bones()
        self.fig = fig = plt.figure(figsize=(8, 4), dpi=style.dpi)
        ax2 = fig.add_subplot(1, 2, 1)
        ax3 = fig.add_subplot(1, 2, 2, projection="3d")
        obs = keypoints_2d[self.mask]
        lo, hi = obs.min(0) - 20, obs.max(0) + 20
        lim = max(0.9, float(np.abs(joints_3d).max()) * 1.05)
        ax2.set_xlim(lo[0], hi[0])
        ax2.set_ylim(hi[1], lo[1])
        ax2.set_aspect("equal")
        self.poly = PolyCollection([], edgecolors="none") if mesh is not None else None
        if self.poly is not None:
            ax2.add_collection(self.poly)
        # the bones as one collection per axis (one draw call each), drawn like Line2D bones
        self.colours = np.array([to_rgba(_limb_colour(skeleton, c)) for c, _ in self.bones])
        self.child, self.parent = (np.array(b, dtype=int) for b in zip(*self.bones))
        self.lines2 = LineCollection([], linewidths=2, capstyle="projecting", joinstyle="round")
        ax2.add_collection(self.lines2)
        self.dots = ax2.scatter(np.zeros(0), np.zeros(0), s=8, c="k", zorder=3)
        self.title2 = ax2.set_title(f"2D input, frame {int(frame_ids[0])}", fontsize=9)
        self.lines3 = Line3DCollection(np.zeros((len(self.bones), 2, 3)), colors=self.colours, linewidths=2,
                                       capstyle="projecting", joinstyle="round")
        ax3.add_collection(self.lines3)
        ax3.set_xlim(-lim, lim)
        ax3.set_ylim(-lim, lim)
        ax3.set_zlim(-lim, lim)
        ax3.set_box_aspect((1, 1, 1))
        ax3.view_init(elev=10, azim=-70)
        ax3.set_title("3D (root-relative, m)", fontsize=9)
        if style.title:
            fig.suptitle(style.title, fontsize=10)
        self.moving = ([self.poly] if self.poly is not None else []) + [self.lines2, self.dots, self.title2,
                                                                          self.lines3]
        for a in self.moving:
            a.set_animated(True)
        fig.canvas.draw()  # the still background (and the 3D projection the moving lines use)
        self.background = fig.canvas.copy_from_bbox(fig.bbox)

    def _update(self, t: int) -> None:
        """Set the moving artists to frame ``t``."""
        if self.poly is not None:
            v, (s, tx, ty) = self.mesh.vertices[t], self.mesh.cam[t]
            tri2, shade = _mesh_polygons(v[:, :2] * s + np.array([tx, ty]), v[:, 2], self.mesh.faces)
            self.poly.set_verts(tri2)
            self.poly.set_facecolor(shade[:, None] * np.asarray(MESH_COLOUR)[None])
        kp, m = self.kp[t], self.mask[t]
        ok = m[self.child] & m[self.parent]  # bones with both ends observed
        self.lines2.set_segments(np.stack([kp[self.child[ok]], kp[self.parent[ok]]], 1))
        self.lines2.set_color(self.colours[ok])
        self.dots.set_offsets(kp[m])
        self.title2.set_text(f"2D input, frame {int(self.frame_ids[t])}")
        P = np.stack([self.j3[t, :, 0], self.j3[t, :, 2], -self.j3[t, :, 1]], -1)
        self.lines3.set_segments(np.stack([P[self.child], P[self.parent]], 1))
        self.lines3.do_3d_projection()  # what Axes3D.draw does for its collections (the view is fixed)

    def frame(self, t: int) -> np.ndarray:
        """Pixels ``(H, W, 4)`` uint8 RGBA of frame ``t`` (an index into the arrays)."""
        canvas = self.fig.canvas
        canvas.restore_region(self.background)
        self._update(t)
        for a in self.moving:
            a.axes.draw_artist(a)
        return np.array(canvas.buffer_rgba())


def _write_gif(out: Path, frames: list[np.ndarray], fps: float) -> None:
    """Write RGB frames ``(H, W, 3)`` uint8 as a looping GIF played at ``fps`` frames/s.

    One 256-colour palette serves every frame: Pillow's adaptive (median cut) palette of the
    first, middle and last frames, the palette matplotlib's PillowWriter would give each
    frame of these still-background scenes. Each frame's pixels take the exactly nearest
    palette colour (a lookup cached per 24-bit colour), not a median cut per frame (its
    ~20 ms a frame was the slowest step of rendering; issue 23).

    Raises:
        OSError: from the file system. ValueError: no frames."""
    from PIL import Image

    if not frames:
        raise ValueError("an animation needs at least one frame")
    sample = np.concatenate([frames[0], frames[len(frames) // 2], frames[-1]], 0)
    palette = Image.fromarray(sample, "RGB").convert("P", palette=Image.Palette.ADAPTIVE).getpalette()
    colours = np.asarray(palette, np.int32).reshape(-1, 3)
    lut = np.full(1 << 24, -1, np.int16)  # 24-bit colour -> palette index, -1 not looked up yet
    images = []
    for f in frames:
        code = (f[..., 0].astype(np.int32) << 16) | (f[..., 1].astype(np.int32) << 8) | f[..., 2]
        idx = lut[code]
        if (idx < 0).any():
            new = np.unique(code[idx < 0])
            rgb = np.stack([new >> 16, (new >> 8) & 255, new & 255], -1)
            lut[new] = ((rgb[:, None] - colours[None]) ** 2).sum(-1).argmin(1)
            idx = lut[code]
        im = Image.fromarray(idx.astype(np.uint8), "P")
        im.putpalette(palette)
        images.append(im)
    images[0].save(out, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)


class _FrameSink:
    """Encodes RGBA frames ``(H, W, 4)`` uint8 (opaque) into a ``.gif`` (:func:`_write_gif`;
    the frames are kept until written, as matplotlib's PillowWriter does) or an ``.mp4`` (H.264 by ``ffmpeg`` on
    PATH, each frame piped to it as raw RGBA when added).

    Raises (:meth:`for_path`): ValueError for another suffix or mp4 without ffmpeg."""

    def __init__(self, kind: str):
        self.kind = kind

    @classmethod
    def for_path(cls, path: Path) -> "_FrameSink":
        import shutil

        suffix = path.suffix.lower()
        if suffix not in (".gif", ".mp4"):
            raise ValueError(f"animation must be .gif or .mp4, got {path.name}")
        if suffix == ".mp4" and shutil.which("ffmpeg") is None:
            raise ValueError("mp4 output needs ffmpeg on PATH; use .gif (no extra tools needed)")
        return cls(suffix[1:])

    @contextmanager
    def open(self, out: Path, fps: float):
        """Context giving ``add(frame)``; the file ``out``, played at ``fps`` frames/s, is
        complete when the context exits without error.

        Raises:
            OSError: the file system or ffmpeg failed (ffmpeg's message included)."""
        if self.kind == "gif":
            frames = []
            yield lambda f: frames.append(np.ascontiguousarray(f[..., :3]))
            _write_gif(out, frames, fps)
            return
        yield from self._ffmpeg(out, fps)

    @staticmethod
    def _ffmpeg(out: Path, fps: float):
        import shutil
        import subprocess

        proc, size = None, None

        def add(f: np.ndarray) -> None:
            nonlocal proc, size
            if proc is None:
                size = f"{f.shape[1]}x{f.shape[0]}"
                proc = subprocess.Popen([shutil.which("ffmpeg"), "-f", "rawvideo", "-vcodec", "rawvideo", "-s", size,
                                         "-pix_fmt", "rgba", "-framerate", str(fps), "-loglevel", "error", "-i",
                                         "pipe:", "-vcodec", "h264", "-pix_fmt", "yuv420p", "-f", "mp4", "-y",
                                         str(out)], stdin=subprocess.PIPE, stderr=subprocess.PIPE)
            proc.stdin.write(np.ascontiguousarray(f).tobytes())

        try:
            yield add
        finally:
            if proc is not None:
                _, err = proc.communicate()
                if proc.returncode:
                    raise OSError(f"ffmpeg failed ({proc.returncode}): {err.decode(errors='replace')[-500:]}")


def plot_paths_topdown(path: str | Path, paths: dict[str, np.ndarray], camera: np.ndarray | None = None) -> Path:
    """Top-down figure, to scale, of every track's root path ``{name: (T, 3)}`` in the floor
    frame (metres; x right, z towards the camera; :class:`lifting.placement.Floor`), and the
    camera's floor-frame position ``camera (3,)`` marked. Returns the written PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 6.4))
    for name, p in paths.items():
        p = np.asarray(p, np.float64)
        ok = np.isfinite(p).all(-1)
        if ok.any():
            ax.plot(p[ok, 0], p[ok, 2], lw=1.2, label=name if len(paths) <= 12 else None)
            ax.scatter(p[ok][:1, 0], p[ok][:1, 2], s=12, c="k", zorder=3)
    if camera is not None:
        ax.scatter([camera[0]], [camera[2]], marker="^", s=60, c="tab:red", zorder=4, label="camera")
    ax.set_aspect("equal")
    ax.set_xlabel("x (m, right)", fontsize=8)
    ax.set_ylabel("z (m, towards the camera)", fontsize=8)
    ax.set_title("where people went (top view, start dots)", fontsize=9)
    if len(paths) <= 12:
        ax.legend(fontsize=6, loc="best")
    fig.tight_layout()
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=80, format="png"))
    finally:
        plt.close(fig)
