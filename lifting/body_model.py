"""SMPL-format body model layer: loads real SMPL files or the shipped licence-free model
through ``smplx``, then runs a fast forward pass (joints only, or joints + vertices).

Loading goes through ``smplx.SMPLLayer`` (the same code path for a user's SMPL file and for
the project's own model, ``lifting/assets/body_models/SMPL_NEUTRAL.npz``), created without
pose/shape parameters (``create_* = False`` semantics: the layer holds only buffers, so it is
safe under DDP). The forward pass is our own implementation of linear blend skinning (Loper
et al., "SMPL", SIGGRAPH Asia 2015, Eq. 1-4):

* rest joints ``J(beta) = J_regressor (T + S beta)`` are precomputed as
  ``J_template + J_shapedirs beta`` (24 x 3 x 10 numbers instead of a V-vertex regression);
* forward kinematics runs joint by joint over the kinematic tree (rotation + translation,
  no 4x4 matrices);
* the joints-only path (the default) never touches vertices; vertices are skinned only when
  ``return_vertices=True``; pose correctives (``posedirs``) are applied only when the model
  has non-zero ones (the shipped open model has none).

Conventions: rotation matrices in, ``(..., 3, 3)``; metres; SMPL body frame (y up, the
subject faces +z). The canonical lifting joints (``lifting.skeletons.CANON16``) are
"virtual markers" rigidly attached to SMPL parts (see :data:`CANON16_MARKERS`).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .skeletons import CANON16

__all__ = [
    "SMPL_JOINT_NAMES",
    "SMPL_PARENTS",
    "CANON16_MARKERS",
    "BodyModel",
    "BodyModelOutput",
    "BodyModelError",
    "default_model_path",
    "resolve_model_path",
    "load_smpl_data",
    "model_sha256",
    "body_model_record",
    "load_recorded_body_model",
]

SMPL_JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hand", "right_hand",
)
SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)

#: canonical joint -> SMPL joint whose rest position it starts from. Each canonical joint is
#: a marker rigidly attached to that SMPL joint's *parent* part (which is what places the
#: joint in forward kinematics), optionally displaced by a rest-pose offset (metres, body
#: frame) that a student may learn (its teacher's joint definitions differ from SMPL's, e.g.
#: narrower shoulders in the Bandai-Namco skeleton).
CANON16_MARKERS = {
    "pelvis": "pelvis", "r_hip": "right_hip", "r_knee": "right_knee", "r_ankle": "right_ankle",
    "l_hip": "left_hip", "l_knee": "left_knee", "l_ankle": "left_ankle", "spine": "spine2",
    "thorax": "neck", "head": "head", "l_shoulder": "left_shoulder", "l_elbow": "left_elbow",
    "l_wrist": "left_wrist", "r_shoulder": "right_shoulder", "r_elbow": "right_elbow",
    "r_wrist": "right_wrist",
}

_GENDER_NAMES = {
    "neutral": ("smpl_neutral", "basicmodel_neutral_lbs_10_207_0_v1.0.0", "basicmodel_neutral_lbs_10_207_0_v1.1.0"),
    "male": ("smpl_male", "basicmodel_m_lbs_10_207_0_v1.0.0", "basicmodel_m_lbs_10_207_0_v1.1.0"),
    "female": ("smpl_female", "basicmodel_f_lbs_10_207_0_v1.0.0", "basicmodel_f_lbs_10_207_0_v1.1.0"),
}
_REQUIRED_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")

CHUMPY_FIX = (
    "This is an original SMPL pickle that stores chumpy arrays. posenet3d reads these without "
    "chumpy when they hold plain data; this one did not. Convert it once on a machine with "
    "chumpy (`pip install chumpy`, Python <= 3.10, numpy < 1.24): load the pickle and save "
    "every array with numpy.savez as SMPL_<GENDER>.npz, then pass that file instead."
)


class BodyModelError(ValueError):
    """A body-model file is missing, malformed or of the wrong kind."""


def default_model_path() -> Path:
    """The shipped licence-free SMPL-format model (see its README for provenance)."""
    return Path(__file__).resolve().parent / "assets" / "body_models" / "SMPL_NEUTRAL.npz"


def resolve_model_path(path: str | Path | None = None, gender: str = "neutral") -> Path:
    """Find the SMPL file to load.

    Args:
        path: ``None`` (the shipped open model), a ``.pkl``/``.npz`` file, or a folder holding
            SMPL files under their official names (``SMPL_NEUTRAL.pkl``,
            ``basicmodel_m_lbs_10_207_0_v1.1.0.pkl``, ...; also looked for in ``folder/smpl``).
        gender: ``neutral``, ``male`` or ``female`` (folders only).

    Raises:
        BodyModelError: unknown gender, missing file, or no matching file in the folder.
    """
    if gender not in _GENDER_NAMES:
        raise BodyModelError(f"unknown body-model gender {gender!r}; choose neutral, male or female")
    if path is None:
        p = default_model_path()
        if not p.is_file():
            raise BodyModelError(f"the shipped open body model is missing from the package: {p}")
        return p
    p = Path(path).expanduser()
    if p.is_file():
        return p
    if p.is_dir():
        stems = _GENDER_NAMES[gender]
        for folder in (p, p / "smpl"):
            if not folder.is_dir():
                continue
            for f in sorted(folder.iterdir()):
                if f.suffix.lower() in (".pkl", ".npz") and f.stem.lower() in stems:
                    return f
        raise BodyModelError(
            f"no {gender} SMPL file in {p}: expected one of "
            f"{', '.join(s.upper() if s.startswith('smpl_') else s for s in stems)} (.pkl or .npz)"
        )
    raise BodyModelError(f"body model file not found: {p}")


class _ChumpyArray:
    """Inert stand-in for pickled ``chumpy`` objects: keeps their state so the array can be
    read (``state["x"]``); it runs no code."""

    def __setstate__(self, state):
        self.__dict__.update(state if isinstance(state, dict) else {"state": state})


def _pickle_allow_list() -> dict[tuple[str, str], object]:
    """``(module, name) -> object`` for every global an SMPL pickle may name.

    Exactly what numpy/scipy/chumpy data need (checked by pickling real arrays, scalars and
    sparse matrices with protocols 2-5 in ``tests/test_security.py``): numpy 1.x and 2.x
    array/scalar reconstruction, ``dtype``, the csc/csr sparse classes under their old
    (``scipy.sparse.csc``) and current (``scipy.sparse._csc``) module names, Python 2's
    ``copy_reg._reconstructor`` / ``object`` / ``_codecs.encode`` (bytes in protocol 2), and
    inert stand-ins for chumpy's ``Ch`` classes. Nothing is allowed by module prefix."""
    import copyreg
    import _codecs

    from scipy import sparse

    try:  # numpy >= 2
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray, numeric

    allowed = {}
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(mod, "_reconstruct")] = multiarray._reconstruct
        allowed[(mod, "scalar")] = multiarray.scalar
    for mod in ("numpy.core.numeric", "numpy._core.numeric"):
        allowed[(mod, "_frombuffer")] = numeric._frombuffer  # protocol 5 arrays
    allowed[("numpy", "ndarray")] = np.ndarray
    allowed[("numpy", "dtype")] = np.dtype
    for fmt in ("csc", "csr"):
        for mod in (f"scipy.sparse.{fmt}", f"scipy.sparse._{fmt}", "scipy.sparse"):
            allowed[(mod, f"{fmt}_matrix")] = getattr(sparse, f"{fmt}_matrix")
            allowed[(mod, f"{fmt}_array")] = getattr(sparse, f"{fmt}_array")
    for mod in ("copy_reg", "copyreg"):
        allowed[(mod, "_reconstructor")] = copyreg._reconstructor
    for mod in ("__builtin__", "builtins"):
        allowed[(mod, "object")] = object
    allowed[("_codecs", "encode")] = _codecs.encode
    for name in _CHUMPY_CLASSES:
        allowed[("chumpy.ch", name)] = _ChumpyArray
        allowed[("chumpy", name)] = _ChumpyArray
    return allowed


