"""The method 'agilegan' keeps the sg2_core.Method contract with its default options (the cheap ones: the root
tests/test_conformance.py) and returns the encoder's mu in Z+, mapped per entry by the generator's frozen mapping
network; bad input and missing weights get clear errors."""

import pytest
import torch

import inv_vae.methods
import sg2_core.methods.weights
from inv_vae import VAEConfig, VAEStyleEncoder
from inv_vae.methods import AgileGAN, fit_z
from sg2_core import Generator, Inversion, create_method, demo, list_methods, method_spec, save_networks
from sg2_core.methods.weights import MissingWeightsError
from sg2_core.testing import check_method

SMALL = {"allow_untrained": True, "widths": (16, 32, 48, 64)}


def test_registered_with_its_declaration():
    assert "agilegan" in list_methods(space="z+")
    spec = method_spec("agilegan")
    assert (spec.space, spec.trainable, spec.needs) == ("z+", True, ("generator", "own-weights"))


def test_the_default_options_keep_the_contract_on_the_demo_generator():
    G = demo.load_generator()
    check_method("agilegan", G, demo.load_test_images()[0][:2], options={"allow_untrained": True})


def test_result_is_mu_in_z_plus_mapped_per_entry(generator, images):
    method = create_method("agilegan", generator=generator, **SMALL)
    inv = method(images)
    with torch.no_grad():
        mu, logvar = method.net.posterior(images)
        expected_ws = torch.stack([generator.mapping(mu[:, i])[:, 0] for i in range(generator.num_ws)], dim=1)
    assert inv.space == "z+" and inv.latents.shape == (3, generator.num_ws, generator.z_dim)
    assert torch.equal(inv.latents, mu) and torch.equal(inv.extras["mu"], mu)
    assert torch.equal(inv.extras["logvar"], logvar)
    # one mapping call for all entries vs one per entry: other summation orders. Each is within 3.2 eps * max|ws| of
    # a float64 run of the same mapping (this CPU; AVX2- and SSE-capped kernels): they differ by < 6.4; 16x leaves 2.5x
    torch.testing.assert_close(
        inv.ws, expected_ws, rtol=0, atol=16 * torch.finfo(torch.float32).eps * expected_ws.abs().max().item()
    )
    assert not torch.allclose(inv.ws[:, 0], inv.ws[:, 1])  # one z per layer: the entries differ
    assert inv[1:].extras["mu"].shape[0] == 2  # the extras follow the batch


def test_init_moves_the_prior_mean_by_the_posterior_variance(generator, images):
    method = create_method("agilegan", generator=generator, **SMALL)
    plain = method(images)
    z0 = torch.randn(3, generator.num_ws, generator.z_dim, generator=torch.Generator().manual_seed(5))
    started = method(images, init=Inversion(z0, "z+", generator))
    var = plain.extras["logvar"].exp().clamp(max=1)
    torch.testing.assert_close(started.latents, plain.latents + var * z0, rtol=0, atol=1e-6)


def test_fit_z_reproduces_mapped_codes(generator):
    z = torch.randn(2, generator.num_ws, generator.z_dim, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ws = generator.mapping(z.reshape(-1, generator.z_dim))[:, 0].reshape(2, generator.num_ws, -1)
    fitted, error = fit_z(generator, ws, steps=300)
    before = (ws - generator.mapping.w_avg).pow(2).mean()
    assert error.shape == (2,) and (error < 0.01 * before).all()
    assert all(p.grad is None for p in generator.parameters())


def test_weights_from_a_native_file_and_an_encoder(generator, images, tmp_path):
    net = create_method("agilegan", generator=generator, **SMALL).net
    path = save_networks(tmp_path / "enc.safetensors", {"encoder": net})
    from_file = create_method("agilegan", generator=generator, weights=path)(images)
    from_net = create_method("agilegan", generator=generator, weights=net)(images)
    reference = create_method("agilegan", generator=generator, **SMALL)(images)
    assert torch.equal(from_file.latents, reference.latents) and torch.equal(from_net.latents, reference.latents)


def test_without_weights_it_says_none_are_shipped(generator):
    with pytest.raises(
        MissingWeightsError,
        match=r"^agilegan: no weights for this generator: pass weights= \(an AgileGAN encoder.pt or a "
        r"VAEStyleEncoder, or the file that python -m inv_vae.train --method agilegan writes\) or "
        r"allow_untrained=True for random weights \(tests only\); the shipped "
        r"inv_vae/assets/agilegan_fmnist32.safetensors is for sg2_core.demo's generator only$",
    ):
        create_method("agilegan", generator=generator)


def test_a_shipped_demo_file_is_the_default_for_the_demo_generator(tmp_path, monkeypatch):
    G = demo.load_generator()
    config = VAEConfig(n_styles=G.num_ws, z_dim=G.z_dim, in_channels=1, input_size=32, widths=(16, 32, 48, 64))
    torch.manual_seed(2)
    net = VAEStyleEncoder(config).eval()
    (tmp_path / "assets").mkdir()
    save_networks(tmp_path / "assets" / inv_vae.methods.DEMO_WEIGHTS, {"encoder": net})
    monkeypatch.setattr(sg2_core.methods.weights, "files", lambda package: tmp_path)
    method = create_method("agilegan", generator=G)
    images = demo.load_test_images()[0][:2]
    with torch.no_grad():
        assert torch.equal(method(images).latents, net.posterior(images)[0])
    with pytest.raises(MissingWeightsError, match="no weights for this generator"):
        create_method("agilegan", generator=Generator(G.config.replace(z_dim=64)))  # not the demo's
    with pytest.raises(MissingWeightsError, match="no weights for this generator"):
        create_method("agilegan", generator=Generator(G.config))  # the demo's config, other weights


def test_bad_input_is_refused(generator, images):
    method = create_method("agilegan", generator=generator, **SMALL)
    with pytest.raises(ValueError, match=r"images must have shape \[N, 3, 32, 32\] with N >= 1, got \[3, 1, 32, 32\]"):
        method(images[:, :1])
    with pytest.raises(ValueError, match=r"got \[3, 3, 64, 64\]"):
        method(torch.nn.functional.interpolate(images, size=64))
    bad = images.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        method(bad)
    with pytest.raises(ValueError, match="weights must be a checkpoint path or a VAEStyleEncoder, got int"):
        create_method("agilegan", generator=generator, weights=3)


def test_an_encoder_for_another_generator_is_refused(generator):
    net = VAEStyleEncoder(VAEConfig(n_styles=10, z_dim=32, input_size=32, widths=(16, 32, 48, 64)))
    with pytest.raises(ValueError, match="the encoder predicts 10 z of width 32 but the generator takes 8 W"):
        AgileGAN(generator, weights=net)


def test_the_shipped_demo_encoder_reconstructs_and_its_codes_follow_the_prior():
    G = demo.load_generator()
    images = demo.load_test_images()[0][:64]
    inv = create_method("agilegan", generator=G)(images)
    mse = (inv.render() - images).square().mean().item()
    untrained = create_method("agilegan", generator=G, allow_untrained=True, widths=(16, 32, 48, 64))(images)
    assert mse < 0.13 < (untrained.render() - images).square().mean().item()  # 0.111 measured; ~0.5 untrained
    mu = inv.extras["mu"]
    assert abs(mu.mean().item()) < 0.1 and 0.8 < mu.std().item() < 1.2  # the prior's mean 0 and std 1
