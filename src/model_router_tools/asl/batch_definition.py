"""statemachine/batch.asl.json, generated from statemachine/router.asl.json: one source of truth for routing.

The batch workflow runs a Distributed Map over the lines of an input JSONL object. Each item is a
child Express execution whose "Route Request" Parallel state holds the router's states verbatim, so a
batch item is routed exactly as a single request is; the Parallel's Catch turns the router's Fail
states (invalid request, all models failed) into an error record instead of a failed item.

    python -m model_router_tools.asl.batch_definition          # rewrite statemachine/batch.asl.json
    python -m model_router_tools.asl.batch_definition --check  # exit 1 if the file drifted from the router

tests/infra/test_batch_template.py fails when the committed file is not what this module generates.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
ROUTER_ASL = ROOT / "statemachine" / "router.asl.json"
BATCH_ASL = ROOT / "statemachine" / "batch.asl.json"

ITEM_PROCESSOR_STATE = "Route Every Line"
ROUTE_STATE = "Route Request"

# Lambda's own transient failures: retried by every batch task (the router's tasks carry their own).
LAMBDA_SERVICE_ERRORS = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.ClientExecutionTimeoutException",
]


def _lambda_task(comment: str, payload: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Comment": comment,
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "${BatchFunctionArn}", "Payload": payload},
        "Retry": [
            {
                "ErrorEquals": LAMBDA_SERVICE_ERRORS,
                "IntervalSeconds": 1,
                "MaxAttempts": 3,
                "BackoffRate": 2.0,
                "JitterStrategy": "FULL",
            }
        ],
        **fields,
    }


def router_branch(router: dict[str, Any]) -> dict[str, Any]:
    """The router's states as a Parallel branch: StartAt and States, untouched."""
    return {"StartAt": router["StartAt"], "States": copy.deepcopy(router["States"])}


def item_processor(router: dict[str, Any]) -> dict[str, Any]:
    """One input line: prepare it, route it with the router's states, record the outcome."""
    return {
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
        "StartAt": "Prepare Item",
        "States": {
            "Prepare Item": _lambda_task(
                "Parse and validate the line (a malformed one becomes an error record naming the line and the field)"
                " and look it up in the idempotency store: a line already answered is not routed again.",
                {"step": "prepare", "item.$": "$.item", "source.$": "$.source"},
                OutputPath="$.Payload",
                Next="Needs Routing?",
            ),
            "Needs Routing?": {
                "Type": "Choice",
                "Comment": "Route a new valid line; a done or malformed line already has its output line.",
                "Choices": [{"Variable": "$.action", "StringEquals": "route", "Next": ROUTE_STATE}],
                "Default": "Item Already Settled",
            },
            "Item Already Settled": {
                "Type": "Pass",
                "Comment": "The stored result of an earlier run, or the error record of a malformed line.",
                "OutputPath": "$.output",
                "End": True,
            },
            ROUTE_STATE: {
                "Type": "Parallel",
                "Comment": "The router's own states (generated from statemachine/router.asl.json); its Fail states"
                " are caught here ({Error, Cause} in $.routed) and become an error record, not a failed item.",
                "InputPath": "$.request",
                "Branches": [router_branch(router)],
                "ResultSelector": {"result.$": "$[0]"},
                "ResultPath": "$.routed",
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.routed", "Next": "Record Item Result"}],
                "Next": "Record Item Result",
            },
            "Record Item Result": _lambda_task(
                "Shape the output line (the result, or the error with its cause) and mark an answered line done.",
                {"step": "record", "item": {"line.$": "$.line", "request_id.$": "$.request_id", "source.$": "$.source",
                                            "routed.$": "$.routed"}},
                OutputPath="$.Payload",
                End=True,
            ),
        },
    }


