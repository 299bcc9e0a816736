"""``posenet3d lift``: 2D detector tracks -> root-relative 3D skeletons per track, as one
straight line (:func:`lift_file`): read (and track) -> lift each track -> write -> commit.

Missing and low-confidence joints are handled by **masking**: a keypoint whose confidence
is below ``conf_threshold`` (default 0.3) is treated as missing; the lifter (trained with
random joint dropout) predicts it from the visible ones, and the output ``mask`` says
which joints were observed. A frame is *skipped* (listed in ``skipped_frame_ids``, never
filled with NaN) when its root (pelvis = mean of the COCO hips) is missing or fewer than
``min_joints`` canonical joints are visible. Frames where a track is absent are simply not
in its ``frame_ids``; temporal models (and smoothing) treat each gap-free run as its own
sequence, and split a run where the 2D root jumps by more than
:data:`lifting.prepare.JUMP_FACTOR` x the
person's 2D size between consecutive frames (a tracker identity switch; counted per track in
``summary.json`` as ``identity_switches``).

Detector scores of the visible joints are model input too (models trained with
``use_confidence``; formats without scores give 1). Without ``--checkpoint`` the bundled
temporal teacher lifts runs of at least :data:`lifting.track_lifter.MIN_TEMPORAL_RUN`
frames and the bundled single-frame teacher the shorter ones (isolated frames; every track
of ``--tracker stills``); ``summary.json`` records which model lifted which frames
(``models``, and ``lifted_by`` per track).

The model is used only through :mod:`lifting.track_lifter` (one interface for teacher and
student), the options only through :class:`lifting.options.LiftOptions`.
"""
from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from .inference import HEIGHT_PROXY_FRACTION
from .io.exports import add_floor_frame
from .io.fileio import atomic_write, check_output_folder, staged_output_folder
from .models.lifters import bundled_single_frame, default_checkpoint, load_lifter
from .io.readers import read_detections
from .io.tracks import Track, TrackSet
from .options import LiftOptions, check_fps
from .outputs import LiftOutputs
from . import track as track_step
from .lift_batch import PreparedTrack, lift_with_flip_spread, lift_with_uncertainty, prepare_track
from .prepare import identity_switches, person_check, run_offsets
from .placement import Intrinsics, fit_floor, guess_intrinsics, lowest_feet, read_camera, root_translation, track_motion
from .refine import fit_track
from .track_lifter import MODEL_FPS, LiftResult, as_track_lifter
from .uncertainty import CALIBRATION, DEFAULT_LEVEL_OKS, FLIP_FACTOR, FLIP_FLOOR_M, UncertaintySettings

__all__ = ["lift_track", "lift_tracks", "lift_file", "load_track_lifter", "LiftOptions", "LiftResult", "MODEL_FPS"]



def lift_track(lifter, track: Track, keypoint_format: str = "coco17", fps: float | None = None,
               options: LiftOptions = LiftOptions(), camera: Intrinsics | None = None) -> LiftResult:
    """Lift one track (see the module docstring for masking rules).

    Args:
        lifter: from :func:`lifting.track_lifter.as_track_lifter`.
        track: :class:`lifting.io.tracks.Track` with ``keypoints (T, K, 3)`` pixels + confidence.
        keypoint_format: its joint set. fps: its frame rate (temporal models resample to
            :data:`MODEL_FPS`; ``None`` = assumed 30).
        camera: the camera's intrinsics: the result then has the root translation ``transl``
            (:func:`lifting.placement.root_translation`); None: root-relative only.
        options: ``conf_threshold``, ``min_joints``, ``smooth``/``smooth_window``
            (Savitzky-Golay smoothing of the observed 2D per joint and gap-free run,
            :func:`lifting.smoothing.smooth_tracks`, before lifting), ``causal`` and
            ``uncertainty`` / ``uncertainty_samples`` (``joints_3d_std`` of the unfitted lift it is
            calibrated on: ``"flip"``, :func:`lifting.uncertainty.flip_spread`; ``"sampled"``,
            :func:`lifting.uncertainty.lift_uncertainty` seeded by the track id, on the unflipped
            lift) and ``fit`` (a teacher's lift
            fitted to its 2D, :func:`lifting.refine.fit_track`) are used.

    Returns:
        :class:`LiftResult` (zero frames if nothing was liftable); its ``lifted_by`` holds
        ``(first frame id, last frame id, model name)`` per lifted range.

    Raises:
        ValueError: the lift produced non-finite values (message names the track).
    """
    return lift_tracks(lifter, [track], keypoint_format, fps, options, camera)[0]


