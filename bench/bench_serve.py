"""``model-router serve``: requests per second and latency of POST /v1/generate over real HTTP, replay answers.

Starts the server in this process on a free port (the same RouterApi and ThreadingHTTPServer the command runs,
throttling out of the way), warms it up, then sends recorded real prompts from C client threads, each on its own
connection per request, and prints throughput and p50/p95 for each C. On 2 cores the engine's handler calls
run one at a time (one Lambda container each; see local/engine.py), so more client threads mostly add queueing.

    python bench/bench_serve.py [--n 200] [--clients 1,4,8]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import report

from model_router_tools.api.server import RouterApi, make_server
from model_router_tools.demo import replayable
from model_router_tools.replay.datasets import read_records, sample_path


def post(port: int, body: bytes) -> tuple[int, float]:
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request("POST", "/v1/generate", body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        response.read()
        return response.status, (time.perf_counter() - started) * 1000
    finally:
        connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="requests per concurrency level")
    parser.add_argument("--clients", default="1,4,8", help="client threads, comma-separated")
    args = parser.parse_args()

    prompts = [r["prompt"] for r in replayable(list(read_records(sample_path())))]
    bodies = [json.dumps({"prompt": p}).encode() for p in prompts]
    api = RouterApi(throttle_rate=1e9, throttle_burst=10**9)
    server = make_server(api, "127.0.0.1", 0, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = int(server.server_address[1])
    print(f"bench_serve: POST /v1/generate over HTTP, replay provider, {os.cpu_count()} cores, "
          f"{len(bodies)} recorded prompts (replayed answers stand in for the Claude tiers)")
    for body in bodies[:10]:  # warm-up: handler modules, the router model, the replay index
        post(port, body)
    try:
        for clients in (int(c) for c in args.clients.split(",")):
            with ThreadPoolExecutor(max_workers=clients) as pool:
                started = time.perf_counter()
                replies = list(pool.map(lambda i: post(port, bodies[i % len(bodies)]), range(args.n)))
                elapsed = time.perf_counter() - started
            failed = sum(1 for status, _ in replies if status != 200)
            if failed:
                print(f"bench_serve: {failed} of {args.n} requests did not answer 200", file=sys.stderr)
                return 1
            print(f"serve_c{clients}_rps: {args.n / elapsed:.1f} requests/s")
            report(f"serve_c{clients}_latency", [ms for _, ms in replies], "ms")
    finally:
        server.shutdown()
        server.server_close()
        api.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
