"""The user's own 2D keypoint files -> 2D-only training windows (no 3D of any kind).

Every input goes through the exact lift-time path: :func:`lifting.io.readers.read_detections`
(any format ``posenet3d lift`` reads) then :func:`lifting.track.track`, :func:`lifting.prepare.canonical_track` (name-based
mapping to :data:`lifting.skeletons.CANON16`; a joint below the confidence threshold is
*masked*, its coordinate a 0 placeholder the lifter never sees as observed; frames without
a visible pelvis or with fewer than ``min_joints`` joints dropped), the lift pipeline's run
splitting (frame gaps and identity switches, :func:`lifting.prepare.run_starts`) and, for
temporal models, its resampling to :data:`lifting.track_lifter.MODEL_FPS`. Each gap-free run becomes
one clip of a :class:`lifting.data.Projected2D` with one view (``V = 1``) and a mask, which
:class:`lifting.data.WindowSampler` samples exactly like mocap projections; normalisation
happens later, in the stage, with :func:`lifting.geometry.normalize_2d` (root-centred, unit
RMS joint distance: no camera intrinsics, image size or person size needed).

Also here: a pool of real 2D poses for the 2D critic (:class:`RealPosePool`, e.g. from a
COCO person-keypoints annotation file of still photos) and :class:`MixedSampler`, which mixes
track windows with mocap projections by weight (``data.mix``).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .data import Projected2D, WindowSampler
from .geometry import normalize_2d
from .io.readers import detect_format, read_detections
from .io.tracks import TrackFormatError
from .prepare import canonical_track, identity_switches, resample_runs, run_offsets
from .track import track
from .track_lifter import MODEL_FPS
from .skeletons import CANON16, COCO17, MOCAP21

__all__ = ["TrackSplit", "TrackReading", "expand_inputs", "load_track_2d", "read_pose_pool", "RealPosePool", "MixedSampler",
           "MIN_FRAMES", "mocap_as_coco17", "EAR_FRACTION"]

MIN_FRAMES = 200
"""Fewest usable person-frames :func:`load_track_2d` accepts by default (fewer cannot adapt
a model usefully: the result would be silently useless)."""

_SUFFIXES = (".json", ".npz", ".npy")


@dataclass
class TrackSplit:
    """2D training data from keypoint files.

    Attributes:
        train: :class:`Projected2D` ``keypoints_2d (1, N, 16, 2)`` px, ``mask (1, N, 16)``;
            one clip per gap-free run of a track (``seq_names`` ``"<file>:track<id>:run<k>"``).
        val: the held-out tracks in the same form, or ``None`` (no track held out).
        summary: counts (files, tracks, frames read/usable/skipped, runs, identity switches,
            held-out tracks and frames, resampling) for logs and reports.
    """

    train: Projected2D
    val: Projected2D | None
    summary: dict = field(default_factory=dict)


def _is_openpose_folder(p: Path) -> bool:
    """A folder of OpenPose ``--write_json`` frames (read as one video, as ``lift`` reads a
    folder): ``*_keypoints.json`` files, or a first ``*.json`` that is OpenPose (``people``)."""
    if any(p.glob("*_keypoints.json")):
        return True
    first = next(iter(sorted(p.glob("*.json"))), None)
    try:
        return first is not None and detect_format(first) == "openpose"
    except (TrackFormatError, OSError):
        return False


def expand_inputs(paths) -> list[Path]:
    """Files and folders -> the inputs to read. A folder of OpenPose frames
    (:func:`_is_openpose_folder`) is one input (one video); any other folder contributes its
    ``.json``/``.npz``/``.npy`` files (sorted, not recursive).

    Raises:
        FileNotFoundError: a path does not exist. ValueError: no paths, or a folder with
            no keypoint files.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("no keypoint files given (data.tracks / INPUT is empty)")
    out: list[Path] = []
    for p in paths:
        if not p.exists():
            raise FileNotFoundError(f"keypoint input not found: {p}")
        if p.is_dir():
            if _is_openpose_folder(p):
                out.append(p)
                continue
            files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in _SUFFIXES)
            if not files:
                raise ValueError(f"{p}: folder has no keypoint files ({', '.join(_SUFFIXES)})")
            out += files
        else:
            out.append(p)
    return out


