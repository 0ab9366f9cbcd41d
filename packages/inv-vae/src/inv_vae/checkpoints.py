"""Reading AgileGAN encoder checkpoints: the official ``encoder.pt`` layout, and our native file.

The official file (flyingbread-elon/AgileGAN ``pretrain/encoder.pt``) is a ``torch.save``'d dict with ``opts``,
``state_dict`` (``encoder.*``: the VAE encoder, ``decoder.*``: the rosinality 1024 px generator whose mapping
network turns each z into a w) and optionally ``latent_avg`` (pSp's W average; unused in Z+). Like the
reference's ``get_keys``, a flat state dict is accepted too. It is read with ``torch.load(weights_only=True)``
(sg2-core's reader), so loading never runs code from the file. The encoder's sizes (number of styles, z width,
trunk widths and depth, input size and channels) are read off the tensors, so the reduced test layout loads
through the same code as the full-size one; the keys are then checked strictly (one error lists every
missing, unexpected and mis-shaped key).

A safetensors file written by ``sg2_core.save_networks({'encoder': VAEStyleEncoder, ...})`` loads too (that is
how trained weights are shipped); its optional ``generator`` network is read as the generator.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from sg2_core.checkpoints import CheckpointError, rosinality
from sg2_core.checkpoints._io import check_input, sniff, torch_load
from sg2_core.checkpoints.base import check_state
from sg2_core.encoders import UNITS_PER_STAGE

from .networks import VAEConfig, VAEStyleEncoder

__all__ = ["AgileCheckpoint", "encoder_config", "from_dict", "load"]

# Other families' files, told by their state-dict prefixes: (prefix, what it is, how to read it)
OTHER_PREFIXES = (
    ("hypernet.", "a HyperInverter checkpoint", "inv_hyper.load / method 'hyperinverter'"),
    ("w_bar_encoder.", "a HyperInverter checkpoint", "inv_hyper.load / method 'hyperinverter'"),
)


@dataclass
class AgileCheckpoint:
    """What a file held: the VAE encoder, the generator read from ``decoder.*`` / ``generator`` (or the one
    passed in, or None), the W average, the options, and the format ('agilegan' or 'native')."""

    encoder: VAEStyleEncoder
    generator: nn.Module | None = None
    latent_avg: torch.Tensor | None = None
    opts: dict = field(default_factory=dict)
    format: str = "agilegan"
    path: Path | None = None


def _prefixed(state: Mapping, prefix: str) -> dict:
    return {k[len(prefix) :]: v for k, v in state.items() if isinstance(k, str) and k.startswith(prefix)}


def _not_agilegan(obj: Mapping, state: Mapping, enc: Mapping, path) -> None:
    """A CheckpointError naming the family when the file is another method's (or no encoder at all)."""
    if "g_ema" in obj or "g" in obj:
        raise CheckpointError(
            "this is a rosinality generator checkpoint ('g_ema'), not an AgileGAN encoder; read it "
            "with sg2_core.load_checkpoint",
            path,
        )
    for prefix, what, how in OTHER_PREFIXES:
        if any(isinstance(k, str) and k.startswith(prefix) for k in state):
            raise CheckpointError(
                f"this is {what} ('{prefix}*' keys), not an AgileGAN encoder; read it with {how}", path
            )
    if not enc:
        keys = sorted({str(k).split(".")[0] + "." for k in state})[:6]
        raise CheckpointError(f"no 'encoder.*' keys (found {keys}): not an AgileGAN encoder checkpoint", path)
    if "fc_mu.weight" not in enc or "fc_var.weight" not in enc:
        opts = obj.get("opts") if isinstance(obj.get("opts"), Mapping) else {}
        family = "a ReStyle" if "n_iters_per_batch" in opts else "a pSp/e4e"
        raise CheckpointError(
            f"this is {family} encoder checkpoint (no encoder.fc_mu / encoder.fc_var: it predicts "
            "W+ codes, not a Gaussian in Z+); read it with inv_encoders.load",
            path,
        )


def encoder_config(state: Mapping, opts: Mapping | None = None, path=None) -> VAEConfig:
    """The encoder's config from its tensors (and ``opts.input_nc``, which must agree with them)."""
    needed = ["input_layer.0.weight", "styles.0.linear.weight", "fc_mu.weight", "body.0.res_layer.1.weight"]
    missing = [k for k in needed if k not in state]
    if missing:
        raise CheckpointError(
            f"the encoder has no {', '.join(missing)} (keys 'encoder.{missing[0]}'): not AgileGAN's VAEStyleEncoder",
            path,
        )
    units = len({int(m.group(1)) for k in state if (m := re.match(r"body\.(\d+)\.", k))})
    depths = {sum(v): k for k, v in UNITS_PER_STAGE.items()}
    if units not in depths:
        raise CheckpointError(f"the encoder trunk has {units} units; IR-SE 50/100/152 have {sorted(depths)}", path)
    num_layers = depths[units]
    firsts = [sum(UNITS_PER_STAGE[num_layers][:i]) for i in range(4)]
    n_styles = len({int(m.group(1)) for k in state if (m := re.match(r"styles\.(\d+)\.linear\.weight$", k))})
    convs = len({k for k in state if re.match(r"styles\.0\.convs\.\d+\.weight$", k)})
    in_channels = int(state["input_layer.0.weight"].shape[1])
    input_nc = (opts or {}).get("input_nc")
    if input_nc is not None and input_nc != in_channels:
        raise CheckpointError(
            f"opts.input_nc is {input_nc} but the encoder's input layer takes {in_channels} channels", path
        )
    try:
        return VAEConfig(
            n_styles=n_styles,
            z_dim=int(state["fc_mu.weight"].shape[0]),
            in_channels=in_channels,
            input_size=16 * 2**convs,  # style 0 reads the stride-16 map down to 1x1
            widths=tuple(int(state[f"body.{u}.res_layer.1.weight"].shape[0]) for u in firsts),
            num_layers=num_layers,
            mode="ir_se" if "body.0.res_layer.5.fc1.weight" in state else "ir",
        )
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"cannot size the encoder from its tensors: {exc}", path) from None


