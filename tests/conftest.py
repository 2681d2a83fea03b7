"""Shared fixtures: one real local Ray for the whole test session."""

import contextlib
import os

import pytest

os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")


@contextlib.contextmanager
def _stopped_search_fails(where: str):
    """A ``KeyboardInterrupt`` subclass the project raises (``SearchInterrupted``: a
    search that stopped early) fails its test instead of aborting the whole session,
    as pytest does for a real Ctrl-C (which still aborts)."""
    try:
        yield
    except KeyboardInterrupt as error:
        if type(error) is KeyboardInterrupt:
            raise
        raise RuntimeError(f"{type(error).__name__} escaped the {where}: {error}") from error


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem):
    with _stopped_search_fails("test"):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef, request):
    with _stopped_search_fails("fixture"):
        return (yield)


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


@pytest.fixture(scope="module")
def one_blas_thread():
    """The 2 cores are shared with other test runs; spinning BLAS threads only slow us down."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """An empty on-disk cache directory and an empty in-memory cache for one test."""
    from steerage_ray.data import default_cache

    directory = tmp_path / "cache"
    monkeypatch.setenv("STEERAGE_CACHE_DIR", str(directory))
    default_cache().clear_memory()
    return directory


@pytest.fixture
def one_torch_thread():
    """Other test runs share the 2 cores: keep a test's torch work on one thread."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits as 64 tabular features (split seed 0)."""
    from steerage_ray.data import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="session")
def digits_images():
    """The same digits as 1x8x8 images (split seed 0)."""
    from steerage_ray.data import load_dataset

    return load_dataset("digits_images")
