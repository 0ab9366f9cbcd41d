"""The StyleGAN2 generator: mapping network, synthesis network ("skip" architecture) and both together.

Module and parameter names equal NVIDIA's StyleGAN2-ADA (``synthesis.b64.conv1.affine.weight``), so
its state dicts load unchanged and layer names are stable across checkpoints, weight offsets and
hypernetworks.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from sg2_core.nn.config import GeneratorConfig
from sg2_core.nn.cpu_inference import WeightCache
from sg2_core.nn.feature_conditions import check_conditions
from sg2_core.nn.layers import FullyConnectedLayer, bias_lrelu, modulated_conv2d
from sg2_core.nn.offsets import check_offsets, layer_key
from sg2_kernels import bias_act, setup_filter, upsample2d

NOISE_MODES = ("random", "const", "none")


def _check_shape(name: str, t, expected: list) -> None:
    """``expected`` may hold ``None`` for any size; raises a ValueError naming the argument."""
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name} must be a tensor, got {type(t).__name__}")
    if t.ndim != len(expected) or any(e is not None and s != e for s, e in zip(t.shape, expected)):
        shown = ", ".join("N" if e is None else str(e) for e in expected)
        raise ValueError(f"{name} must have shape [{shown}], got {list(t.shape)}")


def normalize_2nd_moment(x, dim=1, eps=1e-8):
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def mix_styles(ws_a, ws_b, crossover: int):
    """Style mixing: entries ``< crossover`` from ``ws_a``, the rest from ``ws_b``."""
    if ws_a.shape != ws_b.shape:
        raise ValueError(f"ws_b must have the shape of ws_a {list(ws_a.shape)}, got {list(ws_b.shape)}")
    if not 0 <= crossover <= ws_a.shape[1]:
        raise ValueError(f"crossover must be in [0, {ws_a.shape[1]}], got {crossover}")
    return torch.cat([ws_a[:, :crossover], ws_b[:, crossover:]], dim=1)


class MappingNetwork(nn.Module):
    """z -> w: 2nd-moment normalisation and equalised-LR fully connected layers; tracks ``w_avg``."""

    def __init__(self, z_dim, w_dim, num_ws, num_layers=8, lr_multiplier=0.01, w_avg_beta=0.995):
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws, self.num_layers, self.w_avg_beta = (
            z_dim,
            w_dim,
            num_ws,
            num_layers,
            w_avg_beta,
        )
        for i in range(num_layers):
            in_features = z_dim if i == 0 else w_dim
            setattr(
                self, f"fc{i}", FullyConnectedLayer(in_features, w_dim, activation="lrelu", lr_multiplier=lr_multiplier)
            )
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z, truncation_psi=1.0, truncation_cutoff=None, update_w_avg=False):
        _check_shape("z", z, [None, self.z_dim])
        # NVIDIA casts to float32; the network's own dtype keeps float64 reference runs in float64.
        x = normalize_2nd_moment(z.to(self.fc0.weight.dtype))
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        if update_w_avg:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        return truncate(ws, self.w_avg, truncation_psi, truncation_cutoff)


def truncate(ws, w_avg, psi=1.0, cutoff=None):
    """``w_avg + psi * (ws - w_avg)`` on the first ``cutoff`` entries (all when ``None``)."""
    if psi == 1:
        return ws
    ws = ws.clone()
    ws[:, :cutoff] = w_avg.lerp(ws[:, :cutoff], psi)
    return ws


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution (optionally upsampling 2x), noise, bias, leaky ReLU."""

    def __init__(
        self,
        in_channels,
        out_channels,
        w_dim,
        resolution,
        up=1,
        use_noise=True,
        conv_clamp=None,
        resample_filter=(1, 3, 3, 1),
        kernel_size=3,
    ):
        super().__init__()
        self.resolution, self.up, self.use_noise, self.conv_clamp = resolution, up, use_noise, conv_clamp
        self.padding = kernel_size // 2
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        if use_noise:
            self.register_buffer("noise_const", torch.randn(resolution, resolution))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_cache = WeightCache()  # what CPU inference derives from self.weight (cpu_inference)

    def forward(self, x, w, noise_mode="random", noise=None, weight=None):
        styles = self.affine(w)
        n = x.shape[0]
        noise_map = None
        if self.use_noise:
            if noise is not None:
                noise_map = noise * self.noise_strength
            elif noise_mode == "random":
                noise_map = torch.randn(n, 1, self.resolution, self.resolution, device=x.device) * self.noise_strength
            elif noise_mode == "const":
                noise_map = self.noise_const * self.noise_strength
        x = modulated_conv2d(
            x,
            self.weight if weight is None else weight,
            styles,
            up=self.up,
            padding=self.padding,
            resample_filter=self.resample_filter,
            cache=self.weight_cache if weight is None else None,
        )
        return bias_lrelu(x, self.bias.to(x.dtype), noise_map, clamp=self.conv_clamp)


