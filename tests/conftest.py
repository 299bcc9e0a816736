"""Shared fixtures: a tiny synthetic mocap file in the shared format and config overrides
that make any training stage tiny. Everything is CPU-only and small (the whole suite must
stay fast on a 2-core machine with a training job running in the background)."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from lifting.skeletons import MOCAP21

os.environ["WANDB_MODE"] = "disabled"
os.environ.setdefault("WANDB_SILENT", "true")
torch.set_num_threads(1)

# Clip names chosen so the Bandai split rules of lifting.data.split_clips give non-empty
# train / val / test splits:
#   test  = dataset-1 with style angry/childish/old/proud/tired
#   val   = dataset-2 with id divisible by 10
#   train = the rest
TINY_CLIPS = (
    "dataset-1_walk_normal_001",   # train
    "dataset-1_walk_angry_001",    # test
    "dataset-1_bow_tired_001",     # test
    "dataset-1_bow_active_001",    # train
    "dataset-1_dance_happy_001",   # train
    "dataset-1_run_proud_002",     # test
    "dataset-2_walk_happy_010",    # val
    "dataset-2_bow_normal_020",    # val
    "dataset-2_walk_normal_003",   # train
    "dataset-2_dance_normal_004",  # train
    "dataset-2_kick_normal_005",   # train
    "dataset-2_kick_angry_006",    # train (angry only counts as test in dataset-1)
)
TINY_SPLITS = {
    "train": [0, 3, 4, 8, 9, 10, 11],
    "val": [6, 7],
    "test": [1, 2, 5],
}
TINY_FRAMES = 40

# Bone offsets (child - parent) in metres, Y up, person facing +z, left = +x.
_OFFSETS = {
    "Hips": (0.0, 0.0, 0.0),
    "Spine": (0.0, 0.15, 0.0),
    "Chest": (0.0, 0.15, 0.0),
    "Neck": (0.0, 0.15, 0.0),
    "Head": (0.0, 0.08, 0.01),
    "Shoulder_L": (0.05, -0.03, 0.0),
    "UpperArm_L": (0.12, 0.0, 0.0),
    "LowerArm_L": (0.02, -0.30, 0.0),
    "Hand_L": (0.0, -0.28, 0.04),
    "Shoulder_R": (-0.05, -0.03, 0.0),
    "UpperArm_R": (-0.12, 0.0, 0.0),
    "LowerArm_R": (-0.02, -0.30, 0.0),
    "Hand_R": (0.0, -0.28, 0.04),
    "UpperLeg_L": (0.09, -0.03, 0.0),
    "LowerLeg_L": (0.0, -0.45, 0.02),
    "Foot_L": (0.0, -0.45, -0.03),
    "Toes_L": (0.0, -0.05, 0.12),
    "UpperLeg_R": (-0.09, -0.03, 0.0),
    "LowerLeg_R": (0.0, -0.45, 0.02),
    "Foot_R": (0.0, -0.45, -0.03),
    "Toes_R": (0.0, -0.05, 0.12),
}
PELVIS_HEIGHT = 0.95


def standing_pose() -> np.ndarray:
    """``(21, 3)`` MOCAP21 rest pose (metres, Y up) with the pelvis at the origin in x/z."""
    names, parents = MOCAP21.joint_names, MOCAP21.parents
    pose = np.zeros((len(names), 3))
    for j, (n, p) in enumerate(zip(names, parents)):
        off = np.asarray(_OFFSETS[n], dtype=np.float64)
        pose[j] = off + (pose[p] if p >= 0 else np.array([0.0, PELVIS_HEIGHT, 0.0]))
    return pose


def make_mocap(n_frames: int = TINY_FRAMES, names=TINY_CLIPS, seed: int = 0) -> dict[str, np.ndarray]:
    """Arrays of a small mocap file in the shared format: a standing skeleton with small
    sinusoidal joint motion and a slowly walking root, one clip per name."""
    rng = np.random.default_rng(seed)
    rest = standing_pose()
    J = rest.shape[0]
    t = np.arange(n_frames, dtype=np.float64)
    clips = []
    for k in range(len(names)):
        phase = rng.uniform(0, 2 * np.pi, (J, 3))
        freq = rng.uniform(0.05, 0.15, (J, 3))
        amp = 0.03 * np.ones((J, 3))
        amp[MOCAP21.root_index] = 0.005
        wiggle = amp * np.sin(2 * np.pi * freq * t[:, None, None] + phase)  # (T, J, 3)
        heading = rng.uniform(0, 2 * np.pi)
        speed = 0.01  # m per frame
        start = rng.uniform(-1.0, 1.0, 2)
        root = np.stack([start[0] + speed * t * np.sin(heading), np.zeros_like(t),
                         start[1] + speed * t * np.cos(heading)], -1)  # (T, 3)
        clips.append(rest[None] + wiggle + root[:, None, :])
    joints = np.concatenate(clips).astype(np.float32)
    return {
        "joints": joints,
        "seq_offsets": np.arange(0, n_frames * len(names) + 1, n_frames, dtype=np.int64),
        "seq_names": np.array(names),
        "fps": np.full(len(names), 30.0, np.float32),
        "joint_names": np.array(MOCAP21.joint_names),
        "parents": np.array(MOCAP21.parents, dtype=np.int64),
    }


@pytest.fixture(scope="session")
def tiny_mocap_npz(tmp_path_factory):
    """Path of a 12-clip x 40-frame synthetic mocap npz in the shared MOCAP21 format."""
    path = tmp_path_factory.mktemp("mocap") / "tiny_mocap.npz"
    np.savez(path, **make_mocap())
    return path


@pytest.fixture(scope="session")
def tiny_cfg_overrides(tiny_mocap_npz):
    """Config overrides (OmegaConf dotlist) that make any stage config tiny."""
    return [
        f"data.npz={tiny_mocap_npz}",
        "train.steps=3",
        "train.batch_size=16",
        "train.eval_every=3",
        "train.log_every=1",
        "model.width=32",
        "model.n_blocks=1",
        "critic.width=16",
        "critic.n_blocks=1",
        "data.val_max_clips=2",
        "data.n_views=2",
    ]
