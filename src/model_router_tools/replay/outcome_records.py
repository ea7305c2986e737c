"""Read a deployment's outcome records: what the shadow workflow writes, one JSON object per request.

An outcome record (src/model_router/contracts/schemas/outcome.schema.json) is a record of the shared
recorded-outcomes format with ``source`` "shadow" and the deployment's own facts in ``meta``: its tier map
(``meta.tiers``), the route the caller got (``meta.route``), the sampler and the request's chance of being
shadowed (``meta.sampler``, ``meta.sample_probability``), the judge and the shadowing cost. Without
StoreShadowPrompts ``prompt`` and every ``response`` are null; ``meta.features`` then keeps the router's own
features (hashed prompt buckets, the classifier's signals).

Where they are read from (:func:`load_outcomes`):

* a ``.jsonl`` / ``.jsonl.gz`` file (what ``model-router batch --shadow RATE --outcomes FILE`` appends to);
* a directory: every ``*.jsonl`` / ``*.jsonl.gz`` under it, in path order (``aws s3 sync`` of the outcomes
  prefix gives ``dt=YYYY-MM-DD/<id>.jsonl``, so later days come later);
* ``s3://bucket/prefix/``: every ``.jsonl`` / ``.jsonl.gz`` object under the prefix, in key order.

An ``s3://`` prefix may hold shared-format records instead (a copy of ``../shared/data``: ``*.jsonl.gz`` with
the ``<source>.models.json`` beside them): :func:`s3_shared_datasets` tells them apart by the first object's
first record and copies them to a local folder, where they are read like any local dataset.

A record's ``id`` is stable per request (a rerun rewrites it): when an id comes twice, the last one read wins.
Every record is checked against the schema and for what the schema cannot say (its tier map names models
it has outcomes for, its route's tier is one of them, all records share one tier map); a problem is a
:class:`DatasetError` naming the file or object, the record and the field.

This module holds DatasetError (re-exported by :mod:`.datasets`), because ``datasets.check_dataset``
reads outcome records through it.
"""

from __future__ import annotations

import gzip
import zlib
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model_router.contracts import json_text as strict_json
from model_router.contracts.hygiene import field_path
from model_router.tiers import DATA_TIER_NAMES, TIER_ORDER, Tier

OUTCOME_SOURCE = "shadow"
SUFFIXES = (".jsonl", ".jsonl.gz")
MODELS_SUFFIX = ".models.json"  # a shared-format source's tier map, beside its records
S3_READERS = 8  # objects fetched at once: one small object per request, so latency, not bandwidth, bounds it
S3_PAGE_SIZE = 1000  # keys per ListObjectsV2 page (S3's most); every page is read


class DatasetError(ValueError):
    """A recorded-outcomes file that cannot be used; ``str()`` names the file (and the line) and the problem."""


@dataclass
class OutcomeSet:
    """The outcome records of one path (file, directory or S3 prefix), deduplicated by id (last wins)."""

    where: str
    records: list[dict[str, Any]]
    tiers: dict[Tier, str]  # the records' meta.tiers, tiers with a model only, cheapest first
    duplicates: int = 0  # records replaced by a later one with the same id
    files: int = 1  # files or objects read
    samplers: Counter[str] = field(default_factory=Counter)

    @property
    def notes(self) -> list[str]:
        """Every distinct meta.notes entry (replayed runs say which recorded models stand in for Claude)."""
        seen: dict[str, None] = {}
        for record in self.records:
            for note in record["meta"].get("notes") or []:
                seen.setdefault(note, None)
        return list(seen)


def is_s3(path: str | Path) -> bool:
    return str(path).startswith("s3://")


def is_outcome_dataset(path: str | Path) -> bool:
    """Outcome records: an ``s3://`` prefix, a directory, or a file whose first record's source is "shadow".
    A file that cannot be read or parsed is not (the shared-format check reports its problem)."""
    if is_s3(path) or Path(path).is_dir():
        return True
    try:
        with _open_text(Path(path)) as fh:
            for line in fh:
                if line.strip():
                    first = strict_json.loads(line)
                    return isinstance(first, dict) and first.get("source") == OUTCOME_SOURCE
    except (OSError, EOFError, UnicodeDecodeError, zlib.error, strict_json.JSONTextError):
        return False
    return False


