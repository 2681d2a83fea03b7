"""Search-space dimensions: one hyperparameter each, with its value grid and its encoding.

A dimension maps a unit-cube coordinate to one of its values (Sobol and random sampling),
says whether a value belongs to it, snaps numbers onto its grid and encodes values as
floats for the accuracy predictor ("codes"). The vectorised array methods are the single
implementation; the scalar methods wrap them, so both paths always agree.

Codes are canonical: numeric dimensions encode a value as the (snapped) value itself,
categorical ones as the index of the choice. Equal values therefore have bit-identical
codes, which is what lets a search space de-duplicate configurations on their codes.
"""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Hashable, Sequence
from dataclasses import KW_ONLY, dataclass
from functools import cached_property
from typing import Any

import numpy as np

# How far off the grid a value may sit (as a fraction of a step) and still count as a
# grid value: absorbs float noise such as 2.3000000000000003 from Ray Tune's quniform.
GRID_TOLERANCE = 1e-6
_MAX_DECIMALS = 12
_FAST_REAL_TYPES = frozenset({int, float, np.int64, np.int32, np.float64, np.float32})


def is_real(value: Any) -> bool:
    """True for a finite real number that is not a bool (True is not a layer count)."""
    return (isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
            and math.isfinite(value))


def _real_array(values: list) -> tuple[np.ndarray, np.ndarray]:
    """Values as float64 plus a mask of which ones are finite real numbers (NaN elsewhere)."""
    if set(map(type, values)) <= _FAST_REAL_TYPES:
        array = np.asarray(values, dtype=np.float64).reshape(len(values))
        return array, np.isfinite(array)
    valid = np.array([is_real(v) for v in values], dtype=bool)
    array = np.array([float(v) if ok else np.nan for v, ok in zip(values, valid)],
                     dtype=np.float64)
    return array, valid


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError(f"dimension name must be a non-empty string, got {name!r}")


def _check_condition(name: str, condition: Any) -> None:
    if condition is not None and not isinstance(condition, Condition):
        raise ValueError(f"{name}: condition must be a Condition or None, "
                         f"got {condition!r}")


@dataclass(frozen=True)
class Condition:
    """Activate a dimension only when ``config[parent] >= min_value``.

    Models the paper's conditional hyperparameters: ``neurons_3`` exists only when
    ``num_layers >= 3``. The parent must be numeric and defined before its child; an
    inactive parent makes its children inactive too.
    """

    parent: str
    min_value: float

    def __post_init__(self) -> None:
        if not isinstance(self.parent, str) or not self.parent:
            raise ValueError(f"Condition.parent must be a dimension name, got {self.parent!r}")
        if not is_real(self.min_value):
            raise ValueError(f"Condition({self.parent!r}).min_value must be a finite number, "
                             f"got {self.min_value!r}")


