"""Invert your images with any registered method: reconstructions, a side-by-side grid, the inversion file.

    python -m sg2_core.invert photos/ --method sg2-w+ --generator ffhq.pkl --options steps=500 --out inv/
    python -m sg2_core.invert img.png                 # the demo generator and its default method, into ./inversions
    python -m sg2_core.invert faces/ --fit center-crop --rgb --edit sefa:0:3.0 --out inv/
    python -m sg2_core.invert photos/ --align --paste-back --method e4e --generator ffhq.pkl --edit sefa:0:3 --out inv/
    torchrun --nproc_per_node 4 -m sg2_core.invert photos/ ... --out inv/    # four processes share the images

IMAGES are image files (png, jpg, ...), folders of them (recursive), or batch files (.npy, .safetensors
with an 'images' tensor: uint8, or float in [-1, 1]). Images of another size than the method takes are
refused unless --fit says how to bring them to it; grey <-> RGB only with --grey / --rgb.

DIR receives reconstructions/NNNN_<name>.png, edits/<edit>/NNNN_<name>.png (with --edit), grid.png (one row
per image, at most 32: input | reconstruction | edits), inversion.safetensors (Inversion.save: latents,
weight offsets, extras; reload it with sg2_core.Inversion.load(path, G)) and manifest.json (which image is
which index, the method and its options). Nothing there is replaced without --overwrite.

--align cuts every face out of each photo (sg2_core.faces: dlib, the FFHQ recipe) into aligned/NNNN_<photo>_face<k>.png
and inverts those; the inversion file keeps each face's photo and quad (extras face_photo, face_index,
face_quad, face_photos), so sg2_core.faces.paste_back works from it later. --paste-back writes
pasted/reconstructions/ and pasted/edits/<edit>/: each photo at its own size with all its faces pasted back.
The grid then shows photo | aligned | reconstruction | edits | pasted.

Each finished batch leaves its inversion in parts/part-NNNNN.safetensors: --resume continues a run that was
stopped (same arguments), skipping its finished batches. Under torchrun the processes take turns over the
batches and write the files one process would; the last to finish writes inversion.safetensors and the rest.

--options k=v: values are JSON literals when they parse (steps=50, lr=0.01, flag=true, pivot="sg2-w"),
else strings (pivot=sg2-w); dotted keys nest (pivot_options.steps=100).
--edit sefa:INDEX:STRENGTH, ganspace:INDEX:STRENGTH, or FILE:INDEX:STRENGTH with FILE a .npy or
.safetensors of directions [k, w_dim] (or one [w_dim]); interfacegan:FILE:STRENGTH moves STRENGTH along the
unit normal of the one boundary in FILE (python -m sg2_core.interfacegan fits them; InterFaceGAN's own .npy
boundaries work too); repeatable.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from sg2_core import invert_faces, invert_parts, threads
from sg2_core.devices import resolve_device
from sg2_core.errors import UsageError
from sg2_core.images import (
    FITS,
    ImageLoadError,
    ImageShapeError,
    as_float,
    convert_channels,
    fit_image,
    prepare_image,
    read_image,
    read_images,
    save_grid,
    save_image,
    to_uint8,
)
from sg2_core.invert_faces import Face
from sg2_core.training.run import world

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
        help="sefa:INDEX:STRENGTH, ganspace:INDEX:STRENGTH, FILE:INDEX:STRENGTH or interfacegan:FILE:STRENGTH "
        "(repeatable)",
    )
    faces = p.add_argument_group("faces (sg2_core.faces; needs dlib: pip install 'sg2-core[faces]')")
    faces.add_argument("--align", action="store_true", help="invert the aligned faces of each photo (FFHQ recipe)")
    faces.add_argument(
        "--faces",
        type=invert_faces.parse_faces,
        default=None,
        metavar="all|largest|N",
        help="which faces of a photo (default: all; N: the N largest)",
    )
    faces.add_argument("--landmarks", default=None, metavar="FILE", help="dlib's 68-point landmark model file")
    faces.add_argument(
        "--face-size", type=int, default=None, metavar="S", help="aligned/ crops' size (default: the method's input)"
    )
    faces.add_argument("--paste-back", action="store_true", help="paste the faces back into their photos (pasted/)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-images", type=int, default=None, metavar="N", help="only the first N images (photos)")
    p.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    threads.add_option(p)
    again = p.add_mutually_exclusive_group()
    again.add_argument("--overwrite", action="store_true", help="replace files a previous run left in DIR")
    again.add_argument("--resume", action="store_true", help="continue the stopped run in DIR (same arguments)")
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
    source: str  # 'sefa', 'ganspace', 'interfacegan' or a directions file's path
    index: int
    strength: float
    boundary: str | None = None  # interfacegan: the boundary file

    @property
    def label(self) -> str:
        if self.source == "interfacegan":
            return f"interfacegan_{Path(self.boundary).stem}_{self.strength:+g}"
        source = self.source if self.source in ("sefa", "ganspace") else Path(self.source).stem
        return f"{source}{self.index}_{self.strength:+g}"


EDIT_FORMS = "sefa:INDEX:STRENGTH, ganspace:INDEX:STRENGTH, FILE:INDEX:STRENGTH or interfacegan:FILE:STRENGTH"


def parse_edit(text: str) -> EditSpec:
    if text.startswith("interfacegan:"):
        return _parse_interfacegan_edit(text)
    parts = text.rsplit(":", 2)  # a file path may hold ':' itself
    if len(parts) != 3 or not parts[0]:
        raise UsageError(f"--edit expects {EDIT_FORMS}, got {text!r}")
    source, index, strength = parts
    try:
        index = int(index)
        strength = float(strength)
    except ValueError:
        raise UsageError(f"--edit {text!r}: INDEX must be an integer and STRENGTH a number") from None
    if not math.isfinite(strength):
        raise UsageError(f"--edit {text!r}: STRENGTH must be a finite number, got {strength}")
    if index < 0:
        raise UsageError(f"--edit {text!r}: INDEX must be >= 0")
    if source not in ("sefa", "ganspace") and not Path(source).is_file():
        raise UsageError(f"--edit {text!r}: {source!r} is neither 'sefa', 'ganspace' nor a direction file")
    return EditSpec(source, index, strength)


def _parse_interfacegan_edit(text: str) -> EditSpec:
    boundary, _, strength = text.removeprefix("interfacegan:").rpartition(":")  # the path may hold ':'
    if not boundary:
        raise UsageError(f"--edit {text!r}: expected interfacegan:FILE:STRENGTH")
    try:
        strength = float(strength)
    except ValueError:
        raise UsageError(f"--edit {text!r}: STRENGTH must be a number") from None
    if not math.isfinite(strength):
        raise UsageError(f"--edit {text!r}: STRENGTH must be a finite number, got {strength}")
    if not Path(boundary).is_file():
        raise UsageError(f"--edit {text!r}: no boundary file {boundary!r}")
    return EditSpec("interfacegan", 0, strength, boundary)


def edit_direction(edit: EditSpec, generator) -> torch.Tensor:
    """The ``[w_dim]`` unit direction an edit moves along."""
    from sg2_core.methods.directions import ganspace, sefa

    if edit.source == "sefa":
        vectors = sefa(generator).vectors
    elif edit.source == "ganspace":
        vectors = ganspace(generator).vectors
    elif edit.source == "interfacegan":
        return _boundary_normal(edit.boundary, generator)
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
    if not torch.isfinite(vectors[edit.index]).all():
        raise UsageError(f"--edit: direction {edit.index} of {edit.source} contains NaN or inf")
    return vectors[edit.index].to(torch.float32)


def _read_directions(path: str) -> torch.Tensor:
    from sg2_core.methods.directions import load_directions

    try:
        return load_directions(path).vectors
    except (OSError, ValueError, RuntimeError) as error:
        raise UsageError(f"--edit: cannot read directions from {path}: {error}") from None


def _boundary_normal(path: str, generator) -> torch.Tensor:
    """The unit normal of the one boundary in ``path`` (InterFaceGAN's edit is ``w + strength * normal``)."""
    vectors = _read_directions(path)
    if len(vectors) != 1:
        raise UsageError(
            f"--edit: {path} holds {len(vectors)} directions, an InterFaceGAN boundary file holds one; "
            f"pick one with {path}:INDEX:STRENGTH"
        )
    if vectors.shape[1] != generator.w_dim:
        raise UsageError(
            f"--edit: {path} is a boundary in {vectors.shape[1]} dimensions, the generator's w_dim is {generator.w_dim}"
        )
    normal = vectors[0].to(torch.float64)
    if not torch.isfinite(normal).all() or normal.norm() == 0:
        raise UsageError(f"--edit: the boundary in {path} is zero or contains NaN or inf")
    return (normal / normal.norm()).to(torch.float32)


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


def planned_outputs(
    out: Path, files: list[str], edits: list[EditSpec], batches: int, photo_files=None, paste_back=False
) -> list[Path]:
    """Every file the run writes: ``files`` are the images' PNG names; ``photo_files`` the photos' (--align)."""
    folders = result_folders(edits)
    paths = [out / "grid.png", out / "inversion.safetensors", out / "manifest.json", invert_parts.record_path(out)]
    paths += [invert_parts.part_path(out, k) for k in range(batches)]
    paths += [out / folder / f for folder in folders for f in files]
    if photo_files is not None:
        paths += [out / "aligned" / f for f in files]
        if paste_back:
            paths += [out / "pasted" / folder / f for folder in folders for f in photo_files]
    return paths


def result_folders(edits: list[EditSpec]) -> list[str]:
    """Where the renderings go: ``reconstructions``, then ``edits/<edit>`` per edit."""
    return ["reconstructions", *(f"edits/{e.label}" for e in edits)]


def check_outputs(out: Path, paths: list[Path], overwrite: bool) -> None:
    """Before any work, creating nothing: DIR can be created and written, and nothing there is replaced
    without --overwrite (or --resume of the same run)."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} exists and is not a folder")
    if not overwrite:
        existing = [p for p in paths if p.exists()]
        if existing:
            more = f" and {len(existing) - 3} more" if len(existing) > 3 else ""
            unfinished = invert_parts.record_path(out).exists() and not (out / "inversion.safetensors").exists()
            again = (
                "--resume to continue that run or --overwrite to start it over"
                if unfinished
                else "--overwrite to replace them"
            )
            raise UsageError(
                f"{', '.join(map(str, existing[:3]))}{more} already exist; pass {again}, or choose another --out"
            )
    for folder in sorted({p.parent for p in paths}):
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"cannot write to --out {out}: {folder} is a file")
        ancestor = next(a for a in (folder, *folder.parents) if a.exists())
        if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
            raise UsageError(f"cannot write to --out {out}: {ancestor} is not a writable folder")


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


@dataclass(frozen=True, eq=False)
class Sample:
    """One image the method inverts: ``source`` (its file, or with --align its photo's), ``file`` (its PNGs'
    name), ``image`` (the method's input, float ``[C, R, R]``) and, with --align, its ``face``."""

    source: str
    file: str
    image: torch.Tensor
    face: Face | None = None


@dataclass(eq=False)
class Plan:
    """A run, checked before anything is written: what it inverts, with what, and where it writes."""

    args: argparse.Namespace
    out: Path
    name: str  # the method's
    options: dict  # without the seed
    seed: int | None
    generator: torch.nn.Module
    g_note: str
    device: torch.device
    samples: list[Sample]
    edits: list[EditSpec]
    directions: list[torch.Tensor]
    record: dict  # what parts/run.json records: a resumed run must be the same
    resuming: bool
    paths: list[Path]  # every file the run writes
    batches: list[range]
    photos: list | None = None  # --align: [(name, uint8 [H, W, 3])]
    photo_files: list[str] | None = None
    todo: list[int] = field(default_factory=list)  # this process's batches that are not done yet
    progress: Progress | None = None
    method: object = None  # built for the first batch of todo, which checked the options

    @property
    def folders(self) -> list[str]:
        return result_folders(self.edits)

    def batch_files(self, batch: int) -> list[Path]:
        """The PNGs a batch writes (its part goes last)."""
        samples = [self.samples[i] for i in self.batches[batch]]
        folders = self.folders + (["aligned"] if self.photos is not None else [])
        return [self.out / folder / s.file for folder in folders for s in samples]

    def build(self, batch: range, callback=None):
        """The method for ``batch``; image ``i`` of the run uses seed ``seed + i``, whatever its batch."""
        return build_method(self.name, self.generator, self.options, self.seed, batch.start, callback)


def build_method(name: str, generator, options: dict, seed: int | None, start: int, callback=None):
    """Method ``name`` for a batch whose first image is image ``start`` of the run (seed ``seed + start``: the
    method gives image ``i`` of its batch ``seed + start + i``); bad options and missing weights are a
    ``UsageError``."""
    from sg2_core.methods.registry import accepts_option, create_method

    seeds = {} if seed is None else {"seed": seed + start}
    callback = {"callback": callback} if callback is not None and accepts_option(name, "callback") else {}
    try:
        return create_method(name, generator=generator, **options, **callback, **seeds)
    except (TypeError, ValueError) as error:  # unknown options, bad option values, weights not given
        message = str(error)
        named = repr(name) in message or message.startswith(f"{name}: ")
        raise UsageError(message if named else f"method {name!r}: {message}") from None


def plan_run(args) -> Plan:
    """Read, align and check everything the run needs; raises ``UsageError`` before anything is written."""
    from sg2_core.methods.registry import accepts_option, method_spec
    from sg2_core.methods.weights import generator_hash

    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.max_images is not None and args.max_images < 1:
        raise UsageError(f"--max-images must be >= 1, got {args.max_images}")
    if args.paste_back and not args.align:
        raise UsageError("--paste-back needs --align: it pastes the aligned faces back into their photos")
    if args.align and args.fit:
        raise UsageError("--fit does not apply with --align: the aligned faces are squares of the method's size")
    face_flags = {"--faces": args.faces, "--landmarks": args.landmarks, "--face-size": args.face_size}
    if not args.align and any(v is not None for v in face_flags.values()):
        raise UsageError(f"{', '.join(k for k, v in face_flags.items() if v is not None)} only apply with --align")
    if args.face_size is not None and args.face_size < 1:
        raise UsageError(f"--face-size must be >= 1, got {args.face_size}")
    user_options = parse_options(args.options)
    edits = [parse_edit(e) for e in args.edit]
    name = args.method or default_method()
    try:
        spec = method_spec(name)
    except (ValueError, ImportError) as error:  # unknown (the message lists close matches), or a broken install
        raise UsageError(str(error)) from None
    options = merge_options(spec.demo_options if args.generator is None else {}, user_options)
    # One seed per image, from its place in the whole run, so the results do not depend on --batch-size.
    seed = options.pop("seed", 0) if accepts_option(name, "seed") else None
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise UsageError(f"--options seed must be an int (image i of the run uses seed + i), got {seed!r}")

    photos = photo_files = None
    if args.align:
        model = invert_faces.landmarks_model(args.landmarks)
        photos = invert_faces.read_photos(args.images)[: args.max_images]
    else:
        try:
            items = read_images(args.images)[: args.max_images]
        except ImageLoadError as error:
            raise UsageError(str(error)) from None
    device = resolve_device(args.device, local_rank=int(os.environ.get("LOCAL_RANK", "0")))
    generator, g_note = load_generator(args.generator, device)
    # Built before any image is read: bad options and missing weights fail first, and the built method says
    # what it takes (an encoder built with input_size=256 on a 1024 px generator takes 256 px images).
    progress = Progress(0, disable=args.no_progress or world()[0] > 0)
    method = build_method(name, generator, options, seed, 0, progress)
    channels = getattr(method, "input_channels", None) or spec.input_channels or generator.img_channels
    resolution = getattr(method, "input_resolution", None) or spec.input_resolution or generator.img_resolution
    if args.channels is not None and args.channels != channels:
        raise UsageError(
            f"--{'grey' if args.channels == 1 else 'rgb'} converts to {args.channels} channel(s) but "
            f"method {name!r} on this generator takes {channels}-channel images"
        )

    def prepare(image, source, fit):
        try:
            return as_float(prepare_image(image, source, channels, resolution, fit, args.channels is not None))
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

    if args.align:
        photo_files = output_names([n for n, _ in photos])
        face_size = args.face_size or resolution
        faces = invert_faces.align_photos(photos, args.faces or "all", face_size, model)
        samples = [
            Sample(
                photos[f.photo][0],
                invert_faces.face_file(photo_files[f.photo], f),
                prepare(f.image, f"{photos[f.photo][0]} (face {f.index})", "resize"),  # a square: resize only
                f,
            )
            for f in faces
        ]
    else:
        files = output_names([n for n, _ in items])
        samples = [Sample(n, f, prepare(image, n, args.fit)) for (n, image), f in zip(items, files)]
    directions = [edit_direction(e, generator).to(device) for e in edits]

    record = {
        "images": [s.source for s in samples],
        "method": name,
        "options": {k: _jsonable(v) for k, v in {**options, **({} if seed is None else {"seed": seed})}.items()},
        "generator": generator_hash(generator),
        "fit": args.fit,
        "channels": args.channels,
        "batch_size": args.batch_size,
        "edits": [e.label for e in edits],
    }
    if args.align:
        record["faces"] = [[s.face.photo, s.face.index, s.face.quad.tolist()] for s in samples]
        record["face_size"] = face_size
    out = Path(args.out)
    resuming = invert_parts.resumable(out, record, args.resume)
    batches = invert_parts.batch_ranges(len(samples), args.batch_size)
    paths = planned_outputs(out, [s.file for s in samples], edits, len(batches), photo_files, args.paste_back)
    check_outputs(out, paths, args.overwrite or resuming)
    plan = Plan(
        args=args,
        out=out,
        name=name,
        options=options,
        seed=seed,
        generator=generator,
        g_note=g_note,
        device=device,
        samples=samples,
        edits=edits,
        directions=directions,
        record=record,
        resuming=resuming,
        paths=paths,
        batches=batches,
        photos=photos,
        photo_files=photo_files,
    )
    mine = invert_parts.my_batches(len(batches))
    plan.todo = [k for k in mine if not (resuming and invert_parts.is_done(out, k, plan.batch_files(k)))]
    progress.total = sum(len(batches[k]) for k in plan.todo)
    plan.progress = progress
    first = batches[plan.todo[0]].start if plan.todo else 0
    plan.method = method if seed is None or first == 0 else plan.build(batches[plan.todo[0]], progress)
    return plan


def run(args) -> Path:
    try:
        plan = plan_run(args)
    except BaseException:
        invert_parts.agree(False)  # under torchrun the other processes stop too, instead of waiting for this one
        raise
    if not invert_parts.agree(True):
        raise UsageError("another process of this torchrun stopped with an error (its message says which)")
    threads.configure(args.threads)
    for folder in {p.parent for p in plan.paths}:
        folder.mkdir(parents=True, exist_ok=True)
    invert_parts.start(plan.out, plan.record, overwrite=plan.args.overwrite)
    invert_batches(plan)
    if all(invert_parts.is_done(plan.out, k, plan.batch_files(k)) for k in range(len(plan.batches))):
        finish(plan)  # this process finished last (or alone): the outputs of the whole run
    else:
        print(
            f"{plan.out}: this process's batches are done; the last process to finish writes the rest", file=sys.stderr
        )
    return plan.out


def invert_batches(plan: Plan) -> None:
    """This process's batches that are not done yet: invert, render, write the PNGs, then the batch's part."""
    rank, size = world()
    skipped = len(invert_parts.my_batches(len(plan.batches))) - len(plan.todo)
    print(
        f"{plan.name} on {plan.g_note}, {len(plan.samples)} images, options {plan.options}, device {plan.device}"
        + (f", process {rank} of {size}" if size > 1 else "")
        + (f"; resuming: {skipped} finished batch(es) skipped" if plan.resuming else ""),
        file=sys.stderr,
    )
    photo_names = [name for name, _ in plan.photos or ()]
    method, progress = plan.method, plan.progress
    progress.start()
    try:
        for k in plan.todo:
            batch = plan.batches[k]
            samples = [plan.samples[i] for i in batch]
            if plan.seed is not None and k != plan.todo[0]:
                method = plan.build(batch, progress)
            if plan.photos is not None:
                for s in samples:
                    save_image(s.face.image, plan.out / "aligned" / s.file)
            inversion = method(torch.stack([s.image for s in samples]).to(plan.device)).detach()
            with torch.no_grad():
                rendered = [inversion.render()] + [
                    inversion.edit(d, e.strength).render() for d, e in zip(plan.directions, plan.edits)
                ]
            for folder, images in zip(plan.folders, rendered):
                for s, image in zip(samples, images):
                    save_image(image, plan.out / folder / s.file)
            if plan.photos is not None:
                inversion.extras.update(invert_faces.face_extras([s.face for s in samples], photo_names))
            invert_parts.write_part(inversion, plan.out, k)
            progress.batch_done(len(batch))
    finally:
        progress.close()


def finish(plan: Plan) -> None:
    """The run's outputs from its parts: the inversion file, the pasted photos, the grid and the manifest."""
    out, folders = plan.out, plan.folders
    result = invert_parts.assemble(out, len(plan.batches), plan.generator)
    result.save(out / "inversion.safetensors", overwrite=True)
    files = [s.file for s in plan.samples]
    if plan.args.paste_back:
        invert_faces.write_pasted(out, folders, plan.photos, plan.photo_files, files, result.extras)
    cells = grid_cells(plan)
    save_grid(cells.flatten(0, 1), out / "grid.png", nrow=cells.shape[1])
    invert_parts.write_json(manifest(plan), out / "manifest.json")
    written = "aligned faces, " if plan.photos is not None else ""
    written += "pasted photos, " if plan.args.paste_back else ""
    print(
        f"wrote {len(plan.samples)} reconstructions, {written}grid.png, inversion.safetensors and manifest.json "
        f"to {out}",
        file=sys.stderr,
    )


def manifest(plan: Plan) -> dict:
    """Which image is which index and where its files are (with --align: which photo and face), the method, its
    options and the generator."""
    folders = plan.folders
    images = []
    for i, s in enumerate(plan.samples):
        entry = {"index": i, "source": s.source}
        if s.face is not None:
            entry.update(photo=s.face.photo, face=s.face.index, aligned=f"aligned/{s.file}")
        entry["reconstruction"] = f"reconstructions/{s.file}"
        if plan.edits:
            entry["edits"] = [f"{folder}/{s.file}" for folder in folders[1:]]
        images.append(entry)
    result = {
        "method": plan.name,
        "options": plan.record["options"],
        "generator": plan.g_note,
        "fit": plan.args.fit,
        "edits": [e.label for e in plan.edits],
        "images": images,
    }
    if plan.photos is not None:
        result["photos"] = [
            {
                "index": p,
                "source": name,
                "faces": [i for i, s in enumerate(plan.samples) if s.face.photo == p],
                **({"pasted": [f"pasted/{folder}/{f}" for folder in folders]} if plan.args.paste_back else {}),
            }
            for p, ((name, _), f) in enumerate(zip(plan.photos, plan.photo_files))
        ]
    return result


def grid_cells(plan: Plan) -> torch.Tensor:
    """uint8 ``[rows, columns, C, R, R]``: per image (the first ``GRID_ROWS``) at the render size, input |
    reconstruction | edits; with --align photo | aligned | reconstruction | edits (| pasted reconstruction |
    pasted edits), all RGB. Read back from the PNGs the run wrote, so a resumed or shared run draws the same."""
    size, rows = plan.generator.img_resolution, []
    for s in plan.samples[:GRID_ROWS]:
        rendered = [read_image(plan.out / folder / s.file) for folder in plan.folders]
        if s.face is None:
            image = s.image[None]
            if image.shape[-1] != size:  # a method that takes another input size than the generator renders
                image = torch.nn.functional.interpolate(image, size=(size, size), mode="bicubic", antialias=True)
            rows.append(torch.stack([to_uint8(convert_channels(image[0], rendered[0].shape[0])), *rendered]))
            continue
        photo = torch.from_numpy(plan.photos[s.face.photo][1]).permute(2, 0, 1)
        row = [fit_image(photo, size, "pad"), fit_image(s.face.image, size, "resize"), *rendered]
        if plan.args.paste_back:
            photo_file = plan.photo_files[s.face.photo]
            row += [fit_image(read_image(plan.out / "pasted" / f / photo_file), size, "pad") for f in plan.folders]
        rows.append(torch.stack([convert_channels(cell, 3) for cell in row]))
    return torch.stack(rows)


def main(argv=None) -> int:
    joined = invert_parts.join_world()  # torchrun: this process is one of several
    try:
        run(build_parser().parse_args(argv))
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stopped; the finished batches are kept: continue with the same command and --resume", file=sys.stderr)
        return 130  # 128 + SIGINT, as a shell reports it
    finally:
        if joined:
            invert_parts.leave_world()
    return 0


if __name__ == "__main__":
    sys.exit(main())
