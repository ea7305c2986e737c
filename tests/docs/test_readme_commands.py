"""Every command the docs show runs, so the docs cannot drift from the CLI.

The rules (README.md, examples/README.md, every docs/*.md and the examples in ``model-router --help``, the
docstring of model_router_tools.cli.main):

* A fenced block opened with ```bash (or ```sh / ```shell) holds commands that run offline. Each block runs
  on its own, line by line in order, in a fresh copy of the project (so a block is a recipe a reader can paste:
  a later line may use what an earlier line of the same block wrote), with ``HOME`` in a temporary directory.
* ``<!-- not-run: REASON -->`` on the line right before a block leaves it out (it needs AWS, deploys, starts the
  HTTP API's server, which blocks, or calls it: tests/cli/test_serve.py runs docs/api.md's curl lines).
* A line must exit 0 unless its comment says otherwise with ``exit N`` (``# ... (exit 1: line 4 is invalid``).
  No line may print a Python traceback.
* ``make TARGET`` runs the Makefile's recipe for it with ``$(BIN)/`` dropped (these tests already run inside
  the installed environment); ``make test`` is not run (it is this suite); ``. .venv/bin/activate`` is
  satisfied by the environment the tests run in.
* A plain command line runs in this process through ``model_router_tools.cli.main.main``, the console
  script's entry point (argv split as the shell splits it); a line with shell syntax (a pipe, ``$(...)``, a
  redirection) runs under bash with the environment's scripts first on ``PATH``.
* In the ``--help`` texts (``model-router --help``: model_router_tools.cli.main's docstring; ``model-router
  route --help``), the indented lines that start with ``model-router`` run the same way, in one copy.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from model_router_tools.cli import main as cli
from model_router_tools.cli import route as route_preview

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

ROOT = Path(__file__).resolve().parents[2]
# README.md first: the quick tour is looked up in it. Every markdown file under docs/ runs too.
DOCS = ("README.md", "examples/README.md",
        *sorted(path.relative_to(ROOT).as_posix() for path in (ROOT / "docs").rglob("*.md")))
SHELLS = {"bash", "sh", "shell"}
NOT_RUN = re.compile(r"^<!--\s*not-run:\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^```\s*([\w-]*)\s*$")
EXPECTED_EXIT = re.compile(r"\bexit (\d+)\b")
NOT_RUN_LINES = {"make test": "runs this test suite"}
ACTIVATE = re.compile(r"^(\.|source)\s+\.venv/bin/activate$")
# What a not-run block may hold: calls to AWS, and the HTTP API's server (it blocks until Ctrl-C) and calls to it
# (tests/cli/test_serve.py runs docs/api.md's curl lines against a live `model-router serve`).
NEEDS_AWS_OR_A_SERVER = r"--aws|s3://|make (build|deploy)|sam deploy|model-router serve|\bcurl\b|awscurl"
# Where the project copy must not reach: environments, caches, version control.
COPY_IGNORE = shutil.ignore_patterns(".*", "__pycache__", "*.egg-info", "build", "dist")


@dataclass(frozen=True)
class Block:
    source: str  # file name, or "--help"
    line: int  # 1-based line of the opening fence
    commands: tuple[tuple[int, str], ...]  # (line number, command line) without blank lines
    not_run: str | None  # the reason, when the block is left out

    @property
    def name(self) -> str:
        return f"{self.source}:{self.line}"


def shell_blocks(text: str, source: str) -> list[Block]:
    """The shell blocks of a markdown text, with their not-run reasons."""
    blocks: list[Block] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opened = FENCE.match(lines[index])
        if not opened:
            index += 1
            continue
        start, language = index, opened.group(1)
        index += 1
        body: list[tuple[int, str]] = []
        while index < len(lines) and not lines[index].startswith("```"):
            body.append((index + 1, lines[index]))
            index += 1
        index += 1  # the closing fence
        if language not in SHELLS:
            continue
        marker = NOT_RUN.match(lines[start - 1]) if start > 0 else None
        commands = tuple((number, line) for number, line in join_continuations(body) if line.strip())
        blocks.append(Block(source, start + 1, commands, marker.group(1) if marker else None))
    return blocks


def join_continuations(body: list[tuple[int, str]]) -> list[tuple[int, str]]:
    joined: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for number, line in body:
        if pending is not None:
            number, line = pending[0], pending[1] + " " + line.strip()
        if line.rstrip().endswith("\\"):
            pending = (number, line.rstrip()[:-1].rstrip())
            continue
        pending = None
        joined.append((number, line))
    return joined


def help_examples(doc: str) -> Block:
    """The indented ``model-router ...`` lines of the --help text, as one block."""
    commands = tuple((number, line.strip()) for number, line in enumerate(doc.splitlines(), start=1)
                     if line.startswith("    ") and line.strip().startswith("model-router "))
    return Block("--help", 1, commands, None)


def split_comment(line: str) -> tuple[str, str]:
    """(command, comment): the comment starts at the first ``#`` outside quotes that begins a word."""
    quote = ""
    for position, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (position == 0 or line[position - 1].isspace()):
            return line[:position].rstrip(), line[position + 1:].strip()
    return line.rstrip(), ""


def has_shell_syntax(command: str) -> bool:
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return "$(" in command or "`" in command or any(token and set(token) <= set("|&;<>()") for token in lexer)


