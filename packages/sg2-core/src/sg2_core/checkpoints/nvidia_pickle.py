"""NVIDIA StyleGAN2-ADA network pickles (``network-snapshot-*.pkl``) read as plain data, never run.

A snapshot is a pickled dict ``{G, D, G_ema, training_set_kwargs, augment_pipe}``. Each network
(and each of its submodules) is stored as a call ``torch_utils.persistence._reconstruct_persistent_obj(meta)``
whose ``meta`` holds the *source code* of the defining file (``module_src``), the class name and the
instance state; NVIDIA's own loader executes that source. This reader never does: a restricted
``pickle.Unpickler`` resolves only an explicit allow-list of globals (everything else is refused with
an error naming the global, before anything is called), ``_reconstruct_persistent_obj`` becomes an
inert record of ``meta``, ``module_src`` is never looked at, and tensor storages are parsed from their
legacy ``torch.save`` byte streams by the same kind of restricted unpickler. The walk over
``meta['state']`` (``_parameters``, ``_buffers``, ``_modules``, ``_init_kwargs``) yields NVIDIA's state
dicts and constructor arguments; :mod:`sg2_core.checkpoints.nvidia` turns them into our networks.
"""

from __future__ import annotations

import ctypes
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
from sg2_core.checkpoints.errors import CheckpointError, UnsafePickleError
from sg2_core.moved import forward

FORMAT = "nvidia-pickle"
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

# The translation to our configs and the loading moved to sg2_core.checkpoints.nvidia (sg2-core 0.7).
__getattr__ = forward(__name__, "sg2_core.checkpoints.nvidia", removed_in="sg2-core 0.8")


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

    def submodule(self, dotted: str) -> PersistentObject | None:
        """The persistent submodule at ``dotted`` (e.g. ``'synthesis.b4.conv1'``), or None."""
        obj = self
        for name in dotted.split("."):
            modules = obj.meta.get("state", {}).get("_modules") or {}
            obj = modules.get(name)
            if not isinstance(obj, PersistentObject):
                return None
        return obj

    def attribute(self, dotted: str, name: str, default=None):
        """An instance attribute of a submodule (``dotted``; ``''``: this object), as pickled in its state: what
        NVIDIA's forward pass reads."""
        sub = self.submodule(dotted) if dotted else self
        if sub is None or not isinstance(sub.meta.get("state"), Mapping):
            return default
        return sub.meta["state"].get(name, default)

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
