"""load_tabular: built-ins, CSV/Parquet files, name resolution and every user-facing error."""

import sys

import numpy as np
import pandas as pd
import pytest
from conftest import raises_one_line

from factcli.data import known_datasets, load_tabular
from factcli.data.records import TabularData


def write_csv(tmp_path, frame, name="table.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(autouse=True)
def no_env_root(monkeypatch):
    # A developer's FACT_DATA must not change what these tests see.
    monkeypatch.delenv("FACT_DATA", raising=False)


def fake_uci(root, names=("alpha", "beta")):
    """A UCI-looking collection whose folders only need to exist with a descriptor to be listed."""
    for name in names:
        (root / "uci" / name).mkdir(parents=True)
        (root / "uci" / name / f"{name}.txt").write_text("n_entradas= 1\n")
    return root


# ---- built-ins -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, shape, task, n_classes",
    [
        ("breast_cancer", (569, 30), "classification", 2),
        ("wine", (178, 13), "classification", 3),
        ("iris", (150, 4), "classification", 3),
        ("digits", (1797, 64), "classification", 10),
        ("diabetes", (442, 10), "regression", None),
    ],
)
def test_builtin_shapes_types_and_labels(name, shape, task, n_classes):
    data = load_tabular(name)
    assert isinstance(data, TabularData)
    assert (data.n, data.d) == shape and data.X.dtype == np.float64
    assert data.task == task and data.n_classes == n_classes
    assert data.source == "builtin" and data.splits is None
    assert len(data.feature_names) == data.d and np.isfinite(data.X).all()
    assert name in data.task_reason
    if task == "classification":
        assert data.y.dtype == np.int64 and data.y.shape == (data.n,)
        assert set(np.unique(data.y)) == set(range(n_classes))
        assert data.n_outputs == n_classes
    else:
        assert data.y.dtype == np.float64 and data.class_names is None and data.n_outputs == 1


def test_builtins_are_raw_not_standardized():
    iris = load_tabular("iris")
    assert iris.X[0].tolist() == [5.1, 3.5, 1.4, 0.2]
    assert iris.class_names == ["setosa", "versicolor", "virginica"]
    diabetes = load_tabular("diabetes")
    assert diabetes.X[0, :4].tolist() == [59.0, 2.0, 32.1, 101.0]  # age, sex, bmi, bp
    assert diabetes.y[0] == 151.0
    assert load_tabular("breast_cancer").class_names == ["malignant", "benign"]


def test_builtin_refuses_a_contradicting_task_or_a_target():
    raises_one_line(
        r"'diabetes' is a regression dataset; data.task=classification does not "
        r"apply \(use auto or regression\)",
        load_tabular,
        "diabetes",
        task="classification",
    )
    assert load_tabular("iris", task="classification").task == "classification"
    raises_one_line(
        r"'iris' is a built-in dataset with a fixed target; data.target only "
        r"applies to \.csv/\.parquet files",
        load_tabular,
        "iris",
        target="species",
    )


def test_unknown_task_value():
    raises_one_line(
        r"unknown task 'classify'; set data.task to one of: classification, "
        r"regression, auto",
        load_tabular,
        "iris",
        task="classify",
    )


# ---- name resolution ---------------------------------------------------------------------------


def test_unknown_name_without_root_suggests_and_says_how_to_set_one():
    message = raises_one_line("unknown dataset 'irsi'", load_tabular, "irsi")
    assert message == (
        "unknown dataset 'irsi': built-in: breast_cancer, diabetes, digits, iris, signal_in_noise, wine; "
        "no UCI data root set (set FACT_DATA or data.root); did you mean 'iris'?"
    )


def test_unknown_name_lists_every_uci_name_under_the_root(tmp_path):
    fake_uci(tmp_path, ["abalone", "letter", "magic"])
    message = raises_one_line("unknown dataset", load_tabular, "abalon", data_root=str(tmp_path))
    assert message == (
        "unknown dataset 'abalon': built-in: breast_cancer, diabetes, digits, iris, signal_in_noise, wine; "
        f"UCI under {tmp_path / 'uci'}: abalone, letter, magic (3); did you mean 'abalone'?"
    )
    # No close match: no suggestion.
    assert "did you mean" not in raises_one_line("unknown", load_tabular, "zzzzzz", data_root=tmp_path)


