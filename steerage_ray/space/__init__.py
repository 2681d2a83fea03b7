"""Search spaces: dimensions, encoding, Sobol pools, mutation, the paper's presets, and
conversion to and from Ray Tune param spaces. Importing this package needs neither Ray
nor torch; ``ray.tune`` is imported only when a Tune conversion runs."""

from steerage_ray.space.files import load_space_file
from steerage_ray.space.dimensions import (Categorical, Choice, Condition, Dimension, Float,
                                           Integer)
from steerage_ray.space.presets import (PRESET_NAMES, ffnn_space, get_preset,
                                        lenet_fc_ranges, lenet_space, max_dr_ratio,
                                        resnet_depth, resnet_space)
from steerage_ray.space.search_space import SearchSpace
from steerage_ray.space.tune import flatten_config, from_tune, to_tune, unflatten_config

__all__ = [
    "Categorical", "Choice", "Condition", "Dimension", "Float", "Integer",
    "SearchSpace",
    "PRESET_NAMES", "ffnn_space", "get_preset", "lenet_fc_ranges", "lenet_space",
    "max_dr_ratio", "resnet_depth", "resnet_space",
    "flatten_config", "from_tune", "load_space_file", "to_tune", "unflatten_config",
]
