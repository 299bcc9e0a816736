"""Per-joint 3D uncertainty of a lift (``joints_3d_std``), two ways.

**Flip** (:func:`flip_spread`, ``posenet3d lift --uncertainty flip``, the default for
teachers): half the disagreement between the lift and the lift of the mirrored input mapped
back, scaled and with a floor added (:data:`FLIP_FACTOR`, :data:`FLIP_FLOOR_M`). The default
lift makes both lifts anyway for its test-time flip, so it costs no model pass (issue 23:
the sampled estimate below was 8 of a default lift's 10 passes per frame), and it ranks
joints by their real error better (BENCHMARKS.md "Per-joint uncertainty").

**Sampled** (:func:`joint_spread`, ``--uncertainty sampled``): the spread of lifts under
detector-like 2D noise. No retraining; works for any lifter, teacher or SMPL student (the
student has no mirrored lift and always uses it). Method:

1. ``K`` perturbed copies of the input 2D: every observed joint ``i`` except the root moves
   by Gaussian noise of Euclidean RMS ``u * sigma_i * s`` pixels, with ``sigma_i`` the COCO
   OKS constant of the joint (:func:`lifting.synth2d.canon_oks_sigmas`) and ``s`` the
   frame's object scale (:func:`lifting.synth2d.object_scale`): the COCO keypoint
   evaluation's model of annotator/detector error (cocodataset.org/#keypoints-eval), the same
   noise the detector teachers are trained with (``u`` in OKS units: a joint off by
   ``u sigma_i s`` has OKS ``exp(-u^2 / 8)``). The root is not moved, as in
   training (the lifters see root-relative 2D).
2. The clean input and the ``K`` copies are lifted in **one** call of the lifter (so the
   teacher's per-track metric scale and the student's per-track ``betas`` are shared by all
   copies and do not show up as spread).
3. Every lift is root-aligned; the per-joint RMS distance of the ``K`` perturbed lifts from
   the clean one, times a calibration factor, is ``joints_3d_std (T, J)`` metres.

The calibration factor (:data:`CALIBRATION`) maps the spread to the expected per-joint error
after Procrustes alignment of the frame (RMS over joints of the same predicted value): fitted
on the Bandai-Namco *val* split through the evaluation rig, checked on the *test* split
(``scripts/bench_uncertainty.py``, BENCHMARKS.md "Per-joint uncertainty"). The spread does
not grow with the noise actually present in the input (it perturbs whatever it is given), so
the factor is an average over clean and detector-like inputs: on test, the actual RMS error
is 0.6x the reported value on GT 2D and 1.6x on detector-like (OKS u = 1.5) input for the
bundled teacher. It ranks joints better than frames (Spearman over joint types 0.6-0.95,
over all joints 0.18-0.43, depending on the model and input).

Cost: ``K + 1`` lifts of the track in one batched call (memory ``K + 1`` times the track's),
e.g. 9 lifts for the default ``K = 8``. Seeded: the same input, ``K``, ``u`` and seed give
the same values.

What it does **not** capture: errors the model makes confidently, i.e. a depth ambiguity
resolved the wrong way (a limb mirrored in depth, a forward lean read as backward) gives a
stable wrong lift and a small spread; nor the error of the metric scale (teacher: assumed
height) or of the student's body shape, which are shared by all copies. The value is a
sensitivity to 2D noise scaled to typical error, not a bound.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .options import DEFAULT_SAMPLES  # noqa: F401 (re-exported: the defaults live in options)
from .skeletons import CANON16
from .synth2d import canon_oks_sigmas, object_scale

__all__ = ["perturb_keypoints", "joint_spread", "perturbed_stack", "spread_of", "lift_uncertainty", "UncertaintySettings", "DEFAULT_SAMPLES",
           "DEFAULT_LEVEL_OKS", "CALIBRATION", "FlipSpread", "flip_spread", "FLIP_FACTOR", "FLIP_FLOOR_M"]


DEFAULT_LEVEL_OKS = 4.0
"""Noise level ``u`` in OKS units (Euclidean RMS ``u * sigma_i * s`` px per joint), chosen on
Bandai-Namco val: the rank correlation of spread and error rises with ``u`` up to about 4 and
is flat beyond (new detector teacher: 0.22 / 0.36 / 0.40 / 0.415 / 0.424 at u = 1 / 2 / 3 /
4 / 6; bundled teacher 0.125-0.140 for u = 1-4). Large ``u`` probes how far a lift moves when
a detector gets joints badly wrong, not only jitter."""

CALIBRATION = 0.257
"""Factor from the spread at :data:`DEFAULT_LEVEL_OKS` to the expected PA-aligned per-joint
error: RMS error / RMS spread on Bandai-Namco val (GT 2D, 5 px and OKS u = 1.5 inputs pooled)
for the bundled default teacher (temporal, issue 15; ``python scripts/bench_uncertainty.py
lifting/assets/teacher.pt --fit --levels 4 --stride 10 --val-clip-stride 4``; the teacher
bundled before it gave 0.254). Other checkpoints differ (the single-frame detector teacher
during training: 0.43); refit when the bundled model changes."""

#: lift(keypoints_2d (M, J, 2) px, mask (M, J) bool, seq_offsets (S+1,)) -> joints (M, J, 3) metres
LiftFn = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _check(samples: int, level: float) -> None:
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise ValueError(f"uncertainty samples must be a whole number >= 1, got {samples!r}")
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not math.isfinite(level) or level < 0:
        raise ValueError(f"uncertainty level (OKS units) must be a finite number >= 0, got {level!r}")


def perturb_keypoints(keypoints_2d: np.ndarray, mask: np.ndarray, samples: int = DEFAULT_SAMPLES,
                      level: float = DEFAULT_LEVEL_OKS, seed: int = 0,
                      root_index: int = CANON16.root_index) -> np.ndarray:
    """``samples`` copies of the 2D with OKS-scaled Gaussian noise (module docstring, step 1).

    Args:
        keypoints_2d: ``(N, J, 2)`` pixels, canonical joints (:data:`lifting.skeletons.CANON16`).
        mask: ``(N, J)`` bool observed joints (unobserved joints and the root are not moved).
        samples: ``K >= 1``. level: ``u >= 0`` OKS units. seed: of the noise.

    Returns:
        ``(K, N, J, 2)`` float32 pixels.

    Raises:
        ValueError: bad ``samples``/``level``, shapes that do not match, non-finite keypoints
            on observed joints.
    """
    _check(samples, level)
    kp, m = np.asarray(keypoints_2d, np.float32), np.asarray(mask, bool)
    if kp.ndim != 3 or kp.shape[-1] != 2 or m.shape != kp.shape[:-1] or kp.shape[1] != CANON16.num_joints:
        raise ValueError(f"expected keypoints_2d (N, {CANON16.num_joints}, 2) and mask (N, {CANON16.num_joints}), "
                         f"got {kp.shape} and {m.shape}")
    if not np.isfinite(kp[m]).all():
        raise ValueError("keypoints_2d has NaN/inf on observed joints")
    kp_t, m_t = torch.from_numpy(np.where(m[..., None], kp, 0.0)), torch.from_numpy(m)
    s = object_scale(kp_t, m_t)  # (N,) px
    std = level * canon_oks_sigmas()[None] * s[:, None] / math.sqrt(2.0)  # (N, J) px per coordinate
    std = torch.where(m_t, std, torch.zeros_like(std))
    std[:, root_index] = 0.0
    g = torch.Generator().manual_seed(int(seed))
    noise = torch.randn((samples, *kp.shape), generator=g, dtype=torch.float32)
    return (torch.from_numpy(kp)[None] + noise * std[None, ..., None]).numpy()


@dataclass(frozen=True)
class UncertaintySettings:
    """How :func:`joint_spread` perturbs and scales.

    Attributes:
        samples: perturbed copies ``K`` (>= 1). level: noise level in OKS units (>= 0,
            :data:`DEFAULT_LEVEL_OKS`). seed: of the noise (:func:`perturb_keypoints`).
        calibration: factor applied to the RMS spread (finite, >= 0; 1 = raw spread;
            :data:`CALIBRATION`).
    """

    samples: int = DEFAULT_SAMPLES
    level: float = DEFAULT_LEVEL_OKS
    seed: int = 0
    calibration: float = CALIBRATION


def joint_spread(lift: LiftFn, keypoints_2d: np.ndarray, mask: np.ndarray, seq_offsets: np.ndarray | None = None,
                 settings: UncertaintySettings = UncertaintySettings(),
                 root_index: int = CANON16.root_index) -> np.ndarray:
    """Per-joint 3D uncertainty of ``lift`` at this input (module docstring).

    Args:
        lift: ``lift(keypoints_2d (M, J, 2), mask (M, J), seq_offsets (S+1,)) -> (M, J, 3)``
            metres (e.g. ``lambda k, m, o: track_lifter.lift(k, m, o, fps).joints_3d``);
            called once with ``M = (K + 1) N`` frames: the clean input, then the ``K`` copies,
            each copy's runs as separate sequences.
        keypoints_2d: ``(N, J, 2)`` pixels. mask: ``(N, J)`` bool observed joints.
        seq_offsets: ``(S+1,)`` run boundaries (default one run).
        settings: :class:`UncertaintySettings` (``samples``, ``level``, ``seed`` as
            :func:`perturb_keypoints`; ``calibration``). root_index: the root joint (0 spread).

    Returns:
        ``joints_3d_std (N, J)`` float32 metres (0 at the root).

    Raises:
        ValueError: as :func:`perturb_keypoints`; ``calibration`` not finite and >= 0; a lift
            of the wrong shape or with non-finite values.
    """
    kp = np.asarray(keypoints_2d, np.float32)
    stacked, masks, offs = perturbed_stack(kp, mask, seq_offsets, settings, root_index)
    return spread_of(np.asarray(lift(stacked, masks, offs)), len(kp), settings, root_index)


def perturbed_stack(keypoints_2d: np.ndarray, mask: np.ndarray, seq_offsets: np.ndarray | None = None,
                    settings: UncertaintySettings = UncertaintySettings(),
                    root_index: int = CANON16.root_index) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The one lift input of :func:`joint_spread`: the clean 2D followed by its ``K`` perturbed
    copies (:func:`perturb_keypoints` with ``settings``), each copy's runs separate sequences.

    Args:
        keypoints_2d: ``(N, J, 2)`` pixels. mask: ``(N, J)`` bool. seq_offsets: ``(S+1,)`` runs
            (default one run). settings: :class:`UncertaintySettings`. root_index: not moved.

    Returns:
        ``(keypoints ((K+1) N, J, 2) float32 px, mask ((K+1) N, J) bool, offsets ((K+1) S + 1,))``.

    Raises:
        ValueError: as :func:`perturb_keypoints`; a bad ``calibration``.
    """
    calibration = settings.calibration
    if isinstance(calibration, bool) or not isinstance(calibration, (int, float)) \
            or not math.isfinite(calibration) or calibration < 0:
        raise ValueError(f"uncertainty calibration must be a finite number >= 0, got {calibration!r}")
    samples = settings.samples
    kp, m = np.asarray(keypoints_2d, np.float32), np.asarray(mask, bool)
    noisy = perturb_keypoints(kp, m, samples, settings.level, settings.seed, root_index)
    n = len(kp)
    seg = np.array([0, n]) if seq_offsets is None else np.asarray(seq_offsets, np.int64)
    offs = np.concatenate([[0]] + [seg[1:] + k * n for k in range(samples + 1)])
    return np.concatenate([kp[None], noisy]).reshape(-1, *kp.shape[1:]), np.tile(m, (samples + 1, 1)), offs


