"""NVIDIA StyleGAN2-ADA network pickles (``network-snapshot-*.pkl``), read without running them.

A snapshot is a pickled dict ``{G, D, G_ema, training_set_kwargs, augment_pipe}``. Each network
(and each of its submodules) is stored as a call ``torch_utils.persistence._reconstruct_persistent_obj(meta)``
whose ``meta`` holds the *source code* of the defining file (``module_src``), the class name and the
instance state; NVIDIA's own loader executes that source. This reader never does: a restricted
``pickle.Unpickler`` resolves only an explicit allow-list of globals (everything else is refused with
an error naming the global, before anything is called), ``_reconstruct_persistent_obj`` becomes an
inert record of ``meta``, ``module_src`` is never looked at, and tensor storages are parsed from their
legacy ``torch.save`` byte streams by the same kind of restricted unpickler. The walk over
``meta['state']`` (``_parameters``, ``_buffers``, ``_modules``, ``_init_kwargs``) yields NVIDIA's state
dicts and constructor arguments, which map onto our networks key for key.
"""

from __future__ import annotations

import ctypes
import dataclasses
import io
import math
import os
import pickle
import struct
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import torch

from sg2_core.checkpoints._io import check_input, one_line
from sg2_core.checkpoints.base import Checkpoint, build_network, settle_w_avg
from sg2_core.checkpoints.errors import CheckpointError, UnsafePickleError
from sg2_core.nn.config import DiscriminatorConfig, GeneratorConfig

FORMAT = "nvidia-pickle"
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


class PersistentObject:
    """What ``_reconstruct_persistent_obj(meta)`` stands for: the ``meta`` dict, nothing executed."""

    __slots__ = ("meta",)

    def __init__(self, meta):
        if not isinstance(meta, Mapping):
            raise CheckpointError(f"a persistent object's meta is a {type(meta).__name__}, not a dict")
        self.meta = meta

    @property
    def class_name(self) -> str:
        return str(self.meta.get("class_name"))

    def __repr__(self):
        return f"PersistentObject({self.class_name})"


class EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict`` (a dict; rebuilt by NEWOBJ + SETITEMS)."""


# ----------------------------------------------------------------------------------------------
# Tensor storages: torch.storage._load_from_bytes(b) with b a legacy single-storage torch.save stream

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "ComplexFloatStorage": torch.complex64,
    "ComplexDoubleStorage": torch.complex128,
}


class _StorageType:
    __slots__ = ("dtype",)

    def __init__(self, dtype):
        self.dtype = dtype


class _StorageRef:
    __slots__ = ("key", "dtype", "numel")

    def __init__(self, key, dtype, numel):
        self.key, self.dtype, self.numel = key, dtype, numel


class LoadedStorage:
    """A storage read from a legacy stream: raw bytes (an UntypedStorage) and the element dtype."""

    __slots__ = ("untyped", "dtype")

    def __init__(self, untyped: torch.UntypedStorage, dtype: torch.dtype):
        self.untyped, self.dtype = untyped, dtype


class _StorageStreamUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        raise UnsafePickleError(module, name)

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise CheckpointError(f"unsupported persistent id in a storage stream: {pid!r:.80}")
        _, storage_type, key, location, numel = pid[:5]
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str) or not isinstance(numel, int):
            raise CheckpointError("malformed storage record in a storage stream")
        if len(pid) == 6 and pid[5] is not None:
            raise CheckpointError("storage views (torch < 0.4 files) are not supported")
        return _StorageRef(key, storage_type.dtype, numel)


def _parse_storage_stream(head: bytes, total: int) -> tuple[_StorageRef, int, int]:
    """The storage record of a legacy (non-zip) ``torch.save`` stream of one storage, and where its raw data
    lies (start, end) in that stream; ``head`` is the stream's beginning, ``total`` its full length.

    Layout: pickled magic number, protocol version 1001, a sys-info dict, a pickle whose persistent id is
    ``('storage', torch.<Type>Storage, key, location, numel[, None])``, the list of storage keys, then per
    key an 8-byte little-endian element count and the raw little-endian data.
    """
    f = io.BytesIO(head)

    def load():
        return _StorageStreamUnpickler(f).load()

    if load() != _LEGACY_MAGIC:
        raise CheckpointError("a storage blob is not a torch.save stream (bad magic number)")
    if load() != _LEGACY_PROTOCOL:
        raise CheckpointError("a storage blob has an unsupported torch.save protocol version")
    sys_info = load()
    if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
        raise CheckpointError("a storage blob was written on a big-endian machine (not supported)")
    ref = load()
    if not isinstance(ref, _StorageRef):
        raise CheckpointError("a storage blob does not hold a storage")
    keys = load()
    if not isinstance(keys, list) or ref.key not in keys:
        raise CheckpointError("a storage blob's key list does not name its storage")
    itemsize = torch.empty(0, dtype=ref.dtype).element_size()
    pos, found = f.tell(), None
    for key in keys:
        header = head[pos : pos + 8]
        if len(header) != 8:
            raise CheckpointError("a storage blob is truncated")
        numel = int.from_bytes(header, "little", signed=True)
        start, end = pos + 8, pos + 8 + numel * itemsize
        if numel < 0 or end > total:
            raise CheckpointError("a storage blob is truncated")
        pos = end
        if key == ref.key:
            if numel != ref.numel:
                raise CheckpointError(f"a storage blob holds {numel} elements, its record says {ref.numel}")
            found = (start, end)
    return ref, *found


def load_storage_bytes(data: bytes) -> LoadedStorage:
    """A storage from a legacy ``torch.save`` stream of one storage, without unpickling anything else."""
    if not isinstance(data, (bytes, bytearray)):
        raise CheckpointError(f"a storage blob is a {type(data).__name__}, not bytes")
    ref, start, end = _parse_storage_stream(data, len(data))
    if end == start:
        return LoadedStorage(torch.UntypedStorage(0), ref.dtype)
    untyped = torch.frombuffer(bytearray(memoryview(data)[start:end]), dtype=torch.uint8).untyped_storage()
    return LoadedStorage(untyped, ref.dtype)


def _pread_into(fd: int, tensor: torch.Tensor, offset: int) -> None:
    """Fill a contiguous uint8 tensor from the file at ``offset`` (no intermediate buffer)."""
    view = memoryview((ctypes.c_char * tensor.numel()).from_address(tensor.data_ptr())).cast("B")
    done = 0
    while done < len(view):
        n = os.preadv(fd, [view[done:]], offset + done)
        if n <= 0:
            raise CheckpointError("a storage blob is truncated")
        done += n


class _BlobSkippingFile:
    """The pickle's file for the C unpickler, which reads each large ``bytes`` record with ``readinto``: such
    reads are skipped (the bytes object stays unfilled, never touched) and remembered by the address their
    buffer ends at, so that ``_load_from_bytes`` on that object reads the storage straight from the file into
    its tensor. The storage data is then copied once, as ``torch.load`` does, instead of file -> bytes ->
    tensor. A skipped record that no ``_load_from_bytes`` claims makes :meth:`complete` false (the caller then
    reads the file again without skipping)."""

    SKIP = 1 << 16  # smaller records are read normally

    def __init__(self, f):
        self.f, self.fd = f, f.fileno()
        self.size = os.fstat(self.fd).st_size
        self.pending: dict[int, tuple[int, int, int]] = {}  # buffer end address -> (buffer address, file pos, n)
        self.claimed: dict[int, tuple[bytes, LoadedStorage]] = {}  # kept alive: their addresses stay unique
        self.lost = False
        self.read, self.readline, self.peek = f.read, f.readline, f.peek

    def readinto(self, buf) -> int:
        n = len(buf)
        pos = self.f.tell()
        if n < self.SKIP or pos + n > self.size:
            return self.f.readinto(buf)
        addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
        self.lost |= addr + n in self.pending  # an unclaimed record's memory was freed and reused
        self.pending[addr + n] = (addr, pos, n)
        self.f.seek(n, os.SEEK_CUR)
        return n

    def load_from_bytes(self, data):
        if not isinstance(data, bytes):
            return load_storage_bytes(data)
        base = ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value or 0
        end = base + len(data)
        if end in self.claimed:
            return self.claimed[end][1]
        region = self.pending.pop(end, None)
        if region is None:
            return load_storage_bytes(data)
        addr, pos, _ = region
        blob = pos - (addr - base)  # the record's first byte in the file (its filled prefix came from there)
        ref, start, stop = _parse_storage_stream(os.pread(self.fd, min(len(data), 1 << 16), blob), len(data))
        tensor = torch.empty(stop - start, dtype=torch.uint8)
        _pread_into(self.fd, tensor, blob + start)
        storage = LoadedStorage(tensor.untyped_storage(), ref.dtype)
        self.claimed[end] = (data, storage)
        return storage

    def complete(self) -> bool:
        return not self.pending and not self.lost


# ----------------------------------------------------------------------------------------------
# The allow-list of the outer pickle


def _reconstruct_persistent_obj(meta):
    return PersistentObject(meta)


def _ints(values, what):
    if not isinstance(values, (tuple, list)) or not all(isinstance(v, int) and v >= 0 for v in values):
        raise CheckpointError(f"malformed tensor record: {what} {values!r:.60}")
    return tuple(values)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    if not isinstance(storage, LoadedStorage):
        raise CheckpointError(f"a tensor record's storage is a {type(storage).__name__}")
    size, stride = _ints(size, "size"), _ints(stride, "stride")
    if not isinstance(storage_offset, int) or storage_offset < 0 or len(size) != len(stride):
        raise CheckpointError("malformed tensor record")
    t = torch.empty(0, dtype=storage.dtype)
    return t.set_(storage.untyped, storage_offset, size, stride)  # bounds-checked by torch


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    if not isinstance(data, torch.Tensor):
        raise CheckpointError(f"a parameter record holds a {type(data).__name__}")
    return data


def _rebuild_parameter_with_state(data, requires_grad=False, backward_hooks=None, state=None):
    return _rebuild_parameter(data)


# numpy scalars (NVIDIA's gains are numpy.float64) are decoded without numpy: dtype spec -> struct format
_NUMPY_FORMATS = {
    "f2": "e",
    "f4": "f",
    "f8": "d",
    "i1": "b",
    "i2": "h",
    "i4": "i",
    "i8": "q",
    "u1": "B",
    "u2": "H",
    "u4": "I",
    "u8": "Q",
    "b1": "?",
}


class NumpyDType:
    """Stand-in for a pickled ``numpy.dtype`` of a plain number type: its spec and byte order."""

    __slots__ = ("spec", "byteorder")

    def __init__(self, spec):
        self.spec, self.byteorder = spec, "<"

    def __setstate__(self, state):  # numpy's state tuple: (version, byteorder, ...)
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">", "|", "="):
            self.byteorder = state[1]


def _np_dtype(spec, align=False, copy=False):
    if spec not in _NUMPY_FORMATS:
        raise CheckpointError(f"unsupported numpy dtype {spec!r:.40} (only plain numbers are allowed)")
    return NumpyDType(spec)


def _np_scalar(dtype, data=None):
    if not isinstance(dtype, NumpyDType) or not isinstance(data, bytes):
        raise CheckpointError("unsupported numpy scalar record")
    fmt = (">" if dtype.byteorder == ">" else "<") + _NUMPY_FORMATS[dtype.spec]
    if len(data) != struct.calcsize(fmt):
        raise CheckpointError("malformed numpy scalar record")
    return struct.unpack(fmt, data)[0]  # a Python number


_TORCH_DTYPES = {
    "f2": torch.float16,
    "f4": torch.float32,
    "f8": torch.float64,
    "i1": torch.int8,
    "i2": torch.int16,
    "i4": torch.int32,
    "i8": torch.int64,
    "u1": torch.uint8,
    "b1": torch.bool,
}


def _array_tensor(dtype, shape, data, order="C"):
    """A numpy array's bytes as a tensor (a copy); only plain numbers, never objects."""
    if not isinstance(dtype, NumpyDType) or dtype.spec not in _TORCH_DTYPES:
        raise CheckpointError("unsupported numpy array record (only arrays of plain numbers are read)")
    if not isinstance(data, (bytes, bytearray)):  # object arrays pickle a list of Python objects here
        raise CheckpointError("unsupported numpy array record: its data is not raw bytes")
    shape = _ints(shape, "numpy array shape")
    t = torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else torch.empty(0, dtype=torch.uint8)
    t = t.view(_TORCH_DTYPES[dtype.spec])
    if dtype.byteorder == ">" and t.element_size() > 1:
        raise CheckpointError("unsupported numpy array record: big-endian data")
    if t.numel() != math.prod(shape):
        raise CheckpointError("malformed numpy array record: its size does not match its shape")
    if order == "F" and len(shape) > 1:
        return t.reshape(shape[::-1]).permute(*reversed(range(len(shape)))).contiguous()
    return t.reshape(shape)