def lift_tracks(lifter, tracks: list[Track], keypoint_format: str = "coco17", fps: float | None = None,
                options: LiftOptions = LiftOptions(), camera: Intrinsics | None = None,
                bars: "_StepBars | None" = None) -> list[LiftResult]:
    """:func:`lift_track` of every track of ``tracks``, the model run over all of them at once
    (:mod:`lifting.lift_batch`: the same numbers as one track at a time).

    Args:
        lifter, keypoint_format, fps, options, camera: as :func:`lift_track`.
        tracks: the :class:`lifting.io.tracks.Track` s (a list; held in memory together).
        bars: progress bars advanced by each step (None: none).

    Returns:
        One :class:`LiftResult` per track, in order.

    Raises:
        ValueError: as :func:`lift_track`.
    """
    return _finish_stage(_model_stage(lifter, tracks, keypoint_format, fps, options, bars), options, camera, bars)


def _model_stage(lifter, tracks: list[Track], keypoint_format: str, fps: float | None, o: LiftOptions,
                 bars: "_StepBars | None") -> list[tuple]:
    """The model part of :func:`lift_tracks`: ``[(track, PreparedTrack, LiftResult or None,
    joints_3d_std or None)]`` (None result: no liftable frame)."""
    prep = [prepare_track(t, keypoint_format, o) for t in tracks]
    live = [p for p in prep if len(p.frame_ids)]
    n_in = sum(len(t.frame_ids) for t in tracks)  # the bars count input detections
    method = uncertainty_method(lifter, o)
    if method == "flip":
        lifts, stds = lift_with_flip_spread(lifter, live, fps, o.causal)
    else:
        settings = UncertaintySettings(o.uncertainty_samples) if method == "sampled" else None
        lifts, stds = lift_with_uncertainty(lifter, live, fps, o.causal, settings)
    lifts, stds = iter(lifts), iter(stds)
    _advance(bars, "lift", n_in)
    _advance(bars, "uncertainty", n_in if method == "sampled" else 0)
    return [(t, p, next(lifts), next(stds)) if len(p.frame_ids) else (t, p, None, None) for t, p in zip(tracks, prep)]


def uncertainty_method(lifter, o: LiftOptions) -> str:
    """The uncertainty a run computes: ``o.uncertainty``, except that ``"flip"`` becomes
    ``"sampled"`` for a lifter without a mirrored lift (the SMPL student)."""
    return "sampled" if o.uncertainty == "flip" and not lifter.mirrors else o.uncertainty


def _finish_stage(staged: list[tuple], o: LiftOptions, camera: Intrinsics | None,
                  bars: "_StepBars | None") -> list[LiftResult]:
    """The rest of :func:`lift_tracks` for the output of :func:`_model_stage`: fit, placement,
    the track's fields (:func:`_finish_track`)."""
    out = []
    for track, p, res, std in staged:
        if res is not None:
            out.append(_finish_track(replace(res, joints_3d_std=std) if std is not None else res, p, o, camera))
        else:
            out.append(replace(LiftResult.empty(p.track_id, p.skipped), name=p.name))
        _advance(bars, "fit", len(track.frame_ids))
    return out


def _advance(bars: "_StepBars | None", step: str, n: int) -> None:
    if bars is not None and n:
        bars.update(step, n)


