"""Optional temporal smoothing of keypoint tracks (2D input or 3D output), per gap-free run.

``savgol``: Savitzky-Golay filter (Savitzky & Golay, Anal. Chem. 1964) from
``scipy.signal.savgol_filter`` — a local polynomial fit that removes jitter while keeping
peaks better than a moving average. Applied per joint and coordinate, separately on every
run of consecutive frames in which the joint is observed (masked frames are never used and
never filled), so gaps and id switches do not leak across.
"""
from __future__ import annotations

import numpy as np

__all__ = ["smooth_tracks", "SMOOTHING_METHODS"]

SMOOTHING_METHODS = ("none", "savgol")


def _runs(ok: np.ndarray) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` of True runs in a 1-D bool array."""
    d = np.diff(np.concatenate([[0], ok.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def smooth_tracks(x: np.ndarray, mask: np.ndarray | None = None, frame_ids: np.ndarray | None = None,
                  method: str = "savgol", window: int = 9, polyorder: int = 2) -> np.ndarray:
    """Smooth ``x (T, J, C)`` over time.

    Args:
        x: ``(T, J, C)`` positions (pixels or metres), frames in time order.
        mask: ``(T, J)`` bool, observed joints (default all). Unobserved entries are returned
            unchanged and do not influence their neighbours.
        frame_ids: ``(T,)`` frame indices; a jump > 1 starts a new run (default consecutive).
        method: ``"none"`` or ``"savgol"``.
        window: Savitzky-Golay window in frames (odd, > polyorder); runs shorter than it
            use the largest odd window that fits, and runs of fewer than ``polyorder + 2``
            frames are left as they are.
        polyorder: polynomial order.

    Returns:
        A smoothed copy, same shape and dtype.

    Raises:
        ValueError: unknown method, bad window/order, shape mismatch, or non-finite observed values.
    """
    if method not in SMOOTHING_METHODS:
        raise ValueError(f"unknown smoothing method {method!r}; choose one of {SMOOTHING_METHODS}")
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"smooth_tracks expects (T, J, C), got shape {x.shape}")
    T, J, _ = x.shape
    mask = np.ones((T, J), bool) if mask is None else np.asarray(mask, bool)
    if mask.shape != (T, J):
        raise ValueError(f"mask must have shape {(T, J)}, got {mask.shape}")
    if not np.isfinite(x[mask]).all():
        raise ValueError("smooth_tracks: observed values contain NaN/inf")
    out = x.copy()
    if method == "none" or T == 0:
        return out
    from scipy.signal import savgol_filter  # here: importing scipy.signal costs ~1 s (CLI start-up)
    if window < 3 or window % 2 == 0 or polyorder < 0 or polyorder >= window:
        raise ValueError(f"savgol needs an odd window >= 3 larger than polyorder, got window={window}, "
                         f"polyorder={polyorder}")
    contiguous = np.ones(T, bool)
    if frame_ids is not None:
        f = np.asarray(frame_ids)
        if f.shape != (T,):
            raise ValueError(f"frame_ids must have shape ({T},), got {f.shape}")
        contiguous[1:] = np.diff(f) == 1
    for j in range(J):
        ok = mask[:, j].copy()
        # a frame gap ends a run even if the joint is visible on both sides
        breaks = ~contiguous
        for a, b in _runs(ok):
            cuts = [a] + [t for t in range(a + 1, b) if breaks[t]] + [b]
            for s, e in zip(cuts[:-1], cuts[1:]):
                n = e - s
                w = min(window, n if n % 2 else n - 1)
                if n < polyorder + 2 or w <= polyorder:
                    continue
                out[s:e, j] = savgol_filter(x[s:e, j], w, polyorder, axis=0, mode="interp")
    return out
