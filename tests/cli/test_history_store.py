"""The store of local runs behind `model-router history`: one per project, written whole or not at all, and
read back without a traceback whatever is in it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_user import isolate_project, run_main

from model_router_tools.local.executions import ExecutionStore, default_history_dir


@pytest.fixture(autouse=True)
def project(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return isolate_project(monkeypatch, tmp_path)


def record(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "executionArn": f"arn:aws:states:us-east-1:123456789012:execution:Router:{name}",
            "status": "SUCCEEDED", "startDate": "2025-01-01T00:00:00+00:00", "events": [], **fields}


def test_listing_an_empty_store_says_so_and_where_runs_come_from(capsys: pytest.CaptureFixture[str]) -> None:
    outcome = run_main(capsys, "history", "--list")
    assert outcome.code == 0
    assert outcome.out == ""
    assert "no local runs of project" in outcome.err and "model-router invoke" in outcome.err


def test_two_projects_do_not_see_each_others_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    first = isolate_project(monkeypatch, tmp_path, "first")
    ExecutionStore(default_history_dir()).save(record("run-of-the-first"))
    isolate_project(monkeypatch, tmp_path, "second")
    outcome = run_main(capsys, "history", "--list")
    assert "run-of-the-first" not in outcome.out and "no local runs of project" in outcome.err
    assert run_main(capsys, "history").code == 2  # no most recent run here either

    (first / "tests").mkdir()
    monkeypatch.chdir(first / "tests")  # anywhere inside the first project is the first project
    outcome = run_main(capsys, "history", "--list")
    assert "run-of-the-first" in outcome.out
    assert f"local runs of project {first}" in outcome.err


def test_history_of_an_unknown_run_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    ExecutionStore(default_history_dir()).save(record("known"))
    outcome = run_main(capsys, "history", "unknown-run")
    assert outcome.code == 2
    assert outcome.error_line().startswith("error: history: no local execution 'unknown-run'")


CORRUPT = {"bytes that are not UTF-8": b"\xff\xfe\x00garbage", "not JSON": b'{"name": "x", "eve',
           "an array": b"[]", "events that are not a list": b'{"name": "x", "events": 3}'}


@pytest.mark.parametrize("content", CORRUPT.values(), ids=CORRUPT.keys())
def test_a_corrupt_record_is_named_in_one_line_and_listed_as_unreadable(
        capsys: pytest.CaptureFixture[str], content: bytes) -> None:
    store = ExecutionStore(default_history_dir())
    store.save(record("good"))
    store.path_for("broken").write_bytes(content)
    outcome = run_main(capsys, "history", "broken")
    assert outcome.code == 2
    line = outcome.error_line()
    assert str(store.path_for("broken")) in line and "not an execution record" in line

    outcome = run_main(capsys, "history", "--list")
    assert outcome.code == 0
    assert "good" in outcome.out and "UNREADABLE" in outcome.out and "broken" in outcome.out


def test_a_record_whose_events_cannot_be_read_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    ExecutionStore(default_history_dir()).save(record("odd", events=[{"type": "TaskStateEntered"}]))
    outcome = run_main(capsys, "history", "odd")
    assert outcome.code == 2
    assert "not an execution history this command can read" in outcome.error_line()


def test_bracketed_names_in_a_run_are_printed_not_taken_for_markup(capsys: pytest.CaptureFixture[str]) -> None:
    ExecutionStore(default_history_dir()).save(record(
        "bad-request", status="FAILED", error="Router.InvalidRequest",
        cause=json.dumps({"message": "[messages] is required when [prompt] is absent"})))
    outcome = run_main(capsys, "history", "bad-request")
    assert outcome.code == 1
    assert "[messages] is required when [prompt] is absent" in outcome.out


def test_saving_a_run_with_a_lone_surrogate_keeps_it_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = ExecutionStore(tmp_path / "runs")
    kept = record("surrogate", input={"prompt": "What is 2+2?\udcff"})
    path = store.save(kept)
    assert path is not None
    assert store.load("surrogate") == kept
    assert sorted(p.name for p in store.directory.iterdir()) == ["surrogate.json"]


def test_a_save_that_fails_half_way_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = ExecutionStore(tmp_path / "runs")
    store.path_for("taken").mkdir(parents=True)  # the final rename cannot replace a directory
    with pytest.warns(UserWarning, match="execution history not kept"):
        assert store.save(record("taken")) is None
    assert sorted(p.name for p in store.directory.iterdir()) == ["taken.json"]


def test_the_store_lives_under_xdg_cache_home_one_directory_per_project(project: Path, tmp_path: Path) -> None:
    where = default_history_dir()
    assert where.parent == tmp_path / "cache" / "model-router" / "executions"
    assert where.name.startswith("project-")
    assert default_history_dir(project / "sub") == where  # the same project from a directory inside it


def test_a_history_dir_that_is_a_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    not_a_directory = tmp_path / "runs.json"
    not_a_directory.write_text("{}")
    outcome = run_main(capsys, "history", "--list", "--history-dir", str(not_a_directory))
    assert outcome.code == 2
    assert outcome.error_line() == f"error: history: --history-dir {not_a_directory}: not a directory"
