"""Tests for the image branch's building blocks: body centres and centermaps
(occlusion.centermap), Contextual Normalization (occlusion.conorm) and the torchvision-
compatible ResNet backbones (occlusion.backbone)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from occlusion.backbone import ResNetBackbone, load_pretrained
from occlusion.centermap import body_centres, centermap_sigma, render_centermaps
from occlusion.conorm import CoNorm

# --- body centres ---------------------------------------------------------------------------


def _coco_person(offset=(0.0, 0.0)) -> np.ndarray:
    kp = np.zeros((17, 3))
    kp[:, :2] = np.random.default_rng(0).uniform(0, 100, (17, 2))
    kp[:, 2] = 2
    kp[5, :2], kp[6, :2], kp[11, :2], kp[12, :2] = (40, 20), (60, 20), (42, 60), (58, 60)
    kp[:, :2] += offset
    return kp


def test_body_centres_torso_box_and_joint_fallbacks():
    full = _coco_person()
    no_hips = full.copy()
    no_hips[[11, 12], 2] = 0  # shoulders only: box centre
    one_each = full.copy()
    one_each[[6, 12], 2] = 0  # left shoulder + left hip: their mean
    sparse = np.zeros((17, 3))
    sparse[[0, 9], :] = [[10, 10, 1], [30, 50, 2]]  # no torso, no box: mean of the visible joints
    kps = np.stack([full, no_hips, one_each, sparse]).astype(np.float32)
    boxes = np.array([[0, 0, 100, 80], [10, 0, 60, 80], [0, 0, 1, 1], [np.nan, 0, 10, 10]])
    c, s = body_centres(kps, boxes)
    assert isinstance(c, np.ndarray) and c.shape == (4, 2) and s.shape == (4,)
    np.testing.assert_allclose(c[0], [50, 40])
    np.testing.assert_allclose(c[1], [40, 40])  # box centre
    np.testing.assert_allclose(c[2], [41, 40])
    np.testing.assert_allclose(c[3], [20, 30])
    np.testing.assert_allclose(s[:3], [math.hypot(100, 80), math.hypot(60, 80), math.hypot(1, 1)])
    np.testing.assert_allclose(s[3], math.hypot(20, 40))  # keypoint extent


def test_body_centres_crowdpose_torch_and_errors():
    kp = torch.zeros(2, 14, 3, dtype=torch.float64)
    kp[:, 0, :2], kp[:, 1, :2], kp[:, 6, :2], kp[:, 7, :2] = (torch.tensor(v, dtype=torch.float64) for v in
                                                              ((0, 0), (20, 0), (0, 40), (20, 40)))
    kp[:, [0, 1, 6, 7], 2] = 0.9
    kp[1, 12] = torch.tensor([100.0, 100.0, 0.9])  # head top does not move the torso centre
    c, s = body_centres(kp, None, fmt="crowdpose14")
    assert isinstance(c, torch.Tensor) and c.dtype == torch.float64
    torch.testing.assert_close(c, torch.tensor([[10.0, 20.0], [10.0, 20.0]], dtype=torch.float64))
    torch.testing.assert_close(s[0], torch.tensor(math.hypot(20, 40), dtype=torch.float64))
    nobody = np.zeros((3, 17, 3))
    nobody[0] = _coco_person()
    with pytest.raises(ValueError, match=r"\[1, 2\]"):
        body_centres(nobody, np.array([[0, 0, 10, 10], [0, 0, 0, 0], [0, 0, 0, 0]]))
    with pytest.raises(ValueError, match="crowdpose14"):
        body_centres(np.zeros((1, 17, 3)), None, fmt="crowdpose14")
    with pytest.raises(ValueError, match="unknown keypoint format"):
        body_centres(np.zeros((1, 17, 3)), None, fmt="h36m")


# --- centermaps -----------------------------------------------------------------------------


def _maps(centres, sizes, valid=None, target=None, crop=(0.0, 0.0, 64.0, 64.0), hw=(32, 32), dtype=torch.float32):
    c = torch.tensor(centres, dtype=dtype)[None]
    s = torch.tensor(sizes, dtype=dtype)[None]
    v = torch.ones(s.shape, dtype=torch.bool) if valid is None else torch.tensor(valid)[None]
    t = torch.tensor([0 if target is None else target])
    return render_centermaps(c, s, v, t, torch.tensor([crop], dtype=dtype), hw)[0]


def test_centermap_peak_location_and_channels():
    # crop 64 px -> 32 px map: image x = 2 * (j + 0.5) is the centre of pixel column j
    m = _maps([[21.0, 41.0], [51.0, 11.0]], [40.0, 40.0], target=1)
    assert m.shape == (2, 32, 32)
    assert m[0, 20, 10] == 1.0 and m[0, 5, 25] == 1.0  # both people in the contextual map
    assert m[1, 5, 25] == 1.0 and m[1, 20, 10] < 1e-3  # the target only in the instance map
    assert torch.equal(m[0], torch.maximum(_maps([[21.0, 41.0]], [40.0])[1], _maps([[51.0, 11.0]], [40.0])[1]))
    # sigma follows the ROMP rule: r = 32/32 + 60/16 heatmap px, sigma = (2r + 1)/6
    sig = (2 * (1 + 60 / 16) + 1) / 6
    m1 = _maps([[51.0, 11.0]], [120.0])
    assert m1[1, 5, 27].item() == pytest.approx(math.exp(-4 / (2 * sig**2)), rel=1e-5)
    assert m1[1, 7, 24].item() == pytest.approx(math.exp(-5 / (2 * sig**2)), rel=1e-5)
    assert m[1, 5, 27].item() == pytest.approx(math.exp(-2), rel=1e-5)  # d = 20 px: sigma clamped to 1
    # an invalid slot (even NaN) contributes nothing
    m2 = _maps([[21.0, 41.0], [float("nan"), 0.0]], [40.0, 40.0], valid=[True, False])
    assert torch.equal(m2[0], m2[1]) and torch.isfinite(m2).all()


def test_centermap_outside_centre_tail_and_size_scaling():
    out = _maps([[-6.0, 32.0]], [200.0])  # 3 heatmap px left of the crop
    assert 0 < out[0, 16, 0] < 1 and out[0, 16, 0] > out[0, 16, 1] and out[0, :, -1].max() < 1e-3
    small = _maps([[32.5, 32.5]], [20.0], hw=(64, 64), crop=(0.0, 0.0, 64.0, 64.0))
    big = _maps([[32.5, 32.5]], [160.0], hw=(64, 64), crop=(0.0, 0.0, 64.0, 64.0))
    assert big[0].sum() > 2 * small[0].sum() and big[0].max() == small[0].max() == 1.0
    d = torch.tensor([0.0, 16.0, 160.0])
    torch.testing.assert_close(centermap_sigma(d, 64.0), ((2 * (2 + d / 16) + 1) / 6).clamp(min=1.0))
    assert centermap_sigma(torch.tensor([0.0]), 16.0).item() == 1.0  # clamped to 1 heatmap pixel


def test_centermap_crop_mapping_and_dtype():
    cen = [[21.0, 41.0], [51.0, 11.0], [70.0, -5.0]]
    a = _maps(cen, [40.0, 90.0, 30.0], target=2, dtype=torch.float64)
    # the same scene 3x larger and shifted, seen through the correspondingly larger crop
    big = [[100 + 3 * x, -50 + 3 * y] for x, y in cen]
    b = _maps(big, [120.0, 270.0, 90.0], target=2, crop=(100.0, -50.0, 292.0, 142.0), dtype=torch.float64)
    assert a.dtype == b.dtype == torch.float64
    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    assert _maps(cen, [40.0, 90.0, 30.0]).dtype == torch.float32
    # a batch renders each crop independently
    c = torch.tensor([cen, big])
    s = torch.tensor([[40.0, 90.0, 30.0], [120.0, 270.0, 90.0]])
    boxes = torch.tensor([[0.0, 0.0, 64.0, 64.0], [100.0, -50.0, 292.0, 142.0]])
    m = render_centermaps(c, s, torch.ones(2, 3, dtype=torch.bool), torch.tensor([2, 0]), boxes, (32, 32))
    assert m.shape == (2, 2, 32, 32)
    torch.testing.assert_close(m[0], a.float())
    torch.testing.assert_close(m[1, 0], a[0].float())


def test_centermap_errors():
    c, s, v = torch.zeros(2, 3, 2), torch.ones(2, 3), torch.ones(2, 3, dtype=torch.bool)
    t, box = torch.tensor([0, 1]), torch.tensor([[0.0, 0, 10, 10]] * 2)
    with pytest.raises(ValueError, match="out of range"):
        render_centermaps(c, s, v, torch.tensor([0, 3]), box, (8, 8))
    v_bad = v.clone()
    v_bad[1, 1] = False
    with pytest.raises(ValueError, match="invalid person slot"):
        render_centermaps(c, s, v_bad, t, box, (8, 8))
    c_nan = c.clone()
    c_nan[0, 2, 0] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        render_centermaps(c_nan, s, v, t, box, (8, 8))
    with pytest.raises(ValueError, match="sizes"):
        render_centermaps(c, torch.ones(2, 4), v, t, box, (8, 8))
    with pytest.raises(ValueError, match="crop_boxes"):
        render_centermaps(c, s, v, t, torch.tensor([[0.0, 0, 10, 10], [5, 0, 5, 10]]), (8, 8))
    with pytest.raises(ValueError, match="out_hw"):
        render_centermaps(c, s, v, t, box, (8, 0))
    with pytest.raises(ValueError, match="centres"):
        render_centermaps(torch.zeros(2, 3), s, v, t, box, (8, 8))


# --- CoNorm ---------------------------------------------------------------------------------


def test_conorm_identity_at_init_and_modulation_formula():
    torch.manual_seed(0)
    block = CoNorm(8, context_channels=2, hidden=16)
    x = torch.randn(3, 8, 10, 12) * 3 + 1
    ctx = torch.rand(3, 2, 40, 48)
    assert (block(x, ctx) - x).abs().max() < 1e-6
    # constant heads s = 0.5, b = -0.2 give sigma * (1.5 * xhat - 0.2) + mu
    with torch.no_grad():
        block.scale_head.bias.fill_(0.5)
        block.bias_head.bias.fill_(-0.2)
    mu = x.mean((2, 3), keepdim=True)
    sigma = (x.var((2, 3), unbiased=False, keepdim=True) + 1e-5).sqrt()
    torch.testing.assert_close(block(x, ctx), sigma * (1.5 * (x - mu) / sigma - 0.2) + mu)
    # a context-dependent modulation: different context, different output
    torch.nn.init.normal_(block.scale_head.weight, std=0.1)
    assert not torch.allclose(block(x, ctx), block(x, torch.rand(3, 2, 40, 48)))


def test_conorm_errors_and_dtype():
    block = CoNorm(4, context_channels=2, hidden=8).double()
    x = torch.randn(2, 4, 5, 5, dtype=torch.float64)
    assert block(x, torch.rand(2, 2, 9, 9)).dtype == torch.float64  # context cast to x's dtype
    with pytest.raises(ValueError, match="batch mismatch"):
        block(x, torch.rand(3, 2, 9, 9, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"context must be a tensor \(B, 2"):
        block(x, torch.rand(2, 3, 9, 9, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"features must be a float tensor \(B, 4"):
        block(torch.randn(2, 5, 5, 5, dtype=torch.float64), torch.rand(2, 2, 9, 9))


# --- backbone -------------------------------------------------------------------------------

# Facts about torchvision's resnet18 / resnet50 (torchvision.models.resnet, v1.5 layout):
# state_dict entries (incl. fc.weight, fc.bias and BN num_batches_tracked) and parameter
# counts with the 1000-class fc, plus a few key shapes.
TV_RESNET18 = {"entries": 122, "params": 11_689_512, "shapes": {
    "conv1.weight": (64, 3, 7, 7), "bn1.num_batches_tracked": (), "bn1.running_mean": (64,),
    "layer1.0.conv1.weight": (64, 64, 3, 3), "layer1.1.bn2.weight": (64,),
    "layer2.0.conv1.weight": (128, 64, 3, 3), "layer2.0.downsample.0.weight": (128, 64, 1, 1),
    "layer2.0.downsample.1.running_var": (128,), "layer3.1.conv2.weight": (256, 256, 3, 3),
    "layer4.0.downsample.0.weight": (512, 256, 1, 1), "layer4.1.bn2.bias": (512,)}}
TV_RESNET50 = {"entries": 320, "params": 25_557_032, "shapes": {
    "conv1.weight": (64, 3, 7, 7), "layer1.0.conv1.weight": (64, 64, 1, 1),
    "layer1.0.conv3.weight": (256, 64, 1, 1), "layer1.0.downsample.0.weight": (256, 64, 1, 1),
    "layer1.0.downsample.1.num_batches_tracked": (), "layer2.0.conv2.weight": (128, 128, 3, 3),
    "layer3.5.bn3.weight": (1024,), "layer4.0.downsample.0.weight": (2048, 1024, 1, 1),
    "layer4.2.conv3.weight": (2048, 512, 1, 1)}}


@pytest.mark.parametrize("depth,facts", [(18, TV_RESNET18), (50, TV_RESNET50)])
def test_backbone_matches_torchvision_keys(depth, facts):
    m = ResNetBackbone(depth, conorm_after=("layer3",))
    sd = {k: v for k, v in m.state_dict().items() if not k.startswith("conorm.")}
    assert len(sd) + 2 == facts["entries"]  # + fc.weight, fc.bias
    for k, shape in facts["shapes"].items():
        assert tuple(sd[k].shape) == shape, k
    n = sum(p.numel() for name, p in m.named_parameters() if not name.startswith("conorm."))
    assert n + m.feature_dim * 1000 + 1000 == facts["params"]
    assert all(k.startswith("conorm.layer3.") for k in m.state_dict() if k not in sd)
    if depth == 18:
        assert "layer1.0.downsample.0.weight" not in sd and m.feature_dim == 512
    else:  # v1.5: the stride sits on the 3x3 conv
        assert m.layer2[0].conv2.stride == (2, 2) and m.layer2[0].conv1.stride == (1, 1)
        assert m.feature_dim == 2048


def _randomise_bn(model: torch.nn.Module) -> None:
    g = torch.Generator().manual_seed(1)
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.copy_(torch.randn(mod.running_mean.shape, generator=g) * 0.1)
            mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=g) + 0.5)
            mod.weight.data.copy_(torch.rand(mod.weight.shape, generator=g) + 0.5)


def test_load_pretrained_round_trip_and_conorm_identity(tmp_path):
    torch.manual_seed(0)
    src = ResNetBackbone(18, conorm_after=(), base_width=16).eval()
    _randomise_bn(src)
    sd = {"module." + k: v for k, v in src.state_dict().items()}
    sd["module.fc.weight"], sd["module.fc.bias"] = torch.randn(1000, 128), torch.randn(1000)
    path = tmp_path / "resnet18_thin.pth"
    torch.save({"state_dict": sd, "epoch": torch.tensor(3)}, path)
    images, ctx = torch.randn(2, 3, 64, 64), torch.rand(2, 2, 16, 16)

    plain = ResNetBackbone(18, conorm_after=(), base_width=16).eval()
    report = load_pretrained(plain, path)
    assert report == {"loaded": len(src.state_dict()), "ignored": 2}
    with torch.no_grad():
        ref = src(images)
        assert ref.shape == (2, 128)
        torch.testing.assert_close(plain(images), ref, rtol=0, atol=0)
        # fresh CoNorm blocks leave the features unchanged
        ctx_model = ResNetBackbone(18, conorm_after=("layer1", "layer3", "layer4"), base_width=16).eval()
        load_pretrained(ctx_model, path)
        torch.testing.assert_close(ctx_model(images, ctx), ref, rtol=0, atol=0)
        # ... and once their heads are non-zero the context changes the features
        for block in ctx_model.conorm.values():
            torch.nn.init.normal_(block.scale_head.weight, std=0.05)
            torch.nn.init.normal_(block.bias_head.weight, std=0.05)
        f1, f2 = ctx_model(images, ctx), ctx_model(images, torch.rand(2, 2, 16, 16))
        assert (f1 - f2).abs().max() > 1e-4 and (f1 - ref).abs().max() > 1e-4
    with pytest.raises(ValueError, match="pass context"):
        ctx_model(images)


def test_load_pretrained_errors(tmp_path):
    model = ResNetBackbone(18, conorm_after=(), base_width=8)
    good = model.state_dict()
    old = {k: v for k, v in good.items() if not k.endswith("num_batches_tracked")}  # older torchvision files
    torch.save(old, tmp_path / "old.pth")
    assert load_pretrained(model, tmp_path / "old.pth")["loaded"] == len(old)

    wrong = dict(good, **{"layer2.0.conv1.weight": torch.zeros(16, 8, 5, 5)})
    torch.save(wrong, tmp_path / "wrong.pth")
    with pytest.raises(ValueError, match=r"shape mismatch.*layer2\.0\.conv1\.weight"):
        load_pretrained(model, tmp_path / "wrong.pth")
    missing = {k: v for k, v in good.items() if not k.startswith("layer4.1.")}
    torch.save({"model": missing}, tmp_path / "missing.pth")
    with pytest.raises(ValueError, match=r"missing keys.*layer4\.1\."):
        load_pretrained(model, tmp_path / "missing.pth")
    torch.save(dict(good, **{"head.weight": torch.zeros(3)}), tmp_path / "extra.pth")
    with pytest.raises(ValueError, match=r"unexpected keys.*head\.weight"):
        load_pretrained(model, tmp_path / "extra.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        load_pretrained(model, tmp_path / "junk.pth")
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        load_pretrained(model, tmp_path / "absent.pth")


def test_backbone_argument_errors():
    with pytest.raises(ValueError, match="depth"):
        ResNetBackbone(101)
    with pytest.raises(ValueError, match="conorm_after"):
        ResNetBackbone(18, conorm_after=("layer5",))
    with pytest.raises(ValueError, match="conorm_after"):
        ResNetBackbone(18, conorm_after=("layer2", "layer2"))
    m = ResNetBackbone(18, conorm_after=("layer2",), base_width=8)
    with pytest.raises(ValueError, match=r"images must be a float tensor \(B, 3"):
        m(torch.zeros(1, 1, 32, 32), torch.zeros(1, 2, 8, 8))
    with pytest.raises(ValueError, match=r"context must be a tensor \(B, 2"):
        m(torch.zeros(1, 3, 32, 32), torch.zeros(1, 1, 8, 8))
