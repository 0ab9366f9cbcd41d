"""The conformance check, run by the repository's root test over every installed method.

    from sg2_core import demo, list_methods
    from sg2_core.testing import check_method

    @pytest.mark.parametrize("name", list_methods())
    def test_method_keeps_the_contract(name):
        check_method(name, demo.load_generator(), demo.load_test_images()[0][:3])

(timm runs every model test over ``list_models()``; this is the same idea.) The method is built and run
several times, with the cheap options its class declares (``test_options``, ``test_batch_tolerance``) unless
others are given. Each failed property raises an AssertionError saying which.
"""

from __future__ import annotations

import re

import torch

from sg2_core.methods.inversion import SPACES, Inversion
from sg2_core.methods.method import WEIGHTS
from sg2_core.methods.registry import accepts_option, create_method, method_spec
from sg2_core.methods.seeds import per_image_seeds

__all__ = ["check_method"]


def _fail(name: str, what: str) -> AssertionError:
    return AssertionError(f"method {name!r}: {what}")


def _weights_state(generator) -> list[torch.Tensor]:
    return [t.detach().clone() for t in generator.state_dict().values()]


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.double() - b.double()).abs().max().item()


def check_method(
    name: str,
    generator,
    images: torch.Tensor,
    *,
    options: dict | None = None,
    batch_tolerance: float | None = None,
    init_tolerance: float = 1e-6,
) -> None:
    """Checks that method ``name`` keeps the contract of ``sg2_core.Method`` on ``images`` (N >= 2).

    ``options`` and ``batch_tolerance`` default to what the class declares (``test_options``,
    ``test_batch_tolerance``). The properties, in order:

    - its class declares valid attributes (``method_spec``), readable without building it, among them
      ``test_options``: a dict of options its constructor takes;
    - the built method has the declared name and a space in ``SPACES`` (the declared one, or its own
      refinement), and accepts ``callback=``;
    - the result is an ``Inversion`` of the N images for ``generator``, finite, detached, on the images'
      device, in the generator's dtype, with the method's space;
    - a batch equals its images one at a time: the renders differ by at most ``batch_tolerance``
      (the max absolute difference in [-1, 1] images); a method with a ``seed`` option gets one seed per
      image (``seed=[s0, s1, ...]``), as randomness must follow the image, not its place in the batch;
    - the same options (the same seed) give bitwise the same codes;
    - bad images get the registry's errors (``ValueError`` naming shape, dtype, NaN, range), and a bad
      ``init`` (another batch size, not an Inversion) too;
    - ``init=`` is honoured: started from another inversion, the result differs from the one without it
      by more than ``init_tolerance``;
    - the result renders, edits along a W direction, interpolates, slices and concatenates;
    - ``showcase(result, images)`` gives ``{str label: images [N, C, H, W]}`` (none by default);
    - no gradient leaks into the generator: its weights, ``requires_grad`` flags and ``.grad`` are as before.
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[0] < 2:
        raise ValueError("check_method needs a batch of at least 2 images [N, C, H, W]")
    spec = method_spec(name)
    if spec.space not in SPACES:
        raise _fail(name, f"declares space {spec.space!r}, not one of {SPACES}")
    if not set(spec.needs) <= set(WEIGHTS) or "generator" not in spec.needs:
        raise _fail(name, f"needs {spec.needs} must name weights from {WEIGHTS}, the generator included")
    _check_test_options(name, spec)
    options = dict(spec.test_options if options is None else options)
    batch_tolerance = spec.test_batch_tolerance if batch_tolerance is None else batch_tolerance

    weights_before = _weights_state(generator)
    flags_before = [p.requires_grad for p in generator.parameters()]
    steps = []
    method = create_method(name, generator=generator, callback=steps.append, **options)
    if getattr(method, "name", None) != name:
        raise _fail(name, f"the built method calls itself {getattr(method, 'name', None)!r}")
    if method.space not in SPACES:
        raise _fail(name, f"the built method's space {method.space!r} is not one of {SPACES}")

    n = images.shape[0]
    result = method(images)
    _check_result(name, result, method, generator, images, n)
    for info in steps:
        if not (hasattr(info, "step") and hasattr(info, "steps")):
            raise _fail(name, f"its callback received {type(info).__name__}, not a StepInfo")

    # One at a time, as a batch (a method with randomness takes one seed per image: seed=[...]).
    seeded = accepts_option(name, "seed")
    seeds = per_image_seeds(options.get("seed", 0) + 100, n) if seeded else None
    batch = create_method(name, generator=generator, **options, **({"seed": seeds} if seeded else {}))(images)
    with torch.no_grad():  # also shows that an optimising method runs under a caller's no_grad
        batch_render = batch.render()
        single = torch.cat(
            [
                create_method(name, generator=generator, **options, **({"seed": seeds[i : i + 1]} if seeded else {}))(
                    images[i : i + 1]
                ).render()
                for i in range(n)
            ]
        )
    diff = _max_diff(batch_render, single)
    if diff > batch_tolerance:
        raise _fail(
            name,
            f"a batch renders differently from its images one at a time (max |diff| {diff:.3g} > "
            f"batch_tolerance {batch_tolerance:g})",
        )

    # Same options, same numbers.
    again = create_method(name, generator=generator, **options)(images)
    if not torch.equal(again.latents, result.latents):
        raise _fail(
            name, f"the same options gave other codes (max |diff| {_max_diff(again.latents, result.latents):.3g})"
        )

    _check_refusals(name, method, images)

    # init= is honoured: start from codes that are not the method's own.
    with torch.no_grad():
        z = torch.randn(n, generator.z_dim, generator=torch.Generator().manual_seed(7)).to(images.device)
        other = Inversion(generator.mapping(z, truncation_psi=0.5)[:, 0], "w", generator)
    started = method(images, init=other)
    _check_result(name, started, method, generator, images, n)
    if _max_diff(started.ws, result.ws) <= init_tolerance and _offsets_equal(started, result):
        raise _fail(name, "init= was ignored: started from another inversion, it returned the same result")

    _check_uses(name, result, generator)
    _check_showcase(name, method, result, images, n)

    after = _weights_state(generator)
    if any(not torch.equal(a, b) for a, b in zip(weights_before, after)):
        raise _fail(name, "it changed the generator's weights")
    if [p.requires_grad for p in generator.parameters()] != flags_before:
        raise _fail(name, "it changed the generator's requires_grad flags")
    if any(p.grad is not None for p in generator.parameters()):
        raise _fail(name, "it left gradients in the generator's .grad")


def _check_test_options(name, spec) -> None:
    if spec.test_options is None:
        raise _fail(
            name,
            "declares no test_options: the cheap options its conformance check runs with, at class level "
            "(e.g. test_options = {'steps': 2}, or {} when its defaults are cheap)",
        )
    unknown = sorted(k for k in spec.test_options if not accepts_option(name, k))
    if unknown:
        raise _fail(name, f"test_options names options its constructor does not take: {unknown}")


def _check_showcase(name, method, result, images, n) -> None:
    rows = method.showcase(result, images)
    if not isinstance(rows, dict):
        raise _fail(name, f"showcase returned a {type(rows).__name__}, not a dict {{label: images}}")
    for label, shown in rows.items():
        if not isinstance(label, str) or not isinstance(shown, torch.Tensor) or shown.ndim != 4 or shown.shape[0] != n:
            got = list(shown.shape) if isinstance(shown, torch.Tensor) else type(shown).__name__
            raise _fail(name, f"showcase row {label!r} must be images [{n}, C, H, W] under a str label, got {got}")


def _offsets_equal(a: Inversion, b: Inversion) -> bool:
    oa, ob = a.weight_offsets or {}, b.weight_offsets or {}
    return set(oa) == set(ob) and all(torch.equal(oa[k], ob[k]) for k in oa)


def _check_result(name, result, method, generator, images, n) -> None:
    if not isinstance(result, Inversion):
        raise _fail(name, f"returned a {type(result).__name__}, not an Inversion")
    if len(result) != n or result.generator is not generator:
        raise _fail(
            name,
            f"returned an Inversion of {len(result)} samples for another generator"
            if result.generator is not generator
            else f"returned {len(result)} samples for {n} images",
        )
    if result.space != method.space:
        raise _fail(name, f"returned space {result.space!r} but declares {method.space!r}")
    dtype = next(generator.parameters()).dtype
    conditions = [t for c in (result.feature_conditions or {}).values() for _, t in c.parts()]
    tensors = [result.latents, *(result.weight_offsets or {}).values(), *conditions]
    for t in tensors:
        if t.device != images.device:
            raise _fail(name, f"returned tensors on {t.device}, the images are on {images.device}")
        if t.dtype != dtype:
            raise _fail(name, f"returned {t.dtype} tensors for a {dtype} generator")
        if t.requires_grad:
            raise _fail(name, "returned tensors that require grad (detach them)")
        if not torch.isfinite(t).all():
            raise _fail(name, "returned NaN or inf")


def _check_refusals(name, method, images) -> None:
    bad = {
        "a 3-d tensor (shape)": (images[0], "shape"),
        "uint8 images (dtype)": (((images[:1] + 1) * 127.5).to(torch.uint8), "float"),
        "NaN": (images[:1].clone().fill_(float("nan")), "NaN"),
        "values in [0, 255] (range)": (images[:1] * 0 + 200.0, r"\[-1, 1\]"),
    }
    for label, (x, pattern) in bad.items():
        try:
            method(x)
        except ValueError as error:
            if not re.search(pattern, str(error)):
                raise _fail(name, f"{label}: the error {str(error)!r} does not name the problem") from None
        else:
            raise _fail(name, f"{label}: no ValueError")
    for label, init in {"an init of another batch size": "short", "an init that is not an Inversion": "text"}.items():
        try:
            method(images, init=images if init == "text" else _short_init(method.generator, images))
        except ValueError:
            pass
        else:
            raise _fail(name, f"{label}: no ValueError")


def _short_init(generator, images) -> Inversion:
    w = generator.mapping.w_avg.detach().to(images.device).expand(images.shape[0] - 1, -1).clone()
    return Inversion(w, "w", generator)


def _check_uses(name, result, generator) -> None:
    from sg2_core.methods.directions import sefa

    with torch.no_grad():
        rendered = result.render()
        expected = [len(result), generator.img_channels, generator.img_resolution, generator.img_resolution]
        if list(rendered.shape) != expected or not torch.isfinite(rendered).all():
            raise _fail(name, f"its inversion renders {list(rendered.shape)} (or non-finite), expected {expected}")
        direction = sefa(generator).vectors[0].to(result.latents.device)
        edited = result.edit(direction, 1.0).render()
        if not torch.isfinite(edited).all() or _max_diff(edited, rendered) == 0:
            raise _fail(name, "an edit along a SeFa direction rendered the same (or non-finite) images")
        mid = result.interpolate(_reversed(result), 0.5)
        if not torch.isfinite(mid.render()).all():
            raise _fail(name, "an interpolation rendered non-finite images")
        parts = Inversion.cat([result[0], result[1:]])
        if _max_diff(parts.render(), rendered) > 1e-5:
            raise _fail(name, "slicing and concatenating changed its renders")


def _reversed(inv: Inversion) -> Inversion:
    return Inversion.cat([inv[i] for i in reversed(range(len(inv)))])
