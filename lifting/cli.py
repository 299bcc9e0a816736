"""The ``posenet3d`` command: ``train``, ``evaluate``, ``lift``, ``adapt``, ``demo``.

Known input problems end with ``error: ...`` and exit status 2, not a traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

__all__ = ["main"]


def _cmd_train(a: argparse.Namespace) -> int:
    from trainers.config import load_config
    from trainers.loop import train

    cfg = load_config(a.config, a.overrides)
    out = Path(a.out) if a.out else Path(cfg.train.out_dir) / cfg.name
    try:
        path = train(a.stage, cfg, out_dir=out, resume=a.resume)
    except KeyboardInterrupt:
        last = out / "last.pt"
        if last.is_file():
            print(f"\ninterrupted; the last checkpoint is {last} (written at every validation, every "
                  f"train.eval_every={cfg.train.eval_every} steps): continue with the same command plus "
                  f"--resume {last}", file=sys.stderr)
        else:
            print(f"\ninterrupted before the first checkpoint (step train.eval_every={cfg.train.eval_every}); "
                  f"nothing to resume: start again", file=sys.stderr)
        return 130
    print(f"checkpoint: {path}")
    return 0


def _cmd_pose_bank(a: argparse.Namespace) -> int:
    import time

    import numpy as np

    from lifting.body_model import BodyModel
    from lifting.data import load_mocap_npz, split_clips
    from lifting.pose_bank import fit_pose_bank, save_pose_bank

    t0 = time.perf_counter()
    clips = load_mocap_npz(a.data)
    clips = clips.select(split_clips(clips.seq_names, a.split))
    bm = BodyModel(a.body_model, a.gender)
    bank = fit_pose_bank(clips, bm, n_frames=a.frames, iters=a.iters, seed=a.seed)
    save_pose_bank(bank, a.output, source=a.data, split=a.split, body_model=bm.describe(),
                   note="unpaired 3D prior: SMPL fits to mocap joints (lifting.pose_bank)")
    e = bank["fit_error_mm"]
    print(f"pose bank: {len(e)} frames of {a.data} [{a.split}], marker fit error mean {e.mean():.1f} mm "
          f"(95th percentile {np.percentile(e, 95):.1f} mm) in {time.perf_counter() - t0:.0f} s -> {a.output}")
    return 0


def _cmd_export(a: argparse.Namespace) -> int:
    from lifting.models.checkpoint import export_checkpoint

    path = export_checkpoint(a.checkpoint, a.dest, half=a.half, which=a.which)
    print(f"exported: {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


def _format_table(res: dict, title: str) -> str:
    cols = ("pa_mpjpe_mm", "n_mpjpe_mm", "mpjpe_mm", "pck3d", "auc", "n")
    head = f"{'':<22}" + "".join(f"{c:>13}" for c in ("PA-MPJPE mm", "N-MPJPE mm", "MPJPE mm", "PCK3D %", "AUC %", "n"))
    lines = [title, head]
    rows = [("overall", res["overall"])] + list(res["per_content"].items())
    for name, r in rows:
        lines.append(f"{name[:22]:<22}" + "".join(
            f"{r[c]:>13d}" if c == "n" else f"{r[c]:>13.1f}" for c in cols))
    return "\n".join(lines)


def _eval_output(checkpoint: str, data: str, split: str, output: str | None) -> Path:
    """Where ``evaluate`` writes its JSON: ``-o``; else next to a user's checkpoint
    (``CKPT.eval_DATA_SPLIT.json``); else, for a bundled checkpoint (``teacher``/``student``
    or a file inside the installed package), the current folder."""
    from importlib import resources

    if output:
        return Path(output)
    name = f"{Path(checkpoint).stem}.eval_{Path(data).stem}_{split}.json"
    package = Path(str(resources.files("lifting"))).resolve()
    ckpt = Path(checkpoint)
    bundled = not ckpt.exists() or package in ckpt.resolve().parents
    return Path(name) if bundled else ckpt.with_name(name)


def _cmd_evaluate(a: argparse.Namespace) -> int:
    import torch

    from lifting.data import load_mocap_npz, split_clips
    from lifting.evaluate import evaluate_lifter
    from lifting.inference import InferenceSettings
    from lifting.models.lifters import load_lifter

    model, ckpt = load_lifter(a.checkpoint)
    clips = load_mocap_npz(a.data)
    ids = split_clips(clips.seq_names, a.split)
    if len(ids) == 0:
        raise ValueError(f"split {a.split!r} of {a.data} has no clips")
    clips = clips.select(ids)
    results = {"checkpoint": str(a.checkpoint), "kind": ckpt.get("kind"), "data": str(a.data), "split": a.split,
               "clips": int(clips.num_clips), "frames": int(len(clips.joints)), "height_m": a.height,
               "protocol": "DESIGN.md §4: 4-camera rig, canon16 joints, root-relative, mm"}
    dtype = torch.bfloat16 if a.bf16 else None
    for noise in ([0.0] + ([a.noise_px] if a.noise_px > 0 else [])):
        res = evaluate_lifter(model, clips, noise_px=noise, seed=a.seed, height_m=a.height,
                              settings=InferenceSettings(dtype=dtype))
        key = "gt_2d" if noise == 0 else f"noise_{noise:g}px"
        results[key] = res
        print(_format_table(res, f"\n{Path(a.data).name} [{a.split}] {key} ({ckpt.get('kind')}, {a.checkpoint})"))
    out = _eval_output(a.checkpoint, a.data, a.split, a.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    from lifting.io.fileio import atomic_write

    atomic_write(out, lambda tmp: Path(tmp).write_text(json.dumps(results, indent=1)))
    print(f"\nsaved: {out}")
    return 0


def _image_size(text: str) -> tuple[int, int]:
    """``"1920x1080"`` -> ``(1920, 1080)`` (argparse type of ``--image-size``)."""
    try:
        w, h = text.lower().split("x")
        return int(w), int(h)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT in pixels, e.g. 1920x1080, got {text!r}") from None


def _lift_options(a: argparse.Namespace):
    """The parsed ``lift`` arguments as :class:`lifting.options.LiftOptions` (validated there)."""
    from lifting.options import LiftOptions

    return LiftOptions(checkpoint=a.checkpoint, body_model_path=a.body_model, fps=a.fps, keypoint_format=a.format,
                       tracker=a.tracker, conf_threshold=a.conf_threshold, min_joints=a.min_joints, height_m=a.height,
                       smooth=a.smooth, smooth_window=a.smooth_window, causal=a.causal, stride=a.stride,
                       export=tuple(a.export or ()), max_figures=a.max_figures, mesh_frames=a.mesh_frames,
                       mesh_format=a.mesh_format, video=a.video, video_max_frames=a.video_max_frames,
                       overwrite=a.overwrite, uncertainty=a.uncertainty, uncertainty_samples=a.uncertainty_samples,
                       fit=a.fit, flip=a.flip,
                       image_size=a.image_size, focal_px=a.focal_px, camera=a.camera)


def _file_counts(files: list[str]) -> str:
    """``"150 track_XXXX.npz, 152 .bvh, ..."`` for the console."""
    from collections import Counter

    kinds = Counter("track_XXXX.npz" if f.endswith(".npz") else Path(f).suffix for f in files)
    return ", ".join(f"{n} {k}" for k, n in kinds.items())


def _print_lift_report(s: dict, out: Path) -> None:
    """What a lift run did and wrote, for the console (warnings to stderr)."""
    n_tr = sum(1 for t in s["tracks"] if t["frames_lifted"])
    print(f"lifted {s['frames_lifted']} frames of {n_tr} tracks ({s['frames_skipped']} frames skipped: "
          f"no pelvis or < {s['min_joints']} joints) in {s['seconds_lift']:.2f} s")
    empty = [t["track_id"] for t in s["tracks"] if not t["frames_lifted"]]
    if empty:
        ids = ", ".join(map(str, empty[:20])) + (" ..." if len(empty) > 20 else "")
        print(f"{len(empty)} of {len(s['tracks'])} tracks produced no frames (ids {ids}): none of their frames had a "
              f"visible pelvis and >= {s['min_joints']} joints above confidence {s['conf_threshold']}")
    out = out.resolve()
    print(f"outputs: {out} ({_file_counts(s['files'])}, summary.json)")
    for f in s["figures"]:
        print(f"figure: {out / f}")
    if s["meshes"]:
        print(f"meshes: {len(s['meshes'])} in {out / 'meshes'}")
    for v in s["videos"]:
        print(f"video: {out / v}")
    for w in s["reader_warnings"]:
        print(f"warning: {s['input']}: {w}", file=sys.stderr)
    for w in s["warnings"]:
        print(f"warning: {w}", file=sys.stderr)


def _set_threads(requested: int) -> None:
    """``torch.set_num_threads`` once per command (:func:`lifting.inference.choose_threads`:
    0 = auto) and say what was chosen."""
    import torch

    from lifting.inference import choose_threads

    n, why = choose_threads(requested)
    torch.set_num_threads(n)
    print(f"torch CPU threads: {why}")


def _cmd_lift(a: argparse.Namespace) -> int:
    from lifting.lift import lift_file

    _set_threads(a.threads)

    _print_lift_report(lift_file(a.tracks, a.output, _lift_options(a)), Path(a.output))
    return 0


def _frame_list(text: str) -> list[int] | str:
    if text.strip() == "all":
        return "all"
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated frame ids, got {text!r}") from None


def _cmd_demo(a: argparse.Namespace) -> int:
    from importlib import resources

    from lifting.lift import lift_file
    from lifting.models.lifters import bundled_student
    from lifting.options import LiftOptions

    example = Path(str(resources.files("lifting") / "assets" / "example_track.json"))
    student = bundled_student()
    which = "the bundled SMPL student and open body model" if student else "the bundled teacher"
    print(f"posenet3d demo: lifting the bundled example track {example.name} with {which}")
    # a re-run replaces the previous demo output (never a folder without summary.json)
    options = LiftOptions(checkpoint=student, max_figures=1, overwrite=True)
    _print_lift_report(lift_file(example, a.output, options), Path(a.output))
    return 0


def _cmd_mesh_image(a: argparse.Namespace) -> int:
    from occlusion.mesh_image import MeshImageOptions, mesh_image

    s = mesh_image(a.image, a.keypoints, a.checkpoint, a.output,
                   MeshImageOptions(image_id=a.image_id, min_keypoints=a.min_keypoints, mesh_format=a.mesh_format,
                                    overwrite=a.overwrite))
    skipped = f", skipped {len(s['skipped_people'])} with too few keypoints" if s["skipped_people"] else ""
    print(f"{s['people']} people{skipped}: {', '.join(s['files'][:4])}{' ...' if len(s['files']) > 4 else ''} "
          f"in {a.output}")
    return 0


def _add_lift_options(li: argparse.ArgumentParser, checkpoint_help: str | None = None) -> None:
    """The ``lift`` options (also ``adapt``'s); every default comes from :class:`lifting.options.LiftOptions`."""
    from lifting.options import EXPORT_FORMATS, TRACKERS, UNCERTAINTY_METHODS, LiftOptions

    D = LiftOptions.defaults()
    li.add_argument("--checkpoint", default=D["checkpoint"],
                    help=checkpoint_help or "teacher or SMPL-student checkpoint, or 'teacher'/'student' for the "
                                            "bundled ones (default: the bundled teacher)")
    li.add_argument("--fps", type=float, default=D["fps"], help="frame rate (overrides the file's meta)")
    li.add_argument("--format", default=D["keypoint_format"],
                    help="input format: coco (coco17), coco-annotations, openpose (body25, body25b, body135, coco18), "
                         "mmpose, mediapipe, h36m, halpe26, videopose3d (default: detected from the file / folder)")
    li.add_argument("--tracker", choices=TRACKERS, default=D["tracker"],
                    help="identity association for detections without track ids (default: %(default)s)")
    li.add_argument("--conf-threshold", type=float, default=D["conf_threshold"],
                    help="joints below this confidence are masked, in (0, 1] (default: %(default)s)")
    li.add_argument("--min-joints", type=int, default=D["min_joints"],
                    help="skip frames with fewer visible joints, 1-16 (default: %(default)s)")
    li.add_argument("--height", type=float, default=D["height_m"],
                    help="assumed subject height in metres (default: %(default)s)")
    li.add_argument("--max-figures", type=int, default=D["max_figures"], help="figures for the N longest tracks")
    li.add_argument("--mesh-frames", type=_frame_list, default=D["mesh_frames"],
                    help="student only: comma-separated frame ids to export meshes for, or 'all' for a mesh "
                         "sequence of every frame (default: the figures' frames)")
    li.add_argument("--mesh-format", choices=["obj", "ply"], default=D["mesh_format"], help="student mesh file format")
    li.add_argument("--video", choices=["gif", "mp4"], default=D["video"],
                    help="animation (2D input beside the 3D, mesh for a student) for the figured tracks")
    li.add_argument("--video-max-frames", type=int, default=D["video_max_frames"],
                    help="longer tracks are subsampled to this (default: %(default)s)")
    li.add_argument("--causal", action="store_true", default=D["causal"],
                    help="online mode for temporal models: each frame uses only itself and past frames")
    li.add_argument("--stride", type=int, default=D["stride"],
                    help="temporal models: one window per N frames, each giving its central N frames "
                         "(1 = a window per frame; causal mode uses 1; default: %(default)s)")
    li.add_argument("--fit", choices=["none", "track"], default=D["fit"],
                    help="track: fit each teacher lift to its own 2D (one skeleton per run, visible-joint "
                         "reprojection, smoothness, the lift as prior; BENCHMARKS 'Real input'; default: %(default)s)")
    li.add_argument("--image-size", type=_image_size, default=D["image_size"], metavar="WxH",
                    help="the video's width and height in pixels, for normalised coordinates without a size "
                         "(MediaPipe CSV)")
    li.add_argument("--focal-px", type=float, default=D["focal_px"],
                    help="camera focal length in pixels, for where people are (transl; default: a guess from the "
                         "image size)")
    li.add_argument("--camera", default=D["camera"], metavar="FILE[:NAME]",
                    help="camera calibration (Pose2Sim/anipose calib.toml; NAME picks one of several cameras) for "
                         "transl, instead of --focal-px")
    li.add_argument("--flip", action=argparse.BooleanOptionalAction, default=D["flip"],
                    help="teachers: also lift the mirrored 2D and average (test-time flip augmentation; "
                         "default: %(default)s)")
    li.add_argument("--smooth", choices=["none", "savgol"], default=D["smooth"],
                    help="Savitzky-Golay smoothing of the 2D keypoints per gap-free run before lifting")
    li.add_argument("--smooth-window", type=int, default=D["smooth_window"],
                    help="smoothing window in frames (odd, default: %(default)s)")
    li.add_argument("--export", type=lambda t: [x.strip() for x in t.split(",") if x.strip()], default=D["export"],
                    help=f"extra per-track files, comma-separated: {', '.join(EXPORT_FORMATS)} (short gaps "
                         f"interpolated and marked, long gaps as separate BVH clips)")
    li.add_argument("--body-model", default=D["body_model_path"],
                    help="student only: SMPL .pkl/.npz file or folder replacing the checkpoint's body model")
    li.add_argument("--uncertainty", choices=UNCERTAINTY_METHODS, default=D["uncertainty"],
                    help="per-joint 3D uncertainty joints_3d_std: 'flip' from the lift and its mirrored lift "
                         "(no extra lift with the test-time flip), 'sampled' from perturbed 2D copies "
                         "(--uncertainty-samples more lifts), 'off' (default: %(default)s)")
    li.add_argument("--uncertainty-samples", type=int, default=D["uncertainty_samples"],
                    help="perturbed 2D copies per track for --uncertainty sampled (default: %(default)s)")
    li.add_argument("--overwrite", action="store_true", default=D["overwrite"],
                    help="replace the outputs of a previous run in a non-empty output folder")

def _cmd_adapt(a: argparse.Namespace) -> int:
    from trainers.adapt import AdaptSettings, adapt

    options = _lift_options(a)
    settings = AdaptSettings(steps=a.steps, minutes=a.minutes, batch_size=a.batch_size, seed=a.seed,
                             student_mode=a.student_mode)
    s = adapt(a.inputs, a.output, options.checkpoint, settings, replace(options, checkpoint=None), a.critic_real)
    v = s["validation"]
    for name, sel in s["selection"].items():
        what = (f"shipping the snapshot of step {sel['chosen_step']}" if sel["shipped"] == "adapted" else
                "no snapshot improved it: shipping the starting model")
        print(f"{name}: held-out joint 2D error {100 * v[f'{name}_before']['heldout_joint_2d']:.1f}% -> "
              f"{100 * v[f'{name}_after']['heldout_joint_2d']:.1f}% of the person's 2D size "
              f"({s['steps'][name]} steps; {what})")
    print(f"adapted checkpoint: {s['final_checkpoint']} (posenet3d lift --checkpoint {s['final_checkpoint']})")
    for item in s["lifted"]:
        print(f"lifted {item['frames_lifted']} frames of {item['input']} -> {item['output']}")
    print(f"{s['seconds_total']:.0f} s in all; details in {Path(a.output) / 'adapt.json'}")
    return 0



def _add_train(sub) -> None:
    """The ``posenet3d train STAGE CONFIG`` sub-command and its arguments."""
    t = sub.add_parser("train", help="train a stage: teacher (2D only), student, finetune, supervised baseline, "
                                     "or image (the student's image branch)")
    t.add_argument("stage", choices=["teacher", "student", "finetune", "supervised", "image"])
    t.add_argument("config", help="stage YAML (e.g. configs/teacher.yaml) or a name in configs/")
    t.add_argument("overrides", nargs="*", help="key=value config overrides, e.g. train.steps=1000")
    t.add_argument("--out", default=None, help="output folder (default: train.out_dir/name)")
    t.add_argument("--resume", default=None, metavar="CKPT",
                   help="continue a killed run from its last.pt (same config; train.steps etc. may change)")
    t.set_defaults(func=_cmd_train)

def _add_pose_bank(sub) -> None:
    """The ``posenet3d pose-bank`` sub-command and its arguments."""
    pb = sub.add_parser("pose-bank", help="fit the body model to mocap: SMPL poses for the unpaired 3D prior mode")
    pb.add_argument("--data", required=True, help="mocap npz (shared format)")
    pb.add_argument("--split", default="train", choices=["train", "val", "test", "all"])
    pb.add_argument("--frames", type=int, default=20000, help="random frames to fit")
    pb.add_argument("--iters", type=int, default=300, help="optimiser iterations")
    pb.add_argument("--seed", type=int, default=0)
    pb.add_argument("--body-model", default=None, help="SMPL file/folder (default: the bundled open model)")
    pb.add_argument("--gender", default="neutral")
    pb.add_argument("-o", "--output", required=True, help="output npz")
    pb.set_defaults(func=_cmd_pose_bank)

def _add_export(sub) -> None:
    """The ``posenet3d export`` sub-command and its arguments."""
    x = sub.add_parser("export", help="strip a training checkpoint to an inference checkpoint")
    x.add_argument("checkpoint")
    x.add_argument("dest")
    x.add_argument("--half", action="store_true", help="store weights as float16 (half the size)")
    x.add_argument("--which", choices=["model", "teacher"], default="model",
                   help="'teacher': the co-trained teacher of a fine-tuning checkpoint")
    x.set_defaults(func=_cmd_export)

def _add_mesh_image(sub) -> None:
    """The ``posenet3d mesh-image`` sub-command and its arguments."""
    mi = sub.add_parser("mesh-image", help="SMPL meshes for every person of a photo (image branch)")
    mi.add_argument("image")
    mi.add_argument("--keypoints", required=True, help="COCO annotation file or COCO results JSON with the people's 2D")
    mi.add_argument("--checkpoint", required=True, help="image-branch checkpoint (posenet3d train image)")
    mi.add_argument("--image-id", type=int, default=None, help="image id in the keypoint file (default: by file name)")
    mi.add_argument("--min-keypoints", type=int, default=4)
    mi.add_argument("--mesh-format", choices=["obj", "ply"], default="obj")
    mi.add_argument("-o", "--output", required=True, help="output folder (written as a whole)")
    mi.add_argument("--overwrite", action="store_true", help="replace a previous mesh-image output in that folder")
    mi.set_defaults(func=_cmd_mesh_image)

def _add_evaluate(sub) -> None:
    """The ``posenet3d evaluate`` sub-command and its arguments."""
    e = sub.add_parser("evaluate", help="evaluate a checkpoint on mocap with the 4-camera rig protocol")
    e.add_argument("checkpoint")
    e.add_argument("--data", required=True, help="mocap npz in the shared format")
    e.add_argument("--split", default="test", choices=["test", "val", "train", "all"])
    e.add_argument("--noise-px", type=float, default=0.0, help="also evaluate with Gaussian 2D noise of this sigma")
    e.add_argument("--height", type=float, default=1.70, help="assumed height (m) for MPJPE/PCK scale")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--bf16", action="store_true", help="bfloat16 autocast")
    e.add_argument("-o", "--output", default=None,
                   help="JSON output (default: next to your checkpoint; the current folder for a bundled one)")
    e.set_defaults(func=_cmd_evaluate)

def _add_lift(sub) -> None:
    """The ``posenet3d lift`` sub-command and its arguments."""
    li = sub.add_parser("lift", help="lift 2D keypoint tracks (COCO results, OpenPose, MMPose, AlphaPose, MediaPipe, "
                                     "H36M arrays) to 3D")
    li.add_argument("tracks")
    li.add_argument("-o", "--output", required=True, help="output folder (written as a whole: replaced only with "
                                                          "--overwrite, never left half-written)")
    _add_lift_options(li)
    li.add_argument("--threads", type=int, default=0,
                    help="torch CPU threads (0 = auto: 1 when the 1-minute load average shows other work on the "
                         "cores, else all cores; default: %(default)s)")
    li.set_defaults(func=_cmd_lift)

def _add_adapt(sub) -> None:
    """The ``posenet3d adapt`` sub-command and its arguments."""
    ad = sub.add_parser("adapt", help="self-supervised fine-tuning of the bundled (or given) models on your own 2D "
                                      "tracks (no 3D), then lift them with the adapted models")
    ad.add_argument("inputs", nargs="+", help="keypoint files or folders (any format lift reads)")
    ad.add_argument("-o", "--output", required=True,
                    help="output folder: teacher.pt, student.pt, adapt.json and the lift outputs in OUTPUT/lift")
    ad.add_argument("--steps", type=int, default=None,
                    help="training steps per stage (default 300: the same command gives the same model)")
    ad.add_argument("--minutes", type=float, default=None,
                    help="a training time budget for both stages instead (machine-dependent; with --steps, the "
                         "smaller)")
    ad.add_argument("--critic-real", nargs="+", default=None, metavar="FILE",
                    help="real 2D poses for the critic (e.g. a COCO keypoint annotation file); default the inputs")
    ad.add_argument("--student-mode", choices=["distill", "finetune"], default="finetune",
                    help="student: fine-tuned jointly with the adapted teacher (default: measured better), "
                         "or distilled from it")
    ad.add_argument("--batch-size", type=int, default=256)
    ad.add_argument("--seed", type=int, default=0)
    _add_lift_options(ad, checkpoint_help="model to adapt: default the bundled single-frame teacher "
                                          "('teacher_single'; BENCHMARKS 'Adapting'), 'student' (its teacher, then the "
                                          "student), 'teacher' (the temporal teacher), or a checkpoint path")
    ad.set_defaults(func=_cmd_adapt)

def _add_demo(sub) -> None:
    """The ``posenet3d demo`` sub-command and its arguments."""
    demo_help = ("lift the bundled example track with the bundled SMPL student (meshes; the bundled teacher if "
                 "this build has no student), offline")
    d = sub.add_parser("demo", help=demo_help, description=demo_help)
    d.add_argument("-o", "--output", default="posenet3d_demo",
                   help="output folder (default ./posenet3d_demo; a previous demo output there is replaced)")
    d.set_defaults(func=_cmd_demo)


def build_parser() -> argparse.ArgumentParser:
    """The ``posenet3d`` argument parser: one sub-command per ``_add_*`` helper."""
    p = argparse.ArgumentParser(prog="posenet3d", description="Self-supervised 2D-to-3D human pose lifting.")
    sub = p.add_subparsers(dest="command", required=True)
    for add in (_add_train, _add_pose_bank, _add_export, _add_mesh_image, _add_evaluate, _add_lift, _add_adapt,
                _add_demo):
        add(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``posenet3d`` console script."""
    os.environ.setdefault("WANDB_SILENT", "true")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as e:
        if os.environ.get("POSENET3D_DEBUG"):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
