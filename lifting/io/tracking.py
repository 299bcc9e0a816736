"""Associate untracked person detections across frames into tracks.

Detector output without track ids (several people per frame) is turned into per-person
tracks before lifting.  The method is the tracking-by-detection loop of SORT (Bewley et al.,
ICIP 2016) with a pose similarity next to box IoU, global camera-motion compensation, a
re-identification tolerance for tracks missed for a while, and an offline tracklet-linking
pass (the whole input is known, so ambiguous decisions of the online loop are revisited):

1. **Filter** spurious detections (documented thresholds in :class:`TrackerConfig`): too few
   visible joints, low mean keypoint confidence, tiny box, duplicate pose of a more confident
   detection of the same frame (OKS non-maximum suppression).  They get track id ``-1``.
2. **Predict** every live track at the current frame with a constant-velocity model: the
   track's last keypoints and box move by its image velocity (px/frame) for every frame since
   its last detection.  The velocity is the mean displacement of the joints visible in both
   of the track's last two detections, exponentially smoothed (:data:`VELOCITY_SMOOTHING`).
3. **Camera motion** (``camera_motion``): a panning camera moves everybody at once, and when
   the pan changes (turns round) every constant-velocity prediction is off by the same
   shift.  That shift is voted out before association: the confirmed tracks seen in the
   previous frame vote for the displacements from their prediction to the nearby detections
   of similar size; the displacement most of them agree on (at least half, and 3; larger than
   :data:`CAMERA_MIN_SHIFT` of their size, i.e. not keypoint noise) is added to every
   prediction and velocity (:func:`_common_shift`; global-motion compensation as in
   BoT-SORT, Aharon et al. 2022, which fits it to image features -- here, without the image,
   a translation is voted by the people themselves).
4. **Similarity** between every predicted track and every detection of the frame: OKS (COCO
   keypoint similarity, per-joint sigmas; :func:`oks_similarity`), box IoU (:func:`box_iou`),
   or -- the default -- their mean (``cost="oks+iou"``), vectorised over tracks x detections.
   Boxes are widened to an aspect of at least :data:`ASSOCIATION_MIN_ASPECT` first (a person
   seen side-on is a thin box, whose IoU collapses after a step of a tenth of the height;
   the IoU-only cost keeps the detector's boxes).  A
   track missed for ``m`` frames is matched with its tolerance (object scale for OKS, box
   size for IoU) multiplied by ``1 + reid_growth * m`` (**re-identification** after a short
   occlusion, at the predicted position, as long as the track lives).
5. **Gate + assign**: cost ``1 - similarity``; pairs below ``min_similarity`` are forbidden;
   Hungarian assignment (``scipy.optimize.linear_sum_assignment``, maximum number of allowed
   pairs, then minimum cost), all live tracks together.  Then a leftover pass: an unmatched
   track seen in the previous frame and an unmatched detection that are each other's only
   candidate above half the gate (:data:`LEFTOVER_GATE`) are paired -- an isolated person whose
   pose changed shape for a frame (a detector glitch halving the pose scores OKS + IoU ~0.19
   with its own track) keeps its track instead of starting a short-lived one.
6. **Birth / death**: an unmatched detection starts a *tentative* track; a tentative track is
   *confirmed* once it has ``min_hits`` detections in consecutive frames and dies at its first
   missed frame before that (SORT/DeepSORT convention); a confirmed track dies after more than
   ``max_missed`` consecutive missed frames.  With a known frame rate (``fps``) both are
   durations (:meth:`TrackerConfig.frame_counts`).  Detections of tracks that never confirm
   get ``-1``; a confirmed track keeps the detections of its tentative phase.
7. **Tracklet linking** (``link_tracklets``, offline): the confirmed tracks are cut where the
   online loop was unsure -- a match with a rival (another detection for the track or another
   track for the detection) within ``ambiguity_margin`` of its similarity, or a
   re-identification -- and the pieces are joined again end to start by a minimum-cost
   matching over the whole input (sparse LAPJV, ``scipy.sparse.csgraph.
   min_weight_full_bipartite_matching``, in blocks of :data:`LINK_BLOCK` pieces).  The cost
   of joining two pieces is the constant-velocity extrapolation error of each into the other
   (velocities fitted over :data:`LINK_FIT_FRAMES` detections on both sides of the gap, in
   box heights, more tolerant for longer gaps) plus the log ratio of their heights; joins
   cost below ``link_max_cost`` and span at most ``max_missed + 1`` frames.  Both sides' motion decide, where the online
   loop only knew the past (the two-level scheme of hierarchical association, Huang, Wu &
   Nevatia, ECCV 2008).

Measured on synthetic sequences with exact identities, scored with ``motmetrics``
(BENCHMARKS.md, "Tracking"): a street scene (10 fps, static camera) goes from IDF1 98.7 % to
99.5 %; a crowded basketball-like scene (14 people crossing, panning camera, 10 fps) from IDF1
57 % with 1.7 % of the people's detections left without a track to about 90 % with 0.3 %:
the widened boxes of step 4 give about 21 points, the tracklet linking 8-9; the camera-motion
compensation and the re-identification tolerance move it by about a point there, and decide
when the pan turns within a frame or a person comes out of an occlusion off the predicted
path (tests/test_tracking.py).

The result does not depend on the order of the input rows: detections are put in a canonical
order (frame, box x, y, w, h, mean confidence) before tracking.  Exact duplicates (equal in all
of these) may swap labels with each other.

Why our own code: maintained trackers on PyPI were checked for this project (CPU torch, no
torchvision, numpy 2): ``boxmot`` requires torchvision; ``norfair`` (the one with keypoint
distances) pins ``numpy<2``; ``trackers`` / ``supervision`` ByteTrack are box-only and pull in
OpenCV.  None fits cleanly, and the steps above are small.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np
from tqdm import tqdm

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

#: Boxes are widened to at least this width / height before the association similarity
#: (:func:`_association_similarity`; the OKS scale, and the IoU of the OKS + IoU mean).  0.8
#: measured best of 0.4 / 0.6 / 0.8 / 1.0 on the crowded benchmark (IDF1 +8 points over no
#: widening, online loop alone) and also best on the street benchmark (BENCHMARKS.md,
#: "Tracking").
ASSOCIATION_MIN_ASPECT = 0.8

#: Camera-motion vote (:func:`_common_shift`): at most this many tracks seen in the previous
#: frame vote, each for its this many nearest detections, and two votes agree within this
#: fraction of the voter's box size.
CAMERA_MAX_VOTERS = 16
CAMERA_NEAREST = 3
CAMERA_TOLERANCE = 0.1
#: A voted camera shift below this fraction of the voters' median box size is keypoint noise
#: (1.5-2 % of the height per joint) and is ignored, so a static camera is left alone.
CAMERA_MIN_SHIFT = 0.04

#: Tracklet linking: the velocity at a tracklet's start / end is the least-squares line
#: through this many of its detections.
LINK_FIT_FRAMES = 3
#: ... and each end keeps at most this many candidate starts (its cheapest), which bounds the
#: work and memory of inputs where many people overlap for a long time.
LINK_CANDIDATES = 20
#: ... and the links are solved in blocks of about this many tracklet ends (by end frame).
LINK_BLOCK = 4096
#: Leftover pass (:func:`_assign_leftovers`): gate as a fraction of ``min_similarity`` for an
#: unmatched track and detection that are each other's only candidate.  Catches a one-frame
#: change of pose shape of an isolated person (a detector glitch halving the pose: OKS + IoU
#: 0.16-0.2 with its own track) that fragmented the large benchmark input; crowded and street
#: benchmarks unchanged within 0.1 IDF1 point.
LEFTOVER_GATE = 0.5
_COSTS = ("oks+iou", "oks", "iou")
_FORBIDDEN = 1e6  # assignment cost of a gated-out pair
_FAR = 1e15  # px: where oks_similarity puts missing joints (their term underflows to 0)
_UNDERFLOW = 110.0  # -exponent beyond which a float32 exp is exactly 0 (float32 underflows at ~104)


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
            cost on the synthetic street benchmark with detector boxes and the best without),
            ``"oks"`` (object keypoint similarity with per-joint sigmas, scale = box area) or
            ``"iou"`` (box intersection over union).  The gate ``min_similarity`` applies to
            this similarity.
        min_similarity: gate in [0, 1): a track and a detection with a lower similarity are
            never matched.  Re-tuned for the OKS + IoU mean with all the steps of the module
            docstring (``scripts/bench_tracking.py --sweep``, BENCHMARKS.md "Tracking"): the
            crowded benchmark is flat over 0.15-0.3 (IDF1 90.4-91.1 %) and the street one over
            0.1-0.3 (99.4-99.5 %); 0.1 and 0.4 lose 0.7-1.6 points on the crowded one and 0.4
            leaves twice the detections unassigned.  0.2 (the value tuned for OKS alone, where
            it beats 0.1 and 0.3) is in the middle of the flat part and is kept.
        min_hits: track birth in frames when the frame rate is unknown: a tentative track is
            confirmed after this many detections in consecutive frames (SORT's ``min_hits`` =
            3).  >= 1.
        max_missed: track death in frames when the frame rate is unknown: a confirmed track ends
            after more than this many consecutive frames without a detection.  >= 0.  The
            default 10 bridges the detector drop-outs of the shared real tracks (1 s at 10 fps)
            and was checked on the synthetic benchmark.  Also the longest gap (+1) a tracklet
            link may span.
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
            around one person share a pose but not a box.)  In [0, 1]; 1 disables it.
            Top-down pipelines (e.g. HOG boxes + a single-person pose model, as in the shared
            real tracks) often put two boxes on one person and get the same pose twice; 0.8
            removes those (the real tracks hold 861 same-frame pose pairs with OKS > 0.5) and
            leaves people who merely overlap.
        fps: frame rate of the input in frames/s (> 0), or ``None`` (unknown: birth and death
            are ``min_hits`` / ``max_missed`` frames).  :func:`track_detections` also takes it
            as an argument.
        min_hits_seconds, max_missed_seconds: birth and death as durations, used when the
            frame rate is known (:meth:`frame_counts`); >= 0.  Defaults 0.3 s and 1 s: the
            frame defaults at the 10 fps they were tuned at.
        camera_motion: compensate global image motion (a panning camera) before association
            (module docstring, step 3).  Off, nothing else changes.
        reid_growth: re-identification tolerance >= 0: a track missed for ``m`` frames is
            matched with its similarity scale times ``1 + reid_growth * m`` (0: as a track seen
            in the previous frame).  0.1 is the best of 0 / 0.05 / 0.1 / 0.15 / 0.25 / 0.5 over
            three sets of 20 crowded sequences (10 fps: 0 89.1, 0.1 89.2 on average, 0.25
            88.9, 0.5 87.8 on the first set; 5 fps: 0.1 +1.1 over 0.25) and keeps the street
            benchmark at 99.5 (0.5: 96.7).
        link_tracklets: the offline tracklet-linking pass (module docstring, step 7).
        ambiguity_margin: a match is ambiguous (its track is cut there for the linking) when a
            rival similarity is within this of it.  In [0, 1]; 0.1 measured best of 0.05 / 0.1
            / 0.2 (crowded 88.4 / 89.7 / 89.4, street 99.4 / 99.4 / 97.7, with
            ``reid_growth`` 0.25).
        link_max_cost: the most a tracklet join may cost (extrapolation error in box heights +
            ``|log|`` height ratio); >= 0.  1.0 beats 0.5 on the crowded benchmark (89.7 vs 88.6,
            with ``reid_growth`` 0.25); 1.5 and 2.0 gain nothing there and join people who leave
            with people who arrive in the street benchmark (95.8 / 87.3 instead of 99.4).

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
    min_hits_seconds: float = 0.3
    max_missed_seconds: float = 1.0
    camera_motion: bool = True
    reid_growth: float = 0.1
    link_tracklets: bool = True
    ambiguity_margin: float = 0.1
    link_max_cost: float = 1.0

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
        if not isinstance(self.link_tracklets, (bool, np.bool_)):
            raise ValueError(f"TrackerConfig.link_tracklets must be True or False, got {self.link_tracklets!r}")
        _check_number("ambiguity_margin", self.ambiguity_margin, 0.0, 1.0)
        _check_number("link_max_cost", self.link_max_cost, 0.0, np.inf)

    def frame_counts(self, fps: float | None = None) -> tuple[int, int]:
        """Birth and death in frames: ``(min_hits, max_missed)``.

        Without a frame rate (``fps`` and :attr:`fps` both ``None``) these are the
        :attr:`min_hits` and :attr:`max_missed` fields.  With one (``fps`` wins over :attr:`fps`)
        they are the durations in seconds times the rate: ``min_hits = max(2,
        round(min_hits_seconds * fps))`` and ``max_missed = max(1, round(max_missed_seconds *
        fps))`` -- 3 / 10 frames at 10 fps (the frame defaults), 2 / 5 at 5 fps, 9 / 30 at 30
        fps: an occlusion and a false detection that keeps coming back last about as long
        in seconds whatever the rate.  Birth never goes below 2 frames: a single frame cannot
        tell a person from a one-frame false detection.

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
            counts under the first failing check in that order), ``fps`` (the frame rate used,
            or ``None``), ``min_hits`` / ``max_missed`` (birth / death in frames as used),
            ``n_tracks`` (confirmed, after linking), ``n_unconfirmed`` (tentative tracks that
            died), ``n_reidentified`` (matches of tracks missed in the previous frame),
            ``n_camera_corrections`` (frames whose predictions were shifted for camera motion)
            and ``camera_shift_px`` (the median of those shifts, px; 0 without any),
            ``n_tracklets`` / ``n_links`` (pieces of the linking pass and joins made),
            ``n_unassigned`` (detections with id -1).
    """

    track_ids: np.ndarray
    stats: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- similarities


def oks_similarity(kp_a: np.ndarray, vis_a: np.ndarray, area_a: np.ndarray,
                   kp_b: np.ndarray, vis_b: np.ndarray, area_b: np.ndarray,
                   sigmas: np.ndarray, *, row_scale: np.ndarray | None = None) -> np.ndarray:
    """Object keypoint similarity between every pose of ``a`` and every pose of ``b``.

    ``OKS = sum_i exp(-d_i^2 / (2 s^2 k_i^2)) / n`` over the ``n`` joints visible in both poses,
    with ``k_i = 2 sigma_i`` and ``s^2`` the mean of the two box areas (COCO keypoint
    evaluation, cocodataset.org/#keypoints-eval, which uses the ground-truth segment area
    instead -- about half the box area, so this is slightly more lenient).  Pairs without a
    common visible joint get 0.

    Computed in float32 with x and y separately (no ``(M, N, K, 2)`` temporary): coordinates
    are pre-scaled by ``1 / (sqrt(2) k_i)``, and a joint missing in ``a`` / ``b`` is moved to
    ``+1e15`` / ``-1e15`` so its Gaussian term underflows to exactly 0; the sum over joints is a
    matrix product.  Agrees with the float64 formula to ~1e-6.  Only the pairs within reach
    (:func:`_oks_reachable`: near enough for a Gaussian term not to underflow) are computed, as
    ``(P, K)`` rows; the others are exactly 0 either way (a tracker frame with 100 people
    computes a few hundred pairs instead of 10,000).

    Args:
        kp_a: ``(M, K, 2)`` px.  vis_a: ``(M, K)`` bool.  area_a: ``(M,)`` px^2.
        kp_b: ``(N, K, 2)`` px.  vis_b: ``(N, K)`` bool.  area_b: ``(N,)`` px^2.
        sigmas: ``(K,)`` per-joint sigmas (:func:`oks_sigmas`).
        row_scale: optional ``(M,)`` factors >= 1: the object scale ``s`` of row ``i`` is
            multiplied by ``row_scale[i]`` (a more tolerant match for tracks missed for a
            while); ``None`` = the COCO formula.

    Returns:
        ``(M, N)`` float32 similarities in [0, 1].
    """
    scale = (1.0 / (np.sqrt(2.0) * 2.0 * np.asarray(sigmas, dtype=np.float64))).astype(np.float32)  # (K,)
    va, vb = np.asarray(vis_a, bool), np.asarray(vis_b, bool)
    kp_a, kp_b = np.asarray(kp_a, np.float32), np.asarray(kp_b, np.float32)
    s2 = np.maximum(0.5 * (np.asarray(area_a, np.float32)[:, None] + np.asarray(area_b, np.float32)[None]), 1.0)
    if row_scale is not None:  # private: tolerance of row i times row_scale[i]
        s2 = s2 * np.square(np.asarray(row_scale, np.float32))[:, None]
    ia, ib = np.nonzero(_oks_reachable(kp_a, va, kp_b, vb, s2, float(scale.min())))
    ax, ay = (np.where(va, kp_a[..., c] * scale, np.float32(_FAR)) for c in (0, 1))  # (M, K) each
    bx, by = (np.where(vb, kp_b[..., c] * scale, np.float32(-_FAR)) for c in (0, 1))  # (N, K) each
    d2 = np.subtract(ax[ia], bx[ib])  # (P, K): only the pairs within reach
    np.square(d2, out=d2)
    dy = np.subtract(ay[ia], by[ib])
    np.square(dy, out=dy)
    d2 += dy
    d2 *= (-1.0 / s2[ia, ib])[:, None]
    np.exp(d2, out=d2)
    total = d2 @ np.ones(d2.shape[1], np.float32)
    common = (va[ia] & vb[ib]).sum(1).astype(np.float32)  # joints visible in both
    out = np.zeros(s2.shape, np.float32)
    out[ia, ib] = np.where(common > 0, total / np.maximum(common, 1.0), np.float32(0.0))
    return out


def _oks_reachable(kp_a: np.ndarray, vis_a: np.ndarray, kp_b: np.ndarray, vis_b: np.ndarray, s2: np.ndarray,
                   min_scale: float) -> np.ndarray:
    """``(M, N)`` bool: pairs whose OKS may be above 0.  Every other pair is exactly 0 in
    :func:`oks_similarity`'s float32 arithmetic: any two visible joints are at least the gap
    ``D`` between the two poses' joint extents apart, so every Gaussian term is at most
    ``exp(-D^2 min_scale^2 / s2)``, which underflows to 0 when the exponent is below
    ``-_UNDERFLOW`` (float32 underflows below about -104; the margin covers rounding).

    Args:
        kp_a: ``(M, K, 2)`` px.  vis_a: ``(M, K)``.  kp_b: ``(N, K, 2)`` px.  vis_b: ``(N, K)``.
        s2: ``(M, N)`` squared object scale px^2 (row scale included).  min_scale: the
            smallest per-joint coordinate scale ``1 / (2 sqrt(2) sigma)``.
    """
    gap2 = np.zeros(s2.shape, np.float32)
    with np.errstate(over="ignore"):  # a pose without visible joints: infinite gap
        for c in (0, 1):  # x, then y: extents (+inf / -inf without a visible joint)
            lo_a, hi_a = np.where(vis_a, kp_a[..., c], np.inf).min(1), np.where(vis_a, kp_a[..., c], -np.inf).max(1)
            lo_b, hi_b = np.where(vis_b, kp_b[..., c], np.inf).min(1), np.where(vis_b, kp_b[..., c], -np.inf).max(1)
            gap = np.maximum(lo_b[None] - hi_a[:, None], lo_a[:, None] - hi_b[None])  # (M, N) px
            np.maximum(gap, 0.0, out=gap)
            gap2 += gap * gap
        return gap2 * np.float32(min_scale ** 2) <= _UNDERFLOW * s2


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
    the last detection, number of detections, confirmed flag.  :attr:`frame` is the frame the
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
        self.shift += self.vel * step
        self.frame = frame
        return step

    def correct(self, shift: np.ndarray, step: int) -> None:
        """Add a common image shift (2,) px (camera motion) to every prediction; the velocities
        change by ``shift / step`` (a change of pan lasts)."""
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

    def spawn(self, tids: np.ndarray, det: _Detections, cols: np.ndarray, frame: int) -> None:
        """Start tentative tracks (velocity 0) with internal ids ``tids`` from detections ``cols``."""
        self.tid = np.concatenate([self.tid, tids])
        self.xy = np.concatenate([self.xy, det.xy[cols]])
        self.vis = np.concatenate([self.vis, det.visible[cols]])
        self.box = np.concatenate([self.box, det.boxes[cols]])
        self.vel = np.concatenate([self.vel, np.zeros((len(cols), 2))])
        self.shift = np.concatenate([self.shift, np.zeros((len(cols), 2))])
        self.last = np.concatenate([self.last, np.full(len(cols), frame, np.int64)])
        self.hits = np.concatenate([self.hits, np.ones(len(cols), np.int64)])
        self.confirmed = np.concatenate([self.confirmed, np.zeros(len(cols), bool)])


def _centres(box: np.ndarray) -> np.ndarray:
    """``(M, 2)`` centres of ``(M, 4)`` x, y, w, h boxes."""
    return box[:, :2] + 0.5 * box[:, 2:]


# --------------------------------------------------------------------------- camera motion


def _common_shift(centres: np.ndarray, sizes: np.ndarray, det_centres: np.ndarray,
                  det_sizes: np.ndarray) -> tuple[np.ndarray, int]:
    """Image shift shared by most tracks between their predicted box centres and the detections.

    Every track votes for the displacements to its :data:`CAMERA_NEAREST` nearest detections
    within one box size whose size is within a factor 1.5 of its own; two votes agree when they
    differ by at most :data:`CAMERA_TOLERANCE` of the voter's size; the displacement agreed by
    the most tracks (ties: the shortest) wins and the result is the median displacement of the
    agreeing tracks -- an exhaustive mode search over the candidate displacements (Hough voting
    of a translation; Ballard, Pattern Recognition 1981).

    Args:
        centres: ``(A, 2)`` px predicted centres.  sizes: ``(A,)`` px box sizes (larger side).
        det_centres: ``(N, 2)`` px detection centres.  det_sizes: ``(N,)`` px.

    Returns:
        ``(shift (2,) px, support)``: support = number of tracks agreeing (0 when nothing votes).
    """
    a, n = len(centres), len(det_centres)
    if a == 0 or n == 0:
        return np.zeros(2), 0
    d = det_centres[None] - centres[:, None]  # (A, N, 2)
    dist = np.hypot(d[..., 0], d[..., 1])
    ratio = det_sizes[None] / np.maximum(sizes[:, None], 1e-6)
    dist = np.where((dist <= sizes[:, None]) & (ratio > 2 / 3) & (ratio < 1.5), dist, np.inf)
    k = min(CAMERA_NEAREST, n)
    near = np.argpartition(dist, k - 1, axis=1)[:, :k] if k < n else np.tile(np.arange(n), (a, 1))
    ok = np.isfinite(np.take_along_axis(dist, near, 1)).ravel()  # (A * k,)
    voter = np.repeat(np.arange(a), k)[ok]
    if len(voter) == 0:
        return np.zeros(2), 0
    cand = d[voter, near.ravel()[ok]]  # (C, 2)
    diff = cand[:, None] - cand[None]  # (C, C, 2)
    agree = np.hypot(diff[..., 0], diff[..., 1]) <= (CAMERA_TOLERANCE * sizes[voter])[None]
    starts = np.flatnonzero(np.r_[True, voter[1:] != voter[:-1]])
    support = np.logical_or.reduceat(agree, starts, axis=1).sum(1)  # (C,) tracks agreeing with c
    best = np.lexsort((np.hypot(cand[:, 0], cand[:, 1]), -support))[0]
    err = np.where(agree[best], np.hypot(*(cand - cand[best]).T), np.inf)
    by = np.lexsort((err, voter))  # per voter, its candidate closest to the winner first
    first = by[np.r_[True, voter[by][1:] != voter[by][:-1]]]
    pick = first[np.isfinite(err[first])]
    return np.median(cand[pick], axis=0), int(support[best])


def _camera_correction(tracks: _LiveTracks, recent: np.ndarray, det: _Detections, cols: np.ndarray) -> np.ndarray:
    """Common shift (2,) px between the predictions of the confirmed tracks seen in the
    previous frame (at most :data:`CAMERA_MAX_VOTERS`) and this frame's detections ``cols``
    when at least half of those tracks, and at least 3, agree on it (:func:`_common_shift`);
    else 0."""
    voters = np.flatnonzero(recent & tracks.confirmed)[:CAMERA_MAX_VOTERS]
    if len(voters) < 3:
        return np.zeros(2)
    box = tracks.box[voters].copy()
    box[:, :2] += tracks.shift[voters]
    dbox = det.boxes[cols]
    size = box[:, 2:].max(1)
    shift, support = _common_shift(_centres(box), size, _centres(dbox), dbox[:, 2:].max(1))
    if np.hypot(*shift) < CAMERA_MIN_SHIFT * np.median(size):
        return np.zeros(2)
    return shift if support >= max(3, (len(voters) + 1) // 2) else np.zeros(2)


# --------------------------------------------------------------------------- association


def _pair_similarity(det: _Detections, cols: np.ndarray, xy: np.ndarray, vis: np.ndarray, box: np.ndarray,
                     sigmas: np.ndarray, cost: str) -> np.ndarray:
    """``(M, P)`` similarity (``cost``: OKS, IoU or their mean) of poses ``xy (M, K, 2)`` /
    ``vis (M, K)`` with boxes ``(M, 4)`` against detections ``cols`` (duplicate filter)."""
    sim = np.zeros((len(xy), len(cols)), np.float32)
    if "oks" in cost.split("+"):
        area = lambda b: b[:, 2] * b[:, 3]  # noqa: E731
        sim += oks_similarity(xy, vis, area(box), det.xy[cols], det.visible[cols], area(det.boxes[cols]), sigmas)
    if "iou" in cost.split("+"):
        sim += box_iou(box, det.boxes[cols])
    return sim / len(cost.split("+"))


def _association_similarity(det: _Detections, cols: np.ndarray, xy: np.ndarray, vis: np.ndarray, box: np.ndarray,
                            grow: np.ndarray, sigmas: np.ndarray, cost: str) -> np.ndarray:
    """``(M, P)`` similarity of predicted tracks and detections ``cols`` for assignment.

    Boxes are first widened to an aspect of at least :data:`ASSOCIATION_MIN_ASPECT` (a person
    seen side-on is ~0.15 of its height wide, so a step of 10 % of the height would leave
    little IoU): the OKS object area is the widened box's, and so are the boxes of the IoU in
    the OKS + IoU mean (the IoU-only cost keeps the detector's boxes, as SORT: widening them
    there measured 1.3 IDF1 points worse, IoU being its only cue).  Row ``i``'s tolerance is
    then multiplied by ``grow[i]`` >= 1 (a track missed for a while,
    :attr:`TrackerConfig.reid_growth`): OKS with the object scale times ``grow`` and IoU of
    both boxes enlarged ``grow`` times about their centres; ``grow == 1`` is the plain
    similarity.

    Args:
        det, cols: the detections and the indices ``(P,)`` of this frame's.
        xy: ``(M, K, 2)`` px predicted keypoints.  vis: ``(M, K)`` bool.  box: ``(M, 4)`` px
            predicted boxes.  grow: ``(M,)`` >= 1.  sigmas: ``(K,)``.  cost: as
            :attr:`TrackerConfig.cost`.

    Returns:
        ``(M, P)`` float32 similarities in [0, 1].
    """
    dbox0, box0 = det.boxes[cols], box
    dbox = _widen(det.boxes[cols], ASSOCIATION_MIN_ASPECT)
    box = _widen(box, ASSOCIATION_MIN_ASPECT)
    parts = cost.split("+")
    sim = np.zeros((len(xy), len(cols)), np.float32)
    if "oks" in parts:
        sim += oks_similarity(xy, vis, box[:, 2] * box[:, 3], det.xy[cols], det.visible[cols], dbox[:, 2] * dbox[:, 3],
                              sigmas, row_scale=grow)
    if "iou" in parts:
        wide = "oks" in parts  # IoU alone keeps the detector's boxes (SORT)
        sim += _grown_iou(box if wide else box0, dbox if wide else dbox0, grow)
    return sim / len(parts)


def _grown_iou(a: np.ndarray, b: np.ndarray, grow: np.ndarray) -> np.ndarray:
    """``(M, N)`` IoU of boxes ``a (M, 4)`` and ``b (N, 4)`` (x, y, w, h) after enlarging both
    ``grow[i]`` times about their centres for row ``i`` (:func:`box_iou` when ``grow`` is 1)."""
    g = np.asarray(grow, np.float64)[:, None]  # (M, 1)
    ca, cb = _centres(a), _centres(b)
    inter = np.ones((len(a), len(b)))
    for c in (0, 1):
        ha, hb = 0.5 * a[:, c + 2][:, None] * g, 0.5 * b[:, c + 2][None] * g  # (M, 1), (M, N)
        lo = np.maximum(ca[:, c][:, None] - ha, cb[:, c][None] - hb)
        hi = np.minimum(ca[:, c][:, None] + ha, cb[:, c][None] + hb)
        inter *= np.maximum(hi - lo, 0.0)
    union = (a[:, 2] * a[:, 3])[:, None] * g ** 2 + (b[:, 2] * b[:, 3])[None] * g ** 2 - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0).astype(np.float32)


def _widen(box: np.ndarray, aspect: float) -> np.ndarray:
    """``(M, 4)`` boxes at least ``aspect`` times as wide as tall and as tall as wide (same centre)."""
    out = box.astype(np.float64).copy()
    w = np.maximum(out[:, 2], aspect * out[:, 3])
    h = np.maximum(out[:, 3], aspect * out[:, 2])
    out[:, 0] -= 0.5 * (w - out[:, 2])
    out[:, 1] -= 0.5 * (h - out[:, 3])
    out[:, 2], out[:, 3] = w, h
    return out


def _assign(sim: np.ndarray, min_similarity: float) -> tuple[np.ndarray, np.ndarray]:
    """Gated Hungarian assignment on ``1 - sim``: matched (row, col) index arrays."""
    from scipy.optimize import linear_sum_assignment  # here: scipy.optimize takes 0.3 s to import

    if sim.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    allowed = sim >= min_similarity
    rows, cols = linear_sum_assignment(np.where(allowed, 1.0 - sim, _FORBIDDEN))
    ok = allowed[rows, cols]
    return rows[ok], cols[ok]


def _assign_leftovers(sim: np.ndarray, rows: np.ndarray, cols: np.ndarray, gate: float,
                      eligible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Second, looser pass over what :func:`_assign` left (module docstring, step 5): an
    unmatched ``eligible`` track (seen in the previous frame) and an unmatched detection are
    paired when their similarity ``sim`` ``(M, P)`` is at least ``gate`` and neither has any
    other candidate at or above ``gate`` (an isolated person whose pose changed shape for a
    frame, e.g. a collapsed detection).  Returns the matched (row, col) arrays, the first
    pass's pairs first."""
    free_r = np.setdiff1d(np.flatnonzero(eligible), rows)
    free_c = np.setdiff1d(np.arange(sim.shape[1]), cols)
    if len(free_r) == 0 or len(free_c) == 0:
        return rows, cols
    cand = sim >= gate
    sub = cand[np.ix_(free_r, free_c)] & (cand[free_r].sum(1) == 1)[:, None] & (cand[:, free_c].sum(0) == 1)[None]
    r2, c2 = np.nonzero(sub)  # each row / column has at most one candidate: a matching already
    return np.r_[rows, free_r[r2]], np.r_[cols, free_c[c2]]


