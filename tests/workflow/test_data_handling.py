"""Data handling: no prompt or answer text in logs or metrics by default; the optional Bedrock Guardrail
goes from the template parameters to every Converse call.

Log tests run full local executions (an answer, an escalation, a fallback after throttling, a rejected
request, a total failure) and capture everything: the handlers' stdout (Powertools JSON logs and EMF
metrics, which the engine collects as Lambda sends them to CloudWatch), the process' stdout/stderr and
Python logging. With ``LOG_PROMPTS=true`` the same capture does contain the answers, so it can fail.

Guardrail tests run the real workflow with the real Bedrock provider, its boto3 client stubbed at the edge
(botocore Stubber), with the template's GuardrailId/GuardrailVersion parameters.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from botocore.stub import ANY, Stubber

from model_router.observability import SERVICE
from model_router.providers import reset_providers
from model_router_tools.local.engine import LocalEngine

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

SECRET = "zebra-canary-7f3a"  # in a rejected request: must not be echoed in logs either


def _fragments(text: str) -> list[str]:
    """Distinctive pieces of a prompt or answer: a few 30-character windows (whole texts are too long to
    appear verbatim after JSON escaping, and a window is still unmistakable)."""
    flat = " ".join(text.split())
    return [flat[i:i + 30] for i in range(0, max(1, len(flat) - 30), max(1, len(flat) // 3))][:3]


def _run_everything(engine: LocalEngine, records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Runs covering every path; returns the results and every prompt/answer text they involved."""
    requests = [
        {"prompt": records[0]["prompt"]},  # plain
        {"prompt": records[1]["prompt"], "routing": {"strategy": "cascade"}},  # starts cheap, may escalate
        {"prompt": records[2]["prompt"], "routing": {"strategy": "cascade"}, "tier": "haiku"},
        {"prompt": f"{SECRET} please", "routing": {"confidence_threshold": 7}},  # rejected
        {"prompt": f"Not a recorded prompt {SECRET}"},  # every tier fails: AllModelsFailed
    ]
    results = [engine.run(r) for r in requests]
    texts = [SECRET] + [r["prompt"] for r in records[:3]]
    for result in results:
        if result.status == "SUCCEEDED":
            texts.append(result.output["answer"])
    return [r.output or {"error": r.error} for r in results], texts


@pytest.fixture
def captured(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> Iterator[Callable[..., str]]:
    """Everything the handlers emit, by every route out of the process: the engine's copy of their stdout,
    the process' stdout/stderr, the logging records, and the service logger's records formatted here
    exactly as Powertools prints them, extra fields included."""
    caplog.set_level(logging.DEBUG)
    records = io.StringIO()
    handler = logging.StreamHandler(records)
    handler.setFormatter(LambdaPowertoolsFormatter())
    service_logger = logging.getLogger(SERVICE)
    service_logger.addHandler(handler)

    def everything(engine: LocalEngine) -> str:
        out, err = capfd.readouterr()
        return "\n".join([*engine.output, out, err, caplog.text, records.getvalue()])

    yield everything
    service_logger.removeHandler(handler)


def _leaks(log: str, texts: list[str]) -> list[str]:
    return [piece for text in texts for piece in _fragments(text) if piece and piece in log]


def test_no_prompt_or_answer_text_in_logs_or_metrics_by_default(
    engine_with: Callable[..., LocalEngine], answered_records: list[dict[str, Any]], captured: Callable[..., str]
) -> None:
    engine = engine_with(FAULT_INJECTION="haiku.throttle=1,seed=3")  # Haiku throttled: fallbacks happen
    results, texts = _run_everything(engine, answered_records)
    attempts = [a for r in results for a in r.get("attempts", [])]
    assert any(a["outcome"] == "failed" for a in attempts), "no fallback happened: the test covers less than it says"
    assert sum(1 for r in results if r.get("attempts")) >= 3
    log = captured(engine)
    assert '"message":"model answered"' in log and "CloudWatchMetrics" in log, \
        "the capture holds the handlers' logs and EMF metrics"
    assert _leaks(log, texts) == []


def test_an_escalation_logs_no_text_either(engine_with: Callable[..., LocalEngine],
                                          answered_records: list[dict[str, Any]],
                                          captured: Callable[..., str]) -> None:
    engine = engine_with()
    for record in answered_records[:40]:
        result = engine.run({"prompt": record["prompt"], "routing": {"strategy": "cascade"}})
        if result.status == "SUCCEEDED" and any(a["outcome"] == "escalated" for a in result.output["attempts"]):
            break
    else:
        pytest.fail("no escalation among the first 40 recorded prompts")
    texts = [record["prompt"], result.output["answer"]] + [
        o["response"] for o in record["outcomes"].values() if o.get("response")]
    assert _leaks(captured(engine), texts) == []


def test_with_log_prompts_on_the_answers_are_logged(engine_with: Callable[..., LocalEngine],
                                                   answered_records: list[dict[str, Any]],
                                                   captured: Callable[..., str]) -> None:
    """The same capture, with the deployment's LogPrompts=true: the answers are there (so the test above can fail)."""
    engine = engine_with(LOG_PROMPTS="true")
    results, _ = _run_everything(engine, answered_records)
    answers = [r["answer"] for r in results if "answer" in r]
    assert answers
    log = captured(engine)
    assert all(any(piece in log for piece in _fragments(a)) for a in answers)


# -- the guardrail, from template parameters to Converse -------------------------------------------------

DUMMY_AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}


