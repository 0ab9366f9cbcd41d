import pytest
import torch

from sg2_core.methods.directions import (
    apply_direction,
    ganspace,
    layer_w_indices,
    modulated_layer_names,
    sample_w,
    sefa,
)


def _assert_orthonormal(vectors):
    gram = vectors.double() @ vectors.double().T
    torch.testing.assert_close(gram, torch.eye(len(vectors), dtype=torch.float64), atol=1e-5, rtol=0)


def _stacked_conv_affines(G):
    """The paper's matrix built straight from the state dict: conv affine weights, rows at unit norm."""
    rows = [v for k, v in G.state_dict().items() if ".conv" in k and k.endswith("affine.weight")]
    a = torch.cat(rows).double()
    return a / a.norm(dim=1, keepdim=True)


def _styles(G, w, layers):
    return torch.cat([G.synthesis.layer(name).affine(w) for name in layers], dim=1)


def test_sefa_directions_are_the_top_eigenvectors(g32):
    d = sefa(g32)
    assert d.method == "sefa" and d.vectors.shape == (g32.w_dim, g32.w_dim)
    assert d.layers == ("b4.conv1", "b8.conv0", "b8.conv1", "b16.conv0", "b16.conv1", "b32.conv0", "b32.conv1")
    _assert_orthonormal(d.vectors)
    a = _stacked_conv_affines(g32)
    _, singular, vh = torch.linalg.svd(a)
    torch.testing.assert_close(d.values.double(), singular.square(), rtol=1e-5, atol=1e-5)
    assert (d.values[:-1] >= d.values[1:]).all()
    # Same subspaces: each of the top eigenvectors agrees up to sign (their eigenvalues are well apart).
    top = 8
    assert (singular[:top].square().diff().abs() > 1e-2).all()
    agreement = (d.vectors[:top].double() * vh[:top]).sum(dim=1).abs()
    torch.testing.assert_close(agreement, torch.ones(top, dtype=torch.float64), atol=1e-5, rtol=0)
    torch.testing.assert_close(d.ratio.sum(), torch.tensor(1.0))


@torch.no_grad()
def test_sefa_top_direction_moves_styles_more_than_random_directions(g32):
    d = sefa(g32)
    w = g32.mapping(torch.randn(8, g32.z_dim))[:, 0]
    base = _styles(g32, w, d.layers)

    def change(directions):  # [K, w_dim] -> mean style change per direction [K]
        moved = (w.unsqueeze(0) + directions.unsqueeze(1)).reshape(-1, g32.w_dim)
        diff = _styles(g32, moved, d.layers).reshape(len(directions), len(w), -1) - base
        return diff.norm(dim=2).mean(dim=1)

    random_change = change(torch.nn.functional.normalize(torch.randn(50, g32.w_dim), dim=1))
    top, bottom = change(d.vectors[[0, -1]])
    assert top > random_change.max()
    assert bottom < random_change.min()


def test_sefa_layer_selection(g32):
    assert len(modulated_layer_names(g32, include_torgb=True)) == len(g32.synthesis.weight_layer_names)
    with_rgb = sefa(g32, include_torgb=True, num_directions=5)
    assert len(with_rgb) == 5 and "b32.torgb" in with_rgb.layers
    one = sefa(g32, layers=["b8.conv0"], num_directions=3)
    a = g32.synthesis.layer("b8.conv0").affine.weight.detach().double()
    a = a / a.norm(dim=1, keepdim=True)
    top = torch.linalg.eigh(a.T @ a).eigenvectors[:, -1]
    assert abs(float(one[0].double() @ top)) == pytest.approx(1.0, abs=1e-5)
    assert not torch.allclose(one[0], sefa(g32, num_directions=1)[0])
    with pytest.raises(ValueError, match="unknown: \\['b8.conv9'\\]"):
        sefa(g32, layers=["b8.conv9"])


def test_sefa_sign_is_deterministic(g32):
    d = sefa(g32)
    largest = d.vectors.gather(1, d.vectors.abs().argmax(dim=1, keepdim=True))
    assert (largest > 0).all()
    assert torch.equal(d.vectors, sefa(g32).vectors)


