"""What the cells of one table column hold when a file stores them as text.

A CSV column with one non-plain cell ("$1,200", "12%", "2024-03-05", a UCI-style "?") reaches pandas
as text, and one-hot encoding it would turn every distinct value into a column of its own: numbers
and dates are read here instead, and a column that looks like numbers but cannot be read is refused,
naming the cells, rather than exploded.

- Missing: pandas' markers (empty, NA, null, ...) and "?" (the UCI collection's).
- Numbers: a sign, one currency symbol ($ € £ ¥) before or after, "," thousands separators in groups
  of three, a decimal point, an exponent, a trailing "%" (read as hundredths: 12% = 0.12, as a
  spreadsheet reads it). A decimal comma ("1,5") is not guessed: it is refused like any unreadable
  number.
- Dates: ISO 8601 only (2024-03-05, optionally with a time and a UTC offset), as days since
  1970-01-01 UTC; "03/05/2024" is refused, since day and month cannot be told apart.
- Labels (text categories and class labels) compare as a reader would: surrounding spaces are
  dropped and a label that is a number is written canonically, so "1", "1.0" and 1 are one label.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from factcli.errors import FactError

MISSING_MARKERS = frozenset({"", "?"})  # beside pandas' own (NA, null, NaN, ...)
DATE_NOTE = "ISO dates read as days since 1970-01-01 UTC"
# A text column whose readable cells cover this share of its rows is a number column with typos ...
STRAY_SHARE = 0.9
# ... and so is one where most rows hold numbers with more distinct values than this, and one where
# this many distinct cells look like numbers that cannot be read (one-hot, each would be a column).
MANY_VALUES = 10
ROWS_NOTE = "rows counted from 1 after the header"

_NUMBER = re.compile(
    r"""(?P<sign>[-+]?)(?P<pre>[$€£¥]?)(?P<sign2>[-+]?)
    (?P<digits>\d{1,3}(?:,\d{3})+(?:\.\d*)?|\d+(?:\.\d*)?|\.\d+)
    (?P<exp>[eE][-+]?\d+)?\s*(?P<post>[%$€£¥]?)""",
    re.X,
)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?")
# Digits and number punctuation only: a number or a date in some form, readable or not.
_NUMBER_LIKE = re.compile(r"[-+$€£¥%\d\s.,'/:_]*\d[-+$€£¥%\d\s.,'/:_]*")


@dataclass(frozen=True)
class ColumnCells:
    """One column read: numbers (float64, NaN = missing) or labels (canonical text, None = missing)."""

    numbers: np.ndarray | None
    labels: np.ndarray | None
    note: str = ""  # how text became numbers; "" when the file stored numbers

    @property
    def is_number(self) -> bool:
        return self.numbers is not None

    @property
    def is_date(self) -> bool:
        return self.note == DATE_NOTE


def parse_number(text: str) -> tuple[float, frozenset[str]] | None:
    """(value, marks) of a number written as text, or None; marks ⊆ {currency signs, thousands
    separators, percent signs}."""
    match = _NUMBER.fullmatch(text)
    if match is None or (match["sign"] and match["sign2"]) or (match["pre"] and match["post"]):
        return None
    value = float(match["digits"].replace(",", "") + (match["exp"] or ""))
    marks = set()
    if match["pre"] or match["post"] not in ("", "%"):
        marks.add("currency signs")
    if "," in match["digits"]:
        marks.add("thousands separators")
    if match["post"] == "%":
        value = value / 100
        marks.add("percent signs")
    negative = "-" in (match["sign"], match["sign2"])
    return (-value if negative else value), frozenset(marks)


def canonical_label(cell) -> str | None:
    """The label a cell stands for (None: missing): text stripped, numbers in one spelling."""
    if cell is None:
        return None
    if isinstance(cell, bool | np.bool_):
        return str(bool(cell))
    if isinstance(cell, int | np.integer):
        return str(int(cell))
    if isinstance(cell, float | np.floating):
        return None if math.isnan(cell) else number_text(float(cell))
    text = str(cell).strip()
    if text in MISSING_MARKERS:
        return None
    try:
        return str(int(text))  # exact for long integers ("12345678901234567890")
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    return number_text(value) if math.isfinite(value) else text


def number_text(value: float) -> str:
    # 3.0 reads as "3": integer labels stored as floats stay readable.
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def read_column(values, what: str, where: str) -> ColumnCells:
    """What a training column holds, from its cells alone (see the module docstring)."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return ColumnCells(values.to_numpy(dtype=np.float64, na_value=np.nan), None)
    if pd.api.types.is_datetime64_any_dtype(values):
        return ColumnCells(_days(values), None, DATE_NOTE)
    cells = _TextCells(values, what, where)
    if cells.all_numbers:
        return ColumnCells(cells.number_rows(), None, cells.number_note())
    if cells.all_dates:
        return ColumnCells(cells.date_rows(), None, DATE_NOTE)
    cells.refuse_unreadable()
    return ColumnCells(None, cells.label_rows())


