"""Batch jobs: route every line of a JSONL input through the router workflow, once."""
