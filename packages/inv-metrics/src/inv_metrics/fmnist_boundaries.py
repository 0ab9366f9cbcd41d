"""InterFaceGAN boundaries of the demo generator, labelled by the shipped Fashion-MNIST classifier.

A class-logit difference (e.g. "T-shirt/top" minus "Pullover": short sleeves against long ones) scores the
generator's images of sampled w, and sg2-core's InterFaceGAN fit (``sg2_core.methods.interfacegan``, the
paper's defaults) turns the scores into a boundary in W. The report's grid shows an edit along the shipped
boundary, ``assets/fmnist_boundary_tshirt_vs_pullover.safetensors``; it ships (1 KB) rather than being
fitted at report time, which would add the rendering of 20000 samples to every report. Rebuild it with::

    python -m inv_metrics.fmnist_boundaries            # about a minute on one CPU thread; needs scikit-learn

"Trouser vs dress" fits too (``--positive Trouser --negative Dress``), but the demo generator draws few
trousers (13 of 4000 samples classified so), and moving along it barely changes the score.
"""

from __future__ import annotations

import argparse
import sys
from importlib.resources import as_file, files
from pathlib import Path

import torch

from .fmnist import load_fmnist_net

POSITIVE, NEGATIVE = "T-shirt/top", "Pullover"
BOUNDARY_FILE = "fmnist_boundary_tshirt_vs_pullover.safetensors"
SAMPLES, SEED = 20000, 0
REPORT_STRENGTH = 3.0  # about 4 standard deviations of the sampled w along the normal


def class_score(net, positive: str, negative: str):
    """``images [N, 1, 32, 32] -> [N]``: the classifier's logit of ``positive`` minus that of ``negative``."""
    from sg2_core.demo import CLASS_NAMES

    unknown = [name for name in (positive, negative) if name not in CLASS_NAMES]
    if unknown or positive == negative:
        raise ValueError(f"positive and negative must be two different classes of {list(CLASS_NAMES)}, got {unknown}")
    i, j = CLASS_NAMES.index(positive), CLASS_NAMES.index(negative)

    def score(images: torch.Tensor) -> torch.Tensor:
        logits = net(images)
        return logits[:, i] - logits[:, j]

    return score


def fit_demo_boundary(
    generator, positive: str = POSITIVE, negative: str = NEGATIVE, n: int = SAMPLES, seed: int = SEED, **fit_options
):
    """The InterFaceGAN boundary of ``positive`` against ``negative`` on ``n`` w sampled with ``seed``
    (``fit_options`` go to ``sg2_core.methods.interfacegan.fit_boundary``)."""
    from sg2_core.methods.directions import sample_w
    from sg2_core.methods.interfacegan import fit_boundary, score_latents

    device = generator.mapping.w_avg.device
    score = class_score(load_fmnist_net(device=device), positive, negative)
    w = sample_w(generator, n, seed)
    scores = score_latents(generator, score, w)
    return fit_boundary(w, scores, name=f"{positive} vs {negative}", **fit_options)


def load_demo_boundary():
    """The shipped boundary (``Directions``, one row: towards ``POSITIVE``, away from ``NEGATIVE``)."""
    from sg2_core.methods.directions import load_directions

    with as_file(files("inv_metrics").joinpath("assets", BOUNDARY_FILE)) as path:
        return load_directions(path)


def report_edits(generator) -> dict:
    """``{grid label: (direction [w_dim], strength)}``: the shipped boundary's edit, on the demo generator only
    (the classifier only knows Fashion-MNIST, and the boundary lives in the demo generator's W)."""
    from sg2_core.methods.weights import is_demo_generator

    if not is_demo_generator(generator):
        return {}
    boundary = load_demo_boundary()
    return {f"InterFaceGAN {boundary.names[0]} {REPORT_STRENGTH:+g}": (boundary.vectors[0], REPORT_STRENGTH)}


def main(argv=None) -> int:
    from sg2_core import demo
    from sg2_core.methods.directions import save_directions

    p = argparse.ArgumentParser(prog="python -m inv_metrics.fmnist_boundaries", description=__doc__.split("\n\n")[0])
    p.add_argument("--positive", default=POSITIVE, help=f"the class towards which the normal points ({POSITIVE})")
    p.add_argument("--negative", default=NEGATIVE, help=f"the class it points away from ({NEGATIVE})")
    p.add_argument("--num", type=int, default=SAMPLES, help=f"sampled w (default {SAMPLES})")
    p.add_argument("--seed", type=int, default=SEED, help=f"seed of the samples (default {SEED})")
    default_out = Path(__file__).parent / "assets" / BOUNDARY_FILE
    p.add_argument("--out", type=Path, default=default_out, help="where to write it (default: the shipped file)")
    args = p.parse_args(argv)
    try:
        boundary = fit_demo_boundary(demo.load_generator(), args.positive, args.negative, args.num, args.seed)
    except (ValueError, ImportError) as error:  # unknown class names; scikit-learn missing (says what to install)
        print(f"error: {error}", file=sys.stderr)
        return 2
    save_directions(boundary, args.out)
    print(f"wrote {args.out}: {boundary.names[0]!r}, held-out accuracy {float(boundary.values[0]):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
