"""Nothing lost, nothing hangs (issue 10): Ctrl-C, lost trials, a full disk, unreachable
clusters, on a real local Ray (the two-node case is in tests/test_cli.py).

- Ctrl-C during global search and again during local search: exit 130, nothing
  unfinished marked done, and `steerage resume` ends with the run an uninterrupted one
  makes (same trials, same winner, same Pareto set; paper mode, whose proposals do not
  depend on when results arrive);
- a trial whose actor is killed is retried from its last checkpoint; an error raised by
  training is not retried;
- a full disk (a small tmpfs where this machine lets us mount one, else ``ENOSPC``
  injected at the storage layer) stops the run with one line naming the path, keeps the
  last complete state, and the run resumes once there is space;
- the API starts its own local Ray, refuses what the cluster cannot run, and an
  unreachable address fails within 30 s.
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.fs as pafs
import pytest
from ray import cloudpickle, tune

from steerage_ray import storage
from steerage_ray.cli import main

cloudpickle.register_pickle_by_value(sys.modules[__name__])

# Paper mode: every round waits for the previous one, so the run does not depend on
# when results arrive and an interrupted run can be compared trial by trial.
EXPERIMENT = """\
name: faults
dataset: digits
family: ffnn
space: {preset: ffnn}
search: {algorithm: paper, budget: 4, count: 64, ees_population: 16, ees_generations: 5}
training: {epochs: 1, final_epochs: 1, batch_size: 64}
local_search: {schemes: [C], iterations: 6, epochs: 3}
baseline: {hidden_sizes: [16]}
seed: 3
"""
TRIALS = 4


def _env() -> dict:
    return {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}


@pytest.fixture(scope="module")
def experiment_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("faults") / "faults.yaml"
    path.write_text(EXPERIMENT)
    return path


@pytest.fixture(scope="module")
def reference(ray_session, experiment_file, tmp_path_factory) -> Path:
    """The uninterrupted run every interrupted one must end up equal to."""
    out = tmp_path_factory.mktemp("reference") / "run"
    assert main(["search", "-e", str(experiment_file), "-o", str(out)]) == 0
    return out


def _architectures(run: Path) -> pd.DataFrame:
    trials = pd.read_csv(run / "trials.csv")
    keep = ["phase", "round", "status", "val_acc", "test_acc", "params",
            *sorted(c for c in trials if c.startswith("config/"))]
    return trials[keep]


def _interrupt(command: list[str], when: str, delay: float = 0.0,
               timeout: float = 400) -> tuple[int, list[str], str]:
    """Run ``command``; send SIGINT (Ctrl-C) once a line containing ``when`` appears."""
    driver = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=_env(), start_new_session=True)
    seen, deadline = [], time.monotonic() + timeout
    for line in driver.stdout:
        seen.append(line)
        if when in line or time.monotonic() > deadline:
            time.sleep(delay)
            driver.send_signal(signal.SIGINT)
            break
    seen.extend(driver.stdout)
    driver.wait(timeout=120)
    return driver.returncode, seen, driver.stderr.read()


def _own_lines(err: str) -> list[str]:
    """The stderr lines the command wrote itself, without the worker log lines Ray
    forwards (``(train_architecture pid=...) ...``). Those may still arrive while the
    driver shuts down, and a worker whose SIGTERM lands inside a weakref callback
    prints Ray's own ``SystemExit`` traceback there (Ray's race, not the CLI's)."""
    return [line for line in err.strip().splitlines()
            if not re.match(r"^(\x1b\[[0-9;]*m)?\(\S+ pid=", line)]


def _own_tracebacks(err: str) -> list[str]:
    """The tracebacks among :func:`_own_lines`, except those Tune logs when a background
    sync of its experiment state failed ("... failed with the following error:" or
    "... failed with exception:" just above). That failure is Ray's race: Tune writes
    its searcher state into its staging directory (a temporary file, then renamed)
    while its previous upload of that directory is still copying it, and the copy
    then misses the renamed file. The next sync uploads the state again, and the
    resume below checks the result."""
    own = _own_lines(err)
    return [line for before, line in zip(["", *own], own)
            if "Traceback" in line
            and not before.rstrip().endswith(("failed with the following error:",
                                              "failed with exception:"))]


