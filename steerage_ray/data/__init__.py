"""Datasets, splits, dimensionality reduction, image downsampling and their caching."""

from steerage_ray.data.arrays import from_arrays
from steerage_ray.data.cache import ArrayCache, cache_dir, default_cache, fingerprint
from steerage_ray.data.dataset import Dataset
from steerage_ray.data.files import load_csv, load_image_folder, load_npz
from steerage_ray.data.images import IMAGE_FILTERS, downsample_images
from steerage_ray.data.loaders import DATASET_NAMES, load_dataset
from steerage_ray.data.prepare import prepare_for_config
from steerage_ray.data.reduction import DR_METHODS, reduce_dimensions, reduced_dimension

__all__ = [
    "ArrayCache", "DATASET_NAMES", "DR_METHODS", "Dataset", "IMAGE_FILTERS", "cache_dir",
    "default_cache", "downsample_images", "fingerprint", "from_arrays", "load_csv",
    "load_dataset", "load_image_folder", "load_npz", "prepare_for_config",
    "reduce_dimensions", "reduced_dimension",
]
