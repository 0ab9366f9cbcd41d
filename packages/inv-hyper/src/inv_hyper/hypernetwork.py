"""HyperInverter's hypernetwork: one weight regressor per target generator layer.

Each regressor reads the phase-II feature maps of the W image and of the input (the W-bar encoder's
``[N, n_styles, C, 8, 8]`` stacks), fuses them, squeezes them to a D-vector and maps it through two
matrices to a residual for one layer's main weight. The parameter names, the ``w_idx`` mapping of layers
to feature maps and the final ``.view`` (not a transpose) follow the official ``Hypernetwork`` so that its
checkpoints load strictly. The residuals are in sg2-core's offset units (added to the stored weight),
which is where HyperInverter adds them, so they go straight into ``weight_offsets``.
"""

from __future__ import annotations

import math
import re

import torch
from torch import nn

from sg2_core.nn.offsets import layer_key

__all__ = ["Hypernetwork", "WeightRegressor", "target_shapes", "w_index"]

_LAYER = re.compile(r"b(\d+)\.(conv0|conv1|torgb)")


def w_index(name: str) -> int:
    """The feature map (style index) the regressor of layer ``name`` reads, as in the official code.

    ``b4.conv1`` -> 0, ``b4.torgb`` -> 1; at resolution 2^r >= 8, ``conv0`` -> 2r-4 and ``conv1`` and
    ``torgb`` -> 2r-3 (a block's toRGB reuses its conv1's map, kept for checkpoint compatibility).
    """
    key = layer_key(name)
    match = _LAYER.fullmatch(key)
    res = int(match.group(1)) if match else 0
    if not match or res < 4 or res & (res - 1) or (res == 4 and match.group(2) == "conv0"):
        raise ValueError(f"not a synthesis conv or toRGB layer: {name!r} (expected e.g. 'b8.conv0')")
    if res == 4:
        return 0 if match.group(2) == "conv1" else 1
    r = int(math.log2(res))
    return 2 * r - 4 if match.group(2) == "conv0" else 2 * r - 3


def target_shapes(generator) -> dict[str, tuple[int, ...]]:
    """``{layer: weight shape}`` of every synthesis conv and toRGB of an sg2-core generator (or its
    synthesis network), in generator order: HyperInverter's ``conv_without_bias`` targets."""
    synthesis = getattr(generator, "synthesis", generator)
    return {name: tuple(synthesis.layer(name).weight.shape) for name in synthesis.weight_layer_names}


