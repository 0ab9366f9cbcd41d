"""load_checkpoint recognises formats by content, whatever the extension, and wraps library errors."""

import shutil
from pathlib import Path

import pytest
import torch

from sg2_core.checkpoints import CheckpointError, detect_format, load_checkpoint, native

DATA = Path(__file__).parent / "data"


class NotAllowed:
    """A class torch.load(weights_only=True) must refuse to rebuild."""


@pytest.fixture(scope="module")
def ros():
    return torch.load(DATA / "g32_rosinality.pt", weights_only=True)


def test_misnamed_files_are_recognised(tmp_path, g32, nvidia_pkl):
    ros_as_pkl = shutil.copy(DATA / "g32_rosinality.pt", tmp_path / "looks_like_nvidia.pkl")
    nvidia_as_pt = shutil.copy(nvidia_pkl[0], tmp_path / "looks_like_rosinality.pt")
    native_as_pt = native.save(tmp_path / "weights.pt", G_ema=g32)
    assert detect_format(ros_as_pkl) == "rosinality"
    assert detect_format(nvidia_as_pt) == "nvidia-pickle"
    assert detect_format(native_as_pt) == "native"
    assert load_checkpoint(ros_as_pkl).G_ema.config == load_checkpoint(nvidia_as_pt).G_ema.config
    assert load_checkpoint(native_as_pt).format == "native"


def test_legacy_torch_files_and_nvidia_state_dicts(tmp_path, ros):
    legacy = tmp_path / "legacy.pt"
    torch.save(ros, legacy, _use_new_zipfile_serialization=False)
    assert detect_format(legacy) == "rosinality"
    ckpt = load_checkpoint(legacy)
    assert torch.equal(ckpt.G_ema.mapping.w_avg, ros["latent_avg"])

    g_state = torch.load(DATA / "g32_nvidia_state.pt", weights_only=True)
    d_state = torch.load(DATA / "d32_nvidia_state.pt", weights_only=True)
    both = tmp_path / "nvidia_states.pt"
    torch.save({"G_ema": g_state, "D": d_state, "kimg": 100}, both)
    assert detect_format(DATA / "g32_nvidia_state.pt") == "nvidia-state" == detect_format(both)
    ckpt = load_checkpoint(both)
    assert ckpt.extra == {"kimg": 100} and ckpt.G_ema.config.channel_base == 1024
    for key, value in d_state.items():
        assert torch.equal(ckpt.D.state_dict()[key], value), key


def test_nvidia_state_dict_with_another_filter_is_refused(tmp_path):
    g_state = torch.load(DATA / "g32_nvidia_state.pt", weights_only=True)
    g_state["synthesis.b8.conv0.resample_filter"] = g_state["synthesis.b8.conv0.resample_filter"] / 4
    path = tmp_path / "g.pt"
    torch.save(g_state, path)
    with pytest.raises(
        CheckpointError,
        match=r"generator: the resampling filter buffers \['synthesis.b8.conv0.resample_filter'\] differ from 1 x the "
        r"normalised resample_filter=\[1, 3, 3, 1\]; pass a config with the matching resample_filter",
    ):
        load_checkpoint(path)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "the file is empty"),
        (b"hello, this is not a checkpoint at all", "unrecognised file format"),
    ],
)
def test_unrecognised_files(tmp_path, content, message):
    path = tmp_path / "mystery.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=f"mystery.pt: {message}"):
        load_checkpoint(path)


def test_torch_file_with_foreign_keys(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"model": {"layer.weight": torch.zeros(2)}}, path)
    with pytest.raises(CheckpointError, match=r"unrecognised torch checkpoint.*\['model'\]"):
        load_checkpoint(path)


def test_torch_file_that_would_run_code_is_refused(tmp_path, ros):
    path = tmp_path / "unsafe.pt"
    torch.save({"g_ema": ros["g_ema"], "latent_avg": ros["latent_avg"], "hook": NotAllowed()}, path)
    with pytest.raises(
        CheckpointError,
        match=r"unsafe\.pt: refusing to load: the file references the global "
        r"'.*NotAllowed'",
    ):
        load_checkpoint(path)


def test_corrupt_zip_names_the_file(tmp_path):
    data = (DATA / "g32_rosinality.pt").read_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match=r"cut\.pt: cannot read the file as a torch checkpoint") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)


def test_unknown_format_name(tmp_path):
    with pytest.raises(ValueError, match="unknown checkpoint format 'tf'"):
        load_checkpoint(DATA / "g32_rosinality.pt", format="tf")
