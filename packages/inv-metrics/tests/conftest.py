"""Shared fixtures: the test data folder, and the Inception formula weights of the metrics fixture README."""

import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

DATA = Path(__file__).resolve().parent / "data"
GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


def _uniform(key: str, n: int, base_seed: int) -> np.ndarray:
    """The README's RNG-free recipe (splitmix64 of seed XOR crc32(key), counter i+1), float64 in [0, 1)."""
    s = np.uint64(base_seed ^ zlib.crc32(key.encode("utf-8")))
    with np.errstate(over="ignore"):  # all integer arithmetic is mod 2**64 by design
        z = s * GOLDEN + np.arange(1, n + 1, dtype=np.uint64) * GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _value(key: str, shape, base_seed: int) -> torch.Tensor:
    n = int(np.prod(shape)) if len(shape) else 1
    if key.endswith("num_batches_tracked"):
        return torch.zeros((), dtype=torch.int64)
    u = _uniform(key, n, base_seed)
    if key.endswith("conv.weight"):
        fan_in = int(np.prod(shape[1:]))
        v = (2 * u - 1) * (np.sqrt(3) * np.sqrt(2 / fan_in))
    elif key.endswith("bn.weight"):
        v = 1 + (2 * u - 1) * 0.1
    elif key.endswith("bn.bias"):
        v = (2 * u - 1) * 0.1
    elif key.endswith("bn.running_mean"):
        v = (2 * u - 1) * 0.05
    elif key.endswith("bn.running_var"):
        v = 1 + 0.2 * u
    elif key == "fc.weight":
        v = (2 * u - 1) * np.sqrt(3 / 2048)
    elif key == "fc.bias":
        v = (2 * u - 1) * 0.01
    else:
        raise KeyError(key)
    return torch.from_numpy(v.reshape(shape)).to(torch.float32)


def inception_shapes(monkeypatch_ctx) -> dict:
    """Key -> shape of torch-fidelity's Inception, read from the module built without loading any weights."""
    from torch_fidelity import feature_extractor_inceptionv3 as fe

    monkeypatch_ctx.setattr(fe, "load_state_dict_from_url", lambda *a, **k: {})
    monkeypatch_ctx.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None)
    net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def build_hash_weights(base_seed: int = 20251122) -> dict:
    with pytest.MonkeyPatch.context() as mp:
        shapes = inception_shapes(mp)
    return {key: _value(key, shape, base_seed) for key, shape in shapes.items()}


@pytest.fixture(scope="session")
def inception_hash_weights(tmp_path_factory) -> Path:
    """The formula-weight Inception state dict, saved where torch-fidelity can load it."""
    path = tmp_path_factory.mktemp("inception") / "hash_inception.pth"
    torch.save(build_hash_weights(), path)
    return path
