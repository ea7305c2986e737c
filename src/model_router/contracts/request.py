"""The request and result contracts: JSON Schemas in schemas/, plus the checks a schema cannot express.

Every rejection is an :class:`~model_router.errors.InvalidRequest` whose ``field`` is a path such as
``messages[2].role``, raised before any model is called.
"""

from __future__ import annotations

import json
import re
import uuid
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator

from model_router.contracts import hygiene as request_hygiene
from model_router.contracts import response_format
from model_router.contracts.hygiene import field_path
from model_router.errors import InvalidRequest
from model_router.tiers import Tier

# Step Functions caps state payloads at 256 KiB. The request travels inside the workflow state next to
# the attempts and one answer, so it gets a bit under half of that.
MAX_REQUEST_BYTES = 120 * 1024
# Bedrock's documented maximum of cache checkpoints per request (data/model_features.json: Claude Haiku 4.5).
MAX_CACHE_POINTS = 4


@cache
def schema(name: str) -> dict[str, Any]:
    text = resources.files("model_router.contracts.schemas").joinpath(f"{name}.schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@cache
def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(schema(name), format_checker=Draft202012Validator.FORMAT_CHECKER)


def _describe(error: jsonschema.ValidationError) -> tuple[str, str]:
    path = list(error.absolute_path)
    if error.validator == "additionalProperties":
        # Name the unknown field itself, not its parent.
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        if extra:
            return field_path([*path, extra[0]]), "unknown field (not in the request schema)"
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else ""
        return field_path([*path, missing] if missing else path), "is required"
    if error.validator == "oneOf" and error.context:
        # Report the branch that got furthest, e.g. content[0].text rather than "not valid under any".
        deepest = max(error.context, key=lambda e: len(e.absolute_path))
        if len(deepest.absolute_path) > len(path):
            return _describe(deepest)
    message = error.message
    shown = repr(error.instance)
    if len(shown) > 40 and shown in message:
        # Do not echo a conversation or a long text back into the error: it ends up in logs and consoles.
        if isinstance(error.instance, (list, dict)):
            brief = f"({type(error.instance).__name__} of {len(error.instance)} items)"
        else:
            brief = shown[:20] + "..."
        message = message.replace(shown, brief)
    if len(message) > 300:
        message = message[:300] + "..."
    return field_path(path), message


_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]*")
REQUEST_ID_MAX_LENGTH = 128  # the schema's maxLength


def _json_bytes(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode("utf-8"))


def _check_text(field: str, text: str) -> None:
    control = request_hygiene.C0_CONTROL.search(text)
    if control:
        raise InvalidRequest(field, f"contains control character U+{ord(control.group(0)):04X}")
    if request_hygiene.SURROGATE.search(text):
        raise InvalidRequest(field, "contains an unpaired surrogate (not valid UTF-8)")


def _blocks(value: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"text": value}] if isinstance(value, str) else [dict(b) for b in value]


def _check_cache_points(raw: dict[str, Any]) -> None:
    """cachePoints follow text in their own list, number at most MAX_CACHE_POINTS, and longer ttls come first
    (Bedrock and Anthropic: a 1h checkpoint may not follow a 5m one)."""
    lists: list[tuple[str, list[dict[str, Any]]]] = []
    if isinstance(raw.get("system"), list):
        lists.append(("system", raw["system"]))
    for i, turn in enumerate(raw.get("messages", [])):
        if isinstance(turn["content"], list):
            lists.append((f"messages[{i}].content", turn["content"]))
    count, short_ttl_at = 0, None
    for where, blocks in lists:
        for j, block in enumerate(blocks):
            if "cachePoint" not in block:
                continue
            field = f"{where}[{j}].cachePoint"
            count += 1
            if count > MAX_CACHE_POINTS:
                raise InvalidRequest(field, f"a request may mark at most {MAX_CACHE_POINTS} cachePoints")
            if j == 0 or "text" not in blocks[j - 1]:
                raise InvalidRequest(field, "must follow a text block: it marks the end of the prefix to cache")
            ttl = block["cachePoint"].get("ttl", "5m")
            if ttl == "1h" and short_ttl_at is not None:
                raise InvalidRequest(f"{field}.ttl", f"'1h' may not follow the 5m cachePoint at {short_ttl_at}: "
                                                     "longer ttls come first")
            if ttl == "5m" and short_ttl_at is None:
                short_ttl_at = field
        if where.startswith("messages") and not any("text" in b for b in blocks):
            raise InvalidRequest(where, "needs at least one text block")


def valid_request_id(value: Any) -> str | None:
    """``value`` when it is a request id the contract accepts (safe to echo in errors and logs), else None."""
    if isinstance(value, str) and len(value) <= REQUEST_ID_MAX_LENGTH and _REQUEST_ID.fullmatch(value):
        return value
    return None


