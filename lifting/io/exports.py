"""Per-track output files of ``posenet3d lift``: the npz (always) and the optional BVH / CSV /
JSON exports, each written atomically (:func:`lifting.io.fileio.atomic_write`).

The exports keep the video's timing: the track is cut into :func:`lifting.io.bvh.motion_clips`
(short gaps filled with interpolated rotations, long gaps split into clips). The BVH gets one
file per clip (``track_XXXX.bvh``, ``track_XXXX_clip1.bvh``, ...); CSV and JSON hold every
frame of every clip, interpolated ones marked (``interpolated`` column / list, all joints
``observed = 0``). With a per-joint uncertainty (``joints_3d_std``, :mod:`lifting.uncertainty`)
the CSV has a ``std`` column and the JSON a ``joints_3d_std`` list (metres; empty / ``null`` on
interpolated frames).
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from ..skeletons import CANON16
from .bvh import MAX_FILL_GAP_S, MotionClip, motion_clips, write_bvh
from .fileio import atomic_write

__all__ = ["write_track_npz", "write_track_exports", "add_floor_frame", "COORDINATE_FRAME", "FLOOR_FRAME"]

COORDINATE_FRAME = "camera: x right, y down, z forward; root-relative (pelvis)"
FLOOR_FRAME = ("floor: y up (normal of the fitted ground plane), origin on the floor under the first frame's "
               "root, x to the camera's right and z towards the camera, along the floor; metres")


def add_floor_frame(path: Path, rotation: np.ndarray, origin: np.ndarray) -> None:
    """Add ``joints_3d_floor (T, 16, 3)`` metres (the track's ``joints_3d_cam`` in the floor frame,
    :data:`FLOOR_FRAME`: ``(p - origin) @ rotation.T``), ``floor_rotation (3, 3)``,
    ``floor_origin (3,)`` and ``floor_frame`` to a written ``track_XXXX.npz``; a file without
    ``joints_3d_cam`` (not placed) is left as it is. The arrays are appended to the npz's zip
    archive as new members (the others are neither re-read nor re-written): meant for files in
    a staging folder (:func:`lifting.io.fileio.staged_output_folder`), which a failure discards
    whole.

    Args:
        path: the npz. rotation: camera frame -> floor frame. origin: the floor frame's origin
            in camera coordinates, metres (:class:`lifting.placement.Floor`).

    Raises:
        OSError: from the file system.
    """
    with np.load(path, allow_pickle=False) as d:
        if "joints_3d_cam" not in d.files:
            return
        cam = d["joints_3d_cam"].astype(np.float64)
    R, o = np.asarray(rotation, np.float64), np.asarray(origin, np.float64)
    arrays = {"joints_3d_floor": ((cam - o) @ R.T).astype(np.float32), "floor_rotation": R.astype(np.float32),
              "floor_origin": o.astype(np.float32), "floor_frame": np.array(FLOOR_FRAME)}
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_STORED) as z:  # float data barely deflates: 4x faster stored
        for name, a in arrays.items():
            with z.open(f"{name}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, a, allow_pickle=False)


def write_track_npz(folder: Path, result, fps: float | None) -> str:
    """Write ``track_XXXX.npz`` of a :class:`lifting.track_lifter.LiftResult` (``joints_3d
    (T, 16, 3)`` metres and the other keys listed in :func:`lifting.lift.lift_file`, plus
    ``joints_3d_std (T, 16)`` metres when computed and the SMPL arrays of a student),
    atomically; ``fps`` ``None`` is stored as NaN. The arrays are stored uncompressed
    (``np.savez``; ``np.load`` reads them as before): deflate took most of the write time of a
    large input (issue 23) for ~20% smaller files of float data.

    Returns:
        The file name. Raises: OSError from the file system (nothing half-written is left).
    """
    arrays = dict(joints_3d=result.joints_3d, joint_names=np.array(CANON16.joint_names),
                  parents=np.array(CANON16.parents), frame_ids=result.frame_ids, keypoints_2d=result.keypoints_2d,
                  mask=result.mask, skipped_frame_ids=result.skipped_frame_ids, units=np.array("m"),
                  coordinate_frame=np.array(COORDINATE_FRAME), fps=np.array(fps if fps is not None else np.nan),
                  track_id=np.array(result.track_id), name=np.array(result.name))
    if result.joints_3d_std is not None:
        arrays["joints_3d_std"] = result.joints_3d_std.astype(np.float32)
    if result.transl is not None:  # where the person is: camera frame, metres
        arrays["transl"] = result.transl.astype(np.float32)
        arrays["joints_3d_cam"] = (result.joints_3d + result.transl[:, None]).astype(np.float32)
    if result.smpl is not None:
        arrays |= result.smpl.npz_arrays()
        if result.transl is not None:  # the body model's transl: the mesh placed in the camera frame
            arrays["smpl_transl"] = result.smpl.smpl_transl(result.transl)
    path = folder / f"{result.stem}.npz"
    return atomic_write(path, lambda tmp: np.savez(tmp, **arrays)).name


def _clip_std(clips: list[MotionClip], result) -> list[np.ndarray | None] | None:
    """Per clip ``(F, J)`` std of its frames (NaN on interpolated ones), or ``None`` without
    ``result.joints_3d_std``."""
    if result.joints_3d_std is None:
        return None
    out = []
    for c in clips:
        std = np.full((len(c.frame_ids), CANON16.num_joints), np.nan)
        pos = np.searchsorted(result.frame_ids, c.frame_ids).clip(0, len(result.frame_ids) - 1)
        hit = result.frame_ids[pos] == c.frame_ids
        std[hit] = result.joints_3d_std[pos[hit]]
        out.append(std)
    return out


def _root_relative(c: MotionClip) -> np.ndarray:
    r = CANON16.root_index
    return c.joints_3d - c.joints_3d[:, r:r + 1]


def _csv_text(clips: list[MotionClip], stds: list[np.ndarray] | None, placed: bool) -> str:
    """One row per frame and joint: root-relative ``x, y, z`` metres and, for a placed track,
    the root's camera-frame position ``root_x, root_y, root_z``."""
    rows = ["frame_id,joint,x,y,z,observed,interpolated" + (",std" if stds is not None else "")
            + (",root_x,root_y,root_z" if placed else "")]
    r = CANON16.root_index
    for k, c in enumerate(clips):
        rel = _root_relative(c)
        for t, fid in enumerate(c.frame_ids):
            interp = int(c.interpolated[t])
            root = ",{:.6f},{:.6f},{:.6f}".format(*c.joints_3d[t, r]) if placed else ""
            for j, name in enumerate(CANON16.joint_names):
                x, y, z = rel[t, j]
                row = f"{int(fid)},{name},{x:.6f},{y:.6f},{z:.6f},{int(c.observed[t, j])},{interp}"
                if stds is not None:
                    row += "," if np.isnan(stds[k][t, j]) else f",{stds[k][t, j]:.6f}"
                rows.append(row + root)
    return "\n".join(rows) + "\n"


