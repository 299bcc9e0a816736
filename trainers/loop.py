"""The training loop, one for every stage: progress bar, periodic validation on the val split
(DESIGN.md §4 rig, GT 2D), atomic checkpoints with everything needed to resume, a JSON-lines
loss log, optional Weights & Biases logging, and data-parallel training under ``torchrun``
(rank 0 alone writes, logs and validates)."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from omegaconf import OmegaConf
from tqdm import tqdm

from lifting.models.checkpoint import load_checkpoint, make_checkpoint, save_checkpoint
from lifting.inference import choose_threads
from lifting.io.fileio import atomic_write

from .config import TrainConfig, check_stage, config_dict
from .stages import build_stage

__all__ = ["train", "lifter_checkpoint", "beats_start"]


def lifter_checkpoint(stage, cfg: TrainConfig, step: int, val: dict | None) -> dict:
    """The checkpoint dict (:func:`lifting.models.checkpoint.make_checkpoint`): the trained
    model (weights, config with its kind, body model identity for SMPL models), the stage's
    extra entries (e.g. a co-trained teacher), the stage ``kind``, ``step``, the resolved run
    ``config``, last validation metrics ``val`` and the ``train_state`` for resuming."""
    return make_checkpoint(stage.lifter, **stage.extra_checkpoint(), kind=stage.kind, step=step,
                           config=config_dict(cfg), val=val, train_state=stage.state_dict())


def _init_wandb(cfg: TrainConfig, kind: str):
    """The W&B run of ``wandb.mode`` (online | offline), or None when it is ``disabled`` or the
    environment says ``WANDB_MODE=disabled`` (which wins over the config: wandb itself lets
    ``wandb.init(mode=...)`` win over the variable)."""
    mode = cfg.wandb.mode  # online | offline | disabled (checked by the config schema)
    if mode == "disabled" or os.environ.get("WANDB_MODE", "").strip().lower() == "disabled":
        return None
    import wandb

    return wandb.init(
        project=cfg.wandb.project, entity=cfg.wandb.entity, name=cfg.wandb.run_name or f"{cfg.name}",
        tags=list(cfg.wandb.tags), mode=mode, dir=str(cfg.train.out_dir),
        config=config_dict(cfg), job_type=kind,
    )


#: config keys a resumed run may change (everything else must match the checkpoint's run)
RESUMABLE_CHANGES = ("train.steps", "train.eval_every", "train.log_every", "train.out_dir", "train.threads",
                     "wandb.mode", "wandb.project", "wandb.entity", "wandb.run_name", "wandb.tags")


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        out.update(_flat(v, key + ".") if isinstance(v, dict) else {key: v})
    return out


def _check_resume(ck: dict, cfg: TrainConfig, kind: str, path: Path) -> None:
    if ck.get("kind") != kind:
        raise ValueError(f"--resume {path}: a {ck.get('kind')!r} checkpoint, but this run trains {kind!r}")
    if "train_state" not in ck or "config" not in ck:
        raise ValueError(f"--resume {path}: no training state (an exported/inference checkpoint cannot be resumed)")
    old, new = _flat(ck["config"]), _flat(config_dict(cfg))
    diff = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k) and k not in RESUMABLE_CHANGES]
    if diff:
        shown = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff[:6])
        raise ValueError(f"--resume {path}: the config differs from the checkpoint's run in {len(diff)} key(s): "
                         f"{shown}; only {', '.join(RESUMABLE_CHANGES)} may change")


def _dist_setup(cfg: TrainConfig) -> bool:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1): NCCL on GPUs
    (one per local rank), gloo on CPUs. Returns True if this call created the group."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return False
    gpu = cfg.train.device in ("cuda", "auto") and torch.cuda.is_available()
    if gpu:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if gpu else "gloo")
    return True


def _temp_files(out: Path, names=("last.pt", "best.pt", "train_log.jsonl", "val_log.jsonl", "config.yaml",
                                   "val_sample.png")) -> list[Path]:
    """Temporary files :func:`lifting.io.fileio.atomic_write` leaves in ``out`` when a process is
    killed (SIGKILL, power loss) while writing one of ``names`` (``.last.<random>.pt`` etc.)."""
    found = []
    for name in names:
        stem, suffix = Path(name).stem, Path(name).suffix
        found += [p for p in out.glob(f".{stem}.*{suffix}") if p.is_file()]
    return sorted(found)


def _clean_temp_files(out: Path) -> None:
    for p in _temp_files(out):
        p.unlink(missing_ok=True)


def _load_resume(resume: Path, cfg: TrainConfig, kind: str) -> dict:
    """The checkpoint to resume from, checked against this run.

    Raises:
        ValueError: missing (saying so when the run was killed while writing its first
            checkpoint), unreadable, of another stage, without training state, from a run with a
            different config, or further than ``train.steps``.
    """
    if not resume.is_file():
        partial = _temp_files(resume.parent, (resume.name,))
        if partial:
            raise ValueError(f"--resume {resume}: not found: the run was killed while writing its first checkpoint "
                             f"(a partial {partial[0].name} is left in {resume.parent}, nothing to resume); "
                             f"start it again without --resume")
    ck = load_checkpoint(resume)  # CheckpointError (ValueError) if missing/unreadable
    _check_resume(ck, cfg, kind, resume)
    if int(ck["step"]) > cfg.train.steps:
        raise ValueError(f"--resume {resume}: the checkpoint is at step {ck['step']}, past train.steps="
                         f"{cfg.train.steps}; set train.steps >= {ck['step']}")
    return ck


def _read_log(path: Path, before: int) -> list[str]:
    """Lines of a ``train_log.jsonl`` for steps below ``before``; lines that do not parse (the
    torn last line of a killed run) are dropped."""
    keep = []
    for ln in path.read_text(errors="replace").splitlines():
        try:
            rec = json.loads(ln)
        except ValueError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("step"), int) and rec["step"] < before:
            keep.append(ln)
    return keep


LOGS = ("train_log.jsonl", "val_log.jsonl")
"""The JSON-lines logs of a run: losses every ``train.log_every`` steps, and every validation."""


def _prepare_out(out: Path, cfg: TrainConfig, resumed: bool, start: int) -> None:
    """Create ``out``, remove temporary files of killed runs, write ``config.yaml``, and start
    or truncate the :data:`LOGS` (a resumed run drops the lines after its checkpoint)."""
    out.mkdir(parents=True, exist_ok=True)
    _clean_temp_files(out)
    atomic_write(out / "config.yaml", lambda tmp: OmegaConf.save(OmegaConf.create(config_dict(cfg)), tmp))
    for name in LOGS:
        log_path = out / name
        if resumed and log_path.is_file():
            keep = _read_log(log_path, start)
            atomic_write(log_path, lambda tmp: Path(tmp).write_text("".join(ln + "\n" for ln in keep)))
        elif not resumed and log_path.exists():
            log_path.unlink()


def train(kind: str, cfg: TrainConfig, out_dir: str | Path | None = None, progress: bool = True,
          resume: str | Path | None = None, sources=None) -> Path:
    """Train a ``teacher``, ``student`` (SMPL, needs a teacher checkpoint), ``finetune``,
    ``supervised`` or ``image`` (the student's image branch, :mod:`trainers.image`) model.

    Writes ``OUT/last.pt`` at every validation and at the end, ``OUT/best.pt`` for the best
    value of the stage's validation metric (``stage.best_key``: PA-MPJPE for the lifters, PCK@0.1
    for the image branch, the held-out tracks' hidden-joint 2D error when training on keypoint
    files alone with ``data.npz=null``; the signed value is kept as ``best``), ``OUT/config.yaml`` and
    ``OUT/train_log.jsonl`` (global mean losses every ``log_every`` steps), ``OUT/val_log.jsonl``
    (every validation, ``best`` true where it became best.pt), where
    ``OUT = out_dir or train.out_dir/name``. Every file is written atomically; temporary files
    of a killed run are removed when a run starts in ``OUT``; a new run that fails before its
    first checkpoint leaves nothing behind (:func:`_remove_partial_run`). Checkpoints hold the models, their
    optimisers (by name), gradient scalers, RNG states, step and the resolved config, so
    ``resume`` (a ``last.pt``) continues a killed run with the same losses as an uninterrupted one.

    Selection: with ``train.select_guards`` (validation keys, e.g. ``posenet3d adapt``'s) the
    starting model is validated and written as best.pt at step 0, and a later validation
    becomes best.pt only if it is also below the start's on every guard (never worse than the
    start by them). ``train.keep_snapshots`` keeps every validated checkpoint as
    ``OUT/step_NNNNNN.pt``. ``train.critic_warmup``: the first steps train the critic alone (and are not validated).
    ``sources`` (:class:`trainers.stages.TrackSources`): 2D training data already read, instead
    of ``data.tracks`` (what ``posenet3d adapt`` passes).

    CPU threads: ``train.threads``, 0 = auto (:func:`lifting.inference.choose_threads`: one
    thread when the 1-minute load average shows other work on the cores, else all cores;
    printed). ``train.bf16`` on a device without native bf16 trains in fp32 with one warning
    (:func:`lifting.inference.bf16_or_warn`).

    Launched by ``torchrun --nproc_per_node N`` it trains data-parallel on N processes
    (``train.batch_size`` is the global batch); rank 0 alone validates, logs, draws progress
    and writes files, and at the end the ranks check that their parameters are identical.

    Returns:
        Path of the final checkpoint (``last.pt``; it exists).

    Raises:
        ConfigError (a ValueError): what :func:`trainers.config.check_stage` finds (missing
            files, a checkpoint of the wrong kind).
        ValueError: bad data, or a resume checkpoint that is missing (saying so when the run
            was killed during its first save), of another stage, without training state, from a
            run with a different config, or past ``train.steps``.
    """
    check_stage(cfg, kind, with_sources=sources is not None)
    threads, why = choose_threads(int(cfg.train.threads))  # 0 = auto (busy cores: one thread)
    torch.set_num_threads(threads)
    tqdm.write(f"[{kind}] torch CPU threads: {why}")
    created = _dist_setup(cfg)
    out = Path(out_dir) if out_dir is not None else Path(cfg.train.out_dir) / cfg.name
    fresh = resume is None and not (out / "last.pt").exists()
    existed = out.exists()
    try:
        return _train(kind, cfg, out, progress, resume, sources)
    except BaseException:
        if fresh and (not dist.is_initialized() or dist.get_rank() == 0):
            _remove_partial_run(out, existed)
        raise
    finally:
        if created:
            dist.destroy_process_group()


def _remove_partial_run(out: Path, existed: bool) -> None:
    """A new run that failed before its first checkpoint (a full disk, a bad batch, Ctrl-C)
    leaves nothing: its ``config.yaml``, ``train_log.jsonl`` and sample figure are removed, and
    ``out`` too when this run created it and it is now empty."""
    if (out / "last.pt").exists():
        return
    for name in ("config.yaml", *LOGS, "val_sample.png"):
        (out / name).unlink(missing_ok=True)
    if not existed and out.is_dir() and not any(out.iterdir()):
        out.rmdir()


def beats_start(val: dict, start: dict | None, guards: tuple[str, ...]) -> bool:
    """Whether the validation ``val`` is below the starting model's ``start`` on every key of
    ``guards`` (``train.select_guards``); True when no start was validated."""
    return start is None or all(val[k] < start[k] for k in guards)


class _Run:
    """One training run's files and selection state (rank 0 alone writes; see :func:`train`)."""

    def __init__(self, kind: str, cfg: TrainConfig, stage, out: Path):
        self.kind, self.cfg, self.stage, self.out = kind, cfg, stage, out
        self.best, self.val, self.start_val = float("inf"), None, None
        self.guards = tuple(cfg.train.select_guards)
        self.wandb = None

    def resume_from(self, ck: dict) -> int:
        """Restore the stage and selection state of a resumed checkpoint; returns its next step."""
        self.stage.load_state_dict(ck["train_state"])
        self.best, self.val = float(ck.get("best", float("inf"))), ck.get("val")
        self.start_val = ck.get("start_val")
        return int(ck["step"]) + 1

    def validate(self, step: int) -> dict | None:
        """Validate, print one line, append to ``val_log.jsonl``, log to W&B (with a sample
        figure); None without validation data."""
        val = self.stage.validate()
        if val is None:
            return None
        tqdm.write(f"[{self.kind}] step {step}: {self.stage.describe(val)}")
        if self.wandb is not None:
            import wandb

            fig = self.stage.sample_figure(self.out / "val_sample.png")
            self.wandb.log({f"val/{k}": v for k, v in val.items()}
                           | ({} if fig is None else {"val/sample": wandb.Image(str(fig))}), step=step)
        return val

    def checkpoint(self, step: int) -> dict:
        ckpt = lifter_checkpoint(self.stage, self.cfg, step, self.val) | {"best": self.best}
        return ckpt | ({"start_val": self.start_val} if self.start_val is not None else {})

    def select_start(self) -> None:
        """With ``train.select_guards``: validate the starting model and write it as best.pt (step 0).

        Raises:
            ValueError: no validation data, or a guard the validation does not compute.
        """
        self.start_val = self.validate(0)
        if self.start_val is None:
            raise ValueError(f"train.select_guards needs validation data ({self.stage.validation_source})")
        missing = [k for k in self.guards if k not in self.start_val]
        if missing:
            raise ValueError(f"train.select_guards: {', '.join(missing)} not among the validation values "
                             f"({', '.join(self.start_val)})")
        self.val, self.best = self.start_val, self.stage.score(self.start_val)
        self._log_val(0, self.start_val, True)
        save_checkpoint(self.checkpoint(0), self.out / "best.pt")


    def evaluate_and_save(self, step: int) -> None:
        """Validate, write last.pt (and best.pt when better by the score and the guards, and
        the snapshot with ``train.keep_snapshots``)."""
        new = self.validate(step)
        improved = new is not None and self.stage.score(new) < self.best and beats_start(new, self.start_val, self.guards)
        if new is not None:
            self.val = new
            self.best = self.stage.score(new) if improved else self.best
            self._log_val(step, new, improved)
        ckpt = self.checkpoint(step)
        save_checkpoint(ckpt, self.out / "last.pt")
        if improved:
            save_checkpoint(ckpt, self.out / "best.pt")
        if self.cfg.train.keep_snapshots:
            save_checkpoint(ckpt, self.out / f"step_{step:06d}.pt")

    def log(self, step: int, logs: dict, frames_per_s: float) -> None:
        with open(self.out / "train_log.jsonl", "a") as fh:
            fh.write(json.dumps({"step": step} | logs) + "\n")
        if self.wandb is not None:
            self.wandb.log({f"train/{k}": v for k, v in logs.items()} | {"train/frames_per_s": frames_per_s},
                           step=step)

    def _log_val(self, step: int, val: dict, best: bool) -> None:
        with open(self.out / "val_log.jsonl", "a") as fh:
            fh.write(json.dumps({"step": step} | val | {"best": bool(best)}) + "\n")


