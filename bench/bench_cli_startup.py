"""CLI start-up: wall time of `model-router --help` and of each `model-router SUBCOMMAND --help`.

Each is a fresh interpreter (what a shell user waits for), run 10 times after one warm-up run; the figure is
the median. Exits 1 when any median is above the budget: building the parser must not import the commands'
libraries (numpy, scikit-learn, moto, rich, boto3...), only the command that runs does.

The modules' bytecode is cached, as after a user's first run, even where PYTHONDONTWRITEBYTECODE is set (in a
temporary directory, so the checkout stays clean).

    python bench/bench_cli_startup.py [--runs 10] [--budget 0.3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

# The console script's entry point, called the way the installed `model-router` script calls it.
ENTRY = "import sys; from model_router_tools.cli.main import main; raise SystemExit(main(sys.argv[1:]))"


def subcommands() -> list[str]:
    """The subcommands the command line declares (so a new one is measured too)."""
    from model_router_tools.cli.main import COMMANDS

    sub = argparse.ArgumentParser().add_subparsers()
    for command in COMMANDS:
        command.add_parser(sub)
    return list(sub.choices)


def wall_times(argv: list[str], runs: int, env: dict[str, str]) -> list[float]:
    command = [sys.executable, "-c", ENTRY, *argv]
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)  # warm-up
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
        samples.append(time.perf_counter() - started)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--budget", type=float, default=0.3, help="seconds; a median above it fails (exit 1)")
    args = parser.parse_args()
    slow = []
    with tempfile.TemporaryDirectory(prefix="bench-cli-pycache-") as cache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        print(f"cli_startup: median of {args.runs} runs after a warm-up, budget {args.budget:g} s")
        for argv in (["--help"], *([name, "--help"] for name in subcommands())):
            median = statistics.median(wall_times(argv, args.runs, env))
            label = " ".join(["model-router", *argv])
            print(f"{label:<36} {median * 1000:5.0f} ms")
            if median > args.budget:
                slow.append(label)
    if slow:
        print(f"over the {args.budget:g} s budget: {', '.join(slow)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
