"""Table files as users bring them: a test file never shapes training; numbers and dates stored as
text; duplicate column names; separators; dataset names that mean one dataset each."""

import datetime
import json
import logging

import numpy as np
import pandas as pd
import pytest
from conftest import raises_one_line

from factcli.data import known_datasets, load_tabular
from factcli.data.table_pair import load_with_test_file
from factcli.errors import FactError


@pytest.fixture(autouse=True)
def no_env_root(monkeypatch):
    # A developer's FACT_DATA must not change what these tests see.
    monkeypatch.delenv("FACT_DATA", raising=False)


def write(tmp_path, name, lines):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def table(tmp_path, name, frame):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


# ---- the test file shapes nothing ------------------------------------------------------------


def test_fractional_test_labels_do_not_turn_classification_into_regression(tmp_path):
    rng = np.random.default_rng(0)
    train = table(tmp_path, "train.csv", pd.DataFrame({"x": rng.normal(size=20), "y": np.arange(20) % 2}))
    test = table(tmp_path, "test.csv", pd.DataFrame({"x": [0.1, 0.2, 0.3], "y": [0.0, 0.5, 1.0]}))
    message = raises_one_line(
        "has classes never seen in the training file: 0.5", load_with_test_file, train, test, target="y"
    )
    assert str(test) in message
    # Labels written 1.0 in the test file are the training file's class 1.
    write(tmp_path, "test.csv", ["x,y", "0.1,1.0", "0.2,0.0", "0.3,1"])
    data, held_out = load_with_test_file(train, test, target="y")
    assert data.task == "classification" and data.class_names == ["0", "1"]
    assert data.y[-3:].tolist() == [1, 0, 1] and held_out.rows == 3


def test_the_task_guess_counts_the_training_rows_only(tmp_path):
    # 10 distinct integers in 40 training rows (4 each): a quantity. With the test file's 100 rows
    # counted as well, the same labels would have passed for classes.
    labels = np.arange(40) % 10
    train = table(tmp_path, "train.csv", pd.DataFrame({"x": np.arange(40.0), "y": labels}))
    test = table(tmp_path, "test.csv", pd.DataFrame({"x": np.arange(100.0), "y": np.arange(100) % 10}))
    data, _ = load_with_test_file(train, test, target="y")
    alone = load_tabular(str(train), target="y")
    assert data.task == alone.task == "regression"
    assert data.task_reason == alone.task_reason and "in 40 rows" in data.task_reason


def test_a_test_cell_cannot_change_how_a_training_column_is_encoded(tmp_path):
    rng = np.random.default_rng(1)
    train = table(tmp_path, "train.csv", pd.DataFrame({"size": rng.normal(size=20), "y": np.arange(20) % 2}))
    # Half the rows of both files together are text: read together, "size" would become one-hot.
    test = table(tmp_path, "test.csv", pd.DataFrame({"size": ["big", "small"] * 10, "y": np.arange(20) % 2}))
    message = raises_one_line(
        r"column 'size' holds numbers in the training file but not in the test file .*test\.csv: "
        r"20 cells \(row 1: 'big', row 2: 'small', row 3: 'big' and 17 more\)",
        load_with_test_file,
        train,
        test,
        target="y",
    )
    assert "train.csv" not in message