def _finish_track(res: LiftResult, p: PreparedTrack, o: LiftOptions, camera: Intrinsics | None) -> LiftResult:
    """The steps after the model for one track: the fit to its 2D (``o.fit``, teachers, not
    causal), the root translation (with ``camera``), and the track's ids, frames and runs."""
    seg, frame_ids = p.seg, p.frame_ids
    if o.fit == "track" and res.smpl is None and not o.causal:
        res = replace(res, joints_3d=fit_track(res.joints_3d, p.kp, p.mask, p.conf, seg,
                                               body_offsets=run_offsets(identity_switches(p.starts, frame_ids))))
    if camera is not None:  # where the person is (runs: gaps and identity switches start new segments)
        res = replace(res, transl=root_translation(res.joints_3d, p.kp, p.mask, camera, seg, p.conf))
    switches = int(identity_switches(p.starts, frame_ids)[1:].sum())
    by = tuple((int(frame_ids[a]), int(frame_ids[b - 1]), name) for a, b, name in res.lifted_by)
    return replace(res, track_id=p.track_id, frame_ids=frame_ids, skipped_frame_ids=p.skipped,
                   identity_switches=switches, lifted_by=by, name=p.name)


def load_track_lifter(o: LiftOptions):
    """The lifter of a run: ``options.checkpoint`` alone when given; else the bundled temporal
    teacher paired with the bundled single-frame teacher when this build has both
    (:class:`lifting.track_lifter.LifterPair`), else the bundled teacher alone.

    Returns:
        ``(lifter, checkpoint dict of the main model, {model name: checkpoint path})``.

    Raises:
        CheckpointError/ModelConfigError (ValueError): as :func:`lifting.models.lifters.load_lifter`.
    """
    model, ckpt = load_lifter(o.checkpoint, o.body_model_path)
    single = bundled_single_frame() if o.checkpoint is None and model.window > 1 else None
    if single is None:
        return (as_track_lifter(model, o.height_m, stride=o.stride, flip=o.flip), ckpt,
                {"checkpoint": str(o.checkpoint or default_checkpoint())})
    lifter = as_track_lifter(model, o.height_m, load_lifter(single)[0], stride=o.stride, flip=o.flip)
    return lifter, ckpt, {lifter.temporal.name: str(default_checkpoint()), lifter.single.name: str(single)}


def _camera(o: LiftOptions, ts: TrackSet) -> tuple[Intrinsics | None, str | None]:
    """The intrinsics for ``transl`` (``--camera``, ``--focal-px`` with the image centre, or a
    guess from the image size) and, when there are none, the line that says why.

    Raises:
        ValueError: an unreadable ``--camera`` file."""
    size = o.image_size or ts.image_size
    if o.camera is not None:
        return read_camera(o.camera), None
    if size is None:
        need = "the input has no image size" + ("" if o.focal_px is None else " for the principal point")
        return None, (f"root-relative output only (no transl): {need}; give --image-size WxH and --focal-px, or "
                      f"--camera calib.toml")
    if o.focal_px is not None:
        return Intrinsics(o.focal_px, o.focal_px, size[0] / 2, size[1] / 2, "--focal-px, principal point at the "
                          "image centre"), None
    return guess_intrinsics(size), None


def _floor(paths: dict, feet: list, folder: Path, o: LiftOptions) -> dict:
    """The floor of a static camera's scene (:func:`lifting.placement.fit_floor` on every
    person's lowest foot per frame), each placed track's ``joints_3d_floor`` added to its npz
    (:func:`lifting.io.exports.add_floor_frame`), and a top-down figure of all paths on it, to
    scale (``paths_topdown.png``); ``{}`` without placed tracks, and a note when the fit fails."""
    if not paths:
        return {}
    first = min(paths.values(), key=lambda p: p[0][0])[1][0]
    try:
        floor = fit_floor(np.concatenate(feet), first)
    except ValueError as e:
        return {"floor": None, "floor_note": f"no floor: {e}"}
    for stem in paths:  # every placed track's npz gets its joints in the floor frame
        add_floor_frame(folder / f"{stem}.npz", floor.rotation, floor.origin)
    out = {"floor": floor.describe() | {"assumes": "a static camera"}}
    if o.max_figures > 0:
        from .viz import plot_paths_topdown

        out["paths_figure"] = plot_paths_topdown(folder / "paths_topdown.png",
                                                 {k: floor.to_floor(t) for k, (_, t) in paths.items()},
                                                 floor.to_floor(np.zeros(3))).name
    return out


