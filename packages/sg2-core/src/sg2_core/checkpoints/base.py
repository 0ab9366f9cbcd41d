"""What every format shares: the ``Checkpoint`` result, the stages of reading one, key/shape checks,
building networks from tensors, and inferring an architecture from NVIDIA-named tensors.

Reading a checkpoint is one pipeline for every format. ``load_checkpoint`` reads the file (stage 1: bytes ->
the format's raw object, detecting the format unless given); :func:`build_checkpoint` runs the rest in order:

2. classify: which networks the file holds, and everything else (``Reader.classify`` -> :class:`Contents`);
3. configure: each network's architecture, inferred from its tensors, translated from the file's constructor
   arguments or read from the file (``Reader.configure``);
4. map keys: its tensors under our names (``Reader.map_keys``);
5. build: the network, its state loaded strictly (:func:`build_network`); one error lists every mismatch;
6. settle ``w_avg``: a ``latent_avg`` kept apart from the networks goes in, an unknown one is estimated or
   warned about (:func:`settle_w_avg`).

Each format module provides its steps as a :class:`Reader`.
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from sg2_core.checkpoints.errors import CheckpointError, CheckpointKeyError, CheckpointWarning
from sg2_core.nn.config import DiscriminatorConfig, GeneratorConfig
from sg2_core.nn.discriminator import Discriminator
from sg2_core.nn.generator import Generator

NETWORK_NAMES = ("G", "D", "G_ema")


@dataclass
class Checkpoint:
    """The networks of a checkpoint (each ``None`` when the file has none) and what else it held.

    ``extra`` holds the format's other entries, e.g. ``training_set_kwargs`` and ``augment_pipe`` of an
    NVIDIA pickle, ``args`` / ``ada_aug_p`` / ``optimizer_states`` of a rosinality training checkpoint,
    or whatever was passed to :func:`sg2_core.checkpoints.native.save`. ``format`` names the format the
    checkpoint was read from.
    """

    G: Generator | None = None
    D: Discriminator | None = None
    G_ema: Generator | None = None
    extra: dict = field(default_factory=dict)
    format: str | None = None
    path: Path | None = None

    @property
    def generator(self) -> Generator | None:
        """The generator to sample from: ``G_ema`` when present, else ``G``."""
        return self.G_ema if self.G_ema is not None else self.G

    def networks(self) -> dict[str, nn.Module]:
        """The networks that are present, by name (``G``, ``D``, ``G_ema``)."""
        return {name: getattr(self, name) for name in NETWORK_NAMES if getattr(self, name) is not None}

    def to(self, device) -> Checkpoint:
        for net in self.networks().values():
            net.to(device)
        return self


# ----------------------------------------------------------------------------------------------
# Reading: the stages after the file is read, the same for every format


@dataclass
class Part:
    """One network as a file holds it, before it is built."""

    label: str  # how messages name it, in the file's own terms: "'g_ema'"
    tensors: Mapping  # its tensors under the file's names
    spec: object = None  # what the file says of its architecture besides the tensors (None: inferred from them)
    cls: type | None = None  # the class to build; None: Generator or Discriminator, after the config


@dataclass
class Contents:
    """A file after the classify stage."""

    networks: dict[str, Part]  # by our name (G, D, G_ema), in the order they are built
    extra: dict = field(default_factory=dict)  # everything else: the Checkpoint's extra
    latent_avg: torch.Tensor | None = None  # a w_avg the file keeps apart from the generators (rosinality, pSp)
    errors: list[CheckpointKeyError] = field(default_factory=list)  # of the file as a whole, listed after the networks'


@dataclass(frozen=True)
class Reader:
    """One format's own steps; :func:`build_checkpoint` runs them in order."""

    format: str
    read: Callable[[Path], object]  # 1. the file -> the format's raw object
    classify: Callable[[object, Path | None], Contents]  # 2. the networks present, and the rest
    configure: Callable  # 3. (name, part, given config or overrides, path) -> the network's config
    map_keys: Callable  # 4. (name, part, config, path) -> its tensors under our names
    w_avg_unknown: str = "it is NaN in the file"  # why a NaN w_avg is unknown, for settle_w_avg's warning


def same_names(name: str, part: Part, config, path) -> Mapping:
    """Stage 4 of the formats whose names are ours (NVIDIA's, our own)."""
    return part.tensors


