"""NVIDIA's StyleGAN2 networks as ours: their constructor arguments <-> our configs, and the reading steps of
NVIDIA network pickles (read as data by :mod:`sg2_core.checkpoints.nvidia_pickle`) and of ``torch.save``'d
NVIDIA state dicts.

Our layer names are NVIDIA's, so their tensors need no renaming. A pickle keeps each network's constructor
arguments, translated here to a GeneratorConfig / DiscriminatorConfig (defaults filled in, unsupported settings
refused); a state dict keeps none, so its architecture is inferred from the tensors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import NamedTuple

from sg2_core.checkpoints._io import check_input, torch_load
from sg2_core.checkpoints.base import (
    NETWORK_NAMES,
    Checkpoint,
    Contents,
    Part,
    Reader,
    build_checkpoint,
    infer_discriminator_config,
    infer_generator_config,
    resolve_config,
    same_names,
)
from sg2_core.checkpoints.errors import CheckpointError
from sg2_core.checkpoints.nvidia_pickle import FORMAT, PersistentObject, network_parts, plain, read_pickle
from sg2_core.nn.config import DiscriminatorConfig, GeneratorConfig

# ----------------------------------------------------------------------------------------------
# Constructor arguments <-> our configs

_G_POSITIONAL = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs")
_G_OWN = {"z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs"}
_D_POSITIONAL = (
    "c_dim",
    "img_resolution",
    "img_channels",
    "architecture",
    "channel_base",
    "channel_max",
    "num_fp16_res",
    "conv_clamp",
    "cmap_dim",
    "block_kwargs",
    "mapping_kwargs",
    "epilogue_kwargs",
)
# settings that only select fp16 / memory layout / frozen layers / fused or split modulated convolutions for
# training: the same arithmetic in our fp32 networks
_IGNORED = {"num_fp16_res", "fp16_channels_last", "channels_last", "freeze_layers", "fused_modconv_default"}

STYLEGAN2_ADA, STYLEGAN3_REPO = "stylegan2-ada-pytorch", "stylegan3"
"""The two codebases that write StyleGAN2 pickles; their constructors differ in layout and defaults."""
_DEFAULTS = {  # constructor defaults that differ: training/networks.py vs training/networks_stylegan2.py
    STYLEGAN2_ADA: dict(conv_clamp=None, w_avg_beta=0.995, d_conv_clamp=None),
    STYLEGAN3_REPO: dict(conv_clamp=256, w_avg_beta=0.998, d_conv_clamp=256),
}


def _merge_positional(args, kwargs, names, what, path):
    if len(args) > len(names):
        raise CheckpointError(f"{what}: too many positional constructor arguments ({len(args)})", path)
    merged = dict(zip(names, args))
    merged.update(kwargs)
    return merged


def _take(kwargs: dict, defaults: dict, what: str, path) -> dict:
    """``defaults`` filled from ``kwargs``; unknown keys raise (they might change the architecture)."""
    unknown = sorted(set(kwargs) - set(defaults) - _IGNORED)
    if unknown:
        raise CheckpointError(f"{what}: unsupported constructor arguments {unknown}", path)
    return {k: kwargs.get(k, v) for k, v in defaults.items()}


def _require(value, expected, name, what, path):
    if value != expected:
        raise CheckpointError(f"{what}: {name}={value!r} is not supported (only {expected!r})", path)


def _no_conditioning(c_dim, what, path):
    if c_dim not in (0, None):
        raise CheckpointError(f"{what}: conditional networks are not supported (c_dim={c_dim}); only c_dim=0", path)


def _source_of(kwargs: Mapping, source: str | None) -> str:
    """stylegan3's Generator takes the synthesis settings as top-level arguments, stylegan2-ada's as
    ``synthesis_kwargs``; with neither, the caller's ``source`` (from the module state) decides."""
    if source is not None:
        return source
    return STYLEGAN3_REPO if set(kwargs) - _G_OWN else STYLEGAN2_ADA


