"""`model-router route`: where any prompt would go and why, offline, from the user's side.

Every test calls the command line (``main([...])``) and reads what a user reads. The numbers must be the
workflow's own: the classification and plan of the Classify Request step, the budget checks' cost estimate.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from model_router.pricing import tier_prices
from model_router.routing.plan import EXPECTED_OUTPUT_TOKENS
from model_router.settings import DEFAULT_MODEL_IDS, Settings, default_threshold
from model_router.steps.classify import classify_step
from model_router.tiers import Tier
from model_router_tools.cli.main import main
from model_router_tools.local.template import function_specs, load_template

ROOT = Path(__file__).resolve().parents[2]
QUESTION = "What is 2+2?"  # the --help example: never recorded, so only `route` can say anything offline


def route_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["route", *args, "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    plan: dict[str, Any] = json.loads(captured.out)
    return plan


def route_fails(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["route", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    return captured.err.strip()


def test_route_shows_where_an_unrecorded_prompt_would_go_and_that_no_model_was_called(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["route", QUESTION]) == 0
    out = capsys.readouterr().out
    assert "Start tier:" in out and "why:" in out and "signals:" in out and "math" in out
    for label in ("Haiku", "Sonnet", "Opus"):
        assert label in out
    assert "cost of one call" in out and "Escalation" in out and "Caps:" in out
    assert "No model was called" in out and "estimates" in out


def test_the_plan_is_the_classify_request_steps_own_output_with_the_deployment_defaults(
        capsys: pytest.CaptureFixture[str]) -> None:
    plan = route_json(capsys, QUESTION)
    state = classify_step({"request": {"prompt": QUESTION}}, Settings.from_mapping({}))
    assert plan["classification"] == state["classification"]
    assert plan["plan"] == state["plan"]
    assert plan["start_tier"] == state["route"]["tier"] == plan["classification"]["tier"]
    assert plan["model_id"] == DEFAULT_MODEL_IDS[Tier(plan["start_tier"])]
    assert plan["classification"]["strategy"] == "learned" and plan["plan"]["threshold"] == default_threshold()
    assert plan["model_called"] is False and "No model was called" in plan["note"]


def test_the_template_gives_the_classifier_the_settings_route_uses() -> None:
    # route classifies with Settings() defaults; the deployed Classify Request gets template.yaml's environment.
    spec = function_specs(load_template(ROOT / "template.yaml"), ROOT)["ClassifierFunction"]
    deployed, used = Settings.from_mapping(spec.environment), Settings()
    for name in ("default_strategy", "confidence_threshold", "model_ids", "max_output_tokens", "price_overrides"):
        assert getattr(deployed, name) == getattr(used, name), name


def test_route_ignores_the_shells_settings_and_plans_with_the_deployments(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEFAULT_STRATEGY", "cascade")
    monkeypatch.setenv("CONFIDENCE_THRESHOLD", "0.1")
    plan = route_json(capsys, QUESTION)
    assert plan["classification"]["strategy"] == "learned" and plan["plan"]["threshold"] == default_threshold()


def test_each_tiers_cost_is_the_learned_routers_own_estimate_at_the_deployments_prices(
        capsys: pytest.CaptureFixture[str]) -> None:
    plan = route_json(capsys, "Prove that the square root of 2 is irrational, step by step.")
    estimates = plan["classification"]["route_estimates"]
    assert estimates["rule"] == "cost"
    prices = tier_prices(DEFAULT_MODEL_IDS)
    for tier in Tier:
        row = plan["tiers"][tier.value]
        assert row["expected_cost_usd"] == pytest.approx(estimates["expected_cost_usd"][tier.value], abs=1e-8)
        assert row["expected_output_tokens"] == estimates["expected_output_tokens"][tier.value]
        assert row["success_probability"] == plan["classification"]["tier_probabilities"][tier.value]
        assert row["gain"] == estimates["gains"][tier.value] and row["utility"] == estimates["utilities"][tier.value]
        assert row["price_per_1m_tokens"] == {"input": prices[tier].input_per_1m, "output": prices[tier].output_per_1m}


def test_a_router_without_estimates_still_gets_each_tiers_cost_from_the_pricing_module(
        capsys: pytest.CaptureFixture[str]) -> None:
    plan = route_json(capsys, QUESTION, "--strategy", "heuristic")
    assert plan["classification"]["strategy"] == "heuristic" and plan["caps"]["strategy"] == "heuristic"
    input_tokens = plan["classification"]["signals"]["input_tokens"]
    for tier, price in tier_prices(DEFAULT_MODEL_IDS).items():
        row = plan["tiers"][tier.value]
        assert row["success_probability"] is None and row["expected_output_tokens"] == EXPECTED_OUTPUT_TOKENS
        assert row["expected_cost_usd"] == pytest.approx(price.cost(input_tokens, EXPECTED_OUTPUT_TOKENS), abs=1e-8)
    assert main(["route", QUESTION, "--strategy", "heuristic"]) == 0
    out = capsys.readouterr().out
    assert "P(answers well)" not in out and "$0.00" in out


def test_a_max_tier_caps_the_start_and_the_plan_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    hard = "Prove that the square root of 2 is irrational. Explain why, step by step, and compare two proofs."
    uncapped = route_json(capsys, hard, "--strategy", "heuristic")
    assert uncapped["start_tier"] == "opus" and uncapped["classification"]["complexity"] == "complex"
    plan = route_json(capsys, hard, "--strategy", "heuristic", "--max-tier", "sonnet")
    assert plan["start_tier"] == "sonnet" and plan["caps"]["max_tier"] == "sonnet"
    assert "capped at max_tier Sonnet" in plan["classification"]["reason"]
    assert plan["tiers"]["opus"]["allowed"] is False and plan["escalation_path"] == ["sonnet"]
    # The learned router picks among the allowed tiers only.
    learned = route_json(capsys, QUESTION, "--max-tier", "sonnet")
    assert learned["start_tier"] in ("haiku", "sonnet") and learned["plan"]["tiers"] == ["haiku", "sonnet"]


def test_a_callers_tier_override_moves_the_start_and_escalation_goes_up_from_there(
        capsys: pytest.CaptureFixture[str]) -> None:
    plan = route_json(capsys, QUESTION, "--tier", "haiku")
    assert plan["start_tier"] == "haiku" and plan["caps"]["tier"] == "haiku"
    assert "caller override: start at Haiku" in plan["classification"]["reason"]
    assert plan["escalation_path"] == ["haiku", "sonnet", "opus"] and plan["budget_stops_escalation"] is False


def test_a_budget_shortens_the_escalation_path(capsys: pytest.CaptureFixture[str]) -> None:
    # Heuristic: a short greeting starts at Haiku (~$0.0028 at 512 output tokens); Sonnet would add ~$0.0085.
    plan = route_json(capsys, "Hello there", "--strategy", "heuristic", "--max-cost", "0.005")
    assert plan["start_tier"] == "haiku" and plan["plan"]["max_cost_usd"] == 0.005
    assert plan["escalation_path"] == ["haiku"] and plan["budget_stops_escalation"] is True
    assert main(["route", "Hello there", "--strategy", "heuristic", "--max-cost", "0.005"]) == 0
    assert "max_cost_usd leaves no room for a higher tier" in capsys.readouterr().out


def test_routing_tiers_and_escalate_off_come_from_a_request_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"prompt": QUESTION, "routing": {"tiers": ["haiku", "opus"], "escalate": False,
                                                                   "strategy": "cascade"}}))
    plan = route_json(capsys, "--file", str(request))
    assert plan["start_tier"] == "haiku" and plan["caps"]["tiers"] == ["haiku", "opus"]
    assert plan["tiers"]["sonnet"]["allowed"] is False and plan["escalation_path"] == ["haiku"]
    assert main(["route", "-f", str(request)]) == 0
    assert "Escalation: off" in capsys.readouterr().out


def test_a_flag_wins_over_the_files_routing_and_the_rest_of_the_file_stays(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"prompt": QUESTION, "routing": {"strategy": "learned", "max_tier": "sonnet"}}))
    plan = route_json(capsys, "--file", str(request), "--strategy", "heuristic", "--threshold", "0.5")
    assert plan["classification"]["strategy"] == "heuristic" and plan["plan"]["threshold"] == 0.5
    assert plan["plan"]["max_tier"] == "sonnet"


def test_a_conversation_on_stdin_is_planned(capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    conversation = {"messages": [{"role": "user", "content": "Write a Python function that merges two lists."},
                                 {"role": "assistant", "content": "def merge(a, b): return a + b"},
                                 {"role": "user", "content": "Now make it a generator."}]}
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(json.dumps(conversation).encode())))
    plan = route_json(capsys, "--file", "-")
    assert plan["classification"]["signals"]["turns"] == 3


def test_the_plan_never_echoes_the_prompt(capsys: pytest.CaptureFixture[str]) -> None:
    prompt = "Summarise the memo about project zanzibar-quokka in two sentences."
    assert main(["route", prompt]) == 0
    assert main(["route", prompt, "--json"]) == 0
    assert "zanzibar" not in capsys.readouterr().out


def test_an_invalid_request_is_one_line_naming_the_field(capsys: pytest.CaptureFixture[str]) -> None:
    assert route_fails(capsys, QUESTION, "--threshold", "2") == (
        "Router.InvalidRequest: routing.confidence_threshold: 2.0 is greater than the maximum of 1")
    assert route_fails(capsys, "") == "Router.InvalidRequest: prompt: '' should be non-empty"
    assert route_fails(capsys, QUESTION, "--min-tier", "opus", "--max-tier", "haiku").startswith(
        "Router.InvalidRequest: routing.min_tier: ")
    assert route_fails(capsys, QUESTION, "--max-cost", "0.000001").startswith(
        "Router.InvalidRequest: routing.max_cost_usd: 1e-06 is below the estimated $")


def test_a_request_file_that_is_not_one_request_is_one_line(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    listed = tmp_path / "list.json"
    listed.write_text('[{"prompt": "hi"}]')
    assert route_fails(capsys, "--file", str(listed)) == (
        "Router.InvalidRequest: (request): must be a JSON object, got list")
    unknown = tmp_path / "unknown.json"
    unknown.write_text('{"prompt": "hi", "model": "gpt-4"}')
    assert route_fails(capsys, "-f", str(unknown)) == (
        "Router.InvalidRequest: model: unknown field (not in the request schema)")


def test_a_file_the_strict_loader_refuses_is_one_line_with_where(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    twice = tmp_path / "twice.json"
    twice.write_text('{"prompt": "a", "prompt": "b"}')
    assert "duplicate key \"prompt\"" in route_fails(capsys, "--file", str(twice))
    broken = tmp_path / "broken.json"
    broken.write_text('{"prompt": "a",\n}')
    assert route_fails(capsys, "--file", str(broken)).startswith(f"error: --file: {broken} is not valid JSON: line 2")
    binary = tmp_path / "binary.json"
    binary.write_bytes(b'{"prompt": "\xff"}')
    assert "not valid UTF-8" in route_fails(capsys, "--file", str(binary))
    assert route_fails(capsys, "--file", str(tmp_path / "missing.json")).startswith("error: --file: cannot read")


def test_no_prompt_or_both_a_prompt_and_a_file_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert route_fails(capsys) == "error: give a prompt or --file REQUEST.json"
    assert route_fails(capsys, QUESTION, "--file", "x.json") == "error: give a prompt or --file REQUEST.json, not both"


def test_the_help_documents_every_json_field(capsys: pytest.CaptureFixture[str]) -> None:
    plan = route_json(capsys, QUESTION)
    assert main(["route", "--help"]) == 0
    text = capsys.readouterr().out
    for field in [*plan, *plan["tiers"]["haiku"]]:
        assert field in text, field


# -- the llm strategies: route says the workflow would call a classifier model first, and what it costs -------


def test_route_strategy_llm_states_the_classifier_call_and_its_cost(capsys: pytest.CaptureFixture[str]) -> None:
    from model_router.pricing import price_for
    from model_router.routing.llm_classifier import CLASSIFIER_REPLY_TOKENS

    plan = route_json(capsys, QUESTION, "--strategy", "llm")
    call = plan["classifier_call"]
    assert plan["model_called"] is False and call["model_id"] == DEFAULT_MODEL_IDS[Tier.HAIKU]
    assert call["expected_cost_usd"] == pytest.approx(
        price_for(call["model_id"]).cost(call["input_tokens"], CLASSIFIER_REPLY_TOKENS), abs=1e-8)
    learned = route_json(capsys, QUESTION)
    assert plan["start_tier"] == learned["start_tier"]  # the learned start: the workflow's own on a failed call
    assert plan["classification"]["llm"]["asked"] is False
    assert learned["classifier_call"] is None
    assert main(["route", QUESTION, "--strategy", "llm"]) == 0
    out = capsys.readouterr().out
    assert "needs a model call first" in " ".join(out.split()) and "200-400 ms" in out


def test_route_strategy_learned_llm_calls_only_below_the_margin(capsys: pytest.CaptureFixture[str]) -> None:
    plan = route_json(capsys, QUESTION, "--strategy", "learned+llm")
    margin = plan["classification"]["route_estimates"]["decision_margin"]
    asks = margin is not None and margin < Settings().llm_classifier_margin
    assert (plan["classifier_call"] is not None) is asks
    assert plan["classification"]["llm"]["learned_margin"] == margin


def test_every_strategy_the_cli_offers_is_one_the_contract_and_the_router_know() -> None:
    from model_router.contracts.request import schema
    from model_router.routing.plan import ROUTERS
    from model_router_tools.cli.types import STRATEGIES

    enum = schema("request")["properties"]["routing"]["properties"]["strategy"]["enum"]
    assert set(STRATEGIES) == set(ROUTERS) == set(enum)
