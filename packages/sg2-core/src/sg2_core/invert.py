"""Invert your images with any registered method: reconstructions, a side-by-side grid, the inversion file.

    python -m sg2_core.invert photos/ --method sg2-w+ --generator ffhq.pkl --options steps=500 --out inv/
    python -m sg2_core.invert img.png                 # the demo generator and its default method, into ./inversions
    python -m sg2_core.invert faces/ --fit center-crop --rgb --edit sefa:0:3.0 --out inv/

IMAGES are image files (png, jpg, ...), folders of them (recursive), or batch files (.npy, .safetensors
with an 'images' tensor: uint8, or float in [-1, 1]). Images of another size than the method takes are
refused unless --fit says how to bring them to it; grey <-> RGB only with --grey / --rgb.

DIR receives reconstructions/NNNN_<name>.png, edits/<edit>/NNNN_<name>.png (with --edit), grid.png (one row
per image, at most 32: input | reconstruction | edits), inversion.safetensors (Inversion.save: latents,
weight offsets, extras; reload it with sg2_core.Inversion.load(path, G)) and manifest.json (which image is
which index, the method and its options). Nothing there is replaced without --overwrite.

--options k=v: values are JSON literals when they parse (steps=50, lr=0.01, flag=true, pivot="sg2-w"),
else strings (pivot=sg2-w); dotted keys nest (pivot_options.steps=100).
--edit sefa:INDEX:STRENGTH, ganspace:INDEX:STRENGTH, or FILE:INDEX:STRENGTH with FILE a .npy or
.safetensors of directions [k, w_dim] (or one [w_dim]); repeatable.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from sg2_core.devices import resolve_device
from sg2_core.errors import UsageError
from sg2_core.images import FITS, ImageLoadError, ImageShapeError, as_float, prepare_image, read_images, save_grid
from sg2_core.methods.seeds import per_image_seeds

DEFAULT_METHODS = ("sg2-w+", "sg2-w")  # preferred when --method is not given, if installed
GRID_ROWS = 32  # the grid shows the first images only: it is a preview, the PNGs hold them all


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, like every other user error of this command
        raise UsageError(f"{message} (see --help)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m sg2_core.invert", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("images", nargs="+", metavar="IMAGES", help="image files, folders or .npy/.safetensors batches")
    p.add_argument(
        "--out", default="inversions", metavar="DIR", help="output folder, created if missing (default: ./inversions)"
    )
    p.add_argument(
        "--method",
        default=None,
        help=f"a registered method (default: the first installed of {', '.join(DEFAULT_METHODS)})",
    )
    p.add_argument(
        "--generator",
        default=None,
        metavar="CKPT",
        help="a checkpoint (native .safetensors, rosinality .pt, NVIDIA .pkl); default: the demo's",
    )
    p.add_argument(
        "--options",
        nargs="+",
        action="extend",
        default=[],
        metavar="K=V",
        help="method options (on the demo generator they override the method's demo options)",
    )
    p.add_argument("--fit", choices=FITS, default=None, help="bring images of another size to the method's")
    ch = p.add_mutually_exclusive_group()
    ch.add_argument(
        "--grey", "--gray", dest="channels", action="store_const", const=1, help="convert the images to one channel"
    )
    ch.add_argument("--rgb", dest="channels", action="store_const", const=3, help="convert the images to RGB")
    ch.add_argument("--channels", dest="channels", type=int, choices=(1, 3), help="convert to this many channels")
    p.add_argument(
        "--edit",
        action="append",
        default=[],
        metavar="SPEC",
        help="sefa:INDEX:STRENGTH, ganspace:INDEX:STRENGTH or FILE:INDEX:STRENGTH (repeatable)",
    )
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-images", type=int, default=None, metavar="N", help="only the first N images")
    p.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    p.add_argument("--overwrite", action="store_true", help="replace files a previous run left in DIR")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


# --- parsing --------------------------------------------------------------------------------------------------


def parse_options(pairs) -> dict:
    """``['steps=50', 'pivot_options.steps=2', 'pivot="sg2-w"']`` -> nested dict; values JSON when they parse."""
    options: dict = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        parts = key.split(".")
        if not sep or not all(part.isidentifier() for part in parts):
            raise UsageError(f"--options expects key=value with a name as key (e.g. steps=50), got {pair!r}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text  # a bare word: pivot=sg2-w
        node = options
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UsageError(f"--options {pair!r}: {part!r} was already given a value, not options")
        node[parts[-1]] = value
    return options


def merge_options(base: dict, override: dict) -> dict:
    """``override`` on top of ``base``, nested dicts merged key by key (so pivot_options.steps keeps the rest)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_options(merged[key], value)
        else:
            merged[key] = value
    return merged


