"""Command line of the report: ``python -m inv_metrics.report [GENERATOR] [--images FOLDER] ...``."""

from __future__ import annotations

import argparse
import sys

from sg2_core import threads

from .inputs import ReportInputError, demo_images, folder_images, load_generator
from .options import resolve_options
from .report import run_report

DEFAULT_DEMO_IMAGES = 32


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m inv_metrics.report",
        description="Run every registered inversion method (or --methods) under one protocol and write "
        "report.json, report.md, report.html, grid.png and tradeoff.png. With no arguments: the shipped demo "
        "generator, the first 32 shipped test images, every installed method with its demo options.",
    )
    p.add_argument(
        "generator",
        nargs="?",
        help="generator checkpoint (any format sg2_core.load_checkpoint reads); default: the shipped demo generator",
    )
    p.add_argument(
        "--images",
        help="image folder (or zip / array file) with the generator's exact size and "
        "channels; default: the shipped 1x32x32 test images",
    )
    p.add_argument(
        "--num-images",
        type=int,
        help=f"use the first N images (default: {DEFAULT_DEMO_IMAGES} of the shipped images, all of a folder)",
    )
    p.add_argument("--methods", help="comma-separated method names (default: every registered method)")
    p.add_argument(
        "--options",
        action="append",
        default=[],
        metavar="METHOD:KEY=VALUE",
        help="a method option (repeatable; values are Python literals or strings; dotted keys reach "
        "nested dicts, e.g. pti:pivot_options.steps=50)",
    )
    p.add_argument(
        "--no-demo-options",
        action="store_true",
        help="ignore the methods' demo_options on the shipped images (use their full defaults)",
    )
    p.add_argument("--lpips-weights", help="torchvision AlexNet file for LPIPS (default: the torch hub cache)")
    p.add_argument("--inception-weights", help="torch-fidelity Inception file for FID/KID (default: hub cache)")
    p.add_argument("--device", help="e.g. cpu or cuda:0 (default: the GPU when there is one, else cpu)")
    threads.add_option(p)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--edit-strength", type=float, default=3.0)
    p.add_argument("--grid-images", type=int, default=8, help="images per grid row")
    p.add_argument("--out", default="report", help="output folder (default: ./report)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.num_images is not None and args.num_images < 1:
            raise ReportInputError(f"--num-images must be >= 1, got {args.num_images}")
        if args.batch_size < 1:
            raise ReportInputError(f"--batch-size must be >= 1, got {args.batch_size}")
        if args.grid_images < 1:
            raise ReportInputError(f"--grid-images must be >= 1, got {args.grid_images}")
        from sg2_core import list_methods
        from sg2_core.devices import resolve_device

        device = resolve_device(args.device)
        registered = list_methods()
        methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else registered
        unknown = [m for m in methods if m not in registered]
        if unknown:
            raise ReportInputError(
                f"--methods: unknown method(s) {', '.join(unknown)}; registered: "
                f"{', '.join(registered) or 'none (install a family, e.g. inv-optim)'}"
            )
        generator, g_source = load_generator(args.generator, device)
        problems = []
        if args.images is None:
            images, i_source = demo_images(generator, args.num_images or DEFAULT_DEMO_IMAGES)
        else:
            images, i_source, problems = folder_images(args.images, generator, args.num_images)
        use_demo = args.images is None and not args.no_demo_options
        options, option_problems = resolve_options(methods, args.options, use_demo)
    except (ReportInputError, ValueError) as error:
        print(f"inv_metrics.report: error: {error}", file=sys.stderr)
        return 2
    setup = {
        "generator": g_source,
        "images": i_source,
        "options": "demo_options of each method" + (" + --options" if args.options else "")
        if use_demo
        else ("--options" if args.options else "each method's defaults"),
    }
    threads.configure(args.threads)
    report = run_report(
        generator,
        images,
        args.out,
        methods=methods,
        options=options,
        batch_size=args.batch_size,
        device=device,
        lpips_weights=args.lpips_weights,
        inception_weights=args.inception_weights,
        edit_strength=args.edit_strength,
        grid_images=args.grid_images,
        progress=not args.no_progress,
        setup=setup,
        problems=problems + option_problems,
    )
    print(open(f"{args.out}/report.md").read())
    print(
        f"inv_metrics.report: wrote {args.out}/report.html, report.md, report.json, grid.png"
        + (", tradeoff.png" if report.get("tradeoff") else "")
        + f" in {report['wall_seconds']:.1f} s",
        file=sys.stderr,
    )
    failed = [row for row in report["rows"] if row["error"]]
    if methods and len(failed) == len(report["rows"]):
        print(
            f"inv_metrics.report: error: no method produced a row; all {len(failed)} failed: "
            + "; ".join(f"{row['method']}: {row['error']}" for row in failed),
            file=sys.stderr,
        )
        return 1
    if not methods:
        print(
            "inv_metrics.report: error: no inversion method is registered (install a family, e.g. inv-optim)",
            file=sys.stderr,
        )
        return 1
    if failed:
        print(
            f"inv_metrics.report: {len(failed)} of {len(report['rows'])} method(s) failed: "
            f"{', '.join(row['method'] for row in failed)} (their rows say why)",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
