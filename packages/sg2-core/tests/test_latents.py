import math

import pytest
import torch

from sg2_core.methods.latents import apply_truncation, broadcast_w, lerp, mean_latent, slerp


def test_mean_latent_is_the_average_of_mapped_draws(g32):
    n = 500
    z = torch.randn(n, g32.z_dim, generator=torch.Generator().manual_seed(3))
    expected = g32.mapping(z)[:, 0].mean(dim=0)
    torch.testing.assert_close(mean_latent(g32, n=n, seed=3), expected, atol=1e-5, rtol=1e-5)


def test_broadcast_w_repeats_and_passes_wplus_through():
    w = torch.randn(3, 16)
    ws = broadcast_w(w, 5)
    assert ws.shape == (3, 5, 16)
    assert torch.equal(ws[:, 4], w) and torch.equal(ws[:, 0], w)
    ws[:, 0] += 1  # a copy: editing one entry leaves the others alone
    assert torch.equal(ws[:, 1], w)
    assert broadcast_w(ws, 5) is ws
    with pytest.raises(ValueError, match="w must be"):
        broadcast_w(torch.randn(3, 4, 16), 5)
    with pytest.raises(ValueError, match="w must be"):
        broadcast_w(torch.randn(16), 5)


def test_truncation_pulls_towards_the_average(g32):
    ws = g32.mapping(torch.randn(4, g32.z_dim))
    w_avg = g32.mapping.w_avg
    torch.testing.assert_close(apply_truncation(ws, g32, psi=0.0), w_avg.expand_as(ws))
    assert torch.equal(apply_truncation(ws, g32, psi=1.0), ws)
    half = apply_truncation(ws, w_avg, psi=0.5, cutoff=3)
    torch.testing.assert_close(half[:, :3], (ws[:, :3] + w_avg) / 2)
    assert torch.equal(half[:, 3:], ws[:, 3:])
    torch.testing.assert_close(apply_truncation(ws[:, 0], g32, psi=0.5), (ws[:, 0] + w_avg) / 2)
    with pytest.raises(ValueError, match="w_avg must have shape"):
        apply_truncation(ws, torch.zeros(3))
    with pytest.raises(ValueError, match="cutoff"):
        apply_truncation(ws[:, 0], g32, cutoff=2)


@pytest.mark.parametrize("shape", [(4, 16), (4, 6, 16)])
def test_lerp_endpoints_midpoint_and_per_sample_t(shape):
    a, b = torch.randn(shape), torch.randn(shape)
    assert torch.equal(lerp(a, b, 0.0), a)
    torch.testing.assert_close(lerp(a, b, 1.0), b)
    torch.testing.assert_close(lerp(a, b, 0.5), (a + b) / 2)
    t = torch.tensor([0.0, 1.0, 0.25, 0.5])
    out = lerp(a, b, t)
    torch.testing.assert_close(out[1], b[1])
    torch.testing.assert_close(out[2], 0.75 * a[2] + 0.25 * b[2])


def test_lerp_names_the_bad_argument():
    with pytest.raises(ValueError, match=r"b must have the shape of a \[4, 16\]"):
        lerp(torch.randn(4, 16), torch.randn(4, 8), 0.5)
    with pytest.raises(ValueError, match="a must be a tensor"):
        lerp(torch.randn(16), torch.randn(16), 0.5)
    with pytest.raises(ValueError, match=r"t must be a number or a tensor \[4\]"):
        lerp(torch.randn(4, 16), torch.randn(4, 16), torch.ones(3))


def test_slerp_is_exact_at_the_endpoints():
    a, b = torch.randn(5, 64), torch.randn(5, 64)
    assert torch.equal(slerp(a, b, 0.0), a)
    assert torch.equal(slerp(a, b, 1.0), b)


def test_slerp_follows_the_great_circle():
    a = torch.nn.functional.normalize(torch.randn(3, 64), dim=1)
    b = torch.nn.functional.normalize(torch.randn(3, 64), dim=1)
    omega = torch.arccos((a * b).sum(dim=1))
    for t in (0.2, 0.5, 0.9):
        out = slerp(a, b, t)
        torch.testing.assert_close(out.norm(dim=1), torch.ones(3))  # stays on the sphere (lerp would not)
        angle = torch.arccos((a * out).sum(dim=1).clamp(-1, 1))
        torch.testing.assert_close(angle, t * omega, atol=1e-4, rtol=1e-4)


def test_slerp_of_nearly_parallel_vectors_is_finite_and_close_to_lerp():
    a = torch.randn(4, 64)
    for scale in (0.0, 1e-9, 1e-5):
        b = a + scale * torch.randn(4, 64)
        out = slerp(a, b, 0.3)
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out, lerp(a, b, 0.3), atol=1e-5, rtol=1e-5)


def test_slerp_works_on_zplus_per_entry():
    a, b = torch.randn(2, 3, 8), torch.randn(2, 3, 8)
    out = slerp(a, b, 0.5)
    for i in range(3):
        torch.testing.assert_close(out[:, i], slerp(a[:, i], b[:, i], 0.5))
    # Orthogonal unit vectors: the midpoint is their normalised sum.
    e0, e1 = torch.eye(2)[:1], torch.eye(2)[1:]
    torch.testing.assert_close(slerp(e0, e1, 0.5), (e0 + e1) / math.sqrt(2))
