"""NVIDIA network pickles: read without running them, every tensor recovered, unsafe pickles refused.

The pickles are written by the test itself (``write_nvidia_pickle`` in conftest.py) in the exact format
of NVIDIA's snapshots, with a ``module_src`` that would leave a marker file behind if it were executed.
"""

import copy
import io
import os
import pickle
import sys
from pathlib import Path

import pytest
import torch

from sg2_core.checkpoints import (
    CheckpointError,
    CheckpointKeyError,
    UnsafePickleError,
    detect_format,
    load_checkpoint,
    nvidia,
)
from sg2_core.checkpoints import nvidia_pickle as nvp
from sg2_core.nn.config import DiscriminatorConfig, GeneratorConfig

DATA = Path(__file__).parent / "data"
G32 = GeneratorConfig(z_dim=64, w_dim=64, resolution=32, channel_base=1024, channel_max=96)
D32 = DiscriminatorConfig(resolution=32, channel_base=1024, channel_max=96)


def assert_state_equal(net, expected):
    got = net.state_dict()
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert torch.equal(got[key], value), key


@pytest.mark.parametrize("protocol", [4, 2])
def test_reads_every_tensor_without_running_anything(tmp_path, g32, d32, nvidia_tools, protocol):
    marker = tmp_path / "executed"
    path = nvidia_tools.write(tmp_path / "snapshot.pkl", g32, d32, copy.deepcopy(g32), marker=marker, protocol=protocol)
    assert b"module_src was executed" in path.read_bytes()  # the payload is in the file ...
    ckpt = load_checkpoint(path)
    assert not marker.exists()  # ... and was never run
    assert "torch_utils" not in sys.modules and "dnnlib" not in sys.modules
    assert ckpt.format == "nvidia-pickle" and detect_format(path) == "nvidia-pickle"
    g_state = torch.load(DATA / "g32_nvidia_state.pt", weights_only=True)
    d_state = torch.load(DATA / "d32_nvidia_state.pt", weights_only=True)
    assert ckpt.G.config == G32 and ckpt.G_ema.config == G32 and ckpt.D.config == D32
    assert_state_equal(ckpt.G, g_state)
    assert_state_equal(ckpt.G_ema, g_state)
    assert_state_equal(ckpt.D, d_state)
    assert ckpt.extra["training_set_kwargs"] == {
        "class_name": "training.dataset.ImageFolderDataset",
        "path": "~/datasets/tiny.zip",
        "use_labels": False,
        "max_size": 16,
        "xflip": False,
        "resolution": 32,
    }
    assert type(ckpt.extra["training_set_kwargs"]) is dict
    pipe = ckpt.extra["augment_pipe"]
    assert pipe["class_name"] == "AugmentPipe" and pipe["init_kwargs"]["xflip"] == 1
    assert torch.equal(pipe["state"]["p"], torch.tensor(0.125)) and pipe["state"]["Hz_fbank"].shape == (4, 12)
    assert ckpt.extra["nvidia_init_kwargs"]["G"]["mapping_kwargs"]["num_layers"] == 8


def test_loaded_generator_renders_the_reference_image(nvidia_pkl, io32):
    G = load_checkpoint(nvidia_pkl[0]).G_ema
    with torch.no_grad():
        img = G(io32["z"], noise_mode="const")
    assert (img - io32["img_const"]).abs().max() <= 1e-5 * io32["img_const"].abs().max()


