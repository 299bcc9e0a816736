"""Lift-time preparation of one keypoint track, shared by lifting (:mod:`lifting.lift`) and
training on tracks (:mod:`lifting.track_data`), so both see exactly the same input: detector
joints mapped to :data:`lifting.skeletons.CANON16` by name with low-confidence joints masked
(the scores of the others kept as model input), unliftable frames dropped, and the track cut
into gap-free runs at frame gaps and tracker identity switches.
"""
from __future__ import annotations

from typing import NamedTuple

import warnings

import numpy as np

from .io.tracks import Track
from .skeletons import CANON16, _compile, get_skeleton, remap

__all__ = ["JUMP_FACTOR", "CanonicalTrack", "canonical_track", "canonical_scores", "run_starts", "run_offsets",
           "identity_switches", "resample_runs", "frame_size", "not_person_like", "person_check",
           "MAX_PERSON_JITTER"]


#: a jump of the 2D root between consecutive frames larger than this many times the person's
#: 2D size (RMS distance of the observed joints from the root) is taken as an identity switch
JUMP_FACTOR = 1.0


def run_starts(frame_ids: np.ndarray, kp: np.ndarray, mask: np.ndarray) -> np.ndarray:
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


def identity_switches(starts: np.ndarray, frame_ids: np.ndarray) -> np.ndarray:
    """``(T,)`` bool: the run starts of :func:`run_starts` that are identity switches (a 2D
    root jump between consecutive frames, not a frame gap), and the first frame: where
    another person may begin. A frame gap alone keeps the person."""
    out = np.asarray(starts, bool).copy()
    out[1:] &= np.diff(frame_ids) == 1
    return out


def run_offsets(starts: np.ndarray) -> np.ndarray:
    """Offsets ``(S+1,)`` of runs from :func:`run_starts`."""
    return np.concatenate([np.flatnonzero(starts), [len(starts)]]).astype(np.int64)


def canonical_scores(scores: np.ndarray, src, valid: np.ndarray) -> np.ndarray:
    """Per-joint detector scores of the canonical joints: a joint taken from one source joint
    keeps its score, a synthesised one (e.g. the pelvis = mean of the hips) gets the minimum
    of its sources' scores (it is only as reliable as its weakest source).

    Args:
        scores: ``(T, K)`` scores in [0, 1] of the ``src`` joints. src: source skeleton (or
            name). valid: ``(T, K)`` bool used source joints.

    Returns:
        ``(T, 16)`` float32, 0 at canonical joints with an unused source.

    Raises:
        ValueError: no mapping from ``src`` to canon16 (:func:`lifting.skeletons.remap`).
    """
    src = get_skeleton(src) if isinstance(src, str) else src
    _, dep = _compile(src, CANON16)  # (16, K) which source joints each canonical joint uses
    s = np.where(valid, np.nan_to_num(scores, nan=0.0), 0.0).astype(np.float32)
    lowest = np.zeros((len(s), CANON16.num_joints), np.float32)  # 0 where a joint has no source
    for j in np.flatnonzero(dep.any(1)):  # the few sources of each canonical joint
        lowest[:, j] = s[:, dep[j]].min(-1)
    return lowest.clip(0, 1)


class CanonicalTrack(NamedTuple):
    """One track prepared for lifting (:func:`canonical_track`): ``kp (T', 16, 2)`` float32
    px (0 at masked joints), ``mask (T', 16)`` bool, ``frame_ids (T',)``,
    ``skipped_frame_ids``, ``starts (T',)`` bool run starts, ``conf (T', 16)`` float32
    detector scores of the visible joints (0 at masked ones; 1 for formats without scores)."""

    kp: np.ndarray
    mask: np.ndarray
    frame_ids: np.ndarray
    skipped_frame_ids: np.ndarray
    starts: np.ndarray
    conf: np.ndarray


def canonical_track(track: Track, keypoint_format: str, conf_threshold: float = 0.3,
                    min_joints: int = 8) -> CanonicalTrack:
    """The lift-time preparation of one track, shared by lifting and training on tracks
    (:mod:`lifting.track_data`): map to :data:`CANON16` by joint names (joints below
    ``conf_threshold`` or non-finite are masked; the scores of the others, synthesised joints
    the minimum of their sources', :func:`canonical_scores`), drop frames without a visible
    root or with fewer than ``min_joints`` canonical joints, and mark where gap-free runs
    start (:func:`run_starts`: frame gaps and identity switches).

    Returns:
        :class:`CanonicalTrack` ``(kp, mask, frame_ids, skipped_frame_ids, starts, conf)``.

    Raises:
        ValueError: unknown ``keypoint_format`` or keypoints of the wrong joint count.
    """
    kp_src = np.asarray(track.keypoints, dtype=np.float32)
    valid = (kp_src[..., 2] >= conf_threshold) & np.isfinite(kp_src[..., :2]).all(-1)
    skeleton = get_skeleton(keypoint_format)
    kp, mask = remap(kp_src[..., :2], skeleton, CANON16, valid=valid)
    conf = np.where(mask, canonical_scores(kp_src[..., 2], skeleton, valid), 0.0).astype(np.float32)
    ok = mask[:, CANON16.root_index] & (mask.sum(-1) >= min_joints)
    frame_ids = np.asarray(track.frame_ids)
    kp, mask, conf, skipped, frame_ids = kp[ok], mask[ok], conf[ok], frame_ids[~ok], frame_ids[ok]
    return CanonicalTrack(kp, mask, frame_ids, skipped, run_starts(frame_ids, kp, mask), conf)


