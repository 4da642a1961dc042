"""MNIST and CIFAR-10: loaders on tiny files written here, fetchers with a fake downloader, and the
real MNIST test set when ../shared/data is present."""

import gzip
import hashlib
import io
import pickle
import tarfile
import urllib.error

import numpy as np
import pytest
import torch
from conftest import raises_one_line

from factcli.data import images
from factcli.data.images import fetch_cifar10, fetch_mnist, load_cifar10, load_mnist


def idx_bytes(array, magic):
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist(directory, split="train", n=6, gz=True, rows=28):
    """Image k is filled with the value 10 * label, so a subset can be checked row by row."""
    prefix = "train" if split == "train" else "t10k"
    labels = np.arange(n) % 10
    pixels = np.repeat(10 * labels, rows * rows).reshape(n, rows, rows)
    pixels[:, 0, 0] = 255
    for kind, array, magic in (("images-idx3", pixels, 2051), ("labels-idx1", labels, 2049)):
        data = idx_bytes(array, magic)
        name = f"{prefix}-{kind}-ubyte"
        if gz:
            (directory / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (directory / name).write_bytes(data)
    return labels


def md5(data):
    return hashlib.md5(data).hexdigest()


# ---- MNIST loader ------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_loads_gzipped_or_raw(tmp_path, gz):
    labels = write_mnist(tmp_path, "train", n=6, gz=gz)
    x, y = load_mnist(tmp_path, "train")
    assert x.shape == (6, 1, 28, 28) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and y.tolist() == labels.tolist()
    assert x[:, 0, 0, 0].tolist() == [1.0] * 6
    assert x[3, 0, 5, 5].item() == pytest.approx(30 / 255)
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0


def test_mnist_subset_is_seeded_and_keeps_pairs(tmp_path):
    write_mnist(tmp_path, "test", n=40)
    x, y = load_mnist(tmp_path, "test", subset=10, seed=3)
    assert x.shape == (10, 1, 28, 28) and len(set(y.tolist())) > 1
    # Image k was filled with 10 * label: the subset kept images with their own labels.
    assert torch.allclose(x[:, 0, 5, 5] * 255, 10 * y.float())
    again = load_mnist(tmp_path, "test", subset=10, seed=3)[1]
    other = [load_mnist(tmp_path, "test", subset=10, seed=s)[0][:, 0, 5, 5] for s in (4, 5, 6)]
    assert torch.equal(again, y)
    assert any(not torch.equal(o, x[:, 0, 5, 5]) for o in other)
    raises_one_line(
        r"subset=41 does not fit the 40 examples of MNIST test; use 1\.\.40 or none",
        load_mnist,
        tmp_path,
        "test",
        subset=41,
    )


def test_mnist_names_exactly_the_missing_files(tmp_path):
    write_mnist(tmp_path, "train")
    (tmp_path / "train-labels-idx1-ubyte.gz").unlink()
    message = raises_one_line("MNIST train file", load_mnist, tmp_path, "train")
    assert message.startswith(
        f"MNIST train file(s) missing in {tmp_path}: train-labels-idx1-ubyte[.gz]; fetch them with: "
    )
    assert "train-images" not in message and f"fetch_mnist('{tmp_path}')" in message
    message = raises_one_line("MNIST test file", load_mnist, tmp_path, "test")
    assert "t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]" in message
    raises_one_line(r"unknown split 'val'; use one of: train, test", load_mnist, tmp_path, "val")


def test_mnist_bad_magic_truncation_and_mismatch(tmp_path):
    write_mnist(tmp_path, "train", gz=False)
    images_file = tmp_path / "train-images-idx3-ubyte"
    labels_file = tmp_path / "train-labels-idx1-ubyte"
    good_images = images_file.read_bytes()
    images_file.write_bytes(labels_file.read_bytes())  # a labels file where images belong
    raises_one_line(
        r"train-images-idx3-ubyte: bad IDX magic number 2049 \(expected 2051 for "
        r"images\); not an MNIST images file",
        load_mnist,
        tmp_path,
    )
    images_file.write_bytes(good_images[:-100])
    raises_one_line(
        r"train-images-idx3-ubyte: 4620 bytes but its header \(images 6 x 28 x 28\) "
        r"needs 4720; the file is truncated or damaged",
        load_mnist,
        tmp_path,
    )
    images_file.write_bytes(good_images[:10])
    raises_one_line("truncated inside its header", load_mnist, tmp_path)
    images_file.write_bytes(good_images)
    labels_file.write_bytes(idx_bytes(np.zeros(5), 2049))
    raises_one_line("holds 6 images but .* holds 5 labels", load_mnist, tmp_path)
    labels_file.unlink()
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    raises_one_line(r"train-labels-idx1-ubyte\.gz: cannot read \(", load_mnist, tmp_path)


def test_real_mnist_test_set(shared_data):
    x, y = load_mnist(shared_data / "mnist", "test")
    assert x.shape == (10000, 1, 28, 28) and x.dtype == torch.float32
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert torch.bincount(y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert y[:5].tolist() == [7, 2, 1, 0, 4]


def test_mnist_checksums_match_the_shared_files(shared_data):
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert md5((shared_data / "mnist" / name).read_bytes()) == images.MNIST_MD5[name]


# ---- fetchers, with the network replaced -------------------------------------------------------


class FakeNetwork:
    """Stands in for images.download_file: serves bytes per URL, or raises for listed URLs."""

    def __init__(self, content_for, failing=()):
        self.content_for, self.failing, self.calls = content_for, failing, []

    def __call__(self, url, destination):
        self.calls.append(url)
        if any(url.startswith(prefix) for prefix in self.failing):
            raise urllib.error.URLError("simulated outage")
        destination.write_bytes(self.content_for(url))


def fake_mnist_payload(url):
    return f"payload of {url.rsplit('/', 1)[-1]}".encode()


def test_fetch_mnist_verifies_renames_and_skips_good_files(tmp_path, monkeypatch):
    expected = {name: md5(fake_mnist_payload(name)) for name in images.MNIST_MD5}
    monkeypatch.setattr(images, "MNIST_MD5", expected)
    network = FakeNetwork(fake_mnist_payload, failing=[images.MNIST_MIRRORS[0]])
    monkeypatch.setattr(images, "download_file", network)
    target = tmp_path / "new" / "mnist"
    assert fetch_mnist(target) == target
    assert sorted(p.name for p in target.iterdir()) == sorted(expected)  # no temporary left
    assert (target / "t10k-labels-idx1-ubyte.gz").read_bytes() == b"payload of t10k-labels-idx1-ubyte.gz"
    # The first mirror failed for every file, the second served it.
    assert len(network.calls) == 8 and network.calls[1].startswith(images.MNIST_MIRRORS[1])
    network.calls.clear()
    fetch_mnist(target)
    assert network.calls == []  # already present and verified: nothing downloaded


def test_fetch_mnist_checksum_mismatch_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "download_file", FakeNetwork(lambda url: b"tampered"))
    message = raises_one_line(
        r"could not fetch train-images-idx3-ubyte\.gz: https://ossci", fetch_mnist, tmp_path
    )
    assert message.count("checksum mismatch (md5 " + md5(b"tampered")) == 2
    assert "expected f68b3c2dcbeaaa9fbdd348bbdeb94873" in message
    assert list(tmp_path.iterdir()) == []


def test_fetch_mnist_all_mirrors_down(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "download_file", FakeNetwork(fake_mnist_payload, failing=["https://"]))
    message = raises_one_line("could not fetch", fetch_mnist, tmp_path)
    assert message.count("simulated outage") == 2 and list(tmp_path.iterdir()) == []


# ---- CIFAR-10 ----------------------------------------------------------------------------------


def cifar_batch(n, first_label, keys=(b"data", b"labels")):
    labels = [(first_label + k) % 10 for k in range(n)]
    data = np.zeros((n, 3072), dtype=np.uint8)
    for k, label in enumerate(labels):
        data[k, :1024], data[k, 1024:2048], data[k, 2048:] = label, 100, 200  # R, G, B planes
    return pickle.dumps({keys[0]: data, keys[1]: labels, b"batch_label": b"x"})


def write_cifar(folder, per_batch=3):
    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        (folder / name).write_bytes(cifar_batch(per_batch, k))


@pytest.mark.parametrize("nested", [True, False])
def test_cifar_loads_channel_major(tmp_path, nested):
    write_cifar(tmp_path / "cifar-10-batches-py" if nested else tmp_path)
    x, y = load_cifar10(tmp_path, "train")
    assert x.shape == (15, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert y.tolist() == [0, 1, 2, 1, 2, 3, 2, 3, 4, 3, 4, 5, 4, 5, 6]
    assert torch.all(x[4, 0] == 2 / 255) and torch.all(x[4, 1] == 100 / 255)
    assert torch.all(x[4, 2] == 200 / 255)
    x_test, y_test = load_cifar10(tmp_path, "test", subset=2, seed=1)
    assert x_test.shape == (2, 3, 32, 32) and set(y_test.tolist()) <= {5, 6, 7}


def test_cifar_missing_batch_and_bad_contents(tmp_path):
    write_cifar(tmp_path)
    (tmp_path / "data_batch_3").unlink()
    message = raises_one_line(
        f"CIFAR-10 train batch\\(es\\) missing in {tmp_path}: data_batch_3;",
        load_cifar10,
        tmp_path,
        "train",
    )
    assert "fetch_cifar10" in message
    (tmp_path / "test_batch").write_bytes(
        pickle.dumps({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]})
    )
    raises_one_line(
        r"test_batch: 'data' is uint8 \(2, 10\), expected uint8 \(N, 3072\)",
        load_cifar10,
        tmp_path,
        "test",
    )
    (tmp_path / "test_batch").write_bytes(cifar_batch(2, 0, keys=(b"pixels", b"labels")))
    raises_one_line("a CIFAR-10 batch needs 'data' and 'labels' entries", load_cifar10, tmp_path, "test")


def test_cifar_pickle_cannot_run_code(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (print, ("this must never run",))

    write_cifar(tmp_path)
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": Exploit()}))
    raises_one_line(
        r"test_batch: not a CIFAR-10 python batch \(refers to builtins\.print\)",
        load_cifar10,
        tmp_path,
        "test",
    )


def tar_gz(members):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_fetch_cifar10_unpacks_a_verified_archive(tmp_path, monkeypatch):
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    archive = tar_gz([(f"cifar-10-batches-py/{name}", cifar_batch(2, k)) for k, name in enumerate(names)])
    monkeypatch.setattr(images, "CIFAR10_MD5", md5(archive))
    network = FakeNetwork(lambda url: archive)
    monkeypatch.setattr(images, "download_file", network)
    folder = fetch_cifar10(tmp_path)
    assert folder == tmp_path / "cifar-10-batches-py"
    assert [p.name for p in tmp_path.iterdir()] == ["cifar-10-batches-py"]  # archive removed
    assert load_cifar10(tmp_path, "train")[1].tolist()[:4] == [0, 1, 1, 2]
    fetch_cifar10(tmp_path)
    assert network.calls == [images.CIFAR10_URL]  # second call: already unpacked


def test_fetch_cifar10_refuses_paths_outside_and_bad_checksums(tmp_path, monkeypatch):
    evil = tar_gz([("../escaped", b"x")])
    monkeypatch.setattr(images, "CIFAR10_MD5", md5(evil))
    monkeypatch.setattr(images, "download_file", FakeNetwork(lambda url: evil))
    target = tmp_path / "data"
    raises_one_line(r"refusing to extract '\.\./escaped'", fetch_cifar10, target)
    assert not (tmp_path / "escaped").exists()
    monkeypatch.setattr(images, "CIFAR10_MD5", "0" * 32)
    raises_one_line(
        r"could not fetch cifar-10-python\.tar\.gz: .*checksum mismatch",
        fetch_cifar10,
        tmp_path / "other",
    )
