"""The VAE encoder equals AgileGAN's VAEStyleEncoder on the reference fixtures (mu, logvar, the sampled z for
the injected eps, the KL value) in float32 and float64, and round-trips through sg2-core's native format."""

import copy

import pytest
import torch

from inv_vae import VAEConfig, VAEStyleEncoder, kl_divergence, reparameterize
from sg2_core import load_networks, save_networks

FIXTURE = VAEConfig(n_styles=10, z_dim=32, widths=(16, 32, 48, 64))
TOL = dict(rtol=1e-4, atol=1e-4)  # the fixtures README's codes/latents tolerance


@pytest.fixture(scope="module")
def encoder(agile_data):
    net = VAEStyleEncoder(FIXTURE)
    net.load_state_dict(agile_data["state_dict"], strict=True)
    return net.eval().requires_grad_(False)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_equals_the_reference_posterior_and_sample(encoder, agile_data, dtype):
    net = encoder.to(dtype)
    try:
        x, eps = agile_data["x"].to(dtype), agile_data["eps"][:1].to(dtype)
        out = net(x, eps=eps)
    finally:
        net.float()
    suffix = "_f64" if dtype == torch.float64 else ""
    for name in ("mu", "logvar", "z"):
        expected = agile_data[name + suffix][:1].to(dtype)
        assert getattr(out, name).dtype == dtype
        torch.testing.assert_close(getattr(out, name), expected, **TOL)
    # float64 against the reference's float64 run is far tighter than the README's bound
    if dtype == torch.float64:
        torch.testing.assert_close(out.z, agile_data["z_f64"][:1], rtol=0, atol=1e-9)


def test_eval_mode_gives_mu_and_training_mode_samples(encoder, agile_data):
    x = agile_data["x"]
    out = encoder(x)
    assert torch.equal(out.z, out.mu)
    training = copy.deepcopy(encoder).train()  # a copy: training mode updates the BN running statistics
    torch.manual_seed(3)
    sampled = training(x)  # batch-statistics BN: another mu, and z drawn around it
    torch.manual_seed(3)
    eps = torch.randn_like(sampled.mu)
    assert not torch.allclose(sampled.z, sampled.mu)
    torch.testing.assert_close(sampled.z, sampled.mu + eps * torch.exp(0.5 * sampled.logvar), rtol=0, atol=1e-6)


def test_kl_equals_the_fixture_value(agile_data):
    kl = kl_divergence(agile_data["mu"], agile_data["logvar"])
    assert kl.ndim == 0
    torch.testing.assert_close(kl, torch.tensor(agile_data["kl"]), rtol=1e-5, atol=0)
    kl64 = kl_divergence(agile_data["mu_f64"], agile_data["logvar_f64"])
    torch.testing.assert_close(kl64, torch.tensor(agile_data["kl_f64"], dtype=torch.float64), rtol=1e-12, atol=0)


def test_kl_is_zero_at_the_prior_and_positive_elsewhere():
    zeros = torch.zeros(2, 3, 4)
    assert kl_divergence(zeros, zeros).item() == 0
    assert kl_divergence(zeros + 0.5, zeros).item() == pytest.approx(0.5 * 0.25 * 4)
    with pytest.raises(ValueError, match="one shape"):
        kl_divergence(zeros, zeros[:, :1])


def test_reparameterize_refuses_eps_of_another_shape():
    mu = torch.zeros(1, 2, 3)
    with pytest.raises(ValueError, match=r"eps must have the shape of mu \[1, 2, 3\], got \[1, 2\]"):
        reparameterize(mu, mu, torch.zeros(1, 2))


def test_state_dict_keys_are_the_official_layout(official_layout):
    with torch.device("meta"):
        net = VAEStyleEncoder(VAEConfig())
    layout = official_layout["layout"]
    assert {k: list(v.shape) for k, v in net.state_dict().items()} == layout["keys"]
    assert sum(p.numel() for p in net.parameters()) == layout["n_parameters"] == 267_662_016


def test_native_format_round_trip(encoder, agile_data, tmp_path):
    path = save_networks(tmp_path / "vae.safetensors", {"encoder": encoder})
    loaded = load_networks(path)["encoder"]
    assert isinstance(loaded, VAEStyleEncoder) and loaded.config == FIXTURE
    x = agile_data["x"]
    # the same tensors; the convolutions' memory layout may differ, so float32 round-off only: each mu is within
    # 9.5 eps * max|mu| of a float64 run (this CPU; AVX2- and SSE-capped kernels), so < 19 apart; 48x leaves 2.5x
    expected = encoder(x).mu
    torch.testing.assert_close(
        loaded(x).mu, expected, rtol=0, atol=48 * torch.finfo(torch.float32).eps * expected.abs().max().item()
    )
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), encoder.state_dict().values()))


def test_bad_input_is_refused(encoder):
    with pytest.raises(ValueError, match=r"takes images \[N, 3, H, W\], got \(1, 1, 256, 256\)"):
        encoder(torch.zeros(1, 1, 256, 256))
    with pytest.raises(ValueError, match="built for 256x256 inputs, got 128x128"):
        encoder(torch.zeros(1, 3, 128, 128))
    with pytest.raises(ValueError, match="n_styles must be a positive int"):
        VAEConfig(n_styles=0)
