"""AGORA-style multi-person evaluation: match predicted people to ground-truth people in 2D,
then score detection (precision, recall, F1) and 3D accuracy on the matched people (MPJPE,
PA-MPJPE, MVE) and the F1-normalised errors NMJE / NMVE.

Protocol of AGORA (Patel et al., "AGORA: Avatars in Geography Optimized for Regression
Analysis", CVPR 2021, Sec. 4 "Evaluation", and its public ``agora_evaluation`` code): people of
one image are matched through their 2D keypoints; unmatched predictions are false positives,
unmatched ground-truth people false negatives (misses); MPJPE and MVE are computed after
aligning the pelvis (root) joint of prediction and ground truth, averaged per person and then
over all matched people; NMJE = MPJPE / F1 and NMVE = MVE / F1 with
``F1 = TP / (TP + (FP + FN) / 2)``.

Differences from the AGORA code, on purpose: the assignment is optimal (Hungarian,
Kuhn 1955 / Munkres 1957, :func:`scipy.optimize.linear_sum_assignment`) instead of greedy, and a
pair is accepted when its size-normalised 2D keypoint distance is below a threshold
(:data:`MATCH_THRESHOLD`) instead of AGORA's keypoint-box IoU >= 0.1 gate; invisible ground-truth
joints are left out of the 2D distance. PA-MPJPE (Procrustes-aligned, reusing
:func:`lifting.metrics.pa_mpjpe`) is reported as well. Units: metres in, millimetres out
(keys ending ``_mm``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from lifting.metrics import mpjpe, pa_mpjpe

__all__ = ["MATCH_THRESHOLD", "PersonSet", "Matching", "person_sizes", "match_people",
           "detection_scores", "evaluate_multiperson"]

#: Default match threshold on the normalised 2D cost (mean keypoint distance / GT size, where
#: the size is the GT box diagonal, about 1.08 x body height H for a standing person whose box
#: is 0.4 H wide). Our choice, not AGORA's: 0.2 accepts a prediction of the right person with a
#: mean 2D error up to about 0.22 H (37 cm on a 1.7 m person; an average keypoint at COCO
#: OKS = 0.5 is off by roughly 0.1 diagonal or less), yet stays below the cost of the same pose
#: predicted for a neighbour standing shoulder to shoulder (centres one shoulder width apart,
#: 0.26 H = 0.24 diagonal; body-segment proportions of Drillis & Contini 1966), so a missed
#: person is not "detected" by the prediction of the person next to them.
MATCH_THRESHOLD: float = 0.2


def _coords(x: Any, name: str) -> torch.Tensor:
    """Real-valued array (numpy/torch/list) as a floating tensor (integers become float64)."""
    t = torch.as_tensor(x)
    if t.dtype == torch.bool or t.is_complex():
        raise ValueError(f"{name} must hold real coordinates, got dtype {t.dtype}")
    return t if t.is_floating_point() else t.to(torch.float64)


def _shape_error(name: str, t: torch.Tensor, expected: str) -> ValueError:
    return ValueError(f"{name} must have shape {expected}, got {tuple(t.shape)}")


@dataclass(eq=False)
class PersonSet:
    """The people of one image (predicted or ground truth). Fields are converted to tensors.

    Attributes:
        keypoints_2d: ``(P, K, 2)`` image keypoints in pixels (used for matching). Ground-truth
            keypoints may be NaN at invisible joints; predicted ones must be finite.
        joints_3d: ``(P, J, 3)`` 3D joints in metres (camera or world frame, the same for
            prediction and ground truth; only root-relative positions are scored). ``K`` and ``J``
            may differ (e.g. COCO-17 keypoints, SMPL-24 joints).
        vertices: optional ``(P, V, 3)`` mesh vertices in metres, same frame as ``joints_3d``.
        visibility: optional ``(P, K)`` bool (or numeric, visible where ``> 0``, e.g. COCO flags
            0/1/2) of ground-truth keypoints usable for matching; ``None`` = all visible. Ignored
            for predictions.
        boxes: optional ``(P, 4)`` ``[x, y, w, h]`` boxes in pixels with ``w, h > 0``; for ground
            truth their diagonal is the person size of the matching cost. Ignored for predictions.

    Integer coordinate arrays are cast to float64; devices of numpy inputs are CPU.

    Raises:
        ValueError: a field with the wrong shape, an inconsistent person count ``P`` or keypoint
            count ``K``, non-real dtypes, NaN visibility, vertices and joints on different
            devices, or a box with a non-finite value or ``w <= 0`` / ``h <= 0``.
    """

    keypoints_2d: Any
    joints_3d: Any
    vertices: Any = None
    visibility: Any = None
    boxes: Any = None

    def __post_init__(self) -> None:
        kp = self.keypoints_2d = _coords(self.keypoints_2d, "keypoints_2d")
        if kp.dim() != 3 or kp.shape[-1] != 2 or kp.shape[1] == 0:
            raise _shape_error("keypoints_2d", kp, "(P, K>0, 2)")
        P, K = kp.shape[:2]
        j3 = self.joints_3d = _coords(self.joints_3d, "joints_3d")
        if j3.dim() != 3 or j3.shape[-1] != 3 or j3.shape[0] != P or j3.shape[1] == 0:
            raise _shape_error("joints_3d", j3, f"(P={P}, J>0, 3)")
        if self.vertices is not None:
            v = self.vertices = _coords(self.vertices, "vertices")
            if v.dim() != 3 or v.shape[-1] != 3 or v.shape[0] != P or v.shape[1] == 0:
                raise _shape_error("vertices", v, f"(P={P}, V>0, 3)")
            if v.device != j3.device:
                raise ValueError(f"vertices are on {v.device} but joints_3d on {j3.device}; expected one device")
        if self.visibility is not None:
            vis = torch.as_tensor(self.visibility)
            if tuple(vis.shape) != (P, K):
                raise _shape_error("visibility", vis, f"(P, K) = ({P}, {K})")
            if vis.dtype != torch.bool:
                if vis.is_floating_point() and bool(torch.isnan(vis).any()):
                    raise ValueError("visibility contains NaN; expected bool or 0/1/2 flags")
                vis = vis > 0
            self.visibility = vis
        if self.boxes is not None:
            b = self.boxes = _coords(self.boxes, "boxes")
            if tuple(b.shape) != (P, 4):
                raise _shape_error("boxes", b, f"(P, 4) = ({P}, 4) [x, y, w, h]")
            bad = ~torch.isfinite(b).all(-1) | (b[:, 2] <= 0) | (b[:, 3] <= 0)
            if bool(bad.any()):
                raise ValueError(f"boxes of people {torch.nonzero(bad).flatten().tolist()} are not "
                                 "finite with w > 0 and h > 0 (expected [x, y, w, h] in pixels)")

    @property
    def num_people(self) -> int:
        """``P``, the number of people."""
        return int(self.keypoints_2d.shape[0])

    def visible(self) -> torch.Tensor:
        """``(P, K)`` bool: keypoints usable for matching (all True without ``visibility``)."""
        if self.visibility is None:
            return torch.ones(self.keypoints_2d.shape[:2], dtype=torch.bool, device=self.keypoints_2d.device)
        return self.visibility.to(self.keypoints_2d.device)


@dataclass(eq=False)
class Matching:
    """Prediction-to-ground-truth assignment of one image (all indices into the PersonSets).

    Attributes:
        pred_indices: ``(M,)`` int64 matched prediction indices, sorted by ``gt_indices``.
        gt_indices: ``(M,)`` int64 matched ground-truth indices, increasing.
        costs: ``(M,)`` float64 normalised 2D costs of the matches (all ``< threshold``).
        false_positives: ``(FP,)`` int64 unmatched prediction indices, increasing.
        false_negatives: ``(FN,)`` int64 unmatched ground-truth indices (misses), increasing.
        cost_matrix: ``(P_pred, P_gt)`` float64 normalised costs, ``inf`` for an unmatchable
            ground-truth person (see :func:`match_people`).
    """

    pred_indices: np.ndarray
    gt_indices: np.ndarray
    costs: np.ndarray
    false_positives: np.ndarray
    false_negatives: np.ndarray
    cost_matrix: np.ndarray

    @property
    def tp(self) -> int:
        return int(self.gt_indices.size)

    @property
    def fp(self) -> int:
        return int(self.false_positives.size)

    @property
    def fn(self) -> int:
        return int(self.false_negatives.size)


def person_sizes(gt: PersonSet) -> np.ndarray:
    """Size of each ground-truth person, the normaliser of the matching cost.

    The box diagonal ``sqrt(w^2 + h^2)`` when ``gt.boxes`` is given, else the diagonal of the
    bounding box of the person's visible keypoints (0 with fewer than two distinct visible
    keypoints, NaN with none). Our convention (AGORA gates on box IoU instead, see module doc).

    Args:
        gt: ground-truth people, ``keypoints_2d (P, K, 2)`` in pixels.

    Returns:
        ``(P,)`` float64 numpy array, pixels.
    """
    if gt.boxes is not None:
        b = gt.boxes.detach().cpu().to(torch.float64).numpy()
        return np.hypot(b[:, 2], b[:, 3])
    kp = gt.keypoints_2d.detach().cpu().to(torch.float64).numpy()
    vis = gt.visible().cpu().numpy()
    lo = np.where(vis[..., None], kp, np.inf).min(axis=1)
    hi = np.where(vis[..., None], kp, -np.inf).max(axis=1)
    with np.errstate(invalid="ignore"):
        size = np.hypot(*(hi - lo).T)
    return np.where(vis.any(axis=1), size, np.nan)


def _check_2d(pred: PersonSet, gt: PersonSet) -> None:
    if not isinstance(pred, PersonSet) or not isinstance(gt, PersonSet):
        raise ValueError(f"pred and gt must be PersonSet, got {type(pred).__name__} and {type(gt).__name__}")
    kp_p, kp_g = pred.keypoints_2d, gt.keypoints_2d
    if kp_p.shape[1] != kp_g.shape[1]:
        raise ValueError(f"pred has K={kp_p.shape[1]} keypoints per person but gt has K={kp_g.shape[1]}")
    if not bool(torch.isfinite(kp_p).all()):
        raise ValueError(f"pred keypoints_2d contains {int((~torch.isfinite(kp_p)).sum())} non-finite value(s); "
                         "predictions must be finite (drop or fix such people before evaluating)")
    bad = gt.visible() & ~torch.isfinite(kp_g).all(-1)
    if bool(bad.any()):
        raise ValueError(f"gt keypoints_2d has {int(bad.sum())} visible keypoint(s) with non-finite "
                         "coordinates; mark them invisible in gt.visibility")


def match_people(pred: PersonSet, gt: PersonSet, threshold: float = MATCH_THRESHOLD) -> Matching:
    """Match the predicted people of one image to its ground-truth people in 2D.

    Cost of a pair ``(p, g)``: mean over the keypoints visible in ground truth ``g`` of the
    pixel distance ``||kp_pred[p, k] - kp_gt[g, k]||``, divided by the size of ``g``
    (:func:`person_sizes`). Pairs with ``cost >= threshold`` are forbidden; the Hungarian
    algorithm (:func:`scipy.optimize.linear_sum_assignment`) then finds the assignment with the
    most allowed pairs and, among those, the smallest total cost (forbidden pairs get a cost
    larger than any sum of allowed ones and are dropped afterwards). Unmatched predictions are
    false positives, unmatched ground-truth people false negatives. A ground-truth person with no
    visible keypoint, or of zero size (one visible keypoint and no box), cannot be matched (cost
    ``inf``): it is always a false negative. Images with no prediction and/or no ground truth
    are fine. Protocol: AGORA (Patel et al. CVPR 2021, Sec. 4), with the changes in the module doc.

    Args:
        pred: predicted people, ``keypoints_2d (P_pred, K, 2)`` pixels, finite.
        gt: ground-truth people, ``keypoints_2d (P_gt, K, 2)`` pixels, optional visibility/boxes.
        threshold: largest normalised cost (exclusive) of a match, finite and > 0.

    Returns:
        :class:`Matching`.

    Raises:
        ValueError: non-PersonSet inputs, different ``K``, non-finite predicted keypoints,
            non-finite visible ground-truth keypoints, or a bad threshold.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.integer, np.floating)) \
            or not (math.isfinite(threshold) and threshold > 0):
        raise ValueError(f"threshold must be a finite number > 0 (normalised cost), got {threshold!r}")
    threshold = float(threshold)
    _check_2d(pred, gt)
    kp_p = pred.keypoints_2d.detach().cpu().to(torch.float64).numpy()  # (Pp, K, 2)
    kp_g = gt.keypoints_2d.detach().cpu().to(torch.float64).numpy()  # (Pg, K, 2)
    vis = gt.visible().cpu().numpy()  # (Pg, K)
    kp_g = np.where(vis[..., None], kp_g, 0.0)  # invisible keypoints may be NaN/inf
    dist = np.linalg.norm(kp_p[:, None] - kp_g[None], axis=-1)  # (Pp, Pg, K)
    n_vis = vis.sum(-1)
    mean_dist = (dist * vis[None]).sum(-1) / np.maximum(n_vis, 1)
    size = person_sizes(gt)
    ok = (n_vis > 0) & (size > 0)  # NaN size compares False
    cost = np.where(ok[None], mean_dist / np.where(ok, size, 1.0)[None], np.inf)

    allowed = cost < threshold
    big = threshold * (min(cost.shape) + 1)  # > any total of allowed costs
    rows, cols = linear_sum_assignment(np.where(allowed, cost, big))
    keep = allowed[rows, cols]
    rows, cols = rows[keep], cols[keep]
    order = np.argsort(cols)
    rows, cols = rows[order].astype(np.int64), cols[order].astype(np.int64)
    return Matching(
        pred_indices=rows, gt_indices=cols, costs=cost[rows, cols],
        false_positives=np.setdiff1d(np.arange(cost.shape[0]), rows).astype(np.int64),
        false_negatives=np.setdiff1d(np.arange(cost.shape[1]), cols).astype(np.int64),
        cost_matrix=cost)


