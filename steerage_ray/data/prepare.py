"""Turn a sampled architecture's data keys into the dataset that architecture trains on,
and check before a search that every architecture of a space can be prepared."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from steerage_ray.data.dataset import Dataset
from steerage_ray.data.images import downsample_images, resizes
from steerage_ray.data.reduction import reduce_dimensions, reduced_dimension

if TYPE_CHECKING:
    from steerage_ray.space import SearchSpace


def prepare_for_config(dataset: Dataset, config: Mapping[str, Any], seed: int = 0, *,
                       cache: bool = True) -> Dataset:
    """Apply the config's image downsampling, then its dimensionality reduction.

    Keys (see docs/ARCHITECTURE.md): ``image_filter`` + ``image_size`` resize images
    (a size equal to the native size leaves them unchanged; a size without a filter is
    only accepted when it is the native size, a filter without a size changes
    nothing); ``dr_method`` + ``dr_ratio`` reduce
    features (images are flattened first). Keys that are absent or ``None`` are
    skipped, all other keys are ignored, so any architecture config can be passed.
    Both steps are cached.
    """
    image_filter, image_size = config.get("image_filter"), config.get("image_size")
    if image_size is not None:
        if image_filter is not None:
            dataset = downsample_images(dataset, image_filter, image_size, cache=cache)
        elif resizes(dataset, image_size):
            raise ValueError(f"image_size={image_size!r} differs from the native size of "
                             f"{dataset.name!r} ({dataset.input_shape}) but image_filter is "
                             "not set; give an image_filter (1-6) to resize")
    dr_method, dr_ratio = config.get("dr_method"), config.get("dr_ratio")
    if dr_method is not None:
        if dr_ratio is None:
            raise ValueError("dr_ratio must be set (a number >= 1) when dr_method is set")
        dataset = reduce_dimensions(dataset, dr_method, dr_ratio, seed=seed, cache=cache)
    return dataset


def image_filter_matters(space: SearchSpace, dataset: Dataset) -> bool:
    """Whether the ``image_filter`` of a config of ``space`` can change what it trains
    on: only when images are resized, i.e. some ``image_size`` is below the native size
    of ``dataset`` (a size equal to it leaves the images as they are)."""
    if dataset.kind != "image":
        return False
    if "image_size" in space.names:
        return True  # a searched size: some value may resize
    size = space.constants.get("image_size")
    return size is not None and resizes(dataset, size)


def check_space_fits(space: SearchSpace, family: str, dataset: Dataset) -> None:
    """Raise ValueError before any trial if some config of ``space`` cannot train on ``dataset``.

    Checks what would otherwise fail inside trials: a space without the keys the
    family's networks are built from (e.g. ``neurons_1`` for ``ffnn``), a DR ratio
    leaving fewer than one feature, a convolutional family on tabular data, a fixed
    ``image_size`` that differs from the data's without an ``image_filter`` to resize,
    and weight precisions that are not supported (``precision.check_precision_keys``).
    """
    from steerage_ray.precision import check_precision_keys  # (imports data)

    check_precision_keys(space)
    if family != "ffnn" and dataset.kind != "image":
        raise ValueError(f"family {family!r} needs an image dataset, but {dataset.name!r} "
                         f"is tabular; use family='ffnn' or an image dataset")
    if "dr_ratio" in space.names:
        try:
            reduced_dimension(dataset.n_features, space["dr_ratio"].max_value)
        except ValueError as error:
            raise ValueError(f"space does not fit dataset {dataset.name!r} "
                             f"({dataset.n_features} features): {error}; build the space "
                             f"with ffnn_space(n_features={dataset.n_features})") from None
    size = space.constants.get("image_size")
    resizable = "image_filter" in space.names or "image_filter" in space.constants
    if size is not None and not resizable and dataset.kind == "image" \
            and tuple(dataset.input_shape[1:]) != (size, size):
        raise ValueError(f"space fixes image_size={size} but {dataset.name!r} has "
                         f"{dataset.input_shape[1]}x{dataset.input_shape[2]} images and "
                         f"the space has no image_filter to resize them")
    _check_family_keys(space, family, dataset)


def _check_family_keys(space: SearchSpace, family: str, dataset: Dataset) -> None:
    """Refuse a space whose smallest or largest config (every conditional dimension
    active) lacks a key the family's networks need, or holds one they cannot take."""
    from steerage_ray.complexity_estimate import estimate_complexity  # (imports data)

    for unit in (0.0, 1.0 - 1e-9):
        codes = np.column_stack([dim.unit_to_codes(np.array([unit]))
                                 for dim in space.dimensions]) if space.n_dims else \
            np.zeros((1, 0))
        config = space.decode_codes(codes)[0]
        try:
            estimate_complexity(family, config, dataset.input_shape, dataset.n_classes)
        except ValueError as error:
            keys = sorted(config)
            raise ValueError(f"space does not fit family {family!r}: {error}; the space "
                             f"has keys {keys} (see the {family!r} preset, "
                             f"docs/ARCHITECTURE.md)") from None
