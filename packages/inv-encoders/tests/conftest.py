import gzip
import json
from pathlib import Path

import pytest
import torch

from sg2_core.testing.fixture_packs import unpack_state as unpack
from sg2_core.testing.fixture_packs import unsqueeze

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(autouse=True)
def _one_thread():
    # The test networks are tiny: on a shared 2-core machine, thread hand-offs cost more than the maths.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _load(name):
    return torch.load(DATA / name, weights_only=True)


@pytest.fixture(scope="session")
def inputs():
    raw = _load("inputs.pt")
    return {
        "x256": unsqueeze(raw["x256_0_f16_lzma"], (1, 3, 256, 256)),
        "y256": unsqueeze(raw["y256_0_f16_lzma"], (1, 3, 256, 256)),
        "disc_codes": raw["disc_codes"].float(),
    }


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
