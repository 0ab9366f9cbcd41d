"""The one training shape of trainable methods: ``python -m <family>.train --method NAME [options...]``.

A family's ``train`` module is two lines::

    from sg2_core.training.cli import main as _main
    def main(argv=None): return _main("inv_optim", argv)

``--method NAME`` picks a trainable method of that family (optional when one trainer serves them all); its class names its trainer
(``trainer = "module:function"``), which gets the remaining arguments (``function(argv) -> exit code``)
and builds on sg2-core's training pieces (seeded steps, atomic snapshots, exact resume). ``--list``
prints the family's trainable methods.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from sg2_core.methods.registry import list_methods, method_spec


def trainable_methods(package: str) -> dict[str, str]:
    """``{method: trainer}`` of the trainable methods whose trainer lives in ``package``."""
    found = {}
    for name in list_methods(trainable=True):
        trainer = method_spec(name).trainer
        if trainer and trainer.partition(":")[0].split(".")[0] == package:
            found[name] = trainer
    return found


def _trainer(target: str):
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)


def main(package: str, argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = f"python -m {package}.train"
    parser = argparse.ArgumentParser(prog=prog, add_help=False, description=f"Train a method of {package}.")
    parser.add_argument("--method")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("-h", "--help", action="store_true")
    args, rest = parser.parse_known_args(argv)
    methods = trainable_methods(package)
    if args.list or (args.help and not args.method):
        print(f"usage: {prog} --method NAME [options]   ({prog} --method NAME --help: its options)")
        print("trainable methods: " + (", ".join(sorted(methods)) or "none"))
        return 0
    if not args.method and len(set(methods.values())) == 1:  # one trainer serves the family: no need to name it
        args.method = min(methods)
    if not args.method:
        print(
            f"{prog}: error: --method is required; trainable methods: {', '.join(sorted(methods)) or 'none'}",
            file=sys.stderr,
        )
        return 2
    if args.method not in methods:
        print(
            f"{prog}: error: {args.method!r} is not a trainable method of {package}; trainable methods: "
            f"{', '.join(sorted(methods)) or 'none'}",
            file=sys.stderr,
        )
        return 2
    if args.help:
        rest = [*rest, "--help"]
    try:
        return _trainer(methods[args.method])(rest) or 0
    except SystemExit as stop:  # argparse inside the trainer
        return stop.code if isinstance(stop.code, int) else 1