def build_checkpoint(
    reader: Reader, raw, path=None, *, g_config=None, d_config=None, compute_w_avg: bool | int = False
) -> Checkpoint:
    """Stages 2-6 on ``raw``, what ``reader.read`` made of the file at ``path``.

    ``g_config`` / ``d_config``: for the formats that infer the architecture, a config to use instead, or a
    dict of overrides for the inferred one. ``compute_w_avg``: see :func:`settle_w_avg`.
    """
    contents = reader.classify(raw, path)
    given = {"G": g_config, "G_ema": g_config, "D": d_config}
    networks = build_networks(reader, contents, path, given)
    ckpt = Checkpoint(**networks, extra=contents.extra, format=reader.format, path=None if path is None else Path(path))
    if contents.latent_avg is not None:
        _use_latent_avg(ckpt, contents.latent_avg, path)
    settle_w_avg(ckpt, compute_w_avg, path, reader.w_avg_unknown)
    return ckpt


def build_networks(reader: Reader, contents: Contents, path=None, given: Mapping | None = None) -> dict:
    """Stages 3-5 for every network of ``contents``: ``{name: network}``.

    Mismatched tensors are collected over all networks and raised together (a CheckpointKeyError when only one
    network or the file as a whole mismatches); any other error is raised at once.
    """
    networks, errors = {}, []
    seen = set()  # the tensors were just read from the file: taken without a copy (a shared one once)
    for name, part in contents.networks.items():
        try:
            config = reader.configure(name, part, (given or {}).get(name), path)
            state = reader.map_keys(name, part, config, path)
            networks[name] = build_network(config, state, part.label, path, seen=seen, cls=part.cls)
        except CheckpointKeyError as exc:
            errors.append(exc)
    errors += contents.errors
    if errors:
        raise errors[0] if len(errors) == 1 else CheckpointError("; ".join(e.cause for e in errors), path)
    return networks


def _use_latent_avg(ckpt: Checkpoint, latent_avg: torch.Tensor, path) -> None:
    gens = [g for g in (ckpt.G, ckpt.G_ema) if g is not None]
    if not gens:
        return
    w_dim = gens[0].w_dim
    if latent_avg.numel() != w_dim:
        raise CheckpointError(f"latent_avg has {latent_avg.numel()} values, the generator's w_dim is {w_dim}", path)
    for g in gens:
        g.mapping.w_avg.copy_(latent_avg)
    ckpt.extra["w_avg_source"] = "latent_avg"


# ----------------------------------------------------------------------------------------------
# Building networks


def describe(net: nn.Module) -> str:
    """One line: class, resolution, dims and channel table (for messages and the converter's report)."""
    c = net.config
    if isinstance(c, GeneratorConfig):
        channels = {r: c.channels(r) for r in c.block_resolutions}
        return (
            f"Generator {c.resolution}px, z {c.z_dim}, w {c.w_dim}, {c.mapping_layers} mapping layers, "
            f"channels {channels}"
        )
    res = [2**k for k in range(2, c.resolution.bit_length())]
    return f"Discriminator {c.resolution}px, channels { {r: c.channels(r) for r in res} }"


def _shape_of(value):
    return tuple(value.shape) if isinstance(value, torch.Tensor) else None


def check_state(expected: Mapping[str, tuple], got: Mapping, what: str, path=None, optional=(), hint: str = ""):
    """Raise one CheckpointKeyError listing every missing, unexpected and mis-shaped key."""
    optional = set(optional)
    missing = [(k, shape) for k, shape in expected.items() if k not in got and k not in optional]
    unexpected = [
        (k, _shape_of(v) if isinstance(v, torch.Tensor) else f"a {type(v).__name__}")
        for k, v in got.items()
        if k not in expected
    ]
    mismatched = []
    for k, shape in expected.items():
        if k in got:
            v = got[k]
            if not isinstance(v, torch.Tensor):
                mismatched.append((k, shape, f"a {type(v).__name__}, not a tensor"))
            elif tuple(v.shape) != tuple(shape):
                mismatched.append((k, shape, tuple(v.shape)))
    if missing or unexpected or mismatched:
        raise CheckpointKeyError(what, missing, unexpected, mismatched, path=path, hint=hint)


