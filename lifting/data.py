"""Mocap clips -> 2D training windows and evaluation views.

The shared mocap format is an ``.npz`` with keys ``joints (N, J, 3)`` metres (Y up),
``seq_offsets (C+1,)``, ``seq_names (C,)``, ``joint_names (J,)``, ``parents (J,)``,
``fps (C,)`` (optional ``subjects (C,)``). Any file in that format loads; joints are mapped
by *name* to the canonical lifting set (:data:`lifting.skeletons.CANON16`).

Self-supervised training must not see 3D. :func:`project_clips` is the only bridge: it
takes 3D clips and cameras and returns a :class:`Projected2D`, which holds pixels only, and
:class:`WindowSampler` draws batches from a :class:`Projected2D` alone. The supervised
baseline and the evaluation use the separate :class:`SupervisedWindows` / :func:`eval_views`.
"""
from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .camera import Cameras, eval_rig, random_cameras
from .skeletons import CANON16, Skeleton, remap, skeleton_for_names
from .synth2d import SynthSettings, project_detector_like

__all__ = [
    "MocapClips",
    "load_mocap_npz",
    "split_clips",
    "content_label",
    "Projected2D",
    "project_clips",
    "WindowSampler",
    "SupervisedWindows",
    "eval_views",
    "SPLITS",
]

SPLITS = ("train", "val", "test", "all")
_REQUIRED = ("joints", "seq_offsets", "seq_names", "joint_names")
_BANDAI = re.compile(r"^dataset-([12])_(.+)_([^_]+)_(\d+)$")
_TEST_STYLES = {"angry", "childish", "old", "proud", "tired"}


@dataclass
class MocapClips:
    """3D mocap clips in the canonical joint set.

    Attributes:
        joints: ``(N, J, 3)`` float32 world positions, metres, Y up.
        seq_offsets: ``(C+1,)`` int64; clip k is ``joints[seq_offsets[k]:seq_offsets[k+1]]``.
        seq_names: ``(C,)`` clip names. fps: ``(C,)`` frame rates.
        skeleton: joint set of ``joints`` (canonical after :func:`load_mocap_npz`).
    """

    joints: np.ndarray
    seq_offsets: np.ndarray
    seq_names: np.ndarray
    fps: np.ndarray
    skeleton: Skeleton = CANON16

    @property
    def num_clips(self) -> int:
        return len(self.seq_names)

    def clip(self, k: int) -> np.ndarray:
        """``(T_k, J, 3)`` joints of clip ``k``."""
        return self.joints[self.seq_offsets[k] : self.seq_offsets[k + 1]]

    def select(self, clip_ids) -> "MocapClips":
        """A new :class:`MocapClips` with only the clips ``clip_ids`` (in that order)."""
        clip_ids = np.asarray(clip_ids, dtype=np.int64)
        parts = [self.clip(k) for k in clip_ids]
        lengths = np.array([len(p) for p in parts], dtype=np.int64)
        joints = np.concatenate(parts) if parts else np.zeros((0,) + self.joints.shape[1:], np.float32)
        return MocapClips(
            joints, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            self.seq_names[clip_ids], self.fps[clip_ids], self.skeleton,
        )


