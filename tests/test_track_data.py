"""Tests for lifting.track_data: the user's keypoint files -> 2D-only training windows
(lift-time mapping, masks, gaps and identity switches, fps, held-out tracks), the critic's
real-pose pool and the mixed sampler; the teacher stage built on tracks stays 2D-only."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_mocap
from test_data import _assert_2d_only
from lifting.camera import eval_rig
from lifting.data import Projected2D, WindowSampler
from lifting.geometry import normalize_2d
from lifting.io.tracks import Track, TrackSet, write_coco_tracks
from lifting.lift import lift_track
from lifting.models.lifters import load_lifter
from lifting.track_lifter import as_track_lifter
from lifting.skeletons import CANON16, COCO17, MOCAP21, remap
from lifting.track_data import (MixedSampler, RealPosePool, load_track_2d, mocap_as_coco17, read_pose_pool)
from trainers.config import CONFIG_DIR, load_config
from trainers.stages import TeacherStage, build_stage

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
COCO_ANN = SHARED / "coco_keypoints" / "person_keypoints_val2017_partial.json"


def coco_clip(k: int = 0, n_frames: int = 40, seed: int = 0) -> np.ndarray:
    """``(T, 17, 3)`` COCO-17 pixels + confidence of clip ``k`` of the tiny mocap, seen by
    the first evaluation-rig camera (missing face joints: confidence 0)."""
    m = make_mocap(n_frames=n_frames, seed=seed)
    a, b = m["seq_offsets"][k], m["seq_offsets"][k + 1]
    clip = m["joints"][a:b].astype(np.float64)
    cam = eval_rig(clip, MOCAP21.root_index)
    px, present = mocap_as_coco17(cam.project(clip)[0])
    return np.concatenate([px, np.broadcast_to(np.where(present, 0.9, 0.0), px.shape[:-1])[..., None]], -1)


def write_tracks(path: Path, tracks: list[tuple[int, np.ndarray, np.ndarray]], fps: float | None = 30.0) -> Path:
    ts = TrackSet([Track(tid, f, kp) for tid, f, kp in tracks], fps, "coco17", (1000, 1000), "")
    write_coco_tracks(ts, path)
    return path


def many_tracks(n_tracks: int = 8, n_frames: int = 40) -> list:
    return [(k, np.arange(n_frames) + 100 * k, coco_clip(k % 12, n_frames)) for k in range(n_tracks)]


@pytest.fixture()
def track_file(tmp_path):
    return write_tracks(tmp_path / "tracks.json", many_tracks())


def _cfg(overrides, *extra):
    return load_config(CONFIG_DIR / "teacher.yaml", list(overrides) + list(extra))


# --------------------------------------------------------------------------- mapping


def test_mocap_as_coco17_gives_back_the_mocap_head():
    m = make_mocap(n_frames=5)
    pts, present = mocap_as_coco17(m["joints"])
    canon, mask = remap(pts, COCO17, CANON16, valid=np.broadcast_to(present, pts.shape[:-1]))
    assert mask.all()
    head = m["joints"][:, MOCAP21.index("Head")]
    np.testing.assert_allclose(canon[:, CANON16.index("head")], head, atol=1e-9)
    assert not present[COCO17.index("nose")] and not present[COCO17.index("left_eye")]
    with pytest.raises(ValueError, match="mocap21"):
        mocap_as_coco17(np.zeros((3, 17, 3)))
    px, _ = mocap_as_coco17(m["joints"][..., :2])  # affine: works on pixels too
    np.testing.assert_allclose(remap(px, COCO17, CANON16, valid=np.broadcast_to(present, px.shape[:-1]))[0][:, CANON16.index("head")],
                               m["joints"][:, MOCAP21.index("Head"), :2], atol=1e-9)


# --------------------------------------------------------------------------- windows


def test_track_sampler_is_2d_only(track_file, tiny_cfg_overrides):
    stage = build_stage("teacher", _cfg(tiny_cfg_overrides, f"data.tracks=[{track_file}]", "data.val_tracks=0.2"))
    assert isinstance(stage, TeacherStage)
    assert type(stage.sampler) is WindowSampler and stage.sampler.mask is not None
    batch = stage.sampler.sample(8, torch.Generator().manual_seed(0))
    assert set(batch) == {"keypoints_2d", "mask", "conf"} and batch["keypoints_2d"].shape == (8, 1, 16, 2)
    # the tracks' detector scores: in [0, 1], 0 exactly at the masked joints
    assert batch["conf"].shape == batch["mask"].shape and not batch["conf"][~batch["mask"]].any()
    assert ((batch["conf"] > 0) == batch["mask"]).all() and batch["conf"].max() <= 1
    _assert_2d_only(stage, "stage")
    stage.step(batch)  # trains on it


def test_temporal_track_sampler_is_2d_only(track_file, tiny_cfg_overrides):
    stage = build_stage("teacher", _cfg(tiny_cfg_overrides, f"data.tracks=[{track_file}]", "model.window=5"))
    assert stage.sampler.sample(4)["keypoints_2d"].shape == (4, 5, 16, 2)
    _assert_2d_only(stage, "stage")


def test_windows_respect_gaps_and_identity_switches(tmp_path):
    T = 100
    kp = coco_clip(0, T)
    kp[80:, :, 0] += 800.0  # identity switch: the root jumps by far more than the person's size
    frames = np.r_[np.arange(0, 50), np.arange(60, 110)]  # a gap of 10 frames after frame 49
    tracks = [(1, frames, kp)] + [(k + 2, np.arange(60), coco_clip(k + 1, 60)) for k in range(3)]
    path = write_tracks(tmp_path / "gaps.json", tracks)
    split = load_track_2d(path, window=5, val_fraction=0.0)
    runs = {str(n): int(b - a) for n, a, b in zip(split.train.seq_names, split.train.seq_offsets[:-1],
                                                   split.train.seq_offsets[1:])}
    assert runs["gaps.json:track1:run0"] == 50 and runs["gaps.json:track1:run1"] == 30
    assert runs["gaps.json:track1:run2"] == 20
    assert split.summary["identity_switches"] == 1
    # every sampled window lies in one run: the root moves by at most a few px frame to frame
    s = WindowSampler(split.train, window=5)
    b = s.sample(512, torch.Generator().manual_seed(0))
    step = (b["keypoints_2d"][:, 1:, CANON16.root_index] - b["keypoints_2d"][:, :-1, CANON16.root_index]).norm(dim=-1)
    assert float(step.max()) < 20.0


def test_masked_joints_are_never_zero_observed(tmp_path, tiny_cfg_overrides):
    """Low-confidence joints are masked wherever their placeholder coordinate lies, and the
    trained losses do not depend on the placeholder."""
    base = many_tracks(4, 60)
    low = COCO17.index("left_wrist")
    files = []
    for name, placeholder in (("zero.json", 0.0), ("far.json", 5000.0)):
        tr = []
        for tid, f, kp in base:
            kp = kp.copy()
            kp[::2, low, :2] = placeholder
            kp[::2, low, 2] = 0.1  # below the 0.3 threshold
            tr.append((tid, f, kp))
        files.append(write_tracks(tmp_path / name, tr))
    split = load_track_2d(files[0], val_fraction=0.0)
    j = CANON16.index("l_wrist")
    assert not split.train.mask[0, ::2, j].any() and split.train.mask[0, 1::2, j].all()
    assert (split.train.keypoints_2d[0][~split.train.mask[0]] == 0).all()
    losses = []
    for f in files:
        stage = build_stage("teacher", _cfg(tiny_cfg_overrides, f"data.tracks=[{f}]", "data.val_tracks=0"))
        batch = stage.sampler.sample(16, torch.Generator().manual_seed(1))
        assert not batch["mask"].all()
        losses.append(stage.step(batch))
    assert losses[0] == losses[1]


def test_same_pose_at_two_image_scales_and_positions_lifts_the_same():
    """Camera-free normalisation: a 50 px person in a portrait frame and a 2000 px person in
    a landscape frame give the same normalised input and the same 3D (bundled teacher)."""
    kp = coco_clip(0, 20)
    centre = kp[:, :, :2].mean((0, 1))
    small, big = kp.copy(), kp.copy()
    size = kp[..., 1].max() - kp[..., 1].min()
    small[..., :2] = (kp[..., :2] - centre) * (50.0 / size) + np.array([300.0, 1500.0])  # portrait 600 x 2000
    big[..., :2] = (kp[..., :2] - centre) * (2000.0 / size) + np.array([2500.0, 1100.0])  # landscape 5000 x 2200
    model, _ = load_lifter("teacher")
    lifter = as_track_lifter(model)
    out = [lift_track(lifter, Track(0, np.arange(20), k)) for k in (small, big)]
    np.testing.assert_allclose(out[0].joints_3d, out[1].joints_3d, atol=2e-4)  # metres
    x = [normalize_2d(torch.from_numpy(o.keypoints_2d), torch.from_numpy(o.mask), 0)[0] for o in out]
    torch.testing.assert_close(x[0], x[1], atol=1e-4, rtol=0)


def test_fps_resampling_only_for_temporal_windows(tmp_path):
    path = write_tracks(tmp_path / "slow.json", many_tracks(6, 50), fps=10.0)
    single = load_track_2d(path, window=1, val_fraction=0.0)
    assert single.summary["resampled_files"] == 0 and single.summary["frames_usable"] == 300
    temporal = load_track_2d(path, window=9, val_fraction=0.0)
    assert temporal.summary["resampled_files"] == 1
    assert temporal.summary["frames_usable"] == 6 * (49 * 3 + 1)  # 10 -> 30 fps per gap-free run
    np.testing.assert_allclose(temporal.train.fps, 30.0)


def test_held_out_tracks_are_disjoint(tmp_path):
    path = write_tracks(tmp_path / "t.json", many_tracks(10, 40))
    split = load_track_2d(path, val_fraction=0.25, seed=3)
    tr = {n.split(":run")[0] for n in split.train.seq_names}
    va = {n.split(":run")[0] for n in split.val.seq_names}
    assert tr and va and not tr & va
    assert split.summary["val_frames"] >= 0.25 * 400 and split.summary["val_frames"] < 0.25 * 400 + 40
    again = load_track_2d(path, val_fraction=0.25, seed=3)
    assert list(again.val.seq_names) == list(split.val.seq_names)


def test_too_little_input_is_a_clear_error(tmp_path):
    path = write_tracks(tmp_path / "few.json", many_tracks(3, 50))
    with pytest.raises(ValueError, match=r"only 150 usable person-frames.*at least 200"):
        load_track_2d(path)
    kp = coco_clip(0, 300)
    kp[:, COCO17.index("left_hip"), 2] = 0.0  # no pelvis anywhere
    path = write_tracks(tmp_path / "nohips.json", [(0, np.arange(300), kp)])
    with pytest.raises(ValueError, match="only 0 usable.*visible pelvis"):
        load_track_2d(path)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_track_2d(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="val_fraction"):
        load_track_2d(path, val_fraction=1.0)


def test_folder_input_reads_every_file(tmp_path):
    d = tmp_path / "videos"
    d.mkdir()
    for i in range(3):
        write_tracks(d / f"v{i}.json", many_tracks(3, 40))
    split = load_track_2d(d, val_fraction=0.0)
    assert split.summary["files"] == 3 and split.summary["frames_usable"] == 360


def test_openpose_folder_without_keypoints_suffix_is_one_video(tmp_path):
    """Pose2Sim names its OpenPose frames ``cam01.0000.json``: the folder is one input, as lift reads it."""
    from lifting.track_data import expand_inputs

    d = tmp_path / "cam01"
    d.mkdir()
    for f in range(3):
        (d / f"cam01.{f:04d}.json").write_text(json.dumps({"version": 1.3, "people": []}))
    assert expand_inputs([d]) == [d]
    other = tmp_path / "videos"
    other.mkdir()
    write_tracks(other / "v0.json", many_tracks(1, 5))
    assert expand_inputs([other]) == [other / "v0.json"]


# --------------------------------------------------------------------------- critic pool, mixing


def _coco_annotations(path: Path, n: int = 30) -> Path:
    kp = coco_clip(0, n)
    kp[..., 2] = np.where(kp[..., 2] > 0, 2, 0)
    kp[::3, COCO17.index("left_ear"), 2] = 0  # some heads unlabelled
    doc = {"images": [{"id": i, "file_name": f"{i:012d}.jpg"} for i in range(n)],
           "annotations": [{"id": i, "image_id": i, "category_id": 1, "iscrowd": 0, "num_keypoints": 14,
                            "keypoints": kp[i].ravel().tolist()} for i in range(n)] +
                          [{"id": n, "image_id": 0, "category_id": 1, "iscrowd": 0, "num_keypoints": 0,
                            "keypoints": [0] * 51}],
           "categories": [{"id": 1, "name": "person"}]}
    path.write_text(json.dumps(doc))
    return path


def test_pose_pool_from_coco_stills_masks_fakes_like_reals(tmp_path):
    pool_data = read_pose_pool(_coco_annotations(tmp_path / "ann.json"))
    assert pool_data.keypoints_2d.shape == (1, 30, 16, 2)
    assert not pool_data.mask[0, ::3, CANON16.index("head")].any() and pool_data.mask[0, 1::3].all()
    pool = RealPosePool(pool_data)
    g = torch.Generator().manual_seed(0)
    real = pool.real(64, g)
    assert real.shape == (64, 1, 16, 2)
    y = torch.randn(64, 1, 16, 2)
    y[..., 0, :] = 0
    faked = pool.mask_like(y, g)
    zero = (faked == 0).all(-1)
    assert zero[..., CANON16.index("head")].any() and not zero[..., CANON16.index("l_knee")].any()
    with pytest.raises(ValueError, match="still photos"):
        read_pose_pool(tmp_path / "ann.json", window=5)


def test_critic_real_tracks_config(tmp_path, track_file, tiny_cfg_overrides):
    ann = _coco_annotations(tmp_path / "ann.json")
    stage = build_stage("teacher", _cfg(tiny_cfg_overrides, f"data.tracks=[{track_file}]", f"critic.real_tracks=[{ann}]"))
    assert len(stage.real_pool) == 30
    logs = stage.step(stage.sampler.sample(16, stage.generator))
    assert np.isfinite(logs["critic"]) and np.isfinite(logs["adv"])
    # mocap 2D with a real-pose critic (no tracks)
    stage = build_stage("teacher", _cfg(tiny_cfg_overrides, f"critic.real_tracks=[{ann}]"))
    assert stage.sampler.mask is None and stage.real_pool is not None


def test_mixed_sampler_weights(tmp_path, tiny_cfg_overrides):
    tracks = []
    for tid, f, kp in many_tracks(8, 40):
        kp[:, COCO17.index("left_wrist"), 2] = 0.0  # every track window misses l_wrist; mocap never
        tracks.append((tid, f, kp))
    path = write_tracks(tmp_path / "wristless.json", tracks)
    j = CANON16.index("l_wrist")
    for mix, lo, hi in (([1.0, 0.0], 1.0, 1.0), ([0.5, 0.5], 0.4, 0.6), ([0.0, 1.0], 0.0, 0.0)):
        stage = build_stage("teacher", _cfg(tiny_cfg_overrides, f"data.tracks=[{path}]", f"data.mix={mix}"))
        assert isinstance(stage.sampler, MixedSampler)
        b = stage.sampler.sample(400, torch.Generator().manual_seed(0))
        assert b["keypoints_2d"].shape == (400, 1, 16, 2)
        frac = float((~b["mask"][:, 0, j]).float().mean())
        assert lo <= frac <= hi, (mix, frac)
    with pytest.raises(ValueError, match="data.mix"):
        build_stage("teacher", _cfg(tiny_cfg_overrides, f"data.tracks=[{path}]", "data.mix=[1.0,-1.0]"))
    with pytest.raises(ValueError, match="data.mix"):
        build_stage("teacher", _cfg(tiny_cfg_overrides, f"data.tracks=[{path}]", "data.mix=[1.0,1.0]", "data.npz=null"))
    with pytest.raises(ValueError, match="data.mix"):
        MixedSampler([stage.sampler.samplers[0]], [1.0, 2.0])


@pytest.mark.skipif(not COCO_ANN.is_file(), reason=f"shared COCO keypoints absent: {COCO_ANN}")
def test_shared_coco_pool():
    data = read_pose_pool(COCO_ANN)
    assert 800 < data.keypoints_2d.shape[1] <= 1354
    assert isinstance(data, Projected2D) and 0.7 < data.mask.mean() < 0.95


def test_teacher_2d_terms_ignore_masked_joints(tiny_cfg_overrides):
    """The 2D reprojection term compares observed joints only (normalised over them, as the
    input is): a lift that reprojects onto the observed joints costs nothing, wherever it puts
    the masked joint (not at the 0 placeholder)."""
    from trainers.stages import Draws, teacher_terms

    cfg = _cfg(tiny_cfg_overrides)
    g = torch.Generator().manual_seed(0)
    X = torch.randn(4, 1, 16, 3, generator=g) * 0.3
    X[..., 0, :] = 0
    from lifting.geometry import project_normalized, rms_scale

    x_full = project_normalized(X)
    mask = torch.ones(4, 1, 16, dtype=torch.bool)
    j = CANON16.index("r_wrist")
    mask[:, :, j] = False
    x_obs = x_full.clone()
    x_obs[..., j, :] = 0
    x_obs = x_obs / rms_scale(x_obs, mask)[..., None]
    net = lambda x, m, c=None: X  # noqa: E731  (a lift that reprojects exactly onto the observed joints)
    R = torch.eye(3).expand(4, 3, 3)
    terms, _, _ = teacher_terms(net, lambda y: torch.zeros(y.shape[0]), Draws(x_obs, x_obs, mask, mask, R), cfg, 0)
    assert float(terms["reproject"][1]) < 1e-5
    unmasked, _, _ = teacher_terms(net, lambda y: torch.zeros(y.shape[0]), Draws(x_obs, x_obs, mask | True, mask | True, R),
                                   cfg, 0)
    assert float(unmasked["reproject"][1]) > 1e-3  # the check is not vacuous


def test_train_on_tracks_alone_validates_without_3d(track_file, tiny_cfg_overrides, tmp_path):
    """``posenet3d train teacher`` with ``data.npz=null data.tracks=[...]``: no mocap read,
    best.pt chosen by the held-out tracks' hidden-joint 2D error."""
    from trainers.loop import train

    cfg = _cfg(tiny_cfg_overrides, "data.npz=null", f"data.tracks=[{track_file}]", "data.val_tracks=0.25")
    path = train("teacher", cfg, out_dir=tmp_path / "run", progress=False)
    model, ck = load_lifter(path)
    assert set(ck["val"]) >= {"heldout_joint_2d", "cycle_2d"} and np.isfinite(ck["val"]["heldout_joint_2d"])
    assert (tmp_path / "run" / "best.pt").is_file()
