"""pSp, e4e and ReStyle encoders and e4e's latent discriminator equal the reference implementations' outputs
(shared/fixtures/encoders, reduced widths), in float32 and float64, within the fixture README's tolerances."""

import pytest
import torch

from inv_encoders.networks import LatentCodesDiscriminator, StyleEncoder, StyleEncoderConfig

SMALL = dict(n_styles=10, style_dim=32, widths=(16, 32, 48, 64))
CODES = dict(rtol=1e-4, atol=1e-4)  # README "Recommended tolerances": codes and latents
DTYPES = {"float32": (torch.float32, ""), "float64": (torch.float64, "_f64")}
# float64 against the reference's float64 run agrees to ~1e-15 (measured 8.9e-16 at most): hold it to 1e-10
TOL = {torch.float32: CODES, torch.float64: dict(rtol=0, atol=1e-10)}


def build(kind, state, dtype, **config):
    net = StyleEncoder(StyleEncoderConfig(kind=kind, **SMALL, **config))
    net.encoder.load_state_dict(state, strict=True)
    return net.to(dtype).eval()


@pytest.mark.parametrize("dtype", DTYPES)
def test_psp_codes_equal_the_reference(dtype, psp_data, inputs):
    torch_dtype, suffix = DTYPES[dtype]
    net = build("psp", psp_data["state_dict"], torch_dtype, start_from_latent_avg=False)
    with torch.no_grad():
        codes = net(inputs["x256"].to(torch_dtype))
    expected = psp_data[f"codes{suffix}"]
    assert codes.dtype == torch_dtype
    torch.testing.assert_close(codes, expected.to(torch_dtype), **TOL[torch_dtype])
    # start_from_latent_avg adds the average to every entry
    avg = torch.randn(10, 32, dtype=torch_dtype)
    with_avg = build("psp", psp_data["state_dict"], torch_dtype)
    with_avg.set_latent_avg(avg)
    with torch.no_grad():
        torch.testing.assert_close(with_avg(inputs["x256"].to(torch_dtype)) - avg, codes, rtol=0, atol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("stage", [0, 3, 8, 18])
def test_e4e_stages_equal_the_reference(stage, dtype, psp_data, inputs):
    torch_dtype, suffix = DTYPES[dtype]
    net = build("e4e", psp_data["state_dict"], torch_dtype, start_from_latent_avg=False)
    with torch.no_grad():
        codes = net(inputs["x256"].to(torch_dtype), stage=stage)
    torch.testing.assert_close(codes, psp_data[f"w_stage{stage}{suffix}"].to(torch_dtype), **TOL[torch_dtype])
    if stage == 0:  # W only: every entry the same
        assert torch.equal(codes, codes[:, :1].expand_as(codes))


def test_e4e_at_inference_is_the_base_plus_psp_codes(psp_data, inputs):
    psp = build("psp", psp_data["state_dict"], torch.float32, start_from_latent_avg=False)
    e4e = build("e4e", psp_data["state_dict"], torch.float32, start_from_latent_avg=False)
    with torch.no_grad():
        p, e = psp(inputs["x256"]), e4e(inputs["x256"])
    torch.testing.assert_close(e[:, 0], p[:, 0], rtol=0, atol=1e-6)
    torch.testing.assert_close(e[:, 1:], p[:, :1] + p[:, 1:], rtol=0, atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_restyle_codes_equal_the_reference(dtype, restyle_data, inputs):
    torch_dtype, suffix = DTYPES[dtype]
    x = torch.cat([inputs["x256"], inputs["y256"]], dim=1).to(torch_dtype)  # target first, then reconstruction
    plain = build(
        "restyle-psp",
        restyle_data["state_dict"],
        torch_dtype,
        in_channels=6,
        pyramid=False,
        start_from_latent_avg=False,
    )
    progressive = build(
        "restyle-e4e",
        restyle_data["state_dict"],
        torch_dtype,
        in_channels=6,
        pyramid=False,
        start_from_latent_avg=False,
    )
    with torch.no_grad():
        torch.testing.assert_close(plain(x), restyle_data[f"codes{suffix}"].to(torch_dtype), **TOL[torch_dtype])
        for stage in (0, 18):
            torch.testing.assert_close(
                progressive(x, stage=stage),
                restyle_data[f"progressive_w_stage{stage}{suffix}"].to(torch_dtype),
                **TOL[torch_dtype],
            )
        # ReStyle adds the previous estimate
        base = torch.randn(1, 10, 32, dtype=torch_dtype)
        torch.testing.assert_close(plain(x, base=base) - base, plain(x), rtol=0, atol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_latent_discriminator_equals_the_reference(dtype, disc_data, inputs):
    torch_dtype, suffix = DTYPES[dtype]
    disc = LatentCodesDiscriminator(32, 4)
    disc.load_state_dict(disc_data["state_dict"], strict=True)
    disc = disc.to(torch_dtype)
    with torch.no_grad():
        logits = disc(inputs["disc_codes"].to(torch_dtype))
    torch.testing.assert_close(logits, disc_data[f"logits{suffix}"].to(torch_dtype), rtol=0, atol=1e-5)
    assert sorted(disc.state_dict()) == [f"mlp.{i}.{p}" for i in (0, 2, 4, 6) for p in ("bias", "weight")]


def test_latent_avg_accepts_the_three_shapes_and_refuses_others():
    net = StyleEncoder(StyleEncoderConfig(**SMALL, input_size=32))
    avg = torch.randn(32)
    for value in (avg, avg[None], avg.expand(10, 32)):
        net.set_latent_avg(value)
        assert torch.equal(net.latent_avg, avg.expand(10, 32))
    with pytest.raises(ValueError, match=r"latent_avg must have shape \[10, 32\], \[1, 32\] or \[32\], got \[18, 32\]"):
        net.set_latent_avg(torch.zeros(18, 32))


def test_config_refuses_an_unknown_kind():
    with pytest.raises(ValueError, match="kind must be one of"):
        StyleEncoderConfig(kind="pixel2style")
