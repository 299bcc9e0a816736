"""COCO-format person images for the image branch: annotation reading, person crops with
contextual and instance centermaps, and the standard augmentation (scale, rotation,
horizontal flip with left/right swap, colour), optionally with pasted person occluders.

Format: the COCO keypoint annotation format (cocodataset.org, "Data format", section
"Keypoint Detection": ``images``, ``annotations`` with ``keypoints`` as ``[x, y, v] * K`` with
``v = 0`` not labelled, ``1`` labelled but not visible, ``2`` visible; ``bbox`` as
``[x, y, w, h]``; ``categories[0].keypoints`` names the joints). COCO-17 and CrowdPose-14
(same format, 14 joints) are recognised by their keypoint names.

Crops follow the top-down convention of HMR (Kanazawa et al. CVPR 2018, Sec. 4: a square crop
around the person, scale and translation jitter, flips) and of OCHMR (Khirodkar et al. CVPR
2022, Sec. 3.1: the crop comes with a contextual centermap of every person's body centre and
an instance centermap of the target's).

Coordinates: crop-normalised units ``u = (x_crop - S/2) / (S/2)`` in ``[-1, 1]`` for a crop of
``S`` pixels (x right, y down); the regressor's weak-perspective camera predicts these.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lifting.skeletons import CANON16, remap

__all__ = [
    "Person", "ImageRecord", "CocoPeople", "load_coco_people", "CropSampler", "crop_affine", "overlap_targets", "own_targets",
    "IMAGENET_MEAN", "IMAGENET_STD", "VIS_WEIGHTS",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: 2D loss weight per COCO visibility flag v = 0, 1 (labelled, occluded), 2 (visible)
VIS_WEIGHTS = (0.0, 0.5, 1.0)

_FLIP = {
    "coco17": (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15),
    "crowdpose14": (1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 12, 13),
}
_NAMES = {
    "coco17": ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
               "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
               "right_knee", "left_ankle", "right_ankle"),
    "crowdpose14": ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
                    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "head",
                    "neck"),
}


@dataclass
class Person:
    """One annotated person.

    Attributes:
        keypoints: ``(K, 3)`` float32 ``[x, y, v]``, pixels, COCO visibility flag ``v``.
        box: ``(4,)`` float32 ``[x, y, w, h]`` pixels.
        segmentation: the COCO ``segmentation`` value (polygons or RLE) or ``None``.
        iscrowd: COCO crowd flag (crowd regions are context, never targets).
        ann_id: annotation id.
    """

    keypoints: np.ndarray
    box: np.ndarray
    segmentation: object = None
    iscrowd: bool = False
    ann_id: int = -1

    @property
    def num_labelled(self) -> int:
        return int((self.keypoints[:, 2] > 0).sum())


@dataclass
class ImageRecord:
    """One image and its people (``path`` to the image file; ``width``/``height`` pixels)."""

    image_id: int
    path: Path
    width: int
    height: int
    people: list[Person] = field(default_factory=list)


@dataclass
class CocoPeople:
    """A COCO-format person keypoint set: ``images`` and the ``keypoint_format``
    (``coco17`` or ``crowdpose14``)."""

    images: list[ImageRecord]
    keypoint_format: str

    @property
    def flip_index(self) -> tuple[int, ...]:
        return _FLIP[self.keypoint_format]


def _fail(source, msg):
    raise ValueError(f"{source}: {msg}")


def load_coco_people(annotations: str | Path, image_dir: str | Path | None = None) -> CocoPeople:
    """Read a COCO person-keypoint annotation file.

    Args:
        annotations: the JSON file (``images``, ``annotations``, ``categories``).
        image_dir: folder of the images (default: the JSON's folder, then its sibling folder
            named after the file, e.g. ``annotations/person_keypoints_val2017.json`` ->
            ``val2017/``).

    Returns:
        :class:`CocoPeople`; images without any annotation are kept (they are context-free
        negatives for nobody, and are skipped by samplers).

    Raises:
        ValueError: unreadable JSON, missing keys, an unknown keypoint layout (names the
            categories' keypoint names and the supported ones), keypoint arrays of the wrong
            length, non-finite numbers, or an image file that does not exist.
    """
    annotations = Path(annotations)
    src = str(annotations)
    try:
        data = json.loads(annotations.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{src}: cannot read COCO annotations ({e})") from None
    if not isinstance(data, dict) or not {"images", "annotations", "categories"} <= set(data):
        _fail(src, "expected a COCO annotation object with 'images', 'annotations' and 'categories'")
    cats = [c for c in data["categories"] if isinstance(c, dict) and c.get("keypoints")]
    if not cats:
        _fail(src, "no category with 'keypoints' names (not a person-keypoint file)")
    names = tuple(cats[0]["keypoints"])
    fmt = next((k for k, v in _NAMES.items() if v == names), None)
    if fmt is None:
        _fail(src, f"unknown keypoint layout {list(names)}; supported: COCO-17 and CrowdPose-14 names")
    K = len(names)
    person_cat = {int(c["id"]) for c in cats}
    if image_dir is None:
        stem = annotations.stem.split("_")[-1]
        cands = [annotations.parent, annotations.parent.parent / stem, annotations.parent / stem]
        first = data["images"][0]["file_name"] if data["images"] else ""
        image_dir = next((c for c in cands if (c / first).is_file()), annotations.parent)
    image_dir = Path(image_dir)
    records: dict[int, ImageRecord] = {}
    for im in data["images"]:
        try:
            rec = ImageRecord(int(im["id"]), image_dir / im["file_name"], int(im["width"]), int(im["height"]))
        except (KeyError, TypeError, ValueError):
            _fail(src, f"image entry {im!r:.120} lacks id/file_name/width/height")
        if not rec.path.is_file():
            _fail(src, f"image file {rec.path} does not exist (pass image_dir)")
        records[rec.image_id] = rec
    for a in data["annotations"]:
        if int(a.get("category_id", 1)) not in person_cat or "keypoints" not in a:
            continue
        kp = np.asarray(a["keypoints"], dtype=np.float64)
        if kp.shape != (3 * K,):
            _fail(src, f"annotation {a.get('id')}: {kp.size} keypoint numbers, expected {3 * K} for {fmt}")
        box = np.asarray(a.get("bbox", [np.nan] * 4), dtype=np.float64)
        if box.shape != (4,) or not np.isfinite(kp).all():
            _fail(src, f"annotation {a.get('id')}: bbox must be 4 numbers and keypoints finite")
        img = records.get(int(a["image_id"]))
        if img is None:
            _fail(src, f"annotation {a.get('id')} refers to unknown image_id {a['image_id']}")
        if not np.isfinite(box).all():
            lab = kp.reshape(K, 3)[kp.reshape(K, 3)[:, 2] > 0, :2]
            if not len(lab):
                continue
            lo, hi = lab.min(0), lab.max(0)
            box = np.array([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]])
        img.people.append(Person(kp.reshape(K, 3).astype(np.float32), box.astype(np.float32),
                                 a.get("segmentation"), bool(a.get("iscrowd", 0)), int(a.get("id", -1))))
    return CocoPeople(list(records.values()), fmt)


def crop_affine(centre: np.ndarray, size: float, out: int, rot_deg: float = 0.0, flip: bool = False) -> np.ndarray:
    """Image pixels -> crop pixels for a square crop of side ``size`` pixels centred at
    ``centre (2,)``, resampled to ``out`` pixels, rotated by ``rot_deg`` (counter-clockwise on
    screen) and optionally mirrored. Returns the ``(3, 3)`` homogeneous matrix."""
    s = out / size
    c, sn = math.cos(math.radians(rot_deg)), math.sin(math.radians(rot_deg))
    T0 = np.array([[1, 0, -centre[0]], [0, 1, -centre[1]], [0, 0, 1]], dtype=np.float64)
    RS = np.array([[s * c, s * sn, 0], [-s * sn, s * c, 0], [0, 0, 1]], dtype=np.float64)
    F = np.diag([-1.0 if flip else 1.0, 1.0, 1.0])
    T1 = np.array([[1, 0, out / 2], [0, 1, out / 2], [0, 0, 1]], dtype=np.float64)
    return T1 @ F @ RS @ T0


def _apply(A: np.ndarray, xy: np.ndarray) -> np.ndarray:
    return xy @ A[:2, :2].T + A[:2, 2]


class CropSampler:
    """Person crops with centermaps from a :class:`CocoPeople` set.

    A target is every non-crowd person with at least ``min_keypoints`` labelled keypoints.
    ``sample`` draws a batch plan (targets and augmentation) from a ``torch.Generator`` so
    data-parallel ranks draw the same global batch; ``materialise`` builds a slice of it.

    Args:
        people: the annotation set. crop_size: crop side ``S`` in pixels. heatmap_size: side
            of the centermaps. padding: crop side = ``padding * max(box w, h)``.
        augment: scale jitter ``scale`` (relative, uniform in ``1 +- scale``), translation
            jitter ``shift`` (fraction of the box size), rotation ``rot_deg`` (uniform
            ``+-``, applied to ``rot_prob`` of crops), ``flip_prob``, colour jitter ``colour``
            (brightness/contrast/saturation factors in ``1 +- colour``), ``occlusion_prob``
            (paste a person segment from another image over the target, see
            :mod:`occlusion.augment`), ``occluder_target_prob`` (of the pasted crops, the
            fraction whose target becomes the pasted person while the crop stays on the
            occluded person's box: the "one crop, different instance maps" case of OCHMR).
            ``None`` = no augmentation (evaluation).
        min_keypoints: labelled keypoints a target needs.
        cache: keep decoded images in memory.
        targets: explicit ``(image, target person, crop person)`` triples instead of every
            usable person cropped around their own box (see :func:`overlap_targets`: the
            crop of one person with the instance centre on another).

    Raises:
        ValueError: no usable target in the set.
    """

    def __init__(self, people: CocoPeople, crop_size: int = 128, heatmap_size: int = 32, padding: float = 1.25,
                 augment: dict | None = None, min_keypoints: int = 6, cache: bool = True,
                 targets: list[tuple[int, int, int]] | None = None):
        self.people, self.S, self.H, self.padding = people, int(crop_size), int(heatmap_size), float(padding)
        self.aug = dict(augment) if augment else None
        self.min_keypoints = int(min_keypoints)
        if targets is None:
            targets = own_targets(people, min_keypoints)
        self.targets = [tuple(int(v) for v in t) for t in targets]
        if not self.targets:
            raise ValueError(f"no person with >= {min_keypoints} labelled keypoints in the annotation set")
        self.cache: dict[int, np.ndarray] | None = {} if cache else None
        self.segments = None
        if self.aug and float(self.aug.get("occlusion_prob", 0)) > 0:
            self.segments = self.segment_bank()

    def __len__(self) -> int:
        return len(self.targets)

    def image(self, i: int) -> np.ndarray:
        """Image ``i`` as ``(H, W, 3)`` uint8 RGB.

        Raises:
            ValueError: the file cannot be decoded."""
        if self.cache is not None and i in self.cache:
            return self.cache[i]
        rec = self.people.images[i]
        try:
            with Image.open(rec.path) as im:
                arr = np.asarray(im.convert("RGB"))
        except OSError as e:
            raise ValueError(f"cannot decode image {rec.path}: {e}") from None
        if self.cache is not None:
            self.cache[i] = arr
        return arr

    def segment_bank(self) -> list:
        """``[(image index, PersonSegment)]`` of every person with a COCO polygon/RLE mask
        (:func:`occlusion.augment.extract_segments`): the occluders pasted over targets."""
        from .augment import extract_segments

        bank = []
        for i, rec in enumerate(self.people.images):
            anns = [{"keypoints": p.keypoints.reshape(-1).tolist(), "bbox": p.box.tolist(),
                     "segmentation": p.segmentation, "iscrowd": int(p.iscrowd)}
                    for p in rec.people if p.segmentation is not None]
            if anns:
                for seg in extract_segments(self.image(i), anns):
                    bank.append((i, seg))
        return bank

    def sample(self, batch_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Draw a batch plan: target indices and augmentation numbers ``(B, ...)`` (CPU)."""
        dev = generator.device
        B = batch_size
        plan = {"target": torch.randint(len(self.targets), (B,), generator=generator, device=dev),
                "u": torch.rand(B, 10, generator=generator, device=dev)}
        return {k: v.cpu() for k, v in plan.items()}

    def all_targets(self) -> dict[str, torch.Tensor]:
        """A plan covering every target once, unaugmented (for evaluation)."""
        n = len(self.targets)
        return {"target": torch.arange(n), "u": torch.full((n, 10), 0.5)}

    def materialise(self, plan: dict[str, torch.Tensor], sl: slice = slice(None),
                    target_centre: dict[int, np.ndarray] | None = None) -> dict[str, torch.Tensor]:
        """Build the crops of ``plan[sl]``.

        Returns a dict of CPU tensors (``b`` crops, ``K`` keypoints, ``P`` max people):
            ``images (b, 3, S, S)`` ImageNet-normalised; ``centermaps (b, 2, H, H)``
            (contextual, instance); ``keypoints (b, K, 3)`` target keypoints in crop-normalised
            units with a loss weight (:data:`VIS_WEIGHTS`) in ``[..., 2]``; ``joints_2d
            (b, 16, 2)`` / ``joints_mask (b, 16)`` / ``joints_weight (b, 16)`` the target in
            the canonical set (the weight averages :data:`VIS_WEIGHTS` over each recipe);
            ``others_2d (b, P, 16, 2)`` / ``others_mask (b, P, 16)`` the other people in the
            crop (for wrong-person checks); ``box_size (b,)`` the target's box size
            ``max(w, h)`` in crop-normalised units.
        """
        from .centermap import body_centres

        idx = plan["target"][sl].tolist()
        U = plan["u"][sl].numpy().astype(np.float64)
        aug, fmt, flip_idx = self.aug, self.people.keypoint_format, np.array(self.people.flip_index)
        S = self.S
        out = {k: [] for k in ("images", "keypoints", "joints_2d", "joints_mask", "joints_weight", "box_size")}
        centres_all, sizes_all, targets, others = [], [], [], []
        rng = np.random.default_rng(int(plan["target"][sl].sum()) * 7919 + int(U.sum() * 1e6) % 100003)
        for t, u in zip(idx, U):
            i, j, c = self.targets[t]
            rec = self.people.images[i]
            img = self.image(i)
            people = [p for p in rec.people]
            kps = np.stack([p.keypoints for p in people])  # (P, K, 3)
            boxes = np.stack([p.box for p in people])
            if aug and self.segments and u[6] < float(aug.get("occlusion_prob", 0)):
                img, kps, boxes = self._paste(img, kps, boxes, j, i, rng)
                if u[7] < float(aug.get("occluder_target_prob", 0)) and (kps[-1, :, 2] > 0).sum() >= self.min_keypoints:
                    # the pasted person becomes the target; the crop stays on the occluded one's
                    # box, so only the instance centermap says whom to regress (OCHMR Sec. 3)
                    c, j = j, len(kps) - 1
            A, size, flip = self._crop_geometry(boxes[c], u)
            out["images"].append(self._crop_pixels(img, A, rng))
            # keypoints of every person in crop coordinates (flip swaps left/right)
            k_all = kps.copy()
            k_all[..., :2] = _apply(A, kps[..., :2].reshape(-1, 2)).reshape(kps.shape[:-1] + (2,))
            if flip:
                k_all = k_all[:, flip_idx]
            k_all[..., :2] = (k_all[..., :2] - S / 2) / (S / 2)
            lab = k_all[..., 2] > 0
            k_t = k_all[j].copy()
            k_t[k_t[:, 2] <= 0, :2] = 0.0
            k_t[:, 2] = np.take(np.array(VIS_WEIGHTS, np.float32), k_t[:, 2].astype(int).clip(0, 2))
            out["keypoints"].append(torch.from_numpy(k_t.astype(np.float32)))
            j2d, jm = remap(k_all[..., :2], fmt, CANON16, valid=lab)
            out["joints_2d"].append(torch.from_numpy(j2d[j].astype(np.float32)))
            out["joints_mask"].append(torch.from_numpy(jm[j]))
            jw, _ = remap(k_t[:, 2:3], fmt, CANON16, valid=lab[j])  # recipe-averaged visibility weights
            out["joints_weight"].append(torch.from_numpy((jw[:, 0] * jm[j]).astype(np.float32)))
            others.append((np.delete(j2d, j, 0).astype(np.float32), np.delete(jm, j, 0)))
            tb = boxes[j]  # the target's own box sets the PCK threshold
            out["box_size"].append(torch.tensor(max(tb[2], tb[3]) * 2 / size, dtype=torch.float32))
            # centres and sizes (crop pixels) for the centermaps
            cen, siz = body_centres(kps, boxes, fmt=fmt)
            cen = _apply(A, np.asarray(cen, np.float64))
            centres_all.append(cen)
            sizes_all.append(np.asarray(siz, np.float64) * S / size)
            targets.append(j)
        b = len(idx)
        res = {k: torch.stack(v) for k, v in out.items()}
        res["centermaps"] = self._centermaps(centres_all, sizes_all, targets)
        Po = max(1, max(len(o[0]) for o in others))
        res["others_2d"] = torch.zeros(b, Po, 16, 2)
        res["others_mask"] = torch.zeros(b, Po, 16, dtype=torch.bool)
        for n, (o, m) in enumerate(others):
            res["others_2d"][n, : len(o)] = torch.from_numpy(o)
            res["others_mask"][n, : len(o)] = torch.from_numpy(m)
        return res

    def _crop_geometry(self, box: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, float, bool]:
        """The crop around ``box`` (xywh px): the image -> crop affine ``(3, 3)``, the crop's
        side in image pixels and whether it is mirrored; scaled, shifted, rotated and
        flipped by the plan's uniforms ``u (10,)`` when augmenting."""
        aug = self.aug
        size = self.padding * max(box[2], box[3])
        centre = box[:2] + box[2:] / 2
        rot, flip = 0.0, False
        if aug:
            size *= 1 + float(aug.get("scale", 0)) * (2 * u[0] - 1)
            centre = centre + float(aug.get("shift", 0)) * max(box[2], box[3]) * (2 * u[1:3] - 1)
            if u[3] < float(aug.get("rot_prob", 0.6)):
                rot = float(aug.get("rot_deg", 0)) * (2 * u[4] - 1)
            flip = bool(u[5] < float(aug.get("flip_prob", 0)))
        return crop_affine(centre, size, self.S, rot, flip), size, flip

    def _crop_pixels(self, img: np.ndarray, A: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        """The ``(3, S, S)`` ImageNet-normalised crop of ``img (H, W, 3)`` uint8 under the
        image -> crop affine ``A (3, 3)``, colour-jittered (``aug["colour"]``, drawing from
        ``rng``) when augmenting."""
        S, aug = self.S, self.aug
        Ainv = np.linalg.inv(A)
        crop = Image.fromarray(img).transform((S, S), Image.Transform.AFFINE, tuple(Ainv[:2].reshape(-1)),
                                              resample=Image.Resampling.BILINEAR, fillcolor=(0, 0, 0))
        x = np.asarray(crop, dtype=np.float32) / 255.0
        if aug and float(aug.get("colour", 0)) > 0:
            c = float(aug["colour"])
            f = 1 + c * (2 * rng.random(3) - 1)
            grey = x.mean(axis=2, keepdims=True)
            x = np.clip((grey + (x - grey) * f[2] - 0.5) * f[1] + 0.5, 0, 1) * f[0]
            x = np.clip(x, 0, 1)
        x = ((x - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)).astype(np.float32)
        return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))

    def _centermaps(self, centres_all: list[np.ndarray], sizes_all: list[np.ndarray], targets: list[int]):
        """``(b, 2, H, H)`` centermaps (:func:`occlusion.centermap.render_centermaps`) of ``b``
        crops from each crop's people's centres ``(P_n, 2)`` and sizes ``(P_n,)`` in crop
        pixels and its target person's index."""
        from .centermap import render_centermaps

        P, b, S = max(len(c) for c in centres_all), len(centres_all), self.S
        cen_t = torch.zeros(b, P, 2)
        siz_t = torch.ones(b, P)
        val_t = torch.zeros(b, P, dtype=torch.bool)
        for n, (c, s_) in enumerate(zip(centres_all, sizes_all)):
            cen_t[n, : len(c)] = torch.from_numpy(c).float()
            siz_t[n, : len(c)] = torch.from_numpy(s_).float()
            val_t[n, : len(c)] = True
        crop_boxes = torch.tensor([[0.0, 0.0, S, S]]).expand(b, 4)
        return render_centermaps(cen_t, siz_t, val_t, torch.tensor(targets), crop_boxes, (self.H, self.H))

    def _paste(self, img, kps, boxes, j, i, rng):
        """Paste a random person segment from another image over target ``j`` (the occluder
        becomes an extra person of the scene)."""
        from .augment import PasteSettings, occluded_keypoints, paste_occluder

        cands = [s for (src, s) in self.segments if src != i] or [s for (_, s) in self.segments]
        seg = cands[int(rng.integers(len(cands)))]
        fi = self.people.flip_index
        res = paste_occluder(img, boxes[j], seg, rng,
                             PasteSettings(flip_pairs=[(a, b) for a, b in enumerate(fi) if a < b]))
        occ_kp = res.keypoints.astype(np.float32)
        occ_kp[:, 2] = np.where(occ_kp[:, 2] > 0, 2, 0)
        kps = kps.copy()
        # target keypoints now under the occluder become "labelled, not visible"
        covered = occluded_keypoints(res.alpha, kps[j])
        kps[j, covered & (kps[j, :, 2] > 0), 2] = 1
        kps = np.concatenate([kps, occ_kp[None]], 0)
        boxes = np.concatenate([boxes, np.asarray(res.box, np.float32)[None]], 0)
        return res.image, kps, boxes



def _usable(im, min_keypoints: int) -> list[int]:
    """Indices of the people of an image record that can be targets: not crowd, at least
    ``min_keypoints`` labelled keypoints, a box wider and taller than one pixel."""
    return [j for j, p in enumerate(im.people)
            if not p.iscrowd and p.num_labelled >= min_keypoints and p.box[2] > 1 and p.box[3] > 1]


def own_targets(people: CocoPeople, min_keypoints: int = 6) -> list[tuple[int, int, int]]:
    """Every usable person cropped by their own box, as ``(image, target, crop person)``
    triples ``(i, j, j)`` (the default targets of :class:`CropSampler`)."""
    return [(i, j, j) for i, im in enumerate(people.images) for j in _usable(im, min_keypoints)]


def overlap_targets(people: CocoPeople, min_keypoints: int = 6, min_iou: float = 0.1,
                    other_crop: bool = False) -> list[tuple[int, int, int]]:
    """Targets of the overlap benchmark: people whose box overlaps another annotated person's
    (box IoU >= ``min_iou``), as ``(image, target, crop person)`` triples.

    ``other_crop=False``: the crop is the target's own box (the other person intrudes);
    ``True``: the crop is the *other* person's box and only the instance centermap says who
    the target is (OCHMR's "one crop, different local maps" case; a regressor without
    context cannot get it right).
    """
    out = []
    for i, im in enumerate(people.images):
        ok = _usable(im, min_keypoints)
        for j in ok:
            for c in ok:
                if c == j or _iou(im.people[j].box, im.people[c].box) < min_iou:
                    continue
                if other_crop:
                    out.append((i, j, c))
                elif not out or out[-1] != (i, j, j):  # own crop: once per target
                    out.append((i, j, j))
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return float(inter / (a[2] * a[3] + b[2] * b[3] - inter))
