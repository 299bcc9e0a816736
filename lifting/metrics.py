"""Evaluation metrics for 3D human pose estimation / 2D->3D lifting.

All functions are pure PyTorch, keep the device of their inputs, and accept
poses with arbitrary leading dimensions: ``pred`` and ``target`` have shape
``(..., J, 3)`` (``J`` joints, xyz coordinates in **metres**).  Per-sample
results have shape ``(...)`` -- the leading dimensions -- and are averaged over
the joints.  An optional ``mask`` of shape ``(..., J)`` (bool, or float
weights >= 0 that are normally 0/1) selects the joints to include: masked-out
joints are excluded both from the joint average and from the alignment fits
(their coordinates are still transformed by the fitted alignment).

Metrics
-------
MPJPE (mean per-joint position error)
    Mean Euclidean distance between predicted and ground-truth joints, in
    metres.  Inputs are usually root-relative already; no alignment is done.
    (Ionescu et al., "Human3.6M", TPAMI 2014, MPJPE definition.)
N-MPJPE (scale-normalised MPJPE)
    MPJPE after rescaling the prediction by the single scalar ``s`` that
    minimises ``||s * pred - target||^2``, i.e.
    ``s = <pred, target> / <pred, pred>`` (no rotation, no translation).
    (Rhodin et al., "Learning Monocular 3D Human Pose Estimation from
    Multi-view Images", CVPR 2018, N-MPJPE.)
PA-MPJPE (Procrustes-aligned MPJPE, a.k.a. reconstruction error)
    MPJPE after the optimal similarity transform (rotation, uniform scale,
    translation) of the prediction onto the ground truth, solved in closed
    form with an SVD (Umeyama, "Least-squares estimation of transformation
    parameters between two point patterns", TPAMI 1991, Eq. 40-42; Kabsch,
    Acta Cryst. 1976).  Umeyama's determinant-sign correction matrix ``S``
    (Eq. 39/43, in the ``det(U) det(V)`` form) is applied, so the fitted
    transform is always a proper rotation: a mirrored prediction is *not*
    forgiven.
3D PCK (percentage of correct keypoints)
    Fraction of joints whose Euclidean error is within a threshold, 150 mm by
    default (Mehta et al., "Monocular 3D Human Pose Estimation In The Wild
    Using Improved CNN Supervision", 3DV 2017, MPI-INF-3DHP benchmark).  A
    joint counts as correct when ``error <= threshold``.
AUC
    Area under the PCK curve: the mean of PCK over the thresholds
    0, 5, ..., 150 mm (31 evenly spaced values; Mehta et al. 3DV 2017).

:func:`compute_all` returns all per-sample metrics in one dict (metres /
fractions); :func:`summarize` averages them over all samples and converts
to the usual reporting units (millimetres, percentages).

Input validation
----------------
Every public function raises :class:`ValueError` (with a message naming the
problem) if ``pred`` and ``target`` shapes differ, the last dimension is not
3, there is no joint dimension, the mask shape is not ``(..., J)``, the mask
has negative or non-finite weights, or ``pred``/``target`` contain NaN/Inf
values.

A sample whose mask excludes *every* joint has no defined error; its result
is NaN, and :func:`summarize` skips such samples.

Plausibility without 3D ground truth
------------------------------------
For lifted real tracks (no 3D to compare with) two body-shape statistics of
the prediction itself, on the canonical 16-joint set
(:data:`lifting.skeletons.CANON16`, metres):

knee angle (:func:`knee_angles`)
    The hip-knee-ankle angle of each leg, 180 deg = straight leg.  Mocap
    ground truth gives medians of 145 deg (Bandai-Namco walking clips, 30 %
    of frames with a knee below 120 deg: the swing phase) and 152 deg (all
    Bandai-Namco clips); ``scripts/bench_real.py`` prints these reference rows.
    A lifter that crouches upright people gives medians near 100 deg.
bone-length CV (:func:`bone_length_cv`)
    Per bone, the coefficient of variation std / mean of its length over the
    frames of one track (population std).  A person's bones are rigid, so a
    metric 3D track has CV 0; a lift that re-guesses the scale or proportions
    per frame does not.
:func:`track_plausibility` summarises both over many tracks (issue 15
targets: median knee >= 150 deg, median bone CV <= 0.08).
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch

__all__ = [
    "reprojection_residual",
    "PCK_THRESHOLD",
    "AUC_THRESHOLDS",
    "mpjpe",
    "scale_align",
    "n_mpjpe",
    "procrustes_fit",
    "procrustes_align",
    "pa_mpjpe",
    "pck3d",
    "auc",
    "compute_all",
    "summarize",
    "knee_angles",
    "bone_length_cv",
    "track_plausibility",
]

#: Default 3D PCK threshold in metres (150 mm, Mehta et al. 3DV 2017).
PCK_THRESHOLD: float = 0.150
#: Number of evenly spaced AUC thresholds in [0, 150 mm] (Mehta et al. 3DV 2017).
AUC_NUM_THRESHOLDS: int = 31
#: Default AUC thresholds in metres, as a tuple: 0, 0.005, ..., 0.150.
AUC_THRESHOLDS: Tuple[float, ...] = tuple(
    PCK_THRESHOLD * i / (AUC_NUM_THRESHOLDS - 1) for i in range(AUC_NUM_THRESHOLDS)
)

_Mask = Optional[torch.Tensor]


# --------------------------------------------------------------------------- #
# validation helpers
# --------------------------------------------------------------------------- #
def _check_inputs(pred: torch.Tensor, target: torch.Tensor, mask: _Mask = None) -> Optional[torch.Tensor]:
    """Validate ``pred``/``target``/``mask``; return float joint weights or None.

    Returns ``None`` when no mask is given, else a tensor of shape ``(..., J)``
    with the dtype of ``pred`` (floating) and its device.
    """
    if not isinstance(pred, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise ValueError(
            f"pred and target must be torch.Tensors, got {type(pred).__name__} and {type(target).__name__}"
        )
    if pred.shape != target.shape:
        raise ValueError(
            f"shape mismatch: pred has shape {tuple(pred.shape)} but target has shape {tuple(target.shape)}"
        )
    if pred.dim() < 2:
        raise ValueError(f"poses must have shape (..., J, 3), got a tensor of shape {tuple(pred.shape)}")
    if pred.shape[-1] != 3:
        raise ValueError(
            f"last dimension must be 3 (xyz coordinates), got shape {tuple(pred.shape)} "
            f"with last dimension {pred.shape[-1]}"
        )
    if pred.shape[-2] == 0:
        raise ValueError(f"poses must have at least one joint, got shape {tuple(pred.shape)}")
    if not pred.is_floating_point() or not target.is_floating_point():
        raise ValueError(f"pred and target must be floating point tensors, got {pred.dtype} and {target.dtype}")
    for name, x in (("pred", pred), ("target", target)):
        finite = torch.isfinite(x)
        if not bool(finite.all()):
            n_bad = int((~finite).sum())
            n_nan = int(torch.isnan(x).sum())
            raise ValueError(
                f"{name} contains {n_bad} non-finite value(s) ({n_nan} NaN, {n_bad - n_nan} +/-Inf) "
                f"out of {x.numel()}"
            )
    if mask is None:
        return None
    if not isinstance(mask, torch.Tensor):
        raise ValueError(f"mask must be a torch.Tensor or None, got {type(mask).__name__}")
    expected = tuple(pred.shape[:-1])
    if tuple(mask.shape) != expected:
        raise ValueError(
            f"mask shape {tuple(mask.shape)} does not match the pose shape (..., J) = {expected} "
            f"(poses have shape {tuple(pred.shape)})"
        )
    dtype = torch.promote_types(pred.dtype, target.dtype)
    w = mask.to(device=pred.device, dtype=dtype)
    if not mask.dtype == torch.bool:
        if not bool(torch.isfinite(w).all()):
            raise ValueError(f"mask contains {int((~torch.isfinite(w)).sum())} non-finite value(s)")
        if bool((w < 0).any()):
            raise ValueError(f"mask contains {int((w < 0).sum())} negative value(s); weights must be >= 0")
    return w


def _joint_mean(values: torch.Tensor, weights: Optional[torch.Tensor]) -> torch.Tensor:
    """(Weighted) mean over the last dim; NaN where all weights are zero."""
    if weights is None:
        return values.mean(dim=-1)
    total = weights.sum(dim=-1)
    num = (values * weights).sum(dim=-1)
    # 0/0 -> NaN for samples with no valid joint (documented behaviour).
    return torch.where(total > 0, num / torch.where(total > 0, total, torch.ones_like(total)),
                       torch.full_like(num, float("nan")))


def _joint_errors(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-joint Euclidean distance, shape (..., J), in the input units."""
    return torch.linalg.vector_norm(pred - target, dim=-1)


