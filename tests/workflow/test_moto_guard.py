"""Fail loudly if a moto upgrade moves the internals src/model_router_tools/local/engine.py patches.

Each check names what the engine relies on (see the engine module's docstring): that the attribute exists,
has the signature the engine's stand-in mirrors, and is looked up at call time (a module global), so that
replacing it on the module takes effect. Then the engine is exercised from several threads at once.
"""

from __future__ import annotations

import inspect
import json
import threading
import time
import tomllib
import types
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from moto.stepfunctions.parser import utils as moto_utils
from moto.stepfunctions.parser.asl.component import eval_component
from moto.stepfunctions.parser.asl.component.common.path import result_path as result_path_module
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
from moto.stepfunctions.parser.asl.component.program import program as program_module
from moto.stepfunctions.parser.asl.component.state.exec import execute_state
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import inline_iteration_component
from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import branch_worker
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.eval import evaluation_details
from moto.stepfunctions.parser.asl.eval import states as states_module
from moto.stepfunctions.parser.asl.eval.program_state import ProgramEnded, ProgramError
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.utils import json_path as json_path_module
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.backend.execution_worker_comm import ExecutionWorkerCommunication

from model_router.tiers import Tier
from model_router_tools.local import engine as engine_module
from model_router_tools.local.engine import LocalEngine
from model_router_tools.replay.datasets import sample_path, tier_maps

# The engine silences Powertools' "No application metrics" warning; pytest resets filters per test.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

ROOT = Path(__file__).resolve().parents[2]

# Tests that check an "installed" patch take the ``engine`` fixture: LocalEngine() installs the patches.


