"""HyperInverter as an sg2_core.Method: batched offsets equal to per-sample generator copies, phase I by name / by
init, and the refusals (the contract: the root tests/test_conformance.py)."""

import copy
import warnings

import pytest
import torch

from inv_hyper import HyperInverter
from inv_hyper.hypernetwork import target_shapes
from inv_hyper.methods import HyperInverterW
from inv_hyper.networks import HyperConfig, HyperNetworks
from sg2_core import Inversion, Method
from sg2_core.methods.registry import register_method, unregister_method
from sg2_core.methods.weights import MissingWeightsError

# Untrained networks in the fixtures' reduced widths, encoding at 64 px so a call takes a fraction of a second.
TINY = {
    "allow_untrained": True,
    "input_resolution": None,
    "widths": (16, 32, 48, 64),
    "feature_dim": 32,
    "hidden_dim": 8,
    "extractor_dim": 16,
    "encoder_size": 64,
}


class ShiftW(Method):
    """A W-space stand-in for psp-w / e4e-w: w_avg moved by the image mean."""

    name, space = "test-shift-w", "w"

    def invert(self, images, init):
        w = self.generator.mapping.w_avg + images.mean(dim=(1, 2, 3))[:, None]
        return Inversion(w.detach(), "w", self.generator)


class ShiftWPlus(ShiftW):
    """A W+-space method, which HyperInverter must refuse as phase I."""

    name, space = "test-shift-w+", "w+"


@pytest.fixture
def phase1_methods():
    register_method("test-shift-w", replace=True)(ShiftW)
    register_method("test-shift-w+", replace=True)(ShiftWPlus)
    yield
    unregister_method("test-shift-w")
    unregister_method("test-shift-w+")


def per_sample_copies(inv):
    """The reference's way: the deltas added to a deep copy of G's weights, one image at a time."""
    outs = []
    for i in range(len(inv)):
        G = copy.deepcopy(inv.generator)
        with torch.no_grad():
            for name, delta in inv.weight_offsets.items():
                G.synthesis.layer(name).weight.add_(delta[i])
            outs.append(G.synthesis(inv.ws[i : i + 1], noise_mode="const"))
    return torch.cat(outs)


def test_batched_offsets_equal_per_sample_generator_copies(generator, images):
    inv = HyperInverter(generator, **TINY)(images)
    assert inv.space == "w+" and list(inv.weight_offsets) == list(target_shapes(generator))  # every conv, toRGB
    with torch.no_grad():
        batched = inv.render()
        plain = generator.synthesis(inv.ws, noise_mode="const")
    # per-sample weights against per-sample copies: other kernels. Each is within 6.6 eps * max|image| of a float64
    # run (this CPU; AVX2- and SSE-capped kernels), so they differ by < 13.2; 32x leaves 2.4x
    bound = 32 * torch.finfo(torch.float32).eps * batched.abs().max().item()
    torch.testing.assert_close(batched, per_sample_copies(inv), rtol=0, atol=bound)
    assert (batched - plain).abs().max() > 1e-3  # the offsets do change the images


def test_phase1_is_the_own_w_encoder_plus_w_avg(generator, images):
    method = HyperInverter(generator, **TINY)
    inv = method(images)
    with torch.no_grad():
        x = torch.nn.functional.interpolate(images, size=(64, 64), mode="bilinear", align_corners=False)
        w = method.networks.w_encoder(x) + generator.mapping.w_avg
    torch.testing.assert_close(inv.ws, w[:, None].expand(-1, generator.num_ws, -1), rtol=0, atol=1e-6)
    assert torch.equal(inv.extras["phase1"], inv.ws)


def test_phase1_by_name_and_by_init(phase1_methods, generator, images):
    by_name = HyperInverter(generator, phase1="test-shift-w", **TINY)(images)
    pivot = ShiftW(generator)(images)
    torch.testing.assert_close(by_name.ws, pivot.ws, rtol=0, atol=0)
    by_init = HyperInverter(generator, **TINY)(images, init=pivot)
    torch.testing.assert_close(by_init.ws, pivot.ws, rtol=0, atol=0)
    for name, delta in by_name.weight_offsets.items():
        torch.testing.assert_close(by_init.weight_offsets[name], delta, rtol=0, atol=1e-6)


def test_an_init_with_offsets_renders_its_phase1_image_with_them_and_keeps_them(generator, images):
    pivot = Inversion(
        generator.mapping.w_avg.expand(3, -1).clone(),
        "w",
        generator,
        weight_offsets={"b32.torgb": torch.full((3, 3, 16, 1, 1), 0.05)},
    )
    method = HyperInverter(generator, **TINY)
    inv = method(images, init=pivot)
    with torch.no_grad():
        w_images = generator.synthesis(pivot.ws, weight_offsets=pivot.weight_offsets, noise_mode="const")
        deltas = method.predict_offsets(images, w_images)
    torch.testing.assert_close(inv.weight_offsets["b32.torgb"], deltas["b32.torgb"] + 0.05, rtol=0, atol=1e-7)
    torch.testing.assert_close(inv.weight_offsets["b8.conv0"], deltas["b8.conv0"], rtol=0, atol=0)


