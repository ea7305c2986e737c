"""``model-router serve``: the HTTP API on localhost over the local engine (replayed answers, no AWS)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from model_router_tools.api import mapping
from model_router_tools.cli.errors import EXIT_OK, UsageError
from model_router_tools.cli.types import fault_spec, non_negative_int, positive_int, positive_number

DESCRIPTION = """\
The deployed HTTP API's routes on localhost, for front-end work without AWS (docs/api.md):
  POST /v1/generate          the Express router, synchronously: the result, or the error with its HTTP status
  POST /v1/executions        the Standard router, started: 202 and the execution id
  GET  /v1/executions/{id}   its status, and its result or error
Same error mapping, X-Model-Tier / X-Max-Tier / X-Max-Cost-USD headers, body limit and throttling as the API.
Answers replay recorded real model outputs: recorded prompts answer (model-router demo --list), any other ends
in 503 Router.AllModelsFailed, what the API answers when no model does. Ctrl-C stops it."""


def add_parser(sub: Any) -> None:
    serve = sub.add_parser("serve", help="the HTTP API on localhost over the local engine (no AWS)",
                           description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=non_negative_int, default=8080,
                       help="port to listen on (default 8080; 0 picks a free one, printed at start)")
    serve.add_argument("--max-request-bytes", type=positive_int, default=mapping.DEFAULT_MAX_REQUEST_BYTES,
                       metavar="N", help="larger bodies are answered 413 (default "
                                         f"{mapping.DEFAULT_MAX_REQUEST_BYTES}, the template's HttpApiMaxRequestBytes)")
    serve.add_argument("--throttle-rate", type=positive_number, default=mapping.DEFAULT_THROTTLE_RATE, metavar="RPS",
                       help=f"requests per second before 429 (default {mapping.DEFAULT_THROTTLE_RATE}, "
                            "HttpApiThrottleRate)")
    serve.add_argument("--throttle-burst", type=positive_int, default=mapping.DEFAULT_THROTTLE_BURST, metavar="N",
                       help=f"requests at once above the rate (default {mapping.DEFAULT_THROTTLE_BURST}, "
                            "HttpApiThrottleBurst)")
    serve.add_argument("--faults", type=fault_spec,
                       help="inject faults into the model calls, e.g. 'haiku.throttle=1' (see the error mapping)")
    serve.add_argument("--quiet", "-q", action="store_true", help="no access log on stderr")
    serve.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from model_router_tools.api.server import RouterApi, make_server
    from model_router_tools.local.overrides import local_overrides

    api = RouterApi(env_overrides=local_overrides(faults=args.faults), max_request_bytes=args.max_request_bytes,
                    throttle_rate=args.throttle_rate, throttle_burst=args.throttle_burst)
    try:
        server = make_server(api, args.host, args.port, quiet=args.quiet)
    except OSError as exc:
        api.close()
        raise UsageError(f"--host {args.host} --port {args.port}: cannot listen there: {exc.strerror or exc}") from None
    host, port = str(server.server_address[0]), int(server.server_address[1])
    print(f"serving the HTTP API on http://{host}:{port} (POST /v1/generate, POST /v1/executions, "
          "GET /v1/executions/{id}); Ctrl-C stops", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        server.server_close()
        api.close()
    return EXIT_OK