def sample_weight(record: dict[str, Any]) -> float:
    """1 / meta.sample_probability: how many routed requests this record stands for."""
    return 1.0 / float(record["meta"]["sample_probability"])


def record_features(record: dict[str, Any]) -> dict[int, float] | None:
    """meta.features.hashed with int buckets (what ``TierModel.predict_route_features`` takes), else None."""
    hashed = (record["meta"].get("features") or {}).get("hashed")
    if not isinstance(hashed, dict):
        return None
    return {int(bucket): float(value) for bucket, value in hashed.items()}


def record_signals(record: dict[str, Any]) -> dict[str, Any] | None:
    """meta.features.signals (the classifier's features of the request), else None."""
    signals = (record["meta"].get("features") or {}).get("signals")
    return signals if isinstance(signals, dict) and signals else None


def record_tiers(record: dict[str, Any]) -> dict[Tier, str]:
    """The record's tier map, {tier: model id} for the tiers it names a model for, cheapest first."""
    named = {DATA_TIER_NAMES[name]: model for name, model in record["meta"]["tiers"].items()
             if name in DATA_TIER_NAMES and model}
    return {tier: named[tier] for tier in TIER_ORDER if tier in named}


def load_outcomes(path: str | Path, *, s3_client: Any = None) -> OutcomeSet:
    """Every outcome record under ``path`` (a file, a directory or ``s3://bucket/prefix/``), checked, with
    duplicate ids resolved (the last one read wins). Raises DatasetError on the first problem, naming the
    file or object and the record; an S3 call that fails raises ``cli.aws.AwsError`` (one line)."""
    where = str(path)
    parsed: list[tuple[str, int, dict[str, Any]]] = []
    files = 0
    for name, text in _sources(where, s3_client):
        files += 1
        parsed.extend((name, number, record) for number, record in _parse(text, name))
    if not parsed:
        what = "objects" if is_s3(where) else "files" if Path(where).is_dir() else "records"
        raise DatasetError(f"{where}: no outcome records in its {what}" if what != "records"
                           else f"{where}: no records")
    by_id: dict[str, dict[str, Any]] = {}
    first: tuple[str, int, dict[Tier, str]] | None = None
    samplers: Counter[str] = Counter()
    for name, number, record in parsed:
        problem = record_problem(record)
        if problem:
            raise DatasetError(f"{name}: record {number}: {problem}")
        tiers = record_tiers(record)
        if first is None:
            first = (name, number, tiers)
        elif tiers != first[2]:
            raise DatasetError(
                f"{name}: record {number}: meta.tiers {_shown(tiers)} differ from {first[0]}: record {first[1]}'s "
                f"{_shown(first[2])}: evaluate one tier map at a time")
        by_id.pop(record["id"], None)  # last wins, at its own place in the order
        by_id[record["id"]] = record
    assert first is not None
    records = list(by_id.values())
    samplers.update(r["meta"]["sampler"] for r in records)
    return OutcomeSet(where, records, first[2], duplicates=len(parsed) - len(records), files=files,
                      samplers=samplers)


def _shown(tiers: dict[Tier, str]) -> str:
    return "{" + ", ".join(f"{t.value}: {m}" for t, m in tiers.items()) + "}"


# -- where the records come from -------------------------------------------------------------------------------


def _open_text(path: Path) -> Any:
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else path.open(encoding="utf-8")


def _sources(where: str, s3_client: Any) -> Iterator[tuple[str, str]]:
    """(name, text) of every file or object to read."""
    if is_s3(where):
        yield from _s3_sources(where, s3_client)
        return
    path = Path(where)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES))
        if not files:
            raise DatasetError(f"{where}: is a directory without *.jsonl or *.jsonl.gz files (a directory is read "
                               "as outcome records, e.g. an aws s3 sync of the outcomes prefix)")
        for file in files:
            yield str(file), _text(str(file), _read_file(file))
        return
    if not path.is_file():
        raise DatasetError(f"{where}: no such file")
    yield where, _text(where, _read_file(path))


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def _text(name: str, body: bytes) -> str:
    if name.endswith(".gz"):
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError, zlib.error) as exc:
            raise DatasetError(f"{name}: cannot be read (not gzip data: {exc})") from None
    try:
        return strict_json.decode(body)
    except strict_json.JSONTextError:
        hint = " (gzip data without a .gz name?)" if not name.endswith(".gz") else ""
        raise DatasetError(f"{name}: not UTF-8 text{hint}") from None


