"""Build the licence-free SMPL-format body model shipped in lifting/assets/body_models/.

The model is derived from anny (NAVER, Apache-2.0 code; MakeHuman CC0 assets shipped in its
wheel), so no licensed SMPL file is needed. Steps:

1. Sample adult anny phenotypes (fixed seed) from anny's own population model (age- and
   sex-conditioned Beta distributions for height, weight, muscle, proportions, calibrated
   against WHO data), morphological age uniform over 18-80 years, sex uniform.
2. T-pose every sample: starting from anny's canonical (reference) A-pose, rotate each limb
   bone so that shoulder->elbow->wrist->hand lies along +-x and hip->knee->ankle is vertical;
   the feet keep their A-pose orientation (flat). Rotations are solved per sample, so every
   sample is in an exact T-pose. The meshes come from anny's forward (skinned) output.
3. Axes: anny is X = subject's left, -Y = forward, Z = up, in metres; SMPL is x = left,
   y = up, z = forward: (x, y, z) = (X, Z, -Y). Samples keep anny's placement (feet on a
   common ground plane); everything is shifted so that the mean shape's pelvis is at 0.
4. PCA of the vertex sets: v_template = mean, shapedirs[..., k] = sqrt(eigval_k) * eigvec_k
   (betas ~ N(0, 1) over the sampled population). beta_1 > 0 is taller; the other
   components are signed so that beta_k > 0 increases the body volume.
5. Skinning weights: anny's 104-bone weights summed onto the 24 SMPL joints.
6. J_regressor: per joint, sum-to-one least squares over the template vertices nearest to
   the joint, fitted so that J_regressor @ vertices reproduces anny's bone heads over all
   samples; the error is reported on held-out samples.

posedirs is all zeros: pose-dependent correctives are not modelled.

    python scripts/build_open_body_model.py [--out PATH] [--seed 0] [--n-shapes 1000]
        [--cache-dir ~/.cache/posenet3d_anny]

Needs `pip install -e .[body-model-build]` (anny). The first anny model build takes about a
minute and leaves ~800 MB in the cache dir; later runs reuse it.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "lifting" / "assets" / "body_models" / "SMPL_NEUTRAL.npz"

ANNY_VERSION_PINNED = "0.6.2"

SMPL_JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck",
    "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand",
)
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)
# The anny bone whose head is each SMPL joint.
ANNY_BONE_OF_JOINT = (
    "root", "upperleg01.L", "upperleg01.R", "spine04", "lowerleg01.L", "lowerleg01.R",
    "spine03", "foot.L", "foot.R", "spine01", "toe3-1.L", "toe3-1.R", "neck01",
    "clavicle.L", "clavicle.R", "head", "upperarm01.L", "upperarm01.R",
    "lowerarm01.L", "lowerarm01.R", "wrist.L", "wrist.R", "finger3-1.L", "finger3-1.R",
)
NUM_BETAS = 10
N_HELDOUT = 200
AGE_YEARS = (18.0, 80.0)
# Joint regressor: support = the K template vertices nearest to each joint; ridge towards
# uniform weights, relative to the data scale (chosen on held-out samples, see README).
REGRESSOR_K = 512
REGRESSOR_RIDGE = 1e-6
BATCH = 50

# anny -> SMPL axes: (x, y, z) = (X, Z, -Y), a proper rotation (faces keep their winding).
ANNY_TO_SMPL = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="output .npz (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=0, help="phenotype sampling seed (default: %(default)s)")
    ap.add_argument("--n-shapes", type=int, default=1000,
                    help="phenotype samples for the PCA and regressor fit (default: %(default)s); "
                         f"{N_HELDOUT} more are drawn for the held-out evaluation")
    ap.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "posenet3d_anny"),
                    help="anny's cache (ANNY_CACHE_DIR, ~800 MB) (default: %(default)s)")
    return ap.parse_args(argv)


# ----------------------------------------------------------------------------- phenotypes

def age_anchors() -> tuple[np.ndarray, np.ndarray]:
    """anny's calibration of its age parameter against years (morphological age)."""
    import torch
    from anny.paths import get_anny_root_dir

    state = torch.load(get_anny_root_dir() / "data" / "shape_calibration" / "boys.pth",
                       weights_only=True, map_location="cpu")["morphological_age_mapping"]
    return state["morphological_age_anchors"].numpy(), state["anny_age_anchors"].numpy()


