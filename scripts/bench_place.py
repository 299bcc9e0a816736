"""Where people are, on real input with real 3D (issue 24): Pose2Sim's OpenPose folders lifted
with a camera, the root translation ``transl`` scored against the 4-view triangulation.

Each camera folder of ``../shared/data/pose2sim`` is lifted as a user would, once with the
calibration's intrinsics (``--camera calib.toml:cam_0N``) and once with the guess from the image
size (``--image-size 1088x1920``; focal = the longer side), at the true 60 fps. Output tracks are
matched to people as in ``scripts/bench_real3d.py``. Per person (mean over matched frames of all
4 cameras):

* root error: distance between ``transl`` and the true mid-hip in the camera frame (mm), and
  its ratio to the true camera distance (%);
* camera-frame MPJPE without root alignment: ``joints_3d_cam`` against the truth (mm);
* for ``two_people``: the error of the distance between the two people's roots (mm, and % of
  the true distance), over frames where both are matched;
* the floor the lift fitted (``summary.json`` ``floor``, per camera folder): the median height
  of each person's lower ankle above it (the balancing person always has one foot down).

``--rigs``: the mocap rigs instead (HDM05, every clip; Bandai-Namco, the val split), each clip
seen by one camera (``scripts/make_hdm05_tracks.py``, 5 px noise), lifted with the true focal
length (:data:`RIG_FOCAL_PX`) and with the guess: root error and camera-frame MPJPE.

Usage::

    python scripts/bench_place.py [--rigs] [--out res.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
import bench_real3d as B  # noqa: E402

TARGETS = "issue 24 targets: root error <= 8 % of the camera distance (calibration), <= 15 % (guess); two-person " \
          "distance within 10 %"


def lift_cam(folder: Path, dest: Path, camera: str | None, image_size) -> list[dict]:
    """:func:`bench_real3d.lift_folder` at 60 fps with a camera; each track also carries the
    run's ``floor`` (``summary.json``)."""
    tracks = B.lift_folder(None, folder, dest, 60.0, {"camera": camera, "image_size": image_size, "max_figures": 1})
    floor = json.loads((dest / "summary.json").read_text()).get("floor")
    return [t | {"floor": floor} for t in tracks]


def foot_height(track: dict) -> np.ndarray:
    """Per frame, the height of the lower ankle above the floor the lift reported (metres)."""
    from lifting.placement import lowest_feet

    fl = track["floor"]
    R, o = np.asarray(fl["rotation_camera_to_floor"]), np.asarray(fl["origin_camera_frame_m"])
    feet = lowest_feet(track["joints_3d"] + track["transl"][:, None])
    return (feet - o) @ R[1]


def match(track: dict, uv: np.ndarray) -> np.ndarray:
    """Indices into the track of frames matched to the person projected at ``uv (T, 13, 2)``."""
    from lifting.skeletons import CANON16

    idx = [CANON16.joint_names.index(j) for j in B.JOINTS]
    f = track["frame_ids"].astype(int)
    ok = f < len(uv)
    d = np.where(track["mask"][:, idx], np.linalg.norm(track["keypoints_2d"][:, idx] - uv[np.minimum(f, len(uv) - 1)],
                                                       axis=-1), np.nan)
    h = np.ptp(uv[np.minimum(f, len(uv) - 1), :, 1], axis=1)
    with np.errstate(invalid="ignore"):
        near = np.nanmedian(d, axis=1) < B.MATCH_FRACTION * h
    return np.flatnonzero(ok & near)


