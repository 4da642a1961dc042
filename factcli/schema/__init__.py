"""Dataclass schemas, one module per subcommand, so Hydra type-checks every override.

Each module defines ``Config`` (a dataclass holding every default: YAML files only say where a preset
differs) and ``validate(cfg)``, which raises FactError for values a type cannot express (an unknown
method name, a fraction outside (0, 1)). factcli/commands.py lists which command uses which; launch.py
registers each ``Config`` with Hydra as ``<config_name>_schema``, the first entry of the primary
config's defaults list.
"""

from __future__ import annotations

from factcli.errors import FactError


def choose(value, allowed, what: str) -> None:
    """One-line error for a value outside a fixed set of names (the tuples of factcli/choices.py)."""
    if value not in allowed:
        raise FactError(f"unknown {what} {value!r}; choose one of {', '.join(map(str, allowed))}")