def detection_scores(tp: int, fp: int, fn: int) -> dict[str, float]:
    """Precision, recall and F1 from summed counts (AGORA, Patel et al. CVPR 2021, Sec. 4).

    ``precision = TP / (TP + FP)`` (NaN without predictions), ``recall = TP / (TP + FN)`` (NaN
    without ground truth), ``F1 = 2 TP / (2 TP + FP + FN)`` (the harmonic mean; 0 when there is
    no true positive, NaN only when all three counts are 0).

    Raises:
        ValueError: a negative count.
    """
    if min(tp, fp, fn) < 0:
        raise ValueError(f"counts must be >= 0, got tp={tp}, fp={fp}, fn={fn}")

    def ratio(a: int, b: int) -> float:
        return a / b if b > 0 else float("nan")

    return {"precision": ratio(tp, tp + fp), "recall": ratio(tp, tp + fn), "f1": ratio(2 * tp, 2 * tp + fp + fn)}


def _check_3d(ps: PersonSet, role: str) -> None:
    for name in ("joints_3d", "vertices"):
        x = getattr(ps, name)
        if x is not None and not bool(torch.isfinite(x).all()):
            raise ValueError(f"{role} {name} contains {int((~torch.isfinite(x)).sum())} "
                             "non-finite value(s); expected finite metres")