def generator_config_from_nvidia(
    kwargs: Mapping, args=(), path=None, what: str = "G", source: str | None = None
) -> GeneratorConfig:
    """Our GeneratorConfig from NVIDIA ``Generator`` constructor arguments (defaults filled in).

    ``source``: :data:`STYLEGAN2_ADA` or :data:`STYLEGAN3_REPO` (whose defaults differ: conv_clamp 256,
    w_avg_beta 0.998); by default told from the layout of the arguments.
    """
    kw = _merge_positional(args, plain(kwargs), _G_POSITIONAL, what, path)
    source = _source_of(kw, source)
    defaults = _DEFAULTS[source]
    synthesis_kw = dict(kw.pop("synthesis_kwargs", None) or {})
    if source == STYLEGAN3_REPO:  # Generator(..., mapping_kwargs={}, **synthesis_kwargs)
        synthesis_kw.update({k: kw.pop(k) for k in list(kw) if k not in _G_OWN})
    top = _take(
        kw, dict(z_dim=None, c_dim=0, w_dim=None, img_resolution=None, img_channels=3, mapping_kwargs=None), what, path
    )
    _no_conditioning(top["c_dim"], what, path)
    mapping = _take(
        dict(top["mapping_kwargs"] or {}),
        dict(
            num_layers=8,
            embed_features=None,
            layer_features=None,
            activation="lrelu",
            lr_multiplier=0.01,
            w_avg_beta=defaults["w_avg_beta"],
        ),
        f"{what}.mapping_kwargs",
        path,
    )
    synthesis = _take(
        synthesis_kw,
        dict(
            channel_base=32768,
            channel_max=512,
            conv_clamp=defaults["conv_clamp"],
            architecture="skip",
            resample_filter=[1, 3, 3, 1],
            use_noise=True,
            activation="lrelu",
            kernel_size=3,
        ),
        f"{what} synthesis arguments",
        path,
    )
    _require(synthesis["architecture"], "skip", "architecture", what, path)
    _require(synthesis["activation"], "lrelu", "synthesis activation", what, path)
    _require(synthesis["kernel_size"], 3, "kernel_size", what, path)
    _require(mapping["activation"], "lrelu", "mapping activation", what, path)
    if mapping["layer_features"] not in (None, top["w_dim"]):
        raise CheckpointError(
            f"{what}: mapping layer_features={mapping['layer_features']} != w_dim is not supported", path
        )
    missing = [k for k in ("z_dim", "w_dim", "img_resolution") if top[k] is None]
    if missing:
        raise CheckpointError(f"{what}: the constructor arguments lack {missing}", path)
    try:
        return GeneratorConfig(
            z_dim=top["z_dim"],
            w_dim=top["w_dim"],
            resolution=top["img_resolution"],
            img_channels=top["img_channels"],
            mapping_layers=mapping["num_layers"],
            mapping_lr_multiplier=float(mapping["lr_multiplier"]),
            w_avg_beta=float(mapping["w_avg_beta"]),
            channel_base=synthesis["channel_base"],
            channel_max=synthesis["channel_max"],
            conv_clamp=synthesis["conv_clamp"],
            resample_filter=tuple(synthesis["resample_filter"]),
            use_noise=bool(synthesis["use_noise"]),
        )
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{what}: {exc}", path) from exc