def spread_of(lifts: np.ndarray, n: int, settings: UncertaintySettings = UncertaintySettings(),
              root_index: int = CANON16.root_index) -> np.ndarray:
    """``joints_3d_std (N, J)`` float32 metres from the lifts of a :func:`perturbed_stack`:
    ``calibration`` x the per-joint RMS distance of the root-aligned perturbed lifts from the
    clean one.

    Args:
        lifts: ``((K+1) N, J, 3)`` metres (clean first). n: N. settings: its ``samples`` and
            ``calibration``. root_index: the root joint (0 spread).

    Raises:
        ValueError: ``lifts`` of the wrong shape or with non-finite values.
    """
    samples, out = settings.samples, lifts
    if out.ndim != 3 or out.shape[0] != (samples + 1) * n or out.shape[2] != 3 or not np.isfinite(out).all():
        raise ValueError(f"uncertainty: the lift of {(samples + 1) * n} frames returned shape {out.shape} "
                         f"{'' if np.isfinite(out).all() else 'with non-finite values'}")
    out = out.reshape(samples + 1, n, out.shape[1], 3)
    out = out - out[:, :, root_index:root_index + 1]
    rms = np.sqrt(((out[1:] - out[:1]) ** 2).sum(-1).mean(0))
    return (settings.calibration * rms).astype(np.float32)


