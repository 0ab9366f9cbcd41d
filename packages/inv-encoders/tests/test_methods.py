"""The encoder methods refuse to build without weights unless asked, and do what pSp / e4e / ReStyle do, with
untrained random weights on a tiny generator (the contract itself: the root tests/test_conformance.py)."""

import re
from importlib.metadata import distribution
from importlib.resources import as_file, files

import pytest
import torch

from inv_encoders.networks import StyleEncoder, StyleEncoderConfig
from sg2_core import Generator, Inversion, create_method, demo, load_networks
from sg2_core.methods.weights import MissingWeightsError
from sg2_core.testing import check_method

SMALL = {"allow_untrained": True, "widths": (16, 32, 48, 64)}
# The package's entry points: the one list of its methods.
METHODS = {ep.name: ep.load() for ep in distribution("inv-encoders").entry_points.select(group="sg2_toolkit.methods")}


@pytest.fixture(scope="module")
def images(generator):
    with torch.no_grad():
        ws = generator.mapping(torch.randn(3, 32, generator=torch.Generator().manual_seed(5)))
        return generator.synthesis(ws, noise_mode="const").clamp(-1, 1)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_without_weights_it_refuses(name, generator):
    shipped = re.escape(f"inv_encoders/assets/{METHODS[name].demo_weights[1]}")
    trainer = f", or the file that python -m inv_encoders.train --method {name} writes"
    trained = re.escape(trainer) if METHODS[name].trainer else ""
    with pytest.raises(
        MissingWeightsError,
        match=rf"^{re.escape(name)}: no weights for this generator: pass weights= \(an official .* checkpoint or "
        rf"(a StyleEncoder|an HFGIWeights\(encoder, hfgi\)){trained}\) or "
        rf"allow_untrained=True for random weights \(tests only\); the shipped {shipped} is for sg2_core.demo's "
        r"generator only$",
    ):
        create_method(name, generator=generator)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_the_demo_generator_gets_the_shipped_encoder(name):
    package, file = METHODS[name].demo_weights
    G = demo.load_generator()
    method = create_method(name, generator=G)
    with as_file(files(package).joinpath("assets", file)) as path:
        shipped = load_networks(path)["encoder"]
    assert all(torch.equal(a, b) for a, b in zip(method.net.state_dict().values(), shipped.state_dict().values()))
    other = Generator(G.config).eval()  # the demo's config, other weights: not the demo generator
    with pytest.raises(MissingWeightsError, match="is for sg2_core.demo's generator only"):
        create_method(name, generator=other)


def _demo_mse(method, images) -> torch.Tensor:
    """Per-image MSE of the method's reconstructions; ReStyle's after each iteration ``[n_iters, N]``."""
    with torch.no_grad():
        inv = method(images)
    rec = inv.extras.get("reconstructions")
    rec = inv.render()[:, None] if rec is None else rec
    return (rec - images[:, None]).square().mean((2, 3, 4)).T


def test_the_shipped_networks_keep_the_papers_ordering():
    """On the report's 32 demo images: ReStyle improves at every iteration and ends below its single-shot encoder;
    HFGI's conditions improve on e4e's codes (measured: ReStyle-pSp 0.066 < pSp 0.073, ReStyle-e4e 0.071 < e4e
    0.078, HFGI 0.053; the smallest step asserted, ReStyle-pSp's last iteration 0.068 -> 0.066, is 3.5 %: float
    rounding moves these means by ~1e-6 relative)."""
    G, images = demo.load_generator(), demo.load_test_images()[0][:32]
    mse = {name: _demo_mse(create_method(name, generator=G), images) for name in ("psp", "e4e", "hfgi")}
    for name, single in (("restyle-psp", "psp"), ("restyle-e4e", "e4e")):
        per_iteration = _demo_mse(create_method(name, generator=G, n_iters=5), images).mean(1)
        assert (per_iteration.diff() < 0).all(), f"{name}: {per_iteration.tolist()}"
        assert per_iteration[-1] < mse[single].mean(), (
            f"{name} {per_iteration[-1]:.4f}, {single} {mse[single].mean():.4f}"
        )
    assert mse["hfgi"].mean() < mse["e4e"].mean()


def test_psp_adds_its_codes_to_latent_avg_or_to_init(generator, images):
    psp = create_method("psp", generator=generator, **SMALL)
    with torch.no_grad():
        offsets = psp.net.offsets(images)
    torch.testing.assert_close(psp(images).latents, offsets + generator.mapping.w_avg, rtol=0, atol=1e-6)
    init = Inversion(torch.randn(3, 8, 32), "w+", generator)
    torch.testing.assert_close(psp(images, init=init).latents, offsets + init.latents, rtol=0, atol=1e-6)


