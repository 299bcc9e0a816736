"""``posenet3d lift``: 2D detector tracks -> root-relative 3D skeletons per track.

Missing and low-confidence joints are handled by **masking**: a keypoint whose confidence
is below ``conf_threshold`` (default 0.3) is treated as missing; the lifter (trained with
random joint dropout) predicts it from the visible ones, and the output ``mask`` says
which joints were observed. A frame is *skipped* (listed in ``skipped_frame_ids``, never
filled with NaN) when its root (pelvis = mean of the COCO hips) is missing or fewer than
``min_joints`` canonical joints are visible. Frames where a track is absent are simply not
in its ``frame_ids``; temporal models (and smoothing) treat each gap-free run as its own
sequence, and split a run where the 2D root jumps by more than :data:`JUMP_FACTOR` x the
person's 2D size between consecutive frames (a tracker identity switch; counted per track in
``summary.json`` as ``identity_switches``).
"""
from __future__ import annotations

import heapq
import json
import os
import shutil
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import roma
import torch

from .checkpoint import load_checkpoint
from .io.fileio import atomic_write
from .geometry import normalize_2d
from .smoothing import smooth_tracks
from .inference import DEFAULT_HEIGHT_M, HEIGHT_PROXY_FRACTION, lift_frames, lift_smpl_frames, metric_scale
from .skeletons import CANON16, get_skeleton, remap
from .teacher import Lifter
from .io.readers import read_tracks
from .io.tracks import Track, TrackSet

__all__ = ["load_lifter", "canonical_track", "lift_track", "lift_file", "LiftedTrack", "default_checkpoint", "MODEL_FPS"]

MODEL_FPS = 30.0
"""Frame rate of the training mocap; temporal models resample other rates to this."""


#: short names accepted wherever a checkpoint path is: the bundled models
BUNDLED = {"teacher": "teacher.pt", "student": "student.pt"}


def bundled_student() -> Path | None:
    """Path of the SMPL student shipped in the package, or ``None`` if this build has none."""
    p = default_checkpoint().parent / BUNDLED["student"]
    return p if p.is_file() else None


def default_checkpoint() -> Path:
    """Path of the teacher checkpoint shipped in the package (``lifting/assets/teacher.pt``)."""
    return Path(str(resources.files("lifting") / "assets" / "teacher.pt"))


def load_lifter(path: str | Path | None = None, body_model_path: str | Path | None = None):
    """Load a lifter or SMPL-student checkpoint (default: the shipped teacher).

    Args:
        path: checkpoint file, or ``"teacher"`` / ``"student"`` for the bundled ones.
        body_model_path: for a student, the SMPL file/folder to use instead of the one
            recorded in the checkpoint (it must have the same vertex count and shape space).

    Returns:
        ``(model in eval mode, checkpoint dict)``; the model is a :class:`Lifter` or a
        :class:`lifting.student.Student`.

    Raises:
        lifting.checkpoint.CheckpointError (a ValueError): missing/unreadable file or not a
            posenet3d checkpoint. ValueError: a model for another joint set, or a student
            whose body model cannot be loaded or differs from the one it was trained with.
    """
    path = Path(path) if path is not None else default_checkpoint()
    if str(path) in BUNDLED and not path.exists():
        path = default_checkpoint().parent / BUNDLED[str(path)]
    ckpt = load_checkpoint(path)
    cfg = dict(ckpt["model_config"])
    if cfg.get("num_joints") != CANON16.num_joints:
        raise ValueError(f"{path}: model has {cfg.get('num_joints')} joints, expected {CANON16.num_joints} (canon16)")
    if cfg.get("arch") == "smpl_student":
        from .body_model import BodyModel
        from .student import Student

        info = ckpt.get("body_model") or {}
        bm = BodyModel(body_model_path if body_model_path is not None else info.get("path"),
                       info.get("gender", "neutral"), int(cfg.get("num_betas", 10)))
        if info.get("num_vertices") not in (None, bm.num_vertices):
            raise ValueError(f"{path}: the student was trained with a {info['num_vertices']}-vertex body model, "
                             f"{bm.model_path} has {bm.num_vertices}")
        model = Student.from_config(cfg, bm)
    else:
        model = Lifter.from_config(cfg)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise ValueError(f"{path}: weights do not match the model config ({e})") from None
    model.eval()
    return model, ckpt