def sample_phenotypes(rng: np.random.Generator, n: int, model) -> dict[str, np.ndarray]:
    """Adult phenotypes from anny's own population model (``anny.shape_distribution.
    SimpleShapeDistribution``: height, weight, muscle and proportions from Beta distributions
    conditioned on age and sex, calibrated by anny's authors against WHO growth data), with
    morphological age uniform over ``AGE_YEARS`` and sex uniform. Uniform phenotypes would
    give statures from 1.25 to 2.43 m (31 cm per beta_1 sigma); this population is realistic,
    so betas ~ N(0, 1) is a meaningful prior."""
    import torch
    from anny.shape_distribution import SimpleShapeDistribution

    torch.manual_seed(int(rng.integers(2**31)))
    age = torch.distributions.Uniform(torch.tensor(AGE_YEARS[0], dtype=model.dtype),
                                      torch.tensor(AGE_YEARS[1], dtype=model.dtype))
    dist = SimpleShapeDistribution(model, morphological_age_distribution=age)
    years, sampled = dist.sample(n)
    ph = {k: sampled[k].detach().cpu().double().numpy() for k in ("gender", "age", "muscle", "weight", "height",
                                                                  "proportions")}
    ph["age_years"] = years.detach().cpu().double().numpy()
    return ph


# ----------------------------------------------------------------------------- T-pose

def _rotation_between(a, b):
    """(..., 3, 3) smallest rotations taking the directions a to the directions b."""
    import roma
    import torch

    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    cross = torch.linalg.cross(a, b)
    sin = cross.norm(dim=-1, keepdim=True)
    cos = (a * b).sum(-1, keepdim=True)
    axis = cross / sin.clamp_min(1e-12)
    return roma.rotvec_to_rotmat(axis * torch.atan2(sin, cos))


