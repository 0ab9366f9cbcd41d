"""The IR / IR-SE ResNet trunk of ArcFace-style face networks and of the pSp-family encoders.

One configurable module builds IR-SE50 (pSp's ID loss, the trunk of pSp, e4e, ReStyle, HyperInverter and
AgileGAN), IR-100/101 (CurricularFace) and IR-152, at any width and with any number of input channels.
State-dict keys match the reference checkpoints (``input_layer.*``, ``body.{i}.*``, ``output_layer.*``).

A unit: BN -> conv3x3 -> PReLU -> conv3x3 (stride s) -> BN [-> squeeze-excitation], plus a shortcut that
subsamples (same width) or projects (1x1 conv, BN); no activation after the sum. The first unit of each of
the four stages has stride 2.

Feature taps, in the spirit of timm's ``feature_info`` / ``forward_intermediates``: tap 0 is the input layer
(stride 1), taps 1-4 the ends of the four stages (strides 2, 4, 8, 16). For IR-SE50 taps 2, 3, 4 are the units
6, 20 and 23 that pSp calls c1, c2 and c3.

In eval mode without gradients the units take the inference path of :mod:`.inference` (BN folded,
channels-last maps); training, gradients and ``sg2_core.use_impl("ref")`` run the modules as written.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from sg2_core.encoders.inference import cache_of, channels_last, conv, folded, takes_inference_path

UNITS_PER_STAGE = {50: (3, 4, 14, 3), 100: (3, 13, 30, 3), 152: (3, 8, 36, 3)}
DEFAULT_WIDTHS = (64, 128, 256, 512)
SE_REDUCTION = 16


class SEModule(nn.Module):
    """Squeeze-excitation: global mean -> 1x1 conv down -> ReLU -> 1x1 conv up -> sigmoid -> scale."""

    def __init__(self, channels: int, reduction: int = SE_REDUCTION):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=False)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=False)

    def forward(self, x):
        return x * self.gate(x)

    def gate(self, x):
        """The per-channel scale ``[N, C, 1, 1]``; on the inference path the 1x1 convs are matrix products."""
        pooled = x.mean(dim=(2, 3), keepdim=True)
        if not takes_inference_path(self, x, self.fc1.weight):
            return torch.sigmoid(self.fc2(torch.relu(self.fc1(pooled))))
        w1, w2 = cache_of(self).get(
            "flat",
            [self.fc1.weight, self.fc2.weight],
            lambda: (self.fc1.weight.flatten(1).t(), self.fc2.weight.flatten(1).t()),
        )
        hidden = torch.relu(pooled.flatten(1) @ w1.to(x.dtype))
        return torch.sigmoid(hidden @ w2.to(x.dtype))[:, :, None, None]


class BottleneckIR(nn.Module):
    """One IR (``se=False``) or IR-SE unit; the stride sits on the second 3x3 conv."""

    def __init__(self, in_channels: int, depth: int, stride: int, se: bool):
        super().__init__()
        if in_channels == depth:
            self.shortcut_layer = nn.MaxPool2d(1, stride)  # a 1x1 max-pool is plain subsampling
        else:
            self.shortcut_layer = nn.Sequential(
                nn.Conv2d(in_channels, depth, 1, stride, bias=False), nn.BatchNorm2d(depth)
            )
        layers = [
            nn.BatchNorm2d(in_channels),
            nn.Conv2d(in_channels, depth, 3, 1, 1, bias=False),
            nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False),
            nn.BatchNorm2d(depth),
        ]
        if se:
            layers.append(SEModule(depth))
        self.res_layer = nn.Sequential(*layers)

    def forward(self, x):
        if takes_inference_path(self, x, self.res_layer[1].weight):
            return self.forward_inference(x)
        return self.res_layer(x) + self.shortcut_layer(x)

    def forward_inference(self, x):
        """The same unit with the BNs after convolutions folded, the identity / subsampling shortcut as a view
        and the SE scale and the sum in one pass (see :mod:`.inference`)."""
        bn0, conv1, prelu, conv2, bn2 = self.res_layer[:5]
        r = F.batch_norm(x, bn0.running_mean, bn0.running_var, bn0.weight, bn0.bias, False, 0.0, bn0.eps)
        r = F.prelu(conv(r, channels_last(conv1), None, 1, 1), prelu.weight.to(x.dtype))
        r = conv(r, *folded(conv2, bn2), conv2.stride, 1)
        if isinstance(self.shortcut_layer, nn.MaxPool2d):
            stride = self.shortcut_layer.stride
            shortcut = x if stride == 1 else x[:, :, ::stride, ::stride]
        else:
            sc_conv, sc_bn = self.shortcut_layer
            shortcut = conv(x, *folded(sc_conv, sc_bn), sc_conv.stride, 0)
        if len(self.res_layer) > 5:
            return torch.addcmul(shortcut, r, self.res_layer[5].gate(r))
        return r.add_(shortcut)


def _check_config(num_layers, mode, in_channels, widths) -> int:
    num_layers = 100 if num_layers == 101 else num_layers  # "IR-101" is built with the 100-layer unit counts
    if num_layers not in UNITS_PER_STAGE:
        raise ValueError(f"num_layers must be 50, 100 (101) or 152, got {num_layers}")
    if mode not in ("ir", "ir_se"):
        raise ValueError(f"mode must be 'ir' or 'ir_se', got {mode!r}")
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
        raise ValueError(f"in_channels must be a positive integer, got {in_channels!r}")
    smallest = SE_REDUCTION if mode == "ir_se" else 1
    if len(widths) != 4 or any(isinstance(w, bool) or not isinstance(w, int) or w < smallest for w in widths):
        why = " (one per stage; the SE reduction divides them by 16)" if smallest > 1 else " (one per stage)"
        raise ValueError(f"widths must be 4 integers >= {smallest}{why}, got {tuple(widths)}")
    return num_layers


class IRTrunk(nn.Module):
    """Input layer (conv3x3, BN, PReLU) and body of bottleneck units; ``forward`` returns the last feature map.

    ``feature_info``: one dict per tap with ``module`` (its state-dict prefix), ``num_chs``, ``reduction``
    (stride from the input) and ``unit`` (body index; -1 for the input layer).
    """

    def __init__(
        self, num_layers: int = 50, mode: str = "ir_se", *, in_channels: int = 3, widths: Sequence[int] = DEFAULT_WIDTHS
    ):
        super().__init__()
        widths = tuple(widths)
        num_layers = _check_config(num_layers, mode, in_channels, widths)
        self.num_layers, self.mode, self.in_channels, self.widths = num_layers, mode, in_channels, widths
        self.input_layer = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.PReLU(widths[0])
        )
        units, in_ch = [], widths[0]
        self.feature_info = [dict(module="input_layer", num_chs=widths[0], reduction=1, unit=-1)]
        for stage, (depth, count) in enumerate(zip(widths, UNITS_PER_STAGE[num_layers])):
            for i in range(count):
                units.append(BottleneckIR(in_ch, depth, 2 if i == 0 else 1, se=mode == "ir_se"))
                in_ch = depth
            last = len(units) - 1
            self.feature_info.append(dict(module=f"body.{last}", num_chs=depth, reduction=2 ** (stage + 1), unit=last))
        self.body = nn.Sequential(*units)

    def check_input(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != self.in_channels:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{type(self).__name__} takes images [N, {self.in_channels}, H, W], got {shape}")

    def forward_intermediates(self, x: torch.Tensor, indices: int | Sequence[int] | None = None) -> list[torch.Tensor]:
        """The feature maps at the ``feature_info`` positions ``indices`` (negative counts from the end; an
        int n means the last n taps; None means all), in the order asked; stops after the deepest one."""
        n = len(self.feature_info)
        if indices is None:
            wanted = list(range(n))
        elif isinstance(indices, int):
            if not 1 <= indices <= n:
                raise ValueError(f"asked for the last {indices} taps of {n}")
            wanted = list(range(n - indices, n))
        else:
            wanted = list(indices)
            bad = [i for i in wanted if isinstance(i, bool) or not isinstance(i, int) or not -n <= i < n]
            if bad or not wanted:
                raise ValueError(f"tap indices must be integers in [{-n}, {n - 1}] ({n} taps), got {tuple(indices)}")
            wanted = [i % n for i in wanted]
        return self.forward_features(x, taps=[self.feature_info[i]["unit"] for i in wanted])

    def forward_features(self, x: torch.Tensor, taps: Sequence[int] = ()) -> list[torch.Tensor] | torch.Tensor:
        """Body output; or, with ``taps``, the outputs of those body units (-1 = the input layer), in the order
        given, running the body only as far as the deepest one."""
        self.check_input(x)
        if taps and (max(taps) >= len(self.body) or min(taps) < -1):
            raise ValueError(f"unit taps must lie in [-1, {len(self.body) - 1}], got {tuple(taps)}")
        x = self.forward_input_layer(x)
        if len(taps) == 0:
            return self.body(x)
        wanted = set(taps)
        found = {-1: x} if -1 in wanted else {}
        for i, unit in enumerate(self.body[: max(taps) + 1]):
            x = unit(x)
            if i in wanted:  # keep only the taps, not all 24 maps (the peak memory)
                found[i] = x
        return [found[t] for t in taps]

    def forward_input_layer(self, x: torch.Tensor) -> torch.Tensor:
        """conv, BN, PReLU; on the inference path as one folded conv on channels-last maps (the layout every
        later map keeps)."""
        conv0, bn, prelu = self.input_layer
        if not takes_inference_path(self, x, conv0.weight):
            return self.input_layer(x)
        x = x.contiguous(memory_format=torch.channels_last)
        return F.prelu(conv(x, *folded(conv0, bn), 1, 1), prelu.weight.to(x.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)


class IRBackbone(IRTrunk):
    """The trunk with ArcFace's embedding head (BN2d, dropout, flatten, linear, BN1d) whose output is
    L2-normalised: ``forward`` maps ``input_size`` crops to unit embeddings. ``embedding_size=None`` builds the
    trunk alone (``forward`` then refuses; use ``forward_features`` / ``forward_intermediates``)."""

    def __init__(
        self,
        num_layers: int = 50,
        mode: str = "ir_se",
        input_size: int = 112,
        widths: Sequence[int] = DEFAULT_WIDTHS,
        in_channels: int = 3,
        embedding_size: int | None = 512,
        dropout: float = 0.4,
        affine: bool = True,
    ):
        super().__init__(num_layers, mode, in_channels=in_channels, widths=widths)
        if embedding_size is not None and input_size not in (112, 224):
            raise ValueError(f"input_size must be 112 or 224 for the embedding head, got {input_size}")
        self.input_size = input_size
        self.output_layer = None
        if embedding_size is not None:
            side, ch = input_size // 16, self.widths[-1]
            self.output_layer = nn.Sequential(
                nn.BatchNorm2d(ch),
                nn.Dropout(dropout),
                nn.Flatten(),
                nn.Linear(ch * side * side, embedding_size),
                nn.BatchNorm1d(embedding_size, affine=affine),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.output_layer is None:
            raise RuntimeError("this backbone was built without an embedding head (embedding_size=None)")
        side = self.input_size
        self.check_input(x)
        if x.shape[-2:] != (side, side):
            raise ValueError(f"the face backbone takes {side}x{side} crops, got {x.shape[-2]}x{x.shape[-1]}")
        emb = self.output_layer(self.forward_features(x))
        return emb / emb.norm(dim=1, keepdim=True)  # the reference divides by the norm with no epsilon


def ir_se(num_layers: int = 50, mode: str = "ir_se", **kwargs) -> IRBackbone:
    """IR / IR-SE backbone: ``ir_se(50)`` = pSp's ArcFace IR-SE50, ``ir_se(101, mode='ir', affine=False)`` =
    CurricularFace IR-101. ``widths``/``embedding_size`` shrink it; ``embedding_size=None`` = trunk only."""
    return IRBackbone(num_layers, mode, **kwargs)