@dataclass
class LiftedTrack:
    """Lifting result of one track.

    Attributes:
        track_id: int. frame_ids: ``(T,)`` lifted frames. joints_3d: ``(T, J, 3)`` float32
        root-relative metres in the camera frame (x right, y down, z forward).
        keypoints_2d: ``(T, J, 2)`` canonical input pixels. mask: ``(T, J)`` observed joints.
        skipped_frame_ids: frames of the track that could not be lifted.
    """

    track_id: int
    frame_ids: np.ndarray
    joints_3d: np.ndarray
    keypoints_2d: np.ndarray
    mask: np.ndarray
    skipped_frame_ids: np.ndarray
    smpl: dict | None = None
    identity_switches: int = 0


#: a jump of the 2D root between consecutive frames larger than this many times the person's
#: 2D size (RMS distance of the observed joints from the root) is taken as an identity switch
JUMP_FACTOR = 1.0


def _run_starts(frame_ids: np.ndarray, kp: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``(T,)`` bool: True where a new run starts — a frame gap, or a 2D root jump larger than
    :data:`JUMP_FACTOR` x the person's 2D size (an identity switch of the tracker: the two
    sides are different people, so temporal models and smoothing must not connect them)."""
    T = len(frame_ids)
    starts = np.zeros(T, bool)
    if T == 0:
        return starts
    starts[0] = True
    starts[1:] = np.diff(frame_ids) != 1
    root = kp[:, CANON16.root_index]
    rel = np.where(mask[..., None], kp - root[:, None], 0.0)
    size = np.sqrt((rel ** 2).sum(-1).sum(-1) / np.maximum(mask.sum(-1), 1))
    jump = np.linalg.norm(np.diff(root, axis=0), axis=-1)
    starts[1:] |= jump > JUMP_FACTOR * np.maximum(size[1:], size[:-1])
    return starts


def _segments(starts: np.ndarray) -> np.ndarray:
    """Offsets ``(S+1,)`` of runs from :func:`_run_starts`."""
    return np.concatenate([np.flatnonzero(starts), [len(starts)]]).astype(np.int64)


def _resample(kp: np.ndarray, m: np.ndarray, seg: np.ndarray, ratio: float):
    """Linearly resample each gap-free segment by ``ratio`` (target fps / source fps).
    Returns resampled ``(kp, mask, offsets)`` and, per original frame, its position in the
    resampled sequence (float index)."""
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


def canonical_track(track: Track, keypoint_format: str, conf_threshold: float = 0.3, min_joints: int = 8):
    """The lift-time preparation of one track, shared by lifting and training on tracks
    (:mod:`lifting.track_data`): map to :data:`CANON16` by joint names (joints below
    ``conf_threshold`` or non-finite are masked), drop frames without a visible root or with
    fewer than ``min_joints`` canonical joints, and mark where gap-free runs start
    (:func:`_run_starts`: frame gaps and identity switches).

    Returns:
        ``(kp (T', 16, 2) float32 px (0 at masked joints), mask (T', 16) bool,
        frame_ids (T',), skipped_frame_ids, starts (T',) bool)``.

    Raises:
        ValueError: unknown ``keypoint_format`` or keypoints of the wrong joint count.
    """
    src = get_skeleton(keypoint_format)
    kp_src = np.asarray(track.keypoints, dtype=np.float32)
    valid = (kp_src[..., 2] >= conf_threshold) & np.isfinite(kp_src[..., :2]).all(-1)
    kp, mask = remap(kp_src[..., :2], src, CANON16, valid=valid)
    ok = mask[:, CANON16.root_index] & (mask.sum(-1) >= min_joints)
    frame_ids = np.asarray(track.frame_ids)
    skipped = frame_ids[~ok]
    kp, mask, frame_ids = kp[ok], mask[ok], frame_ids[ok]
    return kp, mask, frame_ids, skipped, _run_starts(frame_ids, kp, mask)


def lift_track(
    model: Lifter,
    track: Track,
    keypoint_format: str = "coco17",
    fps: float | None = None,
    conf_threshold: float = 0.3,
    min_joints: int = 8,
    height_m: float = DEFAULT_HEIGHT_M,
    smooth: str = "none",
    smooth_window: int = 9,
    causal: bool = False,
) -> LiftedTrack:
    """Lift one track (see the module docstring for masking rules).

    Args:
        model: lifter. track: :class:`lifting.io.tracks.Track` with ``keypoints (T, K, 3)``.
        keypoint_format: source joint set of the track. fps: its frame rate (used only by
            temporal models, which resample to :data:`MODEL_FPS`; unknown = assumed 30).
        conf_threshold: joints below it are masked. min_joints: minimum visible canonical
            joints per frame. height_m: subject height for the metric scale (one scale per
            track: the median of the per-frame anthropometric scales).
        smooth: ``"none"`` or ``"savgol"``: Savitzky-Golay smoothing of the observed 2D
            keypoints (per joint, per gap-free run; :func:`lifting.smoothing.smooth_tracks`)
            before lifting, with a window of ``smooth_window`` frames.
        causal: online mode for temporal models: each frame is lifted from itself and past
            frames only (:func:`lifting.inference.lift_frames`).

    Returns:
        :class:`LiftedTrack` (may have zero frames if nothing was liftable).
    """
    kp, mask, frame_ids, skipped, starts = canonical_track(track, keypoint_format, conf_threshold, min_joints)
    if smooth != "none" and len(frame_ids):
        # smooth the observed 2D per joint and run (lifting.smoothing); applies to every model
        # kind, before lifting; run_ids make every run boundary a "gap" for the smoother
        run_ids = np.arange(len(frame_ids)) + np.cumsum(starts)
        kp = smooth_tracks(kp, mask, run_ids, method=smooth, window=smooth_window).astype(np.float32)
    J = CANON16.num_joints
    if len(frame_ids) == 0:
        empty = np.zeros((0, J, 3), np.float32)
        return LiftedTrack(int(track.track_id), frame_ids, empty, np.zeros((0, J, 2), np.float32),
                           np.zeros((0, J), bool), skipped)
    seg = _segments(starts)
    switches = int(starts[1:].sum() - (np.diff(frame_ids) != 1).sum())
    if _is_student(model):
        lt = _lift_track_smpl(model, track, kp, mask, frame_ids, skipped, seg, fps, causal)
        lt.identity_switches = switches
        return lt
    if model.window > 1 and fps is not None and abs(fps - MODEL_FPS) > 1e-3:
        kp_r, m_r, seg_r, pos = _resample(kp, mask, seg, MODEL_FPS / fps)
        pred_r = lift_frames(model, torch.from_numpy(kp_r).float(), torch.from_numpy(m_r), seg_r, causal=causal).numpy()
        i0 = np.floor(pos).astype(int)
        i1 = np.minimum(i0 + 1, len(pred_r) - 1)
        # causal: never interpolate towards a later resampled frame
        w = np.zeros_like(pos)[:, None, None] if causal else (pos - i0)[:, None, None]
        pred = torch.from_numpy(((1 - w) * pred_r[i0] + w * pred_r[i1]).astype(np.float32))
    else:
        pred = lift_frames(model, torch.from_numpy(kp).float(), torch.from_numpy(mask), seg, causal=causal)
    per_frame = metric_scale(pred, CANON16, height_m)
    # one scale per track: ratio of metric to normalised size, median over frames
    ratio = (per_frame.norm(dim=-1).sum(-1) / pred.norm(dim=-1).sum(-1).clamp_min(1e-9)).median()
    joints = (pred * ratio).numpy().astype(np.float32)
    if not np.isfinite(joints).all():
        raise ValueError(f"track {track.track_id}: lifting produced non-finite values")
    return LiftedTrack(int(track.track_id), frame_ids, joints, kp.astype(np.float32), mask, skipped,
                       identity_switches=switches)


def _is_student(model) -> bool:
    return getattr(model, "config", {}).get("arch") == "smpl_student"


def _lift_track_smpl(model, track, kp, mask, frame_ids, skipped, seg, fps, causal=False) -> LiftedTrack:
    """Student path of :func:`lift_track`: per-frame SMPL parameters, one ``betas`` per
    track (mean of the per-frame estimates weighted by the number of observed joints), the
    metric size from the body model (no height prior)."""
    kp_t, m_t = torch.from_numpy(kp).float(), torch.from_numpy(mask)
    if model.window > 1 and fps is not None and abs(fps - MODEL_FPS) > 1e-3:
        kp_r, m_r, seg_r, pos = _resample(kp, mask, seg, MODEL_FPS / fps)
        res = lift_smpl_frames(model, torch.from_numpy(kp_r).float(), torch.from_numpy(m_r), seg_r, causal=causal)
        near = torch.from_numpy(np.clip(np.round(pos).astype(np.int64), 0, len(kp_r) - 1))
        res = {k: v[near] for k, v in res.items() if k not in ("norm_scale", "root_px")}
        _, norm = normalize_2d(kp_t, m_t, model.root_index)
        res["norm_scale"], res["root_px"] = norm[..., 0], kp_t[:, model.root_index]
    else:
        res = lift_smpl_frames(model, kp_t, m_t, seg, causal=causal)
    w = m_t.sum(-1).float()
    betas = (res["betas"] * w[:, None]).sum(0) / w.sum()
    with torch.no_grad():
        out = model.decode(res["global_orient"][None], res["body_pose"][None], betas[None], res["scale"][None])
    joints = out.joints_3d[0].numpy().astype(np.float32)
    if not np.isfinite(joints).all() or not torch.isfinite(betas).all():
        raise ValueError(f"track {track.track_id}: lifting produced non-finite values")
    s_px = res["scale"] * res["norm_scale"]
    smpl = {
        "global_orient": roma.rotmat_to_rotvec(res["global_orient"]).numpy().astype(np.float32),
        "body_pose": roma.rotmat_to_rotvec(res["body_pose"]).reshape(-1, 69).numpy().astype(np.float32),
        "betas": betas.numpy().astype(np.float32),
        "cam": torch.cat([s_px[:, None], res["root_px"]], dim=-1).numpy().astype(np.float32),
        "joints_smpl": out.joints_smpl[0].numpy().astype(np.float32),
        "global_orient_rotmat": res["global_orient"], "body_pose_rotmat": res["body_pose"],
    }
    return LiftedTrack(int(track.track_id), frame_ids, joints, kp.astype(np.float32), mask, skipped, smpl)


def _smpl_arrays(lt: LiftedTrack, model) -> dict:
    if lt.smpl is None:
        return {}
    keep = {k: v for k, v in lt.smpl.items() if not k.endswith("_rotmat")}
    from .body_model import SMPL_JOINT_NAMES

    bm = model.body_model.describe()
    return keep | {"smpl_joint_names": np.array(SMPL_JOINT_NAMES),
                   "body_model": np.array(json.dumps(bm)),
                   "cam_convention": np.array("weak perspective, pixels: pixel ~ s * P_xy + (tx, ty), P root-relative "
                                              "metres in the camera frame")}


def _vertices(model, lt: LiftedTrack, picks: np.ndarray) -> np.ndarray:
    """Root-relative camera-frame vertices ``(len(picks), V, 3)`` metres for frames ``picks``."""
    go, bp = lt.smpl["global_orient_rotmat"][picks], lt.smpl["body_pose_rotmat"][picks]
    betas = torch.from_numpy(lt.smpl["betas"])
    with torch.no_grad():
        out = model.decode(go[None], bp[None], betas[None], torch.ones(1, len(picks)), return_vertices=True)
    return out.vertices[0].numpy()


def _write_meshes(folder: Path, model, lt: LiftedTrack, picks: np.ndarray, fmt: str, chunk: int = 64) -> list[str]:
    """Mesh files for frames ``picks`` of a track, skinned ``chunk`` frames at a time (a mesh
    sequence of a long track never holds all its vertices at once)."""
    import trimesh

    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for s in range(0, len(picks), chunk):
        sel = picks[s:s + chunk]
        verts = _vertices(model, lt, sel) * np.array([1.0, -1.0, -1.0], dtype=np.float32)  # y up, z to the viewer
        for v, fid in zip(verts, lt.frame_ids[sel]):
            mesh = trimesh.Trimesh(vertices=v, faces=model.body_model.faces, process=False)
            p = folder / f"track_{lt.track_id:04d}_frame_{int(fid):06d}.{fmt}"
            atomic_write(p, lambda tmp, m=mesh: m.export(tmp, file_type=fmt))
            names.append(f"meshes/{p.name}")
    return names


def _write_exports(out: Path, lt: LiftedTrack, export, fps: float | None) -> list[str]:
    """BVH / CSV / JSON files of one track (see :func:`lift_file`)."""
    names = []
    stem = f"track_{lt.track_id:04d}"
    if "bvh" in export:
        from .io.bvh import write_bvh

        names.append(write_bvh(out / f"{stem}.bvh", lt.joints_3d, fps or MODEL_FPS).name)
    if "csv" in export:
        rows = ["frame_id,joint,x,y,z,observed"]
        for t, fid in enumerate(lt.frame_ids):
            for j, name in enumerate(CANON16.joint_names):
                x, y, z = lt.joints_3d[t, j]
                rows.append(f"{int(fid)},{name},{x:.6f},{y:.6f},{z:.6f},{int(lt.mask[t, j])}")
        text = "\n".join(rows) + "\n"
        names.append(atomic_write(out / f"{stem}.csv", lambda tmp: Path(tmp).write_text(text)).name)
    if "json" in export:
        doc = {"track_id": lt.track_id, "units": "m",
               "coordinate_frame": "camera: x right, y down, z forward; root-relative (pelvis)",
               "joint_names": list(CANON16.joint_names), "parents": list(CANON16.parents),
               "frame_ids": [int(f) for f in lt.frame_ids],
               "joints_3d": np.round(lt.joints_3d.astype(np.float64), 6).tolist(),
               "observed": lt.mask.astype(bool).tolist()}
        names.append(atomic_write(out / f"{stem}.json", lambda tmp: Path(tmp).write_text(json.dumps(doc))).name)
    return names


def _atomic_npz(path: Path, **arrays) -> None:
    atomic_write(path, lambda tmp: np.savez_compressed(tmp, **arrays))


def lift_file(
    tracks_path: str | Path,
    out_dir: str | Path,
    checkpoint: str | Path | None = None,
    *,
    fps: float | None = None,
    keypoint_format: str | None = None,
    conf_threshold: float = 0.3,
    min_joints: int = 8,
    height_m: float = DEFAULT_HEIGHT_M,
    max_figures: int = 4,
    min_figure_frames: int = 10,
    mesh_frames: list[int] | str | None = None,
    mesh_format: str = "obj",
    body_model_path: str | Path | None = None,
    smooth: str = "none",
    smooth_window: int = 9,
    export: tuple[str, ...] = (),
    video: str | None = None,
    video_max_frames: int = 300,
    progress: bool = True,
    causal: bool = False,
) -> dict:
    """Lift every track of a keypoint file (any format :func:`lifting.io.readers.read_tracks`
    reads) and write the outputs.

    Writes to ``out_dir``: ``track_XXXX.npz`` per track with at least one liftable frame
    (``joints_3d (T, 16, 3)`` float32 metres root-relative camera frame, ``joint_names``,
    ``parents``, ``frame_ids (T,)``, ``keypoints_2d (T, 16, 2)`` px, ``mask (T, 16)``
    observed joints, ``skipped_frame_ids``, ``units``, ``coordinate_frame``, ``fps``),
    ``track_XXXX.png`` figures for the ``max_figures`` longest tracks (with at least
    ``min_figure_frames`` frames), and ``summary.json``. Every file is written atomically;
    input is fully read and validated before anything is written.

    With a student checkpoint each npz also holds the SMPL parameters in smplx naming:
    ``global_orient (T, 3)`` and ``body_pose (T, 69)`` axis-angle (body frame -> camera
    frame), ``betas (10,)`` one per track, ``cam (T, 3)`` weak-perspective pixel camera
    ``(s, tx, ty)`` (``pixel ~ s * P_xy + (tx, ty)`` for root-relative points ``P`` in
    metres), ``joints_smpl (T, 24, 3)``; meshes go to ``meshes/track_XXXX_frame_YYYYYY.obj``
    (or ``.ply``) for ``mesh_frames`` (frame ids, or ``"all"`` for a mesh sequence of every
    lifted frame of every track; default the frames shown in the figures),
    in metres, root-relative, y up (the camera frame rotated 180 deg about x, as viewers
    expect), and the figures show the mesh. ``body_model_path`` replaces the checkpoint's
    body model (same topology).

    ``export`` adds per-track files: ``"bvh"`` (:func:`lifting.bvh.write_bvh`, Y up, metres,
    needs a frame rate: the file's or ``fps``, else 30), ``"csv"`` (one row per frame and
    joint: ``frame_id, joint, x, y, z, observed``, metres, camera frame) and ``"json"``
    (``{"joint_names", "parents", "frame_ids", "joints_3d"}``). ``smooth`` see
    :func:`lift_track`. ``video`` (``"gif"`` or ``"mp4"``) renders ``track_XXXX.gif|mp4`` for
    the same tracks as the figures (:func:`lifting.viz.animate_track`: 2D input, with the
    mesh for a student, beside the 3D skeleton; at most ``video_max_frames`` frames, evenly
    subsampled), with a progress bar when ``progress``. ``causal``: online mode for temporal
    models (see :func:`lift_track`).

    Returns:
        The summary dict.

    Raises:
        lifting.io.tracks.TrackFormatError / ValueError: unreadable input or checkpoint, or no
        track has a liftable frame.
    """
    t0 = time.perf_counter()
    if mesh_format not in ("obj", "ply"):
        raise ValueError(f"mesh format must be obj or ply, got {mesh_format!r}")
    if video not in (None, "gif", "mp4"):
        raise ValueError(f"video format must be gif or mp4, got {video!r}")
    if video == "mp4":
        if shutil.which("ffmpeg") is None:
            raise ValueError("--video mp4 needs ffmpeg on PATH; use --video gif (no extra tools needed)")
    bad = sorted(set(export) - {"bvh", "csv", "json"})
    if bad:
        raise ValueError(f"unknown export format(s) {bad}; choose from bvh, csv, json")
    model, ckpt = load_lifter(checkpoint, body_model_path)
    ts: TrackSet = read_tracks(tracks_path, fmt=keypoint_format, fps=fps)
    out = Path(out_dir)
    out_existed = out.exists()
    # Tracks are lifted and written one at a time (memory: one track plus the few kept for
    # figures), into a staging folder that is moved into place only when every track has
    # succeeded: a failure leaves no partial output behind.
    staging = out / f".posenet3d_staging_{os.getpid()}"
    files, per_track, kept = [], [], []  # kept: heap of the longest tracks (for figures/videos)
    meshes = []
    frames_lifted = frames_skipped = 0
    try:
        for order, tr in enumerate(ts.tracks):
            lt = lift_track(model, tr, ts.keypoint_format, ts.fps, conf_threshold, min_joints, height_m, smooth,
                            smooth_window, causal)
            ts.tracks[order] = None  # release the input track
            per_track.append({"track_id": lt.track_id, "frames_lifted": int(len(lt.frame_ids)),
                              "frames_skipped": int(len(lt.skipped_frame_ids)),
                              "identity_switches": lt.identity_switches,
                              "observed_joint_fraction": float(lt.mask.mean()) if len(lt.mask) else 0.0})
            frames_lifted += len(lt.frame_ids)
            frames_skipped += len(lt.skipped_frame_ids)
            if not len(lt.frame_ids):
                continue
            staging.mkdir(parents=True, exist_ok=True)
            p = staging / f"track_{lt.track_id:04d}.npz"
            _atomic_npz(
                p, joints_3d=lt.joints_3d, joint_names=np.array(CANON16.joint_names),
                parents=np.array(CANON16.parents), frame_ids=lt.frame_ids, keypoints_2d=lt.keypoints_2d, mask=lt.mask,
                skipped_frame_ids=lt.skipped_frame_ids, units=np.array("m"),
                coordinate_frame=np.array("camera: x right, y down, z forward; root-relative (pelvis)"),
                fps=np.array(ts.fps if ts.fps is not None else np.nan), track_id=np.array(lt.track_id),
                **_smpl_arrays(lt, model),
            )
            files.append(p.name)
            files += _write_exports(staging, lt, export, ts.fps)
            if _is_student(model) and mesh_frames is not None:
                if isinstance(mesh_frames, str) and mesh_frames == "all":
                    picks = np.arange(len(lt.frame_ids))
                else:
                    picks = np.flatnonzero(np.isin(lt.frame_ids, np.asarray(mesh_frames)))
                if len(picks):
                    meshes += _write_meshes(staging / "meshes", model, lt, picks, mesh_format)
            if len(lt.frame_ids) >= min_figure_frames and max_figures > 0:
                item = (len(lt.frame_ids), -order, lt)
                if len(kept) < max_figures:
                    heapq.heappush(kept, item)
                elif item[:2] > kept[0][:2]:
                    heapq.heapreplace(kept, item)
        if not frames_lifted:
            raise ValueError(f"{tracks_path}: no frame of any track has a visible pelvis (both hips) and "
                             f">= {min_joints} joints above confidence {conf_threshold}")
        out.mkdir(parents=True, exist_ok=True)
        for f in sorted(staging.rglob("*")):
            if f.is_file():
                dest = out / f.relative_to(staging)
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(f, dest)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
        if not out_existed:
            try:
                out.rmdir()  # only if nothing was written (a failed run leaves no empty folder behind)
            except OSError:
                pass
    longest = [lt for _, _, lt in sorted(kept, key=lambda k: (-k[0], -k[1]))]
    lift_s = time.perf_counter() - t0
    figures = []
    if longest:
        from .viz import figure_frames, plot_mesh_frames, plot_track_frames

        for lt in longest:
            title = f"{Path(tracks_path).name}: track {lt.track_id}"
            if lt.smpl is None:
                p = plot_track_frames(out / f"track_{lt.track_id:04d}.png", CANON16, lt.keypoints_2d, lt.mask,
                                      lt.joints_3d, lt.frame_ids, title=title)
            else:
                picks = figure_frames(len(lt.frame_ids))
                verts = _vertices(model, lt, picks)
                p = plot_mesh_frames(out / f"track_{lt.track_id:04d}.png", CANON16, lt.keypoints_2d[picks],
                                     lt.mask[picks], verts, model.body_model.faces, lt.smpl["cam"][picks],
                                     lt.frame_ids[picks], title=title)
            figures.append(p.name)
    videos = []
    if video:
        from .viz import animate_track

        for lt in longest:
            T = len(lt.frame_ids)
            picks = np.unique(np.linspace(0, T - 1, min(T, video_max_frames)).round().astype(int))
            rate = (ts.fps or MODEL_FPS) * len(picks) / T
            verts = cam = faces = None
            if lt.smpl is not None:
                verts, cam, faces = _vertices(model, lt, picks), lt.smpl["cam"][picks], model.body_model.faces
            p = animate_track(out / f"track_{lt.track_id:04d}.{video}", CANON16, lt.keypoints_2d[picks],
                              lt.mask[picks], lt.joints_3d[picks], lt.frame_ids[picks], fps=rate, vertices=verts,
                              faces=faces, cam=cam, max_frames=len(picks), progress=progress,
                              title=f"{Path(tracks_path).name}: track {lt.track_id}")
            videos.append(p.name)
    if _is_student(model) and mesh_frames is None:  # default: the figured frames of the figured tracks
        from .viz import figure_frames

        for lt in longest:
            meshes += _write_meshes(out / "meshes", model, lt, figure_frames(len(lt.frame_ids)), mesh_format)
    summary = {
        "input": str(tracks_path),
        "checkpoint": str(checkpoint or default_checkpoint()),
        "model_kind": ckpt.get("kind"),
        "window": model.window,
        "keypoint_format": ts.keypoint_format,
        "fps": ts.fps,
        "conf_threshold": conf_threshold,
        "min_joints": min_joints,
        "height_m": height_m,
        "height_proxy_fraction": HEIGHT_PROXY_FRACTION,
        "units": "m",
        "tracks": per_track,
        "frames_lifted": int(frames_lifted),
        "frames_skipped": int(frames_skipped),
        "reader_warnings": list(ts.warnings),
        "files": files,
        "figures": figures,
        "meshes": meshes,
        "videos": videos,
        "smoothing": {"method": smooth, "window": smooth_window} if smooth != "none" else None,
        "causal": causal,
        "body_model": model.body_model.describe() if _is_student(model) else None,
        "seconds_lift": round(lift_s, 3),
        "seconds_total": round(time.perf_counter() - t0, 3),
    }
    atomic_write(out / "summary.json", lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=1)))
    return summary
