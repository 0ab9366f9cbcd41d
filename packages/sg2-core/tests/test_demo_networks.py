"""The shipped demo networks load, match their documented architecture and behave like a trained GAN."""

import torch

from sg2_core import demo


def test_demo_networks_load_with_their_config():
    G, D = demo.load_generator(), demo.load_discriminator()
    assert G.config == demo.GENERATOR_CONFIG and D.config == demo.DISCRIMINATOR_CONFIG
    assert not G.training and not any(p.requires_grad for p in G.parameters())
    assert demo.CHECKPOINT.endswith(".safetensors")


def test_demo_discriminator_tells_held_out_images_from_samples_and_noise():
    G, D = demo.load_generator(), demo.load_discriminator()
    z = torch.randn(64, G.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        fakes = G(z, noise_mode="const")
        reals, labels = demo.load_test_images()
        noise = torch.rand_like(reals) * 2 - 1
        d_fake, d_real, d_noise = (D(x).mean().item() for x in (fakes, reals[:64], noise[:64]))
    assert fakes.shape == (64, 1, 32, 32) and fakes.clamp(-1, 1).sub(fakes).abs().mean() < 0.05  # mostly in range
    assert fakes[:, :, :2].abs().mean() > 0.8  # a dark (-1) border, as the padded training images
    # D was trained: held-out real images score well above G's samples and above noise (a random D would not care)
    assert d_real > d_fake + 1 and d_real > d_noise + 1, (d_real, d_fake, d_noise)