def discriminator_config_from_nvidia(
    kwargs: Mapping, args=(), path=None, what: str = "D", source: str = STYLEGAN2_ADA
) -> DiscriminatorConfig:
    """Our DiscriminatorConfig from NVIDIA ``Discriminator`` constructor arguments (defaults filled in;
    ``source`` :data:`STYLEGAN3_REPO` defaults to conv_clamp 256)."""
    kw = _merge_positional(args, plain(kwargs), _D_POSITIONAL, what, path)
    top = _take(
        kw,
        dict(
            c_dim=0,
            img_resolution=None,
            img_channels=3,
            architecture="resnet",
            channel_base=32768,
            channel_max=512,
            conv_clamp=_DEFAULTS[source]["d_conv_clamp"],
            cmap_dim=None,
            block_kwargs=None,
            mapping_kwargs=None,
            epilogue_kwargs=None,
        ),
        what,
        path,
    )
    _no_conditioning(top["c_dim"], what, path)
    _require(top["architecture"], "resnet", "architecture", what, path)
    block = _take(
        dict(top["block_kwargs"] or {}),
        dict(activation="lrelu", resample_filter=[1, 3, 3, 1]),
        f"{what}.block_kwargs",
        path,
    )
    epilogue = _take(
        dict(top["epilogue_kwargs"] or {}),
        dict(mbstd_group_size=4, mbstd_num_channels=1, activation="lrelu"),
        f"{what}.epilogue_kwargs",
        path,
    )
    _require(block["activation"], "lrelu", "block activation", what, path)
    _require(epilogue["activation"], "lrelu", "epilogue activation", what, path)
    if not isinstance(epilogue["mbstd_group_size"], int) or not isinstance(epilogue["mbstd_num_channels"], int):
        raise CheckpointError(
            f"{what}: mbstd_group_size={epilogue['mbstd_group_size']!r} / mbstd_num_channels="
            f"{epilogue['mbstd_num_channels']!r} are not supported (need ints)",
            path,
        )
    if top["img_resolution"] is None:
        raise CheckpointError(f"{what}: the constructor arguments lack img_resolution", path)
    try:
        return DiscriminatorConfig(
            resolution=top["img_resolution"],
            img_channels=top["img_channels"],
            channel_base=top["channel_base"],
            channel_max=top["channel_max"],
            mbstd_group_size=epilogue["mbstd_group_size"],
            mbstd_num_channels=epilogue["mbstd_num_channels"],
            conv_clamp=top["conv_clamp"],
            resample_filter=tuple(block["resample_filter"]),
        )
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{what}: {exc}", path) from exc


def generator_config_to_nvidia(config: GeneratorConfig) -> dict:
    """NVIDIA ``Generator`` constructor arguments (all written out) for ``config``."""
    return dict(
        z_dim=config.z_dim,
        c_dim=0,
        w_dim=config.w_dim,
        img_resolution=config.resolution,
        img_channels=config.img_channels,
        mapping_kwargs=dict(
            num_layers=config.mapping_layers,
            embed_features=None,
            layer_features=None,
            activation="lrelu",
            lr_multiplier=config.mapping_lr_multiplier,
            w_avg_beta=config.w_avg_beta,
        ),
        synthesis_kwargs=dict(
            channel_base=config.channel_base,
            channel_max=config.channel_max,
            num_fp16_res=0,
            conv_clamp=config.conv_clamp,
            architecture="skip",
            resample_filter=list(config.resample_filter),
            use_noise=config.use_noise,
            activation="lrelu",
            kernel_size=3,
        ),
    )


def discriminator_config_to_nvidia(config: DiscriminatorConfig) -> dict:
    """NVIDIA ``Discriminator`` constructor arguments (all written out) for ``config``."""
    return dict(
        c_dim=0,
        img_resolution=config.resolution,
        img_channels=config.img_channels,
        architecture="resnet",
        channel_base=config.channel_base,
        channel_max=config.channel_max,
        num_fp16_res=0,
        conv_clamp=config.conv_clamp,
        cmap_dim=None,
        block_kwargs=dict(activation="lrelu", resample_filter=list(config.resample_filter), freeze_layers=0),
        mapping_kwargs={},
        epilogue_kwargs=dict(
            mbstd_group_size=config.mbstd_group_size, mbstd_num_channels=config.mbstd_num_channels, activation="lrelu"
        ),
    )


# ----------------------------------------------------------------------------------------------
# Network pickles


