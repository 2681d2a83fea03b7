"""The Ray cluster a search runs on: join the one at an address or start a local one,
and check per-trial resources against it before Tune starts.

Shared by the Python API (``global_search``) and the ``steerage`` command
(``run/session.py``), so both fail the same way, fast:

- :func:`connect`: an embedded local Ray (``address="local"``: never an unrelated
  cluster found in Ray's session files or ``RAY_ADDRESS``) unless an address is
  given; an address nothing answers at fails within :data:`CONNECT_TIMEOUT_S` seconds
  with one line instead of Ray's minutes of retries;
- :func:`check_trial_resources`: a trial no node can hold would wait forever; it is
  refused with a message naming the field;
- Ray's start-up banners (token authentication) are held back while the checks run and
  shown once the run goes ahead (:func:`release_held_messages`), so a refused run
  prints its one line and nothing else.
"""

from __future__ import annotations

import logging
import socket
from urllib.parse import urlsplit

import ray

#: Seconds to wait for a TCP answer at a given Ray address before refusing it.
CONNECT_TIMEOUT_S = 10.0
_BANNER_LOGGERS = ("ray._private.authentication.authentication_token_setup",)


class _HoldRecords(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        self.records.append(record)
        return False


_held: list[tuple[logging.Logger, _HoldRecords]] = []


def connect(address: str | None = None) -> None:
    """Join the Ray cluster at ``address`` or start an embedded local Ray; nothing if
    Ray is already initialised in this process."""
    if ray.is_initialized():
        return
    _hold_banners()
    if address:
        check_reachable(address)
        ray.init(address=address)
    else:
        ray.init(address="local", include_dashboard=False, configure_logging=False,
                 log_to_driver=False)


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Refuse an address that no server answers at within ``timeout`` seconds."""
    target = address
    if address == "auto":
        from ray._private.services import get_ray_address_from_environment

        target = get_ray_address_from_environment("auto", None)
        if target in (None, "auto"):
            raise ValueError("address 'auto': no running Ray cluster found on this "
                             "machine; start one with `ray start --head` or leave out "
                             "the address to run on an embedded local Ray")
    parsed = urlsplit(target if "://" in target else f"ray-gcs://{target}")
    try:
        host, port = parsed.hostname, parsed.port
    except ValueError:
        host, port = None, None
    if not host or not port:
        raise ValueError(f"address {address!r} must be host:port (e.g. 10.0.0.1:6379) "
                         f"or ray://host:port")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as error:
        reason = "timed out" if isinstance(error, TimeoutError) else (
            error.strerror or str(error))
        raise ValueError(f"address {address!r}: no Ray cluster answers at {host}:{port} "
                         f"({reason.lower()}); start one with `ray start --head` or leave "
                         f"out the address to run on an embedded local Ray") from None


def _hold_banners() -> None:
    for name in _BANNER_LOGGERS:
        logger = logging.getLogger(name)
        hold = _HoldRecords()
        logger.addFilter(hold)
        _held.append((logger, hold))


def release_held_messages() -> list[str]:
    """Stop holding Ray's start-up messages; return them (for the caller to show)."""
    messages = []
    while _held:
        logger, hold = _held.pop()
        logger.removeFilter(hold)
        messages.extend(record.getMessage() for record in hold.records)
    return messages


def largest_node() -> tuple[float, float]:
    """CPUs and GPUs of the largest live node (each the maximum over the nodes)."""
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    return (max((n.get("CPU", 0) for n in nodes), default=0),
            max((n.get("GPU", 0) for n in nodes), default=0))


def check_trial_resources(cpus_per_trial: float, gpus_per_trial: float, *,
                          cpus: float | None = None, gpus: float | None = None,
                          prefix: str = "") -> None:
    """Refuse per-trial resources that no node of the cluster (``cpus``/``gpus`` of
    its largest node, default: the running cluster's) can provide. ``prefix`` is put
    before the field names (``"resources."`` for an experiment file)."""
    if cpus is None or gpus is None:
        cpus, gpus = largest_node()
    if gpus_per_trial > gpus:
        raise ValueError(f"{prefix}gpus_per_trial={gpus_per_trial:g} but the largest node "
                         f"of this Ray cluster has {gpus:g} GPU(s); lower gpus_per_trial "
                         f"or add GPU nodes")
    if cpus_per_trial > cpus:
        raise ValueError(f"{prefix}cpus_per_trial={cpus_per_trial:g} but the largest node "
                         f"of this Ray cluster has {cpus:g} CPU(s); lower cpus_per_trial")


def trials_that_fit(cpus_per_trial: float, gpus_per_trial: float) -> int:
    """How many trials the cluster's current resources run at once (at least 1)."""
    resources = ray.cluster_resources()
    fits = []
    if cpus_per_trial:
        fits.append(resources.get("CPU", 0) // cpus_per_trial)
    if gpus_per_trial:
        fits.append(resources.get("GPU", 0) // gpus_per_trial)
    return max(1, int(min(fits)))