def _ambiguous(sim: np.ndarray, rows: np.ndarray, cols: np.ndarray, margin: float) -> np.ndarray:
    """``(P,)`` bool: matched pair ``(rows[i], cols[i])`` of ``sim`` has a rival (another
    detection for the track or another track for the detection) within ``margin`` of its
    similarity."""
    if len(rows) == 0:
        return np.zeros(0, bool)
    other = sim.astype(np.float64).copy()
    other[rows, cols] = -np.inf
    rival = np.maximum(other[rows].max(1, initial=-np.inf), other[:, cols].max(0, initial=-np.inf))
    return rival > sim[rows, cols] - margin


# --------------------------------------------------------------------------- tracking


def track_detections(frame_ids: np.ndarray, keypoints: np.ndarray, sigmas: np.ndarray,
                     boxes: np.ndarray | None = None, config: TrackerConfig = TrackerConfig(),
                     fps: float | None = None) -> TrackingResult:
    """Give every detection a track id by tracking-by-detection (module docstring).

    Args:
        frame_ids: ``(N,)`` integer frame index of each detection, any order (frames without a
            detection count as missed frames for the tracks).
        keypoints: ``(N, K, 3)`` x px, y px, confidence (float32 or float64; kept as float32
            inside).  A joint whose x, y or confidence is NaN / inf, whose ``|x|`` or ``|y|`` is
            1e15 px or more, or whose confidence is <= 0, is missing (masked); confidences are
            clipped to [0, 1].
        sigmas: ``(K,)`` OKS per-joint sigmas (:func:`oks_sigmas`); used by the ``"oks"`` and
            ``"oks+iou"`` costs and by the duplicate filter.
        boxes: ``(N, 4)`` ``x, y, w, h`` px, or ``None`` to use the tight box around each
            detection's present joints; a row with a NaN / inf value also falls back to it.
        config: thresholds (:class:`TrackerConfig`).
        fps: frame rate in frames/s of the input, or ``None`` (then ``config.fps``); when known,
            birth and death are durations (:meth:`TrackerConfig.frame_counts`).

    Returns:
        :class:`TrackingResult`: ``track_ids`` ``(N,)`` int64 in input order (``-1`` =
        filtered or never confirmed) and JSON-able ``stats``.

    Raises:
        ValueError: wrong shapes, non-integer frame ids, non-positive sigmas, negative box sizes
            (naming the argument and the row), ``fps`` not a finite number > 0, or ``config`` not
            a :class:`TrackerConfig`.
    """
    if not isinstance(config, TrackerConfig):
        raise ValueError(f"config must be a TrackerConfig, got {type(config).__name__}")
    min_hits, max_missed = config.frame_counts(fps)
    rate = fps if fps is not None else config.fps
    det = _prepare(frame_ids, keypoints, sigmas, boxes, config.conf_threshold)
    sig = np.asarray(sigmas, np.float64)
    keep, n_filtered = _filter_reasons(det, sig, config)
    owner, confirmed, cut, counts = _run_tracker(det, keep, sig, config, min_hits, max_missed)
    chain, n_chains, link_counts = _link_tracklets(det, owner, confirmed, cut, config, max_missed + 1)
    ids = np.empty(len(det.frames), np.int64)
    ids[det.order] = chain
    stats = {
        "method": config.cost,
        "config": asdict(config),
        "n_detections": int(len(ids)),
        "n_frames": int(len(np.unique(det.frames))),
        "n_filtered": n_filtered,
        "fps": None if rate is None else float(rate),
        "min_hits": min_hits,
        "max_missed": max_missed,
        "n_tracks": int(n_chains),
        **counts,
        **link_counts,
        "n_unassigned": int((ids < 0).sum()),
    }
    return TrackingResult(track_ids=ids, stats=stats)


