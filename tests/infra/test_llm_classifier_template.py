"""The LLM classifier's stack parameters (strategies llm and learned+llm): their bounds, the rule that keeps a
default strategy from needing a classifier the stack may not call, the classifier's environment and its timeout.

Its IAM (the classifier model alone, and only with AllowLlmClassifier) is checked in tests/infra/test_iam.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from model_router_tools.local.template import condition_values, function_specs

ROOT = Path(__file__).resolve().parents[2]
LLM_PARAMETERS = ("AllowLlmClassifier", "ClassifierModelId", "ClassifierTimeoutSeconds", "LlmClassifierMargin")
# model_router.routing.plan.ROUTERS: every strategy a request may name, so every one the stack may default to.
STRATEGIES = {"heuristic", "learned", "cascade", "static", "llm", "learned+llm"}
LLM_STRATEGIES = {"llm", "learned+llm"}
# Room a classification needs besides the classifier call: a cold start loading the router models.
CLASSIFY_MARGIN_S = 5


def _defaults(template: dict[str, Any]) -> dict[str, str]:
    return {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()}


def test_default_strategy_offers_every_strategy_and_defaults_to_learned(template: dict[str, Any]) -> None:
    from model_router.routing.plan import ROUTERS

    parameter = template["Parameters"]["DefaultStrategy"]
    assert set(parameter["AllowedValues"]) == STRATEGIES == set(ROUTERS)
    assert parameter["Default"] == "learned"


def test_the_llm_parameters_have_their_defaults_and_bounds(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    switch = parameters["AllowLlmClassifier"]
    assert (switch["Type"], switch["Default"], switch["AllowedValues"]) == ("String", "false", ["false", "true"])
    assert (parameters["ClassifierModelId"]["Type"], parameters["ClassifierModelId"]["Default"]) == ("String", "")
    timeout = parameters["ClassifierTimeoutSeconds"]
    assert (timeout["Type"], timeout["Default"], timeout["MinValue"], timeout["MaxValue"]) == ("Number", 2, 0.1, 30)
    margin = parameters["LlmClassifierMargin"]
    assert (margin["Type"], margin["Default"], margin["MinValue"], margin["MaxValue"]) == ("Number", 0.05, 0, 1)
    for name in LLM_PARAMETERS:
        assert parameters[name]["Description"], name


@pytest.mark.parametrize(("model_id", "accepted"), [
    ("", True), ("us.anthropic.claude-haiku-4-5-20251001-v1:0", True), ("global.anthropic.claude-sonnet-4-6", True),
    ("anthropic.claude-haiku-4-5-20251001-v1:0", False),  # a foundation model id: the grant is profile-shaped
    ("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-6", False),
    ("us.anthropic", False), (" us.anthropic.claude-sonnet-4-6", False),
])
def test_the_classifier_model_is_empty_or_an_inference_profile_like_the_tiers(
        template: dict[str, Any], model_id: str, accepted: bool) -> None:
    pattern = template["Parameters"]["ClassifierModelId"]["AllowedPattern"]
    assert bool(re.match(pattern, model_id)) == accepted
    if model_id:  # the same ids a tier's model parameter takes
        assert bool(re.match(template["Parameters"]["HaikuModelId"]["AllowedPattern"], model_id)) == accepted


def test_the_llm_parameters_are_grouped_in_the_console(template: dict[str, Any]) -> None:
    groups = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    (group,) = [g for g in groups if "AllowLlmClassifier" in g["Parameters"]]
    assert tuple(group["Parameters"]) == LLM_PARAMETERS
    assert "LLM classifier" in group["Label"]["default"]


def test_the_rule_names_the_llm_strategies_and_the_switch(template: dict[str, Any]) -> None:
    rule = template["Rules"]["LlmStrategiesNeedTheLlmClassifier"]
    assert rule["RuleCondition"] == {"Fn::Or": [{"Fn::Equals": [{"Ref": "DefaultStrategy"}, strategy]}
                                                for strategy in ("llm", "learned+llm")]}
    (assertion,) = rule["Assertions"]
    assert assertion["Assert"] == {"Fn::Equals": [{"Ref": "AllowLlmClassifier"}, "true"]}
    assert "AllowLlmClassifier" in assertion["AssertDescription"]


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
@pytest.mark.parametrize("allowed", ["false", "true"])
def test_a_stack_deploys_unless_its_default_strategy_needs_a_classifier_it_may_not_call(
        template: dict[str, Any], strategy: str, allowed: str) -> None:
    rule = template["Rules"]["LlmStrategiesNeedTheLlmClassifier"]
    # The rule's two expressions evaluated like conditions (the same functions: Fn::Or, Fn::Equals).
    as_conditions = {"Conditions": {"Applies": rule["RuleCondition"], "Holds": rule["Assertions"][0]["Assert"]}}
    values = condition_values(as_conditions, _defaults(template) | {"DefaultStrategy": strategy,
                                                                   "AllowLlmClassifier": allowed})
    deploys = not values["Applies"] or values["Holds"]
    assert deploys == (strategy not in LLM_STRATEGIES or allowed == "true")


def test_the_classifier_environment_carries_the_llm_settings(template: dict[str, Any]) -> None:
    defaults = function_specs(template, ROOT)["ClassifierFunction"].environment
    assert {k: defaults[k] for k in ("ALLOW_LLM_CLASSIFIER", "CLASSIFIER_MODEL_ID", "CLASSIFIER_TIMEOUT_SECONDS",
                                     "LLM_CLASSIFIER_MARGIN")} == {
        "ALLOW_LLM_CLASSIFIER": "false", "CLASSIFIER_MODEL_ID": template["Parameters"]["HaikuModelId"]["Default"],
        "CLASSIFIER_TIMEOUT_SECONDS": "2", "LLM_CLASSIFIER_MARGIN": "0.05"}
    chosen = function_specs(template, ROOT, {
        "AllowLlmClassifier": "true", "ClassifierModelId": "global.anthropic.claude-sonnet-4-6",
        "HaikuModelId": "eu.anthropic.claude-haiku-4-5-20251001-v1:0", "ClassifierTimeoutSeconds": "0.5",
        "LlmClassifierMargin": "0.2", "DefaultStrategy": "learned+llm"})["ClassifierFunction"].environment
    assert (chosen["ALLOW_LLM_CLASSIFIER"], chosen["CLASSIFIER_MODEL_ID"], chosen["CLASSIFIER_TIMEOUT_SECONDS"],
            chosen["LLM_CLASSIFIER_MARGIN"], chosen["DEFAULT_STRATEGY"]) == (
        "true", "global.anthropic.claude-sonnet-4-6", "0.5", "0.2", "learned+llm")
    # Empty: the Haiku tier's model, whatever it is set to.
    eu_haiku = "eu.anthropic.claude-haiku-4-5-20251001-v1:0"
    haiku = function_specs(template, ROOT, {"HaikuModelId": eu_haiku})
    assert haiku["ClassifierFunction"].environment["CLASSIFIER_MODEL_ID"] == eu_haiku


def test_only_the_classifier_gets_the_llm_settings(template: dict[str, Any]) -> None:
    names = {"ALLOW_LLM_CLASSIFIER", "CLASSIFIER_MODEL_ID", "CLASSIFIER_TIMEOUT_SECONDS", "LLM_CLASSIFIER_MARGIN"}
    for logical_id, spec in function_specs(template, ROOT).items():
        assert (names <= set(spec.environment)) == (logical_id == "ClassifierFunction"), logical_id


def test_the_classifier_outlives_its_longest_classifier_call(template: dict[str, Any]) -> None:
    longest_call_s = template["Parameters"]["ClassifierTimeoutSeconds"]["MaxValue"]
    timeout_s = function_specs(template, ROOT)["ClassifierFunction"].timeout_s
    assert timeout_s >= longest_call_s + CLASSIFY_MARGIN_S
    # No Task timeout on Classify Request (the router's, and each batch line's copy of it) cuts it shorter.
    for name in ("router.asl.json", "batch.asl.json"):
        text = (ROOT / "statemachine" / name).read_text()
        states = [s for s in _all_states(json.loads(text)["States"]) if s[0] == "Classify Request"]
        assert states, name
        for _, state in states:
            assert state.get("TimeoutSeconds", timeout_s + 1) > timeout_s, name


def _all_states(states: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, state in states.items():
        found.append((name, state))
        for inner in [state.get("ItemProcessor", {}), state.get("Iterator", {}), *state.get("Branches", [])]:
            found += _all_states(inner.get("States", {}))
    return found
