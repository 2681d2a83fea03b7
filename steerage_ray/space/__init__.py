"""Search spaces: dimensions, encoding, Sobol pools, mutation, the paper's presets, and
flat <-> nested configs. Importing this package needs neither Ray nor torch; the
conversion to and from Ray Tune param spaces (and Tune-style space files) lives in the
Ray layer, ``steerage_ray.searchers.tune_space``."""

from steerage_ray.space.dimensions import (Categorical, Choice, Condition, Dimension, Float,
                                           Integer)
from steerage_ray.space.nested import flatten_config, unflatten_config
from steerage_ray.space.presets import (PRESET_NAMES, ffnn_space, get_preset,
                                        lenet_fc_ranges, lenet_space, max_dr_ratio,
                                        preset_for_algorithm, resnet_depth, resnet_space)
from steerage_ray.space.search_space import SearchSpace

__all__ = [
    "Categorical", "Choice", "Condition", "Dimension", "Float", "Integer",
    "SearchSpace",
    "PRESET_NAMES", "ffnn_space", "get_preset", "lenet_fc_ranges", "lenet_space",
    "max_dr_ratio", "preset_for_algorithm", "resnet_depth", "resnet_space",
    "flatten_config", "unflatten_config",
]