def code_objects(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from code_objects(const)


def names_used(obj: Any) -> set[str]:
    """Every global/attribute name the code of a function, class or module refers to."""
    names: set[str] = set()
    if isinstance(obj, types.ModuleType):
        members = [v for v in vars(obj).values() if getattr(v, "__module__", None) == obj.__name__]
        for member in members:
            names |= names_used(member)
        return names
    if isinstance(obj, type):
        for value in vars(obj).values():
            func = getattr(value, "__func__", value)
            if isinstance(func, types.FunctionType):
                names |= names_used(func)
        return names
    for code in code_objects(obj.__code__):
        names |= set(code.co_names)
    return names


def params(func: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(func).parameters)


# -- version pin --------------------------------------------------------------------------------------


def test_installed_moto_is_the_pinned_version() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = [d for deps in project["project"]["optional-dependencies"].values() for d in deps
            if d.replace(" ", "").lower().startswith("moto[") or d.replace(" ", "").lower().startswith("moto==")]
    assert len(pins) == 1, pins
    assert "==" in pins[0], f"moto must be pinned exactly: {pins[0]}"
    assert metadata.version("moto") == pins[0].split("==", 1)[1].strip()


# -- the Lambda integration -----------------------------------------------------------------------------


def test_invoke_lambda_function_signature_and_lookup(engine: LocalEngine) -> None:
    original = engine_module._original_invoke
    assert original.__module__ == lambda_eval_utils.__name__
    assert original.__name__ == "_invoke_lambda_function"
    assert params(original) == ["parameters", "region", "state_credentials"]
    # The engine's stand-in accepts what moto passes.
    assert params(engine_module._dispatch_invoke) == params(original)
    # moto calls it through the module global, so replacing the attribute reroutes every lambda:invoke task.
    assert "_invoke_lambda_function" in names_used(lambda_eval_utils.execute_lambda_function_integration)
    assert lambda_eval_utils._invoke_lambda_function is engine_module._dispatch_invoke  # installed
    call = inspect.getsource(lambda_eval_utils.execute_lambda_function_integration)
    assert "_invoke_lambda_function(" in call and "parameters=parameters" in call
    # The error path the engine's FunctionError replies rely on.
    assert hasattr(lambda_eval_utils, "LambdaFunctionErrorException")


# -- Retry waits ---------------------------------------------------------------------------------------


def test_retrier_sleeps_through_a_module_level_time(engine: LocalEngine) -> None:
    assert engine_module._original_time is time
    assert "time" in vars(retrier_decl)
    assert {"time", "sleep"} <= names_used(retrier_decl.RetrierDecl._eval_body)
    assert isinstance(retrier_decl.time, engine_module._RetryClock)  # installed


def test_a_retry_does_not_really_sleep(engine_with: Callable[..., LocalEngine],
                                      answered_records: list[dict[str, Any]]) -> None:
    # Three throttled retries wait up to 2 + 4 + 8 s in the ASL; recorded instead of slept, the run is quick.
    engine = engine_with(FAULT_INJECTION="haiku.throttle=1")
    started = time.perf_counter()
    result = engine.run({"prompt": answered_records[0]["prompt"], "tier": "haiku"})
    assert time.perf_counter() - started < 2.0
    assert result.status == "SUCCEEDED", result.cause
    assert result.output["attempts"][0]["error"]["type"] == "ThrottlingException"


# -- the execution worker --------------------------------------------------------------------------------


def test_execution_worker_hooks() -> None:
    assert callable(ExecutionWorker._get_evaluation_entrypoint)
    assert callable(ExecutionWorker._execution_logic)
    assert params(ExecutionWorker._get_evaluation_entrypoint) == ["self"]
    assert params(ExecutionWorker._execution_logic) == ["self"]
    # _execution_logic asks the hook for the program (so a parsed-once program can be handed in) ...
    assert "_get_evaluation_entrypoint" in names_used(ExecutionWorker._execution_logic)
    # ... and leaves the environment on self.env, which the engine reads after the run.
    assert "env" in names_used(ExecutionWorker._execution_logic)
    init = params(ExecutionWorker.__init__)
    for name in ("evaluation_details", "exec_comm", "cloud_watch_logging_session", "activity_store"):
        assert name in init
    assert callable(ExecutionWorkerCommunication.terminated)
    assert issubclass(engine_module._InlineWorker, ExecutionWorker)


def test_evaluation_details_constructors() -> None:
    assert params(evaluation_details.AWSExecutionDetails) == ["account", "region", "role_arn"]
    assert set(params(evaluation_details.ExecutionDetails)) >= {"arn", "name", "role_arn", "inpt", "start_time"}
    assert set(params(evaluation_details.StateMachineDetails)) >= {"arn", "name", "typ", "definition"}
    assert set(params(evaluation_details.EvaluationDetails)) >= {
        "aws_execution_details", "execution_details", "state_machine_details"}
    assert isinstance(ProgramEnded, type) and isinstance(ProgramError, type)
    assert isinstance(moto_utils.TMP_THREADS, list)


def test_parser_returns_the_program_first(engine: LocalEngine) -> None:
    assert "${" not in engine.definition  # the template's substitutions are resolved
    parsed = AmazonStateLanguageParser.parse(engine.definition)
    assert isinstance(parsed[0], EvalComponent)
    assert isinstance(engine.program, type(parsed[0]))


# -- threads -----------------------------------------------------------------------------------------------


def test_execute_state_starts_its_task_thread_through_a_module_global_thread(engine: LocalEngine) -> None:
    assert "Thread" in vars(execute_state)
    assert "Thread" in names_used(execute_state.ExecutionState._evaluate_with_timeout)
    assert execute_state.Thread is engine_module._ContextThread  # installed


@pytest.mark.parametrize("module", [program_module, inline_iteration_component, branch_worker],
                         ids=["program", "inline_iteration_component", "branch_worker"])
def test_worker_threads_come_from_the_module_threading(engine: LocalEngine, module: types.ModuleType) -> None:
    assert "threading" in vars(module)
    assert {"threading", "Thread"} <= names_used(module)
    assert module.threading is engine_module._threading_shim  # installed
    assert module.threading.Thread is engine_module._ContextThread


def test_context_thread_accepts_what_moto_passes() -> None:
    seen: list[Any] = []
    thread = engine_module._ContextThread(target=lambda *a: seen.append(engine_module._active_engine.get()),
                                          args=(1,), daemon=True)
    thread.start()
    thread.join(5)
    assert seen == [None]


# -- JSONPath parser caches ------------------------------------------------------------------------------


@pytest.mark.parametrize("module", [json_path_module, result_path_module], ids=["json_path", "result_path"])
def test_jsonpath_modules_parse_through_a_module_global(engine: LocalEngine, module: types.ModuleType) -> None:
    assert "parse" in vars(module)
    assert "parse" in names_used(module)
    assert hasattr(module.parse, "cache_info")  # installed: the cached parser
    assert module.parse("$.route.tier") is module.parse("$.route.tier")


# -- JSON-aware deep copy of state values -------------------------------------------------------------------


def test_states_module_deep_copies_through_a_module_global_copy(engine: LocalEngine) -> None:
    assert "copy" in vars(states_module)
    assert "deepcopy" in inspect.getsource(states_module.States._extract)
    assert states_module.copy.deepcopy is not __import__("copy").deepcopy  # installed: the JSON-aware copy


def test_json_aware_copy_is_a_deep_copy(engine: LocalEngine) -> None:
    original = {"a": [1, {"b": "c"}], "d": None, "e": 1.5, "f": True}
    copied = states_module.copy.deepcopy(original)
    assert copied == original
    copied["a"][1]["b"] = "changed"
    copied["a"].append(2)
    assert original == {"a": [1, {"b": "c"}], "d": None, "e": 1.5, "f": True}


# -- concurrency --------------------------------------------------------------------------------------------


def _recorded(record: dict[str, Any], tier: Tier) -> str:
    model = tier_maps(str(sample_path()))[record["source"]].models[tier]
    answer: str = record["outcomes"][model]["response"]
    return answer


def test_forty_executions_from_four_threads_each_get_their_own_answer(
    engine: LocalEngine, answered_records: list[dict[str, Any]]
) -> None:
    prompts_seen: dict[str, int] = {}
    for record in answered_records:
        prompts_seen[" ".join(record["prompt"].split())] = prompts_seen.get(" ".join(record["prompt"].split()), 0) + 1
    unique = [r for r in answered_records if prompts_seen[" ".join(r["prompt"].split())] == 1]
    # Mix sources so runs end on different tiers with answers of different lengths.
    chosen = (unique[::max(1, len(unique) // 40)] + unique)[:40]
    assert len({r["id"] for r in chosen}) == 40
    jobs = [(f"req-{i:02d}-{record['id']}", record) for i, record in enumerate(chosen)]
    threads_used: set[int] = set()
    lock = threading.Lock()

    def run(job: tuple[str, dict[str, Any]]) -> tuple[str, dict[str, Any], Any]:
        with lock:
            threads_used.add(threading.get_ident())
        request_id, record = job
        return request_id, record, engine.run({"prompt": record["prompt"], "request_id": request_id})

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, jobs))
    assert len(threads_used) > 1

    tiers = set()
    for request_id, record, result in results:
        assert result.status == "SUCCEEDED", (request_id, result.error, result.cause)
        out = result.output
        assert out["request_id"] == request_id
        tier = Tier(out["tier"])
        tiers.add(tier)
        assert out["answer"] == _recorded(record, tier), request_id
        # The history is this execution's own: one Classify Request, its own input.
        assert result.states_entered.count("Classify Request") == 1
        assert request_id in result.events[0]["executionStartedEventDetails"]["input"]
        # And it matches a run of the same request on its own.
        alone = engine.run({"prompt": record["prompt"], "request_id": request_id}).output
        assert (alone["tier"], alone["status"], alone["confidence"], alone["answer"]) == \
            (out["tier"], out["status"], out["confidence"], out["answer"])
    assert len(tiers) > 1, "the sample should route to more than one tier"


def _haiku_tries(result: Any) -> int:
    """TaskScheduled events while in Invoke Haiku: 1 + the retries this execution made."""
    scheduled, current = 0, ""
    for event in result.events:
        current = event.get("stateEnteredEventDetails", {}).get("name", current)
        if str(getattr(event["type"], "value", event["type"])) == "TaskScheduled" and current == "Invoke Haiku":
            scheduled += 1
    return scheduled


def _throttle_retries() -> int:
    asl = json.loads((ROOT / "statemachine" / "router.asl.json").read_text())
    return int(next(rule["MaxAttempts"] for rule in asl["States"]["Invoke Haiku"]["Retry"]
                    if "ThrottlingException" in rule["ErrorEquals"]))


def test_concurrent_retries_stay_in_their_own_execution(engine_with: Callable[..., LocalEngine],
                                                        answered_records: list[dict[str, Any]]) -> None:
    engine = engine_with(FAULT_INJECTION="haiku.throttle=1")
    # One run first: moto assigns the Retry counters' heap keys on first use (see the fresh-engine test below).
    assert _haiku_tries(engine.run({"prompt": answered_records[0]["prompt"], "tier": "haiku"})) == \
        1 + _throttle_retries()
    prompts = [r["prompt"] for r in answered_records[1:13]]

    def run(prompt: str) -> Any:
        return engine.run({"prompt": prompt, "tier": "haiku"})

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, prompts))
    assert time.perf_counter() - started < 5.0
    for result in results:
        assert result.status == "SUCCEEDED", result.cause
        first = result.output["attempts"][0]
        assert (first["tier"], first["outcome"]) == ("haiku", "failed")
        assert _haiku_tries(result) == 1 + _throttle_retries()  # none borrowed from, or lent to, the others


def test_first_concurrent_retries_on_a_fresh_engine_count_their_own_attempts(
    engine_with: Callable[..., LocalEngine], answered_records: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = engine_with(FAULT_INJECTION="haiku.throttle=1")
    real_uid = eval_component.long_uid

    def slow_uid() -> str:
        time.sleep(0.05)  # widen the check-then-set window of the lazy heap_key, so the race always shows
        return str(real_uid())

    monkeypatch.setattr(eval_component, "long_uid", slow_uid)
    barrier = threading.Barrier(4)

    def run(record: dict[str, Any]) -> Any:
        barrier.wait()
        return engine.run({"prompt": record["prompt"], "tier": "haiku"})

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, answered_records[:4]))
    assert [_haiku_tries(r) for r in results] == [1 + _throttle_retries()] * 4
