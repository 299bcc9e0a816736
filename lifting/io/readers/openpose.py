"""OpenPose ``--write_json`` output: a folder of per-frame files (or one of them).

Source: OpenPose ``doc/02_output.md`` ("JSON-UI Output Format"); BODY_25B per openpose_train's
``experimental_models`` README.  25-joint files are told BODY_25 from BODY_25B by geometry
(:mod:`lifting.io.readers.body25`).
"""

from __future__ import annotations

import os

import numpy as np

from ..detections import Detections
from ..records import describe, load_json
from ..tracks import TrackFormatError
from . import common
from .body25 import resolve_25
from .common import (DIGITS, MAX_FRAME_INDEX, DetectionRows, Input, ReadOptions, bounded_frame, check_numbers,
                     finish, joint_set_by_count, want_joint_set)

_OPENPOSE_JOINT_SETS = ("body25", "body25b", "coco18", "body135")


def _openpose_frame(name: str, what: str) -> int | None:
    """Frame index = last digit group of the file name (``cam01.0000.json`` -> 0,
    ``video_000000000012_keypoints.json`` -> 12); None when the name has no digits."""
    stem = os.path.splitext(name)[0]
    if stem.endswith("_keypoints"):
        stem = stem[: -len("_keypoints")]
    runs = DIGITS.findall(stem)
    if not runs:
        return None
    if len(runs[-1]) > 15:
        raise TrackFormatError(f"{what}: frame number {runs[-1][:20]}... in the file name has {len(runs[-1])} "
                               f"digits; frame indices go up to MAX_FRAME_INDEX = {MAX_FRAME_INDEX}")
    return bounded_frame(int(runs[-1]), what)



def is_per_image_dict(data) -> bool:
    """Whether a JSON object is AlphaPose's ``--format open`` / ``--format cmu`` output: image
    name -> ``{"version", "people": [{"pose_keypoints_2d"}]}`` (open) or ``{"version",
    "bodies": [{"joints"}]}`` (cmu), 18 COCO-18 keypoints per person (AlphaPose
    ``alphapose/utils/writer.py`` / ``pPose_nms.write_json``, "the form of CMU-Pose/OpenPose")."""
    if not isinstance(data, dict) or not data or "people" in data:
        return False
    return all(isinstance(v, dict) and (isinstance(v.get("people"), list) or isinstance(v.get("bodies"), list))
               for v in data.values())


def _per_image_documents(inp: Input) -> list[tuple[int, str, dict]]:
    """``(frame, image name, OpenPose-style document)`` of AlphaPose's per-image dictionary
    (:func:`is_per_image_dict`), sorted by frame (the image name's last digit group).

    Raises:
        TrackFormatError: an image name without a frame number, or two names of one frame."""
    docs, owner = [], {}
    for name, doc in inp.data.items():
        frame = _openpose_frame(str(name), f"{inp.source}: image {str(name)[:40]!r}")
        if frame is None:
            raise TrackFormatError(f"{inp.source}: image name {str(name)[:40]!r} has no frame number (frame = its "
                                   f"last digit group)")
        if frame in owner:
            raise TrackFormatError(f"{inp.source}: images {owner[frame]!r} and {name!r} are both frame {frame}")
        owner[frame] = name
        people = doc.get("people")
        if people is None:  # --format cmu: "bodies" of "joints"
            people = [{"pose_keypoints_2d": b.get("joints") if isinstance(b, dict) else b} for b in doc["bodies"]]
        docs.append((frame, str(name), {"people": people}))
    return sorted(docs, key=lambda d: d[0])


def _openpose_documents(inp: Input, warnings: list[str]) -> list[tuple[int, str, dict]]:
    """``(frame, file name, document)`` per OpenPose file (or per image of AlphaPose's
    OpenPose-style dictionary), sorted by frame."""
    source = inp.source
    if inp.kind == "json" and is_per_image_dict(inp.data):
        return _per_image_documents(inp)
    if inp.kind == "json":
        frame = _openpose_frame(os.path.basename(source), source)
        return [(0 if frame is None else frame, os.path.basename(source), inp.data)]
    if inp.kind != "dir":
        raise TrackFormatError(f"{source}: OpenPose output is a folder of per-frame .json files (or one of them)")
    names = sorted(f for f in os.listdir(source) if f.lower().endswith(".json"))
    if len(names) > common.MAX_PERSON_FRAMES:
        raise TrackFormatError(f"{source}: {len(names)} .json files, more than MAX_PERSON_FRAMES = "
                               f"{common.MAX_PERSON_FRAMES}")
    docs, owner, other, undated = [], {}, [], []
    for name in names:
        path = os.path.join(source, name)
        data = load_json(path)
        if not isinstance(data, dict) or not isinstance(data.get("people"), list):
            other.append(name)
            continue
        frame = _openpose_frame(name, path)
        if frame is None:
            undated.append(name)
            continue
        if frame in owner:
            raise TrackFormatError(
                f"{source}: {owner[frame]} and {name} are both frame {frame} (frame = last digit group of the "
                "name); the folder mixes several videos or cameras - pass a folder with one camera's files")
        owner[frame] = name
        docs.append((frame, name, data))
    if not docs:
        raise TrackFormatError(f"{source}: no OpenPose per-frame .json file (an object with a 'people' list) "
                               f"among {len(names)} .json file(s)" + (f"; {len(undated)} have no frame number in "
                                                                      "their name" if undated else ""))
    if other:
        warnings.append(f"skipped {len(other)} .json file(s) without a 'people' list (e.g. {other[0]})")
    if undated:
        warnings.append(f"skipped {len(undated)} OpenPose file(s) without a frame number in the name "
                        f"(e.g. {undated[0]})")
    return sorted(docs, key=lambda d: d[0])



