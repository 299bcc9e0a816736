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

import numpy as np
import torch
import torch.distributed as dist
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from lifting.data import eval_views, load_mocap_npz, split_clips
from lifting.evaluate import evaluate_lifter

from lifting.checkpoint import load_checkpoint, save_checkpoint
from lifting.io.fileio import atomic_write
from .stages import build_stage

__all__ = ["train", "lifter_checkpoint"]


def lifter_checkpoint(stage, cfg: DictConfig, step: int, val: dict | None) -> dict:
    """The checkpoint dict: lifter weights, its constructor config, the resolved run config,
    step, stage kind, last validation metrics, the training state for resuming, and for the
    SMPL student the body model it was trained with (``body_model``)."""
    extra = {"body_model": stage.lifter.body_model.describe()} if hasattr(stage.lifter, "body_model") else {}
    extra |= stage.extra_checkpoint()
    return extra | {
        "model": stage.lifter.state_dict(),
        "model_config": dict(stage.lifter.config),
        "kind": stage.kind,
        "step": step,
        "config": OmegaConf.to_container(cfg, resolve=True),
        "val": val,
        "train_state": stage.state_dict(),
        "format_version": 1,
    }


def _init_wandb(cfg: DictConfig, kind: str):
    mode = str(cfg.wandb.mode)
    if mode == "disabled":
        return None
    if mode not in ("online", "offline"):
        raise ValueError(f"wandb.mode must be online, offline or disabled, got {mode!r}")
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
    gpu = str(cfg.train.device) in ("cuda", "auto") and torch.cuda.is_available()
    if gpu:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if gpu else "gloo")
    return True


def _sample_figure(stage, val_views, path: Path) -> Path:
    """Figure of a few validation frames (2D input beside the model's 3D), for W&B."""
    from lifting.inference import lift_frames, metric_scale
    from lifting.viz import plot_track_frames

    n = min(int(val_views.seq_offsets[1]), 120)
    kp = torch.as_tensor(val_views.keypoints_2d[0, :n]).float().to(stage.device)
    mask = torch.ones(kp.shape[:-1], dtype=torch.bool, device=stage.device)
    pred = metric_scale(lift_frames(stage.lifter, kp, mask).cpu(), val_views.skeleton).numpy()
    return plot_track_frames(path, val_views.skeleton, kp.cpu().numpy(), mask.cpu().numpy(), pred, np.arange(n),
                             title="validation sample")


def train(kind: str, cfg: DictConfig, out_dir: str | Path | None = None, progress: bool = True,
          resume: str | Path | None = None) -> Path:
    """Train a ``teacher``, ``student`` (SMPL, needs a teacher checkpoint), ``finetune``,
    ``supervised`` or ``image`` (the student's image branch, :mod:`trainers.image`) model.

    Writes ``OUT/last.pt`` at every validation and at the end, ``OUT/best.pt`` for the best
    validation PA-MPJPE (image branch: the best PCK@0.1, stored negated in ``best``; keypoint files
    alone, ``data.npz=null``: the lowest held-out-track hidden-joint 2D error, no 3D), and ``OUT/train_log.jsonl`` (global mean losses every ``log_every``
    steps), where ``OUT = out_dir or train.out_dir/name``. Checkpoints hold the models, their
    optimisers, gradient scalers, RNG states, step and the resolved config, so ``resume``
    (a ``last.pt``) continues a killed run with the same losses as an uninterrupted one.

    Launched by ``torchrun --nproc_per_node N`` it trains data-parallel on N processes
    (``train.batch_size`` is the global batch); rank 0 alone validates, logs, draws progress
    and writes files, and at the end the ranks check that their parameters are identical.

    Returns:
        Path of the final checkpoint (``last.pt``).

    Raises:
        ValueError: bad config values, or a resume checkpoint that is missing, of another
            stage, without training state, or from a run with a different config.
    """
    if int(cfg.train.threads) > 0:
        torch.set_num_threads(int(cfg.train.threads))
    created = _dist_setup(cfg)
    try:
        return _train(kind, cfg, out_dir, progress, resume)
    finally:
        if created:
            dist.destroy_process_group()


