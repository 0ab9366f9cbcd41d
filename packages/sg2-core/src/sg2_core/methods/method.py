"""The contract every inversion method keeps, written once: what it declares, how it is called.

A method is a class whose **class attributes** say what it is, so the registry and the report read them
without building anything::

    name              registry name
    space             'w', 'w+' or 'z+' (an instance may refine it: PTI takes its pivot's)
    trainable         True when ``python -m <family>.train --method NAME`` trains its learned parts
    trainer           'module:function' run by that command (argv list in, exit code out), or None
    demo_options      options for the embedded demo (what ``python -m inv_metrics.report`` passes)
    input_resolution  the image size it takes; None: the generator's (an encoder at 256 px on a 1024 px G)
    input_channels    the channel count it takes; None: the generator's (pSp image-to-image: 1 for sketches)
    input_condition   None for an inversion; for an image-to-image method the name of the condition map it
                      takes instead of the image (``sg2_core.methods.conditions``: 'edges', 'lowres')
    needs             weights it needs, from :data:`WEIGHTS`
    demo_weights      ``(package, file)``: its weights for ``sg2_core.demo``'s generator, shipped in the package's
                      ``assets/`` folder (None: none); :meth:`Method.demo_weights_for` when an option picks the file.
                      ``sg2_core.methods.weights.resolve_weights`` reads it (with ``weights=`` / ``allow_untrained``)
    test_options      cheap options for the conformance check (``sg2_core.testing.check_method``, run by the root
                      test over every installed method on the demo generator): small networks, few steps,
                      ``allow_untrained=True`` where it needs weights; ``{}`` when its defaults are cheap
    full_size_options  options that run it on a full-size generator (FFHQ config F, 1024 px) at its official
                      network sizes with random weights (``allow_untrained=True``; encoders at their 256 px input)
                      and the fewest optimisation steps that run every stage: for the full-scale test and
                      ``python -m sg2_core.bench_methods``; None: not declared
    test_batch_tolerance  how far (max absolute render difference) a batch may lie from its images one at a
                      time under ``test_options`` (optimisers: Adam turns float rounding into lr-sized steps)

Only subclasses of :class:`Method` are methods: the registry refuses anything else.

It is built as ``Method(generator=G, callback=None, **options)`` and called as ``method(images, init=None)``:
``init`` is an existing :class:`~sg2_core.Inversion` of the same images to start from (its latents, and
its weight offsets where the method tunes weights): ReStyle's iterations, PTI's pivot, HyperInverter's
phase II and the collaborative iterator all start this way. ``callback`` receives a :class:`StepInfo`
after each optimisation step. Subclasses implement :meth:`Method.invert`; ``__call__`` checks the images
and ``init`` first, so every method refuses bad input with the same messages. :meth:`Method.showcase` may
add rows to the report's image grid (AgileGAN's stylised renderings).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from sg2_core.images import require_float
from sg2_core.methods.conditions import CONDITIONS
from sg2_core.methods.inversion import SPACES, Inversion
from sg2_core.nn.generator import Generator

WEIGHTS = ("generator", "discriminator", "face-network", "own-weights")
"""What a method may need besides images: the generator (always), its discriminator (adversarial
losses), a face-identity network (ID losses on faces), its own trained file (encoders, hypernetworks)."""


@dataclass
class StepInfo:
    """What a progress callback receives after each step (tensors detached, one value per image or None)."""

    step: int
    steps: int
    distance: torch.Tensor | None = None
    loss: torch.Tensor | None = None
    active: torch.Tensor | None = None  # False for the images that met their stop criterion
    stage: str = ""  # e.g. 'project', 'pivot', 'tune', 'refine', 'iteration'


def generator_device(generator) -> torch.device:
    return next(generator.parameters()).device


def check_device(generator, device) -> torch.device:
    """The device to run on: the generator's; a ``device`` option must agree (the generator is never moved)."""
    own = generator_device(generator)
    if device is not None:
        want = torch.device(device)
        if want.type != own.type or (want.index is not None and want.index != own.index):
            raise ValueError(
                f"device={str(device)!r} but the generator is on {own}; move the generator first "
                f"(generator.to({str(device)!r}))"
            )
    return own


def check_init(init, images: torch.Tensor, generator) -> None:
    """Raises a ValueError unless ``init`` is an Inversion of ``len(images)`` samples for ``generator``."""
    if not isinstance(init, Inversion):
        raise ValueError(f"init must be an Inversion (or None), got {type(init).__name__}")
    if init.generator is not generator:
        raise ValueError("init belongs to a different generator; start from an inversion made with this one")
    if len(init) != images.shape[0]:
        raise ValueError(f"init holds {len(init)} samples but {images.shape[0]} images were given")


