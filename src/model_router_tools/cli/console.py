"""What the commands print with: JSON on stdout, and rich consoles for tables and timelines."""

from __future__ import annotations

import json
import sys
from typing import Any


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def rich_console(*, stderr: bool = False) -> Any:
    """A rich Console on stdout (or stderr). Piped output gets a fixed width that fits the demo table rather
    than rich's 80-column default."""
    from rich.console import Console  # rich costs a tenth of a second to import: only commands that print tables

    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, highlight=False, width=None if stream.isatty() else 140)
