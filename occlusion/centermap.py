"""Body centres and body-centre heatmaps ("centermaps") for the image branch.

OCHMR (Khirodkar et al., "Occluded Human Mesh Recovery", CVPR 2022, arXiv 2203.13349,
Sec. 3) conditions a top-down mesh regressor on two heatmaps of body centres in the crop: a
*contextual* map with every person's centre and an *instance* map with the target's only.
The Gaussian of each centre grows with the person's size as in ROMP (Sun et al.,
"Monocular, One-stage, Regression of Multiple 3D People", ICCV 2021, Sec. 3, "Body Center
heatmap"); the exact rule is :func:`centermap_sigma`.

Pixel convention: continuous pixel coordinates, an image or heatmap spans ``[0, W] x [0, H]``
and pixel ``(row i, col j)`` covers ``[j, j+1) x [i, i+1)``, so its centre is
``(j + 0.5, i + 0.5)``. Boxes are COCO ``xywh`` (people) or ``xyxy`` (crops) in pixels.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

__all__ = ["TORSO_JOINTS", "body_centres", "centermap_sigma", "render_centermaps"]

#: (shoulder indices, hip indices) per keypoint layout. CrowdPose-14: 0 l-shoulder,
#: 1 r-shoulder, 2/3 elbows, 4/5 wrists, 6 l-hip, 7 r-hip, 8/9 knees, 10/11 ankles, 12 head
#: top, 13 neck.
TORSO_JOINTS: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "coco17": ((5, 6), (11, 12)),
    "crowdpose14": ((0, 1), (6, 7)),
}
_NUM_JOINTS = {"coco17": 17, "crowdpose14": 14}


def body_centres(keypoints: Any, boxes: Any = None, fmt: str = "coco17",
                 min_conf: float = 0.0) -> tuple[Any, Any]:
    """Body centre and size of each person, in image pixels.

    Centre: the mean of the visible torso joints (shoulders and hips) when at least one
    shoulder and one hip are visible (a centre from the shoulders alone would sit on the
    shoulder line); else the box centre; else the mean of all visible joints. Size: the box
    diagonal; without a usable box the diagonal of the visible joints' bounding box (0 for a
    single visible joint). The torso centre follows ROMP (Sun et al. ICCV 2021, Sec. 3,
    "Body Center heatmap": the body centre is the centre of the torso); the fallbacks are ours.

    Args:
        keypoints: ``(N, K, 3)`` ``[x, y, conf]`` in pixels (numpy or torch); a joint is
            visible when ``conf > min_conf`` and ``x, y, conf`` are finite (COCO flags
            ``v = 1, 2`` both count as visible with the default ``min_conf = 0``).
        boxes: ``(N, 4)`` COCO ``xywh`` boxes in pixels, or None. A box with a non-finite
            value or ``w <= 0`` or ``h <= 0`` counts as missing.
        fmt: keypoint layout, ``"coco17"`` or ``"crowdpose14"`` (see :data:`TORSO_JOINTS`).
        min_conf: visibility threshold on ``conf``.

    Returns:
        ``(centres (N, 2), sizes (N,))`` in pixels: numpy float64 for numpy input, else
        tensors with the keypoints' floating dtype and device.

    Raises:
        ValueError: unknown ``fmt``; bad shapes (``K`` must match ``fmt``); a person with
            neither a visible joint nor a usable box (the indices are named).
    """
    if fmt not in TORSO_JOINTS:
        raise ValueError(f"unknown keypoint format {fmt!r}, expected one of {sorted(TORSO_JOINTS)}")
    as_numpy = not isinstance(keypoints, torch.Tensor)
    kp = torch.as_tensor(np.asarray(keypoints, dtype=np.float64) if as_numpy else keypoints)
    if not kp.is_floating_point():
        kp = kp.to(torch.get_default_dtype())
    K = _NUM_JOINTS[fmt]
    if kp.ndim != 3 or kp.shape[1:] != (K, 3):
        raise ValueError(f"keypoints must be (N, {K}, 3) [x, y, conf] for {fmt}, got shape {tuple(kp.shape)}")
    N = kp.shape[0]
    xy, conf = kp[..., :2], kp[..., 2]
    vis = (conf > min_conf) & torch.isfinite(conf) & torch.isfinite(xy).all(-1)  # (N, K)
    xy0 = torch.where(vis[..., None], xy, torch.zeros_like(xy))
    n_vis = vis.sum(1)

    if boxes is None:
        box = torch.full((N, 4), float("nan"), dtype=kp.dtype, device=kp.device)
    else:
        box = torch.as_tensor(np.asarray(boxes, dtype=np.float64) if not isinstance(boxes, torch.Tensor) else boxes)
        box = box.to(dtype=kp.dtype, device=kp.device)
        if box.shape != (N, 4):
            raise ValueError(f"boxes must be (N, 4) xywh with N = {N} (keypoints), got shape {tuple(box.shape)}")
    box_ok = torch.isfinite(box).all(1) & (box[:, 2] > 0) & (box[:, 3] > 0)

    missing = (~box_ok & (n_vis == 0)).nonzero().flatten().tolist()
    if missing:
        raise ValueError(f"person(s) {missing[:10]} have neither a visible joint nor a box (w, h > 0): "
                         "cannot place a body centre")

    shoulders, hips = TORSO_JOINTS[fmt]
    torso = list(shoulders + hips)
    use_torso = vis[:, list(shoulders)].any(1) & vis[:, list(hips)].any(1)
    torso_c = xy0[:, torso].sum(1) / vis[:, torso].sum(1).clamp(min=1)[:, None]
    all_c = xy0.sum(1) / n_vis.clamp(min=1)[:, None]
    box_c = box[:, :2] + box[:, 2:] / 2
    centres = torch.where(use_torso[:, None], torso_c, torch.where(box_ok[:, None], box_c, all_c))

    inf = torch.tensor(float("inf"), dtype=kp.dtype, device=kp.device)
    lo = torch.where(vis[..., None], xy, inf).amin(1)
    hi = torch.where(vis[..., None], xy, -inf).amax(1)
    extent = torch.where(n_vis[:, None] > 0, hi - lo, torch.zeros_like(hi))
    sizes = torch.where(box_ok, torch.hypot(box[:, 2], box[:, 3]), torch.hypot(extent[:, 0], extent[:, 1]))
    if as_numpy:
        return centres.numpy(), sizes.numpy()
    return centres, sizes


def centermap_sigma(diagonal: torch.Tensor, map_size: float) -> torch.Tensor:
    """Standard deviation of a body-centre Gaussian, in heatmap pixels.

    ROMP's rule (Sun et al. ICCV 2021, Sec. 3, adaptive Gaussian kernel size; constants as in the
    authors' released code) for a person whose box diagonal spans ``d`` heatmap pixels on
    an ``M``-pixel map: radius ``r = M / 32 + d / 16``, diameter ``2 r + 1`` and
    ``sigma = (2 r + 1) / 6`` (CenterNet's convention, Zhou et al. arXiv 1904.07850). We keep
    ``r`` continuous (ROMP truncates it to an integer) and clamp ``sigma >= 1`` heatmap pixel.

    Args:
        diagonal: ``(...)`` person diagonals in heatmap pixels (>= 0).
        map_size: ``M``, the heatmap side in pixels (``sqrt(h * w)`` for non-square maps).

    Returns:
        ``(...)`` sigmas in heatmap pixels, same dtype and device as ``diagonal``.
    """
    radius = map_size / 32.0 + diagonal / 16.0
    return ((2.0 * radius + 1.0) / 6.0).clamp(min=1.0)


def _shape(x: Any) -> tuple:
    return tuple(getattr(x, "shape", ()))


def _check_centermap_args(centres, sizes, valid, target, crop_boxes, out_hw) -> tuple[torch.Tensor, tuple[int, int]]:
    """The shape and dtype checks of :func:`render_centermaps` (its Raises): returns the
    centres as a floating tensor (the default dtype when they are integers) and ``(h, w)``."""
    if not isinstance(centres, torch.Tensor) or centres.ndim != 3 or centres.shape[-1] != 2 or centres.shape[1] == 0:
        raise ValueError(f"centres must be a tensor (B, P, 2) with P >= 1, got {_shape(centres)}")
    B, P = centres.shape[:2]
    if not centres.is_floating_point():
        centres = centres.to(torch.get_default_dtype())
    for name, x, shape in (("sizes", sizes, (B, P)), ("valid", valid, (B, P)), ("target", target, (B,)),
                           ("crop_boxes", crop_boxes, (B, 4))):
        if not isinstance(x, torch.Tensor) or tuple(x.shape) != shape:
            raise ValueError(f"{name} must be a tensor of shape {shape} (centres are {(B, P, 2)}), got {_shape(x)}")
    if valid.dtype != torch.bool:
        raise ValueError(f"valid must be a bool tensor, got {valid.dtype}")
    if target.dtype.is_floating_point or target.dtype == torch.bool or target.is_complex():
        raise ValueError(f"target must be an integer tensor, got {target.dtype}")
    try:
        h, w = (int(v) for v in out_hw)
    except (TypeError, ValueError):
        raise ValueError(f"out_hw must be (h, w), got {out_hw!r}") from None
    if h <= 0 or w <= 0 or (h, w) != tuple(out_hw):
        raise ValueError(f"out_hw must be two positive ints, got {out_hw!r}")
    return centres, (h, w)


def render_centermaps(centres: torch.Tensor, sizes: torch.Tensor, valid: torch.Tensor, target: torch.Tensor,
                      crop_boxes: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    """Contextual and instance centermaps of a batch of crops (OCHMR Sec. 3; Gaussians as
    :func:`centermap_sigma`).

    Each crop box is mapped onto the ``h x w`` heatmap (x and y scaled separately); a person
    of size ``d`` image pixels gets ``sigma = centermap_sigma(d * s, sqrt(h * w))`` with
    ``s = sqrt(s_x * s_y)`` heatmap pixels per image pixel, and the isotropic Gaussian
    ``exp(-|p - c|^2 / (2 sigma^2))`` in heatmap pixels, so its value is exactly 1 at a
    centre lying on a pixel centre. Centres outside the crop still contribute their tails.

    Args:
        centres: ``(B, P, 2)`` body centres ``(x, y)`` in image pixels (floating; its dtype
            and device are the output's).
        sizes: ``(B, P)`` person sizes (box diagonals, see :func:`body_centres`) in image
            pixels, ``>= 0``.
        valid: ``(B, P)`` bool, which of the ``P`` slots hold a person (others are padding
            and may hold anything, NaN included).
        target: ``(B,)`` integer index of the target person in each crop.
        crop_boxes: ``(B, 4)`` crop boxes ``xyxy`` in image pixels (``x1 > x0``, ``y1 > y0``).
        out_hw: ``(h, w)`` heatmap size.

    Returns:
        ``(B, 2, h, w)``: channel 0 the contextual map (pixel-wise max over the valid
        people's Gaussians), channel 1 the instance map (the target's Gaussian), in [0, 1].

    Raises:
        ValueError: bad shapes or dtypes, ``out_hw`` not two positive ints, empty or
            non-finite crop boxes, ``target`` out of range or pointing at an invalid slot,
            non-finite centres or sizes (or negative sizes) of valid people.
    """
    centres, (h, w) = _check_centermap_args(centres, sizes, valid, target, crop_boxes, out_hw)
    B, P = centres.shape[:2]
    dtype, dev = centres.dtype, centres.device
    valid, target = valid.to(dev), target.to(dev).long()
    bad_t = ((target < 0) | (target >= P)).nonzero().flatten().tolist()
    if bad_t:
        raise ValueError(f"target out of range [0, {P}) in crop(s) {bad_t[:10]}: {target[bad_t[:10]].tolist()}")
    rows = torch.arange(B, device=dev)
    bad_v = (~valid[rows, target]).nonzero().flatten().tolist()
    if bad_v:
        raise ValueError(f"target points at an invalid person slot in crop(s) {bad_v[:10]}")
    sizes, boxes = sizes.to(dev, dtype), crop_boxes.to(dev, dtype)
    vis = valid[..., None]
    bad = (valid & (~torch.isfinite(centres).all(-1) | ~torch.isfinite(sizes) | (sizes < 0))).nonzero().tolist()
    if bad:
        raise ValueError(f"valid people need finite centres and finite sizes >= 0; bad (crop, person): {bad[:10]}")
    bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    bad_b = (~torch.isfinite(boxes).all(1) | (bw <= 0) | (bh <= 0)).nonzero().flatten().tolist()
    if bad_b:
        raise ValueError(f"crop_boxes must be finite xyxy with x1 > x0 and y1 > y0; bad crop(s) {bad_b[:10]}: "
                         f"{boxes[bad_b[:3]].tolist()}")

    c = torch.where(vis, centres, torch.zeros_like(centres))
    d = torch.where(valid, sizes, torch.zeros_like(sizes))
    sx, sy = w / bw, h / bh  # heatmap pixels per image pixel, (B,)
    u = (c[..., 0] - boxes[:, :1]) * sx[:, None] - 0.5  # (B, P) in pixel-index units
    v = (c[..., 1] - boxes[:, 1:2]) * sy[:, None] - 0.5
    sigma = centermap_sigma(d * torch.sqrt(sx * sy)[:, None], math.sqrt(h * w))  # (B, P)
    inv = 1.0 / (2.0 * sigma**2)
    gx = torch.exp(-(torch.arange(w, device=dev, dtype=dtype) - u[..., None]) ** 2 * inv[..., None])  # (B, P, w)
    gy = torch.exp(-(torch.arange(h, device=dev, dtype=dtype) - v[..., None]) ** 2 * inv[..., None])  # (B, P, h)
    g = gy[..., :, None] * gx[..., None, :] * valid[..., None, None].to(dtype)  # (B, P, h, w), separable
    return torch.stack([g.amax(1), g[rows, target]], 1)
