"""``model-router batch INPUT.jsonl OUTPUT.jsonl``: the batch's per-line workflow on the local engine.

Each line runs through the ItemProcessor of statemachine/batch.asl.json (Prepare Item, the router's
states, Record Item Result) with the real handlers and the replay provider, in worker processes (the
interpreter is pure Python: threads would share one core). Done lines are recorded in a SQLite
idempotency store beside the output, so an interrupted run resumes where it stopped: a rerun of the
same input routes only the lines that are not done, and calls no model for the others.

The input is read as a stream, twice (a fingerprint first: it is the idempotency key's version), and
only a bounded number of lines is in flight, so memory stays flat however large the input. Paths, the
run lock and the output writer are model_router_tools.local.batch_files.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import math
import multiprocessing
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model_router.batch import lines as batch_lines
from model_router_tools.asl.batch_definition import BATCH_ASL, item_processor_definition
from model_router_tools.local import batch_files as files

CHUNK = 16  # lines per task sent to a worker: amortises the inter-process hop
TASKS_IN_FLIGHT_PER_WORKER = 4  # enough to keep a worker busy; bounds memory on a huge input
_engine: Any = None  # one per worker process


def item_engine(env_overrides: dict[str, str]) -> Any:
    """A LocalEngine that runs one batch line: the batch ItemProcessor as a state machine of its own."""
    # Late for start-up time: moto (and the engine on it) takes seconds to import; only workers need it.
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    from model_router_tools.local.engine import LocalEngine, assign_heap_keys, substitute_definition

    # The router's definition is the cheapest one to let the engine parse; we then swap in the line's
    # workflow (parsing the whole batch definition costs seconds per process for nothing).
    engine = LocalEngine(state_machine="RouterStateMachine", env_overrides=env_overrides)
    batch = json.loads(BATCH_ASL.read_text(encoding="utf-8"))
    definition = json.dumps(item_processor_definition(batch))
    engine.definition = substitute_definition(engine.template, "BatchStateMachine", definition)
    engine.program = AmazonStateLanguageParser.parse(engine.definition)[0]
    assign_heap_keys(engine.program)
    return engine


def _start_worker(env_overrides: dict[str, str]) -> None:
    global _engine
    if _engine is None or _engine.env_overrides != env_overrides:
        _engine = item_engine(env_overrides)
        _engine.env_overrides = env_overrides
        for arn in _engine.environments:  # import every handler now (before a fork, once for all workers)
            _engine._handler(arn)


def _run_items(task: tuple[dict[str, Any], list[dict[str, Any]]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Each line's output, and the shadow executions the lines started (run by the parent, after)."""
    source, items = task
    outputs = []
    started: list[dict[str, Any]] = []
    for item in items:
        try:
            result = _engine.run({"item": item, "source": source})
        except Exception as exc:  # the engine failed on this line: still one record for it
            outputs.append(batch_lines.not_processed(item, source, "the local engine failed on it",
                                                     {"errorType": type(exc).__name__, "errorMessage": str(exc)}))
            continue
        started.extend(result.started)
        if result.status == "SUCCEEDED":
            outputs.append(result.output)
        else:  # a batch step itself failed (not a routing failure: those are error records)
            outputs.append(batch_lines.not_processed(item, source, f"its workflow failed with {result.error}",
                                                     result.cause))
    return outputs, started


@dataclass
class Progress:
    done: int = 0
    cost_usd: float = 0.0

    def add(self, outputs: list[dict[str, Any]]) -> None:
        self.done += len(outputs)
        self.cost_usd += sum(o["result"]["cost"]["total_usd"] for o in outputs if "result" in o
                             and not o.get("from_earlier_run"))


def _source(path: Path, etag: str) -> dict[str, Any]:
    """The local stand-in of an S3 object: its path and a content hash as the version (the idempotency key)."""
    return {"bucket": "local", "key": path.resolve().as_posix(), "etag": etag}


def input_source(path: Path, body: bytes) -> dict[str, Any]:
    return _source(path, hashlib.sha256(body).hexdigest())


