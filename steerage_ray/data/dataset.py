"""The in-memory dataset every model, trainable and local-search step consumes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np


@dataclass(frozen=True)
class Dataset:
    """Train/validation/test splits as numpy arrays, ready for PyTorch.

    Features are float32 (tabular: ``(N, d)``; images: ``(N, C, H, W)``), labels int64
    in ``0 .. n_classes - 1``. ``meta`` records how the data was made (source, split
    seed, reduction applied) so cached and reported results can say what they used.
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    kind: str  # "tabular" or "image"
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ("tabular", "image"):
            raise ValueError(f"Dataset.kind must be 'tabular' or 'image', got {self.kind!r}")
        expected_ndim = 2 if self.kind == "tabular" else 4
        for split in ("train", "val", "test"):
            X = getattr(self, f"X_{split}")
            y = getattr(self, f"y_{split}")
            if X.ndim != expected_ndim:
                raise ValueError(
                    f"Dataset.X_{split} must have {expected_ndim} dimensions for kind "
                    f"{self.kind!r}, got shape {X.shape}"
                )
            if len(X) != len(y):
                raise ValueError(
                    f"Dataset.X_{split} has {len(X)} rows but y_{split} has {len(y)}"
                )

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example: ``(d,)`` for tabular data, ``(C, H, W)`` for images."""
        return tuple(self.X_train.shape[1:])

    @property
    def n_features(self) -> int:
        return int(np.prod(self.input_shape))

    def with_features(self, X_train: np.ndarray, X_val: np.ndarray, X_test: np.ndarray,
                      kind: str | None = None, **meta) -> "Dataset":
        """A copy with transformed features (same labels), recording ``meta``."""
        return replace(self, X_train=X_train, X_val=X_val, X_test=X_test,
                       kind=kind or self.kind, meta={**self.meta, **meta})