@dataclass(frozen=True)
class EditSpec:
    source: str  # 'sefa', 'ganspace' or a file path
    index: int
    strength: float

    @property
    def label(self) -> str:
        source = self.source if self.source in ("sefa", "ganspace") else Path(self.source).stem
        return f"{source}{self.index}_{self.strength:+g}"


def parse_edit(text: str) -> EditSpec:
    parts = text.rsplit(":", 2)  # a file path may hold ':' itself
    if len(parts) != 3 or not parts[0]:
        raise UsageError(
            f"--edit expects sefa:INDEX:STRENGTH, ganspace:INDEX:STRENGTH or FILE:INDEX:STRENGTH, got {text!r}"
        )
    source, index, strength = parts
    try:
        index = int(index)
        strength = float(strength)
    except ValueError:
        raise UsageError(f"--edit {text!r}: INDEX must be an integer and STRENGTH a number") from None
    if index < 0:
        raise UsageError(f"--edit {text!r}: INDEX must be >= 0")
    if source not in ("sefa", "ganspace") and not Path(source).is_file():
        raise UsageError(f"--edit {text!r}: {source!r} is neither 'sefa', 'ganspace' nor a direction file")
    return EditSpec(source, index, strength)


def edit_direction(edit: EditSpec, generator) -> torch.Tensor:
    """The ``[w_dim]`` unit direction an edit moves along."""
    from sg2_core.methods.directions import ganspace, sefa

    if edit.source == "sefa":
        vectors = sefa(generator).vectors
    elif edit.source == "ganspace":
        vectors = ganspace(generator).vectors
    else:
        vectors = _read_directions(edit.source)
    if vectors.ndim == 1:
        vectors = vectors[None]
    if vectors.ndim != 2 or vectors.shape[1] != generator.w_dim:
        raise UsageError(
            f"--edit: {edit.source} holds directions of shape {list(vectors.shape)}, expected "
            f"[k, {generator.w_dim}] (the generator's w_dim)"
        )
    if edit.index >= len(vectors):
        raise UsageError(f"--edit: {edit.source} has {len(vectors)} directions, index {edit.index} is out of range")
    return vectors[edit.index].to(torch.float32)


def _read_directions(path: str) -> torch.Tensor:
    import numpy as np

    try:
        if path.lower().endswith(".safetensors"):
            from safetensors.torch import load_file

            tensors = load_file(path)
            key = next((k for k in ("directions", "vectors", "direction") if k in tensors), None)
            if key is None and len(tensors) != 1:
                raise ValueError(f"it holds {sorted(tensors)}, none named 'directions' or 'vectors'")
            vectors = tensors[key] if key else next(iter(tensors.values()))
        elif path.lower().endswith(".npy"):
            vectors = torch.from_numpy(np.load(path, allow_pickle=False))
        else:
            raise ValueError("direction files are .npy or .safetensors")
    except (OSError, ValueError, RuntimeError) as error:
        raise UsageError(f"--edit: cannot read directions from {path}: {error}") from None
    if not vectors.is_floating_point():
        raise UsageError(f"--edit: {path} holds {vectors.dtype} values, expected float directions")
    return vectors


# --- what the run reads and writes ----------------------------------------------------------------------------


def output_names(names: list[str]) -> list[str]:
    """``NNNN_<stem>.png`` per input: the index keeps equal stems from two folders apart and the order visible."""
    width = max(4, len(str(len(names) - 1)))
    stems = []
    for i, name in enumerate(names):
        base, _, item = name.partition("[")  # 'batch.npy[3]' -> 'batch_3'
        stem = Path(base).stem + (f"_{item.rstrip(']')}" if item else "")
        stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)
        stems.append(f"{i:0{width}d}_{stem}.png")
    return stems


def planned_outputs(out: Path, files: list[str], edits: list[EditSpec]) -> list[Path]:
    paths = [out / "grid.png", out / "inversion.safetensors", out / "manifest.json"]
    paths += [out / "reconstructions" / f for f in files]
    paths += [out / "edits" / e.label / f for e in edits for f in files]
    return paths