def resample_runs(kp: np.ndarray, m: np.ndarray, seg: np.ndarray, ratio: float, conf: np.ndarray | None = None):
    """Linearly resample each gap-free segment of ``kp (N, J, 2)``, ``m (N, J)`` and the
    optional scores ``conf (N, J)`` by ``ratio`` (target fps / source fps); a resampled joint
    is visible only if both neighbours are, and its score is 0 otherwise. Returns resampled
    ``(kp, mask, offsets, pos, conf)``: ``pos (N,)`` is, per original frame, its position in
    the resampled sequence (float index); ``conf`` is ``None`` without input scores."""
    kps, ms, cs, offs, pos = [], [], [], [0], np.empty(len(kp))
    for a, b in zip(seg[:-1], seg[1:]):
        n = b - a
        n_new = max(1, int(round((n - 1) * ratio)) + 1)
        t = np.linspace(0, n - 1, n_new) if n > 1 else np.zeros(1)
        i0 = np.floor(t).astype(int)
        i1 = np.minimum(i0 + 1, n - 1)
        w = (t - i0)[:, None, None]
        kps.append((1 - w) * kp[a:b][i0] + w * kp[a:b][i1])
        ms.append(m[a:b][i0] & m[a:b][i1])
        if conf is not None:
            cs.append(np.where(ms[-1], (1 - w[..., 0]) * conf[a:b][i0] + w[..., 0] * conf[a:b][i1], 0.0))
        pos[a:b] = offs[-1] + np.arange(n) * ((n_new - 1) / max(n - 1, 1))
        offs.append(offs[-1] + n_new)
    conf_r = np.concatenate(cs).astype(np.float32) if conf is not None else None
    return np.concatenate(kps), np.concatenate(ms), np.asarray(offs, np.int64), pos, conf_r


#: left/right limb pairs (parent, child) compared by :func:`not_person_like`
_LIMB_PAIRS = ((("l_shoulder", "l_elbow"), ("r_shoulder", "r_elbow")), (("l_elbow", "l_wrist"), ("r_elbow", "r_wrist")),
               (("l_hip", "l_knee"), ("r_hip", "r_knee")), (("l_knee", "l_ankle"), ("r_knee", "r_ankle")))
#: ``(4, 4)`` joint indices of :data:`_LIMB_PAIRS`: rows left parent, left child, right parent,
#: right child; columns the pairs
_LIMB_IDX = np.array([[CANON16.index(n) for n in (a, b, c, d)] for (a, b), (c, d) in _LIMB_PAIRS]).T


