"""Reading the official pSp, e4e and ReStyle checkpoint files into our classes.

Such a file is a ``torch.save``'d dict: ``state_dict`` (keys ``encoder.*``, ``decoder.*`` for the rosinality
generator, optionally ``discriminator.*``), ``opts`` (the training options, a plain dict) and usually
``latent_avg`` (``[18, 512]``, ``[1, 512]`` or ``[512]``); e4e may hold its latent discriminator under
``discriminator_state_dict``. It is read with ``torch.load(weights_only=True)`` (sg2-core's reader), so
loading never runs code from the file. Which method wrote the file is told by its options: ReStyle's have
``n_iters_per_batch``; ``encoder_type`` names the encoder, and every name that the official ``set_encoder``
functions of pSp, e4e, ReStyle and HyperInverter accept is read (:data:`ENCODER_TYPES`, :data:`RESTYLE_TYPES`;
the W-only ``BackboneEncoderUsingLastLayerIntoW`` / ``ResNetEncoderUsingLastLayerIntoW`` are ``e4e-w`` when the
options are e4e's, see :data:`E4E_OPTIONS`, and ``psp-w`` otherwise; e4e's ``SingleStyleCodeEncoder`` is its
name for that network). The trunk (IR / IR-SE 50/100/152, or the ResNet34 of the ``ResNet*`` encoders), widths,
depth, input size and style width are read from the tensors' shapes, as HyperInverter's W-encoder loader picks
the trunk by domain, not by ``encoder_type``; so the reduced test layouts load through the same code as the
full-size ones.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from sg2_core.checkpoints import CheckpointError, rosinality
from sg2_core.checkpoints._io import check_input, torch_load
from sg2_core.checkpoints.base import check_state
from sg2_core.encoders import UNITS_PER_STAGE
from sg2_core.encoders.resnet import RESNET34_UNITS

from .networks import KINDS, W_ONLY, LatentCodesDiscriminator, StyleEncoder, StyleEncoderConfig, widths_of

# opts.encoder_type -> (kind, pyramid, head) in the files of pSp's, e4e's and HyperInverter's trainers (their
# set_encoder), and in ReStyle's (options with n_iters_per_batch). The trunk is read from the keys; the ResNet34
# names differ from their IR-SE twins only in it.
ENCODER_TYPES = {
    "GradualStyleEncoder": ("psp", True, "styles"),  # pSp, e4e, HyperInverter's pSp and e4e
    "ResNetGradualStyleEncoder": ("psp", True, "styles"),  # HyperInverter's pSp (ResNet34)
    "BackboneEncoderUsingLastLayerIntoWPlus": ("psp", False, "linear"),  # pSp
    "Encoder4Editing": ("e4e", True, "styles"),  # e4e, HyperInverter's e4e
    "BackboneEncoderUsingLastLayerIntoW": ("psp-w", False, "styles"),  # pSp, HyperInverter's pSp
    "ResNetEncoderUsingLastLayerIntoW": ("psp-w", False, "styles"),  # HyperInverter's pSp (ResNet34)
    "SingleStyleCodeEncoder": ("e4e-w", False, "styles"),  # e4e (its BackboneEncoderUsingLastLayerIntoW)
}
RESTYLE_TYPES = {
    "BackboneEncoder": ("restyle-psp", False, "styles"),
    "ResNetBackboneEncoder": ("restyle-psp", False, "styles"),
    "GradualStyleEncoder": ("restyle-psp", True, "styles"),
    "ResNetGradualStyleEncoder": ("restyle-psp", True, "styles"),
    "ProgressiveBackboneEncoder": ("restyle-e4e", False, "styles"),
    "ResNetProgressiveBackboneEncoder": ("restyle-e4e", False, "styles"),
    "Encoder4Editing": ("restyle-e4e", True, "styles"),  # not one of ReStyle's, read as e4e's on 6 channels
}
# HyperInverter's own files (its W-bar encoder, hypernetwork and phase-I W encoder together): inv-hyper reads them
HYPERINVERTER_TYPES = ("LayerWiseEncoder", "ResNetLayerWiseEncoder")
HYPERINVERTER_HINT = (
    "read it with inv_hyper.load(path, G) or create_method('hyperinverter', generator=G, weights=path) (inv-hyper)"
)
NAMES = {
    "psp": "pSp",
    "e4e": "e4e",
    "restyle-psp": "ReStyle-pSp",
    "restyle-e4e": "ReStyle-e4e",
    "psp-w": "pSp W-encoder",
    "e4e-w": "e4e W-encoder",
}
E4E_OPTIONS = ("w_discriminator_lambda", "delta_norm_lambda", "progressive_start")  # in e4e's opts, not pSp's
DEFAULT_OUTPUT_SIZE = 1024  # pSp's inference script fills it in when older files lack it


@dataclass
class EncoderCheckpoint:
    """What an official file held: the encoder (with its latent average), the generator read from
    ``decoder.*`` (or the one passed in), e4e's latent discriminator if present, and the options."""

    kind: str
    encoder: StyleEncoder
    generator: nn.Module | None = None
    discriminator: LatentCodesDiscriminator | None = None
    opts: dict = field(default_factory=dict)
    path: Path | None = None