@dataclass(frozen=True)
class TrackReading:
    """How keypoint files are read for training (the ``lift`` options of the same names).

    Attributes:
        fmt, fps: as :func:`lifting.io.readers.read_detections` (``fps`` overrides the files').
        conf_threshold: joints below it are masked (never a 0 coordinate seen as observed).
        min_joints: frames with fewer visible canonical joints (or no pelvis) are dropped.
        tracker: identity association of untracked detections (:func:`lifting.track.track`).
    """

    fmt: str | None = None
    fps: float | None = None
    conf_threshold: float = 0.3
    min_joints: int = 8
    tracker: str = "auto"


def _runs(path: Path, reading: TrackReading, window: int, counts: dict) -> list[dict]:
    """Gap-free runs of every track of one file, canonical and (temporal models) resampled.
    Each run: ``{"name", "track", "kp" (n, 16, 2), "mask" (n, 16), "conf" (n, 16), "fps"}``."""
    ts = track(read_detections(path, fmt=reading.fmt, fps=reading.fps), reading.tracker)
    src_fps = ts.fps
    ratio = MODEL_FPS / src_fps if (window > 1 and src_fps is not None and abs(src_fps - MODEL_FPS) > 1e-3) else 1.0
    counts["files"] += 1
    counts["resampled_files"] += int(ratio != 1.0)
    runs = []
    for tr in ts.tracks:
        counts["tracks"] += 1
        counts["frames_read"] += len(tr)
        kp, mask, frame_ids, skipped, starts, conf = canonical_track(tr, ts.keypoint_format, reading.conf_threshold,
                                                                     reading.min_joints)
        counts["frames_skipped"] += len(skipped)
        if not len(frame_ids):
            continue
        counts["identity_switches"] += int(identity_switches(starts, frame_ids)[1:].sum())
        seg = run_offsets(starts)
        if ratio != 1.0:
            kp, mask, seg, _, conf = resample_runs(kp, mask, seg, ratio, conf)
        for k, (a, b) in enumerate(zip(seg[:-1], seg[1:])):
            if b - a < window:
                counts["frames_in_short_runs"] += int(b - a)
                continue
            runs.append({"name": f"{path.name}:track{tr.track_id}:run{k}", "track": (str(path), tr.track_id),
                         "kp": kp[a:b].astype(np.float32), "mask": mask[a:b].astype(bool),
                         "conf": conf[a:b].astype(np.float32),
                         "fps": float(src_fps * ratio) if src_fps is not None else MODEL_FPS})
    return runs


def _projected(runs: list[dict]) -> Projected2D:
    lengths = np.array([len(r["kp"]) for r in runs], dtype=np.int64)
    return Projected2D(
        np.concatenate([r["kp"] for r in runs])[None], np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        np.array([r["name"] for r in runs]), np.array([r["fps"] for r in runs], np.float32), CANON16,
        mask=np.concatenate([r["mask"] for r in runs])[None], conf=np.concatenate([r["conf"] for r in runs])[None])