def _read(tracks_path, o: LiftOptions) -> TrackSet:
    """Read the input, then track it (ids from the file, or the tracker for untracked multi-person
    input): the one place the pipeline reads it."""
    dets = read_detections(tracks_path, fmt=o.keypoint_format, fps=o.fps, image_size=o.image_size)
    ts = track_step.track(dets, o.tracker)
    check_fps(ts.fps, f"{tracks_path}: frame rate (meta fps; override with --fps)")
    return ts


def mesh_bytes(n_vertices: int, n_faces: int, fmt: str) -> int:
    """Approximate size of one mesh file written by trimesh: OBJ text (~28 bytes per vertex
    line, ~20 per face line) or binary PLY (12 bytes per vertex, 13 per face)."""
    return 28 * n_vertices + 20 * n_faces if fmt == "obj" else 12 * n_vertices + 13 * n_faces


def _mesh_plan(ts: TrackSet, lifter, fmt: str) -> str:
    """The line said before ``--mesh-frames all`` writes: how many files and how many MB (an
    upper bound: every detection; frames that cannot be lifted get no mesh)."""
    n = sum(len(t.frame_ids) for t in ts.tracks)
    mb = n * mesh_bytes(int(lifter.body_model.num_vertices), len(lifter.faces), fmt) / 2**20
    return f"--mesh-frames all: up to {n} {fmt.upper()} mesh files, about {mb:,.0f} MB, in meshes/"


def _option_notes(lifter, o: LiftOptions) -> list[str]:
    """Warnings for options that have no effect with this model or these other options (an
    option counts as given when it differs from its default)."""
    given = {k for k, v in LiftOptions.defaults().items() if getattr(o, k) != v}
    teacher, single = lifter.faces is None, lifter.window == 1
    unused = [
        ("mesh_frames", teacher, "--mesh-frames ignored: the checkpoint is a teacher (no body model); meshes need a "
                                 "student"),
        ("mesh_format", teacher, "--mesh-format ignored: a teacher writes no meshes"),
        ("body_model_path", teacher, "--body-model ignored: the checkpoint is a teacher (no body model)"),
        ("height_m", not teacher, "--height ignored: the student's size comes from its body model"),
        ("causal", single, "--causal has no effect: the model lifts single frames (window 1)"),
        ("stride", single, "--stride has no effect: the model lifts single frames (window 1)"),
        ("stride", o.causal and not single, "--stride ignored with --causal (one window ending at each frame)"),
        ("smooth_window", o.smooth == "none", "--smooth-window ignored without --smooth savgol"),
        ("video_max_frames", o.video is None, "--video-max-frames ignored without --video"),
        ("fit", not teacher, "--fit ignored: a student's joints come from its body model"),
        ("flip", not teacher, "--flip ignored: test-time flipping applies to teachers"),
        ("fit", o.causal, "--fit ignored with --causal (the fit uses the whole track)"),
    ]
    return [msg for name, applies, msg in unused if name in given and applies]


