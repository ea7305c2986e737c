"""`model-router batch` as a user runs it: every flag for its effect, the summary as printed, and each bad
path (input, output, store) as one clear line before any line is routed, with nothing left behind."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from model_router.providers import reset_providers
from model_router_tools.cli.main import main as cli_main
from model_router_tools.local import batch as local

QUIET = ["--no-progress", "--workers", "1", "--strategy", "heuristic"]


@pytest.fixture(autouse=True)
def fresh_providers() -> Iterator[None]:
    reset_providers()  # each run's model calls are its own
    yield
    reset_providers()


def write_lines(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines),
                    encoding="utf-8")
    return path


def read_output(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def batch(capsys: pytest.CaptureFixture[str], *argv: Any) -> tuple[int, str]:
    code = cli_main(["batch", *map(str, argv)])
    return code, capsys.readouterr().err


def model_calls_in_this_process() -> int:
    return len(local._engine.function_provider("HaikuInvokerFunction").log)


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# -- lines that used to crash the writer ---------------------------------------------------------------
def test_a_request_id_with_a_lone_surrogate_is_an_error_record_and_no_other_line_is_lost(
    tmp_path: Path, answered_records: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_lines(tmp_path / "requests.jsonl", [
        {"prompt": answered_records[0]["prompt"]},
        '{"prompt": "hi", "request_id": "\\ud800"}',  # JSON text with a lone surrogate escape
        {"prompt": answered_records[1]["prompt"], "request_id": "keep-me"},
    ])
    out = tmp_path / "results.jsonl"
    for _ in range(2):  # the rerun must not crash at the same place either
        code, err = batch(capsys, source, out, *QUIET)
        assert code == 1 and "Traceback" not in err
        written = read_output(out)
        assert [o["line"] for o in written] == [1, 2, 3]
        assert written[1]["status"] == "invalid" and written[1]["error"]["field"] == "request_id"
        assert written[1]["request_id"] == "requests-line-2"  # never the caller's unwritable id
        assert written[1]["error"]["message"].startswith("line 2: request_id:")
        assert written[0]["status"].startswith("answered") and written[2]["request_id"] == "keep-me"
        out.read_bytes().decode("utf-8")  # valid UTF-8 throughout
        assert json.loads((tmp_path / "results.summary.json").read_text())["written"] == 3


def test_a_huge_request_id_is_not_echoed_into_the_error_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_lines(tmp_path / "requests.jsonl", [
        {"prompt": "hi", "request_id": "r" * 100_000},  # fits a batch line, far over the schema's maxLength
        {"prompt": "hi", "request_id": "x" * 300_000},  # over the batch line limit itself
    ])
    out = tmp_path / "results.jsonl"
    code, _ = batch(capsys, source, out, *QUIET)
    assert code == 1
    first, second = read_output(out)
    assert (first["request_id"], first["error"]["field"]) == ("requests-line-1", "request_id")
    assert (second["request_id"], second["error"]["field"]) == ("requests-line-2", "(line)")
    assert max(len(line) for line in out.read_text().splitlines()) < 2_000


BAD_LINES = [
    ('{"prompt": "x", "max_tokens": ' + "7" * 5000 + "}", "Batch.MalformedLine", "(line)", "integer of 5000 digits"),
    ("[" * 1000 + "]" * 1000, "Batch.MalformedLine", "(line)", "nested more than"),
    ('{"prompt": "x", "tier": "haiku", "tier": "opus"}', "Batch.MalformedLine", "(line)", 'duplicate key "tier"'),
    ('{"prompt": "x", "routing": {"confidence_threshold": NaN}}', "Batch.MalformedLine", "(line)", "NaN"),
    ('{"prompt": "x", "temperature": 1e999}', "Batch.MalformedLine", "(line)", "out of range"),
    ("[1, 2]", "Router.InvalidRequest", "(request)", "must be a JSON object"),
    ("null", "Router.InvalidRequest", "(request)", "must be a JSON object"),
]


def test_lines_the_json_module_mishandles_end_as_error_records_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_lines(tmp_path / "bad.jsonl", [text for text, *_ in BAD_LINES])
    out = tmp_path / "results.jsonl"
    code, err = batch(capsys, source, out, *QUIET)
    assert code == 1 and "Traceback" not in err
    written = read_output(out)
    assert [o["line"] for o in written] == list(range(1, len(BAD_LINES) + 1))
    for record, (_, error, field, words) in zip(written, BAD_LINES, strict=True):
        assert record["status"] == "invalid", record
        assert (record["error"]["error"], record["error"]["field"]) == (error, field)
        assert record["error"]["message"].startswith(f"line {record['line']}")
        assert words in record["error"]["message"]
    text = out.read_text()
    assert "ItemNotProcessed" not in text and "stackTrace" not in text and "Traceback" not in text


# -- the printed summary -------------------------------------------------------------------------------
def test_bracketed_field_names_survive_in_the_printed_failures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_lines(tmp_path / "requests.jsonl", [{"messages": [{"role": "assistant", "content": "hi"}]}])
    code, err = batch(capsys, source, tmp_path / "results.jsonl", *QUIET)
    assert code == 1
    printed = [line for line in err.splitlines() if "line 1:" in line]
    assert printed == ["  invalid line 1: Router.InvalidRequest [messages[0].role]: line 1: messages[0].role: must be"
                       " 'user': turns alternate user/assistant, starting with user"]


def test_a_batch_that_cost_more_than_all_opus_says_so_plainly(
    tmp_path: Path, answered_records: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    # The cascade tries a cheaper tier first and escalates these to Opus: they pay for two answers.
    source = write_lines(tmp_path / "requests.jsonl", [{"prompt": answered_records[i]["prompt"]} for i in (1, 5, 6)])
    code, err = batch(capsys, source, tmp_path / "results.jsonl", "--no-progress", "--workers", "1",
                      "--strategy", "cascade")
    assert code == 0
    cost = json.loads((tmp_path / "results.summary.json").read_text())["cost"]
    assert cost["savings_usd"] < 0, "these lines no longer escalate: pick lines that do"
    assert "$-" not in err and "saved" not in err
    assert f"cost ${-cost['savings_usd']:.4f} more than all-Opus ({-cost['savings_pct']:.1f}% more)" in err


def test_an_empty_input_is_a_complete_batch_of_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Exit 0: an empty drop (a quiet day's file) was processed completely; the summary says there was nothing.
    source = write_lines(tmp_path / "empty.jsonl", ["", "   "])
    out = tmp_path / "results.jsonl"
    code, err = batch(capsys, source, out, *QUIET)
    assert code == 0
    assert "0/0 lines written (2 blank skipped" in err and "the input holds no requests" in err
    assert out.read_bytes() == b""
    summary = json.loads((tmp_path / "results.summary.json").read_text())
    assert (summary["lines"], summary["written"], summary["complete"]) == (0, 0, True)


# -- every flag ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["0", "65", "-1", "two"])
def test_workers_outside_1_to_64_is_a_usage_error(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_lines(tmp_path / "requests.jsonl", [{"prompt": "hi"}])
    assert cli_main(["batch", str(source), str(tmp_path / "out.jsonl"), "--workers", value]) == 2
    assert one_line_error(capsys.readouterr().err).startswith("error: --workers: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["requests.jsonl"]


def test_workers_at_the_bounds_are_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_lines(tmp_path / "requests.jsonl", [{"prompt": "hi"}])
    for workers in ("1", "64"):  # never more processes than chunks of lines: one line needs one
        code, err = batch(capsys, source, tmp_path / f"out-{workers}.jsonl", "--workers", workers, "--no-progress")
        assert code == 1 and "1/1 lines written" in err  # "hi" is not a recorded prompt: failed, not lost


def test_two_workers_route_in_worker_processes_and_write_the_same_lines_as_one(
    tmp_path: Path, answered_records: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_lines(tmp_path / "requests.jsonl", [{"prompt": r["prompt"]} for r in answered_records[:40]])
    code, _ = batch(capsys, source, tmp_path / "one.jsonl", "--workers", "1", "--no-progress", "--strategy",
                    "heuristic")
    assert code == 0 and model_calls_in_this_process() >= 40  # routed here, in this process
    reset_providers()
    code, _ = batch(capsys, source, tmp_path / "two.jsonl", "--workers", "2", "--no-progress", "--strategy",
                    "heuristic")
    assert code == 0 and model_calls_in_this_process() == 0  # routed in the two worker processes
    one, two = read_output(tmp_path / "one.jsonl"), read_output(tmp_path / "two.jsonl")
    assert [(o["line"], o["status"], o["result"]["answer"]) for o in one] == [
        (o["line"], o["status"], o["result"]["answer"]) for o in two]


def test_store_puts_the_done_lines_where_it_says_and_a_rerun_with_it_resumes(
    tmp_path: Path, answered_records: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_lines(tmp_path / "requests.jsonl", [{"prompt": r["prompt"]} for r in answered_records[:3]])
    store = tmp_path / "stores" / "done.sqlite"
    out = tmp_path / "results.jsonl"
    assert batch(capsys, source, out, "--store", store, *QUIET)[0] == 0
    assert store.is_file() and not local.default_store(out).exists()
    calls = model_calls_in_this_process()
    code, err = batch(capsys, source, out, "--store", store, *QUIET)
    assert code == 0 and "3 done in an earlier run" in err and model_calls_in_this_process() == calls
    code, err = batch(capsys, source, out, "--store", tmp_path / "other.sqlite", *QUIET)
    assert code == 0 and "0 done in an earlier run" in err


def test_dataset_replays_from_the_given_recorded_outcomes(
    tmp_path: Path, answered_records: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    record = json.loads(json.dumps(answered_records[0]))
    record["prompt"] = "In one word: which city did the dataset flag test record?"
    for outcome in record["outcomes"].values():
        outcome["response"] = "Atlantis (answer recorded for the --dataset test)"
    dataset = write_lines(tmp_path / "recorded.jsonl", [record])
    source = write_lines(tmp_path / "requests.jsonl", [{"prompt": record["prompt"]}])
    code, _ = batch(capsys, source, tmp_path / "bundled.jsonl", *QUIET)
    assert code == 1  # the bundled sample never recorded this prompt
    code, _ = batch(capsys, source, tmp_path / "results.jsonl", "--dataset", dataset, *QUIET)
    assert code == 0
    assert read_output(tmp_path / "results.jsonl")[0]["result"]["answer"].startswith("Atlantis")
    code, err = batch(capsys, source, tmp_path / "x.jsonl", "--dataset", tmp_path / "missing.jsonl", *QUIET)
    assert code == 2 and one_line_error(err).startswith("error: --dataset:")


def test_strategy_chooses_the_router(
    tmp_path: Path, answered_records: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_lines(tmp_path / "requests.jsonl", [{"prompt": answered_records[0]["prompt"]}])
    for strategy in ("static", "heuristic"):
        code, _ = batch(capsys, source, tmp_path / f"{strategy}.jsonl", "--no-progress", "--workers", "1",
                        "--strategy", strategy)
        assert code == 0
        assert read_output(tmp_path / f"{strategy}.jsonl")[0]["result"]["classification"]["strategy"] == strategy


def test_faults_are_injected_into_every_model_call_and_a_bad_plan_stops_before_routing(
    tmp_path: Path, answered_records: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_lines(tmp_path / "requests.jsonl", [{"prompt": r["prompt"]} for r in answered_records[:2]])
    code, _ = batch(capsys, source, tmp_path / "results.jsonl", "--faults", "throttle=1,seed=3", *QUIET)
    assert code == 1
    written = read_output(tmp_path / "results.jsonl")
    assert [o["status"] for o in written] == ["failed", "failed"]
    assert "ThrottlingException" in json.dumps(written[0]["error"]["cause"])
    # Validating --faults belongs to the CLI's argument types; until then the batch checks it before routing.
    code, err = batch(capsys, source, tmp_path / "bad.jsonl", "--faults", "thrNttle=1", *QUIET)
    assert code == 2 and one_line_error(err).startswith("error: --faults: unknown fault")
    assert not (tmp_path / "bad.jsonl").exists()


def test_no_progress_leaves_out_the_progress_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_lines(tmp_path / "requests.jsonl", [{"prompt": 1}])
    _, with_bar = batch(capsys, source, tmp_path / "a.jsonl", "--workers", "1")
    _, without = batch(capsys, source, tmp_path / "b.jsonl", "--workers", "1", "--no-progress")
    assert "routing" in with_bar and "cost so far $0.0000" in with_bar
    assert "routing" not in without and "Batch summary" in without


def test_input_and_output_are_required_and_the_output_directory_is_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["batch", str(tmp_path / "only-input.jsonl")]) == 2
    assert "output" in one_line_error(capsys.readouterr().err)
    source = write_lines(tmp_path / "requests.jsonl", [{"prompt": 1}])
    out = tmp_path / "a" / "b" / "results.jsonl"
    code, _ = batch(capsys, source, out, *QUIET)
    assert code == 1 and read_output(out)[0]["line"] == 1
    assert (tmp_path / "a" / "b" / "results.summary.json").is_file()


# -- paths that cannot be used: one line, exit 2, nothing routed, nothing left behind --------------------
def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def requests(tmp_path: Path) -> Path:
    return write_lines(tmp_path / "requests.jsonl", [{"prompt": 1}])


def refused(capsys: pytest.CaptureFixture[str], tmp_path: Path, *argv: Any) -> str:
    before = listing(tmp_path)
    code, err = batch(capsys, *argv, "--workers", "1")  # with the progress bar: it must not show either
    assert code == 2, err
    assert listing(tmp_path) == before  # no output, lock, store, summary or temporary file
    return one_line_error(err)


def test_an_output_that_is_a_directory_is_refused(
    tmp_path: Path, requests: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "results").mkdir()
    assert refused(capsys, tmp_path, requests, tmp_path / "results") == (
        f"error: output: {tmp_path / 'results'} is a directory; give a file name")


def test_an_output_under_a_file_is_refused(tmp_path: Path, requests: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("a file, not a directory")
    line = refused(capsys, tmp_path, requests, tmp_path / "notes.txt" / "sub" / "results.jsonl")
    assert line == (f"error: output: cannot create {tmp_path / 'notes.txt' / 'sub' / 'results.jsonl'}:"
                    f" {tmp_path / 'notes.txt'} is a file, not a directory")


@pytest.fixture
def read_only_directory(tmp_path: Path) -> Iterator[Path]:
    """A directory nobody may write to. Root ignores permissions, so as root the directory is made
    immutable (chattr +i), which binds root too; where that is not possible either, the test is skipped."""
    directory = tmp_path / "read-only"
    directory.mkdir()
    if os.geteuid() != 0:
        directory.chmod(0o555)
        yield directory
        directory.chmod(0o755)
        return
    made = subprocess.run(["chattr", "+i", str(directory)], capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip("running as root, which ignores directory permissions, and chattr +i is not available here")
    try:
        yield directory
    finally:
        subprocess.run(["chattr", "-i", str(directory)], check=True)


def test_an_output_in_a_read_only_directory_is_refused(
    tmp_path: Path, requests: Path, read_only_directory: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = refused(capsys, tmp_path, requests, read_only_directory / "results.jsonl")
    assert line.startswith(f"error: output: cannot create files in {read_only_directory}:")


def test_an_output_that_is_the_input_under_another_name_is_refused(
    tmp_path: Path, requests: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = requests.read_bytes()
    (tmp_path / "link.jsonl").symlink_to(requests)
    os.link(requests, tmp_path / "hard.jsonl")
    for other in ("link.jsonl", "hard.jsonl"):
        line = refused(capsys, tmp_path, requests, tmp_path / other)
        assert line.startswith(f"error: output: {tmp_path / other} is the input file")
    assert requests.read_bytes() == original


def test_no_file_of_the_run_may_be_another_one_of_its_files(
    tmp_path: Path, answered_records: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    # The lock file beside the output, the summary and the store are written too: none may be the input.
    out = tmp_path / "results.jsonl"
    for name, role in (("results.jsonl.lock", "output lock"), ("results.summary.json", "summary"),
                       ("results.jsonl.done.sqlite.lock", "store lock")):
        source = write_lines(tmp_path / name, [{"prompt": 1}])
        assert refused(capsys, tmp_path, source, out).startswith(f"error: {role}: {source} is the input file")
        assert source.read_text() == '{"prompt": 1}\n'
        source.unlink()
    dataset = write_lines(tmp_path / "recorded.jsonl", [answered_records[0]])
    source = write_lines(tmp_path / "requests.jsonl", [{"prompt": 1}])
    assert refused(capsys, tmp_path, source, dataset, "--dataset", dataset).startswith(
        f"error: dataset: {dataset} is the output file")


def test_an_input_that_is_a_directory_missing_or_not_utf8_jsonl_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results.jsonl"
    (tmp_path / "inputs").mkdir()
    assert refused(capsys, tmp_path, tmp_path / "inputs", out) == (
        f"error: input: {tmp_path / 'inputs'} is a directory; give a JSONL file")
    assert refused(capsys, tmp_path, tmp_path / "nope.jsonl", out) == (
        f"error: input: {tmp_path / 'nope.jsonl'} does not exist")
    utf16 = tmp_path / "utf16.jsonl"
    utf16.write_text('{"prompt": "hi"}\n' * 3, encoding="utf-16")
    assert "is not UTF-8 JSONL: it is UTF-16 text" in refused(capsys, tmp_path, utf16, out)
    zipped = tmp_path / "requests.jsonl.gz"
    zipped.write_bytes(gzip.compress(b'{"prompt": "hi"}\n'))
    assert "is not UTF-8 JSONL: it is gzip-compressed" in refused(capsys, tmp_path, zipped, out)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its permissions")
def test_an_unreadable_input_is_refused(tmp_path: Path, requests: Path, capsys: pytest.CaptureFixture[str]) -> None:
    requests.chmod(0)
    try:
        line = refused(capsys, tmp_path, requests, tmp_path / "results.jsonl")
    finally:
        requests.chmod(0o644)
    assert line.startswith(f"error: input: cannot read {requests}:")


def test_a_store_that_is_a_directory_another_kind_of_file_or_the_input_is_refused(
    tmp_path: Path, requests: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results.jsonl"
    (tmp_path / "stores").mkdir()
    assert refused(capsys, tmp_path, requests, out, "--store", tmp_path / "stores") == (
        f"error: store: {tmp_path / 'stores'} is a directory; give a file name")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database\n")
    assert refused(capsys, tmp_path, requests, out, "--store", notes) == (
        f"error: store: {notes} is not a SQLite file (an idempotency store); give a new path")
    assert notes.read_text() == "not a database\n"
    assert refused(capsys, tmp_path, requests, out, "--store", requests).startswith(
        f"error: store: {requests} is the input file")
