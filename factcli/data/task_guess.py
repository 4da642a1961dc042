"""Which task a table's target asks for when the user does not say (``data.task=auto``).

The guess a statistician would make from the training file's target values and rows:
- text labels are classes;
- numbers with a fractional part are a quantity (regression);
- integers are classes only when few distinct values each cover many rows: at most ``MAX_CLASSES``
  values, at least ``MIN_ROWS_PER_CLASS`` rows per value on average, and — beyond
  ``SMALL_CLASS_COUNT`` values — no more distinct values than ``MAX_CLASS_SHARE`` of the rows (as
  widely used AutoML tools guess: an ordered integer target with many values for its rows is a
  count or a measurement). So 45 house prices in 45 rows, counts with 30 values in 250 rows, or
  years are quantities, while 0/1 labels, 1..5 ratings, or 26 letter codes over 20,000 rows are
  classes. Two distinct values are always classes.
The guess and its reason go into the run's summary (``task``, ``task_source: guessed``,
``task_reason``); ``data.task=classification|regression`` overrides it (``task_source: given``).
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_CLASSES = 50
MIN_ROWS_PER_CLASS = 5
SMALL_CLASS_COUNT = 10
MAX_CLASS_SHARE = 0.1


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
    counted = f"target '{target}' has {n_distinct} distinct integers in {n_rows} rows"
    if n_distinct <= 2:
        return TaskGuess(
            "classification", f"classification guessed: {counted}; " + override.format("regression")
        )
    if n_distinct > MAX_CLASSES:
        why = f"more than {MAX_CLASSES}"
    elif n_rows < MIN_ROWS_PER_CLASS * n_distinct:
        why = f"fewer than {MIN_ROWS_PER_CLASS} rows each"
    elif n_distinct > SMALL_CLASS_COUNT and n_distinct > MAX_CLASS_SHARE * n_rows:
        why = f"more than {SMALL_CLASS_COUNT} values and more than {MAX_CLASS_SHARE:.0%} of the rows"
    else:
        rule = f"at most {MAX_CLASSES}, at least {MIN_ROWS_PER_CLASS} rows each on average"
        if n_distinct > SMALL_CLASS_COUNT:
            rule += f", at most {MAX_CLASS_SHARE:.0%} of the rows"
        return TaskGuess(
            "classification", f"classification guessed: {counted} ({rule}); " + override.format("regression")
        )
    return TaskGuess(
        "regression", f"regression guessed: {counted} ({why}); " + override.format("classification")
    )