class Constructor(NamedTuple):
    """What a pickle says of a network's architecture besides its tensors."""

    args: tuple  # the constructor's positional arguments
    kwargs: dict  # and keyword arguments
    source: str  # the codebase that wrote the pickle (their defaults differ)
    obj: PersistentObject  # the pickled network, whose layers keep the settings its forward pass reads


def _refuse_stylegan3(obj: PersistentObject, kwargs: Mapping, what: str, path) -> None:
    """StyleGAN3 generators (networks_stylegan3.py) share the class name 'Generator': tell them by their
    Fourier-feature input layer, and name the config (R: 1x1 convolutions, radial filters)."""
    synthesis = obj.submodule("synthesis")
    if obj.submodule("synthesis.input") is None or synthesis is None:
        return
    if obj.submodule("synthesis.input").class_name != "SynthesisInput":
        return
    layers = [m for m in (synthesis.meta["state"].get("_modules") or {}).values() if isinstance(m, PersistentObject)]
    kernels = {m.attribute("", "conv_kernel") for m in layers if m.attribute("", "is_torgb") is False}
    config = "R" if kwargs.get("conv_kernel") == 1 or kwargs.get("use_radial_filters") or 1 in kernels else "T"
    raise CheckpointError(
        f"{what} is a StyleGAN3 generator (config {config}): StyleGAN3 (config T/R) networks are not "
        "supported, only StyleGAN2 ones (stylegan2-ada-pytorch, or the stylegan3 repository's "
        "--cfg=stylegan2)",
        path,
    )


def _source(data: Mapping) -> str:
    """Which codebase wrote the pickle: stylegan3's StyleGAN2 blocks keep ``fused_modconv_default``."""
    for name in ("G_ema", "G"):
        obj = data.get(name)
        if isinstance(obj, PersistentObject) and obj.attribute("synthesis.b4", "fused_modconv_default") is not None:
            return STYLEGAN3_REPO
    return STYLEGAN2_ADA


def _with_pickled_settings(config, obj: PersistentObject):
    """``config`` with conv_clamp and w_avg_beta as the pickled layers hold them: those are what NVIDIA's
    forward pass uses, whatever the constructor defaults of the writing codebase were."""
    if isinstance(config, GeneratorConfig):
        clamp = obj.attribute("synthesis.b4.conv1", "conv_clamp", config.conv_clamp)
        beta = obj.attribute("mapping", "w_avg_beta", config.w_avg_beta)
        return dataclasses.replace(
            config, conv_clamp=clamp, w_avg_beta=config.w_avg_beta if beta is None else float(beta)
        )
    return dataclasses.replace(config, conv_clamp=obj.attribute("b4.conv", "conv_clamp", config.conv_clamp))


def classify_snapshot(data, path=None) -> Contents:
    """Stage 2: the networks of an unpickled snapshot dict (:func:`read_pickle`) and everything else; the
    persistent objects become class names, constructor arguments and tensors, StyleGAN3 generators are refused."""
    if not isinstance(data, Mapping):
        raise CheckpointError(f"not an NVIDIA network pickle: it holds a {type(data).__name__}, not a dict", path)
    source = _source(data)
    networks, init = {}, {}
    for name, expected_class in (("G", "Generator"), ("D", "Discriminator"), ("G_ema", "Generator")):
        obj = data.get(name)
        if obj is None:
            continue
        class_name, args, kwargs, tensors = network_parts(obj, f"'{name}'", path)
        if class_name != expected_class:
            raise CheckpointError(f"'{name}' is a {class_name}, expected a {expected_class}", path)
        if expected_class == "Generator":
            _refuse_stylegan3(obj, kwargs, f"'{name}'", path)
        networks[name] = Part(f"'{name}'", tensors, spec=Constructor(args, kwargs, source, obj))
        init[name] = kwargs if not args else {"args": list(args), **kwargs}
    if not networks:
        raise CheckpointError(f"no networks found: expected 'G', 'D' or 'G_ema' (keys: {sorted(map(str, data))})", path)
    extra = {"nvidia_source": source, "nvidia_init_kwargs": init}
    for key, value in data.items():
        if key in ("G", "D", "G_ema"):
            continue
        if key == "augment_pipe" and value is not None:
            class_name, args, kwargs, tensors = network_parts(value, "'augment_pipe'", path)
            value = {"class_name": class_name, "init_kwargs": kwargs, "state": tensors}
        elif isinstance(value, PersistentObject):
            class_name, args, kwargs, tensors = network_parts(value, f"'{key}'", path)
            value = {"class_name": class_name, "init_kwargs": kwargs, "state": tensors}
        extra[key] = plain(value)
    return Contents(networks, extra)