def test_training_encoding_is_the_same_with_or_without_the_test_file(tmp_path):
    train = write(
        tmp_path,
        "train.csv",
        [
            "price,colour,when,y",
            '"$1,200",red,2024-03-05,a',
            "$950,blue,2024-03-06,b",
            "$20,red,2024-03-07,a",
            "$35.5,,2024-03-08,b",
        ],
    )
    # Other categories, plain numbers, a date with a time, labels in another order.
    test = write(
        tmp_path,
        "test.csv",
        ["y,price,colour,when", "b,1000,violet,2024-04-01T12:00", "a,$5,red,2024-03-05", "a,7,,2024-01-01"],
    )
    alone = load_tabular(str(train), target="y")
    data, held_out = load_with_test_file(train, test, target="y")
    assert (
        data.feature_names
        == alone.feature_names
        == [
            "price",
            "colour=<missing>",
            "colour=blue",
            "colour=red",
            "when (days since 1970-01-01)",
        ]
    )
    np.testing.assert_array_equal(data.X[:4], alone.X)
    assert data.class_names == alone.class_names == ["a", "b"] and data.y.tolist() == [0, 1, 0, 1, 1, 0, 0]
    assert (data.task, data.task_reason) == (alone.task, alone.task_reason)
    assert held_out.unseen_categories == {"colour": 1}  # violet; the missing colour was seen in training
    day = (datetime.date(2024, 4, 1) - datetime.date(1970, 1, 1)).days
    np.testing.assert_array_equal(
        data.X[4:], [[1000, 0, 0, 0, day + 0.5], [5, 0, 0, 1, day - 27], [7, 1, 0, 0, day - 91]]
    )


def test_missing_values_in_the_test_file_are_named_there(tmp_path):
    train = table(tmp_path, "train.csv", pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [0, 1, 0, 1]}))
    test = write(tmp_path, "test.csv", ["x,y", "1.5,0", ",1", "?,0"])
    message = raises_one_line(
        r"column 'x' has 2 missing values in the test file .*test\.csv; fill or drop them before fitting "
        r"or set data.missing=median",
        load_with_test_file,
        train,
        test,
        target="y",
    )
    assert "train.csv" not in message
    data, _ = load_with_test_file(train, test, target="y", missing="median")
    assert np.isnan(data.X[:, 0]).tolist() == [False] * 5 + [True, True]  # imputed by the caller
    write(tmp_path, "test.csv", ["x,y", "1.5,0", "2.5,"])
    raises_one_line(
        r"target 'y' has 1 missing value in the test file .*test\.csv",
        load_with_test_file,
        train,
        test,
        target="y",
    )


# ---- numbers and dates stored as text --------------------------------------------------------


def test_numbers_written_as_text_are_numbers(tmp_path):
    path = write(
        tmp_path,
        "t.csv",
        [
            "price,rate,count,y",
            '"$1,200",12%,"1,234,567",0',
            "$950.50,7.5%,12,1",
            "-$3,-1%,0,0",
            "€4,100%,1e3,1",
        ],
    )
    data = load_tabular(str(path), target="y")
    assert data.feature_names == ["price", "rate", "count"] and data.d == 3
    expected = [[1200, 0.12, 1234567], [950.5, 0.075, 12], [-3, -0.01, 0], [4, 1.0, 1000]]
    np.testing.assert_allclose(data.X, expected, rtol=1e-15)
    assert data.read_as == {
        "price": "numbers written as text (currency signs, thousands separators)",
        "rate": "numbers written as text (percent signs); 12% read as 0.12",
        "count": "numbers written as text (thousands separators)",
    }


def test_question_marks_are_missing_numbers_not_categories(tmp_path):
    # The UCI way: 13 of 100 cells are '?'. Read as text, the column became ~88 one-hot columns.
    rng = np.random.default_rng(2)
    x = [f"{v:.4f}" for v in rng.normal(size=100)]
    for i in range(0, 100, 8):
        x[i] = "?"
    lines = ["x,z,y"] + [f"{x[i]},{i % 3},{i % 2}" for i in range(100)]
    path = write(tmp_path, "t.csv", lines)
    raises_one_line(
        r"column 'x' has 13 missing values in .*set data.missing=median", load_tabular, str(path), target="y"
    )
    data = load_tabular(str(path), target="y", missing="median")
    assert data.feature_names == ["x", "z"] and int(np.isnan(data.X[:, 0]).sum()) == 13
    assert (data.X[1:8, 0] == [float(v) for v in x[1:8]]).all()
    # ' ?' with spaces around (as in the Adult files) is the same marker.
    path.write_text(path.read_text().replace("?,", " ? ,"))
    assert int(np.isnan(load_tabular(str(path), target="y", missing="median").X[:, 0]).sum()) == 13


