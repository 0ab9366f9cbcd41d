"""Projection: it reduces the distance, W+ beats W, batches equal single runs, early stop, clear errors; the
registered methods sg2-w / sg2-w+ are its one public way (the old names warn)."""

import pytest
import torch

from inv_optim.distance import Distance, downsample
from inv_optim.projector import ProjectorW, ProjectorWPlus, noise_maps
from sg2_core import create_method

FAST = dict(w_avg_samples=500)


def projector(generator, space="w", **options):
    return create_method("sg2-w" if space == "w" else "sg2-w+", generator=generator, **options)


def project(generator, images, space="w", **options):
    return projector(generator, space, **options)(images)


def _record(into):
    return lambda info: into.append(info)


def test_projection_reduces_the_distance(generator, targets, mse_distance):
    steps = []
    inv = project(generator, targets, steps=40, distance=mse_distance, callback=_record(steps), **FAST)
    assert len(steps) == 40 and steps[0].stage == "project"
    first = steps[0].distance
    assert (inv.extras["distance"] < 0.7 * first).all(), (first, inv.extras["distance"])
    assert inv.space == "w" and inv.latents.shape == (3, generator.w_dim)
    assert torch.equal(inv.extras["steps"], torch.full((3,), 40))
    # the reported distance is the one of the optimised noise maps, and rendering with them reproduces it
    image = inv.render(noise=noise_maps(inv))
    assert torch.allclose(mse_distance(image, targets), inv.extras["distance"], atol=1e-6)


def test_w_plus_reaches_lower_mse_than_w(generator, targets, mse_distance):
    w = project(generator, targets, space="w", steps=50, distance=mse_distance, **FAST)
    w_plus = project(generator, targets, space="w+", steps=50, distance=mse_distance, **FAST)
    assert w_plus.latents.shape == (3, generator.num_ws, generator.w_dim)
    assert w_plus.extras["distance"].mean() < w.extras["distance"].mean()


@pytest.mark.parametrize("space", ["w", "w+"])
def test_a_batch_equals_runs_of_one_image(generator, targets, mse_distance, space):
    options = dict(space=space, steps=15, distance=mse_distance, mse=0.5, **FAST)
    batch = project(generator, targets, seed=[7, 8, 9], **options)
    for i in range(3):
        single = project(generator, targets[i : i + 1], seed=7 + i, **options)
        assert torch.allclose(batch.latents[i], single.latents[0], atol=1e-4), (i, space)
        for name, maps in noise_maps(single).items():
            assert torch.allclose(noise_maps(batch)[name][i], maps[0], atol=1e-4)
    # an int seed means seed + i for image i
    assert torch.allclose(project(generator, targets, seed=7, **options).latents, batch.latents, atol=1e-6)


def test_early_stop_is_per_image_and_a_stopped_image_stops_changing(generator, targets, mse_distance):
    options = dict(steps=20, distance=mse_distance, **FAST)
    trace = []
    project(generator, targets, callback=_record(trace), **options)
    threshold = trace[8].distance[0].item() + 1e-6  # image 0 gets there by step 8 at the latest
    batch = project(generator, targets, stop_distance=threshold, **options)
    used = batch.extras["steps"]
    assert used[0] <= 8 and batch.extras["stopped"][0]
    assert len(set(used.tolist())) > 1, "the test needs images stopping at different steps"
    for i in range(3):  # Adam's momentum must not move a stopped image while the others go on
        single = project(generator, targets[i : i + 1], seed=i, stop_distance=threshold, **options)
        assert single.extras["steps"][0] == used[i]
        assert torch.allclose(batch.latents[i], single.latents[0], atol=1e-4)


def test_stop_before_the_first_step_keeps_the_mean_w(generator, targets, mse_distance):
    inv = project(generator, targets, steps=5, distance=mse_distance, stop_distance=float("inf"), **FAST)
    assert torch.equal(inv.extras["steps"], torch.zeros(3, dtype=torch.long))
    assert torch.allclose(inv.latents, inv.latents[:1].expand(3, -1))


def test_projector_method_presets_and_overrides(generator, targets, mse_distance):
    d = mse_distance  # the default LPIPS file is checked at build time, and this machine may not have it
    assert projector(generator, "w", preset="hyperinverter", distance=d).options["steps"] == 600
    assert projector(generator, "w+", preset="hyperinverter", distance=d).options["steps"] == 2000
    assert (
        projector(generator, distance=d).options["steps"] == 1000
        and projector(generator, distance=d).options["lr"] == 0.1
    )
    method = projector(generator, "w+", distance=mse_distance, steps=3, w_avg_samples=100)
    inv = method(targets[:2])
    assert isinstance(method, ProjectorWPlus) and (method.name, method.space, inv.space) == ("sg2-w+", "w+", "w+")
    with pytest.raises(ValueError, match="preset"):
        projector(generator, preset="nope")


