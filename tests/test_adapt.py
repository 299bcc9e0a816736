"""Tests for ``posenet3d adapt`` (trainers.adapt) and scripts/make_hdm05_tracks.py, on small
generated track files with a few training steps (CPU, seconds)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_mocap
from test_track_data import many_tracks, write_tracks
from lifting.cli import main
from lifting.io.readers import read_detections
from lifting.track import track
from lifting.lift import lift_file
from lifting.models.checkpoint import save_checkpoint
from lifting.prepare import canonical_track
from lifting.models.lifters import load_lifter
from lifting.options import LiftOptions
from lifting.skeletons import CANON16, remap, MOCAP21
from trainers.adapt import AdaptSettings, adapt

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import make_hdm05_tracks  # noqa: E402


@pytest.fixture(scope="module")
def tracks_file(tmp_path_factory):
    return write_tracks(tmp_path_factory.mktemp("adapt") / "tracks.json", many_tracks(8, 40))


def test_adapt_teacher_and_student_end_to_end(tracks_file, tmp_path):
    out = tmp_path / "out"
    s = adapt(tracks_file, out, "student",
              AdaptSettings(steps=3, batch_size=16, critic_warmup=1, student_mode="distill"),
              LiftOptions(max_figures=0))
    assert s["steps"] == {"teacher": 3, "student": 3}
    v = s["validation"]
    for key in ("teacher_before", "teacher_after", "student_before", "student_after"):
        assert np.isfinite(v[key]["heldout_joint_2d"])
    sel = s["selection"]["teacher"]
    assert sel["by_step"][3] != sel["by_step"][0]  # the teacher trained
    assert v["teacher_after"] == sel["by_step"][sel["chosen_step"]]  # and the chosen snapshot shipped
    assert "step" not in sel["by_step"][0]  # validation values only
    # checkpoints are lift-loadable and differ from the bundled ones
    teacher, ck = load_lifter(out / "teacher.pt")
    bundled, _ = load_lifter("teacher")
    assert ck["kind"] == "teacher" and "train_state" not in ck
    assert any(not torch.equal(a, b) for a, b in zip(teacher.state_dict().values(), bundled.state_dict().values()))
    student, ck = load_lifter(out / "student.pt")
    assert ck["kind"] == "student" and ck["config"]["student"]["teacher_checkpoint"] == str(out / "teacher.pt")
    # the lift outputs are exactly lift's, with the adapted student
    summary = json.loads((out / "lift" / "summary.json").read_text())
    assert summary["checkpoint"] == str(out / "student.pt") and summary["frames_lifted"] == 320
    ref = lift_file(tracks_file, tmp_path / "ref", LiftOptions(checkpoint=out / "student.pt", max_figures=0))
    assert sorted(ref["files"]) == sorted(summary["files"])
    for f in ref["files"]:
        a, b = np.load(out / "lift" / f), np.load(tmp_path / "ref" / f)
        np.testing.assert_array_equal(a["joints_3d"], b["joints_3d"])
    assert json.loads((out / "adapt.json").read_text())["final_checkpoint"] == str(out / "student.pt")
    # each stage was a run of the training loop: its record is kept, its weights only as the shipped checkpoint
    for stage in ("teacher", "student"):
        run = out / "runs" / stage
        assert sorted(p.name for p in run.iterdir()) == ["config.yaml", "train_log.jsonl", "val_log.jsonl"]
        steps = [json.loads(ln)["step"] for ln in (run / "val_log.jsonl").read_text().splitlines()]
        assert steps[0] == 0 and steps[-1] == 3  # the start, then after the warm-up to the last step


def test_adapt_joint_finetune_mode(tracks_file, tmp_path):
    out = tmp_path / "ft"
    s = adapt(tracks_file, out, "student",
              AdaptSettings(steps=2, batch_size=16, critic_warmup=0, student_mode="finetune"),
              LiftOptions(max_figures=0))
    assert s["student_mode"] == "finetune" and np.isfinite(s["validation"]["teacher_finetuned"]["heldout_joint_2d"])
    _, ck = load_lifter(out / "student.pt")
    assert ck["kind"] == "finetune"
    teacher, ck = load_lifter(out / "teacher.pt")
    assert ck["kind"] == "teacher" and ck["val"] == s["validation"]["teacher_finetuned"]
    with pytest.raises(ValueError, match="student mode"):
        adapt(tracks_file, out, "student", AdaptSettings(steps=1, student_mode="joint"))


def test_adapt_cli_teacher_only(tracks_file, tmp_path, capsys):
    out = tmp_path / "cli"
    rc = main(["adapt", str(tracks_file), "-o", str(out), "--checkpoint", "teacher", "--steps", "2",
               "--batch-size", "16", "--max-figures", "0"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "teacher: held-out joint 2D error" in text and "student" not in text.split("adapted checkpoint")[0]
    assert (out / "teacher.pt").is_file() and not (out / "student.pt").exists()
    assert main(["lift", str(tracks_file), "-o", str(tmp_path / "l"), "--checkpoint", str(out / "teacher.pt"),
                 "--max-figures", "0"]) == 0


def test_adapt_bad_input_is_a_clear_error(tmp_path, capsys):
    few = write_tracks(tmp_path / "few.json", many_tracks(2, 50))
    out = tmp_path / "never"
    assert main(["adapt", str(few), "-o", str(out), "--steps", "2"]) == 2
    err = capsys.readouterr().err
    assert "only 100 usable person-frames" in err and "at least 200" in err
    assert not out.exists()  # nothing written
    ok = write_tracks(tmp_path / "ok.json", many_tracks(8, 40))
    image_ck = save_checkpoint({"model": {}, "model_config": {"arch": "image_regressor"}, "format_version": 1},
                               tmp_path / "image.pt")
    assert main(["adapt", str(ok), "-o", str(out), "--checkpoint", str(image_ck), "--steps", "2"]) == 2
    err = capsys.readouterr().err  # an image model is named as such, not a traceback
    assert "not a 2D-to-3D lifter" in err and "mesh-image" in err
    assert not out.exists()
    with pytest.raises(ValueError, match="--steps"):
        adapt(ok, out, "teacher", AdaptSettings(steps=0))
    with pytest.raises(ValueError, match="--minutes"):
        adapt(ok, out, "teacher", AdaptSettings(minutes=-1))
    with pytest.raises(ValueError, match="--batch-size"):
        AdaptSettings(batch_size=10_000_000)
    assert main(["adapt", str(tmp_path / "missing.json"), "-o", str(out)]) == 2
    assert "not found" in capsys.readouterr().err


@pytest.mark.slow  # run by .ci/run (pytest -m slow), not by the README's default command
def test_adapt_minutes_budget_plans_steps(tracks_file, tmp_path):
    s = adapt(tracks_file, tmp_path / "m", "teacher", AdaptSettings(minutes=0.05, batch_size=16),
              LiftOptions(max_figures=0))
    assert s["steps"]["teacher"] >= 1 and s["seconds_train"] < 60


# --------------------------------------------------------------------------- HDM05-style tracks script


def test_make_hdm05_tracks_matches_the_saved_cameras(tmp_path):
    arrays = make_mocap(n_frames=20)
    npz = tmp_path / "mocap.npz"
    np.savez(npz, **arrays)
    out = tmp_path / "tracks.json"
    assert make_hdm05_tracks.main(["--data", str(npz), "-o", str(out), "--noise-px", "0", "--seed", "1"]) == 0
    ts = track(read_detections(out))
    cams = np.load(tmp_path / "tracks.cameras.npz")
    assert len(ts.tracks) == 12 and ts.fps == 30.0 and ts.keypoint_format == "coco17"
    assert list(cams["track_ids"]) == [t.track_id for t in ts.tracks]
    assert 700 <= cams["focal"].min() and cams["focal"].max() <= 1600
    assert -5 <= cams["elevation_deg"].min() and cams["elevation_deg"].max() <= 30
    canon3d, _ = remap(arrays["joints"].astype(np.float64), MOCAP21, CANON16)
    for t in ts.tracks:
        kp, mask, frame_ids, skipped, *_ = canonical_track(t, "coco17")
        assert mask.all() and not len(skipped)
        np.testing.assert_array_equal(frame_ids, np.arange(20) + 20 * t.track_id)  # rows of the mocap npz
        R, pos = cams["R"][t.track_id], cams["position"][t.track_id]
        pc = (canon3d[frame_ids] - pos) @ R.T
        px = cams["focal"][t.track_id] * pc[..., :2] / pc[..., 2:] + cams["principal"][t.track_id]
        # limbs and the synthesised head exact (float32 file); pelvis/spine/thorax are COCO's
        # hip/shoulder midpoints, not the mocap nodes (the documented COCO-17 bias)
        same = [CANON16.index(n) for n in CANON16.joint_names if n not in ("pelvis", "spine", "thorax")]
        assert np.abs(px[:, same] - kp[:, same]).max() < 1e-2
    # scoring: a lift scores finite PA-MPJPE against the saved cameras
    lift_file(out, tmp_path / "lifted", LiftOptions(checkpoint="teacher", max_figures=0))
    res = make_hdm05_tracks.score(tmp_path / "lifted", tmp_path / "tracks.cameras.npz")
    assert res["frames"] == 240 and 0 < res["pa_mpjpe_mm"] < 300
    noisy = tmp_path / "noisy.json"
    make_hdm05_tracks.main(["--data", str(npz), "-o", str(noisy), "--noise-px", "5", "--seed", "1"])
    d = track(read_detections(noisy)).tracks[0].keypoints[..., :2] - ts.tracks[0].keypoints[..., :2]
    present = ts.tracks[0].keypoints[0, :, 2] > 0
    assert 3.5 < d[:, present].std() < 6.5 and not d[:, ~present].any()


def test_bench_adapt_plausibility_measures_known_poses(tmp_path):
    """Straight legs give 180 deg knees and constant bones a 0 CV; a 90 deg knee in half the
    frames and a bone that grows 2x show up in the % below 120 deg and a positive CV."""
    import bench_adapt

    T = 20
    rest = np.zeros((16, 3))
    names = CANON16.joint_names
    for j, p in enumerate(CANON16.parents):  # a chain hanging down: every bone 0.1 m, straight
        if p >= 0:
            rest[j] = rest[p] + [0.0, -0.1, 0.0] if "hip" not in names[j] else rest[p] + [0.1, 0.0, 0.0]
    x = np.repeat(rest[None], T, 0)
    np.savez(tmp_path / "track_0000.npz", joints_3d=x.astype(np.float32))
    p = bench_adapt.plausibility(tmp_path)
    assert p["knee_median_deg"] == pytest.approx(180.0, abs=0.1)
    assert p["knee_below_120_pct"] == 0.0 and p["bone_cv_median_pct"] == pytest.approx(0.0, abs=1e-3)
    r_knee, r_ankle = names.index("r_knee"), names.index("r_ankle")
    y = x.copy()
    y[: T // 2, r_ankle] = y[: T // 2, r_knee] + [0.0, 0.0, 0.1]  # bent 90 deg, same shin length
    np.savez(tmp_path / "track_0000.npz", joints_3d=y.astype(np.float32))
    assert bench_adapt.plausibility(tmp_path)["knee_below_120_pct"] == 50.0
    z = x.copy()
    z[T // 2:, r_ankle] = z[T // 2:, r_knee] + [0.0, -0.2, 0.0]  # shin 0.1 -> 0.2 m
    np.savez(tmp_path / "track_0000.npz", joints_3d=z.astype(np.float32))
    assert bench_adapt.plausibility(tmp_path)["bone_cv_median_pct"] == pytest.approx(100 * (1 / 3) / 15, abs=0.01)
    with pytest.raises(FileNotFoundError, match="no track"):
        bench_adapt.plausibility(tmp_path / "empty")


def test_adapt_config_learning_rate_default_and_override():
    """The measured adaptation learning rate is the default; an override replaces it."""
    from lifting.models.checkpoint import load_checkpoint, stored_args
    from lifting.models.lifters import default_checkpoint
    from trainers.adapt import ADAPT_LR, adapt_config

    args = stored_args(load_checkpoint(default_checkpoint()))
    cfg = adapt_config("teacher", args)
    assert cfg.train.lr == pytest.approx(ADAPT_LR)
    assert (cfg.model.window, cfg.model.width, cfg.model.n_blocks) == (args.window, args.width, args.n_blocks)
    assert adapt_config("finetune", args, ["train.lr=1e-5"]).train.lr == pytest.approx(1e-5)


def test_adapt_plan_default_is_a_step_count():
    from trainers.adapt import DEFAULT_STEPS, _loop_settings, _plan

    loop = dict(kv.split("=") for kv in _loop_settings("teacher", 300, 50, False))
    assert loop["train.eval_every"] == "63" and loop["train.critic_warmup"] == "50"  # 4 checks after the warm-up
    assert loop["train.select_guards"] == "[heldout_joint_2d,cycle_3d]"
    assert dict(kv.split("=") for kv in _loop_settings("student", 2, 1, True))["train.select_guards"] == \
        "[heldout_joint_2d]"  # a student's validation has no cycle term

    assert _plan(0.1, 0.2, None, None, 5.0, True) == {"teacher": DEFAULT_STEPS, "student": DEFAULT_STEPS}
    assert _plan(0.1, 0.0, 50, None, 5.0, False) == {"teacher": 50}
    assert _plan(0.5, 0.5, None, 1.0, 0.0, False) == {"teacher": 60}  # 60 s at 1 s per step pair
    assert _plan(0.5, 0.5, 10, 1.0, 0.0, False) == {"teacher": 10}  # both given: the smaller


@pytest.mark.slow  # run by .ci/run (pytest -m slow), not by the README's default command
def test_adapt_is_repeatable_and_ships_the_start_when_nothing_improves(tracks_file, tmp_path, monkeypatch):
    from trainers.adapt import SELECTION_KEY

    runs = [adapt(tracks_file, tmp_path / f"r{i}", "teacher",
                  AdaptSettings(steps=4, batch_size=16, critic_warmup=0, snapshots=True),
                  LiftOptions(max_figures=0), progress=False) for i in range(2)]
    a, b = (load_lifter(tmp_path / f"r{i}" / "teacher.pt")[0].state_dict() for i in range(2))
    assert all(torch.equal(a[k], b[k]) for k in a)  # same command, same model
    sel = runs[0]["selection"]["teacher"]
    assert sel["criterion"] == SELECTION_KEY and set(sel["by_step"]) == {0, 1, 2, 3, 4}  # no warm-up: every step
    ok = [k for k, v in sel["by_step"].items()
          if k == 0 or all(v[g] < sel["by_step"][0][g] for g in ("heldout_joint_2d", "cycle_3d"))]
    assert sel["guards"] == ["heldout_joint_2d", "cycle_3d"]  # a teacher is validated on both
    best = min(ok, key=lambda k: (sel["by_step"][k][SELECTION_KEY], k))
    assert sel["chosen_step"] == best and sel["shipped"] == ("start" if best == 0 else "adapted")
    assert sorted(p.name for p in (tmp_path / "r0" / "runs" / "teacher").glob("step_*.pt")) == [
        f"step_{i:06d}.pt" for i in (1, 2, 3, 4)]
    # a criterion that only gets worse: the starting weights ship, and adapt.json says so
    import trainers.stages as stages

    calls = iter(range(100))
    monkeypatch.setattr(stages, "validate_2d",
                        lambda *a, **k: dict.fromkeys((SELECTION_KEY, "cycle_3d"), float(next(calls))))
    worse = adapt(tracks_file, tmp_path / "worse", "teacher", AdaptSettings(steps=2, batch_size=16, critic_warmup=0),
                  LiftOptions(max_figures=0), progress=False)
    assert worse["selection"]["teacher"]["shipped"] == "start" and worse["selection"]["teacher"]["chosen_step"] == 0
    start = load_lifter("teacher")[0].state_dict()
    shipped = load_lifter(tmp_path / "worse" / "teacher.pt")[0].state_dict()
    assert all(torch.allclose(start[k].float(), shipped[k].float()) for k in start)


def test_a_snapshot_ships_only_when_it_beats_the_start_on_every_guard():
    from trainers.loop import beats_start

    start, guards = {"heldout_joint_2d": 0.30, "cycle_3d": 0.10}, ("heldout_joint_2d", "cycle_3d")
    assert beats_start({"heldout_joint_2d": 0.25, "cycle_3d": 0.09}, start, guards)
    assert not beats_start({"heldout_joint_2d": 0.25, "cycle_3d": 0.11}, start, guards)  # cycle worse: the start
    assert beats_start({"heldout_joint_2d": 0.25, "cycle_3d": 0.11}, start, guards[:1])  # a student: 2D only
    assert beats_start({"heldout_joint_2d": 0.35}, None, guards)  # no start validated: no guard


@pytest.mark.slow  # run by .ci/run (pytest -m slow), not by the README's default command
def test_adapt_output_folder_is_one_unit(tracks_file, tmp_path, monkeypatch):
    """A non-empty -o needs --overwrite (and must be an adapt output); a run that fails after
    its teacher stage leaves no teacher.pt behind; the recorded paths are the final ones."""
    import trainers.adapt as ad

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        adapt(tracks_file, busy, "teacher", AdaptSettings(steps=1, batch_size=16), LiftOptions(max_figures=0))
    with pytest.raises(ValueError, match="adapt.json"):  # --overwrite never deletes a folder that is not ours
        adapt(tracks_file, busy, "teacher", AdaptSettings(steps=1, batch_size=16),
              LiftOptions(max_figures=0, overwrite=True))
    assert sorted(p.name for p in busy.iterdir()) == ["notes.txt"]

    out = tmp_path / "out"
    calls = {"n": 0}  # Ctrl-C in the student stage, after the teacher checkpoint was written
    real_run = ad._run_stage

    def run_then_die(stage, *a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_run(stage, *a, **k)

    monkeypatch.setattr(ad, "_run_stage", run_then_die)
    with pytest.raises(KeyboardInterrupt):
        adapt(tracks_file, out, "student", AdaptSettings(steps=1, batch_size=16, critic_warmup=0),
              LiftOptions(max_figures=0), progress=False)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if "staging" in p.name]
    monkeypatch.setattr(ad, "_run_stage", real_run)
    s = adapt(tracks_file, out, "student", AdaptSettings(steps=1, batch_size=16, critic_warmup=0),
              LiftOptions(max_figures=0), progress=False)
    assert s["final_checkpoint"] == str(out / "student.pt")
    assert json.loads((out / "lift" / "summary.json").read_text())["checkpoint"] == str(out / "student.pt")
    again = adapt(tracks_file, out, "teacher", AdaptSettings(steps=1, batch_size=16),
                  LiftOptions(max_figures=0, overwrite=True), progress=False)
    assert again["final_checkpoint"] == str(out / "teacher.pt") and not (out / "student.pt").exists()
