"""``model-router batch INPUT.jsonl OUTPUT.jsonl``: the batch's per-line workflow on the local engine.

Each line runs through the ItemProcessor of statemachine/batch.asl.json (Prepare Item, the router's
states, Record Item Result) with the real handlers and the replay provider, in worker processes (the
interpreter is pure Python: threads would share one core). Done lines are recorded in a SQLite
idempotency store beside the output, so an interrupted run resumes where it stopped: a rerun of the
same input routes only the lines that are not done, and calls no model for the others.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model_router.batch import lines as batch_lines
from model_router.batch.definition import BATCH_ASL, item_processor_definition
from model_router.batch.idempotency import create_store

CHUNK = 16  # lines per task sent to a worker: amortises the inter-process hop
_engine: Any = None  # one per worker process


def item_engine(env_overrides: dict[str, str]) -> Any:
    """A LocalEngine that runs one batch line: the batch ItemProcessor as a state machine of its own."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    from model_router.local.engine import LocalEngine, _assign_heap_keys, function_arn
    from model_router.local.template import definition_substitutions

    # The router's definition is the cheapest one to let the engine parse; we then swap in the line's
    # workflow (parsing the whole batch definition costs seconds per process for nothing).
    engine = LocalEngine(state_machine="RouterStateMachine", env_overrides=env_overrides)
    batch = json.loads(BATCH_ASL.read_text(encoding="utf-8"))
    definition = json.dumps(item_processor_definition(batch))
    for name, logical_id in definition_substitutions(engine.template, "BatchStateMachine").items():
        definition = definition.replace("${" + name + "}", function_arn(logical_id))
    engine.definition = definition
    engine.program = AmazonStateLanguageParser.parse(definition)[0]
    _assign_heap_keys(engine.program)
    return engine


def _start_worker(env_overrides: dict[str, str]) -> None:
    global _engine
    if _engine is None or _engine.env_overrides != env_overrides:
        _engine = item_engine(env_overrides)
        _engine.env_overrides = env_overrides
        for arn in _engine.environments:  # import every handler now (before a fork, once for all workers)
            _engine._handler(arn)


def _run_items(task: tuple[dict[str, Any], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    source, items = task
    outputs = []
    for item in items:
        result = _engine.run({"item": item, "source": source})
        if result.status == "SUCCEEDED":
            outputs.append(result.output)
        else:  # a batch step itself failed (not a routing failure: those are error records)
            outputs.append(batch_lines.not_processed(item, source, f"{result.error}: {result.cause}"))
    return outputs


@dataclass
class Progress:
    done: int = 0
    cost_usd: float = 0.0

    def add(self, outputs: list[dict[str, Any]]) -> None:
        self.done += len(outputs)
        self.cost_usd += sum(o["result"]["cost"]["total_usd"] for o in outputs if "result" in o
                             and not o.get("from_earlier_run"))


def input_source(path: Path, body: bytes) -> dict[str, Any]:
    """The local stand-in of an S3 object: its path and a content hash as the version (the idempotency key)."""
    return {"bucket": "local", "key": path.resolve().as_posix(), "etag": hashlib.sha256(body).hexdigest()}


def default_store(output: Path) -> Path:
    return output.with_name(output.name + ".done.sqlite")


def summary_path(output: Path) -> Path:
    return output.with_name(output.stem + ".summary.json")


def run_batch(
    input_path: Path,
    output_path: Path,
    *,
    workers: int = 2,
    env_overrides: dict[str, str] | None = None,
    store: Path | None = None,
    on_progress: Callable[[Progress, int], None] | None = None,
) -> dict[str, Any]:
    """Route every line; write the output lines in line order and the summary beside them; return the summary."""
    body = input_path.read_bytes()
    source = input_source(input_path, body)
    items, blank = batch_lines.split_lines(body)
    env = {"IDEMPOTENCY_STORE": str((store or default_store(output_path)).resolve()), "IDEMPOTENCY_TABLE": "",
           **(env_overrides or {})}
    if env["IDEMPOTENCY_STORE"] and not env["IDEMPOTENCY_TABLE"]:
        create_store(Path(env["IDEMPOTENCY_STORE"]))  # once, before the workers open it
    tasks = [(source, items[i:i + CHUNK]) for i in range(0, len(items), CHUNK)]
    progress = Progress()
    outputs: list[dict[str, Any]] = []
    output_path.parent.mkdir(parents=True, exist_ok=True)
    with output_path.open("w", encoding="utf-8") as out:
        for chunk in _map(tasks, env, workers):
            for line in chunk:
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
            out.flush()
            outputs.extend(chunk)
            progress.add(chunk)
            if on_progress:
                on_progress(progress, len(items))
    summary = batch_lines.summarise(
        outputs, lines=len(items), blank=blank, source=source,
        results={"path": str(output_path), "summary_path": str(summary_path(output_path))},
    )
    summary_path(output_path).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _map(tasks: list[tuple[dict[str, Any], list[dict[str, Any]]]], env: dict[str, str],
         workers: int) -> Iterator[list[dict[str, Any]]]:
    if workers <= 1 or len(tasks) <= 1:
        _start_worker(env)
        yield from map(_run_items, tasks)
        return
    # fork is cheapest where it is safe (Linux); elsewhere spawn re-imports the package per worker.
    method = "fork" if os.name == "posix" and "fork" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    if method == "fork":
        _start_worker(env)  # forked workers inherit it; nothing has opened the idempotency store yet
    with context.Pool(workers, initializer=_start_worker, initargs=(env,)) as pool:
        yield from pool.imap(_run_items, tasks)
