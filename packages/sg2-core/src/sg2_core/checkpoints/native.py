"""Our own checkpoint format: one safetensors file that rebuilds its networks without any other input.

Tensors are stored under the prefixes ``G.``, ``D.`` and ``G_ema.`` (the networks' state dicts, buffers
included); the safetensors metadata holds::

    format          "sg2-toolkit"
    format_version  "1"
    G_config, D_config, G_ema_config   the architecture configs as JSON (one per stored network)
    extra           JSON of anything else passed to save(); tensors inside it are stored as "extra.<n>"
    sg2_core_version

safetensors holds only raw tensors and strings, so reading a file never runs code.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch

from ..config import DiscriminatorConfig, GeneratorConfig
from ..discriminator import Discriminator
from ..generator import Generator
from ._io import atomic_write, check_input, one_line
from .base import NETWORK_NAMES, Checkpoint, build_network
from .errors import CheckpointError, CheckpointKeyError, CheckpointWarning

FORMAT = "native"
FORMAT_TAG = "sg2-toolkit"
FORMAT_VERSION = "1"
_EXTRA_PREFIX = "extra."
_CLASSES = {"G": (Generator, GeneratorConfig), "G_ema": (Generator, GeneratorConfig),
            "D": (Discriminator, DiscriminatorConfig)}


def _safetensors():
    try:
        import safetensors.torch
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ImportError("the native checkpoint format needs the 'safetensors' package (pip install safetensors)") \
            from exc
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


def save(path, G: Generator | None = None, D: Discriminator | None = None, G_ema: Generator | None = None, *,
         extra: Mapping | None = None) -> Path:
    """Write the given networks (and ``extra``) to a safetensors file, atomically.

    ``extra`` may hold JSON-like values and tensors; a top-level entry that cannot be stored (e.g. an
    optimizer state with integer keys) is left out with a :class:`CheckpointWarning` naming it.
    """
    from .. import __version__

    nets = {name: net for name, net in (("G", G), ("D", D), ("G_ema", G_ema)) if net is not None}
    if not nets:
        raise ValueError("nothing to save: pass G, D and/or G_ema")
    tensors, metadata = {}, {"format": FORMAT_TAG, "format_version": FORMAT_VERSION, "sg2_core_version": __version__}
    seen = {}
    for name, net in nets.items():
        cls = _CLASSES[name][0]
        if not isinstance(net, cls):
            raise TypeError(f"{name}: expected an sg2_core {cls.__name__}, got {type(net).__name__}")
        metadata[f"{name}_config"] = json.dumps(net.config.to_dict())
        for key, t in net.state_dict().items():
            t = t.detach().cpu()
            ptr = t.untyped_storage().data_ptr()
            # safetensors refuses shared memory (G passed as G_ema too, views): store copies of those
            shared = ptr in seen or not t.is_contiguous() or t.untyped_storage().nbytes() != t.nbytes
            tensors[f"{name}.{key}"] = t.clone(memory_format=torch.contiguous_format) if shared else t
            seen[ptr] = key
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
        warnings.warn("not stored in the native checkpoint (not representable): "
                      + ", ".join(f"extra[{k!r}] ({why})" for k, why in dropped), CheckpointWarning, stacklevel=2)
    tensors.update(extra_tensors)
    metadata["extra"] = json.dumps(encoded)
    data = _safetensors().torch.save(tensors, metadata=metadata)
    return atomic_write(path, lambda f: f.write(data))


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
        raise CheckpointError(f"cannot read the file as safetensors (corrupt or truncated?): {one_line(exc)}",
                              path) from exc


def load(path) -> Checkpoint:
    """Rebuild the networks stored in a native checkpoint (on the CPU, in eval mode)."""
    path = check_input(path)
    try:
        with _safetensors().safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # noqa: BLE001 - safetensors' errors, re-raised with the file name
        raise CheckpointError(f"cannot read the file as safetensors (corrupt or truncated?): {one_line(exc)}",
                              path) from exc
    if metadata.get("format") != FORMAT_TAG:
        raise CheckpointError(f"not an sg2-toolkit checkpoint: its safetensors metadata has format="
                              f"{metadata.get('format')!r}, expected {FORMAT_TAG!r}", path)
    if metadata.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"unsupported format_version {metadata.get('format_version')!r} (this sg2-core reads "
                              f"{FORMAT_VERSION!r}; the file may come from a newer version)", path)
    ckpt = Checkpoint(format=FORMAT, path=path)
    claimed = set()
    errors = []
    for name in NETWORK_NAMES:
        prefix = f"{name}."
        sd = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        raw = metadata.get(f"{name}_config")
        if raw is None:
            continue
        claimed.update(prefix + k for k in sd)
        cls, config_cls = _CLASSES[name]
        try:
            config = config_cls.from_dict(json.loads(raw))
        except (ValueError, TypeError) as exc:
            raise CheckpointError(f"{name}_config is invalid: {exc}", path) from exc
        try:
            setattr(ckpt, name, build_network(config, sd, f"'{name}'", path))
        except CheckpointKeyError as exc:
            errors.append(exc)
    try:
        ckpt.extra = _decode(json.loads(metadata.get("extra", "{}")), tensors)
    except (ValueError, KeyError) as exc:
        raise CheckpointError(f"the 'extra' metadata is invalid: {one_line(exc)}", path) from exc
    claimed.update(k for k in tensors if k.startswith(_EXTRA_PREFIX))
    stray = sorted(set(tensors) - claimed)
    if stray:
        errors.append(CheckpointKeyError("the file", [], [(k, tuple(tensors[k].shape)) for k in stray], [],
                                         path=path, hint="(tensors without a network config in the metadata)"))
    if errors:
        raise errors[0] if len(errors) == 1 else CheckpointError("\n".join(e.cause for e in errors), path)
    if not ckpt.networks():
        raise CheckpointError("the checkpoint holds no network (no G_config, D_config or G_ema_config)", path)
    return ckpt