class Dimension(ABC):
    """One searched hyperparameter (subclasses are frozen dataclasses)."""

    name: str
    condition: Condition | None

    @property
    @abstractmethod
    def n_values(self) -> int | None:
        """How many values the dimension has; None when it is continuous."""

    @abstractmethod
    def describe(self) -> str:
        """What a valid value looks like, for error messages."""

    @abstractmethod
    def unit_to_codes(self, u: np.ndarray) -> np.ndarray:
        """Codes of the values that unit-cube coordinates ``u`` in [0, 1] stand for."""

    @abstractmethod
    def try_encode_array(self, values: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        """Codes of ``values`` (NaN where invalid) and a mask of the valid ones."""

    @abstractmethod
    def decode_array(self, codes: np.ndarray) -> list:
        """Values for (possibly off-grid) codes, snapped to the nearest valid value."""

    @abstractmethod
    def code_at(self, index: int) -> float:
        """Code of the ``index``-th value in grid order (discrete dimensions only)."""

    def encode_array(self, values: Sequence[Any]) -> np.ndarray:
        """Codes of ``values``; raises ValueError naming the first invalid one."""
        values = list(values)
        codes, valid = self.try_encode_array(values)
        if not valid.all():
            raise self.invalid(values[int(np.flatnonzero(~valid)[0])])
        return codes

    def encode(self, value: Any) -> float:
        """The predictor's float for ``value`` (its index for categorical dimensions)."""
        return float(self.encode_array([value])[0])

    def decode(self, code: float) -> Any:
        """The value nearest to ``code``; inverse of :meth:`encode`."""
        if not is_real(code):
            raise ValueError(f"{self.name}: code must be a finite number, got {code!r}")
        return self.decode_array(np.array([code], dtype=np.float64))[0]

    def contains(self, value: Any) -> bool:
        """True iff ``value`` is one of the dimension's values (up to float noise)."""
        return bool(self.try_encode_array([value])[1][0])

    def snap(self, value: Any) -> Any:
        """The valid value nearest to the number ``value`` (clipped into range)."""
        if not is_real(value):
            raise ValueError(f"{self.name}: cannot snap {value!r}; expected a finite number")
        return self.decode(float(value))

    def from_unit(self, u: float) -> Any:
        """The value that the unit-cube coordinate ``u`` in [0, 1] stands for."""
        if not is_real(u) or not 0.0 <= u <= 1.0:
            raise ValueError(f"{self.name}: unit coordinate must be in [0, 1], got {u!r}")
        return self.decode_array(self.unit_to_codes(np.array([u], dtype=np.float64)))[0]

    def invalid(self, value: Any) -> ValueError:
        """The error for a value that does not belong to this dimension."""
        return ValueError(f"{self.name}: got {value!r}, expected {self.describe()}")


class _Grid(Dimension):
    """Shared machinery of numeric dimensions: a grid ``low + k * step <= high``.

    Uniform grids give every value the same share of the unit interval (so a Sobol pool
    is balanced over grid values). Log grids draw log-uniformly on ``[low, max + step)``
    and floor onto the grid, as Ray Tune's ``lograndint`` does.
    """

    low: float
    high: float
    step: float
    log: bool

    @property
    def n_values(self) -> int:
        return self._grid_size()

    def _grid_size(self) -> int:
        return int(math.floor((self.high - self.low) / self.step + GRID_TOLERANCE)) + 1

    @property
    def max_value(self) -> float:
        """The largest grid value (``high`` itself only when it lies on the grid)."""
        return self.decode_array(np.array([self.high], dtype=np.float64))[0]

    @abstractmethod
    def _values_at(self, index: np.ndarray) -> np.ndarray:
        """Grid values (as float64 codes) at integer positions ``index``."""

    def code_at(self, index: int) -> float:
        return float(self._values_at(np.array([index], dtype=np.float64))[0])

    def unit_to_codes(self, u: np.ndarray) -> np.ndarray:
        n = self._grid_size()
        if self.log:
            top = self.low + n * self.step
            x = np.exp(np.log(self.low) + u * (np.log(top) - np.log(self.low)))
            index = np.floor((x - self.low) / self.step)
        else:
            index = np.floor(u * n)
        return self._values_at(np.clip(index, 0, n - 1))

    def try_encode_array(self, values: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        array, valid = _real_array(list(values))
        position = (array - self.low) / self.step
        index = np.rint(position)
        with np.errstate(invalid="ignore"):
            valid &= ((np.abs(position - index) <= GRID_TOLERANCE)
                      & (index >= 0) & (index <= self._grid_size() - 1))
        codes = np.full(len(array), np.nan)
        codes[valid] = self._values_at(index[valid])
        return codes, valid

    def _nearest_index(self, codes: np.ndarray) -> np.ndarray:
        return np.clip(np.rint((codes - self.low) / self.step), 0, self._grid_size() - 1)

    def _describe_grid(self, kind: str) -> str:
        text = f"{kind} in [{self.low}, {self.max_value}] with step {self.step}"
        return text + " (log scale)" if self.log else text


def _check_bounds(name: str, low: float, high: float, log: bool) -> None:
    if low > high:
        raise ValueError(f"{name}: low ({low}) must not exceed high ({high})")
    if log and low <= 0:
        raise ValueError(f"{name}: a log-scaled dimension needs low > 0, got low={low}")


@dataclass(frozen=True)
class Integer(_Grid):
    """Integers ``low, low + step, ... <= high`` (``high`` need not lie on the grid).

    ``log=True`` (keyword-only, an extension of the documented signature) samples
    log-uniformly like ``tune.lograndint``; the code is still the value itself, since
    the predictor's trees are invariant to monotone transforms.
    """

    name: str
    low: int
    high: int
    step: int = 1
    condition: Condition | None = None
    _: KW_ONLY
    log: bool = False

    def __post_init__(self) -> None:
        _check_name(self.name)
        for field_name in ("low", "high", "step"):
            value = getattr(self, field_name)
            if not (is_real(value) and isinstance(value, numbers.Integral)):
                raise ValueError(f"{self.name}: {field_name} must be an integer, "
                                 f"got {value!r}")
            object.__setattr__(self, field_name, int(value))
        if self.step <= 0:
            raise ValueError(f"{self.name}: step must be positive, got {self.step}")
        if not isinstance(self.log, bool):
            raise ValueError(f"{self.name}: log must be True or False, got {self.log!r}")
        _check_bounds(self.name, self.low, self.high, self.log)
        _check_condition(self.name, self.condition)

    def _values_at(self, index: np.ndarray) -> np.ndarray:
        return self.low + index * float(self.step)

    def decode_array(self, codes: np.ndarray) -> list:
        index = self._nearest_index(np.asarray(codes, dtype=np.float64)).astype(np.int64)
        return (self.low + index * self.step).tolist()

    def describe(self) -> str:
        return self._describe_grid("an integer")


@dataclass(frozen=True)
class Float(_Grid):
    """Real numbers in ``[low, high]``; continuous when ``step`` is None.

    With a step the values are ``low + k * step`` rounded to the decimals of ``low``
    and ``step`` (so 1.0 + 13 * 0.1 is 2.3, not 2.3000000000000003). ``log=True``
    samples log-uniformly; the code is still the value itself.
    """

    name: str
    low: float
    high: float
    step: float | None = None
    log: bool = False
    condition: Condition | None = None

    def __post_init__(self) -> None:
        _check_name(self.name)
        for field_name in ("low", "high"):
            value = getattr(self, field_name)
            if not is_real(value):
                raise ValueError(f"{self.name}: {field_name} must be a finite number, "
                                 f"got {value!r}")
            object.__setattr__(self, field_name, float(value))
        if self.step is not None:
            if not is_real(self.step) or self.step <= 0:
                raise ValueError(f"{self.name}: step must be a positive number or None, "
                                 f"got {self.step!r}")
            object.__setattr__(self, "step", float(self.step))
        if not isinstance(self.log, bool):
            raise ValueError(f"{self.name}: log must be True or False, got {self.log!r}")
        _check_bounds(self.name, self.low, self.high, self.log)
        _check_condition(self.name, self.condition)

    @property
    def continuous(self) -> bool:
        return self.step is None

    @property
    def n_values(self) -> int | None:
        return None if self.continuous else self._grid_size()

    @cached_property
    def _decimals(self) -> int:
        """Fewest decimals that represent ``low`` and ``step`` exactly."""
        for decimals in range(_MAX_DECIMALS):
            if round(self.step, decimals) == self.step and round(self.low, decimals) == self.low:
                return decimals
        return _MAX_DECIMALS

    def _values_at(self, index: np.ndarray) -> np.ndarray:
        return np.round(self.low + index * self.step, self._decimals)

    def code_at(self, index: int) -> float:
        if self.continuous:
            raise ValueError(f"{self.name}: a continuous dimension has no indexed values")
        return super().code_at(index)

    def unit_to_codes(self, u: np.ndarray) -> np.ndarray:
        if not self.continuous:
            return super().unit_to_codes(u)
        if self.log:
            x = np.exp(np.log(self.low) + u * (np.log(self.high) - np.log(self.low)))
        else:
            x = self.low + u * (self.high - self.low)
        return np.clip(x, self.low, self.high)

    def try_encode_array(self, values: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        if not self.continuous:
            return super().try_encode_array(values)
        array, valid = _real_array(list(values))
        with np.errstate(invalid="ignore"):
            valid &= (array >= self.low) & (array <= self.high)
        return np.where(valid, array, np.nan), valid

    def decode_array(self, codes: np.ndarray) -> list:
        codes = np.asarray(codes, dtype=np.float64)
        if self.continuous:
            return np.clip(codes, self.low, self.high).tolist()
        return self._values_at(self._nearest_index(codes)).tolist()

    @property
    def max_value(self) -> float:
        return self.high if self.continuous else super().max_value

    def describe(self) -> str:
        if self.continuous:
            scale = " (log scale)" if self.log else ""
            return f"a number in [{self.low}, {self.high}]{scale}"
        return self._describe_grid("a number")


@dataclass(frozen=True)
class Choice(Dimension):
    """Ordered numeric values such as quantization bits (4, 8, 16, 32).

    The values are stored sorted: a value is its own code, so the order is a property
    of the numbers, not of the list they came in. Snapping picks the nearest value.
    """

    name: str
    values: tuple
    condition: Condition | None = None

    def __post_init__(self) -> None:
        _check_name(self.name)
        values = list(self.values) if isinstance(self.values, Sequence) else None
        if not values:
            raise ValueError(f"{self.name}: values must be a non-empty sequence of numbers, "
                             f"got {self.values!r}")
        bad = [v for v in values if not is_real(v)]
        if bad:
            raise ValueError(f"{self.name}: values must be finite numbers, got {bad[0]!r}; "
                             "use Categorical for non-numeric choices")
        plain = sorted(v.item() if isinstance(v, np.generic) else v for v in values)
        if len(set(plain)) != len(plain):
            raise ValueError(f"{self.name}: duplicate values in {tuple(values)}")
        object.__setattr__(self, "values", tuple(plain))
        _check_condition(self.name, self.condition)

    @property
    def n_values(self) -> int:
        return len(self.values)

    @property
    def max_value(self) -> float:
        return self.values[-1]

    @cached_property
    def _array(self) -> np.ndarray:
        return np.array(self.values, dtype=np.float64)

    def code_at(self, index: int) -> float:
        return float(self.values[index])

    def unit_to_codes(self, u: np.ndarray) -> np.ndarray:
        index = np.clip(np.floor(u * self.n_values), 0, self.n_values - 1).astype(np.int64)
        return self._array[index]

    def try_encode_array(self, values: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        array, valid = _real_array(list(values))
        valid &= np.isin(array, self._array)
        return np.where(valid, array, np.nan), valid

    def decode_array(self, codes: np.ndarray) -> list:
        codes = np.asarray(codes, dtype=np.float64)
        index = np.abs(codes[:, None] - self._array[None, :]).argmin(axis=1)  # ties: lower
        return [self.values[i] for i in index]

    def describe(self) -> str:
        return f"one of {self.values}"


@dataclass(frozen=True)
class Categorical(Dimension):
    """Unordered choices of any hashable values (e.g. "max" / "avg"), coded as indices."""

    name: str
    choices: tuple
    condition: Condition | None = None

    def __post_init__(self) -> None:
        _check_name(self.name)
        if isinstance(self.choices, (str, bytes)) or not isinstance(self.choices, Sequence) \
                or not self.choices:
            raise ValueError(f"{self.name}: choices must be a non-empty list of values, "
                             f"got {self.choices!r}")
        unhashable = [c for c in self.choices if not isinstance(c, Hashable)]
        if unhashable:
            raise ValueError(f"{self.name}: choices must be hashable, got {unhashable[0]!r}; "
                             "use a tuple instead of a list")
        if len(set(self.choices)) != len(self.choices):
            raise ValueError(f"{self.name}: duplicate choices in {tuple(self.choices)}")
        object.__setattr__(self, "choices", tuple(self.choices))
        _check_condition(self.name, self.condition)

    @property
    def n_values(self) -> int:
        return len(self.choices)

    @cached_property
    def _index(self) -> dict:
        return {choice: i for i, choice in enumerate(self.choices)}

    def code_at(self, index: int) -> float:
        return float(index)

    def unit_to_codes(self, u: np.ndarray) -> np.ndarray:
        return np.clip(np.floor(u * self.n_values), 0, self.n_values - 1)

    def try_encode_array(self, values: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
        codes = np.array([self._lookup(v) for v in values], dtype=np.float64)
        return codes, ~np.isnan(codes)

    def _lookup(self, value: Any) -> float:
        try:
            return float(self._index.get(value, np.nan))
        except TypeError:  # unhashable values are never choices
            return np.nan

    def decode_array(self, codes: np.ndarray) -> list:
        index = np.clip(np.rint(np.asarray(codes, dtype=np.float64)), 0, self.n_values - 1)
        return [self.choices[i] for i in index.astype(np.int64)]

    def snap(self, value: Any) -> Any:
        """The matching choice; categories have no "nearest", so others raise."""
        codes, valid = self.try_encode_array([value])
        if not valid[0]:
            raise self.invalid(value)
        return self.choices[int(codes[0])]

    def describe(self) -> str:
        return f"one of {self.choices}"
