"""The projector's schedules and noise-map helpers against their formulas on hand-built inputs."""

import math

import pytest
import torch

from inv_optim.noise_maps import noise_regularization, normalize_maps_
from inv_optim.schedule import learning_rate, w_noise_std


@pytest.mark.parametrize("step", [0, 10, 25, 50, 500, 760, 900, 999])
def test_learning_rate_matches_the_formula(step):
    steps, peak = 1000, 0.1
    t = step / steps
    expected = peak * min(1, t / 0.05) * 0.5 * (1 - math.cos(math.pi * min(1, (1 - t) / 0.25)))
    assert learning_rate(step, steps, peak) == pytest.approx(expected, abs=1e-12)


def test_learning_rate_shape():
    lrs = [learning_rate(s, 1000, 0.1) for s in range(1000)]
    assert lrs[0] == 0  # t = 0
    assert lrs[25] == pytest.approx(0.05)  # half-way up the 5 % ramp
    assert all(v == pytest.approx(0.1) for v in lrs[50:750])  # plateau
    assert lrs[875] == pytest.approx(0.05)  # cosine half-way down the last 25 %
    assert all(a >= b for a, b in zip(lrs[750:], lrs[751:]))


def test_w_noise_decays_to_zero_by_three_quarters():
    assert w_noise_std(0, 100, 2.0) == pytest.approx(2.0 * 0.05)
    assert w_noise_std(30, 100, 2.0) == pytest.approx(2.0 * 0.05 * (1 - 0.3 / 0.75) ** 2)
    assert w_noise_std(75, 100, 2.0) == 0 and w_noise_std(99, 100, 2.0) == 0


def _reference_penalty(n):
    """The regulariser written out by hand for one sample's map [1, r, r]."""
    total = 0.0
    while True:
        total += (n * torch.roll(n, 1, dims=2)).mean() ** 2 + (n * torch.roll(n, 1, dims=1)).mean() ** 2
        if n.shape[-1] <= 8:
            return total
        n = torch.nn.functional.avg_pool2d(n.unsqueeze(0), 2)[0]


def test_noise_regularization_matches_the_formula_per_sample():
    # Hand-built maps: a constant map (fully correlated), a checkerboard (anti-correlated), random noise.
    r = 16
    checker = (torch.arange(r).reshape(-1, 1) + torch.arange(r)).remainder(2) * 2.0 - 1
    maps16 = torch.stack([torch.ones(1, r, r), checker.reshape(1, r, r), torch.randn(1, r, r)])
    maps4 = torch.randn(3, 1, 4, 4)
    got = noise_regularization([maps16, maps4])
    assert got.shape == (3,)
    for i in range(3):
        expected = _reference_penalty(maps16[i]) + _reference_penalty(maps4[i])
        assert got[i].item() == pytest.approx(float(expected), rel=1e-5)
    # constant map: every scale (16, 8) contributes 1 + 1; checkerboard at 16 px scores (-1)^2 + (-1)^2,
    # then pools to zeros
    const_part = noise_regularization([torch.ones(1, 1, r, r)]).item()
    assert const_part == pytest.approx(4.0)
    assert noise_regularization([checker.reshape(1, 1, r, r)]).item() == pytest.approx(2.0)


def test_normalize_maps_gives_zero_mean_unit_population_std_per_sample():
    maps = [torch.randn(2, 1, 8, 8) * torch.tensor([3.0, 0.1]).reshape(2, 1, 1, 1) + 5]
    normalize_maps_(maps)
    # the mean is rounded at the scale of max|x| (5.3) and then divided by the std (0.1): it stays within
    # 1.4 eps * max|x| / std (<= 60) of zero (3000 draws, float64-exact mean of the result; AVX2/default ATen); 8x
    assert torch.allclose(maps[0].mean(dim=[1, 2, 3]), torch.zeros(2), atol=8 * torch.finfo(torch.float32).eps * 60)
    assert torch.allclose(maps[0].std(dim=[1, 2, 3], unbiased=False), torch.ones(2), atol=1e-5)
