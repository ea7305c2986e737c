"""The events the state machines send each Lambda, parsed into typed inputs at the handler boundary.

Each handler's first line parses its event (``XxxEvent.from_event``; the batch function's
``parse_batch_event``): the payload statemachine/router.asl.json (or batch.asl.json) builds for that state,
checked field by field. A payload of the wrong shape is a bug in the workflow definition or a hand-made
event, never caller input (an invalid *request* is the classifier's result, not an error), so it raises
:class:`MalformedEvent` naming the field. No Retry in either definition matches that name: the execution
history shows it at once, with the field (Invoke's and Score Answer's Catch record it like any failure).

The workflow state that flows from state to state stays a dict (the scorer's ``state``, the batch's
``batch``/``item``): it is the state machine's document, read by JSONPath in the ASL. What is typed here
is what a handler reads from its event to do its work.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeAlias, cast

from model_router.contracts.request import valid_request_id
from model_router.tiers import Tier

TIERS = tuple(tier.value for tier in Tier)
ECHO_LIMIT = 40  # a bad enum value is echoed, cut to this many characters; other values never are


class MalformedEvent(ValueError):
    """A Lambda's event does not have the shape its state sends; ``field`` is the offending field's path."""

    def __init__(self, field: str, problem: str):
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


# -- field checks: each names the field by its path in the event --------------------------------------------


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _get(parent: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in parent:
        raise MalformedEvent(path, "missing")
    return parent[key]


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedEvent(path, f"expected an object, got {_json_type(value)}")
    return value


def _event(event: Any) -> dict[str, Any]:
    return _object(event, "(event)")


def _field_object(parent: Mapping[str, Any], key: str, path: str) -> dict[str, Any]:
    return _object(_get(parent, key, path), path)


def _string(parent: Mapping[str, Any], key: str, path: str) -> str:
    value = _get(parent, key, path)
    if not isinstance(value, str) or not value:
        got = "an empty string" if value == "" else _json_type(value)
        raise MalformedEvent(path, f"expected a non-empty string, got {got}")
    return value


def _integer(parent: Mapping[str, Any], key: str, path: str, *, low: int = 0) -> int:
    value = _get(parent, key, path)
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedEvent(path, f"expected an integer, got {_json_type(value)}")
    if value < low:
        raise MalformedEvent(path, f"expected an integer >= {low}, got {value}")
    return value


def _number(parent: Mapping[str, Any], key: str, path: str) -> float:
    value = _get(parent, key, path)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedEvent(path, f"expected a number, got {_json_type(value)}")
    return float(value)


def _array(parent: Mapping[str, Any], key: str, path: str, *, non_empty: bool = False) -> list[Any]:
    value = _get(parent, key, path)
    if not isinstance(value, list):
        raise MalformedEvent(path, f"expected an array, got {_json_type(value)}")
    if non_empty and not value:
        raise MalformedEvent(path, "expected a non-empty array")
    return value


def _one_of(parent: Mapping[str, Any], key: str, path: str, allowed: tuple[str, ...]) -> str:
    value = _get(parent, key, path)
    if value not in allowed:
        shown = repr(value)[:ECHO_LIMIT] if isinstance(value, str) else _json_type(value)
        raise MalformedEvent(path, f"{shown} is not one of {', '.join(allowed)}")
    return str(value)


# -- the router's functions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassifierEvent:
    """Classify Request: ``{"request": <execution input>, "execution_name": ..., "execution_id": ...}``.

    ``request`` is the caller's input as sent (any JSON): validating it is the classifier's job, and an
    invalid one is a ``valid: false`` result, not a malformed event. The execution fields are None only
    for callers outside a workflow (``model-router route``).
    """

    request: Any
    execution_name: str | None = None
    execution_id: str | None = None

    @classmethod
    def from_event(cls, event: Any) -> ClassifierEvent:
        fields = _event(event)
        return cls(request=_get(fields, "request", "request"),
                   execution_name=_string(fields, "execution_name", "execution_name"),
                   execution_id=_string(fields, "execution_id", "execution_id"))

    @property
    def request_id(self) -> str | None:
        """The id the request will carry, known before validation: the caller's when the contract accepts it
        (an invalid one may be huge or hold anything, so it is never echoed), else the execution name."""
        caller = valid_request_id(self.request.get("request_id")) if isinstance(self.request, dict) else None
        return caller or self.execution_name


@dataclass(frozen=True)
class InvokerEvent:
    """Invoke Haiku / Sonnet / Opus: ``{"request": <validated request>, "request_id": ..., "execution_id": ...}``.

    ``request`` is the classifier's normalised request (``messages`` in Converse block form).
    """

    request: dict[str, Any]
    request_id: str
    execution_id: str
    # Asked by the shadow workflow (statemachine/shadow.asl.json), not by a caller's route.
    shadow: bool = False

    @classmethod
    def from_event(cls, event: Any) -> InvokerEvent:
        fields = _event(event)
        request = _field_object(fields, "request", "request")
        _array(request, "messages", "request.messages", non_empty=True)
        if request.get("inference") is not None:
            _field_object(request, "inference", "request.inference")
        shadow = fields.get("shadow", False)
        if not isinstance(shadow, bool):
            raise MalformedEvent("shadow", f"expected a boolean, got {_json_type(shadow)}")
        return cls(request=request,
                   request_id=_string(fields, "request_id", "request_id"),
                   execution_id=_string(fields, "execution_id", "execution_id"),
                   shadow=shadow)


ScorerStep: TypeAlias = Literal["score", "failure"]
SCORER_STEPS: tuple[ScorerStep, ...] = ("score", "failure")


@dataclass(frozen=True)
class ScorerEvent:
    """Score Answer (``step: score``) and Record Failed Attempt (``step: failure``):
    ``{"step": ..., "state": <workflow state>, "execution_id": ..., "execution_started": ...}``.

    ``state`` is the whole workflow state, returned updated: checked here for what the step reads, the
    model's reply (``state.invocation.attempt``) after an answer, the caught error (``state.invocation``)
    after a failure.
    """

    step: ScorerStep
    state: dict[str, Any]
    request_id: str
    execution_id: str
    execution_started: str

    @classmethod
    def from_event(cls, event: Any) -> ScorerEvent:
        fields = _event(event)
        step = cast(ScorerStep, _one_of(fields, "step", "step", SCORER_STEPS))
        state = _field_object(fields, "state", "state")
        request_id = _string(state, "request_id", "state.request_id")
        _field_object(state, "request", "state.request")
        _field_object(state, "classification", "state.classification")
        _field_object(state, "plan", "state.plan")
        _array(state, "attempts", "state.attempts")
        _one_of(_field_object(state, "route", "state.route"), "tier", "state.route.tier", TIERS)
        invocation = _field_object(state, "invocation", "state.invocation")
        if step == "score":
            _check_reply(_field_object(invocation, "attempt", "state.invocation.attempt"))
        elif invocation.get("Error") is not None:  # what Catch gives; without one it reads as a task failure
            _string(invocation, "Error", "state.invocation.Error")
        return cls(step=step, state=state, request_id=request_id,
                   execution_id=_string(fields, "execution_id", "execution_id"),
                   execution_started=_string(fields, "execution_started", "execution_started"))


def _check_reply(attempt: dict[str, Any]) -> None:
    """The invoker's output as the scorer reads it."""
    path = "state.invocation.attempt"
    _one_of(attempt, "tier", f"{path}.tier", TIERS)
    _string(attempt, "model_id", f"{path}.model_id")
    _string(attempt, "stop_reason", f"{path}.stop_reason")
    answer = _get(attempt, "answer", f"{path}.answer")
    if not isinstance(answer, str):
        raise MalformedEvent(f"{path}.answer", f"expected a string, got {_json_type(answer)}")
    _integer(attempt, "input_tokens", f"{path}.input_tokens")
    _integer(attempt, "output_tokens", f"{path}.output_tokens")
    _number(attempt, "latency_ms", f"{path}.latency_ms")
    _number(attempt, "cost_usd", f"{path}.cost_usd")