def test_root_without_uci_folder_says_so(tmp_path):
    message = raises_one_line("unknown dataset 'abalone'", load_tabular, "abalone", data_root=tmp_path)
    assert message.endswith(
        f"; no UCI data under {tmp_path} (expected {tmp_path / 'uci'}/<name>/; set FACT_DATA or data.root)"
    )


def test_known_datasets_and_root_from_environment(tmp_path, monkeypatch):
    assert known_datasets() == ["breast_cancer", "diabetes", "digits", "iris", "signal_in_noise", "wine"]
    fake_uci(tmp_path, ["beta", "alpha"])
    assert known_datasets(tmp_path)[-2:] == ["alpha", "beta"]
    assert known_datasets(tmp_path / "uci")[-2:] == ["alpha", "beta"]  # root = the uci folder
    monkeypatch.setenv("FACT_DATA", str(tmp_path))
    assert known_datasets() == known_datasets(tmp_path)


def test_real_uci_by_name_env_root_and_prefix(shared_data, monkeypatch):
    abalone = load_tabular("abalone", data_root=shared_data)
    assert abalone.source == "uci" and (abalone.n, abalone.d) == (4177, 8)
    assert load_tabular("abalone", data_root=shared_data / "uci").n == 4177
    monkeypatch.setenv("FACT_DATA", str(shared_data))
    assert load_tabular("abalone").splits is not None
    # The collection's iris is shadowed by the built-in; "uci:" reaches it.
    assert load_tabular("iris").source == "builtin"
    uci_iris = load_tabular("uci:iris")
    assert uci_iris.source == "uci" and uci_iris.splits is not None and uci_iris.n == 150
    raises_one_line(
        r"'abalone' is a classification dataset; data.task=regression",
        load_tabular,
        "abalone",
        task="regression",
    )
    raises_one_line(
        r"'abalone' is a UCI dataset with a fixed target", load_tabular, "abalone", target="rings"
    )


# ---- CSV ---------------------------------------------------------------------------------------


def test_csv_string_target_is_classification_with_sorted_classes(tmp_path):
    frame = pd.DataFrame(
        {"a": [1.0, 2.0, 3.0, 4.0], "b": [0, 1, 0, 1], "kind": ["pear", "apple", "pear", "fig"]}
    )
    path = write_csv(tmp_path, frame, "fruit.csv")
    data = load_tabular(str(path), target="kind")
    assert data.name == "fruit" and data.source == f"file:{path}"
    assert data.task == "classification" and data.class_names == ["apple", "fig", "pear"]
    assert data.y.tolist() == [2, 0, 2, 1] and data.y.dtype == np.int64
    assert data.X.tolist() == [[1, 0], [2, 1], [3, 0], [4, 1]] and data.X.dtype == np.float64
    assert data.feature_names == ["a", "b"]
    assert "classification guessed" in data.task_reason and "text" in data.task_reason
    assert data.task_source == "guessed"


def test_csv_few_distinct_integers_are_classes_many_are_regression(tmp_path):
    n = 500  # 50 classes of 10 rows each: the most classes the guess allows
    frame = pd.DataFrame({"x": np.arange(n, dtype=float), "y": np.arange(n) % 50 * 2 + 10})
    data = load_tabular(str(write_csv(tmp_path, frame)), target="y")
    assert data.task == "classification" and data.n_classes == 50 and data.task_source == "guessed"
    assert data.class_names[:3] == ["10", "12", "14"] and data.y[:3].tolist() == [0, 1, 2]
    assert data.task_reason == (
        "classification guessed: target 'y' has 50 distinct integers in 500 rows (at most 50, at least "
        "5 rows each on average, at most 10% of the rows); set data.task=regression to override"
    )
    frame["y"] = np.arange(n) % 51
    data = load_tabular(str(write_csv(tmp_path, frame)), target="y")
    assert data.task == "regression" and data.y.dtype == np.float64 and data.class_names is None
    assert "more than 50" in data.task_reason and "data.task=classification" in data.task_reason
    given = load_tabular(str(write_csv(tmp_path, frame)), target="y", task="classification")
    assert given.task == "classification" and given.n_classes == 51 and given.task_source == "given"


