"""A benchmark's finished (dataset, row) results, kept in one CSV file that the benchmark resumes from.

``<folder>/results.csv`` holds one line per (dataset, row, protocol): the table's columns, then the
pair's own fields (``settings``: the id of the configuration that made it, whose values are in
``<folder>/results-settings.json``; and, where a script recorded them, its wall seconds, load, threads,
where it was converted from). A pair is finished for the protocols it has lines for.

Writers take an exclusive lock (``<folder>/.results.lock``) around read-add-write, and every file is
replaced atomically, so shards in other processes sharing one folder never lose each other's results
and readers never see half a file. Readers take no lock.

Before this file existed, each pair was one JSON file ``<folder>/results/<dataset>__<row>.json``;
``import_json_results`` turns such a folder into the CSV (the benchmark does it on its own when a folder
has JSON files and no CSV), value for value.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from factcli.errors import FactError
from factcli.rundir import to_jsonable, write_atomic, write_json

from .suite import TABLE_COLUMNS

RESULTS = "results.csv"
SETTINGS = "results-settings.json"
LOCK = ".results.lock"
JSON_FOLDER = "results"  # where each pair was a JSON file
# A pair's own fields, repeated on each of its lines; everything else is the row's.
PAIR_FIELDS = ("settings", "wall_seconds", "load1", "threads", "converted_from")
# Columns read back as text; every other one is a number (or True / False), empty when it had none.
TEXT_COLUMNS = frozenset(
    {"dataset", "label", "kind", "kernel", "method", "form", "protocol", "precision", "error", "params"}
    | {"settings", "converted_from"}
)


class ResultStore:
    """The results of one benchmark folder: read them, add a finished pair."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / RESULTS
        self.settings_path = self.folder / SETTINGS

    def exists(self) -> bool:
        return self.path.is_file()

    def lines(self) -> list[dict]:
        """Every stored line, as written (pair fields included)."""
        if not self.path.is_file():
            return []
        with open(self.path, newline="") as handle:
            return [
                {key: _decode(key, value) for key, value in row.items()} for row in csv.DictReader(handle)
            ]

    def settings(self) -> dict[str, dict]:
        return json.loads(self.settings_path.read_text()) if self.settings_path.is_file() else {}

    def pairs(self) -> dict[tuple[str, str], dict]:
        """(dataset, row label) -> {"rows", "protocols", "settings" (None: made before settings were
        recorded), and the pair fields stored with it}."""
        known = self.settings()
        out: dict[tuple[str, str], dict] = {}
        for line in self.lines():
            key = (line["dataset"], line["label"])
            if key not in out:
                extra = {k: line[k] for k in PAIR_FIELDS if k in line and line[k] not in ("", None)}
                out[key] = {**extra, "settings": known.get(line.get("settings") or ""), "rows": []}
                out[key]["protocols"] = []
            out[key]["rows"].append({k: v for k, v in line.items() if k not in PAIR_FIELDS})
            out[key]["protocols"].append(line["protocol"])
        return out

    def rows(self, names: Iterable[str], labels: Iterable[str], protocols: Iterable[str]) -> list[dict]:
        """The table's rows of these datasets × labels × protocols, in that order."""
        pairs, protocols = self.pairs(), set(protocols)
        return [
            row
            for name in names
            for label in labels
            for row in pairs.get((name, label), {}).get("rows", [])
            if row["protocol"] in protocols
        ]

    def add(self, dataset: str, label: str, rows: list[dict], settings: dict | None = None, **fields) -> None:
        """Store one finished pair (replacing what was stored for it), atomically, under the lock."""
        self.add_many([(dataset, label, rows, settings, fields)])

    def add_many(self, pairs: list[tuple]) -> None:
        """Store (dataset, label, rows, settings, fields) pairs in one write."""
        with self.locked():
            self._add(pairs)

    def _add(self, pairs: list[tuple]) -> None:  # the caller holds the lock
        lines, known = self.lines(), self.settings()
        for dataset, label, rows, settings, fields in pairs:
            lines = [line for line in lines if (line["dataset"], line["label"]) != (dataset, label)]
            sid = ""
            if settings is not None:
                sid = settings_id(settings)
                known.setdefault(sid, settings)
            # The pair's identity comes from its key: a failed row carries them too.
            lines += [{**row, "dataset": dataset, "label": label, "settings": sid, **fields} for row in rows]
        if known:
            write_json(self.settings_path, known)
        write_atomic(self.path, encode(lines))

    def merge(self, other: ResultStore) -> int:
        """Add the pairs of another folder's results (shards run on other machines) that this one
        lacks, with their settings and fields; returns how many were added."""
        with self.locked():
            have = set(self.pairs())
            new = [
                (
                    dataset,
                    label,
                    pair["rows"],
                    pair["settings"],
                    {k: pair[k] for k in PAIR_FIELDS[1:] if k in pair},
                )
                for (dataset, label), pair in other.pairs().items()
                if (dataset, label) not in have
            ]
            self._add(new)
        return len(new)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / LOCK, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
            yield


def settings_id(settings: dict) -> str:
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def columns_of(lines: list[dict]) -> list[str]:
    """The table's columns first (those present), then the pair fields, then anything else seen."""
    seen: dict[str, None] = {}
    for line in lines:
        seen.update(dict.fromkeys(line))
    first = [c for c in [*TABLE_COLUMNS, *PAIR_FIELDS] if c in seen]
    return first + [c for c in seen if c not in first]


def encode(lines: list[dict]) -> str:
    buffer = io.StringIO()
    columns = columns_of(lines) if lines else [*TABLE_COLUMNS, "settings"]
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for line in lines:
        writer.writerow({key: _encode(line.get(key)) for key in columns})
    return buffer.getvalue()


def _encode(value) -> str:
    value = to_jsonable(value)  # plain Python, a non-finite number None: as the JSON files had it
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back to the same float
    return str(value)


def _decode(column: str, text: str | None):
    if column in TEXT_COLUMNS:
        return text or ""
    if text in ("", None):
        return None
    if text in ("True", "False"):
        return text == "True"
    try:
        return int(text)  # "3" was an int; "3.0" a float, and stays one
    except ValueError:
        return float(text)


def import_json_results(folder: Path, exist_ok: bool = False) -> int:
    """``<folder>/results/*.json`` (one file per pair) → ``<folder>/results.csv``; returns the pairs
    read. The JSON files are left where they are. A results file there already is never added to:
    refused, or with ``exist_ok`` (another process imported them first) left as it is (returns 0)."""
    store = ResultStore(folder)
    with store.locked():
        if store.exists():
            if exist_ok:
                return 0
            raise FactError(
                f"{store.path} exists already: the JSON results in {Path(folder) / JSON_FOLDER} "
                "are not imported into it"
            )
        pairs = []
        for path in sorted((Path(folder) / JSON_FOLDER).glob("*__*.json")):
            stored = json.loads(path.read_text())
            dataset, label = path.stem.split("__", 1)
            fields = {k: stored[k] for k in PAIR_FIELDS if k in stored and k != "settings"}
            pairs.append((dataset, label, stored["rows"], stored.get("settings"), fields))
        store._add(pairs)
    return len(pairs)


def json_results(folder: Path) -> bool:
    return any((Path(folder) / JSON_FOLDER).glob("*__*.json"))