def _person_id(person: dict, what: str) -> int | None:
    """``person_id`` / ``person_idx`` (``[-1]`` = not tracked, OpenPose's default)."""
    for key in ("person_idx", "person_id"):
        raw = person.get(key)
        if isinstance(raw, list) and len(raw) == 1:
            raw = raw[0]
        if raw is None:
            continue
        if isinstance(raw, bool) or not isinstance(raw, int) or abs(raw) > np.iinfo(np.int64).max:
            raise TrackFormatError(f"{what}.{key} must be an integer id, got {describe(raw)}")
        if raw >= 0:
            return raw
    return None



def read_openpose(inp: Input, joint_set: str | None, opts: ReadOptions) -> Detections:
    """OpenPose JSON output (``--write_json``): one file per frame.

    Layout per OpenPose ``doc/02_output.md`` ("JSON-UI Output Format"): ``{"version": ...,
    "people": [{"person_id": [-1], "pose_keypoints_2d": [x, y, c] * K, ...}]}``; the demo names
    files ``<video>_<12 digits>_keypoints.json``, other tools ``cam01.0000.json`` and the like:
    every ``*.json`` holding ``people`` is read, its frame index is the last digit group of the
    file name.  AlphaPose's ``--format open`` / ``--format cmu`` output (one JSON object: image
    name -> such a document, or ``"bodies": [{"joints"}]``; :func:`is_per_image_dict`) is read
    the same way, the frame from the image name.  K = 25 (BODY_25, or BODY_25B of openpose_train's experimental_models README;
    told apart by geometry, :mod:`lifting.io.readers.body25`), 18 (COCO-18) or 135 (BODY_135,
    body part used).  ``person_id`` (OpenPose ``--tracking``) is the track id when set (>= 0);
    OpenPose's default ``[-1]`` means untracked, and multi-person untracked files are tracked
    by the next step (:func:`lifting.track.track`).

    Returns :class:`Detections` (keypoints ``(N, K, 3)`` x, y px, confidence; no boxes).

    Raises:
        TrackFormatError: no OpenPose file, two files of one frame (several cameras), a
            keypoint list that is not x, y, c triples, a joint count other than 25 / 18 / 135,
            an ambiguous BODY_25 / BODY_25B geometry (asks for ``--format``).
    """
    warnings: list[str] = []
    docs = _openpose_documents(inp, warnings)
    dets = DetectionRows(inp.source, lambda a, b: f"{docs[a][1]} people[{b}]")
    empty = 0
    for d, (frame, name, data) in enumerate(docs):
        if not isinstance(data, dict) or not isinstance(data.get("people"), list):
            raise TrackFormatError(f"{inp.source}: expected an OpenPose object with a 'people' list")
        for k, person in enumerate(data["people"]):
            what = f"{name} people[{k}]"
            if not isinstance(person, dict):
                raise TrackFormatError(f"{inp.source}: {what} is not an object")
            kp = person.get("pose_keypoints_2d")
            if kp is None or kp == []:
                empty += 1
                continue
            kp = check_numbers(kp, f"{inp.source}: {what}.pose_keypoints_2d")
            if len(kp) % 3:
                raise TrackFormatError(f"{inp.source}: {what}.pose_keypoints_2d has {len(kp)} values, not x, y, c "
                                       "triples")
            arr = np.asarray(kp, dtype=np.float64).reshape(-1, 3)
            dets.add(frame, _person_id(person, f"{inp.source}: {what}"), arr, None, None, (d, k))
    if empty:
        warnings.append(f"skipped {empty} OpenPose person entr(ies) without pose_keypoints_2d")
    if not len(dets):
        raise TrackFormatError(f"{inp.source}: no person with pose_keypoints_2d in the OpenPose file(s)")
    k = dets.num_joints
    found = joint_set_by_count(k, _OPENPOSE_JOINT_SETS)
    if k == 25:
        found = resolve_25(dets, joint_set if joint_set in ("body25", "body25b") else None, inp.source, warnings)
    found = found or f"{k} joints"
    joint_set = want_joint_set(joint_set, found, _OPENPOSE_JOINT_SETS, inp.source,
                      f"OpenPose people have {k} joints ({3 * k} values; BODY_25 / BODY_25B have 75, COCO-18 54, "
                      "BODY_135 405)")
    return finish(dets, joint_set=joint_set, opts=opts, warnings=warnings, meta={"input_format": "openpose"},
                   hint="run OpenPose with --tracking to get person_id")