def run(mode: str, work: Path) -> dict:
    from lifting.skeletons import CANON16

    cal = B.read_calibration(B.POSE2SIM / "calib.toml")
    idx = [CANON16.joint_names.index(j) for j in B.JOINTS]
    res: dict = {}
    for trial, files in B.TRIALS:
        people = {label: B.read_trc(B.POSE2SIM / trial / f) for label, f in files}
        acc = {p: {"root": [], "ratio": [], "mpjpe": [], "foot": []} for p in people}
        pair = []
        for cam in B.CAMS:
            camera = f"{B.POSE2SIM / 'calib.toml'}:cam_{cam[3:]}" if mode == "calibration" else None
            size = None if mode == "calibration" else tuple(int(v) for v in cal[cam]["size"])
            tracks = lift_cam(B.POSE2SIM / trial / cam, work / mode / trial / cam, camera, size)
            roots = {}
            for p, m in people.items():
                x_cam, uv = B.person_in_camera(m, cal[cam])
                for tr in tracks:
                    sel = B.matched_frames(tr, uv)
                    if not len(sel):
                        continue
                    f = tr["frame_ids"][sel].astype(int)
                    gt_root = x_cam[f, 0]
                    err = np.linalg.norm(tr["transl"][sel] - gt_root, axis=-1)
                    acc[p]["root"] += err.tolist()
                    acc[p]["ratio"] += (err / np.linalg.norm(gt_root, axis=-1)).tolist()
                    pred = tr["joints_3d"][sel][:, idx] + tr["transl"][sel][:, None]
                    acc[p]["mpjpe"] += np.linalg.norm(pred - x_cam[f], axis=-1).mean(-1).tolist()
                    if tr["floor"]:
                        acc[p]["foot"] += np.abs(foot_height(tr)[sel]).tolist()
                    roots.setdefault(p, {}).update({int(ff): (tr["transl"][s], gt_root[k])
                                                    for k, (ff, s) in enumerate(zip(f, sel))})
            if len(roots) == 2:
                a, b = roots.values()
                for ff in sorted(set(a) & set(b)):
                    d_pred = np.linalg.norm(a[ff][0] - b[ff][0])
                    d_true = np.linalg.norm(a[ff][1] - b[ff][1])
                    pair.append((abs(d_pred - d_true), abs(d_pred - d_true) / d_true))
        for p, v in acc.items():
            res[p] = {"root_mm": round(1000 * float(np.mean(v["root"])), 1) if v["root"] else None,
                      "root_pct_of_distance": round(100 * float(np.mean(v["ratio"])), 1) if v["ratio"] else None,
                      "mpjpe_cam_mm": round(1000 * float(np.mean(v["mpjpe"])), 1) if v["mpjpe"] else None,
                      "foot_above_floor_mm": round(1000 * float(np.median(v["foot"])), 1) if v["foot"] else None,
                      "frames": len(v["root"])}
        if pair:
            e = np.array(pair)
            res[f"{trial} distance between the two"] = {"error_mm": round(1000 * float(e[:, 0].mean()), 1),
                                                        "error_pct": round(100 * float(e[:, 1].mean()), 1),
                                                        "frames": len(e)}
    return res


RIGS = {"hdm05": (B.ROOT / ".." / "shared" / "data" / "hdm05" / "hdm05_joints.npz", "all"),
        "bandai": (B.ROOT / ".." / "shared" / "data" / "bandai_namco" / "bandai_namco_joints.npz", "val")}
"""The mocap rigs: HDM05 (5 actors, every clip) and the Bandai-Namco val split."""

RIG_FOCAL_PX = 1400.0
"""The focal length of every rig camera in the calibrated case (the guess from the 1000 px image is 1000)."""


