"""The command line as a shell user meets it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

RUN_MAIN = "import sys\nfrom model_router_tools.cli.main import main\nraise SystemExit(main(sys.argv[1:]))\n"


def test_a_closed_pipe_ends_the_listing_quietly() -> None:
    # `model-router demo --list | head` (the README's quick tour): no traceback once the reader has gone.
    lister = subprocess.Popen([sys.executable, "-c",
                               "from model_router_tools.cli.main import main; raise SystemExit(main())",
                               "demo", "--list"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert lister.stdout is not None and lister.stderr is not None
    lister.stdout.close()  # the reader goes away before the listing is written (start-up takes ~1 s)
    errors = lister.stderr.read().decode()
    assert lister.wait(timeout=60) != 0
    assert "Traceback" not in errors and "BrokenPipeError" not in errors


def test_an_interrupt_is_one_line_and_exit_130() -> None:
    reader = subprocess.Popen([sys.executable, "-c", RUN_MAIN, "invoke", "--file", "-"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    syscall = Path(f"/proc/{reader.pid}/syscall")
    if not syscall.exists():
        reader.kill()
        pytest.skip("needs Linux /proc/PID/syscall to see the command wait on stdin")
    deadline = time.monotonic() + 60
    while not syscall.read_text().startswith("0 0x0 ") and time.monotonic() < deadline:
        time.sleep(0.05)  # until it waits in read(0, ...): the user presses Ctrl-C while it reads the request
    reader.send_signal(signal.SIGINT)
    _, errors = reader.communicate(timeout=60)
    assert reader.returncode == 130
    assert errors.decode().strip() == "error: interrupted"


PATCHED_BUG = "import model_router_tools.cli.validate as v\nv.run_all = lambda root: 1 / 0\n"


def test_an_unexpected_error_is_one_line_and_the_traceback_is_there_on_request(tmp_path: Path) -> None:
    (tmp_path / "template.yaml").write_text("")
    argv = [sys.executable, "-c", PATCHED_BUG + RUN_MAIN, "validate", "--root", str(tmp_path)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1
    assert done.stderr.strip() == ("error: internal error: ZeroDivisionError: division by zero (run with "
                                   "MODEL_ROUTER_DEBUG=1 for the traceback)")
    debug = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False,
                           env={**os.environ, "MODEL_ROUTER_DEBUG": "1"})
    assert "Traceback" in debug.stderr and "ZeroDivisionError" in debug.stderr