def _parse(text: str, name: str) -> Iterator[tuple[int, Any]]:
    """(record number, value) of each non-blank line; the number counts records, as check_dataset does."""
    number = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        number += 1
        try:
            yield number, strict_json.loads(line)
        except strict_json.JSONTextError as exc:
            raise DatasetError(f"{name}: record {number}: not valid JSON ({exc})") from None


def split_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, prefix) of ``s3://bucket/prefix``; DatasetError when there is no bucket."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    if not bucket:
        raise DatasetError(f"{uri}: an S3 location looks like s3://bucket/prefix/")
    return bucket, prefix


def _s3_sources(uri: str, s3_client: Any) -> Iterator[tuple[str, str]]:
    # The command line's handling of AWS failures: one line that says what to check (cli/aws.py).
    from model_router_tools.cli.aws import AwsError, one_line_errors

    bucket, prefix = split_s3_uri(uri)
    try:
        with one_line_errors():
            client = s3_client or _s3_client()
            keys = _record_keys(uri, _s3_keys(client, bucket, prefix))
            bodies = _s3_fetch(client, bucket, keys)
    except AwsError as exc:
        raise AwsError(f"{uri}: {exc}", usage=exc.usage) from exc
    for key, body in zip(keys, bodies, strict=True):
        name = f"s3://{bucket}/{key}"
        yield name, _text(name, body)


def _s3_keys(client: Any, bucket: str, prefix: str, delimiter: str | None = None) -> list[str]:
    """Every key under ``prefix`` (every page; with ``delimiter`` "/", those directly under it only)."""
    extra = {"Delimiter": delimiter} if delimiter else {}
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": S3_PAGE_SIZE}, **extra)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def _record_keys(uri: str, keys: list[str]) -> list[str]:
    records = [key for key in keys if key.endswith(SUFFIXES)]
    if not records:
        raise DatasetError(f"{uri}: no .jsonl or .jsonl.gz objects under this prefix")
    return records


def _s3_fetch(client: Any, bucket: str, keys: list[str]) -> list[bytes]:
    def fetch(key: str) -> bytes:
        body: bytes = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    with ThreadPoolExecutor(max_workers=S3_READERS) as pool:
        return list(pool.map(fetch, keys))


def _first_source(name: str, body: bytes) -> str | None:
    """The ``source`` of the first record in an object's bytes; None when it cannot be read."""
    try:
        text = gzip.decompress(body) if name.endswith(".gz") else body
        for line in strict_json.decode(text).splitlines():
            if line.strip():
                first = strict_json.loads(line)
                return str(first.get("source")) if isinstance(first, dict) else None
    except (OSError, EOFError, zlib.error, strict_json.JSONTextError):
        return None
    return None


def s3_shared_datasets(uri: str, into: Path, *, s3_client: Any = None) -> list[tuple[str, Path]] | None:
    """Shared-format records under ``s3://bucket/prefix``, copied into the folder ``into``: (the object's
    s3:// name, its local copy) per ``.jsonl`` / ``.jsonl.gz`` object, each with the ``*.models.json`` objects
    under the prefix, and beside it when the prefix names objects rather than a folder, copied next to it
    (their keys' paths below the prefix's folder are kept). None when the first object's first record is an
    outcome record (source "shadow") or cannot be read: :func:`load_outcomes` reads and checks those.
    DatasetError for a prefix without record objects; a failed S3 call raises ``cli.aws.AwsError`` (one line)."""
    from model_router_tools.cli.aws import AwsError, one_line_errors

    bucket, prefix = split_s3_uri(uri)
    folder = prefix[: prefix.rfind("/") + 1]
    try:
        with one_line_errors():
            client = s3_client or _s3_client()
            keys = _s3_keys(client, bucket, prefix)
            records = _record_keys(uri, keys)
            first = _s3_fetch(client, bucket, records[:1])[0]
            if _first_source(records[0], first) in (OUTCOME_SOURCE, None):
                return None
            models = [key for key in keys if key.endswith(MODELS_SUFFIX)]
            if folder != prefix:
                models += [key for key in _s3_keys(client, bucket, folder, delimiter="/")
                           if key.endswith(MODELS_SUFFIX) and key not in models]
            rest = records[1:] + models
            bodies = [first, *_s3_fetch(client, bucket, rest)]
    except AwsError as exc:
        raise AwsError(f"{uri}: {exc}", usage=exc.usage) from exc
    copied: list[tuple[str, Path]] = []
    for key, body in zip([records[0], *rest], bodies, strict=True):
        parts = key[len(folder):].split("/")
        if any(part in ("", ".", "..") for part in parts):  # it would land outside ``into``, or nowhere
            raise DatasetError(f"s3://{bucket}/{key}: a key with an empty, '.' or '..' path segment cannot be "
                               "copied to a local file")
        local = into.joinpath(*parts)
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(body)
        if key in records:
            copied.append((f"s3://{bucket}/{key}", local))
    return copied


