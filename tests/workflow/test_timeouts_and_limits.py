"""Timeouts and limits: a slow model is caught by the workflow, not by a Lambda being killed; payloads stay
under Step Functions' 256 KiB; each tier's output cap reaches Converse.

Read from template.yaml, statemachine/router.asl.json and the settings each function gets, so changing one
of them without the others fails here.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from model_router.contracts.request import MAX_REQUEST_BYTES
from model_router.providers.base import ModelReply
from model_router.providers.bedrock import BedrockConverseProvider
from model_router.settings import Settings
from model_router.steps.invoke import MAX_ANSWER_BYTES, fit_answer, invoke_model
from model_router.tiers import TIER_ORDER
from model_router_tools.local.engine import PROJECT_ROOT, LocalEngine
from model_router_tools.local.template import definition_substitutions, function_specs, load_template
from model_router_tools.replay.datasets import sample_path, tier_maps

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

TEMPLATE = load_template(PROJECT_ROOT / "template.yaml")
ASL: dict[str, Any] = json.loads((PROJECT_ROOT / "statemachine" / "router.asl.json").read_text())
SPECS = function_specs(TEMPLATE, PROJECT_ROOT)
SUBSTITUTIONS = definition_substitutions(TEMPLATE, "RouterStateMachine")
STEP_FUNCTIONS_PAYLOAD_LIMIT = 256 * 1024
# Time the invoker needs after Converse gives up: translate the error, emit logs and metrics, return.
SHUTDOWN_MARGIN_S = 10


def invoke_states() -> dict[str, str]:
    """Invoke state name -> the function it calls (through DefinitionSubstitutions)."""
    out = {}
    for name, state in ASL["States"].items():
        placeholder = state.get("Parameters", {}).get("FunctionName", "")
        if name.startswith("Invoke ") and placeholder.startswith("${"):
            out[name] = SUBSTITUTIONS[placeholder[2:-1]]
    return out


def test_every_tier_has_an_invoke_state() -> None:
    assert sorted(invoke_states()) == sorted(f"Invoke {t.label}" for t in TIER_ORDER)


@pytest.mark.parametrize("state", sorted(invoke_states()))
def test_converse_gives_up_before_lambda_and_lambda_before_the_task(state: str) -> None:
    spec = SPECS[invoke_states()[state]]
    settings = Settings.from_mapping(spec.environment)
    converse_s = settings.bedrock_connect_timeout_s + settings.bedrock_read_timeout_s
    # A slow model surfaces as ModelTimeoutException (Retry once, then Catch -> fallback) with time to spare...
    assert converse_s + SHUTDOWN_MARGIN_S <= spec.timeout_s, (
        f"{spec.logical_id}: Converse may take {converse_s} s but the Lambda is killed at {spec.timeout_s} s")
    # ...and Step Functions' own Task timeout never cuts a Lambda off mid-write.
    assert spec.timeout_s < ASL["States"][state]["TimeoutSeconds"]
    retried = {e for rule in ASL["States"][state]["Retry"] for e in rule["ErrorEquals"]}
    assert "ModelTimeoutException" in retried
    assert any("States.ALL" in c["ErrorEquals"] for c in ASL["States"][state]["Catch"])


def test_control_functions_have_no_task_timeout_to_race() -> None:
    for name, state in ASL["States"].items():
        if state["Type"] != "Task" or name.startswith("Invoke "):
            continue
        if state["Resource"] != "arn:aws:states:::lambda:invoke":
            # Start Shadow Evaluation: a Step Functions API call, not a function; its own short timeout.
            assert state["Resource"] == "arn:aws:states:::states:startExecution", name
            assert state["TimeoutSeconds"] <= 10, name
            continue
        spec = SPECS[SUBSTITUTIONS[state["Parameters"]["FunctionName"][2:-1]]]
        assert state.get("TimeoutSeconds", 99_999) > spec.timeout_s


def test_the_bedrock_client_uses_the_settings_and_leaves_retries_to_the_state_machine() -> None:
    spec = SPECS["SonnetInvokerFunction"]
    settings = Settings.from_mapping({**spec.environment, "AWS_REGION": "us-east-1"})
    provider = BedrockConverseProvider(region="us-east-1", connect_timeout_s=settings.bedrock_connect_timeout_s,
                                       read_timeout_s=settings.bedrock_read_timeout_s)
    config = provider.client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (settings.bedrock_connect_timeout_s,
                                                             settings.bedrock_read_timeout_s)
    assert config.retries["total_max_attempts"] == 1  # Step Functions owns retries (backoff + jitter + fallback)


# -- output caps per tier ------------------------------------------------------------------------------------

MESSAGES = [{"role": "user", "content": [{"text": "Say hi."}]}]


def converse_response() -> dict[str, Any]:
    return {"output": {"message": {"role": "assistant", "content": [{"text": "hi"}]}}, "stopReason": "end_turn",
            "usage": {"inputTokens": 3, "outputTokens": 1, "totalTokens": 4}, "metrics": {"latencyMs": 5}}


@pytest.mark.parametrize("tier", [t.label for t in TIER_ORDER])
@pytest.mark.parametrize(("requested", "sent"), [(None, 300), (100, 100), (300, 300), (5000, 300), (64000, 300)])
def test_max_tokens_sent_never_exceeds_the_tiers_cap(tier: str, requested: int | None, sent: int) -> None:
    """The template's <Tier>MaxOutputTokens reaches that invoker as its cap; Converse gets min(request, cap)."""
    specs = function_specs(TEMPLATE, PROJECT_ROOT, {f"{tier}MaxOutputTokens": "300", "MaxOutputTokens": "2048"})
    settings = Settings.from_mapping(specs[f"{tier}InvokerFunction"].environment)
    assert settings.tier_max_output_tokens == 300
    client = boto3.client("bedrock-runtime", region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x")
    request: dict[str, Any] = {"messages": MESSAGES}
    if requested is not None:
        request["inference"] = {"maxTokens": requested}
    with Stubber(client) as stub:
        stub.add_response("converse", converse_response(), expected_params={
            "modelId": settings.model_id, "messages": MESSAGES, "inferenceConfig": {"maxTokens": sent}})
        invoke_model(request, settings, BedrockConverseProvider(region=None, connect_timeout_s=1,
                                                                read_timeout_s=1, client=client))
        stub.assert_no_pending_responses()


def test_tier_caps_default_to_the_models_maximum() -> None:
    for tier in TIER_ORDER:
        settings = Settings.from_mapping(SPECS[f"{tier.label}InvokerFunction"].environment)
        assert settings.tier_max_output_tokens == 64000


# -- payloads near the 256 KiB limit ------------------------------------------------------------------------


def reply(text: str) -> ModelReply:
    return ModelReply(text, "end_turn", 10, 10, 1.0, "test")


def test_an_answer_that_fits_is_untouched() -> None:
    text = "x" * (MAX_ANSWER_BYTES - 2)  # JSON adds the two quotes
    assert fit_answer(reply(text)) == (reply(text), 0)


@pytest.mark.parametrize("unit", ["x", "é", "€", "\n", '"', "🙂"])
def test_an_oversize_answer_is_cut_to_the_limit_and_flagged_truncated(unit: str) -> None:
    text = unit * 200_000
    fitted, cut = fit_answer(reply(text))
    size = len(json.dumps(fitted.text, ensure_ascii=False).encode())
    assert MAX_ANSWER_BYTES - 8 <= size <= MAX_ANSWER_BYTES  # the longest prefix that fits
    assert text.startswith(fitted.text) and cut == len(json.dumps(text, ensure_ascii=False).encode()) - size
    assert fitted.stop_reason == "max_tokens"


def test_the_state_budget_adds_up() -> None:
    # Request + best answer + the newest answer, with room for classification, plan and three attempts.
    assert MAX_REQUEST_BYTES + 2 * MAX_ANSWER_BYTES + 16 * 1024 <= STEP_FUNCTIONS_PAYLOAD_LIMIT


def prompt_of_request_size(target: int, extra: dict[str, Any]) -> str:
    base = len(json.dumps({"prompt": "", **extra}, ensure_ascii=False).encode())
    words = ("Compute the sum of the numbers listed here and explain each step " * 3000).split()
    prompt = ""
    for word in words:
        if base + len(prompt) + len(word) + 1 > target:
            break
        prompt = f"{prompt} {word}" if prompt else word
    return prompt + "." * (target - base - len(prompt))


@pytest.fixture(scope="module")
def huge_dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A recorded-outcomes file (the shared format) with a prompt at the request limit and huge answers."""
    extra = {"inference": {"maxTokens": 64000}, "tier": "haiku"}
    prompt = prompt_of_request_size(MAX_REQUEST_BYTES, extra)
    models = tier_maps(str(sample_path()))["routellm-gsm8k"].models
    record = {"id": "huge-1", "source": "routellm-gsm8k", "task": "gsm8k", "prompt": prompt, "reference": "",
              "complexity": None, "meta": {},
              "outcomes": {model: {"score": 1.0, "response": f"{model} says: " + "The sum is 42. " * 14_000}
                           for model in set(models.values())}}
    path = tmp_path_factory.mktemp("huge") / "huge.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")
    return path, {"prompt": prompt, **extra}


def state_payloads(events: list[dict[str, Any]]) -> list[int]:
    sizes = []
    for event in events:
        for key in ("stateEnteredEventDetails", "stateExitedEventDetails"):
            details = event.get(key) or {}
            for field in ("input", "output"):
                if field in details:
                    sizes.append(len(details[field].encode("utf-8")))
    return sizes


def test_a_request_at_the_limit_with_huge_answers_stays_under_256_kib(huge_dataset: tuple[Path, Any]) -> None:
    path, request = huge_dataset
    assert len(json.dumps(request, ensure_ascii=False).encode()) == MAX_REQUEST_BYTES
    engine = LocalEngine(env_overrides={"REPLAY_DATASET": str(path), "DEFAULT_STRATEGY": "heuristic"})
    result = engine.run(request)
    assert result.status == "SUCCEEDED", (result.error, (result.cause or "")[:300])
    attempts = result.output["attempts"]
    assert len(attempts) >= 2, "the cut answer reads as truncated, so the workflow escalates"
    assert all(a["answer_cut_bytes"] > 100_000 and a["stop_reason"] == "max_tokens" for a in attempts)
    sizes = state_payloads(result.events)
    assert max(sizes) <= STEP_FUNCTIONS_PAYLOAD_LIMIT
    assert max(sizes) > MAX_REQUEST_BYTES + MAX_ANSWER_BYTES, "the test must get close to the limit"


@pytest.mark.parametrize("size", [MAX_REQUEST_BYTES + 1, 250 * 1024])
def test_a_request_over_the_limit_is_refused_naming_the_field(engine: LocalEngine, size: int) -> None:
    result = engine.run({"prompt": prompt_of_request_size(size, {})})
    assert (result.status, result.error) == ("FAILED", "Router.InvalidRequest")
    assert (result.cause or "").startswith("prompt: is ") and "256 KiB" in (result.cause or "")
    assert not any(name.startswith("Invoke ") for name in result.states_entered)


def test_a_huge_request_id_is_refused_naming_it_and_never_echoed(engine: LocalEngine) -> None:
    # Echoing a 300 KB id into the workflow state used to end the execution in States.DataLimitExceeded.
    result = engine.run({"prompt": "What is 2 + 2?", "request_id": "a" * 300_000})
    assert (result.status, result.error) == ("FAILED", "Router.InvalidRequest")
    assert (result.cause or "").startswith("request_id: ")
    assert len(result.cause or "") < 500
    assert not any(name.startswith("Invoke ") for name in result.states_entered)
