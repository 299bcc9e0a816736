"""Lift-time preparation of one keypoint track, shared by lifting (:mod:`lifting.lift`) and
training on tracks (:mod:`lifting.track_data`), so both see exactly the same input: detector
joints mapped to :data:`lifting.skeletons.CANON16` by name with low-confidence joints masked,
unliftable frames dropped, and the track cut into gap-free runs at frame gaps and tracker
identity switches.
"""
from __future__ import annotations

import numpy as np

from .io.tracks import Track
from .skeletons import CANON16, get_skeleton, remap

__all__ = ["JUMP_FACTOR", "canonical_track", "run_starts", "run_offsets"]


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


def run_offsets(starts: np.ndarray) -> np.ndarray:
    """Offsets ``(S+1,)`` of runs from :func:`run_starts`."""
    return np.concatenate([np.flatnonzero(starts), [len(starts)]]).astype(np.int64)


def canonical_track(track: Track, keypoint_format: str, conf_threshold: float = 0.3, min_joints: int = 8):
    """The lift-time preparation of one track, shared by lifting and training on tracks
    (:mod:`lifting.track_data`): map to :data:`CANON16` by joint names (joints below
    ``conf_threshold`` or non-finite are masked), drop frames without a visible root or with
    fewer than ``min_joints`` canonical joints, and mark where gap-free runs start
    (:func:`run_starts`: frame gaps and identity switches).

    Returns:
        ``(kp (T', 16, 2) float32 px (0 at masked joints), mask (T', 16) bool,
        frame_ids (T',), skipped_frame_ids, starts (T',) bool)``.

    Raises:
        ValueError: unknown ``keypoint_format`` or keypoints of the wrong joint count.
    """
    kp_src = np.asarray(track.keypoints, dtype=np.float32)
    valid = (kp_src[..., 2] >= conf_threshold) & np.isfinite(kp_src[..., :2]).all(-1)
    kp, mask = remap(kp_src[..., :2], get_skeleton(keypoint_format), CANON16, valid=valid)
    ok = mask[:, CANON16.root_index] & (mask.sum(-1) >= min_joints)
    frame_ids = np.asarray(track.frame_ids)
    kp, mask, skipped, frame_ids = kp[ok], mask[ok], frame_ids[~ok], frame_ids[ok]
    return kp, mask, frame_ids, skipped, run_starts(frame_ids, kp, mask)