def test_config_conversion_matches_the_fixture_kwargs(io32):
    kwargs = io32["config"]
    assert nvidia.generator_config_to_nvidia(G32) == kwargs["nvidia_G_kwargs"]
    assert nvidia.discriminator_config_to_nvidia(D32) == kwargs["nvidia_D_kwargs"]
    assert nvidia.generator_config_from_nvidia(kwargs["nvidia_G_kwargs"]) == G32
    assert nvidia.discriminator_config_from_nvidia(kwargs["nvidia_D_kwargs"]) == D32
    # train.py passes only some kwargs; the rest are NVIDIA's defaults. fp16 settings do not matter here.
    sparse = {
        "z_dim": 512,
        "w_dim": 512,
        "c_dim": 0,
        "img_resolution": 256,
        "img_channels": 3,
        "mapping_kwargs": {"num_layers": 2},
        "synthesis_kwargs": {"channel_base": 16384, "channel_max": 512, "num_fp16_res": 4, "conv_clamp": 256},
    }
    assert nvidia.generator_config_from_nvidia(sparse) == GeneratorConfig(
        resolution=256, channel_base=16384, mapping_layers=2, conv_clamp=256
    )
    d_sparse = {
        "c_dim": 0,
        "img_resolution": 256,
        "img_channels": 3,
        "channel_base": 16384,
        "num_fp16_res": 4,
        "conv_clamp": 256,
        "epilogue_kwargs": {"mbstd_group_size": 8},
        "block_kwargs": {"freeze_layers": 0},
    }
    assert nvidia.discriminator_config_from_nvidia(d_sparse) == DiscriminatorConfig(
        resolution=256, channel_base=16384, conv_clamp=256, mbstd_group_size=8
    )


@pytest.mark.parametrize(
    "change, message",
    [
        ({"c_dim": 10}, "conditional networks are not supported"),
        ({"synthesis_kwargs": {"architecture": "resnet"}}, "architecture='resnet' is not supported"),
        ({"mapping_kwargs": {"layer_features": 128}}, "layer_features=128"),
        (
            {"synthesis_kwargs": {"use_radial_filters": True}},
            r"unsupported constructor arguments \['use_radial_filters'\]",
        ),
    ],
)
def test_unsupported_generators_are_refused(change, message):
    kwargs = {"z_dim": 64, "w_dim": 64, "c_dim": 0, "img_resolution": 32, "img_channels": 3, **change}
    with pytest.raises(CheckpointError, match=message):
        nvidia.generator_config_from_nvidia(kwargs)


def test_unsupported_discriminators_are_refused_in_a_file(tmp_path, g32, d32, nvidia_tools):
    kwargs = nvidia.discriminator_config_to_nvidia(D32)
    path = nvidia_tools.write(
        tmp_path / "cond.pkl", None, d32, None, marker=tmp_path / "m", d_kwargs={**kwargs, "c_dim": 5}
    )
    with pytest.raises(CheckpointError, match=r"cond\.pkl: 'D': conditional networks are not supported \(c_dim=5\)"):
        load_checkpoint(path)
    path = nvidia_tools.write(
        tmp_path / "skip.pkl", None, d32, None, marker=tmp_path / "m", d_kwargs={**kwargs, "architecture": "skip"}
    )
    with pytest.raises(CheckpointError, match="architecture='skip' is not supported"):
        load_checkpoint(path)


@pytest.mark.filterwarnings("ignore:TypedStorage is deprecated")
def test_storage_parser_agrees_with_torch():
    for t in (
        torch.randn(3, 5),
        torch.arange(7, dtype=torch.int64),
        torch.tensor([True, False]),
        torch.randn(4).half(),
        torch.zeros(0),
    ):
        reduced = t.untyped_storage()
        blob = io.BytesIO()
        torch.save(
            torch.storage.TypedStorage(wrap_storage=reduced, dtype=t.dtype, _internal=True),
            blob,
            _use_new_zipfile_serialization=False,
        )
        ours = nvp.load_storage_bytes(blob.getvalue())
        theirs = torch.load(io.BytesIO(blob.getvalue()), weights_only=True)
        assert ours.dtype == theirs.dtype == t.dtype
        assert bytes(ours.untyped) == bytes(theirs.untyped()) == bytes(reduced)


def _evil(reduce, fn, marker):
    if fn is os.system:
        return reduce(os.system, f"touch {marker}")
    if fn is exec:
        return reduce(exec, f"open({str(marker)!r}, 'w').close()")
    return reduce(eval, f"__import__('pathlib').Path({str(marker)!r}).touch()")


