"""Run the real state machine locally: moto's Step Functions interpreter, in-process handlers, no Docker.

This is the one module that touches moto internals. What it patches, and why:

* ``lambda_eval_utils._invoke_lambda_function`` - every ``arn:aws:states:::lambda:invoke`` task goes
  through it; we dispatch to the in-process handler with the environment the template gives that
  function. A raised exception becomes ``FunctionError`` + ``errorType`` = class name, as the real
  Python runtime reports it, so ASL ``ErrorEquals`` matches it.
* ``retrier_decl.time`` - Retry waits for real in moto; locally (and in tests) we record the wait instead.
* ``ExecutionWorker`` - we run its logic inline on the caller's thread with a program parsed once per
  definition (the ANTLR parse is most of moto's cost; execution state lives in the Environment).
* ``parse`` in moto's JSONPath helpers - moto builds a new ply parser for every path it evaluates
  (about a millisecond each); the parsed expressions are immutable, so we cache them.
* ``copy`` in moto's ``states`` module - every state's input and output is deep-copied there; the
  values are JSON, so a JSON-aware copy does the same work in a quarter of the time.
* ``boto_client_for`` in moto's Step Functions service task - the router's Start Shadow Evaluation
  (``states:startExecution``, no wait) calls it for a client; locally the engine records the start
  instead (``ExecutionResult.started``), and its caller runs the child on an engine of its own, after
  the parent finished, as Step Functions runs a started execution apart from the one that started it.
* ``threading`` in the modules that start moto's worker threads (program, task timeouts, Map, Parallel):
  those threads copy the caller's context, so the engine (a context variable) is known inside them.

tests/workflow/test_moto_guard.py fails loudly if a moto upgrade moves any of these.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import copy
import datetime
import functools
import importlib.util
import json
import logging
import os
import sys
import threading
import traceback
import types
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from moto.stepfunctions.parser import utils as moto_utils
from moto.stepfunctions.parser.api import StateMachineType
from moto.stepfunctions.parser.asl.component.common.path import result_path as result_path_module
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
from moto.stepfunctions.parser.asl.component.program import program as program_module
from moto.stepfunctions.parser.asl.component.state.exec import execute_state
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import inline_iteration_component
from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import branch_worker
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_sfn as sfn_service_task,
)
from moto.stepfunctions.parser.asl.eval import states as states_module
from moto.stepfunctions.parser.asl.eval.evaluation_details import (
    AWSExecutionDetails,
    EvaluationDetails,
    ExecutionDetails,
    StateMachineDetails,
)
from moto.stepfunctions.parser.asl.eval.program_state import ProgramEnded, ProgramError
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.utils import json_path as json_path_module
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.backend.execution_worker_comm import ExecutionWorkerCommunication

from model_router.providers import ModelProvider, provider_for
from model_router.settings import Settings, settings_scope
from model_router_tools.local import distributed_map
from model_router_tools.local.executions import ExecutionStore, execution_record
from model_router_tools.local.template import FunctionSpec, definition_substitutions, function_specs, load_template
from model_router_tools.providers import register_local_providers

ACCOUNT = "123456789012"
REGION = "us-east-1"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/model-router-local"
PROJECT_ROOT = Path(__file__).resolve().parents[3]


# Powertools reads these once, at import of each handler module. X-Ray has no daemon here.
LOCAL_PROCESS_ENV = {
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "AWS_DEFAULT_REGION": REGION,
}
logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)
warnings.filterwarnings("ignore", message="No application metrics to publish")


class _StdoutRouter:
    """sys.stdout stand-in: what a handler prints (Powertools logs and EMF metrics) goes to the engine
    running it, the way Lambda sends a function's stdout to CloudWatch; everything else passes through."""

    def __init__(self, real: Any):
        self.real = real

    def write(self, text: str) -> int:
        engine = _active_engine.get()
        if engine is None:
            return int(self.real.write(text))
        engine._capture(text)
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def function_arn(logical_id: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{logical_id}"


def state_machine_arn(logical_id: str) -> str:
    return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{logical_id}"


def substitute_definition(template: dict[str, Any], state_machine: str, definition: str) -> str:
    """The definition with each ``${Name}`` of the state machine's DefinitionSubstitutions replaced by the
    local ARN of the resource it names (a function, or another state machine)."""
    resources = template["Resources"]
    for name, logical_id in definition_substitutions(template, state_machine).items():
        kind = resources.get(logical_id, {}).get("Type", "")
        arn = state_machine_arn(logical_id) if kind.endswith("StateMachine") else function_arn(logical_id)
        definition = definition.replace("${" + name + "}", arn)
    return definition


@dataclass
class LambdaContext:
    """What handlers (and Powertools) read from the Lambda context."""

    function_name: str
    memory_limit_in_mb: int
    timeout_s: int
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local"

    @property
    def invoked_function_arn(self) -> str:
        return function_arn(self.function_name)

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_s * 1000


@dataclass
class ExecutionResult:
    execution_arn: str
    name: str
    status: str  # SUCCEEDED | FAILED
    output: Any = None
    error: str | None = None
    cause: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    retry_waits_s: list[float] = field(default_factory=list)
    # Executions this one started without waiting (states:startExecution): {state_machine_arn, input, name}.
    started: list[dict[str, Any]] = field(default_factory=list)

    @property
    def states_entered(self) -> list[str]:
        return [e["stateEnteredEventDetails"]["name"] for e in self.events if "stateEnteredEventDetails" in e]

    def cause_json(self) -> Any:
        return json.loads(self.cause) if self.cause else None


class _Done(ExecutionWorkerCommunication):
    def terminated(self) -> None:  # the caller reads the environment after the inline run
        pass


class _InlineWorker(ExecutionWorker):
    """Runs on the caller's thread, with a program parsed once per definition."""

    program: EvalComponent

    def _get_evaluation_entrypoint(self) -> EvalComponent:
        return self.program


_active_engine: contextvars.ContextVar[LocalEngine | None] = contextvars.ContextVar("active_engine", default=None)
# The Retry waits of the execution being run (a list shared with moto's worker threads via the context).
_retry_waits: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar("retry_waits", default=None)
_original_invoke = lambda_eval_utils._invoke_lambda_function
_original_client_for = sfn_service_task.boto_client_for
# The executions the running one started (states:startExecution), shared with moto's threads via the context.
_started: contextvars.ContextVar[list[dict[str, Any]] | None] = contextvars.ContextVar("started", default=None)
_original_time = retrier_decl.time
_patch_lock = threading.Lock()
# One handler invocation at a time in this process, as each Lambda container runs one at a time:
# Powertools keeps Logger keys and Metrics sets (shared by all its instances) per process.
_HANDLER_LOCK = threading.Lock()


class _RetryClock:
    """Stands in for ``time`` inside moto's retrier: the engine decides whether a Retry really waits."""

    def sleep(self, seconds: float) -> None:
        engine = _active_engine.get()
        if engine is None:
            _original_time.sleep(seconds)
            return
        engine._record_wait(seconds)


class _LocalStepFunctions:
    """Stands in for boto3's Step Functions client inside a service task: records the start."""

    def __init__(self, engine: LocalEngine):
        self.engine = engine

    def start_execution(self, **parameters: Any) -> dict[str, Any]:
        # moto passes the API's member names as the ASL wrote them (StateMachineArn) or as boto3 does.
        def get(name: str) -> Any:
            return parameters.get(name, parameters.get(name[0].lower() + name[1:]))

        arn, body, name = get("StateMachineArn"), get("Input") or "{}", get("Name")
        if self.engine.refuse_child_starts:
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": "ExecutionLimitExceeded", "Message": "refused by the local run"},
                               "ResponseMetadata": {"HTTPStatusCode": 400, "RequestId": "local"}}, "StartExecution")
        name = name or uuid.uuid4().hex
        started = _started.get()
        if started is not None:
            started.append({"state_machine_arn": arn, "input": json.loads(body) if isinstance(body, str) else body,
                            "name": name})
        execution = str(arn).replace(":stateMachine:", ":execution:") + f":{name}"
        return {"ExecutionArn": execution, "StartDate": datetime.datetime.now(tz=datetime.UTC).isoformat()}