#: chumpy classes found in SMPL pickles (all mapped to the inert :class:`_ChumpyArray`)
_CHUMPY_CLASSES = ("Ch",)


class _SMPLUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the exact globals of :func:`_pickle_allow_list`; any
    other global (``os.system``, ``numpy.load``, ``functools.partial``, ...) is refused with
    an ``UnpicklingError`` naming it, before it is imported."""

    _allowed: dict | None = None

    def find_class(self, module, name):
        if _SMPLUnpickler._allowed is None:
            _SMPLUnpickler._allowed = _pickle_allow_list()
        obj = self._allowed.get((module, name))
        if obj is None:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name} from a body-model pickle (only numpy arrays, "
                f"scipy.sparse csc/csr matrices and chumpy array data are allowed)")
        return obj

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("refusing a persistent id in a body-model pickle")


#: most elements a sparse matrix in a body-model pickle may expand to (SMPL-X: 55 x 10,475)
_MAX_DENSE = 50_000_000


def _to_array(key: str, value, path: Path) -> np.ndarray:
    if isinstance(value, _ChumpyArray):
        if "x" not in value.__dict__:
            raise BodyModelError(f"{path}: entry {key!r} is a chumpy expression, not plain data. {CHUMPY_FIX}")
        value = value.__dict__["x"]
    from scipy.sparse import issparse

    if issparse(value):
        # a pickled sparse matrix's shape and index arrays are not checked by scipy before
        # toarray() (out-of-range indices would read outside its buffers): check them first
        try:
            shape = tuple(int(n) for n in value.shape)
            if len(shape) != 2 or min(shape) < 0 or shape[0] * shape[1] > _MAX_DENSE:
                raise ValueError(f"shape {shape} is not a 2D SMPL array")
            value.check_format(full_check=True)
            value = value.toarray()
        except Exception as e:
            raise BodyModelError(f"{path}: entry {key!r} is a malformed sparse matrix ({e})") from None
    value = np.asarray(value)
    if value.dtype.kind not in "biuf":
        raise BodyModelError(f"{path}: entry {key!r} holds {value.dtype} data, expected numbers")
    return value


def load_smpl_data(path: str | Path) -> dict[str, np.ndarray]:
    """Read an SMPL-format model file into plain numpy arrays.

    Accepts ``.npz`` (read with ``allow_pickle=False``) and ``.pkl`` (the official SMPL
    pickles, including the old ones whose arrays are chumpy objects: their data is recovered
    without importing chumpy). Pickles are read with an exact allow-list of globals
    (:func:`_pickle_allow_list`): any other global is refused by name before it is
    imported, so a pickle cannot run code (see RELIABILITY.md §1.1). Only the numeric
    entries are kept. Keys: ``v_template (V, 3)``, ``shapedirs (V, 3, S)``,
    ``posedirs (V, 3, 207)``, ``J_regressor (24, V)``, ``weights (V, 24)``,
    ``kintree_table (2, 24)``, ``f (F, 3)`` plus whatever else the file holds.

    Raises:
        BodyModelError: unreadable file, a refused pickle global (named), missing keys,
            non-numeric or malformed (sparse) entries, or inconsistent shapes (named).
    """
    path = Path(path)
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as z:
                raw = {k: z[k] for k in z.files}
        elif path.suffix.lower() == ".pkl":
            with open(path, "rb") as fh:
                raw = _SMPLUnpickler(io.BytesIO(fh.read()), encoding="latin1").load()
            if not isinstance(raw, dict):
                raise BodyModelError(f"{path}: the pickle holds a {type(raw).__name__}, not an SMPL model dict")
        else:
            raise BodyModelError(f"{path}: body model files must be .npz or .pkl")
    except BodyModelError:
        raise
    except Exception as e:  # corrupted archive, truncated pickle, refused class
        raise BodyModelError(f"{path}: not a readable SMPL model file ({type(e).__name__}: {e})") from None
    missing = [k for k in _REQUIRED_KEYS if k not in raw]
    if missing:
        raise BodyModelError(f"{path}: not an SMPL model, missing {missing}")
    data = {}
    for k, v in raw.items():
        if k in _REQUIRED_KEYS:
            data[k] = _to_array(k, v, path)
        elif isinstance(v, np.ndarray) and v.dtype.kind in "biuf":
            data[k] = v
    V = data["v_template"].shape[0]
    expect = {"v_template": (V, 3), "J_regressor": (24, V), "weights": (V, 24), "kintree_table": (2, 24)}
    for k, shape in expect.items():
        if tuple(data[k].shape) != shape:
            raise BodyModelError(f"{path}: {k} has shape {tuple(data[k].shape)}, expected {shape} for an SMPL model")
    if data["shapedirs"].ndim != 3 or data["shapedirs"].shape[:2] != (V, 3):
        raise BodyModelError(f"{path}: shapedirs has shape {tuple(data['shapedirs'].shape)}, expected ({V}, 3, S)")
    if data["posedirs"].shape[:2] != (V, 3):
        raise BodyModelError(f"{path}: posedirs has shape {tuple(data['posedirs'].shape)}, expected ({V}, 3, 207)")
    for k in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights"):
        if not np.isfinite(data[k]).all():
            raise BodyModelError(f"{path}: {k} contains NaN/inf")
    return data


#: arrays that define an SMPL-format model, hashed by :func:`model_sha256`
_IDENTITY_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "f")


def model_sha256(data: dict[str, np.ndarray]) -> str:
    """Content hash of an SMPL-format model (hex sha256).

    Hashes the defining arrays of :func:`load_smpl_data`'s result (``v_template (V, 3)``,
    ``shapedirs (V, 3, S)``, ``posedirs``, ``J_regressor (24, V)``, ``weights (V, 24)`` as
    little-endian float32 and ``f (F, 3)`` as int64, each with its shape), so the same model
    gets the same hash whether it is stored as ``.pkl`` or ``.npz``, float64 or float32.
    The kinematic tree is not hashed (it must be SMPL's for every model).
    """
    h = hashlib.sha256()
    for k in _IDENTITY_KEYS:
        a = np.ascontiguousarray(data[k], dtype="<i8" if k == "f" else "<f4")
        h.update(f"{k}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


_RECORD_KEYS = {"name": str, "sha256": str, "num_vertices": int, "gender": str, "num_betas": int, "bundled": bool}


def _is_bundled_path(stored) -> bool:
    """A body-model path stored by an old checkpoint that names the shipped open model (of
    this or another installation: ``.../lifting/assets/body_models/SMPL_NEUTRAL.npz``)."""
    if stored is None:
        return True
    p = Path(str(stored))
    return p.parts[-4:] == default_model_path().parts[-4:]


def body_model_record(record: dict | None, source: str = "checkpoint") -> dict:
    """Validate and normalise the ``body_model`` entry of a checkpoint or export.

    New records (:meth:`BodyModel.describe`) hold the model's identity: ``name``, ``sha256``
    (:func:`model_sha256`), ``num_vertices``, ``gender``, ``num_betas``, ``bundled``. Old
    records held a ``path`` instead; it becomes ``bundled`` (the path is the shipped open
    model, or ``None``) or ``name`` (its file name) and is dropped, so no caller ever sees a
    stored path. A missing record means the shipped model (the default at training time).

    Raises:
        BodyModelError: the record is not a dict, or a field has the wrong type or value
            (named, with ``source``).
    """
    if record is None:
        return {"bundled": True}
    if not isinstance(record, dict):
        raise BodyModelError(f"{source}: body_model entry must be a dict, got {type(record).__name__}")
    rec = dict(record)
    if "path" in rec:  # legacy record: never opened, only classified
        stored = rec.pop("path")
        rec.setdefault("bundled", _is_bundled_path(stored))
        if not rec["bundled"]:
            rec.setdefault("name", Path(str(stored)).name)
    unknown = sorted(set(rec) - set(_RECORD_KEYS))
    if unknown:
        raise BodyModelError(f"{source}: unknown body_model field(s) {unknown}")
    for k, typ in _RECORD_KEYS.items():
        v = rec.get(k)
        if v is not None and (not isinstance(v, typ) or (typ is int and isinstance(v, bool))):
            raise BodyModelError(f"{source}: body_model.{k} must be {typ.__name__}, got {v!r}")
    if rec.get("gender", "neutral") not in _GENDER_NAMES:
        raise BodyModelError(f"{source}: body_model.gender {rec['gender']!r} is not neutral, male or female")
    sha = rec.get("sha256")
    if sha is not None and (len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha)):
        raise BodyModelError(f"{source}: body_model.sha256 {sha!r} is not a hex sha256")
    if rec.get("name") is not None:
        rec["name"] = Path(rec["name"]).name  # a file name, never a folder of the writer's machine
    rec.setdefault("bundled", False)
    return rec


def _describe_record(rec: dict) -> str:
    name = "the bundled open model" if rec.get("bundled") else repr(rec.get("name") or "an unnamed SMPL file")
    facts = [f"{rec['num_vertices']} vertices" if rec.get("num_vertices") else None,
             f"sha256 {rec['sha256'][:16]}" if rec.get("sha256") else None]
    facts = [f for f in facts if f]
    return name + (f" ({', '.join(facts)})" if facts else "")


def load_recorded_body_model(record: dict | None, path: str | Path | None = None, num_betas: int = 10,
                             source: str = "checkpoint") -> "BodyModel":
    """The body model a checkpoint was trained with, from its identity record.

    A checkpoint can only *name* a model; it never makes this function open a file. The
    model is loaded from ``path`` (the user's explicit ``--body-model`` / ``body_model.path``)
    or, when ``path`` is ``None``, from the shipped open model if the record says so. The
    loaded model's :func:`model_sha256` (or, for old records without one, its vertex count)
    must equal the record's.

    Args:
        record: the checkpoint's ``body_model`` entry (see :func:`body_model_record`).
        path: SMPL file/folder given by the user, or ``None``.
        num_betas: shape components the model uses. source: named in errors.

    Returns:
        :class:`BodyModel`.

    Raises:
        BodyModelError: a user model is needed but ``path`` is ``None`` (says what the
            checkpoint was trained with and how to pass it), or the loaded model is not the
            recorded one (names both), or the model file is unreadable.
    """
    rec = body_model_record(record, source)
    if path is None and not rec["bundled"]:
        raise BodyModelError(
            f"{source} was trained with the body model {_describe_record(rec)}, not the bundled open model: pass "
            f"that SMPL file with --body-model FILE (training: body_model.path=FILE); a body-model path stored "
            f"in a checkpoint is never opened")
    bm = BodyModel(path, rec.get("gender") or "neutral", num_betas)
    got = bm.describe()
    if rec.get("num_vertices") not in (None, got["num_vertices"]):
        raise BodyModelError(f"{source} was trained with a {rec['num_vertices']}-vertex body model "
                             f"({_describe_record(rec)}), but {bm.model_path} has {got['num_vertices']} vertices")
    if rec.get("sha256") is not None and rec["sha256"] != got["sha256"]:
        raise BodyModelError(f"{source} was trained with the body model {_describe_record(rec)}, but "
                             f"{bm.model_path} is {_describe_record(got)}: not the same model")
    return bm


@dataclass
class BodyModelOutput:
    """Result of :meth:`BodyModel.forward` (``L`` = the inputs' broadcast leading dims).

    Attributes:
        joints: ``(*L, 24, 3)`` SMPL joints, metres.
        joints_canon: ``(*L, 16, 3)`` canonical lifting joints (``CANON16`` order), metres.
        vertices: ``(*L, V, 3)`` metres, or ``None`` unless requested.
        rotations: ``(*L, 24, 3, 3)`` world (global) rotation of every part.
    """

    joints: torch.Tensor
    joints_canon: torch.Tensor
    vertices: torch.Tensor | None
    rotations: torch.Tensor


class BodyModel(nn.Module):
    """SMPL-format body model (SMPL, Loper et al. SIGGRAPH Asia 2015) with a joints-only
    fast path.

    Args:
        model_path: ``None`` for the shipped licence-free model, or a user's SMPL file/folder
            (see :func:`resolve_model_path`). The file is read by :func:`load_smpl_data` and
            its buffers are built by ``smplx.SMPLLayer`` (no parameters, DDP-safe).
        gender: ``neutral``/``male``/``female`` when ``model_path`` is a folder.
        num_betas: shape components used (<= those in the file).

    Forward args:
        global_orient: ``(*L, 3, 3)`` or ``(*L, 1, 3, 3)`` root rotation.
        body_pose: ``(*L, 23, 3, 3)`` parent-relative rotations of joints 1..23.
        betas: ``(*Lb, num_betas)`` with ``Lb`` broadcastable to ``L`` (e.g. one body per
            track: ``(B, 1, 10)`` against poses ``(B, T, ...)``).
        transl: optional ``(*L, 3)`` metres, added to every output point.
        canon_offsets: optional ``(16, 3)`` rest-pose offsets (metres, body frame) of the
            canonical markers (:data:`CANON16_MARKERS`).
        return_vertices: skin the mesh (costly); otherwise ``vertices`` is ``None``.

    Raises:
        BodyModelError: unreadable model (at construction).
        ValueError: inputs of the wrong shape, non-broadcastable leading dims, or more betas
            than the model has. Values are not checked for NaN here (a hot training path);
            ``posenet3d lift`` checks its outputs.
    """

    #: bodies skinned per chunk on CPU (cache-sized intermediates)
    skin_chunk = 16

    def __init__(self, model_path: str | Path | None = None, gender: str = "neutral", num_betas: int = 10):
        super().__init__()
        import smplx
        from smplx.utils import Struct

        path = resolve_model_path(model_path, gender)
        data = load_smpl_data(path)
        if data["shapedirs"].shape[-1] < num_betas:
            raise BodyModelError(f"{path}: has {data['shapedirs'].shape[-1]} shape components, {num_betas} requested")
        parents = data["kintree_table"][0].astype(np.int64).copy()
        parents[0] = -1
        if tuple(parents.tolist()) != SMPL_PARENTS:
            raise BodyModelError(f"{path}: kinematic tree {parents.tolist()} is not SMPL's {list(SMPL_PARENTS)}")
        from smplx.vertex_ids import vertex_ids as VERTEX_IDS

        # smplx's extra vertex-picked joints (nose, ears, toes) assume the 6,890-vertex SMPL
        # topology; they are never used here, so point them at vertex 0 for any topology
        dummy_ids = {k: 0 for k in VERTEX_IDS["smplh"]}
        with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a warning for 10-beta models
            layer = smplx.SMPLLayer(model_path=str(path), data_struct=Struct(**data), num_betas=num_betas,
                                    vertex_ids=dummy_ids)
        self.model_path = str(path)
        self.sha256 = model_sha256(data)
        self.gender = gender
        self.is_default = path.resolve() == default_model_path()
        self.num_betas = num_betas
        self.num_vertices = int(layer.v_template.shape[0])
        v_template = layer.v_template.float()
        shapedirs = layer.shapedirs.float()  # (V, 3, S)
        J_reg = layer.J_regressor.float()  # (24, V)
        self.register_buffer("v_template", v_template, persistent=False)
        self.register_buffer("shapedirs", shapedirs, persistent=False)
        self.register_buffer("lbs_weights", layer.lbs_weights.float(), persistent=False)
        self.register_buffer("J_template", J_reg @ v_template, persistent=False)
        self.register_buffer("J_shapedirs", torch.einsum("jv,vcs->jcs", J_reg, shapedirs), persistent=False)
        posedirs = layer.posedirs.float()  # (207, V*3)
        self.has_pose_correctives = bool(posedirs.abs().max() > 0)
        self.register_buffer("posedirs", posedirs if self.has_pose_correctives else torch.zeros(0), persistent=False)
        self.register_buffer("faces_tensor", torch.as_tensor(np.asarray(data["f"], dtype=np.int64)), persistent=False)
        self.faces = np.asarray(data["f"], dtype=np.int64)
        self.parents = SMPL_PARENTS
        # index tensors as non-persistent buffers, so they follow the module's device
        idx = {n: i for i, n in enumerate(SMPL_JOINT_NAMES)}
        canon_joint = [idx[CANON16_MARKERS[n]] for n in CANON16.joint_names]
        self.register_buffer("_canon_joint", torch.tensor(canon_joint), persistent=False)
        self.register_buffer("_canon_part", torch.tensor([max(SMPL_PARENTS[j], 0) for j in canon_joint]),
                             persistent=False)
        self.register_buffer("_parents_idx", torch.tensor(SMPL_PARENTS[1:]), persistent=False)
        del layer

    def describe(self) -> dict:
        """What a checkpoint or an output file records about its body model: its identity,
        never its path (:func:`load_recorded_body_model` reads it back): ``name`` (file
        name), ``sha256`` (:func:`model_sha256`), ``num_vertices``, ``gender``,
        ``num_betas``, ``bundled`` (the shipped open model)."""
        return {"name": Path(self.model_path).name, "sha256": self.sha256, "num_vertices": self.num_vertices,
                "gender": self.gender, "num_betas": self.num_betas, "bundled": self.is_default}

    # ------------------------------------------------------------------ shape
    def rest_joints(self, betas: torch.Tensor) -> torch.Tensor:
        """Rest-pose (T-pose) joints ``(*Lb, 24, 3)`` for ``betas (*Lb, num_betas)``."""
        self._check_betas(betas)
        return self.J_template.to(betas.dtype) + torch.einsum("jcs,...s->...jc", self.J_shapedirs.to(betas.dtype), betas)

    def rest_vertices(self, betas: torch.Tensor) -> torch.Tensor:
        """Shaped template ``(*Lb, V, 3)`` (SMPL Eq. 2 without pose correctives)."""
        self._check_betas(betas)
        return self.v_template.to(betas.dtype) + torch.einsum("vcs,...s->...vc", self.shapedirs.to(betas.dtype), betas)

    def _check_betas(self, betas: torch.Tensor) -> None:
        if betas.shape[-1] != self.num_betas:
            raise ValueError(f"betas must have shape (..., {self.num_betas}), got {tuple(betas.shape)}")

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        global_orient: torch.Tensor,
        body_pose: torch.Tensor,
        betas: torch.Tensor,
        transl: torch.Tensor | None = None,
        canon_offsets: torch.Tensor | None = None,
        return_vertices: bool = False,
    ) -> BodyModelOutput:
        if global_orient.shape[-2:] != (3, 3):
            raise ValueError(f"global_orient must be rotation matrices (..., 3, 3), got {tuple(global_orient.shape)}")
        if global_orient.ndim >= 3 and global_orient.shape[-3] == 1 and body_pose.ndim == global_orient.ndim:
            global_orient = global_orient[..., 0, :, :]
        if body_pose.shape[-3:] != (23, 3, 3):
            raise ValueError(f"body_pose must be (..., 23, 3, 3) rotation matrices, got {tuple(body_pose.shape)}")
        self._check_betas(betas)
        try:
            L = torch.broadcast_shapes(global_orient.shape[:-2], body_pose.shape[:-3], betas.shape[:-1])
        except RuntimeError:
            raise ValueError(
                f"leading dims do not broadcast: global_orient {tuple(global_orient.shape)}, body_pose "
                f"{tuple(body_pose.shape)}, betas {tuple(betas.shape)}"
            ) from None
        dtype = body_pose.dtype
        rot = torch.cat([global_orient.expand(*L, 3, 3)[..., None, :, :], body_pose.expand(*L, 23, 3, 3)], dim=-3)
        J = self.rest_joints(betas.to(dtype))  # (*Lb, 24, 3), cheap: shape-only
        J_rel = J - torch.cat([torch.zeros_like(J[..., :1, :]), J[..., self._parents_idx, :]], dim=-2)
        J_rel = J_rel.expand(*L, 24, 3)
        rot = rot.reshape(-1, 24, 3, 3)
        J_rel = J_rel.reshape(-1, 24, 3)
        # forward kinematics joint by joint (contiguous per-joint tensors: faster on CPU
        # than level-batched gathers/scatters, measured 600k vs 450k bodies/s at batch 1024)
        R_list, t_list = [rot[:, 0]], [J_rel[:, 0]]
        for j in range(1, 24):
            p = SMPL_PARENTS[j]
            R_list.append(R_list[p] @ rot[:, j])
            t_list.append(torch.baddbmm(t_list[p][..., None], R_list[p], J_rel[:, j, :, None])[..., 0])
        R_w, t_w = torch.stack(R_list, 1), torch.stack(t_list, 1)
        # canonical markers: rest offset from their part's joint, carried by the part
        cj, cp = self._canon_joint, self._canon_part
        Jf = J.expand(*L, 24, 3).reshape(-1, 24, 3)
        m_rel = Jf[:, cj] - Jf[:, cp]
        m_rel[:, 0] = 0.0  # the pelvis marker is the root joint itself
        if canon_offsets is not None:
            if canon_offsets.shape != (16, 3):
                raise ValueError(f"canon_offsets must be (16, 3), got {tuple(canon_offsets.shape)}")
            m_rel = m_rel + canon_offsets.to(dtype)
        canon = (R_w[:, cp] @ m_rel[..., None])[..., 0] + t_w[:, cp]
        joints = t_w
        vertices = None
        if return_vertices:
            vertices = self._skin(rot, R_w, t_w, Jf, betas, L)
        if transl is not None:
            if transl.shape[-1] != 3:
                raise ValueError(f"transl must be (..., 3), got {tuple(transl.shape)}")
            tr = transl.to(dtype).expand(*L, 3).reshape(-1, 1, 3)
            joints, canon = joints + tr, canon + tr
            if vertices is not None:
                vertices = vertices + tr
        out_v = None if vertices is None else vertices.reshape(*L, -1, 3)
        return BodyModelOutput(joints.reshape(*L, 24, 3), canon.reshape(*L, 16, 3), out_v, R_w.reshape(*L, 24, 3, 3))

    def _skin(self, rot, R_w, t_w, J, betas, L) -> torch.Tensor:
        """Linear blend skinning (SMPL Eq. 4) -> ``(N, V, 3)``.

        On CPU the batch is processed in chunks of :attr:`skin_chunk` bodies so the
        per-vertex transforms ``(chunk, V, 12)`` stay in cache (measured 5x faster at batch
        1024 than one pass; see BENCHMARKS.md); on GPU in one pass."""
        N = R_w.shape[0]
        dtype = R_w.dtype
        # A_j maps rest-pose points to posed ones: R_j (v - J_j) + t_j
        trans = t_w - (R_w @ J[..., None])[..., 0]
        A = torch.cat([R_w, trans[..., None]], dim=-1).reshape(N, 24, 12)
        W = self.lbs_weights.to(dtype)
        b = betas.to(dtype).expand(*L, betas.shape[-1]).reshape(N, -1)
        chunk = self.skin_chunk if R_w.device.type == "cpu" else N
        out = []
        for s in range(0, N, chunk):
            e = min(N, s + chunk)
            T = torch.matmul(W, A[s:e]).view(e - s, -1, 3, 4)  # (n, V, 3, 4)
            v = self.rest_vertices(b[s:e])  # (n, V, 3)
            if self.has_pose_correctives:
                # SMPL Eq. 3: correctives driven by the parent-relative rotations of joints 1..23
                feat = (rot[s:e, 1:] - torch.eye(3, dtype=dtype, device=rot.device)).reshape(e - s, 207)
                v = v + (feat @ self.posedirs.to(dtype)).view(e - s, -1, 3)
            # einsum beats n*V tiny (3x3 @ 3x1) matmuls by ~3x on CPU
            out.append(torch.einsum("nvij,nvj->nvi", T[..., :3], v) + T[..., 3])
        return out[0] if len(out) == 1 else torch.cat(out)
