"""Official HyperStyle checkpoints (yuval-alaluf/hyperstyle): ``hyperstyle_ffhq.pt`` and its W encoder file.

The HyperStyle file holds ``state_dict`` (``hypernet.``, and ``decoder.``: the rosinality generator it was trained
on, which sg2-core's rosinality reader reads, ``latent_avg`` as its ``w_avg``), ``opts`` and ``latent_avg``. Its W
encoder is a separate pSp-format file (``faces_w_encoder.pt``: ``encoder.`` = e4e's W encoder, plus a ``decoder.``
copy and ``opts``). Files are read with ``torch.load(weights_only=True)`` (no code from the file runs); the sizes
are read off the tensors and checked against ``opts`` and the generator, and each part loads strictly: every
missing, unexpected or mis-shaped key is named. The file's per-block copies of the shared kernel hypernetwork
(``refinement_blocks.{i}.hypernet.*``) must equal ``shared_weight_hypernet.*``.

Our own files (``python -m inv_hyper.train --method hyperstyle``) are sg2-core native ``.safetensors``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from sg2_core.checkpoints import CheckpointError
from sg2_core.encoders import RESNET34_UNITS

from .checkpoints import _trunk, check_output_size, load_strict, read_torch_checkpoint
from .hypernetwork import target_shapes
from .hyperstyle import HyperStyleConfig, HyperStyleNetworks

__all__ = ["networks_from_state", "read_hyperstyle"]

ENCODER_TYPE = "SharedWeightsHyperNetResNet"


def _part(state: dict, prefix: str) -> dict:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def _config(hyper: dict, opts: dict, generator, where: str) -> HyperStyleConfig:
    """The network sizes and tuned/shared layers of an official ``hypernet.`` state, checked against the
    generator and the file's options."""
    encoder_type = opts.get("encoder_type", ENCODER_TYPE)
    if encoder_type != ENCODER_TYPE:
        raise CheckpointError(
            f"{where}: opts.encoder_type={encoder_type!r}; only {ENCODER_TYPE!r} (the released faces, cars and "
            "wild models) is supported"
        )
    check_output_size(opts, generator, where)
    if "conv1.weight" not in hyper or not any(k.startswith("refinement_blocks.") for k in hyper):
        raise CheckpointError(f"{where}: no hypernetwork ('hypernet.conv1', 'hypernet.refinement_blocks') in it")
    input_nc = int(hyper["conv1.weight"].shape[1])
    if input_nc != 2 * generator.img_channels:
        raise CheckpointError(
            f"{where}: its hypernetwork reads {input_nc} channels (target and reconstruction); the generator's "
            f"images have {generator.img_channels}, so it needs {2 * generator.img_channels}"
        )
    starts = [sum(RESNET34_UNITS[:i]) for i in range(4)]
    widths = tuple(int(hyper[f"body.{u}.conv1.weight"].shape[0]) for u in starts if f"body.{u}.conv1.weight" in hyper)
    if len(widths) != 4:
        raise CheckpointError(f"{where}: its hypernetwork's trunk is not a ResNet34 (body.0..15)")
    names = list(target_shapes(generator))
    blocks = sorted({int(k.split(".")[1]) for k in hyper if k.startswith("refinement_blocks.")})
    if blocks[-1] >= len(names):
        raise CheckpointError(
            f"{where}: it tunes layer index {blocks[-1]}, but the generator has {len(names)} weight layers "
            f"({names}); it was trained for another generator"
        )
    tuned = [names[i] for i in blocks]
    listed = str(opts.get("layers_to_tune", "") or "")
    if listed and sorted(int(i) for i in listed.split(",")) != blocks:
        raise CheckpointError(f"{where}: opts.layers_to_tune={listed!r} but its refinement blocks are {blocks}")
    shared = [names[i] for i in blocks if f"refinement_blocks.{i}.linear.weight" in hyper]
    plain = [i for i in blocks if names[i] not in shared]
    if shared and "shared_weight_hypernet.w2" not in hyper:
        raise CheckpointError(f"{where}: shared refinement blocks but no 'hypernet.shared_weight_hypernet.w2'")

    def first_conv_width(i: int) -> int:
        return int(hyper[f"refinement_blocks.{i}.convs.0.weight"].shape[0])

    last_conv = max(int(k.split(".")[3]) for k in hyper if k.startswith(f"refinement_blocks.{blocks[0]}.convs."))
    config = HyperStyleConfig(
        widths=widths,
        code_dim=int(hyper[f"refinement_blocks.{blocks[0]}.convs.{last_conv}.weight"].shape[0]),
        shared_inner=first_conv_width(names.index(shared[0])) if shared else HyperStyleConfig.shared_inner,
        inner=first_conv_width(plain[0]) if plain else HyperStyleConfig.inner,
        encoder_size=256,  # the reference's blocks assume 16x16 maps: 256 px input
    )
    config = config.for_generator(generator, tuned)
    # the file's sharing, not our rule, decides; the shared hypernetwork predicts one shape
    shapes = dict(config.layers)
    if len({shapes[n] for n in shared}) > 1:
        raise CheckpointError(
            f"{where}: its shared kernel hypernetwork serves layers of different shapes in this generator: "
            f"{ {n: list(shapes[n]) for n in shared} }; it was trained for another generator"
        )
    return HyperStyleConfig(**{**config.__dict__, "shared": tuple(shared)})