def _last_own_line(err: str) -> str:
    """The last stderr line the command wrote itself."""
    own = _own_lines(err)
    return own[-1] if own else ""


@pytest.mark.slow
def test_ctrl_c_stops_marks_nothing_and_resume_reproduces_the_run(
        ray_session, reference, experiment_file, tmp_path):
    out = tmp_path / "run"
    address = ["--address", ray_session.get_runtime_context().gcs_address]
    cli = [sys.executable, "-m", "steerage_ray"]

    # Ctrl-C during global search: Tune saves its state, nothing is finalised.
    code, seen, err = _interrupt(cli + ["search", "-e", str(experiment_file), "-o",
                                        str(out)] + address, "trial 2 done")
    assert code == 130, "".join(seen[-20:]) + err[-3000:]
    assert any("trial 2 done" in line for line in seen)
    assert f"steerage resume {out}" in _last_own_line(err)
    assert not _own_tracebacks(err), err[-3000:]
    assert json.loads((out / "progress.json").read_text())["done"] == ["baseline"]
    assert not (out / "trials.csv").exists() and not (out / "global_winner.json").exists()

    # Resumed, then Ctrl-C during local search: global search is done, local search not.
    # On an idle machine this tiny local search can end before the signal arrives (exit
    # 0); the interrupt is then checked on global search only, and the end state below
    # must still be the uninterrupted run's.
    code, seen, err = _interrupt(cli + ["resume", str(out)] + address,
                                 "phase 3/3: local search", delay=0.2)
    assert code in (0, 130), "".join(seen[-20:]) + err[-3000:]
    if code == 130:
        assert json.loads((out / "progress.json").read_text())["done"] == [
            "baseline", "global_search"]
        assert not (out / "local_search" / "pareto.csv").exists()
        assert "steerage resume" in _last_own_line(err)

    # Resumed to the end: the run an uninterrupted one makes.
    assert main(["resume", str(out)]) == 0
    assert json.loads((out / "progress.json").read_text())["done"] == [
        "baseline", "global_search", "local_search"]
    trials = _architectures(out)
    assert len(trials) == TRIALS and (trials["status"] == "completed").all()
    pd.testing.assert_frame_equal(trials, _architectures(reference))
    winner, expected = (json.loads((run / "global_winner.json").read_text())
                        for run in (out, reference))
    assert winner["config"] == expected["config"] and winner["result"] == expected["result"]
    pd.testing.assert_frame_equal(pd.read_csv(out / "local_search" / "pareto.csv"),
                                  pd.read_csv(reference / "local_search" / "pareto.csv"))


class KillOnce(tune.Callback):
    """Records recoveries (for the user-error test, where nothing is killed)."""

    def __init__(self):
        self.recovered = []

    def on_trial_recover(self, iteration, trials, trial, **info):
        self.recovered.append(trial.trial_id)


