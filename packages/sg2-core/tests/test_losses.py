"""Losses and regularisers against the reference values (g32_io.pt) and their defining properties.

The reference comparisons run on the exact convolution path (the ``exact_path`` fixture,
``sg2_core.use_impl("ref")``), so they do not depend on the CPU's NNPACK rounding."""

import math

import pytest
import torch
import torch.nn.functional as F

from sg2_core.training.losses import (
    PathLengthRegularizer,
    d_logistic_loss,
    g_nonsaturating_loss,
    lazy_optimizer_settings,
    r1_penalty,
)
from sg2_kernels.testing import assert_close_rel


def test_logistic_losses():
    real, fake = torch.tensor([[2.0], [-1.0]]), torch.tensor([[0.5], [-3.0]])
    expected_d = (math.log1p(math.exp(0.5)) + math.log1p(math.exp(-3.0))) / 2 + (
        math.log1p(math.exp(-2.0)) + math.log1p(math.exp(1.0))
    ) / 2
    assert d_logistic_loss(real, fake).item() == pytest.approx(expected_d, rel=1e-6)
    assert g_nonsaturating_loss(fake).item() == pytest.approx(F.softplus(-fake).mean().item())
    # the generator's loss falls as D believes its images more
    assert g_nonsaturating_loss(fake + 1) < g_nonsaturating_loss(fake)


def test_r1_penalty_matches_reference_and_is_differentiable(d32, io32, exact_path):
    real = io32["real"].clone().requires_grad_(True)
    penalty = r1_penalty(real, d32(real))
    assert_close_rel(penalty, io32["r1_penalty"], 1e-5, "r1_penalty")
    (dreal,) = torch.autograd.grad(penalty.sum(), real)
    assert_close_rel(dreal, io32["r1_dreal"], 1e-4, "r1_dreal")
    with pytest.raises(ValueError, match="real_images must require grad"):
        r1_penalty(io32["real"], d32(io32["real"]))


def test_path_length_penalty_matches_reference(g32, io32, exact_path):
    ws = io32["ws"].clone().requires_grad_(True)
    images = g32.synthesis(ws, noise_mode="const")
    reg = PathLengthRegularizer(decay=io32["pl_decay"])
    penalty = reg(images, ws, probe=io32["pl_y"])
    assert reg.pl_mean.item() == pytest.approx(io32["pl_mean_after_one_update"].item(), rel=1e-5)
    assert_close_rel(penalty, io32["pl_penalty"], 1e-5, "pl_penalty")
    penalty.sum().backward()  # second order through G reaches the weights
    assert g32.synthesis.b32.conv1.affine.weight.grad.abs().sum() > 0
    assert "pl_mean" in reg.state_dict()


def test_lazy_optimizer_settings():
    settings = lazy_optimizer_settings(0.002, (0.0, 0.99), interval=16)
    assert settings["lr"] == pytest.approx(0.002 * 16 / 17)
    assert settings["betas"] == pytest.approx((0.0, 0.99 ** (16 / 17)))
    assert lazy_optimizer_settings(0.002, (0.0, 0.99), None) == {"lr": 0.002, "betas": (0.0, 0.99)}
