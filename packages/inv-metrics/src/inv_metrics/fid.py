"""FID and KID of a generator checkpoint or an image folder against a reference dataset.

    python -m inv_metrics.fid SOURCE --reference REF [--features fmnist|inception] [--inception-weights FILE]

SOURCE: a generator checkpoint (any format ``sg2_core.load_checkpoint`` reads; ``--num-samples`` images are
drawn with truncation 1) or a folder of images. REF: a folder of images, or ``fmnist-test`` / ``fmnist-train``
(the Fashion-MNIST split from the Debian package, padded to 32x32). The feature network defaults to ``fmnist``
for one-channel 32x32 data and to ``inception`` otherwise. Reference features are cached per dataset and
feature network (``--cache-dir``, default ``~/.cache/inv_metrics``). Both numbers are printed with the name of
the network that produced them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from sg2_core.errors import UsageError

from .features import load_features
from .fid_kid import cached_features, dataset_fingerprint, fid_from_features, kid_from_features
from .images import to_float

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
FMNIST_REFS = {"fmnist-test": "test", "fmnist-train": "train"}


def image_files(folder: Path) -> list[Path]:
    found = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not found:
        raise ValueError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found in {folder}")
    return found


def read_folder(files: list[Path], grey: bool) -> torch.Tensor:
    """uint8 [N, C, H, W]: all images must have one size (no silent resizing)."""
    from PIL import Image

    arrays = []
    for path in files:
        with Image.open(path) as im:
            arrays.append(np.asarray(im.convert("L" if grey else "RGB")))
    sizes = {a.shape[:2] for a in arrays}
    if len(sizes) > 1:
        raise ValueError(f"images in one folder must share one size, found {sorted(sizes)}")
    u8 = torch.from_numpy(np.stack(arrays))
    return u8.unsqueeze(1) if grey else u8.permute(0, 3, 1, 2)


def _is_grey_folder(files: list[Path]) -> bool:
    from PIL import Image

    with Image.open(files[0]) as im:
        return im.mode in ("L", "I", "I;16", "1") and im.size == (32, 32)


def features_of_uint8(extractor, u8: torch.Tensor, batch_size: int, device) -> np.ndarray:
    out = []
    with torch.no_grad():
        for start in range(0, len(u8), batch_size):
            batch = u8[start : start + batch_size].to(device)
            if hasattr(extractor, "forward_uint8"):  # Inception: uint8 exactly as torch-fidelity reads files
                out.append(extractor.forward_uint8(batch.expand(-1, 3, -1, -1)).cpu())
            else:
                out.append(extractor(to_float(batch)).cpu())
    return torch.cat(out).numpy()


def generated_batches(generator, n: int, batch_size: int, seed: int, device) -> Iterator[torch.Tensor]:
    torch.manual_seed(seed)  # also seeds the synthesis noise
    gen = torch.Generator().manual_seed(seed)
    for start in range(0, n, batch_size):
        z = torch.randn(min(batch_size, n - start), generator.z_dim, generator=gen).to(device)
        yield generator(z, truncation_psi=1.0).clamp(-1, 1)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m inv_metrics.fid", description=__doc__.splitlines()[0])
    p.add_argument("source", type=Path, help="generator checkpoint file or image folder")
    p.add_argument("--reference", required=True, help="image folder, or fmnist-test / fmnist-train")
    p.add_argument("--features", choices=("fmnist", "inception"), default=None)
    p.add_argument(
        "--inception-weights",
        type=Path,
        default=None,
        help="weights-inception-2015-12-05-6726825d.pth (default: the torch hub cache)",
    )
    p.add_argument("--fmnist-root", type=Path, default=None, help="folder of the Fashion-MNIST .gz files")
    p.add_argument("--num-samples", type=int, default=10000, help="images drawn from a generator")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=250)
    p.add_argument("--kid-subsets", type=int, default=100)
    p.add_argument("--kid-subset-size", type=int, default=1000)
    p.add_argument("--cache-dir", type=Path, default=None)
    p.add_argument("--device", default=None, help="default: the GPU when there is one, else cpu")
    return p


def _check_args(args) -> None:
    for name in ("num_samples", "batch_size", "kid_subsets", "kid_subset_size"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not args.source.exists():
        raise UsageError(f"{args.source}: no such file or folder (give a generator checkpoint or an image folder)")
    if args.reference not in FMNIST_REFS and not Path(args.reference).is_dir():
        raise UsageError(
            f"--reference {args.reference}: no such folder (give an image folder, or {' / '.join(FMNIST_REFS)})"
        )
    if args.inception_weights is not None and not args.inception_weights.is_file():
        raise UsageError(f"--inception-weights {args.inception_weights}: no such file")


def small_sample_warning(n_source: int, n_reference: int, dim: int | None) -> str | None:
    """A warning when FID on these sample counts means little (fewer images than feature dimensions)."""
    n = min(n_source, n_reference)
    if dim is None or n >= dim:
        return None
    return (
        f"warning: FID on {n_source} vs {n_reference} images is not meaningful: {n} is fewer than the {dim} "
        f"feature dimensions, so the covariance estimates are singular and FID is biased upward (it falls as "
        f"the sets grow); use at least {dim} images per set (10k-50k for numbers comparable with papers)"
    )


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    from sg2_core import CheckpointError
    from sg2_core.devices import resolve_device

    try:
        _check_args(args)
        return _run(args, resolve_device(args.device))
    except (UsageError, CheckpointError, OSError, ValueError) as error:  # OSError: also unreadable images
        print(f"inv_metrics.fid: error: {error}", file=sys.stderr)
        return 2


def _run(args, device) -> int:
    if args.source.is_dir():
        source_files = image_files(args.source)
        grey_source, generator = _is_grey_folder(source_files), None
    else:
        from sg2_core import load_checkpoint

        generator = load_checkpoint(args.source).generator
        if generator is None:
            raise UsageError(f"{args.source} holds no generator")
        generator = generator.to(device).eval()
        grey_source = generator.img_channels == 1 and generator.img_resolution == 32

    name = args.features or ("fmnist" if grey_source or args.reference in FMNIST_REFS else "inception")
    extractor = load_features(name, weights=args.inception_weights if name == "inception" else None, device=device)
    grey = name == "fmnist"

    # Reference features, cached by dataset content + network.
    if args.reference in FMNIST_REFS:
        from .fmnist import fmnist_files, load_fmnist

        split = FMNIST_REFS[args.reference]
        ref_files = fmnist_files(split, args.fmnist_root)[:1]  # raises naming the package to install
        load_ref = lambda: torch.from_numpy(load_fmnist(split, args.fmnist_root)[0].copy()).unsqueeze(1)  # noqa: E731
    else:
        ref_files = image_files(Path(args.reference))
        load_ref = lambda: read_folder(ref_files, grey)  # noqa: E731
    ref_features = cached_features(
        dataset_fingerprint(ref_files) + f"|grey={grey}",
        extractor,
        lambda: features_of_uint8(extractor, load_ref(), args.batch_size, device),
        cache_dir=args.cache_dir,
    )

    if generator is None:
        src_features = features_of_uint8(extractor, read_folder(source_files, grey), args.batch_size, device)
    else:
        with torch.no_grad():
            src_features = torch.cat(
                [
                    extractor(b).cpu()
                    for b in generated_batches(generator, args.num_samples, args.batch_size, args.seed, device)
                ]
            ).numpy()

    warning = small_sample_warning(len(src_features), len(ref_features), src_features.shape[1])
    if warning:
        print(warning, file=sys.stderr)
    fid = fid_from_features(torch.from_numpy(src_features), torch.from_numpy(ref_features))
    subset = min(args.kid_subset_size, len(src_features), len(ref_features))
    kid_mean, kid_std = kid_from_features(
        torch.from_numpy(src_features), torch.from_numpy(ref_features), subsets=args.kid_subsets, subset_size=subset
    )
    if subset < args.kid_subset_size:
        print(f"note: KID subset size reduced to {subset} (the smaller set's size)")
    label = extractor.name
    print(f"FID ({label}): {fid:.4f}   [{len(src_features)} vs {len(ref_features)} images]")
    print(f"KID ({label}): {kid_mean:.6f} ± {kid_std:.6f}   [{args.kid_subsets} subsets of {subset}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