def _train(kind, cfg, out: Path, progress, resume, sources) -> Path:
    rank = dist.get_rank() if dist.is_initialized() else 0
    main = rank == 0
    ck = _load_resume(Path(resume), cfg, kind) if resume is not None else None
    stage = build_stage(kind, cfg, validation=main, sources=sources)  # 3D (mocap stages) for validation only
    r = _Run(kind, cfg, stage, out)
    start = r.resume_from(ck) if ck is not None else 1
    if ck is None and stage.world > 1:  # identical start on every rank
        for m in stage.models().values():
            for t in list(m.parameters()) + list(m.buffers()):
                dist.broadcast(t.data, 0)
    if main:
        _prepare_out(out, cfg, ck is not None, start)
        if not stage.has_validation:
            tqdm.write(f"[{kind}] no validation data ({stage.validation_source}): best.pt will not be written")
        r.wandb = _init_wandb(cfg, kind)
        if r.guards and ck is None:
            r.select_start()
    t0, frames, eval_s = time.perf_counter(), 0, 0.0
    steps, bs = cfg.train.steps, cfg.train.batch_size
    bar = tqdm(range(start, steps + 1), desc=f"train {kind}", disable=not (progress and main), dynamic_ncols=True,
               mininterval=0.5 if sys.stderr.isatty() else 3.0, initial=start - 1, total=steps)
    running: dict[str, float] = {}
    for step in bar:
        stage.set_lr(step - 1)
        logs = stage.step(stage.sampler.sample(bs, stage.generator))
        frames += bs * stage.window
        for k, v in logs.items():
            running[k] = 0.9 * running.get(k, v) + 0.1 * v
        if main and (step % cfg.train.log_every == 0 or step == steps):
            bar.set_postfix({k: f"{v:.3f}" for k, v in running.items() if k in ("total", "adv", "critic", "cycle_3d")})
            r.log(step, logs, frames / max(time.perf_counter() - t0 - eval_s, 1e-9))
        # no validation during the critic warm-up: the networks do not change in it
        if main and ((step % cfg.train.eval_every == 0 and step > cfg.train.critic_warmup) or step == steps):
            te = time.perf_counter()
            r.evaluate_and_save(step)
            eval_s += time.perf_counter() - te
    if main and start > steps:  # resumed at its last step: nothing to train, the checkpoint goes to OUT
        save_checkpoint(r.checkpoint(steps), out / "last.pt")
    if stage.world > 1:
        _check_in_sync(stage)
    if main:
        _say_done(kind, stage, start, steps, time.perf_counter() - t0, eval_s, frames, out)
    if r.wandb is not None:
        _finish_wandb(r.wandb)
    return out / "last.pt"


