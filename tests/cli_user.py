"""The command line as its user meets it, for tests: ``main()`` with the output captured, or a subprocess
(for stdin, raw argv bytes and missing extras), in a project and a cache home of the test's own."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from model_router_tools.cli.main import main

# `python -c` with this runs the command line on sys.argv[1:] (after ``prelude``, e.g. an import blocker).
_RUN_MAIN = "import sys\nfrom model_router_tools.cli.main import main\nraise SystemExit(main(sys.argv[1:]))\n"


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str

    def error_line(self) -> str:
        """The one line a failure prints, ``error: <what>: <problem>``; fails the test on anything else."""
        assert "Traceback" not in self.err, self.err
        lines = self.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), self.err
        return lines[0]


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> Outcome:
    code = main(list(argv))
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


def run_process(*argv: str | bytes, stdin: bytes = b"", prelude: str = "") -> Outcome:
    """The command line in a new interpreter, in the working directory and environment of the test."""
    done = subprocess.run([sys.executable, "-c", prelude + _RUN_MAIN, *argv], input=stdin, capture_output=True,
                          env=dict(os.environ), timeout=600, check=False)
    return Outcome(done.returncode, done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace"))


def isolate_project(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str = "project") -> Path:
    """A project directory (the working directory) and a home and cache of the test's own, so the runs
    `invoke` keeps for `history` never touch the user's."""
    project = tmp_path / name
    project.mkdir(exist_ok=True)
    (project / "pyproject.toml").write_text("")
    monkeypatch.chdir(project)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return project


def stored_files(tmp_path: Path) -> list[Path]:
    """Every file under the test's home and cache (history records, and any temporary file left behind)."""
    return sorted(p for root in (tmp_path / "home", tmp_path / "cache") if root.exists()
                  for p in root.rglob("*") if p.is_file())
