"""Router model artifacts in S3: read on first use, checked against the SHA-256 their URI pins, kept per URI
for the container's life; and the champion pointer, an SSM parameter re-read every few minutes.

Whatever goes wrong is an :class:`ArtifactError` with a short reason (``unreachable``, ``checksum-mismatch``,
``corrupt``, ``too-large``, ``pointer-unreadable``, ``bad-pointer``), logged once as a warning that says why
(no traceback), never a failed request: :mod:`model_router.routing.arms` then serves the bundled model and
the classification says so. A failed artifact is tried again after :data:`RETRY_AFTER_S`, not on every
request; a pointer that cannot be re-read keeps its last value.

The two AWS calls (GetObject, GetParameter) are signed requests on botocore's signer and HTTP session, not
botocore clients (:mod:`model_router.routing.signed_http` says why), made only when an artifact or a pointer is
read, with short timeouts (a cold start waits seconds at worst, inside the classifier's 30 s).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger

from model_router.observability import SERVICE
from model_router.routing.learned import TierModel, load_tier_model, read_tier_model
from model_router.routing.model_uri import BUNDLED, ModelUri, parse_model_uri

# A child of the function's Powertools logger: the warnings are structured JSON like the rest.
logger = Logger(service=SERVICE, child=True)

BUNDLED_ID = "router_model"  # the bundled file's name, data/router_model.json.gz
RETRY_AFTER_S = 300.0  # a failed artifact is fetched again on the first request after this
POINTER_TTL_S = 300.0  # how long a champion pointer read from SSM is used before it is read again
MAX_MODEL_BYTES = 64 * 1024 * 1024  # the bundled model is ~1 MB; a far bigger object is not a router model
# A loaded model takes ~45 MB: the store keeps the champion's and the challenger's, and drops the least recently
# used when the pointer names a third (after a promote or a rollback), so memory stays bounded.
MAX_MODELS = 2


@dataclass(frozen=True)
class RouterModel:
    """A learned-router model and where it came from. ``version``: the first 12 hex digits of its pinned
    SHA-256, or ``bundled``; ``source``: ``s3`` or ``bundled``; ``model`` None only when no bundled file
    ships (the learned router then routes by the heuristic)."""

    model: TierModel | None
    id: str
    version: str
    source: str


@lru_cache(maxsize=1)
def bundled_model() -> RouterModel:
    return RouterModel(load_tier_model(), BUNDLED_ID, BUNDLED, BUNDLED)


class ArtifactError(Exception):
    """An artifact or pointer that cannot be used: ``reason`` (a short code) and ``detail`` (why, one line)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = " ".join(detail.split())[:300]


@lru_cache(maxsize=1)
def _session() -> Any:
    import botocore.session

    return botocore.session.get_session()


def _client(service: str) -> Any:
    """GetObject or GetParameter on the store's one botocore session, as signed requests without a botocore
    client (building the two clients was most of what an S3 model added to a cold start: signed_http.py)."""
    from model_router.routing.signed_http import LightS3, LightSsm

    return LightS3(_session()) if service == "s3" else LightSsm(_session())


def _aws_problem(operation: str, exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error") or {}
        return f"{operation}: {error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")
    return f"{operation}: {type(exc).__name__}: {exc}"