@pytest.mark.parametrize(
    "n, distinct, task",
    [
        (250, 50, "regression"),  # 5 rows per value, but values are 20% of the rows: a quantity
        (300, 30, "classification"),  # 10% of the rows
        (300, 31, "regression"),
        (40, 10, "regression"),  # 4 rows each
        (50, 10, "classification"),  # few values: 5 rows each suffice
        (7, 2, "classification"),  # two values are always classes
    ],
)
def test_integer_target_with_many_values_for_its_rows_is_a_quantity(tmp_path, n, distinct, task):
    rng = np.random.default_rng(0)
    y = np.concatenate([np.arange(distinct), rng.integers(0, distinct, n - distinct)])
    frame = pd.DataFrame({"x": rng.normal(size=n), "y": y})
    data = load_tabular(str(write_csv(tmp_path, frame)), target="y")
    assert data.task == task and data.task_source == "guessed"
    assert f"{distinct} distinct integers in {n} rows" in data.task_reason
    other = "regression" if task == "classification" else "classification"
    assert data.task_reason.endswith(f"set data.task={other} to override")


def test_csv_float_target_regression_and_explicit_classification(tmp_path):
    frame = pd.DataFrame({"x": [1, 2, 3, 4, 5], "y": [0.5, 1.5, 0.5, 2.25, 1.5]})
    path = str(write_csv(tmp_path, frame))
    data = load_tabular(path, target="y")
    assert data.task == "regression" and data.y.tolist() == [0.5, 1.5, 0.5, 2.25, 1.5]
    assert "non-integer values" in data.task_reason
    # as scikit-learn's classifiers refuse a continuous target
    raises_one_line(
        r"non-integer values \(e.g. 0.5\); classification needs", load_tabular, path, target="y",
        task="classification",
    )  # fmt: skip
    as_regression = load_tabular(path, target="y", task="regression")
    assert as_regression.task == "regression"


def test_csv_one_hot_encodes_text_features_in_place(tmp_path):
    frame = pd.DataFrame(
        {
            "size": [1.0, 2.0, 3.0],
            "color": ["red", "blue", "red"],
            "ok": [True, False, True],
            "y": [0, 1, 1],
        }
    )
    data = load_tabular(str(write_csv(tmp_path, frame)), target="y")
    assert data.feature_names == ["size", "color=blue", "color=red", "ok"]
    assert data.X.tolist() == [[1, 0, 1, 1], [2, 1, 0, 0], [3, 0, 1, 1]]


def test_csv_regression_on_text_target_is_refused(tmp_path):
    path = write_csv(tmp_path, pd.DataFrame({"x": [1, 2], "y": ["a", "b"]}))
    raises_one_line(
        r"target 'y' in .*table\.csv is not numeric; regression needs numbers "
        r"\(set data.task=classification\)",
        load_tabular,
        str(path),
        target="y",
        task="regression",
    )


def test_csv_single_class_is_refused(tmp_path):
    path = write_csv(tmp_path, pd.DataFrame({"x": [1, 2, 3], "label": ["x", "x", "x"]}))
    message = raises_one_line("only one class", load_tabular, str(path), target="label")
    assert message == ("only one class ('x') in target 'label'; classification needs at least two")


def test_csv_target_required_and_must_exist(tmp_path):
    path = write_csv(tmp_path, pd.DataFrame({"a": [1, 2], "b": [3, 4], "c": [0, 1]}))
    message = raises_one_line("needs a target column", load_tabular, str(path))
    assert message.endswith("set data.target to one of: a, b, c")
    message = raises_one_line("column 'label' not found in", load_tabular, str(path), target="label")
    assert message.endswith("set data.target to one of: a, b, c")


