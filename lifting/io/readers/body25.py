"""BODY_25 or BODY_25B?  OpenPose writes both with 25 joints and no layout name; they are told
apart by geometry, per file, and a minority layout is converted to the majority's by joint name.

Sources: OpenPose ``doc/02_output.md`` (BODY_25: Neck and MidHip are the middles of the
shoulders and hips) and openpose_train's ``experimental_models`` README (BODY_25B: COCO order
plus UpperNeck and HeadTop).
"""

from __future__ import annotations

import warnings as _warnings

import numpy as np

from ...skeletons import get_skeleton
from ..tracks import TrackFormatError
from .common import DetectionRows


#: median geometry residual below which a BODY_25 / BODY_25B hypothesis is accepted
_LAYOUT_TOLERANCE = 0.3



def _residual(kp: np.ndarray, j: int, a: int, b: int, scale: np.ndarray) -> np.ndarray:
    """``(N,)`` distance of joint j from the midpoint of a and b over ``scale``; NaN where any
    of the three is undetected."""
    seen = (kp[:, [j, a, b], 2] > 0.05).all(axis=1)
    d = np.linalg.norm(kp[:, j, :2] - 0.5 * (kp[:, a, :2] + kp[:, b, :2]), axis=1)
    return np.where(seen, d / scale, np.nan)



