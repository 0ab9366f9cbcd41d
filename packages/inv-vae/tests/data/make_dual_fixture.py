"""Build a small DualGenerator (flyingbread-elon/AgileGAN lib/generator/model_dual.py) on the CPU and save its
state_dict (as ``g_ema``) and its outputs for fixed Z+ codes and noise: ``python make_dual_fixture.py OUT.pt``
with the prepared reference tree at /tmp/agile_ref (see README.md). Run by hand; not imported by the tests."""

import sys

import torch

sys.path.insert(0, "/tmp/agile_ref")
from lib.generator.model_dual import DualGenerator

torch.manual_seed(0)
g = DualGenerator(128, 16, 2).eval()
with torch.no_grad():  # off the init values (zeros / ones), so every tensor matters
    for name, p in g.named_parameters():
        if (
            name.endswith("noise.weight")
            or name.endswith("activate.bias")
            or name.endswith("to_rgb1.bias")
            or (".bias" in name and "to_rgbs" in name)
        ):
            p.copy_(0.2 * torch.randn_like(p))
        elif "modulation.bias" in name:
            p.add_(0.2 * torch.randn_like(p))
state = {k: v.clone() for k, v in g.state_dict().items()}  # the layout of a g_ema entry
gen = torch.Generator().manual_seed(1)
z = torch.randn(2, g.n_latent, 16, generator=gen)
with torch.no_grad():
    ws = g.style(z.reshape(-1, 16)).reshape(2, g.n_latent, 16)  # Z+: each z through the mapping
    # explicit noise: the file's buffers, except layers 1 and 2 as 1x1 maps: the shared 128 px blocks (convsC)
    # read noise[1] and noise[2] again (the reference's loop restart), and only a 1x1 map fits both 8 and 128 px
    noise = [getattr(g.noises, f"noise_{i}") for i in range(g.num_layers)]
    noise[1] = torch.randn(1, 1, 1, 1, generator=gen)
    noise[2] = torch.randn(1, 1, 1, 1, generator=gen)
    image_a, image_b, _ = g([ws], input_is_latent=True, noise=noise, randomize_noise=False)
    try:
        g([ws], input_is_latent=True, randomize_noise=False)
        crash = None
    except RuntimeError as e:
        crash = str(e).splitlines()[0]
print("constant-noise forward of the reference:", crash)
out = {
    "g_ema": state,
    "z": z,
    "noise_1": noise[1],
    "noise_2": noise[2],
    "image_a0": image_a[0].clone(),
    "image_b1": image_b[1].clone(),
    "torch_version": str(torch.__version__),
}
torch.save(out, sys.argv[1])
print({k: tuple(v.shape) for k, v in out.items() if isinstance(v, torch.Tensor)})
print("params", sum(v.numel() for v in state.values()), "image range", float(image_a.abs().max()))
print("diff a vs b", float((image_a - image_b).abs().max()))
