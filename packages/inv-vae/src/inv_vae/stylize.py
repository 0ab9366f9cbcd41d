"""Stylise images the AgileGAN way: ``python -m inv_vae.stylize [IMAGE...] [--style STYLE] [--out DIR]``.

Each image goes through the VAE encoder to its posterior mean ``mu`` in Z+, the source generator's frozen
mapping gives the W+ codes, and the style generator (a transfer-learned copy of the source, see
``python -m inv_vae.train style``) renders them: ``Inversion.render(generator=stylised)``. With no IMAGE on the
demo generator, the first demo test images are stylised with the shipped ``edges`` style. A style generator with
attribute paths (an ``inv_vae.AttributeGenerator``) renders each image with its attribute's path: ``--attribute
NAME`` (one for all, or one per image), or predicted from the input (the default, ``auto``: on the demo the
Fashion-MNIST class group by the shipped feature network, see :mod:`inv_vae.attributes`). Writes
``DIR/grid.png`` (rows: input, the source rendering of the inversion, the stylised image) and one
``<name>_stylized.png`` per input (input | stylised); nothing existing is overwritten without ``--overwrite``.
"""

from __future__ import annotations

import argparse
import sys
import time
from importlib.resources import as_file, files
from pathlib import Path

import torch

from sg2_core import create_method, threads
from sg2_core.images import to_float

from .attribute_generator import AttributeGenerator
from .attributes import resolve_attributes

__all__ = ["SHIPPED_STYLES", "check_style", "load_style", "render_style", "stylize"]

SHIPPED_STYLES = {"edges": "style_edges_fmnist32.safetensors"}  # name -> inv_vae/assets file (demo generator)
DEMO_IMAGES = 8


def check_style(style, generator, where: str = "the style generator") -> None:
    """Refuse a style generator of another architecture than ``generator`` (the encoder's), naming the fields."""
    if isinstance(style, AttributeGenerator):
        theirs = style.config.generator  # its paths are Generators of this config
    elif not hasattr(style, "synthesis") or not hasattr(style, "config"):
        raise ValueError(f"{where} is not an sg2_core Generator ({type(style).__name__})")
    else:
        theirs = style.config
    ours = generator.config
    if ours != theirs:
        differ = [
            f"{k} {getattr(theirs, k)!r} (encoder's generator: {getattr(ours, k)!r})"
            for k in ours.__dataclass_fields__
            if getattr(ours, k) != getattr(theirs, k)
        ]
        raise ValueError(f"{where} has another architecture than the encoder's generator: {'; '.join(differ)}")


def load_style(spec, generator):
    """A style generator from a shipped name (``edges``), a native file holding ``generator``, or a ``.pt`` file
    (an official AgileGAN two-path generator, or a rosinality generator); checked against ``generator``."""
    from sg2_core import load_networks

    if isinstance(spec, str) and spec in SHIPPED_STYLES:
        with as_file(files("inv_vae").joinpath("assets", SHIPPED_STYLES[spec])) as path:
            if not Path(path).is_file():
                raise FileNotFoundError(f"the style {spec!r} is not shipped with this install ({path})")
            nets = load_networks(path)
    else:
        path = Path(spec)
        if not path.is_file():
            raise FileNotFoundError(
                f"--style {spec}: no such file, and not a shipped style ({', '.join(SHIPPED_STYLES)})"
            )
        if path.suffix in (".pt", ".pth"):  # an official AgileGAN / rosinality style generator
            return _checked(_load_pt_style(path), generator, spec)
        nets = load_networks(path)
    if "generator" not in nets:
        raise ValueError(
            f"--style {spec} holds no 'generator' (it has {sorted(nets)}); give the output of "
            "python -m inv_vae.train style"
        )
    return _checked(nets["generator"], generator, spec)


def _checked(style, generator, spec):
    style = style.eval().requires_grad_(False)
    check_style(style, generator, f"the style generator {spec}")
    return style.to(next(generator.parameters()).device)


def _load_pt_style(path: Path):
    """A ``.pt`` style: the two-path DualGenerator (``inv_vae.load_dual``) or a plain rosinality ``g_ema``."""
    from sg2_core.checkpoints import load_checkpoint

    from .dual_checkpoint import is_dual_state_dict, load_dual

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)  # never runs code from the file
    except Exception as error:  # unpickling, zip and weights-only refusals all mean: not a readable style
        raise ValueError(f"--style {path}: not a readable torch checkpoint ({str(error).splitlines()[0]})") from None
    state = obj.get("g_ema", obj) if isinstance(obj, dict) else None
    if isinstance(state, dict) and is_dual_state_dict(state):
        return load_dual(path)
    return load_checkpoint(path).G_ema


