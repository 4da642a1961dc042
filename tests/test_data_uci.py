"""The UCI collection: every real dataset against its descriptor, and every malformed piece."""

import numpy as np
import pytest
from conftest import raises_one_line

from factcli.data import list_uci, load_tabular, load_uci


def descriptor_of(folder):
    """An independent reading of <name>.txt (not the loader's), to check the loader against."""
    pairs = (
        line.split("=", 1) for line in (folder / f"{folder.name}.txt").read_text().split("\n") if "=" in line
    )
    return {key.strip(): value.strip() for key, value in pairs}


@pytest.fixture(scope="module")
def collection(shared_data):
    root = shared_data / "uci"
    return root, {name: load_uci(root, name) for name in list_uci(root)}


# ---- the real collection -----------------------------------------------------------------------


def test_all_96_datasets_load_and_match_their_descriptors(collection):
    root, datasets = collection
    assert len(datasets) == 96
    assert sum(d.n for d in datasets.values()) == 202223  # the collection's total row count
    for name, data in datasets.items():
        info = descriptor_of(root / name)
        n, n_classes = int(info["n_patrons1"]), int(info["n_clases"])
        assert data.X.shape == (n, int(info["n_entradas"])), name
        assert data.X.dtype == np.float64 and np.isfinite(data.X).all(), name
        assert data.y.dtype == np.int64 and data.y.shape == (n,), name
        assert data.y.min() >= 0 and data.y.max() < n_classes, name
        assert data.n_classes == n_classes and data.class_names == [str(k) for k in range(n_classes)], name
        assert data.task == "classification" and data.source == "uci" and data.name == name
        assert data.feature_names == [f"f{k}" for k in range(1, data.d + 1)], name


def test_real_splits_have_the_structure_the_protocol_relies_on(collection):
    root, datasets = collection
    for name, data in datasets.items():
        info = descriptor_of(root / name)
        splits, everything = data.splits, np.arange(data.n)
        # conxuntos.dat: a partition of all rows into train and validation, sizes as declared.
        assert len(splits.train) == int(info["n_patrons_entrena"]), name
        assert len(splits.val) == int(info["n_patrons_valida"]), name
        assert np.array_equal(np.sort(np.concatenate([splits.train, splits.val])), everything), name
        # conxuntos_kfold.dat: each of the 4 folds partitions all rows into train and test ...
        assert len(splits.folds) == 4
        for train, test in splits.folds:
            assert train.dtype == np.int64 and test.dtype == np.int64
            assert np.array_equal(np.sort(np.concatenate([train, test])), everything), name
            assert len(test) == len(splits.folds[0][1]), name  # same size in every fold
        # ... but the 4 test parts are separate draws, not a 4-way partition: they overlap.
        tests = np.concatenate([test for _, test in splits.folds])
        assert len(np.unique(tests)) < len(tests), name


def test_known_values(collection):
    _, datasets = collection
    abalone = datasets["abalone"]
    assert abalone.X[0].tolist() == [
        -1.15421,
        -0.574489,
        -0.432097,
        -1.0643,
        -0.641821,
        -0.607613,
        -0.726125,
        -0.63814,
    ]
    assert abalone.y[:3].tolist() == [2, 0, 1]
    assert abalone.splits.train[:3].tolist() == [16, 1557, 3028]
    assert [len(part) for part in abalone.splits.folds[0]] == [3133, 1044]
    chess = datasets["chess-krvk"]
    assert (chess.n, chess.d, chess.n_classes) == (28056, 6, 18)
    assert np.bincount(chess.y)[:4].tolist() == [2796, 27, 78, 246]
    # fich2= names a test file that is not shipped; only fich1's rows are loaded.
    assert datasets["annealing"].n == 798 and datasets["optical"].n == 3823


# ---- a tiny synthetic dataset, then damaged one piece at a time ---------------------------------


