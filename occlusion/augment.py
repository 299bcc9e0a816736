"""Synthetic person-person occlusion for the image branch (top-down crops, OCHMR-style).

1. Person segments from COCO annotations: polygon and uncompressed-RLE masks (COCO data
   format, https://cocodataset.org/#format-data, "Object Detection" annotations) cut out as
   RGBA patches with their keypoints.
2. Random copy-paste occlusion: a person segment pasted over a target person with a
   Gaussian-blurred alpha (blending as Dwibedi et al., "Cut, Paste and Learn", ICCV 2017;
   synthetic occlusion as Sarandi et al., "How Robust is 3D Human Pose Estimation to
   Occlusion?", arXiv 1808.09316; copy-paste as Ghiasi et al., "Simple Copy-Paste", CVPR 2021).
3. Task-aware placement (TERSE: Tripathi et al., "Learning to Generate Synthetic Data via
   Compositing", CVPR 2019, arXiv 1904.05475, Sec. 3 and Fig. 2): a synthesizer predicts an
   STN affine placement of the occluder, trained to raise the target network's loss while a
   realism discriminator keeps the composites natural. Here in crop space, differentiable
   (``F.affine_grid`` + ``F.grid_sample``), with an LSGAN critic (Mao et al., ICCV 2017)
   instead of the paper's cross-entropy discriminator.

Pixel convention (numpy part): continuous pixel coordinates, the image spans ``[0, W] x
[0, H]`` and pixel ``(row i, col j)`` covers ``[j, j+1) x [i, i+1)``. Boxes are COCO
``xywh`` in pixels.

Use in a trainer (the placer is optional: a trainer builds it only when its config enables
it, ``image.terse.enabled: true``; without it, :func:`paste_occluder` alone is the
augmentation). Per regressor step, with ``crops (B, 3, H, W)`` and occluder patches
``occ (B, 4, h, w)`` in [0, 1]::

    out = placer(crops, occ)                                   # 1. placer step
    task = regressor_loss_per_sample(regressor(out.composite))   # (B,), regressor not stepped
    loss_s = placer_loss(task, critic(out.composite), w_realism)
    opt_placer.zero_grad(); loss_s.backward(); opt_placer.step()
    fake = out.composite.detach()                               # 2. critic step
    loss_d = critic_loss(critic(real_crops), critic(fake))
    # 3. regressor step on `fake` (detached), with `out.center` added to the contextual
    #    centermap and target keypoints under `out.alpha > 0.5` down-weighted.

Zero the regressor's and critic's gradients after step 1 (they hold the placer's
directions), or set ``requires_grad_(False)`` on them during it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from scipy import ndimage
from torch import nn

from lifting.losses import lsgan_critic, lsgan_generator
from lifting.skeletons import COCO17

__all__ = [
    "person_mask",
    "PersonSegment",
    "extract_segments",
    "PasteResult",
    "composite_segment",
    "paste_occluder",
    "PasteSettings",
    "occluded_keypoints",
    "COVERED_ALPHA",
    "Placement",
    "affine_theta",
    "composite_affine",
    "patch_to_crop",
    "OccluderPlacer",
    "RealismCritic",
    "placer_loss",
    "critic_loss",
]

_TORSO17 = COCO17.indices(["left_shoulder", "right_shoulder", "left_hip", "right_hip"])


# --- 1. person segments --------------------------------------------------------------------

def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def person_mask(segmentation: list | dict, height: int, width: int) -> np.ndarray:
    """Rasterise a COCO ``segmentation`` into a ``(H, W)`` bool mask.

    Accepts a list of polygons ``[[x0, y0, x1, y1, ...], ...]`` (pixels; filled with PIL
    ``ImageDraw.polygon``, so a pixel is in the mask when its integer coordinate lies inside
    or on a polygon: up to one pixel more on the border than pycocotools) or uncompressed RLE
    ``{"counts": [int, ...], "size": [h, w]}`` (runs alternate background / foreground,
    starting with background, over the column-major flattened mask; COCO data format page,
    https://cocodataset.org/#format-data).

    Raises:
        ValueError: compressed (string) RLE (pycocotools-style, not supported), RLE whose
            ``size`` differs from ``(height, width)`` or whose counts do not sum to ``h * w``,
            polygons with fewer than 3 points / an odd or non-finite coordinate list, an
            empty list, any other type, or a non-positive ``height`` / ``width``.
    """
    h, w = _positive_int(height, "height"), _positive_int(width, "width")
    if isinstance(segmentation, dict):
        counts, size = segmentation.get("counts"), segmentation.get("size")
        if isinstance(counts, (str, bytes)):
            raise ValueError("compressed (string) RLE counts are not supported (pycocotools-style "
                             "compressed RLE); decode with pycocotools.mask.decode or store "
                             "uncompressed RLE with a list of int counts")
        if counts is None or size is None:
            raise ValueError(f"RLE segmentation needs 'counts' and 'size', got keys {sorted(segmentation)}")
        if not isinstance(size, (list, tuple)) or [int(v) for v in size] != [h, w]:
            raise ValueError(f"RLE size {list(size)} does not match the image (height, width) = ({h}, {w})")
        c = np.asarray(counts)
        if c.ndim != 1 or not np.issubdtype(c.dtype, np.integer) or (c < 0).any():
            raise ValueError("RLE counts must be a flat list of non-negative ints")
        if int(c.sum()) != h * w:
            raise ValueError(f"RLE counts sum to {int(c.sum())}, expected h * w = {h * w}")
        runs = np.arange(len(c)) % 2 == 1  # odd runs are foreground
        return np.repeat(runs, c).reshape((h, w), order="F")
    if not isinstance(segmentation, (list, tuple)):
        raise ValueError(f"segmentation must be a list of polygons or an RLE dict, got {type(segmentation).__name__}")
    if len(segmentation) == 0:
        raise ValueError("segmentation is an empty polygon list")
    canvas = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    for k, poly in enumerate(segmentation):
        try:
            xy = np.asarray(poly, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"polygon {k} is not a flat list of numbers (RLE lists are not supported)") from None
        if xy.ndim != 1 or xy.size < 6 or xy.size % 2 or not np.isfinite(xy).all():
            raise ValueError(f"polygon {k} must be a flat, finite [x0, y0, x1, y1, ...] list with >= 3 "
                             f"points, got shape {xy.shape}")
        draw.polygon([tuple(p) for p in xy.reshape(-1, 2)], fill=1)
    return np.asarray(canvas, dtype=bool)


@dataclass
class PersonSegment:
    """One person cut out of an image.

    Attributes:
        rgba: ``(h, w, 4)`` uint8 patch cut at the person's box; alpha = 255 on the mask.
        keypoints: ``(K, 3)`` float32 ``(x, y, v)``: position in patch pixels and the COCO
            visibility ``v`` (0 = not labelled, then x = y = 0).
        image_id, annotation_id: source ids (``None`` when unknown).
        box: ``(4,)`` float32 ``xywh`` of the patch in the source image (pixels).
    """

    rgba: np.ndarray
    keypoints: np.ndarray
    image_id: int | None = None
    annotation_id: int | None = None
    box: np.ndarray | None = None

    def __post_init__(self) -> None:
        r = self.rgba
        if not isinstance(r, np.ndarray) or r.dtype != np.uint8 or r.ndim != 3 or r.shape[2] != 4 or 0 in r.shape:
            raise ValueError(f"rgba must be a non-empty (h, w, 4) uint8 array, got "
                             f"{getattr(r, 'shape', type(r))} {getattr(r, 'dtype', '')}")
        kp = np.asarray(self.keypoints, dtype=np.float32)
        if kp.ndim != 2 or kp.shape[1] != 3:
            raise ValueError(f"keypoints must be (K, 3), got {kp.shape}")
        self.keypoints = kp

    @property
    def mask(self) -> np.ndarray:
        """``(h, w)`` bool: alpha > 0."""
        return self.rgba[..., 3] > 0


def _check_image(image: Any) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 \
            or 0 in image.shape:
        raise ValueError(f"image must be a non-empty (H, W, 3) uint8 array, got "
                         f"{getattr(image, 'shape', type(image))} {getattr(image, 'dtype', '')}")
    return image


def extract_segments(image: np.ndarray, annotations: Sequence[dict], min_area: float = 32 * 32,
                     min_visible: int = 5, image_id: int | None = None) -> list[PersonSegment]:
    """Cut every usable person of one image into a :class:`PersonSegment`.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        annotations: COCO annotation dicts (``segmentation``, ``bbox`` xywh, ``keypoints``
            flat ``(K * 3,)``, ``iscrowd``, ``category_id``, ``id``, ``image_id``).
        min_area: minimum mask area inside the box, in pixels (default: COCO's "small" limit).
        min_visible: minimum number of labelled keypoints (``v > 0``).
        image_id: if given, annotations of other images are skipped.

    Skips crowd regions, non-person categories, missing/empty segmentations, masks smaller
    than ``min_area`` and people with fewer than ``min_visible`` labelled keypoints.

    Raises:
        ValueError: bad image, an annotation that is not a dict, keypoints whose length is
            not a multiple of 3, a bbox that is not 4 finite numbers, or a bad segmentation
            (see :func:`person_mask`).
    """
    img = _check_image(image)
    H, W = img.shape[:2]
    out = []
    for n, ann in enumerate(annotations):
        if not isinstance(ann, dict):
            raise ValueError(f"annotation {n} must be a dict, got {type(ann).__name__}")
        if ann.get("iscrowd", 0) or ann.get("category_id", 1) != 1 or not ann.get("segmentation"):
            continue
        if image_id is not None and ann.get("image_id", image_id) != image_id:
            continue
        kp = np.asarray(ann.get("keypoints", []), dtype=np.float32)
        if kp.size % 3:
            raise ValueError(f"annotation {ann.get('id', n)}: keypoints length {kp.size} is not a multiple of 3")
        kp = kp.reshape(-1, 3)
        if int((kp[:, 2] > 0).sum()) < min_visible:
            continue
        mask = person_mask(ann["segmentation"], H, W)
        box = np.asarray(ann.get("bbox", []), dtype=np.float64)
        if box.shape != (4,) or not np.isfinite(box).all():
            raise ValueError(f"annotation {ann.get('id', n)}: bbox must be 4 finite numbers xywh, got {box}")
        x0, y0 = max(int(np.floor(box[0])), 0), max(int(np.floor(box[1])), 0)
        x1, y1 = min(int(np.floor(box[0] + box[2])) + 1, W), min(int(np.floor(box[1] + box[3])) + 1, H)
        if x1 <= x0 or y1 <= y0:
            continue
        m = mask[y0:y1, x0:x1]
        if m.sum() < min_area:
            continue
        rgba = np.dstack([img[y0:y1, x0:x1], m.astype(np.uint8) * 255])
        kp_patch = kp.copy()
        kp_patch[:, :2] -= np.array([x0, y0], np.float32)
        kp_patch[kp[:, 2] <= 0] = 0.0
        out.append(PersonSegment(rgba, kp_patch, ann.get("image_id"), ann.get("id"),
                                 np.array([x0, y0, x1 - x0, y1 - y0], np.float32)))
    return out


# --- 2. random copy-paste occlusion --------------------------------------------------------

@dataclass
class PasteResult:
    """Output of :func:`composite_segment` / :func:`paste_occluder`.

    Attributes:
        image: ``(H, W, 3)`` uint8 composite.
        alpha: ``(H, W)`` float32 in [0, 1], the occluder's alpha actually used.
        keypoints: ``(K, 3)`` float32 occluder keypoints in image pixels; confidence (the
            source visibility) 0 where unlabelled or outside the image.
        box: ``(4,)`` float32 ``xywh`` of the pasted patch, clipped to the image (w = h = 0
            if it fell outside).
        center: ``(2,)`` float32 body centre in image pixels (mean of the labelled in-image
            COCO-17 shoulders and hips when >= 2, else the box centre), for the contextual
            centermap.
        scale: ``(2,)`` float32 ``(sx, sy)`` patch -> image scale actually applied.
        offset: ``(2,)`` int top-left of the pasted patch in image pixels (may be negative).
        flipped: whether the occluder was mirrored horizontally.
        box_overlap: fraction of the target box covered by the occluder's box (set by
            :func:`paste_occluder`, ``None`` from :func:`composite_segment`).
    """

    image: np.ndarray
    alpha: np.ndarray
    keypoints: np.ndarray
    box: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    offset: np.ndarray
    flipped: bool
    box_overlap: float | None = None


def _flip_pairs(K: int, flip_pairs: Sequence[tuple[int, int]] | None) -> list[tuple[int, int]]:
    if flip_pairs is None:
        if K in (0, COCO17.num_joints):
            return COCO17.mirror_pairs() if K else []
        raise ValueError(f"flipping {K} keypoints needs flip_pairs (left/right index pairs); only "
                         f"COCO-17 is known (or pass flip_prob=0)")
    pairs = [(int(i), int(j)) for i, j in flip_pairs]
    if any(not (0 <= i < K and 0 <= j < K) for i, j in pairs):
        raise ValueError(f"flip_pairs {pairs} index outside 0..{K - 1}")
    return pairs


def composite_segment(image: np.ndarray, segment: PersonSegment, offset: Sequence[int], scale: float,
                      flip: bool = False, feather_px: float = 2.0,
                      flip_pairs: Sequence[tuple[int, int]] | None = None) -> PasteResult:
    """Paste ``segment`` onto ``image`` at a given place (deterministic).

    The patch is resized by ``scale`` (bilinear, PIL; size rounded, at least 1 px), mirrored
    if ``flip`` (keypoint left/right labels swapped with ``flip_pairs``; ``None`` = COCO-17
    pairs, required for other K), its top-left put at integer ``offset = (x, y)`` pixels,
    its alpha blurred by a Gaussian of std ``feather_px`` pixels (scipy.ndimage; 0 = hard
    edge), then alpha-composited in float: ``out = a * occluder + (1 - a) * image``, rounded
    to uint8 (blurred-mask blending, Dwibedi et al. ICCV 2017). Keypoints map as ``x' = sx * x + ox``
    (``x -> w - x`` first when flipped).

    Raises:
        ValueError: bad image, non-positive / non-finite ``scale``, negative ``feather_px``,
            offset not 2 ints, bad ``flip_pairs``.
    """
    img = _check_image(image)
    H, W = img.shape[:2]
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive finite number, got {scale}")
    if not feather_px >= 0:
        raise ValueError(f"feather_px must be >= 0, got {feather_px}")
    off = np.asarray(offset)
    if off.shape != (2,) or not np.issubdtype(off.dtype, np.integer):
        raise ValueError(f"offset must be 2 ints (x, y), got {offset!r}")
    ox, oy = int(off[0]), int(off[1])
    ph, pw = segment.rgba.shape[:2]
    nw, nh = max(1, round(pw * scale)), max(1, round(ph * scale))
    rgba = segment.rgba[:, ::-1] if flip else segment.rgba
    rgb = np.asarray(Image.fromarray(np.ascontiguousarray(rgba[..., :3])).resize((nw, nh), Image.BILINEAR), np.float32)
    alpha = np.asarray(Image.fromarray(np.ascontiguousarray(rgba[..., 3])).resize((nw, nh), Image.BILINEAR),
                       np.float32) / 255.0
    pad = int(math.ceil(3 * feather_px)) if feather_px > 0 else 0
    if pad:
        alpha = ndimage.gaussian_filter(np.pad(alpha, pad), feather_px, mode="constant")
        rgb = np.pad(rgb, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    px, py = ox - pad, oy - pad  # top-left of the (padded) patch
    x0, y0, x1, y1 = max(px, 0), max(py, 0), min(px + alpha.shape[1], W), min(py + alpha.shape[0], H)
    full_alpha = np.zeros((H, W), np.float32)
    out = img.astype(np.float32)
    if x1 > x0 and y1 > y0:
        a = np.clip(alpha[y0 - py:y1 - py, x0 - px:x1 - px], 0.0, 1.0)
        full_alpha[y0:y1, x0:x1] = a
        fg = rgb[y0 - py:y1 - py, x0 - px:x1 - px]
        out[y0:y1, x0:x1] = a[..., None] * fg + (1 - a[..., None]) * out[y0:y1, x0:x1]
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)

    kp = segment.keypoints.copy()
    if flip:
        kp[:, 0] = pw - kp[:, 0]
        for i, j in _flip_pairs(len(kp), flip_pairs):
            kp[[i, j]] = kp[[j, i]]
    labelled = kp[:, 2] > 0
    sx, sy = nw / pw, nh / ph
    kp[:, 0], kp[:, 1] = kp[:, 0] * sx + ox, kp[:, 1] * sy + oy
    kp[~labelled] = 0.0
    inside = (kp[:, 0] >= 0) & (kp[:, 0] < W) & (kp[:, 1] >= 0) & (kp[:, 1] < H)
    kp[~inside, 2] = 0.0

    bx0, by0, bx1, by1 = max(ox, 0), max(oy, 0), min(ox + nw, W), min(oy + nh, H)
    box = np.array([bx0, by0, max(bx1 - bx0, 0), max(by1 - by0, 0)], np.float32)
    center = box[:2] + box[2:] / 2
    if len(kp) == COCO17.num_joints:
        torso = kp[_TORSO17]
        if (torso[:, 2] > 0).sum() >= 2:
            center = torso[torso[:, 2] > 0, :2].mean(0)
    return PasteResult(out, full_alpha, kp, box, center.astype(np.float32), np.array([sx, sy], np.float32),
                       np.array([ox, oy]), bool(flip))


def _check_range(r: Sequence[float], name: str, lo: float, hi: float) -> tuple[float, float]:
    a, b = (float(v) for v in r)
    if not (lo <= a <= b <= hi):
        raise ValueError(f"{name} must satisfy {lo} <= min <= max <= {hi}, got {tuple(r)}")
    return a, b


@dataclass(frozen=True)
class PasteSettings:
    """The random placement of :func:`paste_occluder`.

    Attributes:
        scale_range: occluder height as a fraction of the target box height (``0 < min <= max``).
        overlap_range: fraction of the target box area its box covers (``0 <= min <= max <= 1``).
        feather_px: alpha feathering in pixels (:func:`composite_segment`).
        flip_prob: probability of mirroring the occluder (in [0, 1]).
        flip_pairs: keypoint index pairs swapped by a mirror (:func:`composite_segment`;
            None: the COCO-17 pairs).
    """

    scale_range: tuple[float, float] = (0.6, 1.2)
    overlap_range: tuple[float, float] = (0.2, 0.6)
    feather_px: float = 2.0
    flip_prob: float = 0.5
    flip_pairs: Sequence[tuple[int, int]] | None = None


def paste_occluder(image: np.ndarray, target_box: Sequence[float], segment: PersonSegment,
                   rng: np.random.Generator, settings: PasteSettings = PasteSettings()) -> PasteResult:
    """Paste ``segment`` as a random occluder over the person in ``target_box``.

    Placement (deterministic given ``rng``; ranges from ``settings``, :class:`PasteSettings`):
    occluder height = ``U(scale_range)`` x target box
    height; its centre row = box centre +- ``U(-1/4, 1/4)`` box height; it enters from the
    left or right (p = 1/2) so that its box covers about ``U(overlap_range)`` of the target
    box area (less when it is too narrow); mirrored with probability ``flip_prob``. Then
    :func:`composite_segment` (feathered alpha compositing). Box overlap is a proxy for
    pixel occlusion: the person fills only part of its box; use :func:`occluded_keypoints`
    on ``result.alpha`` for the target's covered joints.

    Args:
        image: ``(H, W, 3)`` uint8.
        target_box: ``xywh`` pixels of the target person (must intersect the image).
        segment: the occluder (typically another image's person).
        rng: ``np.random.Generator``. settings: :class:`PasteSettings`.

    Returns:
        :class:`PasteResult` with ``box_overlap`` set. Add ``result.center`` (and its
        keypoints) to the contextual centermap as another person.

    Raises:
        ValueError: bad image, box (non-finite, w/h <= 0, outside the image), ranges
            (``0 < scale``, ``0 <= overlap <= 1``, ``0 <= flip_prob <= 1``), ``rng`` type, or
            see :func:`composite_segment`.
    """
    img = _check_image(image)
    H, W = img.shape[:2]
    flip_prob, flip_pairs = settings.flip_prob, settings.flip_pairs
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    box = np.asarray(target_box, dtype=np.float64)
    if box.shape != (4,) or not np.isfinite(box).all() or box[2] <= 0 or box[3] <= 0:
        raise ValueError(f"target_box must be 4 finite numbers xywh with w, h > 0, got {target_box!r}")
    bx, by, bw, bh = box
    if bx >= W or by >= H or bx + bw <= 0 or by + bh <= 0:
        raise ValueError(f"target_box {box.tolist()} does not intersect the {W}x{H} image")
    s_lo, s_hi = _check_range(settings.scale_range, "scale_range", 1e-6, math.inf)
    o_lo, o_hi = _check_range(settings.overlap_range, "overlap_range", 0.0, 1.0)
    if not 0 <= flip_prob <= 1:
        raise ValueError(f"flip_prob must be in [0, 1], got {flip_prob}")
    if flip_prob > 0:
        _flip_pairs(len(segment.keypoints), flip_pairs)  # fail early, not only when a flip is drawn
    ph, pw = segment.rgba.shape[:2]
    scale = rng.uniform(s_lo, s_hi) * bh / ph
    nw, nh = max(1, round(pw * scale)), max(1, round(ph * scale))
    frac = rng.uniform(o_lo, o_hi)
    cy = by + bh / 2 + rng.uniform(-0.25, 0.25) * bh
    oy = cy - nh / 2
    fy = (min(oy + nh, by + bh) - max(oy, by)) / bh  # > 0: the centre row is inside the box
    fx = min(frac / fy, 1.0, nw / bw)
    from_right = rng.random() < 0.5
    ox = bx + bw - fx * bw if from_right else bx + fx * bw - nw
    flip = bool(rng.random() < flip_prob)
    res = composite_segment(img, segment, (int(round(ox)), int(round(oy))), scale, flip, settings.feather_px,
                            flip_pairs)
    ox, oy = res.offset
    ix = max(0.0, min(ox + nw, bx + bw) - max(ox, bx))
    iy = max(0.0, min(oy + nh, by + bh) - max(oy, by))
    return replace(res, box_overlap=float(ix * iy / (bw * bh)))


#: occluder alpha above which a keypoint counts as covered (random pastes and TERSE composites)
COVERED_ALPHA = 0.5


def occluded_keypoints(alpha: np.ndarray, keypoints: np.ndarray, threshold: float = COVERED_ALPHA) -> np.ndarray:
    """Which of a target's keypoints an occluder now covers.

    Args:
        alpha: ``(H, W)`` occluder alpha in [0, 1] (e.g. ``PasteResult.alpha``).
        keypoints: ``(K, 2)`` or ``(K, 3)`` target keypoints in image pixels (third column
            confidence: joints with confidence <= 0 are never reported covered).
        threshold: alpha above which a keypoint counts as covered.

    Returns:
        ``(K,)`` bool, True where the keypoint is labelled, inside the image and the alpha of
        its pixel (``floor(x), floor(y)``) exceeds ``threshold``. The caller may down-weight
        these joints.

    Raises:
        ValueError: ``alpha`` not 2-D or ``keypoints`` not ``(K, 2|3)``.
    """
    a = np.asarray(alpha)
    kp = np.asarray(keypoints, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"alpha must be (H, W), got shape {a.shape}")
    if kp.ndim != 2 or kp.shape[1] not in (2, 3):
        raise ValueError(f"keypoints must be (K, 2) or (K, 3), got shape {kp.shape}")
    H, W = a.shape
    ok = np.isfinite(kp[:, :2]).all(1) & (kp[:, 0] >= 0) & (kp[:, 0] < W) & (kp[:, 1] >= 0) & (kp[:, 1] < H)
    if kp.shape[1] == 3:
        ok &= kp[:, 2] > 0
    out = np.zeros(len(kp), bool)
    xi, yi = np.floor(kp[ok, 0]).astype(int), np.floor(kp[ok, 1]).astype(int)
    out[ok] = a[yi, xi] > threshold
    return out


# --- 3. task-aware placement (TERSE) -------------------------------------------------------

class Placement(NamedTuple):
    """Output of :class:`OccluderPlacer`: ``composite (B, 3, H, W)`` in [0, 1], ``alpha
    (B, 1, H, W)`` in [0, 1], ``theta (B, 2, 3)`` (the ``F.affine_grid`` matrix, crop ->
    patch normalised coordinates, see :func:`affine_theta`) and ``center (B, 2)`` the
    occluder patch centre in crop pixels ``(x, y)``."""

    composite: torch.Tensor
    alpha: torch.Tensor
    theta: torch.Tensor
    center: torch.Tensor


def affine_theta(scale: torch.Tensor, center: torch.Tensor, angle: torch.Tensor,
                 crop_hw: tuple[int, int], patch_hw: tuple[int, int]) -> torch.Tensor:
    """Sampling matrix placing a ``patch_hw`` patch in a ``crop_hw`` crop (STN, Jaderberg et
    al. NeurIPS 2015, Eq. 1; ``align_corners=False`` normalised coordinates in [-1, 1]).

    The patch keeps its aspect ratio; its height is ``scale * H`` pixels, its centre is at
    normalised ``center (B, 2)`` ``(x, y)`` and it is rotated by ``angle (B,)`` radians in
    pixel space. With ``N = diag(2/W, 2/H)``, ``D = diag(w_o/2, h_o/2)`` (placed patch size
    in pixels) and rotation ``R``, crop point ``p`` samples patch point
    ``q = D^-1 R^T N^-1 (p - c)``; returns ``[M | -M c]`` ``(B, 2, 3)``, ``M = D^-1 R^T N^-1``.
    """
    H, W = crop_hw
    h, w = patch_hw
    h_o = scale * H
    w_o = h_o * (w / h)
    cos, sin = torch.cos(angle), torch.sin(angle)
    M = torch.stack([torch.stack([W * cos / w_o, H * sin / w_o], -1),
                     torch.stack([-W * sin / h_o, H * cos / h_o], -1)], -2)  # (B, 2, 2)
    t = -(M @ center.unsqueeze(-1))
    return torch.cat([M, t], -1)


def composite_affine(crops: torch.Tensor, occluders: torch.Tensor,
                     theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Warp RGBA ``occluders (B, 4, h, w)`` into ``crops (B, 3, H, W)`` (both in [0, 1]) with
    ``theta (B, 2, 3)`` (``F.affine_grid`` + bilinear ``F.grid_sample``, zero padding) and
    alpha-composite with premultiplied colour: ``out = warp(a * rgb) + (1 - warp(a)) * crop``.
    Differentiable in ``theta``. Returns ``(composite (B, 3, H, W), alpha (B, 1, H, W))``."""
    B, _, H, W = crops.shape
    premult = torch.cat([occluders[:, :3] * occluders[:, 3:], occluders[:, 3:]], 1)
    grid = F.affine_grid(theta, [B, 4, H, W], align_corners=False)
    warped = F.grid_sample(premult, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    alpha = warped[:, 3:].clamp(0.0, 1.0)
    return (warped[:, :3] + (1.0 - alpha) * crops).clamp(0.0, 1.0), alpha


def patch_to_crop(points: torch.Tensor, theta: torch.Tensor, patch_hw: tuple[int, int],
                  crop_hw: tuple[int, int]) -> torch.Tensor:
    """Map occluder points ``(B, K, 2)`` from patch pixels to crop pixels (inverse of the
    ``theta (B, 2, 3)`` sampling map; continuous pixel coordinates). Returns ``(B, K, 2)``."""
    h, w = patch_hw
    H, W = crop_hw
    q = points / points.new_tensor([w, h]) * 2 - 1
    M, t = theta[:, :, :2], theta[:, :, 2:]
    p = torch.linalg.solve(M, q.transpose(1, 2) - t).transpose(1, 2)
    return (p + 1) * points.new_tensor([W, H]) / 2


def _conv_encoder(c_in: int, width: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, width, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(width, 2 * width, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(2 * width, 4 * width, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten())


def _check_crops(crops: Any, name: str = "crops", channels: int = 3) -> None:
    if not isinstance(crops, torch.Tensor) or crops.ndim != 4 or crops.shape[1] != channels \
            or not crops.is_floating_point() or crops.shape[0] == 0:
        raise ValueError(f"{name} must be a float tensor (B, {channels}, H, W) with B > 0, got "
                         f"{tuple(getattr(crops, 'shape', ()))} {getattr(crops, 'dtype', type(crops).__name__)}")


class OccluderPlacer(nn.Module):
    """TERSE-style synthesizer (Tripathi et al. CVPR 2019, Sec. 3, Fig. 2): predicts where
    to paste an occluding person in a target crop so that the target network fails.

    A small conv encoder sees the crop and the RGBA occluder (both resized to ``enc_size``
    square, concatenated, 7 channels); an MLP on its features and ``noise_dim`` Gaussian
    noise (so placements do not collapse to one) predicts 4 numbers mapped to a bounded
    placement: occluder height / crop height ``s = exp(log lo + (log hi - log lo) sigmoid(a))``
    in ``scale_range``, centre ``c = max_shift * tanh(b)`` (normalised, inside the crop) and
    rotation ``max_rotation * tanh(r)`` radians. The paper's synthesizer also regresses an
    affine transform fed to a spatial transformer; here in crop space.

    Args:
        width: encoder base width. enc_size: encoder input side (pixels).
        noise_dim: noise size (0 = deterministic). scale_range: ``(lo, hi)``, ``0 < lo <= hi``.
        max_shift: in (0, 1]. max_rotation: >= 0 radians.

    Raises:
        ValueError: bad constructor arguments or inputs (see :meth:`forward`).
    """

    def __init__(self, width: int = 32, enc_size: int = 64, noise_dim: int = 8,
                 scale_range: tuple[float, float] = (0.6, 1.2), max_shift: float = 0.9,
                 max_rotation: float = 0.2) -> None:
        super().__init__()
        _positive_int(width, "width")
        _positive_int(enc_size, "enc_size")
        if isinstance(noise_dim, bool) or not isinstance(noise_dim, int) or noise_dim < 0:
            raise ValueError(f"noise_dim must be an int >= 0, got {noise_dim!r}")
        self.scale_range = _check_range(scale_range, "scale_range", 1e-6, math.inf)
        if not 0 < max_shift <= 1:
            raise ValueError(f"max_shift must be in (0, 1], got {max_shift}")
        if not max_rotation >= 0:
            raise ValueError(f"max_rotation must be >= 0, got {max_rotation}")
        self.enc_size, self.noise_dim = enc_size, noise_dim
        self.max_shift, self.max_rotation = float(max_shift), float(max_rotation)
        self.encoder = _conv_encoder(7, width)
        self.head = nn.Sequential(nn.Linear(4 * width + noise_dim, 4 * width), nn.LeakyReLU(0.2),
                                  nn.Linear(4 * width, 4))
        with torch.no_grad():  # start near the mid scale, centred, upright
            self.head[-1].weight.mul_(0.1)
            self.head[-1].bias.zero_()

    def forward(self, crops: torch.Tensor, occluders: torch.Tensor, noise: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> Placement:
        """Place and composite.

        Args:
            crops: ``(B, 3, H, W)`` float in [0, 1].
            occluders: ``(B, 4, h, w)`` RGBA float in [0, 1] (alpha = person mask), same
                device and dtype.
            noise: optional ``(B, noise_dim)``; drawn from ``generator`` (on the inputs'
                device) when ``None``.

        Returns:
            :class:`Placement` (composite, alpha, theta, center in crop pixels).

        Raises:
            ValueError: wrong shapes/channels, batch sizes, devices or dtypes.
        """
        _check_crops(crops)
        _check_crops(occluders, "occluders", 4)
        if occluders.shape[0] != crops.shape[0] or occluders.device != crops.device or occluders.dtype != crops.dtype:
            raise ValueError(f"occluders must match crops in batch, device and dtype: {tuple(occluders.shape)} "
                             f"{occluders.device} {occluders.dtype} vs {tuple(crops.shape)} {crops.device} {crops.dtype}")
        B, _, H, W = crops.shape
        size = (self.enc_size, self.enc_size)
        x = torch.cat([F.interpolate(crops, size=size, mode="area"), F.interpolate(occluders, size=size, mode="area")], 1)
        feat = self.encoder(x * 2 - 1)
        if self.noise_dim:
            if noise is None:
                noise = torch.randn(B, self.noise_dim, generator=generator, device=crops.device, dtype=crops.dtype)
            if noise.shape != (B, self.noise_dim):
                raise ValueError(f"noise must be (B, noise_dim) = ({B}, {self.noise_dim}), got {tuple(noise.shape)}")
            feat = torch.cat([feat, noise.to(feat)], 1)
        raw = self.head(feat)
        lo, hi = math.log(self.scale_range[0]), math.log(self.scale_range[1])
        scale = torch.exp(lo + (hi - lo) * torch.sigmoid(raw[:, 0]))
        center = self.max_shift * torch.tanh(raw[:, 1:3])
        angle = self.max_rotation * torch.tanh(raw[:, 3])
        theta = affine_theta(scale, center, angle, (H, W), tuple(occluders.shape[-2:]))
        composite, alpha = composite_affine(crops, occluders, theta)
        return Placement(composite, alpha, theta, (center + 1) * center.new_tensor([W, H]) / 2)


class RealismCritic(nn.Module):
    """Realism discriminator on crops (TERSE Sec. 3, "natural image discriminator"): real
    crops vs composited ones, trained with LSGAN targets (real 1, fake 0; Mao et al. ICCV
    2017) instead of the paper's cross-entropy. Input ``(B, 3, H, W)`` float in [0, 1],
    resized (area) to ``size`` square; output ``(B,)`` scores.

    Raises:
        ValueError: bad ``width`` / ``size`` or input shape (see :meth:`forward`).
    """

    def __init__(self, width: int = 32, size: int = 64) -> None:
        super().__init__()
        _positive_int(width, "width")
        self.size = _positive_int(size, "size")
        self.net = nn.Sequential(_conv_encoder(3, width), nn.Linear(4 * width, 1))

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        """``crops (B, 3, H, W)`` in [0, 1] -> scores ``(B,)``; ValueError on a bad shape."""
        _check_crops(crops)
        x = F.interpolate(crops, size=(self.size, self.size), mode="area")
        return self.net(x * 2 - 1).squeeze(-1)


def placer_loss(task_loss_per_sample: torch.Tensor, realism_scores: torch.Tensor | None = None,
                w_realism: float = 0.1, task_scale: float = 1.0) -> torch.Tensor:
    """Synthesizer objective (TERSE Sec. 3: the synthesizer maximises the target network's
    loss while fooling the discriminator; here bounded and with LSGAN realism):

        ``L_S = -mean_i tanh(L_T,i / tau) + w_realism * mean_i (D(x~_i) - 1)^2 / 2``

    ``tanh`` bounds the ascent to (-1, 1) so the placer cannot blow up (it stops pushing once
    a sample is hard, ``L_T >> tau = task_scale``).

    Args:
        task_loss_per_sample: ``(B,)`` target-network loss on the composites (graph through
            the placer; the target network itself is not stepped).
        realism_scores: ``(B,)`` critic scores of the composites, or ``None`` (no critic).
        w_realism: >= 0. task_scale: > 0, typical size of the task loss.

    Returns:
        scalar tensor, in ``[-1, 1 + w_realism * max (D - 1)^2 / 2]``.

    Raises:
        ValueError: non-1-D or mismatched shapes, ``w_realism < 0``, ``task_scale <= 0``.
    """
    if not isinstance(task_loss_per_sample, torch.Tensor) or task_loss_per_sample.ndim != 1:
        got = getattr(task_loss_per_sample, "shape", type(task_loss_per_sample))
        raise ValueError(f"task_loss_per_sample must be a (B,) tensor, got {got}")
    if not w_realism >= 0 or not task_scale > 0:
        raise ValueError(f"need w_realism >= 0 and task_scale > 0, got {w_realism}, {task_scale}")
    loss = -torch.tanh(task_loss_per_sample / task_scale).mean()
    if realism_scores is not None:
        if realism_scores.shape != task_loss_per_sample.shape:
            raise ValueError(f"realism_scores {tuple(realism_scores.shape)} must match task_loss_per_sample "
                             f"{tuple(task_loss_per_sample.shape)}")
        loss = loss + w_realism * lsgan_generator(realism_scores)
    return loss


def critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """LSGAN critic loss ``(mean (D(real) - 1)^2 + mean D(fake)^2) / 2`` (Mao et al. ICCV 2017,
    Eq. 2) for :class:`RealismCritic`; ``real_scores (B,)``, ``fake_scores (B',)``; pass the
    composites detached. Raises ValueError if either is not 1-D or empty."""
    for name, s in (("real_scores", real_scores), ("fake_scores", fake_scores)):
        if not isinstance(s, torch.Tensor) or s.ndim != 1 or s.numel() == 0:
            raise ValueError(f"{name} must be a non-empty (B,) tensor, got {getattr(s, 'shape', type(s))}")
    return lsgan_critic(real_scores, fake_scores)