def test_iso_dates_are_days_since_1970_and_say_so(tmp_path, caplog):
    path = write(
        tmp_path,
        "t.csv",
        ["when,y", "2024-03-05,0", "1970-01-02T12:00:00,1", "1969-12-31 00:00,0", "2000-01-01T00:00Z,1"],
    )
    with caplog.at_level(logging.INFO, logger="fact"):
        data = load_tabular(str(path), target="y")
    expected = [(datetime.date(2024, 3, 5) - datetime.date(1970, 1, 1)).days, 1.5, -1, 10957]
    assert data.feature_names == ["when (days since 1970-01-01)"] and data.X[:, 0].tolist() == expected
    assert data.read_as == {"when": "ISO dates read as days since 1970-01-01 UTC"}
    assert "column 'when' of t.csv: ISO dates read as days since 1970-01-01 UTC" in caplog.text
    write(tmp_path, "t.csv", ["when,y", "2024-03-05,0", "2024-02-30,1", "2024-03-01,0"])
    raises_one_line(
        r"column 'when' has dates that do not exist in .*: 1 cell \(row 2: '2024-02-30'\)",
        load_tabular,
        str(path),
        target="y",
    )


@pytest.mark.parametrize(
    "cells",
    [
        [f"{m:02d}/{d:02d}/2024" for m, d in zip(range(1, 13), range(10, 22), strict=True)],  # day or month?
        [f"{k},{k + 3}" for k in range(12)],  # decimal commas
    ],
)
def test_numbers_or_dates_in_a_form_not_read_are_refused_naming_the_column(tmp_path, cells):
    path = table(tmp_path, "t.csv", pd.DataFrame({"when": cells, "y": np.arange(12) % 2}))
    raises_one_line(
        rf"column 'when' in .* holds numbers or dates in a form fact does not read \(e.g. '{cells[0]}', ",
        load_tabular,
        str(path),
        target="y",
    )


def test_a_number_column_with_some_other_cells_names_them(tmp_path):
    # 30% 'unknown': too many for typos, but one-hot the 70 numbers would be 70 columns.
    x = [str(k) if k % 10 >= 3 else "unknown" for k in range(100)]
    path = table(tmp_path, "t.csv", pd.DataFrame({"x": x, "y": np.arange(100) % 2}))
    raises_one_line(
        r"column 'x' in .* holds numbers except 30 cells \(row 1: 'unknown', row 2: 'unknown', row 3: "
        r"'unknown' and 27 more\); fix or remove those cells, or leave a missing value empty or '\?'",
        load_tabular,
        str(path),
        target="y",
    )


def test_a_text_column_of_identifiers_is_refused_not_exploded(tmp_path):
    frame = pd.DataFrame(
        {"name": [f"person-{k}" for k in range(120)], "x": np.arange(120.0), "y": np.arange(120) % 2}
    )
    raises_one_line(
        r"column 'name' in .* has 120 distinct text values in 120 rows: .* drop the column",
        load_tabular,
        str(table(tmp_path, "t.csv", frame)),
        target="y",
    )


def test_one_and_one_point_zero_are_one_class(tmp_path):
    path = write(tmp_path, "t.csv", ["x,y", "1,1", "2,1.0", "3,2", "4,cat", "5, 2 ", "6,1"])
    data = load_tabular(str(path), target="y")
    assert data.class_names == ["1", "2", "cat"] and data.y.tolist() == [0, 0, 1, 2, 1, 0]


# ---- the file itself -------------------------------------------------------------------------