def _s3_client() -> Any:
    """An S3 client of its own session (boto3's default session keeps the credentials it found first)."""
    import boto3

    return boto3.session.Session().client("s3")


# -- what a record must hold -----------------------------------------------------------------------------------


def record_problem(record: Any) -> str | None:
    """What makes ``record`` unusable as an outcome record (field and problem), else None."""
    # Here, not at import: the command line's parser imports this module, and jsonschema is a command's library.
    from jsonschema.exceptions import best_match

    from model_router.contracts.request import validator

    if not isinstance(record, dict):
        return "not a JSON object"
    if record.get("source") != OUTCOME_SOURCE:
        return (f"source {record.get('source')!r}: not an outcome record (source \"shadow\"); a directory or "
                "s3:// prefix holds outcome records only")
    error = best_match(validator("outcome").iter_errors(record))
    if error is not None:
        return _schema_problem(error)
    meta = record["meta"]
    tiers = record_tiers(record)
    for needed in ("economy", "premium"):
        if not meta["tiers"].get(needed):
            return f"meta.tiers.{needed}: missing (a model id)"
    for tier, model in tiers.items():
        outcome = record["outcomes"].get(model)
        if outcome is None:
            return f"outcomes: no entry for {model!r} (meta.tiers' {tier.value} model)"
        if outcome["tier"] != tier.value:
            return f"outcomes[{model!r}].tier: {outcome['tier']!r}, but meta.tiers names it the {tier.value} model"
    route = meta["route"]
    for name in ("start_tier", "tier"):
        if route.get(name) not in [t.value for t in tiers]:
            return f"meta.route.{name}: {route.get(name)!r} is not one of the record's tiers ({', '.join(tiers)})"
    for name in ("cost_usd", "premium_cost_usd"):  # the routed spend (required), always-premium's (optional)
        value = route.get(name)
        if (name == "cost_usd" or value is not None) and (
                isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
            return f"meta.route.{name}: not a number of USD, 0 or more"
    attempts = route.get("attempts", 1)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        return "meta.route.attempts: not a whole number, 1 or more"
    return _features_problem(meta.get("features"))


def _features_problem(features: Any) -> str | None:
    if features is None:
        return None
    hashed = features.get("hashed")
    if hashed is not None:
        if not isinstance(hashed, dict):
            return "meta.features.hashed: not an object {bucket: value}"
        for bucket, value in hashed.items():
            if not bucket.isdigit() or isinstance(value, bool) or not isinstance(value, int | float):
                return f"meta.features.hashed[{bucket!r}]: not a bucket number with a numeric value"
    signals = features.get("signals")
    if signals is not None and not isinstance(signals, dict):
        return "meta.features.signals: not an object"
    return None


def _schema_problem(error: Any) -> str:
    path = list(error.absolute_path)
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else ""
        return f"{field_path([*path, missing]) if missing else field_path(path)}: missing (required)"
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        if extra:
            return f"{field_path([*path, extra[0]])}: unknown field (not in the outcome record schema)"
    message = " ".join(str(error.message).split())
    if len(message) > 160:
        message = message[:157] + "..."
    return f"{field_path(path) if path else '(record)'}: {message}"