def load_track_2d(paths, reading: TrackReading = TrackReading(), *, window: int = 1, val_fraction: float = 0.1,
                  seed: int = 0, min_frames: int = MIN_FRAMES) -> TrackSplit:
    """Read keypoint files into 2D-only training (and held-out validation) windows.

    Args:
        paths: files or folders (:func:`expand_inputs`) in any format ``lift`` reads.
        reading: how to read them (:class:`TrackReading`: format, fps, confidence threshold,
            fewest joints per frame, tracker).
        window: frames per training window ``T``; runs shorter than ``T`` are dropped and, for
            ``T > 1``, tracks with a known fps are resampled to :data:`MODEL_FPS` (as lifting
            does; single frames need no resampling).
        val_fraction: fraction of usable frames held out as whole tracks (chosen by a
            ``seed``-ed permutation; at least one track stays for training; 0 = none).
        min_frames: fewest usable frames accepted.

    Returns:
        :class:`TrackSplit`.

    Raises:
        FileNotFoundError / lifting.io.tracks.TrackFormatError: missing or malformed input.
        ValueError: bad option values, or fewer than ``min_frames`` usable frames (the
            message gives the counts and what makes a frame usable).
    """
    if not 0.0 <= float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    conf_threshold, min_joints = reading.conf_threshold, reading.min_joints
    if not 0.0 <= float(conf_threshold) <= 1.0:
        raise ValueError(f"conf_threshold must be in [0, 1], got {conf_threshold}")
    if int(window) < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    files = expand_inputs(paths)
    counts = dict.fromkeys(("files", "tracks", "frames_read", "frames_skipped", "frames_in_short_runs",
                            "identity_switches", "resampled_files"), 0)
    runs = [r for p in files for r in _runs(p, reading, int(window), counts)]
    usable = sum(len(r["kp"]) for r in runs)
    if usable < int(min_frames):
        raise ValueError(
            f"{', '.join(str(p) for p in files)}: only {usable} usable person-frames of {counts['frames_read']} read "
            f"({counts['tracks']} tracks; usable = visible pelvis (both hips) and >= {min_joints} joints with "
            f"confidence >= {conf_threshold}, in gap-free runs of >= {window} frames); at least {min_frames} "
            f"are needed to train on")
    by_track: dict[tuple, int] = {}
    for r in runs:
        by_track[r["track"]] = by_track.get(r["track"], 0) + len(r["kp"])
    keys = sorted(by_track)
    held: set = set()
    if val_fraction > 0 and len(keys) > 1:
        n_val = 0
        for i in np.random.default_rng(seed).permutation(len(keys)):
            if n_val >= val_fraction * usable or len(held) == len(keys) - 1:
                break
            held.add(keys[i])
            n_val += by_track[keys[i]]
    train = [r for r in runs if r["track"] not in held]
    val = [r for r in runs if r["track"] in held]
    summary = counts | {"frames_usable": usable, "runs": len(runs), "tracks_usable": len(keys),
                        "val_tracks": len(held), "val_frames": sum(len(r["kp"]) for r in val),
                        "train_frames": sum(len(r["kp"]) for r in train),
                        "observed_joint_fraction": float(np.mean(np.concatenate([r["mask"] for r in runs]))),
                        "conf_threshold": conf_threshold, "min_joints": min_joints, "window": int(window)}
    return TrackSplit(_projected(train), _projected(val) if val else None, summary)


def read_pose_pool(paths, *, conf_threshold: float = 0.3, min_joints: int = 8, window: int = 1) -> Projected2D:
    """Real 2D poses for the 2D critic, from keypoint files: COCO annotation files of
    still photos (each annotated person one pose; ``window`` must be 1) or any track file
    ``lift`` reads (gap-free runs, as :func:`load_track_2d`), mapped to canon16 the lift way.

    Returns:
        :class:`Projected2D` ``keypoints_2d (1, N, 16, 2)`` px with ``mask (1, N, 16)``.

    Raises:
        FileNotFoundError / TrackFormatError: missing or malformed files. ValueError: still
            photos with ``window > 1``, or no usable pose.
    """
    runs, counts = [], dict.fromkeys(("files", "tracks", "frames_read", "frames_skipped", "frames_in_short_runs",
                                      "identity_switches", "resampled_files"), 0)
    for p in expand_inputs(paths):
        if p.is_dir() or detect_format(p) != "coco-annotations":
            runs += _runs(p, None, None, conf_threshold, min_joints, int(window), counts)
            continue
        if int(window) > 1:
            raise ValueError(f"{p}: still photos give single poses; critic.real_tracks for a temporal model "
                             f"(model.window={window}) needs track files")
        ts = track(read_detections(p, fmt="coco-annotations"), "stills")  # every annotated person one pose
        for t in ts.tracks:
            c = canonical_track(t, ts.keypoint_format, conf_threshold, min_joints)
            if len(c.frame_ids):
                runs.append({"name": f"{p.name}:pose{t.track_id}", "track": (str(p), int(t.track_id)), "kp": c.kp,
                             "mask": c.mask, "conf": c.conf, "fps": MODEL_FPS})
    if not runs:
        raise ValueError(f"{paths}: no usable real 2D pose (visible pelvis and >= {min_joints} joints with "
                         f"confidence >= {conf_threshold})")
    return _projected(runs)


