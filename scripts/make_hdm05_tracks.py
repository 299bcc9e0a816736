"""HDM05 mocap -> single-view 2D detector-style tracks (issue 14 §3), no 3D in the output.

Each clip is seen by ONE virtual pinhole camera, drawn reproducibly from ``--seed``:
azimuth U[0, 360) deg, elevation U[-5, 30] deg (camera looking at the clip's mean pelvis
from above or slightly below), horizontal distance max(U[4, 9], R + 2) m (R = the clip's
largest horizontal pelvis excursion), focal U[700, 1600] px (or ``--focal``), principal point (500, 500),
1000 x 1000 px image. The mocap joints become the COCO-17 keypoints a detector reports
(:func:`lifting.track_data.mocap_as_coco17` on the projected joints: limbs one to one, ears
placed so the COCO-17 -> canon16 head recipe returns the projected mocap head exactly, nose
and eyes missing with confidence 0), then
Gaussian pixel noise (``--noise-px``, default 5) is added to every present keypoint, whose
confidence is 0.9.

Writes:
  * ``OUTPUT`` (COCO keypoint results + track ids, :func:`lifting.io.tracks.write_coco_tracks`):
    one track per clip, ``track_id`` = clip index, ``image_id`` = the frame's row in the
    mocap npz (clips never overlap), ``meta.fps`` = the clip rate (30).
  * ``--cameras`` (default ``OUTPUT`` with ``.cameras.npz``): per clip ``seq_names``,
    ``track_ids``, ``seq_offsets``, ``R (C, 3, 3)`` world-to-camera, ``position (C, 3)`` m,
    ``focal (C,)``, ``principal (C, 2)`` px, ``azimuth_deg``, ``elevation_deg``,
    ``distance_m``, plus ``noise_px``, ``seed``, ``data``: for 3D scoring only (a model never
    sees them).

Scoring (3D only here, after the fact): ``--score LIFT_DIR`` reads the ``track_XXXX.npz`` a
``posenet3d lift``/``adapt`` wrote for ``OUTPUT`` and reports PA-MPJPE and N-MPJPE (mm,
root-relative, canon16, camera frame of each clip's camera, every lifted frame) against the
mocap (:func:`score`).

Usage::

    python scripts/make_hdm05_tracks.py -o hdm05_tracks.json \
        [--data ../shared/data/hdm05/hdm05_joints.npz] [--noise-px 5] [--seed 0]
    python scripts/make_hdm05_tracks.py -o hdm05_tracks.json --score LIFT_DIR
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from lifting.camera import RIG_PRINCIPAL, RIG_SIZE, Cameras, look_at
from lifting.io.fileio import atomic_write
from lifting.io.tracks import Track, TrackSet, write_coco_tracks
from lifting.skeletons import MOCAP21
from lifting.track_data import mocap_as_coco17

CONFIDENCE = 0.9


def clip_camera(clip: np.ndarray, rng: np.random.Generator, focal: float | None = None) -> tuple[Cameras, dict]:
    """One random camera for a clip ``(T, 21, 3)`` (metres, Y up); returns it and its draws.
    ``focal`` (pixels) fixes the focal length (the draw is still made: the other draws are
    the same as without it)."""
    pelvis = clip[:, MOCAP21.root_index]
    centre = pelvis.mean(0)
    radius = float(np.linalg.norm(pelvis[:, [0, 2]] - centre[[0, 2]], axis=-1).max())
    az, elev = rng.uniform(0.0, 360.0), rng.uniform(-5.0, 30.0)
    d = max(rng.uniform(4.0, 9.0), radius + 2.0)
    a = np.deg2rad(az)
    pos = centre + np.array([d * np.sin(a), d * np.tan(np.deg2rad(elev)), d * np.cos(a)])
    f = rng.uniform(700.0, 1600.0)
    cam = Cameras(look_at(pos[None], centre[None]), pos[None], np.array([f if focal is None else float(focal)]),
                  np.asarray(RIG_PRINCIPAL, np.float64)[None])
    return cam, {"azimuth_deg": az, "elevation_deg": elev, "distance_m": d}


def make_tracks(joints: np.ndarray, seq_offsets: np.ndarray, noise_px: float, seed: int,
                focal: float | None = None, clips: np.ndarray | None = None):
    """Single-view COCO-17 tracks of every clip (or of the clip indices ``clips``):
    ``(tracks, cameras dict of per-clip arrays)``; ``focal`` fixes every camera's focal length."""
    rng = np.random.default_rng(seed)
    keep = None if clips is None else set(int(k) for k in clips)
    tracks, cams = [], {k: [] for k in ("R", "position", "focal", "principal", "azimuth_deg", "elevation_deg",
                                        "distance_m")}
    for k, (a, b) in enumerate(zip(seq_offsets[:-1], seq_offsets[1:])):
        if b <= a or (keep is not None and k not in keep):
            continue
        clip = joints[a:b].astype(np.float64)
        cam, draws = clip_camera(clip, rng, focal)
        px, present = mocap_as_coco17(cam.project(clip)[0])  # (T, 17, 2): ears built in the image
        px = px + rng.normal(0.0, noise_px, px.shape) * present[None, :, None]
        px[:, ~present] = 0.0
        conf = np.broadcast_to(np.where(present, CONFIDENCE, 0.0), px.shape[:-1])
        lo, hi = px[:, present].min(1), px[:, present].max(1)
        pad = 0.1 * (hi - lo)
        bbox = np.concatenate([lo - pad, hi - lo + 2 * pad], -1)
        tracks.append(Track(k, np.arange(a, b), np.concatenate([px, conf[..., None]], -1), bbox, np.ones(b - a)))
        for key, v in (("R", cam.R[0]), ("position", cam.position[0]), ("focal", cam.focal[0]),
                       ("principal", cam.principal[0])):
            cams[key].append(v)
        for key, v in draws.items():
            cams[key].append(v)
    return tracks, {k: np.asarray(v) for k, v in cams.items()}