def read_as(values, training: ColumnCells, what: str, where: str) -> ColumnCells:
    """A test file's column read the way its training column was. Cells that way cannot read are
    refused in one line, naming them; a category the training file never had is not an error here
    (the caller counts it)."""
    import pandas as pd

    if not training.is_number:
        if pd.api.types.is_datetime64_any_dtype(values):
            values = values.astype(object)
        return ColumnCells(None, _TextCells(values, what, where).label_rows())
    if training.is_date:
        if pd.api.types.is_datetime64_any_dtype(values):
            return ColumnCells(_days(values), None, DATE_NOTE)
        cells = _TextCells(values.astype(object), what, where)
        if not cells.all_dates and not cells.all_missing:
            bad = cells.rows_where(lambda c: not c.date)
            cells.refuse(bad, "holds ISO dates in the training file but not in", "write them as YYYY-MM-DD")
        return ColumnCells(cells.date_rows(), None, DATE_NOTE)
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return ColumnCells(values.to_numpy(dtype=np.float64, na_value=np.nan), None, training.note)
    cells = _TextCells(values.astype(object), what, where)
    if not cells.all_numbers and not cells.all_missing:
        bad = cells.rows_where(lambda c: c.number is None)
        cells.refuse(bad, "holds numbers in the training file but not in", "fix or remove those cells")
    return ColumnCells(cells.number_rows(), None, training.note)


