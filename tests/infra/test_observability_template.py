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

from model_router.emf import EMITTED, ERROR, FROM_TIER, STATUS, STRATEGY, TIER, TO_TIER
from model_router_tools.local.template import load_template, read_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "template.yaml")
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
PARAMETERS: dict[str, Any] = TEMPLATE["Parameters"]
ASL = json.loads((ROOT / "statemachine" / "router.asl.json").read_text())
NAMESPACE = "${MetricsNamespace}"
EMITTED_NAMES = {name for names in EMITTED.values() for name in names}
DIMENSIONS = {"service", TIER, STRATEGY, STATUS, ERROR, FROM_TIER, TO_TIER}
REQUIRED_WIDGETS = ("Cost per hour", "Model mix", "Escalation rate", "fallback rate", "Throttle rate", "p95 latency",
                    "Failed executions", "Batch failures")
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
                     "ThrottleRateAlarmPercent", "FailedExecutionsAlarmThreshold"}
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
                assert (namespace, dims[0], dims[1]) in {("AWS/States", "StateMachineArn", "${RouterStateMachine}")}


def test_rate_widgets_divide_the_right_metrics() -> None:
    rows = widget("Throttle rate")["properties"]["metrics"]
    ids = {row[-1]["id"]: row[1] for row in rows if not isinstance(row[0], dict)}
    assert ids == {"throttles": "Throttles", "calls": "ModelCalls"}
    escalation = widget("Escalation rate")["properties"]["metrics"]
    assert {row[-1]["id"]: row[1] for row in escalation if not isinstance(row[0], dict)} == {
        "escalations": "Escalations", "fallbacks": "Fallbacks", "requests": "Requests"}
    assert widget("p95 latency")["properties"]["stat"] == "p95"
    assert widget("Cost per hour")["properties"]["period"] == 3600


@pytest.mark.parametrize(("alarm", "threshold"), [
    ("RouterFailedExecutionsAlarm", "FailedExecutionsAlarmThreshold"),
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
    cost = RESOURCES["CostPerHourAlarm"]["Properties"]
    assert (cost["MetricName"], cost["Period"], cost["Statistic"]) == ("CostUSD", 3600, "Sum")
    throttle = {m["Id"]: m for m in RESOURCES["ModelThrottleRateAlarm"]["Properties"]["Metrics"]}
    assert throttle["throttles"]["MetricStat"]["Metric"]["MetricName"] == "Throttles"
    assert throttle["calls"]["MetricStat"]["Metric"]["MetricName"] == "ModelCalls"
    assert "100 * throttles / calls" in throttle["throttle_rate"]["Expression"]
    for name in ("CostUSD", "Throttles", "ModelCalls"):
        assert name in EMITTED_NAMES


def test_functions_publish_to_the_namespace_parameter_and_trace() -> None:
    function_globals = TEMPLATE["Globals"]["Function"]
    assert function_globals["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"] == {"Ref": "MetricsNamespace"}
    assert function_globals["Tracing"] == "Active"
    assert RESOURCES["RouterStateMachine"]["Properties"]["Tracing"] == {"Enabled": True}


def test_every_lambda_payload_carries_the_execution_for_log_correlation() -> None:
    tasks = {name: s for name, s in ASL["States"].items() if s["Type"] == "Task"}
    assert tasks
    for name, state in tasks.items():
        assert state["Parameters"]["Payload"]["execution_id.$"] == "$$.Execution.Id", name
    for name in ("Score Answer", "Record Failed Attempt"):
        assert ASL["States"][name]["Parameters"]["Payload"]["execution_started.$"] == "$$.Execution.StartTime"
