"""Tests for lifting.data: loading the shared mocap format, splits, content labels,
2D-only training data for the teacher, and window sampling."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from conftest import TINY_CLIPS, TINY_FRAMES, TINY_SPLITS
from lifting.data import (
    EvalViews,
    MocapClips,
    Projected2D,
    SupervisedWindows,
    WindowSampler,
    content_label,
    eval_views,
    load_mocap_npz,
    project_clips,
    split_clips,
)
from lifting.skeletons import CANON16, MOCAP21
from trainers.config import CONFIG_DIR, load_config
from trainers.stages import TeacherStage, build_stage


def _raw(path) -> dict[str, np.ndarray]:
    with np.load(path) as d:
        return {k: d[k] for k in d.files}


def _write(tmp_path, name, arrays) -> Path:
    p = tmp_path / name
    np.savez(p, **arrays)
    return p


# --------------------------------------------------------------------------- loading


def test_load_tiny_npz(tiny_mocap_npz):
    clips = load_mocap_npz(tiny_mocap_npz)
    raw = _raw(tiny_mocap_npz)
    n = len(TINY_CLIPS) * TINY_FRAMES
    assert isinstance(clips, MocapClips)
    assert clips.skeleton is CANON16
    assert clips.joints.shape == (n, 16, 3) and clips.joints.dtype == np.float32
    np.testing.assert_array_equal(clips.seq_offsets, np.arange(0, n + 1, TINY_FRAMES))
    assert list(clips.seq_names) == list(TINY_CLIPS)
    assert clips.num_clips == len(TINY_CLIPS)
    np.testing.assert_allclose(clips.fps, 30.0)
    # mapped by name: canonical pelvis = Hips, l_wrist = Hand_L, thorax = Neck
    for canon, mocap in [("pelvis", "Hips"), ("l_wrist", "Hand_L"), ("thorax", "Neck"), ("r_ankle", "Foot_R")]:
        np.testing.assert_array_equal(clips.joints[:, CANON16.index(canon)], raw["joints"][:, MOCAP21.index(mocap)])
    assert clips.clip(3).shape == (TINY_FRAMES, 16, 3)
    np.testing.assert_array_equal(clips.clip(3), clips.joints[3 * TINY_FRAMES : 4 * TINY_FRAMES])


def test_select_clips(tiny_mocap_npz):
    clips = load_mocap_npz(tiny_mocap_npz)
    sub = clips.select([5, 2])
    assert list(sub.seq_names) == [TINY_CLIPS[5], TINY_CLIPS[2]]
    np.testing.assert_array_equal(sub.seq_offsets, [0, TINY_FRAMES, 2 * TINY_FRAMES])
    np.testing.assert_array_equal(sub.clip(0), clips.clip(5))
    np.testing.assert_array_equal(sub.clip(1), clips.clip(2))
    empty = clips.select([])
    assert empty.num_clips == 0 and empty.joints.shape == (0, 16, 3)


def test_load_fps_missing_defaults_to_30(tiny_mocap_npz, tmp_path):
    raw = _raw(tiny_mocap_npz)
    del raw["fps"]
    clips = load_mocap_npz(_write(tmp_path, "nofps.npz", raw))
    np.testing.assert_allclose(clips.fps, 30.0)
    assert clips.fps.shape == (len(TINY_CLIPS),)


def test_load_missing_key(tiny_mocap_npz, tmp_path):
    raw = _raw(tiny_mocap_npz)
    del raw["seq_names"]
    with pytest.raises(ValueError, match=r"missing keys \['seq_names'\]"):
        load_mocap_npz(_write(tmp_path, "nokey.npz", raw))


def test_load_wrong_joint_names(tiny_mocap_npz, tmp_path):
    raw = _raw(tiny_mocap_npz)
    names = list(raw["joint_names"])
    names[MOCAP21.index("Hand_L")] = "LeftHand"
    raw["joint_names"] = np.array(names)
    with pytest.raises(ValueError, match="match no known skeleton.*Hand_L"):
        load_mocap_npz(_write(tmp_path, "names.npz", raw))


def test_load_wrong_joint_count(tiny_mocap_npz, tmp_path):
    raw = _raw(tiny_mocap_npz)
    raw["joints"] = raw["joints"][:, :20]
    with pytest.raises(ValueError, match=r"joints must be \(N, 21, 3\)"):
        load_mocap_npz(_write(tmp_path, "count.npz", raw))


def test_load_bad_offsets(tiny_mocap_npz, tmp_path):
    raw = _raw(tiny_mocap_npz)
    raw["seq_offsets"] = raw["seq_offsets"][:-1]
    with pytest.raises(ValueError, match="seq_offsets"):
        load_mocap_npz(_write(tmp_path, "offs.npz", raw))


def test_load_nan_joints(tiny_mocap_npz, tmp_path):
    raw = _raw(tiny_mocap_npz)
    raw["joints"][7, 3, 1] = np.nan
    raw["joints"][9, 0, 0] = np.inf
    with pytest.raises(ValueError, match="2 non-finite"):
        load_mocap_npz(_write(tmp_path, "nan.npz", raw))


def test_load_not_an_npz(tmp_path):
    p = tmp_path / "text.npz"
    p.write_text("this is not a zip archive\n")
    with pytest.raises(ValueError, match="not a readable .npz"):
        load_mocap_npz(p)


def test_load_npy_instead_of_npz(tmp_path):
    p = tmp_path / "joints.npy"
    np.save(p, np.zeros((4, 21, 3), np.float32))
    with pytest.raises(ValueError, match="npz"):
        load_mocap_npz(p)


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="mocap file not found"):
        load_mocap_npz(tmp_path / "nope.npz")


# --------------------------------------------------------------------------- splits / labels


def test_split_clips_bandai_rules():
    names = [
        "dataset-1_walk_angry_001",     # test
        "dataset-1_bow_childish_002",   # test
        "dataset-1_run_old_003",        # test
        "dataset-1_kick_proud_004",     # test
        "dataset-1_dance_tired_005",    # test
        "dataset-1_walk_normal_010",    # train (dataset-1 never val)
        "dataset-2_walk_angry_020",     # val (dataset-2 angry is not test)
        "dataset-2_walk_normal_011",    # train
        "dataset-2_bow_normal_100",     # val
        "dataset-1_walk_happy_007",     # train
    ]
    test = split_clips(names, "test")
    val = split_clips(names, "val")
    train = split_clips(names, "train")
    assert list(test) == [0, 1, 2, 3, 4]
    assert list(val) == [6, 8]
    assert list(train) == [5, 7, 9]
    assert list(split_clips(names, "all")) == list(range(10))
    assert test.dtype == np.int64


def test_split_clips_tiny_file(tiny_mocap_npz):
    names = load_mocap_npz(tiny_mocap_npz).seq_names
    for split, ids in TINY_SPLITS.items():
        assert list(split_clips(names, split)) == ids


def test_split_clips_fallback():
    names = [f"clip{k:02d}" for k in range(23)]
    assert list(split_clips(names, "test")) == [0, 10, 20]
    assert list(split_clips(names, "val")) == [5, 15]
    train = split_clips(names, "train")
    assert len(train) == 18 and not set(train) & {0, 5, 10, 15, 20}
    # one non-Bandai name switches the whole file to the fallback
    mixed = ["dataset-1_walk_angry_001"] * 5 + ["other"] + ["dataset-1_walk_normal_002"] * 5
    assert list(split_clips(mixed, "test")) == [0, 10]
    assert list(split_clips(mixed, "val")) == [5]


def test_split_clips_unknown_split():
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        split_clips(["a"], "dev")


@pytest.mark.parametrize("name,label", [
    ("dataset-1_walk_happy_001", "walk"),
    ("dataset-2_bow_normal_010", "bow"),
    ("dataset-2_walk-left_normal_003", "walk-left"),
    ("HDM_mm_kickLFront_003_120", "kickLFront"),
    ("HDM_bd_jumpingJack1Reps_001_120", "jumpingJack1Reps"),
    ("subject01_jump_02", "subject01_jump"),
    ("run_3_7", "run"),
    ("12345", "12345"),
])
def test_content_label(name, label):
    assert content_label(name) == label


# --------------------------------------------------------------------------- 2D only


def _teacher_cfg(overrides, *extra):
    return load_config(CONFIG_DIR / "teacher.yaml", list(overrides) + list(extra))


_FORBIDDEN = (MocapClips, SupervisedWindows, EvalViews)


def _walk(obj, path, seen, found):
    """Collect every reachable object (by attribute path) from ``obj``; nn.Module
    parameters/buffers and optimizers are not followed."""
    if id(obj) in seen:
        return
    seen.add(id(obj))
    found.append((path, obj))
    if isinstance(obj, (str, bytes, int, float, bool, type(None), torch.Generator, np.ndarray, torch.Tensor)):
        return
    if isinstance(obj, torch.optim.Optimizer):
        return
    if isinstance(obj, DictConfig):
        _walk(OmegaConf.to_container(obj, resolve=True), path + ".<cfg>", seen, found)
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            _walk(v, f"{path}[{k!r}]", seen, found)
        return
    if isinstance(obj, (list, tuple, set, frozenset)):
        for i, v in enumerate(obj):
            _walk(v, f"{path}[{i}]", seen, found)
        return
    try:
        attrs = vars(obj)
    except TypeError:
        return
    for k, v in attrs.items():
        if isinstance(obj, nn.Module) and k in ("_parameters", "_buffers"):
            continue
        _walk(v, f"{path}.{k}", seen, found)


def _assert_2d_only(root, name):
    found = []
    _walk(root, name, set(), found)
    assert len(found) > 3
    for path, obj in found:
        assert not isinstance(obj, _FORBIDDEN), f"{path} is a {type(obj).__name__} (3D data)"
        if isinstance(obj, (np.ndarray, torch.Tensor)):
            assert not (obj.ndim >= 2 and obj.shape[-1] == 3), f"{path} has shape {tuple(obj.shape)} (3D?)"
    return found


def test_teacher_stage_is_2d_only(tiny_cfg_overrides):
    stage = build_stage("teacher", _teacher_cfg(tiny_cfg_overrides))
    assert isinstance(stage, TeacherStage)
    assert type(stage.sampler) is WindowSampler
    batch = stage.sampler.sample(8, torch.Generator().manual_seed(0))
    assert set(batch) == {"keypoints_2d", "mask"}
    assert batch["keypoints_2d"].shape == (8, 1, 16, 2)
    assert batch["mask"].shape == (8, 1, 16) and batch["mask"].dtype == torch.bool
    found = _assert_2d_only(stage.sampler, "sampler")
    # the sampler holds the 2D projections of the train clips only: 2 views x 7 clips x 40 frames
    kp = [o for p, o in found if p == "sampler.keypoints_2d"][0]
    assert tuple(kp.shape) == (2, len(TINY_SPLITS["train"]) * TINY_FRAMES, 16, 2)
    _assert_2d_only(stage, "stage")


def test_temporal_teacher_stage_is_2d_only(tiny_cfg_overrides):
    stage = build_stage("teacher", _teacher_cfg(tiny_cfg_overrides, "model.window=5"))
    batch = stage.sampler.sample(4)
    assert set(batch) == {"keypoints_2d", "mask"}
    assert batch["keypoints_2d"].shape == (4, 5, 16, 2)
    _assert_2d_only(stage, "stage")


def test_walker_would_catch_3d(tiny_mocap_npz, tiny_cfg_overrides):
    """The 2D-only check is not vacuous: it flags the supervised stage's 3D sampler."""
    cfg = load_config(CONFIG_DIR / "supervised.yaml", list(tiny_cfg_overrides))
    stage = build_stage("supervised", cfg)
    with pytest.raises(AssertionError):
        _assert_2d_only(stage, "stage")
    assert "joints_3d" in stage.sampler.sample(2)