def frame_size(kp: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``(T,)`` float64 2D size of each frame of ``kp (T, J, 2)`` (``mask (T, J)`` observed):
    the larger of the width and height of its observed joints (NaN coordinates ignored, as
    ``np.nanmax``); NaN for a frame without an observed joint. The joints' minimum and maximum
    are taken in ``kp``'s own dtype (exact) from a joint-major copy, so each reduction runs
    over long rows (8 ms -> 1.5 ms for 10,000 frames against ``np.nanmax`` over the joints)."""
    kp, mask = np.asarray(kp), np.asarray(mask, bool)
    if not np.issubdtype(kp.dtype, np.floating):
        kp = kp.astype(np.float64)
    e = np.empty((kp.shape[1], kp.shape[0], 2), kp.dtype)
    e[...] = kp.transpose(1, 0, 2)
    e[~mask.T] = np.nan
    hi, lo = np.fmax.reduce(e, 0, initial=np.nan), np.fmin.reduce(e, 0, initial=np.nan)
    with np.errstate(invalid="ignore"):
        ext = hi.astype(np.float64) - lo.astype(np.float64)
    return np.fmax(ext[:, 0], ext[:, 1])


def _nanmedian_rows(a: np.ndarray) -> np.ndarray:
    """``np.nanmedian(a, -1)`` of a ``(N, K)`` float64 array, bit for bit (the mean of the two
    middle values as ``(lo + hi) / 2``, NaN for an all-NaN row), without its masked-array
    path (~5x faster for K = 4..16) and without the all-NaN warning."""
    s = np.sort(a, -1)  # NaN last
    n = a.shape[-1] - np.isnan(a).sum(-1)
    h = n // 2
    lo = np.take_along_axis(s, np.where(n % 2 == 1, h, h - 1)[:, None], -1)[:, 0]
    med = (lo + np.take_along_axis(s, h[:, None], -1)[:, 0]) / 2
    med[n == 0] = np.nan
    return med


def _norm2(d: np.ndarray) -> np.ndarray:
    """``np.linalg.norm(d, axis=-1)`` of ``(..., 2)`` float64 vectors, bit for bit."""
    return np.sqrt(d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1])


def _limb_ratio_median(kp: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``(T,)`` median over :data:`_LIMB_PAIRS` seen in a frame of ``|log(left / right)|`` of
    the 2D limb lengths (NaN without a pair): see :func:`not_person_like`."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        left = _norm2(kp[:, _LIMB_IDX[1]].astype(np.float64) - kp[:, _LIMB_IDX[0]])
        right = _norm2(kp[:, _LIMB_IDX[3]].astype(np.float64) - kp[:, _LIMB_IDX[2]])
        seen = mask[:, _LIMB_IDX].all(1) & (left > 0) & (right > 0)
        ratio = np.where(seen, np.abs(np.log(np.maximum(left, 1e-12) / np.maximum(right, 1e-12))), np.nan)
    return _nanmedian_rows(ratio)


def not_person_like(kp: np.ndarray, mask: np.ndarray, size: np.ndarray | None = None) -> np.ndarray:
    """``(T,)`` bool: frames whose canonical 2D ``kp (T, 16, 2)`` (``mask (T, 16)`` observed)
    does not look like a person: every observed joint at one point, or the observed left and
    right limbs (upper arms, forearms, thighs, shins) differing in 2D length by more than 3x in
    the median (foreshortening rarely shortens most limbs of one side that much; uniform noise
    or placeholder zeros do). Frames with no observed limb pair are not judged (False).
    ``size``: :func:`frame_size` ``(kp, mask)`` when the caller has it."""
    kp, mask = np.asarray(kp), np.asarray(mask, bool)
    size = frame_size(kp, mask) if size is None else size
    return (size <= 0) | (_limb_ratio_median(kp, mask) > np.log(3.0))


#: median frame-to-frame joint motion (root-relative, over the person's 2D size) above which a
#: track's 2D is not a person's motion: real tracks measure <= 0.15 (shared street video,
#: Pose2Sim, the example track), uniform noise ~0.7
MAX_PERSON_JITTER = 0.35


def _jitter(kp: np.ndarray, mask: np.ndarray, size: np.ndarray, cons: np.ndarray) -> float:
    """Median over the frame pairs ``(cons, cons + 1)`` of the per-frame median root-relative
    joint motion over :func:`frame_size` ``size`` of the later frame (joints observed in
    both): see :func:`person_check`. NaN when no joint is."""
    r = CANON16.root_index
    rel = kp.astype(np.float64)
    rel -= rel[:, r:r + 1].copy()
    d = rel[1:] - rel[:-1]
    if len(cons) < len(d):
        d = d[cons]
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        step = _norm2(d) / size[cons + 1, None]
        step[~(mask[cons] & mask[cons + 1])] = np.nan
        return np.nanmedian(_nanmedian_rows(step))


def person_check(kp: np.ndarray, mask: np.ndarray, frame_ids: np.ndarray) -> str | None:
    """Why a track's canonical 2D does not look like a person, or None when it does: more
    than half of its frames fail :func:`not_person_like`, or (>= 2 consecutive frame pairs) its
    joints move by more than :data:`MAX_PERSON_JITTER` of the person's 2D size from frame to
    frame in the median (noise, not motion).

    Args:
        kp: ``(T, 16, 2)`` px. mask: ``(T, 16)`` observed joints. frame_ids: ``(T,)``.
    """
    kp, mask = np.asarray(kp), np.asarray(mask, bool)
    if not len(kp):
        return None
    size = frame_size(kp, mask)
    bad = not_person_like(kp, mask, size)
    if bad.mean() > 0.5:
        return f"{100 * bad.mean():.0f}% of its frames have all joints at one point or left/right limbs 3x apart"
    cons = np.flatnonzero(np.diff(np.asarray(frame_ids)) == 1)
    if len(cons) < 2:
        return None
    jitter = _jitter(kp, mask, size, cons)
    if jitter > MAX_PERSON_JITTER:
        return f"its joints move by {jitter:.2f} of the person's size from frame to frame (noise, not motion)"
    return None