class NumpyArray:
    """Stand-in for a pickled ``numpy.ndarray`` of plain numbers (StyleGAN3 layers keep a few as attributes):
    ``numpy.core.multiarray._reconstruct`` makes an empty one and ``__setstate__`` fills in ``tensor``."""

    __slots__ = ("tensor",)

    def __init__(self):
        self.tensor = None

    def __setstate__(self, state):  # numpy's state: (version, shape, dtype, is_fortran, raw bytes)
        if not (isinstance(state, tuple) and len(state) == 5):
            raise CheckpointError("malformed numpy array record")
        _, shape, dtype, fortran, data = state
        self.tensor = _array_tensor(dtype, shape, data, "F" if fortran else "C")


class _NdarrayType:
    """What ``numpy.ndarray`` resolves to: a marker, only accepted by :func:`_np_reconstruct`."""


def _np_reconstruct(cls, shape=(0,), dtype_code=b"b"):
    if cls is not _NdarrayType:
        raise CheckpointError("unsupported numpy _reconstruct record (only numpy.ndarray)")
    return NumpyArray()


def _np_frombuffer(buffer, dtype, shape, order="C"):  # pickle protocol 5's numpy arrays
    array = NumpyArray()
    array.tensor = _array_tensor(dtype, shape, bytes(buffer) if isinstance(buffer, memoryview) else buffer, order)
    return array


