"""The benchmark's results file: values read back as written, the one-off import of the per-pair JSON
files value for value, and two writers at once losing nothing."""

import json
import math
import multiprocessing

import pytest

from factcli.errors import FactError
from factcli.experiments.rfm.store import PAIR_FIELDS, ResultStore, import_json_results
from factcli.experiments.rfm.suite import TABLE_COLUMNS
from factcli.rundir import write_json

SETTINGS = {"grid": {"ridges": [10.0, 0.001]}, "kernel": {"name": "auto"}}


def row(dataset, label, protocol, accuracy, **changes):
    out = {column: 0.5 for column in TABLE_COLUMNS if column != "params"}
    out.update(
        dataset=dataset,
        label=label,
        protocol=protocol,
        test_accuracy=accuracy,
        n=16,
        d=4,
        classes=2,
        kind="rfm",
        kernel="l1",
        method="fact",
        form="",
        precision="float32+float64",
        error="",
        normalize_rows=True,
        iteration=3,
        failures=0,
        bandwidth=0.1 + 0.2,
        ridge=1e-3,
    )
    out.update(changes)
    return out


def failed(dataset, label, protocol):
    """As the benchmark wrote a failed row to JSON: every number None (NaN), the error said."""
    out = {column: None for column in TABLE_COLUMNS if column != "params"}
    out.update(
        dataset=dataset,
        label=label,
        protocol=protocol,
        n=16,
        d=4,
        classes=2,
        kind="rfm",
        kernel="laplace",
        method="fact",
        form="full",
        error="selection: no accurate solve",
        failures=1,
    )
    return out


def same(a: dict, b: dict) -> bool:
    """Equal value for value and type for type (3 is not 3.0), NaN equal to NaN."""
    if set(a) != set(b):
        return False
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
            continue
        if x != y or type(x) is not type(y):
            return False
    return True


def test_rows_read_back_exactly_as_added(tmp_path):
    store = ResultStore(tmp_path)
    rows = [
        row("iris", "fact", "paper", 96.0 + 1 / 3),
        row("iris", "fact", "strict", 95.123456789012345, iteration=0, bandwidth=2.0, error='x, "y"\nz'),
    ]
    store.add("iris", "fact", rows, SETTINGS)
    store.add("iris", "svc-rbf", [failed("iris", "svc-rbf", "strict")], None, wall_seconds=1.25, load1=3.5)
    pairs = store.pairs()
    assert list(pairs) == [("iris", "fact"), ("iris", "svc-rbf")]
    assert all(same(a, b) for a, b in zip(pairs["iris", "fact"]["rows"], rows, strict=True))
    assert pairs["iris", "fact"]["settings"] == SETTINGS and pairs["iris", "fact"]["protocols"] == [
        "paper",
        "strict",
    ]
    svc = pairs["iris", "svc-rbf"]
    assert svc["settings"] is None and svc["wall_seconds"] == 1.25 and svc["load1"] == 3.5
    # A failed row's numbers stay missing (None), its text as written.
    assert same(svc["rows"][0], {**failed("iris", "svc-rbf", "strict"), "precision": ""})
    # Storing a pair again replaces it; other pairs are kept.
    store.add("iris", "fact", rows[1:], SETTINGS)
    assert store.pairs()["iris", "fact"]["protocols"] == ["strict"] and ("iris", "svc-rbf") in store.pairs()
    assert [r["label"] for r in store.rows(["iris"], ["svc-rbf", "fact"], ["strict"])] == ["svc-rbf", "fact"]


