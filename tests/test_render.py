"""Animations (:func:`lifting.viz.animate_track`: blitted frames, one-palette GIF, ffmpeg pipe)
and the write step's plain-array interface (:class:`lifting.outputs.LiftOutputs`)."""
from __future__ import annotations

import os
import stat
import sys

import numpy as np
import pytest

from lifting.lift_result import LiftResult, TrackMeshes
from lifting.options import LiftOptions
from lifting.outputs import LiftOutputs
from lifting.skeletons import CANON16
from lifting.viz import MeshFrames, RenderStyle, _AnimationScene, _write_gif, animate_track


def _walk(T: int = 12, seed: int = 0):
    """A synthetic walking-in-place track: ``(kp (T, 16, 2) px, mask, joints (T, 16, 3) m, frame ids)``."""
    g = np.random.default_rng(seed)
    base = g.normal(0, 0.25, (CANON16.num_joints, 3)).astype(np.float32)
    j3 = base + 0.05 * np.sin(np.arange(T)[:, None, None] / 2 + np.arange(3)).astype(np.float32)
    kp = (300 + 200 * j3[..., :2]).astype(np.float32)
    mask = np.ones((T, CANON16.num_joints), bool)
    mask[3, 5] = False  # a masked joint: its bones are not drawn
    return kp, mask, j3, np.arange(100, 100 + T)


def _full_redraw(scene: _AnimationScene, t: int) -> np.ndarray:
    """Frame ``t`` drawn the slow way: every artist, one full canvas draw."""
    for a in scene.moving:
        a.set_animated(False)
    scene._update(t)
    scene.fig.canvas.draw()
    out = np.array(scene.fig.canvas.buffer_rgba())
    for a in scene.moving:
        a.set_animated(True)
    return out


@pytest.mark.parametrize("with_mesh", [False, True])
def test_blitted_frames_match_a_full_redraw(with_mesh):
    import matplotlib.pyplot as plt

    kp, mask, j3, fids = _walk()
    mesh = None
    if with_mesh:  # a tetrahedron per frame around the root
        v = np.array([[0, -0.5, 0], [0.3, 0.4, 0.1], [-0.3, 0.4, 0.1], [0, 0.2, -0.3]], np.float32)
        mesh = MeshFrames(np.repeat(v[None], len(fids), 0), np.array([[0, 1, 2], [0, 2, 3], [0, 3, 1], [1, 3, 2]]),
                          np.tile(np.array([[200.0, 300.0, 300.0]], np.float32), (len(fids), 1)))
    scene = _AnimationScene(CANON16, kp, mask, j3, fids, mesh, RenderStyle(title="t"))
    try:
        for t in (0, 3, 11):
            fast, slow = scene.frame(t).astype(int), _full_redraw(scene, t).astype(int)
            assert fast.shape == slow.shape == (288, 576, 4)
            # the same picture: only a few anti-aliased edge pixels may differ (draw order at the axes' frame)
            assert (np.abs(fast - slow).max(-1) > 16).sum() <= 10
        assert np.abs(scene.frame(0).astype(int) - scene.frame(11).astype(int)).max() > 0  # the frames move
    finally:
        plt.close(scene.fig)


def test_gif_palette_keeps_the_colours(tmp_path):
    from PIL import Image

    g = np.random.default_rng(1)
    frames = []
    for k in range(3):
        f = np.full((40, 60, 3), 255, np.uint8)
        f[5:15, 5 + k:25 + k] = (214, 39, 40)  # a red limb that moves
        f[20:30, 30:50] = (31, 119, 180)
        f[35:38] = g.integers(0, 255, (3, 60, 3), dtype=np.uint8)  # more colours than the palette holds
        frames.append(f)
    _write_gif(tmp_path / "a.gif", frames, fps=5.0)
    with Image.open(tmp_path / "a.gif") as im:
        assert im.n_frames == 3 and im.info["duration"] == 200
        for k, f in enumerate(frames):
            im.seek(k)
            got = np.asarray(im.convert("RGB")).astype(int)
            assert (got[:35] == f[:35]).all()  # the scene's few colours come back exactly
            assert np.abs(got - f).max() < 128
    with pytest.raises(ValueError, match="at least one frame"):
        _write_gif(tmp_path / "b.gif", [], fps=5.0)


def test_mp4_frames_are_piped_to_ffmpeg(tmp_path, monkeypatch):
    """A stand-in ``ffmpeg`` that stores what it is piped: every frame arrives whole, once."""
    fake = tmp_path / "bin" / "ffmpeg"
    fake.parent.mkdir()
    fake.write_text(f"#!{sys.executable}\nimport sys\nopen(sys.argv[-1], 'wb').write(sys.stdin.buffer.read())\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    kp, mask, j3, fids = _walk(T=7)
    out = animate_track(tmp_path / "a.mp4", CANON16, kp, mask, j3, fids, style=RenderStyle(progress=False))
    assert out.stat().st_size == 7 * 576 * 288 * 4
    with pytest.raises(ValueError, match=".gif or .mp4"):
        animate_track(tmp_path / "a.avi", CANON16, kp, mask, j3, fids)


def test_outputs_take_plain_arrays(tmp_path):
    """The writer keeps the longest tracks and writes meshes from arrays alone (no lifter)."""
    o = LiftOptions(max_figures=2, min_figure_frames=3, mesh_frames=(101, 104), progress=False)
    out = LiftOutputs(tmp_path, o, fps=10.0, title="x", has_body=True)
    assert len(out.shown_frames(2)) == 0  # shorter than min_figure_frames
    kp, mask, j3, fids = _walk()
    for n in (5, 8):
        assert list(out.shown_frames(n)) == list(np.unique(np.linspace(0, n - 1, 4).round().astype(int)))
        out.add(LiftResult(n, fids[:n], j3[:n], kp[:n], mask[:n], np.zeros(0, np.int64)))
    assert len(out.shown_frames(4)) == 0 and len(out.shown_frames(6)) == 4  # only a longer track would be kept
    faces = np.array([[0, 1, 2]])
    res = LiftResult(9, fids, j3, kp, mask, np.zeros(0, np.int64))
    out.add_meshes(res, TrackMeshes(np.array([1]), j3[[1], :3], faces))
    assert out.meshes == ["meshes/track_0009_frame_000101.obj"] and (tmp_path / out.meshes[0]).exists()
    assert out.missing_mesh_frames() == [104]
    with pytest.raises(KeyError):
        TrackMeshes(np.array([1]), j3[[1], :3], faces).at(np.array([2]))