def _normalised(err: float, f1: float) -> float:
    if math.isnan(f1):
        return float("nan")
    return err / f1 if f1 > 0 else float("inf")


def evaluate_multiperson(preds: Sequence[PersonSet], gts: Sequence[PersonSet],
                         threshold: float = MATCH_THRESHOLD, root_index: int = 0) -> dict[str, Any]:
    """AGORA-style evaluation of a dataset of multi-person images.

    Per image, :func:`match_people`; TP/FP/FN are summed over images and turned into precision,
    recall and F1 (:func:`detection_scores`). On each matched pair (Patel et al. CVPR 2021,
    Sec. 4): MPJPE after subtracting each person's root joint ``joints_3d[:, root_index]``
    (:func:`lifting.metrics.mpjpe`); PA-MPJPE after a similarity Procrustes fit
    (:func:`lifting.metrics.pa_mpjpe`, Umeyama TPAMI 1991); MVE, the mean vertex distance after
    subtracting each person's root *joint* from its vertices. Errors are averaged per person,
    then over all matched people. NMJE = MPJPE / F1, NMVE = MVE / F1: ``inf`` when F1 = 0 (people
    or predictions exist but nothing matched), NaN when F1 is NaN (no people and no predictions).

    Args:
        preds: per image, the predicted people (finite ``keypoints_2d``, ``joints_3d``, vertices).
        gts: per image, the ground-truth people (finite ``joints_3d``/vertices; ``keypoints_2d``
            finite where visible). ``J`` must match the prediction's; vertices must be given on
            both sides or neither (in every image that has both predictions and people), with the
            same ``V``.
        threshold: match threshold on the normalised 2D cost (:data:`MATCH_THRESHOLD`).
        root_index: index of the pelvis/root joint in ``joints_3d`` (0 for SMPL / AGORA).

    Returns:
        Dict with ``precision``, ``recall``, ``f1`` (fractions), ``mpjpe_mm``, ``pa_mpjpe_mm``,
        ``mve_mm`` (NaN without matches; ``mve_mm`` is None when no vertices are given),
        ``nmje_mm``, ``nmve_mm`` (None without vertices), counts ``tp``, ``fp``, ``fn``,
        ``images``; ``matches``: the per-image :class:`Matching` list; ``per_person``: dict of
        ``(M,)`` numpy arrays over all matches: ``image``, ``pred``, ``gt`` indices and
        ``mpjpe_mm``, ``pa_mpjpe_mm`` and (with vertices) ``mve_mm``.

    Raises:
        ValueError: different numbers of images, non-PersonSet items, a bad ``root_index``,
            mismatched ``K``/``J``/``V`` or devices, vertices on one side only or in only some
            images, non-finite predictions or 3D ground truth (plus :func:`match_people`'s errors).
    """
    if len(preds) != len(gts):
        raise ValueError(f"got predictions for {len(preds)} images but ground truth for {len(gts)}")
    if isinstance(root_index, bool) or not isinstance(root_index, (int, np.integer)):
        raise ValueError(f"root_index must be an int, got {root_index!r}")
    matches: list[Matching] = []
    rows: dict[str, list] = {k: [] for k in ("image", "pred", "gt", "mpjpe", "pa_mpjpe", "mve")}
    with_verts: set[bool] = set()
    for i, (pred, gt) in enumerate(zip(preds, gts)):
        try:
            m = match_people(pred, gt, threshold)
            r = _check_pair(pred, gt, root_index)
        except ValueError as e:
            raise ValueError(f"image {i}: {e}") from None
        matches.append(m)
        if m.tp == 0:
            continue
        pi = torch.as_tensor(m.pred_indices, device=pred.joints_3d.device)
        gi = torch.as_tensor(m.gt_indices, device=gt.joints_3d.device)
        dtype = torch.promote_types(pred.joints_3d.dtype, gt.joints_3d.dtype)
        jp, jg = pred.joints_3d[pi].to(dtype), gt.joints_3d[gi].to(dtype)  # (M, J, 3)
        root_p, root_g = jp[:, r:r + 1], jg[:, r:r + 1]  # (M, 1, 3)
        rows["mpjpe"].append(mpjpe(jp - root_p, jg - root_g))
        rows["pa_mpjpe"].append(pa_mpjpe(jp, jg))
        with_verts.add(gt.vertices is not None)
        if gt.vertices is not None:
            vp, vg = pred.vertices[pi].to(dtype), gt.vertices[gi].to(dtype)
            rows["mve"].append(mpjpe(vp - root_p, vg - root_g))
        rows["image"].append(np.full(m.tp, i, np.int64))
        rows["pred"].append(m.pred_indices)
        rows["gt"].append(m.gt_indices)
    if len(with_verts) > 1:
        raise ValueError("vertices are given in some images with matches but not in others")
    has_verts = with_verts == {True} or (not with_verts and any(g.vertices is not None for g in gts))

    return _summarise(matches, rows, has_verts)


