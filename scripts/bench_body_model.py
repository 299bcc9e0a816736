"""Body-model and student speed for BENCHMARKS.md, side by side with a plain ``smplx`` SMPL
forward on the same model file (run alone: other load distorts the numbers).

* body model: bodies/s for joints only and for the full mesh, batch 1 and 1024, ours vs
  ``smplx.SMPLLayer`` (which always skins the mesh and applies pose correctives);
* forward kinematics alone (24 joints);
* the SMPL student: lifting frames/s (batched, joints only and with vertices) and the real
  2D-track ``lift`` end to end.

    python scripts/bench_body_model.py [--model SMPL_FILE] [--student CKPT] [--tracks FILE]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from pathlib import Path

import roma
import torch

from lifting.body_model import BodyModel, load_smpl_data, resolve_model_path
from lifting.lift import lift_file
from lifting.models.lifters import load_lifter
from lifting.options import LiftOptions
from lifting.skeletons import CANON16
from lifting.models.student import Student

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT_STUDENT = Path(__file__).resolve().parents[1] / "lifting" / "assets" / "student.pt"


def _rate(fn, n_items: int, min_s: float = 2.0, device: str = "cpu") -> float:
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    fn()
    fn()
    sync()
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_s:
        fn()
        reps += 1
        if device.startswith("cuda") and reps % 10:
            continue
        sync()
    sync()
    return reps * n_items / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="SMPL file (default: the shipped open model)")
    ap.add_argument("--student", default=str(DEFAULT_STUDENT), help="student checkpoint (random weights if absent)")
    ap.add_argument("--tracks", default=str(SHARED / "real_tracks" / "vtest_hog_blazepose_coco17.json"))
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    a = ap.parse_args()
    dev = a.device
    import smplx
    from smplx.utils import Struct
    from smplx.vertex_ids import vertex_ids

    torch.set_grad_enabled(False)
    path = resolve_model_path(a.model)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, model {path}")
    bm = BodyModel(path).to(dev)
    with contextlib.redirect_stdout(io.StringIO()):
        ref = smplx.SMPLLayer(model_path=str(path), data_struct=Struct(**load_smpl_data(path)), num_betas=10,
                              vertex_ids={k: 0 for k in vertex_ids["smplh"]}).to(dev)
    if dev.startswith("cuda"):
        print(f"device: {torch.cuda.get_device_name()}")
    print(f"{bm.num_vertices} vertices, pose correctives: {bm.has_pose_correctives}")
    g = torch.Generator().manual_seed(0)
    rows = []
    for bs in (1, a.batch):
        rot = roma.rotvec_to_rotmat(torch.randn(bs, 24, 3, generator=g) * 0.4).to(dev)
        betas = torch.randn(bs, 10, generator=g).to(dev)
        r_smplx = _rate(lambda: ref(betas=betas, global_orient=rot[:, :1], body_pose=rot[:, 1:]), bs, device=dev)
        r_mesh = _rate(lambda: bm(rot[:, 0], rot[:, 1:], betas, return_vertices=True), bs, device=dev)
        r_joints = _rate(lambda: bm(rot[:, 0], rot[:, 1:], betas), bs, device=dev)
        rows.append((bs, r_smplx, r_mesh, r_joints))
        print(f"batch {bs:5d}: smplx full mesh {r_smplx:12,.0f} bodies/s | ours full mesh {r_mesh:12,.0f} "
              f"({r_mesh / r_smplx:.1f}x) | ours joints only {r_joints:12,.0f} ({r_joints / r_smplx:.0f}x)")
    # reference: forward kinematics of the 24 joints with smplx's own routine
    from smplx.lbs import batch_rigid_transform

    rot = roma.rotvec_to_rotmat(torch.randn(a.batch, 24, 3, generator=g) * 0.4).to(dev)
    J = bm.rest_joints(torch.zeros(a.batch, 10, device=dev))
    r_fk = _rate(lambda: batch_rigid_transform(rot, J, ref.parents), a.batch, device=dev)
    print(f"smplx batch_rigid_transform (24-joint FK only) batch {a.batch}: {r_fk:,.0f} bodies/s")
    # the student
    if Path(a.student).is_file():
        student, _ = load_lifter(a.student)
        student = student.to(dev)
        tag = a.student
    else:
        student, tag = Student(body_model=bm).eval().to(dev), "randomly initialised student (default size)"
    print(f"student: {tag}")
    for bs in (1, 4096):
        x = torch.randn(bs, student.window, CANON16.num_joints, 2, generator=g).to(dev)
        m = torch.ones(bs, student.window, CANON16.num_joints, dtype=torch.bool, device=dev)
        for verts in (False, True):
            if verts and bs > 1024:
                bsv = 256
                xv, mv = x[:bsv], m[:bsv]
            else:
                bsv, xv, mv = bs, x, m
            r = _rate(lambda: student(xv, mv, return_vertices=verts), bsv, device=dev)
            print(f"student lift batch {bsv:5d}, {'joints + vertices' if verts else 'joints only      '}: "
                  f"{r:12,.0f} frames/s" + (f" ({1000 / r:.2f} ms/frame)" if bsv == 1 else ""))
    if Path(a.tracks).is_file() and Path(a.student).is_file() and dev == "cpu":
        with tempfile.TemporaryDirectory() as d:
            s = lift_file(a.tracks, d, LiftOptions(checkpoint=a.student, max_figures=0, mesh_frames=(), overwrite=True))
            t0 = time.perf_counter()
            s = lift_file(a.tracks, d, LiftOptions(checkpoint=a.student, max_figures=0, mesh_frames=(), overwrite=True))
            wall = time.perf_counter() - t0
        print(f"lift {Path(a.tracks).name} with the student: {s['frames_lifted']} frames, lifting "
              f"{s['seconds_lift']:.2f} s ({s['frames_lifted'] / s['seconds_lift']:,.0f} frames/s incl. reading "
              f"and writing npz), whole call {wall:.2f} s")


if __name__ == "__main__":
    main()