def _prefixed(state: Mapping, prefix: str) -> dict:
    return {k[len(prefix) :]: v for k, v in state.items() if isinstance(k, str) and k.startswith(prefix)}


def detect_kind(opts: Mapping, path=None) -> tuple[str, bool, str]:
    """(kind, pyramid, head) from a file's options."""
    restyle = "n_iters_per_batch" in opts
    table = RESTYLE_TYPES if restyle else ENCODER_TYPES
    encoder_type = opts.get("encoder_type")
    if encoder_type is None:  # older files: the repositories' defaults
        encoder_type = (
            "BackboneEncoder" if restyle else "Encoder4Editing" if "stylegan_size" in opts else "GradualStyleEncoder"
        )
    if encoder_type in HYPERINVERTER_TYPES:
        raise CheckpointError(
            f"this is a HyperInverter checkpoint (opts.encoder_type {encoder_type!r}: its W-bar encoder and "
            f"hypernetwork), not a pSp/e4e/ReStyle encoder; {HYPERINVERTER_HINT}",
            path,
        )
    if encoder_type not in table:
        origin = "ReStyle" if restyle else "pSp/e4e/HyperInverter"
        raise CheckpointError(
            f"{origin} encoder_type {encoder_type!r} is not supported (supported: {', '.join(sorted(table))})", path
        )
    kind, pyramid, head = table[encoder_type]
    if kind == "psp-w" and any(k in opts for k in E4E_OPTIONS):
        kind = "e4e-w"
    return kind, pyramid, head


def _units(state: Mapping) -> int:
    return len({int(m.group(1)) for k in state if (m := re.match(r"body\.(\d+)\.", k))})