@pytest.mark.parametrize(
    "fn, name", [(os.system, f"{os.system.__module__}.system"), (exec, "builtins.exec"), (eval, "builtins.eval")]
)
def test_code_running_pickles_are_refused(tmp_path, nvidia_tools, fn, name):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G": _evil(nvidia_tools.Reduce, fn, marker)}))
    with pytest.raises(UnsafePickleError) as info:
        load_checkpoint(path)
    assert not marker.exists()
    assert f"'{name}'" in str(info.value) and str(path) in str(info.value) and "nothing was executed" in str(info.value)
    assert info.value.global_name == name


def test_payload_hidden_inside_a_network_is_refused(tmp_path, g32, nvidia_tools):
    marker = tmp_path / "pwned"
    # a malicious value deep inside G's state, after many legitimate records
    path = nvidia_tools.write(
        tmp_path / "trojan.pkl",
        g32,
        None,
        None,
        marker=tmp_path / "m",
        extra={"zz_hook": _evil(nvidia_tools.Reduce, os.system, marker)},
    )
    with pytest.raises(UnsafePickleError, match="system"):
        load_checkpoint(path)
    assert not marker.exists()


def test_payload_inside_a_storage_blob_is_refused(tmp_path, nvidia_tools):
    marker = tmp_path / "pwned"
    blob = io.BytesIO()
    for part in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}):
        pickle.dump(part, blob, protocol=2)
    pickle.dump(_evil(nvidia_tools.Reduce, os.system, marker), blob, protocol=2)
    import torch.storage  # noqa: F401 - the real function, so that pickle records torch.storage._load_from_bytes

    path = tmp_path / "blob.pkl"
    path.write_bytes(pickle.dumps({"G": nvidia_tools.Reduce(torch.storage._load_from_bytes, blob.getvalue())}))
    with pytest.raises(UnsafePickleError, match="system"):
        load_checkpoint(path)
    assert not marker.exists()


def test_other_torch_globals_are_refused(tmp_path):
    path = tmp_path / "module.pkl"
    path.write_bytes(pickle.dumps({"G": torch.nn.Linear(2, 2)}))
    with pytest.raises(UnsafePickleError, match="torch.nn.modules.linear.Linear"):
        load_checkpoint(path, format="nvidia-pickle")


def test_truncated_pickle_names_the_file(tmp_path, nvidia_pkl):
    data = nvidia_pkl[0].read_bytes()
    path = tmp_path / "truncated.pkl"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"truncated\.pkl: cannot read the file as a pickle") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)


