"""Our own file format for any network: one safetensors file that rebuilds its networks without any other input.

``save_networks(path, {name: module}, extra)`` stores each module's state dict under ``<name>.`` and, in the
safetensors metadata::

    format          "sg2-toolkit"
    format_version  "1"
    networks        JSON list of the stored names, in order
    <name>_config   the module's config as JSON (``module.config.to_dict()``)
    <name>_class    ``module:qualname`` of a class registered with :func:`register_network`
    extra           JSON of anything else passed; tensors inside it are stored as "extra.<n>"
    sg2_core_version

A checkpoint (:func:`save` / :func:`load`) is such a file holding ``G``, ``D`` and/or ``G_ema``; files
written before ``networks``/``<name>_class`` existed hold only those three and still load.

Reading never runs code from the file: safetensors holds only raw tensors and strings, and a class named
in the metadata is built only if installed code registered it (importing the package it names, never
anything taken from the file itself).
"""

from __future__ import annotations

import importlib
import json
import math
import warnings
from collections.abc import Mapping
from importlib.metadata import version
from pathlib import Path

import torch
from torch import nn

from sg2_core.checkpoints._io import atomic_write, check_input, one_line
from sg2_core.checkpoints.base import (
    NETWORK_NAMES,
    Checkpoint,
    Contents,
    Part,
    Reader,
    build_checkpoint,
    build_networks,
    same_names,
)
from sg2_core.checkpoints.errors import CheckpointError, CheckpointKeyError, CheckpointWarning
from sg2_core.moved import current_module
from sg2_core.nn.config import DiscriminatorConfig, GeneratorConfig
from sg2_core.nn.discriminator import Discriminator
from sg2_core.nn.generator import Generator

FORMAT = "native"
FORMAT_TAG = "sg2-toolkit"
FORMAT_VERSION = "1"
_EXTRA_PREFIX = "extra."
_registered: dict[str, tuple[type, type]] = {}  # class path -> (class, config class)


def _class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def register_network(cls: type | None = None, *, config_class: type | None = None):
    """Class decorator (``@register_network``): lets :func:`load_networks` rebuild ``cls`` from a file.

    The class is built as ``cls(config)`` and keeps that config as ``self.config``; the config's class
    (``config_class``, else the class attribute ``cls.config_class``) has ``to_dict()`` and
    ``from_dict(d)``, e.g. an ``sg2_core.nn.config.Serializable`` dataclass.
    """

    def register(cls: type) -> type:
        if not isinstance(cls, type) or not issubclass(cls, nn.Module):
            raise TypeError(f"register_network needs an nn.Module subclass, got {cls!r}")
        config = config_class or getattr(cls, "config_class", None)
        if config is None or not hasattr(config, "from_dict"):
            raise TypeError(
                f"{cls.__name__}: register_network needs config_class= (or a class attribute "
                "config_class), a config class with from_dict()"
            )
        _registered[_class_path(cls)] = (cls, config)
        return cls

    return register if cls is None else register(cls)


register_network(Generator, config_class=GeneratorConfig)
register_network(Discriminator, config_class=DiscriminatorConfig)
# Files from before <name>_class existed: their networks are known by name.
_DEFAULT_CLASSES = {"G": Generator, "G_ema": Generator, "D": Discriminator}


def _network_class(path_str: str, name: str, path) -> type:
    module, _, qualname = path_str.partition(":")
    path_str = f"{current_module(module)}:{qualname}"  # a class that moved (sg2_core.generator -> sg2_core.nn...)
    if path_str not in _registered:
        module = path_str.partition(":")[0]
        try:  # installed code registers its classes on import; nothing from the file is executed
            importlib.import_module(module)
        except ImportError as exc:
            raise CheckpointError(
                f"network {name!r} is a {path_str}, but its package cannot be imported "
                f"({one_line(exc)}); install the package that defines it",
                path,
            ) from exc
    if path_str not in _registered:
        raise CheckpointError(
            f"network {name!r} names the class {path_str}, which is not registered with "
            "sg2_core.register_network, so it is not rebuilt",
            path,
        )
    return _registered[path_str][0]


def _safetensors():
    try:
        import safetensors.torch
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ImportError(
            "the native checkpoint format needs the 'safetensors' package (pip install safetensors)"
        ) from exc
    return safetensors


class _Unencodable(Exception):
    pass


def _encode(value, tensors: dict):
    if isinstance(value, torch.Tensor):
        key = f"{_EXTRA_PREFIX}{len(tensors)}"
        tensors[key] = value.detach().cpu().contiguous().clone()
        return {"__tensor__": key}
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Unencodable("a non-finite float")
        return value
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return _encode(value.item(), tensors)  # a numpy scalar
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise _Unencodable("a dict with non-string keys")
        return {k: _encode(v, tensors) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v, tensors) for v in value]
    raise _Unencodable(f"a {type(value).__name__}")


