"""Tracking benchmark for BENCHMARKS.md ("Tracking"): strip the track ids of detections,
re-track them with :func:`lifting.io.tracking.track_detections`, and score the new ids
against the original ones with the standard MOT identity metrics of ``motmetrics``
(IDF1 / IDP / IDR, Ristani et al. ECCV-W 2016; ID switches and MOTA, Bernardin &
Stiefelhagen 2008).  Detections are fixed, so only association is scored: a hypothesis
matches the ground truth object of the *same detection* (distance 0), nothing else.

Inputs:
* a synthetic multi-person street sequence with exact ids (people crossing, missed frames and
  occlusion gaps, spurious detections; :func:`synthetic_sequence`), also used to tune the
  defaults (``--sweep``);
* a synthetic crowded broadcast with exact ids (issue 22 section 4: 14 people crossing,
  panning camera, 10 fps, and the same at 5 fps; :func:`crowded_sequence`), with the unknown
  and the known frame rate and ablations of the tracker's steps;
* the shared real tracks (their ids come from a greedy IoU tracker with gaps <= 5 frames, so
  they fragment and contain false positives: a reference, not ground truth);
* the 1 M-record large input of ``scripts/make_large_tracks.py`` for speed (detections/s) and
  peak memory of the tracking call alone (tracemalloc), with 1 thread.

    python scripts/bench_tracking.py [--real PATH] [--large PATH] [--sweep] [--crowded N]
                                     [--tracker FILE]

``--tracker FILE`` benchmarks another ``tracking.py`` (e.g. an earlier commit's) on the same
inputs, for before / after rows.

Needs the ``dev`` extra (``motmetrics``).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
import tracemalloc

import numpy as np

from lifting.io import tracking
from lifting.io.tracking import oks_sigmas
from lifting.io.readers import read_detections
from lifting.track import track
from lifting.skeletons import COCO17

DEFAULT_REAL = os.path.join("..", "shared", "data", "real_tracks", "vtest_hog_blazepose_coco17.json")
EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "lifting", "assets", "example_track.json")
FOLLOW_LO, PULL = 0.4, 0.3  # crowded case: least share of the pan people follow; pull to the view
COURT_DEPTH_M = 15.0  # crowded case: court depth seen between the far and near pelvis rows
COSTS = ("oks+iou", "oks", "iou")
METRICS = ["idf1", "idp", "idr", "num_switches", "mota", "num_false_positives", "num_misses"]


# --------------------------------------------------------------------------- data


def flatten(trackset) -> dict[str, np.ndarray]:
    """Per-detection arrays of a TrackSet: frames (N,), keypoints (N, K, 3), boxes (N, 4)
    (NaN where absent), ids (N,) = the original track ids."""
    tracks = trackset.tracks
    boxes = [t.bbox if t.bbox is not None else np.full((len(t), 4), np.nan, np.float32) for t in tracks]
    return {
        "frames": np.concatenate([t.frame_ids for t in tracks]),
        "keypoints": np.concatenate([t.keypoints for t in tracks]),
        "boxes": np.concatenate(boxes),
        "ids": np.concatenate([np.full(len(t), t.track_id, np.int64) for t in tracks]),
    }


def synthetic_sequence(seed: int = 0, n_people: int = 10, n_frames: int = 300, fps: float = 10.0,
                       size: tuple[int, int] = (768, 576)) -> dict[str, np.ndarray]:
    """A street-like scene with exact identities, modelled on the shared real tracks (10 fps,
    768 x 576 px, people 80-130 px tall).

    Each person walks at 0.3-1.0 body heights/s (3-10 % of the height per frame at 10 fps)
    mostly left-right, so paths cross, with a slowly turning heading, using the articulated
    poses of the bundled example track (scaled to the person's height).  Keypoint noise 1.5 %
    of the height; 10 % of joints dropped (confidence 0); each person-frame missed with
    probability 0.08 plus occlusion gaps of 2-6 frames (2 per person on average); people are
    detected only inside the image.  Spurious detections: on average 0.5 per frame, lasting
    1-2 frames, random pose at a random place, confidence U(0.15, 0.6), a quarter of them
    tiny (10-20 px).  Boxes = keypoint extent padded by 10 %.

    Returns:
        ``frames (N,)``, ``keypoints (N, 17, 3)`` px, ``boxes (N, 4)`` px, ``ids (N,)`` with
        the person index, ``-1`` for spurious detections.
    """
    rng = np.random.default_rng(seed)
    poses = _example_poses()  # (P, 17, 2), unit height, pelvis at the origin
    w, h = size
    rows = []
    for p in range(n_people):
        height = rng.uniform(80, 130)
        speed = rng.uniform(0.3, 1.0) * height / fps
        heading = rng.choice([0.0, np.pi]) + rng.normal(0, 0.3)
        start = rng.integers(0, n_frames // 2)
        pos = np.array([rng.uniform(0.1, 0.9) * w, rng.uniform(0.3, 0.85) * h])
        phase = rng.integers(len(poses))
        gaps = set()
        for _ in range(rng.poisson(2)):
            g0 = rng.integers(start, n_frames)
            gaps.update(range(g0, g0 + rng.integers(2, 7)))
        for t in range(start, n_frames):
            heading += rng.normal(0, 0.05)
            pos = pos + speed * np.array([np.cos(heading), 0.3 * np.sin(heading)])
            if not (0 <= pos[0] < w and 0 <= pos[1] < h) or t in gaps or rng.random() < 0.08:
                continue
            kp = _noisy(poses[(phase + t) % len(poses)] * height + pos, height, rng, conf=(0.6, 1.0))
            rows.append((t, kp, p))
    _add_spurious(rows, n_frames, 0.25, (60, 130), (0.15, 0.6), poses, (w, h), rng)  # 0.5 per frame on average
    return _pack(rows, n_frames)


def crowded_sequence(seed: int = 0, n_people: int = 14, n_frames: int = 150, fps: float = 10.0,
                     size: tuple[int, int] = (1280, 720)) -> dict[str, np.ndarray]:
    """A crowded broadcast-like scene (issue 22 section 4: a basketball broadcast, ~9 players a
    frame, low frame rate, panning camera) with exact identities.

    * Camera: pans over a court 2.2 image widths wide; its image shift (px/frame) is held for
      0.8-2.5 s, then re-drawn: 5-20 px/frame horizontally, reversing direction 60 % of the
      time, +-2 px/frame vertically; the change takes ~3 frames (each frame halves the gap to
      the new value).  It turns back at the court ends.
    * People (``n_people``, default 14: 10 players, 3 referees, a coach): move with the play
      (world velocity ``follow`` x the pan, ``follow`` U(0.4, 1), so each one's image motion
      is ``(1 - follow) x pan``, 0-60 % of the pan, plus their own) and on their own at 0.3-2.0
      body heights/s (up to 20 % of the height per frame at 10 fps) with a heading that
      wanders (+-0.1 rad/frame) and cuts (a new direction 57-180 deg away and a new speed,
      0.5 times a second on average -- basketball players change direction every 2-3 s), so
      paths cross.  They bounce off the far / near edge of the court, are pulled back towards
      the middle of the view near its edges (the camera operator frames the play) and keep
      0.8 m apart on the court (:func:`_keep_apart`; they can overlap in the image, one behind
      the other, but not stand in one spot).  Heights 80-250 px from far (top) to near
      (bottom), +-10 % per person; facing left or right with the heading (turning round only
      when clearly heading the other way); the articulated poses of the bundled example track
      (gait phase advancing with speed).
    * Detections: only people whose pelvis is in the image; joints outside the image or
      dropped at random (10 %) have confidence 0; keypoint noise 2 % of the height, joint
      confidence U(0.5, 1.0).  Missed: at random (5 %), in 2-5-frame occlusion gaps (one per
      person on average) and, with probability 0.8, when a nearer person covers >= 60 % of the
      box.  Spurious detections: 0.3 per frame on average, lasting 1-2 frames, confidence
      U(0.15, 0.5), a quarter tiny (10-20 px).  Boxes = keypoint extent padded by 10 %.

    At ``fps`` other than 10 the same motion per second is sampled at that rate (speeds and
    cut rate per second; the pan stays 5-20 px per frame).

    Returns:
        ``frames (N,)``, ``keypoints (N, 17, 3)`` px, ``boxes (N, 4)`` px ``x, y, w, h``,
        ``ids (N,)`` person index (``-1``: spurious), ``pan (n_frames, 2)`` the camera's image
        shift px/frame.
    """
    rng = np.random.default_rng(seed)
    poses = _example_poses()  # (P, 17, 2), unit height, pelvis at the origin
    w, h = size
    court_w, y_lo, y_hi = 2.2 * w, 0.32 * h, 0.78 * h  # world x range; pelvis rows far / near
    height_of = lambda y, f: f * (80.0 + 170.0 * np.clip((y - y_lo) / (y_hi - y_lo), 0, 1))  # noqa: E731
    # camera: world x of the left image edge; pan = image shift of a static point (px/frame)
    cam, pan, target, hold = rng.uniform(0, court_w - w), np.zeros(2), np.zeros(2), 0
    pans, cams = [], []
    for t in range(n_frames):
        if hold == 0:
            sign = -np.sign(target[0]) if target[0] != 0 and rng.random() < 0.6 else rng.choice([-1.0, 1.0])
            target = np.array([sign * rng.uniform(5, 20), rng.uniform(-2, 2)])
            hold = int(rng.integers(round(0.8 * fps), round(2.5 * fps) + 1))
        hold -= 1
        if (cam <= 0 and target[0] > 0) or (cam >= court_w - w and target[0] < 0):
            target[0] = -target[0]  # image shift > 0 = camera moving left
        pan = pan + 0.5 * (target - pan)
        cam = float(np.clip(cam - pan[0], 0, court_w - w))
        pans.append(pan.copy())
        cams.append(cam)
    pans, cams = np.array(pans), np.array(cams)
    cam_y = np.cumsum(pans[:, 1])  # vertical image shift of static points
    people = []
    for p in range(n_people):
        pos = np.array([cams[0] + rng.uniform(0.1, 0.9) * w, rng.uniform(y_lo, y_hi)])  # world px
        people.append(dict(pos=pos, follow=rng.uniform(FOLLOW_LO, 1.0), speed=rng.uniform(0.3, 2.0) / fps,
                           heading=rng.uniform(0, 2 * np.pi), size=rng.uniform(0.9, 1.1),
                           phase=float(rng.integers(len(poses))), gaps=set(), facing=1.0))
        for _ in range(rng.poisson(1.0)):
            g0 = int(rng.integers(0, n_frames))
            people[-1]["gaps"].update(range(g0, g0 + int(rng.integers(2, 6))))
    rows = []
    for t in range(n_frames):
        for q in people:
            hgt = height_of(q["pos"][1], q["size"])
            img = np.array([q["pos"][0] - cams[t], q["pos"][1] + cam_y[t]])
            q["heading"] += rng.normal(0, 0.1)
            if rng.random() < 0.5 / fps:  # a cut: new direction and speed, every 2 s on average
                q["heading"] += rng.choice([-1.0, 1.0]) * rng.uniform(1.0, np.pi)
                q["speed"] = rng.uniform(0.3, 2.0) / fps
            own = q["speed"] * hgt * np.array([np.cos(q["heading"]), 0.5 * np.sin(q["heading"])])
            pull = np.array([max(0.15 * w - img[0], 0) - max(img[0] - 0.85 * w, 0), 0.0]) * PULL
            q["pos"] = q["pos"] + own + pull - q["follow"] * np.array([pans[t, 0], 0.0])
            if not y_lo <= q["pos"][1] <= y_hi:  # bounce off the far / near edge of the court
                q["pos"][1] = 2 * np.clip(q["pos"][1], y_lo, y_hi) - q["pos"][1]
                q["heading"] = -q["heading"]
            q["phase"] += 1.0 + 10.0 * q["speed"]
        _keep_apart(people, height_of, (y_hi - y_lo) / COURT_DEPTH_M)
        frame = []  # (pelvis y, person, keypoints, box)
        for p, q in enumerate(people):
            hgt = height_of(q["pos"][1], q["size"])
            img = np.array([q["pos"][0] - cams[t], q["pos"][1] + cam_y[t]])
            if not (0 <= img[0] < w and 0 <= img[1] < h) or t in q["gaps"] or rng.random() < 0.05:
                continue
            if abs(np.cos(q["heading"])) > 0.3:  # turns round only when clearly heading the other way
                q["facing"] = 1.0 if np.cos(q["heading"]) > 0 else -1.0
            pose = poses[int(q["phase"]) % len(poses)] * np.array([q["facing"], 1.0])
            kp = _noisy(pose * hgt + img, hgt, rng, conf=(0.5, 1.0), noise=0.02)
            inside = (kp[:, 0] >= 0) & (kp[:, 0] < w) & (kp[:, 1] >= 0) & (kp[:, 1] < h)
            kp[~inside, 2] = 0.0
            frame.append((img[1], p, kp, _padded_boxes(kp[None, :, :])[0]))
        for y, p, kp, box in frame:  # a nearer person (larger pelvis y) covering the box hides it
            covered = max((_covered(box, b2) for y2, _, _, b2 in frame if y2 > y), default=0.0)
            if not (covered >= 0.6 and rng.random() < 0.8):
                rows.append((t, kp, p))
    _add_spurious(rows, n_frames, 0.15, (80, 250), (0.15, 0.5), poses, (w, h), rng)  # 0.3 per frame on average
    return _pack(rows, n_frames) | {"pan": pans}


def _add_spurious(rows: list, n_frames: int, rate: float, heights: tuple[float, float], conf: tuple[float, float],
                  poses: np.ndarray, size: tuple[float, float], rng) -> None:
    """Append spurious detections (id -1) to ``rows``: per frame Poisson(``rate``) of them, each
    lasting 1-2 frames, a quarter tiny (10-20 px), the others ``heights`` px tall, anywhere in
    the ``size`` (w, h) image, with low scores ``conf``."""
    for t in range(n_frames):
        for _ in range(rng.poisson(rate)):
            height = rng.uniform(10, 20) if rng.random() < 0.25 else rng.uniform(*heights)
            kp0 = poses[rng.integers(len(poses))] * height + rng.uniform([0, 0], list(size))
            for dt in range(rng.integers(1, 3)):
                rows.append((t + dt, _noisy(kp0, height, rng, conf=conf), -1))


def _pack(rows: list, n_frames: int) -> dict[str, np.ndarray]:
    """``(frame, (K, 3) keypoints, true id)`` rows within ``n_frames`` as the benchmark's arrays."""
    rows = [r for r in rows if r[0] < n_frames]
    kp = np.stack([r[1] for r in rows])
    return {"frames": np.array([r[0] for r in rows], np.int64), "keypoints": kp, "boxes": _padded_boxes(kp),
            "ids": np.array([r[2] for r in rows], np.int64)}


def _keep_apart(people: list[dict], height_of, px_per_m_depth: float, min_m: float = 0.8) -> None:
    """Two people stand at least ``min_m`` metres apart on the court: pairs closer than that
    (lateral distance in metres at their image scale, 1.9 m = body height; depth from the
    pelvis row) are pushed apart symmetrically.  Without it two people of one size could
    occupy one spot of the image, which no real crossing does."""
    for _ in range(2):
        for i in range(len(people)):
            for j in range(i + 1, len(people)):
                a, b = people[i]["pos"], people[j]["pos"]
                px_per_m = 0.5 * (height_of(a[1], people[i]["size"]) + height_of(b[1], people[j]["size"])) / 1.9
                dm = np.array([(b[0] - a[0]) / px_per_m, (b[1] - a[1]) / px_per_m_depth])
                dist = float(np.hypot(*dm))
                if dist >= min_m:
                    continue
                u = dm / dist if dist > 1e-9 else np.array([1.0, 0.0])
                push = 0.5 * (min_m - dist) * u * np.array([px_per_m, px_per_m_depth])
                people[i]["pos"], people[j]["pos"] = a - push, b + push


def _covered(box: np.ndarray, other: np.ndarray) -> float:
    """Fraction of ``box`` (x, y, w, h) covered by ``other``."""
    iw = min(box[0] + box[2], other[0] + other[2]) - max(box[0], other[0])
    ih = min(box[1] + box[3], other[1] + other[3]) - max(box[1], other[1])
    return max(iw, 0.0) * max(ih, 0.0) / max(box[2] * box[3], 1e-9)


def _example_poses() -> np.ndarray:
    """``(P, 17, 2)`` poses of the bundled example track, pelvis-centred, unit height."""
    kp = track(read_detections(EXAMPLE, "coco")).tracks[0].keypoints[..., :2].astype(np.float64)
    kp = kp - kp[:, 11:13].mean(1, keepdims=True)
    return kp / np.ptp(kp[..., 1], axis=1)[:, None, None]


def _noisy(xy: np.ndarray, height: float, rng, conf: tuple[float, float], noise: float = 0.015) -> np.ndarray:
    kp = np.empty((17, 3))
    kp[:, :2] = xy + rng.normal(0, noise * height, xy.shape)
    kp[:, 2] = rng.uniform(*conf, 17) * (rng.random(17) >= 0.1)
    return kp


def _padded_boxes(kp: np.ndarray) -> np.ndarray:
    lo, hi = kp[..., :2].min(1), kp[..., :2].max(1)
    pad = 0.1 * (hi - lo)
    return np.concatenate([lo - pad, hi - lo + 2 * pad], 1)


# --------------------------------------------------------------------------- scoring


def identity_metrics(frames: np.ndarray, gt: np.ndarray, hyp: np.ndarray) -> dict[str, float]:
    """motmetrics summary of hypothesis ids ``hyp`` against ground-truth ids ``gt`` (both
    ``(N,)`` per detection, ``-1`` = no object / no hypothesis)."""
    import motmetrics as mm

    acc = mm.MOTAccumulator(auto_id=False)
    order = np.argsort(frames, kind="stable")
    bounds = np.flatnonzero(np.r_[True, np.diff(frames[order]) != 0, True])
    for a, b in zip(bounds[:-1], bounds[1:]):
        rows = order[a:b]
        g, h = rows[gt[rows] >= 0], rows[hyp[rows] >= 0]
        dist = np.where(g[:, None] == h[None], 0.0, np.nan)  # a hypothesis is its own detection
        acc.update(gt[g].tolist(), hyp[h].tolist(), dist, frameid=int(frames[rows[0]]))
    summary = mm.metrics.create().compute(acc, metrics=METRICS, name="run")
    return {m: float(summary[m].iloc[0]) for m in METRICS}


def load_tracker(path: str | None):
    """The tracking module to benchmark: :mod:`lifting.io.tracking`, or the ``tracking.py`` at
    ``path`` (e.g. an earlier commit's, ``git show COMMIT:lifting/io/tracking.py > before.py``,
    for before / after rows on the same inputs)."""
    if path is None:
        return tracking
    spec = importlib.util.spec_from_file_location("tracking_under_test", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def score(data: dict, tracker=tracking, fps: float | None = None, **options) -> dict:
    """Track ``data`` (ids stripped) with ``tracker.track_detections`` and
    ``tracker.TrackerConfig(**options)`` (``fps`` passed only when given) and score it:
    :func:`identity_metrics`, ``unassigned`` (fraction of the true people's detections the
    tracker left without a track: filtered, duplicate or never confirmed), ``n_tracks`` and
    ``n_gt``."""
    kw = {} if fps is None else {"fps": fps}
    res = tracker.track_detections(data["frames"], data["keypoints"], oks_sigmas(COCO17.joint_names), data["boxes"],
                                   tracker.TrackerConfig(**options), **kw)
    person = data["ids"] >= 0
    return {**identity_metrics(data["frames"], data["ids"], res.track_ids), "n_tracks": res.stats["n_tracks"],
            "n_gt": len(set(data["ids"][person].tolist())),
            "unassigned": float((res.track_ids[person] < 0).mean())}


def table(rows: list[tuple[str, dict]]) -> str:
    head = ("| input | tracker | IDF1 | IDP | IDR | ID sw. | MOTA | FP | FN | unassigned | tracks (GT) |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for name, m in rows:
        lines.append(f"| {name} | {100 * m['idf1']:.1f} | {100 * m['idp']:.1f} | {100 * m['idr']:.1f} | "
                     f"{m['num_switches']:.0f} | {100 * m['mota']:.1f} | {m['num_false_positives']:.0f} | "
                     f"{m['num_misses']:.0f} | {100 * m['unassigned']:.1f} % | {m['n_tracks']} ({m['n_gt']}) |")
    return "\n".join(lines)


def implausible_steps(data: dict, ids: np.ndarray, limits: tuple[float, ...] = (0.2, 0.3, 0.5)) -> list[int]:
    """Number of steps between consecutive detections of one track (ids ``(N,)``, -1 = none)
    longer than each limit, in box heights per frame (keypoint centre; pedestrians at 10 fps
    move ~0.1): a check of track identity that needs no ground truth."""
    kp, frames, height = data["keypoints"], data["frames"], data["boxes"][:, 3]
    vis = kp[..., 2] > 0.3
    centre = np.where(vis[..., None], kp[..., :2], 0).sum(1) / np.maximum(vis.sum(1), 1)[:, None]
    order = np.lexsort((frames, ids))
    same = (ids[order][1:] == ids[order][:-1]) & (ids[order][1:] >= 0)
    a, b = order[:-1][same], order[1:][same]
    speed = np.hypot(*(centre[b] - centre[a]).T) / height[a] / np.maximum(frames[b] - frames[a], 1)
    return [int((speed > x).sum()) for x in limits]


def concatenate(parts: list[dict], stride: int) -> dict[str, np.ndarray]:
    """Sequences back to back: sequence ``k`` moved ``k * stride`` frames on (leave >= 50
    empty frames between them so no track survives from one to the next) and its ids
    ``k * 1000`` on."""
    moved = [{**d, "frames": d["frames"] + stride * k, "ids": np.where(d["ids"] >= 0, d["ids"] + 1000 * k, -1)}
             for k, d in enumerate(parts)]
    return {key: np.concatenate([m[key] for m in moved]) for key in ("frames", "keypoints", "boxes", "ids")}


def synthetic_benchmark(seeds: range) -> dict[str, np.ndarray]:
    """Several :func:`synthetic_sequence` runs back to back (:func:`concatenate`, 350 frames apart)."""
    return concatenate([synthetic_sequence(seed=s) for s in seeds], 350)


def crowded_benchmark(seeds: range, fps: float = 10.0) -> dict[str, np.ndarray]:
    """Several :func:`crowded_sequence` runs back to back (:func:`concatenate`, 200 frames apart)."""
    return concatenate([crowded_sequence(seed=s, fps=fps) for s in seeds], 200)


def sweep(data: dict) -> str:
    """IDF1 / ID switches over the OKS gate and max_missed (the OKS cost's defaults)."""
    gates, misses = (0.05, 0.1, 0.2, 0.3, 0.5), (3, 5, 10, 20)
    lines = ["| min_similarity \\ max_missed | " + " | ".join(map(str, misses)) + " |",
             "|---|" + "---|" * len(misses)]
    for g in gates:
        cells = []
        for mm_ in misses:
            m = score(data, cost="oks", min_similarity=g, max_missed=mm_)
            cells.append(f"{100 * m['idf1']:.1f} / {m['num_switches']:.0f}")
        lines.append(f"| {g} | " + " | ".join(cells) + " |")
    return "IDF1 % / ID switches, synthetic, cost oks\n\n" + "\n".join(lines)


def gate_sweep(inputs: dict[str, dict]) -> str:
    """IDF1 % / ID switches / unassigned % of the default cost (the OKS + IoU mean) over its gate
    ``min_similarity``, per input (the default gate is picked on this)."""
    gates = (0.1, 0.15, 0.2, 0.25, 0.3, 0.4)
    lines = ["| input \\ min_similarity | " + " | ".join(map(str, gates)) + " |", "|---|" + "---|" * len(gates)]
    for name, data in inputs.items():
        cells = []
        for g in gates:
            m = score(data, min_similarity=g)
            cells.append(f"{100 * m['idf1']:.1f} / {m['num_switches']:.0f} / {100 * m['unassigned']:.1f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "IDF1 % / ID switches / unassigned %, cost oks+iou\n\n" + "\n".join(lines)


def speed(path: str, costs: tuple[str, ...] = ("oks+iou",), tracker=tracking, traced: bool = True) -> str:
    """Time and peak traced memory (tracemalloc) of tracking the large input with its ids
    stripped (the ids are read but never passed to the tracker), per cost; ``traced=False``
    times it without tracemalloc (which slows every Python-level allocation down).  No
    identity metrics.  Give the ``--tracked`` variant of ``scripts/make_large_tracks.py``
    (an untracked file is tracked once more while reading it).  Before issue 23 the generator
    made 100 jittered copies of one track within +-200 px (identity ill-posed); it now spreads
    100 people over the frame."""
    t0 = time.perf_counter()
    data = flatten(track(read_detections(path, "coco")))
    t_read = time.perf_counter() - t0
    sig = oks_sigmas(COCO17.joint_names)
    n = len(data["frames"])
    out = []
    for cost in costs:
        if traced:
            tracemalloc.start()
        t0 = time.perf_counter()
        res = tracker.track_detections(data["frames"], data["keypoints"], sig, data["boxes"],
                                       tracker.TrackerConfig(cost=cost))
        dt = time.perf_counter() - t0
        memory = f"{tracemalloc.get_traced_memory()[1] / 2**20:.0f} MiB" if traced else "(untraced)"
        tracemalloc.stop()
        out.append(f"| large input, {n:,} detections, {len(np.unique(data['frames'])):,} frames | {cost} | {dt:.1f} s | "
                   f"{n / dt:,.0f} | {memory} | {res.stats['n_tracks']} |")
    head = ("| input | tracker | time (tracking only) | detections/s | peak traced memory (tracking) | tracks |\n"
            "|---|---|---|---|---|---|")
    return f"(reading {path}: {t_read:.1f} s)\n\n" + head + "\n" + "\n".join(out)


#: Crowded-case ablations: each switches one step of the tracker off (fields of TrackerConfig).
ABLATIONS = {
    "no camera-motion compensation": {"camera_motion": False},
    "no re-identification tolerance": {"reid_growth": 0.0},
    "no tracklet linking": {"link_tracklets": False},
    "none of the three": {"camera_motion": False, "reid_growth": 0.0, "link_tracklets": False},
}


def crowded_rows(tracker, n: int, first: int = 0) -> list[tuple[str, dict]]:
    """Identity rows of the crowded case (seeds ``first .. first + n - 1``): 10 fps and 5 fps,
    frame rate unknown (a file without one) and known (the track step passes it); ablations at 10 fps (only for a
    tracker that has those options)."""
    rows = []
    fields = getattr(tracker.TrackerConfig, "__dataclass_fields__", {})
    seeds = f", seeds {first}-{first + n - 1}" if first else ""
    for fps in (10.0, 5.0):
        data = crowded_benchmark(range(first, first + n), fps)
        name = f"crowded panning ({n} x 150 frames, {fps:g} fps{seeds})"
        rows.append((f"{name} | defaults, fps unknown", score(data, tracker)))
        if "fps" in fields:
            rows.append((f"{name} | defaults, fps={fps:g}", score(data, tracker, fps=fps)))
        if fps == 10.0:
            rows += [(f"{name} | {what}", score(data, tracker, **opts)) for what, opts in ABLATIONS.items()
                     if set(opts) <= set(fields)]
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--real", default=DEFAULT_REAL, help="shared real tracks (COCO results JSON with track ids)")
    ap.add_argument("--large", default=None, help="large input from scripts/make_large_tracks.py --tracked (speed rows)")
    ap.add_argument("--seeds", type=int, default=5, help="synthetic sequences (0: only the --large speed rows)")
    ap.add_argument("--untraced", action="store_true", help="--large: time without tracemalloc (no memory figure)")
    ap.add_argument("--crowded", type=int, default=20, help="crowded panning sequences per frame rate (0: none)")
    ap.add_argument("--crowded-from", type=int, default=0, metavar="SEED",
                    help="first seed of the crowded sequences (other seeds: held-out checks of the defaults)")
    ap.add_argument("--sweep", action="store_true",
                    help="also print the OKS min_similarity x max_missed sweep and the oks+iou gate sweep")
    ap.add_argument("--tracker", default=None, metavar="FILE",
                    help="benchmark this tracking.py instead of lifting.io.tracking (before / after rows)")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    print("command: python scripts/bench_tracking.py " + " ".join(sys.argv[1:] if argv is None else argv) + "\n")
    tracker = load_tracker(args.tracker)
    if args.seeds == 0:  # speed rows only
        print(speed(args.large, tracker=tracker, traced=not args.untraced) if args.large
              else "nothing to do: --seeds 0 and no --large")
        return
    synth = synthetic_benchmark(range(args.seeds))
    nobox = {**synth, "boxes": np.full_like(synth["boxes"], np.nan)}  # tracker falls back to keypoint boxes
    if args.sweep:
        print(sweep(synth) + "\n")
        inputs = {f"synthetic ({args.seeds} x 300 frames), detector boxes": synth,
                  f"synthetic ({args.seeds} x 300 frames), keypoints only": nobox}
        if args.crowded:
            inputs[f"crowded panning ({args.crowded} x 150 frames, 10 fps)"] = crowded_benchmark(range(args.crowded))
        print(gate_sweep(inputs) + "\n")
    rows = [(f"synthetic ({args.seeds} x 300 frames), detector boxes | {c}", score(synth, tracker, cost=c))
            for c in COSTS]
    rows += [(f"synthetic ({args.seeds} x 300 frames), keypoints only | {c}", score(nobox, tracker, cost=c))
             for c in COSTS]
    if os.path.exists(args.real):
        real = flatten(track(read_detections(args.real, "coco")))
        rows += [(f"real vtest (ids of a greedy IoU tracker) | {c}", score(real, tracker, cost=c)) for c in COSTS]
        ours = tracker.track_detections(real["frames"], real["keypoints"], oks_sigmas(COCO17.joint_names),
                                        real["boxes"], tracker.TrackerConfig()).track_ids
        print(f"real vtest, steps within a track faster than 0.2 / 0.3 / 0.5 box heights per frame: reference ids "
              f"{implausible_steps(real, real['ids'])}, tracker defaults {implausible_steps(real, ours)} "
              f"({int((ours >= 0).sum())} of {len(ours)} detections in {len(set(ours[ours >= 0].tolist()))} tracks)\n")
    else:
        print(f"(real tracks not found at {args.real}: skipped)")
    if args.crowded:
        rows += crowded_rows(tracker, args.crowded, args.crowded_from)
    print(table(rows) + "\n")
    if args.large:
        print(speed(args.large, tracker=tracker, traced=not args.untraced))


if __name__ == "__main__":
    main()
