"""Run the real workflow with no AWS account (see engine.py)."""
