"""The image branch: COCO crops, the CoNorm/HMR regressor, multi-person inference and the
training stage, on small synthetic COCO-format sets (the shared photos are used by
scripts/bench_occlusion.py, not here)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lifting.skeletons import CANON16
from occlusion.data import CropSampler, crop_affine, load_coco_people, overlap_targets
from occlusion.regressor import CropSettings, ImageRegressor, ImageRegressorConfig, load_image_regressor, predict_people
from trainers.image import image_batch_metrics

# a standing person in COCO-17 order, in units of the box (x right, y down), facing the camera
# (the person's left shoulder is on the image's right)
_TEMPLATE = np.array([
    [0.50, 0.08], [0.54, 0.06], [0.46, 0.06], [0.58, 0.08], [0.42, 0.08],  # face
    [0.70, 0.22], [0.30, 0.22], [0.78, 0.40], [0.22, 0.40], [0.80, 0.56], [0.20, 0.56],  # arms
    [0.62, 0.55], [0.38, 0.55], [0.62, 0.76], [0.38, 0.76], [0.62, 0.97], [0.38, 0.97],  # legs
])


def _person(box, ann_id, image_id, hide=()):
    x, y, w, h = box
    kp = np.concatenate([_TEMPLATE * [w, h] + [x, y], np.full((17, 1), 2.0)], 1)
    kp[list(hide), :] = 0
    poly = [x, y, x + w, y, x + w, y + h, x, y + h]
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0, "bbox": list(box),
            "keypoints": kp.reshape(-1).round(2).tolist(), "num_keypoints": int((kp[:, 2] > 0).sum()),
            "segmentation": [poly], "area": w * h}


def make_coco(root: Path, scenes: list[list[tuple]], size=(160, 120)) -> Path:
    """Write a COCO person-keypoint set: one image per scene, one textured rectangle per box."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for i, boxes in enumerate(scenes):
        arr = (rng.random((size[1], size[0], 3)) * 60).astype(np.uint8)
        for n, (x, y, w, h) in enumerate(boxes):
            arr[int(y): int(y + h), int(x): int(x + w)] = [200 - 60 * n, 80 + 50 * n, 60]
            anns.append(_person((x, y, w, h), len(anns) + 1, i + 1))
        Image.fromarray(arr).save(root / "images" / f"{i:03d}.jpg")
        images.append({"id": i + 1, "file_name": f"{i:03d}.jpg", "width": size[0], "height": size[1]})
    cats = [{"id": 1, "name": "person", "keypoints": ["nose", "left_eye", "right_eye", "left_ear", "right_ear",
                                                      "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
                                                      "left_wrist", "right_wrist", "left_hip", "right_hip",
                                                      "left_knee", "right_knee", "left_ankle", "right_ankle"]}]
    path = root / "person_keypoints.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return path


SCENES = [[(20, 10, 40, 100), (50, 15, 40, 95)], [(90, 5, 45, 110)], [(10, 20, 30, 90), (100, 10, 40, 100)]]


@pytest.fixture(scope="module")
def coco(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("coco")
    return make_coco(root, SCENES)


def test_load_and_overlap_targets(coco):
    people = load_coco_people(coco, coco.parent / "images")
    assert people.keypoint_format == "coco17" and len(people.images) == 3
    assert [len(im.people) for im in people.images] == [2, 1, 2]
    # only the first scene's pair overlaps (IoU ~0.37)
    assert overlap_targets(people) == [(0, 0, 0), (0, 1, 1)]
    assert overlap_targets(people, other_crop=True) == [(0, 0, 1), (0, 1, 0)]


def test_load_errors(tmp_path, coco):
    bad = json.loads(coco.read_text())
    bad["categories"][0]["keypoints"] = ["a", "b"]
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="unknown keypoint layout"):
        load_coco_people(p, coco.parent / "images")
    bad = json.loads(coco.read_text())
    bad["annotations"][0]["keypoints"] = bad["annotations"][0]["keypoints"][:-3]
    p.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="48 keypoint numbers, expected 51"):
        load_coco_people(p, coco.parent / "images")
    with pytest.raises(ValueError, match="does not exist"):
        load_coco_people(coco, tmp_path)
    p.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read"):
        load_coco_people(p)