class _Uninitialised(TorchFunctionMode):
    """Tensor factories return uninitialised CPU memory while active (the checkpoint's values replace it).

    A network built this way costs little: the pages of an untouched ``torch.empty`` are never faulted in,
    and scaling such a tensor by a number (``randn(...) / lr_multiplier``) returns it as it is instead of
    touching every page (page faults made that 1.2 s of a 256 px config-F load). The meta device would be
    as cheap, but its first arithmetic op (the FIR filter set-up) imports ``torch._dynamo``: 8-13 s in a
    fresh process.
    """

    _FACTORIES = {torch.randn, torch.rand, torch.zeros, torch.ones, torch.empty, torch.full}
    _SCALINGS = {
        torch.Tensor.__truediv__,
        torch.Tensor.__mul__,
        torch.Tensor.__rmul__,
        torch.Tensor.div,
        torch.Tensor.mul,
        torch.div,
        torch.mul,
    }

    def __init__(self):
        super().__init__()
        self.made = {}  # id -> tensor (kept alive, so ids stay unique)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self._FACTORIES and kwargs.get("device") is None and "out" not in kwargs:
            size = args[0] if func is torch.full or (len(args) == 1 and not isinstance(args[0], int)) else args
            t = torch.empty(tuple(size), dtype=kwargs.get("dtype"))
            self.made[id(t)] = t
            return t
        if (
            func in self._SCALINGS
            and len(args) == 2
            and not kwargs
            and id(args[0]) in self.made
            and isinstance(args[1], (int, float))
            and args[0].is_floating_point()
        ):
            return args[0]  # its values are never used
        return func(*args, **kwargs)


def skeleton(config, cls: type | None = None) -> nn.Module:
    """``cls(config)`` (Generator / Discriminator by default) with uninitialised parameters, on the CPU.

    Every tensor the constructor makes is either replaced by a checkpoint's tensor or computed from the
    config (the FIR filters, which are not built by the factories above), so nothing random is left.
    """
    if cls is None:
        cls = Generator if isinstance(config, GeneratorConfig) else Discriminator
    with _Uninitialised():
        return cls(config)


@functools.lru_cache(maxsize=16)
def _expected_shapes(config) -> tuple:
    return tuple((k, tuple(v.shape)) for k, v in skeleton(config).state_dict().items())


def expected_shapes(config) -> dict[str, tuple]:
    """``{key: shape}`` of the network's state dict for ``config``."""
    return dict(_expected_shapes(config))


def build_network(
    config,
    state_dict: Mapping,
    what: str,
    path=None,
    hint: str = "",
    seen: set | None = None,
    cls: type | None = None,
) -> nn.Module:
    """A network for ``config`` holding ``state_dict`` (our names), in eval mode on the CPU.

    The keys and shapes are checked first (one error lists every difference). Without ``seen`` the
    tensors are copied, so the network never shares memory with the caller's. A reader of freshly loaded
    tensors passes one set for all the networks of a file instead: a tensor is then taken as it is unless
    its memory is already taken (rosinality's ``g`` and ``g_ema`` may share it), which spares a copy of
    every weight.

    ``cls``: the class, when not the Generator or Discriminator of the config. Such a class (one registered
    with ``register_network``) is built normally, as its constructor may compute tensors the file does not hold.
    """
    if cls is not None and cls not in (Generator, Discriminator):
        reference = skeleton(config, cls).state_dict()  # the key check on a cheap skeleton
        check_state({k: tuple(v.shape) for k, v in reference.items()}, state_dict, what, path, hint=hint)
        net = cls(config)
        net.load_state_dict({k: state_dict[k].to(reference[k].dtype) for k in reference}, strict=True)
        return net.eval()
    net = skeleton(config)
    reference = net.state_dict()
    check_state({k: tuple(v.shape) for k, v in reference.items()}, state_dict, what, path, hint=hint)
    tensors = {}
    for key, ref in reference.items():
        t = state_dict[key].detach().to("cpu")
        if t.dtype != ref.dtype:
            t = t.to(ref.dtype)  # a fresh tensor
        elif seen is None or t.untyped_storage().data_ptr() in seen or not t.is_contiguous():
            t = t.clone(memory_format=torch.contiguous_format)
        if seen is not None:
            seen.add(t.untyped_storage().data_ptr())
        tensors[key] = t
    net.load_state_dict(tensors, strict=True, assign=True)
    return net.eval()