def _strict(module: nn.Module, state: Mapping, what: str, path) -> None:
    """One error listing every missing, unexpected and mis-shaped key, then a strict, copy-free load."""
    check_state({k: tuple(v.shape) for k, v in module.state_dict().items()}, state, what, path)
    module.load_state_dict(
        {k: v if v.dtype == torch.int64 else v.float() for k, v in state.items()}, strict=True, assign=True
    )


def check_generator(config: VAEConfig, generator, path=None) -> None:
    """The encoder gives ``n_styles`` z of width ``z_dim``: one per W+ entry of ``generator``, mapped by it."""
    if (generator.num_ws, generator.z_dim) != (config.n_styles, config.z_dim):
        raise CheckpointError(
            f"the encoder predicts {config.n_styles} z of width {config.z_dim} but the generator "
            f"takes {generator.num_ws} W+ entries mapped from z of width {generator.z_dim}",
            path,
        )


def from_dict(obj, path=None, generator=None) -> AgileCheckpoint:
    """An :class:`AgileCheckpoint` from an already loaded official checkpoint dict (see :func:`load`).
    Meta tensors give a meta encoder (a layout check without memory)."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"not an AgileGAN checkpoint: expected a dict, got a {type(obj).__name__}", path)
    state = obj["state_dict"] if isinstance(obj.get("state_dict"), Mapping) else obj
    opts = obj.get("opts") or {}
    if not isinstance(opts, Mapping):
        raise CheckpointError(f"opts is a {type(opts).__name__}, not a dict", path)
    enc = _prefixed(state, "encoder.")
    _not_agilegan(obj, state, enc, path)
    config = encoder_config(enc, opts, path)
    meta = any(v.is_meta for v in enc.values() if isinstance(v, torch.Tensor))
    with torch.device("meta" if meta else "cpu"):
        net = VAEStyleEncoder(config)
    _strict(net, enc, "the AgileGAN encoder", path)

    latent_avg = obj.get("latent_avg")
    if generator is None and _prefixed(state, "decoder."):
        decoder = {"state_dict": {k: v for k, v in state.items() if k.startswith("decoder.")}}
        if latent_avg is not None:  # pSp's W average of the decoder: its w_avg
            decoder["latent_avg"] = latent_avg
        generator = rosinality.from_dict(decoder, path).generator
    if generator is not None:
        check_generator(config, generator, path)
    return AgileCheckpoint(
        net.eval(), generator, latent_avg, dict(opts), "agilegan", None if path is None else Path(path)
    )


def _from_native(path: Path, generator) -> AgileCheckpoint:
    from sg2_core import Generator, load_networks

    networks = load_networks(path)
    encoder = networks.get("encoder")
    if not isinstance(encoder, VAEStyleEncoder):
        held = {name: type(net).__name__ for name, net in networks.items()}
        raise CheckpointError(
            f"this sg2-toolkit file holds {held}, not an AgileGAN encoder (a VAEStyleEncoder named 'encoder')", path
        )
    stored = networks.get("generator")
    if generator is None and isinstance(stored, Generator):
        generator = stored
    if generator is not None:
        check_generator(encoder.config, generator, path)
    return AgileCheckpoint(encoder.eval(), generator, None, dict(networks.extra.get("opts", {})), "native", path)


def load(path, generator=None, *, device=None) -> AgileCheckpoint:
    """Read an AgileGAN encoder file: the official ``encoder.pt`` layout or our native safetensors file.

    Args:
        generator: use this generator instead of the file's ``decoder.*`` (its ``num_ws`` and ``z_dim`` must
            match the encoder's ``n_styles`` and ``z_dim``); never moved.
        device: move the networks read from the file there.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: unreadable or unsafe file, another method's checkpoint, a generator that does not fit;
            CheckpointKeyError (a subclass) listing every missing, unexpected and mis-shaped key.
    """
    path = check_input(path)
    given = generator
    if sniff(path) == "safetensors":
        ckpt = _from_native(path, generator)
    else:
        ckpt = from_dict(torch_load(path), path, generator)
    if device is not None:
        ckpt.encoder.to(device)
        if ckpt.generator is not None and given is None:
            ckpt.generator.to(device)
    return ckpt
