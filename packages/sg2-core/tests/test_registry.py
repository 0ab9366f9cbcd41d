"""The method registry (in-process and entry points), composition through it, and the Inversion result."""

import re
import sys
import warnings

import pytest
import torch

from sg2_core.methods.directions import sefa
from sg2_core.methods.inversion import Inversion
from sg2_core.methods.latents import mean_latent
from sg2_core.methods.method import Method
from sg2_core.methods.registry import (
    MethodLoadError,
    check_images,
    create_method,
    list_methods,
    method_factory,
    method_info,
    register_method,
    unregister_method,
)
from sg2_core.nn.generator import Generator

# ---- two toy methods: a W-space "encoder" and a refinement that composes any pivot by name ----


class MeanW(Method):
    """Every image gets the mean latent: the simplest W-space method."""

    name, space = "toy-mean-w", "w"

    def __init__(self, generator=None, n=200, seed=0):
        super().__init__(generator)
        self.w = mean_latent(generator, n=n, seed=seed)

    def invert(self, images, init):
        return Inversion(self.w.expand(len(images), -1).clone(), "w", self.generator)


class Refine(Method):
    """Starts from another registered method's result and optimises W+ to match the images."""

    name, space = "toy-refine", "w+"

    def __init__(self, generator=None, pivot="toy-mean-w", steps=8, lr=0.05):
        super().__init__(generator)
        self.steps, self.lr = steps, lr
        self.pivot = create_method(pivot, generator=generator)

    def invert(self, images, init):
        ws = self.pivot(images).ws.detach().clone().requires_grad_(True)
        optimiser = torch.optim.Adam([ws], lr=self.lr)
        losses = []
        for _ in range(self.steps):
            loss = (self.generator.synthesis(ws, noise_mode="const") - images).square().flatten(1).mean(dim=1)
            optimiser.zero_grad()
            loss.sum().backward()
            optimiser.step()
            losses.append(loss.detach())
        return Inversion(ws.detach(), "w+", self.generator, extras={"losses": torch.stack(losses, dim=1)})


@pytest.fixture
def toy_methods():
    register_method("toy-mean-w")(MeanW)
    register_method("toy-refine")(Refine)
    yield
    unregister_method("toy-mean-w")
    unregister_method("toy-refine")


@pytest.fixture
def targets(g32):
    with torch.no_grad():
        # The random-weight generator's images overshoot [-1, 1] by far; targets must be valid images.
        z = torch.randn(2, g32.z_dim, generator=torch.Generator().manual_seed(5))
        return g32(z, noise_mode="const").clamp(-1, 1)


# ---- registry ----


def test_registered_methods_are_listed_described_and_built(g32, toy_methods, targets):
    assert {"toy-mean-w", "toy-refine"} <= set(list_methods())
    assert list_methods() == sorted(list_methods())
    info = method_info("toy-mean-w")
    assert method_factory("toy-mean-w") is MeanW
    assert info.source == "registered" and info.target.endswith(":MeanW") and info.distribution is None
    method = create_method("toy-mean-w", generator=g32, n=100)
    assert isinstance(method, MeanW) and method.space == "w"
    inv = method(targets)
    assert inv.space == "w" and len(inv) == 2
    torch.testing.assert_close(inv.latents[1], g32.mean_w(100))


def test_unknown_names_and_options_are_explained(g32, toy_methods):
    with pytest.raises(ValueError, match="unknown method 'toy-mean_w'; did you mean 'toy-mean-w'.*Known methods:"):
        create_method("toy-mean_w", generator=g32)
    with pytest.raises(ValueError, match="Known methods: .*toy-refine"):
        method_info("zzz")
    with pytest.raises(TypeError, match=r"unknown options \['steps'\]; it accepts \['generator', 'n', 'seed'\]"):
        create_method("toy-mean-w", generator=g32, steps=3)


