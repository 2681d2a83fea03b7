"""Fault benchmark: is anything lost or trained twice when a run is interrupted?

Runs one small experiment (digits, FFNN, paper mode: its rounds do not depend on when
results arrive, so every run of it is the same run) with the ``steerage`` command, once
undisturbed (the reference), then under each fault:

- Ctrl-C (SIGINT to the whole process group, as a terminal sends it) and SIGKILL (to
  the whole group: the driver and its embedded Ray) at three points: early (the first
  trial running), mid-search (half the trials done) and during local search; each
  followed by ``steerage resume`` until the run ends;
- one trial's actor killed (SIGKILL to its worker process) mid-search;
- one node of a simulated two-node cluster (``ray.cluster_utils.Cluster``) removed
  mid-search.

For each it records what the interrupted command left (exit code, phases marked done),
then, after the run has ended: architectures lost (those of the reference missing from
the run), architectures trained twice (an architecture recorded by two trials), whether
trials, winner and local-search Pareto set equal the reference's, and the wall time of
``steerage resume`` (it starts its own Ray, as a user's would). Writes the
"Faults: interrupts, lost trials" section of benchmarks/RESULTS.md.

    python benchmarks/bench_faults.py            # all scenarios (~20 min on 2 cores)
    python benchmarks/bench_faults.py --only sigint-mid actor-killed --no-write
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pandas as pd
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import cpu_model, markdown_table, today, write_section

HEADING = "## Faults: interrupts, lost trials"
BUDGET = 8
EXPERIMENT = f"""\
name: faults
dataset: digits
family: ffnn
space: {{preset: ffnn}}
search: {{algorithm: paper, budget: {BUDGET}, count: 128, ees_population: 20,
          ees_generations: 10}}
training: {{epochs: 2, final_epochs: 3, batch_size: 64}}
local_search: {{schemes: [B, C], iterations: 2, epochs: 3}}
baseline: {{hidden_sizes: [32]}}
seed: 5
"""
CLI = [sys.executable, "-m", "steerage_ray"]
# (the progress line that arms a fault, seconds until it fires); local search of this
# experiment took 4.6 s on 2 cores (progress.json), so a fault 1 s in lands inside it
POINTS = {"early": ("round 1 of", 2.0), "mid": (f"trial {BUDGET // 2} done", 0.0),
          "local-search": ("phase 3/3: local search", 1.0)}

TWO_NODES = textwrap.dedent("""
    import sys, threading
    from ray.cluster_utils import Cluster
    cluster = Cluster(initialize_head=True,
                      head_node_args={"num_cpus": 1, "include_dashboard": False})
    worker = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    from steerage_ray.run import progress
    say = progress.say

    def watch(message):
        say(message)
        if message.startswith(sys.argv[2]):
            threading.Thread(target=cluster.remove_node, args=(worker,)).start()
            say("BENCH: removed the second node")

    progress.say = watch
    from steerage_ray.cli import main
    code = main(["search", "-e", sys.argv[3], "--address", cluster.address,
                 "-o", sys.argv[1]])
    print("EXIT", code, flush=True)
    cluster.shutdown()
""")


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env


def run(command: list[str], workdir: Path, trigger: str | None = None,
        action=None, delay: float = 0.0, log: str = "search") -> dict:
    """Run ``command``; once a stdout line contains ``trigger``, wait ``delay`` s and
    call ``action(process)``. Returns exit code, wall seconds and the output, which it
    also keeps in ``workdir`` as ``{log}.out`` and ``{log}.err``."""
    started = time.monotonic()
    with open(workdir / f"{log}.err", "w+") as err:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True,
                                   env=_env(), start_new_session=True)
        lines, fired = [], False
        for line in process.stdout:
            lines.append(line)
            if trigger and not fired and trigger in line:
                fired = True
                time.sleep(delay)
                action(process)
                lines.append(f"[bench] fault at {time.monotonic() - started:.2f} s\n")
        process.wait()
        err.seek(0)
        stderr = err.read()
    (workdir / f"{log}.out").write_text("".join(lines))
    return {"code": process.returncode, "seconds": time.monotonic() - started,
            "fired": fired or trigger is None, "stdout": "".join(lines), "stderr": stderr}


def signal_group(signum: int):
    return lambda process: os.killpg(process.pid, signum)


def kill_a_trial_actor(process: subprocess.Popen) -> None:
    """SIGKILL the worker process of one running trial (a Tune function-trainable
    actor) among the driver's descendants."""
    for child in psutil.Process(process.pid).children(recursive=True):
        try:
            if any("ImplicitFunc" in part for part in child.cmdline()):
                child.kill()
                return
        except psutil.Error:
            continue
    raise RuntimeError("no trial actor found to kill")


