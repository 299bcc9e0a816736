"""Savitzky-Golay smoothing per gap-free run: reduces jitter, respects masks and gaps."""
from __future__ import annotations

import numpy as np
import pytest

from lifting.smoothing import smooth_tracks


def _walk(T=120, J=4, seed=0):
    t = np.arange(T)[:, None, None]
    clean = np.concatenate([np.sin(0.05 * t + np.arange(J)[None, :, None]), np.cos(0.03 * t) * np.ones((1, J, 1))], -1)
    noisy = clean + np.random.default_rng(seed).normal(0, 0.05, clean.shape)
    return clean, noisy


def test_savgol_reduces_jitter():
    clean, noisy = _walk()
    sm = smooth_tracks(noisy, window=9)
    err_noisy = np.abs(noisy - clean).mean()
    err_sm = np.abs(sm - clean).mean()
    assert err_sm < 0.6 * err_noisy  # measured ~0.45x
    assert sm.shape == noisy.shape and sm.dtype == noisy.dtype
    np.testing.assert_array_equal(smooth_tracks(noisy, method="none"), noisy)


def test_masked_entries_and_gaps_do_not_leak():
    clean, noisy = _walk(T=40, J=2)
    mask = np.ones((40, 2), bool)
    mask[10:12, 0] = False
    noisy[10:12, 0] = 1e6  # placeholder values of missing joints must not spread
    sm = smooth_tracks(noisy, mask)
    assert np.abs(sm[mask]).max() < 10
    np.testing.assert_array_equal(sm[~mask], noisy[~mask])
    # a frame gap splits the run: a jump across it is not smoothed away
    x = np.zeros((20, 1, 2))
    x[10:] = 5.0
    frames = np.concatenate([np.arange(10), np.arange(100, 110)])
    out = smooth_tracks(x, frame_ids=frames, window=5)
    np.testing.assert_allclose(out, x, atol=1e-9)
    # short runs are left alone
    np.testing.assert_array_equal(smooth_tracks(noisy[:3]), noisy[:3])


def test_bad_arguments():
    _, noisy = _walk(T=20)
    with pytest.raises(ValueError, match="method"):
        smooth_tracks(noisy, method="kalman")
    with pytest.raises(ValueError, match="odd window"):
        smooth_tracks(noisy, window=4)
    with pytest.raises(ValueError, match="NaN"):
        bad = noisy.copy()
        bad[3, 1, 0] = np.nan
        smooth_tracks(bad)
    with pytest.raises(ValueError, match="mask"):
        smooth_tracks(noisy, np.ones((20, 3), bool))