@torch.no_grad()
def stylize(method, style, images: torch.Tensor, attributes=None, classifier=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(source rendering, stylised rendering) of ``images`` ``[N, C, R, R]`` in [-1, 1].

    With an :class:`AttributeGenerator` ``style`` each image takes its attribute's path: ``attributes`` (one
    name/index, or one per image) or, when None/'auto', ``classifier(images)`` (see
    :func:`inv_vae.attributes.resolve_attributes`; the demo has a default)."""
    inv = method(images)
    return inv.render(), render_style(inv, style, images, attributes, classifier)


@torch.no_grad()
def render_style(inv, style, images: torch.Tensor, attributes=None, classifier=None) -> torch.Tensor:
    """``inv`` rendered through ``style``; per attribute path for an AttributeGenerator (as :func:`stylize`)."""
    if not isinstance(style, AttributeGenerator):
        if attributes is not None and not (isinstance(attributes, str) and attributes == "auto"):
            raise ValueError("attributes were given but the style generator has no attribute paths")
        return inv.render(generator=style)
    index = torch.tensor(resolve_attributes(style, inv.generator, images, attributes, classifier))
    out = None
    for p in index.unique().tolist():
        rows = (index == p).nonzero().squeeze(1)
        part = inv[rows].render(generator=style.path(p))
        if out is None:
            out = part.new_empty(len(inv), *part.shape[1:])
        out[rows.to(part.device)] = part
    return out


def _read(path: Path, channels: int, resolution: int) -> torch.Tensor:
    import numpy as np
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("L" if channels == 1 else "RGB")
    if image.size != (resolution, resolution):
        raise ValueError(
            f"{path} is {image.width}x{image.height}, the generator makes {resolution}x{resolution} "
            "images; crop and resize it first"
        )
    array = np.asarray(image)
    array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
    return to_float(torch.from_numpy(array.copy()))


def main(argv=None) -> int:
    from sg2_core import demo
    from sg2_core.images import save_grid
    from sg2_core.training import fit

    p = argparse.ArgumentParser(
        prog="python -m inv_vae.stylize", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("images", nargs="*", help="image files (default on the demo: its first test images)")
    p.add_argument(
        "--style",
        default="edges",
        help=f"a style generator file, or a shipped style ({', '.join(SHIPPED_STYLES)}; default edges)",
    )
    p.add_argument("--out", default="stylized", help="output folder (default ./stylized)")
    p.add_argument("--generator", default="demo", help="the encoder's source generator checkpoint, or 'demo'")
    p.add_argument("--encoder", help="AgileGAN encoder file (default: the shipped demo encoder)")
    p.add_argument(
        "--attribute",
        nargs="+",
        help="for a style with attribute paths: a path name for all images, "
        "one per image, or auto (default: predicted; on the demo the Fashion-MNIST class group)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    threads.add_option(p)
    args = p.parse_args(argv)
    try:
        threads.configure(args.threads)
        generator, _ = fit.load_generator(args.generator, "cpu")
        method = create_method("agilegan", generator=generator, weights=args.encoder)
        style = load_style(args.style, generator)
        if args.images:
            paths = [Path(x) for x in args.images]
            images = torch.stack([_read(x, generator.img_channels, generator.img_resolution) for x in paths])
            names = [x.stem for x in paths]
        elif args.generator == "demo":
            images = demo.load_test_images()[0][:DEMO_IMAGES]
            names = [f"demo_test_{i}" for i in range(len(images))]
        else:
            raise ValueError("give IMAGE files (the demo's test images are only for --generator demo)")
        out = Path(args.out)
        targets = [out / "grid.png", *(out / f"{n}_stylized.png" for n in names)]
        held = [str(t) for t in targets if t.exists()]
        if held and not args.overwrite:
            raise ValueError(
                f"{held[0]} exists{f' (and {len(held) - 1} more)' if len(held) > 1 else ''}; pass "
                "--overwrite or choose another --out"
            )
        attributes = (
            None
            if args.attribute in (None, ["auto"])
            else args.attribute[0]
            if len(args.attribute) == 1
            else args.attribute
        )
        if isinstance(style, AttributeGenerator):
            index = resolve_attributes(style, generator, images, attributes)
            attributes = [style.config.attributes[i] for i in index]  # predicted once, also for the timing
        source, stylised = stylize(method, style, images, attributes)
        first = attributes[:1] if isinstance(attributes, list) else attributes
        stylize(method, style, images[:1], first)  # warm-up: the first call pays one-off costs
        start = time.perf_counter()
        stylize(method, style, images[:1], first)
        one = time.perf_counter() - start
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    n = len(images)
    save_grid(torch.cat([images, source.clamp(-1, 1), stylised.clamp(-1, 1)]), targets[0], nrow=n)
    for i, target in enumerate(targets[1:]):
        save_grid(torch.stack([images[i], stylised[i].clamp(-1, 1)]), target, nrow=2)
    paths = f"; attribute paths: {', '.join(attributes)}" if isinstance(style, AttributeGenerator) else ""
    print(
        f"stylised {n} image(s) with {args.style} into {out} (grid.png: input / source rendering / stylised); "
        f"one image took {one * 1000:.1f} ms ({torch.get_num_threads()} threads){paths}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
