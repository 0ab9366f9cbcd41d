"""The encoders' inference path (sg2_core.encoders.inference: BN folded, channels-last, views for shortcuts,
SE and small convs as matrix products) against the exact path and the reference fixtures.

The fixture comparison holds the README's tolerances. Fast against exact on the same network is held to
1e-5 of the output's largest magnitude: the largest difference measured in float32 (fixture weights and
inputs, batches of 1 and 2) was 4.4e-6 of it (codes 8.6e-6 of 5.2, maps 2.7e-5 of 20, W code 3e-7 of 1).
float64: 1e-12 of it (measured 2.5e-15).
"""

import copy
import pickle
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from sg2_core import use_impl
from sg2_core.encoders import GradualStyleBlock, IRBackbone, IRTrunk, PyramidStyleEncoder, WEncoder
from sg2_core.encoders.inference import cache_of, conv_im2col
from sg2_core.testing.fixture_packs import unpack_state as unpack

DATA = Path(__file__).parent / "data" / "encoders"
SMALL = dict(widths=(16, 32, 48, 64))
CODES_TOL = dict(atol=1e-4, rtol=1e-4)
MAPS_TOL = dict(atol=2e-4, rtol=1e-4)
FAST_REL = {torch.float32: 1e-5, torch.float64: 1e-12}


def assert_fast_close(fast, exact):
    """The inference path's result within FAST_REL of the exact one's largest magnitude."""
    torch.testing.assert_close(fast, exact, atol=FAST_REL[exact.dtype] * exact.abs().max().item(), rtol=0)


def load(name):
    return torch.load(DATA / name, weights_only=True)


@pytest.fixture(scope="module")
def inputs():
    return {k: v.float() for k, v in load("inputs.pt").items()}  # stored as float16


@pytest.fixture(scope="module")
def psp():
    ref = load("psp_fpn.pt")
    enc = PyramidStyleEncoder(10, 3, style_dim=32, **SMALL)
    enc.load_state_dict(unpack(ref["weights"]), strict=True)
    return enc.eval(), ref


def both_paths(fn):
    """(inference path, exact path) of ``fn()`` without gradients."""
    with torch.no_grad():
        with use_impl("auto"):
            fast = fn()
        with use_impl("ref"):
            exact = fn()
    return fast, exact


def test_psp_on_the_inference_path_equals_the_reference(psp, inputs):
    enc, ref = psp
    x = inputs["x256_0"]
    with torch.no_grad():
        maps, codes = enc.forward_pyramid(x), enc(x)
    assert maps["p1"].is_contiguous(memory_format=torch.channels_last)  # the inference path was taken
    assert len(cache_of(enc.body[0].res_layer[3])) == 1  # its folded conv + BN
    for name in ("c2", "c3", "p2"):
        torch.testing.assert_close(maps[name][0], ref[f"{name}_sample0"], **MAPS_TOL)
    torch.testing.assert_close(codes, ref["codes_0"], **CODES_TOL)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_inference_path_equals_the_exact_path(psp, inputs, dtype):
    enc = copy.deepcopy(psp[0]).to(dtype)
    x = torch.cat([inputs["x256_0"], -inputs["x256_0"].flip(-1)]).to(dtype)
    fast, exact = both_paths(lambda: enc(x))
    assert_fast_close(fast, exact)
    maps_fast, maps_exact = both_paths(lambda: enc.forward_pyramid(x))
    for name in maps_exact:
        assert_fast_close(maps_fast[name], maps_exact[name])
        assert maps_fast[name].is_contiguous(memory_format=torch.channels_last)
        assert maps_exact[name].is_contiguous()


def test_w_encoder_arcface_ir_and_hyperinverter_layouts(inputs):
    w = WEncoder(3, w_dim=32, **SMALL)
    w.load_state_dict(unpack(load("w_encoder.pt")["weights"]), strict=True)
    w.eval()
    fast, exact = both_paths(lambda: w(inputs["x256_0"]))
    assert_fast_close(fast, exact)
    torch.testing.assert_close(fast, load("w_encoder.pt")["w_0"], **CODES_TOL)

    arc = IRBackbone(50, "ir_se", 112, embedding_size=32, dropout=0.6, **SMALL)
    arc.load_state_dict(unpack(load("arcface.pt")["weights"]), strict=True)
    arc.eval()
    fast, exact = both_paths(lambda: arc(inputs["x112"]))
    assert_fast_close(fast, exact)

    torch.manual_seed(0)
    ir = PyramidStyleEncoder(8, 6, mode="ir", pyramid=False, style_dim=16, widths=(16, 16, 32, 32)).eval()
    hyper = PyramidStyleEncoder(8, 3, style_spatial=8, style_dim=16, widths=(16, 16, 32, 32)).eval()
    for net, x in ((ir, torch.randn(2, 6, 256, 256)), (hyper, torch.randn(2, 3, 256, 256))):
        fast, exact = both_paths(lambda: net(x))
        assert_fast_close(fast, exact)