def test_mismatched_tensors_are_listed(tmp_path, g32, nvidia_tools):
    del g32.synthesis.b8.conv0._parameters["bias"]  # a network that lost one parameter
    g32.mapping.fc1.weight = torch.nn.Parameter(torch.zeros(64, 32))
    path = nvidia_tools.write(tmp_path / "broken.pkl", g32, None, None, marker=tmp_path / "m")
    with pytest.raises(CheckpointKeyError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert message.endswith(
        "'G' does not match its architecture: 1 missing (synthesis.b8.conv0.bias [96]), "
        "1 mis-shaped (mapping.fc1.weight expected [64, 64], got [64, 32])"
    )
    assert "\n" not in message


@pytest.mark.parametrize(
    "meta_change, message",
    [
        ({"version": 5}, "unsupported persistence record .type 'class', version 5"),
        ({"state": {"_parameters": [1, 2]}}, "the module state's _parameters is a list"),
        ({"state": {"_modules": {"fc0": "not a module"}}}, "submodule fc0 is a str"),
        ({"class_name": "AugmentPipe"}, "'G' is a AugmentPipe, expected a Generator"),
    ],
)
def test_malformed_records_are_refused_cleanly(tmp_path, nvidia_tools, meta_change, message):
    meta = {"type": "class", "version": 6, "module_src": "", "class_name": "Generator", "state": {}, **meta_change}
    with nvidia_tools.fake_modules() as (reconstruct, _):
        data = pickle.dumps({"G": nvidia_tools.Reduce(reconstruct, meta)})
    path = tmp_path / "odd.pkl"
    path.write_bytes(data)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_numpy_scalars_are_decoded_without_numpy():
    import numpy as np

    values = {
        "gain": np.float64(0.125),
        "f32": np.float32(1.5),
        "f16": np.float16(-2.0),
        "n": np.int64(-3),
        "u": np.uint8(200),
        "flag": np.bool_(True),
        "big_endian": np.dtype(">f8").type(2.5),
    }
    for protocol in (2, 4):
        decoded = nvp.RestrictedUnpickler(io.BytesIO(pickle.dumps(values, protocol=protocol))).load()
        assert decoded == {k: v.item() for k, v in values.items()}
        assert all(type(v) in (float, int, bool) for v in decoded.values())
    with pytest.raises(CheckpointError, match="unsupported numpy dtype 'O8'"):
        nvp.RestrictedUnpickler(io.BytesIO(pickle.dumps(np.dtype(object)))).load()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_numpy_arrays_of_numbers_are_read_as_data(protocol):
    """StyleGAN3 layers keep small numpy arrays as attributes; they are rebuilt as tensors, without numpy."""
    import numpy as np

    arrays = {
        "size": np.array([36, 36]),
        "f32": np.arange(6, dtype=np.float32).reshape(2, 3),
        "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        "empty": np.zeros((0, 2), np.float16),
    }
    decoded = nvp.RestrictedUnpickler(io.BytesIO(pickle.dumps(arrays, protocol=protocol))).load()
    for key, value in arrays.items():
        assert torch.equal(nvp.plain(decoded[key]), torch.from_numpy(np.ascontiguousarray(value))), key


def test_numpy_object_arrays_are_refused(capsys):
    import numpy as np

    payload = np.array([_PrintOnLoad(), 1], dtype=object)
    with pytest.raises(CheckpointError, match="unsupported numpy dtype 'O8'"):
        nvp.RestrictedUnpickler(io.BytesIO(pickle.dumps(payload))).load()
    assert capsys.readouterr().out == ""  # the element was never rebuilt


class _PrintOnLoad:
    def __reduce__(self):
        return print, ("numpy object array element was executed",)


@pytest.mark.parametrize("with_numpy", [False, True])
def test_large_storages_are_read_straight_from_the_file(tmp_path, with_numpy, monkeypatch):
    """Large storage records are read from the file into their tensors (one copy); a large bytes record that is
    no storage (here a numpy array's data) makes the reader read the file again the plain way, same values."""
    import numpy as np

    tensors = {
        "big": torch.randn(300, 301),
        "half": torch.randn(70000).half(),
        "small": torch.arange(5),
        "empty": torch.zeros(0),
    }
    tensors["view"] = tensors["big"][7:9]  # a view: offset and strides into a large storage
    obj = dict(tensors)
    if with_numpy:
        obj["array"] = np.arange(40000, dtype=np.float32)
    path = tmp_path / "blobs.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=4))
    plain_reads = []
    original = nvp.RestrictedUnpickler.load
    monkeypatch.setattr(
        nvp.RestrictedUnpickler, "load", lambda self: plain_reads.append(type(self).__name__) or original(self)
    )
    direct = []
    pread = nvp._pread_into
    monkeypatch.setattr(nvp, "_pread_into", lambda fd, t, offset: direct.append(t.numel()) or pread(fd, t, offset))
    loaded = nvp.read_pickle(path)
    assert sorted(direct) == [140000, 361200, 361200]  # half, big and the view's own copy: straight from the file
    assert plain_reads == (["_SkippingUnpickler", "RestrictedUnpickler"] if with_numpy else ["_SkippingUnpickler"])
    for key, value in tensors.items():
        assert loaded[key].dtype == value.dtype and torch.equal(loaded[key], value), key
    if with_numpy:
        assert torch.equal(nvp.plain(loaded["array"]), torch.arange(40000, dtype=torch.float32))
