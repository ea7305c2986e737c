"""Guards for src/model_router_tools/local/distributed_map.py: fail loudly if a moto upgrade moves what it patches."""

from __future__ import annotations

import inspect

from moto.stepfunctions.parser.asl.component.common.path import result_path
from moto.stepfunctions.parser.asl.component.common.string import string_expression
from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer import result_writer_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval import resource_eval_s3
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

from model_router_tools.local import distributed_map
from model_router_tools.local.engine import install_patches


def test_the_result_writer_internals_we_replace_are_where_we_expect() -> None:
    original = distributed_map._original_put_object
    assert "TODO: generate result files" in inspect.getsource(original)  # moto still writes an empty manifest
    assert callable(resource_eval_s3.ResourceEvalS3._get_s3_client)
    init = inspect.getsource(result_writer_decl.ResultWriter.__init__)
    assert "self.parargs = parargs" in init and "self.resource_eval = " in init  # what our _eval_body uses

def test_patches_are_installed_and_idempotent() -> None:
    install_patches()
    install_patches()
    assert resource_eval_s3.ResourceEvalS3._handle_put_object is distributed_map._write_results
    assert result_writer_decl.ResultWriter._eval_body is distributed_map._result_writer_eval_body
    assert getattr(AmazonStateLanguageParser.parse, "express_children_as_standard", False)
    assert string_expression.copy is result_path.copy  # both the engine's JSON-aware copy


def test_express_children_parse() -> None:
    install_patches()
    definition = """{"StartAt": "M", "States": {"M": {"Type": "Map", "End": true,
      "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                        "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}}}}"""
    program, _ = AmazonStateLanguageParser.parse(definition)
    assert program is not None
