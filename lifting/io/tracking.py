"""Associate untracked person detections across frames into tracks (online, by frame order).

Detector output without track ids (several people per frame) is turned into per-person
tracks before lifting.  The method is the classic tracking-by-detection loop of SORT
(Bewley et al., ICIP 2016) with a pose similarity in place of (or next to) box IoU:

1. **Filter** spurious detections (documented thresholds in :class:`TrackerConfig`): too few
   visible joints, low mean keypoint confidence, tiny box, duplicate pose of a more confident
   detection of the same frame (OKS non-maximum suppression).  They get track id ``-1``.
2. **Predict** every live track at the current frame with a constant-velocity model: the
   track's last keypoints and box move by ``velocity * gap`` (``gap`` = frames since the
   track's last detection).  The velocity (px/frame) is the mean displacement of the joints
   visible in both of the track's last two detections, exponentially smoothed
   (:data:`VELOCITY_SMOOTHING`).
3. **Similarity** between every predicted track and every detection of the frame: OKS
   (COCO keypoint similarity, per-joint sigmas; :func:`oks_similarity`), box IoU
   (:func:`box_iou`), or -- the default -- their mean (``cost="oks+iou"``), vectorised over
   tracks x detections.  The default is measured (BENCHMARKS.md, "Tracking"; synthetic
   sequences with exact identities, IDF1 mean / OKS / IoU): with detector boxes 98.7 / 95.8 /
   99.3 %, with keypoints only (tight keypoint boxes) 98.0 / 86.8 / 96.8 %.  The mean is the
   one cost that is never far from the best (OKS alone fragments fast walkers; IoU alone
   loses 1.2 points without detector boxes).
4. **Gate + assign**: cost ``1 - similarity``; pairs below ``min_similarity`` are forbidden;
   Hungarian assignment (``scipy.optimize.linear_sum_assignment``, maximum number of allowed
   pairs, then minimum cost).
5. **Birth / death**: an unmatched detection starts a *tentative* track; a tentative track is
   *confirmed* once it has ``min_hits`` detections in consecutive frames and dies at its first
   missed frame before that (SORT/DeepSORT convention); a confirmed track dies after more than
   ``max_missed`` consecutive missed frames.  Detections of tracks that never confirm get
   ``-1``; a confirmed track keeps the detections of its tentative phase.

The result does not depend on the order of the input rows: detections are put in a canonical
order (frame, box x, y, w, h, mean confidence) before tracking.  Exact duplicates (equal in all
of these) may swap labels with each other.

Why our own code: maintained trackers on PyPI were checked for this project (CPU torch, no
torchvision, numpy 2): ``boxmot`` requires torchvision; ``norfair`` (the one with keypoint
distances) pins ``numpy<2``; ``trackers`` / ``supervision`` ByteTrack are box-only and pull in
OpenCV.  None fits cleanly, and the loop above is small.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = [
    "COCO_SIGMAS",
    "DEFAULT_SIGMA",
    "OKS_SIGMAS",
    "TrackerConfig",
    "TrackingResult",
    "box_iou",
    "oks_sigmas",
    "oks_similarity",
    "track_detections",
]

#: COCO-17 OKS per-joint sigmas (COCO keypoint evaluation, cocodataset.org/#keypoints-eval;
#: ``cocoeval.py``), keyed by the COCO-17 joint names.
COCO_SIGMAS: dict[str, float] = {
    "nose": 0.026, "left_eye": 0.025, "right_eye": 0.025, "left_ear": 0.035, "right_ear": 0.035,
    "left_shoulder": 0.079, "right_shoulder": 0.079, "left_elbow": 0.072, "right_elbow": 0.072,
    "left_wrist": 0.062, "right_wrist": 0.062, "left_hip": 0.107, "right_hip": 0.107,
    "left_knee": 0.087, "right_knee": 0.087, "left_ankle": 0.089, "right_ankle": 0.089,
}

# COCO-WholeBody foot sigmas (Jin et al., ECCV 2020, official evaluation script; the left/right
# asymmetry is theirs), then joints of other sets given the sigma of the nearest COCO-17 joint.
_OTHER_SIGMAS: dict[str, float] = {
    "left_big_toe": 0.068, "left_small_toe": 0.066, "left_heel": 0.066,
    "right_big_toe": 0.092, "right_small_toe": 0.094, "right_heel": 0.094,
    "neck": 0.079, "mid_hip": 0.107, "hip": 0.107, "head": 0.035,  # shoulders / hips / ears
    "left_eye_inner": 0.025, "left_eye_outer": 0.025, "right_eye_inner": 0.025,
    "right_eye_outer": 0.025, "mouth_left": 0.026, "mouth_right": 0.026,  # eyes / nose
    "left_pinky": 0.062, "right_pinky": 0.062, "left_index": 0.062, "right_index": 0.062,
    "left_thumb": 0.062, "right_thumb": 0.062,  # wrists
    "left_foot_index": 0.068, "right_foot_index": 0.092,  # big toes (COCO-WholeBody)
}

#: Every named sigma :func:`oks_sigmas` knows (COCO-17 and the joints above).
OKS_SIGMAS: dict[str, float] = {**_OTHER_SIGMAS, **COCO_SIGMAS}

#: Sigma of a joint name found in neither table: the median of the COCO-17 sigmas.
DEFAULT_SIGMA = 0.072

#: Weight of the newest displacement in the exponentially smoothed track velocity.
VELOCITY_SMOOTHING = 0.5

_MODE = 'single'
_BETA = 0.0
_DAMP = 1.0
_BIRTH = 'zero'
_MIN_ASPECT = 0.8
_ASSIGN = 'count'
_VEL = 'mean'
_HIGH = 0.5
_COSTS = ("oks+iou", "oks", "iou")
_FORBIDDEN = 1e6  # assignment cost of a gated-out pair
_FAR = 1e15  # px: where oks_similarity puts missing joints (their term underflows to 0)


def oks_sigmas(joint_names: Sequence[str]) -> np.ndarray:
    """Per-joint OKS sigmas for a joint set given by names.

    COCO-17 names (``"nose"``, ``"left_eye"``, ... ``"right_ankle"``) get the COCO sigmas
    (:data:`COCO_SIGMAS`); BODY_25 / Halpe-26 feet get the COCO-WholeBody foot sigmas;
    other known joints (OpenPose neck / mid hip, Halpe head, MediaPipe eyes, mouth, hands,
    foot index) get the sigma of the nearest COCO-17 joint; unknown names get
    :data:`DEFAULT_SIGMA` (the median COCO-17 sigma).

    Args:
        joint_names: ``K`` joint names, e.g. ``lifting.skeletons.get_skeleton(fmt).joint_names``.

    Returns:
        ``(K,)`` float64 sigmas (fractions of the object scale, as in COCO).

    Raises:
        ValueError: ``joint_names`` is a plain string or empty.
    """
    if isinstance(joint_names, str) or len(joint_names) == 0:
        raise ValueError(f"joint_names must be a non-empty sequence of joint names, got {joint_names!r}")
    return np.array([OKS_SIGMAS.get(str(n), DEFAULT_SIGMA) for n in joint_names], dtype=np.float64)


@dataclass(frozen=True)
class TrackerConfig:
    """Options of :func:`track_detections`; every value is checked on construction.

    Attributes:
        cost: ``"oks+iou"`` (default: the mean of the two; within 0.6 IDF1 points of the best
            cost on the synthetic benchmark with detector boxes and the best without), ``"oks"`` (object keypoint similarity with
            per-joint sigmas, scale = box area) or ``"iou"`` (box intersection over union).
            The gate ``min_similarity`` applies to this similarity.
        min_similarity: gate in [0, 1): a track and a detection with a lower OKS / IoU are never
            matched.  Picked (for OKS) on the synthetic benchmark of ``scripts/bench_tracking.py``
            (BENCHMARKS.md, "Tracking"): for OKS 0.2 beats 0.1 and 0.3 (0.3 fragments people
            moving ~10 % of their height per frame); for IoU 0.2 is as good as or better than
            SORT's 0.3 (Bewley et al. 2016).
        min_hits: track birth: a tentative track is confirmed after this many detections in
            consecutive frames (SORT's ``min_hits`` = 3).  >= 1.
        max_missed: track death: a confirmed track ends after more than this many consecutive
            frames without a detection (frames, not seconds).  >= 0.  The default 10 bridges the
            detector drop-outs of the shared real tracks (1 s at 10 fps) and was checked on the
            synthetic benchmark.
        min_mean_score: spurious-detection filter: mean keypoint confidence over all ``K`` joints
            (missing joints count 0) below this drops the detection.  In [0, 1].
        min_visible: spurious-detection filter: fewer joints with confidence >=
            ``conf_threshold`` drops the detection.  >= 1.
        min_box_px: spurious-detection filter: a box whose larger side is below this many pixels
            drops the detection (COCO calls objects under 32^2 px^2 "small"; 16 px keeps them).
            >= 0.
        conf_threshold: a joint counts as visible (for ``min_visible`` and for the similarity)
            when its confidence is >= this.  In [0, 1].
        nms_similarity: duplicate filter (pose non-maximum suppression within a frame, OKS
            whatever the ``cost``, as the OKS-NMS of top-down pose pipelines): of two
            detections whose OKS exceeds this, the one with the lower mean keypoint
            confidence is dropped.  (Box IoU would miss them: two HOG boxes of different size
            around one person share a pose but not a box.)  In [0, 1]; 1 disables it.  Top-down pipelines (e.g. HOG
            boxes + a single-person pose model, as in the shared real tracks) often put two
            boxes on one person and get the same pose twice; 0.8 removes those (the real
            tracks hold 861 same-frame pose pairs with OKS > 0.5) and leaves people who merely
            overlap.

    The three filter defaults sit well below the real detections of the shared tracks (1st
    percentiles: mean confidence 0.49, 9 visible joints, 72 px boxes), so they only drop junk.

    Raises:
        ValueError: a value of the wrong type or outside its range; the message names the field.
    """

    cost: str = "oks+iou"
    min_similarity: float = 0.2
    min_hits: int = 3
    max_missed: int = 10
    min_mean_score: float = 0.2
    min_visible: int = 4
    min_box_px: float = 16.0
    conf_threshold: float = 0.3
    nms_similarity: float = 0.8
    fps: float | None = None
    min_hits_seconds: float = 0.1
    max_missed_seconds: float = 1.0
    camera_motion: bool = True
    reid_growth: float = 0.25

    def __post_init__(self) -> None:
        if self.cost not in _COSTS:
            raise ValueError(f"TrackerConfig.cost must be one of {_COSTS}, got {self.cost!r}")
        _check_number("min_similarity", self.min_similarity, 0.0, 1.0, open_high=True)
        _check_int("min_hits", self.min_hits, 1)
        _check_int("max_missed", self.max_missed, 0)
        _check_number("min_mean_score", self.min_mean_score, 0.0, 1.0)
        _check_int("min_visible", self.min_visible, 1)
        _check_number("min_box_px", self.min_box_px, 0.0, np.inf)
        _check_number("conf_threshold", self.conf_threshold, 0.0, 1.0)
        _check_number("nms_similarity", self.nms_similarity, 0.0, 1.0)
        if self.fps is not None:
            _check_number("fps", self.fps, 0.0, np.inf, open_low=True)
        _check_number("min_hits_seconds", self.min_hits_seconds, 0.0, np.inf)
        _check_number("max_missed_seconds", self.max_missed_seconds, 0.0, np.inf)
        if not isinstance(self.camera_motion, (bool, np.bool_)):
            raise ValueError(f"TrackerConfig.camera_motion must be True or False, got {self.camera_motion!r}")
        _check_number("reid_growth", self.reid_growth, 0.0, np.inf)

    def frame_counts(self, fps: float | None = None) -> tuple[int, int]:
        """Birth and death in frames: ``(min_hits, max_missed)``.

        Without a frame rate (``fps`` and :attr:`fps` both ``None``) these are the
        :attr:`min_hits` and :attr:`max_missed` fields.  With one (``fps`` wins over :attr:`fps`)
        they are the durations in seconds times the rate: ``min_hits = max(2,
        round(min_hits_seconds * fps))`` and ``max_missed = max(1, round(max_missed_seconds *
        fps))`` -- 2 / 10 frames at 10 fps, 3 / 30 at 30 fps (SORT's ``min_hits`` = 3 was set
        for MOT video at ~30 fps, Bewley et al. 2016).  Birth never goes below 2 frames: a
        single frame cannot tell a person from a one-frame false detection.

        Args:
            fps: frame rate in frames/s (> 0), or ``None`` to use :attr:`fps`.

        Returns:
            ``(min_hits, max_missed)``, ints in frames.

        Raises:
            ValueError: ``fps`` not a finite number > 0.
        """
        if fps is not None:
            _check_number("fps", fps, 0.0, np.inf, open_low=True)
        rate = fps if fps is not None else self.fps
        if rate is None:
            return int(self.min_hits), int(self.max_missed)
        return (max(2, int(round(self.min_hits_seconds * rate))),
                max(1, int(round(self.max_missed_seconds * rate))))


def _check_int(name: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"TrackerConfig.{name} must be an integer >= {low}, got {value!r}")


def _check_number(name: str, value, low: float, high: float, open_high: bool = False, open_low: bool = False) -> None:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    ok = ok and np.isfinite(value) and (low < value if open_low else low <= value)
    ok = ok and (value < high if open_high else value <= high)
    if not ok:
        lo, hi = "(" if open_low else "[", ")" if open_high else "]"
        raise ValueError(f"TrackerConfig.{name} must be a finite number in {lo}{low}, {high}{hi}, got {value!r}")


@dataclass
class TrackingResult:
    """Output of :func:`track_detections`.

    Attributes:
        track_ids: ``(N,)`` int64, one per input detection in input order; ``0, 1, ...`` in
            order of the tracks' first frame; ``-1`` = filtered or never confirmed.
        stats: JSON-able summary for ``summary.json``: ``method`` (the cost), ``config`` (all
            :class:`TrackerConfig` values), ``n_detections``, ``n_frames``, ``n_filtered`` (by
            reason: ``few_visible``, ``low_score``, ``tiny_box``, then ``duplicate``; a detection
            counts under the first failing check in that order), ``n_tracks`` (confirmed), ``n_unconfirmed``
            (tentative tracks that died), ``n_unassigned`` (detections with id -1).
    """

    track_ids: np.ndarray
    stats: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- similarities


def oks_similarity(kp_a: np.ndarray, vis_a: np.ndarray, area_a: np.ndarray,
                   kp_b: np.ndarray, vis_b: np.ndarray, area_b: np.ndarray,
                   sigmas: np.ndarray) -> np.ndarray:
    """Object keypoint similarity between every pose of ``a`` and every pose of ``b``.

    ``OKS = sum_i exp(-d_i^2 / (2 s^2 k_i^2)) / n`` over the ``n`` joints visible in both poses,
    with ``k_i = 2 sigma_i`` and ``s^2`` the mean of the two box areas (COCO keypoint
    evaluation, cocodataset.org/#keypoints-eval, which uses the ground-truth segment area
    instead -- about half the box area, so this is slightly more lenient).  Pairs without a
    common visible joint get 0.

    Computed in float32 with x and y separately (no ``(M, N, K, 2)`` temporary): coordinates
    are pre-scaled by ``1 / (sqrt(2) k_i)``, and a joint missing in ``a`` / ``b`` is moved to
    ``+1e15`` / ``-1e15`` so its Gaussian term underflows to exactly 0; the sum over joints is a
    matrix product.  Agrees with the float64 formula to ~1e-6.

    Args:
        kp_a: ``(M, K, 2)`` px.  vis_a: ``(M, K)`` bool.  area_a: ``(M,)`` px^2.
        kp_b: ``(N, K, 2)`` px.  vis_b: ``(N, K)`` bool.  area_b: ``(N,)`` px^2.
        sigmas: ``(K,)`` per-joint sigmas (:func:`oks_sigmas`).

    Returns:
        ``(M, N)`` float32 similarities in [0, 1].
    """
    scale = (1.0 / (np.sqrt(2.0) * 2.0 * np.asarray(sigmas, dtype=np.float64))).astype(np.float32)  # (K,)
    va, vb = np.asarray(vis_a, bool), np.asarray(vis_b, bool)
    kp_a, kp_b = np.asarray(kp_a, np.float32), np.asarray(kp_b, np.float32)
    ax, ay = (np.where(va, kp_a[..., c] * scale, np.float32(_FAR)) for c in (0, 1))  # (M, K) each
    bx, by = (np.where(vb, kp_b[..., c] * scale, np.float32(-_FAR)) for c in (0, 1))  # (N, K) each
    d2 = np.subtract(ax[:, None], bx[None])  # (M, N, K)
    np.square(d2, out=d2)
    dy = np.subtract(ay[:, None], by[None])
    np.square(dy, out=dy)
    d2 += dy
    s2 = np.maximum(0.5 * (np.asarray(area_a, np.float32)[:, None] + np.asarray(area_b, np.float32)[None]), 1.0)
    d2 *= (-1.0 / s2)[..., None]
    np.exp(d2, out=d2)
    m, n, k = d2.shape
    total = (d2.reshape(m * n, k) @ np.ones(k, np.float32)).reshape(m, n)
    common = va.astype(np.float32) @ vb.astype(np.float32).T  # (M, N) joints visible in both
    return np.where(common > 0, total / np.maximum(common, 1.0), np.float32(0.0))


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box of ``a`` with every box of ``b``.

    Args:
        boxes_a: ``(M, 4)`` ``x, y, w, h`` px (COCO box convention).  boxes_b: ``(N, 4)``.

    Returns:
        ``(M, N)`` float32 IoU in [0, 1] (0 where the union is empty).
    """
    a, b = np.asarray(boxes_a, np.float32), np.asarray(boxes_b, np.float32)
    iw = np.minimum((a[:, 0] + a[:, 2])[:, None], (b[:, 0] + b[:, 2])[None]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum((a[:, 1] + a[:, 3])[:, None], (b[:, 1] + b[:, 3])[None]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.maximum(iw, 0.0) * np.maximum(ih, 0.0)
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), np.float32(0.0))


# --------------------------------------------------------------------------- inputs


@dataclass
class _Detections:
    """Cleaned detections in canonical order (see :func:`_prepare`)."""

    frames: np.ndarray  # (N,) int64
    xy: np.ndarray  # (N, K, 2) float32 px, 0 where missing
    conf: np.ndarray  # (N, K) float32, 0 where missing
    visible: np.ndarray  # (N, K) bool, conf >= conf_threshold
    boxes: np.ndarray  # (N, 4) float64 x, y, w, h px (NaN: no joint and no box)
    order: np.ndarray  # (N,) canonical position -> input row


def _as_frames(frame_ids, n: int) -> np.ndarray:
    f = np.asarray(frame_ids)
    if f.shape != (n,):
        raise ValueError(f"frame_ids must have shape ({n},) (one per detection), got {f.shape}")
    if f.dtype.kind in "iu":
        return f.astype(np.int64)
    if f.dtype.kind == "f" and np.all(np.isfinite(f)) and np.all(f == np.round(f)):
        return f.astype(np.int64)
    raise ValueError(f"frame_ids must be integer frame indices, got dtype {f.dtype}"
                     + (" with non-integer or non-finite values" if f.dtype.kind == "f" else ""))


def _keypoint_boxes(xy: np.ndarray, present: np.ndarray) -> np.ndarray:
    """``(N, 4)`` tight ``x, y, w, h`` boxes around the present joints (NaN rows if none)."""
    lo = np.where(present[..., None], xy, np.inf).min(1)
    hi = np.where(present[..., None], xy, -np.inf).max(1)
    box = np.concatenate([lo, hi - lo], -1)
    box[~present.any(1)] = np.nan
    return box


def _as_boxes(boxes, n: int, xy: np.ndarray, present: np.ndarray) -> np.ndarray:
    kp_boxes = _keypoint_boxes(xy, present)
    if boxes is None:
        return kp_boxes
    b = np.asarray(boxes, dtype=np.float64)
    if b.shape != (n, 4):
        raise ValueError(f"boxes must have shape ({n}, 4) (x, y, w, h px per detection), got {b.shape}")
    finite = np.isfinite(b).all(1)
    bad = finite & ((b[:, 2] < 0) | (b[:, 3] < 0))
    if bad.any():
        raise ValueError(f"boxes: negative width or height in row {int(np.flatnonzero(bad)[0])}: "
                         f"{b[np.flatnonzero(bad)[0]].tolist()}")
    return np.where(finite[:, None], b, kp_boxes)


def _prepare(frame_ids, keypoints, sigmas, boxes, conf_threshold: float) -> _Detections:
    kp = np.asarray(keypoints)  # float32 or float64 as given: no float64 copy of a large input
    if kp.dtype.kind not in "fiu":
        raise ValueError(f"keypoints must be numeric (x px, y px, confidence), got dtype {kp.dtype}")
    if kp.ndim != 3 or kp.shape[2] != 3:
        raise ValueError(f"keypoints must have shape (N, K, 3) (x px, y px, confidence), got {kp.shape}")
    n, k = kp.shape[:2]
    s = np.asarray(sigmas, dtype=np.float64)
    if s.shape != (k,) or not np.all(np.isfinite(s) & (s > 0)):
        raise ValueError(f"sigmas must be ({k},) positive finite values (one per joint), got shape {s.shape}")
    frames = _as_frames(frame_ids, n)
    present = (np.abs(kp[..., :2]) < _FAR).all(-1) & np.isfinite(kp[..., 2]) & (kp[..., 2] > 0)
    xy = np.where(present[..., None], kp[..., :2], 0).astype(np.float32)
    conf = np.where(present, np.clip(kp[..., 2], 0.0, 1.0), 0).astype(np.float32)
    box = _as_boxes(boxes, n, xy, present)
    key = np.nan_to_num(np.concatenate([box, conf.mean(1, keepdims=True)], 1), nan=-1.0)
    order = np.lexsort(tuple(key[:, c] for c in range(key.shape[1] - 1, -1, -1)) + (frames,))
    return _Detections(frames[order], xy[order], conf[order], (conf >= conf_threshold)[order] & present[order],
                       box[order], order)


def _filter_reasons(det: _Detections, sigmas: np.ndarray, config: TrackerConfig) -> tuple[np.ndarray, dict]:
    """``(N,)`` bool keep mask and the number of dropped detections per reason."""
    checks = {
        "few_visible": det.visible.sum(1) < config.min_visible,
        "low_score": det.conf.mean(1) < config.min_mean_score,
        "tiny_box": ~(np.nan_to_num(det.boxes[:, 2:].max(1), nan=-1.0) >= config.min_box_px),
    }
    dropped = np.zeros(len(det.frames), dtype=bool)
    counts = {}
    for reason, fails in checks.items():
        counts[reason] = int((fails & ~dropped).sum())
        dropped |= fails
    duplicate = _duplicates(det, ~dropped, sigmas, config)
    counts["duplicate"] = int(duplicate.sum())
    return ~dropped & ~duplicate, counts


def _duplicates(det: _Detections, keep: np.ndarray, sigmas: np.ndarray, config: TrackerConfig) -> np.ndarray:
    """``(N,)`` bool: kept detections suppressed by a more confident one of the same frame
    whose OKS exceeds ``config.nms_similarity`` (greedy pose non-maximum suppression)."""
    dup = np.zeros(len(det.frames), dtype=bool)
    if config.nms_similarity >= 1.0:
        return dup
    idx = np.flatnonzero(keep)
    frames = det.frames[idx]
    starts = np.flatnonzero(np.r_[True, frames[1:] != frames[:-1], True])
    for a, b in zip(starts[:-1], starts[1:]):
        if b - a < 2:
            continue
        cols = idx[a:b][np.argsort(-det.conf[idx[a:b]].mean(1), kind="stable")]
        sim = _pair_similarity(det, cols, det.xy[cols], det.visible[cols], det.boxes[cols], sigmas, "oks")
        close = np.triu(sim > config.nms_similarity, 1)  # (P, P): i more confident than j, too similar
        for i in np.flatnonzero(close.any(1)):  # greedy only over the (rare) rows with a duplicate
            if not dup[cols[i]]:
                dup[cols[close[i]]] = True
    return dup


# --------------------------------------------------------------------------- track state


class _LiveTracks:
    """State of the live tracks as arrays over tracks (M): internal id, last keypoints
    ``(M, K, 2)`` px, their visibility ``(M, K)``, last box ``(M, 4)``, image velocity
    ``(M, 2)`` px/frame, predicted displacement ``(M, 2)`` px since the last detection, frame of
    the last detection, number of detections, confirmed flag.  ``frame`` is the frame the
    predicted displacements refer to."""

    _FIELDS = ("tid", "xy", "vis", "box", "vel", "shift", "last", "hits", "confirmed")

    def __init__(self, k: int) -> None:
        self.tid = np.zeros(0, np.int64)
        self.xy = np.zeros((0, k, 2))
        self.vis = np.zeros((0, k), bool)
        self.box = np.zeros((0, 4))
        self.vel = np.zeros((0, 2))
        self.shift = np.zeros((0, 2))
        self.last = np.zeros(0, np.int64)
        self.hits = np.zeros(0, np.int64)
        self.confirmed = np.zeros(0, bool)
        self.frame: int | None = None

    def _keep(self, keep: np.ndarray) -> None:
        for name in self._FIELDS:
            setattr(self, name, getattr(self, name)[keep])

    def prune(self, frame: int, max_missed: int) -> np.ndarray:
        """Drop tracks that died before ``frame``; return the internal ids of dropped tentative tracks."""
        missed = frame - self.last - 1
        dead = np.where(self.confirmed, missed > max_missed, missed > 0)
        lost = self.tid[dead & ~self.confirmed]
        if dead.any():
            self._keep(~dead)
        return lost

    def advance(self, frame: int) -> int:
        """Move the constant-velocity predictions on to ``frame``; return the frames advanced."""
        step = 0 if self.frame is None else frame - self.frame
        if _DAMP < 1.0 and step > 0:
            missed = (self.frame - self.last).astype(np.float64)  # frames already coasted before this step
            factor = np.array([sum(_DAMP ** (m + i) for i in range(step)) for m in missed]) if len(missed) else np.zeros(0)
            self.shift += self.vel * factor[:, None]
        else:
            self.shift += self.vel * step
        self.frame = frame
        return step

    def correct(self, shift: np.ndarray, step: int) -> None:
        """Add a common image shift (2,) px (camera motion) to every prediction; the velocity
        changes by ``shift / step``: a change of pan lasts."""
        self.shift += shift
        if step > 0:
            self.vel += shift / step

    def predict(self) -> tuple[np.ndarray, np.ndarray]:
        """Predicted keypoints ``(M, K, 2)`` and boxes ``(M, 4)`` at :attr:`frame`."""
        box = self.box.copy()
        box[:, :2] += self.shift
        return self.xy + self.shift[:, None], box

    def update(self, rows: np.ndarray, det: _Detections, cols: np.ndarray, frame: int) -> None:
        """Track ``rows[i]`` takes detection ``cols[i]`` (indices into ``det``) at ``frame``."""
        gap = (frame - self.last[rows]).astype(np.float64)[:, None]
        both = self.vis[rows] & det.visible[cols]  # (P, K)
        joint_disp = ((det.xy[cols] - self.xy[rows]) * both[..., None]).sum(1) / np.maximum(both.sum(1), 1)[:, None]
        box_disp = np.nan_to_num(_centres(det.boxes[cols]) - _centres(self.box[rows]))
        v_new = np.where(both.any(1)[:, None], joint_disp, box_disp) / gap
        old = self.hits[rows] >= 2  # has a velocity estimate already
        self.vel[rows] = np.where(old[:, None], (1 - VELOCITY_SMOOTHING) * self.vel[rows] + VELOCITY_SMOOTHING * v_new,
                                  v_new)
        self.xy[rows], self.vis[rows], self.box[rows] = det.xy[cols], det.visible[cols], det.boxes[cols]
        self.shift[rows] = 0.0
        self.last[rows] = frame
        self.hits[rows] += 1

    def spawn(self, tids: np.ndarray, det: _Detections, cols: np.ndarray, frame: int, vel: np.ndarray) -> None:
        """Start tentative tracks with internal ids ``tids`` from detections ``cols`` and
        initial image velocity ``vel`` (2,) px/frame."""
        self.tid = np.concatenate([self.tid, tids])
        self.xy = np.concatenate([self.xy, det.xy[cols]])
        self.vis = np.concatenate([self.vis, det.visible[cols]])
        self.box = np.concatenate([self.box, det.boxes[cols]])
        self.vel = np.concatenate([self.vel, np.tile(vel, (len(cols), 1))])
        self.shift = np.concatenate([self.shift, np.zeros((len(cols), 2))])
        self.last = np.concatenate([self.last, np.full(len(cols), frame, np.int64)])
        self.hits = np.concatenate([self.hits, np.ones(len(cols), np.int64)])
        self.confirmed = np.concatenate([self.confirmed, np.zeros(len(cols), bool)])


def _centres(box: np.ndarray) -> np.ndarray:
    """``(M, 2)`` centres of ``(M, 4)`` x, y, w, h boxes."""
    return box[:, :2] + 0.5 * box[:, 2:]


#: Camera-motion vote: at most this many tracks (seen in the previous frame) vote ...
_CAM_MAX_TRACKS = 32
#: ... each with its this many nearest detections within one box height (predicted centre to centre)...
_CAM_NEAREST = 4
#: ... and two votes agree when they differ by at most this fraction of the voter's box height.
_CAM_TOLERANCE = 0.1


def _common_shift(centres: np.ndarray, heights: np.ndarray, det_centres: np.ndarray,
                  det_heights: np.ndarray) -> tuple[np.ndarray, int]:
    """Shift (2,) px shared by most tracks between their predicted centres ``(A, 2)`` (box
    heights ``(A,)``) and the detections ``(N, 2)`` (heights ``(N,)``), and its support
    (number of tracks agreeing).  Every track votes for the displacements to its nearest
    detections of similar size; the displacement agreed by most tracks (ties: the smallest)
    wins; the result is the median of the agreeing tracks' displacements (a mode search
    over all candidate displacements, like the Hough voting of a translation)."""
    a, n = len(centres), len(det_centres)
    if a == 0 or n == 0:
        return np.zeros(2), 0
    d = det_centres[None] - centres[:, None]  # (A, N, 2)
    dist = np.hypot(d[..., 0], d[..., 1])
    ratio = det_heights[None] / np.maximum(heights[:, None], 1e-6)
    dist = np.where((dist <= heights[:, None]) & (ratio > 2 / 3) & (ratio < 1.5), dist, np.inf)
    k = min(_CAM_NEAREST, n)
    near = np.argpartition(dist, k - 1, axis=1)[:, :k] if k < n else np.tile(np.arange(n), (a, 1))
    ok = np.isfinite(np.take_along_axis(dist, near, 1))  # (A, k)
    voter = np.repeat(np.arange(a), k)[ok.ravel()]
    if len(voter) == 0:
        return np.zeros(2), 0
    cand = d[voter, near.ravel()[ok.ravel()]]  # (C, 2)
    tol = _CAM_TOLERANCE * heights[voter]  # (C,)
    diff = cand[:, None] - cand[None]  # (C, C, 2)
    agree = np.hypot(diff[..., 0], diff[..., 1]) <= tol[None]  # candidate c' agrees with c (c' tolerance)
    starts = np.flatnonzero(np.r_[True, voter[1:] != voter[:-1]])
    support = np.logical_or.reduceat(agree, starts, axis=1).sum(1)  # (C,) tracks agreeing with c
    best = np.lexsort((np.hypot(cand[:, 0], cand[:, 1]), -support))[0]
    # each agreeing track's displacement closest to the winner
    err = np.where(agree[best], np.hypot(*(cand - cand[best]).T), np.inf)
    pick = [s + int(np.argmin(err[s:e])) for s, e in zip(starts, np.r_[starts[1:], len(voter)]) if np.isfinite(err[s:e]).any()]
    return np.median(cand[pick], axis=0), int(support[best])


def _pair_similarity(det: _Detections, cols: np.ndarray, xy: np.ndarray, vis: np.ndarray, box: np.ndarray,
                     sigmas: np.ndarray, cost: str, area_scale: float = 1.0) -> np.ndarray:
    """``(M, P)`` similarity (``cost``: OKS, IoU or their mean) of poses ``xy (M, K, 2)`` /
    ``vis (M, K)`` with boxes ``(M, 4)`` against detections ``cols``; the OKS object areas are
    the box areas times ``area_scale``."""
    sim = np.zeros((len(xy), len(cols)), np.float32)
    if "oks" in cost.split("+"):
        area = lambda b: area_scale * b[:, 2] * b[:, 3]  # noqa: E731
        sim += oks_similarity(xy, vis, area(box), det.xy[cols], det.visible[cols], area(det.boxes[cols]), sigmas)
    if "iou" in cost.split("+"):
        sim += box_iou(box, det.boxes[cols])
    return sim / len(cost.split("+"))


def _assign(sim: np.ndarray, min_similarity: float, score: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Gated Hungarian assignment on ``1 - sim``: matched (row, col) index arrays."""
    if sim.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    allowed = sim >= min_similarity
    if score is not None:
        sim = score
    if _ASSIGN == "benefit":
        rows, cols = linear_sum_assignment(np.where(allowed, sim - min_similarity, 0.0), maximize=True)
    else:
        rows, cols = linear_sum_assignment(np.where(allowed, 1.0 - sim, _FORBIDDEN))
    ok = allowed[rows, cols]
    return rows[ok], cols[ok]


# --------------------------------------------------------------------------- tracking


def track_detections(frame_ids: np.ndarray, keypoints: np.ndarray, sigmas: np.ndarray,
                     boxes: np.ndarray | None = None, config: TrackerConfig = TrackerConfig(),
                     fps: float | None = None) -> TrackingResult:
    """Give every detection a track id by online tracking-by-detection (module docstring).

    Args:
        frame_ids: ``(N,)`` integer frame index of each detection, any order (frames without a
            detection count as missed frames for the tracks).
        keypoints: ``(N, K, 3)`` x px, y px, confidence (float32 or float64; kept as float32
            inside).  A joint whose x, y or confidence is NaN / inf, whose ``|x|`` or ``|y|`` is
            1e15 px or more, or whose confidence is <= 0, is missing (masked); confidences are
            clipped to [0, 1].
        sigmas: ``(K,)`` OKS per-joint sigmas (:func:`oks_sigmas`); used by ``cost="oks"``.
        boxes: ``(N, 4)`` ``x, y, w, h`` px, or ``None`` to use the tight box around each
            detection's present joints; a row with a NaN / inf value also falls back to it.
        config: thresholds (:class:`TrackerConfig`).

    Returns:
        :class:`TrackingResult`: ``track_ids`` ``(N,)`` int64 in input order (``-1`` =
        filtered or never confirmed) and JSON-able ``stats``.

    Raises:
        ValueError: wrong shapes, non-integer frame ids, non-positive sigmas, negative box sizes
            (naming the argument and the row), or ``config`` not a :class:`TrackerConfig`.
    """
    if not isinstance(config, TrackerConfig):
        raise ValueError(f"config must be a TrackerConfig, got {type(config).__name__}")
    min_hits, max_missed = config.frame_counts(fps)
    det = _prepare(frame_ids, keypoints, sigmas, boxes, config.conf_threshold)
    keep, n_filtered = _filter_reasons(det, np.asarray(sigmas, np.float64), config)
    owner, confirmed, counts = _run_tracker(det, keep, np.asarray(sigmas, np.float64), config, min_hits, max_missed)
    # internal id -> output id; the appended -1 is what owner == -1 (filtered) indexes
    public = np.r_[np.where(confirmed, np.cumsum(confirmed) - 1, -1), -1].astype(np.int64)
    ids = np.empty(len(det.frames), np.int64)
    ids[det.order] = public[owner]
    stats = {
        "method": config.cost,
        "config": asdict(config),
        "n_detections": int(len(ids)),
        "n_frames": int(len(np.unique(det.frames))),
        "n_filtered": n_filtered,
        "fps": fps if fps is not None else config.fps,
        "min_hits": min_hits,
        "max_missed": max_missed,
        "n_tracks": int(confirmed.sum()),
        **counts,
        "n_unassigned": int((ids < 0).sum()),
    }
    return TrackingResult(track_ids=ids, stats=stats)


def _run_tracker(det: _Detections, keep: np.ndarray, sigmas: np.ndarray, config: TrackerConfig,
                 min_hits: int, max_missed: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """Frame-by-frame loop.  Returns the internal track id of each (canonical) detection
    (-1 = filtered), which internal ids were confirmed, and loop counts: ``n_unconfirmed``
    (tentative tracks that died), ``n_reidentified`` (matches of tracks missed in the previous
    frame), ``camera_shift_px`` (median absolute camera-motion correction per frame, px)."""
    owner = np.full(len(det.frames), -1, np.int64)
    idx = np.flatnonzero(keep)
    frames = det.frames[idx]
    bounds = np.r_[np.flatnonzero(np.r_[True, frames[1:] != frames[:-1]]), len(idx)] if len(idx) else [0]
    tracks = _LiveTracks(det.xy.shape[1])
    confirmed: list[int] = []
    n_born = n_lost = n_reid = 0
    prev = None  # previous frame with detections
    pan: list[float] = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        cols, frame = idx[a:b], int(frames[a])
        n_lost += len(tracks.prune(frame, max_missed))
        step = tracks.advance(frame)
        recent = tracks.last == prev  # seen in the previous frame (tentative tracks always are)
        if config.camera_motion:
            shift = _camera_correction(tracks, recent, det, cols)
            tracks.correct(shift, step)
            pan.append(float(np.hypot(*shift)))
        xy, box = tracks.predict()
        free = np.ones(len(cols), bool)
        if _MODE == "cascade":
            plan = [(np.flatnonzero(recent), config.min_similarity), (np.flatnonzero(~recent), config.min_similarity)]
        elif _MODE == "single":
            plan = [(np.arange(len(recent)), config.min_similarity)]
        elif _MODE == "two":
            plan = [(np.arange(len(recent)), config.min_similarity, False), (np.flatnonzero(~recent), config.min_similarity, True)]
        else:
            plan = [(np.arange(len(recent)), _HIGH), (np.arange(len(recent)), config.min_similarity)]
        taken = np.zeros(len(recent), bool)
        for stage, gate, *inflate in plan:
            stage = stage[~taken[stage]]
            left = np.flatnonzero(free)
            if len(stage) == 0 or len(left) == 0:
                continue
            grow = 1.0 + config.reid_growth * np.maximum(frame - tracks.last[stage] - 1, 0)
            if inflate and not inflate[0]:
                grow = np.ones_like(grow)
            sim = _grown_similarity(det, cols[left], xy[stage], tracks.vis[stage], box[stage], grow, sigmas,
                                    config.cost)
            if _BETA > 0:
                r, m = _assign(sim, gate, sim / grow[:, None] ** _BETA)
            else:
                r, m = _assign(sim, gate)
            taken[stage[r]] = True
            rows, matched = stage[r], left[m]
            n_reid += int((~recent[rows]).sum())
            tracks.update(rows, det, cols[matched], frame)
            owner[cols[matched]] = tracks.tid[rows]
            free[matched] = False
        new = cols[free]
        tids = np.arange(n_born, n_born + len(new))
        n_born += len(new)
        tracks.spawn(tids, det, new, frame, _birth_velocity(tracks, config))
        owner[new] = tids
        now = ~tracks.confirmed & (tracks.hits >= min_hits)
        confirmed.extend(tracks.tid[now].tolist())
        tracks.confirmed |= now
        prev = frame
    is_confirmed = np.zeros(n_born, bool)
    is_confirmed[confirmed] = True
    counts = {"n_unconfirmed": n_lost + int((~tracks.confirmed).sum()), "n_reidentified": n_reid,
              "camera_shift_px": round(float(np.median(pan)), 2) if pan else 0.0}
    return owner, is_confirmed, counts


def _birth_velocity(tracks: _LiveTracks, config: TrackerConfig) -> np.ndarray:
    """Initial image velocity (2,) px/frame of a new track."""
    if _BIRTH == "median" and config.camera_motion:
        ok = tracks.confirmed & (tracks.last == tracks.frame) & (tracks.hits >= 2)
        if ok.sum() >= 3:
            return np.median(tracks.vel[ok], axis=0)
    return np.zeros(2)


def _camera_correction(tracks: _LiveTracks, recent: np.ndarray, det: _Detections, cols: np.ndarray) -> np.ndarray:
    """Common shift (2,) px between the predictions of the confirmed tracks seen in the
    previous frame and this frame's detections ``cols``, when at least half of those tracks
    (and at least 3) agree on it (:func:`_common_shift`); else 0."""
    voters = np.flatnonzero(recent & tracks.confirmed)[:_CAM_MAX_TRACKS]
    if len(voters) < 3:
        return np.zeros(2)
    box = tracks.box[voters].copy()
    box[:, :2] += tracks.shift[voters]
    dbox = det.boxes[cols]
    shift, support = _common_shift(_centres(box), box[:, 2:].max(1), _centres(dbox), dbox[:, 2:].max(1))
    return shift if support >= max(3, (len(voters) + 1) // 2) else np.zeros(2)


def _grown_similarity(det: _Detections, cols: np.ndarray, xy: np.ndarray, vis: np.ndarray, box: np.ndarray,
                      grow: np.ndarray, sigmas: np.ndarray, cost: str) -> np.ndarray:
    """:func:`_pair_similarity` with the tolerance of row ``i`` multiplied by ``grow[i]`` (>= 1):
    OKS with the object scale times ``grow`` (coordinates divided by it) and IoU of both boxes
    enlarged ``grow`` times about their centres.  ``grow == 1`` is the plain similarity."""
    sim = np.zeros((len(xy), len(cols)), np.float32)
    if _MIN_ASPECT > 0:
        det = _Detections(det.frames[cols], det.xy[cols], det.conf[cols], det.visible[cols],
                          _widen(det.boxes[cols], _MIN_ASPECT), cols)
        cols = np.arange(len(cols))
        box = _widen(box, _MIN_ASPECT)
    for g in np.unique(grow):
        rows = np.flatnonzero(grow == g)
        if g == 1.0:
            sim[rows] = _pair_similarity(det, cols, xy[rows], vis[rows], box[rows], sigmas, cost)
            continue
        scaled = _Detections(det.frames[cols], det.xy[cols] / np.float32(g), det.conf[cols], det.visible[cols],
                             _enlarge(det.boxes[cols], g), cols)
        sim[rows] = _pair_similarity(scaled, np.arange(len(cols)), xy[rows] / g, vis[rows], _enlarge(box[rows], g),
                                     sigmas, cost, area_scale=1.0 / g ** 2)
    return sim


def _widen(box: np.ndarray, aspect: float) -> np.ndarray:
    """``(M, 4)`` boxes at least ``aspect`` times as wide as tall and as tall as wide (same centre)."""
    out = box.astype(np.float64).copy()
    w = np.maximum(out[:, 2], aspect * out[:, 3])
    h = np.maximum(out[:, 3], aspect * out[:, 2])
    out[:, 0] -= 0.5 * (w - out[:, 2])
    out[:, 1] -= 0.5 * (h - out[:, 3])
    out[:, 2], out[:, 3] = w, h
    return out


def _enlarge(box: np.ndarray, g: float) -> np.ndarray:
    """``(M, 4)`` boxes ``g`` times larger about their centres."""
    out = box.astype(np.float64).copy()
    out[:, :2] -= 0.5 * (g - 1.0) * out[:, 2:]
    out[:, 2:] *= g
    return out
