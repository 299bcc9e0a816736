"""The options of ``posenet3d lift`` as one dataclass: defaults written once here and read by
the API (:func:`lifting.lift.lift_file`), the CLI (``posenet3d lift`` / ``demo``) and tests.

Every value is validated in :meth:`LiftOptions.__post_init__`, so a bad option fails with a
message naming it before any model is loaded or any output is written.
"""
from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, fields
from pathlib import Path

from .track import TRACKERS  # one definition, next to the tracking step
from .skeletons import CANON16
from .smoothing import SMOOTHING_METHODS

__all__ = ["LiftOptions", "UNCERTAINTY_METHODS", "EXPORT_FORMATS", "TRACKERS", "MIN_FPS", "MAX_FPS", "check_fps"]

EXPORT_FORMATS = ("bvh", "csv", "json")
MESH_FORMATS = ("obj", "ply")
VIDEO_FORMATS = ("gif", "mp4")
FIT_METHODS = ("none", "track")
"""``--fit``: ``track`` fits each teacher lift to its own 2D (:func:`lifting.refine.fit_track`)."""
MIN_FPS, MAX_FPS = 1.0, 1000.0
"""Accepted frame rates: temporal models resample to 30 fps, so a rate of ``1e-6`` would
mean a 3e7-fold upsampling (and BVH frame times of days)."""
DEFAULT_HEIGHT_M = 1.70
"""Assumed standing height when converting scale-free lifts to metres."""

DEFAULT_STRIDE = 9
"""Default stride of temporal inference (:func:`lifting.inference.strided_windows`): one
window per 9 frames, each reporting its central 9 frames (a third of a 27-frame window, so
every reported frame has at least 9 real frames on either side inside a long run); ~1/9 of
the cost of a window per frame. Its accuracy cost is in BENCHMARKS.md."""

DEFAULT_SAMPLES = 8
"""Perturbed copies ``K`` per lift for the per-joint uncertainty (``--uncertainty-samples``,
:mod:`lifting.uncertainty`)."""

UNCERTAINTY_METHODS = ("flip", "sampled", "off")
"""``--uncertainty``: ``flip`` (default) from the two lifts of the test-time flip, no extra
lift (:func:`lifting.uncertainty.flip_spread`); ``sampled`` from ``K`` perturbed copies
(:func:`lifting.uncertainty.joint_spread`, ``K`` more lifts); ``off``."""

MIN_HEIGHT_M, MAX_HEIGHT_M = 0.3, 3.0
MAX_UNCERTAINTY_SAMPLES = 256
"""Most ``--uncertainty-samples``: each is one more lift of every frame (the calibration used 8)."""


def check_fps(fps: float | None, what: str = "--fps") -> float | None:
    """``fps`` if ``None`` or a finite rate in ``[MIN_FPS, MAX_FPS]`` frames per second.

    Raises:
        ValueError: naming ``what`` (the option, or the file whose meta gave the rate).
    """
    if fps is None:
        return None
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and MIN_FPS <= fps <= MAX_FPS):
        raise ValueError(f"{what} must be a frame rate between {MIN_FPS:g} and {MAX_FPS:g} frames per second, "
                         f"got {fps!r}")
    return float(fps)


def _check_range(name: str, value, lo, hi, kind=(int, float), lo_open: bool = False) -> None:
    ok = isinstance(value, kind) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > lo if lo_open else value >= lo) and (hi is None or value <= hi)
    if not ok:
        rng = f"{'(' if lo_open else '['}{lo}, {hi if hi is not None else 'inf'}]"
        raise ValueError(f"{name} must be a {'whole number' if kind is int else 'number'} in {rng}, got {value!r}")


