"""MNIST (IDX files) and CIFAR-10 (python pickle batches): loaders and checksum-verified fetchers.

Loaders return ``(images, labels)``: float32 tensors (n, channels, height, width) scaled to [0, 1],
and int64 class indices. ``subset`` picks a seeded random subset (same seed, same rows, kept in file
order). Fetchers download to a temporary name, verify the MD5, then rename: a file under its final
name is always complete.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import pickle
import shutil
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from factcli.errors import FactError

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
IDX_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions (n, rows, columns)
IDX_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension (n)

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_BATCHES = {
    "train": tuple(f"data_batch_{k}" for k in range(1, 6)),
    "test": ("test_batch",),
}

# What a "files missing" message tells the user to run; {fetch} is fetch_mnist or fetch_cifar10.
FETCH_HINT = "python -c \"from factcli.data.images import {fetch}; {fetch}('{directory}')\""


def load_mnist(directory: str | Path, split: str = "train", subset: int | None = None, seed: int = 0):
    """MNIST ``split`` ("train" or "test") from the standard IDX files, gzipped or not."""
    import torch

    directory = Path(directory)
    _check_split(split, MNIST_FILES)
    found = {base: _find_idx_file(directory, base) for base in MNIST_FILES[split]}
    missing = [f"{base}[.gz]" for base, path in found.items() if path is None]
    if missing:
        hint = FETCH_HINT.format(fetch="fetch_mnist", directory=directory)
        raise FactError(
            f"MNIST {split} file(s) missing in {directory}: {', '.join(missing)}; fetch them with: {hint}"
        )
    images_base, labels_base = MNIST_FILES[split]
    images = _read_idx(found[images_base], IDX_IMAGES_MAGIC, "images")
    labels = _read_idx(found[labels_base], IDX_LABELS_MAGIC, "labels")
    if len(images) != len(labels):
        raise FactError(
            f"{found[images_base]} holds {len(images)} images but "
            f"{found[labels_base]} holds {len(labels)} labels; fetch both again"
        )
    keep = _subset_rows(len(labels), subset, seed, f"MNIST {split}")
    pixels = torch.from_numpy(images[keep].astype(np.float32) / 255.0).unsqueeze(1)
    return pixels, torch.from_numpy(labels[keep].astype(np.int64))


def load_cifar10(directory: str | Path, split: str = "train", subset: int | None = None, seed: int = 0):
    """CIFAR-10 ``split`` from the python batches, in ``directory/cifar-10-batches-py`` or
    ``directory`` itself."""
    import torch

    directory = Path(directory)
    _check_split(split, CIFAR10_BATCHES)
    folder = directory / CIFAR10_FOLDER if (directory / CIFAR10_FOLDER).is_dir() else directory
    missing = [name for name in CIFAR10_BATCHES[split] if not (folder / name).is_file()]
    if missing:
        hint = FETCH_HINT.format(fetch="fetch_cifar10", directory=directory)
        raise FactError(
            f"CIFAR-10 {split} batch(es) missing in {folder}: {', '.join(missing)}; fetch them with: {hint}"
        )
    batches = [_read_cifar_batch(folder / name) for name in CIFAR10_BATCHES[split]]
    data = np.concatenate([pixels for pixels, _ in batches])
    labels = np.concatenate([labels for _, labels in batches])
    keep = _subset_rows(len(labels), subset, seed, f"CIFAR-10 {split}")
    # Each row is 1024 red, then 1024 green, then 1024 blue values: channel-major already.
    pixels = data[keep].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0
    return torch.from_numpy(pixels), torch.from_numpy(labels[keep])


def fetch_mnist(directory: str | Path) -> Path:
    """Download the four standard MNIST files into ``directory`` (kept gzipped); returns it."""
    directory = _make_dir(directory)
    for file_name, md5 in MNIST_MD5.items():
        _fetch_verified(file_name, [m + file_name for m in MNIST_MIRRORS], md5, directory)
    return directory


def fetch_cifar10(directory: str | Path) -> Path:
    """Download and unpack CIFAR-10 into ``directory/cifar-10-batches-py``; returns that folder."""
    directory = _make_dir(directory)
    target = directory / CIFAR10_FOLDER
    wanted = [name for names in CIFAR10_BATCHES.values() for name in names]
    if all((target / name).is_file() for name in wanted):
        return target
    archive = _fetch_verified(Path(CIFAR10_URL).name, [CIFAR10_URL], CIFAR10_MD5, directory)
    staging = Path(tempfile.mkdtemp(prefix=".cifar-extract-", dir=directory))
    try:
        _safe_extract(archive, staging)
        unpacked = staging / CIFAR10_FOLDER
        if not all((unpacked / name).is_file() for name in wanted):
            raise FactError(
                f"{archive} does not hold {CIFAR10_FOLDER}/ with all batches; delete it and fetch again"
            )
        target.mkdir(exist_ok=True)
        for item in unpacked.iterdir():
            os.replace(item, target / item.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    archive.unlink()  # verified and unpacked: the 160 MB archive has done its job
    return target


def download_file(url: str, destination: Path) -> None:
    """Stream ``url`` into ``destination``. The one place that touches the network (tests
    replace it)."""
    import urllib.request

    with urllib.request.urlopen(url, timeout=60) as response, open(destination, "wb") as out:
        shutil.copyfileobj(response, out, 1 << 20)


def _check_split(split: str, table: dict) -> None:
    if split not in table:
        raise FactError(f"unknown split '{split}'; use one of: {', '.join(table)}")


def _find_idx_file(directory: Path, base: str) -> Path | None:
    for candidate in (directory / base, directory / f"{base}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _read_idx(path: Path, magic: int, kind: str) -> np.ndarray:
    """An IDX file of unsigned bytes: big-endian magic, one uint32 count per dimension, data."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as err:  # not gzip at all / gzip cut short
        raise FactError(f"{path}: cannot read ({err}); delete it and fetch again") from None
    found_magic = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    if found_magic != magic:
        raise FactError(
            f"{path}: bad IDX magic number {found_magic} (expected {magic} for "
            f"{kind}); not an MNIST {kind} file"
        )
    n_dims = magic & 0xFF
    header = 4 + 4 * n_dims
    if len(raw) < header:
        raise FactError(f"{path}: truncated inside its header; delete it and fetch again")
    dims = [int.from_bytes(raw[4 + 4 * k : 8 + 4 * k], "big") for k in range(n_dims)]
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        shape = " x ".join(map(str, dims))
        raise FactError(
            f"{path}: {len(raw)} bytes but its header ({kind} {shape}) needs "
            f"{expected}; the file is truncated or damaged, fetch it again"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _subset_rows(n: int, subset: int | None, seed: int, what: str) -> np.ndarray:
    if subset is None:
        return np.arange(n)
    if not 0 < subset <= n:
        raise FactError(f"subset={subset} does not fit the {n} examples of {what}; use 1..{n} or none")
    return np.sort(np.random.default_rng(seed).choice(n, size=subset, replace=False))


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays, lists and dicts, nothing else: a pickle can run arbitrary code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refers to {module}.{name}")
        return super().find_class(module, name)


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            batch = _ArraysOnlyUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise FactError(f"{path}: not a CIFAR-10 python batch ({err}); fetch it again") from None
    if not isinstance(batch, dict):
        raise FactError(f"{path}: not a CIFAR-10 python batch (no dict inside); fetch it again")
    # The official batches were pickled by Python 2 (bytes keys); accept str keys too.
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if data is None or labels is None:
        raise FactError(f"{path}: a CIFAR-10 batch needs 'data' and 'labels' entries")
    data = np.asarray(data)
    labels = np.asarray(labels, dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise FactError(f"{path}: 'data' is {data.dtype} {data.shape}, expected uint8 (N, 3072)")
    if labels.shape != (len(data),) or (labels.size and not 0 <= labels.min() <= labels.max() < 10):
        raise FactError(f"{path}: 'labels' must be {len(data)} class indices in 0..9")
    return data, labels


def _make_dir(directory: str | Path) -> Path:
    directory = Path(directory).expanduser()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise FactError(f"cannot create {directory}: {err.strerror or err}") from None
    return directory


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch_verified(file_name: str, urls: list[str], md5: str, directory: Path) -> Path:
    """``directory/file_name`` with the given MD5: kept if already right, else downloaded from
    the first URL that delivers the right bytes."""
    final = directory / file_name
    if final.is_file() and _md5(final) == md5:
        return final
    failures = []
    for url in urls:
        handle, temporary = tempfile.mkstemp(prefix=f".{file_name}.", suffix=".part", dir=directory)
        os.close(handle)
        try:
            download_file(url, Path(temporary))
            got = _md5(Path(temporary))
            if got == md5:
                os.replace(temporary, final)  # atomic: never a half file under the final name
                return final
            failures.append(f"{url}: checksum mismatch (md5 {got}, expected {md5})")
        except (OSError, http.client.HTTPException) as err:
            failures.append(f"{url}: {' '.join(str(err).split()) or type(err).__name__}")
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)
    raise FactError(f"could not fetch {file_name}: {'; '.join(failures)}")


def _safe_extract(archive: Path, destination: Path) -> None:
    """Unpack a tar archive, refusing links, devices and any path that leaves ``destination``."""
    root = destination.resolve()
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar.getmembers():
                inside = (root / member.name).resolve().is_relative_to(root)
                if not inside or not (member.isfile() or member.isdir()):
                    raise FactError(
                        f"{archive}: refusing to extract '{member.name}' (not a plain "
                        f"file inside the target folder)"
                    )
            if hasattr(tarfile, "data_filter"):
                tar.extractall(destination, filter="data")
            else:
                tar.extractall(destination)
    except (tarfile.TarError, EOFError, OSError) as err:
        raise FactError(f"{archive}: cannot unpack ({err}); delete it and fetch again") from None
