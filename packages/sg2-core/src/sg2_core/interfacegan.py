"""InterFaceGAN boundaries for your own generator and classifier (sg2_core.methods.interfacegan).

    python -m sg2_core.interfacegan sample --generator G.pkl --num 20000 --out samples/
    (score samples/images/*.png in name order with your classifier, save the scores as scores.npy [N])
    python -m sg2_core.interfacegan fit --w samples/w.npy --scores scores.npy --name smile --out smile.safetensors
    python -m sg2_core.interfacegan project smile.safetensors --condition age.safetensors --out smile_not_age.safetensors
    python -m sg2_core.invert photos/ --generator G.pkl --edit interfacegan:smile.safetensors:3 --out inv/

sample writes DIR/w.npy (the sampled w [N, w_dim], float32; z from --seed, without truncation) and
DIR/images/NNNNNN.png (the generator's image of each, constant noise). fit takes the top and bottom
--ratio of the samples by score, holds out --validation of them and fits a linear SVM (scikit-learn:
pip install 'sg2-core[directions]'); NaN scores are left out. --condition (fit or project) makes the
boundary orthogonal to other boundaries: moving along it leaves their attributes alone (to first order).
Boundary files are directions files (sg2_core.methods.directions.save_directions): `--edit FILE:0:STRENGTH` reads them too,
and InterFaceGAN's own .npy boundaries work wherever a boundary file is read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from sg2_core.errors import UsageError
from sg2_core.methods.interfacegan import SKLEARN_HINT


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, like every other user error of this command
        raise UsageError(f"{message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m sg2_core.interfacegan",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = p.add_subparsers(dest="command", required=True, metavar="{sample,fit,project}", parser_class=_Parser)

    sample = commands.add_parser("sample", help="sample w and write the generator's images of them, to be scored")
    sample.add_argument("--generator", default=None, metavar="CKPT", help="a checkpoint (default: the demo's)")
    sample.add_argument("--num", type=int, required=True, metavar="N", help="how many latents")
    sample.add_argument("--seed", type=int, default=0, help="seed of the z draws (default 0)")
    sample.add_argument("--batch-size", type=int, default=32, help="images rendered at once (default 32)")
    sample.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: a GPU if there is one)")
    sample.add_argument("--out", required=True, metavar="DIR", help="folder for w.npy and images/ (new or empty)")

    fit = commands.add_parser("fit", help="fit the boundary of the scores of sampled w")
    fit.add_argument("--w", required=True, metavar="W.npy", help="latents [N, w_dim] (sample's w.npy)")
    fit.add_argument("--scores", required=True, metavar="SCORES.npy", help="one score per latent, [N] or [N, 1]")
    fit.add_argument("--name", default="", help="the attribute's name, kept in the file")
    fit.add_argument("--ratio", type=float, default=0.02, help="share of samples per class (default 0.02)")
    fit.add_argument("--validation", type=float, default=0.3, help="share of each class held out (default 0.3)")
    fit.add_argument("--seed", type=int, default=0, help="seed of the held-out draw (default 0)")
    _add_output(fit)

    project = commands.add_parser("project", help="make a boundary orthogonal to others (conditional editing)")
    project.add_argument("boundary", metavar="BOUNDARY", help="the boundary file to project")
    _add_output(project, condition_required=True)
    return p


def _add_output(p, condition_required: bool = False) -> None:
    p.add_argument(
        "--condition",
        action="append",
        default=[],
        required=condition_required,
        metavar="BOUNDARY",
        help="a boundary file to stay orthogonal to (repeatable)",
    )
    p.add_argument("--out", required=True, metavar="FILE.safetensors", help="the boundary file to write")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")


def _check_out_file(args) -> Path:
    out = Path(args.out)
    if out.suffix.lower() != ".safetensors":
        raise UsageError(f"--out {out}: boundaries are written as .safetensors")
    if out.exists() and not args.overwrite:
        raise UsageError(f"--out {out} exists; pass --overwrite to replace it")
    return out


def _read_boundary(path: str, option: str, w_dim: int | None = None):
    from sg2_core.methods.directions import load_directions

    if not Path(path).is_file():
        raise UsageError(f"{option} {path}: no such file")
    try:
        boundary = load_directions(path)
    except (OSError, ValueError) as error:
        raise UsageError(f"{option} {path}: cannot read a boundary: {error}") from None
    if len(boundary) != 1:
        raise UsageError(f"{option} {path} holds {len(boundary)} directions; a boundary file holds one")
    if w_dim is not None and boundary.vectors.shape[1] != w_dim:
        raise UsageError(f"{option} {path} is a boundary in {boundary.vectors.shape[1]} dimensions, expected {w_dim}")
    if not torch.isfinite(boundary.vectors).all() or boundary.vectors.norm() == 0:
        raise UsageError(f"{option} {path}: the boundary is zero or holds NaN or inf")
    return boundary


def _read_array(path: str, option: str) -> np.ndarray:
    if not Path(path).is_file():
        raise UsageError(f"{option} {path}: no such file")
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise UsageError(f"{option} {path}: not a .npy array ({error})") from None
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise UsageError(f"{option} {path} holds {array.dtype} values, expected numbers")
    return array


def _with_conditions(boundary, condition_files: list[str], name: str):
    """``boundary`` projected off the boundaries in ``condition_files`` (unchanged without any)."""
    from dataclasses import replace

    from sg2_core.methods.interfacegan import project_boundary

    if not condition_files:
        return boundary
    w_dim = boundary.vectors.shape[1]
    conditions = [_read_boundary(f, "--condition", w_dim) for f in condition_files]
    cond = torch.cat([c.vectors for c in conditions])
    try:
        normal = project_boundary(boundary.vectors[0], cond / cond.norm(dim=1, keepdim=True))
    except ValueError as error:
        raise UsageError(f"--condition: {error}") from None
    others = ", ".join(c.names[0] if c.names else Path(f).stem for c, f in zip(conditions, condition_files))
    return replace(
        boundary,
        vectors=normal[None],
        values=torch.full((1,), float("nan")),  # the SVM's accuracy was measured before the projection
        method="interfacegan",
        names=(f"{name or 'boundary'} | {others}",),
    )


def run_sample(args) -> None:
    from sg2_core.devices import resolve_device
    from sg2_core.images import save_image
    from sg2_core.invert import load_generator
    from sg2_core.methods.directions import sample_w

    if args.num < 1 or args.batch_size < 1:
        raise UsageError(f"--num and --batch-size must be >= 1, got {args.num} and {args.batch_size}")
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"--out {out} is not an empty folder; pick a new one")
    device = resolve_device(args.device)
    generator, note = load_generator(args.generator, device)
    w = sample_w(generator, args.num, args.seed)
    (out / "images").mkdir(parents=True, exist_ok=True)
    np.save(out / "w.npy", w.cpu().numpy().astype(np.float32))
    width = max(6, len(str(args.num - 1)))
    with torch.no_grad():
        for start in range(0, args.num, args.batch_size):
            chunk = w[start : start + args.batch_size]
            images = generator.synthesis(chunk[:, None].repeat(1, generator.num_ws, 1), noise_mode="const")
            for i, image in enumerate(images.cpu()):
                save_image(image, out / "images" / f"{start + i:0{width}d}.png")
    print(f"wrote {out}/w.npy and {args.num} images in {out}/images (generator: {note}); score them in name order")


def run_fit(args) -> None:
    from sg2_core.methods.directions import save_directions
    from sg2_core.methods.interfacegan import fit_boundary

    out = _check_out_file(args)
    w = _read_array(args.w, "--w")
    scores = _read_array(args.scores, "--scores")
    if w.ndim != 2:
        raise UsageError(f"--w {args.w} holds shape {list(w.shape)}, expected latents [N, w_dim]")
    try:
        boundary = fit_boundary(w, scores, args.ratio, args.validation, args.seed, name=args.name)
    except ValueError as error:
        raise UsageError(f"{error}") from None
    accuracy = float(boundary.values[0])
    boundary = _with_conditions(boundary, args.condition, args.name)
    save_directions(boundary, out)
    held_out = "nothing held out" if accuracy != accuracy else f"held-out accuracy {accuracy:.3f}"
    print(f"wrote {out}: boundary {boundary.names[0] if boundary.names else ''!r} from {len(w)} samples, {held_out}")


def run_project(args) -> None:
    from sg2_core.methods.directions import save_directions

    out = _check_out_file(args)
    boundary = _read_boundary(args.boundary, "BOUNDARY")
    boundary = _with_conditions(boundary, args.condition, boundary.names[0] if boundary.names else "")
    save_directions(boundary, out)
    print(f"wrote {out}: {boundary.names[0]!r}")


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        {"sample": run_sample, "fit": run_fit, "project": run_project}[args.command](args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ImportError as error:
        if str(error) != SKLEARN_HINT:
            raise
        print(f"error: {error}", file=sys.stderr)  # what to install
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