# -- the batch function (statemachine/batch.asl.json) -----------------------------------------------------


def _source(parent: Mapping[str, Any], path: str) -> dict[str, Any]:
    """The input object a batch reads: ``{"bucket", "key", "etag"[, "version_id"]}``."""
    source = _field_object(parent, "source", path)
    _string(source, "bucket", f"{path}.bucket")
    _string(source, "key", f"{path}.key")
    return source


@dataclass(frozen=True)
class BatchLocateEvent:
    """Locate Input: ``{"step": "locate", "event": <execution input>}``; the input may be anything (an S3
    Object Created event, a scheduled event, or something else, which the step itself rejects)."""

    step: ClassVar[str] = "locate"
    execution_input: Any


@dataclass(frozen=True)
class BatchSplitEvent:
    """Split Input Into Lines: ``{"step": "split", "batch": <Locate Input's batch>}``."""

    step: ClassVar[str] = "split"
    batch: dict[str, Any]


@dataclass(frozen=True)
class BatchPrepareEvent:
    """Prepare Item: ``{"step": "prepare", "item": {"line": n, "text" | "not_utf8_at" | "bytes": ...},
    "source": {...}}``."""

    step: ClassVar[str] = "prepare"
    item: dict[str, Any]
    line: int
    source: dict[str, Any]


