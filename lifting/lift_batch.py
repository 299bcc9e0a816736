"""Lift many prepared tracks in a few large model calls (issue 23).

A track of a few dozen frames is a handful of temporal windows: lifted alone, every model
call is a small batch and Python overhead dominates. Here the gap-free runs of many tracks
are concatenated (each run stays its own sequence, so no window crosses from one track into
another), lifted in one :meth:`lifting.track_lifter.TeacherLifter.normalised` call, split
back per track, and put in metres per track (:meth:`~lifting.track_lifter.TeacherLifter.to_metres`:
the per-track metric scale is unchanged). The per-joint uncertainty does the same with every
track's clean 2D and its ``K`` perturbed copies (:func:`lifting.uncertainty.perturbed_stack`,
seeded by the track id as before): all tracks' copies go through the model together, and each
track's spread is computed from its own block (:func:`lifting.uncertainty.spread_of`).

The numbers are those of lifting each track alone: the model's output for a window does not
depend on the other windows of its batch, except that a batch of exactly one window takes
another matrix-vector code path in torch (differences up to ~1e-6 normalised units, i.e.
micrometres, for a track that is a single window when lifted alone).

Lifters whose ``batches_tracks`` is False (the SMPL student: per-track ``betas``) are lifted
one track at a time through their ``lift``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from .inference import flip_average, mirror_back, mirror_permutation
from .io.tracks import Track
from .lift_result import LiftResult
from .prepare import canonical_track, run_offsets
from .smoothing import smooth_tracks
from .uncertainty import FlipSpread, UncertaintySettings, flip_spread, lift_uncertainty, perturbed_stack, spread_of

__all__ = ["PreparedTrack", "prepare_track", "lift_prepared", "uncertainty_prepared", "lift_with_uncertainty",
           "lift_with_flip_spread"]


@dataclass
class PreparedTrack:
    """One track ready for the model (:func:`prepare_track`).

    Attributes:
        track_id, name: of the input :class:`~lifting.io.tracks.Track`.
        kp: ``(T, 16, 2)`` float32 px canonical joints (smoothed when asked), 0 at masked joints.
        mask: ``(T, 16)`` bool observed joints. conf: ``(T, 16)`` float32 detector scores.
        frame_ids: ``(T,)`` int64 liftable frames. skipped: frame ids that could not be lifted.
        starts: ``(T,)`` bool run starts (:func:`lifting.prepare.run_starts`).
    """

    track_id: int
    name: str
    kp: np.ndarray
    mask: np.ndarray
    conf: np.ndarray
    frame_ids: np.ndarray
    skipped: np.ndarray
    starts: np.ndarray

    @property
    def seg(self) -> np.ndarray:
        """``(S+1,)`` run offsets."""
        return run_offsets(self.starts)


def prepare_track(track: Track, keypoint_format: str, options) -> PreparedTrack:
    """:func:`lifting.prepare.canonical_track` with ``options.conf_threshold`` / ``min_joints``,
    then the optional Savitzky-Golay smoothing per run (``options.smooth``,
    :func:`lifting.smoothing.smooth_tracks`). ``options``: :class:`lifting.options.LiftOptions`.

    Raises:
        ValueError: as :func:`lifting.prepare.canonical_track`."""
    kp, mask, frame_ids, skipped, starts, conf = canonical_track(track, keypoint_format, options.conf_threshold,
                                                                 options.min_joints)
    if len(frame_ids) and options.smooth != "none":  # run_ids make every run boundary a "gap" for the smoother
        run_ids = np.arange(len(frame_ids)) + np.cumsum(starts)
        kp = smooth_tracks(kp, mask, run_ids, method=options.smooth, window=options.smooth_window).astype(np.float32)
    return PreparedTrack(int(track.track_id), track.name, kp, mask, conf, frame_ids, skipped, starts)


def _normalised_many(lifter, parts: list[tuple], fps, causal: bool) -> list[torch.Tensor]:
    """``lifter.normalised`` of every part ``(kp (N_i, J, 2), mask, seg (S_i+1,), conf)`` in one
    call (runs concatenated); the ``(N_i, J, 3)`` normalised lift of each part."""
    sizes = [len(p[0]) for p in parts]
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    seg = np.concatenate([[0]] + [np.asarray(p[2][1:], np.int64) + b for p, b in zip(parts, bounds[:-1])])
    kp = np.concatenate([p[0] for p in parts]).astype(np.float32, copy=False)
    mask = np.concatenate([p[1] for p in parts])
    conf = np.concatenate([np.where(p[1], p[3], 0.0).astype(np.float32) for p in parts])
    pred = lifter.normalised(kp, mask, seg, fps, causal, conf)
    return [pred[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def _metres(lifter, pred: torch.Tensor, track_id: int, per_unit: torch.Tensor | None = None) -> np.ndarray:
    try:
        return lifter.to_metres(pred, per_unit)
    except ValueError as e:
        raise ValueError(f"track {track_id}: {e}") from None


def lift_prepared(lifter, tracks: list[PreparedTrack], fps: float | None, causal: bool) -> list[LiftResult]:
    """The lift of every (non-empty) prepared track, in one model call for a teacher
    (module docstring), else one ``lifter.lift`` per track.

    Returns:
        One :class:`LiftResult` per track (``track_id -1``, ``frame_ids = arange(T)``,
        ``lifted_by`` as indices into the track), as ``lifter.lift`` returns it.

    Raises:
        ValueError: non-finite output (the message names the track)."""
    if not tracks:
        return []
    if not lifter.batches_tracks:
        out = []
        for t in tracks:
            try:
                out.append(lifter.lift(t.kp, t.mask, t.seg, fps, causal, t.conf))
            except ValueError as e:
                raise ValueError(f"track {t.track_id}: {e}") from None
        return out
    preds = _normalised_many(lifter, [(t.kp, t.mask, t.seg, t.conf) for t in tracks], fps, causal)
    return [LiftResult(-1, np.arange(len(t.kp)), _metres(lifter, p, t.track_id), t.kp, t.mask,
                       np.zeros(0, np.int64), lifted_by=lifter.runs_by(t.seg)) for t, p in zip(tracks, preds)]


def uncertainty_prepared(lifter, tracks: list[PreparedTrack], fps: float | None, causal: bool,
                         settings: UncertaintySettings) -> list[np.ndarray]:
    """``joints_3d_std (T, 16)`` float32 metres of every prepared track
    (:func:`lifting.uncertainty.lift_uncertainty` with ``settings``, its ``seed`` replaced by
    the track id), all tracks' perturbed copies in one model call for a teacher (module
    docstring). ``lifter``: the unflipped lifter (``lifter.unflipped()``).

    Raises:
        ValueError: as :func:`lifting.uncertainty.lift_uncertainty` (the message names the track)."""
    if not tracks:
        return []
    per = [replace(settings, seed=t.track_id) for t in tracks]
    if not lifter.batches_tracks:
        out = []
        for t, s in zip(tracks, per):
            try:
                out.append(lift_uncertainty(lifter, t.kp, t.mask, t.seg, fps, causal, t.conf, s))
            except ValueError as e:
                raise ValueError(f"track {t.track_id}: {e}") from None
        return out
    preds = _normalised_many(lifter, [_uncertainty_part(t, s) for t, s in zip(tracks, per)], fps, causal)
    out = []
    for t, s, p in zip(tracks, per, preds):
        try:
            out.append(spread_of(lifter.to_metres(p), len(t.kp), s))
        except ValueError as e:
            raise ValueError(f"track {t.track_id}: {e}") from None
    return out


def _uncertainty_part(t: PreparedTrack, s: UncertaintySettings) -> tuple:
    """The model input of one track's uncertainty: its clean 2D and ``s.samples`` perturbed
    copies (:func:`lifting.uncertainty.perturbed_stack`) with their scores,
    ``(kp, mask, run offsets, conf)``."""
    kp, mask, offs = perturbed_stack(t.kp, t.mask, t.seg, s)
    return kp, mask, offs, np.tile(t.conf, (s.samples + 1, 1))


def _shares_clean_lift(lifter, fps: float | None) -> bool:
    """Whether :func:`lift_with_uncertainty` can take the lift's unflipped half from the
    uncertainty's clean copy: a teacher that flips (or not) consistently and lifts the input
    as given (no resampling, whose interpolation comes after the flip average)."""
    return lifter.batches_tracks and lifter.flips() is not None and not lifter.resamples(fps)


def lift_with_uncertainty(lifter, tracks: list[PreparedTrack], fps: float | None, causal: bool,
                          settings: UncertaintySettings | None) -> tuple[list[LiftResult], list]:
    """:func:`lift_prepared` and :func:`uncertainty_prepared` (``settings`` None: no
    uncertainty, ``[None] * len(tracks)``) of the same tracks, sharing one model pass where
    the numbers allow it: a teacher that does not resample lifts every track's clean 2D, its
    mirror (test-time flip, combined as :func:`lifting.inference.lift_frames` does) and its
    ``K`` perturbed copies in one call, so the clean lift counts once for the lift and the
    uncertainty (``K + 2`` lifts per frame with flip instead of ``K + 3``). Otherwise the two
    functions in turn. Same values either way.

    Returns:
        ``(results, stds)``, one per track.

    Raises:
        ValueError: as the two functions."""
    if settings is None or not tracks or not _shares_clean_lift(lifter, fps):
        lifts = lift_prepared(lifter, tracks, fps, causal)
        stds = uncertainty_prepared(lifter.unflipped(), tracks, fps, causal, settings) if settings \
            else [None] * len(tracks)
        return lifts, stds
    flip, perm = lifter.flips(), mirror_permutation(tracks[0].kp.shape[1])
    per = [replace(settings, seed=t.track_id) for t in tracks]
    parts = [[_uncertainty_part(t, s)] for t, s in zip(tracks, per)]
    if flip:  # the mirrored 2D goes in front: [mirror, clean + copies] per track
        parts = [[_mirrored(t, perm)] + p for t, p in zip(tracks, parts)]
    preds = iter(_normalised_many(lifter.unflipped(), [q for p in parts for q in p], fps, causal))
    lifts, stds = [], []
    for t, s in zip(tracks, per):
        mirror = next(preds) if flip else None
        p = next(preds)  # clean, then the copies
        n = len(t.kp)
        main = flip_average(p[:n], mirror) if flip else p[:n]
        lifts.append(LiftResult(-1, np.arange(n), _metres(lifter, main, t.track_id), t.kp, t.mask,
                                np.zeros(0, np.int64), lifted_by=lifter.runs_by(t.seg)))
        try:
            stds.append(spread_of(lifter.to_metres(p), n, s))
        except ValueError as e:
            raise ValueError(f"track {t.track_id}: {e}") from None
    return lifts, stds


def _mirrored(t: PreparedTrack, perm: list[int]) -> tuple:
    """The mirrored model input of a track (``x -> -x``, left and right joints swapped, as
    the test-time flip), ``(kp, mask, run offsets, conf)``."""
    return t.kp[:, perm] * np.array([-1.0, 1.0], np.float32), t.mask[:, perm], t.seg, t.conf[:, perm]


def lift_with_flip_spread(lifter, tracks: list[PreparedTrack], fps: float | None, causal: bool,
                          settings: FlipSpread = FlipSpread()) -> tuple[list[LiftResult], list[np.ndarray]]:
    """The lift of every prepared track with the flip uncertainty
    (:func:`lifting.uncertainty.flip_spread`): every track's 2D and its mirror go through the
    unflipped lifter in one call (``lifter.mirrors`` must be true: a teacher), the lift is their
    flip average when ``lifter.flips()`` (as :func:`lifting.inference.lift_frames` makes it;
    otherwise the lift of the input alone), and the two lifts' disagreement in metres (the
    track's one metric scale, :meth:`~lifting.track_lifter.TeacherLifter.metres_per_unit` of
    the lift) gives ``joints_3d_std (T, 16)``. Two lifts per frame, flip on or off. Inputs
    resampled to the model's rate (``fps``) are flip-averaged after the resampling's linear
    interpolation instead of before (the same up to float rounding).

    Returns:
        ``(results, stds)``, one per track.

    Raises:
        ValueError: a lifter without mirrored lifts; non-finite output (naming the track)."""
    if not lifter.mirrors:
        raise ValueError("the flip uncertainty needs a lifter with a mirrored lift (a teacher); use the sampled one")
    if not tracks:
        return [], []
    perm = mirror_permutation(tracks[0].kp.shape[1])
    parts = [p for t in tracks for p in (_mirrored(t, perm), (t.kp, t.mask, t.seg, t.conf))]
    preds = _normalised_many(lifter.unflipped(), parts, fps, causal)
    lifts, stds = [], []
    for i, t in enumerate(tracks):
        back, clean = mirror_back(preds[2 * i]), preds[2 * i + 1]
        main = (clean + back) / 2 if lifter.flips() else clean  # flip_average's sum, its mirror_back done once
        scale = lifter.metres_per_unit(main)
        joints = _metres(lifter, main, t.track_id, scale)
        lifts.append(LiftResult(-1, np.arange(len(t.kp)), joints, t.kp, t.mask, np.zeros(0, np.int64),
                                lifted_by=lifter.runs_by(t.seg)))
        stds.append(flip_spread((clean * scale).numpy(), (back * scale).numpy(), settings))
    return lifts, stds