def compare(run_dir: Path, reference: Path) -> dict:
    """Lost / twice-trained architectures and equality with the reference run."""
    if not (run_dir / "trials.csv").is_file():
        return {"lost": BUDGET, "twice": 0, "same_trials": False, "same_winner": False,
                "same_pareto": False}
    trials, expected = (pd.read_csv(d / "trials.csv") for d in (run_dir, reference))
    architecture = sorted(c for c in expected if c.startswith("config/"))

    def keys(frame: pd.DataFrame) -> set:
        return set(frame[architecture].astype(str).itertuples(index=False, name=None))

    compared = ["phase", "status", "val_acc", "test_acc", "params", *architecture]
    winner, expected_winner = (json.loads((d / "global_winner.json").read_text())
                               for d in (run_dir, reference))
    pareto = [d / "local_search" / "pareto.csv" for d in (run_dir, reference)]
    return {
        "trials": len(trials),
        "lost": len(keys(expected) - keys(trials[trials["status"] == "completed"])),
        "twice": int(trials.duplicated(architecture).sum()),
        "same_trials": trials[compared].equals(expected[compared]),
        "same_winner": (winner["config"], winner["result"]["val_acc"]) ==
                       (expected_winner["config"], expected_winner["result"]["val_acc"]),
        "same_pareto": all(p.is_file() for p in pareto) and
                       pd.read_csv(pareto[0]).equals(pd.read_csv(pareto[1])),
    }


def interrupted_scenario(name: str, signum: int, point: str, experiment: Path,
                         reference: Path, root: Path) -> dict:
    out = root / name / "run"
    out.parent.mkdir(parents=True)
    trigger, delay = POINTS[point]
    first = run(CLI + ["search", "-e", str(experiment), "-o", str(out)], out.parent,
                trigger, signal_group(signum), delay)
    progress = json.loads((out / "progress.json").read_text()) \
        if (out / "progress.json").is_file() else {"done": []}
    resumes, resume_seconds, code = 0, 0.0, None
    while code != 0 and resumes < 3:
        resumed = run(CLI + ["resume", str(out)], out.parent, log=f"resume-{resumes + 1}")
        resumes += 1
        resume_seconds += resumed["seconds"]
        code = resumed["code"]
    last_err = [line for line in first["stderr"].strip().splitlines() if line][-1:] or [""]
    return {"scenario": name, "fault": signal.Signals(signum).name, "point": point,
            "fired": first["fired"], "exit": first["code"],
            "message": last_err[0][:120], "done_after": ",".join(progress["done"]) or "-",
            "resumes": resumes, "resume_seconds": resume_seconds, "resume_exit": code,
            **compare(out, reference)}


def actor_scenario(experiment: Path, reference: Path, root: Path) -> dict:
    out = root / "actor-killed" / "run"
    out.parent.mkdir(parents=True)
    result = run(CLI + ["search", "-e", str(experiment), "-o", str(out)], out.parent,
                 "trial 2 done", kill_a_trial_actor, 1.0)
    retries = result["stdout"].count("lost its worker")
    return {"scenario": "actor-killed", "fault": "actor SIGKILL", "point": "mid",
            "fired": result["fired"], "exit": result["code"], "message": f"{retries} retry",
            "done_after": "all" if result["code"] == 0 else "-", "resumes": 0,
            "resume_seconds": 0.0, "resume_exit": None, **compare(out, reference)}