class Killer(tune.Callback):
    """Kills trial actors: the running actor of the first trial to report its second
    epoch (once Tune has saved the checkpoint of its first), and the idle, cached actor
    each of the first two finished trials leaves behind for reuse. Notes what it did
    in the file ``log``: a restarted search runs with a copy of this callback."""

    def __init__(self, log: str):
        self.log = Path(log)

    def _note(self, line: str) -> None:
        with open(self.log, "a") as file:
            file.write(line + "\n")

    def notes(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.is_file() else []

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self._note(f"epoch {trial.trial_id} {result.get('epoch')}")
        if result.get("training_iteration") == 2 and not any(
                n.startswith("killed-running") for n in self.notes()):
            self._note(f"killed-running {trial.trial_id}")
            os.kill(result["pid"], signal.SIGKILL)

    def on_trial_complete(self, iteration, trials, trial, **info):
        if sum(n.startswith("killed-idle") for n in self.notes()) < 2:
            self._note(f"killed-idle {trial.trial_id}")
            os.kill(trial.last_result["pid"], signal.SIGKILL)

    def on_trial_recover(self, iteration, trials, trial, **info):
        self._note(f"recovered {trial.trial_id}")


@pytest.mark.slow
def test_trials_whose_actors_are_killed_are_retried_and_nothing_is_lost(ray_session,
                                                                        tmp_path):
    """A running trial's actor killed: Tune retries the trial from its checkpoint. Idle
    actors kept for reuse killed: the trial handed one fails before it runs, which Tune
    does not retry; the search restarts from its last saved state instead."""
    from steerage_ray.global_search import global_search

    killer = Killer(str(tmp_path / "kills.txt"))
    result = global_search("digits", budget=3, epochs=3, checkpoint_seconds=0,
                           storage_path=str(tmp_path), name="kill", verbose=0,
                           callbacks=[killer], algorithm="paper", count=32,
                           ees_population=16, ees_generations=5,
                           training={"batch_size": 64})
    notes = killer.notes()
    (running,) = [n.split()[1] for n in notes if n.startswith("killed-running")]
    assert f"recovered {running}" in notes
    assert sum(n.startswith("killed-idle") for n in notes) == 2
    trials = result.trials
    assert len(trials) == 3 and (trials["status"] == "completed").all()
    assert not trials.duplicated([c for c in trials if c.startswith("config/")]).any()
    # killed at epoch 2: the retry restarts from the checkpoint of epoch 1
    epochs = [int(n.split()[2]) for n in notes if n.startswith(f"epoch {running}")]
    assert epochs[:4] == [1, 2, 2, 3]
    # the trial handed a dead actor made the search restart: a second Tune session
    assert len(list((tmp_path / "kill").glob("experiment_state-*.json"))) >= 2


@pytest.mark.slow
def test_an_error_raised_by_training_is_not_retried(ray_session, tmp_path):
    from steerage_ray.trainables import FailurePolicy, make_trainable

    killer = KillOnce()
    grid = tune.Tuner(
        make_trainable("digits"),
        param_space={"family": "ffnn", "num_layers": 1, "epochs": 1, "neurons_1": -5},
        tune_config=tune.TuneConfig(metric="val_acc", mode="max"),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="user-error", verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=3),
                                  callbacks=[FailurePolicy(), killer])).fit()
    assert killer.recovered == []  # retrying the user's own error would fail again
    (failed,) = grid
    assert grid.num_errors == 1 and failed.error is not None
    assert "neurons_1" in failed.metrics["trial_error"]


# ---------------------------------------------------------------- a full disk
def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True)
    return done.returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs where the machine allows mounting one (else None); grown later."""
    disk = tmp_path / "disk"
    mounted = _mount_tmpfs(disk, "2m")
    yield disk if mounted else None
    if mounted:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def _inject_full_disk(monkeypatch, match: str) -> None:
    """ENOSPC for every write, in this process, of a file whose path holds ``match``."""
    original = storage._AtomicFile.write

    def write(self, data):
        if match in self.path:
            error = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.temporary)
            self._fail(error)
            raise error
        return original(self, data)

    monkeypatch.setattr(storage._AtomicFile, "write", write)


def _valid_state(tune_dir: Path) -> None:
    """Tune's experiment state is complete (not truncated) and nothing half-written."""
    states = sorted(tune_dir.glob("experiment_state-*.json"))
    for state in states:
        json.loads(state.read_text())
    assert not list(tune_dir.parent.rglob("*.partial"))


