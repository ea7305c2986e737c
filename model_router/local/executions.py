"""Recent local executions on disk, so ``model-router history`` can inspect a run after it ended.

One JSON file per execution (the fields ``DescribeExecution`` and ``GetExecutionHistory`` return), in a
cache directory, bounded to the most recent ``keep`` files. The events hold the execution's input and
state data, prompts included, as the Step Functions console does; they stay on this machine, and
``history`` prints them only when asked (``--data``).
"""

from __future__ import annotations

import datetime
import json
import os
import re
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_KEEP = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def default_history_dir() -> Path:
    return Path.home() / ".cache" / "model-router" / "executions"


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

        A cache that cannot be written (read-only home, full disk) costs the history, never the run.
        """
        path = self.path_for(record["name"])
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(record, default=_json_default, ensure_ascii=False), encoding="utf-8")
            tmp.replace(path)  # atomic: a concurrent reader never sees half a file
        except OSError as exc:
            warnings.warn(f"execution history not kept in {self.directory}: {exc}", stacklevel=2)
            return None
        self._prune()
        return path

    def _prune(self) -> None:
        files = self._files()
        for old in files[: max(0, len(files) - self.keep)]:
            old.unlink(missing_ok=True)

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
        """Stored executions, newest first (without their events)."""
        out = []
        for path in reversed(self._files()):
            record = self._read(path)
            if record is not None:
                record.pop("events", None)
                out.append(record)
        return out

    def load(self, execution: str | None = None) -> dict[str, Any]:
        """An execution by name or ARN; the most recent one when ``execution`` is None."""
        if execution is None:
            files = self._files()
            if not files:
                raise LookupError(f"no local executions stored in {self.directory}; run `model-router invoke` first")
            record = self._read(files[-1])
        else:
            name = execution.rsplit(":", 1)[-1] if execution.startswith("arn:") else execution
            record = self._read(self.path_for(name))
        if record is None:
            raise LookupError(f"no local execution {execution!r} in {self.directory} (the last {self.keep} are kept;"
                              " `model-router history --list` shows them)")
        return record

    @staticmethod
    def _read(path: Path) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return None
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
