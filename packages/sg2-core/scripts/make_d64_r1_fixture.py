"""Make tests/data/d64_r1_nvidia.pt: R1 on a 64 px discriminator, computed by NVIDIA's stylegan2-ada-pytorch.

    python scripts/make_d64_r1_fixture.py /path/to/stylegan2-ada-pytorch tests/data/d64_r1_nvidia.pt

Run on the CPU in float32 with 2 threads; there NVIDIA's ops take their pure-PyTorch paths. The file holds the
D's constructor arguments and state dict, the input images and the R1 quantities up to second order
(``r1_dreal``, the squared norm of every parameter's gradient of the penalty). The copy in tests/data was made
at NVIDIA's commit d72cc7d with torch 2.14.1.
"""

import sys

import torch


def main(repo: str, out: str) -> None:
    sys.path.insert(0, repo)
    from training.networks import Discriminator  # noqa: PLC0415 (the user's checkout)

    torch.set_num_threads(2)
    kwargs = dict(
        c_dim=0,
        img_resolution=64,
        img_channels=3,
        architecture="resnet",
        channel_base=1024,
        channel_max=64,
        num_fp16_res=0,
        conv_clamp=None,
        epilogue_kwargs=dict(mbstd_group_size=4, mbstd_num_channels=1),
    )
    torch.manual_seed(64)
    D = Discriminator(**kwargs).eval()
    gen = torch.Generator().manual_seed(640)
    with torch.no_grad():  # non-zero biases, as in shared/fixtures/sg2
        for name, p in D.named_parameters():
            if name.endswith("bias"):
                p.copy_(0.2 * torch.randn(p.shape, generator=gen))
    real = (torch.rand(4, 3, 64, 64, generator=gen) * 2 - 1).requires_grad_(True)
    logits = D(real, None)
    (grads,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    penalty = grads.square().sum(dim=[1, 2, 3])
    names = [n for n, _ in D.named_parameters()]
    params = dict(D.named_parameters())
    dreal, *param_grads = torch.autograd.grad(
        penalty.sum(), [real, *(params[n] for n in names)], allow_unused=True, materialize_grads=True
    )
    torch.save(
        {
            "nvidia_D_kwargs": kwargs,
            "state": D.state_dict(),
            "real": real.detach(),
            "logits_real": logits.detach(),
            "r1_grads": grads.detach(),
            "r1_penalty": penalty.detach(),
            "r1_dreal": dreal,
            "r1_param_grad_sqnorm": {n: g.square().sum().item() for n, g in zip(names, param_grads)},
            "made_with": f"NVlabs/stylegan2-ada-pytorch, torch {torch.__version__}, CPU float32, 2 threads; "
            "torch.manual_seed(64) default init, biases 0.2*N(0,1) and real = U(-1, 1) from "
            "torch.Generator seed 640",
        },
        out,
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