def _codecs_encode(text, encoding="utf-8"):
    if not isinstance(text, str) or encoding != "latin1":
        raise CheckpointError("unsupported _codecs.encode record")
    return text.encode("latin1")  # how protocol <= 2 pickles store bytes


def _empty_bytes(*args):
    if args:  # protocol <= 2 pickles write b"" as bytes(); nothing else is accepted
        raise CheckpointError("unsupported bytes record")
    return b""


def _load_from_bytes(data):
    return load_storage_bytes(data)


ALLOWED_GLOBALS = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter_with_state,
    ("torch.storage", "_load_from_bytes"): _load_from_bytes,
    ("numpy", "dtype"): _np_dtype,
    ("numpy.core.multiarray", "scalar"): _np_scalar,
    ("numpy._core.multiarray", "scalar"): _np_scalar,
    ("numpy", "ndarray"): _NdarrayType,
    ("numpy.core.multiarray", "_reconstruct"): _np_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _np_reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _np_frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _np_frombuffer,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("__builtin__", "set"): set,  # protocol <= 2 pickles use Python 2 module names
    ("__builtin__", "frozenset"): frozenset,
    ("_codecs", "encode"): _codecs_encode,
    ("builtins", "bytes"): _empty_bytes,
    ("__builtin__", "bytes"): _empty_bytes,
}
"""Every global an NVIDIA snapshot may reference, mapped to an inert stand-in (nothing is imported)."""


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only :data:`ALLOWED_GLOBALS`; any other global raises :class:`UnsafePickleError`."""

    def find_class(self, module, name):
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(module, name) from None

    def persistent_load(self, pid):
        raise CheckpointError("the pickle uses persistent ids, which NVIDIA snapshots never do")


class _SkippingUnpickler(RestrictedUnpickler):
    def __init__(self, file: _BlobSkippingFile):
        super().__init__(file)
        self._file = file

    def find_class(self, module, name):
        if (module, name) == ("torch.storage", "_load_from_bytes"):
            return self._file.load_from_bytes
        return super().find_class(module, name)


def _unpickle(path: Path) -> object:
    with open(path, "rb") as f:
        skipping = _BlobSkippingFile(f)
        obj = _SkippingUnpickler(skipping).load()
        if skipping.complete():
            return obj
    del obj, skipping  # a large bytes record was not a storage: read everything the plain way
    with open(path, "rb") as f:
        return RestrictedUnpickler(f).load()


def read_pickle(path) -> object:
    """Unpickle ``path`` with :class:`RestrictedUnpickler` (networks come back as PersistentObjects)."""
    path = check_input(path)
    try:
        return _unpickle(path)
    except UnsafePickleError as exc:
        raise UnsafePickleError(exc.module, exc.name, path=path) from None
    except CheckpointError as exc:
        raise CheckpointError(f"malformed NVIDIA pickle: {exc.cause}", path) from None
    except Exception as exc:  # noqa: BLE001 - EOFError, UnpicklingError, ... with the file name
        raise CheckpointError(
            f"cannot read the file as a pickle (corrupt or truncated?): {one_line(exc)}", path
        ) from exc


# ----------------------------------------------------------------------------------------------
# Walking the persistent objects


def plain(value):
    """EasyDicts and OrderedDicts -> dicts, numpy arrays -> tensors, recursively."""
    if isinstance(value, NumpyArray):
        return value.tensor
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    return value


def network_parts(obj, what: str = "network", path=None):
    """``(class_name, init_args, init_kwargs, state_dict)`` of a persistent network object.

    The state dict is built like ``Module.state_dict()``: ``_parameters`` (skipping ``None``), then
    ``_buffers`` minus ``_non_persistent_buffers_set``, then ``_modules`` recursively with dotted prefixes.
    """
    if not isinstance(obj, PersistentObject):
        raise CheckpointError(f"{what} is a {type(obj).__name__}, not a persistent network object", path)
    meta = obj.meta
    if meta.get("type") != "class" or meta.get("version") != 6:
        raise CheckpointError(
            f"{what}: unsupported persistence record (type {meta.get('type')!r}, version "
            f"{meta.get('version')!r}; expected 'class', 6)",
            path,
        )
    state = meta.get("state")
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{what}: the persistent object has no state dict", path)
    tensors = {}
    _walk(state, "", tensors, what, path)
    init_args = plain(_field(state, "_init_args", (tuple, list), what, path))
    init_kwargs = plain(_field(state, "_init_kwargs", Mapping, what, path))
    return obj.class_name, tuple(init_args), dict(init_kwargs), tensors


def _field(state: Mapping, name: str, kind, what: str, path):
    """``state[name]`` checked to be a ``kind`` (an empty tuple when absent or None)."""
    value = state.get(name)
    if value is None:
        return {} if kind is Mapping else ()
    if not isinstance(value, kind):
        raise CheckpointError(f"{what}: the module state's {name} is a {type(value).__name__}", path)
    return value


def _walk(state: Mapping, prefix: str, out: dict, what: str, path) -> None:
    for name, t in _field(state, "_parameters", Mapping, what, path).items():
        if t is not None:
            out[f"{prefix}{name}"] = t
    skip = set(_field(state, "_non_persistent_buffers_set", (set, frozenset, list, tuple), what, path))
    for name, t in _field(state, "_buffers", Mapping, what, path).items():
        if t is not None and name not in skip:
            out[f"{prefix}{name}"] = t
    for name, child in _field(state, "_modules", Mapping, what, path).items():
        if child is None:
            continue
        if not isinstance(child, PersistentObject) or not isinstance(child.meta.get("state"), Mapping):
            raise CheckpointError(
                f"{what}: submodule {prefix + name} is a {type(child).__name__}, not a persistent network object", path
            )
        _walk(child.meta["state"], f"{prefix}{name}.", out, what, path)


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
# Loading


def _submodule(obj: PersistentObject, dotted: str) -> PersistentObject | None:
    """The persistent submodule at ``dotted`` (e.g. ``'synthesis.b4.conv1'``), or None."""
    for name in dotted.split("."):
        modules = obj.meta.get("state", {}).get("_modules") or {}
        obj = modules.get(name)
        if not isinstance(obj, PersistentObject):
            return None
    return obj


def _attribute(obj: PersistentObject, dotted: str, name: str, default=None):
    """An instance attribute of a submodule, as pickled in its state (what NVIDIA's forward reads)."""
    sub = _submodule(obj, dotted) if dotted else obj
    if sub is None or not isinstance(sub.meta.get("state"), Mapping):
        return default
    return sub.meta["state"].get(name, default)


def _refuse_stylegan3(obj: PersistentObject, kwargs: Mapping, what: str, path) -> None:
    """StyleGAN3 generators (networks_stylegan3.py) share the class name 'Generator': tell them by their
    Fourier-feature input layer, and name the config (R: 1x1 convolutions, radial filters)."""
    synthesis = _submodule(obj, "synthesis")
    if _submodule(obj, "synthesis.input") is None or synthesis is None:
        return
    if _submodule(obj, "synthesis.input").class_name != "SynthesisInput":
        return
    layers = [m for m in (synthesis.meta["state"].get("_modules") or {}).values() if isinstance(m, PersistentObject)]
    kernels = {_attribute(m, "", "conv_kernel") for m in layers if _attribute(m, "", "is_torgb") is False}
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
        if isinstance(obj, PersistentObject) and _attribute(obj, "synthesis.b4", "fused_modconv_default") is not None:
            return STYLEGAN3_REPO
    return STYLEGAN2_ADA


def _with_pickled_settings(config, obj: PersistentObject):
    """``config`` with conv_clamp and w_avg_beta as the pickled layers hold them: those are what NVIDIA's
    forward pass uses, whatever the constructor defaults of the writing codebase were."""
    if isinstance(config, GeneratorConfig):
        clamp = _attribute(obj, "synthesis.b4.conv1", "conv_clamp", config.conv_clamp)
        beta = _attribute(obj, "mapping", "w_avg_beta", config.w_avg_beta)
        return dataclasses.replace(
            config, conv_clamp=clamp, w_avg_beta=config.w_avg_beta if beta is None else float(beta)
        )
    return dataclasses.replace(config, conv_clamp=_attribute(obj, "b4.conv", "conv_clamp", config.conv_clamp))


def from_object(data, path=None, *, compute_w_avg: bool | int = False) -> Checkpoint:
    """A Checkpoint from an unpickled snapshot dict (see :func:`read_pickle`)."""
    if not isinstance(data, Mapping):
        raise CheckpointError(f"not an NVIDIA network pickle: it holds a {type(data).__name__}, not a dict", path)
    ckpt = Checkpoint(format=FORMAT, path=None if path is None else Path(path))
    source = _source(data)
    parts = {}
    for name, expected_class in (("G", "Generator"), ("D", "Discriminator"), ("G_ema", "Generator")):
        obj = data.get(name)
        if obj is None:
            continue
        parts[name] = network_parts(obj, f"'{name}'", path)
        if parts[name][0] != expected_class:
            raise CheckpointError(f"'{name}' is a {parts[name][0]}, expected a {expected_class}", path)
        if expected_class == "Generator":
            _refuse_stylegan3(obj, parts[name][2], f"'{name}'", path)
    init, seen = {}, set()
    for name, (class_name, args, kwargs, tensors) in parts.items():
        init[name] = kwargs if not args else {"args": list(args), **kwargs}
        to_config = discriminator_config_from_nvidia if name == "D" else generator_config_from_nvidia
        config = _with_pickled_settings(to_config(kwargs, args, path, what=f"'{name}'", source=source), data[name])
        setattr(ckpt, name, build_network(config, tensors, f"'{name}'", path, seen=seen))
    if not init:
        raise CheckpointError(f"no networks found: expected 'G', 'D' or 'G_ema' (keys: {sorted(map(str, data))})", path)
    ckpt.extra["nvidia_source"] = source
    ckpt.extra["nvidia_init_kwargs"] = init
    for key, value in data.items():
        if key in ("G", "D", "G_ema"):
            continue
        if key == "augment_pipe" and value is not None:
            class_name, args, kwargs, tensors = network_parts(value, "'augment_pipe'", path)
            value = {"class_name": class_name, "init_kwargs": kwargs, "state": tensors}
        elif isinstance(value, PersistentObject):
            class_name, args, kwargs, tensors = network_parts(value, f"'{key}'", path)
            value = {"class_name": class_name, "init_kwargs": kwargs, "state": tensors}
        ckpt.extra[key] = plain(value)
    settle_w_avg(
        ckpt,
        compute_w_avg,
        path,
        "it is NaN in the file, as stylegan2-ada's training loop can leave it after its summary pass on a CPU",
    )
    return ckpt


def load(path, *, compute_w_avg: bool | int = False) -> Checkpoint:
    """Read an NVIDIA network pickle (stylegan2-ada-pytorch, or the stylegan3 repository's StyleGAN2) without
    importing ``dnnlib`` / ``torch_utils`` and without executing anything it embeds. ``extra`` gets
    ``training_set_kwargs``, ``augment_pipe`` (class name, constructor arguments and tensors),
    ``nvidia_init_kwargs`` and ``nvidia_source``. ``compute_w_avg``: see :func:`~.base.settle_w_avg`."""
    path = check_input(path)
    return from_object(read_pickle(path), path, compute_w_avg=compute_w_avg)