def test_crops_centermaps_and_flip(coco):
    people = load_coco_people(coco, coco.parent / "images")
    plain = CropSampler(people, 64, 16, min_keypoints=6)
    flip = CropSampler(people, 64, 16, augment={"flip_prob": 1.0}, min_keypoints=6)
    plan = plain.all_targets()
    a, b = plain.materialise(plan), flip.materialise(plan)
    n = len(plain)
    assert a["images"].shape == (n, 3, 64, 64) and a["centermaps"].shape == (n, 2, 16, 16)
    assert a["joints_2d"].shape == (n, 16, 2) and bool(a["joints_mask"].all())
    # the target is centred: its pelvis (mean of the hips at y=0.55 of the box) near the crop centre
    assert a["joints_2d"][:, 0].abs().max() < 0.2
    # instance map: one peak at the target centre (crop centre area); contextual >= instance
    inst = a["centermaps"][:, 1]
    peak = torch.stack([torch.tensor(divmod(int(m.argmax()), 16)) for m in inst]).float()
    assert ((peak - 7.5).abs() <= 2).all()
    assert (a["centermaps"][:, 0] >= inst - 1e-6).all()
    # the first person's crop also shows the second person: two blobs in the contextual map
    assert float(a["centermaps"][0, 0].sum()) > 1.5 * float(inst[0].sum())
    # flip: x mirrored, left/right swapped
    swap = [CANON16.index(n.replace("l_", "#").replace("r_", "l_").replace("#", "r_")) for n in CANON16.joint_names]
    mirrored = a["joints_2d"][:, swap] * torch.tensor([-1.0, 1.0])
    assert torch.allclose(b["joints_2d"], mirrored, atol=0.05)
    assert torch.equal(a["images"].flip(-1)[:, :, :, 8:56], b["images"][:, :, :, 8:56]) or \
        float((a["images"].flip(-1) - b["images"]).abs().mean()) < 0.1


def test_crop_affine_roundtrip():
    A = crop_affine(np.array([50.0, 40.0]), 80.0, 64, rot_deg=30, flip=True)
    assert np.allclose(A[:2, :2] @ [50, 40] + A[:2, 2], [32, 32])
    assert np.isclose(abs(np.linalg.det(A[:2, :2])), (64 / 80) ** 2)


def _model(**kw):
    from lifting.body_model import BodyModel

    torch.manual_seed(0)
    return ImageRegressor(ImageRegressorConfig(depth=18, base_width=8, head_width=64, **kw), BodyModel()).eval()


def test_regressor_shapes_identity_start_and_context():
    model = _model()
    x = torch.randn(2, 3, 64, 64)
    c1, c2 = torch.zeros(2, 2, 16, 16), torch.rand(2, 2, 16, 16)
    out = model(x, c1, return_vertices=True)
    assert out.global_orient.shape == (2, 1, 3, 3) and out.body_pose.shape == (2, 1, 23, 3, 3)
    assert out.betas.shape == (2, 10) and out.cam.shape == (2, 1, 3) and out.joints_3d.shape == (2, 1, 16, 3)
    assert out.vertices.shape[-1] == 3 and len(out.iterations) == 3
    # fresh CoNorm blocks are the identity: the centermaps do not matter yet
    assert torch.allclose(out.joints_3d, model(x, c2).joints_3d, atol=1e-6)
    for blk in model.backbone.conorm.values():
        for p in blk.parameters():
            torch.nn.init.normal_(p, std=0.5)
    assert not torch.allclose(model(x, c1).joints_3d, model(x, c2).joints_3d, atol=1e-4)
    # weak perspective: s * P_xy + t
    proj = out.project()
    assert torch.allclose(proj, out.cam[..., None, :1] * out.joints_3d[..., :2] + out.cam[..., None, 1:])
    with pytest.raises(ValueError, match="centermaps"):
        model(x, None)
    base = _model(use_centermaps=False)
    assert not base.backbone.conorm_after and base(x).joints_3d.shape == (2, 1, 16, 3)


