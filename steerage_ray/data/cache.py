"""Two-level cache (bounded in-memory LRU + ``.npz`` files) for derived arrays.

Many Tune trials ask for the same reduced or downsampled data; each Ray worker keeps
recent results in memory and all workers of a node share the files. Keys are JSON
descriptions that include a content fingerprint of the input data, and every file
stores its full key, which is checked on load, so a cache entry can never be served
for different inputs (not even on a hash-prefix collision). Files are written to a
temporary name and renamed, so concurrent writers never expose a partial file.

Environment: ``STEERAGE_CACHE_DIR`` (default ``~/.cache/steerage_ray``),
``STEERAGE_CACHE_MEMORY_MB`` (default 512) and ``STEERAGE_CACHE_DISK_MB`` (default
4096; 0 disables files). The oldest-used files are deleted when the disk budget is
exceeded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from steerage_ray.data.dataset import Dataset

logger = logging.getLogger(__name__)

# Bump when a cached computation changes, so old files are never reused.
CACHE_FORMAT_VERSION = 1
_KEY_FIELD = "__cache_key__"


def cache_dir() -> Path:
    """Root directory for on-disk caches (``STEERAGE_CACHE_DIR`` or ``~/.cache/steerage_ray``)."""
    configured = os.environ.get("STEERAGE_CACHE_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "steerage_ray"


def _env_megabytes(variable: str, default: int) -> int:
    value = os.environ.get(variable, str(default))
    try:
        megabytes = int(value)
    except ValueError:
        raise ValueError(f"{variable} must be an integer number of megabytes, got {value!r}")
    if megabytes < 0:
        raise ValueError(f"{variable} must be >= 0, got {megabytes}")
    return megabytes * 2**20


def fingerprint(dataset: Dataset) -> str:
    """SHA-256 over every split's bytes, shapes and dtypes, plus name, kind and classes."""
    digest = hashlib.sha256()
    digest.update(json.dumps([dataset.name, dataset.kind, dataset.n_classes]).encode())
    for field in ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test"):
        array = np.ascontiguousarray(getattr(dataset, field))
        digest.update(f"{field}{array.shape}{array.dtype.str}".encode())
        digest.update(array.data)
    return digest.hexdigest()


def _touch(path: Path) -> None:
    """Mark a file as just used, with a fine clock: kernel file times can be milliseconds coarse."""
    now = time.time_ns()
    try:
        os.utime(path, ns=(now, now))
    except FileNotFoundError:
        pass  # pruned by another worker meanwhile; nothing to mark


@dataclass
class CacheStats:
    """Counters that make cache behaviour observable (tests, logs, benchmarks)."""

    memory_hits: int = 0
    disk_hits: int = 0
    misses: int = 0