@pytest.mark.slow
def test_a_full_disk_stops_with_one_line_keeps_the_state_and_resumes(
        ray_session, experiment_file, small_disk, tmp_path, capfd, monkeypatch):
    without_ls = experiment_file.read_text().replace(
        "local_search: {schemes: [C], iterations: 6, epochs: 3}",
        "local_search: {enabled: false}")
    experiment = tmp_path / "no-ls.yaml"
    experiment.write_text(without_ls)
    if small_disk is not None:  # a real full disk: the trials' checkpoints fill it
        out = small_disk / "run"
    else:  # injected: the driver's writes of Tune's experiment state fail
        out = tmp_path / "run"
        _inject_full_disk(monkeypatch, "experiment_state")
    capfd.readouterr()
    assert main(["search", "-e", str(experiment), "-o", str(out)]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no space left on device writing" in err[0], err
    assert str(out) in err[0] and f"steerage resume {out}" in err[0]
    progress = json.loads((out / "progress.json").read_text())
    assert progress["done"] == ["baseline"]
    _valid_state(out / "tune" / "global_search")

    if small_disk is not None:  # space is back
        subprocess.run(["mount", "-o", "remount,size=1g", str(small_disk)], check=True)
    else:
        monkeypatch.undo()
    assert main(["resume", str(out)]) == 0
    trials = pd.read_csv(out / "trials.csv")
    assert len(trials) == TRIALS and (trials["status"] == "completed").all()
    assert not trials.duplicated([c for c in trials if c.startswith("config/")]).any()


def test_atomic_storage_keeps_the_previous_copy_when_the_disk_is_full(tmp_path,
                                                                      monkeypatch):
    """The storage layer itself: a failed write leaves the previous snapshot of Tune's
    state whole (all three files of it) and no debris."""
    filesystem = storage.tune_filesystem(str(tmp_path))
    source, target = tmp_path / "staging", tmp_path / "exp"
    source.mkdir()
    state = ["experiment_state-1.json", "search_gen_state-1.json", "searcher-state-1.pkl"]

    def snapshot(version: int) -> None:
        for name in state:
            (source / name).write_text(f"{name} v{version}")
        (source / "result.json").write_text(f"v{version}")
        pafs.copy_files(str(source), str(target), source_filesystem=pafs.LocalFileSystem(),
                        destination_filesystem=filesystem)

    snapshot(1)
    assert [(target / name).read_text() for name in state] == [f"{n} v1" for n in state]
    storage.clear_failures()
    _inject_full_disk(monkeypatch, "searcher-state")
    with pytest.raises(OSError):
        snapshot(2)
    # the other two files of snapshot 2 were written, but are not put in place alone
    assert [(target / name).read_text() for name in state] == [f"{n} v1" for n in state]
    deadline = time.monotonic() + 5  # pyarrow may still be closing another copy thread's
    while list(target.glob(".*.partial")) and time.monotonic() < deadline:  # file
        time.sleep(0.05)
    assert not list(target.glob(".*.partial"))
    failure = storage.first_failure()
    assert failure is not None and failure.errno == errno.ENOSPC
    assert str(failure) == ("no space left on device writing "
                            f"{target / 'searcher-state-1.pkl'}")
    storage.clear_failures()
    monkeypatch.undo()
    snapshot(3)
    assert [(target / name).read_text() for name in state] == [f"{n} v3" for n in state]

    with pytest.raises(storage.StorageFull, match="summary.csv"):
        with storage.atomic_write(tmp_path / "summary.csv") as temporary:
            temporary.write_text("partial")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert not (tmp_path / "summary.csv").exists()
    assert storage.storage_full(RuntimeError("x")) is None


# ---------------------------------------------------------------- nothing hangs
def test_the_api_starts_a_local_ray_never_one_found_on_the_machine(monkeypatch):
    import ray

    from steerage_ray import cluster

    calls = []

    def init(**kwargs):
        calls.append(kwargs)
        raise RuntimeError("stop here")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    with pytest.raises(RuntimeError, match="stop here"):
        cluster.connect()
    assert calls[0]["address"] == "local"


@pytest.mark.slow
def test_an_unreachable_address_fails_within_30_seconds(monkeypatch):
    import ray

    from steerage_ray.global_search import global_search

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    started = time.monotonic()
    # a documentation-only address (RFC 5737): nothing answers there
    with pytest.raises(ValueError, match="no Ray cluster answers"):
        global_search("digits", budget=4, epochs=1, address="192.0.2.123:6379")
    assert time.monotonic() - started < 30