def test_mean_parameter_init():
    model = _model()
    go = torch.eye(3).expand(4, 3, 3).clone()
    bp = torch.eye(3).expand(4, 23, 3, 3).clone()
    betas = torch.full((4, 10), 0.5)
    model.head.set_mean(go, bp, betas, torch.full((4,), 1.3))
    with torch.no_grad():
        model.head.mlp[-1].weight.zero_()  # no update: the output is the mean
    out = model(torch.randn(1, 3, 64, 64), torch.zeros(1, 2, 16, 16))
    assert torch.allclose(out.global_orient[0, 0], torch.eye(3), atol=1e-5)
    assert torch.allclose(out.betas, torch.full((1, 10), 0.5)) and torch.isclose(out.cam[0, 0, 0], torch.tensor(1.3))
    with pytest.raises(ValueError):
        model.head.set_mean(go[:0], bp[:0], betas[:0])


def test_predict_people_one_mesh_per_person():
    model = _model()
    img = np.zeros((120, 160, 3), np.uint8)
    boxes = [(20, 10, 40, 100), (50, 15, 40, 95), (100, 10, 40, 100)]
    kp = np.stack([_person(b, 1, 1)["keypoints"] for b in boxes]).reshape(3, 17, 3)
    preds = predict_people(model, img, kp, crops=CropSettings(crop_size=64, heatmap_size=16), return_vertices=True)
    assert [p.person for p in preds] == [0, 1, 2]
    assert all(p.joints_2d.shape == (16, 2) and np.isfinite(p.joints_2d).all() for p in preds)
    assert preds[0].vertices is not None
    # the first two people's boxes each contain both centres: still one mesh per person, from
    # the crop centred on them
    lo, hi = kp[1, :, :2].min(0), kp[1, :, :2].max(0)
    assert np.allclose(preds[1].box, [*lo, *(hi - lo)])  # crops default to the keypoints' extent
    # a detector box merging two people: one pass per centre inside it
    merged = predict_people(model, img, kp[:2], boxes=np.array([[20, 10, 70, 100]]),
                            crops=CropSettings(crop_size=64, heatmap_size=16))
    assert [p.person for p in merged] == [0, 1]
    # 2D predictions land in the image frame near their crops
    assert all(np.abs(p.joints_2d.mean(0) - (p.box[:2] + p.box[2:] / 2)).max() < 60 for p in preds)
    assert predict_people(model, img, np.zeros((0, 17, 3))) == []
    with pytest.raises(ValueError, match="needs detections"):
        predict_people(model, img)
    with pytest.raises(ValueError, match="uint8"):
        predict_people(model, img.astype(np.float32), kp)
    bad = kp.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        predict_people(model, img, bad)


def test_batch_metrics_known_values():
    gt = torch.zeros(1, 16, 2)
    gt[0, :, 0] = torch.linspace(-0.5, 0.5, 16)
    other = gt + torch.tensor([0.6, 0.0])
    b = {"joints_2d": gt, "joints_mask": torch.ones(1, 16, dtype=torch.bool), "box_size": torch.tensor([1.0]),
         "others_2d": other[:, None], "others_mask": torch.ones(1, 1, 16, dtype=torch.bool)}
    on_target = image_batch_metrics(gt + 0.05, b)
    assert float(on_target["pck"]) == 1.0 and float(on_target["wrong"]) == 0.0
    assert torch.isclose(on_target["err"], torch.tensor([0.05 * 2 ** 0.5]))
    on_other = image_batch_metrics(other, b)
    assert float(on_other["pck"]) == 0.0 and float(on_other["wrong"]) == 1.0
    b["others_mask"][:] = False
    assert torch.isnan(image_batch_metrics(gt, b)["wrong"]).all()