def _converse_reply(text: str, stop: str) -> dict[str, Any]:
    return {"output": {"message": {"role": "assistant", "content": [{"text": text}]}}, "stopReason": stop,
            "usage": {"inputTokens": 12, "outputTokens": 9, "totalTokens": 21}, "metrics": {"latencyMs": 40}}


@pytest.fixture
def bedrock_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Callable[..., LocalEngine]]:
    for name, value in {**DUMMY_AWS, "AWS_CONFIG_FILE": str(tmp_path / "none"),
                        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    reset_providers()

    def build(**parameters: str) -> LocalEngine:
        return LocalEngine(parameters=parameters, env_overrides={"DEFAULT_STRATEGY": "heuristic",
                                                                  "MODEL_PROVIDER": "bedrock"})

    yield build
    reset_providers()


def _stubbed(engine: LocalEngine) -> Stubber:
    """The Haiku invoker's own Bedrock client (the cached provider its handler will use), stubbed at the edge."""
    provider = engine.function_provider("HaikuInvokerFunction")
    return Stubber(provider.client)  # type: ignore[attr-defined]


REQUEST = {"prompt": "Summarise our refund policy for a customer.", "tier": "haiku",
           "routing": {"max_tier": "haiku"}}


def test_the_template_guardrail_is_sent_on_converse_and_an_intervention_is_blocked_not_escalated(
    bedrock_engine: Callable[..., LocalEngine],
) -> None:
    engine = bedrock_engine(GuardrailId="abc123def456", GuardrailVersion="3")
    with _stubbed(engine) as stub:
        stub.add_response("converse", _converse_reply("Sorry, the model cannot answer this.", "guardrail_intervened"),
                          expected_params={"modelId": ANY, "messages": ANY, "inferenceConfig": ANY,
                                           "guardrailConfig": {"guardrailIdentifier": "abc123def456",
                                                               "guardrailVersion": "3"}})
        result = engine.run({**REQUEST, "routing": {}})  # Sonnet and Opus allowed: still not escalated
        stub.assert_no_pending_responses()
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.output["status"] == "blocked"
    assert [a["tier"] for a in result.output["attempts"]] == ["haiku"]


def test_without_a_guardrail_no_guardrail_config_is_sent(bedrock_engine: Callable[..., LocalEngine]) -> None:
    engine = bedrock_engine()
    with _stubbed(engine) as stub:
        # Stubber rejects any parameter not listed: a guardrailConfig would fail the call.
        stub.add_response("converse", _converse_reply("Refunds within 30 days.", "end_turn"),
                          expected_params={"modelId": ANY, "messages": ANY, "inferenceConfig": ANY})
        result = engine.run(REQUEST)
        stub.assert_no_pending_responses()
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.output["attempts"][0]["tier"] == "haiku"
