"""A search space: ordered dimensions, optional conditions, and constants.

This is the global search's view of an architecture (paper Sec. 4.3-4.5): a flat config
``dict`` for the trainable and a fixed-length float vector for the accuracy predictor.
Everything that touches many configs (encoding, Sobol pools, random populations) works
column by column on arrays of codes, so a population of 20,000 encodes in milliseconds.

Conventions shared by every method:

* A conditional dimension is *inactive* when its condition fails (or its parent is
  inactive). Inactive dimensions decode to None, encode as 0, are not part of
  :meth:`SearchSpace.key`, and whatever value a config holds for them is ignored (so
  configs sampled by Ray Tune from the unconditional :func:`~.tune.to_tune` space are
  accepted).
* Constants (dataset name, epochs, a fixed image size) ride along in every decoded,
  sampled or mutated config and are never encoded. A config may omit them, but may not
  give them a different value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from scipy.stats import qmc

from steerage_ray.checks import integer, is_integer
from steerage_ray.space.dimensions import Categorical, Dimension, is_real

# Sobol keeps doubling its draw to replace duplicates until this many points (or 8x the
# first draw) have been drawn; any shortfall left then is filled by enumerating the grid.
_MIN_SOBOL_BUDGET = 2 ** 16


def as_generator(rng: Any) -> np.random.Generator:
    """A numpy Generator from a Generator or an int seed (never an unseeded one)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if is_integer(rng) and rng >= 0:
        return np.random.default_rng(int(rng))
    raise ValueError(f"rng must be a numpy.random.Generator or an int seed >= 0, got {rng!r}")


def _label(n_configs: int, row: int) -> str:
    """How error messages name a config: by position only when there are several."""
    return "config" if n_configs == 1 else f"config #{row}"


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # e.g. arrays, whose == is elementwise
        return a is b


