"""Official HyperInverter checkpoints (VinAIResearch/HyperInverter ``*.pt``) for a generator given separately.

The file holds ``state_dict`` (prefixes ``w_encoder.``, ``w_bar_encoder.``, ``hypernet.``, ``discriminator.``)
and ``opts``; the generator and its ``w_avg`` are not in it. It is read with ``torch.load(weights_only=True)``
(no code from the file runs), the network sizes are read off the tensors and checked against ``opts``, and
every part loads strictly. The official deltas are added to the stored NVIDIA weight before modulation, which
is sg2-core's offset unit, so they are used as they are.

:func:`load` returns what a file held (:class:`HyperCheckpoint`), as ``inv_encoders.load`` and ``inv_vae.load``
do; the method builds from a path as every method does: ``create_method("hyperinverter", generator=G,
weights=path)``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from sg2_core.checkpoints import CheckpointError  # the one class: sg2_core.CheckpointError
from sg2_core.encoders.trunk import UNITS_PER_STAGE
from sg2_core.nn.offsets import layer_key

from .hypernetwork import target_shapes
from .networks import HyperConfig, HyperNetworks

__all__ = ["HyperCheckpoint", "load", "read_networks", "networks_from_state"]

PREFIXES = ("w_encoder.", "w_bar_encoder.", "hypernet.", "discriminator.")
REQUIRED = ("w_encoder.", "w_bar_encoder.", "hypernet.")


@dataclass
class HyperCheckpoint:
    """What a file held, for the generator given (the file has none): the networks (W encoder, W-bar encoder,
    hypernetwork, and the discriminator where the file has one), the official file's ``opts``, the format
    (``'hyperinverter'``, or ``'native'`` for a file of ``python -m inv_hyper.train``) and the path."""

    networks: HyperNetworks
    generator: nn.Module
    opts: dict = field(default_factory=dict)
    format: str = "hyperinverter"
    path: Path | None = None

    # inv-hyper 0.4's load returned the method: calling the checkpoint, or reading the method's attributes
    # from it, still works with a DeprecationWarning until the next minor version.
    def __call__(self, images, init=None):
        return self._method()(images, init=init)

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._method(), name)

    def _method(self):
        warnings.warn(
            "inv_hyper.load returns a HyperCheckpoint after inv-hyper 0.4; build the method with "
            "create_method('hyperinverter', generator=G, weights=path) (using the checkpoint as the method goes "
            "away in the next minor version of inv-hyper)",
            DeprecationWarning,
            stacklevel=3,
        )
        if "_built" not in self.__dict__:
            from sg2_core import create_method

            self.__dict__["_built"] = create_method("hyperinverter", generator=self.generator, weights=self.networks)
        return self.__dict__["_built"]


def _trunk(state: dict, prefix: str, where: str) -> tuple[int, tuple[int, ...]]:
    """(num_layers, stage widths) of an IR-SE trunk, read off its unit shapes."""
    units = sorted({int(k[len(prefix) + 5 :].split(".")[0]) for k in state if k.startswith(prefix + "body.")})
    counts = {sum(c): n for n, c in UNITS_PER_STAGE.items()}
    if not units or units != list(range(len(units))) or len(units) not in counts:
        raise CheckpointError(
            f"{where}: {prefix}body has {len(units)} units; an IR-SE trunk has "
            f"{sorted(counts)} (IR-SE{'/'.join(map(str, UNITS_PER_STAGE))})"
        )
    num_layers = counts[len(units)]
    starts = [sum(UNITS_PER_STAGE[num_layers][:i]) for i in range(4)]
    widths = tuple(int(state[f"{prefix}body.{u}.res_layer.1.weight"].shape[0]) for u in starts)
    return num_layers, widths


def _check_hypernet_shapes(state: dict, generator, where: str) -> None:
    """Every regressor must predict a weight of the generator's shape (named layer, both shapes)."""
    wanted = {f"{name}.weight".replace(".", "_"): (name, shape) for name, shape in target_shapes(generator).items()}
    found = sorted({k.split(".")[2] for k in state if k.startswith("hypernet.weight_regressors.")})
    extra = [k for k in found if k not in wanted]
    if extra:
        names = [layer_key(k.removesuffix("_weight").replace("_", ".")) for k in extra]
        raise CheckpointError(
            f"{where}: its hypernetwork predicts layers the generator does not have: {names} "
            f"(a checkpoint for a {generator.img_resolution} px generator has "
            f"{list(target_shapes(generator))})"
        )
    for key, (name, shape) in wanted.items():  # generator order: the first layer that does not fit is named
        if key not in found:
            continue  # missing regressors are listed by the strict load
        w1, w2 = state[f"hypernet.weight_regressors.{key}.w1"], state[f"hypernet.weight_regressors.{key}.w2"]
        d, k = int(w1.shape[0]), shape[2]
        theirs = (int(w2.shape[1]) // (k * k), int(w1.shape[1]) // d, k, k)
        if theirs != tuple(shape) or int(w2.shape[1]) % (k * k) or int(w1.shape[1]) % d:
            raise CheckpointError(
                f"{where}: the checkpoint's hypernetwork predicts {name} weights of shape "
                f"{list(theirs)}, but the generator's {name}.weight is {list(shape)}; "
                "it was trained for another generator"
            )


def networks_from_state(state: dict, opts: dict | None, generator, *, where: str = "checkpoint") -> HyperNetworks:
    """HyperNetworks sized from an official ``state_dict`` (and ``opts``), loaded strictly, on the tensors'
    device (``meta`` tensors give a meta network: a layout check without memory)."""
    opts = dict(opts or {})
    unknown = sorted({k.split(".")[0] + "." for k in state if not k.startswith(PREFIXES)})
    if unknown:
        raise CheckpointError(
            f"{where}: unexpected state_dict prefixes {unknown}; an official HyperInverter "
            f"checkpoint has {list(PREFIXES)}"
        )
    missing = [p for p in REQUIRED if not any(k.startswith(p) for k in state)]
    if missing:
        raise CheckpointError(
            f"{where}: no {missing} weights; an official HyperInverter checkpoint has {list(PREFIXES)}"
        )
    if opts.get("target_shape_name", "conv_without_bias") != "conv_without_bias":
        raise CheckpointError(
            f"{where}: opts.target_shape_name={opts['target_shape_name']!r}; only "
            "'conv_without_bias' (the released models) is supported"
        )
    check_output_size(opts, generator, where)
    _check_hypernet_shapes(state, generator, where)

    num_layers, widths = _trunk(state, "w_bar_encoder.", where)
    w_layers, w_widths = _trunk(state, "w_encoder.", where)
    if w_layers != num_layers:
        raise CheckpointError(
            f"{where}: the W encoder is IR-SE{w_layers}, the W-bar encoder IR-SE{num_layers}; "
            "both must be the same depth"
        )
    regressor = next(k.rsplit(".", 1)[0] for k in state if k.startswith("hypernet.weight_regressors."))
    hidden = int(state[f"{regressor}.w1"].shape[0])
    if opts.get("hidden_dim") is not None and int(opts["hidden_dim"]) != hidden:
        raise CheckpointError(f"{where}: opts.hidden_dim={opts['hidden_dim']} but its regressors have D={hidden}")
    config = HyperConfig(
        widths=widths,
        w_encoder_widths=w_widths if w_widths != widths else None,
        num_layers=num_layers,
        feature_dim=int(state["w_bar_encoder.styles.0.convs.0.weight"].shape[0]),
        hidden_dim=hidden,
        extractor_dim=int(state[f"{regressor}.feature_extractor.0.weight"].shape[0]),
        encoder_size=256,
    )  # the reference always encodes at 256 px
    device = next(iter(state.values())).device
    with torch.device(device):
        networks = HyperNetworks.for_generator(
            generator, config, with_discriminator=any(k.startswith("discriminator.") for k in state)
        )
    load_strict(networks, state, where, "it does not fit HyperInverter for this generator")
    return networks


def load_strict(module: nn.Module, state: dict, where: str, what: str, aliases: dict | None = None) -> None:
    """Load ``state`` into ``module`` strictly, else one CheckpointError ``"{where}: {what}: ..."`` naming every
    missing, unexpected and mis-shaped key. ``aliases``: extra file keys that must equal the key they name
    (HyperStyle's per-block copies of its shared hypernetwork)."""
    own = module.state_dict()
    aliases = aliases or {}
    missing = sorted((set(own) | set(aliases)) - set(state))
    unexpected = sorted(set(state) - set(own) - set(aliases))
    shapes = [
        f"{k}: file {list(state[k].shape)}, expected {list(own[aliases.get(k, k)].shape)}"
        for k in sorted(set(state) & (set(own) | set(aliases)))
        if tuple(state[k].shape) != tuple(own[aliases.get(k, k)].shape)
    ]
    if missing or unexpected or shapes:
        parts = [
            f"missing keys {missing}" if missing else "",
            f"unexpected keys {unexpected}" if unexpected else "",
            f"mis-shaped {shapes}" if shapes else "",
        ]
        raise CheckpointError(f"{where}: {what}: " + "; ".join(p for p in parts if p))
    differ = [  # (meta tensors hold no values to compare)
        k for k, target in aliases.items() if not state[k].is_meta and not torch.equal(state[k], state[target])
    ]
    if differ:
        raise CheckpointError(
            f"{where}: {what}: the copies {differ} differ from the keys they copy {[aliases[k] for k in differ]}"
        )
    # official files store float32 (fixtures float16): the network's dtype, integer buffers kept
    module.load_state_dict(
        {k: state[k].to(v.dtype) for k, v in own.items()}, strict=True, assign=next(iter(own.values())).is_meta
    )


def check_output_size(opts: dict, generator, where: str) -> None:
    """An official file's ``opts.output_size``, where it has one, must be the generator's resolution."""
    size = opts.get("output_size")
    if size is not None and int(size) != generator.img_resolution:
        raise CheckpointError(
            f"{where}: it was trained for a {size} px generator (opts.output_size), the given "
            f"generator is {generator.img_resolution} px"
        )


def read_networks(path, generator) -> HyperNetworks:
    """The networks at ``path`` for ``generator`` (read on the CPU): an official checkpoint, or a
    ``.safetensors`` file of ours (``python -m inv_hyper.train``, sg2-core's native network format)."""
    return _read(Path(path), generator).networks


def read_torch_checkpoint(path: Path, what: str) -> dict:
    """An official ``*.pt`` file (HyperInverter's, HyperStyle's and its W encoder's) as ``{"state_dict", "opts"}``,
    read on the CPU with ``torch.load(weights_only=True)``: no code from the file runs. ``what`` names the file
    in the errors."""
    if not path.is_file():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickled code, a truncated file, not a torch file
        first = str(error).splitlines()[0] if str(error) else ""
        raise CheckpointError(f"{path}: not a readable {what} ({type(error).__name__}: {first})") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        got = sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"{path}: an official {what} is a dict with 'state_dict' and 'opts', got {got}")
    opts = ckpt.get("opts")  # argparse Namespaces cannot come through weights_only; dicts can
    return {"state_dict": ckpt["state_dict"], "opts": opts if isinstance(opts, dict) else {}}


