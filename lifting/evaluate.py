"""Evaluation protocol of DESIGN.md §4: every frame of every clip through the fixed 4-camera
rig, optional Gaussian pixel noise, metrics over the canonical 16 joints in mm, overall and
per content/action."""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

from . import metrics
from .data import EvalViews, MocapClips, content_label, eval_views
from .geometry import normalize_2d
from .inference import DEFAULT_HEIGHT_M, InferenceSettings, lift_frames, metric_scale
from .refine import FitWeights, fit_track
from .models.teacher import Lifter

__all__ = ["evaluate_lifter", "evaluate_predictions", "flat_baseline"]


def _noisy(views: EvalViews, noise_px: float, seed: int) -> torch.Tensor:
    kp = torch.from_numpy(views.keypoints_2d)
    if noise_px > 0:
        g = torch.Generator().manual_seed(seed)
        kp = kp + noise_px * torch.randn(kp.shape, generator=g)
    return kp


def evaluate_predictions(pred_m: torch.Tensor, views: EvalViews) -> dict:
    """Metrics of predictions against the rig's ground truth.

    Args:
        pred_m: ``(4, N, J, 3)`` root-relative predictions in metres.
        views: the :class:`EvalViews` they were made from.

    Returns:
        ``{"overall": {mpjpe_mm, n_mpjpe_mm, pa_mpjpe_mm, pck3d, auc, n}, "per_content":
        {label: {...}}}`` (mm and percent; ``n`` = frames x cameras).
    """
    target = torch.from_numpy(views.joints_3d)
    per = metrics.compute_all(pred_m, target)  # each (4, N)
    result = {"overall": metrics.summarize(per)}
    labels = np.array([content_label(str(s)) for s in views.seq_names])[views.clip_of_frame]
    groups: dict[str, list[int]] = defaultdict(list)
    for i, lab in enumerate(labels):
        groups[lab].append(i)
    result["per_content"] = {
        lab: metrics.summarize({k: v[:, idx] for k, v in per.items()}) for lab, idx in sorted(groups.items())
    }
    return result


def evaluate_lifter(
    model: Lifter,
    clips: MocapClips | EvalViews,
    noise_px: float = 0.0,
    seed: int = 0,
    height_m: float = DEFAULT_HEIGHT_M,
    fit: FitWeights | None = None,
    settings: InferenceSettings = InferenceSettings(),
) -> dict:
    """Evaluate a lifter on clips (DESIGN.md §4 protocol; see :func:`evaluate_predictions`).

    Args:
        model: lifter. clips: mocap clips (or precomputed rig views).
        noise_px: sigma of Gaussian noise added to the 2D pixels (0 = GT 2D).
        height_m: assumed subject height for MPJPE/PCK (see :func:`metric_scale`).
        fit: when given, every clip's lift is fitted to its (noisy) 2D first, as ``posenet3d
            lift --fit track`` does (:func:`lifting.refine.fit_track`).
        settings: how the model runs (:class:`lifting.inference.InferenceSettings`: batch size,
            autocast dtype, test-time flip; its ``causal``/``stride`` apply as in a lift).
    """
    views = clips if isinstance(clips, EvalViews) else eval_views(clips)
    dev = next(model.parameters()).device  # lift where the model lives; metrics on the CPU
    kp = _noisy(views, noise_px, seed).to(dev)
    mask = torch.ones(kp.shape[1:3], dtype=torch.bool, device=dev)
    preds = torch.stack([
        lift_frames(model, kp[v], mask, views.seq_offsets, settings=settings).cpu()
        for v in range(kp.shape[0])
    ])
    if fit is not None:
        preds = _fit_clips(preds, kp.cpu(), views, fit)
    return evaluate_predictions(metric_scale(preds, views.skeleton, height_m), views)


def _fit_clips(preds: torch.Tensor, kp: torch.Tensor, views: EvalViews, fit: FitWeights) -> torch.Tensor:
    """:func:`lifting.refine.fit_track` of every clip of every view: ``preds (V, N, J, 3)``
    normalised lifts of ``kp (V, N, J, 2)`` px (all joints observed)."""
    out = preds.clone()
    mask = np.ones(kp.shape[2], bool)
    offs = views.seq_offsets
    for v in range(preds.shape[0]):
        for a, b in zip(offs[:-1], offs[1:]):
            if b > a:
                out[v, a:b] = torch.from_numpy(fit_track(preds[v, a:b].numpy(), kp[v, a:b].numpy(),
                                                         np.broadcast_to(mask, (b - a, len(mask))), weights=fit,
                                                         skeleton=views.skeleton))
    return out


def flat_baseline(clips: MocapClips | EvalViews, noise_px: float = 0.0, seed: int = 0,
                  height_m: float = DEFAULT_HEIGHT_M) -> dict:
    """Reference "lifter" that puts every joint at the root depth (zero depth offsets)."""
    views = clips if isinstance(clips, EvalViews) else eval_views(clips)
    kp = _noisy(views, noise_px, seed)
    mask = torch.ones(kp.shape[:-1], dtype=torch.bool)
    x, _ = normalize_2d(kp, mask, views.skeleton.root_index)
    flat = torch.cat([x, torch.zeros_like(x[..., :1])], dim=-1)
    return evaluate_predictions(metric_scale(flat, views.skeleton, height_m), views)