def lift_uncertainty(lifter, keypoints_2d: np.ndarray, mask: np.ndarray, seq_offsets: np.ndarray | None = None,
                     fps: float | None = None, causal: bool = False, conf: np.ndarray | None = None,
                     settings: UncertaintySettings = UncertaintySettings()) -> np.ndarray:
    """:func:`joint_spread` through a :mod:`lifting.track_lifter` lifter (``TeacherLifter`` /
    ``StudentLifter`` / ``LifterPair``): the same ``keypoints_2d (N, J, 2)`` px, ``mask (N, J)``,
    runs, ``fps``, ``causal`` and detector scores ``conf (N, J)`` (None: 1) as its ``lift``
    (every perturbed copy keeps the scores), with :class:`UncertaintySettings` ``settings``.

    Returns:
        ``joints_3d_std (N, J)`` float32 metres.

    Raises:
        ValueError: as :func:`joint_spread` and the lifter's ``lift``.
    """
    copies = None if conf is None else np.tile(np.asarray(conf, np.float32), (settings.samples + 1, 1))
    return joint_spread(lambda k, m, o: lifter.lift(k, m, o, fps, causal, copies).joints_3d, keypoints_2d, mask,
                        seq_offsets, settings, CANON16.root_index)


FLIP_FACTOR = 1.405
"""Factor on half the flip disagreement in :func:`flip_spread`, fitted with :data:`FLIP_FLOOR_M`
by maximum likelihood of the per-joint PA error under an isotropic 3D Gaussian on Bandai-Namco
val through the evaluation rig (GT 2D, 5 px and OKS u = 1.5 inputs pooled, every 4th clip)
for the bundled temporal teacher, which lifts every run of 9 frames or more in the default
lift: ``python scripts/bench_uncertainty.py teacher --method flip --fit --stride 10
--val-clip-stride 4`` (BENCHMARKS.md "Per-joint uncertainty"; the single-frame teacher's own
fit, 1.966 and 34.9 mm, is not used: one pair of constants for the default lift)."""