def _json_text(track_id: int, clips: list[MotionClip], bvh_names: list[str | None], fps: float,
               stds: list[np.ndarray] | None, placed: bool = False) -> str:
    doc = {"track_id": track_id, "units": "m", "coordinate_frame": COORDINATE_FRAME,
           "joint_names": list(CANON16.joint_names), "parents": list(CANON16.parents),
           "frame_ids": [int(f) for c in clips for f in c.frame_ids],
           "joints_3d": np.round(np.concatenate([_root_relative(c) for c in clips]).astype(np.float64), 6).tolist(),
           "observed": np.concatenate([c.observed for c in clips]).astype(bool).tolist(),
           "interpolated": np.concatenate([c.interpolated for c in clips]).astype(bool).tolist(),
           "fps": fps, "max_fill_gap_s": MAX_FILL_GAP_S,
           "clips": [{"first_frame_id": int(c.frame_ids[0]), "last_frame_id": int(c.frame_ids[-1]),
                      "frames": int(len(c.frame_ids)), "interpolated_frames": int(c.interpolated.sum()), "bvh": b}
                     for c, b in zip(clips, bvh_names)]}
    if placed:  # the root's camera-frame position (transl), per frame
        r = CANON16.root_index
        doc["transl"] = np.round(np.concatenate([c.joints_3d[:, r] for c in clips]).astype(np.float64), 6).tolist()
    if stds is not None:  # null on interpolated frames
        doc["joints_3d_std"] = [None if np.isnan(row).any() else np.round(row.astype(np.float64), 6).tolist()
                                for row in np.concatenate(stds)]
    return json.dumps(doc)


def write_track_exports(folder: Path, result, export: tuple[str, ...], fps: float) -> list[str]:
    """BVH / CSV / JSON files (``export`` a subset of ``("bvh", "csv", "json")``) of a
    :class:`lifting.track_lifter.LiftResult` with at least one frame, at ``fps`` frames per
    second (gap handling: module docstring). Returns the file names written, in order.

    Raises:
        ValueError: from :func:`lifting.io.bvh.motion_clips` / :func:`write_bvh`.
    """
    if not export:
        return []
    placed = result.transl is not None  # then the clips (and the BVH root) carry where the person is
    joints = result.joints_3d + result.transl[:, None] if placed else result.joints_3d
    clips = motion_clips(joints, result.frame_ids, result.mask, fps)
    stds = _clip_std(clips, result)
    stem = result.stem
    names: list[str] = []
    bvh_names: list[str | None] = [None] * len(clips)
    if "bvh" in export:
        for k, c in enumerate(clips):
            bvh_names[k] = write_bvh(folder / (f"{stem}.bvh" if k == 0 else f"{stem}_clip{k}.bvh"), c.joints_3d,
                                     fps).name
        names += bvh_names
    if "csv" in export:
        text = _csv_text(clips, stds, placed)
        names.append(atomic_write(folder / f"{stem}.csv", lambda tmp: Path(tmp).write_text(text)).name)
    if "json" in export:
        text = _json_text(result.track_id, clips, bvh_names, fps, stds, placed)
        names.append(atomic_write(folder / f"{stem}.json", lambda tmp: Path(tmp).write_text(text)).name)
    return names
