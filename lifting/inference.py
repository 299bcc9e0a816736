"""Running a lifter over sequences: windows with edge padding (optionally strided),
normalisation, batching, conversion from normalised units to metres, and the CPU choices of
inference and training (native bf16 or not, how many threads).
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from .geometry import check_finite, normalize_2d
from .options import DEFAULT_HEIGHT_M, DEFAULT_STRIDE  # noqa: F401 (re-exported: the defaults live in options)
from .skeletons import CANON16, Skeleton
from .models.teacher import Lifter

__all__ = ["lift_smpl_frames", "window_indices", "strided_windows", "output_index", "lift_frames", "InferenceSettings",
           "flip_average", "mirror_back", "mirror_permutation",
           "metric_scale",
           "HEIGHT_PROXY_FRACTION", "DEFAULT_HEIGHT_M", "DEFAULT_STRIDE", "native_bf16", "bf16_or_warn",
           "auto_threads", "choose_threads"]

HEIGHT_PROXY_FRACTION = 0.84
"""Length of the chain ankle-knee-hip (mean of both legs) + pelvis-spine-thorax-head as a
fraction of standing height H, from the Drillis & Contini (1966) segment heights (ankle
0.039 H, knee 0.285 H, hip 0.530 H, shoulder/neck base ~0.82 H, head joint ~0.87 H) as
tabulated in Winter, Biomechanics and Motor Control of Human Movement, Fig. 4.1."""


def window_indices(seq_offsets: np.ndarray, window: int, causal: bool = False) -> np.ndarray:
    """Frame indices of a window for every frame, clamped inside its clip.

    Args:
        seq_offsets: ``(C+1,)`` clip boundaries in a frame array of length ``N``.
        window: T.
        causal: False: centred windows, the output frame is index ``T // 2`` of the window;
            True (online use): the window ends at the frame (index ``T - 1``), so no future
            frame is used (the first frames of a clip repeat the clip's first frame).

    Returns:
        ``(N, T)`` int64 indices.
    """
    seq_offsets = np.asarray(seq_offsets, dtype=np.int64)
    n = int(seq_offsets[-1])
    clip = np.repeat(np.arange(len(seq_offsets) - 1), np.diff(seq_offsets))
    lo, hi = seq_offsets[:-1][clip], seq_offsets[1:][clip] - 1
    idx = np.arange(n)[:, None] + np.arange(window)[None] - (window - 1 if causal else window // 2)
    return np.clip(idx, lo[:, None], hi[:, None])


def output_index(window: int, causal: bool = False) -> int:
    """Which frame of a window is reported for the frame it was built around."""
    return window - 1 if causal else window // 2



def strided_windows(seq_offsets: np.ndarray, window: int, stride: int = 1, causal: bool = False):
    """Windows every ``stride`` frames, each reporting its central ``stride`` frames.

    The frames of each clip are cut into blocks of ``stride`` frames; the window of a block is
    centred on the block's middle frame and clamped inside the clip (:func:`window_indices`:
    edge frames repeat), and frame ``f`` is read from its block's window at position
    ``T // 2 + f - centre``, which is ``f`` itself even in a clamped window. ``stride=1`` is
    one centred window per frame; causal mode always uses ``stride=1`` (a window ending at
    each frame), and ``stride`` is capped at ``window`` (single-frame models: 1).

    Args:
        seq_offsets: ``(C+1,)`` clip boundaries of ``N`` frames. window: T (odd).
        stride: frames reported per window, >= 1. causal: see :func:`window_indices`.

    Returns:
        ``(idx (W, T) int64 frame indices of every window, win (N,) int64 window of every
        frame, pos (N,) int64 position of the frame in that window)``.

    Raises:
        ValueError: ``stride`` not a whole number >= 1.
    """
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError(f"stride must be a whole number of frames >= 1, got {stride!r}")
    seq_offsets = np.asarray(seq_offsets, dtype=np.int64)
    n = int(seq_offsets[-1])
    k = 1 if causal else int(min(stride, window))
    if k == 1:
        return window_indices(seq_offsets, window, causal), np.arange(n), np.full(n, output_index(window, causal))
    clip = np.repeat(np.arange(len(seq_offsets) - 1), np.diff(seq_offsets))
    lo, hi = seq_offsets[:-1][clip], seq_offsets[1:][clip] - 1
    block = (np.arange(n) - lo) // k  # block of each frame within its clip
    first = np.r_[True, (block[1:] != block[:-1]) | (clip[1:] != clip[:-1])] if n else np.zeros(0, bool)
    win = np.cumsum(first) - 1
    centre = np.minimum(lo + block * k + k // 2, hi)[first]  # (W,)
    c = window // 2
    idx = np.clip(centre[:, None] + np.arange(window)[None] - c, lo[first][:, None], hi[first][:, None])
    return idx, win, c + np.arange(n) - centre[win]


def _check_inputs(keypoints_2d: torch.Tensor, mask: torch.Tensor, conf: torch.Tensor | None) -> None:
    check_finite("keypoints_2d", keypoints_2d)
    if keypoints_2d.ndim != 3 or keypoints_2d.shape[-1] != 2 or mask.shape != keypoints_2d.shape[:-1]:
        raise ValueError(f"expected keypoints (N, J, 2) and mask (N, J), got {tuple(keypoints_2d.shape)} and {tuple(mask.shape)}")
    if conf is not None:
        if conf.shape != mask.shape:
            raise ValueError(f"expected detector scores conf (N, J) like the mask {tuple(mask.shape)}, "
                             f"got {tuple(conf.shape)}")
        check_finite("conf (detector scores)", conf)


def _batches(model, keypoints_2d, mask, conf, seq_offsets, causal, stride, batch_size):
    """The frame -> (window, position) map (:func:`strided_windows`) and a generator of
    normalised batches ``(x, m, c)`` of at most ``batch_size`` windows (built one at a time)."""
    n, T, dev = keypoints_2d.shape[0], model.window, keypoints_2d.device
    idx, win, pos = strided_windows(np.array([0, n]) if seq_offsets is None else seq_offsets, T, stride, causal)
    idx = torch.from_numpy(idx).to(dev)

    def gen():
        for s in range(0, len(idx), batch_size):
            w = idx[s: s + batch_size]
            kp, m = keypoints_2d[w].float(), mask[w].bool()
            x, _ = normalize_2d(kp, m, model.root_index, per_window=T > 1)
            yield x, m, None if conf is None else torch.where(m, conf[w].float(), 0.0)

    return torch.from_numpy(win).to(dev), torch.from_numpy(pos).to(dev), gen()


def flip_average(lift: torch.Tensor, mirrored_lift: torch.Tensor) -> torch.Tensor:
    """Test-time flip: the mean of a lift ``(N, J, 3)`` and the lift of the mirrored input
    (``x -> -x``, left and right joints swapped, :func:`mirror_permutation`) mirrored back
    (:func:`mirror_back`)."""
    return (lift + mirror_back(mirrored_lift)) / 2


def mirror_back(mirrored_lift: torch.Tensor) -> torch.Tensor:
    """The lift ``(N, J, 3)`` of a mirrored input mapped back to the input's side: left and
    right joints swapped back (:func:`mirror_permutation`) and ``x`` negated."""
    perm = mirror_permutation(mirrored_lift.shape[1])
    return mirrored_lift[:, perm] * torch.tensor([-1.0, 1.0, 1.0], device=mirrored_lift.device)


def mirror_permutation(num_joints: int) -> list[int]:
    """``(J,)`` joint order of the mirrored skeleton (left and right swapped) for the
    :data:`lifting.skeletons.CANON16` joints.

    Raises:
        ValueError: ``num_joints`` is not canon16's."""
    if num_joints != CANON16.num_joints:
        raise ValueError(f"flip needs the {CANON16.num_joints} canon16 joints, got {num_joints}")
    perm = list(range(num_joints))
    for a, b in CANON16.mirror_pairs():
        perm[a], perm[b] = b, a
    return perm