def test_the_old_public_ways_warn_and_still_work(generator, targets, mse_distance):
    import inv_optim
    import inv_optim.projector

    options = dict(steps=2, distance=mse_distance, w_avg_samples=50)
    expected = project(generator, targets[:2], space="w+", **options).latents
    for module in (inv_optim, inv_optim.projector):
        with pytest.warns(DeprecationWarning, match=r"project is deprecated .* sg2_core.create_method\("):
            old_project = module.project
        assert torch.equal(old_project(generator, targets[:2], space="w+", **options).latents, expected)
        with pytest.warns(DeprecationWarning, match="Projector is deprecated"):
            old_class = module.Projector
        assert torch.equal(old_class(generator, space="w+", **options)(targets[:2]).latents, expected)
    with pytest.warns(
        DeprecationWarning, match=r'inv_optim.ProjectorW is deprecated .* use sg2_core.create_method\("sg2-w"'
    ):
        assert inv_optim.ProjectorW is ProjectorW
    with pytest.warns(DeprecationWarning, match=r'create_method\("sg2-w\+"'):
        assert inv_optim.ProjectorWPlus is ProjectorWPlus
    with pytest.raises(AttributeError):
        inv_optim.nothing_here


@pytest.mark.parametrize(
    "bad, match",
    [
        (lambda t: t[:, :1], r"shape \[N, 3, 16, 16\]"),
        (lambda t: torch.nn.functional.interpolate(t, size=32), r"shape \[N, 3, 16, 16\]"),
        (lambda t: t.clone().index_fill_(0, torch.tensor([1]), float("nan")), "NaN"),
        (lambda t: t * 255, r"\[-1, 1\]"),
    ],
)
def test_bad_images_get_clear_errors(generator, targets, mse_distance, bad, match):
    with pytest.raises(ValueError, match=match):
        project(generator, bad(targets), steps=2, distance=mse_distance, **FAST)


def test_bad_options_get_clear_errors(generator, targets, mse_distance):
    with pytest.raises(ValueError, match="noise must be one of"):
        projector(generator, noise="sometimes", distance=mse_distance)
    with pytest.raises(ValueError, match="one seed per image"):
        project(generator, targets, seed=[1, 2], steps=2, distance=mse_distance, **FAST)
    with pytest.raises(ValueError, match="generator is on cpu"):
        projector(generator, device="meta")
    with pytest.raises(ValueError, match=r"one value per image \[3\]"):
        project(generator, targets, steps=2, distance=lambda x, y: (x - y).square().mean(), **FAST)


def test_distance_inputs_above_256_are_area_downsampled():
    x = torch.arange(4.0).reshape(1, 1, 2, 2).repeat_interleave(256, dim=2).repeat_interleave(256, dim=3)
    small = downsample(x)
    assert small.shape == (1, 1, 256, 256) and torch.equal(small[0, 0, 0, 0], torch.tensor(0.0))
    assert torch.allclose(downsample(torch.randn(2, 3, 512, 512)).mean(), torch.tensor(0.0), atol=0.01)
    same = torch.randn(1, 1, 64, 64)
    assert downsample(same) is same


def test_a_distance_name_resolves_lazily():
    distance = Distance("some-name")  # nothing is loaded until the first call
    assert distance.name == "some-name" and distance._fn is None
    with pytest.raises(ValueError, match="distance must be a name"):
        Distance(3)


def test_steps_are_validated_when_built_and_zero_means_zero(generator, targets, mse_distance):
    # steps=0 used to run the 1000-step preset (`steps or preset`); now 0 returns the start untouched
    method = projector(generator, "w+", distance=mse_distance, steps=0, w_avg_samples=50)
    start = projector(generator, "w+", distance=mse_distance, steps=0, w_avg_samples=50)
    inv = method(targets[:2])
    assert inv.extras["steps"].tolist() == [0, 0]
    from inv_optim.projector import w_statistics

    w_avg, _ = w_statistics(generator, 50)
    assert torch.equal(inv.latents, w_avg.expand_as(inv.latents))
    given = start(targets[:2], init=inv)
    assert torch.equal(given.latents, inv.latents)
    for bad in (-5, 2.5, True):
        with pytest.raises(ValueError, match="steps must be an int >= 0"):
            projector(generator, steps=bad)
