"""``model-router serve``: the HTTP API on localhost, called with a real HTTP client (http.client) over a real
socket, the real ASL on the local engine behind it. The error mapping, the header overrides, concurrent
requests, the body limit, the executions resource; each flag through the command line, in a process of its own,
which Ctrl-C stops cleanly."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from model_router_tools.api import mapping
from model_router_tools.api.server import RouterApi, TokenBucket, make_server

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")
# The path tests' pins (tests/conftest.py's PATH_TEST_ENV: heuristic router, fixed threshold, three replayed
# tiers), so these routes do not move when the learned weights or the operating point are retrained.
PATH_TEST_ENV = {"DEFAULT_STRATEGY": "heuristic", "REPLAY_BORROWED_TIERS": "1", "CONFIDENCE_THRESHOLD": "0.8"}


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


def call(port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
         raw: bytes | None = None) -> Reply:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        connection.request(method, path, body=payload, headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        data = response.read()
        return Reply(response.status, dict(response.getheaders()), json.loads(data) if data else None)
    finally:
        connection.close()


@pytest.fixture(scope="module")
def api() -> Iterator[RouterApi]:
    router_api = RouterApi(env_overrides=PATH_TEST_ENV, throttle_rate=10_000, throttle_burst=10_000)
    yield router_api
    router_api.close()


@pytest.fixture(scope="module")
def port(api: RouterApi) -> Iterator[int]:
    server = make_server(api, "127.0.0.1", 0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def prompts(answered_records: list[dict[str, Any]]) -> list[str]:
    return [r["prompt"] for r in answered_records]


# -- the routes and the error mapping ------------------------------------------------------------------------


def test_generate_answers_the_result_of_the_real_workflow(port: int, prompts: list[str]) -> None:
    reply = call(port, "POST", "/v1/generate", {"prompt": prompts[0], "request_id": "r-1"})
    assert reply.status == 200 and reply.headers["Content-Type"] == "application/json"
    assert reply.body["request_id"] == "r-1" and reply.body["status"].startswith("answered")
    assert reply.body["attempts"] and reply.body["cost"]["total_usd"] > 0


def test_an_invalid_request_is_a_400_naming_the_field_and_never_reaches_a_model(api: RouterApi, port: int) -> None:
    before = dict(api.express.invocations)
    reply = call(port, "POST", "/v1/generate", {"prompt": "hi", "routing": {"confidence_threshold": 2}})
    assert reply.status == 400
    assert reply.body == {"error": "Router.InvalidRequest",
                          "message": "routing.confidence_threshold: 2 is greater than the maximum of 1"}
    called = {k: v - before.get(k, 0) for k, v in api.express.invocations.items() if v != before.get(k, 0)}
    assert called == {"ClassifierFunction": 1}


@pytest.mark.parametrize(("raw", "message"), [
    (b"not json", "body: not a JSON request"), (b"", "body: not a JSON request"),
    (b'["prompt"]', "body: the request is an array"), (b'{"prompt": "a", "prompt": "b"}', "duplicate key"),
    (b"\xff\xfe", "body: not a JSON request"),
])
def test_a_body_that_is_not_a_json_object_is_a_400_before_any_execution(api: RouterApi, port: int, raw: bytes,
                                                                        message: str) -> None:
    before = dict(api.express.invocations)
    reply = call(port, "POST", "/v1/generate", raw=raw)
    assert reply.status == 400 and reply.body["error"] == "Router.InvalidRequest"
    assert message in reply.body["message"]
    assert api.express.invocations == before


def test_a_body_over_the_limit_is_a_413_and_the_connection_closes(api: RouterApi, port: int) -> None:
    body = json.dumps({"prompt": "x" * mapping.DEFAULT_MAX_REQUEST_BYTES}).encode()
    reply = call(port, "POST", "/v1/generate", raw=body)
    assert reply.status == 413 and reply.body["error"] == mapping.PAYLOAD_TOO_LARGE
    assert f"over the {mapping.DEFAULT_MAX_REQUEST_BYTES}-byte limit" in reply.body["message"]
    assert reply.headers.get("Connection") == "close"  # the body was never read


def test_unknown_paths_are_404_and_wrong_methods_405(port: int) -> None:
    assert call(port, "GET", "/v2/generate").status == 404
    assert call(port, "POST", "/").body["error"] == mapping.NOT_FOUND
    wrong = call(port, "GET", "/v1/generate")
    assert (wrong.status, wrong.headers["Allow"], wrong.body["error"]) == (405, "POST", mapping.METHOD_NOT_ALLOWED)
    assert call(port, "DELETE", "/v1/executions/abc").status == 405
    assert call(port, "GET", "/v1/executions/..%2Fx").status == 404


@pytest.mark.parametrize(("faults", "status", "error"), [
    ("throttle=1", 503, "Router.AllModelsFailed"),
    ("validation=1", 422, "Router.ModelRequestRejected"),
])
def test_failed_executions_map_to_their_status(prompts: list[str], faults: str, status: int, error: str) -> None:
    api = RouterApi(env_overrides={**PATH_TEST_ENV, "FAULT_INJECTION": faults})
    server = make_server(api, "127.0.0.1", 0, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        reply = call(int(server.server_address[1]), "POST", "/v1/generate", {"prompt": prompts[0]})
    finally:
        server.shutdown()
        server.server_close()
        api.close()
    assert reply.status == status and reply.body["error"] == error
    assert reply.body["message"] and isinstance(reply.body["detail"]["attempts"], list)
    if status == 503:
        assert reply.headers["Retry-After"] == str(mapping.RETRY_AFTER_SECONDS[503])
    else:
        assert "Retry-After" not in reply.headers


def test_the_header_overrides_route_as_the_body_fields_would(port: int, prompts: list[str]) -> None:
    forced = call(port, "POST", "/v1/generate", {"prompt": prompts[1], "tier": "opus"}, {"X-Model-Tier": "haiku"})
    assert forced.status == 200 and forced.body["attempts"][0]["tier"] == "haiku"
    capped = call(port, "POST", "/v1/generate", {"prompt": prompts[1], "tier": "haiku"},
                  {"X-Max-Tier": "haiku", "X-Max-Cost-USD": "5"})
    assert capped.status == 200 and {a["tier"] for a in capped.body["attempts"]} == {"haiku"}
    bad = call(port, "POST", "/v1/generate", {"prompt": prompts[1]}, {"X-Max-Cost-USD": "cheap"})
    assert bad.status == 400 and bad.body["message"].startswith("routing.max_cost_usd")


def test_concurrent_requests_each_get_their_own_answer(port: int, prompts: list[str]) -> None:
    jobs = [(f"c-{i}", prompt) for i, prompt in enumerate(prompts[:12])]

    def run(job: tuple[str, str]) -> tuple[str, Reply]:
        return job[0], call(port, "POST", "/v1/generate", {"prompt": job[1], "request_id": job[0]})

    with ThreadPoolExecutor(max_workers=6) as pool:
        replies = list(pool.map(run, jobs))
    for request_id, reply in replies:
        assert reply.status == 200 and reply.body["request_id"] == request_id
    alone = call(port, "POST", "/v1/generate", {"prompt": prompts[3], "request_id": "c-3"}).body
    together = dict(replies)["c-3"].body
    assert (alone["tier"], alone["answer"], alone["confidence"]) == \
        (together["tier"], together["answer"], together["confidence"])


def test_executions_start_with_202_and_read_back_their_result(api: RouterApi, port: int, prompts: list[str]) -> None:
    started = call(port, "POST", "/v1/executions", {"prompt": prompts[2], "request_id": "e-1"})
    assert started.status == 202 and started.body["status"] == "RUNNING"
    execution_id = started.body["execution_id"]
    assert started.headers["Location"] == f"/v1/executions/{execution_id}"
    api.wait(execution_id)
    read = call(port, "GET", f"/v1/executions/{execution_id}")
    assert read.status == 200 and read.body["status"] == "SUCCEEDED"
    assert read.body["result"]["request_id"] == "e-1"
    failed = call(port, "POST", "/v1/executions", {"prompt": "hi", "tier": "gpt"})
    api.wait(failed.body["execution_id"])
    read = call(port, "GET", f"/v1/executions/{failed.body['execution_id']}")
    assert (read.body["status"], read.body["error"]) == ("FAILED", "Router.InvalidRequest")
    assert read.body["message"].startswith("tier:")
    missing = call(port, "GET", "/v1/executions/no-such-execution")
    assert missing.status == 404 and missing.body["error"] == mapping.NOT_FOUND


def test_the_token_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=2, burst=3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] = 0.5
    assert [bucket.take(), bucket.take()] == [True, False]


# -- the command line, in a process of its own ---------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    process: subprocess.Popen[str]
    host: str
    port: int

    def stop(self) -> tuple[int, str]:
        """Ctrl-C, as a terminal sends it; returns the exit code and everything on stderr."""
        self.process.send_signal(signal.SIGINT)
        _, err = self.process.communicate(timeout=30)
        return self.process.returncode, err


def serve(*flags: str) -> Served:
    env = {**os.environ, "DEFAULT_STRATEGY": "heuristic"}
    process = subprocess.Popen([sys.executable, "-m", "model_router_tools", "serve", *flags], stderr=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, text=True, env=env)
    assert process.stderr is not None
    banner = process.stderr.readline()
    found = re.search(r"http://([^:]+):(\d+)", banner)
    assert found, banner
    return Served(process, found.group(1), int(found.group(2)))


def test_host_port_limits_throttling_and_quiet_take_effect_and_ctrl_c_stops_cleanly(prompts: list[str]) -> None:
    wanted = _free_port()
    served = serve("--host", "127.0.0.1", "--port", str(wanted), "--max-request-bytes", "2048",
                   "--throttle-rate", "0.001", "--throttle-burst", "4", "--quiet")
    try:
        assert (served.host, served.port) == ("127.0.0.1", wanted)
        over = call(wanted, "POST", "/v1/generate", raw=json.dumps({"prompt": "x" * 2100}).encode())
        assert over.status == 413 and "2048-byte limit" in over.body["message"]
        within = call(wanted, "POST", "/v1/generate", {"prompt": prompts[0][:1800]})
        assert within.status != 413
        statuses = [call(wanted, "GET", "/v1/executions/x").status for _ in range(3)]
        throttled = call(wanted, "GET", "/v1/executions/x")
        assert statuses == [404, 404, 429] and throttled.status == 429
        assert throttled.body["error"] == mapping.THROTTLED and throttled.headers["Retry-After"] == "1"
    finally:
        code, err = served.stop()
    assert code == 0, err
    assert "Traceback" not in err and "stopped" in err
    assert '"POST /v1/generate' not in err  # --quiet: no access log


def test_faults_map_to_503_and_the_access_log_shows_each_request(prompts: list[str]) -> None:
    served = serve("--port", "0", "--faults", "throttle=1")
    try:
        assert served.host == "127.0.0.1"  # the default: this machine only
        reply = call(served.port, "POST", "/v1/generate", {"prompt": prompts[0]})
        assert reply.status == 503 and reply.headers["Retry-After"] == "30"
        assert reply.body["error"] == "Router.AllModelsFailed"
    finally:
        code, err = served.stop()
    assert code == 0 and "Traceback" not in err
    assert '"POST /v1/generate HTTP/1.1" 503' in err


def test_bad_flags_are_one_line_usage_errors() -> None:
    for flags, problem in ((["--port", "-1"], "--port"), (["--throttle-rate", "0"], "--throttle-rate"),
                           (["--max-request-bytes", "x"], "--max-request-bytes"), (["--faults", "nope=1"], "--faults")):
        done = subprocess.run([sys.executable, "-m", "model_router_tools", "serve", *flags], capture_output=True,
                              text=True, timeout=60, check=False)
        assert done.returncode == 2 and problem in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_a_port_in_use_is_a_one_line_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "model_router_tools", "serve", "--port", str(port)],
                              capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2 and "cannot listen there" in done.stderr and "Traceback" not in done.stderr
    assert time.monotonic() - started < 120


# -- docs/api.md's curl lines, against a live server -------------------------------------------------------------


def test_the_curl_lines_of_docs_api_run_against_serve(api: RouterApi, port: int) -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    text = (root / "docs" / "api.md").read_text(encoding="utf-8")
    block = text.split("## Locally", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    lines = [line.split("  #", 1)[0].strip() for line in block.splitlines() if re.search(r"\bcurl ", line)]
    assert len(lines) == 4 and block.startswith("model-router serve --port 8080")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}

    def run(line: str) -> str:
        line = line.replace("localhost:8080", f"127.0.0.1:{port}")
        done = subprocess.run(["bash", "-c", line], cwd=root, env=env, capture_output=True, text=True, timeout=120,
                              check=False)
        assert done.returncode == 0 and "Traceback" not in done.stderr, (line, done.stderr)
        return done.stdout

    answered = json.loads(run(lines[0]))
    assert answered["status"].startswith("answered")
    refused = run(lines[1])
    assert refused.startswith("HTTP/1.1 400") and "routing.confidence_threshold" in refused
    started = run(lines[2])
    assert started.startswith("HTTP/1.1 202")
    execution_id = json.loads(started.split("\n\n", 1)[1])["execution_id"]  # text mode: \r\n read as \n
    api.wait(execution_id)
    read = json.loads(run(lines[3].replace("EXECUTION_ID", execution_id)))
    assert read["execution_id"] == execution_id and read["status"] in ("SUCCEEDED", "FAILED")