@dataclass(frozen=True)
class BatchRecordEvent:
    """Record Item Result: ``{"step": "record", "item": {"line", "request_id", "source", "routed"}}``;
    ``routed`` is the router's result (``{"result": ...}``) or its caught error (``{"Error", "Cause"}``)."""

    step: ClassVar[str] = "record"
    item: dict[str, Any]
    line: int
    request_id: str
    source: dict[str, Any]


@dataclass(frozen=True)
class BatchFinishEvent:
    """Write Results And Summary: ``{"step": "finish", "batch": {...}, "items": {"bucket", "key", "lines",
    "blank"}, "map_run": <the Distributed Map's output or caught error>}``."""

    step: ClassVar[str] = "finish"
    batch: dict[str, Any]
    items: dict[str, Any]
    map_run: dict[str, Any]


BatchEvent: TypeAlias = BatchLocateEvent | BatchSplitEvent | BatchPrepareEvent | BatchRecordEvent | BatchFinishEvent
BATCH_STEPS = ("locate", "split", "prepare", "record", "finish")


def _batch(parent: Mapping[str, Any]) -> dict[str, Any]:
    batch = _field_object(parent, "batch", "batch")
    _source(batch, "batch.source")
    _string(batch, "results_bucket", "batch.results_bucket")
    _string(batch, "results_prefix", "batch.results_prefix")
    return batch


def parse_batch_event(event: Any) -> BatchEvent:
    """The batch function's event, by its ``step``."""
    fields = _event(event)
    step = _one_of(fields, "step", "step", BATCH_STEPS)
    if step == "locate":
        return BatchLocateEvent(execution_input=_get(fields, "event", "event"))
    if step == "split":
        return BatchSplitEvent(batch=_batch(fields))
    if step == "prepare":
        item = _field_object(fields, "item", "item")
        return BatchPrepareEvent(item=item, line=_integer(item, "line", "item.line", low=1),
                                 source=_source(fields, "source"))
    if step == "record":
        item = _field_object(fields, "item", "item")
        _field_object(item, "routed", "item.routed")
        return BatchRecordEvent(item=item, line=_integer(item, "line", "item.line", low=1),
                                request_id=_string(item, "request_id", "item.request_id"),
                                source=_source(item, "item.source"))
    batch = _batch(fields)
    items = _field_object(fields, "items", "items")
    _string(items, "bucket", "items.bucket")
    _string(items, "key", "items.key")
    _integer(items, "lines", "items.lines")
    _integer(items, "blank", "items.blank")
    return BatchFinishEvent(batch=batch, items=items, map_run=_field_object(fields, "map_run", "map_run"))


