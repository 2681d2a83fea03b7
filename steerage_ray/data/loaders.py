"""``load_dataset``: every named dataset behind one function."""

from __future__ import annotations

import inspect
import os
from functools import partial
from typing import Any, Callable

from steerage_ray.checks import is_integer
from steerage_ray.data.bundled import (SKLEARN_LOADERS, load_digits_images, load_mnist1d,
                                      load_sklearn)
from steerage_ray.data.dataset import Dataset
from steerage_ray.data.torchvision_sets import MNIST_CLASSES, load_cifar10, load_mnist_like

_LOADERS: dict[str, Callable[..., Dataset]] = {
    **{name: partial(load_sklearn, name) for name in SKLEARN_LOADERS},
    "digits_images": load_digits_images,
    "mnist1d": load_mnist1d,
    **{name: partial(load_mnist_like, name) for name in MNIST_CLASSES},
    "cifar10": load_cifar10,
}
DATASET_NAMES: tuple[str, ...] = tuple(_LOADERS)
_FILE_BASED = {"mnist", "fashion_mnist", "cifar10"}


def load_dataset(name: str, *, root: str | os.PathLike | None = None, download: bool = False,
                 seed: int = 0, **options: Any) -> Dataset:
    """Load a named dataset as a standardized, stratified ``Dataset`` split by ``seed``.

    Names: ``DATASET_NAMES``. Bundled sets (digits, digits_images, wine, breast_cancer,
    iris; 60/20/20 by default, options ``val_fraction``, ``test_fraction``) and MNIST-1D
    (generated offline and cached; options ``val_fraction``, ``generator_args``) never
    touch the network. ``mnist``, ``fashion_mnist`` and ``cifar10`` read torchvision's
    on-disk format from ``root`` (default ``<cache dir>/datasets``) and download only if
    ``download=True``; they keep the official test set, so their only split option is
    ``val_fraction`` (plus ``verify`` for cifar10). ``root``/``download`` are ignored
    by the sets that need no files.
    """
    if name not in _LOADERS:
        raise ValueError(f"dataset name {name!r} is unknown; valid names: {list(DATASET_NAMES)}")
    if not is_integer(seed) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    loader = _LOADERS[name]
    accepted = [parameter for parameter in inspect.signature(loader).parameters
                if parameter not in ("root", "download", "seed")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"options {unknown} are not accepted by dataset {name!r}; accepted "
                         f"options: {accepted}")
    if name in _FILE_BASED:
        return loader(root=root, download=download, seed=seed, **options)
    return loader(seed=seed, **options)