def tpose_samples(model, phenotypes: dict[str, np.ndarray]):
    """Vertices (B, V, 3), bone heads (B, 104, 3) and T-pose deltas (B, 104, 3, 3) of a batch,
    in anny's axes and placement (metres)."""
    import torch

    labels = model.bone_labels
    idx = {label: i for i, label in enumerate(labels)}
    parents = torch.as_tensor(model.bone_parents)
    U = model.reference_bone_orientations  # (104, 3, 3), the canonical A-pose orientations
    n = len(phenotypes["age"])
    kw = {k: torch.as_tensor(phenotypes[k], dtype=model.dtype) for k in model.phenotype_labels}
    eye4 = torch.eye(4, dtype=model.dtype)
    with torch.no_grad():
        # Identity deltas in the "local-ref" parameterisation give anny's canonical A-pose.
        out = model(pose_parameters=eye4.expand(n, len(labels), 4, 4).clone(), phenotype_kwargs=kw)
        rest_poses = out["rest_bone_poses"]
        deltas = torch.eye(3, dtype=model.dtype).expand(n, len(labels), 3, 3).clone()

        def world():
            pose = eye4.expand(n, len(labels), 4, 4).clone()
            pose[..., :3, :3] = deltas
            return model.get_bone_transforms(pose, rest_poses, pose_parameterization="local-ref")

        def accumulated(W, bones):
            # World rotation of each bone relative to its canonical orientation.
            return W[:, bones, :3, :3] @ U[bones].transpose(-1, -2)

        x = torch.tensor([1.0, 0.0, 0.0], dtype=model.dtype)
        down = torch.tensor([0.0, 0.0, -1.0], dtype=model.dtype)
        # Segments (bone, child bone, target direction), solved level by level from the body
        # outwards; the four limbs are independent subtrees, so one level is solved at once.
        levels = []
        for bone, child in (("upperarm01", "lowerarm01"), ("lowerarm01", "wrist"), ("wrist", "finger3-1")):
            levels.append([(f"{bone}.L", f"{child}.L", x), (f"{bone}.R", f"{child}.R", -x)])
        levels[0] += [(f"upperleg01.{s}", f"lowerleg01.{s}", down) for s in "LR"]
        levels[1] += [(f"lowerleg01.{s}", f"foot.{s}", down) for s in "LR"]
        for level in levels:
            _, W = world()
            bones = [idx[b] for b, _, _ in level]
            heads = W[..., :3, 3]
            d = torch.stack([heads[:, idx[c]] - heads[:, idx[b]] for b, c, _ in level], 1)
            t = torch.stack([t for _, _, t in level]).expand_as(d)
            G = _rotation_between(d, t)  # extra world rotation of the bone's subtree
            A = accumulated(W, parents[bones])
            # local-ref: world orientation = A_parent @ D @ U, so a world rotation G applied
            # after the parent's becomes D' = A_parent^T G A_parent D.
            deltas[:, bones] = A.transpose(-1, -2) @ G @ A @ deltas[:, bones]
        # Feet keep their canonical (flat) world orientation.
        _, W = world()
        feet = [idx["foot.L"], idx["foot.R"]]
        deltas[:, feet] = accumulated(W, parents[feet]).transpose(-1, -2)
        T, W = world()
        vertices = model.get_skinned_vertices(out["rest_vertices"], T)
        # Identity root delta puts the root bone at the origin; restore anny's placement (the
        # feet on one ground plane for every shape): the root's rest orientation is I.
        shift = out["rest_bone_heads"][:, None, 0]
        return (vertices + shift).numpy(), (W[..., :3, 3] + shift).numpy(), deltas.numpy()


def generate(model, phenotypes: dict[str, np.ndarray], log_every: int = 200):
    n = len(phenotypes["age"])
    verts, heads, deltas = [], [], []
    t0 = time.perf_counter()
    for start in range(0, n, BATCH):
        batch = {k: v[start:start + BATCH] for k, v in phenotypes.items()}
        v, h, d = tpose_samples(model, batch)
        verts.append(v @ ANNY_TO_SMPL.T)
        heads.append(h @ ANNY_TO_SMPL.T)
        deltas.append(d)
        done = start + len(v)
        if done % log_every == 0 or done == n:
            print(f"  {done}/{n} shapes, {time.perf_counter() - t0:.0f} s", flush=True)
    return np.concatenate(verts), np.concatenate(heads), np.concatenate(deltas)


# ----------------------------------------------------------------------------- rig

def joint_of_bone(labels: list[str], parents: list[int]) -> np.ndarray:
    """The SMPL joint that takes each anny bone's skinning weight: finger phalanges -> hand,
    toes -> foot, metacarpals (the thumb's is finger1-1) -> wrist, any other bone -> its nearest
    ancestor-or-self among the 24 (twist bones, pelvis.L/R, spine05/02, neck02/03, eyes...)."""
    joint_index = {bone: j for j, bone in enumerate(ANNY_BONE_OF_JOINT)}
    out = np.full(len(labels), -1)
    for b, label in enumerate(labels):
        side = label.rsplit(".", 1)[-1] if label.endswith((".L", ".R")) else None
        if label.startswith("finger") and not label.startswith("finger1-1."):
            out[b] = joint_index[f"finger3-1.{side}"]
        elif label.startswith("toe"):
            out[b] = joint_index[f"toe3-1.{side}"]
        elif label.startswith(("metacarpal", "finger1-1.")):
            out[b] = joint_index[f"wrist.{side}"]
        else:
            a = b
            while labels[a] not in joint_index:
                a = parents[a]
                assert a >= 0, label
            out[b] = joint_index[labels[a]]
    return out


