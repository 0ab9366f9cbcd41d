"""python -m inv_hyper.train --phase 1|2 on the demo: a few steps each, the adversarial phase, the result
loads into HyperInverter, phase II trains on HyperInverter's render (a phase I's offsets included), and bad
input."""

import contextlib
import io

import pytest
import torch

from inv_hyper import HyperInverter
from inv_hyper.networks import HyperConfig, HyperNetworks
from inv_hyper.train import main
from inv_hyper.training import PhaseTwo
from sg2_core import Generator, GeneratorConfig, Inversion, Method, demo, save_networks
from sg2_core.methods.registry import register_method, unregister_method

TINY = [
    "--widths",
    "16",
    "32",
    "48",
    "64",
    "--feature-dim",
    "16",
    "--hidden-dim",
    "4",
    "--extractor-dim",
    "8",
    "--encoder-size",
    "64",
    "--batch-size",
    "4",
    "--num-images",
    "16",
    "--val-images",
    "4",
    "--threads",
    "1",
    "--no-progress",
    "--log-every",
    "1",
    "--snap-every",
    "2",
    "--lr",
    "1e-3",
]


def _train(*args):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(list(args))
    return code, err.getvalue()


@pytest.fixture(scope="module")
def phase1(tmp_path_factory):
    run = tmp_path_factory.mktemp("hyper") / "phase1"
    code, err = _train("--phase", "1", "--steps", "2", "--run-dir", str(run), *TINY)
    assert code == 0, err
    return run / "final.safetensors"


@pytest.mark.slow
def test_phase_two_trains_the_hypernetwork_with_the_adversarial_loss(phase1, tmp_path):
    before = HyperInverter(demo.load_generator(), weights=phase1).networks.state_dict()
    run = tmp_path / "phase2"
    code, err = _train(
        "--phase",
        "2",
        "--phase1",
        str(phase1),
        "--steps",
        "3",
        "--run-dir",
        str(run),
        "--adv-start",
        "1",
        "--r1-every",
        "1",
        *TINY,
    )
    assert code == 0, err
    log = (run / "log.jsonl").read_text()
    assert '"adv"' in log and '"r1"' in log and '"d_loss"' in log
    method = HyperInverter(demo.load_generator(), weights=run / "final.safetensors")
    after = method.networks.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("w_encoder."))  # phase I frozen
    assert not all(torch.equal(before[k], after[k]) for k in before if k.startswith("hypernet."))
    result = method(demo.load_test_images()[0][:2])
    assert result.weight_offsets and torch.isfinite(result.render()).all()


class MeanW(Method):
    """A W-space stand-in for e4e-w: w_avg moved by the image mean."""

    name, space = "test-mean-w", "w"

    def invert(self, images, init):
        return Inversion(
            (self.generator.mapping.w_avg + images.mean(dim=(1, 2, 3))[:, None]).detach(), "w", self.generator
        )


class MeanWPlus(MeanW):
    name, space = "test-mean-w+", "w+"


class OffsetW(MeanW):
    """A W-space phase I that also returns weight offsets, as PTI does: a coarse conv's and the last toRGB's
    weights scaled by an amount that follows the image mean."""

    name = "test-offset-w"

    def invert(self, images, init):
        synthesis = self.generator.synthesis
        scale = 0.5 + images.mean(dim=(1, 2, 3))
        offsets = {
            name: (scale.view(-1, 1, 1, 1, 1) * synthesis.layer(name).weight).detach()
            for name in ("b8.conv0", "b32.torgb")
        }
        return Inversion(super().invert(images, init).latents, "w", self.generator, weight_offsets=offsets)