def test_e4e_stage_zero_gives_one_w(generator, images):
    codes = create_method("e4e", generator=generator, stage=0, **SMALL)(images).latents
    assert torch.equal(codes, codes[:, :1].expand_as(codes))
    full = create_method("e4e", generator=generator, **SMALL)(images).latents
    torch.testing.assert_close(full[:, 0], codes[:, 0], rtol=0, atol=0)
    assert (full[:, 1:] - codes[:, 1:]).abs().amax() > 1e-3
    with pytest.raises(ValueError, match="stage= is e4e's progressive stage; 'psp' has no stages"):
        create_method("psp", generator=generator, stage=2, **SMALL)


@pytest.mark.parametrize("name", ["restyle-psp", "restyle-e4e"])
def test_restyle_iterates_from_the_average_image(name, generator, images):
    steps = []
    method = create_method(name, generator=generator, n_iters=3, callback=steps.append, **SMALL)
    inv = method(images)
    assert [s.step for s in steps] == [1, 2, 3] and {s.stage for s in steps} == {"iteration"}
    lat, rec = inv.extras["iteration_latents"], inv.extras["reconstructions"]
    assert lat.shape == (3, 3, 8, 32) and rec.shape == (3, 3, 3, 32, 32)
    torch.testing.assert_close(lat[:, -1], inv.latents, rtol=0, atol=0)
    net = method.net
    with torch.no_grad():
        avg_image = generator.synthesis(net.latent_avg[None], noise_mode="const").expand(3, -1, -1, -1)
        first = net(torch.cat([images, avg_image], 1), base=net.latent_avg)  # iteration 0: from the average
        torch.testing.assert_close(lat[:, 0], first, rtol=0, atol=1e-5)
        second = net(torch.cat([images, rec[:, 0]], 1), base=lat[:, 0])  # then from its own estimate
        torch.testing.assert_close(lat[:, 1], second, rtol=0, atol=1e-5)
        torch.testing.assert_close(rec[:, 1], generator.synthesis(lat[:, 1], noise_mode="const"), rtol=0, atol=1e-5)
    # init= replaces the average start: it refines another method's result
    pivot = create_method("psp", generator=generator, **SMALL)(images)
    refined = create_method(name, generator=generator, n_iters=1, **SMALL)(images, init=pivot)
    with torch.no_grad():
        expected = net(torch.cat([images, pivot.render()], 1), base=pivot.ws)
    torch.testing.assert_close(refined.latents, expected, rtol=0, atol=1e-5)


def test_weights_of_another_kind_or_shape_are_refused(generator):
    e4e = StyleEncoder(StyleEncoderConfig(kind="e4e", n_styles=8, style_dim=32, input_size=32, widths=(16,) * 4))
    with pytest.raises(ValueError, match="weights is a e4e encoder, not a pSp one"):
        create_method("psp", generator=generator, weights=e4e)
    wide = StyleEncoder(StyleEncoderConfig(kind="psp", n_styles=10, style_dim=32, input_size=32, widths=(16,) * 4))
    with pytest.raises(
        ValueError, match="the encoder predicts 10 codes of width 32 but the generator takes 8 of width 32"
    ):
        create_method("psp", generator=generator, weights=wide)
    method = create_method("psp", generator=generator, weights=e4e.__class__(e4e.config.replace(kind="psp")))
    assert method.input_resolution == 32 and method.input_channels == 3
    with pytest.raises(ValueError, match=r"images must have shape \[N, 3, 32, 32\]"):
        method(torch.zeros(1, 3, 64, 64))


def test_an_official_file_builds_the_method(tmp_path, generator, images):
    net = StyleEncoder(
        StyleEncoderConfig(
            kind="restyle-e4e", n_styles=8, style_dim=32, input_size=32, in_channels=6, pyramid=False, widths=(16,) * 4
        )
    )
    torch.nn.init.normal_(net.encoder.styles[0].linear.weight)
    avg = torch.randn(32)
    path = tmp_path / "restyle_e4e.pt"
    torch.save(
        {
            "state_dict": {f"encoder.{k}": v for k, v in net.encoder.state_dict().items()},
            "opts": {
                "encoder_type": "ProgressiveBackboneEncoder",
                "input_nc": 6,
                "output_size": 32,
                "n_iters_per_batch": 2,
            },
            "latent_avg": avg.expand(8, 32).clone(),
        },
        path,
    )
    method = create_method("restyle-e4e", generator=generator, weights=str(path))
    assert method.n_iters == 2 and torch.equal(method.net.latent_avg[3], avg)
    assert method(images).extras["iteration_latents"].shape[1] == 2
    with pytest.raises(ValueError, match="this is a ReStyle-e4e checkpoint .* not a ReStyle-pSp one"):
        create_method("restyle-psp", generator=generator, weights=path)