def _read(path: Path, generator) -> HyperCheckpoint:
    if path.suffix == ".safetensors" and path.is_file():  # a missing file of either kind: the reader's error
        return _read_native(path, generator)
    ckpt = read_torch_checkpoint(path, "HyperInverter checkpoint")
    networks = networks_from_state(ckpt["state_dict"], ckpt["opts"], generator, where=str(path))
    return HyperCheckpoint(networks, generator, dict(ckpt["opts"]), "hyperinverter", path)


def _read_native(path: Path, generator) -> HyperCheckpoint:
    from sg2_core import load_networks

    loaded = load_networks(path)
    networks = loaded.get("networks")
    if not isinstance(networks, HyperNetworks):
        raise CheckpointError(
            f"{path}: holds {sorted(loaded)} but no HyperInverter 'networks' (a file written by "
            "python -m inv_hyper.train)"
        )
    if not networks.matches(generator):
        theirs = dict(networks.config.targets)
        mine = target_shapes(generator)
        diff = next(
            (
                f"{k}: file {list(theirs.get(k, ()))}, generator {list(mine.get(k, ()))}"
                for k in {**mine, **theirs}
                if theirs.get(k) != mine.get(k)
            ),
            "channels or w_dim differ",
        )
        raise CheckpointError(f"{path}: its networks were trained for another generator ({diff})")
    return HyperCheckpoint(networks, generator, {}, "native", path)


def load(path, generator, *, device=None, **method_options) -> HyperCheckpoint:
    """Read a HyperInverter file for ``generator`` (given separately: the file holds none): an official
    checkpoint or a file of ``python -m inv_hyper.train``. ``device``: move the networks there.

    inv-hyper 0.4 returned a ``HyperInverter`` (``load(path, G, phase1=...)``); method options still build one,
    with a DeprecationWarning, until the next minor version: use ``create_method("hyperinverter", generator=G,
    weights=path, ...)``.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: an unreadable or unsafe file, another layout, or networks for another generator.
    """
    ckpt = _read(Path(path), generator)
    if method_options:
        from sg2_core import create_method

        warnings.warn(
            "inv_hyper.load(path, G, **options) returning the method is deprecated and goes away in the next minor "
            "version of inv-hyper; "
            "use create_method('hyperinverter', generator=G, weights=path, **options)",
            DeprecationWarning,
            stacklevel=2,
        )
        placed = {} if device is None else {"device": device}
        return create_method("hyperinverter", generator=generator, weights=ckpt.networks, **placed, **method_options)
    if device is not None:
        ckpt.networks.to(device)
    return ckpt