def test_phase_two_trains_on_the_render_hyperinverter_gives(generator, images):
    # A training step, then the same networks in eval mode (in training mode batch norm uses each batch's statistics).
    torch.manual_seed(0)
    config = HyperConfig(
        widths=(16, 32, 48, 64), feature_dim=16, hidden_dim=4, extractor_dim=8, encoder_size=64, phase1="test-offset-w"
    )
    networks = HyperNetworks.for_generator(generator, config)
    objective = PhaseTwo(generator, networks, lambda r, x: (((r - x) ** 2).mean(), {}), 1e-3, phase1=OffsetW(generator))
    objective.step(images, 0)
    register_method("test-offset-w", replace=True)(OffsetW)
    try:
        method = HyperInverter(generator, weights=networks)
    finally:
        unregister_method("test-offset-w")
    # phase II as it trained before: the same codes (MeanW's), the phase-I offsets left out
    dropped = PhaseTwo(generator, networks, None, 1e-3, phase1=MeanW(generator))
    networks.eval()
    with torch.no_grad():
        trained = objective.refine(images)
        inferred = method(images).render()
        without_offsets = dropped.refine(images)
    # the W-bar encoder reads both stacks in one batch at inference and in two in training: other kernels. Each
    # render is within 7.7 eps * max|image| of a float64 run (4.7 on this CPU, 7.7 AVX2-capped with one thread;
    # the float64 runs agree to 0.0004), so they differ by < 15.4; 32x leaves 2x
    bound = 32 * torch.finfo(torch.float32).eps * inferred.abs().max().item()
    torch.testing.assert_close(trained, inferred, rtol=0, atol=bound)
    assert (without_offsets - inferred).abs().max() > 100 * bound


@pytest.mark.slow
def test_phase_two_on_a_registered_methods_codes(tmp_path):
    register_method("test-mean-w", replace=True)(MeanW)
    register_method("test-mean-w+", replace=True)(MeanWPlus)
    try:
        run = tmp_path / "on-method"
        code, err = _train(
            "--phase", "2", "--phase1", "test-mean-w", "--steps", "2", "--run-dir", str(run), "--adv", "0", *TINY
        )
        assert code == 0, err
        G = demo.load_generator()
        method = HyperInverter(G, weights=run / "final.safetensors")
        assert method.networks.config.phase1 == "test-mean-w" and method.networks.w_encoder is None
        images = demo.load_test_images()[0][:2]
        result = method(images)
        torch.testing.assert_close(result.ws, MeanW(G)(images).ws, rtol=0, atol=0)  # its phase I is the method
        code, err = _train(
            "--phase", "2", "--phase1", "test-mean-w+", "--steps", "1", "--run-dir", str(tmp_path / "x"), *TINY
        )
        assert code == 2 and "--phase1 test-mean-w+ is not a W-space method" in err
        code, err = _train(
            "--phase",
            "2",
            "--phase1",
            str(tmp_path / "missing.safetensors"),
            "--steps",
            "1",
            "--run-dir",
            str(tmp_path / "y"),
            *TINY,
        )
        assert code == 2 and "missing.safetensors is neither a file nor a registered method" in err
    finally:
        unregister_method("test-mean-w")
        unregister_method("test-mean-w+")


@pytest.mark.slow
def test_bad_input_names_the_problem(phase1, tmp_path):
    code, err = _train("--phase", "2", "--steps", "1", "--run-dir", str(tmp_path / "a"), *TINY)
    assert code == 2 and "--phase 2 needs --phase1 FILE" in err
    other = Generator(
        GeneratorConfig(
            z_dim=16, w_dim=16, resolution=32, img_channels=1, mapping_layers=2, channel_base=256, channel_max=16
        )
    )
    g_only = save_networks(tmp_path / "g.safetensors", {"G_ema": other})
    code, err = _train(
        "--phase",
        "2",
        "--phase1",
        str(phase1),
        "--generator",
        str(g_only),
        "--steps",
        "1",
        "--run-dir",
        str(tmp_path / "b"),
        *TINY,
    )
    assert code == 2 and "trained for another generator" in err
    with pytest.raises(ValueError, match="trained for another generator"):
        HyperInverter(other, weights=phase1)
    save_networks(tmp_path / "demo_g.safetensors", {"G_ema": demo.load_generator()})
    code, err = _train(
        "--phase",
        "2",
        "--phase1",
        str(phase1),
        "--generator",
        str(tmp_path / "demo_g.safetensors"),
        "--steps",
        "1",
        "--run-dir",
        str(tmp_path / "c"),
        *TINY,
    )
    assert code == 2 and "holds none (only a generator); pass --adv 0" in err
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").iterdir())
