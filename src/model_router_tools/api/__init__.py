"""The HTTP front door: one set of rules (mapping.py) rendered as API Gateway's VTL (vtl.py, openapi.py) for the
deployed REST API and applied in Python by ``model-router serve`` (server.py)."""
