"""`model-router batch` as separate processes: two runs on one output (or one store), a run killed with
kill -9, a disk that fills up part way, an input far larger than its useful lines."""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

QUIET = ["--no-progress", "--workers", "1", "--strategy", "heuristic"]


def command(*argv: Any) -> list[str]:
    return [sys.executable, "-m", "model_router_tools", "batch", *map(str, argv)]


def start(*argv: Any, **options: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(command(*argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **options)


def run(*argv: Any, **options: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command(*argv), capture_output=True, text=True, timeout=300, check=False, **options)


def wait_for(path: Path, process: subprocess.Popen[str], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, f"the first run ended before {path.name} appeared: {process.stderr}"
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)


def requests_file(path: Path, records: list[dict[str, Any]], count: int) -> Path:
    lines = [json.dumps({"prompt": records[i % len(records)]["prompt"], "request_id": f"r-{i + 1}"})
             for i in range(count)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def complete_output(path: Path, count: int) -> list[dict[str, Any]]:
    written = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [o["line"] for o in written] == list(range(1, count + 1))
    assert [o["request_id"] for o in written] == [f"r-{i}" for i in range(1, count + 1)]
    return written


def test_a_second_batch_on_the_same_output_stops_at_once_naming_the_output_and_the_first_pid(
    tmp_path: Path, answered_records: list[dict[str, Any]]
) -> None:
    source = requests_file(tmp_path / "requests.jsonl", answered_records, 160)
    out = tmp_path / "results.jsonl"
    first = start(source, out, *QUIET)
    try:
        wait_for(out, first)  # the output exists once the first run is about to route
        second = run(source, out, *QUIET)
    finally:
        first_err = first.communicate(timeout=300)[1]
    assert second.returncode == 2, second.stderr
    assert second.stderr == (f"error: output: {out} is in use by another model-router batch (pid {first.pid});"
                             " wait for it to finish or give another output\n")
    assert first.returncode == 0, first_err
    assert "160/160 lines written" in first_err
    complete_output(out, 160)  # whole lines, each once: nothing interleaved
    assert not (tmp_path / "results.jsonl.lock").exists()


def test_two_outputs_on_one_store_do_not_run_at_once(tmp_path: Path, answered_records: list[dict[str, Any]]) -> None:
    source = requests_file(tmp_path / "requests.jsonl", answered_records, 160)
    store = tmp_path / "shared.sqlite"
    first = start(source, tmp_path / "a.jsonl", "--store", store, *QUIET)
    try:
        wait_for(tmp_path / "a.jsonl", first)
        second = run(source, tmp_path / "b.jsonl", "--store", store, *QUIET)
    finally:
        first.communicate(timeout=300)
    assert second.returncode == 2
    assert second.stderr.startswith(f"error: store: {store} is in use by another model-router batch (pid {first.pid})")
    assert not (tmp_path / "b.jsonl").exists()
    assert first.returncode == 0
    complete_output(tmp_path / "a.jsonl", 160)


def test_a_lock_left_by_a_killed_run_does_not_block_the_next_run(
    tmp_path: Path, answered_records: list[dict[str, Any]]
) -> None:
    source = requests_file(tmp_path / "requests.jsonl", answered_records, 40)
    out = tmp_path / "results.jsonl"
    lock = tmp_path / "results.jsonl.lock"
    first = start(source, out, *QUIET)
    wait_for(lock, first)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=60)
    assert lock.exists()  # left behind: kill -9 runs no clean-up, but the kernel released the flock
    again = run(source, out, *QUIET)
    assert again.returncode == 0, again.stderr
    complete_output(out, 40)
    assert not lock.exists()


def file_size_limit(limit: int) -> Callable[[], None]:
    """Run the child as on a disk with ``limit`` bytes per file: past it, writes fail with EFBIG ("File too
    large") as they would with ENOSPC on a full disk. The signal a write past the limit sends is ignored,
    as a shell's ulimit -f leaves it, so the write returns the error instead of killing the process."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_disk_that_fills_up_leaves_whole_lines_only_and_the_rerun_resumes(
    tmp_path: Path, answered_records: list[dict[str, Any]]
) -> None:
    # RLIMIT_FSIZE, not /dev/full: it fails part way through like a real disk, after some lines were written,
    # and needs no privileges. The limit leaves room for the idempotency store (its -shm file is 32 KiB).
    lines = [json.dumps({"prompt": r["prompt"]}) for r in answered_records[:5]]
    lines += [json.dumps({"prompt": n}) for n in range(800)]  # invalid: small error records, nothing stored
    source = tmp_path / "requests.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "results.jsonl"
    limit = 64 * 1024

    full = run(source, out, *QUIET, preexec_fn=file_size_limit(limit))
    assert full.returncode == 1
    message = full.stderr.strip()
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith(f"error: output: writing {out} failed after ")
    assert "File too large" in message and "run the same command again to resume" in message
    body = out.read_bytes()
    assert 0 < len(body) <= limit and body.endswith(b"\n")
    kept = [json.loads(line) for line in body.splitlines()]  # every line whole
    assert [o["line"] for o in kept] == list(range(1, len(kept) + 1)) and len(kept) < len(lines)
    assert f"failed after {len(kept)} of {len(lines)} lines" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["requests.jsonl", "results.jsonl",
                                                          "results.jsonl.done.sqlite"]

    resumed = run(source, out, *QUIET)
    assert resumed.returncode == 1, resumed.stderr  # the 800 invalid lines
    assert f"{len(lines)}/{len(lines)} lines written" in resumed.stderr
    answered = sum("result" in o for o in kept)
    assert answered >= 3 and f"{answered} done in an earlier run" in resumed.stderr  # not routed again
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert [o["line"] for o in written] == list(range(1, len(lines) + 1))


@pytest.mark.skipif(sys.platform != "linux", reason="reads the peak memory from /proc/self/status")
def test_a_huge_line_is_counted_not_held_in_memory(tmp_path: Path) -> None:
    source = tmp_path / "requests.jsonl"
    huge = b'{"prompt": "' + b"x" * (256 * 1024 * 1024) + b'"}'
    source.write_bytes(b'{"prompt": 1}\n' + huge + b'\n{"prompt": 2}\n')

    def peak_memory_mb(path: Path) -> float:
        # VmHWM, not ru_maxrss: the latter carries the forking parent's peak (pytest's) across exec.
        probe = ("import re, sys; from model_router_tools.cli.main import main; code = main(sys.argv[1:]);"
                 " status = open('/proc/self/status').read();"
                 " print(re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1), file=sys.stderr); sys.exit(code)")
        done = subprocess.run([sys.executable, "-c", probe, "batch", str(path), str(tmp_path / f"{path.stem}.out"),
                               *QUIET], capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        return int(done.stderr.strip().splitlines()[-1]) / 1024

    small = tmp_path / "small.jsonl"
    small.write_text('{"prompt": 1}\n{"prompt": 2}\n')
    assert peak_memory_mb(source) - peak_memory_mb(small) < 64
    written = [json.loads(line) for line in (tmp_path / "requests.out").read_text().splitlines()]
    assert [(o["line"], o["error"]["field"]) for o in written] == [(1, "prompt"), (2, "(line)"), (3, "prompt")]
    assert written[1]["error"]["message"].startswith(f"line 2 is {len(huge)} bytes, over the")


def test_an_interrupted_run_keeps_whole_lines_releases_its_lock_and_resumes(
    tmp_path: Path, answered_records: list[dict[str, Any]]
) -> None:
    source = requests_file(tmp_path / "requests.jsonl", answered_records, 160)
    out = tmp_path / "results.jsonl"
    first = start(source, out, "--no-progress", "--workers", "2", "--strategy", "heuristic")
    deadline = time.monotonic() + 120
    while not out.exists() or out.stat().st_size < 20_000:  # a few chunks written
        assert first.poll() is None and time.monotonic() < deadline, "the run ended before it could be interrupted"
        time.sleep(0.05)
    first.send_signal(signal.SIGINT)
    err = first.communicate(timeout=120)[1]
    assert first.returncode == 130 and "Traceback" not in err
    assert err.startswith("interrupted: the lines done so far are recorded; run the same command again to resume")
    kept = [json.loads(line) for line in out.read_text().splitlines()]
    assert [o["line"] for o in kept] == list(range(1, len(kept) + 1)) and 0 < len(kept) < 160
    assert not (tmp_path / "results.jsonl.lock").exists() and not (tmp_path / "results.summary.json").exists()
    again = run(source, out, *QUIET)
    assert again.returncode == 0
    complete_output(out, 160)
    answered = sum("result" in o for o in kept)
    assert json.loads((tmp_path / "results.summary.json").read_text())["from_earlier_run"] >= answered
