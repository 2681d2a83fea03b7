"""Shared fixtures: one real local Ray for the whole test session."""

import os

import pytest

os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")


@pytest.fixture(scope="session")
def ray_session():
    """A real local Ray with 2 CPUs, started once per session and shut down at the end."""
    import ray

    if not ray.is_initialized():
        # "local": start our own Ray even when another one runs on this machine.
        ray.init(address="local", num_cpus=2, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()