def _train(kind, cfg, out_dir, progress, resume) -> Path:
    rank = dist.get_rank() if dist.is_initialized() else 0
    main = rank == 0
    out = Path(out_dir) if out_dir is not None else Path(cfg.train.out_dir) / str(cfg.name)
    ck = None
    if resume is not None:
        resume = Path(resume)
        ck = load_checkpoint(resume)  # CheckpointError (ValueError) if missing/unreadable
        _check_resume(ck, cfg, kind, resume)
    if kind == "image":  # COCO-format images; validated by its own 2D metrics
        from .image import build_image_stage

        stage, val_views = build_image_stage(cfg), None
    else:
        # data.npz=null: training on keypoint files alone (data.tracks), validated without 3D
        clips = load_mocap_npz(cfg.data.npz) if cfg.data.npz else None
        stage = build_stage(kind, cfg, clips)
        ids = split_clips(clips.seq_names, cfg.data.val_split) if clips is not None else []
        if int(cfg.data.val_max_clips) > 0:
            ids = ids[:: max(1, len(ids) // int(cfg.data.val_max_clips))][: int(cfg.data.val_max_clips)]
        val_views = eval_views(clips.select(ids)) if len(ids) and main else None  # 3D for validation only
        del clips
    start, best, val = 1, float("inf"), None
    if ck is not None:
        stage.load_state_dict(ck["train_state"])
        start, best, val = int(ck["step"]) + 1, float(ck.get("best", float("inf"))), ck.get("val")
    elif stage.world > 1:  # identical start on every rank
        for m in stage.models().values():
            for t in list(m.parameters()) + list(m.buffers()):
                dist.broadcast(t.data, 0)
    log_path = out / "train_log.jsonl"
    if main:
        out.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(cfg, out / "config.yaml")
        if ck is not None and log_path.is_file():  # drop lines the killed run wrote after its checkpoint
            keep = [ln for ln in log_path.read_text().splitlines() if ln and json.loads(ln)["step"] < start]
            atomic_write(log_path, lambda tmp: Path(tmp).write_text("".join(ln + "\n" for ln in keep)))
        elif ck is None and log_path.exists():
            log_path.unlink()
    run = _init_wandb(cfg, kind) if main else None
    steps, bs = int(cfg.train.steps), int(cfg.train.batch_size)
    t0, frames, eval_s = time.perf_counter(), 0, 0.0
    bar = tqdm(range(start, steps + 1), desc=f"train {kind}", disable=not (progress and main), dynamic_ncols=True,
               mininterval=0.5 if sys.stderr.isatty() else 30.0, initial=start - 1, total=steps)
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
        if main and (step % int(cfg.train.log_every) == 0 or step == steps):
            bar.set_postfix({k: f"{v:.3f}" for k, v in running.items() if k in ("total", "adv", "critic", "cycle_3d")})
            with open(log_path, "a") as fh:
                fh.write(json.dumps({"step": step} | logs) + "\n")
            if run is not None:
                run.log({f"train/{k}": v for k, v in logs.items()}
                        | {"train/frames_per_s": frames / max(time.perf_counter() - t0 - eval_s, 1e-9)}, step=step)
        if main and (step % int(cfg.train.eval_every) == 0 or step == steps):
            te = time.perf_counter()
            if kind == "image" and main and stage.val_sampler is not None:
                val = stage.validate()
                tqdm.write(f"[{kind}] step {step}: val PCK@0.1 {val['pck']:.1f}%, 2D error {val['err_pct']:.1f}% of the "
                           f"box, wrong person {val['wrong_person_pct']:.1f}% ({val['people']} people)")
                improved = -val["pck"] < best
                best = min(best, -val["pck"])
                if run is not None:
                    import wandb

                    fig = stage.sample_figure(out / "val_sample.png")
                    run.log({f"val/{k}": v for k, v in val.items()} | {"val/sample": wandb.Image(fig)}, step=step)
            elif val_views is not None:
                val = {}
                for prefix, model in stage.eval_models().items():
                    res = evaluate_lifter(model, val_views)["overall"]
                    val |= {f"{prefix}{k}": v for k, v in res.items()}
                    tqdm.write(f"[{kind}] step {step}: {prefix.rstrip('_') or 'val'} PA-MPJPE {res['pa_mpjpe_mm']:.1f} mm, "
                               f"N-MPJPE {res['n_mpjpe_mm']:.1f} mm, MPJPE {res['mpjpe_mm']:.1f} mm")
                improved = val["pa_mpjpe_mm"] < best  # the main model's (the student's when fine-tuning)
                best = min(best, val["pa_mpjpe_mm"])
                if run is not None:
                    import wandb

                    fig = _sample_figure(stage, val_views, out / "val_sample.png")
                    run.log({f"val/{k}": v for k, v in val.items() if k.split("_")[-1] != "n"}
                            | {"val/sample": wandb.Image(str(fig))}, step=step)
            elif getattr(stage, "val_tracks", None) is not None and main:  # held-out tracks, no 3D
                from .adapt import validate_2d

                val = validate_2d(stage, stage.val_tracks)
                tqdm.write(f"[{kind}] step {step}: held-out tracks: hidden-joint 2D error "
                           f"{100 * val['heldout_joint_2d']:.1f}% of the person's size")
                improved = val["heldout_joint_2d"] < best
                best = min(best, val["heldout_joint_2d"])
            else:
                improved = False
            ckpt = save(step)
            if improved:
                save_checkpoint(ckpt, out / "best.pt")
            eval_s += time.perf_counter() - te
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
        run.finish()
    return out / "last.pt"


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


def export_lifter(ckpt_path: str | Path, dest: str | Path, half: bool = False, which: str = "model") -> Path:
    """Strip a training checkpoint to the inference part (weights, model config, run config,
    validation), e.g. for shipping in the package; written atomically. ``half`` stores the
    weights as float16 (half the size; :func:`lifting.lift.load_lifter` loads them into a
    float32 model). ``which="teacher"`` extracts the co-trained teacher of a fine-tuning
    checkpoint.

    Raises:
        lifting.checkpoint.CheckpointError / ValueError: unreadable checkpoint, or no teacher in it.
    """
    ck = load_checkpoint(ckpt_path)
    if which == "teacher":
        if "teacher_model" not in ck:
            raise ValueError(f"{ckpt_path}: no co-trained teacher in this checkpoint (only fine-tuning has one)")
        ck = {k: v for k, v in ck.items() if k not in ("body_model",)} | {
            "model": ck["teacher_model"], "model_config": ck["teacher_model_config"], "kind": "teacher",
            "val": {k[len("teacher_"):]: v for k, v in (ck.get("val") or {}).items() if k.startswith("teacher_")}}
    elif which != "model":
        raise ValueError(f"export: which must be 'model' or 'teacher', got {which!r}")
    slim = {k: ck[k] for k in ("model", "model_config", "kind", "step", "config", "val", "format_version",
                               "body_model") if k in ck}
    if half:
        slim["model"] = {k: v.half() if v.is_floating_point() else v for k, v in slim["model"].items()}
    return save_checkpoint(slim, dest)