def test_registration_conflicts_and_bad_methods(g32, toy_methods):
    with pytest.raises(ValueError, match="already registered"):
        register_method("toy-mean-w")(Refine)
    register_method("toy-mean-w", replace=True)(MeanW)

    def build(generator):
        return MeanW(generator)

    class Callable:  # keeps the old protocol (name, space, __call__) but is no Method
        name, space = "toy-callable", "w"

        def __init__(self, generator=None):
            self.generator = generator

        def __call__(self, images, init=None):
            return MeanW(self.generator)(images)

    fix = r"only Method subclasses are methods: subclass sg2_core.Method"
    with pytest.raises(TypeError, match=rf"method 'toy-build': the function .*build is not a subclass .*{fix}"):
        register_method("toy-build")(build)
    with pytest.raises(TypeError, match=rf"method 'toy-callable': the class .*Callable is not a subclass .*{fix}"):
        register_method("toy-callable")(Callable)
    assert not {"toy-build", "toy-callable"} & set(list_methods())

    class SpaceLess(MeanW):  # an instance must keep a space in SPACES
        def __init__(self, generator=None):
            super().__init__(generator, n=10)
            self.space = "q"

    register_method("toy-space-less")(SpaceLess)
    try:
        with pytest.raises(TypeError, match=r"'toy-space-less' .*built a method with space 'q', not one of"):
            create_method("toy-space-less", generator=g32)
    finally:
        unregister_method("toy-space-less")


def test_inversion_method_is_deprecated_for_method():
    with pytest.warns(DeprecationWarning, match=r"InversionMethod is deprecated .* sg2-core 0.8: .* sg2_core.Method"):
        from sg2_core import InversionMethod
    assert InversionMethod is Method
    with pytest.warns(DeprecationWarning, match="InversionMethod is deprecated"):
        from sg2_core.methods.registry import InversionMethod as again
    assert again is Method
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from sg2_core import method_factory  # still the class behind a name: no warning
    assert method_factory is not None
    with pytest.raises(ImportError):
        from sg2_core import NoSuchName  # noqa: F401


def test_composition_builds_the_pivot_by_name(g32, toy_methods, targets):
    refine = create_method("toy-refine", generator=g32, pivot="toy-mean-w", steps=4, lr=0.1)
    assert isinstance(refine.pivot, MeanW)
    inv = refine(targets)
    assert inv.space == "w+"
    losses = inv.extras["losses"]
    assert losses.shape == (2, 4) and (losses[:, -1] < 0.9 * losses[:, 0]).all()
    start = refine.pivot(targets).render()
    assert (inv.render() - targets).square().mean() < (start - targets).square().mean()
    with pytest.raises(ValueError, match="unknown method 'toy-nope'"):
        create_method("toy-refine", generator=g32, pivot="toy-nope")


TOY_MODULE = """
from sg2_core import Method

class ToyMethod(Method):
    name, space = "toy-ep", "w+"
    def __init__(self, generator=None, scale=1.0):
        super().__init__(generator)
        self.scale = scale

class NotAMethod:
    name, space = "toy-plain", "w"
    def __init__(self, generator=None):
        self.generator = generator
    def __call__(self, images, init=None):
        raise NotImplementedError
"""


