"""The batch resources of template.yaml: the EventBridge rule against sample S3 events (the rule's pattern
on moto's EventBridge, which forwards matching events to a queue), storage hardening, least privilege, and
statemachine/batch.asl.json against the router it is generated from."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from model_router_tools.asl import batch_definition as definition

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "model-router-batchinputbucket-1x2y3z"


def resources(template: dict[str, Any]) -> dict[str, Any]:
    return dict(template["Resources"])


def resolve(value: Any, template: dict[str, Any]) -> Any:
    """Enough of CloudFormation for the rule pattern: !Ref of the bucket and !Sub of parameter defaults."""
    if isinstance(value, dict) and value.keys() == {"Ref"}:
        return BUCKET if value["Ref"] == "BatchInputBucket" else template["Parameters"][value["Ref"]]["Default"]
    if isinstance(value, dict) and value.keys() == {"Fn::Sub"}:
        text = value["Fn::Sub"]
        for name, param in template["Parameters"].items():
            text = text.replace("${" + name + "}", str(param.get("Default", "")))
        assert "${" not in text, text
        return text
    if isinstance(value, dict):
        return {k: resolve(v, template) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, template) for v in value]
    return value


@pytest.fixture(scope="module")
def pattern(template: dict[str, Any]) -> dict[str, Any]:
    event = resources(template)["BatchStateMachine"]["Properties"]["Events"]["InputObjectCreated"]
    assert event["Type"] == "EventBridgeRule"
    return dict(resolve(event["Properties"]["Pattern"], template))


@pytest.fixture(scope="module")
def delivered(pattern: dict[str, Any]) -> Iterator[Any]:
    """Put an event on moto's default bus, where the template's rule forwards matches to a queue; did it arrive?"""
    with mock_aws():
        events = boto3.client("events", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue = sqs.create_queue(QueueName="batch-starts")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="InputObjectCreated", EventPattern=json.dumps(pattern))
        events.put_targets(Rule="InputObjectCreated", Targets=[{"Id": "batch", "Arn": queue_arn}])

        def deliver(event: dict[str, Any]) -> bool:
            events.put_events(Entries=[{"Source": event["source"], "DetailType": event["detail-type"],
                                        "Detail": json.dumps(event["detail"]), "Resources": event["resources"]}])
            messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
            for message in messages:
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
            return bool(messages)

        yield deliver


def s3_event(key: str, *, bucket: str = BUCKET, detail_type: str = "Object Created") -> dict[str, Any]:
    return {
        "version": "0", "id": "17793124-05d4-b198-2fde-7ededc63b103", "detail-type": detail_type,
        "source": "aws.s3", "account": "123456789012", "time": "2026-11-23T10:00:00Z", "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {"version": "0", "bucket": {"name": bucket},
                   "object": {"key": key, "size": 5, "etag": "b1946ac92492d2347c6235b4d2611184",
                              "sequencer": "00617F08299329D189"},
                   "request-id": "N4N7GDK58NMKJ12R", "requester": "123456789012", "reason": "PutObject"},
    }


@pytest.mark.parametrize(
    ("event", "starts_a_batch"),
    [
        (s3_event("incoming/day-1.jsonl"), True),
        (s3_event("incoming/team-a/2026/11/day-1.jsonl"), True),
        (s3_event("incoming/day-1.json"), False),             # not JSONL
        (s3_event("incoming/day-1.jsonl.gz"), False),          # suffix must be exactly .jsonl
        (s3_event("results/day-1.jsonl"), False),              # outside the input prefix
        (s3_event("day-1.jsonl"), False),
        (s3_event("incoming/day-1.jsonl", bucket="someone-elses-bucket"), False),
        (s3_event("incoming/day-1.jsonl", detail_type="Object Deleted"), False),
    ],
)
def test_the_rule_starts_a_batch_for_jsonl_objects_under_the_prefix_only(
    delivered: Any, event: dict[str, Any], starts_a_batch: bool
) -> None:
    assert delivered(event) is starts_a_batch


def test_the_sweep_schedule_is_off_unless_asked_for(template: dict[str, Any]) -> None:
    sweep = resources(template)["BatchStateMachine"]["Properties"]["Events"]["WaitingInputsSweep"]
    assert sweep["Type"] == "Schedule"
    assert sweep["Properties"]["State"] == {"Fn::If": ["BatchScheduleOn", "ENABLED", "DISABLED"]}
    assert template["Conditions"]["BatchScheduleOn"] == {"Fn::Equals": [{"Ref": "BatchScheduleEnabled"}, "true"]}
    assert template["Parameters"]["BatchScheduleEnabled"]["Default"] == "false"


@pytest.mark.parametrize("bucket", ["BatchInputBucket", "BatchResultsBucket"])
def test_buckets_are_encrypted_private_and_tls_only(template: dict[str, Any], bucket: str) -> None:
    props = resources(template)[bucket]["Properties"]
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert set(props["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(props["PublicAccessBlockConfiguration"]) == 4
    policy = next(r["Properties"] for r in resources(template).values()
                  if r["Type"] == "AWS::S3::BucketPolicy" and r["Properties"]["Bucket"] == {"Ref": bucket})
    deny = policy["PolicyDocument"]["Statement"][0]
    assert (deny["Effect"], deny["Action"]) == ("Deny", "s3:*")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": False}}


def test_results_expire_and_inputs_reach_eventbridge(template: dict[str, Any]) -> None:
    results = resources(template)["BatchResultsBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert any(r.get("ExpirationInDays") == {"Ref": "BatchResultsRetentionDays"} for r in results)
    inputs = resources(template)["BatchInputBucket"]["Properties"]
    assert inputs["NotificationConfiguration"]["EventBridgeConfiguration"] == {"EventBridgeEnabled": True}


def _statements(resource: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for p in resource["Properties"]["Policies"] if "Statement" in p for s in p["Statement"]]


def test_batch_iam_is_scoped_to_its_prefixes_and_itself(template: dict[str, Any]) -> None:
    machine = resources(template)["BatchStateMachine"]
    for statement in _statements(machine):
        if statement["Sid"] in ("DeliverExecutionLogs", "WriteTraces"):
            continue  # these two accept no narrower resource than "*"
        assert statement["Resource"] != "*", statement["Sid"]
        if any(a.startswith("s3:") for a in ([statement["Action"]] if isinstance(statement["Action"], str)
                                            else statement["Action"])):
            assert statement["Resource"] == {"Fn::Sub": "${BatchResultsBucket.Arn}/results/*"}
    function = resources(template)["BatchFunction"]
    for statement in _statements(function):
        assert statement["Resource"] != "*", statement["Sid"]
    reads = next(s for s in _statements(function) if s["Sid"] == "ReadInputs")
    assert reads == {"Sid": "ReadInputs", "Effect": "Allow", "Action": "s3:GetObject",
                     "Resource": {"Fn::Sub": "${BatchInputBucket.Arn}/${BatchInputPrefix}*"}}
    machine_props = machine["Properties"]
    assert machine_props["Name"] == {"Fn::Sub": "${AWS::StackName}-batch"}
    start = next(s for s in _statements(machine) if s["Sid"] == "StartChildAndSweepExecutions")
    assert start["Resource"]["Fn::Sub"].endswith(":stateMachine:${AWS::StackName}-batch")


def test_batch_definition_is_generated_from_the_router() -> None:
    assert definition.BATCH_ASL.read_text(encoding="utf-8") == definition.render(), (
        "statemachine/batch.asl.json drifted from router.asl.json: python -m model_router_tools.asl.batch_definition")
    router = json.loads(definition.ROUTER_ASL.read_text(encoding="utf-8"))
    batch = json.loads(definition.BATCH_ASL.read_text(encoding="utf-8"))
    processor = batch["States"][definition.ITEM_PROCESSOR_STATE]["ItemProcessor"]
    assert processor["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"}
    [branch] = processor["States"][definition.ROUTE_STATE]["Branches"]
    assert branch == {"StartAt": router["StartAt"], "States": router["States"]}


def test_the_drift_check_fails_on_a_changed_router(tmp_path: Path) -> None:
    router = json.loads(definition.ROUTER_ASL.read_text(encoding="utf-8"))
    router["States"]["Score Answer"]["Comment"] = "changed"
    changed = tmp_path / "router.asl.json"
    changed.write_text(json.dumps(router), encoding="utf-8")
    assert definition.render(changed) != definition.BATCH_ASL.read_text(encoding="utf-8")
