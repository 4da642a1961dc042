"""Values in console and log lines as a person writes them: never ``None``, a dict's braces, a list's
brackets or a float's seventeen digits (summary.json keeps the exact values)."""

from __future__ import annotations

from typing import Any


def say(value: Any, none: str = "none") -> str:
    """``a=1, b=2`` for a mapping, ``0, 1, 2`` for a sequence, 3 significant digits for a float,
    ``none`` (or the caller's word) for None; anything else as str() writes it."""
    if value is None:
        return none
    if hasattr(value, "tolist"):  # numpy / torch scalars and arrays
        value = value.tolist()
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, dict):
        return ", ".join(f"{key}={say(item, none)}" for key, item in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(say(item, none) for item in value)
    return str(value)


def as_override(value: Any) -> str:
    """A config value as it is typed on the command line: ``null``, ``true``, ``[0.1,1.0]``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(as_override(item) for item in value) + "]"
    return str(value)


def reached(at, unit: str) -> str:
    """``at iteration 3``, or ``never reached``: a line reads as a sentence, never "at None"."""
    return f"at {unit} {at}" if at is not None else "never reached"