def encoder_config(
    kind: str, pyramid: bool, opts: Mapping, state: Mapping, start: bool, path=None, head: str = "styles"
) -> StyleEncoderConfig:
    """Our config from the options (sizes) and the tensors (trunk, input channels, widths, depth, style width)."""
    resnet = "conv1.weight" in state and "input_layer.0.weight" not in state  # ReStyle's / HyperInverter's ResNet34
    stem = "conv1.weight" if resnet else "input_layer.0.weight"
    linear = "linear.weight" if kind in W_ONLY or head == "linear" else "styles.0.linear.weight"
    needed = [stem, linear] + (["output_layer_2.3.weight"] if head == "linear" else [])
    missing = [k for k in needed if k not in state]
    if missing:
        raise CheckpointError(
            f"the encoder has no {', '.join(missing)} (keys 'encoder.{missing[0]}'): not a pSp-family encoder", path
        )
    units = _units(state)
    if resnet:
        if units != sum(RESNET34_UNITS):
            raise CheckpointError(
                f"the encoder's ResNet trunk (keys conv1, body) has {units} units; ResNet34 has {sum(RESNET34_UNITS)}",
                path,
            )
        num_layers, counts, mode = 34, RESNET34_UNITS, "resnet"
    else:
        depths = {sum(v): k for k, v in UNITS_PER_STAGE.items()}
        if units not in depths:
            raise CheckpointError(f"the encoder trunk has {units} units; IR-SE 50/100/152 have {sorted(depths)}", path)
        num_layers = depths[units]
        counts, mode = UNITS_PER_STAGE[num_layers], "ir_se" if "body.0.res_layer.5.fc1.weight" in state else "ir"
    # e4e's trainer writes stylegan_size, pSp's and ReStyle's output_size (whichever the file has)
    names = ("stylegan_size", "output_size") if kind in ("e4e", "e4e-w") else ("output_size", "stylegan_size")
    size = next((opts[n] for n in names if opts.get(n) is not None), DEFAULT_OUTPUT_SIZE)
    if not isinstance(size, int) or size < 4 or size & (size - 1):
        raise CheckpointError(f"opts output size {size!r} is not a power of two", path)
    convs = len({k for k in state if re.match(r"styles\.0\.convs\.\d+\.weight$", k)})
    try:
        widths = widths_of(state, counts)
    except KeyError as exc:
        key = exc.args[0]
        raise CheckpointError(
            f"the encoder trunk has no {key} (key 'encoder.{key}'): a stage's first unit", path
        ) from None
    try:
        return StyleEncoderConfig(
            kind=kind,
            n_styles=2 * int(math.log2(size)) - 2,
            in_channels=int(state[stem].shape[1]),
            input_size=16 * 2**convs if convs else 256,  # style 0 reads the stride-16 map down to 1x1
            style_dim=int(state[linear].shape[1 if head == "linear" else 0]),
            widths=widths,
            num_layers=num_layers,
            mode=mode,
            pyramid=pyramid,
            start_from_latent_avg=start,
            n_iters=int(opts.get("n_iters_per_batch", 5)),
            head=head,
        )
    except ValueError as exc:
        raise CheckpointError(f"{opts.get('encoder_type')!r}: {exc}", path) from None


def _strict(module: nn.Module, state: Mapping, what: str, path) -> None:
    """One error listing every missing, unexpected and mis-shaped key, then a strict, copy-free load."""
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    check_state(expected, state, what, path)
    module.load_state_dict(
        {k: v if v.dtype == torch.int64 else v.float() for k, v in state.items()}, strict=True, assign=True
    )


def _discriminator(state: Mapping, path) -> LatentCodesDiscriminator | None:
    if not state:
        return None
    linears = sorted({int(m.group(1)) for k in state if (m := re.match(r"mlp\.(\d+)\.weight$", k))})
    if not linears:
        raise CheckpointError("the discriminator has no 'mlp.*.weight' keys (not e4e's latent discriminator)", path)
    disc = LatentCodesDiscriminator(int(state[f"mlp.{linears[0]}.weight"].shape[1]), len(linears))
    _strict(disc, state, "the latent discriminator", path)
    return disc.eval()


