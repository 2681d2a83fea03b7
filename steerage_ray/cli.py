"""The ``steerage`` command: search, resume, local-search, report, export.

Every user error (bad experiment file, missing dataset, impossible resources, an
experiment directory that already exists) is printed as one line on stderr with exit
code 2 and no traceback; nothing already written to an experiment directory is replaced.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from steerage_ray.experiment import bundled_experiments

EXIT_USAGE = 2


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
    knobs.add_argument("--budget", type=int,
                       help="total trained architectures (paper mode: round sizes "
                            "scale to fit)")
    knobs.add_argument("--count", type=int, help="Sobol pool size (paper: 2048)")
    knobs.add_argument("--iter-count", type=int,
                       help="paper mode: architectures trained per round (paper: 100)")
    knobs.add_argument("--iterations", type=int,
                       help="paper mode: predictor-guided rounds after the first (paper: 3)")
    knobs.add_argument("--ees-population", type=int, help="EES population (paper: 100)")
    knobs.add_argument("--ees-generations", type=int,
                       help="EES generations (paper: 200)")
    knobs.add_argument("--epochs", type=int, help="epochs per searched architecture")
    knobs.add_argument("--final-epochs", type=int,
                       help="epochs for the final training of the winner")
    knobs.add_argument("--ls-iterations", type=int, help="local-search iterations")
    knobs.add_argument("--no-local-search", action="store_true",
                       help="stop after global search and the final training")
    res = parser.add_argument_group("resources")
    res.add_argument("--cpus-per-trial", type=float)
    res.add_argument("--gpus-per-trial", type=float,
                     help="GPUs per trial; fractions share a GPU (e.g. 0.5); default: 1 "
                          "when the cluster has GPUs, else 0")
    res.add_argument("--max-concurrent-trials", type=int)
    res.add_argument("--address", help="Ray address of a running cluster "
                                       "(default: start an embedded local Ray)")
    res.add_argument("--storage", help="shared storage path for Tune results on a "
                                       "cluster (s3://... or an NFS path); "
                                       "default: inside the experiment directory")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--verbose", "-v", action="count", default=0,
                        help="show Ray Tune's own progress tables (-v) and results (-vv)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="steerage",
        description="STEERAGE neural architecture search on Ray Tune: global search "
                    "(predictor + evolutionary search) then grow-and-prune local search.")
    commands = parser.add_subparsers(dest="command", required=True)

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
    local.add_argument("--iterations", type=int)

    report = commands.add_parser("report", help="rebuild and print an experiment's report")
    report.add_argument("directory", type=Path)

    export = commands.add_parser("export", help="export a model of an experiment")
    export.add_argument("directory", type=Path)
    export.add_argument("--format", choices=("state_dict", "torchscript", "onnx"),
                        default="torchscript")
    export.add_argument("--which", default="best",
                        help="'best' (most accurate local-search point), 'smallest', "
                             "'global' (the global-search winner) or a Pareto row index")
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
                   "iter_count": args.iter_count,
                   "iterations": args.iterations, "budget": args.budget,
                   "ees_population": args.ees_population,
                   "ees_generations": args.ees_generations},
        "training": {"epochs": args.epochs, "final_epochs": args.final_epochs},
        "resources": {"cpus_per_trial": args.cpus_per_trial,
                      "gpus_per_trial": args.gpus_per_trial,
                      "max_concurrent_trials": args.max_concurrent_trials},
        "local_search": {"iterations": args.ls_iterations,
                         "enabled": False if args.no_local_search else None},
    }


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
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("[steerage] %(message)s"))
    library = logging.getLogger("steerage_ray")
    if any(getattr(h, "steerage_progress", False) for h in library.handlers):
        return  # main() called again in the same process
    handler.steerage_progress = True
    library.addHandler(handler)
    library.setLevel(logging.INFO)
    library.propagate = False


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _show_progress_lines()
    # Imported late so `steerage --help` answers instantly.
    from steerage_ray import run
    from steerage_ray.experiment import load_experiment
    from steerage_ray.strategies.plan import GUIDED_ONLY, PAPER_ONLY

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
            experiment = experiment.with_overrides(**_overrides(args))
            experiment = run.with_dataset_path(experiment, args.dataset_path,
                                               args.label_column)
            if args.seed is not None:
                experiment.seed = args.seed
            output = args.output or Path("steerage_results") / experiment.name
            run.run_experiment(experiment, output, address=args.address,
                               storage=args.storage, verbose=args.verbose)
        elif args.command == "resume":
            run.resume_experiment(args.directory, address=args.address, verbose=args.verbose)
        elif args.command == "local-search":
            schemes = args.schemes.split(",") if args.schemes else None
            run.rerun_local_search(args.directory, address=args.address,
                                   schemes=schemes, iterations=args.iterations)
        elif args.command == "report":
            print(run.rebuild_report(args.directory))
        elif args.command == "export":
            path = run.export_experiment_model(args.directory, fmt=args.format,
                                               which=args.which, out=args.out)
            print(f"wrote {path}")
        elif args.command == "profile-latency":
            from steerage_ray.run.latency import profile_experiment_latency, summary_line

            print(summary_line(*profile_experiment_latency(
                family=args.family, device=args.device, batch_size=args.batch_size,
                experiment=args.experiment, output=args.output, threads=args.threads,
                input_shape=_shape(args.input_shape), n_classes=args.n_classes)))
    except ValueError as error:  # includes ExperimentError and every input check
        print(f"steerage: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("steerage: interrupted; continue with `steerage resume <directory>`",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