def _run_tracker(det: _Detections, keep: np.ndarray, sigmas: np.ndarray, config: TrackerConfig,
                 min_hits: int, max_missed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Online frame-by-frame loop.  Returns the internal track id of each (canonical)
    detection (-1 = filtered), which internal ids were confirmed, which detections start a new
    tracklet (ambiguous match or re-identification, for :func:`_link_tracklets`), and loop
    counts: ``n_unconfirmed`` (tentative tracks that died), ``n_reidentified`` (matches of
    tracks missed in the previous frame), ``n_camera_corrections`` (frames whose predictions
    were shifted for camera motion) and ``camera_shift_px`` (their median shift, px)."""
    owner = np.full(len(det.frames), -1, np.int64)
    cut = np.zeros(len(det.frames), bool)
    idx = np.flatnonzero(keep)
    frames = det.frames[idx]
    bounds = np.r_[np.flatnonzero(np.r_[True, frames[1:] != frames[:-1]]), len(idx)] if len(idx) else [0]
    tracks = _LiveTracks(det.xy.shape[1])
    confirmed: list[int] = []
    n_born = n_lost = n_reid = 0
    prev = None  # previous frame with detections
    pan: list[float] = []
    bar = tqdm(total=len(bounds) - 1, unit="frame", desc="track", disable=None, leave=False, mininterval=1.0,
               dynamic_ncols=True)  # disable=None: only on a terminal
    for a, b in zip(bounds[:-1], bounds[1:]):
        bar.update()
        cols, frame = idx[a:b], int(frames[a])
        n_lost += len(tracks.prune(frame, max_missed))
        step = tracks.advance(frame)
        recent = tracks.last == prev  # seen in the previous frame (tentative tracks always are)
        if config.camera_motion:
            shift = _camera_correction(tracks, recent, det, cols)
            if shift.any():
                tracks.correct(shift, step)
                pan.append(float(np.hypot(*shift)))
        xy, box = tracks.predict()
        grow = 1.0 + config.reid_growth * np.maximum(frame - tracks.last - 1, 0)
        sim = _association_similarity(det, cols, xy, tracks.vis, box, grow, sigmas, config.cost)
        rows, matched = _assign(sim, config.min_similarity)
        rows, matched = _assign_leftovers(sim, rows, matched, LEFTOVER_GATE * config.min_similarity, recent)
        cut[cols[matched]] = _ambiguous(sim, rows, matched, config.ambiguity_margin) | ~recent[rows]
        n_reid += int((~recent[rows]).sum())
        tracks.update(rows, det, cols[matched], frame)
        owner[cols[matched]] = tracks.tid[rows]
        new = cols[np.setdiff1d(np.arange(len(cols)), matched)]
        tids = np.arange(n_born, n_born + len(new))
        n_born += len(new)
        tracks.spawn(tids, det, new, frame)
        owner[new] = tids
        now = ~tracks.confirmed & (tracks.hits >= min_hits)
        confirmed.extend(tracks.tid[now].tolist())
        tracks.confirmed |= now
        prev = frame
    bar.close()
    is_confirmed = np.zeros(n_born, bool)
    is_confirmed[confirmed] = True
    counts = {"n_unconfirmed": n_lost + int((~tracks.confirmed).sum()), "n_reidentified": n_reid,
              "n_camera_corrections": len(pan), "camera_shift_px": round(float(np.median(pan)), 2) if pan else 0.0}
    return owner, is_confirmed, cut, counts


# --------------------------------------------------------------------------- tracklet linking


def _link_tracklets(det: _Detections, owner: np.ndarray, confirmed: np.ndarray, cut: np.ndarray,
                    config: TrackerConfig, max_gap: int) -> tuple[np.ndarray, int, dict]:
    """Offline second pass: split the confirmed tracks into tracklets at ``cut`` detections and
    join tracklets end-to-start again by motion (module docstring, step 6).

    Returns the output track id of each canonical detection (-1 = filtered or never confirmed;
    ids ``0, 1, ...`` in order of the tracks' first frame), the number of tracks, and
    ``n_tracklets`` / ``n_links`` (tracklet joins) for the stats.
    """
    out = np.full(len(det.frames), -1, np.int64)
    rows = np.flatnonzero(owner >= 0)
    rows = rows[confirmed[owner[rows]]]
    if len(rows) == 0:
        return out, 0, {"n_tracklets": 0, "n_links": 0}
    rows = rows[np.lexsort((det.frames[rows], owner[rows]))]  # by track, then frame
    start = np.r_[True, owner[rows][1:] != owner[rows][:-1]]
    if config.link_tracklets:
        start |= cut[rows]
    piece = np.cumsum(start) - 1  # (R,) tracklet of each row, rows grouped by tracklet in frame order
    n_tracklets = n = int(piece[-1]) + 1
    n_links = 0
    if config.link_tracklets and n > 1:
        links = _tracklet_links(det, rows, piece, n, config, max_gap)
        n_links = int((links >= 0).sum())
        piece = _chains(links)[piece]
        n = int(piece.max()) + 1
    # output ids in order of the tracks' first frame
    first_frame = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first_frame, piece, det.frames[rows])
    rank = np.empty(n, np.int64)
    rank[np.lexsort((np.arange(n), first_frame))] = np.arange(n)
    out[rows] = rank[piece]
    return out, n, {"n_tracklets": n_tracklets, "n_links": n_links}


def _chains(links: np.ndarray) -> np.ndarray:
    """``(n,)`` chain id of each tracklet when tracklet ``p`` is followed by ``links[p]``
    (-1: by none)."""
    n = len(links)
    has_prev = np.zeros(n, bool)
    has_prev[links[links >= 0]] = True
    chain = np.full(n, -1, np.int64)
    for c, h in enumerate(np.flatnonzero(~has_prev)):
        while h >= 0:
            chain[h] = c
            h = links[h]
    return chain


def _tracklet_links(det: _Detections, rows: np.ndarray, piece: np.ndarray, n: int, config: TrackerConfig,
                    max_gap: int) -> np.ndarray:
    """``(n,)`` next tracklet of each tracklet (-1: none) by gated minimum-cost assignment of
    tracklet ends to later tracklet starts (:func:`_link_costs`)."""
    first = np.r_[np.flatnonzero(np.r_[True, piece[1:] != piece[:-1]]), len(rows)]
    lo, hi = first[:-1], first[1:]  # rows of tracklet p: rows[lo[p]:hi[p]]
    frames = det.frames[rows].astype(np.float64)
    vis = det.visible[rows]
    centre = (det.xy[rows] * vis[..., None]).sum(1) / np.maximum(vis.sum(1), 1)[:, None]
    centre = np.where(vis.any(1)[:, None], centre, _centres(det.boxes[rows]))
    height = det.boxes[rows, 3]
    ends = _tracklet_ends(frames, centre, height, lo, hi, from_end=True)
    starts = _tracklet_ends(frames, centre, height, lo, hi, from_end=False)
    f_end, f_start = frames[hi - 1], frames[lo]
    # candidate pairs: start j within (end_i, end_i + max_gap]; start-side arrays in start order
    order = np.argsort(f_start, kind="stable")
    starts = tuple(x[order] for x in starts)
    fs_sorted = f_start[order]
    i_all, j_all, c_all = [], [], []
    for chunk in np.array_split(np.arange(n), max(1, n // 4096)):
        a = np.searchsorted(fs_sorted, f_end[chunk], side="right")
        cnt = np.searchsorted(fs_sorted, f_end[chunk] + max_gap, side="right") - a
        if cnt.sum() == 0:
            continue
        i = np.repeat(chunk, cnt)
        pos = np.repeat(a - np.cumsum(np.r_[0, cnt[:-1]]), cnt) + np.arange(cnt.sum())  # into start order
        end_side = tuple(np.repeat(x[chunk], cnt, axis=0) for x in ends)
        start_side = tuple(x[pos] for x in starts)
        gap = fs_sorted[pos] - np.repeat(f_end[chunk], cnt)
        cost = _link_costs(end_side, start_side, gap, config.reid_growth)
        ok = cost < config.link_max_cost
        if cnt.max() > LINK_CANDIDATES:  # keep each end's cheapest few candidates (ties: all)
            table = np.full((len(chunk), cnt.max()), np.inf)
            table[i - chunk[0], pos - np.repeat(a, cnt)] = cost
            kth = np.partition(table, LINK_CANDIDATES - 1, axis=1)[:, LINK_CANDIDATES - 1]
            ok &= cost <= kth[i - chunk[0]]
        ok = np.flatnonzero(ok)
        i_all.append(i[ok])
        j_all.append(order[pos[ok]])
        c_all.append(cost[ok])
    nxt = np.full(n, -1, np.int64)
    if not i_all or sum(len(x) for x in i_all) == 0:
        return nxt
    i, j, c = np.concatenate(i_all), np.concatenate(j_all), np.concatenate(c_all)
    # solve in blocks of about LINK_BLOCK tracklet ends by end frame (exact when there are
    # fewer; between blocks the earlier ends have the first pick of the starts both can reach)
    end_frames = np.unique(f_end)
    per_frame = np.bincount(np.searchsorted(end_frames, f_end), minlength=len(end_frames))
    block_of_frame = np.cumsum(per_frame) // LINK_BLOCK
    block = block_of_frame[np.searchsorted(end_frames, f_end[i])]
    taken = np.zeros(n, bool)
    for k in np.unique(block):
        e = np.flatnonzero((block == k) & ~taken[j])
        if len(e) == 0:
            continue
        ends_k, ei = np.unique(i[e], return_inverse=True)
        starts_k, sj = np.unique(j[e], return_inverse=True)
        r, q = _min_cost_links(ei, sj, c[e], len(ends_k), len(starts_k), config.link_max_cost)
        nxt[ends_k[r]] = starts_k[q]
        taken[starts_k[q]] = True
    return nxt


def _min_cost_links(i: np.ndarray, j: np.ndarray, c: np.ndarray, n_ends: int, n_starts: int,
                    max_cost: float) -> tuple[np.ndarray, np.ndarray]:
    """Links (end, start) among the candidate pairs ``(i, j)`` (ends ``0..n_ends-1``, starts
    ``0..n_starts-1``) with costs ``c`` < ``max_cost`` that minimise the sum of link costs plus
    ``max_cost / 2`` per end and per start left unlinked, i.e. maximise the total of
    ``max_cost - c`` over the links.

    Solved exactly as a minimum-weight perfect matching of a sparse bipartite graph with one
    "unlinked" node per end and per start (LAPJVsp, ``scipy.sparse.csgraph.
    min_weight_full_bipartite_matching``; Jonker & Volgenant, Computing 1987): rows are the
    ends then one dummy row per start, columns the starts then one dummy column per end; a
    dummy row and a dummy column pair up at cost 0 wherever their start and end could link.
    """
    from scipy.sparse import coo_matrix  # here, with the tracker's other scipy imports (start-up time)
    from scipy.sparse.csgraph import min_weight_full_bipartite_matching

    half = 0.5 * max_cost
    e_ar, s_ar = np.arange(n_ends), np.arange(n_starts)
    rows = np.concatenate([i, e_ar, n_ends + s_ar, n_ends + j])
    cols = np.concatenate([j, n_starts + e_ar, s_ar, n_starts + i])
    w = np.concatenate([c, np.full(n_ends, half), np.full(n_starts, half), np.zeros(len(i))]) + 1.0  # 0 = no edge
    size = n_ends + n_starts
    graph = coo_matrix((w, (rows, cols)), shape=(size, size)).tocsr()
    r, col = min_weight_full_bipartite_matching(graph)
    linked = (r < n_ends) & (col < n_starts)
    return r[linked], col[linked]


def _tracklet_ends(frames: np.ndarray, centre: np.ndarray, height: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                   from_end: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """At the start (``from_end=False``) or end of each tracklet: centre ``(n, 2)`` px,
    velocity ``(n, 2)`` px/frame (least-squares line through the first / last
    :data:`LINK_FIT_FRAMES` detections), whether a velocity exists ``(n,)`` and the median
    box height ``(n,)`` px of those detections."""
    length = hi - lo
    k = np.minimum(length, LINK_FIT_FRAMES)
    offs = np.arange(LINK_FIT_FRAMES)[None]
    use = offs < k[:, None]  # (n, F)
    edge_row = (hi - 1) if from_end else lo
    at = np.where(use, edge_row[:, None] - offs if from_end else edge_row[:, None] + offs, edge_row[:, None])
    f, c = frames[at], centre[at]  # (n, F), (n, F, 2)
    w = use.astype(np.float64)
    fm = (f * w).sum(1) / k
    cm = (c * w[..., None]).sum(1) / k[:, None]
    df = (f - fm[:, None]) * w
    var = (df ** 2).sum(1)
    vel = np.where(var[:, None] > 0, (df[..., None] * (c - cm[:, None])).sum(1) / np.maximum(var, 1e-9)[:, None], 0.0)
    edge = centre[hi - 1] if from_end else centre[lo]
    size = np.nanmedian(np.where(use, height[at], np.nan), axis=1)
    return edge, vel, k >= 2, size


def _link_costs(ends: tuple, starts: tuple, gap: np.ndarray, growth: float) -> np.ndarray:
    """Cost ``(P,)`` of continuing tracklet ends with tracklet starts (pairs, as returned by
    :func:`_tracklet_ends` and gathered per pair; ``gap`` ``(P,)`` frames between them): the
    mean of the forward extrapolation error of the end to the start and the backward one of
    the start to the end (constant velocity, in units of the mean box height; only the side(s)
    with a velocity, else the plain distance), divided by ``1 + growth * (gap - 1)``, plus
    ``|log|`` of the ratio of the median box heights at the two ends."""
    (ce, ve, he_ok, h_end), (cs, vs, hs_ok, h_start) = ends, starts
    g = gap[:, None]
    scale = 0.5 * (h_end + h_start)
    d = cs - ce
    fwd = np.hypot(*(d - ve * g).T)
    bwd = np.hypot(*(d - vs * g).T)
    err = np.where(he_ok & hs_ok, 0.5 * (fwd + bwd), np.where(he_ok, fwd, np.where(hs_ok, bwd, np.hypot(*d.T))))
    size = np.abs(np.log(np.maximum(h_start, 1e-6) / np.maximum(h_end, 1e-6)))
    return err / (scale * (1.0 + growth * (gap - 1.0))) + size