@pytest.mark.parametrize(
    "column, match",
    [
        ("age", r"column 'age' has 2 missing values in .*; fill or drop them before fitting"),
        ("y", r"target 'y' has 1 missing value in .*; fill or drop those rows before fitting"),
    ],
)
def test_csv_missing_values_are_refused(tmp_path, column, match):
    frame = pd.DataFrame({"age": [1.0, 2.0, 3.0, 4.0], "y": [0, 1, 0, 1]}).astype(float)
    frame.loc[[1, 3] if column == "age" else [2], column] = np.nan
    raises_one_line(match, load_tabular, str(write_csv(tmp_path, frame)), target="y")


def test_csv_infinite_values_are_refused(tmp_path):
    frame = pd.DataFrame({"a": [1.0, np.inf, -np.inf], "y": [0, 1, 1]})
    raises_one_line(
        r"column 'a' has 2 infinite values in .*; replace them",
        load_tabular,
        str(write_csv(tmp_path, frame)),
        target="y",
    )
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "y": [0.5, np.inf, 1.0]})
    raises_one_line(
        r"target 'y' has 1 infinite value in ",
        load_tabular,
        str(write_csv(tmp_path, frame)),
        target="y",
    )


def test_csv_too_small_empty_or_unparseable(tmp_path):
    one_row = write_csv(tmp_path, pd.DataFrame({"x": [1], "y": [0]}), "one.csv")
    raises_one_line(
        r"one\.csv has 1 data row\(s\); fitting needs at least 2",
        load_tabular,
        str(one_row),
        target="y",
    )
    header_only = tmp_path / "header.csv"
    header_only.write_text("x,y\n")
    raises_one_line(r"has 0 data row\(s\)", load_tabular, str(header_only), target="y")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    raises_one_line(r"empty\.csv is empty; a table needs a header line", load_tabular, str(empty), target="y")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("x,y\n1,2\n3,4,5,6\n")
    raises_one_line(
        r"cannot read .*ragged\.csv: Error tokenizing data", load_tabular, str(ragged), target="y"
    )
    only_target = write_csv(tmp_path, pd.DataFrame({"y": [0, 1]}), "only.csv")
    raises_one_line("no feature columns besides the target 'y'", load_tabular, str(only_target), target="y")


def test_missing_file_and_unsupported_suffix(tmp_path):
    raises_one_line(
        f"file not found: {tmp_path / 'nope.csv'}",
        load_tabular,
        str(tmp_path / "nope.csv"),
        target="y",
    )
    raises_one_line("file not found: nope.parquet", load_tabular, "nope.parquet", target="y")
    tsv = tmp_path / "table.tsv"
    tsv.write_text("x\ty\n1\t0\n")
    raises_one_line(
        r"unsupported file type '\.tsv' for .*; use one of: \.csv, \.parquet, \.pq",
        load_tabular,
        str(tsv),
        target="y",
    )


# ---- Parquet -----------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".parquet", ".pq"])
def test_parquet_round_trip(tmp_path, suffix):
    pytest.importorskip("pyarrow")
    frame = pd.DataFrame(
        {
            "x": [0.5, 1.5, 2.5, 3.5],
            "cat": pd.Categorical(["u", "v", "u", "u"]),
            "y": np.array([3, 1, 3, 1], dtype=np.int32),
        }
    )
    path = tmp_path / f"t{suffix}"
    frame.to_parquet(path)
    data = load_tabular(str(path), target="y")
    assert data.feature_names == ["x", "cat=u", "cat=v"]
    assert data.X.tolist() == [[0.5, 1, 0], [1.5, 0, 1], [2.5, 1, 0], [3.5, 1, 0]]
    assert data.class_names == ["1", "3"] and data.y.tolist() == [1, 0, 1, 0]


def test_parquet_without_pyarrow_says_how_to_install(tmp_path, monkeypatch):
    path = tmp_path / "t.parquet"
    path.write_bytes(b"not really parquet")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # makes `import pyarrow` fail
    message = raises_one_line("reading Parquet needs pyarrow", load_tabular, str(path), target="y")
    assert message == "reading Parquet needs pyarrow: pip install 'fact[parquet]'"


def test_damaged_parquet(tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"this is not a parquet file at all")
    raises_one_line(r"cannot read .*bad\.parquet: ", load_tabular, str(path), target="y")
