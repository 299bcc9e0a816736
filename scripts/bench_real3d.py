"""Real detector 2D, real 3D: the Pose2Sim benchmark (issue 20 §1).

``../shared/data/pose2sim`` holds raw OpenPose ``--write_json`` folders (BODY_25B, untracked,
spurious detections) of 4 calibrated portrait cameras ~3 m from the people, and the 3D that
Pose2Sim triangulated from all 4 views (TRC, metres, 60 fps). Each camera folder is lifted
exactly as a user would (:func:`lifting.lift.lift_file` = ``posenet3d lift FOLDER -o OUT``: no
``--format``; ``--fps`` only where a row says so), every lifted frame of every output track is
matched to the person whose projected 3D lies nearest its 2D (median joint distance under
:data:`MATCH_FRACTION` of that person's 2D height), and the lift is scored against that person
in the camera's frame on the joints both have (:data:`JOINTS`; pelvis = mid-hip, both sides):

* PA-MPJPE (similarity Procrustes per frame, Umeyama TPAMI 1991);
* N-MPJPE (root-aligned, optimal scale, Rhodin et al. CVPR 2018);
* MPJPE after root alignment (mm).

Beside each person: the *no-depth floor*, the same detector 2D (observed joints) back-projected
at the true root depth (every joint at one depth, no depth information), scored the same way,
and the 2D agreement of the lift with its own input (:func:`lifting.metrics.reprojection_residual`:
RMS px of a per-frame 2D scale + shift from the lift's x, y onto the observed keypoints, as a
fraction of the person's 2D height).

Per person-trial (``balancing``, ``two_people`` P1 and P2; P2 is the balancing person again):
mean over its matched frames of all 4 cameras; ``mean`` is the mean of the three.

Usage::

    python scripts/bench_real3d.py [NAME=CKPT ...] [--fps 60] [--work DIR] [--out res.json]

``NAME=CKPT``: a checkpoint file, a bundled name (``teacher``, ``teacher_single``,
``student``) or ``default`` (no ``--checkpoint``); ``NAME=CKPT@fps60`` lifts that row with
``--fps 60``; suffixes ``+fit`` / ``+nofit`` add ``--fit track`` / ``--fit none`` (the per-track
test-time fit), ``+flip`` / ``+noflip`` ``--flip`` / ``--no-flip``, ``+sampled`` / ``+flipstd``
``--uncertainty sampled`` / ``flip``; other options are the defaults except that the
uncertainty is off unless a row asks for it. Without any: the default command, it at
``--fps 60``, and the bundled models.

A row with an uncertainty also gets the per-joint check of ``joints_3d_std`` against the
real error (the 12 non-root joints of :data:`JOINTS`; error after Procrustes alignment of the
frame, the std times the frame's Procrustes scale, as ``scripts/bench_uncertainty.py`` does on
Bandai-Namco): Spearman over all joints and over the joint types' means, RMS error / RMS std,
and the fraction of joints within 1 and 2 stds, all persons and cameras pooled.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
import tomllib
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
POSE2SIM = ROOT / ".." / "shared" / "data" / "pose2sim"
#: (trial folder, TRC files of its people: (label, file name))
TRIALS = (("balancing", (("balancing", "S00_P00_T01_BalancingTrial_0-100.trc"),)),
          ("two_people", (("two_people P1", "S00_P01_T02_Participants1-2_P1_0-100.trc"),
                          ("two_people P2", "S00_P01_T02_Participants1-2_P2_0-100.trc"))))
CAMS = ("cam01", "cam02", "cam03", "cam04")
#: canon16 joint -> TRC marker(s) averaged; the joints both sides have
JOINTS = {"pelvis": ("RHip", "LHip"), "r_hip": ("RHip",), "r_knee": ("RKnee",), "r_ankle": ("RAnkle",),
          "l_hip": ("LHip",), "l_knee": ("LKnee",), "l_ankle": ("LAnkle",), "l_shoulder": ("LShoulder",),
          "l_elbow": ("LElbow",), "l_wrist": ("LWrist",), "r_shoulder": ("RShoulder",), "r_elbow": ("RElbow",),
          "r_wrist": ("RWrist",)}
#: a lifted frame belongs to a person when the median 2D distance of its observed joints to
#: that person's projected 3D is below this fraction of the person's 2D height
MATCH_FRACTION = 0.25
TARGETS = ("issue 20 targets: default command <= 75 mm mean PA-MPJPE and >= 30 % under the floor "
           "for every person")


def read_calibration(path: Path) -> dict[str, dict]:
    """Pose2Sim ``calib.toml`` -> ``{cam01: {K (3, 3), R (3, 3), t (3,) metres, size (W, H)}}``
    (world -> camera: ``x_cam = R x_world + t``; ``rotation`` is a Rodrigues vector).

    Raises:
        FileNotFoundError, tomllib.TOMLDecodeError, KeyError: missing or malformed file."""
    import roma

    cal = tomllib.loads(Path(path).read_text())
    out = {}
    for key, c in cal.items():
        if not key.startswith("cam_"):
            continue
        rot = roma.rotvec_to_rotmat(torch.tensor(c["rotation"], dtype=torch.float64)).numpy()
        out["cam" + key[4:]] = {"K": np.asarray(c["matrix"], float), "R": rot,
                                "t": np.asarray(c["translation"], float), "size": tuple(c["size"])}
    return out


def read_trc(path: Path) -> dict[str, np.ndarray]:
    """A TRC file -> ``{marker: (T, 3)}`` in the calibration's world frame, metres (the TRC is
    Y-up with columns (X, Y, Z) = world (Y, Z, X): world = TRC[..., (2, 0, 1)]).

    Raises:
        ValueError: a header without marker names or rows of the wrong width."""
    lines = Path(path).read_text().splitlines()
    names = [n for n in lines[3].split("\t")[2:] if n.strip()]
    rows = np.array([[float(v) for v in ln.split("\t")[2:2 + 3 * len(names)]] for ln in lines[5:] if ln.strip()])
    if rows.ndim != 2 or rows.shape[1] != 3 * len(names) or not names:
        raise ValueError(f"{path}: expected {len(names)} markers x 3 columns per row")
    xyz = rows.reshape(len(rows), len(names), 3)[..., (2, 0, 1)]
    return {n: xyz[:, i] for i, n in enumerate(names)}


def person_in_camera(markers: dict[str, np.ndarray], cam: dict) -> tuple[np.ndarray, np.ndarray]:
    """The :data:`JOINTS` of one person in a camera: ``(T, 13, 3)`` metres camera frame and
    ``(T, 13, 2)`` pinhole pixels (lens distortion, < 1 px here, ignored)."""
    world = np.stack([np.mean([markers[m] for m in ms], axis=0) for ms in JOINTS.values()], axis=1)
    x_cam = world @ cam["R"].T + cam["t"]
    uv = x_cam @ cam["K"].T
    return x_cam, uv[..., :2] / uv[..., 2:]


def no_depth(kp: np.ndarray, depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Back-project pixels ``kp (T, J, 2)`` at one depth per frame ``depth (T,)`` metres:
    ``(T, J, 3)`` camera frame, root-relative (joint 0 = pelvis at 0)."""
    x = (kp[..., 0] - K[0, 2]) / K[0, 0] * depth[:, None]
    y = (kp[..., 1] - K[1, 2]) / K[1, 1] * depth[:, None]
    pts = np.stack([x, y, np.broadcast_to(depth[:, None], x.shape)], axis=-1)
    return pts - pts[:, :1]