def lift_file(tracks_path: str | Path, out_dir: str | Path, options: LiftOptions = LiftOptions()) -> dict:
    """Lift every track of a keypoint file (any format :func:`lifting.io.readers.read_detections`
    reads) and write the outputs to ``out_dir`` as one atomic unit.

    Steps: load the model -> read (and track) -> lift the tracks in groups of
    :data:`LIFT_CHUNK_FRAMES` detections (:func:`lift_tracks`) -> write each track -> figures,
    videos, summary -> move the staging folder into place
    (:func:`lifting.io.fileio.staged_output_folder`: a failure or kill leaves the previous
    ``out_dir`` as it was; a non-empty ``out_dir`` needs ``options.overwrite``).

    Writes: ``track_XXXX.npz`` per track with at least one liftable frame (``joints_3d
    (T, 16, 3)`` float32 metres root-relative camera frame, ``joint_names``, ``parents``,
    ``frame_ids (T,)``, ``keypoints_2d (T, 16, 2)`` px, ``mask (T, 16)`` observed joints,
    ``skipped_frame_ids``, ``units``, ``coordinate_frame``, ``fps``, ``track_id``, and
    ``joints_3d_std (T, 16)`` metres per-joint uncertainty unless ``uncertainty`` is ``"off"``),
    ``track_XXXX.png`` figures for the ``max_figures`` longest tracks (with at least
    ``min_figure_frames`` frames), and ``summary.json`` (options, per-track statistics,
    ``tracking`` from the reader, ``warnings``, file lists, timings, ``models`` {name:
    checkpoint} and ``lifted_by`` {track id: [[first frame id, last frame id, model name],
    ...]}).

    With a student checkpoint each npz also holds the SMPL parameters in smplx naming:
    ``global_orient (T, 3)`` and ``body_pose (T, 69)`` axis-angle (body frame -> camera
    frame), ``betas (10,)`` one per track, ``cam (T, 3)`` weak-perspective pixel camera
    ``(s, tx, ty)`` (``pixel ~ s * P_xy + (tx, ty)`` for root-relative points ``P`` in
    metres), ``joints_smpl (T, 24, 3)``; meshes go to ``meshes/track_XXXX_frame_YYYYYY.obj``
    (or ``.ply``) for ``mesh_frames`` (frame ids, or ``"all"``; default the frames shown in
    the figures), in metres, root-relative, y up, and the figures show the mesh.

    ``export``: ``bvh`` / ``csv`` / ``json`` per track (:mod:`lifting.io.exports`: short
    gaps filled and marked ``interpolated``, long gaps as ``track_XXXX_clip1.bvh``, ...; the
    file's frame rate or 30). ``video``: ``track_XXXX.gif|mp4`` for the figured tracks
    (:func:`lifting.viz.animate_track`).

    Returns:
        The summary dict (as written to ``summary.json``).

    Raises:
        ValueError (incl. lifting.io.tracks.TrackFormatError, CheckpointError): unreadable
        input or checkpoint, a bad frame rate, an output folder that may not be replaced, or
        no track has a liftable frame; raised before ``out_dir`` changes.
    """
    t0 = time.perf_counter()
    check_output_folder(out_dir, options.overwrite)  # fail fast; checked again when staging
    lifter, ckpt, models = load_track_lifter(options)
    ts = _read(tracks_path, options)
    camera, no_camera = _camera(options, ts)
    if options.mesh_frames == "all" and lifter.faces is not None and options.progress:
        print(_mesh_plan(ts, lifter, options.mesh_format), file=sys.stderr, flush=True)
    with staged_output_folder(out_dir, overwrite=options.overwrite) as staging:
        outputs = LiftOutputs(staging, options, ts.fps, Path(tracks_path).name, has_body=lifter.faces is not None)
        log = _lift_tracks(lifter, ts, options, camera, outputs)
        if not outputs.frames_lifted:
            raise ValueError(f"{tracks_path}: no frame of any track has a visible pelvis (both hips) and "
                             f">= {options.min_joints} joints above confidence {options.conf_threshold}")
        lift_s = time.perf_counter() - t0
        rendered = outputs.finish()
        summary = _summary(tracks_path, options, ckpt, lifter, ts, outputs) | rendered
        summary |= {"models": models, "lifted_by": log.lifted_by, "camera": camera.describe() if camera else None}
        summary |= _floor(log.paths, log.feet, staging, options)
        summary["warnings"] += log.warnings(no_camera)
        summary |= {"seconds_lift": round(lift_s, 3), "seconds_total": round(time.perf_counter() - t0, 3)}
        atomic_write(staging / "summary.json", lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=1)))
    return summary


MESH_CHUNK = 64
"""``--mesh-frames`` meshes are decoded and written this many frames at a time (a long mesh
sequence never holds all its vertices at once)."""


@dataclass
class _RunLog:
    """What the per-track loop of :func:`lift_file` gathers for the summary.

    Attributes:
        lifted_by: ``{track id: [[first frame id, last frame id, model name], ...]}``.
        not_people: one line per track whose 2D does not look like a person.
        paths: ``{stem: (frame_ids (T,), transl (T, 3) metres)}``: where each placed person went.
        feet: per placed track ``(T, 3)`` metres, its lowest foot per frame (camera frame).
    """

    lifted_by: dict = field(default_factory=dict)
    not_people: list = field(default_factory=list)
    paths: dict = field(default_factory=dict)
    feet: list = field(default_factory=list)

    def warnings(self, no_camera: str | None) -> list[str]:
        """The run's warnings: no intrinsics (``no_camera``), tracks that are not people."""
        out = [no_camera] if no_camera else []
        if self.not_people:
            out.append(f"the 2D of {len(self.not_people)} track(s) does not look like a person (check the "
                       f"input's joint order and coordinates): " + "; ".join(self.not_people[:5])
                       + (" ..." if len(self.not_people) > 5 else ""))
        return out