def _cfg(coco, tmp_path, *extra):
    from trainers.config import load_config

    images = str(coco.parent / "images")
    return load_config("image", [
        f"image.train_images={images}", f"image.train_annotations={coco}", f"image.val_images={images}",
        f"image.val_annotations={coco}", "image.crop_size=64", "image.heatmap_size=16", "image.base_width=8",
        "image.head_width=64", "train.batch_size=4", "train.steps=4", "train.eval_every=2", "train.log_every=1",
        f"train.out_dir={tmp_path}", "image.aug.occlusion_prob=0.5", *extra])


def test_train_image_resume_and_load(coco, tmp_path, monkeypatch):
    from trainers.image import ImageStage
    from trainers.loop import train

    cfg = _cfg(coco, tmp_path)
    full = train("image", cfg, out_dir=tmp_path / "full", progress=False)
    log_full = [json.loads(ln) for ln in (tmp_path / "full" / "train_log.jsonl").read_text().splitlines()]
    assert len(log_full) == 4 and all(np.isfinite(v) for r in log_full for v in r.values())
    ck = torch.load(full, weights_only=False)
    assert ck["kind"] == "image" and set(ck["val"]) >= {"pck", "err_pct", "wrong_person_pct"}
    # the same run killed during step 4 (last checkpoint: step 2), then resumed: the same losses
    real_step, calls = ImageStage.step, {"n": 0}

    def dying_step(self, plan):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt("killed")
        return real_step(self, plan)

    monkeypatch.setattr(ImageStage, "step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        train("image", cfg, out_dir=tmp_path / "half", progress=False)
    monkeypatch.setattr(ImageStage, "step", real_step)
    train("image", cfg, out_dir=tmp_path / "half", progress=False, resume=tmp_path / "half" / "last.pt")
    log_res = [json.loads(ln) for ln in (tmp_path / "half" / "train_log.jsonl").read_text().splitlines()]
    for r1, r2 in zip(log_full, log_res, strict=True):
        for k in r1:
            assert r1[k] == pytest.approx(r2[k], rel=1e-5, abs=1e-6), k
    # posenet3d mesh-image on a two-person image of the set
    from lifting.cli import main

    out = tmp_path / "mesh"
    assert main(["mesh-image", str(coco.parent / "images" / "000.jpg"), "--keypoints", str(coco), "--checkpoint",
                 str(full), "-o", str(out)]) == 0
    z = np.load(out / "people.npz")
    assert z["global_orient"].shape == (2, 3) and z["body_pose"].shape == (2, 69) and z["betas"].shape == (2, 10)
    assert np.isfinite(z["joints_3d"]).all() and sorted(p.name for p in out.iterdir()) == [
        "people.npz", "people.png", "person_000.obj", "person_001.obj"]
    assert main(["mesh-image", str(coco.parent / "images" / "000.jpg"), "--keypoints", str(coco), "--checkpoint",
                 str(coco), "-o", str(out)]) == 2  # not a checkpoint: a one-line error
    model, _ = load_image_regressor(full)
    assert model.config["base_width"] == 8 and not model.training
    with pytest.raises(ValueError, match="not an image-branch checkpoint"):
        load_image_regressor(Path(__file__).resolve().parents[1] / "lifting" / "assets" / "student.pt")


def test_train_image_joint_finetune_and_terse(coco, tmp_path):
    from trainers.loop import train

    cfg = _cfg(coco, tmp_path, "train.steps=2", "image.joint_finetune=true", "image.terse.enabled=true",
               "image.terse.patch_size=16", "image.use_centermaps=true")
    path = train("image", cfg, out_dir=tmp_path / "joint", progress=False)
    ck = torch.load(path, weights_only=False)
    assert "keypoint_student_model" in ck and "placer" in ck["train_state"]
    from lifting.models.checkpoint import build_model, load_checkpoint

    kp = build_model(load_checkpoint(path), prefix="keypoint_student_")  # stored like any model
    assert kp.outputs_smpl and kp.config == ck["keypoint_student_model_config"]
    log = [json.loads(ln) for ln in (tmp_path / "joint" / "train_log.jsonl").read_text().splitlines()]
    assert {"consistency", "kp_reproject", "terse_task", "terse_realism"} <= set(log[-1])


@pytest.mark.slow  # run by .ci/run (pytest -m slow), not by the README's default command
def test_two_process_data_parallel_image_stage(coco, tmp_path):
    """torchrun --nproc_per_node 2 (gloo): each rank builds only its half of the global batch;
    the same micro-batches as one process with grad_accum=2 give the same losses and weights
    (TERSE placer and realism critic included: their randomness is drawn for the global batch)."""
    import os
    import subprocess
    import sys

    from lifting.models.checkpoint import load_checkpoint
    from lifting.cli import main

    root = Path(__file__).resolve().parents[1]
    images = str(coco.parent / "images")
    args = ["train", "image", "image", f"image.train_images={images}", f"image.train_annotations={coco}",
            "image.val_annotations=null", "image.crop_size=64", "image.heatmap_size=16", "image.base_width=8",
            "image.head_width=64", "image.dropout=0.0", "train.batch_size=4", "train.steps=3", "train.log_every=1",
            "train.threads=1", "image.terse.enabled=true", "image.terse.patch_size=16"]
    assert main([*args, "train.grad_accum=2", "--out", str(tmp_path / "single")]) == 0
    env = dict(os.environ, WANDB_MODE="disabled", OMP_NUM_THREADS="1", PYTHONPATH=str(root))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "lifting.cli",
           *args, "--out", str(tmp_path / "ddp")]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=root)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "x 2 ranks (parameters in sync)" in res.stdout + res.stderr
    a = [json.loads(ln) for ln in (tmp_path / "single" / "train_log.jsonl").read_text().splitlines()]
    b = [json.loads(ln) for ln in (tmp_path / "ddp" / "train_log.jsonl").read_text().splitlines()]
    for ra, rb in zip(a, b, strict=True):
        for k in ra:
            assert ra[k] == pytest.approx(rb[k], rel=1e-4, abs=1e-5), (ra["step"], k)
    cs, cd = load_checkpoint(tmp_path / "single" / "last.pt"), load_checkpoint(tmp_path / "ddp" / "last.pt")
    ws, wd = cs["model"], cd["model"]
    params = [k for k in ws if "running" not in k and "num_batches" not in k]
    assert all(torch.allclose(ws[k], wd[k], atol=1e-5) for k in params)
    for name in ("placer", "realism"):
        ps, pd = cs["train_state"][name], cd["train_state"][name]
        assert ps.keys() == pd.keys() and all(torch.allclose(ps[k], pd[k], atol=1e-5) for k in ps), name