def _say_done(kind, stage, start: int, steps: int, elapsed: float, eval_s: float, frames: int, out: Path) -> None:
    """The run's last line: steps, time, training frames/s, device (ranks, peak GPU memory)."""
    train_s = max(elapsed - eval_s, 1e-9)
    mem = ""
    if stage.device.type == "cuda":
        mem = f", peak GPU memory {torch.cuda.max_memory_allocated(stage.device) / 2**30:.2f} GiB"
    ranks = f" x {stage.world} ranks (parameters in sync)" if stage.world > 1 else ""
    tqdm.write(f"[{kind}] steps {start}-{steps} in {elapsed:.0f} s, {train_s:.0f} s training "
               f"({frames / train_s:.0f} training frames/s on {stage.device}{ranks}{mem}); "
               f"checkpoints in {out}")


def _finish_wandb(run) -> None:
    """Close the W&B run and say where it went (offline: the folder and its ``wandb sync`` command)."""
    if getattr(run, "disabled", False):  # a run wandb itself disabled
        run.finish()
        return
    offline = bool(run.offline)
    run_dir = Path(run.dir).parent  # .../wandb/offline-run-<time>-<id>/files -> the run folder
    url = None if offline else run.url
    run.finish()
    if offline:
        tqdm.write(f"W&B run saved offline in {run_dir}; upload it with: wandb sync {run_dir}")
    elif url:
        tqdm.write(f"W&B run: {url}")


def _check_in_sync(stage) -> None:
    """Every rank must end with the same parameters (they start equal and take equal steps).

    Raises:
        RuntimeError: a rank's parameters differ from rank 0's.
    """
    vec = torch.cat([p.detach().reshape(-1).double() for m in stage.models().values() for p in m.parameters()])
    ref = vec.clone()
    dist.broadcast(ref, 0)
    bad = torch.tensor([float((vec - ref).abs().max())], dtype=torch.float64, device=vec.device)
    dist.all_reduce(bad, op=dist.ReduceOp.MAX)
    if float(bad) > 0:
        raise RuntimeError(f"data-parallel ranks diverged: max parameter difference {float(bad):.3g}")