def check_outputs(out: Path, paths: list[Path], overwrite: bool) -> None:
    """Before any work, creating nothing: DIR can be created and written, and nothing there is replaced
    without --overwrite."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a folder")
    if not overwrite:
        existing = [p for p in paths if p.exists()]
        if existing:
            more = f" and {len(existing) - 3} more" if len(existing) > 3 else ""
            raise UsageError(
                f"{', '.join(map(str, existing[:3]))}{more} already exist; pass --overwrite to replace "
                f"them, or choose another --out"
            )
    for folder in sorted({p.parent for p in paths}):
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"cannot write to --out {out}: {folder} is a file")
        ancestor = next(a for a in (folder, *folder.parents) if a.exists())
        if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
            raise UsageError(f"cannot write to --out {out}: {ancestor} is not a writable folder")


def _write_json_atomic(data, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _jsonable(value):
    try:
        json.dumps(value)
        return value
    except TypeError:
        return repr(value)


# --- the generator and the method -----------------------------------------------------------------------------


def load_generator(checkpoint, device):
    from sg2_core import demo
    from sg2_core.checkpoints import CheckpointError, load_checkpoint

    if checkpoint is None:
        return demo.load_generator(device), "the demo generator (Fashion-MNIST 32x32, shipped)"
    try:
        ckpt = load_checkpoint(checkpoint)
    except (FileNotFoundError, ValueError, CheckpointError) as error:
        raise UsageError(f"cannot load --generator {checkpoint}: {error}") from None
    g = ckpt.generator
    if g is None:
        raise UsageError(f"--generator {checkpoint} holds no generator (only {sorted(ckpt.networks())})")
    return g.to(device).eval().requires_grad_(False), f"{checkpoint} ({ckpt.format})"


def default_method() -> str:
    from sg2_core.methods.registry import list_methods

    known = list_methods()
    for name in DEFAULT_METHODS:
        if name in known:
            return name
    if not known:
        raise UsageError("no inversion method is installed; install a family (e.g. inv-optim) or pass --method")
    return known[0]


class Progress:
    """Two tqdm bars: images done over the run, and the method's steps within the current batch (fed by the
    method's ``callback=`` with ``StepInfo``), one stage after another."""

    def __init__(self, total: int, disable: bool):
        from tqdm.auto import tqdm

        self._tqdm, self.disable, self.total = tqdm, disable, total
        self.images = self.steps = self.stage = None

    def start(self) -> None:
        self.images = self._tqdm(total=self.total, desc="images", unit="img", disable=self.disable, position=0)

    def __call__(self, info) -> None:
        stage = getattr(info, "stage", "") or "steps"
        if self.steps is None or stage != self.stage or info.step < self.steps.n:
            self._close_steps()
            self.stage = stage
            self.steps = self._tqdm(total=info.steps, desc=f"  {stage}", leave=False, disable=self.disable, position=1)
        self.steps.update(max(0, info.step + 1 - self.steps.n))
        postfix = {}
        if getattr(info, "distance", None) is not None:
            postfix["distance"] = f"{info.distance.float().mean().item():.4f}"
        if getattr(info, "active", None) is not None:
            postfix["active"] = f"{int(info.active.sum())}/{info.active.numel()}"
        if postfix:
            self.steps.set_postfix(postfix)

    def batch_done(self, n: int) -> None:
        self._close_steps()
        self.images.update(n)

    def _close_steps(self) -> None:
        if self.steps is not None:
            self.steps.close()
            self.steps, self.stage = None, None

    def close(self) -> None:
        self._close_steps()
        if self.images is not None:
            self.images.close()


# --- the command ----------------------------------------------------------------------------------------------