def make_recipe(target: str, root: Path) -> list[str]:
    """The commands of a Makefile target, ``$(BIN)/`` dropped; [] when the Makefile has no such target."""
    lines = (root / "Makefile").read_text().splitlines()
    for index, line in enumerate(lines):
        if re.match(rf"^{re.escape(target)}\s*:", line):
            recipe = []
            for step in lines[index + 1:]:
                if not step.startswith("\t"):
                    break
                recipe.append(step.strip().replace("$(BIN)/", ""))
            return recipe
    return []


@dataclass(frozen=True)
class Outcome:
    status: int
    out: str
    err: str


def run_in_process(argv: list[str], capsys: pytest.CaptureFixture[str]) -> Outcome:
    capsys.readouterr()
    try:
        status = cli.main(argv)
    except SystemExit as exc:  # argparse, or a command that exits with a message
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    captured = capsys.readouterr()
    return Outcome(status, captured.out, captured.err)


def run_in_shell(command: str, cwd: Path) -> Outcome:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    return Outcome(done.returncode, done.stdout, done.stderr)


def expand(command: str, root: Path) -> Iterator[str]:
    """The command lines one documented line stands for (``make X`` -> its recipe)."""
    words = command.split()
    if len(words) == 2 and words[0] == "make":
        recipe = make_recipe(words[1], root)
        assert recipe, f"`{command}`: no such Makefile target; mark the block not-run or teach this test the target"
        yield from recipe
    else:
        yield command


def run_block(block: Block, workdir: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """Run a block's lines in ``workdir`` (the current directory); returns one message per failing line."""
    failures = []
    for number, line in block.commands:
        command, comment = split_comment(line)
        if not command or ACTIVATE.match(command) or command in NOT_RUN_LINES:
            continue
        expected = int(found.group(1)) if (found := EXPECTED_EXIT.search(comment)) else 0
        for step in expand(command, workdir):
            if has_shell_syntax(step):
                outcome = run_in_shell(step, workdir)
            else:
                argv = shlex.split(step)
                assert argv[0] == "model-router", f"{block.source}:{number}: `{step}` is not a model-router command"
                outcome = run_in_process(argv[1:], capsys)
            if outcome.status != expected or "Traceback" in outcome.err:
                failures.append(f"{block.source}:{number}: `{step}` exited {outcome.status} (expected {expected})\n"
                                f"{outcome.err[-2000:]}")
    return failures


@pytest.fixture
def project_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the project as the current directory, and HOME (execution history) beside it."""
    copy = tmp_path / "project"
    shutil.copytree(ROOT, copy, symlinks=True, ignore=COPY_IGNORE)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(copy)
    return copy


def doc_blocks() -> list[Block]:
    return [block for doc in DOCS for block in shell_blocks((ROOT / doc).read_text(encoding="utf-8"), doc)]


RUN_BLOCKS = [block for block in doc_blocks() if block.not_run is None]


@pytest.mark.parametrize("block", RUN_BLOCKS, ids=[block.name for block in RUN_BLOCKS])
def test_every_command_of_a_docs_shell_block_runs(block: Block, project_copy: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    failures = run_block(block, project_copy, capsys)
    assert not failures, "\n".join(failures)


def test_every_example_in_the_help_text_runs_offline(project_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    block = help_examples((cli.__doc__ or "") + route_preview.DESCRIPTION)
    assert len(block.commands) >= 11
    failures = run_block(block, project_copy, capsys)
    assert not failures, "\n".join(failures)


def test_the_readme_runs_the_quick_tour_and_leaves_out_only_what_needs_aws() -> None:
    blocks = doc_blocks()
    tour = next(block for block in blocks if any("model-router route" in line for _, line in block.commands))
    assert tour.not_run is None and tour.source == "README.md"
    assert any(block.source.startswith("docs/") and block.not_run is None for block in blocks)  # docs/*.md run too
    left_out = [block for block in blocks if block.not_run is not None]
    assert left_out and all(block.not_run for block in left_out)  # every marker says why
    for block in left_out:
        assert all(re.search(NEEDS_AWS_OR_A_SERVER, line) for _, line in block.commands), block.name


def test_a_not_run_marker_applies_to_the_block_right_after_it_only() -> None:
    text = ("<!-- not-run: needs AWS -->\n```bash\nmodel-router history ARN --aws\n```\n\n"
            "```bash\nmodel-router demo\n```\n")
    first, second = shell_blocks(text, "x.md")
    assert first.not_run == "needs AWS" and second.not_run is None
    assert shell_blocks("```json\n{}\n```\n```text\nmodel-router x\n```\n", "x.md") == []


def test_the_comment_says_which_exit_status_a_line_expects() -> None:
    command, comment = split_comment('model-router invoke "a # b" --faults x   # exit 2: refused')
    assert command == 'model-router invoke "a # b" --faults x' and EXPECTED_EXIT.search(comment)
    assert has_shell_syntax("model-router demo --list | head") and has_shell_syntax('x "$(y)"')
    assert not has_shell_syntax('model-router invoke -f a.json --faults "haiku.throttle=1"')


def test_a_docs_command_that_fails_is_reported_with_its_line(project_copy: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    # The --help's old example: offline, an unrecorded prompt is refused (exit 2), which the docs must then say.
    old = ('```bash\nmodel-router invoke "What is 2+2?"\n'
           'model-router invoke "What is 2+2?"   # exit 2: not recorded\n```\n')
    failures = run_block(shell_blocks(old, "old.md")[0], project_copy, capsys)
    assert len(failures) == 1 and failures[0].startswith('old.md:2: `model-router invoke "What is 2+2?"` exited 2')
    assert "prompt: not recorded" in failures[0]