def batch_log_keys(event: BatchEvent) -> dict[str, Any]:
    """What the batch function's log lines carry besides the step: the line and its request id on the
    per-line steps (Prepare Item learns the id from the line itself), the input object on the batch-level
    steps that know it."""
    if isinstance(event, BatchPrepareEvent):
        return {"line": event.line, "input": _s3_uri(event.source)}
    if isinstance(event, BatchRecordEvent):
        return {"line": event.line, "request_id": event.request_id, "input": _s3_uri(event.source)}
    if isinstance(event, BatchSplitEvent | BatchFinishEvent):
        return {"input": _s3_uri(event.batch["source"])}
    return {}


def _s3_uri(source: Mapping[str, Any]) -> str:
    return f"s3://{source['bucket']}/{source['key']}"


# -- the shadow workflow's functions (statemachine/shadow.asl.json) -------------------------------------------

ShadowStep: TypeAlias = Literal["reserve", "record", "failure"]
SHADOW_STEPS: tuple[ShadowStep, ...] = ("reserve", "record", "failure")
# What each ledger step reads of the shadow state (the router's state when it accepted an answer, plus the
# shadow steps' results).
_SHADOW_NEEDS: dict[str, tuple[str, ...]] = {
    "reserve": ("request", "classification", "plan", "attempts", "best", "shadow"),
    "record": ("request", "classification", "attempts", "best", "shadow", "budget", "verdicts"),
    "failure": (),
}


def _shadow_state(parent: Mapping[str, Any], path: str, needs: tuple[str, ...]) -> dict[str, Any]:
    state = _field_object(parent, "shadow", path)
    for key in needs:
        _get(state, key, f"{path}.{key}")
    if "best" in needs:
        best = _field_object(state, "best", f"{path}.best")
        _one_of(best, "tier", f"{path}.best.tier", TIERS)
        _integer(best, "attempt", f"{path}.best.attempt", low=1)
        _array(state, "attempts", f"{path}.attempts", non_empty=True)
    return state


@dataclass(frozen=True)
class ShadowLedgerEvent:
    """Check Shadow Budget (``reserve``), Write Outcome Record (``record``), Record Shadow Failure (``failure``):
    ``{"step": ..., "shadow": <shadow state>, "execution_id": ...}``."""

    step: ShadowStep
    state: dict[str, Any]
    execution_id: str

    @classmethod
    def from_event(cls, event: Any) -> ShadowLedgerEvent:
        fields = _event(event)
        step = cast(ShadowStep, _one_of(fields, "step", "step", SHADOW_STEPS))
        return cls(step=step, state=_shadow_state(fields, "shadow", _SHADOW_NEEDS[step]),
                   execution_id=_string(fields, "execution_id", "execution_id"))

    @property
    def request_id(self) -> str | None:
        value = self.state.get("request_id")
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class JudgeEvent:
    """Judge Answers: ``{"request", "request_id", "best", "attempts", "answers", "plan", "execution_id"}``."""

    state: dict[str, Any]
    request_id: str
    execution_id: str

    @classmethod
    def from_event(cls, event: Any) -> JudgeEvent:
        fields = _event(event)
        request = _field_object(fields, "request", "request")
        _array(request, "messages", "request.messages", non_empty=True)
        best = _field_object(fields, "best", "best")
        _one_of(best, "tier", "best.tier", TIERS)
        _array(fields, "attempts", "attempts", non_empty=True)
        for index, answer in enumerate(_array(fields, "answers", "answers")):
            _one_of(_object(answer, f"answers[{index}]"), "tier", f"answers[{index}].tier", TIERS)
        return cls(state=dict(fields), request_id=_string(fields, "request_id", "request_id"),
                   execution_id=_string(fields, "execution_id", "execution_id"))
