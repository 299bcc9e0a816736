"""Does context help? The OCHMR claim (Khirodkar et al. CVPR 2022) measured on the shared images.

Trains (or loads) two image-branch regressors with the same backbone, data, augmentation and
step budget: with CoNorm blocks + centermaps, and without (SPIN-style baseline,
``image.use_centermaps=false``). Then evaluates both on the overlap benchmark:

* ``real_own``: real overlapping pairs (box IoU >= 0.1) from the COCO val2017 sample, the
  OCHuman and CrowdPose samples and the MMPose COCO samples; crop = the target's own box.
* ``real_other``: the same pairs, crop = the *other* person's box, target given only by the
  instance centermap (one crop, different local maps -> different people).
* ``synthetic``: every COCO val2017 sample person with a real person segment pasted over
  them (:mod:`occlusion.augment`); crop = the target's box.
* ``val_all``: every COCO val2017 sample person, no paste.

Metrics: target PCK@0.1 of the projected canonical joints (threshold 0.1 x the target box's
longer side), mean 2D error (% of that side), and the wrong-person rate (the prediction is
closer to another person in the crop than to the target).

    python scripts/bench_occlusion.py --steps 1200 --out runs/bench_occlusion
    python scripts/bench_occlusion.py --checkpoints runs/bench_occlusion/conorm/last.pt \\
        runs/bench_occlusion/baseline/last.pt          # evaluate only
    python scripts/bench_occlusion.py --variants conorm_terse --steps 1200   # TERSE placement on

Writes ``OUT/results.json`` and prints a Markdown table for BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from occlusion.data import CropSampler, load_coco_people, overlap_targets  # noqa: E402
from occlusion.regressor import load_image_regressor  # noqa: E402
from trainers.config import load_config  # noqa: E402
from trainers.image import image_batch_metrics  # noqa: E402
from trainers.loop import train  # noqa: E402

IMAGES = ROOT.parent / "shared" / "data" / "images"
REAL = ["coco_mini/annotations/person_keypoints_val2017.json", "mmpose_samples/ochuman/test_ochuman.json",
        "mmpose_samples/crowdpose/test_crowdpose.json", "mmpose_samples/coco/test_coco.json"]


#: the compared regressors (config overrides); all but conorm_other switch the other-person crops
#: off so that they keep the meaning they had in BENCHMARKS.md before those crops existed
_OWN_ONLY = ["image.other_crops=false", "image.aug.occluder_target_prob=0.0"]
VARIANTS = {"conorm": ["image.use_centermaps=true", *_OWN_ONLY],
            "baseline": ["image.use_centermaps=false", *_OWN_ONLY],
            "conorm_terse": ["image.use_centermaps=true", "image.terse.enabled=true", *_OWN_ONLY],
            # + training crops whose target is not the box's person (real pairs, pasted occluders)
            "conorm_other": ["image.use_centermaps=true", "image.other_crops=true", "image.aug.occluder_target_prob=0.5"]}


def benchmark_sets(crop_size: int, heatmap_size: int) -> dict[str, list[CropSampler]]:
    """The four evaluation sets as lists of samplers (one per annotation file)."""
    sets: dict[str, list[CropSampler]] = {"real_own": [], "real_other": [], "synthetic": [], "val_all": []}
    for rel in REAL:
        people = load_coco_people(IMAGES / rel)
        for name, other in (("real_own", False), ("real_other", True)):
            t = overlap_targets(people, other_crop=other)
            if t:
                sets[name].append(CropSampler(people, crop_size, heatmap_size, targets=t))
    val = load_coco_people(IMAGES / REAL[0])
    sets["val_all"].append(CropSampler(val, crop_size, heatmap_size))
    sets["synthetic"].append(CropSampler(val, crop_size, heatmap_size, augment={"occlusion_prob": 1.0}))
    return sets


@torch.no_grad()
def evaluate(model, samplers: list[CropSampler]) -> dict[str, float]:
    acc = {"pck": [], "err": [], "wrong": []}
    for s in samplers:
        plan = s.all_targets()
        for i in range(0, len(s), 64):
            b = s.materialise(plan, slice(i, min(len(s), i + 64)))
            pred = model(b["images"], b["centermaps"]).project()[:, 0].float()
            for k, v in image_batch_metrics(pred, b).items():
                acc[k].append(v)
    r = {k: torch.cat(v) for k, v in acc.items()}
    w = r["wrong"][~r["wrong"].isnan()]
    return {"pck": 100 * float(r["pck"].mean()), "err_pct": 100 * float(r["err"].mean()),
            "wrong_person_pct": 100 * float(w.mean()) if len(w) else float("nan"), "n": int(len(r["pck"]))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/bench_occlusion")
    ap.add_argument("--variants", nargs="+", default=["conorm", "baseline"], choices=sorted(VARIANTS),
                    help="which regressors to train/evaluate (conorm_terse: CoNorm + TERSE placement)")
    ap.add_argument("--checkpoints", nargs="+", metavar="CKPT", default=None,
                    help="evaluate these checkpoints (one per --variants entry, same order) instead of training")
    ap.add_argument("overrides", nargs="*", help="config overrides for both runs (e.g. image.depth=50)")
    a = ap.parse_args()
    if not IMAGES.is_dir():
        print(f"shared images not found at {IMAGES}", file=sys.stderr)
        return 2
    out = Path(a.out)
    if a.checkpoints and len(a.checkpoints) != len(a.variants):
        ap.error(f"--checkpoints got {len(a.checkpoints)} paths for {len(a.variants)} --variants {a.variants}")
    runs = {v: VARIANTS[v] for v in a.variants}
    ckpts, train_s = {}, {}
    for n, (name, ov) in enumerate(runs.items()):
        if a.checkpoints:
            ckpts[name] = Path(a.checkpoints[n])
            continue
        cfg = load_config("image", [f"train.steps={a.steps}", f"seed={a.seed}", f"name={name}"] + ov + a.overrides)
        t0 = time.perf_counter()
        ckpts[name] = train("image", cfg, out_dir=out / name)
        train_s[name] = time.perf_counter() - t0
    results = {"steps": a.steps, "seed": a.seed, "overrides": a.overrides, "train_s": train_s,
               "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
                          f"{torch.get_num_threads()} threads", "models": {}}
    for name, ck in ckpts.items():
        model, c = load_image_regressor(ck)
        cfg = c["config"]["image"]
        sets = benchmark_sets(int(cfg["crop_size"]), int(cfg["heatmap_size"]))
        results["models"][name] = {"checkpoint": str(ck), "config": cfg,
                                   "sets": {k: evaluate(model, v) for k, v in sets.items()}}
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print("\n| set | people | model | PCK@0.1 (%) | 2D error (% box) | wrong person (%) |")
    print("|---|---|---|---|---|---|")
    for s in ("real_own", "real_other", "synthetic", "val_all"):
        for name in runs:
            r = results["models"][name]["sets"][s]
            print(f"| {s} | {r['n']} | {name} | {r['pck']:.1f} | {r['err_pct']:.1f} | {r['wrong_person_pct']:.1f} |")
    print(f"\nresults: {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
