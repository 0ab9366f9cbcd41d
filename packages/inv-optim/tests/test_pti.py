"""PTI: offsets reproduce the shared copy, tuning beats the pivot, batches equal single runs, pivots by name."""

import pytest
import torch

from inv_optim.pti import PTI
from sg2_core import Inversion, Method, register_method
from sg2_core.methods.registry import unregister_method

TUNE = dict(steps=25, lr=3e-3, stop_distance=None)
PIVOT = dict(steps=20, w_avg_samples=300)


@pytest.fixture(scope="module")
def pivot(generator, targets, mse_distance):
    return PTI(generator, distance=mse_distance, pivot_options=PIVOT).pivot_method(targets)


def test_offsets_reproduce_the_shared_copy_and_beat_the_pivot(generator, targets, mse_distance, pivot):
    offsets = PTI(generator, distance=mse_distance, **TUNE)(targets[:1], init=pivot[0])
    copy = PTI(generator, distance=mse_distance, mode="copy", **TUNE)(targets[:1], init=pivot[0])
    assert set(offsets.weight_offsets) == set(generator.synthesis.weight_layer_names)
    for name, value in offsets.weight_offsets.items():
        assert torch.allclose(value, copy.weight_offsets[name], atol=2e-3), name
    assert torch.allclose(offsets.render(), copy.render(), atol=1e-3)
    assert offsets.extras["l2"][0] < 0.8 * offsets.extras["pivot_l2"][0]
    # the reported l2 is that of the rendered inversion (const noise, offsets applied)
    assert torch.allclose(((offsets.render() - targets[:1]) ** 2).mean(), offsets.extras["l2"][0], atol=1e-6)
    assert torch.equal(offsets.latents, pivot[0].latents)  # the pivot stays fixed


def test_a_batch_equals_runs_of_one_image_with_locality(generator, targets, mse_distance, pivot):
    options = dict(distance=mse_distance, locality=True, seed=[4, 5, 6], **TUNE)
    batch = PTI(generator, **options)(targets, init=pivot)
    for i in range(3):
        single = PTI(generator, **{**options, "seed": 4 + i})(targets[i : i + 1], init=pivot[i])
        for name, value in single.weight_offsets.items():
            # Adam divides by sqrt(v): float rounding in near-zero gradients can flip single elements'
            # steps (lr-sized whatever the gradient), and a batch rounds differently from one image (the
            # affine layers' GEMMs, and the CPU inference path's Winograd that renders the locality
            # targets). So compare each layer's offsets as a whole, and the renders to 1e-2: measured
            # up to 3e-3, while a coupling bug between samples would show errors of the size of the tuning
            # itself, ~1e-1
            error = (batch.weight_offsets[name][i] - value[0]).norm() / value[0].norm().clamp_min(1e-12)
            assert error < 2e-2, (i, name, float(error))
        assert torch.allclose(batch[i].render(), single.render(), atol=1e-2)


def test_early_stop_per_image(generator, targets, mse_distance, pivot):
    stop = pivot.extras["distance"].median().item()  # measured with the projector's noise: roughly the middle
    method = PTI(generator, distance=mse_distance, steps=10, lr=3e-3, stop_distance=float("inf"))
    inv = method(targets, init=pivot)
    assert torch.equal(inv.extras["steps"], torch.zeros(3, dtype=torch.long))
    assert all((v == 0).all() for v in inv.weight_offsets.values())
    inv = PTI(generator, distance=mse_distance, steps=10, lr=3e-3, stop_distance=stop)(targets, init=pivot)
    assert (inv.extras["steps"] <= 10).all()


def test_locality_keeps_far_codes_closer_to_the_original(generator, targets, mse_distance, pivot):
    options = dict(distance=mse_distance, steps=25, lr=1e-2, stop_distance=None, seed=0)
    free = PTI(generator, **options)(targets[:1], init=pivot[0])
    local = PTI(generator, locality=True, locality_mse=10.0, **options)(targets[:1], init=pivot[0])
    gen = torch.Generator().manual_seed(11)
    with torch.no_grad():
        far = generator.mapping(torch.randn(8, generator.z_dim, generator=gen), truncation_psi=0.5)
        original = generator.synthesis(far, noise_mode="none")

        def drift(inv):
            offsets = {k: v.expand(8, *v.shape[1:]) for k, v in inv.weight_offsets.items()}
            return (generator.synthesis(far, noise_mode="none", weight_offsets=offsets) - original).square().mean()

        assert drift(local) < drift(free)


def test_pivot_from_a_registered_method(generator, targets, mse_distance):
    calls = []

    @register_method("test-inv-optim-mean-pivot")
    class MeanPivot(Method):
        name, space = "test-inv-optim-mean-pivot", "w+"

        def __init__(self, generator=None, scale=1.0):
            super().__init__(generator)
            self.scale = scale

        def invert(self, images, init):
            calls.append(self.scale)
            ws = self.generator.mapping.w_avg.expand(images.shape[0], self.generator.num_ws, -1) * self.scale
            return Inversion(ws.clone(), "w+", self.generator)

    try:
        method = PTI(
            generator,
            pivot="test-inv-optim-mean-pivot",
            pivot_options={"scale": 0.5},
            distance=mse_distance,
            steps=3,
            stop_distance=None,
        )
        assert method.space == "w+"
        inv = method(targets[:2])
        assert calls == [0.5] and inv.space == "w+" and inv.extras["pivot_method"] == "test-inv-optim-mean-pivot"
    finally:
        unregister_method("test-inv-optim-mean-pivot")
    with pytest.raises(ValueError, match="PTI pivot 'no-such-method'.*unknown method"):
        PTI(generator, pivot="no-such-method", distance=mse_distance)


def test_bad_input_gets_clear_errors(generator, targets, mse_distance, pivot):
    method = PTI(generator, distance=mse_distance, steps=2)
    with pytest.raises(ValueError, match=r"shape \[N, 3, 16, 16\]"):
        method(targets[:, :2])
    with pytest.raises(ValueError, match="NaN"):
        method(targets * float("nan"))
    with pytest.raises(ValueError, match="init holds 2 samples but 3 images were given"):
        method(targets, init=pivot[:2])
    with pytest.raises(ValueError, match="unknown synthesis layers"):
        PTI(generator, layers=["b4.nope"])
    with pytest.raises(ValueError, match="mode"):
        PTI(generator, mode="sideways")


def test_only_chosen_layers_get_offsets(generator, targets, mse_distance, pivot):
    inv = PTI(generator, distance=mse_distance, layers=["synthesis.b16.torgb.weight", "b8.conv1"], **TUNE)(
        targets[:1], init=pivot[0]
    )
    assert set(inv.weight_offsets) == {"b16.torgb", "b8.conv1"}