def settle_w_avg(ckpt: Checkpoint, compute_w_avg: bool | int, path, why: str) -> None:
    """Generators whose ``mapping.w_avg`` is unknown (not finite) get ``mean_w`` when asked, else one warning.

    An unknown ``w_avg`` stays NaN rather than becoming zeros: sampling with ``truncation_psi=1`` never reads
    it, truncation then fails loudly instead of pulling towards 0, and no writer stores a made-up value.
    ``compute_w_avg``: ``True`` (10000 samples) or a number of samples; ``why`` says how it came to be unknown.
    """
    unknown = [
        name
        for name in ("G", "G_ema")
        if getattr(ckpt, name) is not None and not torch.isfinite(getattr(ckpt, name).mapping.w_avg).all()
    ]
    if not unknown:
        return
    if compute_w_avg:
        n = 10000 if compute_w_avg is True else int(compute_w_avg)
        for name in unknown:
            net = getattr(ckpt, name)
            with torch.no_grad():
                net.mapping.w_avg.copy_(net.mean_w(n))
        ckpt.extra["w_avg_source"] = f"mean_w({n})"
        return
    names = " and ".join(f"'{n}'" for n in unknown)
    warnings.warn(
        f"{path}: the mapping.w_avg of {names} is unknown: {why}. It is kept as NaN, so truncation "
        "cannot be used; load with compute_w_avg=True or convert with --compute-w-avg to estimate it with "
        "Generator.mean_w()",
        CheckpointWarning,
        stacklevel=3,
    )
    ckpt.extra["w_avg_source"] = "unknown"


# ----------------------------------------------------------------------------------------------
# Architecture inference


