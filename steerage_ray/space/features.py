"""Predictor features of encoded architectures (the default search's view of a code row).

``SearchSpace.encode_many`` gives canonical codes: the value itself for numeric
dimensions, the index of the choice for categorical ones, 0 when inactive. Those codes
identify architectures; they are a poor input for a learner: an index imposes an order
on unordered choices, and 0 for "inactive" is indistinguishable from a real 0. The
feature map fixes both:

* ordered dimensions (``Integer``, ``Float``, ``Choice``) stay one numeric column, in
  log space when the dimension is log-scaled;
* categorical dimensions become one 0/1 column per choice (one-hot), so a tree splits
  on "is this choice" rather than on an arbitrary index threshold;
* inactive conditional dimensions are missing (NaN): LightGBM learns on which side of
  each split missing values belong, so "this layer does not exist" is its own case.
"""

from __future__ import annotations

import numpy as np

from steerage_ray.space.dimensions import Categorical
from steerage_ray.space.search_space import SearchSpace


class FeatureMap:
    """Turns ``(m, space.n_dims)`` code matrices into ``(m, n_features)`` predictor inputs."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        names: list[str] = []
        for dim in space.dimensions:
            if isinstance(dim, Categorical):
                names.extend(f"{dim.name}={choice}" for choice in dim.choices)
            else:
                names.append(f"log({dim.name})" if getattr(dim, "log", False) else dim.name)
        self.names = tuple(names)

    @property
    def n_features(self) -> int:
        return len(self.names)

    def __call__(self, codes: np.ndarray) -> np.ndarray:
        codes = np.atleast_2d(np.asarray(codes, dtype=np.float64))
        active = self.space.activity(codes)
        columns = []
        for position, dim in enumerate(self.space.dimensions):
            code = codes[:, position]
            if isinstance(dim, Categorical):
                block = (code[:, None] == np.arange(dim.n_values)[None, :]).astype(float)
                block[~active[:, position]] = np.nan
                columns.append(block)
                continue
            value = np.log(np.maximum(code, 1e-300)) if getattr(dim, "log", False) else code
            columns.append(np.where(active[:, position], value, np.nan)[:, None])
        return np.hstack(columns) if columns else np.empty((len(codes), 0))