class Method:
    """Base class of inversion methods (see the module docstring for the contract)."""

    name: str = ""
    space: str = "w+"
    trainable: bool = False
    trainer: str | None = None
    demo_options: dict = {}
    input_resolution: int | None = None
    input_channels: int | None = None
    input_condition: str | None = None
    needs: tuple[str, ...] = ("generator",)
    demo_weights: tuple[str, str] | None = None
    test_options: dict | None = None  # None: not declared (check_method requires a declaration)
    full_size_options: dict | None = None  # None: not declared (the full-scale test requires a declaration)
    test_batch_tolerance: float = 1e-4

    def __init__(
        self,
        generator: Generator | None = None,
        *,
        callback: Callable[[StepInfo], None] | None = None,
        device: torch.device | str | None = None,
    ):
        if generator is None:
            raise ValueError(f"method {self.name or type(self).__name__!r} needs generator=G")
        if callback is not None and not callable(callback):
            raise ValueError(f"callback must be callable, got {type(callback).__name__}")
        self.generator, self.callback = generator, callback
        self.device = check_device(generator, device)

    def __call__(self, images: torch.Tensor, init: Inversion | None = None) -> Inversion:
        check_images(images, self.generator, self.input_resolution, channels=self.input_channels)
        if init is not None:
            check_init(init, images, self.generator)
        with torch.enable_grad():  # an optimising method works under a caller's torch.no_grad() too
            result = self.invert(images.detach().to(self.device, torch.float32), init)
        if not isinstance(result, Inversion) or len(result) != images.shape[0]:
            raise TypeError(f"{type(self).__name__}.invert must return an Inversion of the {images.shape[0]} images")
        return result

    @classmethod
    def demo_weights_for(cls, **options) -> tuple[str, str] | None:
        """The shipped file for the demo generator under these build options: ``demo_weights``, unless the
        method picks its file by an option (HyperInverter by ``phase1``)."""
        return cls.demo_weights

    def invert(self, images: torch.Tensor, init: Inversion | None) -> Inversion:
        """Invert checked float32 ``images`` on the method's device, starting from ``init`` when given.

        Runs with gradients enabled (for methods that optimise); a feed-forward method wraps its forward
        in ``torch.no_grad()`` itself. Returns detached tensors."""
        raise NotImplementedError

    def showcase(self, inversion: Inversion, images: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Extra renderings of ``inversion`` for the report's grid, ``{row label: images [N, C, H, W]}`` in
        [-1, 1] (e.g. the inputs rendered through a stylised generator); none by default. ``images``: what the
        method inverted (the report passes them), for showcases that read the input itself."""
        return {}

    def report(self, info: StepInfo) -> None:
        """Hands ``info`` to the callback, if any."""
        if self.callback is not None:
            self.callback(info)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, space={self.space!r})"


def check_declaration(cls) -> list[str]:
    """What is wrong with a method class's declared attributes (empty when nothing is)."""
    problems = []
    if getattr(cls, "space", None) not in SPACES:
        problems.append(f"space must be one of {SPACES}, got {getattr(cls, 'space', None)!r}")
    if not isinstance(getattr(cls, "trainable", False), bool):
        problems.append("trainable must be a bool")
    if not isinstance(getattr(cls, "demo_options", {}), dict):
        problems.append("demo_options must be a dict")
    for attr in ("input_resolution", "input_channels"):
        value = getattr(cls, attr, None)
        if value is not None and (not isinstance(value, int) or value < 1):
            problems.append(f"{attr} must be None or a positive int, got {value!r}")
    condition = getattr(cls, "input_condition", None)
    if condition is not None:
        if condition not in CONDITIONS:
            problems.append(f"input_condition must be None or one of {sorted(CONDITIONS)}, got {condition!r}")
    needs = getattr(cls, "needs", ("generator",))
    unknown = [n for n in needs if n not in WEIGHTS] if isinstance(needs, (tuple, list)) else [needs]
    if unknown:
        problems.append(f"needs must name weights from {WEIGHTS}, got {unknown}")
    trainer = getattr(cls, "trainer", None)
    if trainer is not None and (not isinstance(trainer, str) or ":" not in trainer):
        problems.append(f"trainer must be 'module:function' or None, got {trainer!r}")
    if getattr(cls, "trainable", False) and trainer is None:
        problems.append("a trainable method names its trainer ('module:function')")
    demo_weights = getattr(cls, "demo_weights", None)
    if demo_weights is not None and not (
        isinstance(demo_weights, tuple) and len(demo_weights) == 2 and all(isinstance(p, str) for p in demo_weights)
    ):
        problems.append(f"demo_weights must be None or (package, file name), got {demo_weights!r}")
    for attr in ("test_options", "full_size_options"):
        options = getattr(cls, attr, None)
        if options is not None and not (isinstance(options, dict) and all(isinstance(k, str) for k in options)):
            problems.append(f"{attr} must be a dict of option names (or None: not declared), got {options!r}")
    tolerance = getattr(cls, "test_batch_tolerance", 1e-4)
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not tolerance >= 0:
        problems.append(f"test_batch_tolerance must be a number >= 0, got {tolerance!r}")
    return problems


def check_images(images, generator, resolution: int | None = None, channels: int | None = None) -> None:
    """Raises a ValueError unless ``images`` is a finite float batch ``[N, C, R, R]`` in [-1, 1] (for a wrong
    dtype, ``sg2_core.images.ImageDtypeError``).

    ``C`` and ``R`` are the generator's, unless ``channels`` / ``resolution`` name what a method expects
    (an encoder that works at 256 px on a 1024 px generator; a sketch-to-image encoder taking 1 channel).
    Small overshoot (up to 0.5) is allowed, as resampling and generated images go slightly past [-1, 1].
    """
    c, r = channels or generator.img_channels, resolution or generator.img_resolution
    expected = f"[N, {c}, {r}, {r}]"
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"images must be a tensor {expected}, got {type(images).__name__}")
    if images.ndim != 4 or images.shape[0] < 1 or tuple(images.shape[1:]) != (c, r, r):
        raise ValueError(f"images must have shape {expected} with N >= 1, got {list(images.shape)}")
    require_float(images)  # ImageDtypeError, a ValueError
    if not torch.isfinite(images).all():
        raise ValueError("images contain NaN or inf")
    low, high = images.aminmax()
    if low < -1.5 or high > 1.5:
        raise ValueError(
            f"images must lie in [-1, 1], got values in [{low.item():.3g}, {high.item():.3g}] "
            "(images in [0, 255] convert with x / 127.5 - 1)"
        )