def test_teacher_stage_refuses_supervised_windows(tiny_mocap_npz, tiny_cfg_overrides):
    clips = load_mocap_npz(tiny_mocap_npz).select([0, 3])
    with pytest.raises(TypeError, match="2D-only"):
        TeacherStage(_teacher_cfg(tiny_cfg_overrides), SupervisedWindows(clips, 1, 2))


def test_window_sampler_refuses_3d_inputs(tiny_mocap_npz):
    clips = load_mocap_npz(tiny_mocap_npz).select([0])
    with pytest.raises(TypeError, match="Projected2D"):
        WindowSampler(clips)
    with pytest.raises(TypeError):
        WindowSampler(eval_views(clips))


def test_project_clips_holds_pixels_only(tiny_mocap_npz):
    clips = load_mocap_npz(tiny_mocap_npz).select([0, 1])
    p = project_clips(clips, n_views=3, seed=1)
    assert isinstance(p, Projected2D)
    assert p.keypoints_2d.shape == (3, 2 * TINY_FRAMES, 16, 2)
    assert np.isfinite(p.keypoints_2d).all()
    assert not any(isinstance(v, np.ndarray) and v.ndim >= 2 and v.shape[-1] == 3 for v in vars(p).values())
    rig = project_clips(clips, rig=True)
    assert rig.keypoints_2d.shape[0] == 4
    # rig views = the 2D of eval_views
    np.testing.assert_allclose(rig.keypoints_2d, eval_views(clips).keypoints_2d)
    # deterministic given the seed
    np.testing.assert_array_equal(project_clips(clips, 3, seed=1).keypoints_2d, p.keypoints_2d)