def from_dict(obj, path=None, generator=None, kind: str | None = None) -> EncoderCheckpoint:
    """An :class:`EncoderCheckpoint` from an already loaded checkpoint dict (see :func:`load`)."""
    if not isinstance(obj, Mapping) or not isinstance(obj.get("state_dict"), Mapping):
        got = f"a dict with keys {sorted(map(str, obj))}" if isinstance(obj, Mapping) else f"a {type(obj).__name__}"
        raise CheckpointError(
            f"not a pSp/e4e/ReStyle checkpoint: expected a dict with 'state_dict' and 'opts', got {got}", path
        )
    opts = obj.get("opts") or {}
    if not isinstance(opts, Mapping):
        raise CheckpointError(f"opts is a {type(opts).__name__}, not a dict", path)
    state = obj["state_dict"]
    if any(isinstance(k, str) and k.startswith("w_bar_encoder.") for k in state):
        raise CheckpointError(
            f"this is a HyperInverter checkpoint (keys w_bar_encoder.*, hypernet.*), not a pSp/e4e/ReStyle encoder; "
            f"{HYPERINVERTER_HINT}",
            path,
        )
    found, pyramid, head = detect_kind(opts, path)
    if kind is not None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if kind in W_ONLY and found in W_ONLY:
            found = kind  # one network, two trainings: the caller names it
        elif kind != found:
            raise CheckpointError(
                f"this is a {NAMES[found]} checkpoint (opts.encoder_type "
                f"{opts.get('encoder_type')!r}), not a {NAMES[kind]} one; use the {found!r} "
                f"method or load(path, kind={found!r})",
                path,
            )
    enc_state = _prefixed(state, "encoder.")
    if not enc_state:
        raise CheckpointError("the state_dict has no 'encoder.*' keys", path)
    latent_avg = obj.get("latent_avg")
    start = bool(opts.get("start_from_latent_avg", latent_avg is not None)) or found.startswith("restyle")
    config = encoder_config(found, pyramid, opts, enc_state, start, path, head)

    meta = any(v.is_meta for v in enc_state.values() if isinstance(v, torch.Tensor))
    with torch.device("meta" if meta else "cpu"):
        net = StyleEncoder(config)
    _strict(net.encoder, enc_state, f"the {NAMES[found]} encoder", path)

    if generator is None and _prefixed(state, "decoder."):
        decoder = {"state_dict": {k: v for k, v in state.items() if k.startswith("decoder.")}}
        if latent_avg is not None:
            decoder["latent_avg"] = latent_avg
        generator = rosinality.from_dict(decoder, path).generator
    if latent_avg is None and start:
        w_avg = None if generator is None else generator.mapping.w_avg
        if w_avg is None or not torch.isfinite(w_avg).all():
            raise CheckpointError(
                f"the file has no latent_avg, which {NAMES[found]} starts from, and no generator "
                "w_avg is known to use instead",
                path,
            )
        latent_avg = w_avg.detach().cpu()
    if latent_avg is not None:
        try:
            net.set_latent_avg(latent_avg.float() if not latent_avg.is_meta else latent_avg)
        except ValueError as exc:
            raise CheckpointError(str(exc), path) from None
    if generator is not None and (generator.num_ws, generator.w_dim) != (config.n_styles, config.style_dim):
        raise CheckpointError(
            f"the encoder predicts {config.n_styles} codes of width {config.style_dim} but the "
            f"generator takes {generator.num_ws} of width {generator.w_dim}",
            path,
        )

    disc_state = _prefixed(state, "discriminator.") or obj.get("discriminator_state_dict") or {}
    return EncoderCheckpoint(
        found, net.eval(), generator, _discriminator(disc_state, path), dict(opts), None if path is None else Path(path)
    )


def load(path, generator=None, *, kind: str | None = None, device=None) -> EncoderCheckpoint:
    """Read an official pSp / e4e / ReStyle checkpoint file.

    Args:
        generator: use this generator instead of reading ``decoder.*`` (its ``num_ws`` and ``w_dim`` must
            match the encoder's codes).
        kind: refuse a file of another method (``'psp'``, ``'e4e'``, ``'restyle-psp'``, ``'restyle-e4e'``;
            ``'psp-w'`` and ``'e4e-w'`` read either W-encoder file, as they share the network).
        device: move the networks read from the file there (a given generator is never moved).

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: unreadable, truncated or unsafe file, another method's file, unsupported options;
            CheckpointKeyError (a subclass) listing every missing, unexpected and mis-shaped key.
    """
    path = check_input(path)
    given = generator
    ckpt = from_dict(torch_load(path), path, generator, kind)
    if device is not None:
        for net in (ckpt.encoder, ckpt.discriminator, None if given is not None else ckpt.generator):
            if net is not None:
                net.to(device)
    return ckpt