def load_mocap_npz(path: str | Path, skeleton: Skeleton = CANON16) -> MocapClips:
    """Load a mocap npz in the shared format and map it to ``skeleton`` by joint names.

    Returns:
        :class:`MocapClips` with ``joints (N, 16, 3)`` float32 metres.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not an npz, a missing key, inconsistent offsets/shapes, unknown joint
            names, non-finite joints, or a joint the target set needs but the file lacks.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mocap file not found: {path}")
    try:
        data = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise ValueError(f"{path}: not a readable .npz file ({e})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: expected an .npz archive with keys {list(_REQUIRED)}, got a single array")
    with data:
        missing = [k for k in _REQUIRED if k not in data.files]
        if missing:
            raise ValueError(f"{path}: missing keys {missing}; expected {list(_REQUIRED)} (+ fps, parents)")
        joints = np.asarray(data["joints"], dtype=np.float32)
        offsets = np.asarray(data["seq_offsets"], dtype=np.int64)
        names = np.asarray(data["seq_names"]).astype(str)
        joint_names = [str(n) for n in data["joint_names"]]
        fps = np.asarray(data["fps"], dtype=np.float32) if "fps" in data.files else np.full(len(names), 30.0, np.float32)
    if joints.ndim != 3 or joints.shape[2] != 3 or joints.shape[1] != len(joint_names):
        raise ValueError(f"{path}: joints must be (N, {len(joint_names)}, 3), got {joints.shape}")
    if len(offsets) != len(names) + 1 or offsets[0] != 0 or offsets[-1] != len(joints) or np.any(np.diff(offsets) < 0):
        raise ValueError(f"{path}: seq_offsets must be non-decreasing from 0 to {len(joints)} with {len(names) + 1} entries")
    if fps.shape != (len(names),):
        fps = np.broadcast_to(fps.reshape(-1)[:1] if fps.size else np.float32(30.0), (len(names),)).copy()
    if not np.isfinite(joints).all():
        raise ValueError(f"{path}: joints contain {int((~np.isfinite(joints)).sum())} non-finite values")
    src = skeleton_for_names(joint_names)
    out, mask = remap(joints, src, skeleton)
    if not mask.all():
        lacking = [skeleton.joint_names[j] for j in np.where(~mask.all(axis=tuple(range(mask.ndim - 1))))[0]]
        raise ValueError(f"{path}: cannot build joints {lacking} of {skeleton.name!r} from {src.name!r}")
    return MocapClips(out.astype(np.float32), offsets, names, fps, skeleton)


def split_clips(seq_names, split: str) -> np.ndarray:
    """Clip indices of a split (DESIGN.md §4).

    Bandai-Namco names (``dataset-{1,2}_{content}_{style}_{id}``): test = dataset-1 clips
    with style angry/childish/old/proud/tired; val = dataset-2 clips whose id is divisible
    by 10; train = the rest. Any other naming: a deterministic fallback by clip index
    (test: k % 10 == 0, val: k % 10 == 5, train: the rest). ``all`` = every clip.

    Raises:
        ValueError: unknown split name.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {SPLITS}")
    names = [str(n) for n in seq_names]
    n = len(names)
    if split == "all":
        return np.arange(n)
    matches = [_BANDAI.match(s) for s in names]
    if n and all(matches):
        labels = []
        for m in matches:
            ds, _, style, idx = m.groups()
            if ds == "1" and style in _TEST_STYLES:
                labels.append("test")
            elif ds == "2" and int(idx) % 10 == 0:
                labels.append("val")
            else:
                labels.append("train")
    else:
        labels = ["test" if k % 10 == 0 else "val" if k % 10 == 5 else "train" for k in range(n)]
    return np.array([k for k, lab in enumerate(labels) if lab == split], dtype=np.int64)


def content_label(seq_name: str) -> str:
    """Action/content label for per-action tables: Bandai ``dataset-1_walk_happy_001`` ->
    ``walk``; HDM05 ``HDM_mm_kickLFront_003_120`` -> ``kickLFront``; otherwise the name
    without its numeric fields."""
    m = _BANDAI.match(seq_name)
    if m:
        return m.group(2)
    parts = seq_name.split("_")
    if parts[0] == "HDM" and len(parts) >= 3:
        return parts[2]
    kept = [p for p in parts if not p.isdigit()]
    return "_".join(kept) or seq_name


