"""sg2_core.images: the one formula between uint8 and [-1, 1], reading image files and fitting them to a shape."""

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from sg2_core.images import (
    FITS,
    ImageLoadError,
    ImageShapeError,
    convert_channels,
    fit_image,
    load_images,
    read_images,
    save_image,
    to_float,
    to_uint8,
)


def _png(path, array):
    Image.fromarray(array).save(path)
    return path


def test_one_formula_round_trips_every_uint8_value():
    u8 = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    x = to_float(u8)
    assert torch.equal(x, u8.float() / 127.5 - 1)
    assert x.min() == -1 and x.max() == 1
    assert torch.equal(to_uint8(x), u8)
    assert to_uint8(torch.tensor([-1.2, -1.0, 0.0, 0.999, 1.7])).tolist() == [0, 0, 128, 255, 255]


def test_pad_keeps_pixels_and_borders_black(tmp_path):
    image = np.random.default_rng(0).integers(1, 256, (28, 28), dtype=np.uint8)
    padded = load_images(_png(tmp_path / "a.png", image), 1, 32, fit="pad")
    assert padded.shape == (1, 1, 32, 32)
    # what the demo's Fashion-MNIST images are: 28x28 padded by 2 black pixels
    expected = torch.full((32, 32), -1.0)
    expected[2:30, 2:30] = to_float(torch.from_numpy(image))
    assert torch.equal(padded[0, 0], expected)


@pytest.mark.parametrize("fit", FITS)
@pytest.mark.parametrize("size", [(20, 28), (48, 40), (64, 64)])
def test_every_fit_gives_the_requested_shape(tmp_path, fit, size):
    image = np.random.default_rng(1).integers(0, 256, (*size, 3), dtype=np.uint8)
    out = load_images(_png(tmp_path / "a.png", image), 3, 32, fit=fit)
    assert out.shape == (1, 3, 32, 32) and out.dtype == torch.float32
    assert -1 <= out.min() and out.max() <= 1


def test_center_crop_takes_the_middle_square(tmp_path):
    image = np.zeros((32, 48), dtype=np.uint8)
    image[:, 8:40] = 200  # the centred 32x32 square; the 8 px stripes either side are cropped away
    out = load_images(_png(tmp_path / "wide.png", image), 1, 32, fit="center-crop")
    assert torch.equal(to_uint8(out), torch.full((1, 1, 32, 32), 200, dtype=torch.uint8))


def test_pad_shrinks_a_larger_image_keeping_its_aspect():
    image = torch.full((1, 64, 32), 255, dtype=torch.uint8)
    out = fit_image(image, 32, "pad")
    assert out.shape == (1, 32, 32)
    assert (out[:, :, 8:24] == 255).all() and (out[:, :, :8] == 0).all() and (out[:, :, 24:] == 0).all()


def test_resize_of_a_constant_image_stays_constant():
    out = fit_image(torch.full((3, 50, 70), 77, dtype=torch.uint8), 32, "resize")
    assert out.shape == (3, 32, 32) and (out == 77).all()


def test_an_image_of_the_right_size_is_untouched():
    image = torch.randint(0, 256, (1, 32, 32), dtype=torch.uint8)
    for fit in FITS:
        assert fit_image(image, 32, fit) is image


def test_other_size_without_fit_is_refused_naming_the_file(tmp_path):
    path = _png(tmp_path / "small.png", np.zeros((20, 28), dtype=np.uint8))
    with pytest.raises(ImageShapeError) as info:
        load_images(path, 1, 32)
    assert str(info.value) == (
        f"image {path} is 1x20x28 (channels x height x width) but 32x32 images are expected; "
        "fit it on request (fit='pad' | 'resize' | 'center-crop')"
    )
    assert (info.value.got, info.value.expected, info.value.what) == ((1, 20, 28), (1, 32, 32), "size")