def _mesh_picks(res: LiftResult, o: LiftOptions) -> np.ndarray:
    """Indices into ``res`` of the ``--mesh-frames`` frames (all for ``"all"``; none when
    meshes go with the figures or the model has no body)."""
    if res.smpl is None or o.mesh_frames is None:
        return np.zeros(0, np.int64)
    return np.arange(len(res.frame_ids)) if o.mesh_frames == "all" else np.flatnonzero(np.isin(res.frame_ids,
                                                                                                 o.mesh_frames))


def _write_track(lifter, res: LiftResult, o: LiftOptions, outputs: LiftOutputs) -> None:
    """Hand one lifted track to the writer with every mesh it writes: the vertices of the
    frames its figure and video would show (:meth:`LiftOutputs.shown_frames`, decoded in one
    batch) in ``res.meshes``, then the ``--mesh-frames`` meshes in parts of :data:`MESH_CHUNK`."""
    shown = outputs.shown_frames(len(res.frame_ids)) if res.smpl is not None else ()
    if len(shown):
        res = replace(res, meshes=lifter.meshes(res, shown))
    outputs.add(res)
    picks = _mesh_picks(res, o)
    for s in range(0, len(picks), MESH_CHUNK):
        outputs.add_meshes(res, lifter.meshes(res, picks[s:s + MESH_CHUNK]))


LIFT_CHUNK_FRAMES = 16_384
"""Tracks are lifted together (:func:`lift_tracks`) in groups of about this many detections
(a track longer than this is a group of its own): model batches of thousands of windows,
while the input, the ``K + 2`` lifted copies and the results of only one group are in memory
at a time (65,536 raised the peak of 1M untracked person-frames from 1.3 to 1.7 GB for no
speed: the model is bound by its matrix products at this batch size)."""


