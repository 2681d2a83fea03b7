"""Datasets, dataset specs, splits, dimensionality reduction, image downsampling and
their caching. No Ray here."""

from steerage_ray.data.arrays import from_arrays
from steerage_ray.data.cache import ArrayCache, cache_dir, default_cache, fingerprint
from steerage_ray.data.dataset import Dataset
from steerage_ray.data.files import load_csv, load_image_folder, load_npz
from steerage_ray.data.images import IMAGE_FILTERS, downsample_images
from steerage_ray.data.loaders import DATASET_NAMES, load_dataset
from steerage_ray.data.prepare import (check_space_fits, image_filter_matters,
                                       prepare_for_config)
from steerage_ray.data.reduction import DR_METHODS, reduce_dimensions, reduced_dimension
from steerage_ray.data.specs import DATASET_SOURCES, dataset_source, load_dataset_spec

__all__ = [
    "ArrayCache", "DATASET_NAMES", "DATASET_SOURCES", "DR_METHODS", "Dataset",
    "IMAGE_FILTERS", "cache_dir", "check_space_fits", "dataset_source", "default_cache",
    "downsample_images", "fingerprint", "from_arrays", "image_filter_matters", "load_csv",
    "load_dataset", "load_dataset_spec", "load_image_folder", "load_npz",
    "prepare_for_config", "reduce_dimensions", "reduced_dimension",
]
