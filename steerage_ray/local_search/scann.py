"""SCANN: connection growth, neuron growth and connection pruning, and Schemes A/B/C.

The operations work on any model made of masked layers (NeST reuses the connection
operations on convolutions); neuron growth needs the feed-forward structure of
:class:`SparseFeedForward`. A model is either a ``SparseFeedForward`` or a network
whose classifier ``head`` is one (``head_input(x)`` gives the head's input), as the
CNNs of :mod:`steerage_ray.local_search.nest` are.

A scheme (Algorithm 3 of the paper) repeats: apply one operation, train briefly with
``steerage_ray.training.train_model`` (masks re-applied after every step), evaluate on
the validation split, and remember the model; the best one by validation accuracy wins.
"""

from __future__ import annotations

import copy
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from steerage_ray.checks import fraction, integer
from steerage_ray.data.dataset import Dataset
from steerage_ray.local_search.graph import SparseFeedForward
from steerage_ray.local_search.masked import apply_masks, effective_flops, masked_modules
from steerage_ray.models import count_params, eval_mode
from steerage_ray.pareto import select_point
from steerage_ray.precision import Bits, precision_of
from steerage_ray.training import TrainSettings, evaluate, train_model

SCANN_SCHEMES = ("A", "B", "C")
OPERATIONS = ("grow_connections", "grow_neurons", "prune_connections", "prune_hard")
#: The operations a :class:`PruningGuard` judges (SCANN's and NeST's pruning).
PRUNING_OPERATIONS = ("prune_connections", "prune_hard", "prune_conv", "prune_area")
GROWTH_BASES = ("active", "dormant")
HISTORY_COLUMNS = ("step", "operation", "val_acc", "test_acc", "quant_bits", "quant_test_acc",
                   "params", "flops", "undone", "seconds")


def check_common_options(options: object, counts: tuple[str, ...],
                         operations: tuple[str, ...]) -> None:
    """Checks shared by the scheme options: positive integer ``counts`` fields, a
    ``schedule`` of known ``operations`` (or None) and ``accuracy_tolerance`` in [0, 1)."""
    for name in counts:
        integer(getattr(options, name), name, 1)
    schedule = options.schedule
    if schedule is not None:
        if isinstance(schedule, str) or not schedule:
            raise ValueError(f"schedule must be a non-empty sequence of operation names "
                             f"from {operations}, got {schedule!r}")
        unknown = [op for op in schedule if op not in operations]
        if unknown:
            raise ValueError(f"schedule has unknown operation(s) {unknown}; "
                             f"valid: {operations}")
    if not 0 <= options.accuracy_tolerance < 1:
        raise ValueError("accuracy_tolerance must be in [0, 1) (a fraction of accuracy), "
                         f"got {options.accuracy_tolerance!r}")


def _selection_count(ratio: float, available: int) -> int:
    """``round(ratio * available)``, at least one and at most ``available``."""
    return min(max(1, round(ratio * available)), available)


# -- connection operations ------------------------------------------------------------

