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
    from sg2_core import Generator, GeneratorConfig

    torch.manual_seed(0)
    config = GeneratorConfig(resolution=16, z_dim=32, w_dim=32, channel_base=256, channel_max=32, mapping_layers=2)
    return Generator(config).eval()


@pytest.fixture(scope="session")
def mse_distance():
    """A stand-in for a perceptual distance: per-image MSE (no pretrained weights)."""

    class MSE(torch.nn.Module):
        name = "test-mse"

        def forward(self, x, y):
            return (x - y).square().flatten(1).mean(dim=1)

    return MSE()


@pytest.fixture(scope="session")
def targets(generator):
    """Three images rendered from random W+ codes (so W+ can reach them and W cannot quite)."""
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        ws = generator.mapping(torch.randn(3, generator.z_dim, generator=gen))
        ws = ws + 0.5 * torch.randn(ws.shape, generator=gen)
        return generator.synthesis(ws, noise_mode="const").clamp(-1, 1)