# --------------------------------------------------------------------------- window sampling


def _indexed_projection(lengths, names=None, views=2):
    """Projected2D whose pixel x is the global frame index and y the clip index."""
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    n = int(offsets[-1])
    clip = np.repeat(np.arange(len(lengths)), lengths)
    kp = np.zeros((views, n, 16, 2), np.float32)
    kp[..., 0] = np.arange(n)[None, :, None]
    kp[..., 1] = clip[None, :, None]
    names = np.array(names if names is not None else [f"clip{k}" for k in range(len(lengths))])
    return Projected2D(kp, offsets, names, np.full(len(lengths), 30.0, np.float32)), offsets


def test_windows_never_cross_clip_boundaries():
    lengths = [3, 7, 5, 12, 4]
    data, offsets = _indexed_projection(lengths)
    s = WindowSampler(data, window=5)
    # every start of every clip with >= 5 frames, nothing else
    expected = [f for k, L in enumerate(lengths) if L >= 5 for f in range(offsets[k], offsets[k + 1] - 4)]
    assert sorted(s.index.starts.tolist()) == expected
    b = s.sample(2000, torch.Generator().manual_seed(0))
    kp = b["keypoints_2d"]
    assert kp.shape == (2000, 5, 16, 2)
    frames = kp[..., 0, 0]
    clip = kp[..., 0, 1]
    assert torch.all(frames[:, 1:] - frames[:, :-1] == 1)  # consecutive frames
    assert torch.all(clip == clip[:, :1])  # one clip per window
    assert set(clip[:, 0].long().tolist()) == {1, 2, 3}  # clips 0 and 4 are too short
    # all windows of clip 3 reachable
    assert len(set(frames[:, 0].long().tolist())) == len(expected)