def _sfn_client_for(*args: Any, **kwargs: Any) -> Any:
    engine = _active_engine.get()
    if engine is None:
        return _original_client_for(*args, **kwargs)
    return _LocalStepFunctions(engine)


def _dispatch_invoke(parameters: dict[str, Any], region: str, state_credentials: Any) -> dict[str, Any]:
    engine = _active_engine.get()
    if engine is None:
        return _original_invoke(parameters, region, state_credentials)
    return engine._invoke(parameters)


class _ContextThread(threading.Thread):
    """A Thread that runs its target in a copy of the starting thread's context."""

    def __init__(self, **kwargs: Any):  # moto passes everything by keyword
        target: Callable[..., Any] | None = kwargs.pop("target", None)
        run_in_context = None
        if target is not None:
            context, inner = contextvars.copy_context(), target

            def run_in_context(*a: Any, **k: Any) -> Any:
                return context.run(inner, *a, **k)

        super().__init__(target=run_in_context, **kwargs)


_threading_shim = types.SimpleNamespace(**{**vars(threading), "Thread": _ContextThread})
THREADED_MODULES = (program_module, inline_iteration_component, branch_worker)


def _json_deepcopy(value: Any, memo: Any = None) -> Any:
    """``copy.deepcopy`` for JSON values (anything else goes to the real deepcopy)."""
    kind = type(value)
    if kind is dict:
        return {k: _json_deepcopy(v) for k, v in value.items()}
    if kind is list:
        return [_json_deepcopy(v) for v in value]
    if value is None or kind in (str, int, float, bool):
        return value
    return copy.deepcopy(value, memo)