@pytest.mark.parametrize("prob", [0.0, 1.0])
def test_terse_fraction_and_occluded_joint_weights(coco, tmp_path, prob):
    """``image.terse.prob`` picks which crops train on the placer's composite; target joints under
    the pasted occluder drop to the "labelled, not visible" weight and the occluder's centre enters
    the contextual map only for those crops."""
    from occlusion.data import VIS_WEIGHTS
    from trainers.image import build_image_stage

    from trainers.config import ConfigError

    with pytest.raises(ConfigError, match="image.terse.prob"):
        build_image_stage(_cfg(coco, tmp_path, "image.terse.enabled=true", "image.terse.prob=1.5"))
    cfg = _cfg(coco, tmp_path, "image.terse.enabled=true", "image.terse.patch_size=16",
               f"image.terse.prob={prob}", "image.aug.occlusion_prob=0.0")
    st = build_image_stage(cfg)
    assert st.critics == {"disc"}  # only the discriminator learns during train.critic_warmup
    plan = st.sampler.all_targets()
    b = st._device_batch(st.sampler.materialise(plan, slice(0, 4)))
    out = st._terse([b], [slice(0, 4)], 4, {})[0]
    if prob == 0.0:
        assert torch.equal(out["images"], b["images"]) and torch.equal(out["centermaps"], b["centermaps"])
        assert torch.equal(out["joints_weight"], b["joints_weight"])
    else:
        assert not torch.allclose(out["images"], b["images"])
        assert (out["centermaps"][:, 0] >= b["centermaps"][:, 0]).all()
        assert torch.equal(out["centermaps"][:, 1], b["centermaps"][:, 1])  # instance map untouched
        assert (out["joints_weight"] <= b["joints_weight"]).all()
        lowered = out["joints_weight"] < b["joints_weight"]
        assert torch.allclose(out["joints_weight"][lowered], torch.tensor(VIS_WEIGHTS[1]))


