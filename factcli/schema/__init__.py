"""Dataclass schemas, one module per subcommand, so Hydra type-checks every override.

Each module defines ``Config`` (a dataclass holding every default: YAML files only say where a preset
differs) and ``validate(cfg)``, which raises FactError for values a type cannot express (an unknown
method name, a fraction outside (0, 1)). factcli/commands.py lists which command uses which; launch.py
registers each ``Config`` with Hydra as ``<config_name>_schema``, the first entry of the primary
config's defaults list. ``describe`` reads a schema back as the keys a user types (the commands'
``--help`` and the suggestions for a mistyped key come from it, not from a copy).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import types
import typing
from typing import NamedTuple

from factcli.errors import FactError


def choose(value, allowed, what: str) -> None:
    """One-line error for a value outside a fixed set of names (the tuples of factcli/choices.py)."""
    if value not in allowed:
        raise FactError(f"unknown {what} {value!r}; choose one of {', '.join(map(str, allowed))}")


class Key(NamedTuple):
    key: str  # dotted, as typed: grid.ridges
    default: str  # as typed after "key=": [10.0, 1.0], null, auto
    comment: str  # the schema's comment on the field ("" when it has none)


def describe(schema: type, leaves_only: bool = True, prefix: str = "") -> list[Key]:
    """Every key of a dataclass schema, depth first in declaration order, with its default and comment.

    A field holding a dataclass (also ``X | None``, as ``benchmark``) is walked into; with
    ``leaves_only=False`` it is listed itself too.
    """
    comments = _comments(schema)
    hints = typing.get_type_hints(schema)
    keys = []
    for entry in dataclasses.fields(schema):
        key = f"{prefix}{entry.name}"
        nested = _dataclass_in(hints.get(entry.name))
        if nested is not None:
            if not leaves_only:
                keys.append(Key(key, _typed(_default(entry)), comments.get(entry.name, "")))
            keys += describe(nested, leaves_only, prefix=f"{key}.")
        else:
            keys.append(Key(key, _typed(_default(entry)), comments.get(entry.name, "")))
    return keys


def _dataclass_in(hint) -> type | None:
    if dataclasses.is_dataclass(hint):
        return hint
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        found = [arg for arg in typing.get_args(hint) if dataclasses.is_dataclass(arg)]
        return found[0] if found else None
    return None


def _default(entry: dataclasses.Field):
    if entry.default is not dataclasses.MISSING:
        return entry.default
    if entry.default_factory is not dataclasses.MISSING:
        return entry.default_factory()
    return "???"


def _typed(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ",".join(_typed(v) for v in value) + "]"
    if dataclasses.is_dataclass(value):
        return "{…}"
    return str(value)


_FIELD = re.compile(r"^\s+(\w+)\s*:[^#]*?(?:#\s*(.*))?$")


def _comments(schema: type) -> dict[str, str]:
    """Field name → its comment: the one on its line, else the comment lines right above it (for
    every class of the schema's inheritance chain, the subclass's last)."""
    comments: dict[str, str] = {}
    for cls in reversed([c for c in schema.__mro__ if dataclasses.is_dataclass(c)]):
        above: list[str] = []
        for line in inspect.getsource(cls).splitlines()[1:]:
            stripped = line.strip()
            if stripped.startswith("#"):
                above.append(stripped.lstrip("#").strip())
                continue
            match = _FIELD.match(line)
            if match and not stripped.startswith(("def ", "@", '"""')):
                comments[match.group(1)] = match.group(2) or " ".join(above)
            above = []
    return {name: text.strip() for name, text in comments.items()}