def score_rig(lift_dir: Path, cameras: Path) -> dict:
    """Root error, camera-frame MPJPE and the median ratio of lifted to true root depth of lifted rig tracks (``scripts/make_hdm05_tracks.py``
    side file ``cameras``) against the mocap in each clip's camera frame (canon16, metres in,
    mm out); frames without a ``transl`` (gaps) are skipped."""
    from lifting.data import load_mocap_npz

    c = np.load(cameras, allow_pickle=False)
    clips = load_mocap_npz(str(c["data"]))
    root, ratio, mpjpe, depth = [], [], [], []
    for k, tid in enumerate(c["track_ids"]):
        f = lift_dir / f"track_{int(tid):04d}.npz"
        if not f.is_file():
            continue
        d = np.load(f)
        ok = np.isfinite(d["transl"]).all(-1)
        pc = (clips.joints[d["frame_ids"][ok]].astype(np.float64) - c["position"][k]) @ c["R"][k].T
        err = np.linalg.norm(d["transl"][ok] - pc[:, 0], axis=-1)
        root += err.tolist()
        ratio += (err / np.linalg.norm(pc[:, 0], axis=-1)).tolist()
        depth += (d["transl"][ok][:, 2] / pc[:, 0, 2]).tolist()
        pred = d["joints_3d"][ok] + d["transl"][ok][:, None]
        mpjpe += np.linalg.norm(pred - pc, axis=-1).mean(-1).tolist()
    return {"root_mm": round(1000 * float(np.mean(root)), 1), "root_pct_of_distance": round(100 * float(np.mean(ratio)), 1),
            "mpjpe_cam_mm": round(1000 * float(np.mean(mpjpe)), 1),
            "depth_ratio_median": round(float(np.median(depth)), 3), "frames": len(root)}


def run_rigs(work: Path) -> dict:
    """Each rig seen by one camera per clip (5 px noise, seed 0), lifted with the defaults:
    with the true focal length (``--focal-px``, every camera at :data:`RIG_FOCAL_PX`), and with
    the guess from the image size (cameras drawn at 700-1600 px)."""
    import make_hdm05_tracks as M
    from lifting.lift import lift_file
    from lifting.options import LiftOptions

    res = {}
    for name, (data, split) in RIGS.items():
        for mode, focal in (("calibration", RIG_FOCAL_PX), ("guess", None)):
            tracks = work / f"{name}_{mode}.json"
            M.main(["--data", str(data), "-o", str(tracks), "--split", split]
                   + ([] if focal is None else ["--focal", str(focal)]))
            lift_file(tracks, work / f"{name}_{mode}", LiftOptions(max_figures=0, focal_px=focal, progress=False))
            res[f"{name} ({split} clips), {mode}"] = score_rig(work / f"{name}_{mode}", tracks.with_suffix(".cameras.npz"))
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=None)
    p.add_argument("--rigs", action="store_true", help="the HDM05 and Bandai-Namco rigs instead of Pose2Sim")
    a = p.parse_args(argv)
    if a.rigs:
        import torch

        torch.set_num_threads(1)
        with tempfile.TemporaryDirectory() as tmp:
            res = run_rigs(Path(tmp))
        print("\n| rig, intrinsics | root error mm | % of camera distance | camera-frame MPJPE mm | "
              "lifted / true depth, median | frames |\n|---|---|---|---|---|---|")
        for k, v in res.items():
            print(f"| {k} | {v['root_mm']} | {v['root_pct_of_distance']} | {v['mpjpe_cam_mm']} | "
                  f"{v['depth_ratio_median']} | {v['frames']} |")
        print("\n`python scripts/bench_place.py --rigs`")
        if a.out:
            Path(a.out).write_text(json.dumps(res, indent=1))
        return 0
    if not (B.POSE2SIM / "calib.toml").is_file():
        print(f"error: {B.POSE2SIM} not found", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        res = {mode: run(mode, Path(tmp)) for mode in ("calibration", "guess")}
    print(f"\nPose2Sim, default lift at 60 fps, root translation ({TARGETS}):\n")
    print("| intrinsics | person | root error mm | % of camera distance | camera-frame MPJPE mm (no root alignment) | "
          "lower foot above the fitted floor, median mm | frames |\n|---|---|---|---|---|---|---|")
    for mode, r in res.items():
        for p, v in r.items():
            if "root_mm" in v:
                print(f"| {mode} | {p} | {v['root_mm']} | {v['root_pct_of_distance']} | {v['mpjpe_cam_mm']} | "
                      f"{v['foot_above_floor_mm']} | {v['frames']} |")
            else:
                print(f"| {mode} | {p} | distance error {v['error_mm']} mm | {v['error_pct']} % of the distance | "
                      f"| | {v['frames']} |")
    print("\n`python scripts/bench_place.py" + (" " + " ".join(argv) if argv else "") + "`")
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