def test_the_cache_follows_the_weights(psp, inputs):
    enc = copy.deepcopy(psp[0])
    x = inputs["x256_0"]
    with torch.no_grad():
        before = enc(x)
        bn = enc.body[5].res_layer[4]
        bn.running_var.mul_(4)  # in place: the folded conv must be recomputed
        enc.body[20].res_layer[3].weight.mul_(0.5)
        enc.load_state_dict(enc.state_dict() | {"latlayer1.weight": enc.latlayer1.weight * 2})
    fast, exact = both_paths(lambda: enc(x))
    assert (fast - before).abs().max() > 1e-2
    assert_fast_close(fast, exact)


def test_training_gradients_and_ref_take_the_exact_path(psp, inputs):
    enc = copy.deepcopy(psp[0])
    x = inputs["x256_0"]
    with use_impl("ref"), torch.no_grad():
        exact = enc(x)
    for c in (cache_of(m) for m in enc.modules()):
        c.clear()
    with use_impl("ref"), torch.no_grad():
        enc(x)
    assert not any(len(cache_of(m)) for m in enc.modules())
    # gradients recorded (an ID loss through a frozen network in eval mode): the exact path, same values
    xg = x.clone().requires_grad_(True)
    out = enc(xg)
    assert not enc.forward_pyramid(xg)["p1"].is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out.detach(), exact, rtol=0, atol=0)
    out.square().sum().backward()
    assert xg.grad is not None and xg.grad.abs().sum() > 0
    # training mode: batch statistics, never the folded running ones
    enc.train()
    with torch.no_grad():
        train_out = enc(torch.cat([x, x.flip(-1)]))
    with use_impl("ref"), torch.no_grad():
        torch.testing.assert_close(train_out, enc(torch.cat([x, x.flip(-1)])), rtol=0, atol=0)


def test_state_dict_copies_and_pickles_are_unchanged(psp, inputs):
    enc = copy.deepcopy(psp[0])
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    with torch.no_grad():
        codes = enc(inputs["x256_0"])
    after = enc.state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(after[k], v) and after[k].is_contiguous() for k, v in before.items())
    twin = copy.deepcopy(enc)
    assert not any(len(cache_of(m)) for m in twin.modules())  # a copy starts with no derived weights
    clone = pickle.loads(pickle.dumps(enc))
    with torch.no_grad():
        torch.testing.assert_close(twin(inputs["x256_0"]), codes, rtol=0, atol=0)
        torch.testing.assert_close(clone(inputs["x256_0"]), codes, rtol=0, atol=0)


@pytest.mark.parametrize("size", [2, 4, 8, 16])
@pytest.mark.parametrize("batch", [1, 3])
def test_small_convs_as_one_matrix_product(size, batch):
    torch.manual_seed(size)
    layer = torch.nn.Conv2d(24, 40, 3, 2, 1)
    x = torch.randn(batch, 24, size, size)
    with torch.no_grad():
        out = conv_im2col(x, layer)
        torch.testing.assert_close(out, F.conv2d(x, layer.weight, layer.bias, 2, 1), atol=1e-5, rtol=0)
        block = GradualStyleBlock(24, 40, size).eval()  # its last convs take the matrix product (SMALL_MAPS)
        fast, exact = both_paths(lambda: block(x))
        assert_fast_close(fast, exact)


def test_trunk_taps_on_the_inference_path(inputs):
    torch.manual_seed(0)
    trunk = IRTrunk(50, "ir_se", in_channels=3, widths=(16, 16, 32, 32)).eval()
    fast, exact = both_paths(lambda: trunk.forward_intermediates(inputs["x112"]))
    assert len(fast) == 5
    for f, e in zip(fast, exact):
        assert_fast_close(f, e)
