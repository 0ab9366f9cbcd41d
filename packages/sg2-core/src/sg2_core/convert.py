"""Convert StyleGAN2 checkpoints: ``python -m sg2_core.convert IN OUT [--format native|rosinality]``.

Reads our safetensors format, rosinality ``.pt`` files (convert_weight.py, train.py, pSp-style) and
NVIDIA StyleGAN2-ADA network pickles (without running them); writes ``.safetensors`` (ours, the
default for that extension) or rosinality ``.pt``. The input is never overwritten, an existing output
only with ``--overwrite``, and the output appears atomically (temporary file, then rename). Errors are
one line, ``error: ...`` on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch

from sg2_core.checkpoints import (
    FORMATS,
    WRITABLE_FORMATS,
    CheckpointError,
    load_checkpoint,
    output_format,
    save_checkpoint,
)
from sg2_core.checkpoints._io import refuse_overwriting_input
from sg2_core.checkpoints.base import describe


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sg2_core.convert",
        description="Convert a StyleGAN2 checkpoint between our safetensors format, rosinality .pt and (read only) "
        "NVIDIA StyleGAN2-ADA .pkl. The input format is recognised from the file's content.",
    )
    p.add_argument("input", type=Path, metavar="IN", help="checkpoint to read")
    p.add_argument("output", type=Path, metavar="OUT", help="file to write (.safetensors: native, .pt: rosinality)")
    p.add_argument("--format", choices=WRITABLE_FORMATS, help="output format (default: from OUT's extension)")
    p.add_argument("--input-format", choices=FORMATS, help="skip the detection of IN's format")
    p.add_argument(
        "--compute-w-avg",
        nargs="?",
        const=10000,
        type=int,
        metavar="N",
        help="where the input's w_avg is unknown (a rosinality file without latent_avg, a NaN w_avg "
        "in a pickle): estimate it from N mapping samples (default 10000); without this it stays "
        "unknown (NaN) and no latent_avg is written",
    )
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists (never IN)")
    return p


def _report(ckpt, out: Path, fmt: str) -> list[str]:
    nets = ckpt.networks()
    lines = [f"wrote {out} ({fmt})"]
    if fmt == "native":
        for name, net in nets.items():
            lines.append(f"  {name:<11} {describe(net)}")
        if ckpt.extra:
            lines.append(f"  extra       {', '.join(map(str, ckpt.extra))}")
        return lines
    gen_name = "G_ema" if ckpt.G_ema is not None else "G"
    if ckpt.generator is not None:
        lines.append(f"  g_ema       <- {gen_name}: {describe(ckpt.generator)}")
    if ckpt.G is not None:
        lines.append(f"  g           <- G: {describe(ckpt.G)}")
    if ckpt.D is not None:
        lines.append(f"  d           <- D: {describe(ckpt.D)}")
    if ckpt.generator is not None:
        known = bool(torch.isfinite(ckpt.generator.mapping.w_avg).all())
        lines.append(f"  latent_avg  <- {gen_name}.mapping.w_avg" if known else "  latent_avg  not written (unknown)")
    if ckpt.extra:
        lines.append(f"  not written (no place in the rosinality format): {', '.join(map(str, ckpt.extra))}")
    return lines


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    src, out = args.input, args.output
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fmt = output_format(out, args.format)
            refuse_overwriting_input(out, [src])
            if out.exists() and not args.overwrite:
                raise CheckpointError("the output file exists; pass --overwrite to replace it", out)
            ckpt = load_checkpoint(src, args.input_format, compute_w_avg=args.compute_w_avg or False)
            print(f"read  {src} ({ckpt.format}): {', '.join(ckpt.networks())}")
            if fmt == "native":
                ckpt.extra = {**ckpt.extra, "converted_from": {"format": ckpt.format, "file": src.name}}
            save_checkpoint(out, ckpt, fmt)
        except (CheckpointError, OSError, ValueError, TypeError) as exc:
            for w in caught:
                print(f"warning: {w.message}", file=sys.stderr)
            print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)  # one line
            return 2
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    print("\n".join(_report(ckpt, out, fmt)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