def make_dataset(root, name="tiny", n=10, d=2, n_classes=2, labels=None, descriptor_extra=""):
    """A valid dataset folder in the collection's layout; returns the folder."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    labels = [k % n_classes for k in range(n)] if labels is None else labels
    (folder / f"{name}.txt").write_text(
        f"n_entradas= {d}\nn_clases={n_classes}\nn_arquivos= 1\nfich1= {name}_R.dat\n"
        f"n_patrons1= {n}\nn_patrons_entrena= {n // 2}\nn_patrons_valida= {n - n // 2}\n"
        f"n_conxuntos= 1\n{descriptor_extra}"
    )
    header = "\t" + "\t".join(f"f{k}" for k in range(1, d + 1)) + "\tclase\n"
    rows = "".join(
        f"{i + 1}\t" + "\t".join(f"{0.5 * i + k}" for k in range(d)) + f"\t{labels[i]}\n" for i in range(n)
    )
    (folder / f"{name}_R.dat").write_text(header + rows)
    order = list(range(n))
    (folder / "conxuntos.dat").write_text(
        " ".join(map(str, order[: n // 2])) + "\n" + " ".join(map(str, order[n // 2 :])) + "\n"
    )
    cut = 3 * n // 4
    fold_lines = []
    for k in range(4):
        shifted = order[k:] + order[:k]
        fold_lines += [" ".join(map(str, shifted[:cut])), " ".join(map(str, shifted[cut:]))]
    (folder / "conxuntos_kfold.dat").write_text("\n".join(fold_lines) + "\n")
    return folder


def test_synthetic_dataset_loads_exactly(tmp_path):
    make_dataset(tmp_path, descriptor_extra="fich2= tiny_test_R.dat\nn_patrons2= 5\n")
    data = load_uci(tmp_path, "tiny")
    assert data.X[3].tolist() == [1.5, 2.5] and data.y.tolist() == [0, 1] * 5
    assert data.splits.train.tolist() == [0, 1, 2, 3, 4] and data.splits.val.tolist() == [
        5,
        6,
        7,
        8,
        9,
    ]
    assert data.splits.folds[1][1].tolist() == [8, 9, 0]
    assert list_uci(tmp_path) == ["tiny"]


def test_declared_classes_without_rows_are_kept(tmp_path):
    make_dataset(tmp_path, n_classes=4, labels=[0, 1] * 5)
    data = load_uci(tmp_path, "tiny")
    assert data.n_classes == 4 and data.class_names == ["0", "1", "2", "3"]


def test_list_uci_needs_a_descriptor(tmp_path):
    make_dataset(tmp_path, "good")
    (tmp_path / "no-descriptor").mkdir()
    (tmp_path / "stray.txt").write_text("x")
    assert list_uci(tmp_path) == ["good"]
    assert list_uci(tmp_path / "missing") == []


def rewrite(path, transform):
    path.write_text(transform(path.read_text()))


@pytest.mark.parametrize(
    "damage, match",
    [
        (
            lambda f: rewrite(f / "conxuntos.dat", lambda t: t.split("\n")[0] + "\n"),
            r"^tiny/conxuntos\.dat: expected 2 lines of indices, found 1$",
        ),
        (
            lambda f: rewrite(f / "conxuntos_kfold.dat", lambda t: "\n".join(t.split("\n")[:7])),
            r"^tiny/conxuntos_kfold\.dat: expected 8 lines of indices, found 7$",
        ),
        (
            lambda f: rewrite(f / "conxuntos.dat", lambda t: t.replace("0 1", "0 10")),
            r"^tiny/conxuntos\.dat line 1: index 10 outside 0\.\.9$",
        ),
        (
            lambda f: rewrite(f / "conxuntos.dat", lambda t: t.replace("0 1", "0 x1")),
            r"^tiny/conxuntos\.dat line 1: 'x1' is not an integer index$",
        ),
        (
            lambda f: rewrite(f / "conxuntos.dat", lambda t: t.replace("0 1", "0 5")),
            r"^tiny/conxuntos\.dat: training and validation share 1 index\(es\) \(e\.g\. 5\)",
        ),
        (
            lambda f: rewrite(f / "conxuntos_kfold.dat", lambda t: t.replace("8 9 0", "8 9 1")),
            r"^tiny/conxuntos_kfold\.dat: fold 2 train and test share 1 index\(es\) \(e\.g\. 1\)",
        ),
        (
            lambda f: rewrite(f / "tiny.txt", lambda t: t.replace("entrena= 5", "entrena= 6")),
            r"^tiny/conxuntos\.dat: 5 training indices but tiny\.txt declares "
            r"n_patrons_entrena= 6$",
        ),
        (
            lambda f: rewrite(f / "tiny.txt", lambda t: t.replace("n_patrons1= 10", "n_patrons1= 11")),
            r"^tiny/tiny_R\.dat: 10 rows but tiny\.txt declares n_patrons1= 11$",
        ),
        (
            lambda f: rewrite(f / "tiny.txt", lambda t: t.replace("n_entradas= 2", "n_entradas= 3")),
            r"^tiny/tiny_R\.dat: 2 feature columns but tiny\.txt declares n_entradas= 3$",
        ),
        (
            lambda f: rewrite(f / "tiny_R.dat", lambda t: t[:-2] + "2\n"),
            r"^tiny/tiny_R\.dat: label 2 outside 0\.\.1 \(n_clases= 2 in tiny\.txt\)$",
        ),
        (
            lambda f: rewrite(f / "tiny_R.dat", lambda t: t[:-2] + "0.5\n"),
            r"^tiny/tiny_R\.dat: the last column \(class label\) has non-integer values$",
        ),
        (
            lambda f: rewrite(f / "tiny_R.dat", lambda t: t.replace("\t1.5\t", "\t\t", 1)),
            r"^tiny/tiny_R\.dat: 1 missing or empty value \(first in data row 2\)$",
        ),
        (
            lambda f: rewrite(f / "tiny_R.dat", lambda t: t.replace("\t1.5\t", "\tabc\t")),
            r"^tiny/tiny_R\.dat: cannot parse \(",
        ),
        (
            lambda f: rewrite(f / "tiny_R.dat", lambda t: t.replace("\t1.5\t", "\t1.5\t7\t")),
            r"^tiny/tiny_R\.dat: cannot parse \(Error tokenizing data",
        ),
        (
            lambda f: (f / "tiny_R.dat").unlink(),
            r"^tiny/tiny_R\.dat not found \(named by fich1= in tiny\.txt\)$",
        ),
        (
            lambda f: (f / "conxuntos_kfold.dat").unlink(),
            r"^tiny/conxuntos_kfold\.dat not found; the UCI protocol needs its fixed splits$",
        ),
        (
            lambda f: (f / "tiny.txt").unlink(),
            r"^tiny/tiny\.txt not found; every UCI dataset folder needs its descriptor$",
        ),
        (
            lambda f: rewrite(f / "tiny.txt", lambda t: t.replace("fich1= tiny_R.dat\n", "")),
            r"^tiny/tiny\.txt: missing 'fich1=' \(needs n_entradas, ",
        ),
        (
            lambda f: rewrite(f / "tiny.txt", lambda t: t.replace("n_clases=2", "n_clases=two")),
            r"^tiny/tiny\.txt: n_clases= must be an integer, found 'two'$",
        ),
        (
            lambda f: rewrite(f / "tiny.txt", lambda t: t + "garbage line\n"),
            r"^tiny/tiny\.txt line 9: expected key= value, found 'garbage line'$",
        ),
        (
            lambda f: rewrite(f / "tiny.txt", lambda t: t.replace("fich1= tiny_R", "fich1= ../tiny_R")),
            r"^tiny/tiny\.txt: fich1= must name a file in the dataset folder",
        ),
    ],
)
def test_each_malformed_piece_names_the_file_and_the_problem(tmp_path, damage, match):
    damage(make_dataset(tmp_path))
    raises_one_line(match, load_uci, tmp_path, "tiny")


def test_folder_without_descriptor_reached_through_load_tabular(tmp_path):
    (tmp_path / "uci" / "empty").mkdir(parents=True)
    make_dataset(tmp_path / "uci", "tiny")
    raises_one_line(r"^empty/empty\.txt not found", load_tabular, "empty", data_root=tmp_path)
    assert load_tabular("tiny", data_root=tmp_path).n == 10
