"""``python -m inv_metrics.report``: every registered inversion method, measured the same way.

One generator, one set of images, one protocol for all methods: the same images in the same order, the same
batch size and device, one untimed warm-up call per method on the first ``WARMUP_IMAGES`` images (it builds
lazy state such as w statistics and distance networks), then each batch timed with ``inv_metrics.timing.Timer``
(device synchronised) from the method call to the rendered reconstruction. Outputs in the output folder:
``report.json`` (everything), ``report.md`` (the table), ``report.html`` (table, trade-off chart and image
grid, images embedded as data: URIs so the page works opened from disk), ``grid.png`` (inputs, then per method
its reconstructions and an edit along the generator's first SeFa direction, each row labelled) and
``tradeoff.png`` (each method's error against its seconds per image, ``report.tradeoff``).

Metrics are accumulated batch by batch: per-image metrics as sums, FID/KID from feature rows of every
reconstruction against those of the inputs (computed once); a folder's images are read a batch at a time
and only the grid's reconstructions are kept, so thousands of 1024 px images fit in memory. KID is shown as
mean ± std over subsets of half the set (it is unbiased, so it can be negative when the sets are as close
as its noise) and left out below ``KID_MIN_IMAGES`` images; FID on fewer images than its feature
dimensions gets a note (biased upward: compare rows, not published numbers). Methods that take
``callback=`` show their optimisation steps on the progress bar.

Exit codes of the command: 0 when at least one method produced a row (the failed ones are listed at the
end), 1 when none did, 2 for bad input (before any work: unknown --methods, bad paths, --device cuda
without a GPU). The device defaults to the GPU when there is one.

The embedded default (no generator, no image folder): the shipped demo generator
(``sg2_core.demo.load_generator``), the first 32 of the shipped 256 test images and every installed method.

**Demo options.** A method factory (the class or function registered) may carry ``demo_options: dict``;
when the images are the shipped test set the report builds the method with those options (e.g. fewer
projection steps so the whole default run fits in minutes on a CPU). ``--options name:key=value`` overrides
them (dotted keys reach nested dicts: ``pti:pivot_options.steps=50``); ``--no-demo-options`` ignores them.
"""

from .report import WARMUP_IMAGES, run_report
from .runner import MethodResult, run_method

__all__ = ["MethodResult", "WARMUP_IMAGES", "run_method", "run_report"]