def configure_snapshot(name: str, part: Part, given, path) -> GeneratorConfig | DiscriminatorConfig:
    """Stage 3: the config from the pickled constructor arguments and layer settings (the file's, whatever
    ``given`` says)."""
    args, kwargs, source, obj = part.spec
    to_config = discriminator_config_from_nvidia if name == "D" else generator_config_from_nvidia
    return _with_pickled_settings(to_config(kwargs, args, path, what=part.label, source=source), obj)


SNAPSHOT = Reader(
    FORMAT,
    read_pickle,
    classify_snapshot,
    configure_snapshot,
    same_names,
    w_avg_unknown="it is NaN in the file, as stylegan2-ada's training loop can leave it after its summary pass on a CPU",
)


def from_object(data, path=None, *, compute_w_avg: bool | int = False) -> Checkpoint:
    """A Checkpoint from an unpickled snapshot dict (see :func:`read_pickle`)."""
    return build_checkpoint(SNAPSHOT, data, path, compute_w_avg=compute_w_avg)


def load(path, *, compute_w_avg: bool | int = False) -> Checkpoint:
    """Read an NVIDIA network pickle (stylegan2-ada-pytorch, or the stylegan3 repository's StyleGAN2) without
    importing ``dnnlib`` / ``torch_utils`` and without executing anything it embeds. ``extra`` gets
    ``training_set_kwargs``, ``augment_pipe`` (class name, constructor arguments and tensors),
    ``nvidia_init_kwargs`` and ``nvidia_source``. ``compute_w_avg``: see :func:`~.base.settle_w_avg`."""
    path = check_input(path)
    return build_checkpoint(SNAPSHOT, read_pickle(path), path, compute_w_avg=compute_w_avg)


# ----------------------------------------------------------------------------------------------
# State dicts (torch.save'd G.state_dict(), or a dict of them under G / D / G_ema)


def classify_state_dict(obj, path=None) -> Contents:
    """Stage 2: one state dict (a generator's when it has mapping / synthesis tensors, else a discriminator's), or
    several under ``G`` / ``D`` / ``G_ema`` beside other entries."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"expected a state dict, got a {type(obj).__name__}", path)
    extra = {}
    if any(k in obj for k in NETWORK_NAMES):
        parts = {k: obj[k] for k in NETWORK_NAMES if obj.get(k) is not None}
        extra = {k: v for k, v in obj.items() if k not in NETWORK_NAMES}
    elif any(isinstance(k, str) and k.startswith(("mapping.", "synthesis.")) for k in obj):
        parts = {"G_ema": obj}
    else:
        parts = {"D": obj}
    return Contents({name: Part(f"'{name}'", sd) for name, sd in parts.items()}, extra)


def configure_state_dict(name: str, part: Part, given, path) -> GeneratorConfig | DiscriminatorConfig:
    """Stage 3: the architecture inferred from the tensors (``given``: a config to use instead, or overrides)."""
    if name == "D":
        return resolve_config(given, infer_discriminator_config, part.tensors, path, DiscriminatorConfig)
    return resolve_config(given, infer_generator_config, part.tensors, path, GeneratorConfig)


STATE_DICT = Reader("nvidia-state", torch_load, classify_state_dict, configure_state_dict, same_names)
