import pytest
import torch

from sg2_core.training.augment import OPS, AdaptiveAugment, DiffAugment, augment


def images(n=6, c=3, size=16, seed=0, dtype=torch.float32):
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(seed), dtype=dtype) * 2 - 1


def gen(seed=1):
    return torch.Generator().manual_seed(seed)


def test_p_zero_is_identity():
    x = images()
    assert augment(x, 0.0) is x
    pipe = AdaptiveAugment(initial_p=0.0)
    assert torch.equal(pipe(x), x)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("c", [1, 3])
def test_shapes_dtypes_and_changes(dtype, c):
    x = images(c=c, dtype=dtype)
    y = augment(x, 1.0, generator=gen())
    assert y.shape == x.shape and y.dtype == dtype and y.device == x.device
    assert torch.isfinite(y).all() and not torch.equal(y, x)


def test_reproducible_from_generator_and_global_rng():
    x = images()
    assert torch.equal(augment(x, 0.5, generator=gen(3)), augment(x, 0.5, generator=gen(3)))
    assert not torch.equal(augment(x, 0.5, generator=gen(3)), augment(x, 0.5, generator=gen(4)))
    torch.manual_seed(7)
    a = augment(x, 0.5)
    torch.manual_seed(7)
    assert torch.equal(a, augment(x, 0.5))


def test_gradient_flows_and_is_exact():
    x = images(n=2, c=3, size=8, dtype=torch.float64).requires_grad_(True)
    augment(x, 1.0, generator=gen()).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    # for fixed random draws every op is linear in the pixels: check the Jacobian numerically
    for padding in ("zeros", "reflect"):
        assert torch.autograd.gradcheck(
            lambda t: augment(t, 0.7, padding=padding, generator=gen(5)), (x.detach().requires_grad_(),), fast_mode=True
        )


def test_xflip_per_sample_probability():
    x = images(n=400, c=1, size=4)
    y = augment(x, 0.5, ops=["xflip"], generator=gen())
    flipped = torch.tensor([torch.equal(a, b.flip(-1)) for a, b in zip(y, x)])
    same = torch.tensor([torch.equal(a, b) for a, b in zip(y, x)])
    assert bool((flipped | same).all()) and 150 < int(flipped.sum()) < 250
    assert torch.equal(augment(x, 1.0, ops=["xflip"], generator=gen()), x.flip(-1))


@pytest.mark.parametrize("padding", ["zeros", "reflect"])
def test_translation_is_an_integer_shift(padding):
    x = images(n=20, c=2, size=16)
    y = augment(x, 1.0, ops=["translation"], padding=padding, generator=gen())
    padded = torch.nn.functional.pad(x, [2] * 4, mode="constant" if padding == "zeros" else "reflect")
    shifts = []
    for a, b in zip(y, padded):  # each image is a crop of the padded input, shifted by at most 16/8 = 2 px
        found = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if torch.equal(a, b[:, 2 - dy : 18 - dy, 2 - dx : 18 - dx])
        ]
        assert len(found) == 1
        shifts.append(found[0])
    assert len(set(shifts)) > 5


def test_saturation_is_a_noop_for_one_channel_and_colour_ops_keep_structure():
    grey = images(c=1)
    assert torch.equal(augment(grey, 1.0, ops=["saturation"], generator=gen()), grey)
    x = images(c=3)
    y = augment(x, 1.0, ops=["saturation"], generator=gen())
    assert torch.allclose(y.mean(1), x.mean(1), atol=1e-6) and not torch.allclose(y, x)
    y = augment(x, 1.0, ops=["contrast"], generator=gen())
    assert torch.allclose(y.mean((1, 2, 3)), x.mean((1, 2, 3)), atol=1e-6)
    factor = (y - y.mean((1, 2, 3), keepdim=True)) / (x - x.mean((1, 2, 3), keepdim=True))
    assert torch.all((factor.amax((1, 2, 3)) - factor.amin((1, 2, 3))) < 1e-3)  # one factor per image
    assert torch.all((factor.mean((1, 2, 3)) - 1).abs() <= 0.5 + 1e-5)
    shift = augment(x, 1.0, ops=["brightness"], generator=gen()) - x
    assert torch.allclose(shift, shift[:, :1, :1, :1].expand_as(shift), atol=1e-6)
    assert torch.all(shift.abs() <= 0.5)