def _layout_residuals(kp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per detection of 25-joint OpenPose keypoints ``(N, 25, 3)``: how far the BODY_25 and
    the BODY_25B relations are from holding, ``(N,)`` each (NaN where unseen).

    BODY_25 has a Neck (1) at the middle of the shoulders (2, 5) and a MidHip (8) at the middle
    of the hips (9, 12) (openpose doc/02_output.md).  BODY_25B has COCO order with an UpperNeck
    (17) between the mid-shoulder point and the nose (0) (openpose_train experimental_models
    README).  Residuals are in units of max(width of the pair, 0.2 x the person's height)."""
    kp = kp.astype(np.float64)
    vis = kp[..., 2] > 0.05
    ys = np.where(vis, kp[..., 1], np.nan)
    with np.errstate(invalid="ignore"), _warnings.catch_warnings():
        _warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: no usable detection
        height = np.nanmax(ys, axis=1) - np.nanmin(ys, axis=1)
        floor = np.maximum(0.2 * np.nan_to_num(height), 1.0)

        def scale(a, b):
            return np.maximum(np.linalg.norm(kp[:, a, :2] - kp[:, b, :2], axis=1), floor)

        e25 = np.nanmean(np.stack([_residual(kp, 1, 2, 5, scale(2, 5)), _residual(kp, 8, 9, 12, scale(9, 12))]), 0)
    mid = kp.copy()
    mid[:, 5, :2] = 0.5 * (kp[:, 5, :2] + kp[:, 6, :2])
    mid[:, 5, 2] = np.minimum(kp[:, 5, 2], kp[:, 6, 2])
    return e25, _residual(mid, 17, 5, 0, scale(5, 6))



def _layout_of(e25: np.ndarray, e25b: np.ndarray) -> tuple[str | None, float, float]:
    """The layout whose median residual is below :data:`_LAYOUT_TOLERANCE` while the other's is
    not (None when both or neither fit), and the two medians."""
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore", RuntimeWarning)
        m25, m25b = float(np.nanmedian(e25)) if e25.size else np.nan, float(np.nanmedian(e25b)) if e25b.size else np.nan
    fits = {"body25": m25 < _LAYOUT_TOLERANCE, "body25b": m25b < _LAYOUT_TOLERANCE}
    return (next(k for k, v in fits.items() if v) if sum(fits.values()) == 1 else None), m25, m25b



def _body25_variant(kp: np.ndarray, source: str) -> str:
    """``"body25"`` or ``"body25b"`` for 25-joint OpenPose keypoints ``(N, 25, 3)``, by geometry
    (:func:`_layout_residuals`, first 5,000 detections).

    Raises:
        TrackFormatError: both or neither hypothesis fits (asks for ``--format``).
    """
    layout, m25, m25b = _layout_of(*_layout_residuals(kp[:5000]))
    if layout is not None:
        return layout
    raise TrackFormatError(
        f"{source}: 25 joints per person, but the geometry does not tell BODY_25 from BODY_25B (median residual "
        f"of Neck/MidHip at mid-shoulders/mid-hips: {m25:.2f}; of UpperNeck between shoulders and nose: "
        f"{m25b:.2f}; a layout fits below {_LAYOUT_TOLERANCE}); pass --format body25 or --format body25b")



#: BODY_25B joint (by name) for each BODY_25 joint; Neck and MidHip are the middles of the
#: shoulders and of the hips (how BODY_25 defines them)
_B_TO_25 = {"neck": ("left_shoulder", "right_shoulder"), "mid_hip": ("left_hip", "right_hip")}



def _convert_25(kp: np.ndarray, src: str, dst: str) -> np.ndarray:
    """``(N, 25, 3)`` keypoints of layout ``src`` in the joint order of ``dst`` (BODY_25 <->
    BODY_25B, by joint name): BODY_25's Neck / MidHip from the shoulders / hips (the lower
    score), BODY_25B's UpperNeck / HeadTop missing (score 0)."""
    s, d = get_skeleton(src), get_skeleton(dst)
    out = np.zeros_like(kp)
    for j, name in enumerate(d.joint_names):
        if name in s.joint_names:
            out[:, j] = kp[:, s.index(name)]
        elif name in _B_TO_25:
            a, b = (kp[:, s.index(n)] for n in _B_TO_25[name])
            seen = (a[:, 2] > 0) & (b[:, 2] > 0)
            out[:, j, :2] = np.where(seen[:, None], 0.5 * (a[:, :2] + b[:, :2]), 0.0)
            out[:, j, 2] = np.where(seen, np.minimum(a[:, 2], b[:, 2]), 0.0)
    return out



def resolve_25(dets: DetectionRows, forced: str | None, source: str, warnings: list[str]) -> str:
    """BODY_25 or BODY_25B for a 25-joint OpenPose input, decided per file: files of the other
    layout than the majority are converted to it (:func:`_convert_25`) with a warning; a forced
    ``--format`` wins but is warned about when the geometry says otherwise."""
    n = len(dets)
    kp, doc = dets.keypoints[:n], dets.loc[:n, 0]
    e25, e25b = _layout_residuals(kp)
    per_file = {}
    for d in np.unique(doc):  # a file decides only when its geometry is clear (few people: noisy)
        rows = doc == d
        layout, m25, m25b = _layout_of(e25[rows], e25b[rows])
        own, other = (m25, m25b) if layout == "body25" else (m25b, m25)
        clear = layout is not None and own < _LAYOUT_TOLERANCE / 2 and other > 2 * _LAYOUT_TOLERANCE
        per_file[int(d)] = layout if clear else None
    counts = {k: sum(v == k for v in per_file.values()) for k in ("body25", "body25b")}
    if forced is not None:
        other = "body25b" if forced == "body25" else "body25"
        if counts[other] > counts[forced]:
            warnings.append(f"--format {forced}, but the geometry of {counts[other]} of {len(per_file)} file(s) "
                            f"fits {other.upper().replace('BODY', 'BODY_')}: read as {forced} as asked")
        return forced
    if not counts["body25"] and not counts["body25b"]:
        return _body25_variant(kp, source)  # no single file decides: the whole input (or the error)
    major = "body25" if counts["body25"] >= counts["body25b"] else "body25b"
    minor = "body25b" if major == "body25" else "body25"
    if counts[minor]:
        convert = np.isin(doc, [d for d, v in per_file.items() if v == minor])
        dets.keypoints[:n][convert] = _convert_25(kp[convert], minor, major)
        warnings.append(f"mixed OpenPose layouts: {counts[major]} file(s) BODY_{major[4:].upper()} and "
                        f"{counts[minor]} BODY_{minor[4:].upper()} (by geometry); the {counts[minor]} were "
                        f"converted to BODY_{major[4:].upper()} by joint name")
    return major