def test_channels_convert_only_on_request(tmp_path):
    rgb = np.random.default_rng(2).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    path = _png(tmp_path / "rgb.png", rgb)
    with pytest.raises(ImageShapeError, match=r"rgb.png is 3x32x32 .* but 1-channel images are expected"):
        load_images(path, 1, 32)
    grey = load_images(path, 1, 32, convert=True)
    # the same pixels as PIL's own conversion of the file
    assert torch.equal(to_uint8(grey)[0, 0], torch.from_numpy(np.array(Image.fromarray(rgb).convert("L"))))
    back = load_images(path, 3, 32)
    assert torch.equal(to_uint8(back)[0], torch.from_numpy(rgb).permute(2, 0, 1))
    assert torch.equal(convert_channels(grey, 3), grey.expand(-1, 3, -1, -1))


def test_folders_and_batch_files(tmp_path):
    rng = np.random.default_rng(3)
    (tmp_path / "dir" / "sub").mkdir(parents=True)
    a = _png(tmp_path / "dir" / "b.png", rng.integers(0, 256, (32, 32), dtype=np.uint8))
    b = _png(tmp_path / "dir" / "sub" / "a.png", rng.integers(0, 256, (32, 32), dtype=np.uint8))
    (tmp_path / "dir" / "notes.txt").write_text("not an image")
    hw = rng.integers(0, 256, (2, 32, 32), dtype=np.uint8)
    np.save(tmp_path / "hw.npy", hw)
    hwc = rng.integers(0, 256, (2, 32, 32, 1), dtype=np.uint8)
    np.save(tmp_path / "hwc.npy", hwc)
    floats = to_float(torch.from_numpy(hw[:, None]))
    save_file({"images": floats}, str(tmp_path / "f.safetensors"))
    items = read_images([tmp_path / "dir", tmp_path / "hw.npy", tmp_path / "hwc.npy", tmp_path / "f.safetensors"])
    assert [n for n, _ in items] == [
        str(a),
        str(b),
        f"{tmp_path / 'hw.npy'}[0]",
        f"{tmp_path / 'hw.npy'}[1]",
        f"{tmp_path / 'hwc.npy'}[0]",
        f"{tmp_path / 'hwc.npy'}[1]",
        f"{tmp_path / 'f.safetensors'}[0]",
        f"{tmp_path / 'f.safetensors'}[1]",
    ]
    batch = load_images([tmp_path / "hw.npy", tmp_path / "hwc.npy", tmp_path / "f.safetensors"], 1, 32)
    assert torch.equal(
        to_uint8(batch), torch.from_numpy(np.concatenate([hw[:, None], hwc.transpose(0, 3, 1, 2), hw[:, None]]))
    )


def test_unreadable_and_missing_inputs_are_named(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png at all")
    with pytest.raises(ImageLoadError, match=r"^cannot read image .*broken.png: "):
        load_images(bad, 1, 32)
    with pytest.raises(ImageLoadError, match=r"missing.png: no such file or folder$"):
        load_images(tmp_path / "missing.png", 1, 32)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageLoadError, match=r"empty: no images found"):
        load_images(tmp_path / "empty", 1, 32)
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(ImageLoadError, match=r"a.txt: not an image file"):
        load_images(tmp_path / "a.txt", 1, 32)
    np.save(tmp_path / "wrong.npy", np.zeros((2, 5, 32, 32), dtype=np.uint8))
    with pytest.raises(
        ImageLoadError, match=r"wrong.npy: expected images \[N, C, H, W\] .* got shape \[2, 5, 32, 32\]"
    ):
        load_images(tmp_path / "wrong.npy", 1, 32)
    with pytest.raises(ValueError, match="fit must be None or one of pad, resize, center-crop, got 'stretch'"):
        load_images(tmp_path / "wrong.npy", 1, 32, fit="stretch")


def test_save_image_is_atomic_and_refuses_to_overwrite_on_request(tmp_path):
    image = torch.randint(0, 256, (1, 8, 8), dtype=torch.uint8)
    path = save_image(image, tmp_path / "x.png")
    assert torch.equal(torch.from_numpy(np.array(Image.open(path)))[None], image)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="x.png exists; pass overwrite=True"):
        save_image(torch.zeros(1, 8, 8, dtype=torch.uint8), path, overwrite=False)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]  # no temporary file left behind
