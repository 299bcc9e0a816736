"""The lift pipeline as one unit: validated options, one lifter interface, the output folder
as one atomic unit (replace / refuse / failure / stale staging), and what the console says."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch

import lifting.outputs
from lifting.models.checkpoint import save_checkpoint
from lifting.cli import build_parser, main
from lifting.io.fileio import clean_stale_staging, staged_output_folder
from lifting.lift import lift_file
from lifting.models.lifters import load_lifter
from lifting.options import LiftOptions
from lifting.skeletons import CANON16, COCO17
from lifting.models.teacher import Lifter
from lifting.track_lifter import LiftResult, StudentLifter, TeacherLifter, as_track_lifter

EXAMPLE = str(resources.files("lifting") / "assets" / "example_track.json")
_ASSETS = Path(str(resources.files("lifting") / "assets"))
NO_STUDENT = not (_ASSETS / "student.pt").is_file()

_STAND = {"nose": (100, 40), "left_eye": (104, 36), "right_eye": (96, 36), "left_ear": (110, 40),
          "right_ear": (90, 40), "left_shoulder": (120, 70), "right_shoulder": (80, 70), "left_elbow": (126, 110),
          "right_elbow": (74, 110), "left_wrist": (128, 148), "right_wrist": (72, 148), "left_hip": (112, 150),
          "right_hip": (88, 150), "left_knee": (114, 210), "right_knee": (86, 210), "left_ankle": (115, 270),
          "right_ankle": (85, 270)}


def _tracks_file(path: Path, n_tracks: int = 3, frames: int = 12, hipless_track: int | None = None) -> Path:
    base = np.array([_STAND[n] for n in COCO17.joint_names], np.float64)
    recs = []
    for tid in range(1, n_tracks + 1):
        for f in range(frames):
            kp = np.concatenate([base + [200.0 * tid + 2.0 * f, 0.0], np.full((17, 1), 0.9)], -1)
            if tid == hipless_track:
                kp[[COCO17.index("left_hip"), COCO17.index("right_hip")], 2] = 0.0
            recs.append({"image_id": f, "track_id": tid, "keypoints": kp.ravel().tolist()})
    path.write_text(json.dumps({"meta": {"fps": 10.0}, "annotations": recs}))
    return path


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    m = Lifter(16, window=1, width=32, n_blocks=1, root_index=CANON16.root_index)
    return save_checkpoint({"model": m.state_dict(), "model_config": m.config, "kind": "teacher"},
                           tmp_path_factory.mktemp("ck") / "single.pt")


def _listing(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize("kwargs,fragment", [
    ({"height_m": 0.0}, "--height"), ({"height_m": -1.7}, "--height"), ({"height_m": 170.0}, "metres"),
    ({"min_joints": -5}, "--min-joints"), ({"min_joints": 17}, "--min-joints"),
    ({"conf_threshold": -1.0}, "--conf-threshold"), ({"conf_threshold": 0.0}, "--conf-threshold"),
    ({"fps": 1e-6}, "--fps"), ({"fps": float("nan")}, "--fps"), ({"video_max_frames": 0}, "--video-max-frames"),
    ({"smooth_window": 4}, "--smooth-window"), ({"smooth": "kalman"}, "--smooth"), ({"export": ("fbx",)}, "fbx"),
    ({"tracker": "sort"}, "--tracker"), ({"mesh_frames": (-3,)}, "--mesh-frames"), ({"max_figures": -1}, "figures"),
    ({"mesh_format": "stl"}, "--mesh-format"), ({"video": "avi"}, "--video"),
])
def test_bad_options_are_refused_by_name(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment.replace("-", r"\-")):
        LiftOptions(**kwargs)


@pytest.mark.parametrize("argv,fragment", [
    (["--height", "0"], "--height"), (["--height", "-1.7"], "--height"), (["--min-joints", "-5"], "--min-joints"),
    (["--conf-threshold", "-1"], "--conf-threshold"), (["--fps", "1e-6"], "--fps"),
    (["--video", "gif", "--video-max-frames", "0"], "--video-max-frames"),
])
def test_cli_bad_options_fail_before_any_output(ckpt, tmp_path, capsys, argv, fragment):
    out = tmp_path / "out"
    rc = main(["lift", EXAMPLE, "-o", str(out), "--checkpoint", str(ckpt), *argv])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error:") and fragment in err and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob(".*"))


def test_cli_defaults_come_from_lift_options():
    a = build_parser().parse_args(["lift", "x.json", "-o", "o"])
    from lifting.cli import _lift_options

    assert _lift_options(a) == LiftOptions()


def test_file_frame_rate_out_of_range_is_refused(ckpt, tmp_path):
    p = _tracks_file(tmp_path / "t.json")
    doc = json.loads(p.read_text())
    doc["meta"]["fps"] = 1e-6
    p.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="frame rate"):
        lift_file(p, tmp_path / "out", LiftOptions(checkpoint=ckpt))
    assert not (tmp_path / "out").exists()


def test_reader_warnings_reach_the_console(ckpt, tmp_path, capsys):
    """Non-finite detection scores and absurd coordinates are cleaned by the reader (NaN
    scores, masked joints); the console says so, naming the input, as summary.json does."""
    p = _tracks_file(tmp_path / "t.json", n_tracks=1)
    doc = json.loads(p.read_text())
    for i, r in enumerate(doc["annotations"]):
        r["score"] = float("nan") if i % 2 else 0.9
    doc["annotations"][0]["keypoints"][0] = 3e38
    p.write_text(json.dumps(doc))
    assert main(["lift", str(p), "-o", str(tmp_path / "out"), "--checkpoint", str(ckpt)]) == 0
    err = capsys.readouterr().err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["reader_warnings"] and any("non-finite detection score" in w for w in summary["reader_warnings"])
    for w in summary["reader_warnings"]:
        assert f"warning: {p}: {w}" in err


# --------------------------------------------------------------------------- one lifter interface


def test_one_interface_for_teacher_and_student(ckpt):
    teacher = as_track_lifter(load_lifter(ckpt)[0])
    assert isinstance(teacher, TeacherLifter) and teacher.faces is None
    kp = torch.randn(6, 16, 2, generator=torch.Generator().manual_seed(0)).numpy() * 30 + 200
    res = teacher.lift(kp, np.ones((6, 16), bool))
    assert isinstance(res, LiftResult) and res.joints_3d.shape == (6, 16, 3) and res.smpl is None
    with pytest.raises(ValueError, match="student"):
        teacher.vertices(res, np.arange(2))
    if not (_ASSETS / "student.pt").is_file():
        pytest.skip("bundled student lifting/assets/student.pt not built")
    student = as_track_lifter(load_lifter("student")[0])
    assert isinstance(student, StudentLifter)
    res = student.lift(kp, np.ones((6, 16), bool))
    assert isinstance(res, LiftResult) and res.joints_3d.shape == (6, 16, 3)
    assert res.smpl.body_pose.shape == (6, 23, 3, 3) and res.smpl.cam.shape == (6, 3)
    assert student.vertices(res, np.array([0, 5])).shape == (2, student.body_model.num_vertices, 3)


@pytest.mark.skipif(NO_STUDENT, reason="bundled student lifting/assets/student.pt not built")
def test_student_is_decoded_once_per_track_and_once_for_its_pictures(tmp_path, monkeypatch):
    """The network's own forward, one decode with the track's pooled betas, and one for the
    vertices of the figure + default meshes (before: up to four decodes per track)."""
    from lifting.models.student import Student

    calls = []
    orig = Student.decode
    monkeypatch.setattr(Student, "decode", lambda self, *a, **k: calls.append(k.get("return_vertices", False))
                        or orig(self, *a, **k))
    # without the uncertainty's own batched pass (lifting.uncertainty: one more forward + decode)
    s = lift_file(EXAMPLE, tmp_path / "o", LiftOptions(checkpoint="student", max_figures=1, uncertainty="off"))
    assert calls == [False, False, True]
    assert len(s["meshes"]) == 4 and s["figures"] == ["track_0105.png"]
    assert all((tmp_path / "o" / m).is_file() for m in s["meshes"])  # meshes went through the staging folder


# --------------------------------------------------------------------------- the output folder as one unit


def test_rerun_needs_overwrite_and_replaces_everything(ckpt, tmp_path):
    out = tmp_path / "out"
    lift_file(_tracks_file(tmp_path / "three.json", n_tracks=3), out, LiftOptions(checkpoint=ckpt, max_figures=0))
    assert sorted(p.name for p in out.glob("track_*.npz")) == ["track_0001.npz", "track_0002.npz", "track_0003.npz"]
    two = _tracks_file(tmp_path / "two.json", n_tracks=2)
    with pytest.raises(ValueError, match="--overwrite"):
        lift_file(two, out, LiftOptions(checkpoint=ckpt, max_figures=0))
    s = lift_file(two, out, LiftOptions(checkpoint=ckpt, max_figures=0, overwrite=True))
    assert sorted(p.name for p in out.iterdir()) == ["summary.json", "track_0001.npz", "track_0002.npz"]
    assert s["files"] == ["track_0001.npz", "track_0002.npz"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_overwrite_never_replaces_a_folder_that_is_not_ours(ckpt, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    with pytest.raises(ValueError, match="not a posenet3d output folder"):
        lift_file(_tracks_file(tmp_path / "t.json"), out, LiftOptions(checkpoint=ckpt, overwrite=True))
    assert sorted(p.name for p in out.iterdir()) == ["thesis.tex"]


def test_output_naming_a_file_is_a_clear_error(ckpt, tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("x")
    assert main(["lift", EXAMPLE, "-o", str(target), "--checkpoint", str(ckpt)]) == 2
    err = capsys.readouterr().err
    assert "is an existing file" in err and "Not a directory" not in err and target.read_text() == "x"


def test_failure_mid_run_leaves_the_previous_outputs_intact(ckpt, tmp_path, monkeypatch):
    out = tmp_path / "out"
    tracks = _tracks_file(tmp_path / "t.json", n_tracks=3)
    lift_file(tracks, out, LiftOptions(checkpoint=ckpt, max_figures=0, export=("csv",)))
    before = _listing(out)
    real = lifting.outputs.write_track_exports
    n = []

    def flaky(folder, result, *a, **k):
        n.append(1)
        if len(n) == 2:
            raise OSError(28, "No space left on device")
        return real(folder, result, *a, **k)

    monkeypatch.setattr(lifting.outputs, "write_track_exports", flaky)
    with pytest.raises(OSError, match="No space"):
        lift_file(tracks, out, LiftOptions(checkpoint=ckpt, max_figures=0, export=("csv", "json"), overwrite=True))
    assert _listing(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "t.json"]  # no staging folder behind


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_staging_of_dead_runs_is_removed_live_ones_kept(ckpt, tmp_path):
    dead, live = _dead_pid(), os.getppid()
    stale = tmp_path / f".out.posenet3d_staging_{dead}"
    (stale / "sub").mkdir(parents=True)
    (stale / "track_0001.npz").write_bytes(b"half")
    running = tmp_path / f".out.posenet3d_staging_{live}"
    running.mkdir()
    lift_file(_tracks_file(tmp_path / "t.json"), tmp_path / "out", LiftOptions(checkpoint=ckpt, max_figures=0))
    assert not stale.exists() and running.exists()
    assert (tmp_path / "out" / "summary.json").is_file()


def test_kill_between_the_renames_restores_the_old_outputs(tmp_path):
    """The old folder set aside by a run killed before its second rename comes back."""
    aside = tmp_path / f".out.posenet3d_old_{_dead_pid()}"
    aside.mkdir()
    (aside / "summary.json").write_text("{}")
    assert clean_stale_staging(tmp_path, "out") == [aside]
    assert (tmp_path / "out" / "summary.json").read_text() == "{}" and not aside.exists()


def test_staged_folder_is_moved_into_place_only_on_success(tmp_path):
    out = tmp_path / "o"
    with pytest.raises(RuntimeError):
        with staged_output_folder(out) as st:
            (st / "a.txt").write_text("a")
            assert not out.exists()
            raise RuntimeError("boom")
    assert not out.exists() and list(tmp_path.iterdir()) == []
    with staged_output_folder(out) as st:
        (st / "summary.json").write_text("{}")
    assert [p.name for p in tmp_path.iterdir()] == ["o"] and (out / "summary.json").is_file()


# --------------------------------------------------------------------------- what the user sees


def test_console_lists_exports_empty_tracks_and_warnings(ckpt, tmp_path, capsys):
    p = _tracks_file(tmp_path / "t.json", n_tracks=3, hipless_track=2)
    out = tmp_path / "o"
    assert main(["lift", str(p), "-o", str(out), "--checkpoint", str(ckpt), "--export", "bvh,csv,json",
                 "--max-figures", "0", "--mesh-frames", "3", "--causal"]) == 0
    cap = capsys.readouterr()
    assert "2 track_XXXX.npz, 2 .bvh, 2 .csv, 2 .json, summary.json" in cap.out
    assert "1 of 3 tracks produced no frames (ids 2)" in cap.out
    assert "warning: --mesh-frames ignored" in cap.err and "warning: --causal has no effect" in cap.err
    s = json.loads((out / "summary.json").read_text())
    assert len(s["warnings"]) == 3 and s["tracker"] == "auto" and "tracking" in s
    assert s["warnings"][2].startswith("root-relative output only")  # no image size, no camera: said once


@pytest.mark.skipif(NO_STUDENT, reason="bundled student lifting/assets/student.pt not built")
def test_mesh_frames_not_in_any_track_warns(tmp_path, capsys):
    assert main(["lift", EXAMPLE, "-o", str(tmp_path / "o"), "--checkpoint", "student", "--max-figures", "0",
                 "--mesh-frames", "99999"]) == 0
    assert "warning: --mesh-frames: frame(s) [99999] are not lifted frames" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--help"], ["demo", "--help"]])
def test_demo_help_names_the_student(capsys, argv):
    with pytest.raises(SystemExit):
        main(argv)
    assert "with the bundled SMPL student" in " ".join(capsys.readouterr().out.split())


def test_evaluate_output_next_to_user_checkpoints_only(tmp_path, monkeypatch):
    from lifting.cli import _eval_output

    monkeypatch.chdir(tmp_path)
    user = tmp_path / "runs" / "best.pt"
    user.parent.mkdir()
    user.write_bytes(b"")
    assert _eval_output(str(user), "d/bandai.npz", "test", None) == user.with_name("best.eval_bandai_test.json")
    assert _eval_output("teacher", "d/bandai.npz", "test", None) == Path("teacher.eval_bandai_test.json")
    bundled = str(_ASSETS / "teacher.pt")
    assert _eval_output(bundled, "d/bandai.npz", "val", None) == Path("teacher.eval_bandai_val.json")
    assert _eval_output(bundled, "d/bandai.npz", "val", "x/e.json") == Path("x/e.json")


def test_restored_old_output_is_not_replaced_without_overwrite(tmp_path):
    aside = tmp_path / f".out.posenet3d_old_{_dead_pid()}"
    aside.mkdir()
    (aside / "summary.json").write_text("{}")
    with pytest.raises(ValueError, match="--overwrite"):
        with staged_output_folder(tmp_path / "out"):
            pass
    assert (tmp_path / "out" / "summary.json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_options_without_effect_are_named(ckpt, tmp_path):
    s = lift_file(_tracks_file(tmp_path / "t.json"), tmp_path / "o",
                  LiftOptions(checkpoint=ckpt, max_figures=0, smooth_window=5, video_max_frames=10, mesh_format="ply"))
    options = [w.split(" ")[0] for w in s["warnings"] if w.startswith("--")]
    assert options == ["--mesh-format", "--smooth-window", "--video-max-frames"]
    s = lift_file(_tracks_file(tmp_path / "t.json"), tmp_path / "p", LiftOptions(checkpoint=ckpt, max_figures=0))
    assert [w for w in s["warnings"] if w.startswith("--")] == []  # (the no-camera note is not about an option)


@pytest.mark.skipif(NO_STUDENT, reason="bundled student lifting/assets/student.pt not built")
def test_mesh_frames_all_says_how_much_it_will_write(tmp_path, capsys):
    """--mesh-frames all announces the number of files and the MB before writing them, and
    the estimate is within 25% of what is written."""
    from lifting.io.readers import read_detections
    from lifting.track import track
    from lifting.io.tracks import Track, TrackSet, write_coco_tracks

    ts = track(read_detections(Path(str(resources.files("lifting") / "assets" / "example_track.json")), "coco"))
    t = ts.tracks[0]
    short = tmp_path / "short.json"
    write_coco_tracks(TrackSet([Track(t.track_id, t.frame_ids[:3], t.keypoints[:3])], ts.fps, ts.keypoint_format,
                               ts.image_size, ""),
                      short)
    assert main(["lift", str(short), "-o", str(tmp_path / "out"), "--checkpoint", "student", "--mesh-frames", "all",
                 "--max-figures", "0", "--uncertainty", "off"]) == 0
    err = capsys.readouterr().err
    line = next(ln for ln in err.splitlines() if ln.startswith("--mesh-frames all"))
    assert "up to 3 OBJ mesh files" in line
    said = float(line.split("about ")[1].split(" MB")[0])
    written = sum(p.stat().st_size for p in (tmp_path / "out" / "meshes").iterdir()) / 2**20
    assert len(list((tmp_path / "out" / "meshes").iterdir())) == 3 and abs(said - written) < 0.25 * written


def test_help_does_not_import_torch():
    """`posenet3d --help` / `lift --help` build the parser without torch, scipy.signal or scipy.optimize (their
    import alone takes seconds): heavy imports happen where they are used (issue 23)."""
    code = ("import sys; from lifting.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'scipy.signal', 'scipy.optimize', 'roma', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out