@pytest.fixture
def installed_family(tmp_path, monkeypatch):
    """A fake installed distribution declaring two methods, one of which fails to import."""
    dist_info = tmp_path / "toy_family-0.3.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-family\nVersion: 0.3\n")
    (dist_info / "entry_points.txt").write_text(
        "[sg2_toolkit.methods]\ntoy-ep = toy_family_method:ToyMethod\ntoy-broken = toy_family_broken:Method\n"
        "toy-plain = toy_family_method:NotAMethod\n"
    )
    (tmp_path / "toy_family_method.py").write_text(TOY_MODULE)
    (tmp_path / "toy_family_broken.py").write_text("raise RuntimeError('needs a compiler')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for module in ("toy_family_method", "toy_family_broken"):
        sys.modules.pop(module, None)


def test_entry_points_are_found_without_importing(g32, installed_family):
    assert {"toy-ep", "toy-broken"} <= set(list_methods())
    info = method_info("toy-ep")
    assert (info.source, info.target, info.distribution, info.version) == (
        "entry point",
        "toy_family_method:ToyMethod",
        "toy-family",
        "0.3",
    )
    assert "toy_family_method" not in sys.modules
    assert method_factory("toy-ep").__name__ == "ToyMethod"  # imports the entry point, builds nothing
    method = create_method("toy-ep", generator=g32, scale=2.0)
    assert type(method).__name__ == "ToyMethod" and method.scale == 2.0 and method.generator is g32
    assert "toy_family_method" in sys.modules


def test_an_entry_point_that_is_not_a_method_class_is_refused(g32, installed_family):
    message = r"method 'toy-plain': the class toy_family_method:NotAMethod is not a subclass of sg2_core.Method"
    with pytest.raises(TypeError, match=message):
        create_method("toy-plain", generator=g32)
    with warnings.catch_warnings(record=True) as caught:  # toy-broken warns too
        warnings.simplefilter("always")
        assert "toy-plain" not in list_methods(space="w")
    assert any(re.search(message, str(w.message)) for w in caught)


def test_an_entry_point_that_fails_to_import_names_its_distribution(g32, installed_family):
    with pytest.raises(
        MethodLoadError, match="toy-broken = 'toy_family_broken:Method'.*toy-family 0.3.*RuntimeError: needs a compiler"
    ):
        create_method("toy-broken", generator=g32)


def test_registered_name_shadows_an_entry_point(g32, installed_family, toy_methods):
    register_method("toy-ep")(MeanW)
    try:
        assert method_info("toy-ep").source == "registered"
        assert isinstance(create_method("toy-ep", generator=g32), MeanW)
    finally:
        unregister_method("toy-ep")
    assert method_info("toy-ep").source == "entry point"


def test_check_images(g32, targets):
    check_images(targets, g32)
    check_images(torch.zeros(1, 3, 16, 16), g32, resolution=16)
    bad = {
        r"shape \[N, 3, 32, 32\] with N >= 1, got \[3, 32, 32\]": targets[0],
        r"shape \[N, 3, 32, 32\] with N >= 1, got \[2, 1, 32, 32\]": targets[:, :1],
        r"shape \[N, 3, 32, 32\] with N >= 1, got \[2, 3, 64, 64\]": torch.zeros(2, 3, 64, 64),
        r"shape \[N, 3, 32, 32\] with N >= 1, got \[0, 3, 32, 32\]": targets[:0],
        "float tensor.*torch.uint8": torch.zeros(2, 3, 32, 32, dtype=torch.uint8),
        "NaN or inf": targets.clone().index_fill_(0, torch.tensor([1]), float("nan")),
        r"\[-1, 1\], got values in \[0, 255\]": torch.linspace(0, 255, 2 * 3 * 32 * 32).reshape(2, 3, 32, 32),
        "must be a tensor": targets.numpy(),
    }
    for message, images in bad.items():
        with pytest.raises(ValueError, match=message):
            check_images(images, g32)


# ---- Inversion ----


@pytest.fixture
def wplus(g32):
    """Three W+ codes with per-sample offsets on two layers."""
    gen = torch.Generator().manual_seed(1)
    ws = g32.mapping(torch.randn(3, g32.z_dim, generator=gen)).detach()
    offsets = {
        name: 0.1 * torch.randn(3, *g32.synthesis.layer(name).weight.shape, generator=gen)
        for name in ("b8.conv0", "b32.torgb")
    }
    return Inversion(ws, "w+", g32, offsets, extras={"loss": torch.arange(3.0), "note": "toy"})


def test_render_equals_synthesis_with_the_offsets(g32, wplus):
    expected = g32.synthesis(wplus.latents, noise_mode="const", weight_offsets=wplus.weight_offsets)
    torch.testing.assert_close(wplus.render(), expected)
    plain = g32.synthesis(wplus.latents, noise_mode="const")
    assert (wplus.render() - plain).abs().max() > 1e-3  # the offsets matter


def test_w_inversion_broadcasts(g32):
    w = torch.randn(3, g32.w_dim)
    inv = Inversion(w, "w", g32)
    assert inv.ws.shape == (3, g32.num_ws, g32.w_dim)
    assert all(torch.equal(inv.ws[:, i], w) for i in range(g32.num_ws))


def test_zplus_renders_like_mapping_each_z(g32):
    z = torch.randn(2, g32.num_ws, g32.z_dim)
    inv = Inversion(z, "z+", g32)
    # every entry mapped in one batch against one entry at a time, then rendered: other summation orders. Over 20
    # draws each is within 10 eps * max|w| (codes) and 34 eps * max|image| (renders) of a float64 run (this CPU;
    # AVX2- and SSE-capped kernels): they differ by < 19 and < 60; 48x and 128x leave 2x or more
    eps = torch.finfo(torch.float32).eps
    for i in (0, 3, g32.num_ws - 1):
        expected = g32.mapping(z[:, i])[:, 0]
        torch.testing.assert_close(inv.ws[:, i], expected, rtol=0, atol=48 * eps * expected.abs().max().item())
    same_z = Inversion(z[:, :1].repeat(1, g32.num_ws, 1), "z+", g32)  # one z everywhere is plain G(z)
    expected = g32(z[:, 0], noise_mode="const")
    torch.testing.assert_close(same_z.render(), expected, rtol=0, atol=128 * eps * expected.abs().max().item())


def test_edit(g32, wplus):
    direction = sefa(g32)[0]
    unchanged = wplus.edit(direction, 0.0)
    assert unchanged.space == "w+" and torch.equal(unchanged.ws, wplus.ws)
    assert unchanged.weight_offsets["b8.conv0"] is wplus.weight_offsets["b8.conv0"]
    edited = wplus.edit(direction, 3.0, layers=range(0, 4))
    torch.testing.assert_close(edited.ws[:, :4] - wplus.ws[:, :4], 3.0 * direction.expand(3, 4, -1))
    assert torch.equal(edited.ws[:, 4:], wplus.ws[:, 4:])
    assert (edited[:1].render() - wplus[:1].render()).abs().mean() > 1e-2
    from_w = Inversion(wplus.ws[:, 0], "w", g32).edit(direction, 1.0, layers=[2])
    assert from_w.space == "w+" and torch.equal(from_w.ws[:, 3], wplus.ws[:, 0])


def test_interpolate(g32, wplus):
    other = Inversion(wplus.ws.flip(0), "w+", g32, {k: v.flip(0) for k, v in wplus.weight_offsets.items()})
    for t, expected in ((0.0, wplus), (1.0, other)):
        result = wplus.interpolate(other, t)
        torch.testing.assert_close(result.ws, expected.ws)
        for name, offset in expected.weight_offsets.items():
            torch.testing.assert_close(result.weight_offsets[name], offset)
    mid = wplus.interpolate(other, 0.5)
    torch.testing.assert_close(
        mid.weight_offsets["b8.conv0"], (wplus.weight_offsets["b8.conv0"] + other.weight_offsets["b8.conv0"]) / 2
    )
    no_offsets = Inversion(wplus.ws, "w+", g32)  # counts as zero offsets
    torch.testing.assert_close(
        wplus.interpolate(no_offsets, 0.25).weight_offsets["b32.torgb"], 0.75 * wplus.weight_offsets["b32.torgb"]
    )
    assert no_offsets.interpolate(no_offsets, 0.5).weight_offsets is None
    with pytest.raises(ValueError, match="different generator"):
        wplus.interpolate(Inversion(wplus.ws, "w+", Generator(g32.config)), 0.5)
    with pytest.raises(ValueError, match="must hold 3 samples"):
        wplus.interpolate(other[:2], 0.5)


def test_slicing_keeps_offsets_and_extras_aligned(wplus):
    images = wplus.render()
    part = wplus[1:3]
    assert len(part) == 2 and part.extras["note"] == "toy"
    assert torch.equal(part.extras["loss"], torch.tensor([1.0, 2.0]))
    # slices render as smaller batches (other kernels): over 20 draws each render is within 23 eps * max|image| of a
    # float64 run (this CPU; AVX2- and SSE-capped kernels), so they differ by < 40; 128x leaves 3x
    bound = 128 * torch.finfo(torch.float32).eps * images.abs().max().item()
    torch.testing.assert_close(part.render(), images[1:3], rtol=0, atol=bound)
    torch.testing.assert_close(wplus[-1].render(), images[2:], rtol=0, atol=bound)
    picked = wplus[torch.tensor([2, 0])]
    assert torch.equal(picked.latents, wplus.latents[[2, 0]])
    assert torch.equal(picked.weight_offsets["b32.torgb"], wplus.weight_offsets["b32.torgb"][[2, 0]])
    with pytest.raises(IndexError):
        wplus[3]


def test_cat(g32, wplus):
    whole = Inversion.cat([wplus[:1], wplus[1:]])
    assert whole.space == "w+" and torch.equal(whole.latents, wplus.latents)
    assert torch.equal(whole.extras["loss"], wplus.extras["loss"]) and whole.extras["note"] == "toy"
    assert all(torch.equal(whole.weight_offsets[k], v) for k, v in wplus.weight_offsets.items())
    w_only = Inversion(torch.randn(2, g32.w_dim), "w", g32)
    mixed = Inversion.cat([w_only, wplus])
    assert mixed.space == "w+" and len(mixed) == 5
    assert torch.equal(mixed.ws, torch.cat([w_only.ws, wplus.ws]))
    zeros = torch.zeros(2, *wplus.weight_offsets["b8.conv0"].shape[1:])
    assert torch.equal(mixed.weight_offsets["b8.conv0"], torch.cat([zeros, wplus.weight_offsets["b8.conv0"]]))
    with pytest.raises(ValueError, match="same generator"):
        Inversion.cat([wplus, Inversion(wplus.ws, "w+", Generator(g32.config))])


def test_to_and_detach(g32):
    ws = torch.randn(2, g32.num_ws, g32.w_dim, requires_grad=True)
    inv = Inversion(ws * 2, "w+", g32, extras={"score": ws.sum(dim=(1, 2))})
    detached = inv.detach()
    assert not detached.latents.requires_grad and not detached.extras["score"].requires_grad
    assert torch.equal(inv.to("cpu").latents, inv.latents)


def test_inversion_validation(g32):
    with pytest.raises(ValueError, match="space must be one of"):
        Inversion(torch.randn(2, g32.w_dim), "z", g32)
    with pytest.raises(ValueError, match=r"space 'w\+' must have shape \['N', 8, 64\], got \[2, 64\]"):
        Inversion(torch.randn(2, g32.w_dim), "w+", g32)
    with pytest.raises(ValueError, match=r"space 'z\+' must have shape \['N', 8, 64\]"):
        Inversion(torch.randn(2, 7, g32.z_dim), "z+", g32)
    with pytest.raises(ValueError, match="unknown layer 'b8.conv7'"):
        Inversion(torch.randn(2, g32.w_dim), "w", g32, {"b8.conv7": torch.zeros(2)})
    with pytest.raises(ValueError, match=r"weight_offsets\['b8.conv0'\] must have shape \[2, 96, 96, 3, 3\]"):
        Inversion(torch.randn(2, g32.w_dim), "w", g32, {"b8.conv0": torch.zeros(3, 96, 96, 3, 3)})
    named = Inversion(torch.randn(1, g32.w_dim), "w", g32, {"synthesis.b8.conv0.weight": torch.zeros(1, 96, 96, 3, 3)})
    assert list(named.weight_offsets) == ["b8.conv0"]