def _check_pair(pred: PersonSet, gt: PersonSet, root_index: int) -> int:
    """The per-image checks of :func:`evaluate_multiperson` (its Raises); returns the root
    joint's index in ``[0, J)``."""
    J = gt.joints_3d.shape[1]
    if pred.joints_3d.shape[1] != J:
        raise ValueError(f"pred has J={pred.joints_3d.shape[1]} joints but gt has J={J}")
    if not -J <= root_index < J:
        raise ValueError(f"root_index {root_index} is out of range for J={J} joints")
    _check_3d(pred, "pred")
    _check_3d(gt, "gt")
    if pred.num_people and gt.num_people:
        if (pred.vertices is None) != (gt.vertices is None):
            side = "gt" if pred.vertices is None else "pred"
            raise ValueError(f"vertices given for {side} only; give them on both sides or neither")
        if pred.vertices is not None and pred.vertices.shape[1] != gt.vertices.shape[1]:
            raise ValueError(f"pred has V={pred.vertices.shape[1]} vertices but gt has V={gt.vertices.shape[1]}")
        if pred.joints_3d.device != gt.joints_3d.device:
            raise ValueError(f"pred is on {pred.joints_3d.device} but gt on {gt.joints_3d.device}")
    return int(root_index) % J


def _summarise(matches: list[Matching], rows: dict[str, list], has_verts: bool) -> dict[str, Any]:
    """The result dict of :func:`evaluate_multiperson` from its per-image ``matches`` and the
    per-match ``rows`` (``image``/``pred``/``gt`` index arrays, ``mpjpe``/``pa_mpjpe``/``mve``
    tensors in metres)."""
    tp, fp, fn = (sum(getattr(m, k) for m in matches) for k in ("tp", "fp", "fn"))
    out: dict[str, Any] = detection_scores(tp, fp, fn)
    per_person: dict[str, np.ndarray] = {}
    for k in ("image", "pred", "gt"):
        per_person[k] = np.concatenate(rows[k]) if rows[k] else np.zeros(0, np.int64)
    for k in ("mpjpe", "pa_mpjpe") + (("mve",) if has_verts else ()):
        vals = [t.detach().cpu().to(torch.float64).numpy() for t in rows[k]]
        per_person[f"{k}_mm"] = 1000.0 * (np.concatenate(vals) if vals else np.zeros(0))
        out[f"{k}_mm"] = float(per_person[f"{k}_mm"].mean()) if tp else float("nan")
    if not has_verts:
        out["mve_mm"] = None
    out["nmje_mm"] = _normalised(out["mpjpe_mm"], out["f1"])
    out["nmve_mm"] = None if out["mve_mm"] is None else _normalised(out["mve_mm"], out["f1"])
    out.update(tp=tp, fp=fp, fn=fn, images=len(matches), matches=matches, per_person=per_person)
    return out
