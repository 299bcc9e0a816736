"""ResNet-18/34/50 feature extractors in plain torch, with optional CoNorm blocks.

ResNets as He et al., "Deep Residual Learning for Image Recognition", CVPR 2016 (Sec. 3-4,
Table 1: BasicBlock for 18/34 layers, Bottleneck for 50), in the torchvision "v1.5" layout
(the Bottleneck's stride sits on its 3x3 conv). Module names and parameter shapes follow
torchvision's ``resnet18/34/50`` exactly (``conv1``, ``bn1``, ``layer1.0.conv1``,
``layer2.0.downsample.0/1``, ...), so an ImageNet checkpoint of those models loads with
:func:`load_pretrained`. The classifier ``fc`` is left out: the forward pass ends at global
average pooling, and ``fc.*`` entries of a checkpoint are ignored.

Contextual Normalization blocks (OCHMR, Khirodkar et al. CVPR 2022, Sec. 3;
:class:`occlusion.conorm.CoNorm`) can follow any of the four stages; they live under the
``conorm.<stage>.*`` prefix so the torchvision keys stay untouched. With no CoNorm block the
backbone is the plain ResNet of the SPIN/HMR baseline.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from .conorm import CoNorm

__all__ = ["BasicBlock", "Bottleneck", "ResNetBackbone", "load_pretrained", "STAGES"]

STAGES = ("layer1", "layer2", "layer3", "layer4")
_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3)}


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c)


def _downsample(c_in: int, c_out: int, stride: int) -> nn.Sequential | None:
    if stride == 1 and c_in == c_out:
        return None
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), _bn(c_out))


class BasicBlock(nn.Module):
    """Two 3x3 convs with an identity (or 1x1 projection) shortcut (He et al. 2016, Fig. 2).
    ``(B, c_in, H, W) -> (B, planes, H / stride, W / stride)``."""

    expansion = 1

    def __init__(self, c_in: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, planes, 3, stride, 1, bias=False)
        self.bn1 = _bn(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = _bn(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(c_in, planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    """1x1 - 3x3 (strided, "v1.5") - 1x1 bottleneck with 4x expansion (He et al. 2016,
    Fig. 5). ``(B, c_in, H, W) -> (B, 4 * planes, H / stride, W / stride)``."""

    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        c_out = planes * self.expansion
        self.conv1 = nn.Conv2d(c_in, planes, 1, bias=False)
        self.bn1 = _bn(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = _bn(planes)
        self.conv3 = nn.Conv2d(planes, c_out, 1, bias=False)
        self.bn3 = _bn(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(c_in, c_out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNetBackbone(nn.Module):
    """ResNet-18/34/50 image encoder ending in global average pooling, with CoNorm blocks
    after the chosen stages (He et al. CVPR 2016; OCHMR Sec. 3).

    Args:
        depth: 18, 34 or 50.
        conorm_after: stages (any subset of ``"layer1" .. "layer4"``) followed by a
            :class:`~occlusion.conorm.CoNorm` block; ``()`` gives the plain ResNet.
        context_channels: channels ``Cc`` of the context maps.
        base_width: channels of the stem and of ``layer1`` (64 in torchvision; stage ``k``
            has ``base_width * 2**(k-1)`` channels, times 4 at the Bottleneck outputs).
            Values other than 64 give thinner/wider nets for CPU experiments whose weights
            are NOT compatible with torchvision checkpoints.
        conorm_hidden: hidden channels of each CoNorm block.

    Attributes:
        feature_dim: ``D``, the output feature size (512 for ResNet-18/34 and 2048 for
            ResNet-50 at ``base_width = 64``).

    Raises:
        ValueError: unknown depth or stage name, repeated stage, ``base_width < 1``.
    """

    def __init__(self, depth: int = 50, conorm_after: Sequence[str] = ("layer2", "layer3", "layer4"),
                 context_channels: int = 2, base_width: int = 64, conorm_hidden: int = 64) -> None:
        super().__init__()
        if depth not in _BLOCKS:
            raise ValueError(f"depth must be one of {sorted(_BLOCKS)}, got {depth!r}")
        if isinstance(conorm_after, str):
            conorm_after = (conorm_after,)
        conorm_after = tuple(conorm_after)
        unknown = [s for s in conorm_after if s not in STAGES]
        if unknown or len(set(conorm_after)) != len(conorm_after):
            raise ValueError(f"conorm_after must be distinct stage names among {STAGES}, got {conorm_after!r}")
        if int(base_width) != base_width or base_width < 1:
            raise ValueError(f"base_width must be a positive int, got {base_width!r}")
        block = BasicBlock if depth < 50 else Bottleneck
        self.depth, self.base_width = depth, int(base_width)
        c = self.base_width
        self.conv1 = nn.Conv2d(3, c, 7, 2, 3, bias=False)
        self.bn1 = _bn(c)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stage_channels = {}
        for k, (name, n) in enumerate(zip(STAGES, _BLOCKS[depth])):
            planes = self.base_width * 2**k
            blocks = []
            for i in range(n):
                blocks.append(block(c, planes, 2 if (i == 0 and k > 0) else 1))
                c = planes * block.expansion
            setattr(self, name, nn.Sequential(*blocks))
            stage_channels[name] = c
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = c
        self.conorm_after = tuple(s for s in STAGES if s in conorm_after)
        self.context_channels = int(context_channels)
        for m in self.modules():  # torchvision's initialisation (He et al. ICCV 2015 for convs)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # CoNorm blocks are created after the init loop: they keep their own (zero-head) init
        self.conorm = nn.ModuleDict({s: CoNorm(stage_channels[s], self.context_channels, conorm_hidden)
                                     for s in self.conorm_after})

    def forward(self, images: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """Image features.

        Args:
            images: ``(B, 3, H, W)`` float (ImageNet-normalised RGB for pretrained weights).
            context: ``(B, Cc, h, w)`` context maps (e.g. ``render_centermaps`` output, any
                resolution: each CoNorm block resizes it); required when the backbone has
                CoNorm blocks, ignored otherwise.

        Returns:
            ``(B, D)`` globally average-pooled features, ``D = feature_dim``.

        Raises:
            ValueError: bad image shape or dtype; context missing while CoNorm blocks exist;
                bad context shape (raised by the CoNorm block).
        """
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3 \
                or not images.is_floating_point() or images.shape[0] == 0:
            raise ValueError(f"images must be a float tensor (B, 3, H, W) with B > 0, got "
                             f"{tuple(getattr(images, 'shape', ()))} {getattr(images, 'dtype', type(images).__name__)}")
        if self.conorm_after and context is None:
            raise ValueError(f"this backbone has CoNorm blocks after {self.conorm_after}: pass context "
                             f"(B, {self.context_channels}, h, w)")
        x = self.maxpool(self.relu(self.bn1(self.conv1(images))))
        for name in STAGES:
            x = getattr(self, name)(x)
            if name in self.conorm:
                x = self.conorm[name](x, context)
        return self.avgpool(x).flatten(1)


def _state_dict_of(obj: object, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj:
        raise ValueError(f"{path}: expected a state dict (or a dict with 'state_dict' / 'model'), "
                         f"got {type(obj).__name__}")
    out = {}
    for k, v in obj.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            raise ValueError(f"{path}: entry {k!r} is a {type(v).__name__}, expected a tensor")
        out[k[len("module."):] if k.startswith("module.") else k] = v
    return out


def load_pretrained(backbone: ResNetBackbone, path: str | Path) -> dict[str, int]:
    """Load a torchvision-format ResNet checkpoint into ``backbone`` (in place).

    Accepts a plain state dict or a dict holding it under ``"state_dict"`` or ``"model"``;
    a ``"module."`` prefix (DataParallel/DDP) is stripped. ``fc.*`` entries are ignored;
    ``conorm.*`` entries are loaded when present (a file saved from a backbone with CoNorm
    blocks) and otherwise keep their fresh identity init; missing BatchNorm
    ``num_batches_tracked`` buffers (absent from older torchvision files) keep their value.
    Read with ``torch.load(..., map_location="cpu", weights_only=True)``.

    Args:
        backbone: the model to fill (its device and dtype are kept).
        path: the ``.pth`` file.

    Returns:
        ``{"loaded": tensors copied, "ignored": fc entries skipped}``.

    Raises:
        ValueError: unreadable file or not a state dict of tensors; missing, unexpected or
            shape-mismatched keys (a few are named).
    """
    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure to read is reported the same way
        raise ValueError(f"cannot read checkpoint {path}: {type(e).__name__}: {e}") from None
    sd = _state_dict_of(obj, path)
    ignored = [k for k in sd if k.startswith("fc.")]
    sd = {k: v for k, v in sd.items() if not k.startswith("fc.")}
    own = backbone.state_dict()
    required = {k for k in own if not k.startswith("conorm.") and not k.endswith("num_batches_tracked")}
    missing = sorted(required - sd.keys())
    unexpected = sorted(sd.keys() - own.keys())
    wrong = [f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}"
             for k, v in sd.items() if k in own and v.shape != own[k].shape]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys (e.g. {missing[:4]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[:4]})")
    if wrong:
        problems.append(f"{len(wrong)} shape mismatches (e.g. {wrong[:3]})")
    if problems:
        hint = "" if backbone.base_width == 64 else f" (base_width={backbone.base_width} is not torchvision's 64)"
        raise ValueError(f"{path} does not fit ResNet-{backbone.depth}{hint}: " + "; ".join(problems))
    backbone.load_state_dict(sd, strict=False)
    return {"loaded": len(sd), "ignored": len(ignored)}