def test_occluder_as_target_and_other_crops(coco, tmp_path):
    """``occluder_target_prob=1``: the pasted person is the target while the crop stays on the
    occluded person's box (instance map moves to the occluder, the occluded person becomes one
    of the others); ``image.other_crops``: real overlapping pairs cropped by the other's box."""
    from trainers.image import _crop_sampler

    people = load_coco_people(coco, coco.parent / "images")
    base = dict(scale=0.0, shift=0.0, rot_deg=0.0, rot_prob=0.0, flip_prob=0.0, colour=0.0, occlusion_prob=1.0)
    plan = {"target": torch.tensor([2]), "u": torch.full((1, 10), 0.5)}  # targets[2]: the one person of image 1
    own = CropSampler(people, 64, 16, augment={**base, "occluder_target_prob": 0.0}).materialise(plan)
    swap = CropSampler(people, 64, 16, augment={**base, "occluder_target_prob": 1.0}).materialise(plan)
    assert torch.equal(own["images"], swap["images"])  # same paste, same crop
    assert torch.equal(own["centermaps"][:, 0], swap["centermaps"][:, 0])  # same people in the scene
    assert not torch.allclose(own["centermaps"][:, 1], swap["centermaps"][:, 1])  # other instance
    assert not torch.allclose(own["joints_2d"], swap["joints_2d"])
    # the occluded person is now one of the others, at the old target's joints
    m = own["joints_mask"][0]
    assert torch.allclose(swap["others_2d"][0, 0][m], own["joints_2d"][0][m])
    # the instance peak sits on the new target's centre
    H = swap["centermaps"].shape[-1]
    peak = swap["centermaps"][0, 1].flatten().argmax()
    py, px = divmod(int(peak), H)
    hip = swap["joints_2d"][0, :2].mean(0)  # canonical pelvis-ish: (hip joints first)
    assert abs((px + 0.5) / H * 2 - 1 - float(hip[0])) < 0.5 and abs((py + 0.5) / H * 2 - 1 - float(hip[1])) < 0.5

    cfg = _cfg(coco, tmp_path, "image.other_crops=true")
    s = _crop_sampler(cfg, "train", True)
    assert len(s) == 5 + 2  # 5 people in their own boxes + the overlapping pair of image 0, each cropped by the other
    assert sorted(t for t in s.targets if t[1] != t[2]) == [(0, 0, 1), (0, 1, 0)]
    assert len(_crop_sampler(_cfg(coco, tmp_path, "image.other_crops=false"), "train", True)) == 5
    # without centermaps nothing can say who the target is: own-box crops only
    crop_only = _crop_sampler(_cfg(coco, tmp_path, "image.use_centermaps=false"), "train", True)
    assert len(crop_only) == 5 and crop_only.aug["occluder_target_prob"] == 0.0
