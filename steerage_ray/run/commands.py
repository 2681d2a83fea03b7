"""What the ``steerage`` subcommands do to an experiment directory: run every phase,
resume, rerun local search, rebuild the report. Each phase is written when it ends and
marked done in ``progress.json``, so a resumed run skips what is done."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from steerage_ray.checks import integer
from steerage_ray.cluster import release_held_messages
from steerage_ray.data import Dataset
from steerage_ray.experiment import Experiment, parse_experiment
from steerage_ray.named_objectives import needs_latency
from steerage_ray.run import front
from steerage_ray.run.baseline import baseline_model, run_baseline
from steerage_ray.run.directory import ExperimentDir, require_writable_storage
from steerage_ray.run.inputs import (
    check_objectives,
    experiment_space,
    load_experiment_data,
    with_absolute_paths,
)
from steerage_ray.run.phases import (
    global_search_phase,
    local_search_phase,
    save_global_search,
    save_local_search,
    write_report,
)
from steerage_ray.run.progress import say
from steerage_ray.run.session import resolve_resources, start_ray

Phase = tuple[str, Callable[[], object]]


def run_experiment(experiment: Experiment, output: str | Path, *, address: str | None = None,
                   storage: str | None = None, verbose: int = 0) -> ExperimentDir:
    """Run every phase of ``experiment`` into a new experiment directory.

    Everything that can be checked without Ray is checked before Ray starts (the
    output and storage paths, the data, the space against the family and the data,
    the baseline), and the cluster's resources before the directory is made, so a
    refused run leaves nothing behind.
    """
    run_dir = ExperimentDir(output)
    run_dir.require_new()  # before any work, not only when the directory is written
    if storage:
        require_writable_storage(storage)
    experiment = with_absolute_paths(with_latency_table(experiment, run_dir))
    data = load_experiment_data(experiment)
    space = experiment_space(experiment, data)  # a space that does not fit fails before Ray
    check_objectives(experiment, data, space)  # so does a latency objective without table
    baseline_model(experiment, data)  # so does a baseline that cannot be built
    start_ray(address)
    resolved = resolve_resources(experiment)
    _show_ray_messages()
    run_dir.create(experiment)  # as written: "auto" GPUs are decided again on resume
    if storage:
        run_dir.write_json("storage.json", {"storage": storage})
    return _run_all(resolved, data, run_dir, storage, verbose)


def with_latency_table(experiment: Experiment, run_dir: ExperimentDir) -> Experiment:
    """A latency objective without ``search.latency_table`` takes the table `steerage
    profile-latency` wrote into the experiment directory, when there is exactly one of
    the family (recorded in experiment.yaml, so `resume` uses the same table)."""
    if not needs_latency(experiment.search["objectives"]) \
            or experiment.search["latency_table"] is not None:
        return experiment
    tables = run_dir.latency_tables(experiment.family)
    if len(tables) > 1:
        raise ValueError(f"{run_dir.path} holds {len(tables)} {experiment.family} latency "
                         f"tables ({', '.join(p.name for p in tables)}); choose one with "
                         f"--latency-table")
    if not tables:
        return experiment  # check_objectives says to run profile-latency
    return experiment.with_overrides(search={"latency_table": str(tables[0])})


def resume_experiment(directory: str | Path, *, address: str | None = None,
                      verbose: int = 0) -> ExperimentDir:
    """Continue an experiment directory from the first phase not yet done."""
    run_dir = ExperimentDir(directory)
    experiment = run_dir.experiment()
    data = load_experiment_data(experiment)
    start_ray(address)
    experiment = resolve_resources(experiment)
    _show_ray_messages()
    return _run_all(experiment, data, run_dir, run_dir.storage(), verbose)


def set_select_tolerance(run_dir: ExperimentDir, points: float | None) -> None:
    """Store a new compact-pick tolerance (points) in the experiment; None keeps it."""
    if points is not None:
        run_dir.update_experiment(run_dir.experiment().with_overrides(
            local_search={"select_tolerance": points}))


def set_start(run_dir: ExperimentDir, start: str | int | None) -> None:
    """Store the front member local search starts from (``--ls-from``); None keeps it."""
    if start is None:
        return
    try:
        experiment = run_dir.experiment().with_overrides(local_search={"start": start})
        front.local_search_start(experiment, run_dir)  # a row the front has
    except ValueError as error:
        raise ValueError(f"--ls-from: {str(error).split(': ', 1)[-1]}") from None
    run_dir.update_experiment(experiment)


def rerun_local_search(directory: str | Path, *, address: str | None = None,
                       schemes: list[str] | None = None,
                       iterations: int | None = None,
                       select_tolerance: float | None = None,
                       start: str | int | None = None) -> ExperimentDir:
    """Run local search again on a finished global search (other schemes/iterations;
    ``select_tolerance`` in points is stored in the experiment for the report; with
    several objectives ``start``, the front member to start from, too).

    Its results change only once the new local search has finished."""
    run_dir = ExperimentDir(directory)
    set_select_tolerance(run_dir, select_tolerance)
    run_dir.experiment()  # an experiment directory, else one line naming experiment.yaml
    if not run_dir.done("global_search"):
        raise ValueError(f"{run_dir.path}: global search has not finished; run "
                         f"`steerage resume {run_dir.path}` first")
    set_start(run_dir, start)
    experiment = run_dir.experiment()
    if iterations is not None:
        integer(iterations, "--iterations", 1)
    if schemes is not None:
        local = {**experiment.to_dict()["local_search"], "schemes": list(schemes),
                 "enabled": True}
        try:
            parse_experiment({**experiment.to_dict(), "local_search": local})
        except ValueError as error:
            raise ValueError(f"--schemes: {str(error).split(': ', 1)[-1]}") from None
    data = load_experiment_data(experiment)
    start_ray(address)
    experiment = resolve_resources(experiment)
    _show_ray_messages()
    started = time.perf_counter()
    save_local_search(local_search_phase(experiment, data, run_dir, schemes, iterations),
                      run_dir)
    run_dir.mark_done("local_search", time.perf_counter() - started)
    say("summary:\n" + write_report(run_dir))
    return run_dir


def rebuild_report(directory: str | Path, select_tolerance: float | None = None) -> str:
    """Rebuild summary and plots of an experiment directory; return the summary text.
    ``select_tolerance`` (points) is stored in the experiment first (exports follow it)."""
    run_dir = ExperimentDir(directory)
    run_dir.experiment()  # an experiment directory, else one line naming experiment.yaml
    set_select_tolerance(run_dir, select_tolerance)
    if not run_dir.file("trials.csv").is_file():
        raise ValueError(f"{run_dir.path}: no trials.csv yet; global search has not "
                         f"finished (run `steerage resume {run_dir.path}`)")
    return write_report(run_dir)


def experiment_phases(experiment: Experiment, data: Dataset, run_dir: ExperimentDir,
                      storage: str | None, verbose: int = 0) -> list[Phase]:
    """The phases of a run in order, each one call that runs it and writes its files."""
    phases: list[Phase] = [
        ("baseline", lambda: run_dir.write_json("baseline.json",
                                                run_baseline(experiment, data))),
        ("global_search", lambda: save_global_search(
            global_search_phase(experiment, data, run_dir, storage, verbose), run_dir,
            data)),
    ]
    if experiment.local_search["enabled"]:
        phases.append(("local_search", lambda: save_local_search(
            local_search_phase(experiment, data, run_dir), run_dir)))
    return phases


def run_phases(phases: Sequence[Phase], run_dir: ExperimentDir) -> None:
    """Run the phases not yet done, in order, marking each done with its seconds."""
    for number, (phase, step) in enumerate(phases, start=1):
        if run_dir.done(phase):
            say(f"phase {number}/{len(phases)}: {phase} already done")
            continue
        say(f"phase {number}/{len(phases)}: {phase.replace('_', ' ')}")
        started = time.perf_counter()
        step()
        run_dir.mark_done(phase, time.perf_counter() - started)


def _show_ray_messages() -> None:
    """Ray's start-up banners, held back until the run's checks have passed."""
    for message in release_held_messages():
        say(f"ray: {message}")


def _run_all(experiment: Experiment, data: Dataset, run_dir: ExperimentDir,
             storage: str | None, verbose: int) -> ExperimentDir:
    say(f"experiment {experiment.name!r} on {data.name} ({data.kind}, "
        f"{data.n_features} features, {data.n_classes} classes) -> {run_dir.path}")
    run_phases(experiment_phases(experiment, data, run_dir, storage, verbose), run_dir)
    summary = write_report(run_dir)
    say("summary (test accuracy, non-zero parameters, FLOPs per example, bits per weight, "
        "size in KB at those bits):\n" + summary)
    say(f"wrote {run_dir.path}: summary.md, trials.csv, plots/, local_search/")
    return run_dir
