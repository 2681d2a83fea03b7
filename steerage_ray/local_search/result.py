"""What a local search returns: every scheme's steps and models, and their Pareto set."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd
from torch import nn

from steerage_ray.local_search.export import ExportedModel, export_model
from steerage_ray.local_search.scann import SchemeResult
from steerage_ray.pareto import pareto_front, select_point

PARETO_COLUMNS = ("scheme", "step", "operation", "val_acc", "test_acc", "quant_bits",
                  "quant_test_acc", "params", "flops")


@dataclass
class LocalSearchResult:
    """Everything the schemes produced.

    ``scheme_results`` maps each finished scheme to its :class:`SchemeResult` (history
    and per-step models); ``pareto`` is the Pareto set over (validation accuracy max,
    parameters min) across all schemes, with test accuracy and FLOPs per point;
    ``failures`` maps failed schemes to their error; ``tasks`` has one row per task
    with wall-clock ``started``/``finished`` (Unix seconds), ``device`` and ``pid``.
    """

    scheme_results: dict[str, SchemeResult]
    pareto: pd.DataFrame
    failures: dict[str, str]
    tasks: pd.DataFrame
    input_shape: tuple[int, ...]

    @property
    def histories(self) -> dict[str, pd.DataFrame]:
        return {scheme: result.history for scheme, result in self.scheme_results.items()}

    def model(self, scheme: str, step: int | None = None) -> nn.Module:
        """The model of ``scheme`` after ``step`` (default: the scheme's best)."""
        if scheme not in self.scheme_results:
            raise ValueError(f"no result for scheme {scheme!r}; finished: "
                             f"{sorted(self.scheme_results)}")
        result = self.scheme_results[scheme]
        return result.best_model if step is None else result.models[step]

    def best(self) -> pd.Series:
        """The Pareto point with the highest validation accuracy (then fewest params)."""
        if self.pareto.empty:
            raise ValueError("no scheme finished, so there is no best model; see failures")
        return select_point(self.pareto)

    def export(self, scheme: str | None = None, step: int | None = None,
               **options) -> ExportedModel:
        """Export a model (default: :meth:`best`) at its step's ``quant_bits``."""
        if scheme is None:
            point = self.best()
            scheme, step = point["scheme"], int(point["step"])
        model = self.model(scheme, step)
        result = self.scheme_results[scheme]
        step = result.best_step if step is None else step
        options.setdefault("quant_bits", int(result.history["quant_bits"].iloc[step]))
        return export_model(model, self.input_shape, **options)


def schemes_pareto(results: Mapping[str, SchemeResult]) -> pd.DataFrame:
    """The Pareto set over every step of every scheme (``PARETO_COLUMNS``)."""
    frames = [result.history.assign(scheme=scheme) for scheme, result in results.items()]
    if not frames:
        return pd.DataFrame(columns=list(PARETO_COLUMNS))
    return pareto_front(pd.concat(frames, ignore_index=True)[list(PARETO_COLUMNS)])
