"""Powertools Logger / Metrics / Tracer, created once per Lambda module from here.

Prompts and answers are never logged unless the deployment sets LOG_PROMPTS=true.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "model-router"
NAMESPACE = "ModelRouter"


def observability(component: str) -> tuple[Logger, Metrics, Tracer]:
    # In Lambda, log init errors through the logger; in a local process the hook would claim every
    # uncaught exception of the CLI as this function's.
    in_lambda = "AWS_LAMBDA_FUNCTION_NAME" in os.environ
    logger = Logger(service=SERVICE, log_uncaught_exceptions=in_lambda)
    logger.append_keys(component=component)
    metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
    tracer = Tracer(service=SERVICE)
    return logger, metrics, tracer