@dataclass(frozen=True)
class InferenceSettings:
    """How :func:`lift_frames` runs a model.

    Attributes:
        batch_size: windows per forward pass.
        dtype: optional autocast dtype (e.g. ``torch.bfloat16`` on a CPU with native bf16,
            :func:`native_bf16`; elsewhere it is emulated and several times slower).
        causal: temporal models see only the current and past frames (online mode: the
            window ends at the frame, :func:`window_indices`); the model is used as trained,
            reporting the last frame of each window, so expect somewhat larger errors than
            with centred windows.
        stride: temporal models: one window per ``stride`` frames, each reporting its
            central ``stride`` frames (:func:`strided_windows`; 1 = a window per frame;
            :data:`DEFAULT_STRIDE` is what :mod:`lifting.track_lifter` uses).
        flip: test-time flip augmentation (as in VideoPose3D, Pavllo et al. CVPR 2019 Sec. 5):
            the 2D is also lifted mirrored (x negated, left and right joints swapped, by the
            names of :data:`lifting.skeletons.CANON16`), the result mirrored back, and the two
            averaged (2 lifts).
    """

    batch_size: int = 4096
    dtype: torch.dtype | None = None
    causal: bool = False
    stride: int = 1
    flip: bool = False


@torch.no_grad()
def lift_frames(
    model: Lifter,
    keypoints_2d: torch.Tensor,
    mask: torch.Tensor,
    seq_offsets: np.ndarray | None = None,
    conf: torch.Tensor | None = None,
    settings: InferenceSettings = InferenceSettings(),
) -> torch.Tensor:
    """Lift every frame of one or more sequences.

    Args:
        model: a :class:`Lifter` or :class:`lifting.models.student.Student` (window T taken from it).
        keypoints_2d: ``(N, J, 2)`` pixels, frames of consecutive sequences.
        mask: ``(N, J)`` bool visible joints (the root must be visible in every frame).
        seq_offsets: ``(C+1,)`` sequence boundaries; default one sequence.
        conf: optional ``(N, J)`` detector scores in [0, 1] of the visible joints (masked
            joints get 0); read by models with ``use_confidence`` (default 1 for visible
            joints), ignored by others.
        settings: :class:`InferenceSettings` (batch size, autocast dtype, causal windows,
            stride, test-time flip).

    Returns:
        ``(N, J, 3)`` float32 root-relative 3D in normalised units for a lifter (see
        :func:`metric_scale` for metres), in metres for the student.

    Raises:
        ValueError: NaN/inf keypoints or scores, shape mismatch, frames without a visible
            root, or a bad ``stride``.
    """
    batch_size, dtype, causal, stride = settings.batch_size, settings.dtype, settings.causal, settings.stride
    _check_inputs(keypoints_2d, mask, conf)
    if settings.flip:
        perm = mirror_permutation(keypoints_2d.shape[1])
        kp_m = keypoints_2d[:, perm] * torch.tensor([-1.0, 1.0], device=keypoints_2d.device)
        once = replace(settings, flip=False)
        a = lift_frames(model, keypoints_2d, mask, seq_offsets, conf, once)
        b = lift_frames(model, kp_m, mask[:, perm], seq_offsets, None if conf is None else conf[:, perm], once)
        return flip_average(a, b)
    win, pos, batches = _batches(model, keypoints_2d, mask, conf, seq_offsets, causal, stride, batch_size)
    out = torch.zeros(len(win), keypoints_2d.shape[1], 3, device=keypoints_2d.device)
    bounds = torch.searchsorted(win, torch.arange(0, int(win.max()) + batch_size + 1 if len(win) else 1, batch_size,
                                                  device=win.device))
    was_training = model.training
    model.eval()
    try:
        for k, (x, m, c) in enumerate(batches):
            with torch.autocast(keypoints_2d.device.type, dtype=dtype, enabled=dtype is not None):
                pred = model(x, m, c)
            pred = model.output_joints(pred)  # an SMPL model's canonical joints
            lo, hi = int(bounds[k]), int(bounds[k + 1])  # the frames this batch of windows reports
            out[lo:hi] = pred[win[lo:hi] - k * batch_size, pos[lo:hi]].float()
    finally:
        model.train(was_training)
    return out


