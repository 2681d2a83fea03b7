"""The ``steerage`` command: search, resume, local-search, report, export.

Every user error (bad experiment file, missing dataset, impossible resources, an
experiment directory that already exists) is printed as one line on stderr with exit
code 2 and no traceback; nothing already written to an experiment directory is replaced.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

from steerage_ray.experiment import bundled_experiments

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: the message and where to find the usage."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see `{self.prog} "
                              f"--help`)\n")


def _at_least(minimum: int):
    """An argparse type: an integer >= ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text!r}")
        return value
    parse.__name__ = f"integer >= {minimum}"
    return parse


def _number_at_least(minimum: float, strict: bool = False):
    """An argparse type: a finite number >= (or > when ``strict``) ``minimum``."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
        if not math.isfinite(value) or value < minimum or (strict and value == minimum):
            words = ">" if strict else ">="
            raise argparse.ArgumentTypeError(f"must be a finite number {words} "
                                             f"{minimum:g}, got {text!r}")
        return value
    parse.__name__ = "number"
    return parse


POSITIVE, NON_NEGATIVE = _at_least(1), _at_least(0)


def _search_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--experiment", "-e", default="digits-ffnn",
                        help="bundled experiment name or YAML file "
                             f"(bundled: {', '.join(bundled_experiments())})")
    parser.add_argument("--output", "-o", type=Path, default=None,
                        help="experiment directory to create "
                             "(default: steerage_results/<experiment name>)")
    parser.add_argument("--dataset-path", help="data file for csv/npz/image-folder "
                                               "experiments, or the root of a "
                                               "torchvision dataset")
    parser.add_argument("--label-column", help="label column of a CSV dataset")
    knobs = parser.add_argument_group("global search (budget and the paper's knobs)")
    knobs.add_argument("--algorithm", choices=("steerage", "paper"),
                       help="'steerage' (default: asynchronous, uncertainty-aware) or "
                            "'paper' (the paper's Algorithms 1 and 2 in rounds)")
    knobs.add_argument("--budget", type=POSITIVE,
                       help="total trained architectures (paper mode: round sizes "
                            "scale to fit)")
    knobs.add_argument("--count", type=POSITIVE, help="Sobol pool size (paper: 2048)")
    knobs.add_argument("--iter-count", type=POSITIVE,
                       help="paper mode: architectures trained per round (paper: 100)")
    knobs.add_argument("--iterations", type=POSITIVE,
                       help="paper mode: predictor-guided rounds after the first (paper: 3)")
    knobs.add_argument("--ees-population", type=POSITIVE, help="EES population (paper: 100)")
    knobs.add_argument("--ees-generations", type=NON_NEGATIVE,
                       help="EES generations (paper: 200)")
    knobs.add_argument("--reproducible", action=argparse.BooleanOptionalAction,
                       help="one seed, one search at any concurrency: each proposal "
                            "waits for the results its position says it sees (default: "
                            "the experiment's search.reproducible, off unless set)")
    knobs.add_argument("--epochs", type=POSITIVE, help="epochs per searched architecture")
    knobs.add_argument("--final-epochs", type=POSITIVE,
                       help="epochs for the final training of the winner")
    knobs.add_argument("--objectives", metavar="NAME:MODE,...",
                       help="what to optimise: val_acc:max (default) or a Pareto front, "
                            "e.g. val_acc:max,params:min[,flops:min][,latency:min]; "
                            "params/flops are computed exactly, latency from "
                            "--latency-table")
    knobs.add_argument("--latency-table", metavar="FILE",
                       help="latency table for a latency objective (written by "
                            "`steerage profile-latency`)")
    _ls_from_argument(knobs)
    knobs.add_argument("--ls-iterations", type=POSITIVE, help="local-search iterations")
    _select_tolerance_argument(knobs)
    knobs.add_argument("--no-local-search", action="store_true",
                       help="stop after global search and the final training")
    res = parser.add_argument_group("resources")
    res.add_argument("--cpus-per-trial", type=_number_at_least(0, strict=True))
    res.add_argument("--gpus-per-trial", type=_number_at_least(0),
                     help="GPUs per trial; fractions share a GPU (e.g. 0.5); default: 1 "
                          "when the cluster has GPUs, else 0")
    res.add_argument("--max-concurrent-trials", type=POSITIVE)
    res.add_argument("--max-failures", type=NON_NEGATIVE,
                     help="retries of a trial whose actor or node died, from its last "
                          "checkpoint (default 3); errors raised by training are not "
                          "retried")
    res.add_argument("--address", help="Ray address of a running cluster "
                                       "(default: start an embedded local Ray)")
    res.add_argument("--storage", help="shared storage path for Tune results on a "
                                       "cluster (s3://... or an NFS path); "
                                       "default: inside the experiment directory")
    parser.add_argument("--seed", type=NON_NEGATIVE)
    parser.add_argument("--verbose", "-v", action="count", default=0,
                        help="show Ray Tune's own progress tables (-v) and results (-vv)")


def _front_row(text: str) -> str | int:
    """``--ls-from``: a pick name, or a row index as an integer."""
    return int(text) if text.isdigit() else text


def _ls_from_argument(parser) -> None:
    parser.add_argument("--ls-from", type=_front_row, metavar="knee|most-accurate|"
                                                               "smallest|INDEX",
                        help="with several objectives: the global-search front member "
                             "local search starts from (default knee: nearest the best "
                             "of every objective), or a row of pareto_front.csv")


def _select_tolerance_argument(parser) -> None:
    parser.add_argument("--select-tolerance", type=float, metavar="POINTS",
                        help="the compact GS+LS model is the smallest Pareto point whose "
                             "validation accuracy is within this many points of the most "
                             "accurate's (default 0.5; stored in the experiment)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="steerage",
        description="STEERAGE neural architecture search on Ray Tune: global search "
                    "(predictor + evolutionary search) then grow-and-prune local search.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    search = commands.add_parser("search", help="run an experiment end to end")
    _search_arguments(search)

    resume = commands.add_parser("resume", help="continue an interrupted experiment")
    resume.add_argument("directory", type=Path)
    resume.add_argument("--address")
    resume.add_argument("--verbose", "-v", action="count", default=0)

    local = commands.add_parser("local-search",
                                help="(re)run local search on an experiment's winner")
    local.add_argument("directory", type=Path)
    local.add_argument("--address")
    local.add_argument("--schemes", help="comma-separated, e.g. A,B,C or C,nest")
    local.add_argument("--iterations", type=POSITIVE)
    _ls_from_argument(local)
    _select_tolerance_argument(local)

    report = commands.add_parser("report", help="rebuild and print an experiment's report")
    report.add_argument("directory", type=Path)
    _select_tolerance_argument(report)

    export = commands.add_parser("export", help="export a model of an experiment")
    export.add_argument("directory", type=Path)
    export.add_argument("--format", choices=("state_dict", "torchscript", "onnx"),
                        default="torchscript")
    export.add_argument("--which", default="best",
                        help="'best' or 'most_accurate', 'compact' (the two GS+LS rows "
                             "of the summary), 'smallest', 'global' (the global-search "
                             "winner) or a Pareto row index")
    export.add_argument("--front", type=NON_NEGATIVE, metavar="INDEX",
                        help="export row INDEX of the global-search Pareto front "
                             "(pareto_front.csv) instead, with its trained weights")
    export.add_argument("--quantized", action="store_true",
                        help="the weights at the model's precision (the summary's bits)")
    export.add_argument("--out", type=Path, help="output file")

    profile = commands.add_parser(
        "profile-latency", help="time each layer a family's space can build on this "
                                "machine: a latency lookup table for the search")
    profile.add_argument("--family", choices=("ffnn", "lenet", "resnet"),
                         help="model family (default: the experiment's)")
    profile.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    profile.add_argument("--batch-size", type=int, default=1,
                         help="examples per timed forward pass (default: 1)")
    profile.add_argument("--experiment", "-e",
                         help="experiment directory, bundled experiment name or YAML "
                              "file: its space and data shape, and where the table goes")
    profile.add_argument("--output", "-o", type=Path,
                         help="directory for the table (default: the experiment's)")
    profile.add_argument("--threads", type=int, help="torch threads while timing "
                                                     "(default: torch's)")
    profile.add_argument("--input-shape", help="example shape without an experiment, e.g. "
                                               "40 or 1,28,28 (default: 40 / 1,28,28 / "
                                               "3,32,32)")
    profile.add_argument("--n-classes", type=int, help="classes (default: 10 or the "
                                                       "experiment's)")
    return parser


def _overrides(args: argparse.Namespace) -> dict:
    return {
        "search": {"algorithm": args.algorithm, "count": args.count,
                   "objectives": args.objectives, "latency_table": args.latency_table,
                   "iter_count": args.iter_count,
                   "iterations": args.iterations, "budget": args.budget,
                   "ees_population": args.ees_population,
                   "ees_generations": args.ees_generations,
                   "reproducible": args.reproducible},
        "training": {"epochs": args.epochs, "final_epochs": args.final_epochs},
        "resources": {"cpus_per_trial": args.cpus_per_trial,
                      "gpus_per_trial": args.gpus_per_trial,
                      "max_concurrent_trials": args.max_concurrent_trials,
                      "max_failures": args.max_failures},
        "local_search": {"iterations": args.ls_iterations,
                         "select_tolerance": args.select_tolerance,
                         "start": args.ls_from,
                         "enabled": False if args.no_local_search else None},
    }


class _CurrentStdout(logging.StreamHandler):
    """A handler writing to whatever ``sys.stdout`` is when a line is logged (``main``
    may run many times in one process, e.g. in tests that capture the output)."""

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value) -> None:
        pass


def _shape(text: str | None) -> tuple[int, ...] | None:
    """``"1,28,28"`` -> ``(1, 28, 28)``."""
    if text is None:
        return None
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise ValueError(f"--input-shape must be positive integers separated by commas "
                         f"(e.g. 40 or 1,28,28), got {text!r}")
    return shape


def _show_progress_lines() -> None:
    """Print the library's INFO lines (search rounds, EES) next to Tune's output."""
    handler = _CurrentStdout()
    handler.setFormatter(logging.Formatter("[steerage] %(message)s"))
    library = logging.getLogger("steerage_ray")
    if any(getattr(h, "steerage_progress", False) for h in library.handlers):
        return  # main() called again in the same process
    handler.steerage_progress = True
    library.addHandler(handler)
    library.setLevel(logging.INFO)
    library.propagate = False


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "search" and args.no_local_search and args.ls_iterations is not None:
        parser.exit(EXIT_USAGE, "steerage search: error: --ls-iterations has no effect with "
                                "--no-local-search; give one of them\n")
    _show_progress_lines()
    # Imported late so `steerage --help` answers instantly.
    from steerage_ray import run
    from steerage_ray.experiment import load_experiment
    from steerage_ray.named_objectives import parse_objectives
    from steerage_ray.storage import storage_full
    from steerage_ray.strategies.plan import GUIDED_ONLY, PAPER_ONLY

    directory = getattr(args, "directory", None) or getattr(args, "output", None)
    try:
        if args.command == "search":
            experiment = load_experiment(args.experiment)
            if args.algorithm not in (None, experiment.search["algorithm"]):
                # the file's knobs of the other algorithm give way to the flag
                foreign = GUIDED_ONLY if args.algorithm == "paper" else PAPER_ONLY
                experiment = experiment.with_overrides(
                    search={"algorithm": args.algorithm},
                    unset=tuple(k for k in foreign if k in experiment.search))
            if args.budget is not None:  # rounds not fixed on the command line scale to it
                experiment = experiment.with_overrides(
                    search={"budget": args.budget}, unset=("iter_count", "iterations"))
            if args.objectives is not None:  # named as the flag, before Ray starts
                args.objectives = list(parse_objectives(args.objectives, "--objectives"))
            experiment = experiment.with_overrides(**_overrides(args))
            experiment = run.with_dataset_path(experiment, args.dataset_path,
                                               args.label_column)
            if args.seed is not None:
                experiment = experiment.with_overrides(seed=args.seed)
            output = directory = args.output or Path("steerage_results") / experiment.name
            run.run_experiment(experiment, output, address=args.address,
                               storage=args.storage, verbose=args.verbose)
        elif args.command == "resume":
            run.resume_experiment(args.directory, address=args.address, verbose=args.verbose)
        elif args.command == "local-search":
            schemes = args.schemes.split(",") if args.schemes else None
            run.rerun_local_search(args.directory, address=args.address,
                                   schemes=schemes, iterations=args.iterations,
                                   select_tolerance=args.select_tolerance,
                                   start=args.ls_from)
        elif args.command == "report":
            print(run.rebuild_report(args.directory, select_tolerance=args.select_tolerance))
        elif args.command == "export":
            path = run.export_experiment_model(args.directory, fmt=args.format,
                                               which=args.which, out=args.out,
                                               front=args.front, quantized=args.quantized)
            print(f"wrote {path}")
        elif args.command == "profile-latency":
            from steerage_ray.latency import busy_warning
            from steerage_ray.run.latency import profile_experiment_latency, summary_line

            path, table = profile_experiment_latency(
                family=args.family, device=args.device, batch_size=args.batch_size,
                experiment=args.experiment, output=args.output, threads=args.threads,
                input_shape=_shape(args.input_shape), n_classes=args.n_classes)
            print(summary_line(path, table))
            warning = busy_warning(table)
            if warning:
                print(f"steerage: warning: {warning}", file=sys.stderr)
    except ValueError as error:  # includes ExperimentError and every input check
        _error(error)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"steerage: interrupted; {_how_to_continue(args, directory)}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as error:  # the machine, not the input: a full disk, a lost file
        full = storage_full(error)
        if full is not None:
            _error(f"{full}; the last complete state was kept: free space, then "
                   f"{_how_to_continue(args, directory, stopped=False)}")
        else:
            where = f" ({error.filename})" if error.filename else ""
            _error(f"{error.strerror or error}{where}")
        return EXIT_USAGE
    return 0


def _error(message: object) -> None:
    print(f"steerage: error: {' '.join(str(message).split())}", file=sys.stderr)


def _how_to_continue(args: argparse.Namespace, directory: Path | None,
                     stopped: bool = True) -> str:
    """What to type to carry on from where a command stopped."""
    if args.command in ("report", "export"):
        return "nothing was written"
    if directory is None or not (Path(directory) / "experiment.yaml").is_file():
        return "nothing was started; run the command again"
    if args.command == "local-search":
        return (f"{'the experiment is unchanged; ' if stopped else ''}run "
                f"`steerage local-search {directory}` again")
    done = "phases not finished were not marked done; " if stopped else ""
    return f"{done}continue with `steerage resume {directory}`"


if __name__ == "__main__":
    sys.exit(main())
