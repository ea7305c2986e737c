"""The dashboard, alarms, tracing and log correlation in template.yaml and the ASL, checked against the metrics
the handlers emit (src/model_router/emf.py): a widget or alarm on a metric nobody publishes fails here.

The dashboard body lives in dashboards/router.yaml, which template.yaml includes (AWS::Include). cfn-lint does
not read included files, so the names the body substitutes are checked here too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from model_router.emf import ARM, EMITTED, ERROR, FALLBACK_KIND, FROM_TIER, STATUS, STRATEGY, TIER, TO_TIER
from model_router_tools.local.template import load_template, read_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "template.yaml")
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
PARAMETERS: dict[str, Any] = TEMPLATE["Parameters"]
ASL = json.loads((ROOT / "statemachine" / "router.asl.json").read_text())
NAMESPACE = "${MetricsNamespace}"
EMITTED_NAMES = {name for names in EMITTED.values() for name in names}
DIMENSIONS = {"service", TIER, STRATEGY, STATUS, ERROR, FROM_TIER, TO_TIER, ARM, FALLBACK_KIND}
REQUIRED_WIDGETS = ("Cost per hour", "Model mix", "Escalation rate", "fallback rate", "Throttle rate", "p95 latency",
                    "Failed executions", "Batch failures", "Shadow evaluation", "Router models", "LLM classifier")
# Failed starts of the shadow state machine: Step Functions counts service integrations per integration (the
# account's states:startExecution), not per state machine.
START_EXECUTION_INTEGRATION = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:states:startExecution"
AWS_STATES_ROWS = {
    ("ExecutionsFailed", "StateMachineArn", "${RouterStateMachine}"),
    ("ExecutionsTimedOut", "StateMachineArn", "${RouterStateMachine}"),
    ("ExecutionsFailed", "StateMachineArn", "${ShadowStateMachine}"),
    ("ServiceIntegrationsFailed", "ServiceIntegrationResourceArn", START_EXECUTION_INTEGRATION),
}
DASHBOARD_FILE = "dashboards/router.yaml"
PSEUDO_PARAMETERS = {"AWS::Region", "AWS::AccountId", "AWS::Partition", "AWS::StackName", "AWS::URLSuffix"}


def dashboard_body() -> str:
    body: str = read_template(ROOT / DASHBOARD_FILE)["Fn::Sub"]
    return body


def dashboard() -> dict[str, Any]:
    body = dashboard_body()
    # Numbers stand in for the numeric parameters; names stay as written so they can be checked.
    numeric = {k for k, v in PARAMETERS.items() if v["Type"] == "Number"}
    text = re.sub(r"\$\{([A-Za-z:]+)\}", lambda m: "1" if m.group(1) in numeric else "${" + m.group(1) + "}", body)
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def widget(title_part: str) -> dict[str, Any]:
    matches = [w for w in dashboard()["widgets"] if title_part in w["properties"]["title"]]
    assert len(matches) == 1, title_part
    return matches[0]


def test_the_template_includes_the_dashboard_file() -> None:
    written = read_template(ROOT / "template.yaml")["Resources"]["RouterDashboard"]["Properties"]["DashboardBody"]
    assert written == {"Fn::Transform": {"Name": "AWS::Include", "Parameters": {"Location": DASHBOARD_FILE}}}
    assert RESOURCES["RouterDashboard"]["Properties"]["DashboardBody"] == {"Fn::Sub": dashboard_body()}


def test_the_dashboard_substitutes_only_parameters_pseudo_parameters_and_resources() -> None:
    names = set(re.findall(r"\$\{([^}!]+)\}", dashboard_body()))
    assert names == {"AWS::Region", "MetricsNamespace", "RouterStateMachine", "CostPerHourAlarmUSD",
                     "ThrottleRateAlarmPercent", "FailedExecutionsAlarmThreshold", "ShadowStateMachine",
                     "AWS::Partition", "AWS::AccountId"}
    assert names <= set(PARAMETERS) | set(RESOURCES) | PSEUDO_PARAMETERS


def test_dashboard_body_is_json_with_every_required_widget() -> None:
    titles = " | ".join(w["properties"]["title"] for w in dashboard()["widgets"])
    for part in REQUIRED_WIDGETS:
        assert part in titles


def test_dashboard_metrics_are_the_ones_the_handlers_emit() -> None:
    for w in dashboard()["widgets"]:
        for row in w["properties"]["metrics"]:
            if isinstance(row[0], dict):  # an expression: math over ids, or a SEARCH
                expression = row[0]["expression"]
                names = set(re.findall(r'MetricName="(\w+)"', expression))
                if "{AWS/States," in expression:
                    assert names == {"ExecutionsFailed"}
                else:
                    assert names <= EMITTED_NAMES, (w["properties"]["title"], names)
                for dims in re.findall(r"\{\$\{MetricsNamespace\},([^}]*)\}", expression):
                    assert set(dims.split(",")) <= DIMENSIONS
                continue
            namespace, name, *rest = row
            dims = [x for x in rest if not isinstance(x, dict)]
            if namespace == NAMESPACE:
                assert name in EMITTED_NAMES, (w["properties"]["title"], name)
                assert set(dims[::2]) <= DIMENSIONS and tuple(dims[:2]) == ("service", "model-router")
            else:
                assert namespace == "AWS/States" and (name, dims[0], dims[1]) in AWS_STATES_ROWS, row


def test_rate_widgets_divide_the_right_metrics() -> None:
    rows = widget("Throttle rate")["properties"]["metrics"]
    ids = {row[-1]["id"]: row[1] for row in rows if not isinstance(row[0], dict)}
    assert ids == {"throttles": "Throttles", "calls": "ModelCalls"}
    escalation = widget("Escalation rate")["properties"]["metrics"]
    assert {row[-1]["id"]: row[1] for row in escalation if not isinstance(row[0], dict)} == {
        "escalations": "Escalations", "fallbacks": "Fallbacks", "requests": "Requests"}
    assert widget("p95 latency")["properties"]["stat"] == "p95"
    assert widget("Cost per hour")["properties"]["period"] == 3600


def test_the_shadow_row_shows_spend_beside_routed_spend_outcomes_and_failures() -> None:
    def rows(title: str) -> list[tuple[str, ...]]:
        found = widget(title)["properties"]
        return [tuple(x for x in row if not isinstance(x, dict)) for row in found["metrics"]]

    service = ("service", "model-router")
    spend = widget("Shadow evaluation: shadow spend")["properties"]
    assert (spend["stat"], spend["period"]) == ("Sum", 3600)
    # ModelsCostUSD is the routed requests' model spend (the scorer's, on accepted results): the same kind of cost.
    assert rows("Shadow evaluation: shadow spend") == [(NAMESPACE, "ShadowSpendUSD", *service),
                                                       (NAMESPACE, "ModelsCostUSD", *service)]
    assert rows("Shadow evaluation: outcome records") == [
        (NAMESPACE, name, *service) for name in ("ShadowOutcomesWritten", "ShadowSkipped", "ShadowFailed")]
    assert rows("Shadow evaluation: failed executions") == [
        ("AWS/States", "ExecutionsFailed", "StateMachineArn", "${ShadowStateMachine}"),
        ("AWS/States", "ServiceIntegrationsFailed", "ServiceIntegrationResourceArn", START_EXECUTION_INTEGRATION)]
    # The router's start of it is the integration counted there.
    start = ASL["States"]["Start Shadow Evaluation"]
    assert start["Resource"] == "arn:aws:states:::states:startExecution"
    assert START_EXECUTION_INTEGRATION.endswith(":" + start["Resource"].rsplit(":", 2)[-2] + ":startExecution")


def test_the_router_model_row_splits_results_cost_and_fallbacks_by_arm() -> None:
    def rows(title: str) -> list[tuple[str, ...]]:
        return [tuple(x for x in row if not isinstance(x, dict)) for row in widget(title)["properties"]["metrics"]]

    by_arm = [(ARM, "champion"), (ARM, "challenger")]
    service = ("service", "model-router")
    assert rows("Router models: results by arm") == [(NAMESPACE, "Results", *service, *arm) for arm in by_arm]
    assert rows("Router models: cost and savings") == [(NAMESPACE, name, *service, *arm)
                                                       for name in ("CostUSD", "SavingsUSD") for arm in by_arm]
    assert rows("Router models: requests served by a fallback") == [
        (NAMESPACE, "RouterModelFallback", *service, *arm) for arm in by_arm]
    assert "RouterModelFallback" in EMITTED["classifier"]
    # The classifier's decisions carry the arm too (a SEARCH matches its exact dimension set).
    decisions = widget("Classifier decisions")["properties"]["metrics"][0][0]["expression"]
    assert "{${MetricsNamespace},Arm,Strategy,Tier,service}" in decisions


def test_the_llm_classifier_row_shows_calls_fallbacks_by_kind_latency_and_cost() -> None:
    def rows(title: str) -> list[tuple[str, ...]]:
        return [tuple(x for x in row if not isinstance(x, dict)) for row in widget(title)["properties"]["metrics"]]

    service = ("service", "model-router")
    calls = widget("LLM classifier: calls")["properties"]
    assert rows("LLM classifier: calls")[:2] == [(NAMESPACE, "ClassifierCalls", *service),
                                                 (NAMESPACE, "ClassifierFallbacks", *service)]
    # By kind: a SEARCH on the exact dimension set the classifier publishes them with.
    by_kind = calls["metrics"][2][0]["expression"]
    assert "{${MetricsNamespace},FallbackKind,service}" in by_kind and 'MetricName="ClassifierFallbacks"' in by_kind
    latency = widget("LLM classifier: call latency")["properties"]["metrics"]
    assert [(row[1], row[-1]["stat"]) for row in latency] == [("ClassifierLatencyMs", "p50"),
                                                             ("ClassifierLatencyMs", "p90")]
    cost = widget("LLM classifier: cost")["properties"]
    assert (cost["stat"], cost["period"]) == ("Sum", 3600)
    assert rows("LLM classifier: cost") == [(NAMESPACE, "ClassifierCostUSD", *service),
                                            (NAMESPACE, "CostUSD", *service)]
    assert {"ClassifierCalls", "ClassifierFallbacks", "ClassifierLatencyMs", "ClassifierCostUSD"} <= set(
        EMITTED["classifier"])


def test_the_router_model_fallback_alarm_exists_only_with_model_artifacts() -> None:
    props = RESOURCES["RouterModelFallbackAlarm"]["Properties"]
    assert RESOURCES["RouterModelFallbackAlarm"]["Condition"] == "UseRouterModelArtifacts"
    assert (props["Namespace"], props["MetricName"]) == ({"Ref": "MetricsNamespace"}, "RouterModelFallback")
    assert props["Dimensions"] == [{"Name": "service", "Value": "model-router"}]
    assert (props["Statistic"], props["Threshold"], props["ComparisonOperator"]) == ("Sum", 0, "GreaterThanThreshold")
    for key in ("AlarmActions", "OKActions"):
        assert props[key] == RESOURCES["CostPerHourAlarm"]["Properties"][key]


@pytest.mark.parametrize(("alarm", "threshold"), [
    ("RouterFailedExecutionsAlarm", "FailedExecutionsAlarmThreshold"),
    ("ExpressRouterFailedExecutionsAlarm", "FailedExecutionsAlarmThreshold"),
    ("ModelThrottleRateAlarm", "ThrottleRateAlarmPercent"),
    ("CostPerHourAlarm", "CostPerHourAlarmUSD"),
])
def test_alarms_take_thresholds_from_parameters_and_notify_when_asked(alarm: str, threshold: str) -> None:
    props = RESOURCES[alarm]["Properties"]
    assert props["Threshold"] == {"Ref": threshold}
    assert threshold in PARAMETERS
    for key in ("AlarmActions", "OKActions"):
        condition, actions, otherwise = props[key]["Fn::If"]
        assert condition == "HasAlarmAction" and otherwise == {"Ref": "AWS::NoValue"}
        assert actions == [{"Fn::If": ["HasAlarmTopicArn", {"Ref": "AlarmTopicArn"}, {"Ref": "AlarmTopic"}]}]
    assert RESOURCES["AlarmTopic"]["Condition"] == "CreateAlarmTopic"


def test_alarm_metrics() -> None:
    failed = RESOURCES["RouterFailedExecutionsAlarm"]["Properties"]
    assert (failed["Namespace"], failed["MetricName"]) == ("AWS/States", "ExecutionsFailed")
    assert failed["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": "RouterStateMachine"}}]
    express = RESOURCES["ExpressRouterFailedExecutionsAlarm"]
    assert express["Condition"] == "CreateExpressRouter"  # only where the Express copy exists
    assert express["Properties"]["Dimensions"] == [{"Name": "StateMachineArn",
                                                   "Value": {"Ref": "ExpressRouterStateMachine"}}]
    cost = RESOURCES["CostPerHourAlarm"]["Properties"]
    assert (cost["MetricName"], cost["Period"], cost["Statistic"]) == ("CostUSD", 3600, "Sum")
    throttle = {m["Id"]: m for m in RESOURCES["ModelThrottleRateAlarm"]["Properties"]["Metrics"]}
    assert throttle["throttles"]["MetricStat"]["Metric"]["MetricName"] == "Throttles"
    assert throttle["calls"]["MetricStat"]["Metric"]["MetricName"] == "ModelCalls"
    assert "100 * throttles / calls" in throttle["throttle_rate"]["Expression"]
    for name in ("CostUSD", "Throttles", "ModelCalls"):
        assert name in EMITTED_NAMES


def test_the_shadow_failed_alarm_fires_on_one_failure_in_an_hour() -> None:
    props = RESOURCES["ShadowFailedAlarm"]["Properties"]
    assert (props["Namespace"], props["MetricName"]) == ({"Ref": "MetricsNamespace"}, "ShadowFailed")
    assert props["Dimensions"] == [{"Name": "service", "Value": "model-router"}]
    assert (props["Statistic"], props["Period"], props["EvaluationPeriods"]) == ("Sum", 3600, 1)
    assert (props["Threshold"], props["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    assert props["TreatMissingData"] == "notBreaching"
    assert "ShadowFailed" in EMITTED_NAMES
    for key in ("AlarmActions", "OKActions"):
        assert props[key] == RESOURCES["CostPerHourAlarm"]["Properties"][key]


def test_functions_publish_to_the_namespace_parameter_and_trace() -> None:
    function_globals = TEMPLATE["Globals"]["Function"]
    assert function_globals["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"] == {"Ref": "MetricsNamespace"}
    assert function_globals["Tracing"] == "Active"
    for machine in ("RouterStateMachine", "BatchStateMachine", "ShadowStateMachine"):
        assert RESOURCES[machine]["Properties"]["Tracing"] == {"Enabled": True}, machine


def _lambda_tasks(states: dict[str, Any]) -> dict[str, Any]:
    """Every lambda:invoke Task, those inside Map processors and Parallel branches included."""
    found = {}
    for name, state in states.items():
        if state["Type"] == "Task" and state["Resource"] == "arn:aws:states:::lambda:invoke":
            found[name] = state
        for inner in [state.get("ItemProcessor", {}), *state.get("Branches", [])]:
            found |= _lambda_tasks(inner.get("States", {}))
    return found


def test_every_lambda_payload_carries_the_execution_for_log_correlation() -> None:
    shadow = json.loads((ROOT / "statemachine" / "shadow.asl.json").read_text())
    for definition in (ASL, shadow):
        tasks = _lambda_tasks(definition["States"])
        assert tasks
        for name, state in tasks.items():
            assert state["Parameters"]["Payload"]["execution_id.$"] == "$$.Execution.Id", name
    # Check Shadow Budget, Ask Haiku / Sonnet / Opus (in the Map), Judge Answers, Write Outcome Record,
    # Record Shadow Failure.
    assert len(_lambda_tasks(shadow["States"])) == 7
    for name in ("Score Answer", "Record Failed Attempt"):
        assert ASL["States"][name]["Parameters"]["Payload"]["execution_started.$"] == "$$.Execution.StartTime"
    # The shadow execution is told which router (or batch line) execution started it.
    start = ASL["States"]["Start Shadow Evaluation"]["Parameters"]["Input"]
    assert start["router_execution.$"] == "$$.Execution.Id"
