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
    local_search/          pareto.csv, history.csv, failures.json, models.pt
    summary.csv, summary.md, plots/*.png
    export/                models written by `steerage export`
    latency-<family>-<device>-b<batch>.json   `steerage profile-latency`'s lookup table
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from steerage_ray.experiment import Experiment, parse_experiment

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
        """Refuse to start over an existing experiment (nothing is ever overwritten)."""
        if self.exists():
            raise ValueError(f"{self.path} already holds an experiment; continue it with "
                             f"`steerage resume {self.path}` or choose another --output")

    def create(self, experiment: Experiment) -> None:
        self.require_new()
        self.path.mkdir(parents=True, exist_ok=True)
        self.file("experiment.yaml").write_text(
            yaml.safe_dump(experiment.to_dict(), sort_keys=False))
        self.write_json("progress.json", {"done": [], "seconds": {}})

    def experiment(self) -> Experiment:
        if not self.exists():
            raise ValueError(f"{self.path} is not an experiment directory (no "
                             f"experiment.yaml); start one with `steerage search`")
        data = yaml.safe_load(self.file("experiment.yaml").read_text())
        return parse_experiment(data, source=str(self.file("experiment.yaml")))

    def read_json(self, name: str) -> Any:
        path = self.file(name)
        return json.loads(path.read_text()) if path.is_file() else None

    def write_json(self, name: str, value: Any) -> Path:
        path = self.file(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(path.suffix + ".tmp")
        temporary.write_text(json.dumps(value, indent=2, default=_json_default))
        temporary.replace(path)
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


def plain(value: Any) -> Any:
    """``value`` with numpy scalars, tuples and other objects made JSON values."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (tuple, set)):
        return list(value)
    return str(value)