@dataclass(frozen=True)
class LiftOptions:
    """Options of one lift run (field = CLI option with ``_`` -> ``-``; see ``posenet3d lift
    --help``).

    Attributes:
        checkpoint: teacher or SMPL-student checkpoint, or ``"teacher"``/``"teacher_single"``/
            ``"student"`` (bundled; that model lifts everything); ``None`` = the bundled
            temporal teacher, with the bundled single-frame teacher (when this build has it)
            for runs shorter than :data:`lifting.track_lifter.MIN_TEMPORAL_RUN` frames.
        body_model_path: student only: SMPL file/folder replacing the checkpoint's.
        fps: frame rate in frames/s overriding the file's (``None``: the file's, else unknown).
        keypoint_format: reader/joint-set name, ``None`` = detect (``lifting.io.readers``).
        tracker: identity association for files without track ids: ``auto|none|oks+iou|oks|iou``
            (passed to :func:`lifting.track.track` when it supports it).
        conf_threshold: joints with confidence below it are masked, in ``(0, 1]`` (0 would
            count the ``(0, 0)`` placeholders of missing joints as observed).
        min_joints: a frame needs a visible pelvis and this many visible canonical joints,
            in ``[1, 16]``.
        height_m: assumed subject height for the teacher's metric scale, metres in ``[0.3, 3]``.
        smooth, smooth_window: 2D smoothing before lifting (:mod:`lifting.smoothing`);
            the window is odd and >= 3.
        causal: online mode for temporal models (each frame from itself and past frames).
        stride: temporal models: one window per ``stride`` frames, each reporting its central
            ``stride`` frames (:func:`lifting.inference.strided_windows`), >= 1; 1 = a window
            per frame. Causal mode always uses 1.
        export: extra per-track files, a subset of ``("bvh", "csv", "json")``.
        max_figures: figures for the N longest tracks (>= 0) with at least
            ``min_figure_frames`` (>= 1) frames.
        mesh_frames: student only: frame ids (tuple of ints >= 0) or ``"all"``; ``None`` =
            the figures' frames.
        mesh_format: ``"obj"`` or ``"ply"``.
        video: ``None``, ``"gif"`` or ``"mp4"`` (needs ffmpeg); video_max_frames >= 1.
        progress: progress bars while rendering videos.
        overwrite: replace an existing non-empty output folder of a previous run.
        fit: ``"track"``: fit each track's teacher lift to its own 2D (one skeleton per run,
            reprojection of the visible joints, smoothness, the lift as prior:
            :func:`lifting.refine.fit_track`); ``"none"``: the lifter's output as it is. Not
            applied to a student (its joints come from its body model) nor with ``causal``
            (the fit uses the whole track).
        image_size: ``(width, height)`` pixels of the video, for inputs with normalised
            coordinates and no size (MediaPipe CSV); ``None`` = the file's.
        focal_px: the camera's focal length in pixels, for the root translation ``transl``
            (:mod:`lifting.placement`; the principal point is the image centre). camera: a
            calibration file for it instead (``calib.toml`` or ``calib.toml:NAME``). Neither:
            a guess from the image size; no image size either: root-relative output only.
        flip: teachers lift each frame also mirrored (left/right swapped) and average the two
            (test-time flip augmentation, :func:`lifting.inference.lift_frames`; 2 lifts).
        uncertainty: how the per-joint uncertainty ``joints_3d_std`` is estimated
            (:data:`UNCERTAINTY_METHODS`, :mod:`lifting.uncertainty`): ``"flip"`` from the
            disagreement of the lift and its mirrored lift (no extra lift when ``flip`` is on,
            one without it; a student, which has no mirrored lift, uses ``"sampled"``),
            ``"sampled"`` from ``uncertainty_samples`` perturbed copies, ``"off"``.
        uncertainty_samples: perturbed copies ``K >= 1`` for ``uncertainty="sampled"`` (cost
            ``K`` more lifts); at most :data:`MAX_UNCERTAINTY_SAMPLES`.

    Raises:
        ValueError: any value out of range or of the wrong kind, naming the option.
    """

    checkpoint: str | Path | None = None
    body_model_path: str | Path | None = None
    fps: float | None = None
    keypoint_format: str | None = None
    tracker: str = "auto"
    conf_threshold: float = 0.3
    min_joints: int = 8
    height_m: float = DEFAULT_HEIGHT_M
    smooth: str = "none"
    smooth_window: int = 9
    causal: bool = False
    stride: int = DEFAULT_STRIDE
    export: tuple[str, ...] = ()
    max_figures: int = 4
    min_figure_frames: int = 10
    mesh_frames: tuple[int, ...] | str | None = None
    mesh_format: str = "obj"
    video: str | None = None
    video_max_frames: int = 300
    progress: bool = True
    overwrite: bool = False
    uncertainty: str = "flip"
    uncertainty_samples: int = DEFAULT_SAMPLES
    fit: str = "track"
    flip: bool = True
    image_size: tuple[int, int] | None = None
    focal_px: float | None = None
    camera: str | None = None

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass normalisation)
        set_("fps", check_fps(self.fps))
        _check_range("--conf-threshold", self.conf_threshold, 0, 1, lo_open=True)
        _check_range("--min-joints", self.min_joints, 1, CANON16.num_joints, kind=int)
        _check_range("--height (metres)", self.height_m, MIN_HEIGHT_M, MAX_HEIGHT_M)
        _check_range("--stride", self.stride, 1, None, kind=int)
        _check_range("--max-figures", self.max_figures, 0, None, kind=int)
        _check_range("min_figure_frames", self.min_figure_frames, 1, None, kind=int)
        _check_range("--video-max-frames", self.video_max_frames, 1, None, kind=int)
        if self.uncertainty not in UNCERTAINTY_METHODS:
            raise ValueError(f"--uncertainty must be one of {', '.join(UNCERTAINTY_METHODS)}, "
                             f"got {self.uncertainty!r}")
        if self.uncertainty_samples == 0 and not isinstance(self.uncertainty_samples, bool):
            raise ValueError("--uncertainty-samples must be >= 1; to skip the uncertainty use --uncertainty off")
        _check_range("--uncertainty-samples", self.uncertainty_samples, 1, MAX_UNCERTAINTY_SAMPLES, kind=int)
        if self.tracker not in TRACKERS:
            raise ValueError(f"--tracker must be one of {', '.join(TRACKERS)}, got {self.tracker!r}")
        if self.image_size is not None:
            size = tuple(self.image_size)
            if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 100_000
                                         for v in size):
                raise ValueError(f"--image-size must be WIDTHxHEIGHT in pixels (1-100000 each), got {self.image_size!r}")
            set_("image_size", size)
        if self.focal_px is not None and not (isinstance(self.focal_px, (int, float)) and 0 < self.focal_px < 1e6):
            raise ValueError(f"--focal-px must be a focal length in pixels (0, 1e6), got {self.focal_px!r}")
        if self.focal_px is not None and self.camera is not None:
            raise ValueError("give --focal-px or --camera, not both")
        if self.fit not in FIT_METHODS:
            raise ValueError(f"--fit must be one of {', '.join(FIT_METHODS)}, got {self.fit!r}")
        if self.smooth not in SMOOTHING_METHODS:
            raise ValueError(f"--smooth must be one of {', '.join(SMOOTHING_METHODS)}, got {self.smooth!r}")
        if not (isinstance(self.smooth_window, int) and self.smooth_window >= 3 and self.smooth_window % 2 == 1):
            raise ValueError(f"--smooth-window must be an odd number of frames >= 3, got {self.smooth_window!r}")
        export = tuple(dict.fromkeys(self.export or ()))
        bad = [e for e in export if e not in EXPORT_FORMATS]
        if bad:
            raise ValueError(f"--export: unknown format(s) {bad}; choose from {', '.join(EXPORT_FORMATS)}")
        set_("export", export)
        if self.mesh_format not in MESH_FORMATS:
            raise ValueError(f"--mesh-format must be obj or ply, got {self.mesh_format!r}")
        if self.video not in (None, *VIDEO_FORMATS):
            raise ValueError(f"--video must be gif or mp4, got {self.video!r}")
        if self.video == "mp4" and shutil.which("ffmpeg") is None:
            raise ValueError("--video mp4 needs ffmpeg on PATH; use --video gif (no extra tools needed)")
        if self.mesh_frames is not None and self.mesh_frames != "all":
            frames = tuple(self.mesh_frames) if not isinstance(self.mesh_frames, str) else None
            if frames is None or not all(isinstance(f, int) and not isinstance(f, bool) and f >= 0 for f in frames):
                raise ValueError(f"--mesh-frames must be 'all' or frame ids >= 0, got {self.mesh_frames!r}")
            set_("mesh_frames", frames)

    @classmethod
    def defaults(cls) -> dict:
        """``{field name: default}`` (what the CLI shows as its defaults)."""
        return {f.name: f.default for f in fields(cls)}