def solve_channels(channels: Mapping[int, int], what: str = "network", path=None) -> tuple[int, int]:
    """``(channel_base, channel_max)`` with ``min(channel_base // res, channel_max) == channels[res]`` for
    every resolution; the official 32768 / 512 are preferred where they fit, then powers of two."""
    table = dict(sorted(channels.items()))
    if any(not isinstance(c, int) or c < 1 for c in table.values()):
        raise CheckpointError(f"{what}: invalid channel counts {table}", path)
    top = max(table.values())
    for cmax in ([512] if 512 > top else []) + [top]:
        lo, hi = 1, None
        for res, c in table.items():
            lo = max(lo, c * res)
            if c < cmax:  # not clamped: channel_base // res == c exactly
                hi = (c + 1) * res - 1 if hi is None else min(hi, (c + 1) * res - 1)
        if hi is not None and lo > hi:
            continue
        if lo <= 32768 and (hi is None or 32768 <= hi):
            base = 32768
        else:
            base = 1 << (lo - 1).bit_length()  # smallest power of two >= lo
            if hi is not None and base > hi:
                base = lo
        assert all(min(base // r, cmax) == c for r, c in table.items())
        return base, cmax
    raise CheckpointError(
        f"{what}: the channel counts per resolution {table} cannot be written as min(channel_base // res, "
        "channel_max) for any channel_base and channel_max, so the network cannot be rebuilt",
        path,
    )


def dim(sd: Mapping, candidates, what: str, path=None) -> int:
    """The size ``dim`` of the first present tensor among ``candidates = [(key, dim), ...]``."""
    for key, d in candidates:
        v = sd.get(key)
        if isinstance(v, torch.Tensor) and v.ndim > d:
            return int(v.shape[d])
    keys = ", ".join(repr(k) for k, _ in candidates)
    raise CheckpointError(f"cannot infer the {what} architecture: none of {keys} is present with a usable shape", path)


def count(sd: Mapping, pattern: str, start: int = 0) -> int:
    """How many consecutive indices ``i = start, start+1, ...`` have ``pattern.format(i)`` in ``sd``."""
    n = 0
    while pattern.format(start + n) in sd:
        n += 1
    return n


def check_filter(
    sd: Mapping, keys, config, gain: float, what: str, path=None, buffers: str = "resampling filter buffers"
) -> None:
    """The stored FIR buffers among ``keys`` (called ``buffers`` in the error: rosinality's are "blur kernels") must
    equal the config's filter: ``gain`` times the normalised outer product of ``config.resample_filter``."""
    from sg2_kernels import setup_filter

    expected = setup_filter(list(config.resample_filter)) * gain
    # the stored filter is float32 products of the normalised taps: a writer that orders them differently is a
    # few ulps off (rtol 1e-5 ~ 80 ulps); another filter differs by more than 10 %
    bad = [
        k
        for k in keys
        if isinstance(sd.get(k), torch.Tensor)
        and (sd[k].shape != expected.shape or not torch.allclose(sd[k].float().cpu(), expected, rtol=1e-5, atol=1e-7))
    ]
    if bad:
        raise CheckpointError(
            f"{what}: the {buffers} {bad[:3]}{' ...' if len(bad) > 3 else ''} differ from {gain:g} x the "
            f"normalised resample_filter={list(config.resample_filter)}; pass a config with the matching "
            "resample_filter explicitly",
            path,
        )


def infer_generator_config(sd: Mapping, path=None, **overrides) -> GeneratorConfig:
    """The GeneratorConfig of an NVIDIA-named generator state dict (mapping depth, dims, channels, noise)."""
    n_map = count(sd, "mapping.fc{}.weight")
    if n_map == 0:
        raise CheckpointError("cannot infer the generator architecture: no mapping.fc0.weight", path)
    resolutions = sorted({int(m.group(1)) for k in sd if (m := re.match(r"synthesis\.b(\d+)\.", k))})
    if not resolutions:
        raise CheckpointError("cannot infer the generator architecture: no synthesis.b* tensors", path)
    top = max(resolutions)
    res_list = [2**k for k in range(2, top.bit_length())]
    channels = {4: dim(sd, [("synthesis.b4.const", 0), ("synthesis.b4.conv1.weight", 0)], "generator", path)}
    for r in res_list[1:]:
        channels[r] = dim(
            sd,
            [
                (f"synthesis.b{r}.conv1.weight", 0),
                (f"synthesis.b{r}.conv0.weight", 0),
                (f"synthesis.b{r}.torgb.weight", 1),
            ],
            "generator",
            path,
        )
    base, cmax = solve_channels(channels, "generator", path)
    values = dict(
        z_dim=dim(sd, [("mapping.fc0.weight", 1)], "generator", path),
        w_dim=dim(sd, [("mapping.fc0.weight", 0)], "generator", path),
        resolution=top,
        img_channels=dim(
            sd, [(f"synthesis.b{top}.torgb.weight", 0), ("synthesis.b4.torgb.weight", 0)], "generator", path
        ),
        mapping_layers=n_map,
        channel_base=base,
        channel_max=cmax,
        use_noise=any(k.endswith(".noise_strength") for k in sd),
    )
    values.update(overrides)
    try:
        config = GeneratorConfig(**values)
    except ValueError as exc:
        raise CheckpointError(f"cannot infer the generator architecture: {exc}", path) from exc
    check_filter(sd, [k for k in sd if k.endswith("resample_filter")], config, 1.0, "generator", path)
    return config


def infer_discriminator_config(sd: Mapping, path=None, **overrides) -> DiscriminatorConfig:
    """The DiscriminatorConfig of an NVIDIA-named residual discriminator state dict."""
    resolutions = sorted({int(m.group(1)) for k in sd if (m := re.match(r"b(\d+)\.conv0\.", k))})
    if not resolutions:
        raise CheckpointError("cannot infer the discriminator architecture: no b*.conv0 tensors", path)
    top = max(resolutions)
    channels = {top: dim(sd, [(f"b{top}.fromrgb.weight", 0), (f"b{top}.conv0.weight", 0)], "discriminator", path)}
    for r in [2**k for k in range(3, top.bit_length())]:
        channels[r] = dim(sd, [(f"b{r}.conv0.weight", 0), (f"b{r}.conv1.weight", 1)], "discriminator", path)
        channels[r // 2] = dim(sd, [(f"b{r}.conv1.weight", 0), (f"b{r}.skip.weight", 0)], "discriminator", path)
    c4 = channels[4] = dim(sd, [("b4.conv.weight", 0), ("b4.out.weight", 1)], "discriminator", path)
    base, cmax = solve_channels(channels, "discriminator", path)
    values = dict(
        resolution=top,
        img_channels=dim(sd, [(f"b{top}.fromrgb.weight", 1)], "discriminator", path),
        channel_base=base,
        channel_max=cmax,
        mbstd_num_channels=max(1, dim(sd, [("b4.conv.weight", 1)], "discriminator", path) - c4),
    )
    values.update(overrides)
    try:
        config = DiscriminatorConfig(**values)
    except ValueError as exc:
        raise CheckpointError(f"cannot infer the discriminator architecture: {exc}", path) from exc
    check_filter(sd, [k for k in sd if k.endswith("resample_filter")], config, 1.0, "discriminator", path)
    return config


def resolve_config(given, infer, sd, path, cls):
    """``given`` may be a full config (used as is), a dict of overrides for the inferred one, or None."""
    if isinstance(given, cls):
        return given
    if given is not None and not isinstance(given, Mapping):
        raise TypeError(f"expected a {cls.__name__} or a dict of overrides, got {type(given).__name__}")
    return infer(sd, path, **dict(given or {}))