# --------------------------------------------------------------------------- #
# MPJPE family
# --------------------------------------------------------------------------- #
def mpjpe(pred: torch.Tensor, target: torch.Tensor, mask: _Mask = None) -> torch.Tensor:
    """Mean per-joint position error (MPJPE).

    ``mean_j ||pred_j - target_j||_2`` -- Ionescu et al., "Human3.6M", TPAMI
    2014 (MPJPE definition).  No alignment is applied (inputs are expected to be
    root-relative already).

    Args:
        pred: predicted joints, shape ``(..., J, 3)``, metres.
        target: ground-truth joints, shape ``(..., J, 3)``, metres.
        mask: optional ``(..., J)`` bool/float; joints with mask 0/False are
            excluded from the average.

    Returns:
        Tensor of shape ``(...)``: per-sample error in metres.  NaN for a
        sample whose mask excludes all joints.

    Raises:
        ValueError: shape mismatch, last dim != 3, bad mask shape/values, or
            non-finite values in ``pred``/``target``.
    """
    w = _check_inputs(pred, target, mask)
    return _joint_mean(_joint_errors(pred, target), w)


def scale_align(pred: torch.Tensor, target: torch.Tensor, mask: _Mask = None) -> torch.Tensor:
    """Rescale ``pred`` by the least-squares optimal scalar (N-MPJPE alignment).

    ``s* = argmin_s ||s * pred - target||^2 = <pred, target> / <pred, pred>``,
    the scale normalisation of Rhodin et al. (CVPR 2018 "Learning Monocular
    3D Human Pose Estimation from Multi-view Images", N-MPJPE, optimal scale
    ``s``).  No translation or rotation is fitted --
    inputs are assumed root-relative.  Sums run over the unmasked joints only;
    the scale is then applied to all joints.  If ``pred`` is all zeros on the
    unmasked joints the scale is undefined and ``s = 1`` is used.

    Args:
        pred: predicted joints, shape ``(..., J, 3)``, metres.
        target: ground-truth joints, shape ``(..., J, 3)``, metres.
        mask: optional ``(..., J)`` bool/float of joints used in the fit.

    Returns:
        Tensor of shape ``(..., J, 3)``: ``s * pred`` in metres, same dtype
        and device as ``pred``.

    Raises:
        ValueError: shape mismatch, last dim != 3, bad mask shape/values, or
            non-finite values in ``pred``/``target``.
    """
    w = _check_inputs(pred, target, mask)
    dot_pt = (pred * target).sum(dim=-1)  # (..., J)
    dot_pp = (pred * pred).sum(dim=-1)
    if w is not None:
        dot_pt = dot_pt * w
        dot_pp = dot_pp * w
    num = dot_pt.sum(dim=-1)
    den = dot_pp.sum(dim=-1)
    tiny = torch.finfo(den.dtype).tiny
    ok = den > tiny
    s = torch.where(ok, num / torch.where(ok, den, torch.ones_like(den)), torch.ones_like(den))
    return (s[..., None, None] * pred).to(pred.dtype)