def _decode(value, tensors: Mapping):
    if isinstance(value, dict):
        if set(value) == {"__tensor__"}:
            return tensors[value["__tensor__"]]
        return {k: _decode(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    return value


def _stored_tensors(name: str, net: nn.Module, seen: dict) -> dict:
    tensors = {}
    for key, t in net.state_dict().items():
        t = t.detach().cpu()
        ptr = t.untyped_storage().data_ptr()
        # safetensors refuses shared memory (G passed as G_ema too, views): store copies of those
        shared = ptr in seen or not t.is_contiguous() or t.untyped_storage().nbytes() != t.nbytes
        tensors[f"{name}.{key}"] = t.clone(memory_format=torch.contiguous_format) if shared else t
        seen[ptr] = key
    return tensors


def _encode_extra(extra: Mapping | None) -> tuple[dict, dict]:
    """``(JSON-able dict, tensors)`` of ``extra``; entries that cannot be stored are left out with a warning."""
    extra_tensors, encoded, dropped = {}, {}, []
    for key, value in (extra or {}).items():
        if not isinstance(key, str):
            dropped.append((repr(key), "a non-string key"))
            continue
        staged = {}
        try:
            staged_value = _encode(value, staged)
        except _Unencodable as exc:
            dropped.append((key, str(exc)))
            continue
        for k, t in staged.items():  # renumber into the shared namespace
            new_key = f"{_EXTRA_PREFIX}{len(extra_tensors)}"
            extra_tensors[new_key] = t
            staged_value = _rename_tensor(staged_value, k, new_key)
        encoded[key] = staged_value
    if dropped:
        warnings.warn(
            "not stored in the file (not representable): " + ", ".join(f"extra[{k!r}] ({why})" for k, why in dropped),
            CheckpointWarning,
            stacklevel=3,
        )
    return encoded, extra_tensors


def save_networks(
    path,
    networks: Mapping[str, nn.Module],
    extra: Mapping | None = None,
    *,
    overwrite: bool = True,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write ``networks`` (``{name: module}``, each of a :func:`register_network` class) and ``extra`` to
    one safetensors file, atomically (a failure leaves ``path`` as it was).

    ``extra`` may hold JSON-like values and tensors; a top-level entry that cannot be stored (e.g. an
    optimizer state with integer keys) is left out with a :class:`CheckpointWarning` naming it.
    ``overwrite=False`` refuses an existing ``path``. ``dtype`` (e.g. ``torch.float16``) stores the networks'
    floating tensors in that type: half the file for shipped weights; :func:`load_networks` casts them back to
    each network's own dtype.
    """
    if not networks:
        raise ValueError("nothing to save: networks is empty")
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    tensors, seen = {}, {}
    metadata = {
        "format": FORMAT_TAG,
        "format_version": FORMAT_VERSION,
        "sg2_core_version": version("sg2-core"),
        "networks": json.dumps(list(networks)),
    }
    for name, net in networks.items():
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"network names must be non-empty strings without '.', got {name!r}")
        if _class_path(type(net)) not in _registered:
            raise TypeError(
                f"network {name!r}: {type(net).__name__} is not registered with "
                "sg2_core.register_network (it needs a config to be rebuilt from the file)"
            )
        metadata[f"{name}_config"] = json.dumps(net.config.to_dict())
        metadata[f"{name}_class"] = _class_path(type(net))
        tensors.update(_stored_tensors(name, net, seen))
    if dtype is not None:
        tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}
    encoded, extra_tensors = _encode_extra(extra)
    tensors.update(extra_tensors)
    metadata["extra"] = json.dumps(encoded)
    data = _safetensors().torch.save(tensors, metadata=metadata)
    return atomic_write(path, lambda f: f.write(data))


def save(
    path,
    G: Generator | None = None,
    D: Discriminator | None = None,
    G_ema: Generator | None = None,
    *,
    extra: Mapping | None = None,
) -> Path:
    """A checkpoint: the given generator/discriminator networks (and ``extra``) via :func:`save_networks`."""
    nets = {name: net for name, net in (("G", G), ("D", D), ("G_ema", G_ema)) if net is not None}
    if not nets:
        raise ValueError("nothing to save: pass G, D and/or G_ema")
    for name, net in nets.items():
        cls = _DEFAULT_CLASSES[name]
        if not isinstance(net, cls):
            raise TypeError(f"{name}: expected an sg2_core {cls.__name__}, got {type(net).__name__}")
    return save_networks(path, nets, extra)


def _rename_tensor(value, old, new):
    if isinstance(value, dict):
        if value == {"__tensor__": old}:
            return {"__tensor__": new}
        return {k: _rename_tensor(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_rename_tensor(v, old, new) for v in value]
    return value


def read_header(path) -> dict:
    """The safetensors metadata of ``path`` (no tensors are read)."""
    path = check_input(path)
    try:
        with _safetensors().safe_open(str(path), framework="pt", device="cpu") as f:
            return dict(f.metadata() or {})
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(
            f"cannot read the file as safetensors (corrupt or truncated?): {one_line(exc)}", path
        ) from exc


def read_tagged(path, tag: str, version: str, what: str) -> tuple[dict, dict]:
    """``(metadata, tensors)`` of a safetensors file whose metadata says ``format=tag``, ``format_version=version``;
    a CheckpointError names the file otherwise (``what``: the kind of file expected, for the message)."""
    try:
        with _safetensors().safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # noqa: BLE001 - safetensors' errors, re-raised with the file name
        raise CheckpointError(
            f"cannot read the file as safetensors (corrupt or truncated?): {one_line(exc)}", path
        ) from exc
    if metadata.get("format") != tag:
        raise CheckpointError(
            f"not {what}: its safetensors metadata has format={metadata.get('format')!r}, expected {tag!r}", path
        )
    if metadata.get("format_version") != version:
        raise CheckpointError(
            f"unsupported format_version {metadata.get('format_version')!r} (this sg2-core reads "
            f"{version!r}; the file may come from a newer version)",
            path,
        )
    return metadata, tensors


class LoadedNetworks(dict):
    """``{name: module}`` read by :func:`load_networks`, with the file's ``extra`` and ``path``."""

    def __init__(self, networks: dict, extra: dict, path: Path):
        super().__init__(networks)
        self.extra, self.path = extra, path


def load_networks(path, device=None) -> LoadedNetworks:
    """Rebuild every network stored by :func:`save_networks` (eval mode; on ``device``, else the CPU).

    Raises :class:`CheckpointError` for an unreadable file or an unknown class, and one
    :class:`CheckpointKeyError` listing every missing, unexpected and mis-shaped tensor.
    """
    path = check_input(path)
    contents = _stored(read(path), path)
    networks = build_networks(READER, contents, path)
    if device is not None:
        for net in networks.values():
            net.to(device)
    return LoadedNetworks(networks, contents.extra, path)


def load(path) -> Checkpoint:
    """Rebuild the networks stored in a native checkpoint (on the CPU, in eval mode)."""
    path = check_input(path)
    return build_checkpoint(READER, read(path), path)


# ----------------------------------------------------------------------------------------------
# The reading steps (see sg2_core.checkpoints.base)


def read(path) -> tuple[dict, dict]:
    """Stage 1: ``(metadata, tensors)`` of one of our files."""
    return read_tagged(path, FORMAT_TAG, FORMAT_VERSION, "an sg2-toolkit file")


def _stored(raw: tuple[dict, dict], path) -> Contents:
    """Stage 2 for any file of ours: each stored network (its class, config and tensors), the extra, and the
    tensors that belong to no network (listed with the networks' mismatches)."""
    metadata, tensors = raw
    if "networks" in metadata:
        names = json.loads(metadata["networks"])
    else:
        names = [n for n in NETWORK_NAMES if f"{n}_config" in metadata]
    contents, claimed = Contents({}), set()
    for name in names:
        raw_config = metadata.get(f"{name}_config")
        if raw_config is None:
            raise CheckpointError(f"network {name!r} has no {name}_config in the metadata", path)
        class_path = metadata.get(f"{name}_class")
        cls = _network_class(class_path, name, path) if class_path else _DEFAULT_CLASSES.get(name)
        if cls is None:
            raise CheckpointError(f"network {name!r} has no {name}_class in the metadata", path)
        prefix = f"{name}."
        state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        claimed.update(prefix + k for k in state)
        contents.networks[name] = Part(f"'{name}'", state, spec=raw_config, cls=cls)
    try:
        contents.extra = _decode(json.loads(metadata.get("extra", "{}")), tensors)
    except (ValueError, KeyError) as exc:
        raise CheckpointError(f"the 'extra' metadata is invalid: {one_line(exc)}", path) from exc
    claimed.update(k for k in tensors if k.startswith(_EXTRA_PREFIX))
    stray = sorted(set(tensors) - claimed)
    if stray:
        contents.errors.append(
            CheckpointKeyError(
                "the file",
                [],
                [(k, tuple(tensors[k].shape)) for k in stray],
                [],
                path=path,
                hint="(tensors without a network config in the metadata)",
            )
        )
    elif not contents.networks:
        raise CheckpointError("the file holds no network", path)
    return contents


def classify(raw: tuple[dict, dict], path) -> Contents:
    """Stage 2 for a checkpoint: the stored networks must be generators and discriminators."""
    contents = _stored(raw, path)
    other = sorted(set(contents.networks) - set(NETWORK_NAMES))
    if other:
        raise CheckpointError(
            f"not a generator/discriminator checkpoint: it holds the networks {other}; read it "
            "with sg2_core.load_networks",
            path,
        )
    return contents


def configure(name: str, part: Part, given, path):
    """Stage 3: the config stored beside the network (the file's, whatever ``given`` says)."""
    config_cls = _registered[_class_path(part.cls)][1]
    try:
        return config_cls.from_dict(json.loads(part.spec))
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{name}_config is invalid: {one_line(exc)}", path) from exc


READER = Reader(FORMAT, read, classify, configure, same_names)
