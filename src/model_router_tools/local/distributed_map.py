"""What the local engine adds to moto 5.2.5 to run statemachine/batch.asl.json (a Distributed Map).

moto reads the ItemReader's JSON array from S3 and runs each item through the ItemProcessor, but its
ResultWriter writes only a manifest with empty ``ResultFiles`` (a TODO in moto). We write what Step
Functions writes: ``<Prefix>/<map run id>/SUCCEEDED_0.json`` (and ``FAILED_0.json``) holding one entry per
child execution with its ``Output`` as a JSON string, listed in ``manifest.json``. moto keeps no input
for a failed item, so a FAILED entry has ``Input: null`` (the batch's own reconciliation then reports
that line as not processed, as it would for a PENDING one).

moto also evaluates the ResultWriter's ``Parameters`` paths against the map's results; Step Functions
evaluates them against the state's input, as we do.

moto's ASL grammar also accepts only ``"ExecutionType": "STANDARD"`` in a ProcessorConfig; we parse child
``EXPRESS`` executions as STANDARD ones (the interpreter runs both the same way; only AWS bills them apart).

Installed by model_router_tools.local.engine.install_patches (which passes in its JSON-aware copy module);
guarded by tests/workflow/test_distributed_map.py.
"""

from __future__ import annotations

import datetime
import json
import re
from typing import Any

from moto.stepfunctions.parser.asl.component.common.path import result_path
from moto.stepfunctions.parser.asl.component.common.string import string_expression
from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer import result_writer_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval import (
    resource_eval_s3 as result_writer_s3,
)
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

_original_put_object = result_writer_s3.ResourceEvalS3._handle_put_object
_EXPRESS_CHILDREN = re.compile(r'("ExecutionType"\s*:\s*)"EXPRESS"')


def _parse_express_as_standard(parse: Any) -> Any:
    if getattr(parse, "express_children_as_standard", False):
        return parse  # already ours

    def parse_definition(definition: str) -> Any:
        return parse(_EXPRESS_CHILDREN.sub(r'\1"STANDARD"', definition))

    parse_definition.express_children_as_standard = True  # type: ignore[attr-defined]
    return parse_definition


def _entry(map_run_arn: str, index: int, output: Any) -> dict[str, Any]:
    now = datetime.datetime.now(tz=datetime.UTC).isoformat()
    succeeded = output is not None
    execution = f"{map_run_arn.replace(':mapRun:', ':execution:')}:{index}"
    entry: dict[str, Any] = {
        "ExecutionArn": execution,
        "Input": None,
        "InputDetails": {"Included": False},
        "Name": str(index),
        "Status": "SUCCEEDED" if succeeded else "FAILED",
        "StartDate": now,
        "StopDate": now,
    }
    if succeeded:
        entry["Output"] = json.dumps(output)
        entry["OutputDetails"] = {"Included": True}
    else:
        entry["Error"], entry["Cause"] = "States.Runtime", "the child execution failed (local run)"
    return entry


def _write_results(env: Any, resource_runtime_part: Any, state_credentials: Any) -> None:
    parameters = env.stack.pop()
    outputs: list[Any] = env.stack.pop()
    s3 = result_writer_s3.ResourceEvalS3._get_s3_client(resource_runtime_part, state_credentials)
    record = env.map_run_record_pool_manager.get_all().pop()
    prefix = parameters.get("Prefix", "")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    base = prefix + record.map_run_arn.split(":")[-1] + "/"
    entries = [_entry(record.map_run_arn, i, out) for i, out in enumerate(outputs)]
    files: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
    for status in ("SUCCEEDED", "FAILED"):
        chosen = [e for e in entries if e["Status"] == status]
        if chosen:
            body = json.dumps(chosen).encode("utf-8")
            key = f"{base}{status}_0.json"
            s3.put_object(Bucket=parameters["Bucket"], Key=key, Body=body)
            files[status].append({"Key": key, "Size": len(body)})
    manifest = {"DestinationBucket": parameters["Bucket"], "MapRunArn": record.map_run_arn, "ResultFiles": files}
    key = base + "manifest.json"
    s3.put_object(Bucket=parameters["Bucket"], Key=key, Body=json.dumps(manifest, indent=2).encode("utf-8"))
    env.stack.append({"MapRunArn": record.map_run_arn, "ResultWriterDetails": {"Bucket": parameters["Bucket"],
                                                                             "Key": key}})


def _result_writer_eval_body(self: Any, env: Any) -> None:
    results = env.stack.pop()
    env.stack.append(env.states.get_input())  # the Parameters' paths read the Map state's input
    self.parargs.eval(env=env)
    parameters = env.stack.pop()
    env.stack.pop()
    env.stack.extend([results, parameters])
    self.resource_eval.eval_resource(env=env)


def install(copy_module: Any) -> None:
    """Idempotent. ``copy_module``: what moto's ``string_expression`` and ``result_path`` modules get as their
    ``copy`` module (the engine passes its JSON-aware copy)."""
    # A batch line carries its request and result through many more path evaluations than a single
    # request; these deep copies are of JSON values, so the engine's JSON-aware copy does the same work.
    string_expression.copy = copy_module
    result_path.copy = copy_module
    result_writer_s3.ResourceEvalS3._handle_put_object = staticmethod(_write_results)  # type: ignore[method-assign]
    result_writer_decl.ResultWriter._eval_body = _result_writer_eval_body  # type: ignore[method-assign]
    AmazonStateLanguageParser.parse = staticmethod(  # type: ignore[method-assign]
        _parse_express_as_standard(AmazonStateLanguageParser.parse))
