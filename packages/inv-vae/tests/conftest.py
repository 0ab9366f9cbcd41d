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


@pytest.fixture(scope="session")
def agile_data():
    """The AgileGAN fixture (config R: 10 styles of width 32): weights, sample 0 of x256, eps and the outputs."""
    raw = torch.load(DATA / "agile_vae.pt", weights_only=True)
    return raw | {"state_dict": unpack(raw["weights"]), "x": unsqueeze(raw["x256_0_f16_lzma"], (1, 3, 256, 256))}


@pytest.fixture(scope="session")
def official_layout():
    with gzip.open(DATA / "agile_official_layout.json.gz", "rt", encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="session")
def generator():
    """A tiny generator: 32 px, z_dim = w_dim = 32, 8 W+ entries."""
    from sg2_core import Generator, GeneratorConfig

    torch.manual_seed(0)
    config = GeneratorConfig(resolution=32, z_dim=32, w_dim=32, channel_base=256, channel_max=32, mapping_layers=2)
    return Generator(config).eval().requires_grad_(False)


@pytest.fixture
def images(generator):
    torch.manual_seed(1)
    with torch.no_grad():
        return generator(torch.randn(3, generator.z_dim), noise_mode="const").clamp(-1, 1)