class _StepBars:
    """One terminal progress bar per step after reading and tracking (``lift``,
    ``uncertainty``, ``fit`` = fit + placement, ``write``), in frames; tqdm's ``disable=None``:
    shown only on a terminal, and never when ``enabled`` is False."""

    LABELS = {"lift": "lift", "uncertainty": "uncertainty", "fit": "fit + place", "write": "write"}

    def __init__(self, total: int, steps: list[str], enabled: bool):
        self.bars = {k: tqdm(total=total, unit="frame", desc=self.LABELS[k], position=i, leave=False,
                             disable=None if enabled else True, mininterval=1.0, dynamic_ncols=True)
                     for i, k in enumerate(steps)}

    def update(self, step: str, n: int) -> None:
        """Advance ``step`` by ``n`` frames (a step without a bar is ignored)."""
        if step in self.bars:
            self.bars[step].update(n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def _chunks(ts: TrackSet, frames: int):
    """Groups of consecutive tracks of ``ts`` of about ``frames`` detections each; every track
    is released from ``ts`` (set to None) when its group is handed out."""
    group, n = [], 0
    for i, track in enumerate(ts.tracks):
        ts.tracks[i] = None
        group.append(track)
        n += len(track.frame_ids)
        if n >= frames:
            yield group
            group, n = [], 0
    if group:
        yield group


def _lift_tracks(lifter, ts: TrackSet, o: LiftOptions, camera: Intrinsics | None, outputs: LiftOutputs) -> _RunLog:
    """Lift and write every track of ``ts``, :data:`LIFT_CHUNK_FRAMES` detections at a time
    (:func:`lift_tracks`; each input track is released once lifted); placement statistics go
    to ``outputs.tracks``.

    Raises:
        ValueError: as :func:`lift_track`."""
    log = _RunLog()
    steps = ["lift"] + (["uncertainty"] if uncertainty_method(lifter, o) == "sampled" else []) + ["fit", "write"]
    bars = _StepBars(sum(len(t.frame_ids) for t in ts.tracks), steps, o.progress)

    def finish_and_write(staged: list[tuple]) -> None:
        for res in _finish_stage(staged, o, camera, bars):
            log.lifted_by[str(res.track_id)] = [list(r) for r in res.lifted_by]
            why = person_check(res.keypoints_2d, res.mask, res.frame_ids)
            if why:
                log.not_people.append(f"track {res.track_id}: {why}")
            _write_track(lifter, res, o, outputs)
            if res.transl is not None and len(res.frame_ids):
                outputs.tracks[-1] |= track_motion(res.transl, res.frame_ids, ts.fps or MODEL_FPS)
                log.paths[res.stem] = (res.frame_ids, res.transl)
                log.feet.append(lowest_feet(res.joints_3d + res.transl[:, None]))
        bars.update("write", sum(len(t.frame_ids) for t, *_ in staged))

    # a teacher's groups overlap: the next group's model call (both cores) runs while a worker
    # thread fits and writes the previous group (one core); groups are written in order.
    # numpy / scipy BLAS stays on one thread meanwhile: its own threads on top of torch's and
    # the worker oversubscribe the cores (1M tracked person-frames on 2 cores: 34.1 -> 31.8 s
    # wall, 53 -> 46 s CPU; BENCHMARKS.md "Speed")
    overlap = lifter.faces is None
    try:
        with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(max_workers=1) as pool:
            pending = None
            for group in _chunks(ts, LIFT_CHUNK_FRAMES):
                staged = _model_stage(lifter, group, ts.keypoint_format, ts.fps, o, bars)
                if pending is not None:
                    pending.result()
                pending = pool.submit(finish_and_write, staged) if overlap else finish_and_write(staged)
            if pending is not None:
                pending.result()
    finally:
        bars.close()
    return log


def _uncertainty_summary(method: str, o: LiftOptions) -> dict | None:
    """How ``joints_3d_std`` was made (``summary.json``), None when it was not."""
    if method == "flip":
        return {"method": "flip", "factor": FLIP_FACTOR, "floor_m": FLIP_FLOOR_M}
    if method == "sampled":
        return {"method": "sampled", "samples": o.uncertainty_samples, "level_oks": DEFAULT_LEVEL_OKS,
                "calibration": CALIBRATION}
    return None


def _summary(tracks_path, o: LiftOptions, ckpt: dict, lifter, ts: TrackSet, outputs: LiftOutputs) -> dict:
    """The fields of ``summary.json`` (without figures/videos and timings)."""
    notes = _option_notes(lifter, o)
    if ts.fps is None:
        notes.append(f"the input carries no frame rate (OpenPose JSON, CSV tables and keypoint arrays have none): "
                     f"assumed "
                     f"{MODEL_FPS:g} fps for the temporal model and the exports; give --fps with the video's rate")
    if outputs.missing_mesh_frames():
        notes.append(f"--mesh-frames: frame(s) {outputs.missing_mesh_frames()[:10]} are not lifted frames of any "
                     f"track; no mesh written for them")
    return {
        "input": str(tracks_path), "checkpoint": str(o.checkpoint or default_checkpoint()),
        "model_kind": ckpt.get("kind"), "window": lifter.window, "keypoint_format": ts.keypoint_format,
        "fps": ts.fps, "fps_assumed": MODEL_FPS if ts.fps is None else None, "fit": o.fit, "flip": o.flip,
        "conf_threshold": o.conf_threshold, "min_joints": o.min_joints, "height_m": o.height_m,
        "height_proxy_fraction": HEIGHT_PROXY_FRACTION, "units": "m", "tracker": o.tracker,
        "tracking": getattr(ts, "tracking", None), "tracks": outputs.tracks,
        "frames_lifted": int(outputs.frames_lifted), "frames_skipped": int(outputs.frames_skipped),
        "reader_warnings": list(ts.warnings), "warnings": notes, "files": outputs.files, "meshes": outputs.meshes,
        "smoothing": {"method": o.smooth, "window": o.smooth_window} if o.smooth != "none" else None,
        "causal": o.causal, "stride": 1 if o.causal else min(o.stride, lifter.window),
        "body_model": lifter.body_model.describe() if lifter.body_model is not None else None,
        "uncertainty": _uncertainty_summary(uncertainty_method(lifter, o), o),
    }