def validate_request(raw: Any, *, default_request_id: str | None = None) -> dict[str, Any]:
    """Validate ``raw`` and return it normalised: ``messages`` in Converse block form, a ``request_id``."""
    if not isinstance(raw, dict):
        raise InvalidRequest("(request)", f"must be a JSON object, got {type(raw).__name__}")
    request_hygiene.check_nesting(raw)
    errors = sorted(validator("request").iter_errors(raw), key=lambda e: (len(e.absolute_path), e.path))
    if errors:
        field, message = _describe(jsonschema.exceptions.best_match(errors) or errors[0])
        raise InvalidRequest(field, message)
    if "prompt" in raw and "messages" in raw:
        raise InvalidRequest("messages", "give either 'prompt' or 'messages', not both")
    if "prompt" not in raw and "messages" not in raw:
        raise InvalidRequest("prompt", "one of 'prompt' or 'messages' is required")
    # JSON Schema's "$" also matches before a trailing newline in Python's re: require a full match.
    if "request_id" in raw and not _REQUEST_ID.fullmatch(raw["request_id"]):
        raise InvalidRequest("request_id", f"{raw['request_id']!r} must match {_REQUEST_ID.pattern}")
    for index, block in enumerate(raw.get("system", []) if isinstance(raw.get("system"), list) else []):
        if "text" in block:
            _check_text(f"system[{index}].text", block["text"])
    if isinstance(raw.get("system"), str):
        _check_text("system[0].text", raw["system"])
    if "prompt" in raw:
        _check_text("prompt", raw["prompt"])
    else:
        for i, turn in enumerate(raw["messages"]):
            for j, block in enumerate(_blocks(turn["content"])):
                if "text" in block:
                    _check_text(f"messages[{i}].content[{j}].text", block["text"])
    _check_cache_points(raw)
    request_hygiene.check_values(raw)

    size = _json_bytes(raw)
    if size > MAX_REQUEST_BYTES:
        # Name the field that makes it too big, not the prompt by default: a 300 KB system prompt or
        # response_format is the caller's to shrink.
        sizes = {key: _json_bytes(value) for key, value in raw.items()}
        field = max(sizes, key=lambda key: sizes[key])
        raise InvalidRequest(
            field,
            f"is {sizes[field]} bytes, which makes the request {size} bytes, over the {MAX_REQUEST_BYTES}-byte "
            "limit that keeps the workflow state under Step Functions' 256 KiB payload cap",
        )

    messages: list[dict[str, Any]]
    if "prompt" in raw:
        messages = [{"role": "user", "content": [{"text": raw["prompt"]}]}]
    else:
        messages = [{"role": m["role"], "content": _blocks(m["content"])} for m in raw["messages"]]
        for i, turn in enumerate(messages):
            expected = "user" if i % 2 == 0 else "assistant"
            if turn["role"] != expected:
                raise InvalidRequest(
                    f"messages[{i}].role", f"must be '{expected}': turns alternate user/assistant, starting with user"
                )
            for j, block in enumerate(turn["content"]):
                if "text" in block and not block["text"].strip():
                    raise InvalidRequest(f"messages[{i}].content[{j}].text", "is blank")
        if messages[-1]["role"] != "user":
            raise InvalidRequest(f"messages[{len(messages) - 1}].role", "the last turn must be from the user")
    if "prompt" in raw and not raw["prompt"].strip():
        raise InvalidRequest("prompt", "is blank")

    routing = raw.get("routing", {})
    low, high = routing.get("min_tier"), routing.get("max_tier")
    if low and high and Tier(low).rank > Tier(high).rank:
        raise InvalidRequest("routing.min_tier", f"'{low}' is above routing.max_tier '{high}'")
    tier = raw.get("tier")
    if tier and ((low and Tier(tier).rank < Tier(low).rank) or (high and Tier(tier).rank > Tier(high).rank)):
        raise InvalidRequest("tier", f"'{tier}' is outside routing.min_tier..max_tier")
    if "response_format" in raw:
        response_format.check_request_format(raw["response_format"])  # bounds first: check_schema walks it all
        try:
            Draft202012Validator.check_schema(raw["response_format"])
        except jsonschema.SchemaError as exc:
            where = field_path(["response_format", *exc.absolute_path])
            raise InvalidRequest(where, f"is not a valid JSON Schema: {exc.message}") from exc
        request_hygiene.check_response_format(raw["response_format"])

    normalised: dict[str, Any] = {k: v for k, v in raw.items() if k != "prompt"}
    normalised["messages"] = messages
    if isinstance(raw.get("system"), str):
        normalised["system"] = [{"text": raw["system"]}]
    normalised["request_id"] = raw.get("request_id") or default_request_id or uuid.uuid4().hex
    normalised["metadata"] = raw.get("metadata", {})
    return normalised


def validate_result(result: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` if ``result`` breaks the result contract (used in tests and the CLI)."""
    validator("result").validate(result)


def message_text(message: dict[str, Any]) -> str:
    return "\n".join(block["text"] for block in message["content"] if "text" in block)


def prompt_text(request: dict[str, Any]) -> str:
    """The last user turn: what the classifier, the scorer and the replay lookup look at."""
    return message_text(request["messages"][-1])


def all_text(request: dict[str, Any]) -> str:
    parts = [block["text"] for block in request.get("system", []) if "text" in block]
    parts.extend(message_text(m) for m in request["messages"])
    return "\n".join(parts)


def _content_blocks(request: dict[str, Any]) -> list[dict[str, Any]]:
    """Every content block of a validated request in the order the model reads them: system, then messages."""
    return [*request.get("system", []), *(b for m in request["messages"] for b in m["content"])]


def cached_prefix_text(request: dict[str, Any]) -> str | None:
    """The text before the request's last cachePoint (system, then messages), or None when it marks none: what
    a tier that cached it reads at the cache-read price."""
    blocks = _content_blocks(request)
    last = max((i for i, b in enumerate(blocks) if "cachePoint" in b), default=None)
    if last is None:
        return None
    return "\n".join(b["text"] for b in blocks[:last] if "text" in b)


def cache_ttl(request: dict[str, Any]) -> str:
    """The ttl of the request's last cachePoint (the one a switch would write): '5m' unless it says '1h'."""
    marks = [b["cachePoint"] for b in _content_blocks(request) if "cachePoint" in b]
    return str(marks[-1].get("ttl", "5m")) if marks else "5m"
