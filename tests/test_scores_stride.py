"""Issue 15, inference side: detector scores as model input, strided temporal inference, the
temporal + single-frame lifter pair, bf16 and thread choices."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from lifting import inference
from lifting.models.base import ModelInterface
from lifting.models.checkpoint import save_checkpoint
from lifting.data import Projected2D, WindowSampler
from lifting.inference import (InferenceSettings, auto_threads, bf16_or_warn, lift_frames, lift_smpl_frames,
                               strided_windows)
from lifting.io.readers import read_detections
from lifting.track import track
from lifting.io.tracks import Track
from lifting.lift import lift_file, lift_track
from lifting.options import LiftOptions
from lifting.prepare import canonical_scores, canonical_track
from lifting.skeletons import CANON16, COCO17
from lifting.models.teacher import Lifter
from lifting.prepare import resample_runs
from lifting.track_lifter import MIN_TEMPORAL_RUN, LifterPair, as_track_lifter

from test_lift import _keypoints


def _track(n: int = 30, tid: int = 1, conf: float = 0.9, frames=None) -> Track:
    frames = np.arange(n) if frames is None else np.asarray(frames)
    kp = np.stack([_keypoints(int(f), 0) for f in frames]).astype(np.float32)
    kp[..., 2] = conf
    return Track(tid, frames, kp)


def _lifter(window: int, use_confidence: bool, seed: int = 0) -> Lifter:
    torch.manual_seed(seed)
    return Lifter(16, window, 32, 1, CANON16.root_index, use_confidence=use_confidence).eval()


# --------------------------------------------------------------------------- scores


def test_scores_change_a_confidence_model_only():
    tr_hi, tr_lo = _track(conf=0.95), _track(conf=0.4)
    for window in (1, 5):
        new = as_track_lifter(_lifter(window, True))
        old = as_track_lifter(_lifter(window, False))
        raw = LiftOptions(fit="none")  # the model alone: --fit track weights its 2D term by the scores too
        a, b = lift_track(new, tr_hi, "coco17", options=raw).joints_3d, lift_track(new, tr_lo, "coco17",
                                                                                    options=raw).joints_3d
        assert np.abs(a - b).max() > 1e-4  # the scores reach the model
        np.testing.assert_array_equal(lift_track(old, tr_hi, "coco17", options=raw).joints_3d,
                                      lift_track(old, tr_lo, "coco17", options=raw).joints_3d)


def test_canonical_scores_synthesised_joints_take_the_lowest_source():
    kp = np.stack([_keypoints(0, 0)]).astype(np.float32)
    kp[0, :, 2] = 0.9
    kp[0, COCO17.index("left_hip"), 2], kp[0, COCO17.index("right_hip"), 2] = 0.5, 0.7
    c = canonical_track(Track(1, np.arange(1), kp), "coco17")
    assert c.conf[0, CANON16.index("pelvis")] == pytest.approx(0.5)  # mean of the hips: min of their scores
    assert c.conf[0, CANON16.index("r_hip")] == pytest.approx(0.7)
    # masked joints score 0, visible ones their score
    kp[0, COCO17.index("left_wrist"), 2] = 0.1
    c = canonical_track(Track(1, np.arange(1), kp), "coco17")
    assert not c.mask[0, CANON16.index("l_wrist")] and c.conf[0, CANON16.index("l_wrist")] == 0
    np.testing.assert_array_equal(c.conf > 0, c.mask)
    assert canonical_scores(kp[..., 2], "coco17", kp[..., 2] >= 0.3).shape == (1, 16)


def test_files_without_scores_give_score_one(tmp_path):
    from test_readers import _h36m_npy

    ts = track(read_detections(_h36m_npy(tmp_path)))  # (N, 17, 2) positions: no scores
    c = canonical_track(ts.tracks[0], ts.keypoint_format)
    assert len(c.frame_ids) and c.mask.any()
    np.testing.assert_array_equal(c.conf, c.mask.astype(np.float32))
    res = lift_track(as_track_lifter(_lifter(5, True)), ts.tracks[0], ts.keypoint_format)
    assert np.isfinite(res.joints_3d).all() and len(res.frame_ids) == len(c.frame_ids)


def test_resampling_carries_scores():
    rng = np.random.default_rng(0)
    kp = rng.normal(size=(12, 16, 2)).astype(np.float32)
    mask = np.ones((12, 16), bool)
    mask[4, 3] = False
    conf = np.full((12, 16), 0.8, np.float32)
    conf[:, 5] = np.linspace(0.2, 1.0, 12)
    kp_r, m_r, seg_r, pos, c_r = resample_runs(kp, mask, np.array([0, 6, 12]), 3.0, conf)
    assert c_r.shape == m_r.shape and seg_r.tolist() == [0, 16, 32]
    assert not c_r[~m_r].any()  # masked resampled joints score 0
    np.testing.assert_allclose(c_r[m_r[:, 0], 0], 0.8)  # a constant score stays constant
    np.testing.assert_allclose(c_r[pos.round().astype(int), 5], conf[:, 5], atol=1e-6)  # scores at the input frames
    assert resample_runs(kp, mask, np.array([0, 12]), 3.0)[4] is None
    # through a lift at 10 fps: the resampled scores still reach a confidence model
    new = as_track_lifter(_lifter(5, True))
    hi = lift_track(new, _track(conf=0.95), "coco17", fps=10.0).joints_3d
    lo = lift_track(new, _track(conf=0.4), "coco17", fps=10.0).joints_3d
    assert hi.shape == lo.shape == (30, 16, 3) and np.abs(hi - lo).max() > 1e-4


def test_lift_frames_checks_scores():
    model = _lifter(5, True)
    kp, mask = torch.randn(10, 16, 2), torch.ones(10, 16, dtype=torch.bool)
    with pytest.raises(ValueError, match="conf"):
        lift_frames(model, kp, mask, conf=torch.ones(10, 15))
    with pytest.raises(ValueError, match="conf"):
        lift_frames(model, kp, mask, conf=torch.full((10, 16), float("nan")))


def test_track_scores_reach_the_training_batch(tiny_cfg_overrides):
    from trainers.config import CONFIG_DIR, load_config
    from trainers.stages import build_stage

    kp = np.random.default_rng(0).normal(size=(1, 40, 16, 2)).astype(np.float32) * 50 + 200
    mask = np.ones((1, 40, 16), bool)
    mask[0, :, 7] = False
    conf = np.where(mask, 0.6, 0.0).astype(np.float32)
    data = Projected2D(kp, np.array([0, 40]), np.array(["a"]), np.array([30.0], np.float32), CANON16, mask, conf)
    batch = WindowSampler(data, 1).sample(8, torch.Generator().manual_seed(0))
    assert set(batch) == {"keypoints_2d", "mask", "conf"} and batch["conf"].shape == (8, 1, 16)
    with pytest.raises(ValueError, match="conf"):
        WindowSampler(Projected2D(kp, np.array([0, 40]), np.array(["a"]), np.array([30.0]), CANON16, mask,
                                  conf[..., :3]))
    stage = build_stage("teacher", load_config(CONFIG_DIR / "teacher.yaml", list(tiny_cfg_overrides)))
    draws = stage._global_draws(batch)  # one draw: joint dropout makes every draw's mask differ
    c_in, m_in = draws.conf, draws.m_in
    assert c_in is not None and c_in.shape == m_in.shape
    assert not c_in[~m_in].any() and torch.allclose(c_in[m_in], torch.tensor(0.6))


# --------------------------------------------------------------------------- stride


class PerFrame(ModelInterface, nn.Module):
    """A 'temporal' model whose output at each window position depends on that frame alone
    (scale-free: each frame is renormalised by its own 2D size), so any window gives it the
    same answer and strided inference must equal one window per frame. It has the models'
    common interface (:class:`lifting.models.base.ModelInterface`: joints out)."""

    def __init__(self, window: int):
        super().__init__()
        self.window, self.root_index = window, CANON16.root_index
        self.w = nn.Parameter(torch.randn(2, 3))

    def forward(self, x, mask=None, conf=None):
        size = x.square().sum(-1).mean(-1, keepdim=True).sqrt()[..., None].clamp_min(1e-6)
        out = torch.tanh((x / size) @ self.w)
        return out if conf is None else out * conf[..., None]


@pytest.mark.parametrize("stride", [2, 5, 9, 27])
def test_strided_inference_equals_one_window_per_frame_for_a_per_frame_model(stride):
    torch.manual_seed(0)
    model = PerFrame(27)
    kp, mask = torch.randn(70, 16, 2) * 40 + 300, torch.rand(70, 16) > 0.2
    mask[:, CANON16.root_index] = True
    conf = torch.rand(70, 16)
    seg = np.array([0, 3, 40, 41, 70])
    ref = lift_frames(model, kp, mask, seg, conf, InferenceSettings(stride=1))
    out = lift_frames(model, kp, mask, seg, conf, InferenceSettings(batch_size=4, stride=stride))
    assert out.shape == ref.shape == (70, 16, 3)
    torch.testing.assert_close(out, ref)


def test_strided_windows_read_every_frame_once_and_cost_less():
    seg = np.array([0, 5, 30, 31, 100])
    for stride in (1, 4, 9, 27, 50):
        idx, win, pos = strided_windows(seg, 27, stride)
        np.testing.assert_array_equal(idx[win, pos], np.arange(100))  # frame f comes from a window at f
        assert len(idx) <= sum(-(-n // min(stride, 27)) for n in np.diff(seg))
    assert len(strided_windows(seg, 27, 9)[0]) < len(strided_windows(seg, 27, 1)[0]) / 4
    # causal and single-frame models keep one window per frame
    assert len(strided_windows(seg, 27, 9, causal=True)[0]) == 100
    assert len(strided_windows(seg, 1, 9)[0]) == 100
    with pytest.raises(ValueError, match="stride"):
        strided_windows(seg, 27, 0)
    with pytest.raises(ValueError, match="--stride"):
        LiftOptions(stride=0)


def test_strided_student_keeps_frame_count():
    from lifting.body_model import BodyModel
    from lifting.models.student import Student, StudentConfig

    torch.manual_seed(0)
    st = Student(StudentConfig(window=9, width=32, n_blocks=1), BodyModel()).eval()
    kp, mask = torch.randn(20, 16, 2) * 40 + 300, torch.ones(20, 16, dtype=torch.bool)
    res = lift_smpl_frames(st, kp, mask, np.array([0, 7, 20]), stride=3)
    assert res["global_orient"].shape == (20, 3, 3) and res["betas"].shape[0] == 20 and res["scale"].shape == (20,)
    lt = as_track_lifter(st, stride=3).lift(kp.numpy(), mask.numpy(), np.array([0, 7, 20]), conf=np.ones((20, 16)))
    assert lt.joints_3d.shape == (20, 16, 3) and np.isfinite(lt.joints_3d).all()


# --------------------------------------------------------------------------- pair


def test_pair_lifts_short_runs_with_the_single_frame_model():
    temporal, single = _lifter(27, True), _lifter(1, True, seed=1)
    pair = as_track_lifter(temporal, single_frame_model=single)
    assert isinstance(pair, LifterPair) and pair.window == 27 and MIN_TEMPORAL_RUN == 9
    # a 30-frame run, a gap, then a 4-frame run (isolated frames) and a lone frame
    frames = list(range(30)) + [40, 41, 42, 43] + [50]
    raw = LiftOptions(fit="none")  # the models' own lifts (the fit's prior scale is per track)
    res = lift_track(pair, _track(frames=frames), "coco17", options=raw)
    assert [r[2] for r in res.lifted_by] == ["temporal", "single_frame", "single_frame"]
    assert res.lifted_by[0][:2] == (0, 29) and res.lifted_by[1][:2] == (40, 43) and res.lifted_by[2][:2] == (50, 50)
    # each part equals its own model's lift of that run (up to the one metric scale per track)
    alone = lift_track(as_track_lifter(single), _track(frames=frames[30:34]), "coco17", options=raw).joints_3d
    part = res.joints_3d[30:34]
    ratio = np.linalg.norm(part) / np.linalg.norm(alone)
    np.testing.assert_allclose(part, alone * ratio, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="single-frame"):
        as_track_lifter(single, single_frame_model=temporal)


def test_default_lift_uses_the_pair_and_records_it(tmp_path, monkeypatch):
    from lifting.models import lifters
    from lifting.io.tracks import write_coco_tracks  # noqa: F401  (format of the input below)

    assets = tmp_path / "assets"
    assets.mkdir()
    for name, m in (("teacher.pt", _lifter(27, True)), ("teacher_single.pt", _lifter(1, True, 1))):
        save_checkpoint({"model": m.state_dict(), "model_config": m.config, "kind": "teacher"}, assets / name)
    monkeypatch.setattr(lifters, "_assets", lambda: assets)
    recs = [{"image_id": int(f), "category_id": 1, "track_id": tid, "score": 1.0,
             "keypoints": _keypoints(int(f), tid - 1).reshape(-1).tolist()}
            for tid, frames in ((1, range(20)), (2, [3, 4, 10])) for f in frames]
    src = tmp_path / "tracks.json"
    src.write_text(json.dumps(recs))
    s = lift_file(src, tmp_path / "out", LiftOptions(max_figures=0))
    assert set(s["models"]) == {"temporal", "single_frame"}
    assert s["lifted_by"]["1"] == [[0, 19, "temporal"]]
    assert s["lifted_by"]["2"] == [[3, 4, "single_frame"], [10, 10, "single_frame"]]
    # still photos: every track one frame, all single-frame
    s = lift_file(src, tmp_path / "stills", LiftOptions(max_figures=0, tracker="stills"))
    assert {r[2] for runs in s["lifted_by"].values() for r in runs} == {"single_frame"}
    # an explicit checkpoint lifts everything alone
    s = lift_file(src, tmp_path / "one", LiftOptions(max_figures=0, checkpoint=str(assets / "teacher.pt")))
    assert set(s["models"]) == {"checkpoint"}
    assert {r[2] for runs in s["lifted_by"].values() for r in runs} == {"checkpoint"}


def test_missing_single_frame_bundle_is_an_error_only_when_asked(tmp_path, monkeypatch):
    from lifting.models import lifters
    from lifting.models.checkpoint import CheckpointError

    monkeypatch.setattr(lifters, "_assets", lambda: tmp_path)
    assert lifters.bundled_single_frame() is None
    with pytest.raises(CheckpointError, match="teacher_single"):
        lifters.load_lifter("teacher_single")


# --------------------------------------------------------------------------- CPU


def test_auto_threads_is_a_function_of_load_and_cores():
    assert auto_threads(0.0, 2) == 2
    assert auto_threads(0.9, 2) == 2
    assert auto_threads(1.0, 2) == 1  # another process on one of two cores
    assert auto_threads(7.9, 16) == 16 and auto_threads(8.0, 16) == 1
    assert auto_threads(3.0, 1) == 1
    with pytest.raises(ValueError):
        auto_threads(-1.0, 2)
    with pytest.raises(ValueError):
        auto_threads(0.0, 0)
    assert inference.choose_threads(3)[0] == 3
    n, why = inference.choose_threads(0)
    assert n >= 1 and "auto" in why


def test_bf16_without_native_support_warns_once_and_trains_fp32(monkeypatch, tiny_cfg_overrides):
    from trainers.config import CONFIG_DIR, load_config
    from trainers.stages import build_stage

    monkeypatch.setattr(inference, "native_bf16", lambda device: False)
    with pytest.warns(UserWarning, match="bf16") as rec:
        assert bf16_or_warn("cpu") is False
    assert len(rec) == 1
    with pytest.warns(UserWarning, match="train.bf16") as rec:
        stage = build_stage("teacher", load_config(CONFIG_DIR / "teacher.yaml",
                                                   list(tiny_cfg_overrides) + ["train.bf16=true"]))
    assert stage.amp_dtype is None and len([w for w in rec if "bf16" in str(w.message)]) == 1
    monkeypatch.setattr(inference, "native_bf16", lambda device: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert bf16_or_warn("cpu") is True


def test_native_bf16_reads_cpu_flags(tmp_path):
    f = tmp_path / "cpuinfo"
    f.write_text("processor : 0\nflags : fpu avx2 amx_bf16\n")
    assert inference._cpu_flags(f) == {"fpu", "avx2", "amx_bf16"}
    assert inference._cpu_flags(tmp_path / "missing") == set()
    assert isinstance(inference.native_bf16("cpu"), bool)