def test_a_column_named_twice_is_refused_naming_it(tmp_path):
    path = write(tmp_path, "t.csv", ["a,b,a,y", "1,2,3,0", "4,5,6,1"])
    message = raises_one_line(
        r"names a column more than once: 'a' \(columns 1, 3\)", load_tabular, str(path), target="y"
    )
    assert message.endswith("give every column its own name")
    train = write(tmp_path, "train.csv", ["a,b,y", "1,2,0", "4,5,1"])
    raises_one_line(
        r"test\.csv names a column more than once: 'y'",
        load_with_test_file,
        train,
        write(tmp_path, "test.csv", ["a,y,b,y", "1,0,2,1"]),
        target="y",
    )


@pytest.mark.parametrize("separator", [";", "\t", "|"])
def test_the_separator_is_the_one_that_splits_the_header(tmp_path, separator):
    lines = [separator.join(row) for row in (["a", "b", "y"], ["1.5", "x", "0"], ["2.5", "z", "1"])]
    data = load_tabular(str(write(tmp_path, "t.csv", lines)), target="y")
    assert data.feature_names == ["a", "b=x", "b=z"] and data.X[:, 0].tolist() == [1.5, 2.5]


# ---- names that mean one dataset ------------------------------------------------------------


def test_every_dataset_is_listed_once_under_a_name_that_means_it(shared_data):
    names = known_datasets(shared_data)
    builtin = ["breast_cancer", "diabetes", "digits", "iris", "signal_in_noise", "wine"]
    assert names[:6] == builtin
    assert {"uci:iris", "uci:wine", "uci:breast-cancer", "abalone"} <= set(names)
    assert not {"iris", "wine", "breast-cancer"} & set(names[6:])
    assert len(names) == len(set(names)) == len(builtin) + 96


def test_qualified_names_reach_one_source_and_bare_ones_say_which(shared_data, caplog):
    for name, source, rows in [
        ("uci:wine", "uci", 178),
        ("builtin:wine", "builtin", 178),
        ("uci:breast-cancer", "uci", 286),
    ]:
        data = load_tabular(name, data_root=shared_data)
        assert data.source == source and data.n == rows
        assert data.name == (name if source == "uci" else "wine")  # the record names the UCI one uci:<name>
    with caplog.at_level(logging.INFO, logger="fact"):
        assert load_tabular("wine", data_root=shared_data).source == "builtin"
        assert load_tabular("breast-cancer", data_root=shared_data).name == "uci:breast-cancer"
    assert "dataset=wine: scikit-learn's built-in wine (the UCI collection's is uci:wine)" in caplog.text
    assert (
        "dataset=breast-cancer: the UCI collection's breast-cancer (scikit-learn's is builtin:breast_cancer)"
        in caplog.text
    )
    raises_one_line(
        r"unknown built-in dataset 'abalone' in dataset=builtin:abalone; built-in: breast_cancer, ",
        load_tabular,
        "builtin:abalone",
        data_root=shared_data,
    )


def test_fit_rfm_records_what_the_training_file_taught(fact_cli, tmp_path):
    rng = np.random.default_rng(3)

    def rows(n, colours):
        x = rng.normal(size=(n, 2))
        label = (x[:, 0] + x[:, 1] > 0).astype(int)
        return x, rng.choice(colours, n), label

    x, colour, label = rows(80, ["red", "blue"])
    train = write(
        tmp_path,
        "train.csv",
        ["x0,x1,colour,label"]
        + [f'"${a * 1000:,.2f}",{b:.4f},{c},{y}' for (a, b), c, y in zip(x, colour, label, strict=True)],
    )
    x, colour, label = rows(30, ["red", "violet"])
    lines = [
        f"{'?' if i == 0 else f'{a * 1000:.2f}'},{b:.4f},{c},{y}"
        for i, ((a, b), c, y) in enumerate(zip(x, colour, label, strict=True))
    ]
    test = write(tmp_path, "test.csv", ["x0,x1,colour,label", *lines])
    out = tmp_path / "run"
    fast = ["rfm.iters=1", "grid.ridges=[0.1]", "grid.normalize_rows=[false]", "plots=false", "threads=1"]
    result = fact_cli(
        "fit-rfm",
        f"dataset={train}",
        "data.target=label",
        f"data.test={test}",
        "data.missing=median",
        *fast,
        f"hydra.run.dir={out}",
    )
    assert result.exit_code == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["n"], summary["d"], summary["test_rows"]) == (110, 4, 30)
    assert summary["task"] == "classification" and "in 80 rows" in summary["task_reason"]
    assert summary["read_as"] == {"x0": "numbers written as text (currency signs, thousands separators)"}
    assert summary["imputed_missing"] == {"x0": 1} and summary["unseen_test_categories"] == {
        "colour": (colour == "violet").sum()
    }
    assert summary["test_accuracy"] > 0.8  # a linear boundary, dollars or not


