"""The command line as a shell user meets it."""

from __future__ import annotations

import subprocess
import sys


def test_a_closed_pipe_ends_the_listing_quietly() -> None:
    # `model-router demo --list | head` (the README's quick tour): no traceback once the reader has gone.
    lister = subprocess.Popen([sys.executable, "-c", "from model_router.cli import main; raise SystemExit(main())",
                               "demo", "--list"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert lister.stdout is not None and lister.stderr is not None
    lister.stdout.close()  # the reader goes away before the listing is written (start-up takes ~1 s)
    errors = lister.stderr.read().decode()
    assert lister.wait(timeout=60) != 0
    assert "Traceback" not in errors and "BrokenPipeError" not in errors