def connection_gradients(model: nn.Module, X: np.ndarray | torch.Tensor,
                         y: np.ndarray | torch.Tensor, layers: Sequence[nn.Module], *,
                         batches: int = 4, batch_size: int = 128,
                         seed: int = 0) -> list[torch.Tensor]:
    """Mean dL/dw over ``batches`` random training batches, for every weight of ``layers``.

    Dormant weights are exactly zero, so lifting the masks for the measurement leaves the
    function unchanged and gives the gradient a dormant connection would receive if it
    were active. The model runs in eval mode (no dropout, frozen batch-norm statistics);
    masks, gradients and the training flag are restored afterwards.
    """
    device = next(model.parameters()).device
    order = np.random.default_rng(seed).permutation(len(y))[:batches * batch_size]
    saved_masks = [layer.mask.clone() for layer in layers]
    totals = [torch.zeros_like(layer.weight) for layer in layers]
    try:
        with eval_mode(model):
            for layer in layers:
                layer.apply_mask()
                layer.mask.fill_(1.0)
            for chunk in np.array_split(order, max(1, -(-len(order) // batch_size))):
                model.zero_grad(set_to_none=True)
                inputs = torch.as_tensor(np.asarray(X)[chunk], dtype=torch.float32,
                                         device=device)
                targets = torch.as_tensor(np.asarray(y)[chunk], dtype=torch.long,
                                          device=device)
                F.cross_entropy(model(inputs), targets, reduction="sum").backward()
                for total, layer in zip(totals, layers):
                    total += layer.weight.grad
    finally:
        for layer, mask in zip(layers, saved_masks):
            layer.mask.copy_(mask)
        model.zero_grad(set_to_none=True)
    return [total / len(order) for total in totals]


@torch.no_grad()
def grow_connections(model: nn.Module, X: np.ndarray | torch.Tensor,
                     y: np.ndarray | torch.Tensor, ratio: float, *, mode: str = "gradient",
                     of: str = "dormant", layers: Sequence[nn.Module] | None = None,
                     batches: int = 4, batch_size: int = 128, seed: int = 0) -> int:
    """Activate the best dormant connections; returns how many.

    ``mode="gradient"`` ranks dormant connections by |mean dL/dw| (see
    :func:`connection_gradients`) under one global ranking over ``layers`` (default:
    every masked layer); ``mode="random"`` picks them uniformly. ``of`` says what
    ``ratio`` is a fraction of: ``"dormant"`` activates ``round(ratio * dormant)``
    connections, ``"active"`` ``round(ratio * active)`` (at most every dormant one),
    at least one either way, ties broken by position. Their weights start at 0, so the
    function is unchanged until training.
    """
    ratio = fraction(ratio, "growth_ratio")
    if mode not in ("gradient", "random"):
        raise ValueError(f"growth mode must be 'gradient' or 'random', got {mode!r}")
    if of not in GROWTH_BASES:
        raise ValueError(f"growth must be a fraction of one of {GROWTH_BASES}, got {of!r}")
    layers = list(masked_modules(model) if layers is None else layers)
    dormant = [layer.mask.flatten() == 0 for layer in layers]
    n_dormant = int(sum(d.sum() for d in dormant))
    if n_dormant == 0:
        return 0
    if of == "dormant":
        count = _selection_count(ratio, n_dormant)
    else:
        n_active = sum(layer.active_weights() for layer in layers)
        count = min(max(1, round(ratio * n_active)), n_dormant)
    if mode == "gradient":
        with torch.enable_grad():
            gradients = connection_gradients(model, X, y, layers, batches=batches,
                                             batch_size=batch_size, seed=seed)
        scores = torch.cat([g.abs().flatten()[d] for g, d in zip(gradients, dormant)])
        chosen = torch.sort(scores.cpu(), descending=True, stable=True).indices[:count]
    else:
        generator = torch.Generator().manual_seed(seed)
        chosen = torch.randperm(n_dormant, generator=generator)[:count]
    _flip(layers, dormant, chosen, value=1.0)
    return count


@torch.no_grad()
def prune_connections(model: nn.Module, ratio: float, *, largest: bool = False,
                      layers: Sequence[nn.Module] | None = None,
                      scales: Sequence[torch.Tensor | None] | None = None) -> int:
    """Deactivate the ``ratio`` fraction of active weights with the smallest |w|.

    One global threshold over ``layers`` (default: every masked layer): exactly
    ``round(ratio * active)`` (at least one) weights go, ties broken by position.
    ``largest=True`` prunes the largest weights instead (SCANN's large-weight pruning).
    ``scales`` (one per layer, broadcastable to its weight, or None) multiply |w| before
    ranking, e.g. a following batch norm's per-channel scale. Returns how many.
    """
    ratio = fraction(ratio, "pruning_ratio")
    layers = list(masked_modules(model) if layers is None else layers)
    scales = [None] * len(layers) if scales is None else list(scales)
    if len(scales) != len(layers):
        raise ValueError(f"scales must have one entry per layer ({len(layers)}), got {len(scales)}")
    active = [layer.mask.flatten() != 0 for layer in layers]
    n_active = int(sum(a.sum() for a in active))
    if n_active == 0:
        return 0
    count = _selection_count(ratio, n_active)
    magnitudes = []
    for layer, scale, keep in zip(layers, scales, active):
        magnitude = layer.weight.abs() if scale is None else layer.weight.abs() * scale.abs()
        magnitudes.append(magnitude.flatten()[keep])
    scores = torch.cat(magnitudes).cpu()
    chosen = torch.sort(scores, descending=largest, stable=True).indices[:count]
    _flip(layers, active, chosen, value=0.0)
    return count


def _flip(layers: Sequence[nn.Module], candidates: Sequence[torch.Tensor],
          chosen: torch.Tensor, value: float) -> None:
    """Set the mask to ``value`` at the ``chosen`` positions of the concatenated candidates."""
    selected = torch.zeros(int(sum(c.sum() for c in candidates)), dtype=torch.bool)
    selected[chosen] = True
    start = 0
    for layer, candidate in zip(layers, candidates):
        n = int(candidate.sum())
        mask = layer.mask.flatten().clone()
        positions = torch.nonzero(candidate).flatten()
        mask[positions[selected[start:start + n].to(positions.device)]] = value
        layer.set_mask(mask.view_as(layer.mask))
        start += n


# -- neuron growth ----------------------------------------------------------------------

def feed_forward_part(model: nn.Module) -> SparseFeedForward:
    """The :class:`SparseFeedForward` of ``model`` (itself, or its ``head``)."""
    head = model if isinstance(model, SparseFeedForward) else getattr(model, "head", None)
    if not isinstance(head, SparseFeedForward):
        raise ValueError("model must be a SparseFeedForward or have a SparseFeedForward `head`, "
                         f"got {type(model).__name__}")
    return head


@torch.no_grad()
def grow_neurons(model: nn.Module, X: np.ndarray | torch.Tensor, ratio: float, *,
                 mode: str = "split", noise: float = 0.01, seed: int = 0) -> int:
    """Add ``round(ratio * hidden neurons)`` (at least one) neurons; returns how many.

    ``mode="split"`` splits the most active neurons (largest summed |activation| over
    ``X``, see :meth:`SparseFeedForward.split_neuron`); ``mode="random"`` adds neurons
    with random connections to uniformly chosen blocks. Both keep the network function
    (nearly) unchanged until training.
    """
    ratio = fraction(ratio, "neuron_growth_ratio")
    if mode not in ("split", "random"):
        raise ValueError(f"neuron growth mode must be 'split' or 'random', got {mode!r}")
    net = feed_forward_part(model)
    if not net.hidden_sizes:
        raise ValueError("neuron growth needs at least one hidden block")
    count = max(1, round(ratio * sum(net.hidden_sizes)))
    generator = torch.Generator().manual_seed(seed)
    if mode == "random":
        blocks = torch.randint(len(net.hidden_sizes), (count,), generator=generator)
        for block in blocks.tolist():
            net.add_random_neuron(block, generator=generator)
        return count
    device = next(model.parameters()).device
    x = torch.as_tensor(np.asarray(X), dtype=torch.float32, device=device)
    with eval_mode(model):
        head_input = model.head_input(x) if net is not model else x
        activity = net.neuron_activity(head_input)
    neurons = [(block, index) for block, size in enumerate(net.hidden_sizes)
               for index in range(size)]
    order = torch.sort(torch.cat(activity).cpu(), descending=True, stable=True).indices
    for position in order[:count].tolist():
        net.split_neuron(*neurons[position], noise=noise, generator=generator)
    return min(count, len(neurons))


# -- schemes ---------------------------------------------------------------------------

def check_guard_options(options: object) -> None:
    """Checks of the :class:`PruningGuard` fields shared by the scheme options."""
    tolerance = options.prune_tolerance
    if tolerance is not None and not 0 <= tolerance < 1:
        raise ValueError("prune_tolerance must be None or in [0, 1) (a fraction of accuracy), "
                         f"got {tolerance!r}")
    integer(options.max_undos, "max_undos", 1)


@dataclass(frozen=True)
class ScannOptions:
    """Knobs of a SCANN scheme (defaults are ours; the paper does not give them).

    - ``growth_ratio``: connections activated per connection growth, as a fraction of
      the active connections (``growth_of="active"``, the default) or of the dormant ones
      (``"dormant"``; at high sparsity that adds back most of what pruning removed and
      stalls compression at a fixed density, about 10% for ratios 0.05 / 0.3);
    - ``pruning_ratio``: fraction of active connections removed per pruning;
    - ``initial_pruning_ratio``: the hard first pruning of Schemes B and C;
    - ``neuron_growth_ratio``: neurons added per neuron growth, as a fraction of the
      hidden neurons;
    - ``start_width`` / ``start_density``: Scheme A's start, each hidden block at
      ``start_width`` of the candidate's width with that fraction of connections active;
    - ``growth``: ``"gradient"`` or ``"random"`` connection growth; ``neuron_growth``:
      ``"split"`` or ``"random"``; ``prune_largest``: large-weight pruning;
    - ``split_noise``: relative noise of a split neuron's incoming weights;
    - ``gradient_batches`` x ``gradient_batch_size`` examples rank dormant connections;
    - ``schedule``: operations to cycle through (names from ``OPERATIONS``; ``"prune_hard"``
      prunes with ``initial_pruning_ratio``). Default: A cycles (grow_connections,
      grow_neurons); B and C do prune_hard, then cycle (prune_connections,
      prune_connections, grow_connections): gradual magnitude pruning with retraining
      after every step and gradient-based regrowth;
    - ``prune_tolerance`` / ``max_undos``: the :class:`PruningGuard`. A pruning step whose
      validation accuracy ends more than ``prune_tolerance`` (at least one validation
      example) below the scheme's best so far (the mean of its three best kept steps) is
      undone: the model goes back to the step before (the step stays in the history,
      marked ``undone``) and the pruning and growth ratios are halved; a kept pruning
      step doubles them again, up to the set values. ``max_undos`` undone steps in a row
      end the scheme. ``None`` prunes on regardless;
    - ``accuracy_tolerance``: the chosen model is the one with the fewest parameters whose
      validation accuracy is within this much of the best (0: the most accurate, ties to
      fewer parameters).
    """

    growth_ratio: float = 0.1
    growth_of: str = "active"
    pruning_ratio: float = 0.3
    initial_pruning_ratio: float = 0.6
    neuron_growth_ratio: float = 0.1
    start_width: float = 0.25
    start_density: float = 0.3
    growth: str = "gradient"
    neuron_growth: str = "split"
    prune_largest: bool = False
    split_noise: float = 0.01
    gradient_batches: int = 4
    gradient_batch_size: int = 128
    schedule: tuple[str, ...] | None = None
    prune_tolerance: float | None = 0.01
    max_undos: int = 3
    accuracy_tolerance: float = 0.0

    def __post_init__(self) -> None:
        for name in ("growth_ratio", "pruning_ratio", "initial_pruning_ratio",
                     "neuron_growth_ratio", "start_width", "start_density"):
            fraction(getattr(self, name), name)
        if self.growth not in ("gradient", "random"):
            raise ValueError(f"growth must be 'gradient' or 'random', got {self.growth!r}")
        if self.growth_of not in GROWTH_BASES:
            raise ValueError(f"growth_of must be one of {GROWTH_BASES}, got {self.growth_of!r}")
        if self.neuron_growth not in ("split", "random"):
            raise ValueError("neuron_growth must be 'split' or 'random', "
                             f"got {self.neuron_growth!r}")
        if self.split_noise < 0:
            raise ValueError(f"split_noise must be >= 0, got {self.split_noise!r}")
        check_common_options(self, ("gradient_batches", "gradient_batch_size"), OPERATIONS)
        check_guard_options(self)

    def operations(self, scheme: str, iterations: int) -> list[str]:
        """The operation of each of the ``iterations`` steps of ``scheme``."""
        if self.schedule is not None:
            return list(itertools.islice(itertools.cycle(self.schedule), iterations))
        if scheme == "A":
            return list(itertools.islice(
                itertools.cycle(("grow_connections", "grow_neurons")), iterations))
        cycle = itertools.cycle(("prune_connections", "prune_connections", "grow_connections"))
        return ["prune_hard", *itertools.islice(cycle, iterations - 1)][:iterations]

    def guard(self, n_val: int | None = None) -> "PruningGuard | None":
        """The scheme's :class:`PruningGuard` for ``n_val`` validation examples (None when
        ``prune_tolerance`` is None)."""
        if self.prune_tolerance is None:
            return None
        return PruningGuard(self.prune_tolerance, self.max_undos, n_val)


@dataclass
class PruningGuard:
    """Prunes as far as validation allows, with an adaptive step.

    A pruning step (``PRUNING_OPERATIONS``) whose validation accuracy falls more than
    ``tolerance`` below the :meth:`reference` of the kept steps so far is undone, and
    ``scale`` (which multiplies the pruning and growth ratios) is halved; a kept pruning
    step doubles it again (at most 1). ``max_undos`` undone steps in a row end the
    scheme. ``n_val`` (the validation set's size) widens the tolerance to at least one
    validation example, so that on a tiny set (wine: 36 examples, 2.8 points each) a
    single flipped example does not count as damage.
    """

    tolerance: float
    max_undos: int
    n_val: int | None = None
    scale: float = 1.0
    undos: int = 0
    in_a_row: int = 0

    @property
    def allowed_drop(self) -> float:
        """The accuracy a pruning step may lose: ``tolerance``, at least one example."""
        return max(self.tolerance, 1.0 / self.n_val if self.n_val else 0.0)

    def rejects(self, rows: Sequence[dict]) -> bool:
        """Whether the last of ``rows`` (history rows, the last one just recorded) is a
        pruning step to undo; updates the scale and the undo counts either way."""
        last = rows[-1]
        if last["operation"] not in PRUNING_OPERATIONS:
            return False
        if last["val_acc"] >= self.reference(rows[:-1]) - self.allowed_drop - 1e-12:
            self.scale = min(1.0, 2 * self.scale)
            self.in_a_row = 0
            return False
        self.scale /= 2
        self.undos += 1
        self.in_a_row += 1
        return True

    @property
    def finished(self) -> bool:
        return self.in_a_row >= self.max_undos

    @staticmethod
    def reference(rows: Sequence[dict]) -> float:
        """The accuracy pruning must stay close to: the mean validation accuracy of the
        (up to) three best kept steps. Not the single best: on a small validation set
        one lucky step would otherwise undo every later pruning."""
        kept = sorted((row["val_acc"] for row in rows if not row["undone"]), reverse=True)
        return float(np.mean(kept[:3]))


@dataclass
class SchemeResult:
    """One scheme's run: a history row and a model snapshot (on the CPU) per step.

    Step 0 is the starting model; ``best_step`` indexes the chosen model.
    """

    scheme: str
    history: pd.DataFrame
    models: list[nn.Module] = field(repr=False)
    best_step: int
    input_shape: tuple[int, ...]

    @property
    def best_model(self) -> nn.Module:
        return self.models[self.best_step]

    @property
    def best(self) -> pd.Series:
        return self.history.iloc[self.best_step]


def model_costs(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, int]:
    """``(params, effective FLOPs)`` of ``model`` after removing its dead units."""
    compact = model.compact()
    return count_params(compact), effective_flops(compact, input_shape)


class StepRecorder:
    """Trains after each operation, evaluates, and keeps the history and snapshots.

    Shared by SCANN schemes and NeST so both report identical history tables. Each
    step's precision (``quant_bits``, the one its model is exported at) is
    ``precision`` when it is an int (the candidate's ``quant_bits``), else the fewest
    bits, among the tuple ``precision`` when given, at which that step's model
    validates as well as in float (``precision.precision_of``: a pruned network may
    need more bits than the one it came from); ``quant_test_acc`` is the test accuracy
    at it.
    """

    def __init__(self, scheme: str, dataset: Dataset, settings: TrainSettings, seed: int,
                 precision: Bits = None) -> None:
        self.scheme, self.dataset, self.settings, self.seed = scheme, dataset, settings, seed
        self.precision = precision
        self.rows: list[dict] = []
        self.models: list[nn.Module] = []

    def record(self, model: nn.Module, operation: str, *, train: bool = True) -> None:
        started = time.perf_counter()
        step = len(self.rows)
        if train:
            step_settings = replace(self.settings, seed=self.seed + step)
            train_model(model, self.dataset, step_settings, after_step=apply_masks)
        val_acc, _ = evaluate(model, self.dataset.X_val, self.dataset.y_val)
        test_acc, _ = evaluate(model, self.dataset.X_test, self.dataset.y_test)
        precision = precision_of(model, self.dataset, self.precision, val_acc=val_acc,
                                 test_acc=test_acc)
        params, flops = model_costs(model, self.dataset.input_shape)
        self.rows.append(dict(step=step, operation=operation, val_acc=val_acc,
                              test_acc=test_acc, quant_bits=precision.bits,
                              quant_test_acc=precision.test_acc, params=params,
                              flops=flops, undone=False,
                              seconds=time.perf_counter() - started))
        self.models.append(copy.deepcopy(model).cpu())

    def restore(self, step: int, device: torch.device) -> nn.Module:
        """A fresh copy of the model recorded at ``step``, on ``device``."""
        return copy.deepcopy(self.models[step]).to(device)

    def result(self, tolerance: float) -> SchemeResult:
        """The history, the snapshots and the chosen step: among the steps within
        ``tolerance`` of the best validation accuracy, the fewest parameters
        (``pareto.select_point``)."""
        history = pd.DataFrame(self.rows, columns=list(HISTORY_COLUMNS))
        best_step = int(select_point(history, tolerance).name)
        return SchemeResult(self.scheme, history, self.models, best_step,
                            self.dataset.input_shape)


def run_steps(scheme: str, model: nn.Module, dataset: Dataset, operations: Sequence[str],
              apply: Callable[[nn.Module, str, int, float], None], *,
              settings: TrainSettings, seed: int, train_start: bool, tolerance: float,
              guard: PruningGuard | None = None, precision: Bits = None) -> SchemeResult:
    """Algorithm 3's loop, shared by the SCANN schemes and NeST: record the start model
    (trained first when ``train_start``), then for each operation ``apply(model,
    operation, seed, scale)`` with a seed drawn from ``seed`` and the guard's pruning
    ``scale`` (1 without a guard), train, validate and record. A ``guard`` undoes a
    pruning step that cost too much validation accuracy (training continues from the
    last kept step) and ends the loop early when it has undone enough; finally a step is
    chosen with ``tolerance`` (:meth:`StepRecorder.result`)."""
    recorder = StepRecorder(scheme, dataset, settings, seed, precision)
    recorder.record(model, "start", train=train_start)
    device = next(model.parameters()).device
    kept = 0
    rng = np.random.default_rng(seed)
    for operation in operations:
        apply(model, operation, int(rng.integers(2**31)), guard.scale if guard else 1.0)
        recorder.record(model, operation)
        if guard is not None and guard.rejects(recorder.rows):
            recorder.rows[-1]["undone"] = True
            model = recorder.restore(kept, device)
            if guard.finished:
                break
        else:
            kept = len(recorder.rows) - 1
    return recorder.result(tolerance)


def start_model(scheme: str, model: nn.Module, options: ScannOptions, seed: int) -> nn.Module:
    """The network a scheme starts from, given the candidate as a sparse model.

    B and C start from the candidate itself (with and without skip connections, the
    caller converts it accordingly); A replaces its feed-forward part by a small, sparse
    skip-connected network of ``start_width`` times the width and ``start_density``
    active connections, freshly initialised.
    """
    if scheme not in SCANN_SCHEMES:
        raise ValueError(f"scheme must be one of {SCANN_SCHEMES}, got {scheme!r}")
    model = copy.deepcopy(model)
    if scheme != "A":
        return model
    net = feed_forward_part(model)
    sizes = [max(1, round(options.start_width * size)) for size in net.hidden_sizes]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        small = SparseFeedForward(net.in_features, sizes, net.n_classes, skip_connections=True)
        generator = torch.Generator().manual_seed(seed)
        for layer in small.layers:
            layer.set_mask(torch.rand(layer.mask.shape, generator=generator)
                           < options.start_density)
    small.to(next(net.parameters()).device)
    if model is net:
        return small
    model.head = small
    return model


def run_scheme(scheme: str, model: nn.Module, dataset: Dataset, *, iterations: int,
               settings: TrainSettings, options: ScannOptions = ScannOptions(),
               seed: int = 0, pretrained: bool = False,
               precision: Bits = None) -> SchemeResult:
    """Algorithm 3: ``iterations`` x (operation -> train -> validate), keep the best.

    ``model`` is the candidate as a sparse model (see :func:`start_model`); with
    ``pretrained=True`` its weights are trained already and step 0 only evaluates it
    (Scheme A always trains its fresh start). ``dataset`` is the data the candidate
    expects (after its dimensionality reduction: DR+SCANN). Pruning steps are guarded
    (``options.guard()``), so the scheme may stop before ``iterations``.
    ``precision``: the bits every step is measured and exported at (an int), or the
    widths each step's precision is chosen among (a tuple; None: all of them;
    :class:`StepRecorder`).
    """
    iterations = integer(iterations, "iterations", 1)
    model = start_model(scheme, model, options, seed)
    return run_steps(
        scheme, model, dataset, options.operations(scheme, iterations),
        lambda net, operation, step_seed, scale: apply_operation(
            net, operation, dataset, options, step_seed, scale),
        settings=settings, seed=seed, train_start=scheme == "A" or not pretrained,
        tolerance=options.accuracy_tolerance, guard=options.guard(len(dataset.y_val)),
        precision=precision)


def apply_operation(model: nn.Module, operation: str, dataset: Dataset,
                    options: ScannOptions, seed: int, scale: float = 1.0) -> None:
    """Apply one SCANN operation (a name from ``OPERATIONS``) to the feed-forward part;
    connection pruning and growth ratios are multiplied by ``scale`` (a
    :class:`PruningGuard`'s: growth shrinks with pruning, or it would outgrow it)."""
    layers = list(feed_forward_part(model).layers)
    if operation == "grow_connections":
        grow_connections(model, dataset.X_train, dataset.y_train, options.growth_ratio * scale,
                         mode=options.growth, of=options.growth_of, layers=layers,
                         batches=options.gradient_batches,
                         batch_size=options.gradient_batch_size, seed=seed)
    elif operation == "grow_neurons":
        rows = np.random.default_rng(seed).permutation(len(dataset.y_train))
        sample = dataset.X_train[rows[:options.gradient_batches * options.gradient_batch_size]]
        grow_neurons(model, sample, options.neuron_growth_ratio, mode=options.neuron_growth,
                     noise=options.split_noise, seed=seed)
    elif operation in ("prune_connections", "prune_hard"):
        hard = operation == "prune_hard"
        ratio = options.initial_pruning_ratio if hard else options.pruning_ratio
        prune_connections(model, ratio * scale, largest=options.prune_largest, layers=layers)
    else:
        raise ValueError(f"operation must be one of {OPERATIONS}, got {operation!r}")