def _days(stamps) -> np.ndarray:
    """Datetimes (naive ones taken as UTC) → float days since 1970-01-01; NaT → NaN."""
    import pandas as pd

    stamps = pd.to_datetime(pd.Series(stamps), utc=True)
    seconds = (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    return (seconds / 86400.0).to_numpy(dtype=np.float64, na_value=np.nan)


@dataclass(frozen=True)
class _Cell:
    text: str | None  # stripped; None: missing
    number: float | None = None
    marks: frozenset[str] = frozenset()
    date: bool = False
    number_like: bool = False


def _read_cell(cell) -> _Cell:
    if cell is None or (isinstance(cell, float | np.floating) and math.isnan(cell)):
        return _Cell(None)
    if isinstance(cell, bool | np.bool_):
        return _Cell(str(bool(cell)))
    if isinstance(cell, int | float | np.integer | np.floating):  # a number pandas left in a text column
        return _Cell(canonical_label(cell), float(cell), number_like=True)
    text = str(cell).strip()
    if text in MISSING_MARKERS:
        return _Cell(None)
    parsed = parse_number(text)
    if parsed is not None:
        return _Cell(text, parsed[0], parsed[1], number_like=True)
    return _Cell(text, date=bool(_ISO_DATE.fullmatch(text)), number_like=bool(_NUMBER_LIKE.fullmatch(text)))


class _TextCells:
    """The distinct cells of a text column, each read once (tables repeat their values)."""

    def __init__(self, values, what: str, where: str):
        import pandas as pd

        self.values, self.what, self.where = values, what, where
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        self.codes = codes
        self.cells = [_read_cell(u) for u in uniques]
        counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
        self.present = [(c, int(k)) for c, k in zip(self.cells, counts, strict=True) if c.text is not None]
        self.all_missing = not self.present
        self.all_numbers = bool(self.present) and all(c.number is not None for c, _ in self.present)
        self.all_dates = bool(self.present) and all(c.date for c, _ in self.present)

    def number_rows(self) -> np.ndarray:
        table = np.array([np.nan if c.number is None else c.number for c in self.cells] + [np.nan])
        return table[self.codes]  # code -1 (pandas' own missing) picks the trailing NaN

    def number_note(self) -> str:
        marks = sorted(set().union(*(c.marks for c, _ in self.present)))
        parts = [f"numbers written as text ({', '.join(marks)})"] if marks else []
        if "percent signs" in marks:
            parts.append("12% read as 0.12")
        return "; ".join(parts) or "numbers written as text"

    def date_rows(self) -> np.ndarray:
        import pandas as pd

        texts = pd.Series([c.text for c in self.cells], dtype=object)
        stamps = pd.to_datetime(texts, format="ISO8601", utc=True, errors="coerce")
        impossible = [j for j, c in enumerate(self.cells) if c.text is not None and pd.isna(stamps.iloc[j])]
        if impossible:
            rows = np.flatnonzero(np.isin(self.codes, impossible))
            self.refuse(rows, "has dates that do not exist in", "fix those cells")
        days = np.append(_days(stamps) if len(texts) else np.zeros(0), np.nan)
        return days[self.codes]

    def label_rows(self) -> np.ndarray:
        table = np.array([canonical_label(c.text) for c in self.cells] + [None], dtype=object)
        return table[self.codes]

    def rows_where(self, test) -> np.ndarray:
        chosen = [j for j, c in enumerate(self.cells) if c.text is not None and test(c)]
        return np.flatnonzero(np.isin(self.codes, chosen))

    def listed(self, rows: np.ndarray) -> str:
        """'k cells (row i: 'x', row j: 'y', row l: 'z' and m more)', rows counted from 1."""
        shown = ", ".join(f"row {i + 1}: {self.values.iloc[i]!r}" for i in rows[:3])
        more = f" and {len(rows) - 3} more" if len(rows) > 3 else ""
        return f"{len(rows)} cell{'s' * (len(rows) > 1)} ({shown}{more})"

    def refuse(self, rows: np.ndarray, problem: str, advice: str) -> None:
        raise FactError(f"{self.what} {problem} {self.where}: {self.listed(rows)}; {advice} ({ROWS_NOTE})")

    def refuse_unreadable(self) -> None:
        """Numbers or dates but for a few cells, or numbers in a form not read: refused, never exploded."""
        present = sum(k for _, k in self.present)
        numbers = [(c, k) for c, k in self.present if c.number is not None]
        dates = [(c, k) for c, k in self.present if c.date]
        kind, readable = ("numbers", numbers) if len(numbers) >= len(dates) else ("ISO dates", dates)
        covered = sum(k for _, k in readable)
        if covered >= STRAY_SHARE * present or (covered >= present / 2 and len(readable) > MANY_VALUES):
            other = self.rows_where(lambda c: (c.number is None) if kind == "numbers" else not c.date)
            raise FactError(
                f"{self.what} in {self.where} holds {kind} except {self.listed(other)}; fix or remove those "
                f"cells, or leave a missing value empty or '?' ({ROWS_NOTE})"
            )
        unread = [c.text for c, _ in self.present if c.number_like and c.number is None and not c.date]
        like = sum(k for c, k in self.present if c.number_like or c.date)
        if like >= STRAY_SHARE * present and len(unread) > MANY_VALUES:
            raise FactError(
                f"{self.what} in {self.where} holds numbers or dates in a form fact does not read (e.g. "
                f"{', '.join(map(repr, unread[:3]))}); write numbers plainly (1200.5, $1,200, 12%) and "
                "dates as YYYY-MM-DD, or drop the column"
            )
