"""posenet3d.occlusion: the SMPL student's image branch and the occlusion work.

Centermaps (:mod:`occlusion.centermap`), Contextual Normalization (:mod:`occlusion.conorm`),
ResNet backbones (:mod:`occlusion.backbone`), the CoNorm-conditioned HMR regressor
(:mod:`occlusion.regressor`), COCO-format image data (:mod:`occlusion.data`), synthetic
person-person occlusion (:mod:`occlusion.augment`) and AGORA-style multi-person metrics
(:mod:`occlusion.metrics`). Submodules are imported on demand.
"""
