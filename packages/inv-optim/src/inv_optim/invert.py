"""Deprecated: use ``python -m sg2_core.invert`` (any method, image files and folders, edits, a grid).

    python -m inv_optim.invert --method sg2-w+ --n 8 --steps 200 --out inversions.safetensors

still works for one version: it runs ``sg2_core.invert`` on the demo test images (or ``--images``, a
safetensors file with 'images'), in one batch, and writes its folder next to ``--out`` (``inversions/``
for ``inversions.safetensors``: the inversion file is ``inversions/inversion.safetensors``, read it with
``sg2_core.Inversion.load(path, G)``).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from importlib.resources import as_file, files
from pathlib import Path


def translate(args, demo_images) -> list[str]:
    """The ``sg2_core.invert`` arguments doing what the old options asked for."""
    out = Path(args.out).with_suffix("") if args.out else Path(tempfile.mkdtemp(prefix="inv_optim_invert-"))
    argv = [
        str(args.images or demo_images),
        "--method",
        args.method,
        "--max-images",
        str(args.n),
        "--batch-size",
        str(args.n),
        "--device",
        args.device,
        "--out",
        str(out),
    ]
    options = [f"steps={args.steps}"] if args.steps is not None else []
    options += [f"stop_distance={args.stop_distance}"] if args.stop_distance is not None else []
    options += [f"distance={args.distance}"] if args.distance else []
    return argv + (["--options", *options] if options else [])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m inv_optim.invert", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--method", default="sg2-w", help="any registered method")
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--images", default=None, help="safetensors file with 'images' [N, C, R, R]")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--stop-distance", type=float, default=None)
    parser.add_argument("--distance", default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=None, help="FILE.safetensors: the results go to the folder FILE/")
    args = parser.parse_args(argv)
    from sg2_core import demo
    from sg2_core.invert import main as invert_main

    with as_file(files("sg2_core").joinpath("assets", demo.TEST_IMAGES)) as demo_images:
        new_argv = translate(args, demo_images)
        print(
            f"inv_optim.invert is deprecated and will be removed; this runs: python -m sg2_core.invert "
            f"{shlex.join(new_argv)}",
            file=sys.stderr,
        )
        return invert_main(new_argv)


if __name__ == "__main__":
    sys.exit(main())
