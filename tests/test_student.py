"""The SMPL student: rotation head, initial pose, distillation stage (2D only, teacher
frozen), and the train -> evaluate -> lift round trip through the CLI with meshes."""
from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
import roma
import torch

from lifting import losses
from lifting.body_model import BodyModel
from lifting.cli import main
from lifting.models.lifters import load_lifter
from lifting.models.student import Student, StudentConfig, rot6d_to_rotmat
from trainers.config import CONFIG_DIR, load_config
from trainers.stages import StudentStage, build_stage

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from test_body_model import _random_smpl  # noqa: E402
from test_data import _walk  # noqa: E402


@pytest.fixture(scope="module")
def body_model():
    return BodyModel()  # the shipped open model


def test_rot6d_gives_rotations():
    R = rot6d_to_rotmat(torch.randn(50, 6))
    torch.testing.assert_close(R @ R.transpose(-1, -2), torch.eye(3).expand(50, 3, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(50), atol=1e-5, rtol=0)
    # the two 6D columns of a rotation give it back
    Q = roma.random_rotmat(10)
    torch.testing.assert_close(rot6d_to_rotmat(Q[..., :2].reshape(10, 6)), Q, atol=1e-5, rtol=0)


def test_twist_and_rotation_prior():
    axis = torch.tensor([[0.0, 1.0, 0.0]])
    about = roma.rotvec_to_rotmat(torch.tensor([[[0.0, 0.7, 0.0]]]))  # (1, 1, 3, 3) twist 0.7
    swing = roma.rotvec_to_rotmat(torch.tensor([[[0.5, 0.0, 0.0]]]))  # pure swing
    assert losses.twist_angle(about, axis).item() == pytest.approx(0.7, abs=1e-5)
    assert losses.twist_angle(swing, axis).item() == pytest.approx(0.0, abs=1e-6)
    assert losses.twist_angle(swing @ about, axis).item() == pytest.approx(0.7, abs=1e-5)
    assert losses.rotation_prior(torch.eye(3).expand(4, 23, 3, 3)).item() == pytest.approx(0.0, abs=1e-7)
    # 1 - cos(angle)
    assert losses.rotation_prior(swing).item() == pytest.approx(1 - math.cos(0.5), abs=1e-6)


def test_fresh_student_is_upright_and_facing_the_camera(body_model):
    st = Student(StudentConfig(width=32, n_blocks=1), body_model)
    out = st(torch.randn(4, 1, 16, 2) * 0.5)
    Rx = torch.diag(torch.tensor([1.0, -1.0, -1.0]))
    torch.testing.assert_close(out.global_orient, Rx.expand(4, 1, 3, 3), atol=0.05, rtol=0)
    J = out.joints_3d[:, 0]  # camera frame, y down
    assert (J[:, 9, 1] < -0.4).all()  # head well above the pelvis
    assert (J[:, 3, 1] > 0.6).all()  # ankles below
    assert J[:, 10, 0].mean() > J[:, 13, 0].mean()  # subject's left on the image right (facing us)
    assert out.betas.shape == (4, 10) and out.cam.shape == (4, 1, 3)
    # the camera projects the joints to the normalised 2D scale (~unit RMS)
    y = out.project()
    rms = y.square().sum(-1).mean(-1).sqrt()
    assert ((rms > 0.5) & (rms < 2.0)).all()
    with pytest.raises(ValueError, match="student expects"):
        st(torch.randn(4, 2, 16, 2))


def test_student_stage_is_2d_only_and_teacher_frozen(tiny_cfg_overrides):
    cfg = load_config(CONFIG_DIR / "student.yaml", tiny_cfg_overrides)
    stage = build_stage("student", cfg)
    assert isinstance(stage, StudentStage)
    teacher_before = {k: v.clone() for k, v in stage.teacher.state_dict().items()}
    student_before = {k: v.clone() for k, v in stage.lifter.state_dict().items()}
    g = torch.Generator().manual_seed(0)
    for _ in range(2):
        logs = stage.step(stage.sampler.sample(16, g))
    assert {"distill", "reproject", "adv", "betas", "pose_prior", "twist", "marker_offsets", "critic",
            "total"} <= set(logs)
    assert all(math.isfinite(v) for v in logs.values())
    assert all(torch.equal(teacher_before[k], v) for k, v in stage.teacher.state_dict().items())
    assert any(not torch.equal(student_before[k], v) for k, v in stage.lifter.state_dict().items())
    # nothing 3D from the mocap is reachable (body-model data are the only 3-vectors)
    found = []
    _walk(stage, "stage", set(), found)
    from lifting.data import EvalViews, MocapClips, SupervisedWindows

    for path, obj in found:
        assert not isinstance(obj, (MocapClips, SupervisedWindows, EvalViews)), path
        if isinstance(obj, (np.ndarray, torch.Tensor)) and obj.ndim >= 2 and obj.shape[-1] == 3:
            assert "body_model" in path or "twist_axes" in path, f"{path} {tuple(obj.shape)}"


def test_teacher_window_must_match(tiny_cfg_overrides):
    cfg = load_config(CONFIG_DIR / "student.yaml", [*tiny_cfg_overrides, "model.window=9"])
    with pytest.raises(ValueError, match="window"):
        build_stage("student", cfg)


def test_train_evaluate_lift_student(tiny_cfg_overrides, tiny_mocap_npz, tmp_path, capsys):
    out = tmp_path / "student"
    rc = main(["train", "student", "student", *tiny_cfg_overrides, "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    model, ckpt = load_lifter(out / "last.pt")
    assert isinstance(model, Student) and ckpt["kind"] == "student"
    # the checkpoint names its body model by identity, never by path
    assert ckpt["body_model"]["bundled"] and "path" not in ckpt["body_model"]
    assert ckpt["body_model"]["num_vertices"] == model.body_model.num_vertices
    assert ckpt["body_model"]["sha256"] == model.body_model.sha256
    assert main(["evaluate", str(out / "last.pt"), "--data", str(tiny_mocap_npz), "--split", "test",
                 "-o", str(tmp_path / "ev.json")]) == 0
    ev = json.loads((tmp_path / "ev.json").read_text())
    assert ev["kind"] == "student"
    assert math.isfinite(ev["gt_2d"]["overall"]["pa_mpjpe_mm"])
    from importlib import resources

    example = str(resources.files("lifting") / "assets" / "example_track.json")
    lo = tmp_path / "lift"
    rc = main(["lift", example, "-o", str(lo), "--checkpoint", str(out / "last.pt"), "--max-figures", "1",
               "--mesh-format", "ply"])
    assert rc == 0, capsys.readouterr().err
    z = np.load(lo / "track_0105.npz")
    T = len(z["frame_ids"])
    assert z["global_orient"].shape == (T, 3) and z["body_pose"].shape == (T, 69)
    assert z["betas"].shape == (10,) and z["cam"].shape == (T, 3) and z["joints_smpl"].shape == (T, 24, 3)
    for k in ("global_orient", "body_pose", "betas", "cam", "joints_3d"):
        assert np.isfinite(z[k]).all(), k
    # axis-angle round trip gives back the joints through the body model
    bm = model.body_model
    rot = roma.rotvec_to_rotmat(torch.from_numpy(np.concatenate([z["global_orient"], z["body_pose"]], 1)
                                                 .reshape(T, 24, 3)))
    again = bm(rot[:, 0], rot[:, 1:], torch.from_numpy(z["betas"])[None], canon_offsets=model.marker_offsets)
    root = again.joints_canon[:, :1]
    np.testing.assert_allclose((again.joints_canon - root).detach().numpy(), z["joints_3d"], atol=2e-4)
    summary = json.loads((lo / "summary.json").read_text())
    assert len(summary["meshes"]) == 4 and summary["figures"] == ["track_0105.png"]
    import trimesh

    mesh = trimesh.load(lo / summary["meshes"][0], process=False)
    assert mesh.vertices.shape == (bm.num_vertices, 3) and len(mesh.faces) == len(bm.faces)
    assert mesh.vertices[:, 1].max() > 0.4  # y up in mesh files: the head is above the pelvis
    # chosen frames
    rc = main(["lift", example, "-o", str(tmp_path / "lift2"), "--checkpoint", str(out / "last.pt"),
               "--max-figures", "0", "--mesh-frames", f"{int(z['frame_ids'][0])},{int(z['frame_ids'][5])},999999"])
    assert rc == 0
    assert sorted(json.loads((tmp_path / "lift2" / "summary.json").read_text())["meshes"]) == [
        f"meshes/track_0105_frame_{int(z['frame_ids'][i]):06d}.obj" for i in (0, 5)]
    # a body model of another topology is refused with a clear message
    bad = tmp_path / "other.npz"
    np.savez(bad, **_random_smpl(V=300))
    rc = main(["lift", example, "-o", str(tmp_path / "lift3"), "--checkpoint", str(out / "last.pt"),
               "--body-model", str(bad)])
    assert rc == 2 and "vertex" in capsys.readouterr().err
    assert not (tmp_path / "lift3").exists()


def test_temporal_student_lifts_other_frame_rates(tiny_cfg_overrides, tmp_path, capsys):
    """A 3-frame student (from a 3-frame teacher) lifts a 10 fps track by resampling to 30 fps."""
    teacher = tmp_path / "teacher3"
    assert main(["train", "teacher", "teacher", *tiny_cfg_overrides, "model.window=3", "--out", str(teacher)]) == 0
    student = tmp_path / "student3"
    rc = main(["train", "student", "student", *tiny_cfg_overrides, "model.window=3",
               f"student.teacher_checkpoint={teacher / 'last.pt'}", "--out", str(student)])
    assert rc == 0, capsys.readouterr().err
    from importlib import resources

    example = str(resources.files("lifting") / "assets" / "example_track.json")
    lo = tmp_path / "lift"
    assert main(["lift", example, "-o", str(lo), "--checkpoint", str(student / "last.pt"), "--fps", "10",
                 "--max-figures", "0"]) == 0
    z = np.load(lo / "track_0105.npz")
    T = len(z["frame_ids"])
    assert z["body_pose"].shape == (T, 69) and np.isfinite(z["body_pose"]).all()
    assert json.loads((lo / "summary.json").read_text())["window"] == 3