def score(lift_dir: str | Path, cameras: str | Path) -> dict:
    """PA-MPJPE / N-MPJPE (mm) of lifted tracks against the mocap seen by the saved cameras.

    Raises:
        FileNotFoundError: no camera file or no lifted track in ``lift_dir``.
    """
    import torch

    from lifting.data import load_mocap_npz
    from lifting.metrics import n_mpjpe, pa_mpjpe

    c = np.load(cameras, allow_pickle=False)
    clips = load_mocap_npz(str(c["data"]))
    pa, nm = [], []
    for k, tid in enumerate(c["track_ids"]):
        f = Path(lift_dir) / f"track_{int(tid):04d}.npz"
        if not f.is_file():
            continue
        d = np.load(f)
        pc = (clips.joints[d["frame_ids"]].astype(np.float64) - c["position"][k]) @ c["R"][k].T
        gt = torch.from_numpy(pc - pc[:, :1])
        pred = torch.from_numpy(d["joints_3d"]).double()
        pa.append(pa_mpjpe(pred, gt))
        nm.append(n_mpjpe(pred, gt))
    if not pa:
        raise FileNotFoundError(f"{lift_dir}: no track_XXXX.npz of the tracks in {cameras}")
    pa, nm = torch.cat(pa), torch.cat(nm)
    return {"frames": int(len(pa)), "pa_mpjpe_mm": round(1000 * float(pa.mean()), 1),
            "n_mpjpe_mm": round(1000 * float(nm.mean()), 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "hdm05"
                                          / "hdm05_joints.npz"), help="mocap npz in the shared format")
    p.add_argument("-o", "--output", required=True, help="COCO results JSON to write")
    p.add_argument("--cameras", default=None, help="camera side file (default OUTPUT.cameras.npz)")
    p.add_argument("--noise-px", type=float, default=5.0, help="Gaussian 2D noise sigma in pixels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--focal", type=float, default=None, help="one focal length (px) for every camera "
                   "(default: drawn per clip, U[700, 1600])")
    p.add_argument("--split", default="all", help="only the clips of this split (lifting.data.split_clips: "
                   "train, val, test, all)")
    p.add_argument("--score", default=None, metavar="LIFT_DIR", help="score lifted tracks of OUTPUT instead of writing")
    a = p.parse_args(argv)
    if a.score:
        side = Path(a.cameras) if a.cameras else Path(a.output).with_suffix(".cameras.npz")
        print(score(a.score, side))
        return 0
    if not a.noise_px >= 0:
        print(f"error: --noise-px must be >= 0, got {a.noise_px}", file=sys.stderr)
        return 2
    data = np.load(a.data, allow_pickle=False)
    names = [str(n) for n in data["joint_names"]]
    if tuple(names) != MOCAP21.joint_names:
        print(f"error: {a.data}: joints {names} are not the mocap21 layout", file=sys.stderr)
        return 2
    joints, offsets, seq_names = data["joints"], data["seq_offsets"], data["seq_names"].astype(str)
    fps = float(np.median(data["fps"])) if "fps" in data.files else 30.0
    from lifting.data import split_clips

    tracks, cams = make_tracks(joints, offsets, a.noise_px, a.seed, a.focal, split_clips(seq_names, a.split))
    out = Path(a.output)
    meta = {"video": f"{Path(a.data).name}, one virtual camera per clip", "frames": int(offsets[-1]),
            "detector": f"synthetic: mocap -> COCO-17 (face missing), {a.noise_px:g} px Gaussian noise, seed {a.seed}"
                        + ("" if a.focal is None else f", focal {a.focal:g} px") + f", {a.split} clips"}
    write_coco_tracks(TrackSet(tracks, fps, "coco17", RIG_SIZE, "", meta=meta), out)
    side = Path(a.cameras) if a.cameras else out.with_suffix(".cameras.npz")
    kept = np.array([t.track_id for t in tracks])
    atomic_write(side, lambda tmp: np.savez(tmp, seq_names=seq_names[kept], track_ids=kept,
                                            seq_offsets=offsets, noise_px=a.noise_px, seed=a.seed,
                                            data=str(a.data), **cams))
    n = sum(len(t) for t in tracks)
    print(f"{len(tracks)} tracks, {n} person-frames -> {out}; cameras -> {side}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
