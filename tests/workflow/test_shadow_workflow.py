"""Shadow evaluation on the local engine: the router's Shadow This Request? / Start Shadow Evaluation
states, then statemachine/shadow.asl.json itself (budget, the other tiers, the recorded judge, the record),
its faults, and S3 (moto) as the deployed Write Outcome Record sees it."""

from __future__ import annotations

import json
from typing import Any

import boto3
import jsonschema
import pytest
from moto import mock_aws

from model_router.contracts.request import schema
from model_router.shadow.judge import JudgeInput, Judgement, register_judge
from model_router.tiers import Tier
from model_router_tools.local.engine import LocalEngine
from model_router_tools.local.shadow import ShadowRunner, comparable
from model_router_tools.replay.datasets import sample_path, tier_maps

SHADOW_ALL = {"SHADOW_SAMPLE_RATE": "1"}


@pytest.fixture(scope="module")
def router() -> LocalEngine:
    return LocalEngine(env_overrides={"DEFAULT_STRATEGY": "heuristic", **SHADOW_ALL})


@pytest.fixture(scope="module")
def unshadowed() -> LocalEngine:
    return LocalEngine(env_overrides={"DEFAULT_STRATEGY": "heuristic"})


def request_of(record: dict[str, Any]) -> dict[str, Any]:
    return {"prompt": record["prompt"], "request_id": record["id"]}


def test_a_sampled_request_starts_the_shadow_and_its_result_is_unchanged(
        router: LocalEngine, unshadowed: LocalEngine, answered_records: list[dict[str, Any]]) -> None:
    for record in answered_records[:12]:
        shadowed, plain = router.run(request_of(record)), unshadowed.run(request_of(record))
        assert shadowed.status == plain.status == "SUCCEEDED"
        assert comparable(shadowed.output) == comparable(plain.output)
        assert "shadow" not in shadowed.output  # the decision is the state's, never the result's
        assert "Start Shadow Evaluation" in shadowed.states_entered
        assert "Start Shadow Evaluation" not in plain.states_entered and not plain.started
        (start,) = shadowed.started
        assert start["state_machine_arn"].endswith(":stateMachine:ShadowStateMachine")
        shadow_input = start["input"]
        assert shadow_input["request_id"] == record["id"] and shadow_input["shadow"]["sampled"] is True
        assert shadow_input["best"]["answer"] == shadowed.output["answer"]
        assert shadow_input["router_execution"] == shadowed.execution_arn


def test_an_opted_out_request_is_never_shadowed(router: LocalEngine, answered_records: list[dict[str, Any]]) -> None:
    result = router.run({**request_of(answered_records[0]), "routing": {"shadow": False}})
    assert result.status == "SUCCEEDED" and not result.started
    assert "Shadow This Request?" in result.states_entered and "Start Shadow Evaluation" not in result.states_entered


def test_a_failed_start_is_caught_and_the_caller_gets_the_same_result(
        unshadowed: LocalEngine, answered_records: list[dict[str, Any]]) -> None:
    refusing = LocalEngine(env_overrides={"DEFAULT_STRATEGY": "heuristic", **SHADOW_ALL})
    refusing.refuse_child_starts = True
    record = answered_records[1]
    result, plain = refusing.run(request_of(record)), unshadowed.run(request_of(record))
    assert result.status == "SUCCEEDED" and comparable(result.output) == comparable(plain.output)
    failed = [e for e in result.events if "taskFailedEventDetails" in e]
    assert failed and failed[0]["taskFailedEventDetails"]["error"] == "StepFunctions.ExecutionLimitExceededException"
    assert result.states_entered[-2:] == ["Start Shadow Evaluation", "Build Result"]


def shadow_runs(records: list[dict[str, Any]], router: LocalEngine, runner: ShadowRunner) -> list[Any]:
    runs = []
    for record in records:
        for start in router.run(request_of(record)).started:
            runs.append(runner.run_one(start["input"], start["name"]))
    return runs


def test_every_tier_is_judged_and_the_recorded_judge_agrees_exactly_with_the_recorded_scores(
        router: LocalEngine, records: list[dict[str, Any]]) -> None:
    mtbench = [r for r in records if r["source"] == "routellm-mtbench"][:12]
    runner = ShadowRunner(SHADOW_ALL)
    runs = shadow_runs(mtbench, router, runner)
    assert len(runs) == len(mtbench) == len(runner.records) == runner.stats.recorded
    tier_map = tier_maps(str(sample_path()))["routellm-mtbench"]
    by_sha = {r["prompt"]: r for r in mtbench}
    for record in runner.records:
        jsonschema.validate(record, schema("outcome"))
        source = next(r for p, r in by_sha.items()
                      if __import__("hashlib").sha256(p.encode()).hexdigest() == record["meta"]["prompt_sha256"])
        tiers = {o["tier"] for o in record["outcomes"].values()}
        assert tiers == {t.value for t in tier_map.recorded_tiers}  # every tier the source recorded (no Sonnet)
        for outcome in record["outcomes"].values():
            expected = source["outcomes"][tier_map.models[Tier(outcome["tier"])]]["score"]
            assert outcome["score"] == pytest.approx(expected, abs=1e-6)
        assert record["meta"]["judge"]["method"] == "recorded"
        assert any("stand in for the judge" in note for note in record["meta"]["notes"])
        assert record["prompt"] is None
    # Write Outcome Record publishes what the savings are bought with (the dashboard's quality widget).
    published = [json.loads(line) for line in runner.engine.output if '"ShadowRoutedQuality"' in line]
    assert len(published) == len(mtbench)
    routed = [next(o["score"] for o in r["outcomes"].values() if o["routed"]) for r in runner.records]
    values = [p["ShadowRoutedQuality"] for p in published]  # EMF writes one value as a list of one
    assert sorted(v[0] if isinstance(v, list) else v for v in values) == pytest.approx(sorted(routed))


