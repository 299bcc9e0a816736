"""``posenet3d lift``: 2D detector tracks -> root-relative 3D skeletons per track.

Missing and low-confidence joints are handled by **masking**: a keypoint whose confidence
is below ``conf_threshold`` (default 0.3) is treated as missing; the lifter (trained with
random joint dropout) predicts it from the visible ones, and the output ``mask`` says
which joints were observed. A frame is *skipped* (listed in ``skipped_frame_ids``, never
filled with NaN) when its root (pelvis = mean of the COCO hips) is missing or fewer than
``min_joints`` canonical joints are visible. Frames where a track is absent are simply not
in its ``frame_ids``; temporal models treat each gap-free run as its own sequence.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from .checkpoint import load_checkpoint
from .fileio import atomic_write
from .inference import DEFAULT_HEIGHT_M, HEIGHT_PROXY_FRACTION, lift_frames, metric_scale
from .skeletons import CANON16, get_skeleton, remap
from .teacher import Lifter
from .tracks import Track, TrackSet, read_coco_tracks

__all__ = ["load_lifter", "lift_track", "lift_file", "LiftedTrack", "default_checkpoint", "MODEL_FPS"]

MODEL_FPS = 30.0
"""Frame rate of the training mocap; temporal models resample other rates to this."""


def default_checkpoint() -> Path:
    """Path of the teacher checkpoint shipped in the package (``lifting/assets/teacher.pt``)."""
    return Path(str(resources.files("lifting") / "assets" / "teacher.pt"))


def load_lifter(path: str | Path | None = None) -> tuple[Lifter, dict]:
    """Load a lifter checkpoint (default: the shipped teacher).

    Returns:
        ``(model in eval mode, checkpoint dict)``.

    Raises:
        lifting.checkpoint.CheckpointError (a ValueError): missing/unreadable file or not a
            posenet3d checkpoint. ValueError: a model for another joint set.
    """
    path = Path(path) if path is not None else default_checkpoint()
    ckpt = load_checkpoint(path)
    cfg = dict(ckpt["model_config"])
    if cfg.get("num_joints") != CANON16.num_joints:
        raise ValueError(f"{path}: model has {cfg.get('num_joints')} joints, expected {CANON16.num_joints} (canon16)")
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


def _segments(frame_ids: np.ndarray) -> np.ndarray:
    """Offsets ``(S+1,)`` of gap-free runs of consecutive frame ids."""
    breaks = np.where(np.diff(frame_ids) != 1)[0] + 1
    return np.concatenate([[0], breaks, [len(frame_ids)]]).astype(np.int64)


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


def lift_track(
    model: Lifter,
    track: Track,
    keypoint_format: str = "coco17",
    fps: float | None = None,
    conf_threshold: float = 0.3,
    min_joints: int = 8,
    height_m: float = DEFAULT_HEIGHT_M,
) -> LiftedTrack:
    """Lift one track (see the module docstring for masking rules).

    Args:
        model: lifter. track: :class:`lifting.tracks.Track` with ``keypoints (T, K, 3)``.
        keypoint_format: source joint set of the track. fps: its frame rate (used only by
            temporal models, which resample to :data:`MODEL_FPS`; unknown = assumed 30).
        conf_threshold: joints below it are masked. min_joints: minimum visible canonical
            joints per frame. height_m: subject height for the metric scale (one scale per
            track: the median of the per-frame anthropometric scales).

    Returns:
        :class:`LiftedTrack` (may have zero frames if nothing was liftable).
    """
    src = get_skeleton(keypoint_format)
    kp_src = np.asarray(track.keypoints, dtype=np.float32)
    valid = (kp_src[..., 2] >= conf_threshold) & np.isfinite(kp_src[..., :2]).all(-1)
    kp, mask = remap(kp_src[..., :2], src, CANON16, valid=valid)
    ok = mask[:, CANON16.root_index] & (mask.sum(-1) >= min_joints)
    frame_ids = np.asarray(track.frame_ids)
    skipped = frame_ids[~ok]
    kp, mask, frame_ids = kp[ok], mask[ok], frame_ids[ok]
    J = CANON16.num_joints
    if len(frame_ids) == 0:
        empty = np.zeros((0, J, 3), np.float32)
        return LiftedTrack(int(track.track_id), frame_ids, empty, np.zeros((0, J, 2), np.float32),
                           np.zeros((0, J), bool), skipped)
    seg = _segments(frame_ids)
    if model.window > 1 and fps is not None and abs(fps - MODEL_FPS) > 1e-3:
        kp_r, m_r, seg_r, pos = _resample(kp, mask, seg, MODEL_FPS / fps)
        pred_r = lift_frames(model, torch.from_numpy(kp_r).float(), torch.from_numpy(m_r), seg_r).numpy()
        i0 = np.floor(pos).astype(int)
        i1 = np.minimum(i0 + 1, len(pred_r) - 1)
        w = (pos - i0)[:, None, None]
        pred = torch.from_numpy(((1 - w) * pred_r[i0] + w * pred_r[i1]).astype(np.float32))
    else:
        pred = lift_frames(model, torch.from_numpy(kp).float(), torch.from_numpy(mask), seg)
    per_frame = metric_scale(pred, CANON16, height_m)
    # one scale per track: ratio of metric to normalised size, median over frames
    ratio = (per_frame.norm(dim=-1).sum(-1) / pred.norm(dim=-1).sum(-1).clamp_min(1e-9)).median()
    joints = (pred * ratio).numpy().astype(np.float32)
    if not np.isfinite(joints).all():
        raise ValueError(f"track {track.track_id}: lifting produced non-finite values")
    return LiftedTrack(int(track.track_id), frame_ids, joints, kp.astype(np.float32), mask, skipped)


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
) -> dict:
    """Lift every track of a COCO-style tracks file and write the outputs.

    Writes to ``out_dir``: ``track_XXXX.npz`` per track with at least one liftable frame
    (``joints_3d (T, 16, 3)`` float32 metres root-relative camera frame, ``joint_names``,
    ``parents``, ``frame_ids (T,)``, ``keypoints_2d (T, 16, 2)`` px, ``mask (T, 16)``
    observed joints, ``skipped_frame_ids``, ``units``, ``coordinate_frame``, ``fps``),
    ``track_XXXX.png`` figures for the ``max_figures`` longest tracks (with at least
    ``min_figure_frames`` frames), and ``summary.json``. Every file is written atomically;
    input is fully read and validated before anything is written.

    Returns:
        The summary dict.

    Raises:
        lifting.tracks.TrackFormatError / ValueError: unreadable input or checkpoint, or no
        track has a liftable frame.
    """
    t0 = time.perf_counter()
    model, ckpt = load_lifter(checkpoint)
    ts: TrackSet = read_coco_tracks(tracks_path, fps=fps, keypoint_format=keypoint_format)
    lifted = [lift_track(model, tr, ts.keypoint_format, ts.fps, conf_threshold, min_joints, height_m)
              for tr in ts.tracks]
    if not any(len(lt.frame_ids) for lt in lifted):
        raise ValueError(f"{tracks_path}: no frame of any track has a visible pelvis (both hips) and "
                         f">= {min_joints} joints above confidence {conf_threshold}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for lt in lifted:
        if not len(lt.frame_ids):
            continue
        p = out / f"track_{lt.track_id:04d}.npz"
        _atomic_npz(
            p, joints_3d=lt.joints_3d, joint_names=np.array(CANON16.joint_names), parents=np.array(CANON16.parents),
            frame_ids=lt.frame_ids, keypoints_2d=lt.keypoints_2d, mask=lt.mask, skipped_frame_ids=lt.skipped_frame_ids,
            units=np.array("m"), coordinate_frame=np.array("camera: x right, y down, z forward; root-relative (pelvis)"),
            fps=np.array(ts.fps if ts.fps is not None else np.nan), track_id=np.array(lt.track_id),
        )
        files.append(p.name)
    lift_s = time.perf_counter() - t0
    figures = []
    longest = sorted((lt for lt in lifted if len(lt.frame_ids) >= min_figure_frames),
                     key=lambda lt: -len(lt.frame_ids))[:max_figures]
    if longest:
        from .viz import plot_track_frames

        for lt in longest:
            p = plot_track_frames(out / f"track_{lt.track_id:04d}.png", CANON16, lt.keypoints_2d, lt.mask,
                                  lt.joints_3d, lt.frame_ids, title=f"{Path(tracks_path).name}: track {lt.track_id}")
            figures.append(p.name)
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
        "tracks": [{"track_id": lt.track_id, "frames_lifted": int(len(lt.frame_ids)),
                    "frames_skipped": int(len(lt.skipped_frame_ids)),
                    "observed_joint_fraction": float(lt.mask.mean()) if len(lt.mask) else 0.0} for lt in lifted],
        "frames_lifted": int(sum(len(lt.frame_ids) for lt in lifted)),
        "frames_skipped": int(sum(len(lt.skipped_frame_ids) for lt in lifted)),
        "reader_warnings": list(ts.warnings),
        "files": files,
        "figures": figures,
        "seconds_lift": round(lift_s, 3),
        "seconds_total": round(time.perf_counter() - t0, 3),
    }
    atomic_write(out / "summary.json", lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=1)))
    return summary