def test_parquet_dates_and_categories_are_read_like_their_csv_text(tmp_path):
    pytest.importorskip("pyarrow")
    frame = pd.DataFrame(
        {
            "when": pd.to_datetime(["2024-03-05", "1970-01-02 12:00", "2000-01-01"], format="ISO8601"),
            "colour": pd.Categorical(["red", "blue", "red"]),
            "y": [0, 1, 0],
        }
    )
    frame.to_parquet(tmp_path / "t.parquet")
    frame.to_csv(tmp_path / "t.csv", index=False)
    parquet = load_tabular(str(tmp_path / "t.parquet"), target="y")
    text = load_tabular(str(tmp_path / "t.csv"), target="y")
    assert (
        parquet.feature_names
        == text.feature_names
        == ["when (days since 1970-01-01)", "colour=blue", "colour=red"]
    )
    np.testing.assert_array_equal(parquet.X, text.X)
    assert parquet.X[:, 0].tolist() == [19787, 1.5, 10957]


def test_imputation_takes_the_training_rows_median_only(tmp_path):
    from factcli.experiments.rfm.fit import impute_missing

    train = write(tmp_path, "train.csv", ["x,y", "1,0", "2,1", "?,0", "4,1", "100,0"])
    test = write(tmp_path, "test.csv", ["x,y", "?,0", "1000,1", "1000,0", "1000,1"])
    data, _ = load_with_test_file(train, test, target="y", missing="median")
    assert impute_missing(data, training_rows=np.arange(5)) == {"x": 2}
    assert data.X[:, 0].tolist() == [1, 2, 3, 4, 100, 3, 1000, 1000, 1000]  # median of 1, 2, 4, 100


def test_fit_rfm_takes_a_qualified_name_and_records_which_dataset_ran(fact_cli, tmp_path, shared_data):
    fast = ["rfm.iters=1", "grid.ridges=[0.1]", "grid.normalize_rows=[false]", "plots=false", "threads=1"]
    out = tmp_path / "run"
    result = fact_cli(
        "fit-rfm", "dataset=uci:iris", f"data.root={shared_data}", *fast, f"hydra.run.dir={out}"
    )
    assert result.exit_code == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"] == "uci:iris" and summary["n"] == 150


def test_a_column_missing_in_every_training_row_is_named_when_imputing():
    from types import SimpleNamespace

    from factcli.experiments.rfm.fit import impute_missing

    X = np.array([[1.0, np.nan, 2.0], [2.0, np.nan, np.nan], [3.0, 5.0, 1.0], [4.0, 6.0, 0.0]])
    data = SimpleNamespace(X=X.copy(), feature_names=["age", "income", "score"])
    with pytest.raises(FactError, match="numeric column 'income' has no values in the training rows"):
        impute_missing(data, training_rows=np.array([0, 1]))
    assert np.array_equal(data.X, X, equal_nan=True)  # nothing imputed before the refusal
    counts = impute_missing(data, training_rows=np.array([0, 1, 2]))
    assert counts == {"income": 2, "score": 1} and data.X[0, 1] == 5.0 and data.X[1, 2] == 1.5