def test_the_budget_stops_shadowing_for_the_day(router: LocalEngine, answered_records: list[dict[str, Any]]) -> None:
    runner = ShadowRunner({**SHADOW_ALL, "SHADOW_MAX_USD_PER_DAY": "0.004"})
    runs = shadow_runs(answered_records[:15], router, runner)
    assert runner.stats.skipped > 0 and runner.stats.recorded > 0
    skipped = [r for r in runs if r.output and r.output.get("status") == "skipped"]
    assert skipped and skipped[0].states_entered[-1] == "Budget Spent"
    assert "budget is spent" in skipped[0].output["reason"]
    # The cap holds up to what the shadows in flight cost beyond their estimates (one at a time here).
    assert runner.stats.spend_usd <= 0.004 * 1.5


def test_a_tier_that_fails_in_the_shadow_is_recorded_as_failed_not_lost(
        router: LocalEngine, answered_records: list[dict[str, Any]]) -> None:
    runner = ShadowRunner({**SHADOW_ALL, "FAULT_INJECTION": "throttle=1"})
    runs = shadow_runs(answered_records[:3], router, runner)
    assert all(r.status == "SUCCEEDED" for r in runs) and runner.stats.recorded == 3
    for record in runner.records:
        shadow = [o for o in record["outcomes"].values() if o["shadow"]]
        assert shadow and all(o["score"] is None and o["error"].startswith("ThrottlingException") for o in shadow)
        routed = [o for o in record["outcomes"].values() if o["routed"]]
        assert routed[0]["score"] is not None
    assert runner.stats.unscored_tiers == 3


class BrokenJudge:
    def judge(self, item: JudgeInput) -> Judgement:
        raise RuntimeError("the judge broke")


def test_a_judge_failure_fails_the_shadow_visibly_and_is_counted(
        router: LocalEngine, answered_records: list[dict[str, Any]]) -> None:
    register_judge("broken-for-test", lambda _settings: BrokenJudge())
    runner = ShadowRunner({**SHADOW_ALL, "JUDGE": "broken-for-test"})
    (run,) = shadow_runs(answered_records[:1], router, runner)
    assert run.status == "FAILED" and run.error == "Shadow.Failed"
    assert run.states_entered[-2:] == ["Record Shadow Failure", "Shadow Failed"]
    assert runner.stats.failed == 1 and runner.stats.failures == {"Judge Answers: RuntimeError": 1}
    assert not runner.records
    metrics = [line for line in runner.engine.output if '"ShadowFailed"' in line]
    assert metrics, "Record Shadow Failure publishes the ShadowFailed metric"


def test_deployed_records_go_to_s3_under_a_dated_key_named_by_the_request(
        router: LocalEngine, answered_records: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="outcomes")
        runner = ShadowRunner({**SHADOW_ALL, "SHADOW_OUTCOMES_BUCKET": "outcomes"})
        _clear_client_cache(runner)
        (run,) = shadow_runs(answered_records[:1], router, runner)
        assert run.status == "SUCCEEDED" and "record" not in run.output
        location = run.output["location"]
        assert location.startswith("s3://outcomes/outcomes/dt=")
        assert location.endswith(f"{run.output['record_id']}.jsonl")
        body = s3.get_object(Bucket="outcomes", Key=location.split("/", 3)[3])["Body"].read()
        jsonschema.validate(json.loads(body), schema("outcome"))
        # Again for the same request: the same key, rewritten, not a second object.
        shadow_runs(answered_records[:1], router, runner)
        assert s3.list_objects_v2(Bucket="outcomes")["KeyCount"] == 1
        # A bucket that cannot be written: the shadow fails visibly, the count says so.
        failing = ShadowRunner({**SHADOW_ALL, "SHADOW_OUTCOMES_BUCKET": "no-such-bucket"})
        _clear_client_cache(failing)
        (lost,) = shadow_runs(answered_records[:1], router, failing)
        assert lost.status == "FAILED" and failing.stats.failed == 1
        assert next(iter(failing.stats.failures)).startswith("Write Outcome Record: NoSuchBucket")


def _clear_client_cache(runner: ShadowRunner) -> None:
    """The ledger function caches its S3 client per process: make it one created inside this mock."""
    arn = next(a for a in runner.engine.environments if a.endswith(":ShadowLedgerFunction"))
    runner.engine._handler(arn)  # loads the function's module
    (module,) = [m for path, m in runner.engine._modules.items() if path.parent.name == "shadow"]
    module.s3_client.cache_clear()
