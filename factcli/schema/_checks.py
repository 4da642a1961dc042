"""Checks every subcommand's schema shares. Each failure is one line: the key, the rule, the value.

``check_every_value`` walks the whole config once: no NaN or infinity anywhere (no setting of any
subcommand means something at NaN or ±inf), no empty string (no name or path is empty; an empty
``--dataset ''`` must not run the default), no integer beyond 64 bits (torch and NumPy cannot take
it), a seed inside the range every library here accepts, thread counts torch can take. The other
helpers state one rule for a list of dotted keys, so a schema's ``validate`` reads as the table of
its ranges.
"""

from __future__ import annotations

import math

from factcli.errors import FactError

# NumPy's legacy seeding and scikit-learn's random_state take 0 ≤ seed < 2**32, and the loaders derive
# a second seed as seed + 1; 31 bits leave room for that and are accepted by torch too.
SEED_LIMIT = 2**31
INT64_LIMIT = 2**63
THREADS_LIMIT = 1024  # any `threads` key; torch cannot even take some larger counts


def check_every_value(cfg) -> None:
    for key, value in _leaves(cfg):
        if isinstance(value, float) and math.isnan(value):
            raise FactError(f"{key} = nan: give a number")
        if isinstance(value, float) and math.isinf(value):
            raise FactError(f"{key} = {value}: give a finite number")
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= INT64_LIMIT:
            raise FactError(f"{key} = {value} does not fit in 64 bits; give a smaller number")
        if isinstance(value, str) and not value.strip():  # `--dataset ''`: never a name, never the default
            raise FactError(f"{key} is empty; give a value (or leave the key out for its default)")
        if key.split(".")[-1] == "threads" and value is not None and not 1 <= value <= THREADS_LIMIT:
            bound = "be at least 1 (or null for every core)" if value < 1 else f"be at most {THREADS_LIMIT}"
            raise FactError(f"{key} must {bound}, got {value}")
    seed = cfg.get("seed")
    if seed is not None and not 0 <= seed < SEED_LIMIT:
        raise FactError(f"seed must be an integer in 0..{SEED_LIMIT - 1}, got {seed}")


def _leaves(node, prefix: str = ""):
    from omegaconf import DictConfig, ListConfig, OmegaConf  # here, so `fact --help` never loads it

    if isinstance(node, DictConfig):
        for key in node.keys():
            if prefix == "" and key == "hydra":
                continue
            if not OmegaConf.is_missing(node, key):
                yield from _leaves(node[key], f"{prefix}{key}.")
    elif isinstance(node, ListConfig):
        for index, value in enumerate(node):
            yield from _leaves(value, f"{prefix.rstrip('.')}[{index}].")
    else:
        yield prefix.rstrip("."), node


def _values(cfg, keys):
    from omegaconf import OmegaConf

    for key in keys:
        value = OmegaConf.select(cfg, key)
        if value is not None:
            yield key, value


def positive(cfg, *keys: str) -> None:
    for key, value in _values(cfg, keys):
        if not value > 0:
            raise FactError(f"{key} must be positive, got {value}")


def at_least(cfg, low, *keys: str) -> None:
    for key, value in _values(cfg, keys):
        if not value >= low:
            raise FactError(f"{key} must be at least {low}, got {value}")


def between(cfg, low, high, *keys: str) -> None:
    for key, value in _values(cfg, keys):
        if not low <= value <= high:
            raise FactError(f"{key} must lie in [{low:g}, {high:g}], got {value}")


def each_at_least(cfg, low, *keys: str) -> None:
    for key, values in _values(cfg, keys):
        bad = [value for value in values if not value >= low]
        if bad:
            raise FactError(f"every entry of {key} must be at least {low}, got {list(values)}")


def each_positive(cfg, *keys: str) -> None:
    for key, values in _values(cfg, keys):
        if not all(value > 0 for value in values):
            raise FactError(f"every entry of {key} must be positive, got {list(values)}")


def nonempty(cfg, *keys: str) -> None:
    from omegaconf import OmegaConf

    for key in keys:
        values = OmegaConf.select(cfg, key)
        if values is not None and len(values) == 0:
            raise FactError(f"{key} is an empty list; give at least one value")


def distinct(cfg, *keys: str) -> None:
    for key, values in _values(cfg, keys):
        seen, repeated = set(), []
        for value in values:
            if value in seen and value not in repeated:
                repeated.append(value)
            seen.add(value)
        if repeated:
            raise FactError(f"{key} lists {', '.join(map(str, repeated))} more than once; give each once")
