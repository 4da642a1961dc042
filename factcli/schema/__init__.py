"""Dataclass schemas, one module per subcommand, so Hydra type-checks every override.

Each module defines ``Config`` (a dataclass) and optionally ``validate(cfg)``, which raises FactError
for values a type cannot express (an unknown method name, a fraction outside (0, 1)). A primary
config ``conf/<name>.yaml`` lists ``<name>_schema`` first in its defaults.
"""

from __future__ import annotations

import importlib
import pkgutil

_registered = False


def modules():
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            yield info.name, importlib.import_module(f"{__name__}.{info.name}")


def register() -> None:
    global _registered
    if _registered:
        return
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    for name, module in modules():
        store.store(name=f"{name}_schema", node=module.Config)
    _registered = True


def validate(name: str, cfg) -> None:
    """Every subcommand: no NaN / inf / over-64-bit value, a seed in range; then the schema's own rules."""
    from ._checks import check_every_value

    check_every_value(cfg)
    module = importlib.import_module(f"{__name__}.{name}")
    check = getattr(module, "validate", None)
    if check is not None:
        check(cfg)


def choose(value, allowed, what: str) -> None:
    """One-line error for a value outside a fixed set of names."""
    from factcli.errors import FactError

    if value not in allowed:
        raise FactError(f"unknown {what} {value!r}; choose one of {', '.join(map(str, allowed))}")