def batch_definition(router: dict[str, Any]) -> dict[str, Any]:
    return {
        "Comment": "Batch: route every line of a JSONL object in S3 through the router's states (Distributed Map of"
        " Express child executions), write one result line per input line and a summary. Generated by"
        " src/model_router_tools/asl/batch_definition.py from router.asl.json: do not edit by hand.",
        "StartAt": "Locate Input",
        "States": {
            "Locate Input": _lambda_task(
                "An S3 Object Created event names one input; a scheduled run lists the inputs still waiting.",
                {"step": "locate", "event.$": "$"},
                OutputPath="$.Payload",
                Next="Scheduled Sweep?",
            ),
            "Scheduled Sweep?": {
                "Type": "Choice",
                "Comment": "A schedule starts one batch execution per waiting input; an object event runs the batch;"
                " an input that is neither (a malformed or hand-made event) ends the execution with its reason.",
                "Choices": [
                    {"Variable": "$.mode", "StringEquals": "sweep", "Next": "Start One Batch Per Waiting Input"},
                    {"Variable": "$.mode", "StringEquals": "rejected", "Next": "Not A Batch Input"},
                ],
                "Default": "Split Input Into Lines",
            },
            "Not A Batch Input": {
                "Type": "Fail",
                "Comment": "The execution input names no readable .jsonl object; the cause says which field and why.",
                "Error": "Batch.NotABatchInput",
                "CausePath": "$.reason",
            },
            "Start One Batch Per Waiting Input": {
                "Type": "Map",
                "Comment": "Each waiting input gets its own execution of this state machine, as an object event would.",
                "ItemsPath": "$.waiting",
                "MaxConcurrency": 5,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Start Batch For Input",
                    "States": {
                        "Start Batch For Input": {
                            "Type": "Task",
                            "Resource": "arn:aws:states:::states:startExecution",
                            "Parameters": {
                                "StateMachineArn.$": "$$.StateMachine.Id",
                                "Input.$": "$",
                            },
                            "End": True,
                        }
                    },
                },
                "ResultSelector": {"started.$": "States.ArrayLength($)"},
                "End": True,
            },
            "Split Input Into Lines": _lambda_task(
                "One item per physical line, as raw text with its line number, so a malformed line reaches"
                " Prepare Item and becomes an error record instead of failing the item reader.",
                {"step": "split", "batch.$": "$.batch"},
                ResultSelector={"bucket.$": "$.Payload.bucket", "key.$": "$.Payload.key",
                                "lines.$": "$.Payload.lines", "blank.$": "$.Payload.blank"},
                ResultPath="$.items",
                Next=ITEM_PROCESSOR_STATE,
            ),
            ITEM_PROCESSOR_STATE: {
                "Type": "Map",
                "Comment": "One child Express execution per line; every item ends in an output line.",
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "ReaderConfig": {"InputType": "JSON"},
                    "Parameters": {"Bucket.$": "$.items.bucket", "Key.$": "$.items.key"},
                },
                "ItemSelector": {"item.$": "$$.Map.Item.Value", "source.$": "$.batch.source"},
                "MaxConcurrencyPath": "$.batch.max_concurrency",
                "ToleratedFailurePercentagePath": "$.batch.tolerated_failure_percentage",
                "ItemProcessor": item_processor(router),
                "ResultWriter": {
                    "Resource": "arn:aws:states:::s3:putObject",
                    "Parameters": {"Bucket.$": "$.batch.results_bucket", "Prefix.$": "$.batch.map_run_prefix"},
                },
                "ResultPath": "$.map_run",
                # Too many failed children stop the map run: still write what there is, then fail.
                "Catch": [
                    {"ErrorEquals": ["States.ALL"], "ResultPath": "$.map_run", "Next": "Write Results And Summary"}
                ],
                "Next": "Write Results And Summary",
            },
            "Write Results And Summary": _lambda_task(
                "Collect the map run's result files into one result line per input line, in line order; lines"
                " the map run never finished become error records; write the summary next to the results.",
                {"step": "finish", "batch.$": "$.batch", "items.$": "$.items", "map_run.$": "$.map_run"},
                OutputPath="$.Payload",
                Next="Map Run Complete?",
            ),
            "Map Run Complete?": {
                "Type": "Choice",
                "Comment": "The results and summary are written either way; a map run that stopped fails the batch.",
                "Choices": [{"Variable": "$.map_run_error", "IsPresent": True, "Next": "Batch Incomplete"}],
                "Default": "Batch Done",
            },
            "Batch Incomplete": {
                "Type": "Fail",
                "Comment": "The map run stopped (too many failed children); its unfinished lines are error records.",
                "Error": "Batch.MapRunFailed",
                "CausePath": "$.map_run_error",
            },
            "Batch Done": {"Type": "Succeed", "Comment": "Every line has its result line; the summary is the output."},
        },
    }


def render(router_path: Path = ROUTER_ASL) -> str:
    router = json.loads(router_path.read_text(encoding="utf-8"))
    return json.dumps(batch_definition(router), indent=2, ensure_ascii=False) + "\n"


def item_processor_definition(batch: dict[str, Any]) -> dict[str, Any]:
    """The per-line workflow of a batch definition as a state machine of its own (the local batch runs it)."""
    processor = copy.deepcopy(batch["States"][ITEM_PROCESSOR_STATE]["ItemProcessor"])
    processor.pop("ProcessorConfig", None)
    return {"Comment": "One batch line (the ItemProcessor of statemachine/batch.asl.json)", **processor}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if batch.asl.json differs from the generated")
    args = parser.parse_args(argv)
    expected = render()
    if args.check:
        current = BATCH_ASL.read_text(encoding="utf-8") if BATCH_ASL.is_file() else ""
        if current != expected:
            print(f"{BATCH_ASL.name} is out of date: python -m model_router_tools.asl.batch_definition",
                  file=sys.stderr)
            return 1
        return 0
    BATCH_ASL.write_text(expected, encoding="utf-8")
    print(f"wrote {BATCH_ASL.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