def lift_folder(ckpt: str | None, folder: Path, dest: Path, fps: float | None, opts: dict | None = None) -> list[dict]:
    """``posenet3d lift folder -o dest`` with ``--checkpoint ckpt`` (and ``--fps``, and the
    :class:`lifting.options.LiftOptions` fields ``opts`` such as ``fit``/``flip`` when given);
    returns every track's arrays (``frame_ids``, ``joints_3d``, ``keypoints_2d``, ``mask``)."""
    from lifting.lift import lift_file
    from lifting.options import LiftOptions

    settings = dict(max_figures=0, progress=False, overwrite=True, uncertainty="off") | dict(opts or {})
    lift_file(folder, dest, LiftOptions(checkpoint=ckpt, fps=fps, **settings))
    tracks = []
    for f in sorted(Path(dest).glob("track_*.npz")):
        with np.load(f) as d:
            tracks.append({k: d[k] for k in ("frame_ids", "joints_3d", "keypoints_2d", "mask", "transl",
                                              "joints_3d_std")
                           if k in d.files})
    return tracks


def matched_frames(track: dict, uv: np.ndarray) -> np.ndarray:
    """Indices into ``track`` (``frame_ids``, canon16 ``keypoints_2d`` and ``mask``) of the frames
    whose observed :data:`JOINTS` lie, in the median, within :data:`MATCH_FRACTION` of the
    person's 2D height of that person's projected 3D ``uv (T, 13, 2)``."""
    from lifting.skeletons import CANON16

    idx = [CANON16.joint_names.index(j) for j in JOINTS]
    frames = track["frame_ids"].astype(int)
    ok = np.flatnonzero(frames < len(uv))
    f = frames[ok]
    d = np.where(track["mask"][ok][:, idx], np.linalg.norm(track["keypoints_2d"][ok][:, idx] - uv[f], axis=-1), np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # frames with no observed joint: no match
        near = np.nanmedian(d, axis=1) < MATCH_FRACTION * np.ptp(uv[f, :, 1], axis=1)
    return ok[near]


def score_camera(tracks: list[dict], people: dict[str, np.ndarray], cam: dict) -> dict[str, dict[str, list]]:
    """Match every lifted frame to a person and score it; returns per person lists of
    per-frame ``pa``, ``n``, ``mpjpe``, ``floor`` (metres) and ``resid`` (fraction of height)."""
    from lifting.metrics import mpjpe, n_mpjpe, pa_mpjpe, procrustes_align, procrustes_fit, reprojection_residual
    from lifting.skeletons import CANON16

    idx = [CANON16.joint_names.index(j) for j in JOINTS]
    gt = {p: person_in_camera(m, cam) for p, m in people.items()}
    out = {p: {"pa": [], "n": [], "mpjpe": [], "floor": [], "resid": [], "std": [], "err": []} for p in people}
    for tr in tracks:
        frames = tr["frame_ids"].astype(int)
        kp, mask, j3 = tr["keypoints_2d"][:, idx], tr["mask"][:, idx], tr["joints_3d"][:, idx]
        resid = reprojection_residual(tr["joints_3d"], tr["keypoints_2d"], tr["mask"])
        for p, (x_cam, uv) in gt.items():
            sel = matched_frames(tr, uv)
            if not len(sel):
                continue
            target = torch.from_numpy(x_cam[frames[sel]] - x_cam[frames[sel], :1])
            pred = torch.from_numpy(j3[sel].astype(np.float64))
            floor = torch.from_numpy(no_depth(kp[sel].astype(np.float64), x_cam[frames[sel], 0, 2], cam["K"]))
            m = torch.from_numpy(mask[sel])
            out[p]["pa"] += pa_mpjpe(pred, target).tolist()
            out[p]["n"] += n_mpjpe(pred, target).tolist()
            out[p]["mpjpe"] += mpjpe(pred, target).tolist()
            out[p]["floor"] += pa_mpjpe(floor, target, m).tolist()
            out[p]["resid"] += resid[sel].tolist()
            if "joints_3d_std" in tr:  # per-joint std (in the truth's metres) and PA error, root left out
                err = (procrustes_align(pred, target) - target).norm(dim=-1).numpy()[:, 1:]
                scale = procrustes_fit(pred, target)[1].numpy()[:, None]
                out[p]["std"] += list(tr["joints_3d_std"][sel][:, idx[1:]] * scale)
                out[p]["err"] += list(err)
    return out


def run_model(ckpt: str | None, work: Path, fps: float | None = None, opts: dict | None = None) -> dict:
    """Lift every camera folder with ``ckpt`` and score it; per person mean mm (``pa_mpjpe``,
    ``n_mpjpe``, ``mpjpe``, ``floor_pa_mpjpe``), ``resid_pct`` (median), ``frames`` matched of
    ``frames_gt`` (100 per camera)."""
    cal = read_calibration(POSE2SIM / "calib.toml")
    res, stds, errs = {}, [], []
    for trial, people_files in TRIALS:
        people = {label: read_trc(POSE2SIM / trial / f) for label, f in people_files}
        acc = {p: {"pa": [], "n": [], "mpjpe": [], "floor": [], "resid": [], "std": [], "err": []} for p in people}
        n_gt = 0
        for cam in CAMS:
            tracks = lift_folder(ckpt, POSE2SIM / trial / cam, work / trial / cam, fps, opts)
            n_gt += len(next(iter(people.values()))["RHip"])
            for p, v in score_camera(tracks, people, cal[cam]).items():
                for k in v:
                    acc[p][k] += v[k]
        for p, v in acc.items():
            mm = lambda k: round(1000 * float(np.mean(v[k])), 1) if v[k] else None  # noqa: E731
            res[p] = {"pa_mpjpe": mm("pa"), "n_mpjpe": mm("n"), "mpjpe": mm("mpjpe"), "floor_pa_mpjpe": mm("floor"),
                      "resid_pct": round(100 * float(np.median(v["resid"])), 2) if v["resid"] else None,
                      "frames": len(v["pa"]), "frames_gt": n_gt}
        stds += v["std"]
        errs += v["err"]
    vals = [r["pa_mpjpe"] for r in res.values()]
    floors = [r["floor_pa_mpjpe"] for r in res.values()]
    res["mean"] = {"pa_mpjpe": round(float(np.mean(vals)), 1) if None not in vals else None,
                   "n_mpjpe": round(float(np.mean([r["n_mpjpe"] for r in res.values()])), 1) if None not in vals else None,
                   "mpjpe": round(float(np.mean([r["mpjpe"] for r in res.values()])), 1) if None not in vals else None,
                   "floor_pa_mpjpe": round(float(np.mean(floors)), 1) if None not in floors else None}
    if stds:
        res["mean"]["uncertainty"] = uncertainty_check(np.array(stds), np.array(errs))
    return res


def uncertainty_check(std: np.ndarray, err: np.ndarray) -> dict:
    """``std``, ``err`` ``(M, 12)`` metres (frames x non-root joints) -> Spearman over all joints
    and over the joint types' means, RMS err / RMS std, fractions within 1 and 2 stds, means (mm)."""
    from scipy.stats import spearmanr

    s, e = std.ravel(), err.ravel()
    return {"spearman": round(float(spearmanr(s, e)[0]), 3),
            "joint_spearman": round(float(spearmanr(std.mean(0), err.mean(0))[0]), 2),
            "rms_ratio": round(float(np.sqrt((e ** 2).mean() / (s ** 2).mean())), 2),
            "within1": round(float((e <= s).mean()), 3), "within2": round(float((e <= 2 * s).mean()), 3),
            "mean_std_mm": round(1000 * float(s.mean()), 1), "mean_err_mm": round(1000 * float(e.mean()), 1),
            "joints": int(e.size)}


def _parse(specs: list[str]) -> dict[str, tuple[str | None, float | None, dict]]:
    models = {}
    for s in specs:
        name, sep, ckpt = s.partition("=")
        if not sep or not name or not ckpt:
            raise ValueError(f"model {s!r}: expected NAME=CHECKPOINT[@fpsN][+fit][+flip]")
        ckpt, *extras = ckpt.split("+")
        bad = set(extras) - {"fit", "flip", "noflip", "nofit", "sampled", "flipstd"}
        if bad:
            raise ValueError(f"model {s!r}: unknown suffix {sorted(bad)} (+fit, +flip, +nofit, +noflip, +sampled, "
                             f"+flipstd)")
        ckpt, _, fps = ckpt.partition("@fps")
        opts = {k: v for k, v in (("fit", "track" if "fit" in extras else "none" if "nofit" in extras else None),
                                  ("flip", True if "flip" in extras else False if "noflip" in extras else None),
                                  ("uncertainty", "sampled" if "sampled" in extras else "flip" if "flipstd" in extras
                                   else None))
                if v is not None}
        models[name] = (ckpt if ckpt != "default" else None, float(fps) if fps else None, opts)
    return models or {"default command": (None, None, {}), "default --fps 60": (None, 60.0, {}),
                      "teacher_single": ("teacher_single", None, {}), "student": ("student", None, {})}


def table(rows: dict[str, dict]) -> str:
    """Markdown: PA-MPJPE per person (floor in brackets), mean PA / N / root-aligned MPJPE, 2D residual."""
    persons = [p for p in next(iter(rows.values())) if p != "mean"]
    head = "| model | " + " | ".join(f"{p} PA (floor)" for p in persons) + \
        " | mean PA-MPJPE | mean N-MPJPE | mean MPJPE | 2D residual % height | frames matched |"
    lines = [head, "|" + "---|" * (len(persons) + 6)]
    for label, r in rows.items():
        cells = [f"{r[p]['pa_mpjpe']} ({r[p]['floor_pa_mpjpe']})" for p in persons]
        resid = "/".join(str(r[p]["resid_pct"]) for p in persons)
        frames = "/".join(f"{r[p]['frames']}" for p in persons) + f" of {r[persons[0]]['frames_gt']}"
        m = r["mean"]
        lines.append(f"| {label} | " + " | ".join(cells) +
                     f" | **{m['pa_mpjpe']}** | {m['n_mpjpe']} | {m['mpjpe']} | {resid} | {frames} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="*", help="NAME=CHECKPOINT[@fpsN][+fit][+flip] ('default' = the default command)")
    p.add_argument("--work", default=None, help="keep the lifts in this folder (default: a temporary one)")
    p.add_argument("--out", default=None, help="write the numbers to this JSON file")
    a = p.parse_args(argv)
    if not (POSE2SIM / "calib.toml").is_file():
        print(f"error: {POSE2SIM} not found (the shared Pose2Sim data)", file=sys.stderr)
        return 2
    try:
        models = _parse(a.models)
    except ValueError as e:
        p.error(str(e))
    torch.set_num_threads(1)
    rows = {}
    with tempfile.TemporaryDirectory(prefix="bench_real3d_") as tmp:
        for name, (ckpt, fps, opts) in models.items():
            t0 = time.perf_counter()
            rows[name] = run_model(ckpt, Path(a.work or tmp) / name.replace(" ", "_"), fps, opts)
            print(f"[{name}] {json.dumps(rows[name]['mean'])} ({time.perf_counter() - t0:.0f} s)", flush=True)
    cmd = "python scripts/bench_real3d.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    print(f"\nPose2Sim real OpenPose BODY_25B, 4 cameras, PA-MPJPE mm ({TARGETS}):\n")
    print(table(rows))
    checked = {k: r["mean"]["uncertainty"] for k, r in rows.items() if "uncertainty" in r["mean"]}
    if checked:
        print("\njoints_3d_std against the real per-joint PA error (12 non-root joints, all persons and cameras):\n")
        print("| row | Spearman | per-joint-type Spearman | RMS err / RMS std | err <= 1 std | err <= 2 std | "
              "mean std mm | mean err mm | joints |\n|---|---|---|---|---|---|---|---|---|")
        for k, u in checked.items():
            print(f"| {k} | {u['spearman']} | {u['joint_spearman']} | {u['rms_ratio']} | {100 * u['within1']:.1f}% | "
                  f"{100 * u['within2']:.1f}% | {u['mean_std_mm']} | {u['mean_err_mm']} | {u['joints']} |")
    print(f"\n`{cmd}`")
    if a.out:
        Path(a.out).write_text(json.dumps({"command": cmd, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