class SearchSpace:
    """Ordered dimensions plus constants; the bridge between configs and vectors."""

    def __init__(self, dimensions: Iterable[Dimension],
                 constants: Mapping[str, Any] | None = None) -> None:
        self._dims: tuple[Dimension, ...] = tuple(dimensions)
        self._constants: dict[str, Any] = self._check_constants(constants)
        self._index = self._check_dimensions()
        # For each dimension: (parent position, min_value) or None when unconditional.
        self._parents = [None if d.condition is None
                         else (self._index[d.condition.parent], d.condition.min_value)
                         for d in self._dims]

    def _check_dimensions(self) -> dict[str, int]:
        if not self._dims:
            raise ValueError("dimensions: a search space needs at least one dimension")
        index: dict[str, int] = {}
        for position, dim in enumerate(self._dims):
            if not isinstance(dim, Dimension):
                raise ValueError(f"dimensions[{position}] must be a Dimension (Integer, "
                                 f"Float, Choice or Categorical), got {dim!r}")
            if dim.name in index:
                raise ValueError(f"dimensions: duplicate name {dim.name!r}")
            if dim.name in self._constants:
                raise ValueError(f"constants: {dim.name!r} is also a dimension; "
                                 "remove it from one of them")
            if dim.condition is not None:
                self._check_condition(dim, index)
            index[dim.name] = position
        return index

    def _check_condition(self, dim: Dimension, earlier: Mapping[str, int]) -> None:
        parent = dim.condition.parent
        if parent not in earlier:
            where = "is defined after it" if any(d.name == parent for d in self._dims) \
                else "does not exist"
            raise ValueError(f"{dim.name}: condition parent {parent!r} {where}; a parent "
                             "must be a dimension listed before its children")
        parent_dim = self._dims[earlier[parent]]
        if isinstance(parent_dim, Categorical):
            raise ValueError(f"{dim.name}: condition parent {parent!r} is categorical; "
                             "conditions compare numbers (use Integer or Choice)")
        if parent_dim.max_value < dim.condition.min_value:
            raise ValueError(f"{dim.name}: condition {parent} >= {dim.condition.min_value} "
                             f"can never hold ({parent} is at most {parent_dim.max_value})")

    @staticmethod
    def _check_constants(constants: Mapping[str, Any] | None) -> dict[str, Any]:
        if constants is None:
            return {}
        if not isinstance(constants, Mapping):
            raise ValueError(f"constants must be a mapping of name to value, got {constants!r}")
        bad = [k for k in constants if not isinstance(k, str) or not k]
        if bad:
            raise ValueError(f"constants: names must be non-empty strings, got {bad[0]!r}")
        return dict(constants)

    # ----------------------------------------------------------------- description
    @property
    def dimensions(self) -> tuple[Dimension, ...]:
        return self._dims

    @property
    def constants(self) -> dict[str, Any]:
        """A copy of the constants (changing it does not change the space)."""
        return dict(self._constants)

    @property
    def names(self) -> tuple[str, ...]:
        """Dimension names, in encoding order."""
        return tuple(d.name for d in self._dims)

    @property
    def n_dims(self) -> int:
        return len(self._dims)

    def __getitem__(self, name: str) -> Dimension:
        if name not in self._index:
            raise KeyError(f"{name!r} is not a dimension; dimensions: {list(self.names)}")
        return self._dims[self._index[name]]

    def without(self, names: Iterable[str], field: str = "names") -> "SearchSpace":
        """The space without the dimensions ``names``, with the same constants.

        Each must be an unconditional dimension that no other dimension's condition
        refers to, and at least one dimension must remain; ``field`` names the
        argument in the errors.
        """
        names = tuple(names)
        for name in names:
            if name not in self._index:
                raise ValueError(f"{field}: {name!r} is not a dimension of the space "
                                 f"{list(self.names)}")
            if self[name].condition is not None:
                raise ValueError(f"{field}: {name!r} is conditional (active only when "
                                 f"{self[name].condition.parent} is large enough); only "
                                 f"unconditional dimensions can be left out")
            children = [d.name for d in self._dims
                        if d.condition is not None and d.condition.parent == name]
            if children:
                raise ValueError(f"{field}: {name!r} decides whether {children} are "
                                 f"active, so it cannot be left out")
        kept = [d for d in self._dims if d.name not in names]
        if not kept:
            raise ValueError(f"{field}: leaving out {list(names)} leaves no dimension to "
                             f"search")
        return SearchSpace(kept, self._constants)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SearchSpace):
            return NotImplemented
        return self._dims == other._dims and self._constants == other._constants

    def __repr__(self) -> str:
        lines = [f"    {d!r}," for d in self._dims]
        return "SearchSpace([\n" + "\n".join(lines) + f"\n], constants={self._constants!r})"

    @property
    def cardinality(self) -> int | float:
        """Number of distinct configurations (``math.inf`` with a continuous dimension).

        Only the thresholds that children compare a parent against matter, so parents
        are enumerated by "which children are active", not value by value.
        """
        if any(d.n_values is None for d in self._dims):
            return math.inf
        thresholds: dict[int, list[float]] = {}
        for parent in filter(None, self._parents):
            thresholds.setdefault(parent[0], []).append(parent[1])
        row = np.zeros((1, self.n_dims))
        return self._count_from(0, row, np.zeros(row.shape, dtype=bool), thresholds)

    def _count_from(self, position: int, row: np.ndarray, active: np.ndarray,
                    thresholds: Mapping[int, list[float]]) -> int:
        if position == self.n_dims:
            return 1
        dim = self._dims[position]
        active[:, position] = self._active_column(position, active, row)
        if not active[0, position]:
            return self._count_from(position + 1, row, active, thresholds)
        if position not in thresholds:
            return dim.n_values * self._count_from(position + 1, row, active, thresholds)
        codes = np.array([dim.code_at(k) for k in range(dim.n_values)])
        signatures = codes[:, None] >= np.array(thresholds[position])[None, :]
        _, first, counts = np.unique(signatures, axis=0, return_index=True,
                                     return_counts=True)
        total = 0
        for representative, count in zip(codes[first], counts):
            row[0, position] = representative
            total += int(count) * self._count_from(position + 1, row, active, thresholds)
        return total

    # ---------------------------------------------------------------- activity
    def _active_column(self, position: int, active: np.ndarray,
                       codes: np.ndarray) -> np.ndarray:
        """Which rows have dimension ``position`` active, given its parent's column."""
        parent = self._parents[position]
        if parent is None:
            return np.ones(codes.shape[0], dtype=bool)
        return active[:, parent[0]] & (codes[:, parent[0]] >= parent[1])

    def activity(self, codes: np.ndarray) -> np.ndarray:
        """(m, n_dims) activity mask of a code matrix (only parents' columns are read)."""
        active = np.ones(codes.shape, dtype=bool)
        for position in range(self.n_dims):
            active[:, position] = self._active_column(position, active, codes)
        return active

    # ---------------------------------------------------------------- encoding
    def encode(self, config: Mapping[str, Any]) -> np.ndarray:
        """The predictor's vector for ``config``: float64, length ``n_dims``."""
        return self.encode_many([config])[0]

    def encode_many(self, configs: Iterable[Mapping[str, Any]]) -> np.ndarray:
        """Encode and validate configs into an ``(m, n_dims)`` float64 array.

        Inactive dimensions encode as 0 (a parent's value already tells a tree model
        whether the child is active). Raises ValueError naming the config and key.
        """
        configs = list(configs)
        self._check_keys(configs)
        codes = np.zeros((len(configs), self.n_dims))
        active = np.ones((len(configs), self.n_dims), dtype=bool)
        for position, dim in enumerate(self._dims):
            active[:, position] = self._active_column(position, active, codes)
            rows = np.flatnonzero(active[:, position])
            values = [configs[r].get(dim.name) for r in rows]
            column, valid = dim.try_encode_array(values)
            if not valid.all():
                bad = int(np.flatnonzero(~valid)[0])
                where = _label(len(configs), int(rows[bad]))
                raise self._invalid_value(where, dim, values[bad])
            codes[rows, position] = column
        return codes

    def _check_keys(self, configs: Sequence[Any]) -> None:
        known = set(self._index) | set(self._constants)
        for row, config in enumerate(configs):
            label = _label(len(configs), row)
            if not isinstance(config, Mapping):
                raise ValueError(f"{label} must be a mapping of name to value, "
                                 f"got {type(config).__name__}")
            unknown = config.keys() - known
            if unknown:
                raise ValueError(f"{label}: unknown key {sorted(map(str, unknown))[0]!r}; "
                                 f"expected keys: {sorted(known)}")
            for name, value in self._constants.items():
                if name in config and not _equal(config[name], value):
                    raise ValueError(f"{label}[{name!r}] = {config[name]!r}, but it is a "
                                     f"constant of this space fixed at {value!r}")

    def _invalid_value(self, where: str, dim: Dimension, value: Any) -> ValueError:
        if value is None:
            reason = "is missing"
            if dim.condition is not None:
                reason += (f" (active because {dim.condition.parent} >= "
                           f"{dim.condition.min_value})")
            return ValueError(f"{where}[{dim.name!r}] {reason}; expected {dim.describe()}")
        return ValueError(f"{where}[{dim.name!r}] = {value!r} is invalid; "
                          f"expected {dim.describe()}")

    def decode(self, vector: Sequence[float] | np.ndarray) -> dict[str, Any]:
        """The config a (possibly off-grid) vector stands for: snapped, inactive -> None."""
        array = np.asarray(vector, dtype=np.float64)
        if array.shape != (self.n_dims,):
            raise ValueError(f"vector must have shape ({self.n_dims},) for dimensions "
                             f"{list(self.names)}, got shape {array.shape}")
        if not np.isfinite(array).all():
            bad = self.names[int(np.flatnonzero(~np.isfinite(array))[0])]
            raise ValueError(f"vector[{bad!r}] must be a finite number, got {array}")
        return self.decode_codes(array[None, :])[0]

    def decode_codes(self, codes: np.ndarray) -> list[dict[str, Any]]:
        """Configs of an ``(m, n_dims)`` code matrix (the inverse of :meth:`encode_many`)."""
        columns = [dim.decode_array(codes[:, i]) for i, dim in enumerate(self._dims)]
        snapped = np.zeros(codes.shape)
        for parent in filter(None, self._parents):
            snapped[:, parent[0]] = columns[parent[0]]  # parents are numeric
        active = self.activity(snapped)
        configs = []
        for row in range(codes.shape[0]):
            config = {dim.name: columns[i][row] if active[row, i] else None
                      for i, dim in enumerate(self._dims)}
            config.update(self._constants)
            configs.append(config)
        return configs

    def _codes_from_unit(self, unit: np.ndarray) -> np.ndarray:
        codes = np.column_stack([dim.unit_to_codes(unit[:, i])
                                 for i, dim in enumerate(self._dims)])
        active = self.activity(codes)
        return np.where(active, codes, 0.0) + 0.0  # + 0.0 turns -0.0 into 0.0 for hashing

    # ---------------------------------------------------------------- identity
    def validate(self, config: Mapping[str, Any]) -> None:
        """Raise ValueError naming the first bad key when ``config`` is not in the space."""
        self.encode_many([config])

    def contains(self, config: Mapping[str, Any]) -> bool:
        try:
            self.validate(config)
        except ValueError:
            return False
        return True

    def key(self, config: Mapping[str, Any]) -> tuple:
        """Hashable identity: the snapped value of each dimension, None when inactive.

        For bulk de-duplication compare rows of :meth:`encode_many` instead: encoding is
        canonical and one-to-one on valid configs, and it is vectorised.
        """
        decoded = self.decode_codes(self.encode(config)[None, :])[0]
        return tuple(decoded[name] for name in self.names)

    # ---------------------------------------------------------------- sampling
    def sobol(self, n: int, seed: int) -> list[dict[str, Any]]:
        """Up to ``n`` distinct configs from a scrambled, seeded Sobol sequence.

        Draws the next power of two >= n (Sobol's balance holds for powers of two), keeps
        first-seen order, and doubles the draw while duplicates leave fewer than ``n``.
        A space with fewer than ``n`` configs returns all of them.
        """
        n = integer(n, "n", 1)
        seed = integer(seed, "seed", 0)
        cardinality = self.cardinality
        target = min(n, cardinality)
        sampler = qmc.Sobol(d=self.n_dims, scramble=True, seed=seed)
        first_draw = 2 ** max(0, math.ceil(math.log2(n)))
        budget = max(_MIN_SOBOL_BUDGET, 8 * first_draw)
        kept: dict[bytes, np.ndarray] = {}
        unit, drawn = sampler.random(first_draw), first_draw
        while True:
            for row in self._codes_from_unit(unit):
                kept.setdefault(row.tobytes(), row)
                if len(kept) == target:
                    return self.decode_codes(np.array(list(kept.values())))
            if drawn >= budget:
                break
            unit, drawn = sampler.random(drawn), 2 * drawn
        if math.isinf(cardinality):  # unreachable in practice: continuous values never repeat
            return self.decode_codes(np.array(list(kept.values())))
        for row in self._enumerate_codes():
            kept.setdefault(row.tobytes(), row)
            if len(kept) == target:
                break
        return self.decode_codes(np.array(list(kept.values())))

    def _enumerate_codes(self) -> Iterator[np.ndarray]:
        """Every config's codes in grid order (finite spaces only; lazy)."""
        row = np.zeros((1, self.n_dims))
        active = np.zeros(row.shape, dtype=bool)

        def extend(position: int) -> Iterator[np.ndarray]:
            if position == self.n_dims:
                yield row[0].copy()
                return
            active[:, position] = self._active_column(position, active, row)
            dim = self._dims[position]
            is_active = bool(active[0, position])
            for k in range(dim.n_values if is_active else 1):
                row[0, position] = dim.code_at(k) if is_active else 0.0
                yield from extend(position + 1)

        return extend(0)

    def random(self, n: int, rng: np.random.Generator | int) -> list[dict[str, Any]]:
        """``n`` independent uniform draws (duplicates possible), same mapping as Sobol."""
        n = integer(n, "n", 0)
        rng = as_generator(rng)
        if n == 0:
            return []
        return self.decode_codes(self._codes_from_unit(rng.random((n, self.n_dims))))

    def mutate(self, config: Mapping[str, Any], prob: float,
               rng: np.random.Generator | int) -> dict[str, Any]:
        """A copy of ``config`` with each active dimension resampled with probability ``prob``.

        A resampled dimension always takes a *different* value (drawn from its own
        distribution). If no dimension was picked, one active dimension with more than
        one value is picked uniformly, so the result always differs from ``config``.
        A child that a parent change activates gets a freshly sampled value; one it
        deactivates becomes None.
        """
        return self.mutate_many([config], prob, rng)[0]

    def mutate_many(self, configs: Iterable[Mapping[str, Any]], prob: float,
                    rng: np.random.Generator | int) -> list[dict[str, Any]]:
        """:meth:`mutate` for a whole population at once (one EES generation)."""
        return self.decode_codes(self.mutate_codes(self.encode_many(configs), prob, rng))

    def mutate_codes(self, codes: np.ndarray, prob: float,
                     rng: np.random.Generator | int) -> np.ndarray:
        """:meth:`mutate_many` on an ``(m, n_dims)`` matrix of on-grid codes (as
        :meth:`encode_many` returns them): the form EES keeps its population in."""
        codes = np.asarray(codes, dtype=np.float64)
        if not is_real(prob) or not 0.0 <= prob <= 1.0:
            raise ValueError(f"prob must be a number in [0, 1], got {prob!r}")
        rng = as_generator(rng)
        was_active = self.activity(codes)
        mutable = was_active & np.array([d.n_values != 1 for d in self._dims])
        stuck = np.flatnonzero(~mutable.any(axis=1))
        if len(stuck):
            row = int(stuck[0])
            raise ValueError(f"{_label(len(codes), row)} has no active dimension with more "
                             "than one value, so it cannot be mutated")
        picked = (rng.random(codes.shape) < prob) & mutable
        unpicked = np.flatnonzero(~picked.any(axis=1))
        scores = np.where(mutable[unpicked], rng.random((len(unpicked), self.n_dims)), -1.0)
        picked[unpicked, scores.argmax(axis=1)] = True
        child = codes.copy()
        active = np.zeros(codes.shape, dtype=bool)
        for i, dim in enumerate(self._dims):
            active[:, i] = self._active_column(i, active, child)
            rows = np.flatnonzero(active[:, i] & (picked[:, i] | ~was_active[:, i]))
            child[rows, i] = dim.unit_to_codes(rng.random(len(rows)))
            same = rows[picked[rows, i] & (child[rows, i] == codes[rows, i])]
            while len(same):  # rejection keeps each dimension's own distribution
                child[same, i] = dim.unit_to_codes(rng.random(len(same)))
                same = same[child[same, i] == codes[same, i]]
            child[~active[:, i], i] = 0.0
        return child + 0.0  # + 0.0 turns -0.0 into 0.0 for hashing
