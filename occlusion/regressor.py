"""The student's image branch: a top-down, centermap-conditioned mesh regressor (OCHMR,
Khirodkar et al., "Occluded Human Mesh Recovery", CVPR 2022, arXiv 2203.13349) with an HMR
head (Kanazawa et al., "End-to-end Recovery of Human Shape and Pose", CVPR 2018, arXiv
1712.06584).

Pipeline: crop ``(B, 3, S, S)`` + centermaps ``(B, 2, h, w)`` (contextual, instance; see
:mod:`occlusion.centermap`) -> ResNet backbone with Contextual Normalization blocks
(:mod:`occlusion.backbone`, :mod:`occlusion.conorm`) -> pooled features ``(B, D)`` -> HMR's
iterative error feedback (HMR Sec. 3.2: ``Theta_{t+1} = Theta_t + f([phi, Theta_t])``, 3
iterations, starting from the mean parameters; ``f`` = FC 1024 - dropout - FC 1024 - dropout
- FC, last layer initialised x 0.01) -> SMPL parameters (24 rotations in the 6D
representation of Zhou et al. CVPR 2019, ``betas``, weak-perspective ``cam``) -> body model.

The output is a :class:`ImageOutput`, the keypoint student's :class:`lifting.models.student.
StudentOutput` with ``T = 1`` and a weak-perspective camera in crop-normalised units
(:mod:`occlusion.data`): a root-relative point ``P`` (metres, camera frame) projects to
``s * P_xy + (tx, ty)``. Without CoNorm blocks (``conorm_after=()``) and with the centermaps
ignored it is a plain HMR/SPIN-style regressor: the baseline of the context ablation.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from lifting.body_model import BodyModel
from lifting.models.base import ModelArgs, ModelInterface, arg
from lifting.models.student import StudentOutput, rot6d_to_rotmat

from .backbone import ResNetBackbone

__all__ = ["ImageOutput", "HMRHead", "ImageRegressor", "ImageRegressorConfig", "predict_people", "CropSettings",
           "PersonPrediction",
           "load_image_regressor"]

#: initial weak-perspective scale: an adult (~1.7 m) spans ~1.6 crop-normalised units in a
#: crop padded 1.25x around the box
CAM_SCALE0 = 0.9


@dataclass
class ImageOutput(StudentOutput):
    """:class:`StudentOutput` of one frame per crop (``T = 1``), plus the IEF iterations.

    Attributes (besides the parent's, all with ``T = 1``):
        iterations: per IEF iteration ``(body_pose (B, 23, 3, 3), betas (B, num_betas))``,
            the fakes every iteration gives the adversarial prior (HMR Sec. 3.3).
        cam: ``(B, 1, 3)`` weak-perspective ``(s, tx, ty)``, crop-normalised units per metre.
    """

    iterations: list = field(default_factory=list)

    def project(self, points: torch.Tensor | None = None) -> torch.Tensor:
        """Weak-perspective projection of ``points (B, 1, N, 3)`` (default the canonical
        joints), metres, to crop-normalised ``(B, 1, N, 2)``."""
        p = self.joints_3d if points is None else points
        return self.cam[..., None, :1] * p[..., :2] + self.cam[..., None, 1:]


class HMRHead(nn.Module):
    """HMR's iterative error feedback regressor (Kanazawa et al. CVPR 2018, Sec. 3.2).

    Args:
        feature_dim: D. num_betas: shape components. n_iter: iterations (3 in HMR).
        width: hidden width (1024 in HMR). dropout: 0.5 in HMR.

    Forward:
        ``features (B, D)`` -> list of ``n_iter`` parameter vectors ``(B, 24 * 6 +
        num_betas + 3)`` ``[6D rotations, betas, (log s, tx, ty)]``.

    The starting point ``init_theta`` is a buffer: the rest pose upright facing the camera,
    mean shape and a typical scale until :meth:`set_mean` stores the mean of real parameters
    (HMR's mean-parameter initialisation; here the keypoint student's mean prediction on the
    training people, so no 3D label enters).
    """

    def __init__(self, feature_dim: int, num_betas: int = 10, n_iter: int = 3, width: int = 1024,
                 dropout: float = 0.5):
        super().__init__()
        self.num_betas, self.n_iter = num_betas, n_iter
        self.dim = 24 * 6 + num_betas + 3
        self.mlp = nn.Sequential(nn.Linear(feature_dim + self.dim, width), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(width, width), nn.ReLU(), nn.Dropout(dropout), nn.Linear(width, self.dim))
        nn.init.xavier_uniform_(self.mlp[-1].weight, gain=0.01)
        nn.init.zeros_(self.mlp[-1].bias)
        init = torch.zeros(self.dim)
        init[: 24 * 6] = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 0.0]).repeat(24)
        init[:6] = torch.tensor([1.0, 0.0, 0.0, -1.0, 0.0, 0.0])  # R_x(pi): upright, facing the camera
        init[24 * 6 + num_betas] = float(np.log(CAM_SCALE0))
        self.register_buffer("init_theta", init)

    @torch.no_grad()
    def set_mean(self, global_orient: torch.Tensor, body_pose: torch.Tensor, betas: torch.Tensor,
                 cam_scale: torch.Tensor | None = None) -> None:
        """Store the mean of ``global_orient (N, 3, 3)``, ``body_pose (N, 23, 3, 3)``, ``betas
        (N, num_betas)`` (and optionally weak-perspective scales ``(N,)``) as the IEF start.

        Raises:
            ValueError: wrong shapes or no samples."""
        N = global_orient.shape[0]
        if N == 0 or global_orient.shape != (N, 3, 3) or body_pose.shape != (N, 23, 3, 3) \
                or betas.shape != (N, self.num_betas):
            raise ValueError(f"set_mean expects (N, 3, 3), (N, 23, 3, 3), (N, {self.num_betas}) with N > 0, got "
                             f"{tuple(global_orient.shape)}, {tuple(body_pose.shape)}, {tuple(betas.shape)}")
        rot = torch.cat([global_orient[:, None], body_pose], 1)  # (N, 24, 3, 3)
        six = rot[..., :, :2].reshape(N, 24, 6).mean(0)
        rot_mean = rot6d_to_rotmat(six)  # project the mean back onto rotations
        self.init_theta[: 24 * 6] = rot_mean[..., :, :2].reshape(-1).to(self.init_theta)
        self.init_theta[24 * 6: 24 * 6 + self.num_betas] = betas.mean(0).to(self.init_theta)
        if cam_scale is not None:
            self.init_theta[24 * 6 + self.num_betas] = cam_scale.clamp_min(1e-3).log().mean().to(self.init_theta)

    def forward(self, features: torch.Tensor) -> list[torch.Tensor]:
        theta = self.init_theta.to(features.dtype).expand(features.shape[0], -1)
        out = []
        for _ in range(self.n_iter):
            theta = theta + self.mlp(torch.cat([features, theta], dim=1))
            out.append(theta)
        return out


@dataclass(frozen=True)
class ImageRegressorConfig(ModelArgs):
    """The image regressor's hyperparameters (stored as a checkpoint's ``model_config`` with
    ``arch = "image_regressor"``; validated by :meth:`lifting.models.base.ModelArgs.from_dict`).

    Attributes:
        depth: ResNet depth 18/34/50. base_width: ResNet width (64 = torchvision layout;
            smaller for CPU experiments). conorm_after: stages followed by a CoNorm block
            (``[]`` = the SPIN-style baseline without context; ignored without centermaps).
        n_iter, head_width, dropout: the HMR head (IEF iterations, hidden width, dropout
            probability). num_betas: shape components.
        use_centermaps: feed the centermaps (False only for the baseline).
    """

    ARCH: ClassVar[str] = "image_regressor"

    depth: int = arg(int, 18, choices=(18, 34, 50))
    base_width: int = arg(int, 64, 1, 1024)
    conorm_after: list = arg(list, ["layer2", "layer3", "layer4"], choices=("layer1", "layer2", "layer3", "layer4"))
    n_iter: int = arg(int, 3, 1, 100)
    head_width: int = arg(int, 1024, 1, 16384)
    dropout: float = arg(float, 0.5, 0.0, 1.0)
    num_betas: int = arg(int, 10, 1, 300)
    use_centermaps: bool = arg(bool, True)


class ImageRegressor(ModelInterface, nn.Module):
    """Crop + centermaps -> SMPL (the student's image branch; OCHMR with an HMR head).

    Args:
        config: the :class:`ImageRegressorConfig` (default: its defaults); without
            ``use_centermaps`` its ``conorm_after`` is dropped (stored as ``[]``).
        body_model: the :class:`BodyModel` (buffers only; ``None`` only for a shape-only
            copy on the ``meta`` device).
        marker_offsets: ``(16, 3)`` rest offsets of the canonical markers (metres), copied
            from the keypoint student so both branches define joints alike (a buffer, not
            trained here; default zeros).

    Forward:
        ``images (B, 3, S, S)`` ImageNet-normalised, ``centermaps (B, 2, h, w)`` ->
        :class:`ImageOutput` (``T = 1``).

    Raises:
        ValueError: inputs of the wrong shape, or centermaps missing when CoNorm blocks exist.
    """

    config_class = ImageRegressorConfig
    has_body_model = True
    lifts_2d = False
    outputs_smpl = True
    #: how a user loads this kind (said when it is given where a lifter is expected)
    load_hint = "`posenet3d mesh-image --checkpoint ...`"

    def __init__(self, config: ImageRegressorConfig | None = None, body_model: BodyModel | None = None,
                 marker_offsets: torch.Tensor | None = None):
        super().__init__()
        c = config if config is not None else ImageRegressorConfig()
        c = self.args = replace(c, conorm_after=list(c.conorm_after) if c.use_centermaps else [])
        self.body_model = body_model
        self.backbone = ResNetBackbone(c.depth, conorm_after=tuple(c.conorm_after), context_channels=2,
                                       base_width=c.base_width)
        self.head = HMRHead(self.backbone.feature_dim, c.num_betas, c.n_iter, c.head_width, c.dropout)
        self.num_betas, self.use_centermaps = c.num_betas, c.use_centermaps
        off = torch.zeros(16, 3) if marker_offsets is None else marker_offsets.detach().float().reshape(16, 3)
        self.register_buffer("marker_offsets", off.clone())

    @staticmethod
    def output_joints(out: ImageOutput) -> torch.Tensor:
        """The canonical joints ``(B, 1, 16, 3)`` (metres, root-relative) of an :class:`ImageOutput`."""
        return out.joints_3d

    def forward(self, images: torch.Tensor, centermaps: torch.Tensor | None = None,
                return_vertices: bool = False) -> ImageOutput:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, S, S), got {tuple(images.shape)}")
        if self.use_centermaps:
            if centermaps is None or centermaps.ndim != 4 or centermaps.shape[:2] != (images.shape[0], 2):
                raise ValueError(f"centermaps must be (B, 2, h, w) for B = {images.shape[0]}, got "
                                 f"{None if centermaps is None else tuple(centermaps.shape)}")
        feats = self.backbone(images, centermaps if self.backbone.conorm_after else None)
        thetas = self.head(feats.float())
        nb = self.num_betas
        iters = []
        for th in thetas:
            rot = rot6d_to_rotmat(th[:, : 24 * 6].reshape(-1, 24, 6))
            iters.append((rot, th[:, 24 * 6: 24 * 6 + nb], th[:, 24 * 6 + nb:]))
        rot, betas, cam_raw = iters[-1]
        s = torch.exp(cam_raw[:, :1].clamp(-5, 5))
        cam = torch.cat([s, cam_raw[:, 1:]], dim=1)[:, None]  # (B, 1, 3)
        bm = self.body_model(rot[:, None, 0], rot[:, None, 1:], betas[:, None], canon_offsets=self.marker_offsets,
                             return_vertices=return_vertices)
        root = bm.joints_canon[..., :1, :]
        res = ImageOutput(rot[:, None, 0], rot[:, None, 1:], betas, betas[:, None], cam, bm.joints_canon - root,
                          bm.joints - root, iterations=[(r[:, 1:], b) for r, b, _ in iters])
        if return_vertices:
            res.vertices = bm.vertices - root
        return res

    @classmethod
    def from_config(cls, config: ImageRegressorConfig, body_model: BodyModel | None) -> "ImageRegressor":
        """Build from an :class:`ImageRegressorConfig` (the common signature of
        :meth:`lifting.models.checkpoint.build_model`; the marker offsets come with the
        weights). Raises nothing."""
        return cls(config, body_model)


@dataclass
class PersonPrediction:
    """One person's mesh from :func:`predict_people`.

    Attributes:
        person: index of the person (centre) in the input detections.
        box: ``(4,)`` the crop's detection box ``[x, y, w, h]`` (pixels) the pass ran on.
        joints_2d: ``(16, 2)`` projected canonical joints, image pixels.
        joints_3d: ``(16, 3)`` root-relative canonical joints, metres, camera frame.
        global_orient ``(3, 3)``, body_pose ``(23, 3, 3)``, betas ``(num_betas,)``, cam ``(3,)``
        (crop-normalised), vertices ``(V, 3)`` root-relative metres or ``None``, vertices_2d
        ``(V, 2)`` their weak-perspective projection in image pixels or ``None``.
    """

    person: int
    box: np.ndarray
    joints_2d: np.ndarray
    joints_3d: np.ndarray
    global_orient: np.ndarray
    body_pose: np.ndarray
    betas: np.ndarray
    cam: np.ndarray
    vertices: np.ndarray | None = None
    vertices_2d: np.ndarray | None = None


@dataclass(frozen=True)
class CropSettings:
    """The crops of :func:`predict_people`, as in training (:class:`occlusion.data.CropSampler`).

    Attributes:
        crop_size: crop side in pixels. heatmap_size: side of the instance centermap.
        padding: crop side = ``padding`` x the detection box's longer side.
    """

    crop_size: int = 128
    heatmap_size: int = 32
    padding: float = 1.25


@torch.no_grad()
def predict_people(model: ImageRegressor, image: np.ndarray, keypoints: np.ndarray | None = None,
                   boxes: np.ndarray | None = None, keypoint_format: str = "coco17",
                   crops: CropSettings = CropSettings(), return_vertices: bool = False,
                   batch_size: int = 32) -> list[PersonPrediction]:
    """Multi-person inference (OCHMR Sec. 3.3): one crop per detection box; for every body
    centre that falls inside a box, one pass with that centre as the instance map; then
    de-duplicate: a person seen from several boxes keeps the pass whose crop is centred
    closest to their body centre. A crowded image gives one mesh per detected person.

    Args:
        model: the regressor (eval mode is set here). image: ``(H, W, 3)`` uint8 RGB.
        keypoints: ``(N, K, 3)`` people's 2D keypoints ``[x, y, conf]`` pixels (a 2D
            detector's output): their body centres are the people. boxes: ``(M, 4)``
            ``[x, y, w, h]`` detection boxes, the crops (default: the keypoints' extent). A
            box holding several people (a detector merging overlapping people) gives one
            pass per centre inside it. With boxes only, every box is one person.
        keypoint_format: ``coco17`` or ``crowdpose14``. crops: :class:`CropSettings`.
        return_vertices: also the mesh vertices (camera frame and image pixels).
        batch_size: crops per forward pass.

    Returns:
        One :class:`PersonPrediction` per person, ordered by ``person``.

    Raises:
        ValueError: no detections, non-finite values, or a malformed image.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    if keypoints is None and boxes is None:
        raise ValueError("predict_people needs detections: keypoints (N, K, 3) and/or boxes (N, 4)")
    kp = None if keypoints is None else np.asarray(keypoints, np.float64)
    bx = None if boxes is None else np.asarray(boxes, np.float64).reshape(-1, 4)
    if kp is not None and (kp.ndim != 3 or kp.shape[2] != 3 or not np.isfinite(kp).all()):
        raise ValueError(f"keypoints must be finite (N, K, 3), got shape {kp.shape}")
    if bx is not None and not np.isfinite(bx).all():
        raise ValueError("boxes must be finite")
    people = _detected_people(kp, bx, keypoint_format)
    if people is None:
        return []
    centres, sizes, bx = people
    model.eval()
    chosen = _central_crops(image, bx, centres, sizes, crops)
    out: list[PersonPrediction] = []
    for i in range(0, len(chosen), batch_size):
        out += _predict_crops(model, chosen[i: i + batch_size], len(centres), bx, crops, return_vertices)
    return out


def _detected_people(kp: np.ndarray | None, bx: np.ndarray | None, keypoint_format: str):
    """Body centres ``(N, 2)`` and sizes ``(N,)`` pixels of the people of
    :func:`predict_people` and the crop boxes ``(M, 4)`` xywh (the keypoints' extent when
    no boxes are given); None when there is no detection."""
    from .centermap import body_centres

    if kp is not None:  # people (centres) from the keypoints; boxes, if given, are the crops
        N = len(kp)
        if N == 0:
            return None
        centres, sizes = body_centres(kp, bx if bx is not None and len(bx) == N else None, fmt=keypoint_format)
        if bx is None:  # crops from the keypoints' extent
            bx = np.zeros((N, 4))
            for n in range(N):
                lab = kp[n, kp[n, :, 2] > 0, :2]
                lo, hi = lab.min(0), lab.max(0)
                bx[n] = [lo[0], lo[1], max(hi[0] - lo[0], 1), max(hi[1] - lo[1], 1)]
    else:
        N = len(bx)
        if N == 0:
            return None
        K = 17 if keypoint_format == "coco17" else 14
        centres, sizes = body_centres(np.zeros((N, K, 3)), bx, fmt=keypoint_format)
    return np.asarray(centres, np.float64), np.asarray(sizes, np.float64), bx


def _central_crops(image: np.ndarray, bx: np.ndarray, centres: np.ndarray, sizes: np.ndarray,
                   crops: CropSettings) -> list[tuple]:
    """One job per person, ordered by person: the crop of the box whose crop centre is
    closest to the person's body centre, as ``(box index, person index, affine (3, 3) image
    -> crop px, normalised crop (3, S, S) float32, centres in the crop (N, 2), sizes in the
    crop (N,), distance to the crop centre)``."""
    from PIL import Image

    from .data import IMAGENET_MEAN, IMAGENET_STD, crop_affine

    S = crops.crop_size
    jobs = []  # (box index, person index, affine, crop tensor, centermap inputs)
    mean, std = np.array(IMAGENET_MEAN), np.array(IMAGENET_STD)
    pil = Image.fromarray(image)
    for b in range(len(bx)):
        box = bx[b]
        size = crops.padding * max(box[2], box[3])
        A = crop_affine(box[:2] + box[2:] / 2, size, S)
        Ainv = np.linalg.inv(A)
        crop = pil.transform((S, S), Image.Transform.AFFINE, tuple(Ainv[:2].reshape(-1)),
                             resample=Image.Resampling.BILINEAR, fillcolor=(0, 0, 0))
        x = ((np.asarray(crop, np.float64) / 255 - mean) / std).astype(np.float32).transpose(2, 0, 1)
        c_crop = centres @ A[:2, :2].T + A[:2, 2]
        inside = np.nonzero((c_crop >= 0).all(1) & (c_crop < S).all(1))[0]
        for n in inside:
            jobs.append((b, int(n), A, x, c_crop, sizes * S / size, float(np.linalg.norm(c_crop[n] - S / 2))))
    best: dict[int, tuple] = {}
    for job in jobs:  # de-duplicate before running: the most central crop of each person
        if job[1] not in best or job[-1] < best[job[1]][-1]:
            best[job[1]] = job
    return [best[k] for k in sorted(best)]


def _predict_crops(model: ImageRegressor, part: list[tuple], N: int, bx: np.ndarray, crops: CropSettings,
                   return_vertices: bool) -> list[PersonPrediction]:
    """One forward pass over the jobs ``part`` of :func:`_central_crops` (``N`` people),
    mapped back to image pixels."""
    from .centermap import render_centermaps

    S, hm = crops.crop_size, crops.heatmap_size
    dev = next(model.parameters()).device
    imgs = torch.from_numpy(np.stack([j[3] for j in part])).to(dev)
    cen = torch.from_numpy(np.stack([j[4] for j in part])).float().to(dev)
    siz = torch.from_numpy(np.stack([j[5] for j in part])).float().to(dev)
    valid = torch.ones(len(part), N, dtype=torch.bool, device=dev)
    tgt = torch.tensor([j[1] for j in part], device=dev)
    crop_boxes = torch.tensor([[0.0, 0.0, S, S]], device=dev).expand(len(part), 4)
    cmap = render_centermaps(cen, siz, valid, tgt, crop_boxes, (hm, hm))
    pred = model(imgs, cmap, return_vertices=return_vertices)
    uv = pred.project()[:, 0].double().cpu().numpy()  # (b, 16, 2) crop-normalised
    uv_v = pred.project(pred.vertices)[:, 0].double().cpu().numpy() if return_vertices else None

    def to_image(u, A):
        return ((u + 1) * S / 2 - A[:2, 2]) @ np.linalg.inv(A[:2, :2]).T

    out = []
    for k, (b, n, A, *_rest) in enumerate(part):
        img_xy = to_image(uv[k], A)
        out.append(PersonPrediction(
            n, bx[b].copy(), img_xy, pred.joints_3d[k, 0].cpu().numpy(), pred.global_orient[k, 0].cpu().numpy(),
            pred.body_pose[k, 0].cpu().numpy(), pred.betas[k].cpu().numpy(), pred.cam[k, 0].cpu().numpy(),
            pred.vertices[k, 0].cpu().numpy() if return_vertices else None,
            to_image(uv_v[k], A) if return_vertices else None))
    return out


def load_image_regressor(path: str | Path, body_model_path: str | Path | None = None) -> tuple[ImageRegressor, dict]:
    """Load an image-branch checkpoint written by ``posenet3d train image`` (or exported).

    Args:
        path: checkpoint file. body_model_path: the SMPL file/folder the model was trained
            with when it is not the bundled open model (checked against the recorded identity).

    Returns:
        ``(model in eval mode, checkpoint dict)``; identified and built by
        :func:`lifting.models.checkpoint.model_class` / :func:`~lifting.models.checkpoint.build_model`.

    Raises:
        lifting.models.checkpoint.CheckpointError (a ValueError): missing/unreadable file, or an
            unknown model kind (naming the known ones); ModelConfigError (a CheckpointError): a
            config out of range or weights that do not fit it.
        lifting.body_model.BodyModelError (a ValueError): the recorded body model is not the
            bundled one and ``body_model_path`` is missing or another model.
        ValueError: a checkpoint of another kind (a lifter), not an image-branch checkpoint.
    """
    from lifting.models.checkpoint import build_model, load_checkpoint, model_class

    ckpt = load_checkpoint(path)
    cls = model_class(ckpt)  # CheckpointError naming the known kinds for an unknown one
    if not issubclass(cls, ImageRegressor):
        raise ValueError(f"{path}: not an image-branch checkpoint (a {cls.config_class.ARCH!r} model); "
                         f"train one with `posenet3d train image`")
    return build_model(ckpt, body_model_path, str(path)), ckpt
