"""Local search: SCANN (feed-forward) and NeST (convolutional) grow-and-prune synthesis
(paper Section 4.6, Algorithm 3), and :func:`run_local_search`, which runs the schemes
as parallel Ray tasks.

Everything here but ``tasks`` imports no Ray: ``masked`` (masked layers), ``graph``
(skip-connected feed-forward nets), ``convnet`` (masked CNNs), ``scann``, ``nest``,
``export``, ``candidate``, ``schemes`` and ``result``. Importing this package does not import Ray either;
``run_local_search`` is loaded from ``tasks`` on first use.
"""

from steerage_ray.local_search.candidate import FAMILY_SCHEMES, Candidate
from steerage_ray.local_search.convnet import SparseConvNet
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
    grow_feature_map,
    partial_area,
    prune_conv,
    run_nest,
)
from steerage_ray.local_search.result import LocalSearchResult
from steerage_ray.local_search.scann import (
    PruningGuard,
    ScannOptions,
    SchemeResult,
    grow_connections,
    grow_neurons,
    prune_connections,
    run_scheme,
)

__all__ = [
    "Candidate", "ExportedModel", "FAMILY_SCHEMES", "LocalSearchResult", "MaskedConv2d",
    "MaskedLinear", "NestOptions", "PartialAreaConv2d", "PruningGuard", "ScannOptions",
    "SchemeResult",
    "SkipMLP", "SparseConvNet", "SparseFeedForward", "apply_masks", "compact_module",
    "effective_flops", "export_model", "grow_connections", "grow_feature_map",
    "grow_neurons", "masked_modules", "partial_area", "prune_conv", "prune_connections",
    "run_local_search", "run_nest", "run_scheme",
]


def __getattr__(name: str):
    """``run_local_search`` imports Ray, so it is loaded from ``tasks`` on first use."""
    if name == "run_local_search":
        from steerage_ray.local_search.tasks import run_local_search

        return run_local_search
    if name == "run":  # the old name: say where it went instead of a bare AttributeError
        raise AttributeError(f"{__name__}.run was renamed run_local_search (same "
                             f"arguments): {__name__}.run_local_search(candidate, dataset)")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
