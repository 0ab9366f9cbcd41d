"""The shared training losses: values from their definitions, gradients, clear errors."""

import pytest
import torch

from inv_metrics import losses


def test_l2_is_elementwise_mean():
    x, y = torch.zeros(2, 3, 4, 4), torch.ones(2, 3, 4, 4)
    assert losses.l2(x, y).item() == 1.0
    with pytest.raises(ValueError, match="same shape"):
        losses.l2(x, y[:1])


def test_w_norm_matches_psp_definition():
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(3, 5, 8, generator=gen)
    avg = torch.randn(8, generator=gen)
    expected = sum(torch.sqrt(((w[i] - avg) ** 2).sum()) for i in range(3)) / 3
    assert losses.w_norm(w, avg).item() == pytest.approx(expected.item(), rel=1e-6)
    assert losses.w_norm(avg.expand(2, 5, 8), avg).item() == 0.0
    with pytest.raises(ValueError, match="w\\+ codes"):
        losses.w_norm(torch.zeros(3, 8))


def test_delta_regularizer_matches_e4e_definition():
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(2, 6, 4, generator=gen).requires_grad_()
    expected = sum(torch.norm(w[:, i] - w[:, 0], p=2, dim=1).mean() for i in range(1, 4))
    got = losses.delta_regularizer(w, num_deltas=3)
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)
    got.backward()
    assert w.grad[:, 4:].abs().sum() == 0  # inactive deltas get no gradient (e4e's progressive stages)
    assert losses.delta_regularizer(w[:, :1].expand(2, 6, 4)).item() == 0.0
    with pytest.raises(ValueError, match="num_deltas"):
        losses.delta_regularizer(w, num_deltas=6)


def test_perceptual_loss_is_batch_mean_of_a_distance():
    class Abs(torch.nn.Module):
        name = "toy"

        def forward(self, x, y):
            return (x - y).abs().flatten(1).mean(1)

    x, y = torch.zeros(2, 1, 2, 2), torch.tensor([1.0, 3.0]).view(2, 1, 1, 1).expand(2, 1, 2, 2)
    loss = losses.PerceptualLoss(Abs())
    assert loss.name == "toy" and loss(x, y).item() == 2.0