def lift_smpl_frames(
    student,
    keypoints_2d: torch.Tensor,
    mask: torch.Tensor,
    seq_offsets: np.ndarray | None = None,
    batch_size: int = 4096,
    causal: bool = False,
    conf: torch.Tensor | None = None,
    stride: int = 1,
) -> dict[str, torch.Tensor]:
    """Run the SMPL student over every frame of one or more sequences (windows as
    :func:`lift_frames`).

    Args:
        student: :class:`lifting.models.student.Student`. keypoints_2d: ``(N, J, 2)`` pixels.
        mask: ``(N, J)`` bool. seq_offsets: ``(C+1,)`` sequence boundaries. causal, stride:
        see :class:`InferenceSettings`; conf: see :func:`lift_frames`.

    Returns:
        Per frame: ``global_orient (N, 3, 3)``, ``body_pose (N, 23, 3, 3)``,
        ``betas (N, num_betas)`` (per-frame estimates, to be pooled per person), ``scale
        (N,)`` camera scale in normalised units per metre, ``norm_scale (N,)`` pixels per
        normalised unit (the frame's own 2D RMS size), ``root_px (N, 2)``.

    Raises:
        ValueError: as :func:`lift_frames`.
    """
    _check_inputs(keypoints_2d, mask, conf)
    win, pos, batches = _batches(student, keypoints_2d, mask, conf, seq_offsets, causal, stride, batch_size)
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in ("global_orient", "body_pose", "betas", "scale")}
    was_training = student.training
    student.eval()
    try:
        with torch.no_grad():
            for x, m, c in batches:
                o = student(x, m, c)
                parts["global_orient"].append(o.global_orient)
                parts["body_pose"].append(o.body_pose)
                parts["betas"].append(o.betas_frames)
                parts["scale"].append(o.cam[..., 0])
    finally:
        student.train(was_training)
    res = {k: torch.cat(v)[win, pos] for k, v in parts.items()}
    kp, m = keypoints_2d.float(), mask.bool()
    _, norm = normalize_2d(kp, m, student.root_index)
    res["norm_scale"] = norm[..., 0]
    res["root_px"] = kp[:, student.root_index]
    return res


