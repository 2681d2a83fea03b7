"""The precision a trained network is kept at: its ``quant_bits``, given or chosen.

A network's precision is either given (the paper's search has ``quant_bits`` as a
dimension of Table 2, so a trial's config holds it) or chosen after training: the
fewest bits of ``QUANT_BITS`` at which the quantized network validates at least as
well as the float one. The default algorithm's presets have no ``quant_bits``
(``space.preset_for_algorithm``): it changes nothing a trial trains, so searching it
made the search train the same network again, and a randomly filled value left the
model size a report shows to chance. Choosing on validation accuracy keeps test
accuracy out of every choice, as everywhere in the pipeline.

A space of the user's may list ``quant_bits`` (e.g. ``{choice: [8, 32]}``: the widths
the target hardware runs). The default algorithm does not search it, for the same
reason; :func:`choices_as_constant` turns it into the constant ``precision_choices``,
and each network's precision is then chosen among those widths only.

Used by the global search's trials (``trainables.train_architecture``) and by every
local-search step (``local_search.scann.StepRecorder``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from torch import nn

from steerage_ray.data.dataset import Dataset
from steerage_ray.models import QUANT_BITS, quantize_model
from steerage_ray.space import SearchSpace
from steerage_ray.training import evaluate

#: The config key of the bit widths a network's precision is chosen among.
CHOICES_KEY = "precision_choices"

#: A precision as configs give it: the bits (an int), the widths to choose the fewest
#: from (a tuple), or None for all of ``QUANT_BITS``.
Bits = int | tuple[int, ...] | None


@dataclass(frozen=True)
class Precision:
    """A trained network's precision and its accuracies at it: ``bits`` per weight
    (32 = the float network), ``val_acc`` and ``test_acc`` with the weights quantized
    to ``bits``."""

    bits: int
    val_acc: float
    test_acc: float


def fewest_bits(model: nn.Module, X_val: np.ndarray, y_val: np.ndarray,
                val_acc: float | None = None, choices: Sequence[int] | None = None) -> int:
    """The fewest bits of ``choices`` (None: ``QUANT_BITS``) whose quantized ``model``
    validates at least as well as the float one (``val_acc``, measured when not given);
    when none does, the most of ``choices`` (32, the float model itself, always does).

    No tolerance: on the bundled datasets' validation splits one example is 0.1-3
    points, so any allowance would be a whole example lost for a smaller file."""
    if val_acc is None:
        val_acc = evaluate(model, X_val, y_val)[0]
    return _fewest_kept(model, X_val, y_val, val_acc, choices or QUANT_BITS)[0]


def _fewest_kept(model: nn.Module, X_val: np.ndarray, y_val: np.ndarray, val_acc: float,
                 choices: Sequence[int]) -> tuple[int, nn.Module, float]:
    """:func:`fewest_bits` with the quantized model and its validation accuracy, so a
    caller measuring it further does not quantize and validate it again. ``choices``
    is not empty (the callers fall back to ``QUANT_BITS``)."""
    for bits in sorted(choices):
        if bits == 32:
            return 32, model, val_acc
        quantized = quantize_model(model, bits)
        accuracy = evaluate(quantized, X_val, y_val)[0]
        if accuracy >= val_acc - 1e-12:
            break
    return bits, quantized, accuracy  # kept, or else the most of choices


def precision_of(model: nn.Module, data: Dataset, bits: Bits = None, *,
                 val_acc: float | None = None,
                 test_acc: float | None = None) -> Precision:
    """``model``'s precision on ``data``: ``bits`` when an int (a searched or set
    ``quant_bits``), else :func:`fewest_bits` among the tuple ``bits`` (a config's
    ``precision_choices``) or among all of ``QUANT_BITS``; with the accuracies at it.

    ``val_acc`` / ``test_acc``: the float model's, when the caller has them (they are
    the 32-bit accuracies, and the reference of :func:`fewest_bits`)."""
    if val_acc is None:
        val_acc = evaluate(model, data.X_val, data.y_val)[0]
    if not isinstance(bits, int):
        bits, quantized, quant_val_acc = _fewest_kept(model, data.X_val, data.y_val, val_acc,
                                                      bits or QUANT_BITS)
    elif bits == 32:
        quantized, quant_val_acc = model, val_acc
    else:
        quantized = quantize_model(model, bits)
        quant_val_acc = evaluate(quantized, data.X_val, data.y_val)[0]
    if quantized is not model or test_acc is None:
        test_acc = evaluate(quantized, data.X_test, data.y_test)[0]
    return Precision(int(bits), quant_val_acc, test_acc)


def config_precision(config: Mapping) -> Bits:
    """What ``config`` says of its network's precision: its ``quant_bits`` (an int), its
    ``precision_choices`` (a tuple), or None."""
    if config.get("quant_bits") is not None:
        return int(config["quant_bits"])
    choices = config.get(CHOICES_KEY)
    return None if choices is None else tuple(int(b) for b in choices)


def choices_as_constant(space: SearchSpace) -> SearchSpace:
    """``space`` with its ``quant_bits`` dimension (when it has one) replaced by the
    constant ``precision_choices``: its values, the widths each trained network's
    precision is then chosen among (the default algorithm; see the module docstring)."""
    if "quant_bits" not in space.names:
        return space
    widths = _widths(space["quant_bits"])
    kept = space.without(["quant_bits"], "space")
    return SearchSpace(kept.dimensions, {**kept.constants, CHOICES_KEY: list(widths)})


def check_precision_keys(space: SearchSpace) -> None:
    """Refuse, before any trial, a ``quant_bits`` (dimension or constant) or a
    ``precision_choices`` with a width ``quantize_model`` does not support."""
    if "quant_bits" in space.names:
        _widths(space["quant_bits"])
    constants = space.constants
    bits = constants.get("quant_bits")
    if bits is not None and bits not in QUANT_BITS:
        raise ValueError(f"space: quant_bits must be one of {list(QUANT_BITS)} (the "
                         f"supported weight precisions), got {bits!r}")
    choices = constants.get(CHOICES_KEY)
    if choices is not None and (not isinstance(choices, (list, tuple)) or not choices
                                or not all(b in QUANT_BITS for b in choices)):
        raise ValueError(f"space: {CHOICES_KEY} must be a non-empty list of widths among "
                         f"{list(QUANT_BITS)}, got {choices!r}")


def _widths(dim) -> tuple[int, ...]:
    """The values of a ``quant_bits`` dimension, which must all be supported widths."""
    values = (None if dim.n_values is None
              else tuple(dim.code_at(k) for k in range(dim.n_values)))
    if values is None or not set(values) <= set(QUANT_BITS):
        raise ValueError(f"space: quant_bits must be a choice among {list(QUANT_BITS)} "
                         f"(the supported weight precisions), got {dim!r}; e.g. "
                         f"tune.choice([8, 32])")
    return tuple(int(b) for b in values)


def size_kb(params, bits):
    """A model's size in KB (1000 bytes): its non-zero parameters at ``bits`` each, no
    sparse-index overhead. Numbers or pandas columns."""
    return params * bits / 8 / 1000
