"""The template, as every tool here reads it: Fn::ForEach and AWS::Include expanded (local/template.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from model_router_tools.local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    """The expanded template.yaml (read once; tests that change it work on a deep copy)."""
    return load_template(TEMPLATE)