class ToRGBLayer(nn.Module):
    """Modulated 1x1 convolution without demodulation, plus bias."""

    def __init__(self, in_channels, out_channels, w_dim, conv_clamp=None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x, w, weight=None):
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight if weight is None else weight, styles, demodulate=False)
        return bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution: (learned constant | 2x upsampling conv0), conv1, toRGB added to the upsampled image."""

    def __init__(
        self,
        in_channels,
        out_channels,
        w_dim,
        resolution,
        img_channels,
        use_noise=True,
        conv_clamp=None,
        resample_filter=(1, 3, 3, 1),
    ):
        super().__init__()
        self.resolution = resolution
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        layer = dict(
            w_dim=w_dim,
            resolution=resolution,
            use_noise=use_noise,
            conv_clamp=conv_clamp,
            resample_filter=resample_filter,
        )
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, up=2, **layer)
        self.conv1 = SynthesisLayer(out_channels, out_channels, **layer)
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)

    @property
    def conv_names(self) -> list[str]:
        return ["conv1"] if hasattr(self, "const") else ["conv0", "conv1"]

    def forward(self, x, img, ws, noise_mode, noises, weights, conditions=None):
        """``ws``: ``[N, len(conv_names) + 1, w_dim]``; ``noises``/``weights``/``conditions``: per-layer overrides
        (``conditions``: :class:`~sg2_core.nn.feature_conditions.FeatureCondition` on a conv's output)."""
        conditions = conditions or {}
        if hasattr(self, "const"):
            x = self.const.unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
        for i, name in enumerate(self.conv_names):
            x = getattr(self, name)(x, ws[:, i], noise_mode, noise=noises.get(name), weight=weights.get(name))
            if name in conditions:
                x = conditions[name].apply(x)
        y = self.torgb(x, ws[:, -1], weight=weights.get("torgb"))
        img = y if img is None else upsample2d(img, self.resample_filter).add_(y)
        return x, img


class SynthesisNetwork(nn.Module):
    """W+ -> image. Accepts explicit noise maps, per-sample weight offsets and feature conditions, keyed by layer
    name."""

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        self.config = config
        self.w_dim, self.img_resolution, self.img_channels = config.w_dim, config.resolution, config.img_channels
        self.num_ws = config.num_ws
        for res in config.block_resolutions:
            in_channels = 0 if res == 4 else config.channels(res // 2)
            block = SynthesisBlock(
                in_channels,
                config.channels(res),
                config.w_dim,
                res,
                config.img_channels,
                use_noise=config.use_noise,
                conv_clamp=config.conv_clamp,
                resample_filter=config.resample_filter,
            )
            setattr(self, f"b{res}", block)

    def blocks(self):
        return [getattr(self, f"b{res}") for res in self.config.block_resolutions]

    @property
    def noise_layer_names(self) -> list[str]:
        """Layers with noise inputs, in generator order (rosinality's ``noises.noise_j`` order)."""
        if not self.config.use_noise:
            return []
        return [f"b{b.resolution}.{name}" for b in self.blocks() for name in b.conv_names]

    @property
    def weight_layer_names(self) -> list[str]:
        """Every layer whose weight accepts a per-sample offset: the convolutions and the toRGBs."""
        return [f"b{b.resolution}.{name}" for b in self.blocks() for name in [*b.conv_names, "torgb"]]

    @property
    def condition_layer_names(self) -> list[str]:
        """Every layer whose output accepts a feature condition: the convolutions, in generator order."""
        return [f"b{b.resolution}.{name}" for b in self.blocks() for name in b.conv_names]

    def layer(self, name: str) -> nn.Module:
        block, layer = name.split(".")
        return getattr(getattr(self, block), layer)

    def _per_layer_weights(self, weight_offsets, n):
        if not weight_offsets:
            return {}
        offsets = check_offsets(self, weight_offsets, n)
        return {
            name: self.layer(name).weight.unsqueeze(0) + offset.to(self.layer(name).weight.dtype)
            for name, offset in offsets.items()
        }

    def _per_layer_noise(self, noise, n):
        if noise is None:
            return {}
        names = self.noise_layer_names
        if isinstance(noise, (list, tuple)):
            if len(noise) != len(names):
                raise ValueError(f"noise must hold {len(names)} maps (one per layer {names}), got {len(noise)}")
            noise = dict(zip(names, noise))
        result = {}
        for raw_name, t in noise.items():
            name = layer_key(raw_name)
            if name not in names:
                raise ValueError(f"noise: unknown layer {raw_name!r}; layers with noise: {names}")
            res = self.layer(name).resolution
            if t.ndim == 2:
                t = t.reshape(1, 1, res, res)
            _check_shape(f"noise[{raw_name!r}]", t, [None, 1, res, res])
            if t.shape[0] not in (1, n):
                raise ValueError(f"noise[{raw_name!r}] must have batch size 1 or {n}, got {t.shape[0]}")
            result[name] = t
        return result

    def forward(
        self, ws, noise_mode="random", noise=None, weight_offsets=None, return_features=False, feature_conditions=None
    ):
        """Render ``ws [N, num_ws, w_dim]``.

        Args:
            noise_mode: ``'random'`` (fresh noise), ``'const'`` (the stored maps) or ``'none'``.
            noise: explicit maps, a list in generator order or ``{layer name: [N or 1, 1, r, r]}``;
                they replace ``noise_mode`` for the layers they name.
            weight_offsets: ``{layer name: [N, *weight shape]}`` added to that layer's weight, per sample.
            return_features: also return ``{block name: features}``.
            feature_conditions: ``{layer name: FeatureCondition}``: that conv's output ``F`` becomes
                ``F * (1 + scale) + shift`` per sample (``sg2_core.nn.feature_conditions``).
        """
        _check_shape("ws", ws, [None, self.num_ws, self.w_dim])
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        n = ws.shape[0]
        noises, weights = self._per_layer_noise(noise, n), self._per_layer_weights(weight_offsets, n)
        conditions = check_conditions(self, feature_conditions, n) if feature_conditions else {}
        # NVIDIA casts to float32; the network's own dtype keeps float64 reference runs in float64.
        ws = ws.to(self.blocks()[0].const.dtype)
        x = img = None
        features = {}
        w_index = 0
        for block in self.blocks():
            prefix = f"b{block.resolution}."
            num_conv = len(block.conv_names)
            x, img = block(
                x,
                img,
                ws[:, w_index : w_index + num_conv + 1],
                noise_mode,
                {k.removeprefix(prefix): v for k, v in noises.items() if k.startswith(prefix)},
                {k.removeprefix(prefix): v for k, v in weights.items() if k.startswith(prefix)},
                {k.removeprefix(prefix): v for k, v in conditions.items() if k.startswith(prefix)},
            )
            w_index += num_conv
            if return_features:
                features[f"b{block.resolution}"] = x
        return (img, features) if return_features else img


class Generator(nn.Module):
    """z -> image: the mapping network followed by the synthesis network."""

    def __init__(self, config: GeneratorConfig | None = None, **overrides):
        super().__init__()
        config = config or GeneratorConfig()
        if overrides:
            config = config.replace(**overrides)
        self.config = config
        self.z_dim, self.w_dim, self.img_resolution = config.z_dim, config.w_dim, config.resolution
        self.img_channels, self.num_ws = config.img_channels, config.num_ws
        self.synthesis = SynthesisNetwork(config)
        self.mapping = MappingNetwork(
            config.z_dim,
            config.w_dim,
            config.num_ws,
            config.mapping_layers,
            config.mapping_lr_multiplier,
            config.w_avg_beta,
        )

    def forward(self, z, truncation_psi=1.0, truncation_cutoff=None, noise_mode="random", **synthesis_kwargs):
        ws = self.mapping(z, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode, **synthesis_kwargs)

    @torch.no_grad()
    def mean_w(self, n: int = 10000, seed: int = 0, batch_size: int = 4096) -> torch.Tensor:
        """Mean of the mapping output over ``n`` draws of z (the usual "mean latent"), in ``w_avg``'s dtype and on its
        device (a float64 network gets a float64 mean). z is drawn in float32 whatever the dtype, so a float32 and a
        float64 copy of one network average the same draws."""
        gen = torch.Generator().manual_seed(seed)
        device, dtype = self.mapping.w_avg.device, self.mapping.w_avg.dtype
        total = torch.zeros(self.w_dim, dtype=torch.float64, device=device)
        for start in range(0, n, batch_size):
            z = torch.randn(min(batch_size, n - start), self.z_dim, generator=gen).to(device)
            total += self.mapping(z)[:, 0].sum(dim=0, dtype=torch.float64)
        return (total / n).to(dtype)