def metric_scale(joints_3d: torch.Tensor, skeleton: Skeleton, height_m: float = DEFAULT_HEIGHT_M) -> torch.Tensor:
    """Scale normalised root-relative poses to metres with an anthropometric prior.

    A lifter trained without 3D cannot know absolute size; each pose is scaled so that its
    leg (mean of both sides, ankle-knee-hip) plus trunk (pelvis-spine-thorax-head) chain
    equals ``HEIGHT_PROXY_FRACTION * height_m``. Scale-free metrics (N-MPJPE, PA-MPJPE) are
    unaffected; MPJPE and PCK3D depend on this assumption.

    Args:
        joints_3d: ``(..., J, 3)`` canonical-set poses (normalised units).
        skeleton: must contain the canonical joint names (``l_/r_ankle``, ``knee``, ``hip``,
            ``pelvis``, ``spine``, ``thorax``, ``head``).

    Returns:
        ``(..., J, 3)`` metres.
    """
    j = {n: joints_3d[..., skeleton.index(n), :] for n in (
        "l_ankle", "l_knee", "l_hip", "r_ankle", "r_knee", "r_hip", "pelvis", "spine", "thorax", "head")}
    seg = lambda a, b: (j[a] - j[b]).norm(dim=-1)  # noqa: E731
    legs = 0.5 * (seg("l_ankle", "l_knee") + seg("l_knee", "l_hip") + seg("r_ankle", "r_knee") + seg("r_knee", "r_hip"))
    trunk = seg("pelvis", "spine") + seg("spine", "thorax") + seg("thorax", "head")
    chain = (legs + trunk).clamp_min(1e-6)
    return joints_3d * (HEIGHT_PROXY_FRACTION * height_m / chain)[..., None, None]