def test_window_sampler_too_short_raises():
    data, _ = _indexed_projection([3, 4])
    with pytest.raises(ValueError, match="at least 5 frames"):
        WindowSampler(data, window=5)


def test_window_sampler_unknown_balance_raises():
    data, _ = _indexed_projection([10])
    with pytest.raises(ValueError, match="balance"):
        WindowSampler(data, window=1, balance="labels")


def test_balance_content_draws_labels_equally():
    names = ["dataset-1_walk_normal_001", "dataset-1_walk_happy_002", "dataset-2_walk_normal_003",
             "dataset-1_bow_normal_001", "dataset-1_kick_normal_001", "dataset-2_kick_happy_002"]
    lengths = [300, 250, 200, 10, 15, 5]
    labels = [content_label(n) for n in names]
    data, _ = _indexed_projection(lengths, names)
    n = 6000
    s = WindowSampler(data, window=1, balance="content")
    clip = s.sample(n, torch.Generator().manual_seed(0))["keypoints_2d"][:, 0, 0, 1].long()
    freq = Counter(labels[c] for c in clip.tolist())
    assert set(freq) == {"walk", "bow", "kick"}
    for lab in ("walk", "bow", "kick"):
        assert abs(freq[lab] / n - 1 / 3) < 0.04, freq
    # within a label, windows are drawn uniformly: kick clip 4 (15 frames) vs clip 5 (5 frames)
    kick = Counter(c for c in clip.tolist() if labels[c] == "kick")
    assert kick[4] / (kick[4] + kick[5]) == pytest.approx(0.75, abs=0.06)
    # without balancing, frequencies follow the number of windows
    s0 = WindowSampler(data, window=1, balance="none")
    clip0 = s0.sample(n, torch.Generator().manual_seed(0))["keypoints_2d"][:, 0, 0, 1].long()
    freq0 = Counter(labels[c] for c in clip0.tolist())
    assert freq0["walk"] / n > 0.9


