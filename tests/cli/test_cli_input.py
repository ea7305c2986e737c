"""What the command line cannot use is refused in one line, ``error: <what>: <problem>``, exit 2, before any run:
request files, stdin, argv, flags out of their bounds, fault specs that mean nothing, eval's and validate's
paths. Each case is one a user met as a Python traceback, a silent no-op or a misleading message."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from cli_user import isolate_project, run_main, run_process, stored_files

from model_router_tools.replay.datasets import read_records, sample_path


@pytest.fixture(autouse=True)
def project(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return isolate_project(monkeypatch, tmp_path)


# -- invoke --file ------------------------------------------------------------------------------------------

NOT_ONE_REQUEST = {
    "an array": (b"[]", "the request is an array"),
    "a string": (b'"s"', "the request is a string"),
    "null": (b"null", "the request is null"),
    "a number": (b"1", "the request is a number"),
    "bytes that are not UTF-8": (b'{"prompt": "caf\xe9"}', "not valid UTF-8"),
    "1,000 levels of nesting": (b"[" * 1000 + b"]" * 1000, "nested more than"),
    "a 5,000-digit number": (b'{"prompt": "x", "n": ' + b"7" * 5000 + b"}", "5000 digits"),
    "an empty file": (b"", "empty"),
    "a repeated key": (b'{"tier": "haiku", "tier": "opus", "prompt": "x"}', 'duplicate key "tier"'),
}


@pytest.mark.parametrize(("content", "problem"), NOT_ONE_REQUEST.values(), ids=NOT_ONE_REQUEST.keys())
def test_a_request_file_that_is_not_one_json_object_is_refused_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, problem: str) -> None:
    path = tmp_path / "request.json"
    path.write_bytes(content)
    outcome = run_main(capsys, "invoke", "--file", str(path))
    assert outcome.code == 2
    line = outcome.error_line()
    assert line.startswith(f"error: --file {path}: ") and problem in line


@pytest.mark.parametrize(("make", "problem"), [("directory", "is a directory"), ("nothing", "no such file")])
def test_a_request_file_that_is_a_directory_or_missing_is_named(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], make: str, problem: str) -> None:
    path = tmp_path / "request.json"
    if make == "directory":
        path.mkdir()
    outcome = run_main(capsys, "invoke", "-f", str(path))
    assert outcome.code == 2
    assert outcome.error_line() == f"error: --file {path}: {problem}" + (
        ", not a request file" if make == "directory" else "")


@pytest.mark.parametrize(("stdin", "problem"), [(b"[]", "the request is an array"), (b"\xff{", "not valid UTF-8"),
                                                (b"", "empty"), (b'{"a": 1, "a": 2}', "duplicate key")])
def test_a_request_on_stdin_is_checked_the_same_way(stdin: bytes, problem: str) -> None:
    outcome = run_process("invoke", "--file", "-", stdin=stdin)
    assert outcome.code == 2
    line = outcome.error_line()
    assert line.startswith("error: --file - (stdin): ") and problem in line


def test_a_prompt_argument_that_is_not_utf8_is_refused_before_the_run(tmp_path: Path) -> None:
    # Python keeps the byte 0xff of argv as a lone surrogate, which no history file can hold: the run used
    # to succeed and then crash writing its history, leaving an empty temporary file behind.
    outcome = run_process(b"invoke", b"What is 2+2?\xff")
    assert outcome.code == 2
    assert "not valid UTF-8 text (byte 0xff)" in outcome.error_line()
    assert stored_files(tmp_path) == []


def test_a_prompt_and_a_file_together_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "request.json"
    path.write_text('{"prompt": "hi"}')
    outcome = run_main(capsys, "invoke", "hi", "--file", str(path))
    assert outcome.code == 2
    assert "not both" in outcome.error_line()


def test_routing_flags_on_a_file_whose_routing_is_not_an_object_are_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "request.json"
    path.write_text('{"prompt": "hi", "routing": "fast"}')
    outcome = run_main(capsys, "invoke", "-f", str(path), "--threshold", "0.5")
    assert outcome.code == 2
    assert '"routing" is not an object' in outcome.error_line()


@pytest.mark.parametrize(("argv", "flags"), [
    (["--aws", "--state-machine-arn", "arn:aws:states:us-east-1:123456789012:stateMachine:R", "--faults",
      "throttle=1"], "--faults"),
    (["--aws", "--state-machine-arn", "arn:aws:states:us-east-1:123456789012:stateMachine:R", "--history",
      "--no-precheck"], "--history, --no-precheck"),
    (["--region", "us-east-1"], "--region"),
    (["--timeout", "30"], "--timeout"),
])
def test_flags_for_the_other_kind_of_run_are_refused_not_ignored(
        capsys: pytest.CaptureFixture[str], argv: list[str], flags: str) -> None:
    outcome = run_main(capsys, "invoke", "hi", *argv)
    assert outcome.code == 2
    assert outcome.error_line().startswith(f"error: {flags}: ")


# -- --faults -----------------------------------------------------------------------------------------------

MEANINGLESS_FAULTS = ["throttle=2", "bogus=1", "gpt.throttle=1", "seed=x", "throttle", "=1", "throttle=nan",
                      "throttle=0.1,throttle=0.2"]


@pytest.mark.parametrize("spec", MEANINGLESS_FAULTS)
@pytest.mark.parametrize("command", ["invoke", "demo"])
def test_a_fault_spec_that_means_nothing_is_refused_when_the_command_line_is_parsed(
        capsys: pytest.CaptureFixture[str], command: str, spec: str) -> None:
    argv = [command, "What is 2+2?"] if command == "invoke" else [command]
    outcome = run_main(capsys, *argv, "--faults", spec)
    assert outcome.code == 2
    line = outcome.error_line()
    assert line.startswith("error: --faults: ")
    assert "faults: throttle, server_error" in line and "haiku.NAME" in line  # the known faults and tiers


@pytest.mark.parametrize("spec", ["bogus=1", "throttle=nan", "gpt.throttle=1"])
def test_the_batch_command_refuses_a_meaningless_fault_spec_before_any_line_runs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], spec: str) -> None:
    requests = tmp_path / "in.jsonl"
    requests.write_text('{"prompt": "What is 2+2?"}\n')
    outcome = run_main(capsys, "batch", str(requests), str(tmp_path / "out.jsonl"), "--faults", spec,
                       "--no-progress")
    assert outcome.code == 2
    assert outcome.error_line().startswith("error: --faults: ")
    assert not (tmp_path / "out.jsonl").exists()


# -- flags out of their bounds ------------------------------------------------------------------------------

OUT_OF_BOUNDS = [
    *((["invoke", "hi", "--threshold", value], "--threshold") for value in ("nan", "inf", "-0.1", "1.5", "x")),
    *((["invoke", "hi", "--max-cost", value], "--max-cost") for value in ("-1", "0", "nan", "101")),
    *((["invoke", "hi", "--aws", "--timeout", value], "--timeout") for value in ("0", "-5", "nan")),
    (["eval", "--threshold", "2"], "--threshold"),
    (["eval", "--limit", "0"], "--limit"),
    (["eval", "--limit", "-3"], "--limit"),
    (["eval", "--bootstrap", "-1"], "--bootstrap"),
    (["eval", "--workflow", "-1"], "--workflow"),
    (["eval", "--tolerance", "nan"], "--tolerance"),
    (["eval", "--tolerance", "-0.1"], "--tolerance"),
    (["demo", "-n", "0"], "-n"),
    (["demo", "-n", "-4"], "-n"),
    (["demo", "--threshold", "1.01"], "--threshold"),
    (["demo", "--threshold", "nan"], "--threshold"),
    (["demo", "--sweep", "0.5,high"], "--sweep"),
    (["demo", "--sweep", "0.5,1.2"], "--sweep"),
    (["report", "results.jsonl", "--hours", "nan"], "--hours"),
]


@pytest.mark.parametrize(("argv", "flag"), OUT_OF_BOUNDS, ids=[" ".join(a) for a, _ in OUT_OF_BOUNDS])
def test_a_flag_out_of_its_bounds_is_refused_naming_the_flag(
        capsys: pytest.CaptureFixture[str], argv: list[str], flag: str) -> None:
    outcome = run_main(capsys, *argv)
    assert outcome.code == 2
    assert outcome.error_line().startswith(f"error: {flag}: ")


def test_a_usage_error_is_one_line_not_the_usage_block(capsys: pytest.CaptureFixture[str]) -> None:
    outcome = run_main(capsys, "invoke", "--tier", "gpt-4")
    assert outcome.code == 2
    assert outcome.error_line().startswith("error: --tier: invalid choice: 'gpt-4'")


# -- eval's inputs ------------------------------------------------------------------------------------------


def _records_without(field: str) -> bytes:
    record = next(iter(read_records(sample_path())))
    record.pop(field)
    return (json.dumps(record) + "\n").encode()


BAD_DATASETS = {
    "missing": (None, "no such file"),
    "a directory": ("dir", "is a directory"),
    "not JSON": (b"id,prompt\n1,hello\n", "not valid JSON"),
    "gzip that is not": (b"plain text", "cannot be read"),
    "not UTF-8": (b'{"id": "\xff"}\n', "not UTF-8"),
    "a record without a prompt": (_records_without("prompt"), "record 1: no 'prompt'"),
    "a record without outcomes": (_records_without("outcomes"), "record 1: no 'outcomes'"),
    "empty": (b"\n", "no records"),
}


@pytest.mark.parametrize(("content", "problem"), BAD_DATASETS.values(), ids=BAD_DATASETS.keys())
def test_an_eval_dataset_that_cannot_be_read_is_named_before_the_evaluation(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | str | None, problem: str) -> None:
    path = tmp_path / ("data.jsonl.gz" if problem == "cannot be read" else "data.jsonl")
    if content == "dir":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    outcome = run_main(capsys, "eval", "--dataset", str(path), "--bootstrap", "0")
    assert outcome.code == 2
    line = outcome.error_line()
    assert line.startswith(f"error: --dataset: {path}") and problem in line


BAD_PRICES = {
    "not JSON": (b"haiku: 1", "not JSON"),
    "an array": (b"[]", "not a JSON object"),
    "a tier missing": (b'{"haiku": {"input": 1, "output": 5}}', "no prices for sonnet"),
    "an unknown tier": (b'{"gpt": {"input": 1, "output": 5}}', "unknown tier 'gpt'"),
    "a price that is text": (b'{"haiku": {"input": "one", "output": 5}, "sonnet": {"input": 3, "output": 15},'
                             b' "opus": {"input": 5, "output": 25}}', "haiku.input must be a number"),
    "a negative price": (b'{"haiku": {"input": 1, "output": -5}, "sonnet": {"input": 3, "output": 15},'
                         b' "opus": {"input": 5, "output": 25}}', "haiku.output must be a number"),
}


@pytest.mark.parametrize(("content", "problem"), BAD_PRICES.values(), ids=BAD_PRICES.keys())
def test_a_malformed_prices_file_is_named_before_the_evaluation(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, problem: str) -> None:
    path = tmp_path / "prices.json"
    path.write_bytes(content)
    outcome = run_main(capsys, "eval", "--prices", str(path), "--bootstrap", "0", "--limit", "5")
    assert outcome.code == 2
    line = outcome.error_line()
    assert line.startswith(f"error: --prices {path}: ") and problem in line


@pytest.mark.parametrize("content", [b'{"policies": []}', b"[]", b'{"sources": [{"source": "x"}]}'])
def test_compare_with_a_file_that_is_not_an_eval_report_is_refused_before_the_evaluation(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes) -> None:
    path = tmp_path / "old.json"
    path.write_bytes(content)
    outcome = run_main(capsys, "eval", "--compare", str(path), "--bootstrap", "0", "--limit", "5")
    assert outcome.code == 2
    assert outcome.error_line().startswith(f"error: --compare {path}: not an eval report")


def test_an_unknown_policy_is_refused_with_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    outcome = run_main(capsys, "eval", "--policy", "gpt-router", "--bootstrap", "0", "--limit", "5")
    assert outcome.code == 2
    line = outcome.error_line()
    assert line.startswith("error: --policy 'gpt-router': unknown") and "learned+cascade" in line


@pytest.mark.parametrize("flag", ["--json", "--plot"])
def test_an_eval_output_file_in_a_missing_directory_is_refused_before_the_evaluation(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str) -> None:
    target = tmp_path / "no-such-directory" / "out"
    outcome = run_main(capsys, "eval", flag, str(target), "--bootstrap", "0", "--limit", "5")
    assert outcome.code == 2
    assert outcome.error_line().startswith(f"error: {flag} {target}: the directory")


# -- validate --root ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("make", "problem"), [("nothing", "no such directory"), ("file", "not a directory"),
                                               ("directory", "no template.yaml here")])
def test_validate_on_a_root_that_is_not_a_project_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], make: str, problem: str) -> None:
    root = tmp_path / "elsewhere"
    if make == "file":
        root.write_text("")
    elif make == "directory":
        root.mkdir()
    outcome = run_main(capsys, "validate", "--root", str(root))
    assert outcome.code == 2
    assert outcome.error_line().startswith(f"error: --root {root}: {problem}")


def test_a_gzip_dataset_that_is_whole_still_passes_the_check(tmp_path: Path) -> None:
    # The check must not refuse what eval reads: the bundled sample, and a copy of it named .jsonl.gz.
    from model_router_tools.replay.datasets import check_dataset

    copy = tmp_path / "copy.jsonl.gz"
    copy.write_bytes(gzip.compress(gzip.decompress(sample_path().read_bytes())))
    assert check_dataset(copy) == check_dataset(sample_path()) > 0


def test_eval_plot_takes_a_directory_and_refuses_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    figures = tmp_path / "figures"
    figures.mkdir()
    outcome = run_main(capsys, "eval", "--dataset", str(sample_path()), "--policy", "learned+cascade",
                       "--plot", str(figures), "--bootstrap", "0", "--limit", "30")
    assert outcome.code == 0, outcome.err
    assert sorted(p.name for p in figures.iterdir() if p.name.startswith("curves-"))
    a_file = tmp_path / "notes.txt"
    a_file.write_text("")
    refused = run_main(capsys, "eval", "--plot", str(a_file), "--bootstrap", "0", "--limit", "5")
    assert refused.code == 2
    assert refused.error_line().startswith(f"error: --plot {a_file}: is a file")
