"""sg2_core.training.optim.Ranger: RAdam with Lookahead, and its state for exact resumes."""

import pytest
import torch

from sg2_core.training.optim import Ranger


def _problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    target = torch.randn(5, 3, generator=g)
    return torch.nn.Parameter(torch.zeros(5, 3)), target


def _steps(opt, p, target, n):
    for _ in range(n):
        opt.zero_grad()
        (p - target).square().sum().backward()
        opt.step()


def test_alpha_one_is_radam_and_lookahead_pulls_back_every_k_steps():
    p, target = _problem()
    q = torch.nn.Parameter(p.detach().clone())
    _steps(Ranger([p], lr=0.1, alpha=1.0, k=3), p, target, 7)
    _steps(torch.optim.RAdam([q], lr=0.1, betas=(0.95, 0.999), eps=1e-5), q, target, 7)
    torch.testing.assert_close(p, q, rtol=0, atol=0)

    start = torch.zeros(5, 3)
    a, _ = _problem()
    fast = torch.nn.Parameter(a.detach().clone())
    _steps(torch.optim.RAdam([fast], lr=0.1, betas=(0.95, 0.999), eps=1e-5), fast, target, 6)
    _steps(Ranger([a], lr=0.1, alpha=0.5, k=6), a, target, 6)
    torch.testing.assert_close(a.detach(), start + 0.5 * (fast.detach() - start))  # halfway after k steps


def test_state_dict_resumes_exactly():
    p, target = _problem()
    opt = Ranger([p], lr=0.05, k=4)
    _steps(opt, p, target, 9)
    straight = p.detach().clone()
    _steps(opt, p, target, 5)
    expected = p.detach().clone()

    q = torch.nn.Parameter(straight.clone())
    resumed = Ranger([q], lr=0.05, k=4)
    p2, _ = _problem()
    first = Ranger([p2], lr=0.05, k=4)
    _steps(first, p2, target, 9)
    resumed.load_state_dict(first.state_dict())
    _steps(resumed, q, target, 5)
    assert torch.equal(q.detach(), expected)
    assert "slow" in resumed.state_dict()["state"][0] and resumed.param_groups[0]["lookahead_step"] == 14


def test_bad_arguments():
    p, _ = _problem()
    with pytest.raises(ValueError, match="alpha must be in"):
        Ranger([p], alpha=2)
    with pytest.raises(ValueError, match="k must be a positive int"):
        Ranger([p], k=0)