def n_mpjpe(pred: torch.Tensor, target: torch.Tensor, mask: _Mask = None) -> torch.Tensor:
    """Scale-normalised MPJPE (N-MPJPE): MPJPE after :func:`scale_align`.

    Rhodin et al., CVPR 2018 (N-MPJPE, optimal scale
    ``s = <pred, target> / <pred, pred>``).

    Args:
        pred: predicted joints, shape ``(..., J, 3)``, metres.
        target: ground-truth joints, shape ``(..., J, 3)``, metres.
        mask: optional ``(..., J)`` bool/float; masked joints are excluded from
            the scale fit and from the average.

    Returns:
        Tensor of shape ``(...)``: per-sample error in metres (NaN where all
        joints are masked).

    Raises:
        ValueError: shape mismatch, last dim != 3, bad mask shape/values, or
            non-finite values in ``pred``/``target``.
    """
    aligned = scale_align(pred, target, mask)
    return mpjpe(aligned, target, mask)


def _normalised_weights(w: torch.Tensor | None, p: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Joint weights ``(..., J)`` float64 summing to one per sample (all ones when ``w`` is
    None) and ``(...)`` bool: the sample has a joint of positive weight (its weights stay 0
    otherwise). ``p``: ``(..., J, 3)`` float64, for shape and device."""
    if w is None:
        w64 = torch.ones(p.shape[:-1], dtype=torch.float64, device=p.device)
    else:
        w64 = w.to(torch.float64)
    total = w64.sum(dim=-1, keepdim=True)  # (..., 1)
    return w64 / torch.where(total > 0, total, torch.ones_like(total)), total[..., 0] > 0


def _umeyama_rotation(wn: torch.Tensor, qc: torch.Tensor, pc: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """The rotation ``R = U S V^T`` ``(..., 3, 3)`` (a proper rotation) and ``tr(D S)``
    ``(...)`` of Umeyama Eq. 39-43 (see :func:`procrustes_fit`) from normalised weights
    ``wn (..., J)`` and centred target/prediction joints ``qc``, ``pc`` ``(..., J, 3)``."""
    # Cross-covariance Sigma = sum_j w_j qc_j pc_j^T, shape (..., 3, 3).
    sigma = torch.einsum("...j,...ja,...jb->...ab", wn, qc, pc)
    u, d, vh = torch.linalg.svd(sigma)
    sign = torch.sign(torch.linalg.det(u) * torch.linalg.det(vh))
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    s_diag = torch.ones_like(d)
    s_diag[..., 2] = sign
    return u @ (s_diag[..., :, None] * vh), (d * s_diag).sum(dim=-1)  # U S V^T, tr(D S)


def procrustes_fit(
    pred: torch.Tensor, target: torch.Tensor, mask: _Mask = None
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fit the similarity transform ``target ~ scale * R @ pred + t``.

    Closed-form least-squares solution of Umeyama (TPAMI 1991), Eq. 40-42
    (the rotation part is the Kabsch solution), computed internally in
    float64.  With joint weights ``w_j`` normalised to sum to one:

    * ``mu_p = sum_j w_j p_j``, ``mu_t = sum_j w_j t_j``;
    * ``sigma_p^2 = sum_j w_j ||p_j - mu_p||^2``;
    * ``Sigma = sum_j w_j (t_j - mu_t)(p_j - mu_p)^T = U D V^T`` (SVD);
    * ``S = diag(1, 1, det(U) det(V))`` (reflection fix, Eq. 39/43);
    * ``R = U S V^T`` (Eq. 40), ``scale = tr(D S) / sigma_p^2`` (Eq. 42),
      ``t = mu_t - scale R mu_p`` (Eq. 41).

    ``R`` is therefore always a proper rotation (``det R = +1``).  Degenerate
    input is handled without NaN: if ``pred`` has (numerically) zero variance
    over the fitted joints, ``scale = 0`` and ``R = I`` so every joint maps to
    the target centroid; a zero-variance target gives ``scale = 0`` too.

    Args:
        pred: source joints, shape ``(..., J, 3)``, metres.
        target: destination joints, shape ``(..., J, 3)``, metres.
        mask: optional ``(..., J)`` bool/float of joints used in the fit.

    Returns:
        ``(R, scale, t)`` with shapes ``(..., 3, 3)``, ``(...)``, ``(..., 3)``
        in the dtype of ``pred`` (``scale`` unitless, ``t`` in metres).  For a
        sample whose mask excludes all joints the transform is the identity.

    Raises:
        ValueError: shape mismatch, last dim != 3, bad mask shape/values, or
            non-finite values in ``pred``/``target``.
    """
    w = _check_inputs(pred, target, mask)
    out_dtype = pred.dtype
    p = pred.to(torch.float64)
    q = target.to(torch.float64)
    wn, has_joints = _normalised_weights(w, p)

    mu_p = (wn[..., None] * p).sum(dim=-2)  # (..., 3)
    mu_q = (wn[..., None] * q).sum(dim=-2)
    pc = p - mu_p[..., None, :]
    qc = q - mu_q[..., None, :]

    var_p = (wn * (pc * pc).sum(dim=-1)).sum(dim=-1)  # (...)
    # Second moment about the origin: reference magnitude for deciding when the
    # centred variance is only round-off (e.g. all joints at the same point).
    ref_p = (wn * (p * p).sum(dim=-1)).sum(dim=-1)
    eps = torch.finfo(torch.float64).eps
    tiny = torch.finfo(torch.float64).tiny
    nondegenerate = (var_p > 1e4 * eps * ref_p + tiny) & has_joints

    rot, trace_ds = _umeyama_rotation(wn, qc, pc)

    scale = torch.where(
        nondegenerate,
        trace_ds / torch.where(nondegenerate, var_p, torch.ones_like(var_p)),
        torch.zeros_like(var_p),
    )
    eye = torch.eye(3, dtype=torch.float64, device=p.device).expand_as(rot)
    rot = torch.where(nondegenerate[..., None, None], rot, eye)
    t = mu_q - scale[..., None] * (rot @ mu_p[..., :, None])[..., 0]

    # A sample with no fitted joints keeps the identity transform.
    scale = torch.where(has_joints, scale, torch.ones_like(scale))
    t = torch.where(has_joints[..., None], t, torch.zeros_like(t))
    return rot.to(out_dtype), scale.to(out_dtype), t.to(out_dtype)


def procrustes_align(pred: torch.Tensor, target: torch.Tensor, mask: _Mask = None) -> torch.Tensor:
    """Align ``pred`` onto ``target`` with a similarity Procrustes transform.

    Applies the rotation + uniform scale + translation of
    :func:`procrustes_fit` (Umeyama TPAMI 1991, Eq. 40-42, with the
    det-sign correction so it never reflects; SVD in float64 and cast back).
    The fit uses only unmasked joints, the transform is applied to all.
    Degenerate input (e.g. all ``pred`` joints at one point) returns finite
    values (every joint at the target centroid).

    Args:
        pred: predicted joints, shape ``(..., J, 3)``, metres.
        target: ground-truth joints, shape ``(..., J, 3)``, metres.
        mask: optional ``(..., J)`` bool/float of joints used in the fit.

    Returns:
        Tensor of shape ``(..., J, 3)``: aligned prediction in metres, dtype
        and device of ``pred``.

    Raises:
        ValueError: shape mismatch, last dim != 3, bad mask shape/values, or
            non-finite values in ``pred``/``target``.
    """
    rot, scale, t = procrustes_fit(pred, target, mask)
    p = pred.to(torch.float64)
    aligned = scale.to(torch.float64)[..., None, None] * (p @ rot.to(torch.float64).transpose(-1, -2))
    aligned = aligned + t.to(torch.float64)[..., None, :]
    return aligned.to(pred.dtype)


def pa_mpjpe(pred: torch.Tensor, target: torch.Tensor, mask: _Mask = None) -> torch.Tensor:
    """Procrustes-aligned MPJPE (PA-MPJPE): MPJPE after :func:`procrustes_align`.

    Similarity Procrustes alignment per Umeyama (TPAMI 1991, Eq. 40-42),
    reflections excluded.

    Args:
        pred: predicted joints, shape ``(..., J, 3)``, metres.
        target: ground-truth joints, shape ``(..., J, 3)``, metres.
        mask: optional ``(..., J)`` bool/float; masked joints are excluded from
            the alignment fit and from the average.

    Returns:
        Tensor of shape ``(...)``: per-sample error in metres (NaN where all
        joints are masked).

    Raises:
        ValueError: shape mismatch, last dim != 3, bad mask shape/values, or
            non-finite values in ``pred``/``target``.
    """
    aligned = procrustes_align(pred, target, mask)
    return mpjpe(aligned, target, mask)


# --------------------------------------------------------------------------- #
# PCK / AUC
# --------------------------------------------------------------------------- #
def pck3d(
    pred: torch.Tensor,
    target: torch.Tensor,
    threshold: float = PCK_THRESHOLD,
    mask: _Mask = None,
) -> torch.Tensor:
    """3D percentage of correct keypoints, as a fraction in [0, 1].

    A joint is correct when its Euclidean error is ``<= threshold`` (Mehta et
    al., 3DV 2017, MPI-INF-3DHP 3D PCK at 150 mm).  The comparison is
    inclusive so that a perfect prediction is counted correct even at a
    threshold of 0 (needed for AUC = 100 % on a perfect prediction).

    Args:
        pred: predicted joints, shape ``(..., J, 3)``, metres.
        target: ground-truth joints, shape ``(..., J, 3)``, metres.
        threshold: distance threshold in metres (default 0.150).
        mask: optional ``(..., J)`` bool/float of joints to include.

    Returns:
        Tensor of shape ``(...)``: fraction of correct joints (not a
        percentage).  NaN where all joints are masked.

    Raises:
        ValueError: shape mismatch, last dim != 3, bad mask shape/values,
            non-finite values in ``pred``/``target``, or a negative /
            non-finite threshold.
    """
    w = _check_inputs(pred, target, mask)
    thr = float(threshold)
    if not (thr >= 0.0) or thr == float("inf"):
        raise ValueError(f"threshold must be a finite value >= 0 (metres), got {threshold!r}")
    err = _joint_errors(pred, target)
    correct = (err <= thr).to(err.dtype)
    return _joint_mean(correct, w)


def auc(
    pred: torch.Tensor,
    target: torch.Tensor,
    thresholds: Optional[Union[Sequence[float], torch.Tensor]] = None,
    mask: _Mask = None,
) -> torch.Tensor:
    """Area under the 3D PCK curve, as a fraction in [0, 1].

    Mean of :func:`pck3d` over ``thresholds``; by default the 31 evenly spaced
    thresholds 0, 5, ..., 150 mm (0 .. 0.150 m) of Mehta et al. (3DV 2017,
    MPI-INF-3DHP).

    Args:
        pred: predicted joints, shape ``(..., J, 3)``, metres.
        target: ground-truth joints, shape ``(..., J, 3)``, metres.
        thresholds: optional 1-D sequence/tensor of thresholds in metres.
        mask: optional ``(..., J)`` bool/float of joints to include.

    Returns:
        Tensor of shape ``(...)``: AUC as a fraction (NaN where all joints are
        masked).

    Raises:
        ValueError: shape mismatch, last dim != 3, bad mask shape/values,
            non-finite values in ``pred``/``target``, or empty / negative /
            non-finite thresholds.
    """
    w = _check_inputs(pred, target, mask)
    err = _joint_errors(pred, target)  # (..., J)
    if thresholds is None:
        thr = torch.linspace(0.0, PCK_THRESHOLD, AUC_NUM_THRESHOLDS, dtype=err.dtype, device=err.device)
    else:
        thr = torch.as_tensor(thresholds, dtype=err.dtype, device=err.device).reshape(-1)
        if thr.numel() == 0:
            raise ValueError("thresholds must contain at least one value")
        if not bool(torch.isfinite(thr).all()) or bool((thr < 0).any()):
            raise ValueError(f"thresholds must be finite and >= 0 (metres), got {thr.tolist()}")
    correct = (err[..., None, :] <= thr[:, None]).to(err.dtype)  # (..., T, J)
    w_t = None if w is None else w[..., None, :]
    pck_per_thr = _joint_mean(correct, w_t)  # (..., T)
    return pck_per_thr.mean(dim=-1)


# --------------------------------------------------------------------------- #
# aggregation
# --------------------------------------------------------------------------- #
def compute_all(pred: torch.Tensor, target: torch.Tensor, mask: _Mask = None) -> Dict[str, torch.Tensor]:
    """Compute every metric per sample.

    Args:
        pred: predicted joints, shape ``(..., J, 3)``, metres.
        target: ground-truth joints, shape ``(..., J, 3)``, metres.
        mask: optional ``(..., J)`` bool/float of joints to include.

    Returns:
        Dict with keys ``mpjpe``, ``n_mpjpe``, ``pa_mpjpe`` (metres),
        ``pck3d`` (fraction at 150 mm) and ``auc`` (fraction over 0..150 mm),
        each a tensor of shape ``(...)``.  Sources: see :func:`mpjpe`,
        :func:`n_mpjpe`, :func:`pa_mpjpe`, :func:`pck3d`, :func:`auc`.

    Raises:
        ValueError: shape mismatch, last dim != 3, bad mask shape/values, or
            non-finite values in ``pred``/``target``.
    """
    _check_inputs(pred, target, mask)
    return {
        "mpjpe": mpjpe(pred, target, mask),
        "n_mpjpe": n_mpjpe(pred, target, mask),
        "pa_mpjpe": pa_mpjpe(pred, target, mask),
        "pck3d": pck3d(pred, target, PCK_THRESHOLD, mask),
        "auc": auc(pred, target, None, mask),
    }


_MM_KEYS = ("mpjpe", "n_mpjpe", "pa_mpjpe")
_PCT_KEYS = ("pck3d", "auc")


def summarize(per_sample: Dict[str, torch.Tensor], to_mm: bool = True) -> Dict[str, float]:
    """Average per-sample metrics over all samples, in reporting units.

    Args:
        per_sample: dict as returned by :func:`compute_all` (tensors of any
            shape; every element is one sample).  Unknown keys are averaged
            and reported unchanged.
        to_mm: if True (default) errors are reported in millimetres (x1000)
            under ``mpjpe_mm``, ``n_mpjpe_mm``, ``pa_mpjpe_mm``, and
            ``pck3d``/``auc`` as percentages (x100).  If False, the raw
            means are reported under the original keys (metres, fractions).

    Returns:
        Dict of Python floats, plus ``n``: the number of samples averaged.
        Samples that are NaN (all joints masked) are skipped; ``n`` counts the
        samples with a finite ``mpjpe`` (or first key if ``mpjpe`` is absent).

    Raises:
        ValueError: if ``per_sample`` is empty, or its tensors do not all have
            the same number of elements.
    """
    if not per_sample:
        raise ValueError("per_sample is empty: nothing to summarize")
    sizes = {k: int(torch.as_tensor(v).numel()) for k, v in per_sample.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"per-sample tensors have different numbers of samples: {sizes}")
    out: Dict[str, float] = {}
    for key, value in per_sample.items():
        v = torch.as_tensor(value).detach().reshape(-1).to(torch.float64)
        valid = v[torch.isfinite(v)]
        mean = float(valid.mean()) if valid.numel() > 0 else float("nan")
        if to_mm and key in _MM_KEYS:
            out[f"{key}_mm"] = mean * 1000.0
        elif to_mm and key in _PCT_KEYS:
            out[key] = mean * 100.0
        else:
            out[key] = mean
    count_key = "mpjpe" if "mpjpe" in per_sample else next(iter(per_sample))
    out["n"] = int(torch.isfinite(torch.as_tensor(per_sample[count_key]).detach()).sum())
    return out


# --------------------------------------------------------------------------- #
# plausibility of lifted tracks (no 3D ground truth)
# --------------------------------------------------------------------------- #
_KNEES = (("r_hip", "r_knee", "r_ankle"), ("l_hip", "l_knee", "l_ankle"))
_MIN_SEGMENT_M = 1e-6


def _canon16_joints(joints_3d, min_frames: int = 0) -> torch.Tensor:
    """``joints_3d`` as a float tensor ``(..., 16, 3)``; ValueError naming the problem."""
    x = torch.as_tensor(joints_3d)
    if x.ndim < 2 or tuple(x.shape[-2:]) != (16, 3):
        raise ValueError(f"joints_3d must have shape (..., 16, 3) (canon16 joints, xyz metres), got {tuple(x.shape)}")
    if not x.is_floating_point():
        x = x.to(torch.float64)
    if not bool(torch.isfinite(x).all()):
        raise ValueError("joints_3d contains NaN/Inf values: drop or fill the missing frames first")
    if x.ndim >= 3 and x.shape[-3] < min_frames:
        raise ValueError(f"joints_3d has {x.shape[-3]} frames, needs at least {min_frames}")
    return x


def knee_angles(joints_3d) -> torch.Tensor:
    """Hip-knee-ankle angle of the right and left leg, in degrees (180 = straight).

    The angle at the knee between the thigh (knee -> hip) and the shank (knee -> ankle)
    vectors, ``atan2(|u x v|, u . v)`` (numerically stable near 0 and 180 deg).

    Args:
        joints_3d: ``(..., 16, 3)`` canon16 joints (:data:`lifting.skeletons.CANON16`
            order), metres (any frame and origin: the angle is rigid-invariant); tensor
            or array.

    Returns:
        ``(..., 2)`` float tensor ``[right, left]`` in degrees, in ``[0, 180]``; NaN
        where the thigh or the shank is shorter than 1 micrometre (no angle defined).

    Raises:
        ValueError: a shape other than ``(..., 16, 3)``, or NaN/Inf joints.
    """
    from lifting.skeletons import CANON16

    x = _canon16_joints(joints_3d)
    out = []
    for hip, knee, ankle in _KNEES:
        k = x[..., CANON16.index(knee), :]
        u, v = x[..., CANON16.index(hip), :] - k, x[..., CANON16.index(ankle), :] - k
        ang = torch.rad2deg(torch.atan2(torch.linalg.cross(u, v).norm(dim=-1), (u * v).sum(-1)))
        short = (u.norm(dim=-1) < _MIN_SEGMENT_M) | (v.norm(dim=-1) < _MIN_SEGMENT_M)
        out.append(torch.where(short, torch.full_like(ang, float("nan")), ang))
    return torch.stack(out, -1)


def bone_length_cv(joints_3d) -> torch.Tensor:
    """Per-bone coefficient of variation of bone length over time: ``std_t / mean_t``.

    Bones are the 15 parent-child pairs of :data:`lifting.skeletons.CANON16` (order of
    the child joints 1..15); std is the population std (ddof 0) over the ``T`` frames.
    Scale-free: a track lifted with a wrong but constant scale has CV 0; a rigid
    skeleton has CV 0 in any pose.

    Args:
        joints_3d: ``(..., T, 16, 3)`` one track (or a batch of equal-length tracks), canon16
            joints, metres; tensor or array; ``T >= 2``.

    Returns:
        ``(..., 15)`` float tensor (fraction, not %); NaN for a bone whose mean length is
        below 1 micrometre.

    Raises:
        ValueError: a shape other than ``(..., T, 16, 3)``, fewer than 2 frames, NaN/Inf joints.
    """
    from lifting.skeletons import CANON16

    x = _canon16_joints(joints_3d, min_frames=2)
    if x.ndim < 3:
        raise ValueError(f"joints_3d must have shape (..., T, 16, 3) with a time axis, got {tuple(x.shape)}")
    child = [j for j, p in enumerate(CANON16.parents) if p >= 0]
    parent = [CANON16.parents[j] for j in child]
    lengths = (x[..., child, :] - x[..., parent, :]).norm(dim=-1)  # (..., T, 15)
    mean = lengths.mean(-2)
    cv = lengths.std(-2, unbiased=False) / mean.clamp_min(_MIN_SEGMENT_M)
    return torch.where(mean < _MIN_SEGMENT_M, torch.full_like(cv, float("nan")), cv)


def _median(x: torch.Tensor) -> float:
    """Median as numpy defines it (mean of the two middle values for an even count); NaN if empty."""
    if x.numel() == 0:
        return float("nan")
    s = x.reshape(-1).sort().values
    n = s.numel()
    return float((s[(n - 1) // 2] + s[n // 2]) / 2)


def track_plausibility(tracks: Sequence, min_frames: int = 10) -> Dict[str, float]:
    """Knee-angle and bone-length statistics over lifted tracks (BENCHMARKS.md real-track table).

    Args:
        tracks: sequence of ``(T_i, 16, 3)`` canon16 joint tracks (metres), e.g. the
            ``joints_3d`` of ``posenet3d lift``'s ``track_XXXX.npz``.
        min_frames: only tracks with at least this many frames (>= 2) enter the bone CV.

    Returns:
        Dict with ``tracks``, ``frames`` (all frames of all tracks), ``knee_median_deg``
        (median over both knees of every frame with defined angles), ``knee_below_120_pct``
        (% of frames with either knee below 120 deg), ``bone_cv_median_pct`` (median over
        tracks with >= ``min_frames`` frames of the track's mean over its bones of
        :func:`bone_length_cv`, in %; NaN when no track is long enough) and
        ``tracks_for_cv``.  Frames or bones with undefined values (NaN, see above) are left out.

    Raises:
        ValueError: no track, ``min_frames < 2``, or a track :func:`knee_angles` rejects
            (the message names its index).
    """
    if len(tracks) == 0:
        raise ValueError("track_plausibility: no tracks")
    if min_frames < 2:
        raise ValueError(f"min_frames must be >= 2 (a CV needs two frames), got {min_frames}")
    knees, below, cvs = [], [], []
    for i, t in enumerate(tracks):
        try:
            k = knee_angles(t).to(torch.float64)
            if k.ndim != 2:
                raise ValueError(f"expected one track (T, 16, 3), got {tuple(torch.as_tensor(t).shape)}")
            cv = bone_length_cv(t) if len(k) >= min_frames else None
        except ValueError as e:
            raise ValueError(f"track {i}: {e}") from None
        knees.append(k[torch.isfinite(k)])
        below.append((k < 120.0).any(-1))
        if cv is not None and bool(torch.isfinite(cv).any()):
            cvs.append(float(cv[torch.isfinite(cv)].mean()))
    k_all, b_all = torch.cat(knees), torch.cat(below)
    return {"tracks": len(tracks), "frames": int(b_all.numel()),
            "knee_median_deg": round(_median(k_all), 1),
            "knee_below_120_pct": round(100 * float(b_all.double().mean()), 1),
            "bone_cv_median_pct": round(100 * _median(torch.tensor(cvs, dtype=torch.float64)), 2),
            "tracks_for_cv": len(cvs)}


def reprojection_residual(joints_3d, keypoints_2d, mask) -> np.ndarray:
    """How well a lift follows its own 2D: per frame, the RMS pixel residual of the
    least-squares 2D scale + shift that maps the lift's ``x, y`` onto the observed keypoints
    (a weak-perspective reprojection, as in HMR's ``cam``, Kanazawa et al. CVPR 2018 Eq. 1),
    divided by the person's 2D height (extent of the observed keypoints, the larger of width
    and height). 0 = the lift's silhouette matches its input exactly; it costs no 3D truth.

    Args:
        joints_3d: ``(T, J, 3)`` lifted joints (any units, camera frame x right, y down).
        keypoints_2d: ``(T, J, 2)`` input pixels. mask: ``(T, J)`` bool observed joints.

    Returns:
        ``(T,)`` float64 fraction of the person's 2D height; NaN for frames with fewer than 2
        observed joints or a zero-size person.

    Raises:
        ValueError: shapes that do not match.
    """
    from .prepare import frame_size

    x3, kp, m = np.asarray(joints_3d), np.asarray(keypoints_2d), np.asarray(mask, bool)
    if x3[..., :2].shape != kp.shape or m.shape != kp.shape[:-1] or kp.ndim != 3:
        raise ValueError(f"reprojection_residual: joints_3d {x3.shape}, keypoints_2d {kp.shape} and "
                         f"mask {m.shape} must be (T, J, 3), (T, J, 2), (T, J)")
    x, k, w = x3[..., :2].astype(np.float64), kp.astype(np.float64), m.astype(np.float64)
    n = w.sum(-1)
    safe = np.maximum(n, 1)[:, None, None]
    xc = x - np.einsum("tj,tjc->tc", w, x)[:, None] / safe  # centred on the observed joints' mean
    kc = k - np.einsum("tj,tjc->tc", w, k)[:, None] / safe
    s = np.einsum("tj,tjc,tjc->t", w, xc, kc) / np.maximum(np.einsum("tj,tjc,tjc->t", w, xc, xc), 1e-12)
    d = s[:, None, None] * xc - kc
    size = frame_size(kp, m)
    with np.errstate(all="ignore"):
        out = np.sqrt(np.einsum("tj,tjc,tjc->t", w, d, d) / safe[:, 0, 0]) / size
    out[(n < 2) | ~(size > 0)] = np.nan
    return out