def smpl_parents_from_anny(labels: list[str], parents: list[int]) -> list[int]:
    joint_index = {bone: j for j, bone in enumerate(ANNY_BONE_OF_JOINT)}
    out = []
    for bone in ANNY_BONE_OF_JOINT:
        a = parents[labels.index(bone)]
        while a >= 0 and labels[a] not in joint_index:
            a = parents[a]
        out.append(joint_index[labels[a]] if a >= 0 else -1)
    return out


def merged_weights(model, bone_to_joint: np.ndarray) -> np.ndarray:
    w = model.vertex_bone_weights.numpy()
    bi = model.vertex_bone_indices.numpy()
    out = np.zeros((w.shape[0], len(SMPL_JOINT_NAMES)))
    np.add.at(out, (np.repeat(np.arange(w.shape[0]), w.shape[1]), bone_to_joint[bi].ravel()), w.ravel())
    out /= out.sum(1, keepdims=True)
    return out


# ----------------------------------------------------------------------------- regressor

def fit_regressor(template: np.ndarray, verts: np.ndarray, joints: np.ndarray,
                  k: int = REGRESSOR_K, ridge: float = REGRESSOR_RIDGE) -> np.ndarray:
    """(24, V) weights, each row supported on the k template vertices nearest to the joint and
    summing to 1, minimising sum_s |w @ verts_s - joints_s|^2 + ridge' |w - 1/k|^2."""
    n_joints = joints.shape[1]
    reg = np.zeros((n_joints, template.shape[0]))
    mean_joints = joints.mean(0)
    for j in range(n_joints):
        support = np.argsort(np.linalg.norm(template - mean_joints[j], axis=1))[:k]
        # Offsets from the target joint: with sum(w) = 1, w @ (v - J) = w @ v - J.
        A = (verts[:, support, :] - joints[:, None, j, :]).transpose(0, 2, 1).reshape(-1, k)
        AtA = A.T @ A
        lam = ridge * np.trace(AtA) / k
        kkt = np.zeros((k + 1, k + 1))
        kkt[:k, :k] = AtA + lam * np.eye(k)
        kkt[:k, k] = kkt[k, :k] = 1.0
        rhs = np.concatenate([np.full(k, lam / k), [1.0]])
        reg[j, support] = np.linalg.solve(kkt, rhs)[:k]
    return reg