def test_balance_content_temporal_windows_stay_in_clip():
    names = ["dataset-1_walk_normal_001", "dataset-1_bow_normal_001", "dataset-1_walk_happy_002"]
    data, _ = _indexed_projection([20, 6, 9], names)
    s = WindowSampler(data, window=5, balance="content")
    kp = s.sample(1000, torch.Generator().manual_seed(1))["keypoints_2d"]
    frames, clip = kp[..., 0, 0], kp[..., 0, 1]
    assert torch.all(frames[:, 1:] - frames[:, :-1] == 1)
    assert torch.all(clip == clip[:, :1])
    bow = float((clip[:, 0] == 1).float().mean())
    assert bow == pytest.approx(0.5, abs=0.06)


def test_supervised_windows_pair_2d_and_3d(tiny_mocap_npz):
    clips = load_mocap_npz(tiny_mocap_npz).select([0, 3])
    sw = SupervisedWindows(clips, window=3, n_views=2, seed=0)
    b = sw.sample(6, torch.Generator().manual_seed(0))
    assert b["keypoints_2d"].shape == (6, 3, 16, 2)
    assert b["joints_3d"].shape == (6, 3, 16, 3)
    torch.testing.assert_close(b["joints_3d"][..., CANON16.root_index, :], torch.zeros(6, 3, 3))
    # camera-frame 3D: the 3D bone lengths match the mocap bone lengths
    j = clips.joints
    mocap_len = np.linalg.norm(j[:, CANON16.index("l_knee")] - j[:, CANON16.index("l_hip")], axis=-1)
    b_len = (b["joints_3d"][..., CANON16.index("l_knee"), :] - b["joints_3d"][..., CANON16.index("l_hip"), :]).norm(dim=-1)
    assert float(b_len.min()) >= mocap_len.min() - 1e-4 and float(b_len.max()) <= mocap_len.max() + 1e-4


def test_eval_views_consistent(tiny_mocap_npz):
    clips = load_mocap_npz(tiny_mocap_npz).select([1, 6])
    v = eval_views(clips)
    assert v.keypoints_2d.shape == (4, 2 * TINY_FRAMES, 16, 2)
    assert v.joints_3d.shape == (4, 2 * TINY_FRAMES, 16, 3)
    np.testing.assert_array_equal(v.clip_of_frame, np.repeat([0, 1], TINY_FRAMES))
    np.testing.assert_allclose(v.joints_3d[..., CANON16.root_index, :], 0.0, atol=1e-6)
    # the camera-frame 3D is a rotation of the world pose: per-frame joint distances agree
    world = clips.joints - clips.joints[:, :1]
    np.testing.assert_allclose(np.linalg.norm(v.joints_3d, axis=-1), np.broadcast_to(np.linalg.norm(world, axis=-1), (4,) + world.shape[:2]), atol=1e-5)
