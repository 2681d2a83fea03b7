"""Local search: SCANN (feed-forward) and NeST (convolutional) grow-and-prune synthesis,
run as parallel Ray tasks by :func:`run` (paper Section 4.6, Algorithm 3).

The algorithm modules (``masked``, ``graph``, ``scann``, ``nest``, ``export``) need no
Ray; only ``pipeline`` does.
"""

from steerage_ray.local_search.export import ExportedModel, SkipMLP, compact_module, export_model
from steerage_ray.local_search.graph import SparseFeedForward
from steerage_ray.local_search.masked import (
    MaskedConv2d,
    MaskedLinear,
    PartialAreaConv2d,
    apply_masks,
    effective_flops,
    masked_modules,
)
from steerage_ray.local_search.nest import (
    NestOptions,
    SparseConvNet,
    grow_feature_map,
    partial_area,
    prune_conv,
    run_nest,
)
from steerage_ray.local_search.pipeline import (
    Candidate,
    LocalSearchResult,
    pareto_front,
    run,
)
from steerage_ray.local_search.scann import (
    ScannOptions,
    SchemeResult,
    grow_connections,
    grow_neurons,
    prune_connections,
    run_scheme,
)

__all__ = [
    "Candidate", "ExportedModel", "LocalSearchResult", "MaskedConv2d", "MaskedLinear",
    "NestOptions", "PartialAreaConv2d", "ScannOptions", "SchemeResult", "SkipMLP",
    "SparseConvNet", "SparseFeedForward", "apply_masks", "compact_module", "effective_flops",
    "export_model", "grow_connections", "grow_feature_map", "grow_neurons", "masked_modules",
    "pareto_front", "partial_area", "prune_conv", "prune_connections", "run", "run_nest",
    "run_scheme",
]
