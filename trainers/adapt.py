"""``posenet3d adapt``: self-supervised fine-tuning of the bundled (or given) models on the
user's own 2D tracks, then lifting those tracks with the adapted models. No 3D anywhere.

1. The inputs are read into 2D-only windows the lift-time way
   (:func:`lifting.track_data.load_track_2d`); whole tracks are held out for validation.
2. **Teacher** (PoseNet3D stage 1, arXiv 2003.03473 Sec. 3.1): :class:`trainers.stages.TeacherStage`
   from the given teacher's weights (default the bundled single-frame teacher, :func:`_resolve`)
   with a fresh 2D critic whose real samples are the
   tracks' own poses (or ``critic_real`` files), masked like the fakes
   (:class:`lifting.track_data.RealPosePool`). The critic trains alone for the first
   ``critic_warmup`` steps (the teacher's learning rate is 0 then), so an untrained critic
   cannot pull the teacher off its prior.
3. **Student** (only when starting from a student), from the given student: trained jointly
   with the adapted teacher (stage 3, Sec. 3.3, :class:`trainers.stages.FinetuneStage`;
   ``student_mode="finetune"``, the default: it measured better, BENCHMARKS.md) or distilled
   from the adapted, frozen teacher (stage 2, Sec. 3.2, :class:`trainers.stages.StudentStage`;
   ``"distill"``).
4. Every stage is a run of the one training loop (:func:`trainers.loop.train`, with the
   adapt data passed as :class:`trainers.stages.TrackSources`) in ``OUT/runs/<stage>``
   (``config.yaml``, ``train_log.jsonl``, ``val_log.jsonl``; step snapshots with
   ``snapshots``). Checkpoints ``OUT/teacher.pt`` (and ``OUT/student.pt``) in the inference
   format (:func:`lifting.models.checkpoint.inference_checkpoint`; ``posenet3d lift --checkpoint`` loads them),
   ``OUT/adapt.json`` with the budget, data counts and the 3D-free validation before/after
   each stage (:func:`trainers.stages.validate_2d`), then
   :func:`lifting.lift.lift_file` of every input with the final model into ``OUT/lift`` (one
   input) or ``OUT/lift/<input name>/`` (several): exactly what ``posenet3d lift`` writes.

Budget: ``steps`` per stage (default :data:`DEFAULT_STEPS`, seeded: the same command gives the
same model), or ``minutes`` for the whole training (split between the stages in proportion to
their measured step cost after a short timing run; depends on the machine's speed). The plan
(steps, data, expected time) is printed before training.

Selection (never worse by the criterion): each stage's model is validated on the held-out
tracks before training and about :data:`CHECKS` times after the critic warm-up; the loop's
best.pt (``train.select_guards``) is the snapshot with the lowest :data:`SELECTION_KEY` among
those better than the start on every :data:`GUARD_KEYS` value, the starting model when none is
(``adapt.json`` ``selection`` says which). The learning rate is constant (``train.min_lr_ratio=1``). How well the criterion
predicts 3D error is measured in BENCHMARKS.md "Adapting" (``scripts/bench_adapt_criterion.py``).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from lifting.data import WindowSampler
from lifting.inference import choose_threads
from lifting.io.fileio import atomic_write, check_output_folder, staged_output_folder
from lifting.lift import lift_file
from lifting.models.checkpoint import inference_checkpoint, load_checkpoint, save_checkpoint, stored_args
from lifting.models.lifters import (bundled_single_frame, bundled_teacher_for_window, check_model_config,
                                    default_checkpoint, resolve_checkpoint)
from lifting.options import LiftOptions
from lifting.track_data import MIN_FRAMES, RealPosePool, TrackReading, expand_inputs, load_track_2d, read_pose_pool
from trainers.config import TrainConfig, load_config
from trainers.loop import train
from trainers.stages import TrackSources, build_stage, training_overrides

__all__ = ["adapt", "AdaptSettings", "DEFAULT_STEPS", "SELECTION_KEY", "ADAPT_LR", "adapt_config"]


DEFAULT_STEPS = 300
"""Default steps per stage (a step count, not a time: the same command gives the same model)."""

CHECKS = 4
"""Validations during a stage (every ``steps // CHECKS`` steps), besides the one before it."""

SELECTION_KEY = "heldout_joint_2d"
"""The :func:`validate_2d` value (lower is better) by which snapshots are chosen."""

GUARD_KEYS = ("heldout_joint_2d", "cycle_3d")
"""A snapshot may ship only if it beats the starting model on each of these it has (both for
a teacher; a student's validation has no cycle term): no single 3D-free value predicted 3D
error on both HDM05 and Pose2Sim, but requiring both kept the start wherever adapting made 3D
worse there (BENCHMARKS.md "Adapting: the selection criterion")."""

ADAPT_LR = 2.0e-4
"""Peak learning rate of the adapted networks. 2e-4 measured better than the fine-tuning
rate 5e-5 at 300 steps/stage: held-out joint 2D error 22.8 vs 25.2 % (3D-free, the
criterion); HDM05 student PA-MPJPE 87.6 vs 92.8 mm (BENCHMARKS.md issue 14)."""

_TIMING_STEPS = 3

MAX_BATCH = 65536
"""Largest ``--batch-size`` (windows per step; the GPU training recipe uses 65,536)."""


def _student_teacher(ck: dict) -> Path:
    """The teacher a student checkpoint was distilled from (its run's
    ``student.teacher_checkpoint``) when that file exists here, else the bundled teacher of the
    student's window (``teacher_single`` for a single-frame student, when bundled)."""
    stored = ((ck.get("config") or {}).get("student") or {}).get("teacher_checkpoint")
    if stored and Path(stored).is_file():
        return Path(stored)
    return bundled_teacher_for_window(stored_args(ck).window)


def _resolve(checkpoint: str | Path | None) -> Path:
    """The model to adapt: the given one, else the bundled single-frame teacher (the temporal
    teacher when this build has no single-frame one): adapting the temporal teacher made 3D
    worse at every snapshot and the student lifts worse than the teachers on real input
    (BENCHMARKS.md "Adapting: the selection criterion")."""
    if checkpoint is None:
        return bundled_single_frame() or default_checkpoint()
    return resolve_checkpoint(checkpoint)


def adapt_config(stage: str, args, overrides: list[str] | None = None) -> TrainConfig:
    """The stage config of an adaptation run: ``configs/<stage>.yaml`` with the model's
    architecture (``args``: its checkpoint's :func:`lifting.models.checkpoint.stored_args`,
    through :func:`trainers.stages.training_overrides`), random views about the body's axis
    (``views.rotate_about=body``), no mocap (``data.npz=null``), a constant network learning
    rate :data:`ADAPT_LR` (critic 2e-4), losses logged every 20 steps, and ``overrides``.

    Raises:
        trainers.config.ConfigError: an unknown key or bad value in ``overrides``.
    """
    base = ["data.npz=null", f"train.lr={ADAPT_LR}", "train.critic_lr=2.0e-4", "train.min_lr_ratio=1.0",
            "train.log_every=20",
            # the user's cameras are unknown and often raised: random views about the body's
            # own up axis (the same as the camera's for level cameras; BENCHMARKS.md issue 15)
            "views.rotate_about=body"]
    return load_config(stage, training_overrides(args) + base + list(overrides or []))


def _loop_settings(stage: str, steps: int, warmup: int, snapshots: bool) -> list[str]:
    """The training-loop keys of one adapted stage: ``steps`` steps, the critic alone for the
    first ``warmup``, about :data:`CHECKS` validations after it (and the last step), selection
    guarded by :data:`GUARD_KEYS` (a student's validation has no cycle term: its first only)."""
    guards = GUARD_KEYS if stage == "teacher" else GUARD_KEYS[:1]
    every = max(1, math.ceil((steps - warmup) / CHECKS))
    return [f"train.steps={steps}", f"train.critic_warmup={warmup}", f"train.eval_every={every}",
            f"train.select_guards=[{','.join(guards)}]", f"train.keep_snapshots={bool(snapshots)}"]


def _timed_steps(stage, batch_size: int, n: int) -> float:
    """Seconds per step of a throw-away ``stage``: one untimed step (the first one pays for
    lazy initialisation: timing it made the plan up to 2x short, BENCHMARKS.md), then ``n``."""
    t0 = None
    for i in range(n + 1):
        stage.set_lr(0)
        stage.step(stage.sampler.sample(batch_size, stage.generator))
        t0 = time.perf_counter() if i == 0 else t0
    return (time.perf_counter() - t0) / max(n, 1)


@dataclass(frozen=True)
class AdaptSettings:
    """The training knobs of :func:`adapt` (the CLI's ``adapt`` options).

    Attributes:
        steps: steps per stage (None = :data:`DEFAULT_STEPS` unless ``minutes`` is given).
        minutes: a training time budget for all stages instead (with ``steps``, the smaller).
        batch_size: windows per step. critic_warmup: steps the 2D critic trains alone.
        val_fraction: share of the tracks held out for validation. seed: all randomness.
        min_frames: fewest usable person-frames accepted.
        student_mode: ``"finetune"`` (stage 3, joint) or ``"distill"`` (stage 2) for a student.
        overrides: extra config ``key=value`` for every stage (e.g. ``train.lr=1e-3``).
        snapshots: also save every validated snapshot in ``OUT/snapshots``.

    Raises:
        ValueError: a value out of range, naming it.
    """

    steps: int | None = None
    minutes: float | None = None
    batch_size: int = 256
    critic_warmup: int = 50
    val_fraction: float = 0.1
    seed: int = 0
    min_frames: int = MIN_FRAMES
    student_mode: str = "finetune"
    overrides: tuple[str, ...] = ()
    snapshots: bool = False

    def __post_init__(self) -> None:
        if self.steps is not None and int(self.steps) < 1:
            raise ValueError(f"--steps must be >= 1, got {self.steps}")
        if self.minutes is not None and not (float(self.minutes) > 0 and math.isfinite(float(self.minutes))):
            raise ValueError(f"--minutes must be a positive number, got {self.minutes}")
        if not 1 <= int(self.batch_size) <= MAX_BATCH or int(self.critic_warmup) < 0:
            raise ValueError(f"--batch-size must be in [1, {MAX_BATCH}] and critic_warmup >= 0, got "
                             f"{self.batch_size}, {self.critic_warmup}")
        if self.student_mode not in ("distill", "finetune"):
            raise ValueError(f"student mode must be 'distill' or 'finetune', got {self.student_mode!r}")
        object.__setattr__(self, "overrides", tuple(self.overrides or ()))


def _plan(t_step: float, s_step: float, steps: int | None, minutes: float | None, spent_s: float,
          with_student: bool) -> dict[str, int]:
    """Steps per stage: ``steps`` (default :data:`DEFAULT_STEPS`), or what fits in ``minutes``
    of training after ``spent_s`` seconds at the timed seconds per step (the smaller of the two
    when both are given)."""
    n = int(steps) if steps is not None else (DEFAULT_STEPS if minutes is None else None)
    if minutes is not None:
        fit = max(1, int((60.0 * float(minutes) - spent_s) / (t_step + s_step)))
        n = fit if n is None else min(n, fit)
    return {"teacher": n} | ({"student": n} if with_student else {})


def _say_plan(plan: dict, split, t_step: float, s_step: float, batch_size: int) -> str:
    """One line: steps, data and expected time of the training."""
    d = split.summary
    eta = plan["teacher"] * t_step + plan.get("student", 0) * s_step
    stages = " + ".join(f"{k} {v} steps" for k, v in plan.items())
    return (f"adapt plan: {stages} (batch {batch_size}) on {d.get('train_frames', '?')} training frames "
            f"({d.get('tracks_usable', '?')} usable tracks, {d.get('val_tracks', 0)} held out for validation); "
            f"expected ~{eta:.0f} s of training (timed: {t_step:.3f} s per teacher step"
            + (f", {s_step:.3f} s per student step)" if "student" in plan else ")"))


def _lift_inputs(files: list[str], out: Path, o: LiftOptions, final: Path, progress: bool) -> list[dict]:
    """Lift every input with the final model into ``out/lift`` (one input) or
    ``out/lift/<stem>`` (several), exactly as ``posenet3d lift`` does."""
    lifted, stems = [], [Path(p).stem for p in files]
    for i, p in enumerate(files):
        dest = out / "lift"
        if len(files) > 1:
            dest = dest / (stems[i] if stems.count(stems[i]) == 1 else f"{stems[i]}_{i}")
        s = lift_file(p, dest, replace(o, checkpoint=final, overwrite=True, progress=progress))
        lifted.append({"input": p, "output": str(dest), "frames_lifted": s["frames_lifted"]})
    return lifted


def adapt(inputs, out_dir: str | Path, checkpoint: str | Path | None = None,
          settings: AdaptSettings = AdaptSettings(), options: LiftOptions = LiftOptions(), critic_real=None,
          progress: bool = True) -> dict:
    """Adapt a model to ``inputs`` and lift them (see the module docstring).

    Args:
        inputs: keypoint files/folders (any format ``lift`` reads).
        out_dir: output folder (created): ``teacher.pt`` (``student.pt``), ``adapt.json``, the
            training runs in ``OUT/runs/<stage>`` and the lift outputs in ``OUT/lift`` (one
            input) or ``OUT/lift/<input stem>``.
        checkpoint: default (None) the bundled single-frame teacher (:func:`_resolve`);
            ``"student"`` (adapt the student's teacher, then the student), ``"teacher"`` (the
            temporal teacher), or a checkpoint path (a student: its run's
            ``student.teacher_checkpoint`` or the bundled teacher of its window is adapted first).
        settings: :class:`AdaptSettings` (budget, batch, seed, student mode, ...).
        options: the lift options (:class:`lifting.options.LiftOptions`): ``keypoint_format``,
            ``fps``, ``tracker``, ``conf_threshold`` and ``min_joints`` also govern reading the
            training input; ``checkpoint`` is replaced by the adapted model for the final lift.
        critic_real: files of real 2D poses for the critic (e.g. a COCO annotation file);
            default the training tracks' own poses.
        progress: progress bars and the printed plan.

    Returns:
        The summary written to ``OUT/adapt.json`` (``selection`` per stage: which snapshot
        shipped and the criterion at each validated step).

    Raises:
        ValueError: too little usable input (< ``settings.min_frames``), unreadable inputs or
            checkpoint, a checkpoint whose window cannot be trained on the inputs.
    """
    t_start = time.perf_counter()
    check_output_folder(out_dir, options.overwrite, marker="adapt.json")  # before any long work
    job = _prepare(inputs, checkpoint, settings, options, critic_real)
    out, st = Path(out_dir), settings
    plan = _plan(job.t_step, job.s_step, st.steps, st.minutes, time.perf_counter() - t_start, job.student is not None)
    if progress:
        print(_say_plan(plan, job.split, job.t_step, job.s_step, st.batch_size), flush=True)
    summary: dict = {"inputs": [str(p) for p in expand_inputs(inputs)], "checkpoint": str(job.ckpt_path),
                     "teacher_start": str(job.teacher_path), "data": job.split.summary, "steps": plan,
                     "critic_warmup": min(int(st.critic_warmup), plan["teacher"] // 2), "batch_size": st.batch_size,
                     "student_mode": st.student_mode, "seed": st.seed,
                     "seconds_per_step": {"teacher": round(job.t_step, 4), "student": round(job.s_step, 4)},
                     "validation": {"held_out": "tracks" if job.split.val is not None else
                                    "training tracks (one track: nothing to hold out)"}, "selection": {}}
    write_summary = lambda folder: atomic_write(folder / "adapt.json",  # noqa: E731
                                                lambda tmp: Path(tmp).write_text(json.dumps(summary, indent=1)))
    with staged_output_folder(out, overwrite=options.overwrite, marker="adapt.json") as staging:
        final = _train(job, plan, st, _Folders(staging, out), summary, progress)
        summary |= {"seconds_train": round(time.perf_counter() - t_start, 1), "final_checkpoint": str(final),
                    "runs": {k: str(out / "runs" / k) for k in plan},
                    "lifted": "not yet: the models are complete, the lift of the inputs follows"}
        write_summary(staging)
    # the models are in place (one rename); the lift writes its own folder atomically, then the summary
    summary["lifted"] = _lift_inputs(summary["inputs"], out, options, final, progress)
    summary["seconds_total"] = round(time.perf_counter() - t_start, 1)
    write_summary(out)
    return summary


@dataclass
class _Job:
    """What :func:`_prepare` sets up for an adaptation: paths, data, the teacher's model config
    and config overrides, the timed seconds per step, and the student's stage name, model
    config and config overrides (``student`` None when adapting a teacher)."""

    ckpt_path: Path
    teacher_path: Path
    split: object
    sources: TrackSources
    t_args: object  # the teacher's lifting.models.teacher.TeacherConfig
    t_over: list[str]
    t_step: float
    s_step: float = 0.0
    student: tuple | None = None  # (stage name, the student's StudentConfig, config overrides)


@dataclass(frozen=True)
class _Folders:
    """Where a stage writes (``staging``) and where that will be once complete (``out``)."""

    staging: Path
    out: Path


def _prepare(inputs, checkpoint, st: AdaptSettings, o: LiftOptions, critic_real) -> _Job:
    """Resolve the model, read the data, and time a step of each stage (on throw-away stages)."""
    ckpt_path = _resolve(checkpoint)
    ck = load_checkpoint(ckpt_path)
    is_student = check_model_config(ck["model_config"], str(ckpt_path)).outputs_smpl  # a 2D lifter, else a clear error
    teacher_path = _student_teacher(ck) if is_student else ckpt_path
    t_args = stored_args(ck if teacher_path == ckpt_path else load_checkpoint(teacher_path), str(teacher_path))
    window = t_args.window
    reading = TrackReading(o.keypoint_format, o.fps, o.conf_threshold, o.min_joints, o.tracker)
    split = load_track_2d(inputs, reading, window=window, val_fraction=st.val_fraction, seed=st.seed,
                          min_frames=st.min_frames)
    pool = read_pose_pool(critic_real, conf_threshold=o.conf_threshold, window=window) if critic_real else split.train
    sources = TrackSources(WindowSampler(split.train, window), RealPosePool(pool, window),
                           split.val if split.val is not None else split.train)
    ov = [f"seed={st.seed}", f"train.batch_size={st.batch_size}"] + list(st.overrides)
    t_over = ov + [f"model.init_checkpoint={teacher_path}"]
    t_cfg = adapt_config("teacher", t_args, t_over)
    # timed with the threads the training will use (2 threads on busy cores ran ~10x slower: a
    # plan of 549 s for 80 s of training)
    torch.set_num_threads(choose_threads(t_cfg.train.threads)[0])
    probe = build_stage("teacher", t_cfg, sources=sources)
    job = _Job(ckpt_path, teacher_path, split, sources, t_args, t_over,
               _timed_steps(probe, st.batch_size, _TIMING_STEPS))
    if is_student:  # timed against the unadapted teacher; the run trains on the adapted one
        name = "student" if st.student_mode == "distill" else "finetune"
        job.student = (name, stored_args(ck, str(ckpt_path)), ov + [f"model.init_checkpoint={ckpt_path}"])
        probe = build_stage(name, adapt_config(name, job.student[1], job.student[2]
                                               + [f"student.teacher_checkpoint={teacher_path}"]), sources=sources)
        job.s_step = _timed_steps(probe, st.batch_size, 2)
    return job


def _run_stage(name: str, cfg: TrainConfig, job: _Job, run_dir: Path, progress: bool) -> dict:
    """One adapted stage: a run of :func:`trainers.loop.train` in ``run_dir`` on the job's data.

    Returns:
        The selection: ``criterion``, ``guards``, ``by_step {step: validation}`` (0 = the
        start), ``chosen_step`` (best.pt's: 0 when no snapshot beat the start) and ``shipped``.
    """
    train(name, cfg, run_dir, progress=progress, sources=job.sources)
    by_step, chosen = {}, 0
    for ln in (run_dir / "val_log.jsonl").read_text().splitlines():
        rec = json.loads(ln)
        step = rec.pop("step")
        chosen = step if rec.pop("best") else chosen  # the last validation that became best.pt
        by_step[step] = rec
    return {"criterion": SELECTION_KEY, "guards": list(cfg.train.select_guards), "by_step": by_step,
            "chosen_step": chosen, "shipped": "adapted" if chosen else "start"}


def _ship(best: dict, dest: Path, which: str = "model", teacher_at: Path | None = None) -> dict:
    """Write the inference part of a run's loaded best.pt ``best``
    (:func:`lifting.models.checkpoint.inference_checkpoint`) to ``dest``; a student's recorded
    ``student.teacher_checkpoint`` becomes ``teacher_at`` (its path once the output is in
    place). Returns the shipped validation (``val``)."""
    slim = inference_checkpoint(best, which=which, source=str(dest))
    if teacher_at is not None:
        run = slim["config"]  # a new dict, so that ``best`` (shipped again for the teacher) is unchanged
        slim["config"] = run | {"student": run["student"] | {"teacher_checkpoint": str(teacher_at)}}
    save_checkpoint(slim, dest)
    return slim["val"]


def _without_teacher(val: dict) -> dict:
    return {k: v for k, v in val.items() if not k.startswith("teacher_")}


def _train(job: _Job, plan: dict, st: AdaptSettings, where: _Folders, summary: dict, progress: bool) -> Path:
    """The teacher stage, then the student's when adapting a student; each ships its best.pt
    (:func:`_run_stage`). Everything is written into ``where.staging``; the paths recorded (and
    returned) are those in ``where.out``. Returns the final checkpoint's path in ``where.out``."""
    runs, val = where.staging / "runs", summary["validation"]
    t_cfg = adapt_config("teacher", job.t_args,
                         job.t_over + _loop_settings("teacher", plan["teacher"], summary["critic_warmup"], st.snapshots))
    sel = summary["selection"]["teacher"] = _run_stage("teacher", t_cfg, job, runs / "teacher", progress)
    best = load_checkpoint(runs / "teacher" / "best.pt")
    val |= {"teacher_before": sel["by_step"][0], "teacher_after": _ship(best, where.staging / "teacher.pt")}
    _drop_weights(runs / "teacher")
    if job.student is None:
        return where.out / "teacher.pt"
    name, s_args, over = job.student
    warmup = min(int(st.critic_warmup), plan["student"] // 2)
    s_cfg = adapt_config(name, s_args, over + [f"student.teacher_checkpoint={where.staging / 'teacher.pt'}"]
                         + _loop_settings(name, plan["student"], warmup, st.snapshots))
    sel = summary["selection"]["student"] = _run_stage(name, s_cfg, job, runs / "student", progress)
    best = load_checkpoint(runs / "student" / "best.pt")
    val |= {"student_before": _without_teacher(sel["by_step"][0]),
            "student_after": _without_teacher(_ship(best, where.staging / "student.pt",
                                                    teacher_at=where.out / "teacher.pt"))}
    if name == "finetune":  # the co-trained teacher of the chosen step replaces the stage-1 one
        val["teacher_finetuned"] = _ship(best, where.staging / "teacher.pt", which="teacher")
    _drop_weights(runs / "student")
    return where.out / "student.pt"


def _drop_weights(run_dir: Path) -> None:
    """A shipped run keeps its record (config, logs, snapshots); its last.pt and best.pt (the
    latter exported as the stage's checkpoint) are removed."""
    for name in ("last.pt", "best.pt"):
        (run_dir / name).unlink(missing_ok=True)
