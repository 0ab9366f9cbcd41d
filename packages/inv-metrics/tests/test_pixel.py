"""L2 / PSNR / SSIM / MS-SSIM against piq 0.6.0 values recorded in the metrics fixture (HyperInverter's pin)."""

import pytest
import torch

from inv_metrics import evaluation_size, ms_ssim, mse, psnr, ssim
from inv_metrics.images import to_float
from sg2_core.images import ImageDtypeError


@pytest.fixture(scope="module")
def ref(data_dir):
    return torch.load(data_dir / "ssim_psnr_small.pt", weights_only=True)


def test_psnr_ssim_ms_ssim_match_piq_060(ref):
    x, y = to_float(ref["x200x176_u8"]), to_float(ref["y200x176_u8"])  # odd sizes at scales 3-5
    torch.testing.assert_close(ms_ssim(x, y), torch.tensor(ref["ms_ssim200"]), atol=2e-5, rtol=0)
    torch.testing.assert_close(ssim(x, y), torch.tensor(ref["ssim200"]), atol=2e-5, rtol=0)
    torch.testing.assert_close(psnr(x, y), torch.tensor(ref["psnr200"]), atol=1e-4, rtol=0)
    x, y = to_float(ref["x64_u8"]), to_float(ref["y64_u8"])
    torch.testing.assert_close(ssim(x, y), torch.tensor(ref["ssim64"]), atol=2e-5, rtol=0)
    torch.testing.assert_close(psnr(x, y), torch.tensor(ref["psnr64"]), atol=1e-4, rtol=0)


def test_identical_images(ref):
    x = to_float(ref["x200x176_u8"])
    assert psnr(x, x).tolist() == pytest.approx([80.0, 80.0])  # piq's 1e-8 eps
    assert ms_ssim(x, x).tolist() == pytest.approx([1.0, 1.0], abs=1e-6)
    assert mse(x, x).tolist() == [0.0, 0.0]


def test_ms_ssim_refuses_small_images_naming_the_size(ref):
    x, y = to_float(ref["x64_u8"]), to_float(ref["y64_u8"])
    with pytest.raises(ValueError, match=r"at least 161x161 px.*got 64x64.*SSIM"):
        ms_ssim(x, y)


def test_mse_is_on_minus_one_one_per_image():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 8, 8, generator=gen) * 2 - 1
    y = torch.rand(3, 3, 8, 8, generator=gen) * 2 - 1
    expected = torch.stack([torch.nn.functional.mse_loss(x[i : i + 1], y[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(mse(x, y), expected)
    unit = torch.stack([torch.nn.functional.mse_loss((x[i] + 1) / 2, (y[i] + 1) / 2) for i in range(3)])
    torch.testing.assert_close(mse(x, y), 4 * unit)  # [-1, 1] MSE is 4x the [0, 1] one


def test_grey_images_and_gradients():
    gen = torch.Generator().manual_seed(1)
    x = (torch.rand(2, 1, 32, 32, generator=gen) * 1.6 - 0.8).requires_grad_()
    y = torch.rand(2, 1, 32, 32, generator=gen) * 1.6 - 0.8
    (psnr(x, y).sum() + ssim(x, y).sum() + mse(x, y).sum()).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="same shape"):
        mse(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 4))
    with pytest.raises(ImageDtypeError, match="float"):  # a ValueError, as the methods raise
        psnr(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="NaN"):
        mse(torch.full((1, 3, 8, 8), float("nan")), torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        mse(torch.zeros(3, 8, 8), torch.zeros(3, 8, 8))


def test_evaluation_size():
    x = torch.linspace(-1, 1, 64).reshape(1, 1, 8, 8).repeat(1, 3, 1, 1)
    assert evaluation_size(x, 8) is x
    small = evaluation_size(x, 4)
    assert small.shape == (1, 3, 4, 4)
    assert small.mean().item() == pytest.approx(x.mean().item(), abs=1e-6)  # antialiased: an area-like average
    assert evaluation_size(x, (16, 16), mode="bicubic").shape == (1, 3, 16, 16)


def test_from_uint8_is_a_deprecated_name_of_sg2_cores_to_float():
    import inv_metrics.images
    from sg2_core.images import to_float as sg2_to_float

    with pytest.warns(DeprecationWarning, match="sg2_core.images.to_float"):
        assert inv_metrics.images.from_uint8 is sg2_to_float
