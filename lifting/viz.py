"""Figures (matplotlib, Agg backend): 2D input beside the lifted 3D skeleton."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .fileio import atomic_write
from .skeletons import Skeleton

__all__ = ["plot_track_frames"]


def _limb_colour(skeleton: Skeleton, j: int) -> str:
    n = skeleton.joint_names[j]
    return "tab:red" if n.startswith(("r_", "right")) else "tab:blue" if n.startswith(("l_", "left")) else "0.3"


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

    T = len(frame_ids)
    picks = np.unique(np.linspace(0, T - 1, min(n_frames, T)).round().astype(int))
    fig = plt.figure(figsize=(3.2 * len(picks), 6.4))
    bones = skeleton.bones()
    lim = max(0.9, float(np.abs(joints_3d[picks]).max()) * 1.05)
    for col, t in enumerate(picks):
        ax = fig.add_subplot(2, len(picks), col + 1)
        kp, m = keypoints_2d[t], mask[t].astype(bool)
        for c, p in bones:
            if m[c] and m[p]:
                ax.plot(kp[[c, p], 0], kp[[c, p], 1], color=_limb_colour(skeleton, c), lw=2)
        ax.scatter(kp[m, 0], kp[m, 1], s=10, c="k", zorder=3)
        n_miss = int((~m).sum())
        if n_miss:
            ax.text(0.02, 0.02, f"{n_miss} joints masked", transform=ax.transAxes, fontsize=7)
        ax.set_aspect("equal")
        ax.invert_yaxis()
        ax.set_title(f"2D input, frame {int(frame_ids[t])}", fontsize=9)
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
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=80, format="png"))
    finally:
        plt.close(fig)
