"""``model-router serve``: the HTTP API on localhost, over the local engine (replayed answers, no AWS).

The same routes, error mapping, header overrides and body limit as the deployed API, from the same rules
(:mod:`model_router_tools.api.mapping`): POST /v1/generate runs the template's Express router definition,
POST /v1/executions starts the Standard one on a worker thread and answers 202, GET /v1/executions/{id} reads
it back (kept in memory, the last :data:`MAX_EXECUTIONS`). Where the two differ (an unknown route or method is
404 / 405 here, 403 on API Gateway; the body limit counts bytes here, characters there) docs/api.md says so.

Requests run concurrently, one thread each (``ThreadingHTTPServer``): the local engine runs executions from
several threads at once (tests/workflow/test_moto_guard.py) and serialises the handler calls themselves, as one
Lambda container runs one invocation at a time.
"""

from __future__ import annotations

import collections
import json
import re
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

from model_router.contracts import json_text
from model_router_tools.api import mapping

MAX_EXECUTIONS = 1000
_EXECUTION_PATH = re.compile(r"^/v1/executions/([A-Za-z0-9_-]{1,80})$")
_JSON_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean",
               type(None): "null"}


@dataclass
class Response:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def retry_after(status: int) -> dict[str, str]:
    """The Retry-After header the API sends with ``status`` (mapping.RETRY_AFTER_SECONDS), if any."""
    seconds = mapping.RETRY_AFTER_SECONDS.get(status)
    return {"Retry-After": str(seconds)} if seconds is not None else {}