@dataclass
class Projected2D:
    """2D projections of clips seen by ``V`` cameras per clip. Holds no 3D.

    Attributes:
        keypoints_2d: ``(V, N, J, 2)`` float32 pixels; view v of clip k is camera v of that clip.
        seq_offsets: ``(C+1,)``; seq_names, fps: ``(C,)``; skeleton: the joint set.
        mask: ``(V, N, J)`` bool observed joints, or ``None`` = every joint observed (mocap
            projections). Detector tracks (:mod:`lifting.track_data`) mask missing and
            low-confidence joints; their coordinates are 0 placeholders, never positions.
        conf: ``(V, N, J)`` float32 detector scores in [0, 1] of the observed joints (0 at
            masked ones; detector tracks), or ``None`` = no scores (mocap projections).
    """

    keypoints_2d: np.ndarray
    seq_offsets: np.ndarray
    seq_names: np.ndarray
    fps: np.ndarray
    skeleton: Skeleton = CANON16
    mask: np.ndarray | None = None
    conf: np.ndarray | None = None


def _check_cameras(n_views: int, height_range) -> None:
    """Random-camera settings (config keys ``data.n_views``, ``data.camera_height``).

    Raises:
        ValueError: ``n_views < 1``, or ``height_range`` not a finite ``(low, high)`` with low <= high.
    """
    if int(n_views) < 1:
        raise ValueError(f"n_views (data.n_views) must be >= 1 random cameras per clip, got {n_views}")
    h = np.asarray(height_range, dtype=np.float64).reshape(-1)
    if h.shape != (2,) or not np.isfinite(h).all() or h[0] > h[1]:
        raise ValueError(f"height_range (data.camera_height) must be finite [low, high] metres with low <= high, "
                         f"got {list(np.asarray(height_range).reshape(-1))}")


def _render(clips: MocapClips, make_cameras, n_views: int, with_3d: bool):
    """Project every clip through ``make_cameras(clip_joints) -> Cameras``; returns pixels
    ``(V, N, J, 2)`` and, if ``with_3d``, root-relative camera-frame metres ``(V, N, J, 3)``."""
    root = clips.skeleton.root_index
    kp = np.empty((n_views,) + clips.joints.shape[:2] + (2,), np.float32)
    j3 = np.empty((n_views,) + clips.joints.shape[:2] + (3,), np.float32) if with_3d else None
    for k in range(clips.num_clips):
        a, b = clips.seq_offsets[k], clips.seq_offsets[k + 1]
        if b == a:
            continue
        cj = clips.joints[a:b].astype(np.float64)
        cams: Cameras = make_cameras(cj)
        kp[:, a:b] = cams.project(cj)
        if with_3d:
            pc = cams.to_camera(cj)
            j3[:, a:b] = pc - pc[:, :, root : root + 1]
    return kp, j3


def project_clips(clips: MocapClips, n_views: int = 4, seed: int = 0, rig: bool = False,
                  height_range: tuple[float, float] = (0.6, 2.6), synth: SynthSettings | None = None) -> Projected2D:
    """Project every clip through ``n_views`` random cameras (:func:`camera.random_cameras`)
    or, with ``rig=True``, the 4-camera evaluation rig; return pixels only.

    With ``synth`` (:class:`lifting.synth2d.SynthSettings`) every view instead has its own
    body proportions, keypoint definitions and video camera
    (:func:`lifting.synth2d.project_detector_like`; ``height_range`` is then unused) and the
    result carries the truncation mask.

    Returns:
        :class:`Projected2D` with ``keypoints_2d (V, N, J, 2)`` (and ``mask (V, N, J)`` with
        ``synth``).

    Raises:
        ValueError: ``n_views < 1`` or a bad ``height_range`` (naming ``data.n_views`` /
            ``data.camera_height``) or bad ``synth`` ranges.
    """
    if synth is not None:
        kp, mask, _ = _render_synth(clips, n_views, seed, synth, with_3d=False)
        return Projected2D(kp, clips.seq_offsets.copy(), clips.seq_names.copy(), clips.fps.copy(), clips.skeleton,
                           mask)
    if not rig:
        _check_cameras(n_views, height_range)
    rng = np.random.default_rng(seed)
    root = clips.skeleton.root_index
    V = 4 if rig else n_views
    make = (lambda cj: eval_rig(cj, root)) if rig else (lambda cj: random_cameras(cj, root, V, rng, height_range))
    out, _ = _render(clips, make, V, with_3d=False)
    return Projected2D(out, clips.seq_offsets.copy(), clips.seq_names.copy(), clips.fps.copy(), clips.skeleton)


