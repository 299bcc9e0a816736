"""Tests of occlusion.augment: COCO masks, person cut-outs, copy-paste occlusion and the
TERSE-style differentiable occluder placer. Small synthetic images; the COCO-mini test
skips when ../shared/data is absent."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from occlusion.augment import (
    OccluderPlacer, PasteSettings, PersonSegment, RealismCritic, affine_theta, composite_affine, composite_segment,
    critic_loss, extract_segments, occluded_keypoints, paste_occluder, patch_to_crop, person_mask,
    placer_loss,
)

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
COCO_MINI = DATA / "images" / "coco_mini"


def _rle_encode(mask: np.ndarray) -> dict:
    """Uncompressed COCO RLE of a bool mask (column-major, first run = background)."""
    flat = mask.flatten(order="F").astype(np.int8)
    change = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    counts = np.diff(np.concatenate([[0], change]))
    return {"counts": [int(c) for c in counts], "size": list(mask.shape)}


def _segment(K: int = 17, h: int = 10, w: int = 6) -> PersonSegment:
    """Red opaque ``h x w`` patch with a green 2x2 block at rows 2-3, cols 1-2, whose centre
    (2, 3) is keypoint 5 (left_shoulder); other keypoints unlabelled."""
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 255, 255
    rgba[2:4, 1:3] = (0, 255, 0, 255)
    kp = np.zeros((K, 3), np.float32)
    kp[5] = (2.0, 3.0, 2.0)
    return PersonSegment(rgba, kp)


def _green_centroid(img: np.ndarray) -> np.ndarray:
    g = np.clip(img[..., 1].astype(float) - img[..., 0].astype(float), 0, None)
    ys, xs = np.mgrid[: img.shape[0], : img.shape[1]]
    return np.array([(g * (xs + 0.5)).sum(), (g * (ys + 0.5)).sum()]) / g.sum()


# --- masks -----------------------------------------------------------------------------------

def test_polygon_mask_exact_pixel_counts():
    rect = [[1, 1, 4, 1, 4, 3, 1, 3]]  # x 1..4, y 1..3 inclusive
    m = person_mask(rect, 8, 8)
    assert m.shape == (8, 8) and m.dtype == bool and m.sum() == 12
    assert m[1:4, 1:5].all()
    assert person_mask([[0, 0, 4, 0, 0, 4]], 8, 8).sum() == 15  # 5 + 4 + 3 + 2 + 1
    both = person_mask(rect + [[6, 6, 7, 6, 7, 7, 6, 7]], 8, 8)  # union of two parts
    assert both.sum() == 12 + 4


def test_rle_mask_is_column_major():
    m = person_mask({"counts": [1, 3, 8], "size": [3, 4]}, 3, 4)
    expected = np.zeros((3, 4), bool)
    expected[1:, 0] = expected[0, 1] = True
    np.testing.assert_array_equal(m, expected)
    rand = np.random.default_rng(0).random((7, 5)) > 0.5
    np.testing.assert_array_equal(person_mask(_rle_encode(rand), 7, 5), rand)


@pytest.mark.parametrize("seg, match", [
    ({"counts": "abc", "size": [3, 4]}, "compressed"),
    ({"counts": [12], "size": [4, 3]}, "size"),
    ({"counts": [1, 3, 7], "size": [3, 4]}, "sum"),
    ({"size": [3, 4]}, "counts"),
    ([[0, 0, 1, 1, 2]], "polygon"),
    ([[0, 0, 1, 1]], "polygon"),
    ([[0, 0, 1, float("nan"), 2, 2]], "polygon"),
    ([], "empty"),
    ("polygon", "list of polygons"),
])
def test_mask_bad_input(seg, match):
    with pytest.raises(ValueError, match=match):
        person_mask(seg, 3, 4)


def test_mask_bad_size():
    with pytest.raises(ValueError, match="height"):
        person_mask([[0, 0, 1, 0, 1, 1]], 0, 4)


# --- segments ---------------------------------------------------------------------------------

def test_extract_segments_cuts_box_mask_and_keypoints():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    kp = np.zeros((17, 3))
    kp[:6] = [(12, 8, 2), (13, 9, 2), (14, 10, 1), (15, 20, 2), (16, 21, 2), (17, 22, 2)]
    good = {"id": 7, "image_id": 3, "category_id": 1, "iscrowd": 0, "bbox": [10, 5, 9, 19],
            "segmentation": [[10, 5, 19, 5, 19, 24, 10, 24]], "keypoints": kp.ravel().tolist()}
    crowd = dict(good, id=8, iscrowd=1)
    few_kp = dict(good, id=9, keypoints=np.where(np.arange(51) < 6, kp.ravel(), 0).tolist())
    tiny = dict(good, id=10, bbox=[40, 30, 3, 3], segmentation=[[40, 30, 42, 30, 42, 32, 40, 32]])
    other_image = dict(good, id=11, image_id=4)
    segs = extract_segments(image, [good, crowd, few_kp, tiny, other_image], min_area=50, min_visible=5, image_id=3)
    assert [s.annotation_id for s in segs] == [7]
    s = segs[0]
    assert s.rgba.shape == (20, 10, 4) and s.rgba.dtype == np.uint8 and s.image_id == 3
    assert s.mask.sum() == 200
    np.testing.assert_array_equal(s.rgba[..., :3], image[5:25, 10:20])
    np.testing.assert_allclose(s.keypoints[:6, :2], kp[:6, :2] - [10, 5])
    np.testing.assert_array_equal(s.keypoints[6:], 0)
    np.testing.assert_array_equal(s.box, [10, 5, 10, 20])  # PIL fills x 10..19, y 5..24


def test_extract_segments_bad_input():
    with pytest.raises(ValueError, match="uint8"):
        extract_segments(np.zeros((4, 4, 3), np.float32), [])
    ann = {"bbox": [0, 0, 2, 2], "segmentation": [[0, 0, 1, 0, 1, 1]], "keypoints": [1, 2]}
    with pytest.raises(ValueError, match="multiple of 3"):
        extract_segments(np.zeros((4, 4, 3), np.uint8), [ann], min_visible=0)
    with pytest.raises(ValueError, match="rgba"):
        PersonSegment(np.zeros((4, 4, 3), np.uint8), np.zeros((17, 3)))


# --- pasting ----------------------------------------------------------------------------------

def test_composite_known_offset_and_scale():
    image = np.full((30, 40, 3), 40, np.uint8)
    seg = _segment()
    res = composite_segment(image, seg, (7, 5), 1.0, feather_px=0.0)
    assert res.image.shape == (30, 40, 3) and res.image.dtype == np.uint8
    assert res.alpha.shape == (30, 40) and res.alpha.dtype == np.float32
    np.testing.assert_array_equal(res.alpha[5:15, 7:13], 1.0)
    assert res.alpha.sum() == 60  # nothing outside the patch
    np.testing.assert_array_equal(res.image[7:9, 8:10], [[[0, 255, 0]] * 2] * 2)
    np.testing.assert_array_equal(res.image[:5], image[:5])
    np.testing.assert_allclose(res.keypoints[5], [9.0, 8.0, 2.0])
    np.testing.assert_array_equal(res.box, [7, 5, 6, 10])
    np.testing.assert_allclose(res.scale, [1.0, 1.0])

    res2 = composite_segment(image, seg, (7, 5), 2.0, feather_px=0.0)
    np.testing.assert_allclose(res2.keypoints[5, :2], [2 * 2 + 7, 3 * 2 + 5])
    np.testing.assert_allclose(_green_centroid(res2.image), res2.keypoints[5, :2], atol=0.3)
    np.testing.assert_array_equal(res2.box, [7, 5, 12, 20])


def test_composite_flip_mirrors_and_swaps_left_right():
    image = np.full((30, 40, 3), 40, np.uint8)
    res = composite_segment(image, _segment(), (7, 5), 1.0, flip=True, feather_px=0.0)
    assert res.flipped
    assert res.keypoints[5, 2] == 0 and res.keypoints[6, 2] == 2  # left_shoulder -> right_shoulder
    np.testing.assert_allclose(res.keypoints[6, :2], [6 - 2 + 7, 3 + 5])
    np.testing.assert_allclose(_green_centroid(res.image), res.keypoints[6, :2], atol=1e-6)
    with pytest.raises(ValueError, match="flip_pairs"):
        composite_segment(image, _segment(K=14), (7, 5), 1.0, flip=True)
    ok = composite_segment(image, _segment(K=14), (7, 5), 1.0, flip=True, flip_pairs=[(5, 6)])
    assert ok.keypoints[6, 2] == 2


def test_composite_feather_bounds_and_image_border():
    image = np.zeros((20, 20, 3), np.uint8)
    res = composite_segment(image, _segment(h=12, w=12), (-4, 14), 1.0, feather_px=2.0)
    assert 0.0 <= res.alpha.min() and res.alpha.max() <= 1.0
    assert res.alpha[18, 3] > 0.95  # interior
    assert 0 < res.alpha[12, 3] < 0.5  # feathered outside the hard edge at row 14
    np.testing.assert_array_equal(res.box, [0, 14, 8, 6])  # clipped to the image
    assert res.keypoints[5, 2] == 0  # keypoint (2-4, 3+14) = (-2, 17) is outside
    img_pos = composite_segment(image, _segment(h=12, w=12), (4, 4), 1.0)
    np.testing.assert_allclose(img_pos.keypoints[5], [6, 7, 2])


def test_paste_occluder_deterministic_and_in_range():
    rng0 = np.random.default_rng(0)
    image = rng0.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    seg = PersonSegment(np.dstack([rng0.integers(0, 256, (40, 40, 3), dtype=np.uint8),
                                   np.full((40, 40), 255, np.uint8)]), np.zeros((17, 3)))
    box = (60, 30, 40, 60)
    a = paste_occluder(image, box, seg, np.random.default_rng(3), PasteSettings(scale_range=(1.0, 1.2)))
    b = paste_occluder(image, box, seg, np.random.default_rng(3), PasteSettings(scale_range=(1.0, 1.2)))
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.alpha, b.alpha)
    c = paste_occluder(image, box, seg, np.random.default_rng(4), PasteSettings(scale_range=(1.0, 1.2)))
    assert not np.array_equal(a.image, c.image)
    flips = []
    for seed in range(12):
        r = paste_occluder(image, box, seg, np.random.default_rng(seed),
                           PasteSettings(scale_range=(1.0, 1.2), overlap_range=(0.2, 0.6), feather_px=1.0))
        assert 0.2 - 0.04 <= r.box_overlap <= 0.6 + 0.04  # integer rounding of the offset
        assert 1.0 - 0.02 <= 40 * r.scale[1] / 60 <= 1.2 + 0.02
        assert r.alpha.min() >= 0 and r.alpha.max() <= 1 and r.image.dtype == np.uint8
        flips.append(r.flipped)
    assert any(flips) and not all(flips)


def test_paste_occluder_bad_input():
    image = np.zeros((50, 50, 3), np.uint8)
    seg, rng = _segment(), np.random.default_rng(0)
    with pytest.raises(ValueError, match="uint8"):
        paste_occluder(image.astype(np.float32), (10, 10, 20, 20), seg, rng)
    with pytest.raises(ValueError, match="w, h > 0"):
        paste_occluder(image, (10, 10, 0, 20), seg, rng)
    with pytest.raises(ValueError, match="intersect"):
        paste_occluder(image, (60, 10, 20, 20), seg, rng)
    with pytest.raises(ValueError, match="Generator"):
        paste_occluder(image, (10, 10, 20, 20), seg, np.random.RandomState(0))
    with pytest.raises(ValueError, match="overlap_range"):
        paste_occluder(image, (10, 10, 20, 20), seg, rng, PasteSettings(overlap_range=(0.6, 0.2)))
    with pytest.raises(ValueError, match="flip_pairs"):
        paste_occluder(image, (10, 10, 20, 20), _segment(K=14), rng)
    assert paste_occluder(image, (10, 10, 20, 20), _segment(K=14), rng,
                          PasteSettings(flip_prob=0.0)).image.shape == (50, 50, 3)


def test_occluded_keypoints():
    alpha = np.zeros((10, 10), np.float32)
    alpha[2:5, 2:5] = 1.0
    alpha[7, 7] = 0.4
    kp = np.array([[3.5, 3.5, 1], [2.0, 4.9, 2], [3.5, 3.5, 0], [7.5, 7.5, 1], [5.0, 3.0, 1], [-1, 3, 1], [12, 3, 1]])
    np.testing.assert_array_equal(occluded_keypoints(alpha, kp), [1, 1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(occluded_keypoints(alpha, kp[:, :2])[:3], [1, 1, 1])
    with pytest.raises(ValueError, match="alpha"):
        occluded_keypoints(alpha[None], kp)
    with pytest.raises(ValueError, match="keypoints"):
        occluded_keypoints(alpha, kp[:, :1])


# --- task-aware placer (TERSE) -------------------------------------------------------------------

def _blob_occluders(B: int, h: int = 16, w: int = 8) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    occ = torch.zeros(B, 4, h, w)
    occ[:, :3] = 0.5
    occ[:, 3] = (1.5 * torch.exp(-(((xx - w / 2) / (w / 2.5)) ** 2 + ((yy - h / 2) / (h / 2.5)) ** 2))).clamp(0, 1)
    return occ


def test_affine_theta_places_patch_exactly():
    crops, occ = torch.zeros(1, 3, 32, 32), torch.ones(1, 4, 16, 8)
    theta = affine_theta(torch.tensor([0.5]), torch.tensor([[0.5, 0.0]]), torch.zeros(1), (32, 32), (16, 8))
    comp, alpha = composite_affine(crops, occ, theta)
    assert alpha.sum().item() == pytest.approx(16 * 8, abs=1e-3)  # 16 px tall, aspect kept
    np.testing.assert_allclose(alpha[0, 0, 8:24, 20:28].numpy(), 1.0, atol=1e-5)  # centre at x = 24
    assert torch.allclose(comp, alpha.expand(-1, 3, -1, -1))
    corners = patch_to_crop(torch.tensor([[[0.0, 0.0], [8.0, 16.0], [4.0, 8.0]]]), theta, (16, 8), (32, 32))
    np.testing.assert_allclose(corners[0].numpy(), [[20, 8], [28, 24], [24, 16]], atol=1e-4)


def test_fresh_placer_composites_inside_crop():
    torch.manual_seed(0)
    placer = OccluderPlacer(width=8, enc_size=16, noise_dim=4)
    crops, occ = torch.rand(3, 3, 24, 32), _blob_occluders(3)
    out = placer(crops, occ, generator=torch.Generator().manual_seed(0))
    assert out.composite.shape == (3, 3, 24, 32) and out.alpha.shape == (3, 1, 24, 32)
    assert out.theta.shape == (3, 2, 3) and out.center.shape == (3, 2)
    assert out.alpha.min() >= 0 and out.alpha.max() <= 1 and (out.alpha.sum((1, 2, 3)) > 10).all()
    assert ((out.center >= 0) & (out.center <= torch.tensor([32.0, 24.0]))).all()
    free = out.alpha.expand(-1, 3, -1, -1) == 0
    assert torch.equal(out.composite[free], crops[free])
    mid = patch_to_crop(torch.tensor([[[4.0, 8.0]]]).expand(3, 1, 2), out.theta, (16, 8), (24, 32))[:, 0]
    torch.testing.assert_close(mid, out.center, atol=1e-4, rtol=0)
    again = placer(crops, occ, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again.composite, out.composite)


def _task_loss(alpha: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Toy target network's loss: the occluded fraction of a marked region, ``(B,)``."""
    return (alpha * region).sum((1, 2, 3)) / region.sum()


