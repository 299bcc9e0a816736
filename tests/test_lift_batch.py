"""Tracks lifted together (lifting/lift_batch.py via lift_tracks) give what lifting each track
alone gives: joints, uncertainty, runs and the lifted_by ranges, with and without the shared
clean pass (fps at the model's rate: shared; another rate: resampled, separate passes)."""
from pathlib import Path

import numpy as np
import pytest

from lifting.io.readers import read_detections
from lifting.io.tracks import Track
from lifting.lift import lift_track, lift_tracks, load_track_lifter
from lifting.lift_batch import _shares_clean_lift
from lifting.options import LiftOptions
from lifting.track import track

EXAMPLE = Path(__file__).resolve().parents[1] / "lifting" / "assets" / "example_track.json"


@pytest.fixture(scope="module")
def pieces():
    """The example track cut into 5 tracks of different lengths (one a single frame), with a gap."""
    t = track(read_detections(str(EXAMPLE), "coco")).tracks[0]
    cuts = [(0, 1), (1, 12), (12, 80), (80, 81), (90, 200)]
    return [Track(i, t.frame_ids[a:b], t.keypoints[a:b]) for i, (a, b) in enumerate(cuts)]


@pytest.mark.parametrize("fps, shared", [(30.0, True), (10.0, False)])
@pytest.mark.parametrize("flip", [True, False])
def test_lift_tracks_equals_one_track_at_a_time(pieces, fps, shared, flip):
    o = LiftOptions(flip=flip, uncertainty_samples=3)
    lifter, _, _ = load_track_lifter(o)
    assert _shares_clean_lift(lifter, fps) is shared
    together = lift_tracks(lifter, pieces, "coco17", fps, o)
    for t, res in zip(pieces, together):
        alone = lift_track(lifter, t, "coco17", fps, o)
        assert res.track_id == t.track_id and res.lifted_by == alone.lifted_by
        np.testing.assert_array_equal(res.frame_ids, alone.frame_ids)
        # a single window lifted alone takes torch's matrix-vector path: ~1e-7 m apart
        np.testing.assert_allclose(res.joints_3d, alone.joints_3d, atol=2e-6, rtol=0)
        np.testing.assert_allclose(res.joints_3d_std, alone.joints_3d_std, atol=2e-6, rtol=0)
        assert res.joints_3d_std.shape == res.joints_3d.shape[:2] and (res.joints_3d_std[:, 1:] > 0).all()


def test_shared_clean_pass_equals_separate_passes(pieces):
    """The one-call lift + uncertainty (clean lift shared) against the lift and the uncertainty
    run as separate model calls (what lift_track did before)."""
    from lifting.lift_batch import lift_prepared, lift_with_uncertainty, prepare_track, uncertainty_prepared
    from lifting.uncertainty import UncertaintySettings

    o = LiftOptions()
    lifter, _, _ = load_track_lifter(o)
    prep = [prepare_track(t, "coco17", o) for t in pieces]
    s = UncertaintySettings(4)
    shared, stds = lift_with_uncertainty(lifter, prep, 30.0, False, s)
    apart = lift_prepared(lifter, prep, 30.0, False)
    apart_std = uncertainty_prepared(lifter.unflipped(), prep, 30.0, False, s)
    for a, b, sa, sb in zip(shared, apart, stds, apart_std):
        np.testing.assert_allclose(a.joints_3d, b.joints_3d, atol=2e-6, rtol=0)
        np.testing.assert_allclose(sa, sb, atol=2e-6, rtol=0)
        assert a.lifted_by == b.lifted_by
