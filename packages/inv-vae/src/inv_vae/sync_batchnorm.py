"""Batch norm whose training statistics span every process of a ``torch.distributed`` run, on any backend.

``torch.nn.SyncBatchNorm`` runs on CUDA only; the encoder's pyramid has BatchNorm layers, so a CPU (gloo) run
of ``python -m inv_vae.train encoder`` with several processes would otherwise normalise each rank's share with
its own statistics and train another network than one process with the whole batch. Here the per-channel sums
go through the differentiable ``torch.distributed.nn.functional.all_reduce``: the forward sees the whole
batch's mean and variance, and the backward carries every rank's gradient into them, so the ranks' averaged
gradients are the whole batch's. Same parameters and buffers as ``nn.BatchNorm2d`` (the keys do not change).
"""

from __future__ import annotations

import torch
from torch import nn

from sg2_core.training.run import world

__all__ = ["GlobalBatchNorm2d", "synchronize_batchnorm"]


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` with the batch statistics of all ranks in training mode (plain batch norm otherwise)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and world()[1] > 1):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        dims = (0, 2, 3)
        count = torch.tensor([x.numel() // x.shape[1]], dtype=x.dtype, device=x.device)
        total = all_reduce(torch.cat([x.sum(dims), count]))  # differentiable: the backward sums the ranks' grads
        n = total[-1].detach()
        mean = total[:-1] / n
        centred = x - mean[None, :, None, None]
        var = all_reduce(centred.square().sum(dims)) / n  # two passes, as accurate as one process's
        y = centred * torch.rsqrt(var + self.eps)[None, :, None, None]
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach(), m)
                self.running_var.lerp_(var.detach() * n / (n - 1), m)  # unbiased, as nn.BatchNorm2d keeps it
        return y


def synchronize_batchnorm(net: nn.Module) -> nn.Module:
    """Every ``nn.BatchNorm2d`` of ``net`` becomes a :class:`GlobalBatchNorm2d` in place (the same tensors)."""
    for module in net.modules():
        if type(module) is nn.BatchNorm2d:
            module.__class__ = GlobalBatchNorm2d  # adds only a forward: parameters, buffers and keys stay
    return net