class ArrayCache:
    """Maps a JSON-serializable key to a dict of numpy arrays.

    ``get`` returns copies, so callers may modify results without corrupting the cache.
    ``directory=None`` means ``cache_dir() / subdirectory``, resolved at each call, so a
    changed ``STEERAGE_CACHE_DIR`` takes effect immediately. Budgets of ``None`` come
    from the environment (see the module docstring).
    """

    def __init__(self, directory: str | os.PathLike | None = None, *,
                 subdirectory: str = "transforms", max_memory_bytes: int | None = None,
                 max_disk_bytes: int | None = None) -> None:
        self.directory = directory
        self.subdirectory = subdirectory
        self.max_memory_bytes = max_memory_bytes
        self.max_disk_bytes = max_disk_bytes
        self.stats = CacheStats()
        self._memory: OrderedDict[str, dict[str, np.ndarray]] = OrderedDict()
        self._memory_bytes = 0
        self._lock = threading.Lock()

    # -- configuration resolved per call ---------------------------------------------
    def _directory(self) -> Path:
        if self.directory is not None:
            return Path(self.directory)
        return cache_dir() / self.subdirectory

    def _memory_budget(self) -> int:
        if self.max_memory_bytes is not None:
            return self.max_memory_bytes
        return _env_megabytes("STEERAGE_CACHE_MEMORY_MB", 512)

    def _disk_budget(self) -> int:
        if self.max_disk_bytes is not None:
            return self.max_disk_bytes
        return _env_megabytes("STEERAGE_CACHE_DISK_MB", 4096)

    @staticmethod
    def _encode_key(key: dict) -> tuple[str, str]:
        text = json.dumps({"format": CACHE_FORMAT_VERSION, **key}, sort_keys=True)
        prefix = str(key.get("operation", "entry"))
        return text, f"{prefix}-{hashlib.sha256(text.encode()).hexdigest()[:40]}"

    # -- public API -------------------------------------------------------------------
    def get(self, key: dict) -> dict[str, np.ndarray] | None:
        """Cached arrays for ``key`` (copies), or ``None`` on a miss."""
        text, digest = self._encode_key(key)
        with self._lock:
            entry = self._memory.get(text)
            if entry is not None:
                self._memory.move_to_end(text)
                self.stats.memory_hits += 1
                return {name: array.copy() for name, array in entry.items()}
        entry = self._read_file(text, digest)
        with self._lock:
            if entry is None:
                self.stats.misses += 1
                return None
            self.stats.disk_hits += 1
            self._remember(text, entry)
        return {name: array.copy() for name, array in entry.items()}

    def put(self, key: dict, arrays: dict[str, np.ndarray]) -> None:
        """Store private copies of ``arrays`` under ``key`` in memory and on disk."""
        text, digest = self._encode_key(key)
        entry = {name: np.array(array, copy=True) for name, array in arrays.items()}
        with self._lock:
            self._remember(text, entry)
        if self._disk_budget() > 0:
            self._write_file(text, digest, entry)

    def clear_memory(self) -> None:
        """Forget in-memory entries (files stay); used to test and to free RAM."""
        with self._lock:
            self._memory.clear()
            self._memory_bytes = 0

    # -- memory level -----------------------------------------------------------------
    def _remember(self, text: str, entry: dict[str, np.ndarray]) -> None:
        size = sum(array.nbytes for array in entry.values())
        budget = self._memory_budget()
        if size > budget:
            return
        if text in self._memory:
            self._memory_bytes -= sum(a.nbytes for a in self._memory.pop(text).values())
        self._memory[text] = entry
        self._memory_bytes += size
        while self._memory_bytes > budget:
            _, evicted = self._memory.popitem(last=False)
            self._memory_bytes -= sum(a.nbytes for a in evicted.values())

    # -- disk level -------------------------------------------------------------------
    def _read_file(self, text: str, digest: str) -> dict[str, np.ndarray] | None:
        path = self._directory() / f"{digest}.npz"
        try:
            with np.load(path, allow_pickle=False) as stored:
                if str(stored[_KEY_FIELD]) != text:
                    return None  # hash-prefix collision: a different computation
                entry = {name: stored[name] for name in stored.files if name != _KEY_FIELD}
            _touch(path)
            return entry
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, EOFError) as error:
            logger.warning("ignoring unreadable cache file %s (%s)", path, error)
            return None

    def _write_file(self, text: str, digest: str, entry: dict[str, np.ndarray]) -> None:
        directory = self._directory()
        try:
            directory.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".npz")
            try:
                with os.fdopen(handle, "wb") as file:
                    np.savez(file, **entry, **{_KEY_FIELD: np.array(text)})
                _touch(Path(temporary))
                os.replace(temporary, directory / f"{digest}.npz")
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as error:  # a full or read-only disk must not fail a trial
            logger.warning("could not write cache file in %s (%s)", directory, error)
            return
        self._prune(directory)

    def _prune(self, directory: Path) -> None:
        """Delete least recently used files until the directory fits the disk budget.

        Temporary files older than an hour were left by killed writers and go too.
        """
        files, stale_before = [], time.time_ns() - 3600 * 10**9
        for item in os.scandir(directory):
            try:
                status = item.stat()
            except FileNotFoundError:
                continue  # removed by another worker
            if item.name.startswith(".tmp-"):
                if status.st_mtime_ns < stale_before:
                    Path(item.path).unlink(missing_ok=True)
            elif item.name.endswith(".npz"):
                files.append((status.st_mtime_ns, status.st_size, item.path))
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total <= self._disk_budget():
                break
            Path(path).unlink(missing_ok=True)
            total -= size


_default_cache = ArrayCache()


def default_cache() -> ArrayCache:
    """The process-wide cache of reduced and downsampled features."""
    return _default_cache


def cached_features(dataset: Dataset, operation: str, params: dict[str, Any],
                    compute: Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray, dict]],
                    cache: bool = True) -> Dataset:
    """``dataset`` with features replaced by ``compute()``, reusing earlier results.

    ``compute`` returns ``(X_train, X_val, X_test, added_meta)``; labels are unchanged.
    The key is the operation, its ``params``, the dataset name, its split seed and a
    fingerprint of all its arrays. Only ``added_meta`` is cached; it is merged into the
    caller's current ``dataset.meta``.
    """
    if not cache:
        X_train, X_val, X_test, added = compute()
        return _with_features(dataset, X_train, X_val, X_test, added)
    key = {"operation": operation, "params": params, "dataset": dataset.name,
           "split_seed": dataset.meta.get("split_seed"), "fingerprint": fingerprint(dataset)}
    store = default_cache()
    entry = store.get(key)
    if entry is None:
        X_train, X_val, X_test, added = compute()
        entry = {"X_train": X_train, "X_val": X_val, "X_test": X_test,
                 "meta": np.array(json.dumps(added))}
        store.put(key, entry)
    return _with_features(dataset, entry["X_train"], entry["X_val"], entry["X_test"],
                          json.loads(str(entry["meta"])))


def _with_features(dataset: Dataset, X_train: np.ndarray, X_val: np.ndarray,
                   X_test: np.ndarray, added: dict) -> Dataset:
    kind = "tabular" if X_train.ndim == 2 else "image"
    return dataset.with_features(X_train, X_val, X_test, kind=kind, **added)
