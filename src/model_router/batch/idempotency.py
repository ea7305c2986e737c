"""Which batch lines are done: Powertools idempotency records keyed on (input, version, line).

In AWS the records live in a DynamoDB table (Powertools' DynamoDBPersistenceLayer); local runs keep
them in a SQLite file (:class:`SQLitePersistenceLayer`, the same record semantics). Only answered lines
are recorded: a line whose models all failed is tried again on a rerun, a malformed one costs nothing.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer, DataRecord

from model_router.settings import Settings, SettingsError

# The same prefix in AWS and locally, whatever the function is called: keys outlive deployments.
KEY_PREFIX = "model-router-batch"
# A done line stays done this long; after that a rerun of the same input routes it again.
EXPIRES_AFTER_SECONDS = 30 * 24 * 3600
COMPLETED = "COMPLETED"


def line_key(source: dict[str, Any], line: int) -> dict[str, Any]:
    """The idempotency key data of one line: the input object, its version (version id, else ETag), the line."""
    version = source.get("version_id") or source.get("etag") or ""
    return {"input": f"s3://{source['bucket']}/{source['key']}", "version": version, "line": line}


def create_store(path: Path) -> None:
    """Create the SQLite file, its table and WAL mode. Worker processes that open a new file at the same
    moment can fail the journal-mode switch with "database is locked" (it takes an exclusive lock without
    waiting), so the local batch calls this once before it starts its workers; WAL mode stays with the file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=60, isolation_level=None)
    try:
        if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            db.execute("PRAGMA journal_mode=WAL")
        db.execute(
            "CREATE TABLE IF NOT EXISTS idempotency (id TEXT PRIMARY KEY, status TEXT NOT NULL,"
            " expiration INTEGER, in_progress_expiration INTEGER, data TEXT, validation TEXT)"
        )
    finally:
        db.close()


class SQLitePersistenceLayer(BasePersistenceLayer):
    """Powertools idempotency records in one SQLite file (local batch runs; safe across processes)."""

    def __init__(self, path: str | Path):
        super().__init__()
        self.path = Path(path)
        self._lock = threading.Lock()
        create_store(self.path)
        self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA synchronous=NORMAL")

    def _row(self, idempotency_key: str) -> tuple[Any, ...] | None:
        with self._lock:
            cursor = self._db.execute(
                "SELECT id, status, expiration, in_progress_expiration, data, validation FROM idempotency WHERE id = ?",
                (idempotency_key,),
            )
            row: tuple[Any, ...] | None = cursor.fetchone()
            return row

    def _get_record(self, idempotency_key: str) -> DataRecord:
        row = self._row(idempotency_key)
        if row is None:
            raise IdempotencyItemNotFoundError
        return DataRecord(
            idempotency_key=row[0], status=row[1], expiry_timestamp=row[2], in_progress_expiry_timestamp=row[3],
            response_data=row[4] or "", payload_hash=row[5] or "",
        )

    def _put_record(self, data_record: DataRecord) -> None:
        now = int(time.time())
        with self._lock:
            # Insert unless a live record exists (an expired one is replaced), like the DynamoDB layer's condition.
            cursor = self._db.execute(
                "INSERT INTO idempotency (id, status, expiration, in_progress_expiration, data, validation)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET status = excluded.status,"
                " expiration = excluded.expiration, in_progress_expiration = excluded.in_progress_expiration,"
                " data = excluded.data, validation = excluded.validation WHERE idempotency.expiration < ?",
                (data_record.idempotency_key, data_record.status, data_record.expiry_timestamp,
                 data_record.in_progress_expiry_timestamp, data_record.response_data, data_record.payload_hash, now),
            )
            if cursor.rowcount == 0:
                raise IdempotencyItemAlreadyExistsError

    def _update_record(self, data_record: DataRecord) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO idempotency (id, status, expiration, in_progress_expiration, data, validation)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (data_record.idempotency_key, data_record.status, data_record.expiry_timestamp,
                 data_record.in_progress_expiry_timestamp, data_record.response_data, data_record.payload_hash),
            )

    def _delete_record(self, data_record: DataRecord) -> None:
        with self._lock:
            self._db.execute("DELETE FROM idempotency WHERE id = ?", (data_record.idempotency_key,))


class LineStore:
    """Done lines and their output lines, over any Powertools persistence layer."""

    def __init__(self, layer: BasePersistenceLayer):
        layer.configure(IdempotencyConfig(expires_after_seconds=EXPIRES_AFTER_SECONDS), key_prefix=KEY_PREFIX)
        self.layer = layer

    def done(self, source: dict[str, Any], line: int) -> dict[str, Any] | None:
        """The output line of an answered line, or None if it still needs routing."""
        try:
            record = self.layer.get_record(line_key(source, line))
        except IdempotencyItemNotFoundError:
            return None
        if record is None or record.status != COMPLETED:
            return None
        output: dict[str, Any] = json.loads(record.response_data)
        return output

    def mark_done(self, source: dict[str, Any], line: int, output: dict[str, Any]) -> None:
        self.layer.save_success(line_key(source, line), output)


@lru_cache(maxsize=8)
def _store(table: str | None, path: str | None) -> LineStore:
    if table:
        from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

        return LineStore(DynamoDBPersistenceLayer(table_name=table))
    if path:
        return LineStore(SQLitePersistenceLayer(path))
    raise SettingsError("batch: set IDEMPOTENCY_TABLE (a DynamoDB table) or IDEMPOTENCY_STORE (a local SQLite file)")


def line_store(settings: Settings) -> LineStore:
    """One store per container and configuration (the DynamoDB client is reused across invocations)."""
    return _store(settings.idempotency_table, settings.idempotency_store)
