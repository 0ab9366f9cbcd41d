"""rosinality/stylegan2-pytorch checkpoints (``.pt``): reading, writing and the key mapping.

A rosinality checkpoint is a ``torch.save``'d dict. ``convert_weight.py`` writes ``g_ema`` and
``latent_avg`` (plus ``g`` / ``d``); ``train.py`` writes ``g``, ``d``, ``g_ema``, ``g_optim``, ``d_optim``,
``args`` (an ``argparse.Namespace``) and ``ada_aug_p``; pSp-family encoders keep the generator under
``state_dict`` with the prefix ``decoder.`` and ``latent_avg`` at the top level. Files are read with
``torch.load(weights_only=True)`` (``argparse.Namespace`` is the only extra class allowed), so reading
never runs code from the file.

The mapping to our (= NVIDIA's) names is pure renaming and reshaping, see the sg2 fixture README:
``style.{i+1}`` -> ``mapping.fc{i}``, ``input.input`` -> ``synthesis.b4.const``, ``conv1`` ->
``b4.conv1``, ``convs.{2k}/{2k+1}`` -> ``b{2^(k+3)}.conv0/conv1``, ``to_rgb1`` / ``to_rgbs.{k}`` -> the
toRGB layers, ``noises.noise_j`` -> ``noise_const``; the discriminator's ``convs.0`` is fromRGB and
``convs.{j}`` the block at ``R / 2^(j-1)``. rosinality's blur-kernel buffers have no counterpart (ours
are set from the config), and they are recreated on export.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch

from sg2_core.checkpoints._io import atomic_write, check_input, torch_load
from sg2_core.checkpoints.base import (
    Checkpoint,
    Contents,
    Part,
    Reader,
    build_checkpoint,
    build_network,
    check_filter,
    check_state,
    count,
    dim,
    expected_shapes,
    resolve_config,
    solve_channels,
)
from sg2_core.checkpoints.errors import CheckpointError, CheckpointWarning
from sg2_core.nn.config import DiscriminatorConfig, GeneratorConfig
from sg2_core.nn.discriminator import Discriminator
from sg2_core.nn.generator import Generator

FORMAT = "rosinality"
_UP_GAIN = 4.0  # rosinality pre-multiplies its upsampling kernels by factor**2
# rosinality's stock channel table for channel_multiplier=1 (resolutions >= 64 scale with the multiplier)
_ROSINALITY_TABLE = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}


# ----------------------------------------------------------------------------------------------
# Key maps: (our key, rosinality key, kind); kind says how the shape changes (always a reshape).


def _ros_shape(kind: str, shape: tuple) -> tuple:
    if kind == "batch1":  # [C,4,4] -> [1,C,4,4]; [O,I,k,k] -> [1,O,I,k,k]
        return (1, *shape)
    if kind == "scalar":  # noise_strength [] -> [1]
        return (1,)
    if kind == "rgb_bias":  # [3] -> [1,3,1,1]
        return (1, shape[0], 1, 1)
    if kind == "noise":  # [r,r] -> [1,1,r,r]
        return (1, 1, *shape)
    return tuple(shape)


def _res_list(resolution: int) -> list[int]:
    return [2**k for k in range(2, int(math.log2(resolution)) + 1)]


def generator_key_map(config: GeneratorConfig) -> list[tuple[str, str, str]]:
    """Every generator parameter / noise buffer: ``(our key, rosinality key, kind)``.

    Not in the map: ``mapping.w_avg`` (rosinality's top-level ``latent_avg``), our ``resample_filter``
    buffers and rosinality's kernel buffers (both derived from the config).
    """
    m = []
    for i in range(config.mapping_layers):
        m += [
            (f"mapping.fc{i}.weight", f"style.{i + 1}.weight", "same"),
            (f"mapping.fc{i}.bias", f"style.{i + 1}.bias", "same"),
        ]
    m.append(("synthesis.b4.const", "input.input", "batch1"))

    def conv(ours, theirs):
        m.extend(
            [
                (f"{ours}.weight", f"{theirs}.conv.weight", "batch1"),
                (f"{ours}.affine.weight", f"{theirs}.conv.modulation.weight", "same"),
                (f"{ours}.affine.bias", f"{theirs}.conv.modulation.bias", "same"),
            ]
        )
        if config.use_noise:
            m.append((f"{ours}.noise_strength", f"{theirs}.noise.weight", "scalar"))
        m.append((f"{ours}.bias", f"{theirs}.activate.bias", "same"))

    def torgb(ours, theirs):
        m.extend(
            [
                (f"{ours}.weight", f"{theirs}.conv.weight", "batch1"),
                (f"{ours}.affine.weight", f"{theirs}.conv.modulation.weight", "same"),
                (f"{ours}.affine.bias", f"{theirs}.conv.modulation.bias", "same"),
                (f"{ours}.bias", f"{theirs}.bias", "rgb_bias"),
            ]
        )

    conv("synthesis.b4.conv1", "conv1")
    torgb("synthesis.b4.torgb", "to_rgb1")
    for k, res in enumerate(_res_list(config.resolution)[1:]):
        conv(f"synthesis.b{res}.conv0", f"convs.{2 * k}")
        conv(f"synthesis.b{res}.conv1", f"convs.{2 * k + 1}")
        torgb(f"synthesis.b{res}.torgb", f"to_rgbs.{k}")
    if config.use_noise:
        for j, name in enumerate(_noise_layers(config)):
            m.append((f"synthesis.{name}.noise_const", f"noises.noise_{j}", "noise"))
    return m


def _noise_layers(config: GeneratorConfig) -> list[str]:
    names = ["b4.conv1"]
    for res in _res_list(config.resolution)[1:]:
        names += [f"b{res}.conv0", f"b{res}.conv1"]
    return names


def generator_kernel_keys(config: GeneratorConfig) -> list[str]:
    """rosinality's generator kernel buffers (``4 x`` the normalised filter)."""
    n = len(_res_list(config.resolution)) - 1
    return [f"convs.{2 * k}.conv.blur.kernel" for k in range(n)] + [f"to_rgbs.{k}.upsample.kernel" for k in range(n)]


def discriminator_key_map(config: DiscriminatorConfig) -> list[tuple[str, str, str]]:
    """Every discriminator parameter: ``(our key, rosinality key, kind)``."""
    top, log_top = config.resolution, int(math.log2(config.resolution))
    m = [(f"b{top}.fromrgb.weight", "convs.0.0.weight", "same"), (f"b{top}.fromrgb.bias", "convs.0.1.bias", "same")]
    for res in reversed(_res_list(top)[1:]):
        j = log_top - int(math.log2(res)) + 1
        m += [
            (f"b{res}.conv0.weight", f"convs.{j}.conv1.0.weight", "same"),
            (f"b{res}.conv0.bias", f"convs.{j}.conv1.1.bias", "same"),
            (f"b{res}.conv1.weight", f"convs.{j}.conv2.1.weight", "same"),
            (f"b{res}.conv1.bias", f"convs.{j}.conv2.2.bias", "same"),
            (f"b{res}.skip.weight", f"convs.{j}.skip.1.weight", "same"),
        ]
    m += [
        ("b4.conv.weight", "final_conv.0.weight", "same"),
        ("b4.conv.bias", "final_conv.1.bias", "same"),
        ("b4.fc.weight", "final_linear.0.weight", "same"),
        ("b4.fc.bias", "final_linear.0.bias", "same"),
        ("b4.out.weight", "final_linear.1.weight", "same"),
        ("b4.out.bias", "final_linear.1.bias", "same"),
    ]
    return m


def discriminator_kernel_keys(config: DiscriminatorConfig) -> list[str]:
    """rosinality's discriminator kernel buffers (the normalised filter, gain 1)."""
    n = len(_res_list(config.resolution)) - 1  # blocks R ... 8
    return [f"convs.{j}.{name}.0.kernel" for j in range(1, n + 1) for name in ("conv2", "skip")]


def _kernel(config, gain: float, like: torch.Tensor | None = None) -> torch.Tensor:
    from sg2_kernels import setup_filter

    f = setup_filter(list(config.resample_filter)) * gain
    return f if like is None else f.to(like.device)


# ----------------------------------------------------------------------------------------------
# Ours -> rosinality


def _check_rosinality_compatible(config: GeneratorConfig | DiscriminatorConfig, what: str) -> None:
    if config.img_channels != 3:
        raise CheckpointError(
            f"cannot write the {what} in rosinality's format: it has {config.img_channels} image "
            "channels, rosinality's networks always have 3"
        )
    if isinstance(config, GeneratorConfig) and config.z_dim != config.w_dim:
        raise CheckpointError(
            f"cannot write the {what} in rosinality's format: z_dim ({config.z_dim}) != w_dim "
            f"({config.w_dim}), rosinality uses one style_dim for both"
        )
    if isinstance(config, DiscriminatorConfig) and (config.mbstd_num_channels != 1 or config.mbstd_group_size != 4):
        warnings.warn(
            f"rosinality's discriminator fixes the minibatch-stddev group at 4 with 1 channel; this "
            f"{what} uses group {config.mbstd_group_size} with {config.mbstd_num_channels} channel(s)",
            CheckpointWarning,
            stacklevel=3,
        )
    if config.conv_clamp is not None:
        warnings.warn(
            f"rosinality's networks have no conv_clamp; the {what}'s conv_clamp={config.conv_clamp} is not stored",
            CheckpointWarning,
            stacklevel=3,
        )
    res = _res_list(config.resolution)
    tables = [{r: _ROSINALITY_TABLE[r] * (mult if r >= 64 else 1) for r in res} for mult in (1, 2, 4)]
    ours = {r: config.channels(r) for r in res}
    if ours not in tables:
        warnings.warn(
            f"the {what}'s channels {ours} match no rosinality channel_multiplier; rosinality's model.py "
            "needs an edited channel table to load this checkpoint",
            CheckpointWarning,
            stacklevel=3,
        )


def generator_to_rosinality(state_dict: Mapping[str, torch.Tensor], config: GeneratorConfig) -> dict:
    """A rosinality ``Generator`` state dict (kernel buffers and ``noises`` included) from ours.

    Pure reshapes of ``state_dict``'s tensors, so it also works on meta tensors.
    """
    out = {}
    for ours, theirs, kind in generator_key_map(config):
        t = state_dict[ours].detach()
        out[theirs] = t.reshape(_ros_shape(kind, tuple(t.shape)))
    like = state_dict["synthesis.b4.const"]
    if not config.use_noise:  # rosinality always injects noise: a zero weight and zero maps are equivalent
        for j, name in enumerate(_noise_layers(config)):
            res = int(name.split(".")[0][1:])
            out[f"{_ros_conv_name(j)}.noise.weight"] = torch.zeros(1, device=like.device)
            out[f"noises.noise_{j}"] = torch.zeros(1, 1, res, res, device=like.device)
    for key in generator_kernel_keys(config):
        out[key] = _kernel(config, _UP_GAIN, like)
    return out


def _ros_conv_name(j: int) -> str:
    return "conv1" if j == 0 else f"convs.{j - 1}"


def discriminator_to_rosinality(state_dict: Mapping[str, torch.Tensor], config: DiscriminatorConfig) -> dict:
    """A rosinality ``Discriminator`` state dict (kernel buffers included) from ours."""
    out = {theirs: state_dict[ours].detach() for ours, theirs, _ in discriminator_key_map(config)}
    like = state_dict["b4.conv.weight"]
    for key in discriminator_kernel_keys(config):
        out[key] = _kernel(config, 1.0, like)
    return out


def save(
    path,
    G: Generator | None = None,
    D: Discriminator | None = None,
    G_ema: Generator | None = None,
    *,
    latent_avg: torch.Tensor | None = None,
) -> Path:
    """Write a rosinality checkpoint ``{'g_ema', 'g', 'd', 'latent_avg'}`` (only the parts available).

    ``g_ema`` comes from ``G_ema``, or from ``G`` when there is no ``G_ema`` (the consumers read ``g_ema``);
    ``latent_avg`` from ``latent_avg`` or that generator's ``mapping.w_avg``, left out (with a warning) when that
    is unknown (NaN) rather than written as a made-up value. Written atomically.
    """
    if G is None and D is None and G_ema is None:
        raise ValueError("nothing to save: pass G, D and/or G_ema")
    ckpt = {}
    gen = G_ema if G_ema is not None else G
    for name, net in (("g_ema", gen), ("g", G)):
        if net is not None:
            if not isinstance(net, Generator):
                raise TypeError(f"{name}: expected an sg2_core Generator, got {type(net).__name__}")
            _check_rosinality_compatible(net.config, f"generator ({name})")
            ckpt[name] = {k: v.cpu() for k, v in generator_to_rosinality(net.state_dict(), net.config).items()}
    if D is not None:
        if not isinstance(D, Discriminator):
            raise TypeError(f"d: expected an sg2_core Discriminator, got {type(D).__name__}")
        _check_rosinality_compatible(D.config, "discriminator")
        ckpt["d"] = {k: v.cpu() for k, v in discriminator_to_rosinality(D.state_dict(), D.config).items()}
    if gen is not None:
        avg = gen.mapping.w_avg if latent_avg is None else latent_avg
        avg = avg.detach().cpu().reshape(-1).clone()
        if not torch.isfinite(avg).all():  # unknown: pSp / e4e compute their own when the key is absent
            warnings.warn(
                "latent_avg is not written: the generator's mapping.w_avg is unknown (NaN); estimate it "
                "with compute_w_avg=True when loading, or convert with --compute-w-avg",
                CheckpointWarning,
                stacklevel=2,
            )
        else:
            if not avg.any():
                warnings.warn(
                    "latent_avg is all zeros (the generator's mapping.w_avg was never set)",
                    CheckpointWarning,
                    stacklevel=2,
                )
            ckpt["latent_avg"] = avg
    return atomic_write(path, lambda f: torch.save(ckpt, f))


# ----------------------------------------------------------------------------------------------
# rosinality -> ours: the reading steps (stages 2-4, run by base.build_checkpoint), then their helpers


_OUR_NAMES = {"g": "G", "g_ema": "G_ema", "d": "D"}  # in the order they are built


def classify(obj, path=None) -> Contents:
    """Stage 2: the networks of a loaded rosinality / pSp checkpoint dict (or a bare state dict), its
    ``latent_avg`` and everything else."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"expected a rosinality checkpoint dict, got a {type(obj).__name__}", path)
    nets, extra = {}, {}
    if "state_dict" in obj and isinstance(obj["state_dict"], Mapping) and not any(k in obj for k in ("g", "g_ema")):
        decoder = _split_prefix(obj["state_dict"], "decoder.")
        if not decoder:
            raise CheckpointError("the file's state_dict has no 'decoder.*' keys (no pSp-style generator)", path)
        nets["g_ema"] = decoder
        extra["layout"] = "psp"
        extra.update({k: v for k, v in obj.items() if k not in ("state_dict", "latent_avg")})
    elif "style.1.weight" in obj or "input.input" in obj:
        nets["g_ema"] = obj
        extra["layout"] = "state_dict"
    elif "final_linear.0.weight" in obj or "convs.0.0.weight" in obj:
        nets["d"] = obj
        extra["layout"] = "state_dict"
    else:
        for name in ("g", "d", "g_ema"):
            if obj.get(name) is not None:
                nets[name] = obj[name]
        if not nets:
            raise CheckpointError(
                f"no networks found: expected 'g_ema', 'g' or 'd' (keys: {sorted(map(str, obj))})", path
            )
        for key, value in obj.items():
            if key in ("g", "d", "g_ema", "latent_avg"):
                continue
            if key in ("g_optim", "d_optim"):
                extra.setdefault("optimizer_states", {})[key] = value
            elif key == "args" and hasattr(value, "__dict__"):
                extra["args"] = dict(vars(value))
            else:
                extra[key] = value
    networks = {ours: Part(f"'{theirs}'", nets[theirs]) for theirs, ours in _OUR_NAMES.items() if theirs in nets}
    return Contents(networks, extra, latent_avg=_latent_avg(obj.get("latent_avg"), path))


def configure(name: str, part: Part, given, path) -> GeneratorConfig | DiscriminatorConfig:
    """Stage 3: the architecture inferred from the rosinality-named tensors (``given``: a config to use instead,
    or a dict of overrides for the inferred one)."""
    if not isinstance(part.tensors, Mapping):
        raise CheckpointError(f"{part.label} is a {type(part.tensors).__name__}, not a state dict", path)
    if name == "D":
        return resolve_config(given, infer_discriminator_config, part.tensors, path, DiscriminatorConfig)
    return resolve_config(given, infer_generator_config, part.tensors, path, GeneratorConfig)


def map_keys(name: str, part: Part, config, path) -> dict:
    """Stage 4: the tensors under our names. A generator's ``mapping.w_avg`` is unknown (NaN) here: the file keeps
    it apart, as ``latent_avg``, which the last stage puts in."""
    if name == "D":
        return _discriminator_state(part.tensors, config, part.label, path)
    return _generator_state(part.tensors, config, part.label, path, w_avg=float("nan"))


READER = Reader(
    FORMAT,
    torch_load,
    classify,
    configure,
    map_keys,
    w_avg_unknown="the file has no latent_avg (rosinality's train.py saves none)",
)


def from_dict(obj, path=None, *, g_config=None, d_config=None, compute_w_avg: bool | int = False) -> Checkpoint:
    """A Checkpoint from an already loaded rosinality / pSp checkpoint dict (or a bare state dict)."""
    return build_checkpoint(READER, obj, path, g_config=g_config, d_config=d_config, compute_w_avg=compute_w_avg)


def load(path, *, g_config=None, d_config=None, compute_w_avg: bool | int = False) -> Checkpoint:
    """Read a rosinality ``.pt`` (convert_weight.py, train.py, or a pSp-style ``state_dict`` / ``decoder.``).

    Args:
        g_config / d_config: a config to use instead of inferring one, or a dict of overrides for the
            inferred one (e.g. ``{"mapping_lr_multiplier": 0.01}``).
        compute_w_avg: when the file has no ``latent_avg``, estimate ``mapping.w_avg`` with
            ``Generator.mean_w`` (``True``: 10000 samples, or an int) instead of leaving it unknown (NaN).
    """
    path = check_input(path)
    return build_checkpoint(
        READER, torch_load(path), path, g_config=g_config, d_config=d_config, compute_w_avg=compute_w_avg
    )


def generator_from_rosinality(
    sd: Mapping,
    config: GeneratorConfig | Mapping | None = None,
    path=None,
    what: str = "generator",
    seen: set | None = None,
) -> Generator:
    """Our Generator from a rosinality generator state dict (``mapping.w_avg`` left at zeros: the file keeps
    it apart, as ``latent_avg``).

    ``config``: a GeneratorConfig to use as is, a dict of overrides for the inferred one, or None.
    Missing ``noises.noise_j`` buffers are filled with seeded N(0, 1) maps, with a warning.
    """
    config = configure("G", Part(what, sd), config, path)
    return build_network(config, _generator_state(sd, config, what, path, w_avg=0.0), what, path, seen=seen)


def discriminator_from_rosinality(
    sd: Mapping,
    config: DiscriminatorConfig | Mapping | None = None,
    path=None,
    what: str = "discriminator",
    seen: set | None = None,
) -> Discriminator:
    """Our Discriminator from a rosinality discriminator state dict."""
    config = configure("D", Part(what, sd), config, path)
    return build_network(config, _discriminator_state(sd, config, what, path), what, path, seen=seen)


def _latent_avg(value, path) -> torch.Tensor | None:
    if value is None:
        return None
    if not isinstance(value, torch.Tensor):
        raise CheckpointError(f"latent_avg is a {type(value).__name__}, not a tensor", path)
    value = value.detach().float().cpu()
    if value.ndim == 2:  # pSp stores it repeated per style: [n_styles, w_dim]
        if torch.equal(value, value[:1].expand_as(value)):
            value = value[0]
        else:
            warnings.warn(
                f"{path}: latent_avg {list(value.shape)} has different rows; using their mean",
                CheckpointWarning,
                stacklevel=4,
            )
            value = value.mean(dim=0)
    return value.reshape(-1)


def _split_prefix(sd: Mapping, prefix: str) -> dict:
    return {k[len(prefix) :]: v for k, v in sd.items() if isinstance(k, str) and k.startswith(prefix)}


def infer_generator_config(sd: Mapping, path=None, **overrides) -> GeneratorConfig:
    """The GeneratorConfig of a rosinality generator state dict.

    Inferred: resolution (number of layers), z/w dims, mapping depth, channels -> channel_base /
    channel_max, image channels. Not stored in the tensors, so taken from rosinality's defaults unless
    overridden: ``mapping_lr_multiplier=0.01``, ``resample_filter=(1, 3, 3, 1)`` (checked against the
    kernel buffers when present).
    """
    n_map = count(sd, "style.{}.weight", start=1)
    if n_map == 0:
        raise CheckpointError("cannot infer the generator architecture: no mapping layer 'style.1.weight'", path)
    n_up = max(count(sd, "to_rgbs.{}.conv.weight"), (count(sd, "convs.{}.conv.weight") + 1) // 2)
    resolution = 2 ** (n_up + 2)
    channels = {
        4: dim(sd, [("input.input", 1), ("conv1.conv.weight", 1), ("to_rgb1.conv.weight", 2)], "generator", path)
    }
    for k in range(n_up):
        channels[2 ** (k + 3)] = dim(
            sd,
            [(f"convs.{2 * k}.conv.weight", 1), (f"convs.{2 * k + 1}.conv.weight", 1), (f"to_rgbs.{k}.conv.weight", 2)],
            "generator",
            path,
        )
    base, cmax = solve_channels(channels, "generator", path)
    values = dict(
        z_dim=dim(sd, [("style.1.weight", 1)], "generator", path),
        w_dim=dim(sd, [("style.1.weight", 0)], "generator", path),
        resolution=resolution,
        mapping_layers=n_map,
        channel_base=base,
        channel_max=cmax,
        img_channels=dim(sd, [("to_rgb1.conv.weight", 1), ("to_rgb1.bias", 1)], "generator", path),
    )
    values.update(overrides)
    try:
        return GeneratorConfig(**values)
    except ValueError as exc:
        raise CheckpointError(f"cannot infer the generator architecture: {exc}", path) from exc


def infer_discriminator_config(sd: Mapping, path=None, **overrides) -> DiscriminatorConfig:
    """The DiscriminatorConfig of a rosinality discriminator state dict (minibatch-stddev group 4)."""
    n_blocks = count(sd, "convs.{}.conv1.0.weight", start=1)
    if n_blocks == 0:
        raise CheckpointError("cannot infer the discriminator architecture: no block 'convs.1.conv1.0.weight'", path)
    top = 2 ** (n_blocks + 2)
    channels = {top: dim(sd, [("convs.0.0.weight", 0), ("convs.1.conv1.0.weight", 1)], "discriminator", path)}
    for j in range(1, n_blocks + 1):
        res = top >> (j - 1)
        channels[res] = dim(
            sd, [(f"convs.{j}.conv1.0.weight", 0), (f"convs.{j}.conv2.1.weight", 1)], "discriminator", path
        )
        channels[res // 2] = dim(
            sd, [(f"convs.{j}.conv2.1.weight", 0), (f"convs.{j}.skip.1.weight", 0)], "discriminator", path
        )
    c4 = channels[4] = dim(sd, [("final_conv.0.weight", 0), ("final_linear.1.weight", 1)], "discriminator", path)
    base, cmax = solve_channels(channels, "discriminator", path)
    values = dict(
        resolution=top,
        channel_base=base,
        channel_max=cmax,
        img_channels=dim(sd, [("convs.0.0.weight", 1)], "discriminator", path),
        mbstd_group_size=4,
        mbstd_num_channels=max(1, dim(sd, [("final_conv.0.weight", 1)], "discriminator", path) - c4),
    )
    values.update(overrides)
    try:
        return DiscriminatorConfig(**values)
    except ValueError as exc:
        raise CheckpointError(f"cannot infer the discriminator architecture: {exc}", path) from exc


def _generator_state(sd: Mapping, config: GeneratorConfig, what: str, path, w_avg: float) -> dict:
    """Our generator state dict from a rosinality one; missing ``noises.noise_j`` buffers are filled with seeded
    N(0, 1) maps, with a warning, and ``mapping.w_avg`` with ``w_avg``."""
    key_map = generator_key_map(config)
    noise_keys = [theirs for _, theirs, kind in key_map if kind == "noise"]
    ours = _renamed(sd, key_map, config, generator_kernel_keys(config), _UP_GAIN, what, path, optional=noise_keys)
    shapes = expected_shapes(config)
    absent = [(o, t) for o, t, kind in key_map if kind == "noise" and t not in sd]
    if absent:
        warnings.warn(
            f"{path or what}: {len(absent)} noise buffer(s) ({absent[0][1]}, ...) are missing; the constant "
            "noise maps were filled with N(0, 1) draws (seed 0)",
            CheckpointWarning,
            stacklevel=3,
        )
        gen = torch.Generator().manual_seed(0)
        for o, _ in absent:
            ours[o] = torch.randn(shapes[o], generator=gen)
    for key, shape in shapes.items():
        if key.endswith("resample_filter"):
            ours[key] = _kernel(config, 1.0)
    ours["mapping.w_avg"] = torch.full(shapes["mapping.w_avg"], w_avg)
    return ours


def _discriminator_state(sd: Mapping, config: DiscriminatorConfig, what: str, path) -> dict:
    ours = _renamed(sd, discriminator_key_map(config), config, discriminator_kernel_keys(config), 1.0, what, path)
    for key in expected_shapes(config):
        if key.endswith("resample_filter"):
            ours[key] = _kernel(config, 1.0)
    return ours


def _renamed(sd: Mapping, key_map, config, kernel_keys, kernel_gain, what, path, optional=()) -> dict:
    """Check ``sd`` (rosinality names) against ``config`` and return it with our names and shapes."""
    shapes = expected_shapes(config)
    expected = {theirs: _ros_shape(kind, shapes[ours]) for ours, theirs, kind in key_map}
    kernel_shape = tuple(_kernel(config, 1.0).shape)
    for key in kernel_keys:
        expected[key] = kernel_shape
    hint = f"(architecture inferred or given: {config})"
    check_state(expected, sd, f"{what} (rosinality names)", path, optional=[*kernel_keys, *optional], hint=hint)
    check_filter(sd, kernel_keys, config, kernel_gain, what, path, buffers="blur kernels")
    return {ours: sd[theirs].reshape(shapes[ours]) for ours, theirs, _ in key_map if theirs in sd}