def _render_synth(clips: MocapClips, n_views: int, seed: int, synth: SynthSettings, with_3d: bool):
    """Every clip through ``n_views`` detector-like views
    (:func:`lifting.synth2d.project_detector_like`): pixels ``(V, N, J, 2)``, truncation mask
    ``(V, N, J)`` and, if ``with_3d``, the viewed bodies' root-relative camera-frame metres
    ``(V, N, J, 3)`` (else None)."""
    _check_cameras(n_views, (0.0, 0.0))  # n_views only: synth cameras have no height range
    synth.check()
    rng = np.random.default_rng(seed)
    kp = np.empty((n_views,) + clips.joints.shape[:2] + (2,), np.float32)
    mask = np.ones((n_views,) + clips.joints.shape[:2], bool)
    j3 = np.empty((n_views,) + clips.joints.shape[:2] + (3,), np.float32) if with_3d else None
    for k in range(clips.num_clips):
        a, b = clips.seq_offsets[k], clips.seq_offsets[k + 1]
        if b > a:
            out = project_detector_like(clips.joints[a:b].astype(np.float64), n_views, rng, synth,
                                        clips.skeleton, with_3d=with_3d)
            kp[:, a:b], mask[:, a:b] = out[:2]
            if with_3d:
                j3[:, a:b] = out[2]
    return kp, mask, j3