class RealPosePool:
    """Real 2D windows for the 2D critic (``critic.real_tracks``), with their masks.

    Detector and annotation poses miss joints; a critic shown real poses with zeroed joints
    and complete fakes would learn "zeros = real". So every fake the critic judges (in its
    own update and in the generator's adversarial term) first gets the mask of a randomly
    drawn real pose, and both are normalised over their observed joints only
    (:func:`lifting.geometry.normalize_2d`).

    Args:
        data: from :func:`read_pose_pool`. window: frames per window ``T``.
    """

    def __init__(self, data: Projected2D, window: int = 1):
        self.sampler = WindowSampler(data, window)
        self.root = data.skeleton.root_index
        self.window = int(window)

    def __len__(self) -> int:
        return len(self.sampler)

    def to(self, device) -> "RealPosePool":
        self.sampler.to(device)
        return self

    def real(self, n: int, generator: torch.Generator | None) -> torch.Tensor:
        """``(n, T, 16, 2)`` normalised real windows (masked joints 0)."""
        b = self.sampler.sample(n, generator)
        return normalize_2d(b["keypoints_2d"], b["mask"], self.root, per_window=self.window > 1)[0]

    def mask_like(self, y: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Fakes ``y (b, T, 16, 2)`` (normalised, root at 0) with the masks of ``b`` random real
        windows, re-normalised over the kept joints; same shape."""
        m = self.sampler.sample(y.shape[0], generator)["mask"]
        return normalize_2d(y, m, self.root, per_window=self.window > 1)[0].to(y.dtype)


class MixedSampler:
    """Windows drawn from several 2D-only :class:`WindowSampler` s (e.g. the user's tracks and
    mocap projections) with probabilities proportional to ``weights`` (``data.mix``): each
    window of a batch picks its source independently.

    Raises:
        ValueError: no samplers, a weights list of another length, negative/non-finite
            weights or all zero, or samplers with different windows.
    """

    def __init__(self, samplers: list[WindowSampler], weights: list[float]):
        weights = [float(w) for w in weights]
        if not samplers or len(weights) != len(samplers):
            raise ValueError(f"data.mix needs one weight per 2D source ({len(samplers)} sources), got {weights}")
        if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f"data.mix weights must be finite, >= 0 and not all 0, got {weights}")
        if len({s.window for s in samplers}) != 1:
            raise ValueError(f"mixed 2D sources have different windows {[s.window for s in samplers]}")
        self.samplers, self.window, self.skeleton = list(samplers), samplers[0].window, samplers[0].skeleton
        self.weights = torch.tensor(weights, dtype=torch.float64)

    def __len__(self) -> int:
        return sum(len(s) for s in self.samplers)

    def to(self, device) -> "MixedSampler":
        for s in self.samplers:
            s.to(device)
        self.weights = self.weights.to(device)
        return self

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """``{"keypoints_2d": (B, T, J, 2) px, "mask": (B, T, J) bool}``, sources in blocks,
        plus ``"conf" (B, T, J)`` when a source has detector scores (1 at the observed joints
        of a source without)."""
        src = torch.multinomial(self.weights, batch_size, replacement=True, generator=generator)
        counts = torch.bincount(src, minlength=len(self.samplers)).tolist()
        parts = [s.sample(n, generator) for s, n in zip(self.samplers, counts) if n]
        batch = {k: torch.cat([p[k] for p in parts]) for k in ("keypoints_2d", "mask")}
        if any("conf" in p for p in parts):
            batch["conf"] = torch.cat([p.get("conf", p["mask"].float()) for p in parts])
        return batch


EAR_FRACTION = 0.2
"""Each synthetic ear of :func:`mocap_as_coco17` sits this fraction of the shoulder-to-shoulder
vector from the ears' midpoint (0.2 x ~36 cm = ~7 cm: about half an adult head breadth)."""


def mocap_as_coco17(joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mocap joints as the COCO-17 keypoints a detector reports, for synthetic tracks.

    Limb joints map one to one (shoulder = ``UpperArm``, elbow = ``LowerArm``, wrist =
    ``Hand``, hip = ``UpperLeg``, knee = ``LowerLeg``, ankle = ``Foot``). Mocap has no face:
    nose and eyes are *missing* (``present`` False: confidence 0 in a file). The ears are
    placed so that the COCO-17 -> canon16 recipe (``head = thorax + 0.5 (mid_ears - thorax)``,
    ``thorax`` = mid-shoulders, :data:`lifting.skeletons.SYNTHESIS`) gives back the mocap
    ``Head`` exactly: ``mid_ears = thorax + 2 (Head - thorax)``, the two ears
    :data:`EAR_FRACTION` of the shoulder vector either side. The construction is affine, so
    apply it to *projected* pixels for exact 2D heads (in 3D, a perspective projection
    afterwards moves the recovered head by a second-order amount, up to ~0.5% of the person's
    height for a close, tilted camera). The canonical pelvis/thorax/spine then carry the
    COCO-17 biases documented in :mod:`lifting.skeletons` (hip and shoulder midpoints).

    Args:
        joints: ``(..., 21, C)`` :data:`lifting.skeletons.MOCAP21` joints (metres or pixels).

    Returns:
        ``(points (..., 17, C), present (17,) bool)`` in :data:`COCO17` order; missing points
        are 0.

    Raises:
        ValueError: not ``(..., 21, C)``.
    """
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim < 2 or joints.shape[-2] != MOCAP21.num_joints:
        raise ValueError(f"expected mocap21 joints (..., 21, C), got {joints.shape}")
    m = {n: joints[..., MOCAP21.index(n), :] for n in MOCAP21.joint_names}
    same = {"left_shoulder": "UpperArm_L", "right_shoulder": "UpperArm_R", "left_elbow": "LowerArm_L",
            "right_elbow": "LowerArm_R", "left_wrist": "Hand_L", "right_wrist": "Hand_R", "left_hip": "UpperLeg_L",
            "right_hip": "UpperLeg_R", "left_knee": "LowerLeg_L", "right_knee": "LowerLeg_R",
            "left_ankle": "Foot_L", "right_ankle": "Foot_R"}
    out = np.zeros(joints.shape[:-2] + (COCO17.num_joints, joints.shape[-1]))
    present = np.zeros(COCO17.num_joints, bool)
    for coco, mocap in same.items():
        out[..., COCO17.index(coco), :] = m[mocap]
        present[COCO17.index(coco)] = True
    thorax = 0.5 * (m["UpperArm_L"] + m["UpperArm_R"])
    mid_ears = thorax + 2.0 * (m["Head"] - thorax)
    side = EAR_FRACTION * (m["UpperArm_L"] - m["UpperArm_R"])
    out[..., COCO17.index("left_ear"), :] = mid_ears + side
    out[..., COCO17.index("right_ear"), :] = mid_ears - side
    present[[COCO17.index("left_ear"), COCO17.index("right_ear")]] = True
    return out, present
