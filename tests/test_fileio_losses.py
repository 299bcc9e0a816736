"""Atomic writing, the export command and the pure losses."""
from __future__ import annotations

import math

import pytest
import torch

from lifting import losses
from lifting.cli import main
from lifting.io.fileio import atomic_write
from lifting.models.lifters import load_lifter
from lifting.skeletons import CANON16
from lifting.models.teacher import Lifter
from lifting.models.checkpoint import save_checkpoint


def test_atomic_write_failure_leaves_nothing(tmp_path):
    target = tmp_path / "out.npz"

    def boom(tmp):
        with open(tmp, "w") as f:
            f.write("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, boom)
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_names_the_file_of_an_anonymous_os_error(tmp_path):
    """A full disk inside a writer (np.savez / zipfile raise OSError without a file name)
    is reported with the file being written, and nothing is left behind."""
    import errno

    def full(tmp):
        open(tmp, "w").write("part")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match=r"No space left on device \(writing .*track_0001\.npz\)") as e:
        atomic_write(tmp_path / "track_0001.npz", full)
    assert e.value.errno == errno.ENOSPC and list(tmp_path.iterdir()) == []


def test_atomic_write_replaces_and_keeps_suffix(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    seen = []
    atomic_write(target, lambda tmp: (seen.append(tmp), open(tmp, "w").write("new")))
    assert target.read_text() == "new" and seen[0].endswith(".txt")
    assert (target.stat().st_mode & 0o044) == 0o044  # readable by group/others (not mkstemp's 0600)


def test_export_half_roundtrip(tmp_path, capsys):
    m = Lifter(16, 1, 32, 1)
    src = save_checkpoint({"model": m.state_dict(), "model_config": m.config, "kind": "teacher", "step": 7,
                           "train_state": {"x": torch.zeros(3)}}, tmp_path / "full.pt")
    assert main(["export", str(src), str(tmp_path / "slim.pt"), "--half"]) == 0
    model, ck = load_lifter(tmp_path / "slim.pt")
    assert "train_state" not in ck and ck["step"] == 7
    assert all(v.dtype == torch.float16 for v in ck["model"].values() if v.is_floating_point())
    x = torch.randn(4, 1, 16, 2)
    with torch.no_grad():
        assert torch.allclose(model(x), m(x), atol=5e-2)
    assert main(["export", str(tmp_path / "missing.pt"), str(tmp_path / "o.pt")]) == 2
    assert "not found" in capsys.readouterr().err


def test_acceleration_zero_for_constant_velocity():
    t = torch.arange(6, dtype=torch.float32)[None, :, None, None]
    X = torch.randn(2, 1, 16, 3) + 0.1 * t  # linear in time
    assert losses.acceleration(X).item() < 1e-4
    X2 = X.clone()
    X2[:, 3] += 1.0
    assert losses.acceleration(X2).item() > 0.1


def test_bone_symmetry_and_constancy():
    X = torch.randn(3, 5, 16, 3)
    X[:] = X[:, :1]  # static window
    assert losses.bone_constancy(X, CANON16).item() < 1e-5
    # mirror the left side onto the right: symmetric bone lengths
    sym = X.clone()
    for i, j in CANON16.mirror_pairs():
        sym[..., j, :] = sym[..., i, :] * torch.tensor([-1.0, 1.0, 1.0])
    sym[..., CANON16.index("pelvis"), :] = 0
    for n in ("spine", "thorax", "head"):
        sym[..., CANON16.index(n), 0] = 0
    assert losses.bone_symmetry(sym, CANON16).item() < 1e-5
    assert losses.bone_symmetry(X, CANON16).item() > 1e-3


def test_lsgan_losses():
    assert losses.lsgan_generator(torch.ones(4)).item() == 0.0
    assert losses.lsgan_critic(torch.ones(4), torch.zeros(4)).item() == 0.0
    assert math.isclose(losses.lsgan_critic(torch.zeros(4), torch.ones(4)).item(), 1.0)
