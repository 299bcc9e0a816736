"""Tests for lifting.evaluate, lifting.inference and ``posenet3d evaluate``."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from lifting.cli import main
from lifting.data import content_label, eval_views, load_mocap_npz, split_clips
from lifting.evaluate import evaluate_lifter, evaluate_predictions, flat_baseline
from lifting.geometry import normalize_2d
from lifting.inference import HEIGHT_PROXY_FRACTION, InferenceSettings, lift_frames, metric_scale, window_indices
from lifting.skeletons import CANON16
from lifting.models.teacher import Lifter
from lifting.models.checkpoint import save_checkpoint

METRIC_KEYS = {"mpjpe_mm", "n_mpjpe_mm", "pa_mpjpe_mm", "pck3d", "auc", "n"}


@pytest.fixture(scope="module")
def clips(tiny_mocap_npz):
    c = load_mocap_npz(tiny_mocap_npz)
    return c.select([0, 3, 6, 10])  # walk, bow, walk, kick


@pytest.fixture(scope="module")
def views(clips):
    return eval_views(clips)


@pytest.fixture(scope="module")
def random_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    m = Lifter(16, window=1, width=32, n_blocks=1)
    return save_checkpoint({"model": m.state_dict(), "model_config": m.config, "kind": "teacher"},
                           tmp_path_factory.mktemp("eval") / "rand.pt")


def _finite(res):
    for block in [res["overall"], *res["per_content"].values()]:
        assert set(block) == METRIC_KEYS
        assert all(math.isfinite(v) for v in block.values()), block


def test_flat_baseline(clips, views):
    res = flat_baseline(clips)
    _finite(res)
    assert set(res["per_content"]) == {"walk", "bow", "kick"}
    assert res["overall"]["n"] == 4 * len(clips.joints)
    assert res["per_content"]["walk"]["n"] == 4 * 2 * 40
    # errors are positive (a flat pose is wrong) but bounded (metres-scale poses)
    o = res["overall"]
    assert 0 < o["pa_mpjpe_mm"] <= o["n_mpjpe_mm"] + 1e-6
    assert o["mpjpe_mm"] < 1000
    assert 0 <= o["pck3d"] <= 100 and 0 <= o["auc"] <= 100
    # precomputed views give the same result; noise changes it deterministically
    assert flat_baseline(views)["overall"] == pytest.approx(o)
    n1 = flat_baseline(views, noise_px=5, seed=1)["overall"]
    assert n1 == pytest.approx(flat_baseline(views, noise_px=5, seed=1)["overall"])
    assert n1["pa_mpjpe_mm"] != pytest.approx(o["pa_mpjpe_mm"])


def test_evaluate_predictions_oracle_is_perfect(views):
    res = evaluate_predictions(torch.from_numpy(views.joints_3d), views)
    _finite(res)
    for block in [res["overall"], *res["per_content"].values()]:
        assert block["mpjpe_mm"] == pytest.approx(0, abs=1e-6)
        assert block["n_mpjpe_mm"] == pytest.approx(0, abs=1e-3)
        assert block["pa_mpjpe_mm"] == pytest.approx(0, abs=1e-2)
        assert block["pck3d"] == pytest.approx(100)
        assert block["auc"] == pytest.approx(100)
    assert res["overall"]["n"] == views.joints_3d.shape[0] * views.joints_3d.shape[1]


def test_evaluate_predictions_scaled_oracle(views):
    """A 10 % too large oracle: N-MPJPE and PA-MPJPE still 0, MPJPE = 10 % of the mean joint norm."""
    gt = torch.from_numpy(views.joints_3d)
    res = evaluate_predictions(gt * 1.1, views)["overall"]
    expected = 0.1 * float(gt.norm(dim=-1).mean()) * 1000
    assert res["mpjpe_mm"] == pytest.approx(expected, rel=1e-3)
    assert res["n_mpjpe_mm"] == pytest.approx(0, abs=1e-2)
    assert res["pa_mpjpe_mm"] == pytest.approx(0, abs=1e-2)


def test_evaluate_lifter_random_model(clips, random_ckpt):
    from lifting.models.lifters import load_lifter

    model, _ = load_lifter(random_ckpt)
    res = evaluate_lifter(model, clips)
    _finite(res)
    assert set(res["per_content"]) == {content_label(str(n)) for n in clips.seq_names}
    assert res["overall"]["n"] == 4 * len(clips.joints)


def test_cli_evaluate(tiny_mocap_npz, random_ckpt, tmp_path, capsys):
    out = tmp_path / "res" / "out.json"
    rc = main(["evaluate", str(random_ckpt), "--data", str(tiny_mocap_npz), "--split", "all",
               "--noise-px", "5", "-o", str(out)])
    stdout = capsys.readouterr().out
    assert rc == 0
    assert "PA-MPJPE" in stdout and "saved:" in stdout
    res = json.loads(out.read_text())
    assert res["split"] == "all" and res["clips"] == 12 and res["frames"] == 480
    assert res["kind"] == "teacher"
    labels = {content_label(str(n)) for n in load_mocap_npz(tiny_mocap_npz).seq_names}
    for key in ("gt_2d", "noise_5px"):
        assert set(res[key]) == {"overall", "per_content"}
        assert set(res[key]["per_content"]) == labels
        assert set(res[key]["overall"]) == METRIC_KEYS
        assert res[key]["overall"]["n"] == 4 * 480
        assert all(math.isfinite(v) for v in res[key]["overall"].values())
    assert res["gt_2d"]["overall"] != res["noise_5px"]["overall"]


def test_cli_evaluate_test_split_only(tiny_mocap_npz, random_ckpt, tmp_path, capsys):
    out = tmp_path / "t.json"
    assert main(["evaluate", str(random_ckpt), "--data", str(tiny_mocap_npz), "-o", str(out)]) == 0
    capsys.readouterr()
    res = json.loads(out.read_text())
    assert res["split"] == "test" and res["clips"] == 3
    assert "noise_5px" not in res and "gt_2d" in res


def test_cli_evaluate_errors(tiny_mocap_npz, random_ckpt, tmp_path, capsys):
    rc = main(["evaluate", str(tmp_path / "none.pt"), "--data", str(tiny_mocap_npz)])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error:") and "checkpoint not found" in err
    rc = main(["evaluate", str(random_ckpt), "--data", str(tmp_path / "none.npz")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error:") and "none.npz" in err
    # a split with no clips is an error, not empty metrics
    raw = dict(np.load(tiny_mocap_npz))
    keep = split_clips(raw["seq_names"], "train")
    names = raw["seq_names"][keep]
    joints = np.concatenate([raw["joints"][raw["seq_offsets"][k]:raw["seq_offsets"][k + 1]] for k in keep])
    raw.update(joints=joints, seq_names=names, fps=raw["fps"][keep],
               seq_offsets=np.arange(0, len(joints) + 1, 40))
    p = tmp_path / "trainonly.npz"
    np.savez(p, **raw)
    rc = main(["evaluate", str(random_ckpt), "--data", str(p), "--split", "test", "-o", str(tmp_path / "x.json")])
    err = capsys.readouterr().err
    assert rc == 2 and "no clips" in err
    assert not (tmp_path / "x.json").exists()


# --------------------------------------------------------------------------- inference


def test_window_indices_clamped_inside_clips():
    idx = window_indices(np.array([0, 3, 8, 9]), 5)
    assert idx.shape == (9, 5) and idx.dtype == np.int64
    np.testing.assert_array_equal(idx[0], [0, 0, 0, 1, 2])
    np.testing.assert_array_equal(idx[2], [0, 1, 2, 2, 2])
    np.testing.assert_array_equal(idx[3], [3, 3, 3, 4, 5])
    np.testing.assert_array_equal(idx[5], [3, 4, 5, 6, 7])
    np.testing.assert_array_equal(idx[7], [5, 6, 7, 7, 7])
    np.testing.assert_array_equal(idx[8], [8] * 5)  # one-frame clip
    np.testing.assert_array_equal(idx[:, 2], np.arange(9))  # centre = the frame itself
    # even window: output frame is index T // 2
    idx4 = window_indices(np.array([0, 6]), 4)
    np.testing.assert_array_equal(idx4[:, 2], np.arange(6))
    np.testing.assert_array_equal(idx4[0], [0, 0, 0, 1])
    np.testing.assert_array_equal(window_indices(np.array([0, 4]), 1)[:, 0], np.arange(4))


def test_window_indices_never_leave_clip():
    offsets = np.array([0, 1, 5, 5, 17, 20])  # includes an empty clip
    idx = window_indices(offsets, 9)
    clip = np.repeat(np.arange(5), np.diff(offsets))
    for n in range(20):
        assert np.all(clip[idx[n]] == clip[n])


def _pose(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(16, 3, generator=g, dtype=torch.float64)


def _chain(p):
    j = lambda n: p[..., CANON16.index(n), :]  # noqa: E731
    seg = lambda a, b: (j(a) - j(b)).norm(dim=-1)  # noqa: E731
    legs = 0.5 * (seg("l_ankle", "l_knee") + seg("l_knee", "l_hip") + seg("r_ankle", "r_knee") + seg("r_knee", "r_hip"))
    return legs + seg("pelvis", "spine") + seg("spine", "thorax") + seg("thorax", "head")


@pytest.mark.parametrize("height", [1.70, 1.5])
def test_metric_scale_matches_height_proxy(height):
    poses = torch.stack([_pose(s) * (s + 1) for s in range(4)])  # different sizes
    out = metric_scale(poses, CANON16, height)
    assert out.shape == poses.shape
    torch.testing.assert_close(_chain(out), torch.full((4,), HEIGHT_PROXY_FRACTION * height, dtype=torch.float64))
    # a pure per-pose scaling: directions unchanged, scale-invariant input
    ratio = out / poses
    torch.testing.assert_close(ratio, ratio[:, :1, :1].expand_as(ratio))
    torch.testing.assert_close(metric_scale(poses * 7.0, CANON16, height), out)
    assert HEIGHT_PROXY_FRACTION == 0.84


def test_lift_frames_shapes_and_errors():
    torch.manual_seed(0)
    model = Lifter(16, window=3, width=16, n_blocks=1)
    kp = torch.rand(10, 16, 2) * 100
    mask = torch.ones(10, 16, dtype=torch.bool)
    out = lift_frames(model, kp, mask, np.array([0, 4, 10]), settings=InferenceSettings(batch_size=3))
    assert out.shape == (10, 16, 3) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    # batching does not change the result
    torch.testing.assert_close(lift_frames(model, kp, mask, np.array([0, 4, 10]),
                                          settings=InferenceSettings(batch_size=100)), out)
    # the lift reprojects onto the normalised input (lifting model with fixed root depth)
    from lifting.geometry import project_normalized

    x, _ = normalize_2d(kp[:, None], mask[:, None], 0, per_window=False)
    y, _ = normalize_2d(project_normalized(out)[:, None], mask[:, None], 0)
    torch.testing.assert_close(y, x, atol=1e-4, rtol=0)
    bad = kp.clone()
    bad[3, 2, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        lift_frames(model, bad, mask)
    with pytest.raises(ValueError, match="expected keypoints"):
        lift_frames(model, kp, mask[:, :15])
    m2 = mask.clone()
    m2[4, 0] = False
    with pytest.raises(ValueError, match="root"):
        lift_frames(model, kp, m2)
    assert model.training  # lift_frames restores the training flag
