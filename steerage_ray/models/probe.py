"""Running a model to look at it, without training it: eval mode that restores the
training flag, and a zero example on the model's own device and dtype."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from torch import nn


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode inside the block; its training flag is restored after."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def zero_input(model: nn.Module, input_shape: Sequence[int]) -> torch.Tensor:
    """A batch of one all-zero example of ``input_shape``, on the model's device and in
    its dtype (the defaults for a model without parameters)."""
    parameter = next(model.parameters(), None)
    return torch.zeros((1, *input_shape),
                       device=parameter.device if parameter is not None else None,
                       dtype=parameter.dtype if parameter is not None else None)
