"""Real-image interpolation (codes and weight offsets together), python -m inv_hyper.interpolate, and edits
that keep the predicted weights."""

import contextlib
import io

import pytest
import torch
from PIL import Image

from inv_hyper import HyperInverter
from inv_hyper.interpolate import interpolate, main
from inv_hyper.networks import HyperConfig, HyperNetworks
from sg2_core import demo, save_networks, sefa

SIZES = HyperConfig(widths=(16, 32, 48, 64), feature_dim=16, hidden_dim=4, extractor_dim=8, encoder_size=64)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    nets = HyperNetworks.for_generator(demo.load_generator(), SIZES)
    for p in nets.hypernet.parameters():  # random but visible offsets
        p.data.mul_(3)
    return save_networks(tmp_path_factory.mktemp("w") / "hyper.safetensors", {"networks": nets})


@pytest.fixture(scope="module")
def method(weights):
    return HyperInverter(demo.load_generator(), weights=weights)


def test_the_ends_are_the_two_inversions_and_the_offsets_move(method):
    x = demo.load_test_images()[0][:4]
    a, b = x[:2], x[2:]
    rows = interpolate(method, a, b, steps=5)
    assert rows.shape == (2, 7, 1, 32, 32)
    assert torch.equal(rows[:, 0], a) and torch.equal(rows[:, -1], b)
    # the ends are lerps of the codes and offsets (rounded) rendered as one batch: each render is within 8 eps * max
    # of a float64 run of the inversion's own codes (this CPU; AVX2- and SSE-capped kernels): < 16 apart; 32x leaves 2x
    for row, inv in ((rows[:, 1], method(a)), (rows[:, -2], method(b))):
        expected = inv.render()
        torch.testing.assert_close(
            row, expected, rtol=0, atol=32 * torch.finfo(torch.float32).eps * expected.abs().max().item()
        )
    # halfway, the offsets are the mean of both ends': rendering with the codes' lerp alone differs
    first, second = method(a), method(b)
    mid = first.interpolate(second, 0.5)
    layer = next(iter(mid.weight_offsets))
    torch.testing.assert_close(
        mid.weight_offsets[layer], (first.weight_offsets[layer] + second.weight_offsets[layer]) / 2
    )


def test_an_edit_keeps_the_predicted_weights(method):
    G = demo.load_generator()
    inversion = method(demo.load_test_images()[0][:2])
    edited = inversion.edit(sefa(G).vectors[0], 3.0)
    assert edited.weight_offsets.keys() == inversion.weight_offsets.keys()
    assert all(torch.equal(edited.weight_offsets[k], v) for k, v in inversion.weight_offsets.items())
    assert (edited.render() - inversion.render()).abs().max() > 1e-2


def _cli(*args):
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = main(list(args))
    return code, out.getvalue() + err.getvalue()


def test_the_command_writes_a_grid_and_refuses_bad_input(weights, tmp_path):
    out = tmp_path / "grid.png"
    code, text = _cli("--weights", str(weights), "--steps", "3", "--out", str(out))
    assert code == 0, text
    assert Image.open(out).size == (5 * 32, 4 * 32)  # 4 demo pairs, A + 3 steps + B
    code, text = _cli("--weights", str(weights), "--out", str(out))
    assert code == 2 and "exists; pass --overwrite" in text
    png = tmp_path / "a.png"
    Image.fromarray(((demo.load_test_images()[0][0, 0] + 1) * 127.5).byte().numpy()).save(png)
    code, text = _cli(str(png), "--weights", str(weights), "--out", str(tmp_path / "b.png"))
    assert code == 2 and "give two images (A and B), got 1" in text
    code, text = _cli("--steps", "1", "--weights", str(weights), "--out", str(tmp_path / "c.png"))
    assert code == 2 and "--steps must be >= 2" in text
    code, text = _cli(str(png), str(png), "--weights", str(weights), "--steps", "2", "--out", str(tmp_path / "d.png"))
    assert code == 0, text