_copy_shim = types.SimpleNamespace(**{**vars(copy), "deepcopy": _json_deepcopy})


def _cached_parser(parse: Any) -> Any:
    if hasattr(parse, "cache_info"):
        return parse  # already ours
    return functools.lru_cache(maxsize=4096)(parse)


def install_patches() -> None:
    """Idempotent; outside a local run the patched functions behave as moto's originals."""
    with _patch_lock:
        json_path_module.parse = _cached_parser(json_path_module.parse)
        states_module.copy = _copy_shim  # type: ignore[assignment]
        result_path_module.parse = _cached_parser(result_path_module.parse)
        lambda_eval_utils._invoke_lambda_function = _dispatch_invoke
        sfn_service_task.boto_client_for = _sfn_client_for
        retrier_decl.time = _RetryClock()  # type: ignore[assignment]
        if not isinstance(sys.stdout, _StdoutRouter):
            sys.stdout = _StdoutRouter(sys.stdout)
        execute_state.Thread = _ContextThread  # type: ignore[assignment,misc]
        for module in THREADED_MODULES:
            module.threading = _threading_shim  # type: ignore[attr-defined]
        distributed_map.install(_copy_shim)  # Distributed Map ResultWriter (statemachine/batch.asl.json)


def assign_heap_keys(root: Any) -> None:
    """Give every component of a parsed program its heap key now, before executions share it.

    moto assigns ``EvalComponent.heap_key`` lazily, on first use; two executions retrying at once for
    the first time would race on it and lose their Retry counters.
    """
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, EvalComponent):
            _ = node.heap_key
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, (list, tuple, set)):
            stack.extend(node)
        elif hasattr(node, "__dict__") and type(node).__module__.startswith("moto."):
            stack.extend(vars(node).values())


