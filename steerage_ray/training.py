"""One train/evaluate loop for every model of the search, on CPU or GPU.

Small datasets dominate architecture search, so the loop keeps each split as one tensor
on the device and slices shuffled mini-batches from it instead of running a DataLoader:
no worker processes, no per-batch host-to-device copies. Datasets are assumed to fit in
device memory (CIFAR-10, the largest in the paper, takes 0.6 GB as float32).
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from steerage_ray.checks import is_integer, is_number
from steerage_ray.data.dataset import Dataset
from steerage_ray.families import check_family
from steerage_ray.models.probe import eval_mode

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "cosine")
# Marks the TrainSettings fields that whoever runs the training decides (seed, device,
# threads, ...), as opposed to the ones an experiment file or a trial config may set.
_RUNTIME = {"runtime": True}


@dataclass(frozen=True)
class TrainSettings:
    """How to train one network. Validated on construction.

    ``momentum`` applies to SGD only (Adam uses its default betas). ``schedule="cosine"``
    anneals the learning rate per epoch from ``lr`` towards 0 over ``epochs``.
    ``patience`` stops training after that many epochs without a better validation
    accuracy. ``restore_best`` loads the best-validation weights back into the model at
    the end (the test accuracy is measured on them). ``device`` is ``"auto"`` (CUDA when
    usable, else CPU), ``"cpu"`` or ``"cuda[:i]"``. ``num_threads`` caps torch's intra-op
    threads during training, e.g. to match the CPUs Ray gives a trial.

    The fields up to ``patience`` are the training settings an experiment's
    ``training`` section and a trial config may set (:data:`CONFIG_KEYS`); the others
    are decided by whoever runs the training.
    """

    epochs: int = 20
    batch_size: int = 128
    optimizer: str = "adam"
    lr: float = 0.01
    momentum: float = 0.0
    weight_decay: float = 0.0
    schedule: str = "constant"
    patience: int | None = None
    restore_best: bool = field(default=True, metadata=_RUNTIME)
    seed: int = field(default=0, metadata=_RUNTIME)
    device: str = field(default="auto", metadata=_RUNTIME)
    num_threads: int | None = field(default=None, metadata=_RUNTIME)

    def __post_init__(self) -> None:
        _require(is_integer(self.epochs) and self.epochs >= 1, "epochs", self.epochs,
                 "an integer >= 1")
        _require(is_integer(self.batch_size) and self.batch_size >= 1, "batch_size",
                 self.batch_size, "an integer >= 1")
        _require(self.optimizer in OPTIMIZERS, "optimizer", self.optimizer,
                 f"one of {OPTIMIZERS}")
        _require(is_number(self.lr) and self.lr > 0 and math.isfinite(self.lr), "lr",
                 self.lr, "a finite number > 0")
        _require(is_number(self.momentum) and 0 <= self.momentum < 1, "momentum",
                 self.momentum, "a number in [0, 1)")
        _require(is_number(self.weight_decay) and 0 <= self.weight_decay < math.inf,
                 "weight_decay", self.weight_decay, "a finite number >= 0")
        _require(self.schedule in SCHEDULES, "schedule", self.schedule, f"one of {SCHEDULES}")
        _require(self.patience is None or (is_integer(self.patience) and self.patience >= 1),
                 "patience", self.patience, "None or an integer >= 1")
        _require(isinstance(self.restore_best, bool), "restore_best", self.restore_best,
                 "True or False")
        _require(is_integer(self.seed) and self.seed >= 0, "seed", self.seed, "an integer >= 0")
        _require(self.device == "auto" or _is_device(self.device), "device", self.device,
                 "'auto', 'cpu' or 'cuda[:index]'")
        _require(self.num_threads is None
                 or (is_integer(self.num_threads) and self.num_threads >= 1),
                 "num_threads", self.num_threads, "None or an integer >= 1")

    def lr_at(self, epoch: int) -> float:
        """Learning rate of (0-based) ``epoch`` under the schedule."""
        if self.schedule == "constant":
            return self.lr
        return 0.5 * self.lr * (1 + math.cos(math.pi * epoch / self.epochs))


#: The TrainSettings fields an experiment file or a trial config may set, in field order:
#: epochs, batch_size, optimizer, lr, momentum, weight_decay, schedule, patience.
CONFIG_KEYS: tuple[str, ...] = tuple(f.name for f in fields(TrainSettings)
                                     if not f.metadata.get("runtime"))

_MNIST_LIKE = ("mnist", "fashion_mnist")
_CIFAR = ("cifar10",)


def settings_for(dataset_name: str, family: str | None = None,
                 **overrides: object) -> TrainSettings:
    """The paper's training defaults for a dataset and model family, plus ``overrides``.

    - small tabular data (everything not listed below, e.g. digits, UCI files):
      Adam, lr 0.01, weight decay 1e-3 (Section 5.1.1), 30 epochs;
    - MNIST / Fashion-MNIST, FFNN (or no family): SGD, lr 0.01, momentum 0.9, weight
      decay 1e-4 (Section 5.1.2), 20 epochs;
    - MNIST / Fashion-MNIST / CIFAR-10, LeNet: SGD, lr 0.001, momentum 0.9, weight decay
      1e-4 (Section 5.2.1), 20 epochs;
    - CIFAR-10, ResNet (or no family): SGD, lr 0.1, momentum 0.9, weight decay 5e-4,
      cosine schedule, 200 epochs. The paper gives only the 200 epochs (Section 6); the
      rest is common practice for CIFAR ResNets (e.g. kuangliu/pytorch-cifar);
    - CIFAR-10, FFNN: as MNIST FFNN (the paper is silent).

    Names are matched case-insensitively with ``-`` read as ``_`` ("Fashion-MNIST").
    """
    if family is not None:
        check_family(family)
    name = str(dataset_name).lower().replace("-", "_")
    if name in _CIFAR and family in (None, "resnet"):
        defaults = dict(epochs=200, optimizer="sgd", lr=0.1, momentum=0.9,
                        weight_decay=5e-4, schedule="cosine")
    elif name in _MNIST_LIKE + _CIFAR and family == "lenet":
        defaults = dict(epochs=20, optimizer="sgd", lr=0.001, momentum=0.9, weight_decay=1e-4)
    elif name in _MNIST_LIKE + _CIFAR:
        defaults = dict(epochs=20, optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=1e-4)
    else:
        defaults = dict(epochs=30, optimizer="adam", lr=0.01, weight_decay=1e-3)
    unknown = set(overrides) - {f.name for f in fields(TrainSettings)}
    if unknown:
        raise ValueError(f"unknown TrainSettings field(s) {sorted(unknown)} in overrides")
    return TrainSettings(**{**defaults, **overrides})


def settings_from(values: Mapping[str, object], dataset_name: str, family: str | None = None,
                  **fixed: object) -> TrainSettings:
    """:func:`settings_for` the dataset and family, overridden by the :data:`CONFIG_KEYS`
    that ``values`` sets (None means unset; other keys are ignored), then by ``fixed``.

    The one way a trial config (the trainable) and an experiment's ``training`` section
    (baseline, local search) become ``TrainSettings``; ``fixed`` carries what the caller
    decides itself (``seed``, ``num_threads``, a phase's ``epochs``).
    """
    chosen = {key: values[key] for key in CONFIG_KEYS if values.get(key) is not None}
    return settings_for(dataset_name, family, **{**chosen, **fixed})


@dataclass
class EpochResult:
    """What ``on_epoch`` sees after each epoch (``epoch`` is 0-based).

    ``model`` and ``optimizer`` are the live objects, for checkpointing; the callback may
    return True to stop training. ``final`` says that training stops after this epoch
    (the last of ``settings.epochs``, or ``patience`` ran out), so a callback knows
    which epoch is the last before it returns.
    """

    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    best_val_acc: float
    lr: float
    model: nn.Module = field(repr=False)
    optimizer: torch.optim.Optimizer = field(repr=False)
    final: bool = False

    def metrics(self) -> dict[str, float]:
        """The numbers of this epoch, as stored in ``TrainResult.history``."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in ("model", "optimizer", "final")}


@dataclass
class TrainResult:
    """Outcome of :func:`train_model`.

    ``best_epoch`` is None when no epoch finished (divergence in the first epoch); the
    model then holds its initial weights and ``best_val_acc`` is their accuracy.
    ``test_acc``/``test_loss`` are measured at the end on the returned model (the best
    one unless ``restore_best=False``). ``stop_reason`` is ``"completed"``,
    ``"early_stopping"``, ``"callback"`` or ``"diverged"``. ``optimizer_state`` is the
    optimizer's state after the last step, for resuming with ``start_epoch``.
    ``epochs_run`` and ``history`` cover the epochs of this call only.
    """

    best_val_acc: float
    best_epoch: int | None
    epochs_run: int
    history: list[dict[str, float]]
    test_acc: float
    test_loss: float
    diverged: bool
    stop_reason: str
    optimizer_state: dict
    seconds: float


def train_model(
    model: nn.Module,
    dataset: Dataset,
    settings: TrainSettings,
    on_epoch: Callable[[EpochResult], bool | None] | None = None,
    after_step: Callable[[nn.Module], None] | None = None,
    start_epoch: int = 0,
    optimizer_state: dict | None = None,
) -> TrainResult:
    """Train ``model`` in place with cross-entropy and return what happened.

    The model and the data move to ``select_device(settings.device)``. Everything is
    seeded by ``settings.seed``: the run forks torch's global RNG (the caller's RNG is
    left untouched) and shuffles epoch ``e`` with a generator seeded by ``(seed, e)``,
    so a run resumed at ``start_epoch`` with ``optimizer_state`` and the saved weights
    sees the same batches as an uninterrupted one. ``after_step(model)`` runs after
    every optimizer step (masked models re-apply their masks there). A non-finite loss
    stops training with ``diverged=True`` instead of raising; the best weights so far
    (or the initial ones) are restored in that case whatever ``restore_best`` says.
    """
    _require(is_integer(start_epoch) and 0 <= start_epoch < settings.epochs, "start_epoch",
             start_epoch, f"an integer in [0, settings.epochs={settings.epochs})")
    for split in ("train", "val", "test"):
        if len(getattr(dataset, f"y_{split}")) == 0:
            raise ValueError(f"dataset.X_{split} is empty; train_model needs all three splits")
    device = select_device(settings.device)
    started = time.perf_counter()
    with torch_threads(settings.num_threads), torch.random.fork_rng(devices=_cuda_indices(device)):
        torch.manual_seed(settings.seed)
        model.to(device)
        X_train, y_train = _tensors(dataset.X_train, dataset.y_train, device)
        X_val, y_val = _tensors(dataset.X_val, dataset.y_val, device)
        optimizer = _make_optimizer(model, settings)
        if optimizer_state is not None:
            optimizer.load_state_dict(optimizer_state)

        best_state = _copy_state(model)
        best_val_acc, best_epoch = -math.inf, None
        history: list[dict[str, float]] = []
        stop_reason = "completed"
        for epoch in range(start_epoch, settings.epochs):
            lr = settings.lr_at(epoch)
            for group in optimizer.param_groups:
                group["lr"] = lr
            train_loss, train_acc = _train_one_epoch(
                model, optimizer, X_train, y_train, settings.batch_size,
                _epoch_generator(settings.seed, epoch), after_step)
            val_acc, val_loss = evaluate(model, X_val, y_val)
            if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
                stop_reason = "diverged"
                break
            if val_acc > best_val_acc:
                best_val_acc, best_epoch, best_state = val_acc, epoch, _copy_state(model)
            patience_out = (settings.patience is not None
                            and epoch - best_epoch >= settings.patience)
            result = EpochResult(epoch, train_loss, train_acc, val_loss, val_acc,
                                 best_val_acc, lr, model, optimizer,
                                 final=patience_out or epoch + 1 == settings.epochs)
            history.append(result.metrics())
            if on_epoch is not None and on_epoch(result):
                stop_reason = "callback"
                break
            if patience_out:
                stop_reason = "early_stopping"
                break

        diverged = stop_reason == "diverged"
        if settings.restore_best or diverged:
            model.load_state_dict(best_state)
        if best_epoch is None:
            best_val_acc = evaluate(model, X_val, y_val)[0]
        test_acc, test_loss = evaluate(model, dataset.X_test, dataset.y_test)
    return TrainResult(best_val_acc=best_val_acc, best_epoch=best_epoch,
                       epochs_run=len(history), history=history, test_acc=test_acc,
                       test_loss=test_loss, diverged=diverged, stop_reason=stop_reason,
                       optimizer_state=optimizer.state_dict(),
                       seconds=time.perf_counter() - started)


def evaluate(
    model: nn.Module,
    X: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor,
    device: str | torch.device | None = None,
    batch_size: int = 1024,
) -> tuple[float, float]:
    """``(accuracy, mean cross-entropy loss)`` of ``model`` on ``(X, y)``.

    Runs in eval mode without gradients and restores the model's training flag.
    ``device=None`` evaluates where the model already is; a device moves the model
    there (in place, like ``model.to``).
    """
    _require(is_integer(batch_size) and batch_size >= 1, "batch_size", batch_size,
             "an integer >= 1")
    if len(y) == 0 or len(X) != len(y):
        raise ValueError("X and y must be non-empty and of equal length, "
                         f"got {len(X)} and {len(y)}")
    if device is None:
        parameter = next(model.parameters(), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
    else:
        device = torch.device(device)
        model.to(device)
    X, y = _tensors(X, y, device)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    with eval_mode(model), torch.no_grad():
        for start in range(0, len(y), batch_size):
            logits = model(X[start:start + batch_size])
            target = y[start:start + batch_size]
            loss_sum += F.cross_entropy(logits, target, reduction="sum")
            correct += (logits.argmax(dim=1) == target).sum()
    return correct.item() / len(y), loss_sum.item() / len(y)


def select_device(device: str | torch.device = "auto") -> torch.device:
    """The torch device to train on: ``"auto"`` means CUDA when usable, else CPU.

    Ray sets ``CUDA_VISIBLE_DEVICES`` for trials with GPU resources, also on machines
    without a CUDA driver (e.g. fake GPUs in a simulated cluster); that falls back to
    the CPU instead of failing. An explicit ``"cuda"`` that is not usable raises.
    """
    if device == "auto":
        return torch.device("cuda") if _cuda_usable() else torch.device("cpu")
    _require(_is_device(device), "device", device, "'auto', 'cpu' or 'cuda[:index]'")
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index or 0
        if not _cuda_usable() or index >= torch.cuda.device_count():
            raise ValueError(f"device {str(device)!r} is not available on this machine; "
                             "use device='auto' to fall back to the CPU")
    return device


def _train_one_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    X: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
    after_step: Callable[[nn.Module], None] | None,
) -> tuple[float, float]:
    """One pass over shuffled mini-batches; returns (mean loss, accuracy) over the epoch.

    Losses accumulate on the device and are read once at the end, so a GPU never waits
    for the host inside the epoch.
    """
    model.train()
    order = torch.randperm(len(y), generator=generator).to(X.device)
    loss_sum = torch.zeros((), device=X.device)
    correct = torch.zeros((), device=X.device, dtype=torch.long)
    for start in range(0, len(y), batch_size):
        batch = order[start:start + batch_size]
        inputs, targets = X[batch], y[batch]
        optimizer.zero_grad(set_to_none=True)
        logits = model(inputs)
        loss = F.cross_entropy(logits, targets)
        loss.backward()
        optimizer.step()
        if after_step is not None:
            after_step(model)
        loss_sum += loss.detach() * len(batch)
        correct += (logits.detach().argmax(dim=1) == targets).sum()
    return loss_sum.item() / len(y), correct.item() / len(y)


def _make_optimizer(model: nn.Module, settings: TrainSettings) -> torch.optim.Optimizer:
    parameters = [p for p in model.parameters() if p.requires_grad]
    if settings.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=settings.lr, momentum=settings.momentum,
                               weight_decay=settings.weight_decay)
    return torch.optim.Adam(parameters, lr=settings.lr, weight_decay=settings.weight_decay)


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A shuffling generator that depends only on (seed, epoch), so resuming is exact."""
    state = np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def _tensors(X: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor,
             device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.as_tensor(X, dtype=torch.float32, device=device),
            torch.as_tensor(y, dtype=torch.long, device=device))


def _copy_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return copy.deepcopy(model.state_dict())


def _cuda_usable() -> bool:
    try:
        return torch.cuda.is_available() and torch.cuda.device_count() > 0
    except RuntimeError:  # a broken driver or invalid CUDA_VISIBLE_DEVICES
        return False


def _cuda_indices(device: torch.device) -> list[int]:
    return [device.index or 0] if device.type == "cuda" else []


@contextlib.contextmanager
def torch_threads(num_threads: int | None) -> Iterator[None]:
    """Cap torch's intra-op threads at ``num_threads`` inside the block (None: leave
    them alone); the previous number is restored after."""
    if num_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _is_device(device: object) -> bool:
    if isinstance(device, torch.device):
        return device.type in ("cpu", "cuda")
    try:
        return isinstance(device, str) and torch.device(device).type in ("cpu", "cuda")
    except RuntimeError:
        return False


def _require(condition: bool, name: str, value: object, expected: str) -> None:
    if not condition:
        raise ValueError(f"{name} must be {expected}, got {value!r}")
