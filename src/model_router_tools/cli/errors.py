"""How a command ends: its exit code, and the usage error ``main`` prints as one line (exit 2)."""

from __future__ import annotations

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """A command line or input file that cannot be used: main prints ``error: <message>`` and exits 2."""