def error_response(status: int, error: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(status, {"error": error, "message": message}, {**retry_after(status), **(headers or {})})


class TokenBucket:
    """API Gateway's stage throttling: ``rate`` requests per second, bursts of up to ``burst``."""

    def __init__(self, rate: float, burst: int, clock: Any = time.monotonic):
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens, self.stamp = float(burst), clock()
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            now = self.clock()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens < 1:
                return False
            self.tokens -= 1
            return True


class RouterApi:
    """The API's logic, apart from the socket: ``handle(method, path, headers, read_body) -> Response``."""

    def __init__(self, *, env_overrides: dict[str, str] | None = None,
                 max_request_bytes: int = mapping.DEFAULT_MAX_REQUEST_BYTES,
                 throttle_rate: float = mapping.DEFAULT_THROTTLE_RATE,
                 throttle_burst: int = mapping.DEFAULT_THROTTLE_BURST, workers: int = 4):
        from model_router_tools.local.engine import LocalEngine  # moto: a second or more to import

        self.express = LocalEngine(state_machine="ExpressRouterStateMachine", workflow_type="EXPRESS",
                                   env_overrides=env_overrides)
        self.standard = LocalEngine(state_machine="RouterStateMachine", env_overrides=env_overrides)
        self.max_request_bytes = max_request_bytes
        self.throttle = TokenBucket(throttle_rate, throttle_burst)
        self.executions: collections.OrderedDict[str, dict[str, Any]] = collections.OrderedDict()
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="standard-router")

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    # -- routing ---------------------------------------------------------------------------------------
    def handle(self, method: str, path: str, headers: Any, read_body: Any) -> Response:
        path = path.split("?", 1)[0]
        execution = _EXECUTION_PATH.match(path)
        route = mapping.EXECUTION if execution else path
        allowed = mapping.ROUTES.get(route)
        if allowed is None:
            return error_response(404, mapping.NOT_FOUND, f"no route {path}; the routes are "
                                  f"{', '.join(f'{m} {r}' for r, ms in mapping.ROUTES.items() for m in ms)}")
        if method not in allowed:
            return error_response(405, mapping.METHOD_NOT_ALLOWED, f"{method} {route}: allowed {', '.join(allowed)}",
                                  {"Allow": ", ".join(allowed)})
        if not self.throttle.take():
            return error_response(429, mapping.THROTTLED, "too many requests: over the throttle rate or burst")
        if execution:
            return self.describe(execution.group(1))
        request = self._request(headers, read_body)
        if isinstance(request, Response):
            return request
        return self.generate(request) if route == mapping.GENERATE else self.start(request)

    def _request(self, headers: Any, read_body: Any) -> dict[str, Any] | Response:
        """The request the router runs, or the response that refuses the body before any execution starts."""
        if headers.get("Transfer-Encoding"):
            return error_response(411, "Http.LengthRequired", "send the body with a Content-Length")
        try:
            length = int(headers.get("Content-Length") or 0)
        except ValueError:
            return error_response(400, mapping.INVALID_BODY, "Content-Length: not a number")
        if length > self.max_request_bytes:
            return error_response(413, mapping.PAYLOAD_TOO_LARGE,
                                  f"the request body is {length} bytes, over the {self.max_request_bytes}-byte limit")
        try:
            body = json_text.loads(read_body(length))
        except json_text.JSONTextError as exc:
            return error_response(400, mapping.INVALID_BODY, f"body: not a JSON request: {exc}")
        if not isinstance(body, dict):
            kind = _JSON_KINDS.get(type(body), "not an object")
            return error_response(400, mapping.INVALID_BODY, f'body: the request is {kind}, not a JSON object such '
                                                             f'as {{"prompt": "..."}}')
        request: dict[str, Any] = mapping.apply_header_overrides(body, headers)
        return request

    # -- the three operations ----------------------------------------------------------------------------
    def generate(self, request: dict[str, Any]) -> Response:
        result = self.express.run(request, name=uuid.uuid4().hex)
        if result.status == "SUCCEEDED":
            return Response(200, result.output)
        return self._failed(result.error, result.cause)

    @staticmethod
    def _failed(error: str | None, cause: str | None) -> Response:
        status = mapping.status_for(error)
        return Response(status, mapping.error_body(error or "Execution.FAILED", cause), retry_after(status))

    def start(self, request: dict[str, Any]) -> Response:
        execution_id = str(uuid.uuid4())
        with self.lock:
            self.executions[execution_id] = {"execution_id": execution_id, "status": "RUNNING"}
            while len(self.executions) > MAX_EXECUTIONS:
                self.executions.popitem(last=False)
        self.pool.submit(self._run_standard, execution_id, request)
        return Response(202, {"execution_id": execution_id, "status": "RUNNING"},
                        {"Location": f"{mapping.EXECUTIONS}/{execution_id}"})

    def _run_standard(self, execution_id: str, request: dict[str, Any]) -> None:
        try:
            result = self.standard.run(request, name=execution_id)
            record: dict[str, Any] = {"execution_id": execution_id, "status": result.status}
            if result.status == "SUCCEEDED":
                record["result"] = result.output
            else:
                record.update(mapping.error_body(result.error or "Execution.FAILED", result.cause))
        except Exception as exc:  # a bug in the local run: the execution says so rather than stay RUNNING
            record = {"execution_id": execution_id, "status": "FAILED",
                      **mapping.error_body("Http.InternalError", f"{type(exc).__name__}: {exc}")}
        with self.lock:
            if execution_id in self.executions:
                self.executions[execution_id] = record

    def describe(self, execution_id: str) -> Response:
        with self.lock:
            record = self.executions.get(execution_id)
        if record is None:
            return error_response(404, mapping.NOT_FOUND, f"no execution {execution_id} (this server keeps the last "
                                                          f"{MAX_EXECUTIONS} it started)")
        return Response(200, dict(record))

    def wait(self, execution_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """The execution once it has ended (for tests and the benchmark)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                record = dict(self.executions.get(execution_id) or {})
            if record.get("status") != "RUNNING":
                return record
            time.sleep(0.01)
        raise TimeoutError(execution_id)


class _Handler(BaseHTTPRequestHandler):
    api: ClassVar[RouterApi]
    quiet: ClassVar[bool] = False
    protocol_version = "HTTP/1.1"
    server_version = "model-router-serve"

    def _serve(self) -> None:
        consumed = False

        def read_body(length: int) -> bytes:
            nonlocal consumed
            consumed = True
            return self.rfile.read(length) if length else b""

        try:
            response = self.api.handle(self.command, self.path, self.headers, read_body)
        except Exception as exc:  # never a traceback to the caller
            response = error_response(500, "Http.InternalError", f"{type(exc).__name__}: {exc}")
        payload = json.dumps(response.body).encode()
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        has_body = self.command in ("POST", "PUT", "PATCH") and self.headers.get("Content-Length") not in (None, "0")
        if has_body and not consumed:
            # The body was refused unread (over the limit, wrong route): the connection cannot be reused.
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:
        if not self.quiet:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")


def make_server(api: RouterApi, host: str, port: int, *, quiet: bool = False) -> ThreadingHTTPServer:
    handler = type("Handler", (_Handler,), {"api": api, "quiet": quiet})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def status_phrase(status: int) -> str:
    return HTTPStatus(status).phrase
