"""Shared plumbing of the benchmark scripts: their sections of RESULTS.md and machine facts.

Each script owns one or more ``## `` sections of benchmarks/RESULTS.md and rewrites only
those, so scripts can be rerun in any order without losing each other's numbers. The
file is locked while a section is replaced: two scripts finishing at the same moment
would otherwise each write back a copy missing the other's update.
"""

from __future__ import annotations

import datetime
import fcntl
import platform
import re
from collections.abc import Sequence
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
_HEADER = "# Benchmark results\n"


def write_section(heading: str, text: str, path: Path = RESULTS) -> None:
    """Replace the section that starts with the line ``heading`` (e.g. ``"## Local search"``)
    by ``text``, or append ``text`` when there is no such section; others stay as they are.

    A section runs from its heading to the next ``## `` heading (or the end of the file).
    """
    if not heading.startswith("## "):
        raise ValueError(f"heading must be a level-2 markdown heading ('## ...'), got {heading!r}")
    if not text.startswith(heading + "\n"):
        raise ValueError(f"text must start with its heading line {heading!r}")
    with open(path, "a+") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        file.seek(0)
        current = file.read() or _HEADER
        pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
        if pattern.search(current):
            section = text.rstrip("\n") + "\n\n"  # a blank line before the next heading
            updated = pattern.sub(lambda _: section, current, count=1).rstrip("\n") + "\n"
        else:
            updated = current.rstrip("\n") + "\n\n" + text
        file.seek(0)
        file.truncate()
        file.write(updated)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table of already formatted cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), else the architecture."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        models = re.findall(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        if models:
            return models[0].strip()
    return platform.processor() or platform.machine()


def today() -> str:
    """The UTC date a result was produced, as recorded next to its command."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")


def ram_gib() -> float | None:
    """Total RAM in GiB (from /proc/meminfo on Linux), None where unknown."""
    meminfo = Path("/proc/meminfo")
    if not meminfo.exists():
        return None
    kib = re.search(r"MemTotal:\s*(\d+)", meminfo.read_text())
    return int(kib.group(1)) / 2**20 if kib else None
