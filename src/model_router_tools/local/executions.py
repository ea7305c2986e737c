"""Recent local executions on disk, so ``model-router history`` can inspect a run after it ended.

One JSON file per execution (the fields ``DescribeExecution`` and ``GetExecutionHistory`` return), in a
cache directory, bounded to the most recent ``keep`` files. The events hold the execution's input and
state data, prompts included, as the Step Functions console does; they stay on this machine, and
``history`` prints them only when asked (``--data``).

Each project has its own store, as each has its own ``.git``: the project is the nearest directory up from
the working directory that holds template.yaml, pyproject.toml or .git (else the working directory), and its
runs are kept in ``$XDG_CACHE_HOME/model-router/executions/<project name>-<hash of its path>`` (``~/.cache``
when XDG_CACHE_HOME is not set). Two checkouts never see each other's runs.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import re
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_KEEP = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
PROJECT_MARKERS = ("template.yaml", "pyproject.toml", ".git")
# A temporary file older than this was left by a process that was killed mid-write.
_STALE_TMP_SECONDS = 3600


class StoreError(LookupError):
    """An execution the store does not have, or a file in it that is not a readable record; one line."""


def project_root(start: Path | None = None) -> Path:
    """The project local runs belong to: the nearest directory from ``start`` (the working directory) up
    that holds one of PROJECT_MARKERS, else ``start`` itself."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if any((directory / marker).exists() for marker in PROJECT_MARKERS):
            return directory
    return here


def cache_home() -> Path:
    """$XDG_CACHE_HOME when it is an absolute path (the XDG spec ignores a relative one), else ~/.cache."""
    configured = os.environ.get("XDG_CACHE_HOME", "")
    return Path(configured) if os.path.isabs(configured) else Path.home() / ".cache"


def default_history_dir(project: Path | None = None) -> Path:
    """Where the local runs of ``project`` (default: the working directory's project) are kept."""
    root = project_root(project)
    digest = hashlib.sha256(os.fsencode(root)).hexdigest()[:12]
    name = _UNSAFE.sub("_", root.name)[:40] or "root"
    return cache_home() / "model-router" / "executions" / f"{name}-{digest}"


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    return str(value)


@dataclass
class ExecutionStore:
    directory: Path
    keep: int = DEFAULT_KEEP

    def __post_init__(self) -> None:
        self.directory = Path(self.directory)
        if self.keep < 1:
            raise ValueError(f"keep={self.keep}: the store must keep at least one execution")

    def path_for(self, name: str) -> Path:
        return self.directory / f"{_UNSAFE.sub('_', name)}.json"

    def save(self, record: dict[str, Any]) -> Path | None:
        """Write one execution (``name``, ``executionArn``, ``status``, ``events``, ...) and prune old ones.

        A cache that cannot be written (read-only home, full disk) costs the history, never the run. The
        file appears whole or not at all: written to a temporary file beside it, which is removed on any
        failure, then renamed over it.
        """
        path = self.path_for(record["name"])
        tmp: Path | None = None
        try:
            # ASCII with \u escapes: a lone surrogate (argv bytes that were not UTF-8) cannot fail the write.
            text = json.dumps(record, default=_json_default, ensure_ascii=True)
            self.directory.mkdir(parents=True, exist_ok=True)
            handle, name = tempfile.mkstemp(dir=self.directory, prefix=f".{path.stem[:40]}.", suffix=".tmp")
            tmp = Path(name)
            with os.fdopen(handle, "w", encoding="ascii") as fh:
                fh.write(text)
            os.replace(tmp, path)  # atomic: a concurrent reader never sees half a file
            tmp = None
        except (OSError, ValueError, TypeError) as exc:
            warnings.warn(f"execution history not kept in {self.directory}: {exc}", stacklevel=2)
            return None
        finally:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
        self._prune()
        return path

    def _prune(self) -> None:
        files = self._files()
        for old in files[: max(0, len(files) - self.keep)]:
            old.unlink(missing_ok=True)
        stale = time.time() - _STALE_TMP_SECONDS
        for leftover in self.directory.glob("*.tmp"):
            with contextlib.suppress(OSError):  # another run's file, just renamed or removed
                if leftover.stat().st_mtime < stale:
                    leftover.unlink()

    def _files(self) -> list[Path]:
        """Oldest first."""
        if not self.directory.is_dir():
            return []
        stamped = []
        for path in self.directory.glob("*.json"):
            try:
                stamped.append((path.stat().st_mtime_ns, path.name, path))
            except FileNotFoundError:  # pruned by a concurrent run
                continue
        return [path for _, _, path in sorted(stamped)]

    def recent(self) -> list[dict[str, Any]]:
        """Stored executions, newest first (without their events); a file that is not a readable record is
        listed with status UNREADABLE and the problem as its error."""
        out = []
        for path in reversed(self._files()):
            try:
                record = self._read(path)
            except StoreError as exc:
                record = {"name": path.stem, "status": "UNREADABLE", "error": str(exc)}
            if record is not None:
                record.pop("events", None)
                out.append(record)
        return out

    def load(self, execution: str | None = None) -> dict[str, Any]:
        """An execution by name or ARN; the most recent one when ``execution`` is None."""
        if execution is None:
            files = self._files()
            if not files:
                raise StoreError(f"no local runs stored in {self.directory} yet: `model-router invoke` keeps each "
                                 "run of this project there")
            record = self._read(files[-1])
        else:
            name = execution.rsplit(":", 1)[-1] if execution.startswith("arn:") else execution
            record = self._read(self.path_for(name))
        if record is None:
            raise StoreError(f"no local execution {execution!r} in {self.directory} (the last {self.keep} runs of "
                             "this project are kept; `model-router history --list` shows them)")
        return record

    @staticmethod
    def _read(path: Path) -> dict[str, Any] | None:
        """The record in ``path``; None when there is no such file; StoreError when it is not a record."""
        try:
            data = json.loads(path.read_bytes())
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise StoreError(f"{path}: cannot be read ({exc.strerror or exc})") from None
        except ValueError as exc:  # JSONDecodeError, or bytes that are not UTF-8
            raise StoreError(f"{path}: not an execution record ({type(exc).__name__}: {exc}); delete it") from None
        if not isinstance(data, dict) or not isinstance(data.get("events", []), list):
            raise StoreError(f"{path}: not an execution record (no object with events); delete it")
        return data


def execution_record(result: Any, *, state_machine_arn: str, request: Any) -> dict[str, Any]:
    """What the store keeps of an engine run: DescribeExecution's fields plus the event history."""
    events = result.events
    started = events[0]["timestamp"] if events else None
    stopped = events[-1]["timestamp"] if events else None
    return {
        "executionArn": result.execution_arn,
        "name": result.name,
        "stateMachineArn": state_machine_arn,
        "status": result.status,
        "startDate": started,
        "stopDate": stopped,
        "input": request,
        "output": result.output,
        "error": result.error,
        "cause": result.cause,
        "retryWaitsSeconds": result.retry_waits_s,
        "events": events,
    }
