"""Writing results so that a full disk loses nothing.

Every file a run writes, its own (``trials.csv``, ``progress.json``, weights) and Ray
Tune's (the experiment state, the searcher's state, trial checkpoints), is written next
to its previous copy under a temporary name and renamed over it only once it is
complete. A write that fails (``ENOSPC``: no space left; ``EDQUOT``: quota exceeded)
therefore leaves the previous copy, the last good state, intact, and the run resumes
from it once space is back.

- :func:`atomic_write`: the pattern for one file of our own;
- :func:`tune_filesystem`: a pyarrow filesystem for Tune's ``storage_filesystem`` that
  writes every file that way (Tune itself truncates and rewrites its state files in
  place, so a full disk used to leave a truncated experiment state behind), and puts
  the three files of an experiment-state snapshot in place together (a snapshot cut
  short used to leave a searcher that did not know trials Tune resumed, which then
  trained the same architectures again);
- :class:`StorageFull`: the one error a full disk becomes, naming the path;
  :func:`storage_full` finds it in an exception chain (Ray wraps worker errors).

Pure Python plus pyarrow: importing this needs neither Ray nor torch.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pyarrow.fs as pafs

#: errno values that mean "this storage is full" (not "this input is wrong").
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


class StorageFull(OSError):
    """A write failed because its storage is full; ``filename`` is the path."""

    def __init__(self, path: str | os.PathLike, code: int = errno.ENOSPC) -> None:
        super().__init__(code, os.strerror(code), str(path))

    def __str__(self) -> str:
        return f"{self.strerror.lower()} writing {self.filename}"

    def __reduce__(self):  # raised in Ray workers, re-raised on the driver
        return (type(self), (self.filename, self.errno))


def storage_full(error: BaseException | None) -> StorageFull | None:
    """The :class:`StorageFull` behind ``error`` (an ``ENOSPC``/``EDQUOT`` ``OSError``
    anywhere in its ``__cause__``/``__context__`` chain or Ray's ``cause``), or None."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, StorageFull):
            return error
        if isinstance(error, OSError) and error.errno in FULL_ERRNOS:
            return StorageFull(error.filename or "(unknown path)", error.errno)
        error = (getattr(error, "cause", None) or error.__cause__ or error.__context__)
    return None


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; once the block ends without an error it
    replaces ``path`` in one rename. On an error the temporary file is removed and
    ``path`` keeps its previous content; a full disk raises :class:`StorageFull`."""
    path = Path(path)
    descriptor, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial",
                                        dir=path.parent)
    os.close(descriptor)
    temporary = Path(name)
    try:
        yield temporary
        _replace(temporary, path)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        full = storage_full(error)
        if full is not None and not isinstance(error, StorageFull):
            raise StorageFull(path, full.errno) from None
        raise


def _replace(temporary: Path, path: Path) -> None:
    """Rename ``temporary`` over ``path`` keeping ``path``'s permissions if it exists."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask()
    os.chmod(temporary, mode)
    os.replace(temporary, path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------- Tune's storage
_failures: list[StorageFull] = []
_failures_lock = threading.Lock()


def first_failure() -> StorageFull | None:
    """The first write this process made through :func:`tune_filesystem` that failed
    for want of space, if any (Tune's background sync reports failures only in logs)."""
    with _failures_lock:
        return _failures[0] if _failures else None


def clear_failures() -> None:
    with _failures_lock:
        _failures.clear()


def _record(error: StorageFull) -> None:
    with _failures_lock:
        _failures.append(error)
    _snapshots.discard()


def is_local_path(storage_path: str) -> bool:
    """Whether ``storage_path`` is a path of this machine (not ``s3://``, ``gs://``...)."""
    return "://" not in storage_path or storage_path.startswith("file://")


def tune_filesystem(storage_path: str | None) -> pafs.FileSystem | None:
    """The ``storage_filesystem`` for Tune at ``storage_path``: for a local (or NFS)
    path, the local filesystem with atomic writes, whose experiment-state snapshots
    (trials, search generator, searcher: the files of a Tune experiment with a
    ``Searcher``, as ``global_search`` runs) are renamed into place together; None
    (Tune's own choice) for object stores such as ``s3://``, whose uploads are
    all-or-nothing per file."""
    if storage_path is None or not is_local_path(storage_path):
        return None
    return pafs.PyFileSystem(AtomicLocalFileSystem())


def local_storage_path(storage_path: str) -> str:
    """``storage_path`` as a plain path for :func:`tune_filesystem` (no ``file://``)."""
    return storage_path.removeprefix("file://")


class _AtomicFile:
    """A writable binary file that becomes visible at ``path`` only when closed after
    a complete write (the object pyarrow's ``PythonFile`` wraps)."""

    def __init__(self, path: str) -> None:
        self.path = path
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)  # as LocalFileSystem does
        descriptor, self.temporary = tempfile.mkstemp(
            prefix=f".{os.path.basename(path)}.", suffix=".partial",
            dir=os.path.dirname(path) or ".")
        self.file = os.fdopen(descriptor, "wb")
        self.failed = False
        self.closed = False

    def write(self, data) -> int:
        try:
            return self.file.write(data)
        except BaseException as error:
            self._fail(error)
            raise

    def flush(self) -> None:
        try:
            self.file.flush()
        except BaseException as error:
            self._fail(error)
            raise

    def tell(self) -> int:
        return self.file.tell()

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.failed:
            return
        try:
            self.file.close()
            if not _snapshots.take(self):
                self.commit()
        except BaseException as error:
            self._fail(error)
            raise

    def commit(self) -> None:
        _replace(Path(self.temporary), Path(self.path))

    def _fail(self, error: BaseException) -> None:
        """Give up this copy: the temporary file goes, ``path`` keeps its old content."""
        self.failed = True
        with contextlib.suppress(OSError):
            self.file.close()
        with contextlib.suppress(OSError):
            os.unlink(self.temporary)
        full = storage_full(error)
        if full is not None:
            _record(StorageFull(self.path, full.errno))


class _Snapshots:
    """Tune's experiment state is three files per session, written together at each
    snapshot: the trials (``experiment_state``), the search generator's counters
    (``search_gen_state``) and the searcher (``searcher-state``). They must agree: a
    searcher older than the trials proposes architectures Tune is already training, a
    generator ahead of them never creates the trials still missing. So they are
    renamed into place together, the trials last, once all three files of a snapshot
    are complete; a snapshot cut short by a full disk leaves the previous one whole."""

    PATTERN = re.compile(r"^(experiment_state|search_gen_state|searcher-state)-(.+)\."
                         r"(json|pkl)$")
    KINDS = ("search_gen_state", "searcher-state", "experiment_state")  # commit order

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: dict[tuple[str, str], dict[str, _AtomicFile]] = {}

    def take(self, file: _AtomicFile) -> bool:
        """Hold a complete state file until its snapshot is complete (then commit the
        snapshot); False for any other file."""
        match = self.PATTERN.match(os.path.basename(file.path))
        if match is None:
            return False
        kind, session = match.group(1), match.group(2)
        with self.lock:
            if first_failure() is not None:  # a file failed (perhaps in another copy
                _unlink(file.temporary)      # thread, before this one closed): this
                return True                  # snapshot is never put in place
            group = self.pending.setdefault((os.path.dirname(file.path), session), {})
            stale = group.pop(kind, None)
            if stale is not None:  # the previous snapshot never completed
                _unlink(stale.temporary)
            group[kind] = file
            if len(group) < len(self.KINDS):
                return True
            del self.pending[(os.path.dirname(file.path), session)]
        for kind in self.KINDS:
            group[kind].commit()
        return True

    def discard(self) -> None:
        """Drop every incomplete snapshot (after a failed write)."""
        with self.lock:
            for group in self.pending.values():
                for file in group.values():
                    _unlink(file.temporary)
            self.pending.clear()


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


_snapshots = _Snapshots()


class AtomicLocalFileSystem(pafs.FileSystemHandler):
    """pyarrow's local filesystem, except that a file written is complete or absent:
    it is written under a temporary name and renamed over the old copy when closed."""

    def __init__(self) -> None:
        self.local = pafs.LocalFileSystem()

    def __eq__(self, other) -> bool:
        return isinstance(other, AtomicLocalFileSystem)

    def __hash__(self) -> int:
        return hash(AtomicLocalFileSystem)

    def __reduce__(self):
        return (AtomicLocalFileSystem, ())

    def get_type_name(self) -> str:
        return "steerage-atomic-local"

    def equals(self, other) -> bool:
        return isinstance(other, AtomicLocalFileSystem)

    def normalize_path(self, path: str) -> str:
        return self.local.normalize_path(path)

    def get_file_info(self, paths):
        return self.local.get_file_info(paths)

    def get_file_info_selector(self, selector):
        return self.local.get_file_info(selector)

    def create_dir(self, path, recursive):
        try:
            self.local.create_dir(path, recursive=recursive)
        except OSError as error:
            self._raise_full(error, path)
            raise

    def delete_dir(self, path):
        self.local.delete_dir(path)

    def delete_dir_contents(self, path, missing_dir_ok=False):
        self.local.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self):
        self.local.delete_dir_contents("/", accept_root_dir=True)

    def delete_file(self, path):
        self.local.delete_file(path)

    def move(self, src, dest):
        self.local.move(src, dest)

    def copy_file(self, src, dest):
        with self.local.open_input_stream(src) as source, \
                self.open_output_stream(dest, None) as target:
            while chunk := source.read(1 << 20):
                target.write(chunk)

    def open_input_stream(self, path):
        return self.local.open_input_stream(path)

    def open_input_file(self, path):
        return self.local.open_input_file(path)

    def open_output_stream(self, path, metadata):
        import pyarrow as pa

        try:
            return pa.PythonFile(_AtomicFile(path), mode="w")
        except OSError as error:
            self._raise_full(error, path)
            raise

    def open_append_stream(self, path, metadata):
        return self.local.open_append_stream(path, metadata=metadata)

    @staticmethod
    def _raise_full(error: OSError, path: str) -> None:
        full = storage_full(error)
        if full is not None:
            _record(StorageFull(path, full.errno))
            raise StorageFull(path, full.errno) from None
