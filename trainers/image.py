"""Training stage of the student's image branch (``posenet3d train image``): the OCHMR-style
regressor (:mod:`occlusion.regressor`) on COCO-format person crops, without 3D labels.

Losses (weights in ``cfg.loss.image``, all per micro-batch; ``w`` = visibility weights):

* ``reproject``: ``sum_j w_j |Pi(J_j) - x_j|_1 / sum_j w_j`` on the canonical joints
  projected by the weak-perspective camera against the annotated 2D (crop-normalised units),
  on the final IEF iteration (HMR, Kanazawa et al. CVPR 2018, Sec. 3.1, Eq. 2).
* ``distill``: pseudo-SMPL targets from the keypoint-branch student run on the same
  person's 2D keypoints (no 3D labels): squared Frobenius distance of all 24 rotation matrices
  + ``||betas - betas_t||^2`` + root-relative canonical joints (metres, squared), for people
  whose pelvis is annotated (the keypoint student needs its root). As SPIN's (Kolotouros et al.
  ICCV 2019, Sec. 3) use of fitted SMPL as supervision, with the keypoint student as fitter.
* ``adv``: HMR's factorized adversarial prior (Sec. 3.3) with LSGAN; the critic's real
  samples are the keypoint student's SMPL parameters on the batch's 2D (3D-free; with
  ``prior_3d.enabled`` the unpaired mocap pose bank instead), fakes from every IEF iteration.
* ``betas``: ``||betas||^2``.
* ``consistency`` (``image.joint_finetune``): the keypoint student trains too, and both
  branches' root-relative joints are pulled together (each towards the other, as in the
  teacher-student agreement of joint fine-tuning), with the keypoint student also keeping its
  2D reprojection term (``kp_reproject``).

Task-aware occlusion (``image.terse``; TERSE, Tripathi et al. CVPR 2019): an occluder placer
proposes where to paste a real person segment (from the training set's COCO masks) over
each crop so as to raise the regressor's 2D loss, against a realism critic; the regressor
trains on its composites (detached) for a fraction ``image.terse.prob`` of the crops. See
:mod:`occlusion.augment`.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from lifting import losses
from lifting.models.discriminators import SMPLDiscriminator
from lifting.geometry import normalize_2d
from lifting.skeletons import CANON16

from .config import TrainConfig
from .stages import _Stage, _accumulate

__all__ = ["ImageStage", "build_image_stage", "image_batch_metrics"]


def _crop_sampler(cfg: TrainConfig, split: str, augment: bool):
    from occlusion.data import CropSampler, load_coco_people, overlap_targets, own_targets

    d = cfg.image
    ann = d.train_annotations if split == "train" else d.val_annotations
    imgs = d.train_images if split == "train" else d.val_images
    people = load_coco_people(ann, imgs)
    # crops whose target is not the box's person need the instance centermap to say who it is:
    # without centermaps (SPIN-style baseline) they are never used
    context = d.use_centermaps
    aug = dict(scale=d.aug.scale, shift=d.aug.shift, rot_deg=d.aug.rot_deg,
               rot_prob=d.aug.rot_prob, flip_prob=d.aug.flip_prob, colour=d.aug.colour,
               occlusion_prob=d.aug.occlusion_prob,
               occluder_target_prob=d.aug.occluder_target_prob if context else 0.0) if augment else None
    targets = None
    if augment and context and d.other_crops:
        # every usable person in their own box, plus real overlapping pairs cropped by the other
        # person's box (the target given by the instance centermap only)
        own = own_targets(people, d.min_keypoints)
        seen = set(own)
        targets = own + [t for t in overlap_targets(people, d.min_keypoints, other_crop=True) if t not in seen]
    return CropSampler(people, d.crop_size, d.heatmap_size, d.padding, aug, d.min_keypoints,
                       targets=targets)


def build_image_stage(cfg: TrainConfig) -> "ImageStage":
    """The image stage on ``cfg.image.train_*`` with validation on ``cfg.image.val_*``.

    Raises:
        ValueError: unreadable annotations/images, or no usable person."""
    val = _crop_sampler(cfg, "val", False) if cfg.image.val_annotations else None
    return ImageStage(cfg, _crop_sampler(cfg, "train", True), val)


def image_batch_metrics(pred_2d: torch.Tensor, batch: dict[str, torch.Tensor], pck: float = 0.1) -> dict[str, torch.Tensor]:
    """Per-crop 2D metrics of projected canonical joints ``pred_2d (B, 16, 2)`` (crop-normalised).

    Returns ``pck (B,)``: fraction of the target's annotated joints within ``pck * box_size``
    (PCK@0.1 of the box's longer side); ``err (B,)``: mean joint error / box size; ``wrong
    (B,)``: 1 where the prediction is closer (mean over commonly annotated joints, relative to
    each person's box) to another person in the crop than to the target, NaN without others.
    """
    m = batch["joints_mask"].to(pred_2d.device)
    box = batch["box_size"].to(pred_2d.device)
    d = (pred_2d - batch["joints_2d"].to(pred_2d.device)).norm(dim=-1)  # (B, 16)
    n = m.sum(-1).clamp_min(1)
    pck_v = ((d < pck * box[:, None]) & m).sum(-1) / n
    err = (d * m).sum(-1) / n / box
    o2d, om = batch["others_2d"].to(pred_2d.device), batch["others_mask"].to(pred_2d.device)
    both = om & m[:, None]  # (B, P, 16)
    d_o = ((pred_2d[:, None] - o2d).norm(dim=-1) * both).sum(-1) / both.sum(-1).clamp_min(1)
    d_t = ((d[:, None] * both).sum(-1)) / both.sum(-1).clamp_min(1)
    ok = both.sum(-1) >= 4
    wrong = ((d_o < d_t) & ok).any(-1).float()
    wrong = torch.where(ok.any(-1), wrong, torch.full_like(wrong, float("nan")))
    return {"pck": pck_v, "err": err, "wrong": wrong}


class ImageStage(_Stage):
    """Image-branch training (see the module docstring for the losses).

    Checkpoints (:func:`lifting.models.checkpoint.make_checkpoint`) hold the regressor as
    ``model`` (with ``model_config``, its body model and the keypoint student's marker
    offsets), with ``image.joint_finetune`` the co-trained keypoint student as
    ``keypoint_student_model`` / ``keypoint_student_model_config``, the critic, optimisers and RNG states; the trainer
    (:func:`trainers.loop.train`) handles resume, data parallelism, precision and W&B as for
    every stage. The best checkpoint is the one with the highest validation PCK@0.1.

    Raises:
        ValueError: unreadable keypoint-student checkpoint, or one that is not an SMPL student.
    """

    kind = "image"
    best_key, higher_is_better = "pck", True
    validation_source = "image.val_annotations"

    @property
    def has_validation(self) -> bool:
        return self.val_sampler is not None

    def __init__(self, cfg: TrainConfig, sampler, val_sampler=None):
        from lifting.models.lifters import load_lifter

        self.kp_student, _ = load_lifter(cfg.image.keypoint_student or "student", cfg.body_model.path)
        if not self.kp_student.outputs_smpl or self.kp_student.window != 1:
            raise ValueError(f"image.keypoint_student must be a single-frame SMPL student checkpoint, "
                             f"got {type(self.kp_student).__name__}")
        self.joint = cfg.image.joint_finetune
        self.kp_student.requires_grad_(self.joint).train(self.joint)
        if not self.joint:
            self.kp_student.eval()
        super().__init__(cfg)
        self.kp_student.to(self.device)
        self.window = 1
        self.sampler, self.val_sampler = sampler, val_sampler
        self.disc = SMPLDiscriminator(cfg.body_model.num_betas).to(self.device)
        self.add_optimizer("disc", self.disc.parameters(), cfg.train.critic_lr, critic=True)
        if self.joint:
            self.add_optimizer("kp_student", [p for p in self.kp_student.parameters() if p.requires_grad],
                               cfg.train.lr * 0.1)
        self.bank = None
        if cfg.prior_3d.enabled:
            from lifting.pose_bank import load_pose_bank

            self.bank = {k: v.to(self.device) for k, v in load_pose_bank(cfg.prior_3d.pose_bank).items()}
        self.placer = None
        if cfg.image.terse.enabled:
            from occlusion.augment import OccluderPlacer, RealismCritic

            self.placer = OccluderPlacer().to(self.device)
            self.realism = RealismCritic().to(self.device)
            self.add_optimizer("placer", self.placer.parameters(), cfg.image.terse.lr, adam_w=False)
            self.add_optimizer("realism", self.realism.parameters(), cfg.image.terse.lr, adam_w=False)
            self.occluders = self._occluder_patches(sampler, cfg.image.terse.patch_size)
        self._init_mean()

    def build_model(self, cfg: TrainConfig) -> torch.nn.Module:
        from occlusion.backbone import load_pretrained
        from occlusion.regressor import ImageRegressor, ImageRegressorConfig

        from .stages import model_args

        d = cfg.image
        model = ImageRegressor(model_args(ImageRegressorConfig, cfg, section="image"), self.kp_student.body_model,
                               self.kp_student.marker_offsets)
        if d.pretrained:
            load_pretrained(model.backbone, d.pretrained)
        return model

    @torch.no_grad()
    def _init_mean(self) -> None:
        """HMR's mean-parameter start: the keypoint student's mean prediction on the training
        people (unaugmented), and the weak-perspective scale that fits their 2D."""
        plan = self.sampler.all_targets()
        n = min(len(self.sampler), 256)
        b = self.sampler.materialise({k: v[:n] for k, v in plan.items()})
        t = self._kp_targets(b, grad=False)
        if t is None:
            return
        ok = t["ok"]
        if ok.sum() == 0:
            return
        # scale: RMS 2D distance from the root of the annotation / of the student's 3D joints
        x, m = b["joints_2d"][ok.cpu()].to(self.device), b["joints_mask"][ok.cpu()].to(self.device)
        j3 = t["joints_3d"][ok]
        x = x - x[:, :1]
        r2 = ((x ** 2).sum(-1) * m).sum(-1) / m.sum(-1)
        r3 = ((j3[..., :2] ** 2).sum(-1) * m).sum(-1) / m.sum(-1)
        s = (r2 / r3.clamp_min(1e-6)).sqrt()
        self.lifter.head.set_mean(t["global_orient"][ok], t["body_pose"][ok], t["betas"][ok], s)

    def _kp_targets(self, b: dict[str, torch.Tensor], grad: bool = False) -> dict | None:
        """The keypoint student on the crops' canonical 2D: ``global_orient (b, 3, 3)``,
        ``body_pose (b, 23, 3, 3)``, ``betas``, ``joints_3d (b, 16, 3)``, ``ok (b,)`` (pelvis
        annotated, >= 6 joints)."""
        x, m = b["joints_2d"].to(self.device), b["joints_mask"].to(self.device)
        ok = m[:, CANON16.root_index] & (m.sum(-1) >= 6)
        m_root = m.clone()
        m_root[:, CANON16.root_index] = True  # placeholder root for rows excluded by ok
        xn, _ = normalize_2d(x[:, None], m_root[:, None], CANON16.root_index)
        with torch.set_grad_enabled(grad):
            out = self.kp_student(xn, m_root[:, None])
        return {"global_orient": out.global_orient[:, 0], "body_pose": out.body_pose[:, 0], "betas": out.betas,
                "joints_3d": out.joints_3d[:, 0], "ok": ok, "x_norm": xn, "mask": m_root, "out": out}

    def models(self) -> dict[str, torch.nn.Module]:
        d = {"lifter": self.lifter, "disc": self.disc}
        if self.joint:
            d["kp_student"] = self.kp_student
        if self.placer is not None:
            d |= {"placer": self.placer, "realism": self.realism}
        return d

    def extra_checkpoint(self) -> dict:
        from lifting.models.checkpoint import model_entries

        # the co-trained keypoint student (keypoint_student_model / _model_config; body model: the regressor's)
        return model_entries(self.kp_student, prefix="keypoint_student_") if self.joint else {}

    def eval_models(self) -> dict[str, torch.nn.Module]:
        return {}

    def _device_batch(self, b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.device, non_blocking=True) for k, v in b.items()}

    def _occluder_patches(self, sampler, size: int) -> torch.Tensor | None:
        """Real person segments (COCO masks) as RGBA patches ``(N, 4, size, size)`` in [0, 1],
        ImageNet-normalised colour (like the crops), aspect kept; None without segments."""
        from PIL import Image

        from occlusion.data import IMAGENET_MEAN, IMAGENET_STD

        bank = sampler.segments if sampler.segments is not None else sampler.segment_bank()
        out = []
        for _, seg in bank:
            h, w = seg.rgba.shape[:2]
            k = size / max(h, w)
            im = Image.fromarray(seg.rgba).resize((max(1, round(w * k)), max(1, round(h * k))), Image.Resampling.BILINEAR)
            canvas = np.zeros((size, size, 4), np.float32)
            a = np.asarray(im, np.float32) / 255
            y0, x0 = (size - a.shape[0]) // 2, (size - a.shape[1]) // 2
            canvas[y0:y0 + a.shape[0], x0:x0 + a.shape[1]] = a
            canvas[..., :3] = (canvas[..., :3] - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
            out.append(torch.from_numpy(canvas.transpose(2, 0, 1)))
        return torch.stack(out).to(self.device) if out else None

    def _terse_draws(self, B: int) -> dict[str, torch.Tensor]:
        """TERSE randomness for the whole global batch of ``B`` crops, drawn in the same order
        on every rank (so N ranks reproduce one process): occluder ``pick (B,)``, placer
        ``noise (B, noise_dim)``, ``use (B,)`` bool (crop trains on the composite)."""
        g, dev = self.generator, self.device
        n_occ = len(self.occluders) if self.occluders is not None else 1
        return {"pick": torch.randint(n_occ, (B,), generator=g, device=dev),
                "noise": torch.randn(B, self.placer.noise_dim, generator=g, device=dev),
                "use": torch.rand(B, generator=g, device=dev) < self.cfg.image.terse.prob}

    def _terse_place(self, b: dict[str, torch.Tensor], draws: dict[str, torch.Tensor], sums: dict,
                     n_parts: int):
        """Placer forward and backward of its loss on one micro-batch (gradients accumulate;
        the caller steps). TERSE, Tripathi et al. CVPR 2019, Sec. 3: the placer maximises the
        regressor's visibility-weighted 2D error against a realism critic.

        Args:
            b: micro-batch of :meth:`occlusion.data.CropSampler.materialise` (on the device).
            draws: this micro-batch's slice of :meth:`_terse_draws`.

        Returns:
            :class:`occlusion.augment.Placement` for ``b["images"] (b, 3, S, S)``.
        """
        from occlusion.augment import placer_loss

        cfg = self.cfg.image.terse
        imgs = b["images"]
        B = imgs.shape[0]
        if self.occluders is not None:  # real person segments
            occ = self.occluders[draws["pick"]]
        else:  # no masks in the data: other crops of the batch, cut by their instance centermap blob
            perm = torch.roll(torch.arange(B, device=self.device), 1)
            alpha = torch.nn.functional.interpolate(b["centermaps"][perm, 1:2], size=imgs.shape[-2:],
                                                    mode="bilinear", align_corners=False)
            occ = torch.cat([imgs[perm], (alpha > 0.2).to(imgs.dtype)], 1)
            s = cfg.patch_size
            occ = torch.nn.functional.interpolate(occ, size=(s, s), mode="bilinear", align_corners=False)
        place = self.placer(imgs, occ, noise=draws["noise"].to(imgs.dtype))
        with self.autocast():
            pred = self.net(place.composite, b["centermaps"])
        task = (pred.project()[:, 0] - b["joints_2d"]).abs().sum(-1)
        task = (task * b["joints_weight"]).sum(-1) / b["joints_weight"].sum(-1).clamp_min(1e-6)
        l_p = placer_loss(task.float(), self.realism(place.composite).float(), cfg.realism)
        self._backward(l_p, "placer")
        _accumulate(sums, {"terse_task": task.mean().detach()}, n_parts)
        return place

    def _terse_apply(self, b: dict[str, torch.Tensor], place, use: torch.Tensor) -> dict[str, torch.Tensor]:
        """The micro-batch the regressor trains on: crops with ``use (b,)`` True are replaced by
        the placer's composite (detached), get the occluder's centre in their contextual map (the
        occluder is a person of the scene), and their target joints under the occluder
        (alpha > ``COVERED_ALPHA``) drop to the "labelled, not visible" weight ``VIS_WEIGHTS[1]``, as the
        random paste does. Shapes as in :meth:`occlusion.data.CropSampler.materialise`."""
        from occlusion.augment import COVERED_ALPHA
        from occlusion.centermap import render_centermaps
        from occlusion.data import VIS_WEIGHTS

        imgs = b["images"]
        B, S = imgs.shape[0], imgs.shape[-1]
        b = dict(b)
        alpha = place.alpha.detach() * use[:, None, None, None]
        b["images"] = torch.where(use[:, None, None, None], place.composite.detach(), imgs)
        under = torch.nn.functional.grid_sample(alpha, b["joints_2d"][:, :, None, :].to(alpha.dtype),
                                                align_corners=False)[:, 0, :, 0] > COVERED_ALPHA  # (B, 16)
        b["joints_weight"] = torch.where(under, b["joints_weight"].clamp_max(VIS_WEIGHTS[1]), b["joints_weight"])
        size = (place.alpha.detach().flatten(1).sum(1) * 2).sqrt()  # ~ the pasted person's diagonal, px
        crop = torch.tensor([[0.0, 0.0, S, S]], device=self.device).expand(B, 4)
        occ_map = render_centermaps(place.center.detach()[:, None], size[:, None],
                                    torch.ones(B, 1, dtype=torch.bool, device=self.device),
                                    torch.zeros(B, dtype=torch.long, device=self.device), crop,
                                    tuple(b["centermaps"].shape[-2:]))
        cm = b["centermaps"].clone()
        cm[:, 0] = torch.where(use[:, None, None], torch.maximum(cm[:, 0], occ_map[:, 0]), cm[:, 0])
        b["centermaps"] = cm
        return b

    def _terse(self, batches: list[dict[str, torch.Tensor]], parts: list[slice], B: int,
               sums: dict) -> list[dict[str, torch.Tensor]]:
        """One TERSE update per global step: placer (accumulated over this rank's micro-batches,
        averaged over ranks), then the realism critic on real crops vs the composites (LSGAN),
        then :meth:`_terse_apply` on every micro-batch. The regressor's gradients that the placer
        loss leaves are cleared by the caller's ``_zero("lifter")``."""
        from occlusion.augment import critic_loss

        draws = self._terse_draws(B)
        mine = [{k: v[sl] for k, v in draws.items()} for sl in parts]
        self._zero("placer")
        places = [self._terse_place(b, d, sums, len(parts)) for b, d in zip(batches, mine)]
        self._zero("realism")  # drop what the placer loss left in the critic
        for b, pl in zip(batches, places):
            l_r = critic_loss(self.realism(b["images"]).float(), self.realism(pl.composite.detach()).float())
            self._backward(l_r, "realism")
            _accumulate(sums, {"terse_realism": l_r.detach()}, len(parts))
        self._step("placer", self.placer.parameters())
        self._step("realism", self.realism.parameters())
        return [self._terse_apply(b, pl, d["use"]) for b, pl, d in zip(batches, places, mine)]

    def step(self, plan: dict[str, torch.Tensor]) -> dict[str, float]:
        """One update of the regressor (and, with ``image.joint_finetune``, the keypoint student),
        then of the SMPL critic, on a global batch of crops ``plan`` (:meth:`occlusion.data.
        CropSampler.materialise` draws; TERSE placement first when enabled); returns global mean
        losses."""
        B = plan["target"].shape[0]
        parts = self.chunks(B)
        sums: dict[str, torch.Tensor] = {}
        batches = [self._device_batch(self.sampler.materialise(plan, sl)) for sl in parts]
        if self.placer is not None:
            batches = self._terse(batches, parts, B, sums)
        self.lifter.train()
        self._zero("lifter")
        if self.joint:  # its gradients accumulate in the same backward passes
            self._zero("kp_student")
        fakes, reals = [], []
        for b in batches:
            total, logs, fake, real = self._regressor_terms(b)
            if fake is not None:
                fakes.append(fake)
                reals.append(real)
            self._backward(total, "lifter")
            _accumulate(sums, logs | {"total": total.detach()}, len(parts))
        if self.joint:  # one backward through both branches with the "lifter" scaler: step both with it
            self._step_scaled_by({"lifter": self.lifter.parameters(), "kp_student": self.kp_student.parameters()},
                                 "lifter")
        else:
            self._step("lifter", self.lifter.parameters())
        if self.cfg.loss.image.adv > 0:
            self._disc_update(fakes, reals, sums, len(parts))
        if self.world > 1:  # BatchNorm running statistics: the mean over ranks (each saw its share)
            import torch.distributed as dist

            for buf in self.lifter.buffers():
                if buf.is_floating_point():
                    dist.all_reduce(buf)
                    buf /= self.world
        return self._reduce(sums)

    def _regressor_terms(self, b: dict[str, torch.Tensor]):
        """The regressor's losses on one micro-batch ``b`` (module docstring: visibility-weighted
        2D reprojection, distillation from the keypoint student, the HMR prior, betas; with
        ``image.joint_finetune`` the keypoint branch's own 2D term and the consistency).

        Returns:
            ``(total, logs, fakes, reals)``: the weighted sum, the detached terms, and for the
            SMPL critic the fakes (every IEF iteration's ``(body_pose, betas)``) and the reals
            (the keypoint student's, where it had a target), both None without the prior term.
        """
        L = self.cfg.loss.image
        t = self._kp_targets(b, grad=self.joint)
        with self.autocast():
            pred = self.net(b["images"], b["centermaps"])
        w = b["joints_weight"]
        l_rep = ((pred.project()[:, 0] - b["joints_2d"]).abs().sum(-1) * w).sum() / w.sum().clamp_min(1e-6)
        ok = t["ok"].float()
        n_ok = ok.sum().clamp_min(1.0)
        go_t, bp_t, be_t, j_t = t["global_orient"], t["body_pose"], t["betas"], t["joints_3d"]
        if not self.joint:
            go_t, bp_t, be_t, j_t = go_t.detach(), bp_t.detach(), be_t.detach(), j_t.detach()
        rot_err = ((pred.global_orient[:, 0] - go_t) ** 2).sum((-1, -2)) \
            + ((pred.body_pose[:, 0] - bp_t) ** 2).sum((-1, -2, -3))
        l_dist = (ok * (rot_err / 24 + ((pred.betas - be_t) ** 2).mean(-1)
                        + ((pred.joints_3d[:, 0] - j_t) ** 2).sum(-1).mean(-1) * 100)).sum() / n_ok
        l_adv, fakes, reals = torch.zeros((), device=self.device), None, None
        if L.adv > 0:
            for bp, be in pred.iterations:
                l_adv = l_adv + losses.lsgan_generator(self.disc(bp, be).float()) / len(pred.iterations)
            fakes = [(bp.detach(), be.detach()) for bp, be in pred.iterations]
            reals = (bp_t.detach()[t["ok"]], be_t.detach()[t["ok"]])
        total = L.reproject * l_rep + L.distill * l_dist + L.adv * l_adv + L.betas * (pred.betas ** 2).mean()
        logs = {"reproject": l_rep.detach(), "distill": l_dist.detach(), "adv": l_adv.detach()}
        if self.joint:  # keypoint branch: its own 2D term + consistency with the image branch
            out = t["out"]
            m = t["mask"][:, None].float()
            l_kp_rep = ((out.project() - t["x_norm"]).abs().sum(-1) * m).sum() / m.sum().clamp_min(1)
            l_cons = (ok * ((pred.joints_3d[:, 0].detach() - out.joints_3d[:, 0]) ** 2).sum(-1).mean(-1)).sum() / n_ok
            total = total + L.kp_reproject * l_kp_rep + L.consistency * 100 * l_cons
            logs |= {"kp_reproject": l_kp_rep.detach(), "consistency": l_cons.detach()}
        return total, logs, fakes, reals

    def _disc_update(self, fakes: list, reals: list, sums: dict, n_parts: int) -> None:
        """One LSGAN update of the SMPL critic (HMR's factorized prior): reals are the keypoint
        student's SMPL parameters of each micro-batch (or pose-bank draws in the "unpaired 3D
        prior" mode), fakes every IEF iteration's."""
        self._zero("disc")
        for f, (rb, rbe) in zip(fakes, reals):
            if self.bank is not None:
                ri = torch.randint(self.bank["body_pose"].shape[0], (max(1, len(rb)),), generator=self.generator,
                                   device=self.device)
                rb, rbe = self.bank["body_pose"][ri], self.bank["betas"][ri]
            if len(rb) == 0:
                continue
            l_d = sum(losses.lsgan_critic(self.disc(rb, rbe).float(), self.disc(bp, be).float())
                      for bp, be in f) / len(f)
            self._backward(l_d, "disc")
            _accumulate(sums, {"disc": l_d.detach()}, n_parts)
        self._step("disc", self.disc.parameters())

    @torch.no_grad()
    def validate(self, max_people: int = 0) -> dict[str, float] | None:
        """PCK@0.1 (``pck``, %), mean 2D error (``err_pct``, % of the box) and wrong-person rate
        (``wrong_person_pct``) of the projected canonical joints on the unaugmented validation
        crops (:func:`image_batch_metrics`), and ``people``; None without validation data."""
        if self.val_sampler is None:
            return None
        self.lifter.eval()
        plan = self.val_sampler.all_targets()
        n = len(self.val_sampler) if max_people <= 0 else min(max_people, len(self.val_sampler))
        acc = {"pck": [], "err": [], "wrong": []}
        for i in range(0, n, 64):
            b = self.val_sampler.materialise(plan, slice(i, min(n, i + 64)))
            pred = self.lifter(b["images"].to(self.device), b["centermaps"].to(self.device))
            for k, v in image_batch_metrics(pred.project()[:, 0].float(), b).items():
                acc[k].append(v.cpu())
        res = {k: torch.cat(v) for k, v in acc.items()}
        w = res["wrong"]
        self.lifter.train()
        return {"pck": float(res["pck"].mean()) * 100, "err_pct": float(res["err"].mean()) * 100,
                "wrong_person_pct": float(w[~w.isnan()].mean()) * 100 if (~w.isnan()).any() else math.nan,
                "people": n}

    def describe(self, val: dict[str, float]) -> str:
        return (f"val PCK@0.1 {val['pck']:.1f}%, 2D error {val['err_pct']:.1f}% of the box, "
                f"wrong person {val['wrong_person_pct']:.1f}% ({val['people']} people)")

    def sample_figure(self, path) -> str:
        """A few validation crops with the projected joints (for W&B)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from occlusion.data import IMAGENET_MEAN, IMAGENET_STD

        plan = self.val_sampler.all_targets()
        b = self.val_sampler.materialise(plan, slice(0, min(6, len(self.val_sampler))))
        self.lifter.eval()
        with torch.no_grad():
            uv = self.lifter(b["images"].to(self.device), b["centermaps"].to(self.device)).project()[:, 0].cpu()
        self.lifter.train()
        S = b["images"].shape[-1]
        fig, axes = plt.subplots(1, len(uv), figsize=(2.2 * len(uv), 2.4))
        for ax, im, p, g, m in zip(np.atleast_1d(axes), b["images"], uv, b["joints_2d"], b["joints_mask"]):
            img = im.permute(1, 2, 0).numpy() * np.array(IMAGENET_STD) + np.array(IMAGENET_MEAN)
            ax.imshow(img.clip(0, 1))
            for a, c in enumerate(CANON16.parents):
                if c >= 0:
                    ax.plot((p[[a, c], 0] + 1) * S / 2, (p[[a, c], 1] + 1) * S / 2, "-", c="tab:orange", lw=1.5)
            gg = (g[m] + 1) * S / 2
            ax.plot(gg[:, 0], gg[:, 1], ".", c="tab:blue", ms=4)
            ax.axis("off")
        fig.suptitle("validation: predicted skeleton (orange), annotation (blue)", fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=80)
        plt.close(fig)
        return str(path)
