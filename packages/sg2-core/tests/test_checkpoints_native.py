"""Our safetensors format: networks rebuilt from the file alone, extras, refusals, atomic writes."""

import json
import os
import struct
import warnings
from pathlib import Path

import pytest
import torch

from sg2_core.checkpoints import (
    CheckpointError,
    CheckpointKeyError,
    CheckpointWarning,
    load_checkpoint,
    native,
    save_checkpoint,
)
from sg2_core.checkpoints._io import atomic_write
from sg2_core.nn.config import DiscriminatorConfig, GeneratorConfig
from sg2_core.nn.generator import Generator

G32 = GeneratorConfig(z_dim=64, w_dim=64, resolution=32, channel_base=1024, channel_max=96)
D32 = DiscriminatorConfig(resolution=32, channel_base=1024, channel_max=96)


def header(path: Path) -> dict:
    """The safetensors JSON header, read by hand (8-byte little-endian length, then JSON)."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + n])


def assert_same(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert set(sa) == set(sb)
    for key in sa:
        assert sa[key].dtype == sb[key].dtype and torch.equal(sa[key], sb[key]), key


def test_round_trip_rebuilds_every_network(tmp_path, g32, d32):
    ema = Generator(G32).eval()  # a different G_ema
    path = native.save(tmp_path / "ckpt.safetensors", G=g32, D=d32, G_ema=ema)
    meta = header(path)["__metadata__"]
    assert meta["format"] == "sg2-toolkit" and meta["format_version"] == "1"
    assert json.loads(meta["G_config"]) == G32.to_dict() | {"resample_filter": [1, 3, 3, 1]}
    assert GeneratorConfig.from_dict(json.loads(meta["G_ema_config"])) == G32
    assert DiscriminatorConfig.from_dict(json.loads(meta["D_config"])) == D32
    assert "G.mapping.w_avg" in header(path) and "D.b4.out.bias" in header(path)

    ckpt = load_checkpoint(path)
    assert ckpt.format == "native" and set(ckpt.networks()) == {"G", "D", "G_ema"}
    assert ckpt.G.config == G32 and ckpt.D.config == D32
    assert_same(ckpt.G, g32)
    assert_same(ckpt.G_ema, ema)
    assert_same(ckpt.D, d32)
    assert ckpt.generator is ckpt.G_ema


def test_only_some_networks_and_shared_modules(tmp_path, g32):
    path = native.save(tmp_path / "g.safetensors", G=g32, G_ema=g32)  # the same module twice
    ckpt = native.load(path)
    assert ckpt.D is None
    assert_same(ckpt.G, g32)
    assert_same(ckpt.G_ema, g32)
    assert ckpt.G.synthesis.b4.const.data_ptr() != ckpt.G_ema.synthesis.b4.const.data_ptr()


def test_extra_round_trip(tmp_path, g32):
    extra = {
        "kimg": 1200,
        "note": "ffhq",
        "nested": {"p": torch.tensor(0.25), "list": [1, 2.5, None, True]},
        "augment_pipe": {"state": {"Hz_geom": torch.arange(12.0)}},
        "optimizer": {0: {"step": 3}},
    }
    with pytest.warns(CheckpointWarning, match=r"extra\['optimizer'\] \(a dict with non-string keys\)"):
        path = native.save(tmp_path / "x.safetensors", G_ema=g32, extra=extra)
    back = native.load(path).extra
    assert set(back) == {"kimg", "note", "nested", "augment_pipe"}
    assert back["kimg"] == 1200 and back["note"] == "ffhq" and back["nested"]["list"] == [1, 2.5, None, True]
    assert torch.equal(back["nested"]["p"], torch.tensor(0.25))
    assert torch.equal(back["augment_pipe"]["state"]["Hz_geom"], torch.arange(12.0))


def test_save_checkpoint_and_detection_ignore_the_extension(tmp_path, g32, d32):
    ckpt = load_checkpoint(native.save(tmp_path / "a.safetensors", G_ema=g32, D=d32))
    odd = save_checkpoint(tmp_path / "weights.bin", ckpt, format="native")
    assert load_checkpoint(odd).format == "native"
    with pytest.raises(ValueError, match="cannot tell the output format"):
        save_checkpoint(tmp_path / "weights.bin", ckpt)
    with pytest.raises(ValueError, match="writing NVIDIA pickles is not supported"):
        save_checkpoint(tmp_path / "x.pkl", ckpt)


def test_missing_and_mis_shaped_tensors_are_listed(tmp_path, g32):
    from safetensors.torch import load_file, save_file

    good = native.save(tmp_path / "good.safetensors", G_ema=g32)
    meta = header(good)["__metadata__"]
    tensors = load_file(good)
    del tensors["G_ema.synthesis.b16.torgb.bias"]
    tensors["G_ema.mapping.fc2.bias"] = torch.zeros(65)
    tensors["G_ema.surprise"] = torch.zeros(1)
    tensors["H.weight"] = torch.zeros(2)  # no network config for it
    save_file(tensors, tmp_path / "bad.safetensors", metadata=meta)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "bad.safetensors")
    message = str(info.value)
    assert message.startswith(str(tmp_path / "bad.safetensors"))
    for text in (
        "1 missing (synthesis.b16.torgb.bias [3])",
        "1 unexpected (surprise [1])",
        "1 mis-shaped (mapping.fc2.bias expected [64], got [65])",
        "1 unexpected (H.weight [2])",
    ):
        assert text in message, text
    assert "\n" not in message and "; the file does not match its architecture: 1 unexpected (H.weight" in message


def test_one_network_mismatch_is_a_key_error(tmp_path, g32):
    from safetensors.torch import load_file, save_file

    good = native.save(tmp_path / "good.safetensors", G_ema=g32)
    tensors = load_file(good)
    del tensors["G_ema.mapping.w_avg"]
    save_file(tensors, tmp_path / "bad.safetensors", metadata=header(good)["__metadata__"])
    with pytest.raises(CheckpointKeyError) as info:
        native.load(tmp_path / "bad.safetensors")
    assert info.value.missing == [("mapping.w_avg", (64,))]


def test_foreign_and_future_files_are_refused(tmp_path, g32):
    from safetensors.torch import load_file, save_file

    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, plain)
    with pytest.raises(CheckpointError, match="not an sg2-toolkit (checkpoint|file)"):
        load_checkpoint(plain)
    good = native.save(tmp_path / "good.safetensors", G_ema=g32)
    meta = dict(header(good)["__metadata__"], format_version="2")
    save_file(load_file(good), tmp_path / "future.safetensors", metadata=meta)
    with pytest.raises(CheckpointError, match="unsupported format_version '2'"):
        load_checkpoint(tmp_path / "future.safetensors")


def test_truncated_file_names_the_file(tmp_path, g32):
    data = native.save(tmp_path / "good.safetensors", G_ema=g32).read_bytes()
    bad = tmp_path / "cut.safetensors"
    bad.write_bytes(data[: len(data) - 1000])
    with pytest.raises(CheckpointError, match=r"cut\.safetensors: cannot read the file as safetensors") as info:
        load_checkpoint(bad)
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        load_checkpoint(missing)
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        native.load(missing)


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "out.safetensors"
    target.write_bytes(b"old contents")

    def failing(f):
        f.write(b"half of the new ")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, failing)
    assert target.read_bytes() == b"old contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.safetensors"]  # no temporary file left
    atomic_write(target, lambda f: f.write(b"new"))
    umask = os.umask(0o022)
    os.umask(umask)
    assert target.read_bytes() == b"new" and (target.stat().st_mode & 0o777) == 0o666 & ~umask


def test_warnings_are_not_raised_for_a_plain_save(tmp_path, g32, d32):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        native.save(tmp_path / "a.safetensors", G=g32, D=d32)


def test_networks_stored_as_float16_load_back_as_float32(tmp_path):
    from safetensors.torch import load_file

    G = Generator(
        GeneratorConfig(
            z_dim=8, w_dim=8, resolution=8, img_channels=1, mapping_layers=1, channel_base=64, channel_max=8
        )
    )
    path = native.save_networks(
        tmp_path / "half.safetensors", {"G_ema": G}, extra={"note": torch.ones(2)}, dtype=torch.float16
    )
    stored = load_file(path)
    assert stored["G_ema.synthesis.b4.conv1.weight"].dtype == torch.float16
    extras = [v for k, v in stored.items() if k.startswith("extra.")]
    assert [v.dtype for v in extras] == [torch.float32]  # extras are kept as they are
    back = native.load_networks(path)["G_ema"]
    for key, value in G.state_dict().items():
        got = back.state_dict()[key]
        assert got.dtype == value.dtype
        if value.is_floating_point():
            assert torch.equal(got, value.half().float())


def test_a_class_recorded_at_its_path_before_the_move_loads_without_a_warning(tmp_path):
    # files written before 0.7 (the shipped demo assets among them) name sg2_core.generator:Generator
    from safetensors.torch import load_file, save_file

    from sg2_core import load_networks, save_networks
    from sg2_core.checkpoints.native import read_header

    G = Generator(GeneratorConfig(resolution=8, z_dim=8, w_dim=8, mapping_layers=1, channel_base=64, channel_max=8))
    path = save_networks(tmp_path / "new.safetensors", {"G": G})
    header = read_header(path)
    assert header["G_class"] == "sg2_core.nn.generator:Generator"
    old = tmp_path / "old.safetensors"
    save_file(load_file(path), old, metadata={**header, "G_class": "sg2_core.generator:Generator"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_networks(old)["G"]
    assert type(loaded) is Generator
    for key, value in G.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
