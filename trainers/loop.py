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
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from lifting.models.checkpoint import load_checkpoint, make_checkpoint, save_checkpoint
from lifting.inference import choose_threads
from lifting.io.fileio import atomic_write

from .config import check_stage
from .stages import build_stage

__all__ = ["train", "lifter_checkpoint"]


def lifter_checkpoint(stage, cfg: DictConfig, step: int, val: dict | None) -> dict:
    """The checkpoint dict (:func:`lifting.models.checkpoint.make_checkpoint`): the trained
    model (weights, config with its kind, body model identity for SMPL models), the stage's
    extra entries (e.g. a co-trained teacher), the stage ``kind``, ``step``, the resolved run
    ``config``, last validation metrics ``val`` and the ``train_state`` for resuming."""
    return make_checkpoint(stage.lifter, **stage.extra_checkpoint(), kind=stage.kind, step=step,
                           config=OmegaConf.to_container(cfg, resolve=True), val=val, train_state=stage.state_dict())


def _init_wandb(cfg: DictConfig, kind: str):
    mode = cfg.wandb.mode  # online | offline | disabled (checked by the config schema)
    if mode == "disabled":
        return None
    import wandb

    return wandb.init(
        project=cfg.wandb.project, entity=cfg.wandb.entity, name=cfg.wandb.run_name or f"{cfg.name}",
        tags=list(cfg.wandb.tags), mode=mode, dir=str(cfg.train.out_dir),
        config=OmegaConf.to_container(cfg, resolve=True), job_type=kind,
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


def _check_resume(ck: dict, cfg: DictConfig, kind: str, path: Path) -> None:
    if ck.get("kind") != kind:
        raise ValueError(f"--resume {path}: a {ck.get('kind')!r} checkpoint, but this run trains {kind!r}")
    if "train_state" not in ck or "config" not in ck:
        raise ValueError(f"--resume {path}: no training state (an exported/inference checkpoint cannot be resumed)")
    old, new = _flat(ck["config"]), _flat(OmegaConf.to_container(cfg, resolve=True))
    diff = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k) and k not in RESUMABLE_CHANGES]
    if diff:
        shown = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff[:6])
        raise ValueError(f"--resume {path}: the config differs from the checkpoint's run in {len(diff)} key(s): "
                         f"{shown}; only {', '.join(RESUMABLE_CHANGES)} may change")


def _dist_setup(cfg: DictConfig) -> bool:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1): NCCL on GPUs
    (one per local rank), gloo on CPUs. Returns True if this call created the group."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return False
    gpu = cfg.train.device in ("cuda", "auto") and torch.cuda.is_available()
    if gpu:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if gpu else "gloo")
    return True


def _temp_files(out: Path, names=("last.pt", "best.pt", "train_log.jsonl", "config.yaml", "val_sample.png")) -> list[Path]:
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


def _load_resume(resume: Path, cfg: DictConfig, kind: str) -> dict:
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


def _prepare_out(out: Path, cfg: DictConfig, resumed: bool, start: int) -> Path:
    """Create ``out``, remove temporary files of killed runs, write ``config.yaml``, and start
    or truncate ``train_log.jsonl`` (a resumed run drops the lines after its checkpoint).
    Returns the log path."""
    out.mkdir(parents=True, exist_ok=True)
    _clean_temp_files(out)
    atomic_write(out / "config.yaml", lambda tmp: OmegaConf.save(cfg, tmp))
    log_path = out / "train_log.jsonl"
    if resumed and log_path.is_file():
        keep = _read_log(log_path, start)
        atomic_write(log_path, lambda tmp: Path(tmp).write_text("".join(ln + "\n" for ln in keep)))
    elif not resumed and log_path.exists():
        log_path.unlink()
    return log_path


