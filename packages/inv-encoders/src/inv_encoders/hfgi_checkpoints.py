"""Reading the official HFGI checkpoint (``checkpoint/ckpt.pt`` of Tengfei-Wang/HFGI) into our classes.

The file is e4e's layout plus HFGI's two networks: ``state_dict`` with ``encoder.*`` (e4e's ``Encoder4Editing``),
``decoder.*`` (rosinality's generator), ``residue.*`` (the consultation encoder) and ``grid_align.*`` (ADA), and
``latent_avg`` and ``opts`` beside it. The e4e part is read by :func:`inv_encoders.checkpoints.from_dict`; HFGI's part
is loaded strictly (one error listing every missing, unexpected and mis-shaped key). Widths and channels are read
from the tensors' shapes; the conditioned layer is the official code's fixed one, the output of the 64x64 block's
upsampling conv (``b64.conv0``, its generator loop's ``i == 7``), at 64 px.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from sg2_core.checkpoints import CheckpointError
from sg2_core.checkpoints._io import check_input, torch_load

from .checkpoints import _strict
from .checkpoints import from_dict as e4e_from_dict
from .hfgi import ALIGNER_WIDTHS, CONSULTATION_WIDTHS, HFGIConfig, HFGINetwork
from .networks import StyleEncoder

OFFICIAL_LAYER, OFFICIAL_SIZE = "b64.conv0", 64
PREFIXES = ("residue.", "grid_align.")


@dataclass
class HFGICheckpoint:
    """What an official HFGI file held: e4e's encoder (with its latent average), HFGI's networks, the generator
    read from ``decoder.*`` (or the one passed in) and the options."""

    encoder: StyleEncoder
    hfgi: HFGINetwork
    generator: nn.Module | None = None
    opts: dict = field(default_factory=dict)
    path: Path | None = None


def _channels(state: Mapping, key: str, default: int, dim: int = 0) -> int:
    """A width from a tensor's shape; the default where the key is missing (the strict load then names it)."""
    t = state.get(key)
    return int(t.shape[dim]) if isinstance(t, torch.Tensor) and t.ndim > dim else default


def config_from_state(state: Mapping, input_size: int) -> HFGIConfig:
    """The config of the ``residue.*`` / ``grid_align.*`` tensors (prefixes kept), for images of ``input_size``."""
    stem = "grid_align.conv_layer1.0.weight"
    img_channels = _channels(state, stem, 6, dim=1) // 2
    aligner = [_channels(state, stem, ALIGNER_WIDTHS[0])] + [
        _channels(state, f"grid_align.conv_layer{i}.0.res_layer.1.weight", ALIGNER_WIDTHS[i - 1]) for i in (2, 3, 4)
    ]
    consultation = [_channels(state, "residue.conv_layer1.0.weight", CONSULTATION_WIDTHS[0])] + [
        _channels(state, f"residue.conv_layer{i}.0.res_layer.1.weight", CONSULTATION_WIDTHS[i - 1]) for i in (2, 3)
    ]
    return HFGIConfig(
        img_channels=img_channels,
        input_size=input_size,
        condition_layer=OFFICIAL_LAYER,
        condition_channels=_channels(state, "residue.condition_scale3.2.weight", 512),
        condition_size=OFFICIAL_SIZE,
        aligner_widths=tuple(aligner),
        consultation_widths=tuple(consultation),
    )


def hfgi_from_dict(obj, path=None, generator=None) -> HFGICheckpoint:
    """An :class:`HFGICheckpoint` from an already loaded checkpoint dict (see :func:`load_hfgi`)."""
    e4e = e4e_from_dict(obj, path, generator, kind="e4e")
    state = obj["state_dict"]
    parts = {k: v for k, v in state.items() if isinstance(k, str) and k.startswith(PREFIXES)}
    if not parts:
        raise CheckpointError(
            "the state_dict has no 'residue.*' or 'grid_align.*' keys: an e4e checkpoint, not HFGI's "
            "(read it with the 'e4e' method)",
            path,
        )
    config = config_from_state(parts, e4e.encoder.config.input_size)
    meta = any(v.is_meta for v in parts.values() if isinstance(v, torch.Tensor))
    with torch.device("meta" if meta else "cpu"):
        net = HFGINetwork(config)
    _strict(net, parts, "HFGI's ADA and consultation encoder", path)
    if e4e.generator is not None:
        try:
            net.check_generator(e4e.generator.synthesis)
        except ValueError as exc:
            raise CheckpointError(str(exc), path) from None
    return HFGICheckpoint(e4e.encoder, net.eval(), e4e.generator, e4e.opts, e4e.path)


def load_hfgi(path, generator=None, *, device=None) -> HFGICheckpoint:
    """Read an official HFGI checkpoint file (``torch.load(weights_only=True)``: no code from the file runs).

    Args:
        generator: use this generator instead of reading ``decoder.*`` (its ``num_ws`` and ``w_dim`` must match
            e4e's codes, its ``b64.conv0`` HFGI's conditions).
        device: move the networks read from the file there (a given generator is never moved).

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: unreadable or unsafe file, an e4e file without HFGI's networks, another method's file;
            CheckpointKeyError (a subclass) listing every missing, unexpected and mis-shaped key.
    """
    path = check_input(path)
    ckpt = hfgi_from_dict(torch_load(path), path, generator)
    if device is not None:
        for net in (ckpt.encoder, ckpt.hfgi, None if generator is not None else ckpt.generator):
            if net is not None:
                net.to(device)
    return ckpt
