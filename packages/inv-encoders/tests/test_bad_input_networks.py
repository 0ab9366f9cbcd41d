"""Bad input to the encoders themselves (the methods check images through sg2_core's contract first): each is
one ValueError naming the problem. Wrong checkpoint files are in test_checkpoints.py (another method's file,
a truncated file, missing keys)."""

import pytest
import torch

from inv_encoders.networks import StyleEncoder, StyleEncoderConfig

SMALL = dict(n_styles=6, style_dim=16, widths=(16, 16, 16, 16), input_size=64)


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    return {
        kind: StyleEncoder(
            StyleEncoderConfig(
                kind=kind,
                in_channels=6 if kind.startswith("restyle") else 3,
                pyramid=not kind.startswith("restyle"),
                **SMALL,
            )
        ).eval()
        for kind in ("psp", "e4e", "restyle-psp", "psp-w", "e4e-w")
    }


@pytest.mark.parametrize(
    "kind, shape, message",
    [
        ("psp", (1, 1, 64, 64), r"PyramidStyleEncoder takes images \[N, 3, H, W\], got \(1, 1, 64, 64\)"),
        ("e4e", (2, 4, 64, 64), r"PyramidStyleEncoder takes images \[N, 3, H, W\], got \(2, 4, 64, 64\)"),
        ("restyle-psp", (1, 3, 64, 64), r"PyramidStyleEncoder takes images \[N, 6, H, W\], got \(1, 3, 64, 64\)"),
        ("psp-w", (1, 1, 64, 64), r"WEncoder takes images \[N, 3, H, W\], got \(1, 1, 64, 64\)"),
        ("psp", (1, 3, 32, 32), "PyramidStyleEncoder was built for 64x64 inputs, got 32x32"),
        ("e4e", (1, 3, 64, 128), "PyramidStyleEncoder was built for 64x64 inputs, got 64x128"),
        ("psp", (3, 64, 64), r"PyramidStyleEncoder takes images \[N, 3, H, W\], got \(3, 64, 64\)"),
    ],
)
def test_wrong_channels_or_size_are_named(nets, kind, shape, message):
    with torch.no_grad(), pytest.raises(ValueError, match=message):
        nets[kind](torch.zeros(shape))


@pytest.mark.parametrize("kind", ["psp", "e4e", "restyle-psp", "psp-w", "e4e-w"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_or_inf_input_is_refused(nets, kind, bad):
    x = torch.zeros(2, nets[kind].config.in_channels, 64, 64)
    x[1, 0, 5, 7] = bad
    with torch.no_grad(), pytest.raises(ValueError, match=f"the {kind} encoder's input contains NaN or inf"):
        nets[kind](x)
    with torch.no_grad():  # a finite batch still encodes
        assert torch.isfinite(nets[kind](torch.zeros_like(x))).all()


def test_not_a_tensor_is_named(nets):
    with pytest.raises(ValueError, match=r"PyramidStyleEncoder takes images \[N, 3, H, W\], got list"):
        nets["psp"]([[0.0]])