def test_cutout_zeroes_one_square():
    x = images(n=10, c=1, size=16) * 0.5 + 0.75  # strictly positive, so zeros come from the cutout only
    y = augment(x, 1.0, ops=["cutout"], generator=gen())
    for a, b in zip(y, x):
        zero = a[0] == 0
        assert torch.equal(a[0][~zero], b[0][~zero])
        rows, cols = zero.any(1).nonzero().flatten(), zero.any(0).nonzero().flatten()
        assert int(zero.sum()) == len(rows) * len(cols) and 4 <= len(rows) <= 8 and 4 <= len(cols) <= 8


def test_bad_input():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        augment(images(), 1.5)
    with pytest.raises(ValueError, match="unknown augmentation ops"):
        augment(images(), 0.5, ops=["rotate"])
    with pytest.raises(ValueError, match="float images"):
        augment(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), 0.5)
    with pytest.raises(ValueError, match="padding"):
        DiffAugment(padding="wrap")
    with pytest.raises(ValueError, match="target"):
        AdaptiveAugment(target=2)


def test_controller_follows_the_ada_formula():
    ada = AdaptiveAugment(target=0.6, speed_images=1000, interval=4, initial_p=0.1)
    overfit = torch.ones(8, 1)  # D says "real" for every real: r_t = 1 > 0.6
    assert [ada.update(overfit) for _ in range(4)] == [False, False, False, True]
    assert ada.p == pytest.approx(0.1 + 8 * 4 / 1000, abs=1e-12) and float(ada.rt) == 1.0
    healthy = torch.tensor([[1.0], [-1.0], [-2.0], [3.0]] * 2)  # r_t = 0 < 0.6
    for _ in range(4):
        ada.update(healthy)
    assert ada.p == pytest.approx(0.1, abs=1e-12) and float(ada.rt) == 0.0
    for _ in range(40):
        ada.update(-overfit)
    assert ada.p == 0.0  # clamped
    for _ in range(4 * 40):
        ada.update(overfit)
    assert ada.p == 1.0


def test_fixed_mode_and_state_round_trip():
    fixed = AdaptiveAugment(target=None, initial_p=0.3)
    for _ in range(10):
        assert not fixed.update(torch.ones(4, 1))
    assert fixed.p == pytest.approx(0.3)
    ada = AdaptiveAugment(interval=4, speed_images=100, initial_p=0.2)
    for _ in range(6):  # one adjustment, then half an interval accumulated
        ada.update(torch.tensor([[1.0], [1.0], [-1.0]]))
    assert ada.p == pytest.approx(0.2 - 12 / 100)  # r_t = 1/3 < 0.6
    state = ada.state_dict()
    assert {"p_tensor", "sign_sum", "num_logits", "num_images", "num_steps", "rt"} <= set(state)
    clone = AdaptiveAugment(interval=4, speed_images=100)
    clone.load_state_dict(state)
    for _ in range(2):
        a, b = ada.update(torch.ones(3, 1)), clone.update(torch.ones(3, 1))
        assert a == b
    assert ada.p == clone.p and ada.p == pytest.approx(0.2)  # r_t = (2 + 6) / 12 > 0.6: back up by 12/100
    x = images()
    assert torch.equal(ada(x, generator=gen()), clone(x, generator=gen()))


def test_ops_constant_lists_all():
    assert set(OPS) == {"xflip", "translation", "brightness", "saturation", "contrast", "cutout"}
