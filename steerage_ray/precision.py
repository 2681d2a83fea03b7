"""The precision a trained network is kept at: its ``quant_bits``, given or chosen.

A network's precision is either given (the paper's search has ``quant_bits`` as a
dimension of Table 2, so a trial's config holds it) or chosen after training: the
fewest bits of ``QUANT_BITS`` at which the quantized network validates at least as
well as the float one. The default algorithm's presets have no ``quant_bits``
(``space.preset_for_algorithm``): it changes nothing a trial trains, so searching it
made the search train the same network again, and a randomly filled value left the
model size a report shows to chance. Choosing on validation accuracy keeps test
accuracy out of every choice, as everywhere in the pipeline.

Used by the global search's trials (``trainables.train_architecture``) and by every
local-search step (``local_search.scann.StepRecorder``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import nn

from steerage_ray.data.dataset import Dataset
from steerage_ray.models import QUANT_BITS, quantize_model
from steerage_ray.training import evaluate


@dataclass(frozen=True)
class Precision:
    """A trained network's precision and its accuracies at it: ``bits`` per weight
    (32 = the float network), ``val_acc`` and ``test_acc`` with the weights quantized
    to ``bits``."""

    bits: int
    val_acc: float
    test_acc: float


def fewest_bits(model: nn.Module, X_val: np.ndarray, y_val: np.ndarray,
                val_acc: float | None = None) -> int:
    """The fewest bits of ``QUANT_BITS`` whose quantized ``model`` validates at least
    as well as the float one (``val_acc``, measured when not given); 32 always does.

    No tolerance: on the bundled datasets' validation splits one example is 0.1-3
    points, so any allowance would be a whole example lost for a smaller file."""
    if val_acc is None:
        val_acc = evaluate(model, X_val, y_val)[0]
    return _fewest_kept(model, X_val, y_val, val_acc)[0]


def _fewest_kept(model: nn.Module, X_val: np.ndarray, y_val: np.ndarray,
                 val_acc: float) -> tuple[int, nn.Module, float]:
    """:func:`fewest_bits` with the quantized model and its validation accuracy, so a
    caller measuring it further does not quantize and validate it again."""
    for bits in sorted(QUANT_BITS)[:-1]:
        quantized = quantize_model(model, bits)
        accuracy = evaluate(quantized, X_val, y_val)[0]
        if accuracy >= val_acc - 1e-12:
            return bits, quantized, accuracy
    return 32, model, val_acc


def precision_of(model: nn.Module, data: Dataset, bits: int | None = None, *,
                 val_acc: float | None = None,
                 test_acc: float | None = None) -> Precision:
    """``model``'s precision on ``data``: ``bits`` when given (a searched or set
    ``quant_bits``), else :func:`fewest_bits`; with the accuracies at it.

    ``val_acc`` / ``test_acc``: the float model's, when the caller has them (they are
    the 32-bit accuracies, and the reference of :func:`fewest_bits`)."""
    if val_acc is None:
        val_acc = evaluate(model, data.X_val, data.y_val)[0]
    if bits is None:
        bits, quantized, quant_val_acc = _fewest_kept(model, data.X_val, data.y_val, val_acc)
    elif bits == 32:
        quantized, quant_val_acc = model, val_acc
    else:
        quantized = quantize_model(model, bits)
        quant_val_acc = evaluate(quantized, data.X_val, data.y_val)[0]
    if quantized is not model or test_acc is None:
        test_acc = evaluate(quantized, data.X_test, data.y_test)[0]
    return Precision(int(bits), quant_val_acc, test_acc)


def size_kb(params, bits):
    """A model's size in KB (1000 bytes): its non-zero parameters at ``bits`` each, no
    sparse-index overhead. Numbers or pandas columns."""
    return params * bits / 8 / 1000
