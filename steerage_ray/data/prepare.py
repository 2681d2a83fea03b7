"""Turn a sampled architecture's data keys into the dataset that architecture trains on."""

from __future__ import annotations

from typing import Any, Mapping

from steerage_ray.data.dataset import Dataset
from steerage_ray.data.images import downsample_images, target_size
from steerage_ray.data.reduction import reduce_dimensions


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
        elif target_size(dataset, image_size) != dataset.input_shape[1:]:
            raise ValueError(f"image_size={image_size!r} differs from the native size of "
                             f"{dataset.name!r} ({dataset.input_shape}) but image_filter is "
                             "not set; give an image_filter (1-6) to resize")
    dr_method, dr_ratio = config.get("dr_method"), config.get("dr_ratio")
    if dr_method is not None:
        if dr_ratio is None:
            raise ValueError("dr_ratio must be set (a number >= 1) when dr_method is set")
        dataset = reduce_dimensions(dataset, dr_method, dr_ratio, seed=seed, cache=cache)
    return dataset
