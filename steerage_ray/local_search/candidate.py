"""The architecture local search starts from, and the sparse model each scheme makes of it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

from torch import nn

from steerage_ray.data.dataset import Dataset
from steerage_ray.local_search.graph import SparseFeedForward
from steerage_ray.local_search.convnet import SparseConvNet
from steerage_ray.local_search.scann import SCANN_SCHEMES
from steerage_ray.models import build_model
from steerage_ray.precision import Bits, config_precision

#: The families local search works on, and the schemes each can run.
FAMILY_SCHEMES = {"ffnn": SCANN_SCHEMES, "lenet": (*SCANN_SCHEMES, "nest")}


@dataclass
class Candidate:
    """The architecture local search starts from, normally the global-search winner.

    ``family`` is ``"ffnn"`` or ``"lenet"``; ``config`` the flat architecture config
    (docs/ARCHITECTURE.md preset keys; ``quant_bits``, when there, sets every local-search
    step's precision, and ``precision_choices`` the bit widths each step's is chosen
    among);
    ``state_dict`` the trained weights of ``build_model(family, config, input_shape,
    n_classes)``, or None to have every scheme train the candidate first.
    """

    family: str
    config: dict
    state_dict: dict | None = None

    @classmethod
    def from_value(cls, value: "Candidate | Mapping", family: str | None = None) -> "Candidate":
        """A Candidate from itself or a dict with keys ``family``, ``config`` and
        optionally ``state_dict``; ``family`` fills in or must match."""
        if isinstance(value, Mapping):
            unknown = set(value) - {f.name for f in fields(cls)}
            if unknown:
                raise ValueError(f"candidate has unknown key(s) {sorted(unknown)}; expected "
                                 "'family', 'config' and optionally 'state_dict'")
            if "config" not in value:
                raise ValueError("candidate must have a 'config' (the architecture dict)")
            value = cls(family=value.get("family", family), config=dict(value["config"]),
                        state_dict=value.get("state_dict"))
        elif not isinstance(value, Candidate):
            raise ValueError(f"candidate must be a Candidate or a dict, got {type(value).__name__}")
        if family is not None and value.family != family:
            raise ValueError(f"family={family!r} does not match candidate.family={value.family!r}")
        if value.family not in FAMILY_SCHEMES:
            raise ValueError(f"candidate family must be one of {tuple(FAMILY_SCHEMES)} for local "
                             f"search, got {value.family!r}")
        return value

    @property
    def precision(self) -> Bits:
        """The config's precision (``quant_bits``), or the bit widths local search
        chooses each step's among (``precision_choices``; None: all of them)."""
        return config_precision(self.config)

    def build(self, dataset: Dataset, seed: int = 0) -> nn.Module:
        """The dense candidate for ``dataset`` (its weights loaded when given)."""
        model = build_model(self.family, self.config, dataset.input_shape, dataset.n_classes,
                            seed=seed)
        if self.state_dict is not None:
            try:
                model.load_state_dict(self.state_dict)
            except RuntimeError as error:
                raise ValueError(
                    f"candidate.state_dict does not fit the {self.family} model that "
                    f"candidate.config builds for input shape {dataset.input_shape}; was the "
                    f"dataset prepared for the config (data.prepare_for_config)? {error}"
                ) from error
        return model


def sparse_start(candidate: Candidate, scheme: str, dataset: Dataset, seed: int) -> nn.Module:
    """The candidate as the sparse model ``scheme`` works on: skip connections for A and
    B, a plain MLP (Scheme C's) for C and NeST's head."""
    dense = candidate.build(dataset, seed)
    skip = scheme in ("A", "B")
    if candidate.family == "ffnn":
        linears = [m for m in dense if isinstance(m, nn.Linear)]
        return SparseFeedForward.from_linears(linears, skip_connections=skip)
    return SparseConvNet.from_lenet(dense, dataset.input_shape, skip_connections=skip)
