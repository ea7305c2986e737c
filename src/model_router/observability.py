"""Powertools Logger / Metrics / Tracer, created once per Lambda module from here.

Prompts and answers are never logged unless the deployment sets LOG_PROMPTS=true. Every log line of
the router's functions carries ``component``, ``request_id`` and ``execution`` (the Step Functions
execution ARN), and every trace the last two as X-Ray annotations, so one request can be followed across
the five functions. The batch function's per-line steps carry the line and its ``request_id``; its
batch-level steps the input object. What each handler measures is in src/model_router/emf.py.
"""

from __future__ import annotations

import io
import os
import sys
from typing import IO, Any, cast

from aws_lambda_powertools import Logger, Metrics, Tracer

from model_router.settings import Settings

SERVICE = "model-router"
NAMESPACE = "ModelRouter"


class _CurrentStdout(io.TextIOBase):
    """A log stream that writes to whatever ``sys.stdout`` is at the time of the write.

    Powertools binds its handler to the ``sys.stdout`` that exists when the logger is built. In Lambda that
    never changes; locally the engine routes stdout to the execution running the handler, and test
    runners swap stdout between tests, so a stream fixed at import time could miss the engine."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def observability() -> tuple[Logger, Metrics, Tracer]:
    """The Logger, Metrics and Tracer of one Lambda module; call once, at import. (Which function logs is
    a key :func:`correlate` appends per invocation: keys appended at import do not outlive the first one.)"""
    # In Lambda, log init errors through the logger; in a local process the hook would claim every
    # uncaught exception of the CLI as this function's. (The runtime's own variable, read once at import:
    # not a deployment setting.)
    in_lambda = "AWS_LAMBDA_FUNCTION_NAME" in os.environ
    logger = Logger(service=SERVICE, log_uncaught_exceptions=in_lambda,
                    stream=cast(IO[str], _CurrentStdout()))
    metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
    tracer = Tracer(service=SERVICE)
    return logger, metrics, tracer


def correlate(logger: Logger, metrics: Metrics, tracer: Tracer, settings: Settings, *, component: str,
              request_id: str | None = None, execution: str | None = None, **keys: Any) -> None:
    """Tie this invocation's logs, metrics and trace to its request and execution.

    Call it first in the handler, before any log line: ``inject_lambda_context(clear_state=True)`` starts
    every invocation with the context keys only, so the component is appended here too.
    """
    metrics.namespace = settings.metrics_namespace
    logger.append_keys(component=component, request_id=request_id, execution=execution, **keys)
    # Annotations are indexed: find a request's trace with `annotation.request_id = "..."`.
    for name, value in (("request_id", request_id), ("execution", execution), *keys.items()):
        if value is not None:
            tracer.put_annotation(key=name, value=str(value))