def networks_from_state(
    state: dict,
    opts: dict | None,
    generator,
    *,
    w_encoder_state: dict | None = None,
    phase1: str = "",
    where="checkpoint",
) -> HyperStyleNetworks:
    """HyperStyleNetworks from an official ``state_dict`` (``hypernet.``; ``decoder.`` accepted, it is the
    generator) and, when given, the W encoder file's ``state_dict`` (``encoder.``); without one, ``phase1`` names the
    W-space method that starts it. On the tensors' device (``meta`` tensors: a layout check without memory)."""
    opts = dict(opts or {})
    unknown = sorted({k.split(".")[0] + "." for k in state if not k.startswith(("hypernet.", "decoder."))})
    if unknown:
        raise CheckpointError(
            f"{where}: unexpected state_dict prefixes {unknown}; an official HyperStyle checkpoint has "
            "['hypernet.', 'decoder.']"
        )
    hyper = _part(state, "hypernet.")
    config = _config(hyper, opts, generator, where)
    w_state = None
    if w_encoder_state is not None:
        w_state = _part(w_encoder_state, "encoder.")
        if not w_state:
            raise CheckpointError(f"{where}: the W encoder file has no 'encoder.' weights")
        num_layers, w_widths = _trunk(w_state, "", f"{where} (W encoder)")
        if num_layers != 50:
            raise CheckpointError(f"{where}: the W encoder is IR-SE{num_layers}; e4e's W encoder is IR-SE50")
        config = HyperStyleConfig(**{**config.__dict__, "w_encoder_widths": w_widths, "phase1": ""})
    elif not phase1:
        raise CheckpointError(
            f"{where}: HyperStyle starts from a W code: give its W encoder file (w_encoder='faces_w_encoder.pt') "
            "or a W-space method (phase1='e4e-w')"
        )
    else:
        config = HyperStyleConfig(**{**config.__dict__, "phase1": phase1})
    device = next(iter(hyper.values())).device
    with torch.device(device):
        networks = HyperStyleNetworks(config)
    aliases = networks.hypernet.shared_aliases()
    load_strict(networks.hypernet, hyper, where, "its hypernetwork ('hypernet.') does not fit", aliases)
    if w_state is not None:
        load_strict(networks.w_encoder, w_state, where, "its W encoder ('encoder.') does not fit")
    return networks


def read_hyperstyle(path, generator, *, w_encoder=None, phase1: str = "") -> HyperStyleNetworks:
    """The networks of an official HyperStyle file (and of its W encoder file ``w_encoder``), or of a native
    ``.safetensors`` file of ours, for ``generator`` (read on the CPU)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        if w_encoder is not None:
            raise ValueError("w_encoder= goes with an official HyperStyle file; our .safetensors files hold their own")
        return _read_native(path, generator)
    ckpt = read_torch_checkpoint(path, "HyperStyle checkpoint")
    w_state = None
    if w_encoder is not None:
        w_file = read_torch_checkpoint(Path(w_encoder), "W encoder checkpoint")
        kind = w_file["opts"].get("encoder_type", "WEncoder")
        if kind != "WEncoder":
            raise CheckpointError(f"{w_encoder}: opts.encoder_type={kind!r}; HyperStyle's W encoder is 'WEncoder'")
        w_state = w_file["state_dict"]
    return networks_from_state(
        ckpt["state_dict"], ckpt["opts"], generator, w_encoder_state=w_state, phase1=phase1, where=str(path)
    )


def _read_native(path: Path, generator) -> HyperStyleNetworks:
    from sg2_core import load_networks

    networks = load_networks(path).get("networks")
    if not isinstance(networks, HyperStyleNetworks):
        raise CheckpointError(f"{path}: holds no HyperStyle 'networks' (a file written by python -m inv_hyper.train)")
    if not networks.matches(generator):
        raise CheckpointError(f"{path}: its networks were trained for another generator (layers, channels or w_dim)")
    return networks
