"""template.yaml's Fn::ForEach and AWS::Include, as model_router_tools.local.template reads them.

The three invokers come from one Fn::ForEach and the dashboard body from dashboards/router.yaml; the local
engine, the tests, ``model-router validate`` and the scan read the template through load_template, which expands
both. The expander is tested here on small templates (each form the project uses, and each form it refuses),
and on template.yaml: one loop over the code's tiers makes invokers that differ only in their tier.

(When the loop replaced the three spelled-out invokers, the whole expanded template was checked equal to the
previous one, the dashboard included; that test and its snapshot are in the commit that made the change.)
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from model_router.tiers import TIER_ORDER
from model_router_tools.local.template import (
    UnsupportedTemplateConstruct,
    expand_language_extensions,
    inline_includes,
    load_template,
    read_template,
    unexpanded_constructs,
)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
TIERS = tuple(tier.label for tier in TIER_ORDER)
TRANSFORMS = ["AWS::LanguageExtensions", "AWS::Serverless-2016-10-31"]


def with_transform(**sections: Any) -> dict[str, Any]:
    return {"Transform": list(TRANSFORMS), **sections}


def loop(identifier: str, collection: Any, body: dict[str, Any]) -> list[Any]:
    return [identifier, collection, body]


# -- the expander on small templates ---------------------------------------------------------------


def test_a_loop_makes_one_resource_per_item_with_the_item_in_keys_subs_and_refs() -> None:
    template = with_transform(
        Parameters={"AModelId": {"Type": "String"}, "BModelId": {"Type": "String"}},
        Mappings={"Tiers": {"A": {"Name": "a"}, "B": {"Name": "b"}}},
        Resources={"Fn::ForEach::Things": loop("T", ["A", "B"], {"${T}Thing": {
            "Type": "AWS::SNS::Topic",
            "Properties": {
                "TopicName": {"Ref": "T"},
                "Sid": {"Fn::Sub": "Use${T}"},
                "Arn": {"Fn::Sub": "arn:${AWS::Partition}:x:${${T}ModelId}"},
                "Model": {"Ref": {"Fn::Sub": "${T}ModelId"}},
                "Pair": {"Fn::Sub": ["${T}-${X}", {"X": {"Ref": {"Fn::Sub": "${T}ModelId"}}}]},
                "Lower": {"Fn::FindInMap": ["Tiers", {"Ref": "T"}, "Name"]},
                "Table": {"Fn::GetAtt": [{"Fn::Sub": "${T}Table"}, "Arn"]},
                "Untouched": {"Fn::Sub": "${AWS::Region}"},
            },
        }})},
    )
    expanded = expand_language_extensions(template)
    assert expanded["Transform"] == "AWS::Serverless-2016-10-31"
    assert list(expanded["Resources"]) == ["AThing", "BThing"]
    assert expanded["Resources"]["BThing"]["Properties"] == {
        "TopicName": "B",
        "Sid": "UseB",
        "Arn": {"Fn::Sub": "arn:${AWS::Partition}:x:${BModelId}"},
        "Model": {"Ref": "BModelId"},
        "Pair": {"Fn::Sub": ["B-${X}", {"X": {"Ref": "BModelId"}}]},
        "Lower": "b",
        "Table": {"Fn::GetAtt": ["BTable", "Arn"]},
        "Untouched": {"Fn::Sub": "${AWS::Region}"},
    }
    assert template["Resources"]["Fn::ForEach::Things"][1] == ["A", "B"], "the input is not modified"


def test_loops_nest_and_expand_inside_properties_conditions_and_outputs() -> None:
    template = with_transform(
        Conditions={"Fn::ForEach::Flags": loop("F", ["X", "Y"], {"Is${F}": {"Fn::Equals": [{"Ref": "F"}, "X"]}})},
        Resources={"Bucket": {"Type": "AWS::S3::Bucket", "Properties": {
            "Fn::ForEach::Tags": loop("K", ["One", "Two"], {"Tag${K}": {"Fn::Sub": "${K}!"}})}}},
        Outputs={"Fn::ForEach::Outer": loop("A", ["P", "Q"], {
            "Fn::ForEach::Inner": loop("B", ["Arn", "Name"], {"${A}${B}": {"Value": {"Fn::GetAtt": [
                {"Fn::Sub": "Bucket${A}"}, {"Ref": "B"}]}}})})},
    )
    expanded = expand_language_extensions(template)
    assert expanded["Conditions"] == {"IsX": {"Fn::Equals": ["X", "X"]}, "IsY": {"Fn::Equals": ["Y", "X"]}}
    assert expanded["Resources"]["Bucket"]["Properties"] == {"TagOne": "One!", "TagTwo": "Two!"}
    assert list(expanded["Outputs"]) == ["PArn", "PName", "QArn", "QName"]
    assert expanded["Outputs"]["QName"] == {"Value": {"Fn::GetAtt": ["BucketQ", "Name"]}}


def test_ampersand_keys_drop_characters_a_logical_id_cannot_have() -> None:
    template = with_transform(Resources={"Fn::ForEach::Hosts": loop("H", ["10.0.0.1"], {
        "Host&{H}": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": {"Fn::Sub": "h-${H}"}}}})})
    assert expand_language_extensions(template)["Resources"] == {
        "Host10001": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "h-10.0.0.1"}}}


def test_a_template_without_the_transform_is_returned_as_it_is() -> None:
    template = {"Transform": "AWS::Serverless-2016-10-31", "Resources": {"T": {"Type": "AWS::SNS::Topic"}}}
    assert expand_language_extensions(template) == template


@pytest.mark.parametrize(("template", "message"), [
    (with_transform(Parameters={"Names": {"Type": "CommaDelimitedList"}}, Resources={
        "Fn::ForEach::T": loop("N", {"Ref": "Names"}, {"${N}Topic": {"Type": "AWS::SNS::Topic"}})}),
     "only a literal list of strings"),
    (with_transform(Resources={"Fn::ForEach::T": loop("N", ["A"], {
        "${N}Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "topic-${N}"}}})}),
     "outside an output key or Fn::Sub"),
    (with_transform(Resources={"T": {"Type": "AWS::SNS::Topic", "Properties": {
        "TopicName": {"Fn::ToJsonString": {"a": 1}}, "Count": {"Fn::Length": [1, 2]}}}}),
     "Fn::ToJsonString"),
    (with_transform(Resources={"T": {"Type": "AWS::SNS::Topic", "Properties": {
        "TopicName": {"Fn::FindInMap": ["M", "a", "b", {"DefaultValue": "x"}]}}}}),
     "Fn::FindInMap with a DefaultValue"),
    (with_transform(Resources={"T": {"Type": "AWS::SNS::Topic",
                                     "DeletionPolicy": {"Fn::If": ["C", "Retain", "Delete"]}}}),
     "DeletionPolicy computed"),
    (with_transform(Parameters={"Fn::ForEach::P": loop("N", ["A"], {"${N}": {"Type": "String"}})}),
     "Fn::ForEach (only in"),
    ({"Transform": "AWS::Serverless-2016-10-31", "Resources": {"Fn::ForEach::T": loop("N", ["A"], {
        "${N}Topic": {"Type": "AWS::SNS::Topic"}})}},
     "Fn::ForEach (only in"),
    (with_transform(Parameters={"N": {"Type": "String"}}, Resources={"Fn::ForEach::T": loop("N", ["A"], {
        "${N}Topic": {"Type": "AWS::SNS::Topic"}})}),
     "already a parameter"),
    (with_transform(Resources={"Fn::ForEach::T": loop("N", ["A", "A"], {"${N}Topic": {"Type": "AWS::SNS::Topic"}})}),
     "generated twice"),
    (with_transform(Resources={"Fn::ForEach::T": loop("N", ["A"], {"Topic": {"Type": "AWS::SNS::Topic"}})}),
     "does not use N"),
    (with_transform(Resources={"Fn::ForEach::T": ["N", ["A"]]}), "expected [Identifier"),
    (with_transform(Resources={"Fn::ForEach::T": loop("N", ["A"], {"${N}Topic": {"Type": "AWS::SNS::Topic",
        "Properties": {"TopicName": {"Fn::FindInMap": ["Missing", {"Ref": "N"}, "Name"]}}}})}),
     "is not in Mappings"),
])
def test_a_construct_the_loader_does_not_expand_fails_loudly(template: dict[str, Any], message: str) -> None:
    with pytest.raises(UnsupportedTemplateConstruct) as raised:
        expand_language_extensions(template)
    assert message in str(raised.value)


def test_includes_are_read_from_files_beside_the_template(tmp_path: Path) -> None:
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "body.yaml").write_text("# a comment\nFn::Sub: |\n  {\"region\": \"${AWS::Region}\"}\n")
    include = {"Fn::Transform": {"Name": "AWS::Include", "Parameters": {"Location": "parts/body.yaml"}}}
    template = {"Resources": {"D": {"Type": "AWS::CloudWatch::Dashboard", "Properties": {"DashboardBody": include}}}}
    inlined = inline_includes(template, tmp_path)
    assert inlined["Resources"]["D"]["Properties"]["DashboardBody"] == {"Fn::Sub": '{"region": "${AWS::Region}"}\n'}
    for location, message in (("s3://bucket/body.yaml", "only local files"), ("parts/missing.yaml", "does not exist")):
        broken = copy.deepcopy(template)
        broken["Resources"]["D"]["Properties"]["DashboardBody"]["Fn::Transform"]["Parameters"]["Location"] = location
        with pytest.raises(UnsupportedTemplateConstruct, match=message):
            inline_includes(broken, tmp_path)
    assert unexpanded_constructs(template) == [
        "template.Resources.D.Properties.DashboardBody.Fn::Transform: Fn::Transform"]


# -- template.yaml ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def expanded() -> dict[str, Any]:
    return load_template(TEMPLATE)


def test_template_yaml_expands_with_nothing_left_over(expanded: dict[str, Any]) -> None:
    assert unexpanded_constructs(expanded) == []
    assert "AWS::LanguageExtensions" in read_template(TEMPLATE)["Transform"]


def test_one_loop_over_the_code_s_tiers_defines_the_invokers() -> None:
    template = read_template(TEMPLATE)
    resources = template["Resources"]
    assert not [lid for lid in resources if lid.endswith("InvokerFunction")], "an invoker spelled out beside the loop"
    identifier, collection, body = resources["Fn::ForEach::Invokers"]
    assert collection == list(TIERS)
    assert list(body) == [f"${{{identifier}}}InvokerFunction"]
    for tier in TIERS:
        assert template["Mappings"]["Tiers"][tier] == {"Name": tier.lower()}
        for parameter in (f"{tier}ModelId", f"{tier}MaxOutputTokens"):
            assert parameter in template["Parameters"]


def test_the_invokers_differ_only_in_their_tier(expanded: dict[str, Any]) -> None:
    def as_tier(resource: dict[str, Any], tier: str) -> str:
        text = json.dumps(resource)
        return text.replace(TIERS[0], tier).replace(TIERS[0].lower(), tier.lower())

    first = expanded["Resources"][f"{TIERS[0]}InvokerFunction"]
    for tier in TIERS:
        invoker = expanded["Resources"][f"{tier}InvokerFunction"]
        assert json.dumps(invoker) == as_tier(first, tier)
        variables = invoker["Properties"]["Environment"]["Variables"]
        assert variables["MODEL_TIER"] == tier.lower()
        assert variables["MODEL_ID"] == {"Ref": f"{tier}ModelId"}
        assert variables["TIER_MAX_OUTPUT_TOKENS"] == {"Ref": f"{tier}MaxOutputTokens"}
        assert invoker["Properties"]["Description"] == {
            "Fn::Sub": f"Invoke {tier}: one Bedrock Converse call on ${{{tier}ModelId}}"}
    # Their IAM, least privilege each: tests/infra/test_iam.py and test_static_checks.py on the expanded template.


# -- a function's environment, as the local engine resolves it -------------------------------------------


def test_environments_resolve_fn_if_on_the_template_s_conditions() -> None:
    from model_router_tools.local.template import UnresolvedValue, condition_values, function_specs

    small = {
        "Parameters": {"Uri": {"Default": ""}, "Other": {"Default": "x"}},
        "Conditions": {"HasUri": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Uri"}, ""]}]},
                       "Either": {"Fn::Or": [{"Condition": "HasUri"}, {"Fn::Equals": [{"Ref": "Other"}, "y"]}]},
                       "Both": {"Fn::And": [{"Condition": "HasUri"}, {"Condition": "Either"}]}},
        "Resources": {"Fn": {"Type": "AWS::Serverless::Function", "Properties": {"Environment": {"Variables": {
            "POINTER": {"Fn::If": ["Either", {"Fn::Sub": "ssm:/${AWS::StackName}/p"}, ""]},
            "ONLY_WITH_URI": {"Fn::If": ["Both", {"Ref": "Uri"}, {"Ref": "AWS::NoValue"}]},
        }}}}},
    }
    assert condition_values(small, {"Uri": "", "Other": "x"}) == {"HasUri": False, "Either": False, "Both": False}
    assert function_specs(small, ROOT)["Fn"].environment == {"POINTER": ""}
    env = function_specs(small, ROOT, {"Uri": "s3://b/k.json"})["Fn"].environment
    assert env == {"POINTER": "ssm:/model-router-local/p", "ONLY_WITH_URI": "s3://b/k.json"}
    broken = copy.deepcopy(small)
    broken["Conditions"]["HasUri"] = {"Fn::Contains": [["a"], {"Ref": "Uri"}]}
    with pytest.raises(UnresolvedValue, match=r"Conditions\.HasUri: the local engine cannot evaluate the condition"):
        function_specs(broken, ROOT)


def test_the_classifier_s_router_model_environment_follows_the_stack_parameters() -> None:
    from model_router_tools.local.template import function_specs

    template = load_template(TEMPLATE)
    default = function_specs(template, ROOT)["ClassifierFunction"].environment
    assert (default["ROUTER_MODEL_URI"], default["CHALLENGER_MODEL_URI"], default["CHALLENGER_SHARE"]) == ("", "", "0")
    uri = "s3://b/router-models/v2.json.gz#sha256=" + "0" * 64
    named = function_specs(template, ROOT, {"ChallengerModelUri": uri, "ChallengerShare": "0.25"})
    env = named["ClassifierFunction"].environment
    assert (env["ROUTER_MODEL_URI"], env["CHALLENGER_MODEL_URI"], env["CHALLENGER_SHARE"]) == (
        "ssm:/model-router-local/router/champion-model-uri", uri, "0.25")