def test_placer_gradients_flow_and_it_learns_to_occlude():
    torch.manual_seed(0)
    crops, occ = torch.rand(4, 3, 32, 32), _blob_occluders(4)
    region = torch.zeros(1, 1, 32, 32)
    region[..., 6:26, 18:30] = 1.0  # right of the crop centre; a fresh placer barely touches it
    placer = OccluderPlacer(width=8, enc_size=16, noise_dim=4, scale_range=(0.3, 0.6))
    placer_loss(_task_loss(placer(crops, occ).alpha, region)).backward()
    grads = {n: p.grad for n, p in placer.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert grads["head.2.weight"].abs().sum() > 0 and grads["encoder.0.weight"].abs().sum() > 0

    def occluded() -> float:
        with torch.no_grad():
            return _task_loss(placer(crops, occ, generator=torch.Generator().manual_seed(1)).alpha, region).mean().item()

    before = occluded()
    opt = torch.optim.Adam(placer.parameters(), lr=0.03)
    gen = torch.Generator().manual_seed(0)
    for _ in range(30):
        loss = placer_loss(_task_loss(placer(crops, occ, generator=gen).alpha, region))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert occluded() > before + 0.2


def test_losses_sign_bounds_and_critic():
    low, high = torch.tensor([0.1, 0.2]), torch.tensor([1.0, 2.0])
    assert placer_loss(high) < placer_loss(low) < 0  # harder composites -> lower placer loss
    assert placer_loss(torch.tensor([1e6])).item() == pytest.approx(-1.0)  # bounded
    task = torch.tensor([0.5, 0.5], requires_grad=True)
    placer_loss(task).backward()
    assert (task.grad < 0).all()  # descent raises the task loss
    real, fake = torch.ones(2), torch.zeros(2)
    assert placer_loss(low, real, 0.5) == placer_loss(low)
    assert placer_loss(low, fake, 0.5).item() == pytest.approx(placer_loss(low).item() + 0.25)
    assert critic_loss(real, fake).item() == 0.0 and critic_loss(fake, real).item() == 1.0
    critic = RealismCritic(width=8, size=16)
    scores = critic(torch.rand(3, 3, 20, 28))
    assert scores.shape == (3,) and torch.isfinite(scores).all()
    assert torch.isfinite(critic_loss(scores, critic(torch.rand(2, 3, 16, 16))))


def test_placer_and_losses_bad_input():
    placer = OccluderPlacer(width=4, enc_size=8, noise_dim=2)
    crops, occ = torch.rand(2, 3, 16, 16), torch.rand(2, 4, 8, 8)
    with pytest.raises(ValueError, match="crops"):
        placer(crops[:, :2], occ)
    with pytest.raises(ValueError, match="occluders"):
        placer(crops, occ[:, :3])
    with pytest.raises(ValueError, match="match crops"):
        placer(crops, occ[:1])
    with pytest.raises(ValueError, match="match crops"):
        placer(crops, occ.double())
    with pytest.raises(ValueError, match="noise"):
        placer(crops, occ, noise=torch.zeros(2, 3))
    with pytest.raises(ValueError, match="scale_range"):
        OccluderPlacer(scale_range=(1.2, 0.6))
    with pytest.raises(ValueError, match="max_shift"):
        OccluderPlacer(max_shift=1.5)
    with pytest.raises(ValueError, match="crops"):
        RealismCritic(width=4, size=8)(torch.rand(2, 16, 16))
    with pytest.raises(ValueError, match="match"):
        placer_loss(torch.zeros(2), torch.zeros(3))
    with pytest.raises(ValueError, match=r"\(B,\)"):
        placer_loss(torch.zeros(2, 1))
    with pytest.raises(ValueError, match="real_scores"):
        critic_loss(torch.zeros(2, 1), torch.zeros(2))


# --- real data ----------------------------------------------------------------------------------

def test_coco_mini_segments_masks_and_paste():
    ann_file = COCO_MINI / "annotations" / "person_keypoints_val2017.json"
    if not ann_file.exists():
        pytest.skip(f"shared data absent: {ann_file} (needs ../shared/data next to the repo)")
    coco = json.loads(ann_file.read_text())
    images = {im["id"]: im for im in coco["images"]}
    by_image: dict[int, list[dict]] = {}
    for ann in coco["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
        im = images[ann["image_id"]]
        mask = person_mask(ann["segmentation"], im["height"], im["width"])
        ys, xs = np.nonzero(mask)
        x, y, w, h = ann["bbox"]
        mask_box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        np.testing.assert_allclose(mask_box, [x, y, x + w, y + h], atol=2.0)  # RLE: column-major
        if not ann["iscrowd"] and ann["area"] > 5000:
            assert 0.95 < mask.sum() / ann["area"] < 1.1  # PIL vs pycocotools border pixels
    ids = sorted(i for i, anns in by_image.items() if any(not a["iscrowd"] for a in anns))[:6]
    load = lambda i: np.asarray(Image.open(COCO_MINI / "val2017" / images[i]["file_name"]).convert("RGB"))  # noqa: E731
    segments = [s for i in ids[1:] for s in extract_segments(load(i), by_image[i], image_id=i)]
    assert segments and all(s.mask.sum() >= 32 * 32 and s.keypoints.shape == (17, 3) for s in segments)
    for s in segments:
        kp = s.keypoints[s.keypoints[:, 2] > 0]
        assert (kp[:, 0] >= -1).all() and (kp[:, 0] <= s.rgba.shape[1] + 1).all()
    target = next(a for a in by_image[ids[0]] if not a["iscrowd"])
    image = load(ids[0])
    res = paste_occluder(image, target["bbox"], segments[0], np.random.default_rng(0))
    assert res.image.shape == image.shape and res.image.dtype == np.uint8 and res.alpha.max() > 0.9
    assert 0 < res.box_overlap <= 1 and not np.array_equal(res.image, image)
    covered = occluded_keypoints(res.alpha, np.asarray(target["keypoints"], float).reshape(-1, 3))
    assert covered.shape == (17,)
