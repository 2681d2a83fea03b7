"""Image downsampling with Pillow's six resampling filters (paper Section 4.2.2).

Images are resized as 32-bit float ("F" mode) Pillow images, one channel at a time.
Pillow supports all six filters in that mode, so there is no uint8 round trip: no
quantization and no clipping of lanczos/bicubic overshoot. Every filter's weights sum to
one, so resizing standardized images equals resizing the raw images and standardizing
them, up to the per-channel re-standardization (train statistics) applied afterwards.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from PIL import Image

from steerage_ray.data.cache import cached_features
from steerage_ray.data.choices import resolve_choice
from steerage_ray.data.dataset import Dataset
from steerage_ray.data.scaling import standardize

IMAGE_FILTERS: tuple[str, ...] = ("lanczos", "nearest", "bilinear", "bicubic", "hamming", "box")
PILLOW_FILTERS = {name: Image.Resampling[name.upper()] for name in IMAGE_FILTERS}


def resolve_filter(image_filter: int | float | str) -> tuple[int, str]:
    """``(index, name)`` of a filter given by index 1-6 or name."""
    return resolve_choice(image_filter, IMAGE_FILTERS, "image_filter")


def target_size(dataset: Dataset, size: int | tuple[int, int]) -> tuple[int, int]:
    """Validated ``(height, width)``: an int means a square image; no upsampling."""
    if dataset.kind != "image":
        raise ValueError(f"image_size applies to image datasets, but {dataset.name!r} is "
                         f"{dataset.kind}; use dr_method/dr_ratio for tabular data")
    pair = (size, size) if isinstance(size, Integral) else tuple(size)
    native = dataset.input_shape[1:]
    if len(pair) != 2 or not all(isinstance(s, Integral) and not isinstance(s, bool)
                                 for s in pair):
        raise ValueError(f"image_size must be an int or a (height, width) pair of ints, "
                         f"got {size!r}")
    if not all(1 <= s <= n for s, n in zip(pair, native)):
        raise ValueError(f"image_size must be between 1 and the native size {native} "
                         f"(downsampling only), got {size!r}")
    return int(pair[0]), int(pair[1])


def resizes(dataset: Dataset, size: int | tuple[int, int]) -> bool:
    """Whether ``image_size`` ``size`` (validated by :func:`target_size`) changes the
    images of ``dataset``: a size equal to the native one leaves them as they are."""
    return target_size(dataset, size) != tuple(dataset.input_shape[1:])


def _resize(X: np.ndarray, size: tuple[int, int], resample: Image.Resampling) -> np.ndarray:
    height, width = size
    out = np.empty(X.shape[:2] + (height, width), dtype=np.float32)
    X = np.ascontiguousarray(X, dtype=np.float32)
    for n in range(X.shape[0]):
        for c in range(X.shape[1]):
            out[n, c] = np.asarray(Image.fromarray(X[n, c]).resize((width, height), resample))
    return out


def downsample_images(dataset: Dataset, filter: int | float | str,
                      size: int | tuple[int, int], *, cache: bool = True) -> Dataset:
    """Resize every image to ``size`` with Pillow filter ``filter`` (1-6 or name).

    The result is re-standardized per channel on the training split and cached (see
    ``steerage_ray.data.cache``). ``size`` equal to the native size returns the images
    unchanged (Pillow's resize is the identity there).
    """
    index, name = resolve_filter(filter)
    height, width = target_size(dataset, size)
    added = {"image_filter": index, "image_filter_name": name,
             "image_size": [height, width], "native_image_size": list(dataset.input_shape[1:])}
    if (height, width) == dataset.input_shape[1:]:
        return dataset.with_features(dataset.X_train, dataset.X_val, dataset.X_test, **added)

    def compute():
        resized = [_resize(X, (height, width), PILLOW_FILTERS[name])
                   for X in (dataset.X_train, dataset.X_val, dataset.X_test)]
        return (*standardize(*resized), added)

    return cached_features(dataset, "downsample", {"filter": name, "size": [height, width]},
                           compute, cache=cache)