class LocalEngine:
    """Executes one state machine of template.yaml with the functions' real handlers."""

    def __init__(
        self,
        *,
        root: Path = PROJECT_ROOT,
        template: str = "template.yaml",
        state_machine: str = "RouterStateMachine",
        parameters: dict[str, str] | None = None,
        env_overrides: dict[str, str] | None = None,
        sleep_on_retry: bool = False,
        workflow_type: str = "STANDARD",
        echo_output: bool = False,
        max_output_lines: int = 20_000,
        history: ExecutionStore | None = None,
    ):
        for key, value in LOCAL_PROCESS_ENV.items():
            os.environ.setdefault(key, value)
        install_patches()
        self.root = root
        self.template = load_template(root / template)
        resource = self.template["Resources"][state_machine]
        self.state_machine_name = state_machine
        self.state_machine_arn = state_machine_arn(state_machine)
        self.workflow_type = workflow_type
        self.sleep_on_retry = sleep_on_retry
        self.functions: dict[str, FunctionSpec] = function_specs(self.template, root, parameters)
        register_local_providers()
        # Replay answers, and its recorded scores judge the shadow workflow's answers (model_router_tools.replay.judge).
        # The LLM classifier answers from a script or the recorded outcomes (replay/classifier.py); a local run has
        # no deployment to forbid it and costs nothing, so a request asking for the llm strategies gets them.
        overrides = {"MODEL_PROVIDER": "replay", "JUDGE": "recorded", "LLM_CLASSIFIER_CLIENT": "replay",
                     "ALLOW_LLM_CLASSIFIER": "true", **(env_overrides or {})}
        self.environments = {
            arn: {**spec.environment, **overrides, "AWS_LAMBDA_FUNCTION_NAME": spec.logical_id}
            for arn, spec in ((function_arn(s.logical_id), s) for s in self.functions.values())
        }
        definition = (root / resource["Properties"]["DefinitionUri"]).read_text()
        self.definition = substitute_definition(self.template, state_machine, definition)
        self.program: EvalComponent = AmazonStateLanguageParser.parse(self.definition)[0]
        assign_heap_keys(self.program)
        self._handlers: dict[str, Callable[[dict[str, Any], Any], Any]] = {}
        self._modules: dict[Path, ModuleType] = {}
        self._load_lock = threading.Lock()
        self.invocations: dict[str, int] = {}
        self._count_lock = threading.Lock()
        # The handlers' stdout (structured logs, EMF metric blobs), most recent lines only.
        self.output: collections.deque[str] = collections.deque(maxlen=max_output_lines)
        self.echo_output = echo_output
        # Keep each run's history on disk for `model-router history` (the CLI turns this on).
        self.history = history
        # Fault tests: every states:startExecution fails (the router must catch it and answer anyway).
        self.refuse_child_starts = False

    def function_settings(self, logical_id: str) -> Settings:
        """The settings a function of this engine runs with (template environment + overrides)."""
        return Settings.from_mapping(self.environments[function_arn(logical_id)])

    def function_provider(self, logical_id: str) -> ModelProvider:
        """The (cached) provider a function of this engine calls: the one its handler gets."""
        environment = self.environments[function_arn(logical_id)]
        with settings_scope(environment):
            return provider_for(Settings.from_mapping(environment))

    # -- handlers -------------------------------------------------------------------------------
    def _handler(self, arn: str) -> Callable[[dict[str, Any], Any], Any]:
        handler = self._handlers.get(arn)
        if handler is not None:
            return handler
        with self._load_lock:
            return self._load_handler(arn)

    def _load_handler(self, arn: str) -> Callable[[dict[str, Any], Any], Any]:
        handler = self._handlers.get(arn)
        if handler is None:
            spec = next(s for s in self.functions.values() if function_arn(s.logical_id) == arn)
            module_name, func_name = spec.handler.rsplit(".", 1)
            path = spec.code_uri / (module_name.replace(".", "/") + ".py")
            module = self._modules.get(path)
            if module is None:
                unique = "model_router_fn_" + path.parent.name + "_" + module_name.replace(".", "_")
                loaded = importlib.util.spec_from_file_location(unique, path)
                if loaded is None or loaded.loader is None:
                    raise ImportError(f"cannot load handler {spec.handler} from {path}")
                module = importlib.util.module_from_spec(loaded)
                loaded.loader.exec_module(module)
                self._modules[path] = module
            handler = getattr(module, func_name)
            self._handlers[arn] = handler
        return handler

    def _invoke(self, parameters: dict[str, Any]) -> dict[str, Any]:
        arn = parameters["FunctionName"]
        if arn not in self.environments:
            raise KeyError(f"the state machine invokes {arn}, which is not a function of the template")
        event = json.loads(parameters.get("Payload") or b"{}")
        spec = self.functions[arn.rsplit(":", 1)[1]]
        context = LambdaContext(spec.logical_id, spec.memory_mb, spec.timeout_s)
        with self._count_lock:
            self.invocations[spec.logical_id] = self.invocations.get(spec.logical_id, 0) + 1
        try:
            handler = self._handler(arn)
            with _HANDLER_LOCK, settings_scope(self.environments[arn]):
                result = handler(event, context)
            # Lambda serialises the return value: so do we, so a non-JSON return fails here as there.
            payload = json.loads(json.dumps(result))
        except Exception as exc:
            return {
                "StatusCode": 200,
                "FunctionError": "Unhandled",
                "ExecutedVersion": "$LATEST",
                "Payload": {
                    "errorType": type(exc).__name__,
                    "errorMessage": str(exc),
                    "requestId": context.aws_request_id,
                    "stackTrace": traceback.format_exception(exc)[-3:],
                },
            }
        return {"StatusCode": 200, "ExecutedVersion": "$LATEST", "Payload": payload}

    def _capture(self, text: str) -> None:
        if text.strip():
            self.output.append(text.rstrip("\n"))
            if self.echo_output:
                sys.stderr.write(text if text.endswith("\n") else text + "\n")

    def _record_wait(self, seconds: float) -> None:
        waits = _retry_waits.get()
        if waits is not None:
            waits.append(seconds)
        if self.sleep_on_retry:
            _original_time.sleep(seconds)

    # -- executions -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _active(self) -> Iterator[tuple[list[float], list[dict[str, Any]]]]:
        waits: list[float] = []
        started: list[dict[str, Any]] = []
        tokens = _active_engine.set(self), _retry_waits.set(waits), _started.set(started)
        try:
            yield waits, started
        finally:
            _started.reset(tokens[2])
            _retry_waits.reset(tokens[1])
            _active_engine.reset(tokens[0])

    def run(self, request: Any, name: str | None = None) -> ExecutionResult:
        """Execute the state machine on ``request`` synchronously and return its outcome and history."""
        name = name or uuid.uuid4().hex
        execution_arn = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{self.state_machine_name}:{name}"
        details = EvaluationDetails(
            aws_execution_details=AWSExecutionDetails(account=ACCOUNT, region=REGION, role_arn=ROLE_ARN),
            execution_details=ExecutionDetails(
                arn=execution_arn,
                name=name,
                role_arn=ROLE_ARN,
                inpt=json.loads(json.dumps(request)),
                start_time=datetime.datetime.now(tz=datetime.UTC).isoformat(),
            ),
            state_machine_details=StateMachineDetails(
                arn=self.state_machine_arn,
                name=self.state_machine_name,
                typ=StateMachineType(self.workflow_type),
                definition=self.definition,
            ),
        )
        worker = _InlineWorker(
            evaluation_details=details, exec_comm=_Done(), cloud_watch_logging_session=None, activity_store={}
        )
        worker.program = self.program
        with self._active() as (waits, started):
            worker._execution_logic()
        # moto keeps every worker thread it starts in a module list, for its own test cleanup.
        moto_utils.TMP_THREADS[:] = [t for t in moto_utils.TMP_THREADS if t.is_alive()]
        env = worker.env
        assert env is not None
        state = env.program_state()
        events: list[dict[str, Any]] = [dict(e) for e in env.event_manager.get_event_history()]
        result = ExecutionResult(execution_arn, name, "FAILED", events=events, retry_waits_s=list(waits),
                                 started=list(started))
        if isinstance(state, ProgramEnded):
            result.status = "SUCCEEDED"
            result.output = env.states.get_input()
        elif isinstance(state, ProgramError):
            failure = state.error or {}
            result.error = failure.get("error")
            result.cause = failure.get("cause")
        else:
            result.error = type(state).__name__
        if self.history is not None:
            self.history.save(execution_record(result, state_machine_arn=self.state_machine_arn, request=request))
        return result