def _cpu_flags(path: str | Path = "/proc/cpuinfo") -> set[str]:
    try:
        text = Path(path).read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def native_bf16(device: torch.device | str) -> bool:
    """Whether bfloat16 matmuls run natively on ``device``: CUDA devices of compute
    capability >= 8.0 (Ampere), CPUs with AVX512-BF16 or AMX-BF16 (torch's own check
    ``torch.cpu._is_avx512_bf16_supported`` / ``_is_amx_tile_supported`` when this torch has
    them, else the ``avx512_bf16`` / ``amx_bf16`` flags of /proc/cpuinfo). Elsewhere (e.g.
    an AVX2 CPU) bf16 is emulated: on this project's AVX2 machine ~7x slower than fp32."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    checks = [getattr(torch.cpu, n, None) for n in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    checks = [c for c in checks if c is not None]
    if checks:
        try:
            return any(bool(c()) for c in checks)
        except RuntimeError:
            pass
    return bool({"avx512_bf16", "amx_bf16"} & _cpu_flags())


def bf16_or_warn(device: torch.device | str, what: str = "train.bf16") -> bool:
    """True if bf16 autocast is worth using on ``device`` (:func:`native_bf16`); otherwise one
    ``UserWarning`` saying that ``what`` is ignored and fp32 is used, and False."""
    if native_bf16(device):
        return True
    warnings.warn(f"{what}=true ignored: {torch.device(device)} has no native bfloat16 (no AVX512-BF16/AMX; "
                  f"capability {torch.backends.cpu.get_cpu_capability()}), where bf16 is emulated and several "
                  f"times slower; using fp32", stacklevel=2)
    return False


#: a 1-minute load average of at least this fraction of the cores counts as "other work"
BUSY_LOAD_FRACTION = 0.5


def auto_threads(loadavg_1min: float, cores: int) -> int:
    """Thread count for ``threads: 0`` ("auto"): 1 when the 1-minute load average shows other
    work on the cores (``loadavg >= BUSY_LOAD_FRACTION * cores``), else all ``cores``.

    Measured on this project's 2-core machine next to another process: 8.5 training it/s with
    one thread vs 0.8 it/s with two (threads fighting for a busy core stall each other).

    Raises:
        ValueError: ``cores < 1`` or a negative/non-finite load average.
    """
    if not np.isfinite(loadavg_1min) or loadavg_1min < 0 or int(cores) < 1:
        raise ValueError(f"need a load average >= 0 and >= 1 core, got {loadavg_1min!r} and {cores!r}")
    return 1 if loadavg_1min >= BUSY_LOAD_FRACTION * cores else int(cores)


def choose_threads(requested: int = 0) -> tuple[int, str]:
    """Threads for this process: ``requested`` if > 0, else :func:`auto_threads` of the
    current 1-minute load average and the cores this process may use.

    Returns:
        ``(threads, reason)``, the reason a one-line text to print.

    Raises:
        ValueError: ``requested < 0``.
    """
    if requested < 0:
        raise ValueError(f"threads must be >= 0 (0 = auto), got {requested}")
    if requested > 0:
        return int(requested), f"{requested} thread(s) as configured"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    n = auto_threads(load, cores)
    return n, (f"{n} thread(s) (auto: load average {load:.2f} on {cores} core(s): "
               f"{'busy, one thread' if n == 1 and load >= BUSY_LOAD_FRACTION * cores else 'all cores'})")