class _WindowIndex:
    """Where windows of ``window`` frames start (never crossing a clip) and how to draw them.

    ``balance="content"`` groups the starts by :func:`content_label`; a draw picks a group
    uniformly, then a window within it. ``"none"`` is one group (uniform over windows).
    Holds only integer index arrays: ``starts (W,)`` and ``groups (L+1,)`` offsets into it.

    Raises:
        ValueError: unknown balance mode, or no clip is at least ``window`` frames long.
    """

    def __init__(self, seq_offsets: np.ndarray, seq_names, window: int, balance: str, num_views: int):
        if balance not in ("none", "content"):
            raise ValueError(f"unknown balance mode (data.balance) {balance!r}; use 'none' or 'content'")
        if int(window) < 1:
            raise ValueError(f"window (model.window) must be >= 1 frames, got {window}")
        self.window, self.num_views = int(window), int(num_views)
        clips = [(k, int(a), int(b)) for k, (a, b) in enumerate(zip(seq_offsets[:-1], seq_offsets[1:]))
                 if b - a >= self.window]
        if not clips:
            longest = int(np.max(np.diff(seq_offsets))) if len(seq_offsets) > 1 else 0
            raise ValueError(f"no clip has at least {window} frames (model.window={window}; "
                             f"{len(seq_offsets) - 1} clips, the longest has {longest} frames)")
        label = {k: content_label(str(seq_names[k])) if balance == "content" else "" for k, _, _ in clips}
        clips.sort(key=lambda c: label[c[0]])  # stable: clip order within a label
        counts: dict[str, int] = {}
        for k, a, b in clips:
            counts[label[k]] = counts.get(label[k], 0) + b - a - self.window + 1
        self.starts = torch.from_numpy(np.concatenate([np.arange(a, b - self.window + 1) for _, a, b in clips]))
        self.groups = torch.from_numpy(np.concatenate([[0], np.cumsum(list(counts.values()))]).astype(np.int64))

    def __len__(self) -> int:
        return len(self.starts) * self.num_views

    def to(self, device) -> "_WindowIndex":
        """Move the index arrays to ``device`` (draws then happen there)."""
        self.starts, self.groups = self.starts.to(device), self.groups.to(device)
        return self

    def draw(self, n: int, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(views (n,), frames (n, T))`` of ``n`` random windows, on the index's device
        (``generator`` must live there too)."""
        dev = self.starts.device
        g = torch.randint(len(self.groups) - 1, (n,), generator=generator, device=dev)
        lo, size = self.groups[g], self.groups[g + 1] - self.groups[g]
        i = lo + (torch.rand(n, generator=generator, dtype=torch.float64, device=dev) * size).long().clamp_max(size - 1)
        v = torch.randint(self.num_views, (n,), generator=generator, device=dev)
        return v, self.starts[i][:, None] + torch.arange(self.window, device=dev)[None]


class WindowSampler:
    """Random batches of 2D windows from a :class:`Projected2D` (2D only, by construction:
    it is given nothing else).

    Args:
        data: projected 2D clips.
        window: frames per window ``T`` (1 = single frame); windows never cross clips.
        balance: ``"content"`` draws a content label (:func:`content_label`, e.g. walk, bow)
            uniformly, then a window within it, so rare motions are not drowned by common
            ones; ``"none"`` draws windows uniformly.

    Raises:
        ValueError: no clip is at least ``window`` frames long.
    """

    def __init__(self, data: Projected2D, window: int = 1, balance: str = "none"):
        if not isinstance(data, Projected2D):
            raise TypeError("WindowSampler takes a Projected2D (2D only)")
        self.keypoints_2d = torch.from_numpy(data.keypoints_2d)  # (V, N, J, 2)
        if data.mask is not None and data.mask.shape != data.keypoints_2d.shape[:-1]:
            raise ValueError(f"Projected2D mask has shape {data.mask.shape}, expected {data.keypoints_2d.shape[:-1]}")
        self.mask = None if data.mask is None else torch.from_numpy(np.asarray(data.mask, dtype=bool))  # (V, N, J)
        self.conf = None
        if data.conf is not None:
            conf = np.asarray(data.conf, dtype=np.float32)
            if conf.shape != data.keypoints_2d.shape[:-1] or not np.isfinite(conf).all():
                raise ValueError(f"Projected2D conf must be finite scores of shape {data.keypoints_2d.shape[:-1]}, "
                                 f"got shape {conf.shape}")
            self.conf = torch.from_numpy(conf.clip(0, 1))  # (V, N, J)
        self.window = int(window)
        self.index = _WindowIndex(data.seq_offsets, data.seq_names, self.window, balance, data.keypoints_2d.shape[0])
        self.skeleton = data.skeleton

    def __len__(self) -> int:
        return len(self.index)

    def to(self, device) -> "WindowSampler":
        """Keep the 2D and the index on ``device`` (e.g. the GPU: batches are then drawn there
        with no host-device copies); returns ``self``."""
        self.keypoints_2d = self.keypoints_2d.to(device)
        if self.mask is not None:
            self.mask = self.mask.to(device)
        if self.conf is not None:
            self.conf = self.conf.to(device)
        self.index.to(device)
        return self

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Draw ``batch_size`` windows uniformly (with replacement), on the sampler's device.

        Returns:
            ``{"keypoints_2d": (B, T, J, 2) float32 pixels, "mask": (B, T, J) bool}`` (all
            True unless the data carries a mask), plus ``"conf": (B, T, J)`` float32 detector
            scores when the data carries them.
        """
        v, frames = self.index.draw(batch_size, generator)
        kp = self.keypoints_2d[v[:, None], frames]
        mask = self.mask[v[:, None], frames] if self.mask is not None else \
            torch.ones(kp.shape[:-1], dtype=torch.bool, device=kp.device)
        batch = {"keypoints_2d": kp, "mask": mask}
        if self.conf is not None:
            batch["conf"] = self.conf[v[:, None], frames]
        return batch


class SupervisedWindows:
    """Paired 2D/3D windows for the *supervised baseline only* (never used by
    self-supervised training): random cameras as :func:`project_clips` (with ``synth``: the
    detector-like views of :func:`lifting.synth2d.project_detector_like`), plus the
    camera-frame 3D.

    ``sample`` returns ``keypoints_2d (B, T, J, 2)`` pixels, ``mask (B, T, J)`` and
    ``joints_3d (B, T, J, 3)`` root-relative camera-frame metres.
    """

    def __init__(self, clips: MocapClips, window: int = 1, n_views: int = 4, seed: int = 0, balance: str = "none",
                 height_range: tuple[float, float] = (0.6, 2.6), synth: SynthSettings | None = None):
        _check_cameras(n_views, height_range)
        rng = np.random.default_rng(seed)
        root = clips.skeleton.root_index
        V = n_views
        self.mask = None
        if synth is None:
            kp, j3 = _render(clips, lambda cj: random_cameras(cj, root, V, rng, height_range), V, with_3d=True)
        else:  # the same detector-like views as the self-supervised models, with their 3D
            kp, mask, j3 = _render_synth(clips, V, seed, synth, with_3d=True)
            self.mask = torch.from_numpy(mask)
        self.keypoints_2d = torch.from_numpy(kp)
        self.joints_3d = torch.from_numpy(j3)
        self.window = int(window)
        self.index = _WindowIndex(clips.seq_offsets, clips.seq_names, self.window, balance, V)
        self.skeleton = clips.skeleton

    def to(self, device) -> "SupervisedWindows":
        """Keep the data and the index on ``device``; returns ``self``."""
        self.keypoints_2d, self.joints_3d = self.keypoints_2d.to(device), self.joints_3d.to(device)
        if self.mask is not None:
            self.mask = self.mask.to(device)
        self.index.to(device)
        return self

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Draw ``batch_size`` windows (see :class:`WindowSampler`), with their 3D:
        ``keypoints_2d (B, T, J, 2)`` px, ``mask (B, T, J)``, ``joints_3d (B, T, J, 3)`` m."""
        v, frames = self.index.draw(batch_size, generator)
        kp = self.keypoints_2d[v[:, None], frames]
        mask = torch.ones(kp.shape[:-1], dtype=torch.bool, device=kp.device) if self.mask is None \
            else self.mask[v[:, None], frames]
        return {
            "keypoints_2d": kp,
            "mask": mask,
            "joints_3d": self.joints_3d[v[:, None], frames],
        }


@dataclass
class EvalViews:
    """Evaluation data: every frame of every clip through the 4-camera rig.

    Attributes:
        keypoints_2d: ``(4, N, J, 2)`` float32 pixels.
        joints_3d: ``(4, N, J, 3)`` float32 root-relative camera-frame metres.
        seq_offsets ``(C+1,)``, seq_names ``(C,)``, skeleton.
    """

    keypoints_2d: np.ndarray
    joints_3d: np.ndarray
    seq_offsets: np.ndarray
    seq_names: np.ndarray
    skeleton: Skeleton = CANON16
    clip_of_frame: np.ndarray = field(default=None)


def eval_views(clips: MocapClips, elevation_deg: float | None = None) -> EvalViews:
    """Project ``clips`` through the fixed evaluation rig (DESIGN.md §4; with
    ``elevation_deg`` its raised variant, :func:`lifting.camera.eval_rig`) and return 2D with
    the matching root-relative camera-frame 3D (:class:`EvalViews`)."""
    root = clips.skeleton.root_index
    kp, j3 = _render(clips, lambda cj: eval_rig(cj, root, elevation_deg), 4, with_3d=True)
    clip_of_frame = np.repeat(np.arange(clips.num_clips), np.diff(clips.seq_offsets))
    return EvalViews(kp, j3, clips.seq_offsets.copy(), clips.seq_names.copy(), clips.skeleton, clip_of_frame)