def joint_errors(reg: np.ndarray, verts: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """(S, 24) distances between regressed joints and the anny bone heads."""
    return np.linalg.norm(np.einsum("jv,svc->sjc", reg, verts) - joints, axis=-1)


# ----------------------------------------------------------------------------- extras

def smplx_vertex_ids(model, template: np.ndarray) -> dict[str, int]:
    """Vertices for smplx's extra keypoints (nose, eyes, ears, toes, heels, fingertips) on this
    mesh, in smplx's `vertex_ids` format, chosen geometrically on the T-posed template."""
    labels = model.bone_labels
    w = model.vertex_bone_weights.numpy()
    bi = model.vertex_bone_indices.numpy()
    dom = bi[np.arange(len(bi)), w.argmax(1)]  # dominant anny bone of each vertex

    def on(*bones):
        return np.flatnonzero(np.isin(dom, [labels.index(b) for b in bones]))

    def extreme(verts, direction):
        return int(verts[np.argmax(template[verts] @ np.asarray(direction, float))])

    ids = {}
    head = on("head")
    ids["nose"] = extreme(head[np.abs(template[head, 0]) < 0.01], [0, 0, 1])
    for s, name, sx in (("L", "l", 1.0), ("R", "r", -1.0)):
        ids[f"{name}eye"] = extreme(on(f"eye.{s}"), [0, 0, 1])
        ids[f"{name}ear"] = extreme(head, [sx, 0, 0])
        foot = on(f"foot.{s}", *[b for b in labels if b.startswith("toe") and b.endswith(s)])
        ids[f"{s}BigToe"] = extreme(on(f"toe1-2.{s}"), [0, 0, 1])
        ids[f"{s}SmallToe"] = extreme(on(f"toe5-3.{s}"), [0, 0, 1])
        sole = foot[template[foot, 1] < template[foot, 1].min() + 0.02]
        ids[f"{s}Heel"] = extreme(sole, [0, 0, -1])
        for finger, tip in zip(("thumb", "index", "middle", "ring", "pinky"), range(1, 6)):
            verts = on(f"finger{tip}-3.{s}")
            base = template[verts].mean(0) - template[on(f"finger{tip}-2.{s}")].mean(0)
            ids[f"{name}{finger}"] = extreme(verts, base)
    return ids


# ----------------------------------------------------------------------------- main

def stature(v: np.ndarray) -> np.ndarray:
    return v[..., 1].max(-1) - v[..., 1].min(-1)


def volume(v: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Signed volume enclosed by the triangles (divergence theorem), for (..., V, 3)."""
    a, b, c = (v[..., faces[:, i], :] for i in range(3))
    return np.einsum("...fc,...fc->...", a, np.cross(b, c)) / 6.0


def save_npz_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.stem + ".", suffix=".tmp.npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.chmod(tmp, 0o644)  # mkstemp creates it 0600
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv=None) -> None:
    args = parse_args(argv)
    os.environ["ANNY_CACHE_DIR"] = str(Path(args.cache_dir).expanduser())
    t_start = time.perf_counter()

    import importlib.metadata

    import roma
    import torch

    import anny

    anny_version = importlib.metadata.version("anny")
    if anny_version != ANNY_VERSION_PINNED:
        print(f"warning: anny {anny_version} installed, the shipped model was built with "
              f"{ANNY_VERSION_PINNED}", file=sys.stderr)
    torch.set_num_threads(min(2, os.cpu_count() or 1))

    print(f"anny {anny_version}: loading the model (cache {os.environ['ANNY_CACHE_DIR']})", flush=True)
    # Default rig and topology (the makehuman mesh, triangulated, with eyes and tongue), plain
    # torch linear blend skinning. Not anny's smpl/smplx topologies (non-commercial data).
    model = anny.Anny(rig="anny", topology="anny", skinning_method="lbs", pose_parameterization="local-ref")
    t_loaded = time.perf_counter()
    labels, parents = list(model.bone_labels), list(model.bone_parents)
    faces = np.asarray(model.faces, dtype=np.int64)
    assert faces.ndim == 2 and faces.shape[1] == 3, f"expected triangles, got {faces.shape}"
    assert smpl_parents_from_anny(labels, parents) == list(SMPL_PARENTS)
    print(f"  {time.perf_counter() - t_start:.0f} s; {len(labels)} bones, "
          f"{model.template_vertices.shape[0]} vertices, {len(faces)} triangles", flush=True)

    rng = np.random.default_rng(args.seed)
    ph_fit = sample_phenotypes(rng, args.n_shapes, model)
    ph_held = sample_phenotypes(rng, N_HELDOUT, model)

    print(f"T-posing {args.n_shapes} + {N_HELDOUT} held-out anny shapes", flush=True)
    verts, heads, deltas = generate(model, ph_fit)
    verts_held, heads_held, _ = generate(model, ph_held)
    bone_ids = [labels.index(b) for b in ANNY_BONE_OF_JOINT]
    joints, joints_held = heads[:, bone_ids], heads_held[:, bone_ids]
    # Typical T-pose rotations (degrees), for the record.
    angles = np.degrees(roma.rotmat_to_rotvec(torch.as_tensor(deltas)).norm(dim=-1).numpy())
    tpose_deg = {labels[b]: [round(float(angles[:, b].mean()), 2), round(float(angles[:, b].min()), 2),
                             round(float(angles[:, b].max()), 2)]
                 for b in np.flatnonzero(angles.max(0) > 1e-6)}

    # The mean shape's pelvis at the origin.
    origin = joints[:, 0].mean(0)
    for a in (verts, joints, verts_held, joints_held):
        a -= origin

    print("PCA", flush=True)
    n, V, _ = verts.shape
    X = verts.reshape(n, -1)
    mean = X.mean(0)
    _, S, Vt = np.linalg.svd(X - mean, full_matrices=False)
    eigvals = S ** 2 / (n - 1)
    ratio = eigvals / eigvals.sum()
    v_template = mean.reshape(V, 3)
    shapedirs = (Vt[:NUM_BETAS] * np.sqrt(eigvals[:NUM_BETAS, None])).T.reshape(V, 3, NUM_BETAS)
    # Signs: beta_1 > 0 taller, the others > 0 more body volume.
    dh = stature(v_template + shapedirs[..., 0]) - stature(v_template)
    if dh < 0:
        shapedirs[..., 0] *= -1
    for k in range(1, NUM_BETAS):
        if volume(v_template + shapedirs[..., k], faces) < volume(v_template, faces):
            shapedirs[..., k] *= -1

    betas_held = np.einsum("svc,vck->sk", verts_held - v_template, shapedirs) / (S[:NUM_BETAS] ** 2 / (n - 1))
    recon_held = v_template + np.einsum("vck,sk->svc", shapedirs, betas_held)
    pca_err = np.linalg.norm(recon_held - verts_held, axis=-1)

    print("joint regressor", flush=True)
    J_regressor = fit_regressor(v_template, verts, joints)
    err_fit = joint_errors(J_regressor, verts, joints)
    err_held = joint_errors(J_regressor, verts_held, joints_held)
    err_model = joint_errors(J_regressor, recon_held, joints_held)
    joints_template = joints.mean(0)
    err_template = np.linalg.norm(J_regressor @ v_template - joints_template, axis=-1)

    bone_to_joint = joint_of_bone(labels, parents)
    weights = merged_weights(model, bone_to_joint)
    vertex_ids = smplx_vertex_ids(model, v_template)
    vol = volume(v_template, faces)
    assert vol > 0, "faces should wind outwards"

    t_total = time.perf_counter() - t_start
    build_info = {
        "description": "Licence-free SMPL-format body model derived from anny (see README.md)",
        "anny_version": anny_version,
        "anny_config": {"rig": "anny", "topology": "anny", "pose_parameterization": "local-ref",
                        "skinning_method": "lbs"},
        "seed": args.seed, "n_shapes": args.n_shapes, "n_heldout": N_HELDOUT,
        "phenotype_sampling": {"population": "anny.shape_distribution.SimpleShapeDistribution (WHO-calibrated)",
                               "gender": [0, 1], "age_years": list(AGE_YEARS),
                               "age": [round(float(ph_fit["age"].min()), 4), round(float(ph_fit["age"].max()), 4)]},
        "axes": "x = subject's left, y = up, z = forward (anny X, Z, -Y); metres",
        "origin": "mean shape's pelvis (anny root bone head) at 0; shapes keep anny's ground-plane placement",
        "pca_explained_variance_ratio": [round(float(r), 6) for r in ratio[:NUM_BETAS]],
        "pca_explained_variance_cumulative": round(float(ratio[:NUM_BETAS].sum()), 6),
        "pca_sigma_rms_per_vertex_m": [round(float(s), 5) for s in np.sqrt(eigvals[:NUM_BETAS] / V)],
        "pca_heldout_vertex_error_m": {"mean": round(float(pca_err.mean()), 5), "max": round(float(pca_err.max()), 5)},
        "stature_m": {"template": round(float(stature(v_template)), 4),
                      "beta1_-2": round(float(stature(v_template - 2 * shapedirs[..., 0])), 4),
                      "beta1_+2": round(float(stature(v_template + 2 * shapedirs[..., 0])), 4),
                      "samples_min": round(float(stature(verts).min()), 4),
                      "samples_max": round(float(stature(verts).max()), 4)},
        "joint_regressor": {"support_vertices": REGRESSOR_K, "ridge": REGRESSOR_RIDGE,
                            "fit_error_m": {"mean": round(float(err_fit.mean()), 6), "max": round(float(err_fit.max()), 6)},
                            "heldout_error_m": {"mean": round(float(err_held.mean()), 6), "max": round(float(err_held.max()), 6)},
                            "heldout_pca10_error_m": {"mean": round(float(err_model.mean()), 6),
                                                      "max": round(float(err_model.max()), 6)},
                            "template_error_m": round(float(err_template.max()), 6)},
        "tpose_rotation_deg_mean_min_max": tpose_deg,
        "smpl_joint_to_anny_bone": dict(zip(SMPL_JOINT_NAMES, ANNY_BONE_OF_JOINT)),
        "posedirs": "all zeros: pose-dependent correctives are not modelled",
        "build_seconds": round(t_total, 1),
        "build_date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
        "licence": "CC0-1.0 (derived from anny's CC0 MakeHuman assets; anny code is Apache-2.0)",
    }
    arrays = {
        # Read by smplx.SMPL (pass them as data_struct, see README.md).
        "v_template": v_template.astype(np.float32),
        "shapedirs": shapedirs.astype(np.float32),
        "posedirs": np.zeros((V, 3, 207), np.float32),
        "J_regressor": J_regressor.astype(np.float32),
        "weights": weights.astype(np.float32),
        "kintree_table": np.stack([np.array([2 ** 32 - 1] + list(SMPL_PARENTS[1:]), np.int64),
                                   np.arange(24, dtype=np.int64)]),
        "f": faces.astype(np.int32),
        # Extras, ignored by smplx.
        "joints_template": joints_template.astype(np.float32),
        "joint_names": np.array(SMPL_JOINT_NAMES),
        "anny_bones": np.array(ANNY_BONE_OF_JOINT),
        "vertex_ids": np.array(json.dumps(vertex_ids)),
        "pca_explained_variance_ratio": ratio[:NUM_BETAS].astype(np.float32),
        "build_info": np.array(json.dumps(build_info, indent=1)),
    }
    out = Path(args.out).expanduser()
    save_npz_atomic(out, arrays)

    print(f"\nwrote {out} ({out.stat().st_size / 1e6:.2f} MB) in {t_total:.0f} s "
          f"(anny load {t_loaded - t_start:.0f} s)")
    print(f"vertices {V}, triangles {len(faces)}, stature {stature(v_template):.3f} m, "
          f"enclosed volume {vol * 1000:.1f} L")
    print("PCA explained variance (%):", " ".join(f"{100 * r:.2f}" for r in ratio[:NUM_BETAS]),
          f"| cumulative {100 * ratio[:NUM_BETAS].sum():.3f}")
    print("PCA sigma, RMS vertex displacement per component (mm):",
          " ".join(f"{1000 * s:.1f}" for s in np.sqrt(eigvals[:NUM_BETAS] / V)))
    print(f"held-out PCA-10 vertex error: mean {1000 * pca_err.mean():.1f} mm, max {1000 * pca_err.max():.1f} mm")
    print(f"stature beta1 -2/0/+2: {build_info['stature_m']['beta1_-2']:.3f} / "
          f"{stature(v_template):.3f} / {build_info['stature_m']['beta1_+2']:.3f} m")
    print(f"joint regressor error (mm): fit mean {1000 * err_fit.mean():.2f} max {1000 * err_fit.max():.2f}; "
          f"held-out mean {1000 * err_held.mean():.2f} max {1000 * err_held.max():.2f}; "
          f"held-out through the 10-PC model mean {1000 * err_model.mean():.2f} max {1000 * err_model.max():.2f}; "
          f"template {1000 * err_template.max():.2f}")
    worst = err_held.max(0)
    print("  held-out max per joint (mm):",
          ", ".join(f"{name} {1000 * e:.1f}" for name, e in zip(SMPL_JOINT_NAMES, worst)))
    print("T-pose rotations (deg, mean [min, max]):",
          "; ".join(f"{b} {v[0]} [{v[1]}, {v[2]}]" for b, v in tpose_deg.items()))


if __name__ == "__main__":
    main()