def scan_input(path: Path) -> tuple[dict[str, Any], int, int]:
    """The input's source (with its fingerprint), its number of items and of blank lines: one streamed pass."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            reader = batch_lines.LineReader(fh, digest)
            count = sum(1 for _ in reader)
    except OSError as exc:
        raise files.BatchPathError(f"input: cannot read {path}: {exc.strerror or exc}") from None
    return _source(path, digest.hexdigest()), count, reader.blank


def _tasks(path: Path, source: dict[str, Any], digest: Any) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    try:
        with path.open("rb") as fh:
            chunk: list[dict[str, Any]] = []
            for item in batch_lines.LineReader(fh, digest):
                chunk.append(item)
                if len(chunk) == CHUNK:
                    yield source, chunk
                    chunk = []
    except OSError as exc:
        raise files.BatchIncomplete(f"input: reading {path} failed part way: {exc.strerror or exc}; the lines"
                                    " written so far are whole: run the same command again to resume") from None
    if chunk:
        yield source, chunk


def default_store(output: Path) -> Path:
    return output.with_name(output.name + ".done.sqlite")


def summary_path(output: Path) -> Path:
    return output.with_name(output.stem + ".summary.json")


def check_workers(workers: int) -> None:
    if not 1 <= workers <= files.MAX_WORKERS:
        raise files.BatchPathError(f"workers: {workers} is out of range (1..{files.MAX_WORKERS})")


def run_batch(
    input_path: Path,
    output_path: Path,
    *,
    workers: int = 2,
    env_overrides: dict[str, str] | None = None,
    store: Path | None = None,
    on_progress: Callable[[Progress, int], None] | None = None,
    outcomes: Path | None = None,
) -> dict[str, Any]:
    """Route every line; write the output lines in line order and the summary beside them; return the summary.

    With ``outcomes`` (and ``SHADOW_SAMPLE_RATE`` in ``env_overrides``), the shadow executions the router starts
    run in this process once their lines are written, and their outcome records are appended to ``outcomes``.

    Raises :class:`~model_router_tools.local.batch_files.BatchError` (one line to show): a path that cannot be used or
    another run on the same output or store (checked before any line is routed), or a write that failed
    part way (the output then holds whole lines only, and a rerun resumes)."""
    check_workers(workers)
    store_path = store or default_store(output_path)
    summary_file = summary_path(output_path)
    files.check_input(input_path)
    files.check_writable_path(output_path, "output")
    files.check_writable_path(summary_file, "summary")
    roles = {"input": input_path, "output": output_path, "summary": summary_file, "store": store_path,
             "output lock": files.lock_path(output_path), "store lock": files.lock_path(store_path)}
    if env_overrides and env_overrides.get("REPLAY_DATASET"):
        roles["dataset"] = Path(env_overrides["REPLAY_DATASET"])
    if outcomes is not None:
        files.check_writable_path(outcomes, "outcomes")
        roles["outcomes"] = outcomes
    files.check_distinct(roles)
    files.check_store(store_path)
    files.make_parent(output_path, "output")
    with contextlib.ExitStack() as held:
        held.enter_context(files.exclusive(output_path, "output"))
        files.make_parent(store_path, "store")  # only once the output is ours: a refused run creates nothing
        held.enter_context(files.exclusive(store_path, "store"))
        out = held.enter_context(files.JsonlWriter(output_path, store_path))
        files.open_store(store_path)  # once, before the workers open it
        source, total, blank = scan_input(input_path)
        env = {"IDEMPOTENCY_STORE": str(store_path.resolve()), "IDEMPOTENCY_TABLE": "", **(env_overrides or {})}
        with contextlib.suppress(OSError):
            summary_file.unlink()  # it described the output this run rewrites; the new one comes at the end
        out.start(total)
        progress = Progress()
        views: list[dict[str, Any]] = []
        digest = hashlib.sha256()
        shadows = _shadow_runner(held, env, outcomes)
        for chunk, started in _map(_tasks(input_path, source, digest), env, min(workers, math.ceil(total / CHUNK))):
            out.write(b"".join(batch_lines.jsonl(line) for line in chunk), len(chunk))
            views.extend(batch_lines.summary_view(line) for line in chunk)
            progress.add(chunk)
            if shadows is not None:  # after the lines are written: a shadow never delays or changes a result
                shadows.run_started(started)
            if on_progress:
                on_progress(progress, total)
        if digest.hexdigest() != source["etag"] or out.lines != total:
            raise files.BatchIncomplete(f"input: {input_path} changed while the batch read it; run the same command"
                                        " again (answered lines are not routed again)")
        out.finish()
        summary = batch_lines.summarise(
            views, lines=total, blank=blank, source=source,
            results={"path": str(output_path), "summary_path": str(summary_file)},
        )
        if shadows is not None:
            summary["shadow"] = {**shadows.stats.to_dict(), "outcomes_path": str(outcomes),
                                 "sample_rate": float(env.get("SHADOW_SAMPLE_RATE") or 0),
                                 "max_usd": float(env.get("SHADOW_MAX_USD_PER_DAY") or 0) or None}
        files.write_atomically(summary_file, (json.dumps(summary, indent=2) + "\n").encode("utf-8"))
    return summary


def _shadow_runner(held: contextlib.ExitStack, env: dict[str, str], outcomes: Path | None) -> Any:
    """The run's shadow runner (its outcomes file held open by ``held``), or None when nothing is shadowed."""
    if outcomes is None:
        return None
    from model_router_tools.local.shadow import ShadowRunner, open_outcomes

    return ShadowRunner(env, held.enter_context(open_outcomes(outcomes)))


def _map(tasks: Iterator[tuple[dict[str, Any], list[dict[str, Any]]]], env: dict[str, str],
         workers: int) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """Each task's outputs, in task order."""
    if workers <= 1:
        _start_worker(env)
        yield from map(_run_items, tasks)
        return
    # fork is cheapest where it is safe (Linux); elsewhere spawn re-imports the package per worker.
    method = "fork" if os.name == "posix" and "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    if method == "fork":
        _start_worker(env)  # forked workers inherit it; nothing has opened the idempotency store yet
    with context.Pool(workers, initializer=_start_worker, initargs=(env,)) as pool:
        # A bounded window, not imap: imap's feeder would read the whole input ahead of the workers.
        pending: collections.deque[Any] = collections.deque()
        for task in tasks:
            pending.append(pool.apply_async(_run_items, (task,)))
            if len(pending) >= workers * TASKS_IN_FLIGHT_PER_WORKER:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