def read_artifact(uri: ModelUri, s3: Any) -> RouterModel:
    """The model at ``uri``, read with the S3 client ``s3`` and checked against its pin (no cache, no log: the
    store's, and ``model-router promote``'s); ArtifactError saying why it cannot be used."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = s3.get_object(Bucket=uri.bucket, Key=uri.key)
        size = int(response.get("ContentLength") or 0)
        if size > MAX_MODEL_BYTES:
            response["Body"].close()
            raise ArtifactError("too-large", f"{size} bytes, more than {MAX_MODEL_BYTES}: not a router model")
        body: bytes = response["Body"].read()
    except (ClientError, BotoCoreError) as exc:
        raise ArtifactError("unreachable", _aws_problem("GetObject", exc)) from None
    digest = hashlib.sha256(body).hexdigest()
    if digest != uri.sha256:
        raise ArtifactError("checksum-mismatch", f"the object's SHA-256 is {digest}, the URI pins {uri.sha256}")
    try:
        model = read_tier_model(body, gzipped=uri.gzipped)
    except ValueError as exc:
        raise ArtifactError("corrupt", f"the pinned object is not a router model: {exc}") from None
    return RouterModel(model, uri.name, uri.version, "s3")


class ModelStore:
    """One per container: the S3 and SSM clients (made on first need), the models read so far by URI, the
    failures by URI (until they may be retried) and the champion pointers by parameter name."""

    def __init__(self, *, s3: Any = None, ssm: Any = None, clock: Callable[[], float] = time.monotonic):
        self._s3, self._ssm, self._clock = s3, ssm, clock
        self._models: OrderedDict[str, RouterModel] = OrderedDict()
        self._failures: dict[str, tuple[float, ArtifactError]] = {}
        self._pointers: dict[str, tuple[float, str | None, ArtifactError | None]] = {}
        self._bad_pointers: set[str] = set()
        self._lock = threading.Lock()

    def model(self, uri: ModelUri, arm: str) -> RouterModel:
        """The model at ``uri`` (read once); ArtifactError when it cannot be used (read again only after
        RETRY_AFTER_S). ``arm`` names the caller in the log lines."""
        key = str(uri)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            failed = self._failures.get(key)
            if failed is not None and self._clock() - failed[0] < RETRY_AFTER_S:
                raise failed[1]
            started = time.perf_counter()
            try:
                found = self._read(uri)
            except ArtifactError as exc:
                self._failures[key] = (self._clock(), exc)
                logger.warning("router model artifact not used: the bundled model serves instead",
                               extra={"arm": arm, "uri": key, "reason": exc.reason, "detail": exc.detail,
                                      "retry_after_s": RETRY_AFTER_S})
                raise
            self._failures.pop(key, None)
            self._models[key] = found
            while len(self._models) > MAX_MODELS:
                self._models.popitem(last=False)
        logger.info("router model loaded", extra={"arm": arm, "uri": key, "model_id": found.id,
                                                  "model_version": found.version,
                                                  "load_ms": round((time.perf_counter() - started) * 1000, 1)})
        return found

    def _read(self, uri: ModelUri) -> RouterModel:
        if self._s3 is None:
            self._s3 = _client("s3")
        return read_artifact(uri, self._s3)

    def pointer(self, name: str) -> str:
        """The SSM parameter ``name``'s value, read at most every POINTER_TTL_S. When a read fails, the last value
        stands (ArtifactError if there is none) until the next read, RETRY_AFTER_S later."""
        with self._lock:
            checked, value, problem = self._pointers.get(name, (None, None, None))
            wait = RETRY_AFTER_S if problem is not None else POINTER_TTL_S
            if checked is not None and self._clock() - checked < wait:
                if value is None:
                    assert problem is not None
                    raise problem
                return value
            try:
                fresh = self._read_pointer(name)
            except ArtifactError as exc:
                logger.warning("champion pointer not read", extra={
                    "parameter": name, "reason": exc.reason, "detail": exc.detail,
                    "serving": value if value is not None else "the bundled model", "retry_after_s": RETRY_AFTER_S})
                self._pointers[name] = (self._clock(), value, exc)
                if value is None:
                    raise
                return value
            self._pointers[name] = (self._clock(), fresh, None)
            return fresh

    def _read_pointer(self, name: str) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            if self._ssm is None:
                self._ssm = _client("ssm")
            value: str = self._ssm.get_parameter(Name=name)["Parameter"]["Value"]
        except (ClientError, BotoCoreError) as exc:
            raise ArtifactError("pointer-unreadable", _aws_problem(f"GetParameter {name}", exc)) from None
        return value.strip()

    def champion(self, source: str | None) -> RouterModel:
        """The champion a source names (None, "" or ``bundled``; an artifact URI; ``ssm:<name>``)."""
        from model_router.routing.model_uri import ssm_name

        if not source or source.strip() == BUNDLED:
            return bundled_model()
        name = ssm_name(source)
        value = self.pointer(name) if name is not None else source
        if value == BUNDLED:
            return bundled_model()
        try:
            uri = parse_model_uri(value)
        except ValueError as exc:
            problem = ArtifactError("bad-pointer", f"{name or 'the champion source'}: {exc}")
            if value not in self._bad_pointers:  # once per value: a pointer is re-read, not re-logged
                self._bad_pointers.add(value)
                logger.warning("champion pointer names no artifact: the bundled model serves instead",
                               extra={"parameter": name, "reason": problem.reason, "detail": problem.detail})
            raise problem from None
        return self.model(uri, "champion")