def test_an_official_w_encoder_file_builds_psp_w(tmp_path, generator, images):
    net = StyleEncoder(StyleEncoderConfig(kind="psp-w", n_styles=8, style_dim=32, widths=(16,) * 4)).eval()
    torch.nn.init.normal_(net.encoder.linear.weight)
    avg = torch.randn(32)
    path = tmp_path / "w_encoder.pt"
    torch.save(
        {
            "state_dict": {f"encoder.{k}": v for k, v in net.encoder.state_dict().items()},
            "opts": {
                "encoder_type": "BackboneEncoderUsingLastLayerIntoW",
                "input_nc": 3,
                "output_size": 32,
                "start_from_latent_avg": True,
            },
            "latent_avg": avg,
        },
        path,
    )
    method = create_method("psp-w", generator=generator, weights=path)
    inv = method(torch.nn.functional.interpolate(images, size=256))  # the file's encoder takes 256 px
    assert inv.space == "w" and inv.latents.shape == (3, 32)
    with torch.no_grad():
        expected = net.encoder(torch.nn.functional.interpolate(images, size=256)) + avg
    torch.testing.assert_close(inv.latents, expected, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="this is a pSp W-encoder checkpoint .* not a pSp one"):
        create_method("psp", generator=generator, weights=path)


def test_psp_style_mixing(generator, images):
    plain = create_method("psp", generator=generator, **SMALL)(images).latents
    mixed = create_method("psp", generator=generator, latent_mask=[5, 6, 7], mix_alpha=0.25, seed=3, **SMALL)(images)
    z = torch.stack([torch.randn(32, generator=torch.Generator().manual_seed(3 + i)) for i in range(3)])
    injected = generator.mapping(z)
    torch.testing.assert_close(mixed.latents[:, :5], plain[:, :5], rtol=0, atol=0)
    torch.testing.assert_close(mixed.latents[:, 5:], 0.25 * injected[:, 5:] + 0.75 * plain[:, 5:], rtol=0, atol=1e-6)
    replaced = create_method("psp", generator=generator, latent_mask=[7], seed=[3, 4, 5], **SMALL)(images).latents
    torch.testing.assert_close(replaced[:, 7], injected[:, 7], rtol=0, atol=1e-6)
    other = create_method("psp", generator=generator, latent_mask=[7], seed=9, **SMALL)(images).latents
    assert (other[:, 7] - replaced[:, 7]).abs().amax() > 1e-3  # another seed, another output (multi-modal)
    with pytest.raises(ValueError, match=r"latent_mask must list W\+ indices in \[0, 8\), got \[8\]"):
        create_method("psp", generator=generator, latent_mask=[8], **SMALL)
    with pytest.raises(ValueError, match="mix_alpha needs latent_mask"):
        create_method("psp", generator=generator, mix_alpha=0.5, **SMALL)


def test_psp_with_mixing_keeps_the_contract(generator, images):
    # each render within 6 eps * max|image| (4.85) of a float64 run (this CPU; AVX2- and SSE-capped kernels): a batch
    # and its images one at a time differ by < 7e-6; 2e-5 leaves 3x
    options = dict(SMALL, latent_mask=[6, 7], mix_alpha=0.5)
    check_method("psp", generator, images, options=options, batch_tolerance=2e-5)


def test_shipped_psp_edges_draws_clothing_from_edge_maps():
    """The shipped demo encoder (no weights=): edge drawings of held-out images in, the clothing out, far closer
    to the originals than the untrained encoder's; 3-channel drawings are refused on the 1-channel demo."""
    from sg2_core import demo
    from sg2_core.methods.conditions import apply_condition

    G = demo.load_generator()
    x = demo.load_test_images()[0][:16]
    edges = apply_condition("edges", x)
    trained = create_method("psp-edges", generator=G)
    untrained = create_method("psp-edges", generator=G, **SMALL)
    mse = {
        name: (m(edges).render() - x).square().mean().item()
        for name, m in [("trained", trained), ("untrained", untrained)]
    }
    assert mse["trained"] < 0.12 and mse["trained"] < 0.5 * mse["untrained"], mse
    with pytest.raises(ValueError, match=r"images must have shape \[N, 1, 32, 32\] with N >= 1, got \[16, 3, 32, 32\]"):
        trained(edges.repeat(1, 3, 1, 1))


def test_the_old_methods_dict_warns():
    import inv_encoders.methods

    with pytest.warns(DeprecationWarning, match="METHODS is deprecated .* the methods are the package's entry points"):
        old = inv_encoders.methods.METHODS
    assert old == {k: v for k, v in METHODS.items() if k != "hfgi"}  # frozen when deprecated: hfgi came after
