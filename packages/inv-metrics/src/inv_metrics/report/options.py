"""Method options for the report: a factory's ``demo_options``, and ``--options name:key=value`` overrides."""

from __future__ import annotations

import ast
import copy


def demo_options(name: str) -> dict:
    """The method's declared ``demo_options`` (a copy), or ``{}`` when it has none or cannot be loaded
    (``create_method`` then reports the error in the method's row)."""
    import sg2_core

    try:
        options = sg2_core.method_spec(name).demo_options  # the contract: metadata without building anything
    except Exception:  # noqa: BLE001 - no method_spec yet, or a declaration it refuses: read the factory
        try:
            options = getattr(sg2_core.method_factory(name), "demo_options", None)
        except Exception:  # noqa: BLE001 - unknown names and failing imports alike
            return {}
    return copy.deepcopy(dict(options)) if isinstance(options, dict) else {}


def _value(text: str):
    """A Python literal (``300``, ``0.1``, ``None``, ``[1, 2]``, ``True``) or else the string itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_option(spec: str) -> tuple[str, list[str], object]:
    """``'pti:pivot_options.steps=50'`` -> ``('pti', ['pivot_options', 'steps'], 50)``."""
    name, colon, assignment = spec.partition(":")
    key, equals, value = assignment.partition("=")
    if not colon or not equals or not name.strip() or not key.strip():
        raise ValueError(
            f"--options {spec!r}: expected METHOD:KEY=VALUE (e.g. sg2-w:steps=100 or pti:pivot_options.steps=50)"
        )
    return name.strip(), key.strip().split("."), _value(value.strip())


def merge_option(options: dict, keys: list[str], value) -> None:
    """Set ``options[k1][k2]... = value``, creating nested dicts as needed."""
    for key in keys[:-1]:
        child = options.get(key)
        options[key] = child = dict(child) if isinstance(child, dict) else {}
        options = child
    options[keys[-1]] = value


def resolve_options(methods: list[str], specs: list[str], use_demo_options: bool) -> tuple[dict[str, dict], list[str]]:
    """Options per method, and messages about ``--options`` naming a method that is not run."""
    options = {name: demo_options(name) if use_demo_options else {} for name in methods}
    problems = []
    for spec in specs:
        name, keys, value = parse_option(spec)
        if name not in options:
            problems.append(f"--options {spec!r} ignored: {name!r} is not among the methods run ({', '.join(methods)})")
            continue
        merge_option(options[name], keys, value)
    return options, problems
