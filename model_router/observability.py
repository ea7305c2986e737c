"""Powertools Logger / Metrics / Tracer, created once per Lambda module from here.

Prompts and answers are never logged unless the deployment sets LOG_PROMPTS=true.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "model-router"
NAMESPACE = "ModelRouter"


def observability(component: str) -> tuple[Logger, Metrics, Tracer]:
    logger = Logger(service=SERVICE, log_uncaught_exceptions=True)
    logger.append_keys(component=component)
    metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
    tracer = Tracer(service=SERVICE)
    return logger, metrics, tracer
