import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    # The test networks are tiny: on a shared 2-core machine, thread hand-offs cost more than the maths.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def generator():
    """The reference fixtures' 32 px SG2-ADA target config (w_dim 32, 8 W+ entries), random weights."""
    from sg2_core import Generator, GeneratorConfig

    torch.manual_seed(0)
    config = GeneratorConfig(resolution=32, z_dim=32, w_dim=32, channel_base=512, channel_max=32, mapping_layers=2)
    return Generator(config).eval().requires_grad_(False)


@pytest.fixture
def images(generator):
    torch.manual_seed(1)
    with torch.no_grad():
        return generator(torch.randn(3, generator.z_dim), noise_mode="const").clamp(-1, 1)
