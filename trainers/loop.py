"""The training loop: progress bar, periodic validation on the val split (DESIGN.md §4 rig,
GT 2D), atomic checkpoints (model + config + step), optional Weights & Biases logging."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from lifting.data import eval_views, load_mocap_npz, split_clips
from lifting.evaluate import evaluate_lifter

from lifting.checkpoint import load_checkpoint, save_checkpoint
from .stages import build_stage

__all__ = ["train", "lifter_checkpoint"]


def lifter_checkpoint(stage, cfg: DictConfig, step: int, val: dict | None) -> dict:
    """The checkpoint dict: lifter weights, its constructor config, the resolved run config,
    step, stage kind, last validation metrics, the training state for resuming, and for the
    SMPL student the body model it was trained with (``body_model``)."""
    extra = {"body_model": stage.lifter.body_model.describe()} if hasattr(stage.lifter, "body_model") else {}
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


def train(kind: str, cfg: DictConfig, out_dir: str | Path | None = None, progress: bool = True) -> Path:
    """Train a ``teacher``, ``student`` (SMPL, needs a teacher checkpoint) or ``supervised`` model.

    Writes ``OUT/last.pt`` at every validation and at the end, and ``OUT/best.pt`` for the
    best validation PA-MPJPE, where ``OUT = out_dir or train.out_dir/name``.

    Returns:
        Path of the final checkpoint (``last.pt``).

    Raises:
        ValueError: bad config values (propagated from the stage/data builders).
    """
    if int(cfg.train.threads) > 0:
        torch.set_num_threads(int(cfg.train.threads))
    out = Path(out_dir) if out_dir is not None else Path(cfg.train.out_dir) / str(cfg.name)
    out.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, out / "config.yaml")
    clips = load_mocap_npz(cfg.data.npz)
    stage = build_stage(kind, cfg, clips)
    ids = split_clips(clips.seq_names, cfg.data.val_split)
    if int(cfg.data.val_max_clips) > 0:
        ids = ids[:: max(1, len(ids) // int(cfg.data.val_max_clips))][: int(cfg.data.val_max_clips)]
    val_views = eval_views(clips.select(ids)) if len(ids) else None  # 3D for validation only
    del clips
    run = _init_wandb(cfg, kind)
    steps, bs = int(cfg.train.steps), int(cfg.train.batch_size)
    best = float("inf")
    val = None
    t0, frames, eval_s = time.perf_counter(), 0, 0.0
    bar = tqdm(range(1, steps + 1), desc=f"train {kind}", disable=not progress, dynamic_ncols=True,
               mininterval=0.5 if sys.stderr.isatty() else 30.0)
    running: dict[str, float] = {}
    for step in bar:
        stage.set_lr(step - 1)
        batch = stage.sampler.sample(bs, stage.generator)
        logs = stage.step(batch)
        frames += bs * stage.window
        for k, v in logs.items():
            running[k] = 0.9 * running.get(k, v) + 0.1 * v
        if step % int(cfg.train.log_every) == 0 or step == steps:
            bar.set_postfix({k: f"{v:.3f}" for k, v in running.items() if k in ("total", "adv", "critic", "cycle_3d")})
            if run is not None:
                run.log({f"train/{k}": v for k, v in logs.items()}
                        | {"train/frames_per_s": frames / max(time.perf_counter() - t0 - eval_s, 1e-9)}, step=step)
        if (step % int(cfg.train.eval_every) == 0 or step == steps) and val_views is not None:
            te = time.perf_counter()
            val = evaluate_lifter(stage.lifter, val_views)["overall"]
            tqdm.write(f"[{kind}] step {step}: val PA-MPJPE {val['pa_mpjpe_mm']:.1f} mm, "
                       f"N-MPJPE {val['n_mpjpe_mm']:.1f} mm, MPJPE {val['mpjpe_mm']:.1f} mm")
            if run is not None:
                run.log({f"val/{k}": v for k, v in val.items() if k != "n"}, step=step)
            ckpt = lifter_checkpoint(stage, cfg, step, val)
            save_checkpoint(ckpt, out / "last.pt")
            if val["pa_mpjpe_mm"] < best:
                best = val["pa_mpjpe_mm"]
                save_checkpoint(ckpt, out / "best.pt")
            eval_s += time.perf_counter() - te
    if val_views is None:
        save_checkpoint(lifter_checkpoint(stage, cfg, steps, None), out / "last.pt")
    elapsed = time.perf_counter() - t0
    train_s = max(elapsed - eval_s, 1e-9)
    mem = ""
    if stage.device.type == "cuda":
        mem = f", peak GPU memory {torch.cuda.max_memory_allocated(stage.device) / 2**30:.2f} GiB"
    tqdm.write(f"[{kind}] {steps} steps in {elapsed:.0f} s, {train_s:.0f} s training ({frames / train_s:.0f} "
               f"training frames/s on {stage.device}{mem}); checkpoints in {out}")
    if run is not None:
        run.finish()
    return out / "last.pt"


def export_lifter(ckpt_path: str | Path, dest: str | Path, half: bool = False) -> Path:
    """Strip a training checkpoint to the inference part (weights, model config, run config,
    validation), e.g. for shipping in the package; written atomically. ``half`` stores the
    weights as float16 (half the size; :func:`lifting.lift.load_lifter` loads them into a
    float32 model)."""
    ck = load_checkpoint(ckpt_path)
    slim = {k: ck[k] for k in ("model", "model_config", "kind", "step", "config", "val", "format_version",
                               "body_model") if k in ck}
    if half:
        slim["model"] = {k: v.half() if v.is_floating_point() else v for k, v in slim["model"].items()}
    return save_checkpoint(slim, dest)

