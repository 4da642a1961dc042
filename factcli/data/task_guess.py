"""Which task a table's target asks for when the user does not say (``data.task=auto``).

The guess a statistician would make from the values and the number of rows:
- text labels are classes;
- numbers with a fractional part are a quantity (regression);
- integers are classes only when few distinct values each cover several rows — at most
  ``MAX_CLASSES`` values and at least ``MIN_ROWS_PER_CLASS`` rows per value on average — so 45 house
  prices in 45 rows, counts or years are quantities, while 0/1 or 1..5 ratings over hundreds of rows
  are classes. Two distinct values are always classes.
The guess and its reason go into the run's summary (``task``, ``task_source: guessed``,
``task_reason``); ``data.task=classification|regression`` overrides it (``task_source: given``).
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_CLASSES = 50
MIN_ROWS_PER_CLASS = 5


@dataclass(frozen=True)
class TaskGuess:
    task: str  # classification | regression
    reason: str


def guess_task(target: str, *, numeric: bool, integral: bool, n_rows: int, n_distinct: int) -> TaskGuess:
    override = "set data.task={} to override"
    if not numeric:
        return TaskGuess(
            "classification",
            f"classification guessed: target '{target}' holds text ({n_distinct} distinct labels)",
        )
    if not integral:
        return TaskGuess(
            "regression",
            f"regression guessed: target '{target}' has non-integer values; "
            + override.format("classification"),
        )
    enough_rows = n_rows >= MIN_ROWS_PER_CLASS * n_distinct
    if n_distinct <= 2 or (n_distinct <= MAX_CLASSES and enough_rows):
        return TaskGuess(
            "classification",
            f"classification guessed: target '{target}' has {n_distinct} distinct integers in {n_rows} rows "
            f"(at most {MAX_CLASSES}, at least {MIN_ROWS_PER_CLASS} rows each on average); "
            + override.format("regression"),
        )
    few_rows = f"fewer than {MIN_ROWS_PER_CLASS} rows each"
    why = f"more than {MAX_CLASSES}" if n_distinct > MAX_CLASSES else few_rows
    return TaskGuess(
        "regression",
        f"regression guessed: target '{target}' has {n_distinct} distinct integers in {n_rows} rows ({why}); "
        + override.format("classification"),
    )
