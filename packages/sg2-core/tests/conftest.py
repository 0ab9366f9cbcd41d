from pathlib import Path

import pytest
import torch

from sg2_core.config import DiscriminatorConfig, GeneratorConfig
from sg2_core.discriminator import Discriminator
from sg2_core.generator import Generator

DATA = Path(__file__).parent / "data"

# The fixtures' architecture (shared/fixtures/sg2/README.md): channels {4: 96, 8: 96, 16: 64, 32: 32}.
G32 = GeneratorConfig(z_dim=64, w_dim=64, resolution=32, channel_base=1024, channel_max=96)
D32 = DiscriminatorConfig(resolution=32, channel_base=1024, channel_max=96)


@pytest.fixture(scope="session")
def io32():
    return torch.load(DATA / "g32_io.pt", weights_only=True)


@pytest.fixture
def g32():
    G = Generator(G32).eval()
    G.load_state_dict(torch.load(DATA / "g32_nvidia_state.pt", weights_only=True))
    return G


@pytest.fixture
def d32():
    D = Discriminator(D32).eval()
    D.load_state_dict(torch.load(DATA / "d32_nvidia_state.pt", weights_only=True))
    return D