def test_layer_w_indices(g32):
    assert layer_w_indices(g32, ["b4.conv1", "b4.torgb", "b8.conv0", "b8.conv1", "b32.torgb"]) == [0, 1, 2, 7]
    assert layer_w_indices(g32, sefa(g32).layers) == list(range(7))


def test_ganspace_directions_and_variances(g32):
    d = ganspace(g32, n=4000, seed=0)
    assert d.method == "ganspace" and d.vectors.shape == (g32.w_dim, g32.w_dim)
    _assert_orthonormal(d.vectors)
    assert (d.values[:-1] >= d.values[1:]).all() and d.values[0] > 2 * d.values[-1]
    torch.testing.assert_close(d.ratio.sum(), torch.tensor(1.0))
    # Fresh samples have about the stated variance along each of the leading directions.
    fresh = sample_w(g32, 4000, seed=1)
    projected = ((fresh - d.mean) @ d.vectors[:5].T).var(dim=0)
    torch.testing.assert_close(projected, d.values[:5], rtol=0.1, atol=0)
    # ... and the top direction beats any random one.
    random_dirs = torch.nn.functional.normalize(torch.randn(50, g32.w_dim), dim=1)
    assert ((fresh - d.mean) @ random_dirs.T).var(dim=0).max() < projected[0]


def test_ganspace_is_deterministic_given_the_seed(g32):
    a, b = ganspace(g32, n=500, seed=7, num_components=4), ganspace(g32, n=500, seed=7, num_components=4)
    assert len(a) == 4
    assert torch.equal(a.vectors, b.vectors) and torch.equal(a.values, b.values)
    assert not torch.allclose(a.values, ganspace(g32, n=500, seed=8, num_components=4).values)


def test_apply_direction_all_selected_and_per_sample():
    ws = torch.randn(3, 8, 16)
    direction = torch.nn.functional.normalize(torch.randn(16), dim=0)
    assert torch.equal(apply_direction(ws, direction, 0.0), ws)
    moved = apply_direction(ws, direction, 2.0)
    torch.testing.assert_close(moved - ws, (2.0 * direction).expand_as(ws))
    some = apply_direction(ws, direction, 2.0, layers=range(2, 4))
    assert torch.equal(some[:, [0, 1, 4, 5, 6, 7]], ws[:, [0, 1, 4, 5, 6, 7]])
    torch.testing.assert_close(some[:, 2:4], moved[:, 2:4])
    assert torch.equal(apply_direction(ws, direction, 2.0, layers=slice(2, 4)), some)
    per_sample = apply_direction(ws, direction, torch.tensor([0.0, 1.0, -1.0]), layers=5)
    assert torch.equal(per_sample[0], ws[0])
    torch.testing.assert_close(per_sample[2, 5], ws[2, 5] - direction)
    torch.testing.assert_close(apply_direction(ws[:, 0], direction, 1.0), ws[:, 0] + direction)


def test_apply_direction_errors():
    ws, direction = torch.randn(3, 8, 16), torch.randn(16)
    with pytest.raises(ValueError, match=r"direction must be a tensor \[16\]"):
        apply_direction(ws, torch.randn(8), 1.0)
    with pytest.raises(ValueError, match="layers must be W\\+ indices"):
        apply_direction(ws, direction, 1.0, layers=[3, 8])
    with pytest.raises(ValueError, match="layers needs W\\+"):
        apply_direction(ws[:, 0], direction, 1.0, layers=[0])
    with pytest.raises(ValueError, match="strength"):
        apply_direction(ws, direction, torch.ones(2))
    for bad in (float("nan"), float("inf"), torch.tensor([1.0, float("nan"), 0.0])):
        with pytest.raises(ValueError, match="strength must be finite"):
            apply_direction(ws, direction, bad)
    with pytest.raises(ValueError, match="direction contains NaN or inf"):
        apply_direction(ws, torch.full((16,), float("nan")), 1.0)


def test_inversion_edit_refuses_a_non_finite_strength(g32):
    from sg2_core import Inversion

    inversion = Inversion(torch.zeros(2, g32.w_dim), "w", g32)
    direction = torch.randn(g32.w_dim)
    with pytest.raises(ValueError, match="strength must be finite"):
        inversion.edit(direction, float("nan"))
    assert torch.isfinite(inversion.edit(direction, 1.0).ws).all()
