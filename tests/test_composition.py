"""Methods of different families composed by name on the embedded demo: HyperInverter (inv-hyper) on the
W encoders of inv-encoders, through the registry only."""

import warnings

import pytest
import torch

from sg2_core import create_method, demo


@pytest.fixture(scope="module")
def demo_batch():
    return demo.load_generator(), demo.load_test_images()[0][:32]


def _mse(inversion, images) -> float:
    return float((inversion.render() - images).square().mean())


def test_hyperinverter_on_e4e_w_uses_the_networks_trained_on_its_codes(demo_batch):
    G, images = demo_batch
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the shipped e4e-w phase II: trained on these codes, no warning
        hyper = create_method("hyperinverter", generator=G, phase1="e4e-w")
    assert hyper.networks.config.phase1 == "e4e-w" and hyper.networks.w_encoder is None
    phase1 = create_method("e4e-w", generator=G)(images)
    refined = hyper(images)
    torch.testing.assert_close(refined.ws, phase1.ws, rtol=0, atol=0)  # phase I is e4e-w itself
    # phase II cuts e4e-w's error by more than 40 % (measured on these 32 images: see inv-hyper's README)
    assert _mse(refined, images) < 0.6 * _mse(phase1, images)


def test_another_phase1_than_the_trained_one_warns(demo_batch):
    G, _ = demo_batch
    with pytest.warns(
        UserWarning,
        match="its phase II was trained to refine the codes of its own W encoder, not those of phase1='psp-w'",
    ):
        create_method("hyperinverter", generator=G, phase1="psp-w")
