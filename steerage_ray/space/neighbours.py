"""One-step neighbourhoods: the architectures that differ from one in a single dimension.

Local moves are what a predictor-guided search refines its best architectures with (a
plain one-step local search is a strong baseline on architecture benchmarks). A
neighbour changes one active dimension:

* a categorical or small discrete dimension (at most ``enumerate_up_to`` values) takes
  each of its other values;
* a larger ordered grid moves ``1, 2, 4, ...`` steps (up to ``max_step``) either way,
  plus ``random_values`` values drawn anywhere on the grid;
* a continuous dimension moves by fractions of its range (in log space when
  log-scaled), plus ``random_values`` uniform draws.

When the changed dimension is the parent of conditional ones, children it activates get
random values and children it deactivates are dropped, as in ``SearchSpace.mutate``.
"""

from __future__ import annotations

import numpy as np

from steerage_ray.space.search_space import SearchSpace

_CONTINUOUS_MOVES = (-0.15, -0.05, 0.05, 0.15)


class Neighbourhood:
    """One-step neighbours of code rows of ``space`` (see the module docstring)."""

    def __init__(self, space: SearchSpace, enumerate_up_to: int = 8, max_step: int = 4,
                 random_values: int = 2) -> None:
        self.space = space
        self.enumerate_up_to = enumerate_up_to
        self.random_values = random_values
        self._steps = [s for s in (1, 2, 4, 8, 16) if s <= max_step]
        self._grids = [None if dim.n_values is None
                       else np.array([dim.code_at(k) for k in range(dim.n_values)])
                       for dim in space.dimensions]

    def of(self, codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Neighbours of every row of ``codes`` (duplicates possible across rows)."""
        codes = np.atleast_2d(np.asarray(codes, dtype=np.float64))
        blocks = [self._of_row(row, active, rng)
                  for row, active in zip(codes, self.space.activity(codes))]
        return np.concatenate(blocks) if blocks else np.empty((0, self.space.n_dims))

    def _of_row(self, row: np.ndarray, active: np.ndarray,
                rng: np.random.Generator) -> np.ndarray:
        children = []
        for position in np.flatnonzero(active):
            for code in self._moves(position, row[position], rng):
                child = row.copy()
                child[position] = code
                children.append(child)
        if not children:
            return np.empty((0, self.space.n_dims))
        return self._repair(np.array(children), active, rng)

    def _moves(self, position: int, code: float, rng: np.random.Generator) -> np.ndarray:
        dim, grid = self.space.dimensions[position], self._grids[position]
        if grid is None:
            return self._continuous_moves(dim, code, rng)
        if len(grid) <= self.enumerate_up_to:
            return grid[grid != code]
        index = int(np.argmin(np.abs(grid - code)))
        near = [index + sign * step for step in self._steps for sign in (-1, 1)]
        far = rng.integers(0, len(grid), self.random_values)
        chosen = {k for k in (*near, *far.tolist()) if 0 <= k < len(grid) and k != index}
        return grid[sorted(chosen)]

    def _continuous_moves(self, dim, code: float, rng: np.random.Generator) -> np.ndarray:
        if dim.log:
            low, high, x = np.log(dim.low), np.log(dim.high), np.log(code)
        else:
            low, high, x = dim.low, dim.high, code
        span = high - low
        u = (x - low) / span if span > 0 else 0.0
        units = np.clip(np.concatenate([u + np.array(_CONTINUOUS_MOVES),
                                        rng.random(self.random_values)]), 0.0, 1.0)
        moved = dim.unit_to_codes(units)
        return np.unique(moved[moved != code])

    def _repair(self, children: np.ndarray, was_active: np.ndarray,
                rng: np.random.Generator) -> np.ndarray:
        """Give newly active children random values; zero the inactive ones."""
        active = self.space.activity(children)
        for position, dim in enumerate(self.space.dimensions):  # parents before children
            woken = active[:, position] & ~was_active[position]
            if woken.any():
                children[woken, position] = dim.unit_to_codes(rng.random(int(woken.sum())))
                active = self.space.activity(children)  # a woken parent may wake more
            children[~active[:, position], position] = 0.0
        return children + 0.0  # -0.0 -> 0.0, so equal codes hash equal