class WeightRegressor(nn.Module):
    """Fused 8x8 features of one style index -> a residual ``[N, out, in, k, k]`` for one layer."""

    def __init__(self, shape, input_dim: int = 512, hidden_dim: int = 128, extractor_dim: int = 64):
        super().__init__()
        out_ch, in_ch, kh, kw = (int(s) for s in shape)
        self.shape = (out_ch, in_ch, kh, kw)
        self.hidden_dim = hidden_dim
        self.fusion = nn.Sequential(
            nn.Conv2d(2 * input_dim, input_dim, 1),
            nn.InstanceNorm2d(input_dim, affine=False, track_running_stats=False),
            nn.ReLU(),
        )
        # 8x8 -> 8x8 -> 4x4 -> 2x2 -> 1x1
        self.feature_extractor = nn.Sequential(
            nn.Conv2d(input_dim, extractor_dim, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(extractor_dim, extractor_dim, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(extractor_dim, extractor_dim, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(extractor_dim, hidden_dim, 4, stride=2, padding=1),
            nn.ReLU(),
        )
        self.w1 = nn.Parameter(torch.empty(hidden_dim, in_ch * hidden_dim))
        self.b1 = nn.Parameter(torch.zeros(in_ch * hidden_dim))
        self.w2 = nn.Parameter(torch.empty(hidden_dim, out_ch * kh * kw))
        self.b2 = nn.Parameter(torch.zeros(out_ch * kh * kw))
        nn.init.kaiming_normal_(self.w1)
        nn.init.kaiming_normal_(self.w2)

    def features(self, w_image_map: torch.Tensor, w_bar_map: torch.Tensor) -> torch.Tensor:
        """The D-vector ``[N, D]`` that enters ``w1``; the W-image map comes first, as in the reference."""
        x = self.fusion(torch.cat([w_image_map, w_bar_map], dim=1))
        return self.feature_extractor(x).flatten(1)

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        n = features.shape[0]
        out_ch, in_ch, kh, kw = self.shape
        t = (features @ self.w1 + self.b1).reshape(n, in_ch, self.hidden_dim)
        t = t @ self.w2 + self.b2  # [N, in, out*k*k]
        # The reference reinterprets this memory as [out, in, k, k] (view, not transpose); its checkpoints
        # were trained that way, so keep it.
        return t.contiguous().view(n, out_ch, in_ch, kh, kw)

    def forward(self, w_image_map, w_bar_map):
        return self.predict(self.features(w_image_map, w_bar_map))


class Hypernetwork(nn.Module):
    """One :class:`WeightRegressor` per target layer, keys ``weight_regressors.b8_conv0_weight...``.

    ``targets``: ``{layer: weight shape}`` (e.g. :func:`target_shapes` of a generator); names may be given
    as ``b8.conv0``, ``b8.conv0.weight`` or ``synthesis.b8.conv0.weight``. ``input_dim`` is the feature
    width C of the W-bar encoder's maps, ``hidden_dim`` the paper's D.
    """

    def __init__(self, targets, input_dim: int = 512, hidden_dim: int = 128, extractor_dim: int = 64):
        super().__init__()
        if not targets:
            raise ValueError("Hypernetwork needs at least one target layer")
        self.layers = [layer_key(name) for name in targets]
        self.w_idx = {name: w_index(name) for name in self.layers}
        self.input_dim = input_dim
        self.weight_regressors = nn.ModuleDict(
            {
                self._module_key(name): WeightRegressor(shape, input_dim, hidden_dim, extractor_dim)
                for name, shape in zip(self.layers, targets.values())
            }
        )

    @classmethod
    def for_generator(
        cls, generator, input_dim: int = 512, hidden_dim: int = 128, extractor_dim: int = 64, layers=None
    ):
        """The hypernetwork for every conv and toRGB of ``generator`` (or only ``layers``)."""
        shapes = target_shapes(generator)
        if layers is not None:
            wanted = [layer_key(name) for name in layers]
            unknown = [name for name in wanted if name not in shapes]
            if unknown:
                raise ValueError(f"layers {unknown} are not in the generator; it has {list(shapes)}")
            shapes = {name: shapes[name] for name in wanted}
        return cls(shapes, input_dim, hidden_dim, extractor_dim)

    @staticmethod
    def _module_key(name: str) -> str:
        return f"{name}.weight".replace(".", "_")

    @property
    def num_maps(self) -> int:
        """How many style maps the inputs must have at least."""
        return max(self.w_idx.values()) + 1

    def _check(self, label, codes):
        if (
            not isinstance(codes, torch.Tensor)
            or codes.ndim != 5
            or codes.shape[2] != self.input_dim
            or codes.shape[1] < self.num_maps
            or tuple(codes.shape[3:]) != (8, 8)
        ):
            shape = list(codes.shape) if isinstance(codes, torch.Tensor) else type(codes).__name__
            raise ValueError(
                f"{label} must be [N, >={self.num_maps}, {self.input_dim}, 8, 8] "
                f"(the W-bar encoder's maps), got {shape}"
            )

    def forward(self, w_image_codes: torch.Tensor, w_bar_codes: torch.Tensor, return_features: bool = False):
        """``{layer: [N, out, in, k, k]}`` weight offsets (and ``{module key: [N, D]}`` features if asked)
        from the W image's maps and the input's maps, in that order as in the reference."""
        self._check("w_image_codes", w_image_codes)
        self._check("w_bar_codes", w_bar_codes)
        if w_image_codes.shape != w_bar_codes.shape:
            raise ValueError(
                f"w_image_codes {list(w_image_codes.shape)} and w_bar_codes "
                f"{list(w_bar_codes.shape)} must have the same shape"
            )
        deltas, features = {}, {}
        for name in self.layers:
            key = self._module_key(name)
            regressor = self.weight_regressors[key]
            k = self.w_idx[name]
            f = regressor.features(w_image_codes[:, k], w_bar_codes[:, k])
            features[key] = f
            deltas[name] = regressor.predict(f)
        return (deltas, features) if return_features else deltas