FLIP_FLOOR_M = 0.0552
"""Metres: the part of the per-joint error that the flip disagreement does not see (fitted
with :data:`FLIP_FACTOR`)."""


@dataclass(frozen=True)
class FlipSpread:
    """How :func:`flip_spread` scales the flip disagreement: ``factor`` (finite, >= 0) and
    ``floor_m`` metres (finite, >= 0)."""

    factor: float = FLIP_FACTOR
    floor_m: float = FLIP_FLOOR_M


def flip_spread(lift: np.ndarray, mirrored_back: np.ndarray, settings: FlipSpread = FlipSpread(),
                root_index: int = CANON16.root_index) -> np.ndarray:
    """Per-joint uncertainty from the two lifts of the test-time flip (``posenet3d lift
    --uncertainty flip``, the default): a lifter that sees the mirrored input and, mirrored
    back, disagrees with its own lift of the original input is unsure of that joint. With
    ``d`` half the distance between the two root-aligned lifts of a joint (the standard error
    of their mean), ``joints_3d_std = sqrt((factor d)^2 + floor_m^2)``.

    Unlike :func:`joint_spread` it needs no extra lift when the flip is on (both lifts are
    made anyway), and it measures better (BENCHMARKS.md "Per-joint uncertainty"): on
    Bandai-Namco test with GT 2D, Spearman with the real error 0.36 over all joints and 0.91
    over the joint types (``K = 8`` perturbed copies: 0.16 and 0.22); on the real Pose2Sim
    input (OpenPose 2D, triangulated 3D) 0.35 and 0.89 (copies 0.35 and 0.78), with RMS error
    / RMS std 0.93 (copies 2.11: they under-report real error by half). It shares the blind spot of any self-consistency measure: a depth
    ambiguity that the lifter resolves the same wrong way for both inputs gives a small
    disagreement. The lifter's own left/right bias (a mirrored person is lifted a little
    differently) adds to ``d`` for every input.

    Args:
        lift: ``(N, J, 3)`` metres, the lift of the input. mirrored_back: ``(N, J, 3)`` metres,
            the lift of the mirrored input mirrored back (:func:`lifting.inference.flip_average`'s
            second term). settings: :class:`FlipSpread`. root_index: the root joint (0).

    Returns:
        ``joints_3d_std (N, J)`` float32 metres (0 at the root).

    Raises:
        ValueError: shapes that differ or are not ``(N, J, 3)``, non-finite values, a bad
            ``factor`` / ``floor_m``.
    """
    a, b = np.asarray(lift, np.float64), np.asarray(mirrored_back, np.float64)
    if a.ndim != 3 or a.shape[-1] != 3 or a.shape != b.shape:
        raise ValueError(f"flip_spread: lift {a.shape} and mirrored_back {b.shape} must both be (N, J, 3)")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("flip_spread: non-finite lift")
    for name, v in (("factor", settings.factor), ("floor_m", settings.floor_m)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ValueError(f"flip uncertainty {name} must be a finite number >= 0, got {v!r}")
    a, b = a - a[:, root_index:root_index + 1], b - b[:, root_index:root_index + 1]
    half = np.linalg.norm(a - b, axis=-1) / 2
    std = np.sqrt((settings.factor * half) ** 2 + settings.floor_m ** 2)
    std[:, root_index] = 0.0
    return std.astype(np.float32)