def run(args) -> Path:
    from sg2_core import Inversion
    from sg2_core.methods.registry import accepts_option, create_method, method_spec

    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.max_images is not None and args.max_images < 1:
        raise UsageError(f"--max-images must be >= 1, got {args.max_images}")
    user_options = parse_options(args.options)
    edits = [parse_edit(e) for e in args.edit]
    name = args.method or default_method()
    try:
        spec = method_spec(name)
    except (ValueError, ImportError) as error:  # unknown (the message lists close matches), or a broken install
        raise UsageError(str(error)) from None
    options = merge_options(spec.demo_options if args.generator is None else {}, user_options)

    try:
        items = read_images(args.images)
    except ImageLoadError as error:
        raise UsageError(str(error)) from None
    items = items[: args.max_images]
    files = output_names([n for n, _ in items])
    out = Path(args.out)
    check_outputs(out, planned_outputs(out, files, edits), args.overwrite)

    device = resolve_device(args.device)
    generator, g_note = load_generator(args.generator, device)
    channels = spec.input_channels or generator.img_channels
    resolution = spec.input_resolution or generator.img_resolution
    if args.channels is not None and args.channels != channels:
        raise UsageError(
            f"--{'grey' if args.channels == 1 else 'rgb'} converts to {args.channels} channel(s) but "
            f"method {name!r} on this generator takes {channels}-channel images"
        )
    try:
        images = [
            as_float(prepare_image(img, n, channels, resolution, args.fit, args.channels is not None))
            for n, img in items
        ]
    except ImageShapeError as error:
        if error.what == "size":
            hint = f"pass --fit {' | '.join(FITS)} to bring it to {resolution}x{resolution}"
        else:
            hint = f"pass --{'grey' if channels == 1 else 'rgb'} to convert it"
        raise UsageError(
            f"image {error.name} is {error.got[0]}x{error.got[1]}x{error.got[2]} (channels x height x "
            f"width), method {name!r} on this generator takes {channels}x{resolution}x{resolution}; "
            f"{hint}"
        ) from None
    directions = [edit_direction(e, generator).to(device) for e in edits]

    progress = Progress(len(images), disable=args.no_progress)
    callback = {"callback": progress} if accepts_option(name, "callback") else {}
    # One seed per image, from its place in the whole run, so the results do not depend on --batch-size.
    seed = options.pop("seed", 0) if accepts_option(name, "seed") else None
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise UsageError(f"--options seed must be an int (image i of the run uses seed + i), got {seed!r}")

    def build(first: int, count: int):
        seeds = {} if seed is None else {"seed": per_image_seeds(seed + first, count)}
        try:
            return create_method(name, generator=generator, **options, **callback, **seeds)
        except (TypeError, ValueError) as error:  # unknown options, bad option values
            message = str(error)
            raise UsageError(message if repr(name) in message else f"method {name!r}: {message}") from None

    method = build(0, min(args.batch_size, len(images)))  # fails on bad options before any output is made

    for folder in {p.parent for p in planned_outputs(out, files, edits)}:
        folder.mkdir(parents=True, exist_ok=True)
    print(f"{name} on {g_note}, {len(images)} images, options {options}, device {device}", file=sys.stderr)
    parts, grid_rows = [], []
    progress.start()
    try:
        for start in range(0, len(images), args.batch_size):
            batch = torch.stack(images[start : start + args.batch_size]).to(device)
            if seed is not None and start:
                method = build(start, len(batch))
            inversion = method(batch).detach()
            with torch.no_grad():
                rendered = [inversion.render()] + [
                    inversion.edit(d, e.strength).render() for d, e in zip(directions, edits)
                ]
            batch_files = files[start : start + len(batch)]
            for i, f in enumerate(batch_files):
                save_grid(rendered[0][i : i + 1], out / "reconstructions" / f, nrow=1)
                for e, edit_images in zip(edits, rendered[1:]):
                    save_grid(edit_images[i : i + 1], out / "edits" / e.label / f, nrow=1)
            if start < GRID_ROWS:
                grid_rows.append(_grid_rows(batch, rendered)[: GRID_ROWS - start])
            parts.append(inversion.to("cpu"))
            progress.batch_done(len(batch))
    finally:
        progress.close()

    result = Inversion.cat(parts) if len(parts) > 1 else parts[0]
    save_grid(torch.cat(grid_rows), out / "grid.png", nrow=2 + len(edits))
    result.save(out / "inversion.safetensors", overwrite=args.overwrite)
    _write_json_atomic(
        {
            "method": name,
            "options": {k: _jsonable(v) for k, v in {**options, **({} if seed is None else {"seed": seed})}.items()},
            "generator": g_note,
            "fit": args.fit,
            "edits": [e.label for e in edits],
            "images": [
                {
                    "index": i,
                    "source": n,
                    "reconstruction": f"reconstructions/{f}",
                    **({"edits": [f"edits/{e.label}/{f}" for e in edits]} if edits else {}),
                }
                for i, ((n, _), f) in enumerate(zip(items, files))
            ],
        },
        out / "manifest.json",
    )
    print(
        f"wrote {len(images)} reconstructions, grid.png, inversion.safetensors and manifest.json to {out}",
        file=sys.stderr,
    )
    return out


def _grid_rows(inputs: torch.Tensor, rendered: list[torch.Tensor]) -> torch.Tensor:
    """``[n * cols, C, R, R]`` uint8 cells: per image its input (at the render size), reconstruction, edits."""
    from sg2_core.images import to_uint8

    size = rendered[0].shape[-1]
    if inputs.shape[-1] != size:  # a method that takes another input size than the generator renders
        inputs = torch.nn.functional.interpolate(inputs, size=(size, size), mode="bicubic", antialias=True)
    if inputs.shape[1] != rendered[0].shape[1]:
        from sg2_core.images import convert_channels

        inputs = convert_channels(inputs, rendered[0].shape[1])
    cells = torch.stack([to_uint8(x.cpu()) for x in (inputs, *rendered)], dim=1)  # [n, cols, C, R, R]
    return cells.reshape(-1, *cells.shape[2:])


def main(argv=None) -> int:
    try:
        run(build_parser().parse_args(argv))
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
