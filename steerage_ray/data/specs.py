"""Dataset specs: the one description of "which data" that experiment files, trial
configs and the Python API share.

A spec is a dataset name (``"digits"``) or a dict with exactly one *source* key:

- ``name``: a built-in dataset (:data:`DATASET_NAMES`), with ``load_dataset`` options
  such as ``root``, ``seed``, ``val_fraction``;
- ``csv`` (plus ``label_column``), ``npz`` or ``image_folder``: a path, with the
  options of ``load_csv`` / ``load_npz`` / ``load_image_folder``.

:func:`load_dataset_spec` loads one, cached per process, so every Ray worker loads a
dataset once however many trials it runs.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
from collections.abc import Callable, Mapping
from typing import Any

from steerage_ray.data.dataset import Dataset
from steerage_ray.data.files import load_csv, load_image_folder, load_npz
from steerage_ray.data.loaders import load_dataset

FILE_LOADERS: dict[str, Callable[..., Dataset]] = {
    "csv": load_csv, "npz": load_npz, "image_folder": load_image_folder}
#: The keys that say where a dataset comes from; a spec has exactly one of them.
DATASET_SOURCES: tuple[str, ...] = ("name", *FILE_LOADERS)
#: Spec keys holding a path on this machine (``root``: where torchvision sets live).
PATH_KEYS: tuple[str, ...] = ("root", *FILE_LOADERS)


def dataset_source(spec: Mapping[str, Any]) -> str:
    """The source key of a spec dict (``"name"``, ``"csv"``, ``"npz"`` or ``"image_folder"``)."""
    sources = [key for key in DATASET_SOURCES if key in spec]
    if len(sources) != 1:
        names = ", ".join(map(repr, DATASET_SOURCES))
        raise ValueError(f"dataset spec needs exactly one of {names}; got keys {sorted(spec)}")
    return sources[0]


def normalise_spec(spec: str | Mapping[str, Any]) -> dict[str, Any]:
    """A spec as a dict with one source key (a name becomes ``{"name": name}``)."""
    if isinstance(spec, str):
        return {"name": spec}
    if not isinstance(spec, Mapping):
        raise ValueError(f"dataset must be a name, a spec dict or a Dataset, got "
                         f"{type(spec).__name__}")
    dataset_source(spec)
    return dict(spec)


def expand_paths(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The spec with ``~`` expanded in its path values."""
    return {key: os.path.expanduser(value) if key in PATH_KEYS and isinstance(value, str)
            else value for key, value in spec.items()}


def load_dataset_spec(spec: str | Mapping[str, Any]) -> Dataset:
    """Load a dataset from a name or a spec dict; cached per process (one load per worker)."""
    return _load_cached(_freeze(normalise_spec(spec)))


@functools.lru_cache(maxsize=4)
def _load_cached(frozen: str) -> Dataset:
    spec = json.loads(frozen)
    source = dataset_source(spec)
    if source == "name":
        return load_dataset(spec.pop("name"), **spec)
    loader = FILE_LOADERS[source]
    accepted = inspect.signature(loader).parameters
    required = [name for name, parameter in accepted.items()
                if parameter.default is inspect.Parameter.empty
                and parameter.kind is not inspect.Parameter.VAR_KEYWORD and name != "path"]
    missing = [name for name in required if name not in spec]
    if missing:
        raise ValueError(f"dataset spec with {source!r} needs {missing[0]!r}")
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
        unknown = sorted(set(spec) - set(accepted) - {source})
        if unknown:
            raise ValueError(f"dataset spec with {source!r}: unknown option(s) {unknown}; "
                             f"accepted: {[n for n in accepted if n != 'path']}")
    return loader(spec.pop(source), **spec)


def _freeze(spec: dict) -> str:
    try:
        return json.dumps(spec, sort_keys=True)
    except TypeError as error:
        raise ValueError(f"dataset spec values must be plain JSON values: {error}") from None
