"""User data from files: CSV tables, ``.npz`` arrays and folders of images."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from steerage_ray.data.arrays import from_arrays
from steerage_ray.data.dataset import Dataset
from steerage_ray.data.images import PILLOW_FILTERS, resolve_filter


def _existing(path: str | os.PathLike, field: str = "path", directory: bool = False) -> Path:
    path = Path(path).expanduser()
    exists = path.is_dir() if directory else path.is_file()
    if not exists:
        what = "directory" if directory else "file"
        raise ValueError(f"{field}: no such {what}: {str(path)!r}")
    return path


def load_csv(path: str | os.PathLike, label_column: str | int, *, name: str | None = None,
             seed: int = 0, val_fraction: float = 0.2, test_fraction: float = 0.2,
             **read_csv_options: Any) -> Dataset:
    """A tabular ``Dataset`` from a CSV file (60/20/20 stratified split by default).

    ``label_column`` is a column name, or a position when the name is not found and an
    int is given. All other columns must be numeric and complete. ``read_csv_options``
    go to :func:`pandas.read_csv` (e.g. ``sep=";"``).
    """
    path = _existing(path)
    table = _read_csv(path, read_csv_options)
    if label_column not in table.columns:
        if isinstance(label_column, int) and -table.shape[1] <= label_column < table.shape[1]:
            label_column = table.columns[label_column]
        else:
            raise ValueError(f"label_column {label_column!r} is not a column of {str(path)!r}; "
                             f"available columns: {list(table.columns)}")
    if table.empty:
        raise ValueError(f"csv: {str(path)!r} has a header but no data rows")
    features = table.drop(columns=[label_column])
    if features.shape[1] == 0:
        raise ValueError(f"csv: {str(path)!r} has no feature columns besides the label "
                         f"column {str(label_column)!r}")
    labels = table[label_column]
    if labels.nunique(dropna=True) < 2:
        raise ValueError(f"label_column {str(label_column)!r} of {str(path)!r} has a single "
                         f"class ({labels.iloc[0]}); classification needs at least 2")
    non_numeric = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if non_numeric:
        raise ValueError(f"feature columns {non_numeric} of {str(path)!r} are not numeric; "
                         "encode them as numbers or drop them")
    incomplete = [c for c in table.columns if table[c].isna().any()]
    if incomplete:
        raise ValueError(f"columns {incomplete} of {str(path)!r} have missing values; "
                         "impute or drop them first")
    return from_arrays(name or path.stem, features.to_numpy(dtype=np.float64),
                       table[label_column].to_numpy(), seed=seed, val_fraction=val_fraction,
                       test_fraction=test_fraction,
                       meta={"source": str(path), "label_column": str(label_column),
                             "feature_names": [str(c) for c in features.columns]})


def _read_csv(path: Path, options: dict) -> pd.DataFrame:
    """``pandas.read_csv`` whose errors name the file and say what is wrong."""
    with open(path, "rb") as file:
        head = file.read(1 << 16)
    try:
        head.decode(options.get("encoding") or "utf-8")
        text = b"\0" not in head
    except UnicodeDecodeError as error:
        text = error.start >= len(head) - 4  # a character cut at the end of the sample
    except LookupError:
        raise ValueError(f"csv encoding {options['encoding']!r} is unknown") from None
    if not text:
        raise ValueError(f"csv: {str(path)!r} is not a text CSV file (it holds binary "
                         f"data, or text in another encoding: pass encoding=...)")
    try:
        return pd.read_csv(path, **options)
    except pd.errors.EmptyDataError:
        raise ValueError(f"csv: {str(path)!r} is empty (no header, no rows)") from None
    except UnicodeDecodeError:
        raise ValueError(f"csv: {str(path)!r} is not a text CSV file (it holds bytes "
                         f"that are not text in the expected encoding)") from None
    except pd.errors.ParserError as error:
        reason = " ".join(str(error).split()).removeprefix("Error tokenizing data. ")
        raise ValueError(f"csv: cannot parse {str(path)!r}: {reason}") from None
    except TypeError as error:
        raise ValueError(f"csv options for {str(path)!r} are not accepted by "
                         f"pandas.read_csv: {error}") from None


# Accepted key sets of an .npz file, matched case-insensitively.
_NPZ_SPLITS = {"train": ("x_train", "y_train"), "val": ("x_val", "y_val"),
               "test": ("x_test", "y_test")}


def load_npz(path: str | os.PathLike, *, name: str | None = None, seed: int = 0,
             val_fraction: float = 0.2, test_fraction: float = 0.2) -> Dataset:
    """A ``Dataset`` from an ``.npz`` file.

    Accepted keys (case-insensitive): ``X`` and ``y`` (all rows; validation and test
    are carved out), or ``x_train``/``y_train`` with optional ``x_val``/``y_val`` and
    ``x_test``/``y_test`` (missing splits are carved out of train). Features are
    ``(N, d)`` tabular, ``(N, H, W)`` or ``(N, C, H, W)`` images.
    """
    path = _existing(path)
    try:
        with np.load(path, allow_pickle=False) as stored:
            keys = stored.files
            arrays = {key.lower(): stored[key] for key in keys}
    except (OSError, ValueError) as error:
        raise ValueError(f"path: cannot read {str(path)!r} as .npz: {error}") from error
    if len(arrays) != len(keys):
        raise ValueError(f"{str(path)!r} has keys that differ only in case; keep one of each")
    if {"x", "y"} <= arrays.keys():
        X, y = arrays["x"], arrays["y"]
        splits: dict[str, Any] = {}
    elif set(_NPZ_SPLITS["train"]) <= arrays.keys():
        X, y = arrays["x_train"], arrays["y_train"]
        splits = {f"{part}_{split}": arrays.get(key)
                  for split in ("val", "test")
                  for part, key in zip(("X", "y"), _NPZ_SPLITS[split])}
    else:
        raise ValueError(f"{str(path)!r} has keys {sorted(arrays)}; expected X and y, or "
                         "x_train and y_train (optionally x_val/y_val, x_test/y_test)")
    return from_arrays(name or path.stem, X, y, seed=seed, val_fraction=val_fraction,
                       test_fraction=test_fraction, meta={"source": str(path)}, **splits)


def load_image_folder(path: str | os.PathLike, image_size: int | tuple[int, int] | None = None,
                      grayscale: bool = False, *, name: str | None = None, seed: int = 0,
                      val_fraction: float = 0.2, test_fraction: float = 0.2,
                      resize_filter: int | str = "lanczos") -> Dataset:
    """An image ``Dataset`` from ``path/<class name>/<image files>`` (one class per folder).

    Images are converted to ``L`` (``grayscale=True``) or ``RGB``. With ``image_size``
    (an int for square images, or ``(height, width)``) every image is resized with
    ``resize_filter`` (a Pillow filter name or index, see ``IMAGE_FILTERS``); without
    it all images must already share one size. Files Pillow does not recognise by
    extension are skipped.
    """
    root = _existing(path, directory=True)
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_dirs:
        raise ValueError(f"path: {str(root)!r} has no class subfolders; expected "
                         "path/<class name>/<image files>")
    extensions = set(Image.registered_extensions())
    resample = PILLOW_FILTERS[resolve_filter(resize_filter)[1]]
    target = None
    if image_size is not None:
        height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
        if height < 1 or width < 1:
            raise ValueError(f"image_size must be positive, got {image_size!r}")
        target = (width, height)  # Pillow sizes are (width, height)

    images, labels = [], []
    for class_dir in class_dirs:
        for file in sorted(class_dir.iterdir()):
            if file.suffix.lower() not in extensions or file.name.startswith("."):
                continue
            try:
                with Image.open(file) as opened:
                    image = opened.convert("L" if grayscale else "RGB")
            except OSError as error:
                raise ValueError(f"path: cannot read image {str(file)!r}: {error}") from error
            if target is not None and image.size != target:
                image = image.resize(target, resample=resample)
            images.append(np.asarray(image))
            labels.append(class_dir.name)
    if not images:
        raise ValueError(f"path: no image files found below {str(root)!r}")
    sizes = sorted({image.shape[:2] for image in images})
    if len(sizes) > 1:
        raise ValueError(f"images under {str(root)!r} have different sizes {sizes[:5]}; pass "
                         "image_size= to resize them to one size")
    X = np.stack(images)
    X = X[:, None] if grayscale else X.transpose(0, 3, 1, 2)
    return from_arrays(name or root.name, X, np.asarray(labels), seed=seed,
                       val_fraction=val_fraction, test_fraction=test_fraction,
                       meta={"source": str(root)})