def train(kind: str, cfg: DictConfig, out_dir: str | Path | None = None, progress: bool = True,
          resume: str | Path | None = None) -> Path:
    """Train a ``teacher``, ``student`` (SMPL, needs a teacher checkpoint), ``finetune``,
    ``supervised`` or ``image`` (the student's image branch, :mod:`trainers.image`) model.

    Writes ``OUT/last.pt`` at every validation and at the end, ``OUT/best.pt`` for the best
    value of the stage's validation metric (``stage.best_key``: PA-MPJPE for the lifters, PCK@0.1
    for the image branch, the held-out tracks' hidden-joint 2D error when training on keypoint
    files alone with ``data.npz=null``; the signed value is kept as ``best``), ``OUT/config.yaml`` and
    ``OUT/train_log.jsonl`` (global mean losses every ``log_every`` steps), where
    ``OUT = out_dir or train.out_dir/name``. Every file is written atomically; temporary files
    of a killed run are removed when a run starts in ``OUT``; a new run that fails before its
    first checkpoint leaves nothing behind (:func:`_remove_partial_run`). Checkpoints hold the models, their
    optimisers (by name), gradient scalers, RNG states, step and the resolved config, so
    ``resume`` (a ``last.pt``) continues a killed run with the same losses as an uninterrupted one.

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
    check_stage(cfg, kind)
    threads, why = choose_threads(int(cfg.train.threads))  # 0 = auto (busy cores: one thread)
    torch.set_num_threads(threads)
    tqdm.write(f"[{kind}] torch CPU threads: {why}")
    created = _dist_setup(cfg)
    out = Path(out_dir) if out_dir is not None else Path(cfg.train.out_dir) / cfg.name
    fresh = resume is None and not (out / "last.pt").exists()
    existed = out.exists()
    try:
        return _train(kind, cfg, out_dir, progress, resume)
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
    for name in ("config.yaml", "train_log.jsonl", "val_sample.png"):
        (out / name).unlink(missing_ok=True)
    if not existed and out.is_dir() and not any(out.iterdir()):
        out.rmdir()


def _validate(stage, kind: str, step: int, out: Path, run) -> dict | None:
    """Validate, print one line, log to W&B (with a sample figure); None without validation data."""
    val = stage.validate()
    if val is None:
        return None
    tqdm.write(f"[{kind}] step {step}: {stage.describe(val)}")
    if run is not None:
        import wandb

        fig = stage.sample_figure(out / "val_sample.png")
        run.log({f"val/{k}": v for k, v in val.items()} | ({} if fig is None else {"val/sample": wandb.Image(str(fig))}),
                step=step)
    return val


def _train(kind, cfg, out_dir, progress, resume) -> Path:
    rank = dist.get_rank() if dist.is_initialized() else 0
    main = rank == 0
    out = Path(out_dir) if out_dir is not None else Path(cfg.train.out_dir) / cfg.name
    ck = _load_resume(Path(resume), cfg, kind) if resume is not None else None
    stage = build_stage(kind, cfg, validation=main)  # 3D (mocap stages) for validation only
    start, best, val = 1, float("inf"), None
    if ck is not None:
        stage.load_state_dict(ck["train_state"])
        start, best, val = int(ck["step"]) + 1, float(ck.get("best", float("inf"))), ck.get("val")
    elif stage.world > 1:  # identical start on every rank
        for m in stage.models().values():
            for t in list(m.parameters()) + list(m.buffers()):
                dist.broadcast(t.data, 0)
    log_path = _prepare_out(out, cfg, ck is not None, start) if main else None
    if main and not stage.has_validation:
        tqdm.write(f"[{kind}] no validation data ({stage.validation_source}): best.pt will not be written")
    run = _init_wandb(cfg, kind) if main else None
    steps, bs = cfg.train.steps, cfg.train.batch_size
    t0, frames, eval_s = time.perf_counter(), 0, 0.0
    bar = tqdm(range(start, steps + 1), desc=f"train {kind}", disable=not (progress and main), dynamic_ncols=True,
               mininterval=0.5 if sys.stderr.isatty() else 3.0, initial=start - 1, total=steps)
    running: dict[str, float] = {}

    def save(step):
        ckpt = lifter_checkpoint(stage, cfg, step, val) | {"best": best}
        save_checkpoint(ckpt, out / "last.pt")
        return ckpt

    for step in bar:
        stage.set_lr(step - 1)
        batch = stage.sampler.sample(bs, stage.generator)
        logs = stage.step(batch)
        frames += bs * stage.window
        for k, v in logs.items():
            running[k] = 0.9 * running.get(k, v) + 0.1 * v
        if main and (step % cfg.train.log_every == 0 or step == steps):
            bar.set_postfix({k: f"{v:.3f}" for k, v in running.items() if k in ("total", "adv", "critic", "cycle_3d")})
            with open(log_path, "a") as fh:
                fh.write(json.dumps({"step": step} | logs) + "\n")
            if run is not None:
                run.log({f"train/{k}": v for k, v in logs.items()}
                        | {"train/frames_per_s": frames / max(time.perf_counter() - t0 - eval_s, 1e-9)}, step=step)
        if main and (step % cfg.train.eval_every == 0 or step == steps):
            te = time.perf_counter()
            new = _validate(stage, kind, step, out, run)
            improved = new is not None and stage.score(new) < best
            if new is not None:
                val, best = new, min(best, stage.score(new))
            ckpt = save(step)
            if improved:
                save_checkpoint(ckpt, out / "best.pt")
            eval_s += time.perf_counter() - te
    if main and start > steps:  # resumed at its last step: nothing to train, the checkpoint goes to OUT
        save(steps)
    elapsed = time.perf_counter() - t0
    train_s = max(elapsed - eval_s, 1e-9)
    if stage.world > 1:
        _check_in_sync(stage)
    if main:
        mem = ""
        if stage.device.type == "cuda":
            mem = f", peak GPU memory {torch.cuda.max_memory_allocated(stage.device) / 2**30:.2f} GiB"
        ranks = f" x {stage.world} ranks (parameters in sync)" if stage.world > 1 else ""
        tqdm.write(f"[{kind}] steps {start}-{steps} in {elapsed:.0f} s, {train_s:.0f} s training "
                   f"({frames / train_s:.0f} training frames/s on {stage.device}{ranks}{mem}); "
                   f"checkpoints in {out}")
    if run is not None:
        _finish_wandb(run)
    return out / "last.pt"


def _finish_wandb(run) -> None:
    """Close the W&B run and say where it went (offline: the folder and its ``wandb sync`` command)."""
    if getattr(run, "disabled", False):  # WANDB_MODE=disabled in the environment wins
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