def json_folder(tmp_path):
    """A results folder as the benchmark (and the variant script) wrote it: one JSON file per pair."""
    stored = {
        "abalone__fact": {
            "protocols": ["paper", "strict"],
            "settings": SETTINGS,
            "rows": [row("abalone", "fact", "paper", 64.8), row("abalone", "fact", "strict", 64.1)],
        },
        "abalone__svc-rbf": {
            "protocols": ["paper", "strict"],
            "settings": {**SETTINGS, "data": {"standardize": False}},
            "rows": [failed("abalone", "svc-rbf", p) for p in ("paper", "strict")],
            "converted_from": "elsewhere/abalone__svc-rbf.json (the same fit)",
            "wall_seconds": 12.5,
            "load1": 7.25,
            "threads": 1,
        },
        "zoo__L1-KRR": {
            "rows": [row("zoo", "L1-KRR", "strict", 95.0, iteration=0)],
            "wall_seconds": 0.2,
            "load1": 11.4,
        },
    }
    for name, content in stored.items():
        write_json(tmp_path / "results" / f"{name}.json", content)
    return stored


def test_json_results_import_value_for_value(tmp_path):
    stored = json_folder(tmp_path)
    assert import_json_results(tmp_path) == 3
    pairs = ResultStore(tmp_path).pairs()
    assert len(pairs) == len(stored)
    for name in stored:
        from_json = json.loads((tmp_path / "results" / f"{name}.json").read_text())  # as the files hold it
        pair = pairs[tuple(name.split("__"))]
        # A text column that was missing (a failed row's precision) reads back empty.
        expected = [
            {k: ("" if k == "precision" and v is None else v) for k, v in r.items()}
            for r in from_json["rows"]
        ]
        assert len(pair["rows"]) == len(expected)
        assert all(same(a, b) for a, b in zip(pair["rows"], expected, strict=True)), name
        assert pair["settings"] == from_json.get("settings")
        assert pair["protocols"] == [r["protocol"] for r in from_json["rows"]]
        for field in PAIR_FIELDS[1:]:
            assert pair.get(field) == from_json.get(field)
    with pytest.raises(FactError, match="exists already"):
        import_json_results(tmp_path)  # never over a results file


def _add_pairs(folder, writer, count):
    store = ResultStore(folder)
    for i in range(count):
        store.add(f"d{writer}-{i}", "fact", [row(f"d{writer}-{i}", "fact", "strict", float(i))], SETTINGS)


def test_two_writers_at_once_lose_nothing(tmp_path):
    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=_add_pairs, args=(tmp_path, w, 25)) for w in range(2)]
    for process in writers:
        process.start()
    for process in writers:
        process.join()
    assert [p.exitcode for p in writers] == [0, 0]
    pairs = ResultStore(tmp_path).pairs()
    assert sorted(pairs) == sorted((f"d{w}-{i}", "fact") for w in range(2) for i in range(25))


def test_merge_adds_the_other_folders_results_it_lacks(tmp_path):
    here, there = ResultStore(tmp_path / "here"), ResultStore(tmp_path / "there")
    here.add("iris", "fact", [row("iris", "fact", "strict", 90.0)], SETTINGS)
    there.add("iris", "fact", [row("iris", "fact", "strict", 10.0)], SETTINGS)  # the same pair: kept as here
    there.add("zoo", "fact", [row("zoo", "fact", "strict", 95.0)], None, wall_seconds=2.5)
    assert here.merge(there) == 1
    pairs = here.pairs()
    assert pairs["iris", "fact"]["rows"][0]["test_accuracy"] == 90.0
    assert (
        pairs["zoo", "fact"]["rows"][0]["test_accuracy"] == 95.0
        and pairs["zoo", "fact"]["wall_seconds"] == 2.5
    )
    assert pairs["zoo", "fact"]["settings"] is None


def test_the_benchmark_imports_a_folder_of_json_results_once(tmp_path):
    from factcli.experiments.rfm.benchmark import open_store

    stored = json_folder(tmp_path)
    store = open_store(tmp_path)
    assert sorted(store.pairs()) == sorted(tuple(name.split("__")) for name in stored)
    before = store.path.read_bytes()
    (tmp_path / "results" / "zoo__L1-KRR.json").unlink()  # the JSON files are not read again
    assert sorted(open_store(tmp_path).pairs()) == sorted(store.pairs()) and store.path.read_bytes() == before