def test_networks_trained_on_a_methods_codes_use_that_method(phase1_methods, generator, images):
    sizes = {k: TINY[k] for k in ("feature_dim", "hidden_dim", "extractor_dim", "encoder_size")}
    config = HyperConfig(widths=TINY["widths"], phase1="test-shift-w", **sizes)
    torch.manual_seed(3)
    networks = HyperNetworks.for_generator(generator, config)
    assert networks.w_encoder is None and not any(k.startswith("w_encoder.") for k in networks.state_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # its own phase I: no warning
        method = HyperInverter(generator, weights=networks)
    assert method.phase1.name == "test-shift-w"
    torch.testing.assert_close(method(images).ws, ShiftW(generator)(images).ws, rtol=0, atol=0)
    with pytest.raises(
        ValueError,
        match="hyperinverter-w: these networks refine the codes of 'test-shift-w' and "
        "have no W encoder of their own; use the 'test-shift-w' method itself",
    ):
        HyperInverterW(generator, weights=networks)(images)


def test_naming_another_phase1_than_the_trained_one_warns(phase1_methods, generator, images):
    torch.manual_seed(3)
    sizes = {k: TINY[k] for k in ("feature_dim", "hidden_dim", "extractor_dim", "encoder_size")}
    own = HyperNetworks.for_generator(generator, HyperConfig(widths=TINY["widths"], **sizes))
    with pytest.warns(
        UserWarning,
        match="its phase II was trained to refine the codes of its own W encoder, not "
        "those of phase1='test-shift-w'.*--phase 2 --phase1 test-shift-w",
    ):
        HyperInverter(generator, weights=own, phase1="test-shift-w")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # random networks (allow_untrained) were trained on nothing
        HyperInverter(generator, phase1="test-shift-w", **TINY)


def test_a_non_w_phase1_is_refused(phase1_methods, generator):
    with pytest.raises(
        ValueError,
        match=r"phase1='test-shift-w\+' is a 'w\+'-space method; HyperInverter's phase I "
        r"must be a W-space method \(space 'w'\): one of \[.*'test-shift-w'.*\]",
    ):
        HyperInverter(generator, phase1="test-shift-w+", **TINY)
    with pytest.raises(ValueError, match="unknown|not-a-method"):
        HyperInverter(generator, phase1="not-a-method", **TINY)


def test_without_weights_it_refuses_to_build_random_networks(generator):
    with pytest.raises(
        MissingWeightsError,
        match=r"^hyperinverter: no weights for this generator: pass weights= \(an official HyperInverter checkpoint "
        r"or HyperNetworks, or the file that python -m inv_hyper.train --method hyperinverter writes\) or "
        r"allow_untrained=True for random weights \(tests only\); the shipped "
        r"inv_hyper/assets/hyperinverter_fmnist32.safetensors is for sg2_core.demo's generator only$",
    ):
        HyperInverter(generator)
    with pytest.raises(MissingWeightsError, match=r"weights='/nonexistent/hyper.pt': no such file"):
        HyperInverter(generator, weights="/nonexistent/hyper.pt")


def test_the_shipped_file_is_picked_by_phase1():
    assert HyperInverter.demo_weights_for() == ("inv_hyper", "hyperinverter_fmnist32.safetensors")
    assert HyperInverter.demo_weights_for(phase1="e4e-w") == ("inv_hyper", "hyperinverter-e4e-w_fmnist32.safetensors")
    assert HyperInverter.demo_weights_for(phase1="psp-w") == HyperInverter.demo_weights


def test_the_old_option_names_warn_and_still_work(generator, images):
    seeded = HyperInverter(generator, weights_seed=3, **TINY)
    with pytest.warns(DeprecationWarning, match="init_seed= is deprecated .* pass weights_seed="):
        old = HyperInverter(generator, init_seed=3, **TINY)
    assert all(
        torch.equal(a, b) for a, b in zip(seeded.networks.state_dict().values(), old.networks.state_dict().values())
    )
    with pytest.warns(DeprecationWarning, match="networks= is deprecated .* pass weights=networks"):
        by_networks = HyperInverter(generator, networks=seeded.networks, input_resolution=None)
    assert by_networks.networks is seeded.networks


def test_input_resolution_is_the_generators_unless_configured(generator, images):
    assert HyperInverter.input_resolution is None
    method = HyperInverter(generator, **{**TINY, "input_resolution": 256})
    with pytest.raises(ValueError, match=r"images must have shape \[N, 3, 256, 256\]"):
        method(images)
    big = torch.nn.functional.interpolate(images, size=(256, 256), mode="bilinear", align_corners=False)
    assert method(big).render().shape == (3, 3, 32, 32)
    with pytest.raises(ValueError, match="encoder_size must be a power of two >= 64"):
        HyperInverter(generator, **{**TINY, "encoder_size": 32})
