"""``posenet3d mesh-image``: one SMPL mesh per person of a photo with the image branch, from
the photo and its people's 2D keypoints (COCO annotations or a 2D detector's COCO results).

Outputs (written into a staging folder moved into place as a whole): ``people.npz`` (smplx-compatible
parameters per person: ``global_orient (N, 3)`` and ``body_pose (N, 69)`` axis-angle,
``betas (N, B)``, plus rotation matrices, weak-perspective ``cam (N, 3)``, canonical
``joints_3d (N, 16, 3)`` root-relative metres and ``joints_2d (N, 16, 2)`` pixels), one mesh
file per person (y up, z towards the viewer, root-relative metres), and ``people.png`` with
the meshes drawn over the photo.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lifting.io.fileio import atomic_write, staged_output_folder

__all__ = ["read_image_keypoints", "mesh_image", "MeshImageOptions"]


def read_image_keypoints(path: str | Path, image_name: str, image_id: int | None = None) -> tuple[np.ndarray, str]:
    """People's keypoints ``(N, K, 3)`` pixels for one image from a COCO annotation file (the
    image found by ``image_id`` or file name) or a COCO results list (entries of
    ``image_id``; all entries when it is None and the list has one image).

    Returns ``(keypoints, keypoint_format)`` (``coco17`` or ``crowdpose14``).

    Raises:
        ValueError: unreadable file, image not found, or keypoint arrays of an unknown size.
    """
    src = str(path)
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{src}: cannot read keypoints ({e})") from None
    if isinstance(data, dict) and "annotations" in data:
        ims = data.get("images", [])
        if image_id is None:
            hit = [im for im in ims if Path(str(im.get("file_name", ""))).name == image_name]
            if not hit:
                raise ValueError(f"{src}: no image named {image_name!r} (pass --image-id)")
            image_id = hit[0]["id"]
        anns = [a for a in data["annotations"] if a.get("image_id") == image_id and not a.get("iscrowd", 0)]
    elif isinstance(data, list):
        ids = {a.get("image_id") for a in data if isinstance(a, dict)}
        if image_id is None and len(ids) > 1:
            raise ValueError(f"{src}: results for {len(ids)} images; pass --image-id")
        anns = [a for a in data if isinstance(a, dict) and (image_id is None or a.get("image_id") == image_id)]
    else:
        raise ValueError(f"{src}: expected a COCO annotation object or a COCO results list")
    kps = []
    for a in anns:
        k = np.asarray(a.get("keypoints", []), dtype=np.float64)
        if k.size not in (51, 42) or not np.isfinite(k).all():
            raise ValueError(f"{src}: annotation {a.get('id')} has {k.size} keypoint numbers; expected 51 (COCO-17) "
                             f"or 42 (CrowdPose-14), finite")
        kps.append(k.reshape(-1, 3))
    if not kps:
        raise ValueError(f"{src}: no people for image {image_id if image_id is not None else image_name!r}")
    if len({len(k) for k in kps}) > 1:
        raise ValueError(f"{src}: mixed keypoint layouts")
    return np.stack(kps), "coco17" if len(kps[0]) == 17 else "crowdpose14"


@dataclass(frozen=True)
class MeshImageOptions:
    """Options of :func:`mesh_image` (``posenet3d mesh-image``).

    Attributes:
        image_id: the image's id in the keypoint file (None: found by the image's file name).
        min_keypoints: people with fewer visible keypoints are skipped (listed in the summary).
        mesh_format: ``obj`` or ``ply``.
        crop_size: crop side in pixels (None: the checkpoint's training value).
        overwrite: replace a previous output in ``output`` (the folder is written as one unit,
            :func:`lifting.io.fileio.staged_output_folder`).
    """

    image_id: int | None = None
    min_keypoints: int = 4
    mesh_format: str = "obj"
    crop_size: int | None = None
    overwrite: bool = False


def mesh_image(image: str | Path, keypoints: str | Path, checkpoint: str | Path, output: str | Path,
               options: MeshImageOptions = MeshImageOptions()) -> dict:
    """Meshes for every person of ``image`` (see the module docstring for the outputs).

    Args:
        image: photo file. keypoints: COCO annotation/results JSON with the people's 2D.
        checkpoint: an image-branch checkpoint (``posenet3d train image``).
        output: the output folder. options: :class:`MeshImageOptions`.

    Returns:
        A summary dict (people, skipped, files).

    Raises:
        ValueError: unreadable image/keypoints/checkpoint, no person with enough keypoints, or
            ``output`` a file / a non-empty folder without ``overwrite``.
    """
    import roma
    import torch
    import trimesh
    from PIL import Image

    from .regressor import CropSettings, load_image_regressor, predict_people

    image_id, min_keypoints, mesh_format = options.image_id, options.min_keypoints, options.mesh_format

    try:
        with Image.open(image) as im:
            rgb = np.asarray(im.convert("RGB"))
    except OSError as e:
        raise ValueError(f"cannot read image {image}: {e}") from None
    kp, fmt = read_image_keypoints(keypoints, Path(image).name, image_id)
    keep = (kp[..., 2] > 0).sum(-1) >= min_keypoints
    if not keep.any():
        raise ValueError(f"no person in {keypoints} has >= {min_keypoints} visible keypoints")
    model, ck = load_image_regressor(checkpoint)
    icfg = (ck.get("config") or {}).get("image", {})
    crops = CropSettings(int(options.crop_size or icfg.get("crop_size", 128)), int(icfg.get("heatmap_size", 32)))
    preds = predict_people(model, rgb, kp[keep], keypoint_format=fmt, crops=crops, return_vertices=True)
    with staged_output_folder(output, overwrite=options.overwrite, marker="people.npz") as out:  # one atomic unit
        idx = np.nonzero(keep)[0]
        go = np.stack([p.global_orient for p in preds])
        bp = np.stack([p.body_pose for p in preds])
        arrays = {
            "person": idx[[p.person for p in preds]],
            "global_orient": roma.rotmat_to_rotvec(torch.from_numpy(go)).numpy(),
            "body_pose": roma.rotmat_to_rotvec(torch.from_numpy(bp)).numpy().reshape(len(preds), -1),
            "global_orient_rotmat": go, "body_pose_rotmat": bp,
            "betas": np.stack([p.betas for p in preds]), "cam": np.stack([p.cam for p in preds]),
            "joints_3d": np.stack([p.joints_3d for p in preds]), "joints_2d": np.stack([p.joints_2d for p in preds]),
        }
        files = [atomic_write(out / "people.npz", lambda tmp: np.savez(open(tmp, "wb"), **arrays)).name]
        faces = model.body_model.faces
        for p in preds:
            mesh = trimesh.Trimesh(vertices=p.vertices * np.array([1.0, -1.0, -1.0]), faces=faces, process=False)
            name = f"person_{int(idx[p.person]):03d}.{mesh_format}"
            atomic_write(out / name, lambda tmp, m=mesh: m.export(tmp, file_type=mesh_format))
            files.append(name)
        files.append(_figure(out / "people.png", rgb, preds, faces).name)
    skipped = [int(i) for i in np.nonzero(~keep)[0]]
    return {"image": str(image), "people": len(preds), "skipped_people": skipped, "files": files}


def _figure(path: Path, rgb: np.ndarray, preds, faces) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lifting.skeletons import CANON16
    from lifting.viz import _draw_2d, _draw_mesh, _save_png

    H, W = rgb.shape[:2]
    fig, axes = plt.subplots(1, 2, figsize=(10, 5 * H / W + 0.4))
    for ax in axes:
        ax.imshow(rgb)
        ax.set_xlim(0, W)
        ax.set_ylim(H, 0)
        ax.axis("off")
    colours = plt.cm.tab10(np.arange(len(preds)) % 10)[:, :3]
    for k, p in enumerate(preds):
        _draw_mesh(axes[1], p.vertices_2d, p.vertices[:, 2], faces, colour=colours[k])
        _draw_2d(axes[0], CANON16, p.joints_2d, np.ones(16, bool), lw=2.0, size=6)
    axes[0].set_title("projected joints (left side blue, right red)", fontsize=9)
    axes[1].set_title("meshes (weak perspective)", fontsize=9)
    return _save_png(fig, path, f"{len(preds)} people")