def node_scenario(experiment: Path, reference: Path, root: Path) -> dict:
    out = root / "node-removed" / "run"
    out.parent.mkdir(parents=True)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", TWO_NODES, str(out), "trial 3 done",
                           str(experiment)], capture_output=True, text=True, env=_env(),
                          timeout=1800)
    retries = done.stdout.count("lost its worker")
    code = 0 if "EXIT 0" in done.stdout else 1
    return {"scenario": "node-removed", "fault": "node removed", "point": "mid",
            "fired": "BENCH: removed" in done.stdout, "exit": code,
            "message": f"{retries} retry", "done_after": "all" if code == 0 else "-",
            "resumes": 0, "resume_seconds": 0.0, "resume_exit": None,
            "seconds": time.monotonic() - started, **compare(out, reference)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="scenario names to run")
    parser.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    parser.add_argument("--keep", type=Path, help="keep the runs under this folder")
    args = parser.parse_args()
    # Started in the background (`... &`), this script gets SIGINT ignored from the
    # shell, and its commands would inherit that and never see the Ctrl-C it sends
    # them (Tune installs a handler of its own, so only local search ignored it). A
    # Python handler is not inherited: the commands start with the terminal's default.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-faults-"))
    root.mkdir(parents=True, exist_ok=True)
    experiment = root / "faults.yaml"
    experiment.write_text(EXPERIMENT)

    # rows of earlier runs into the same --keep folder; a rerun scenario replaces its row
    saved = root / "rows.json"
    previous = json.loads(saved.read_text()) if saved.is_file() else {}
    reference = root / "reference" / "run"
    reference.parent.mkdir(parents=True, exist_ok=True)
    if not (reference / "summary.csv").is_file():
        baseline = run(CLI + ["search", "-e", str(experiment), "-o", str(reference)],
                       reference.parent)
        assert baseline["code"] == 0, baseline["stderr"][-3000:]
        reference_seconds = baseline["seconds"]
    else:
        reference_seconds = previous.get("reference_seconds", float("nan"))
    print(f"reference run: {reference_seconds:.0f} s", flush=True)

    scenarios = [(f"{sig.name.lower()}-{point}", sig, point)
                 for sig in (signal.SIGINT, signal.SIGKILL) for point in POINTS]
    wanted = set(args.only or [name for name, _, _ in scenarios] +
                 ["actor-killed", "node-removed"])
    rows = []
    for name, signum, point in scenarios:
        if name in wanted:
            rows.append(interrupted_scenario(name, signum, point, experiment, reference,
                                             root))
            print(rows[-1], flush=True)
    if "actor-killed" in wanted:
        rows.append(actor_scenario(experiment, reference, root))
        print(rows[-1], flush=True)
    if "node-removed" in wanted:
        rows.append(node_scenario(experiment, reference, root))
        print(rows[-1], flush=True)
    order = [name for name, _, _ in scenarios] + ["actor-killed", "node-removed"]
    merged = {row["scenario"]: row for row in previous.get("rows", [])}
    merged.update({row["scenario"]: row for row in rows})
    rows = sorted(merged.values(), key=lambda row: order.index(row["scenario"]))
    saved.write_text(json.dumps({"reference_seconds": reference_seconds, "rows": rows},
                                indent=1))
    if not args.no_write:
        write_section(HEADING, _section(rows, reference_seconds))
    print(_section(rows, reference_seconds))


def _section(rows: list[dict], reference_seconds: float) -> str:
    def yes(value) -> str:
        return "yes" if value else "NO"

    table = markdown_table(
        ["fault", "when", "exit", "phases done after it", "lost", "trained twice",
         "same trials / winner / Pareto", "resume s"],
        [[row["fault"], row["point"] + ("" if row["fired"] else " (missed)"),
          str(row["exit"]), row["done_after"], str(row["lost"]), str(row["twice"]),
          " / ".join(yes(row[k]) for k in ("same_trials", "same_winner", "same_pareto")),
          f"{row['resume_seconds']:.0f}" if row["resumes"] else "-"]
         for row in rows])
    lost = sum(row["lost"] for row in rows)
    twice = sum(row["twice"] for row in rows)
    return (f"{HEADING}\n\n`python benchmarks/bench_faults.py` on {today()}. Machine: "
            f"{os.cpu_count()} cores ({cpu_model()}), shared with other jobs; the "
            f"embedded local Ray of the `steerage` command.\n\n"
            f"One experiment (digits, FFNN, paper mode so that every run of it is the "
            f"same run: {BUDGET} trials of 2 epochs, the final one 3, then local search "
            f"schemes B and C), undisturbed in {reference_seconds:.0f} s; then the same "
            f"experiment under each fault, resumed with `steerage resume` until it ended. "
            f"SIGINT and SIGKILL go to the whole process group (Ctrl-C in a terminal; a "
            f"killed job with its embedded Ray). *early*: the first round running; "
            f"*mid*: half the trials done; *local-search*: during local search. The "
            f"actor and node faults need no resume: the lost trial is retried from its "
            f"last checkpoint (Tune `FailureConfig`, 3 retries). *lost*: architectures "
            f"of the undisturbed run missing after the run ended; *trained twice*: "
            f"architectures recorded by two trials; *same*: trials (phase, scores, "
            f"architecture), winner and local-search Pareto set equal the undisturbed "
            f"run's; *resume s*: wall time of `steerage resume` (starting its own Ray).\n\n"
            f"{table}\n\nTotal: {lost} architectures lost, {twice} trained twice.\n")


if __name__ == "__main__":
    main()
