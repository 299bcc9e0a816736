"""File-format side of the lift pipeline: read keypoint files, the tracker that associates
detections into tracks, write outputs atomically (npz/BVH/CSV/JSON).

The pipeline reads: ``readers`` (one module per format, each converting its format into
``detections.Detections``) -> the track step (:func:`lifting.track.track`, with ``tracking``
for untracked input) -> ``tracks`` (per-person keypoint buffers, ``TrackSet``) -> the lifter
(``lifting.lift``) -> writers (``exports`` per track, ``bvh``), all into one staged output
folder (``fileio``).
"""
