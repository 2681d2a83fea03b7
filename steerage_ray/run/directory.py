"""The experiment directory: everything a run produces, written as each phase ends, so an
interrupted run resumes where it stopped and a report can be rebuilt without Ray::

    experiment.yaml        the validated experiment as run
    progress.json          phases done and their wall-clock seconds
    storage.json           the shared storage given with --storage (cluster runs)
    baseline.json          the paper's baseline model trained on the same data
    tune/global_search/    the Ray Tune experiment (Tuner.restore resumes it)
    trials.csv, .parquet   every trained architecture (phase, round, scores, config)
    predictor_rounds.csv   the predictor's held-out Kendall tau per round, refit/EES time
    global_winner.json     the global-search winner (and the EES winner) as trained
    winner_state.pt        its trained weights (the start of local search)
    winner_searched_state.pt  a winner decided by training with the final settings:
                           its weights with the search's (then the start of local
                           search)
    pareto_front.csv, .pt  several objectives: the global-search front, its configs and
                           weights (run/front.py); local_search/start.json its member
                           local search started from
    local_search/          pareto.csv, history.csv, failures.json, models.pt
    summary.csv, summary.md, plots/*.png
    export/                models written by `steerage export`
    latency-<family>-<device>-b<batch>.json   `steerage profile-latency`'s lookup table

Every file is written whole or not at all (``storage.atomic_write``): a full disk or an
interrupt leaves the previous copy, and ``progress.json`` marks a phase done only after
all its files are written. A directory is only started where nothing would be
overwritten: a new or empty folder that this process can write to (or one holding only
the latency tables `steerage profile-latency` wrote for it).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from steerage_ray.experiment import Experiment, parse_experiment
from steerage_ray.storage import atomic_write, is_local_path

#: The Tune experiment's name: its folder under ``tune/`` (or under ``--storage``).
TUNE_NAME = "global_search"


class ExperimentDir:
    """Reads and writes the files of one experiment directory."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser().resolve()

    def file(self, *parts: str) -> Path:
        return self.path.joinpath(*parts)

    def exists(self) -> bool:
        return self.file("experiment.yaml").is_file()

    def require_new(self) -> None:
        """Refuse to start anywhere something would be overwritten: over an existing
        experiment, a file, or a folder that already holds files; and where this
        process cannot create the directory. Creates nothing."""
        if self.exists():
            raise ValueError(f"{self.path} already holds an experiment; continue it with "
                             f"`steerage resume {self.path}` or choose another --output")
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"--output {self.path} is a file, not a directory; choose "
                             f"another --output")
        if self.path.is_dir() and any(path not in self.latency_tables()
                                      for path in self.path.iterdir()):
            raise ValueError(f"--output {self.path} already holds files but no "
                             f"experiment.yaml; choose a new or empty folder (nothing "
                             f"there is overwritten)")
        require_writable(self.path, "--output")

    def latency_tables(self, family: str = "") -> list[Path]:
        """The latency tables `steerage profile-latency` wrote here (of ``family``): a
        folder holding only those is still a new experiment's folder, whose search
        finds its table there."""
        pattern = f"latency-{family}-*.json" if family else "latency-*.json"
        return sorted(p for p in self.path.glob(pattern) if p.is_file()) \
            if self.path.is_dir() else []

    def create(self, experiment: Experiment) -> None:
        self.require_new()
        self.path.mkdir(parents=True, exist_ok=True)
        self.write_text("experiment.yaml",
                        yaml.safe_dump(experiment.to_dict(), sort_keys=False))
        self.write_json("progress.json", {"done": [], "seconds": {}})

    def update_experiment(self, experiment: Experiment) -> None:
        """Rewrite experiment.yaml (settings that only change how results are read,
        e.g. ``local_search.select_tolerance``)."""
        self.experiment()  # an existing experiment directory only
        self.write_text("experiment.yaml",
                        yaml.safe_dump(experiment.to_dict(), sort_keys=False))

    def experiment(self) -> Experiment:
        if not self.exists():
            raise ValueError(f"{self.path} is not an experiment directory (no "
                             f"experiment.yaml); start one with `steerage search`")
        try:
            data = yaml.safe_load(self.file("experiment.yaml").read_text())
        except yaml.YAMLError as error:
            raise ValueError(f"{self.file('experiment.yaml')} is not valid YAML "
                             f"({getattr(error, 'problem', error)}); it was not written "
                             f"by steerage or was edited since") from None
        return parse_experiment(data, source=str(self.file("experiment.yaml")))

    def read_json(self, name: str) -> Any:
        path = self.file(name)
        return json.loads(path.read_text()) if path.is_file() else None

    def write_json(self, name: str, value: Any) -> Path:
        return self.write_text(name, json.dumps(value, indent=2, default=_json_default))

    def write_text(self, name: str, text: str) -> Path:
        return self.write_with(name, lambda path: path.write_text(text))

    def write_with(self, name: str, write: Callable[[Path], object]) -> Path:
        """Write the file ``name`` (folders made as needed) with ``write(path)``, whole
        or not at all: ``write`` gets a temporary path that replaces ``name`` only
        once it returns; a full disk raises ``storage.StorageFull``."""
        path = self.file(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as temporary:
            write(temporary)
        return path

    def done(self, phase: str) -> bool:
        return phase in (self.read_json("progress.json") or {}).get("done", [])

    def mark_done(self, phase: str, seconds: float) -> None:
        progress = self.read_json("progress.json") or {"done": [], "seconds": {}}
        if phase not in progress["done"]:
            progress["done"].append(phase)
        progress["seconds"][phase] = round(seconds, 2)
        self.write_json("progress.json", progress)

    def storage(self) -> str | None:
        """The shared storage the experiment was started with, if any."""
        return (self.read_json("storage.json") or {}).get("storage")

    def tune_storage(self, storage: str | None = None) -> str:
        """Where the Tune experiment lives: ``storage`` when given, else ``tune/``."""
        return storage or str(self.file("tune"))


def require_writable(path: str | Path, field: str) -> None:
    """Refuse ``path`` (a directory to be made) unless this process can create it: its
    nearest existing ancestor must be a directory where a file can be made. Leaves
    nothing behind."""
    path = Path(path).expanduser().absolute()
    ancestor = path
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ValueError(f"{field} {path}: {ancestor} is a file, not a directory")
    try:
        probe = tempfile.mkdtemp(prefix=".steerage-write-test-", dir=ancestor)
        os.rmdir(probe)
    except OSError as error:
        reason = (error.strerror or str(error)).lower()
        raise ValueError(f"{field} {path}: cannot create it in {ancestor} ({reason})") \
            from None


def require_writable_storage(storage: str) -> None:
    """A local or NFS ``--storage`` path must be creatable (object stores are checked by
    Tune when it starts)."""
    if is_local_path(storage):
        local = storage.removeprefix("file://")
        require_writable(local, "--storage")


def plain(value: Any) -> Any:
    """``value`` with numpy scalars, tuples and other objects made JSON values."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (tuple, set)):
        return list(value)
    return str(value)
