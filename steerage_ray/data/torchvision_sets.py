"""MNIST, Fashion-MNIST and CIFAR-10 from torchvision's on-disk formats.

Splits follow the paper: MNIST and Fashion-MNIST keep 50k of the 60k official training
images for training and 10k for validation, and use the official 10k test set.
CIFAR-10 uses 45k/5k from the official 50k training images plus the official 10k test
set. (The paper's Table 1 lists 55k/5k for CIFAR-10, which exceeds the 50k training
images CIFAR-10 has; we keep its 5k validation size.)

MNIST-style sets are read by ``torchvision.datasets.MNIST``/``FashionMNIST``, which
checks that ``<root>/<Class>/raw/*-ubyte`` exist but not their checksums. torchvision's
``CIFAR10`` refuses any batch file whose md5 differs from the official one, so we read
the ``cifar-10-batches-py`` pickle batches ourselves (the format torchvision reads) and
verify the official md5s with torchvision's own list unless ``verify=False``. Like
torchvision, this unpickles the batch files: only load files you trust.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from steerage_ray.data.arrays import from_arrays
from steerage_ray.data.cache import cache_dir
from steerage_ray.data.dataset import Dataset

MNIST_CLASSES = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
CIFAR10_FOLDER = "cifar-10-batches-py"


def default_root() -> Path:
    """Where torchvision datasets go when no ``root`` is given: ``<cache dir>/datasets``."""
    return cache_dir() / "datasets"


def _not_found(name: str, root: Path, expected: str) -> ValueError:
    return ValueError(
        f"dataset {name!r} not found under root={str(root)!r} (expected {expected}); pass "
        f"root= pointing to the directory that holds it, or download=True to fetch it"
    )


def load_mnist_like(name: str, *, root: str | os.PathLike | None = None,
                    download: bool = False, seed: int = 0,
                    val_fraction: float = 1 / 6) -> Dataset:
    """MNIST or Fashion-MNIST as ``(N, 1, 28, 28)`` images (50k/10k/10k by default)."""
    import torchvision.datasets

    root = Path(root) if root is not None else default_root()
    dataset_class = getattr(torchvision.datasets, MNIST_CLASSES[name])
    try:
        train = dataset_class(str(root), train=True, download=download)
        test = dataset_class(str(root), train=False, download=download)
    except RuntimeError as error:
        if download:
            raise
        raise _not_found(name, root, f"{MNIST_CLASSES[name]}/raw/*-idx?-ubyte") from error
    return from_arrays(name, train.data.numpy(), train.targets.numpy(),
                       X_test=test.data.numpy(), y_test=test.targets.numpy(), seed=seed,
                       val_fraction=val_fraction,
                       meta={"source": f"torchvision.datasets.{MNIST_CLASSES[name]}",
                             "root": str(root)})


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as file:
        batch = pickle.load(file, encoding="latin1")
    images = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    return images, np.asarray(batch["labels"], dtype=np.int64)


def load_cifar10(*, root: str | os.PathLike | None = None, download: bool = False,
                 seed: int = 0, val_fraction: float = 0.1, verify: bool = True) -> Dataset:
    """CIFAR-10 as ``(N, 3, 32, 32)`` images (45k/5k/10k by default).

    ``verify=True`` checks every batch file against torchvision's official md5 list;
    ``verify=False`` loads files in the same format that are not the official ones
    (e.g. a subset you made yourself).
    """
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import check_integrity

    root = Path(root) if root is not None else default_root()
    if download:
        CIFAR10(str(root), train=False, download=True)  # fetches and md5-checks if needed
    folder = root / CIFAR10_FOLDER
    files = CIFAR10.train_list + CIFAR10.test_list
    for filename, md5 in files:
        path = folder / filename
        if not path.is_file():
            raise _not_found("cifar10", root, f"{CIFAR10_FOLDER}/{filename}")
        if verify and not check_integrity(str(path), md5):
            raise ValueError(
                f"verify: {path} does not match the official CIFAR-10 md5 {md5}; pass "
                f"download=True to re-download it, or verify=False to load it as it is"
            )
    train = [_read_cifar_batch(folder / filename) for filename, _ in CIFAR10.train_list]
    X_test, y_test = _read_cifar_batch(folder / CIFAR10.test_list[0][0])
    return from_arrays("cifar10", np.concatenate([images for images, _ in train]),
                       np.concatenate([labels for _, labels in train]),
                       X_test=X_test, y_test=y_test, seed=seed, val_fraction=val_fraction,
                       meta={"source": "CIFAR-10 python batches", "root": str(root),
                             "verified_md5": bool(verify)})
