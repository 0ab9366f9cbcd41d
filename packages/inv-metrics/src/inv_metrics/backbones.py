"""The IR / IR-SE ResNet trunk of ArcFace-style face networks (pSp's ``model_irse.Backbone`` layout).

One configurable module builds IR-SE50 (pSp's ID loss, the encoders' trunk) and IR-101 (CurricularFace, the
paper's ID metric); state-dict keys match the reference checkpoints (``input_layer.*``, ``body.{i}.*``,
``output_layer.*``), so ``model_ir_se50.pth`` and ``CurricularFace_Backbone.pth`` load strictly.

A unit: BN -> conv3x3 -> PReLU -> conv3x3 (stride s) -> BN [-> squeeze-excitation], plus a shortcut that
subsamples (same width) or projects (1x1 conv, BN); no activation after the sum.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

UNITS_PER_STAGE = {50: (3, 4, 14, 3), 100: (3, 13, 30, 3), 152: (3, 8, 36, 3)}
DEFAULT_WIDTHS = (64, 128, 256, 512)
SE_REDUCTION = 16


class SEModule(nn.Module):
    def __init__(self, channels: int, reduction: int = SE_REDUCTION):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=False)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=False)

    def forward(self, x):
        scale = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3), keepdim=True)))))
        return x * scale


class BottleneckIR(nn.Module):
    def __init__(self, in_channels: int, depth: int, stride: int, se: bool):
        super().__init__()
        if in_channels == depth:
            self.shortcut_layer = nn.MaxPool2d(1, stride)  # a 1x1 max-pool is plain subsampling
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(in_channels, depth, 1, stride, bias=False),
                                                nn.BatchNorm2d(depth))
        layers = [nn.BatchNorm2d(in_channels), nn.Conv2d(in_channels, depth, 3, 1, 1, bias=False), nn.PReLU(depth),
                  nn.Conv2d(depth, depth, 3, stride, 1, bias=False), nn.BatchNorm2d(depth)]
        if se:
            layers.append(SEModule(depth))
        self.res_layer = nn.Sequential(*layers)

    def forward(self, x):
        return self.res_layer(x) + self.shortcut_layer(x)


class IRBackbone(nn.Module):
    """Input layer, body of bottleneck units, optional embedding head (BN2d, dropout, flatten, linear, BN1d)
    whose output is L2-normalised. ``forward_features`` returns the body's feature maps (the encoder trunk)."""

    def __init__(self, num_layers: int = 50, mode: str = "ir_se", input_size: int = 112,
                 widths=DEFAULT_WIDTHS, in_channels: int = 3, embedding_size: int | None = 512,
                 dropout: float = 0.4, affine: bool = True):
        super().__init__()
        num_layers = 100 if num_layers == 101 else num_layers  # "IR-101" is built with the 100-layer unit counts
        if num_layers not in UNITS_PER_STAGE:
            raise ValueError(f"num_layers must be 50, 100 (101) or 152, got {num_layers}")
        if mode not in ("ir", "ir_se"):
            raise ValueError(f"mode must be 'ir' or 'ir_se', got {mode!r}")
        if embedding_size is not None and input_size not in (112, 224):
            raise ValueError(f"input_size must be 112 or 224 for the embedding head, got {input_size}")
        self.num_layers, self.mode, self.input_size = num_layers, mode, input_size
        self.input_layer = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False),
                                         nn.BatchNorm2d(widths[0]), nn.PReLU(widths[0]))
        units, in_ch = [], widths[0]
        for depth, count in zip(widths, UNITS_PER_STAGE[num_layers]):
            for i in range(count):
                units.append(BottleneckIR(in_ch, depth, 2 if i == 0 else 1, se=mode == "ir_se"))
                in_ch = depth
        self.body = nn.Sequential(*units)
        self.output_layer = None
        if embedding_size is not None:
            side = input_size // 16
            self.output_layer = nn.Sequential(nn.BatchNorm2d(in_ch), nn.Dropout(dropout), nn.Flatten(),
                                              nn.Linear(in_ch * side * side, embedding_size),
                                              nn.BatchNorm1d(embedding_size, affine=affine))

    def forward_features(self, x: torch.Tensor, taps=()) -> list[torch.Tensor] | torch.Tensor:
        """Body output, or the outputs of the units whose indices are in ``taps`` (in order)."""
        x = self.input_layer(x)
        if not taps:
            return self.body(x)
        out = []
        for i, unit in enumerate(self.body):
            x = unit(x)
            if i in taps:
                out.append(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.output_layer is None:
            raise RuntimeError("this backbone was built without an embedding head (embedding_size=None)")
        side = self.input_size
        if x.shape[-2:] != (side, side):
            raise ValueError(f"the face backbone takes {side}x{side} crops, got {x.shape[-2]}x{x.shape[-1]}")
        emb = self.output_layer(self.forward_features(x))
        return emb / emb.norm(dim=1, keepdim=True)  # the reference divides by the norm with no epsilon


def ir_se(num_layers: int = 50, mode: str = "ir_se", **kwargs) -> IRBackbone:
    """IR / IR-SE backbone: ``ir_se(50)`` = pSp's ArcFace IR-SE50, ``ir_se(101, mode='ir', affine=False)`` =
    CurricularFace IR-101. ``widths``/``embedding_size`` shrink it (tests); ``embedding_size=None`` = trunk only."""
    return IRBackbone(num_layers, mode, **kwargs)


def load_state(module: nn.Module, path, what: str) -> nn.Module:
    """Load a plain state dict (or one under 'state_dict') strictly, with a clear error naming the file."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    state = {k.removeprefix("module."): v.float() if v.is_floating_point() else v for k, v in state.items()}
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(f"{path} does not fit {what}: {err}") from None
    return module
