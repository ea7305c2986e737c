"""The local batch's files: checks before any line is routed, the run lock, and the output writer.

* Every path is checked before the first line is routed (input, output, summary, idempotency store): a
  bad one is one :class:`BatchPathError` line, and nothing is left behind.
* One run at a time per output and per store: ``fcntl.flock`` on ``OUTPUT.lock`` (and ``STORE.lock``)
  for the whole run. The kernel drops the lock when its process dies, even by ``kill -9``, so a lock
  file left behind blocks nothing; the file only says which pid holds it, for the message.
* The output only ever ends in a complete line: a write that fails (disk full, file too large, Ctrl-C)
  is cut back to the last whole line, and the run stays resumable from the idempotency store.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

MAX_WORKERS = 64  # worker processes of one local batch (the CLI's --workers bound)
SQLITE_HEADER = b"SQLite format 3\x00"
SNIFF_BYTES = 4096


class BatchError(Exception):
    """A local batch that cannot run or finish; ``str()`` is the one line the CLI prints."""

    exit_code = 2


class BatchPathError(BatchError):
    """A path the batch cannot use (checked before any line is routed)."""


class BatchBusy(BatchError):
    """Another batch holds the output's (or the store's) lock."""


class BatchIncomplete(BatchError):
    """The run stopped part way (a write failed, the input could not be read or changed): the output holds
    whole lines only, and a rerun resumes."""

    exit_code = 1


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def check_input(path: Path) -> None:
    """A readable regular file of UTF-8 text (it is read twice: to fingerprint it, then line by line)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise BatchPathError(f"input: {path} does not exist") from None
    except OSError as exc:
        raise BatchPathError(f"input: {path}: {_reason(exc)}") from None
    if stat.S_ISDIR(mode):
        raise BatchPathError(f"input: {path} is a directory; give a JSONL file")
    if not stat.S_ISREG(mode):
        raise BatchPathError(f"input: {path} is not a regular file (a pipe or device cannot be read twice);"
                             " save it to a file first")
    try:
        with path.open("rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError as exc:
        raise BatchPathError(f"input: cannot read {path}: {_reason(exc)}") from None
    from model_router.batch.lines import not_jsonl

    why = not_jsonl(head)
    if why:
        raise BatchPathError(f"input: {path} is not UTF-8 JSONL: {why}")


def _nearest_existing(path: Path) -> Path:
    for parent in path.parents:
        if parent.exists():
            return parent
    return Path(path.anchor or ".")


def check_writable_path(path: Path, what: str) -> None:
    """``path`` is a regular file or does not exist yet, and the directory it goes in is (or can be) a directory."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        mode = None
    except NotADirectoryError:  # a parent is a file
        mode = None
    except OSError as exc:
        raise BatchPathError(f"{what}: {path}: {_reason(exc)}") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise BatchPathError(f"{what}: {path} is a directory; give a file name")
    if mode is not None and not stat.S_ISREG(mode):
        raise BatchPathError(f"{what}: {path} is not a regular file")
    ancestor = _nearest_existing(path)
    if not ancestor.is_dir():
        raise BatchPathError(f"{what}: cannot create {path}: {ancestor} is a file, not a directory")


def check_store(path: Path) -> None:
    check_writable_path(path, "store")
    if not path.is_file() or path.stat().st_size == 0:
        return
    try:
        with path.open("rb") as fh:
            header = fh.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise BatchPathError(f"store: cannot read {path}: {_reason(exc)}") from None
    if header != SQLITE_HEADER:
        raise BatchPathError(f"store: {path} is not a SQLite file (an idempotency store); give a new path")


def _same_file(a: Path, b: Path) -> bool:
    """Also through symlinks and hard links."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet
        return a.resolve() == b.resolve()


def check_distinct(paths: dict[str, Path]) -> None:
    """No two roles (input, output, summary, store, their lock files ...) on one file: one would overwrite
    the other."""
    names = list(paths)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            if _same_file(paths[first], paths[second]):
                raise BatchPathError(f"{second}: {paths[second]} is the {first} file ({paths[first]});"
                                     f" give the {second} another name")


def make_parent(path: Path, what: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BatchPathError(f"{what}: cannot create the directory {path.parent}: {_reason(exc)}") from None


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return f" (pid {text})" if text.isdigit() else ""


@contextlib.contextmanager
def exclusive(path: Path, what: str) -> Iterator[None]:
    """Hold ``flock`` on ``PATH.lock`` for the block, or raise :class:`BatchBusy` at once naming the holder.

    The lock file is removed on the way out while still locked; a run that opened the old file in the
    meantime sees it is no longer the one at that path once it gets the lock, and takes the new one."""
    import fcntl  # POSIX only: the local batch runs on Linux and macOS

    target = lock_path(path)
    while True:
        try:
            fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise BatchPathError(f"{what}: cannot create files in {target.parent}: {_reason(exc)}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _holder(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise BatchBusy(f"{what}: {path} is in use by another model-router batch{holder}; wait for it to"
                                f" finish or give another {what}") from None
            raise BatchPathError(f"{what}: cannot lock {target}: {_reason(exc)}") from None
        try:
            current = os.stat(target).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(fd).st_ino:
            break
        os.close(fd)  # the previous holder removed it after we opened it: lock the file now at that path
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    except OSError:
        pass  # the pid only makes the message friendlier; the lock is what counts
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(target)
        os.close(fd)


def open_store(path: Path) -> None:
    """Create (or open) the idempotency store before any worker does; a file SQLite refuses is a path error."""
    from model_router.batch.idempotency import create_store

    try:
        create_store(path)
    except sqlite3.Error as exc:
        raise BatchPathError(f"store: {path} cannot be used as an idempotency store: {exc}") from None
    except OSError as exc:
        raise BatchPathError(f"store: {path}: {_reason(exc)}") from None


class JsonlWriter:
    """Writes whole JSONL lines to ``path``; never leaves a torn last line.

    Opened before any line is routed (so a path that cannot be written fails first), emptied by
    :meth:`start`. A write that fails (ENOSPC, EFBIG, ...), or is interrupted, is cut back to the last whole
    line and raises :class:`BatchIncomplete`. An output this writer created and never wrote to is removed
    on a failure, so a failed run leaves no empty file behind."""

    def __init__(self, path: Path, store: Path):
        self.path = path
        self.store = store
        self.size = 0
        self.lines = 0
        self.total = 0
        self._fd: int | None = None
        self._created = False

    def __enter__(self) -> JsonlWriter:
        existed = self.path.exists()
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o666)
        except OSError as exc:
            raise BatchPathError(f"output: cannot write {self.path}: {_reason(exc)}") from None
        self._created = not existed
        return self

    def start(self, total: int) -> None:
        """Empty the output: every run writes it from the first line (done lines come from the store)."""
        assert self._fd is not None
        self.total = total
        os.ftruncate(self._fd, 0)

    def write(self, data: bytes, lines: int) -> None:
        assert self._fd is not None
        view = memoryview(data)
        written = 0
        try:
            while written < len(data):
                written += os.write(self._fd, view[written:])
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self.size)
            if isinstance(exc, OSError):
                raise self._failed(exc) from None
            raise
        self.size += len(data)
        self.lines += lines

    def finish(self) -> None:
        """Make sure the data reached the disk: some file systems report a full disk only now."""
        assert self._fd is not None
        try:
            os.fsync(self._fd)
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOTSUP):  # fsync is not supported everywhere
                raise self._failed(exc) from None

    def _failed(self, exc: OSError) -> BatchIncomplete:
        return BatchIncomplete(
            f"output: writing {self.path} failed after {self.lines} of {self.total} lines: {_reason(exc)};"
            f" it holds those {self.lines} complete lines. Answered lines are recorded in {self.store}: make room"
            " and run the same command again to resume")

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if kind is not None and self._created and self.size == 0:
            with contextlib.suppress(OSError):
                self.path.unlink()


def write_atomically(path: Path, data: bytes) -> None:
    """``path`` holds ``data`` or what it held before, never half of it; no temporary file survives a failure."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise BatchIncomplete(f"summary: writing {path} failed: {_reason(exc)}; the results are complete") from None
