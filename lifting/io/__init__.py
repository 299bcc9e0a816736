"""File-format side of the lift pipeline: read keypoint files, associate detections into
tracks, write outputs atomically (npz/BVH/CSV/JSON).

The pipeline reads: ``readers`` (one parser per format) -> ``tracks`` (per-person keypoint
buffers) -> the lifter (``lifting.lift``) -> writers (``exports`` per track, ``bvh``), all into
one staged output folder (``fileio``).
"""
