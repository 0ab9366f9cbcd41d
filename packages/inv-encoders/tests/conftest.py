import gzip
import json
import lzma
from pathlib import Path

import pytest
import torch

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(autouse=True)
def _one_thread():
    # The test networks are tiny: on a shared 2-core machine, thread hand-offs cost more than the maths.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def unsqueeze(packed: torch.Tensor, shape) -> torch.Tensor:
    """float32 from the lzma-compressed float16 bytes of build_test_data.py."""
    raw = bytearray(lzma.decompress(packed.numpy().tobytes()))
    return torch.frombuffer(raw, dtype=torch.float16).reshape(shape).float()


def unpack(weights: dict) -> dict:
    values = unsqueeze(weights["values_f16_lzma"], (-1,))
    state, start = {}, 0
    for key, shape in zip(weights["keys"], weights["shapes"]):
        n = int(torch.tensor(shape).prod()) if shape else 1
        state[key] = values[start:start + n].reshape(shape)
        start += n
    assert start == values.numel()
    state.update({k: torch.zeros((), dtype=torch.int64) for k in weights["zero_int64"]})
    return state


def _load(name):
    return torch.load(DATA / name, weights_only=True)


@pytest.fixture(scope="session")
def inputs():
    raw = _load("inputs.pt")
    return {"x256": unsqueeze(raw["x256_0_f16_lzma"], (1, 3, 256, 256)),
            "y256": unsqueeze(raw["y256_0_f16_lzma"], (1, 3, 256, 256)), "disc_codes": raw["disc_codes"].float()}


@pytest.fixture(scope="session")
def psp_data():
    raw = _load("psp_fpn.pt")
    return raw | {"state_dict": unpack(raw["weights"])}


@pytest.fixture(scope="session")
def restyle_data():
    raw = _load("restyle.pt")
    return raw | {"state_dict": unpack(raw["weights"])}


@pytest.fixture(scope="session")
def disc_data():
    raw = _load("e4e_disc.pt")
    return raw | {"state_dict": {k: v.float() for k, v in raw["state_dict"].items()}}


@pytest.fixture(scope="session")
def layouts():
    with gzip.open(DATA / "layouts_official.json.gz", "rt", encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="session")
def generator():
    """A tiny generator: 32 px, w_dim 32, 8 W+ entries."""
    from sg2_core import Generator, GeneratorConfig

    torch.manual_seed(0)
    config = GeneratorConfig(resolution=32, z_dim=32, w_dim=32, channel_base=256, channel_max=32, mapping_layers=2)
    return Generator(config).eval().requires_grad_(False)
