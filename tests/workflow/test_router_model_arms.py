"""Champion and challenger through the real workflow on the local engine, with the template's own wiring: the
stack parameters give the classifier ROUTER_MODEL_URI (the champion's SSM parameter) and CHALLENGER_MODEL_URI, the
artifacts sit in moto's S3 and the pointer in moto's SSM. Each result carries the arm and version that
classified it, the scorer's result metrics are split by arm, a shadow's outcome record keeps both, and a bad
artifact changes which model routes, never whether the request is answered."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from router_model_fixtures import BUCKET, REGION, model_bucket, pinned, sha256, tiny_model, upload

from model_router.routing import arms
from model_router.routing.arms import CHALLENGER, CHAMPION, on_challenger_arm
from model_router.routing.artifacts import ModelStore
from model_router_tools.local.engine import LocalEngine
from model_router_tools.local.shadow import ShadowRunner

__all__ = ["model_bucket"]
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")
SHARE = 0.5
POINTER = "/model-router-local/router/champion-model-uri"  # /${AWS::StackName}/router/... with the local name


@pytest.fixture
def artifacts(model_bucket: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A champion (behind the SSM pointer) and a challenger in the model bucket; a fresh per-container store."""
    monkeypatch.setattr(arms, "STORE", ModelStore())
    champion, challenger = upload(model_bucket, "v1.json.gz", tiny_model(-1.0)), upload(
        model_bucket, "v2.json.gz", tiny_model(2.0))
    boto3.client("ssm", region_name=REGION).put_parameter(Name=POINTER, Value=champion, Type="String")
    yield {"champion": champion, "challenger": challenger}


def engine_for(challenger: str, champion: str) -> LocalEngine:
    return LocalEngine(parameters={"RouterModelUri": champion, "ChallengerModelUri": challenger,
                                   "ChallengerShare": str(SHARE), "RouterModelBucket": BUCKET},
                       env_overrides={"REPLAY_BORROWED_TIERS": "1", "SHADOW_SAMPLE_RATE": "1"})


def requests_on_both_arms(records: list[dict[str, Any]], each: int = 3) -> list[dict[str, Any]]:
    on = [r for r in records if on_challenger_arm(r["id"], SHARE)][:each]
    off = [r for r in records if not on_challenger_arm(r["id"], SHARE)][:each]
    assert len(on) == len(off) == each
    return [{"prompt": r["prompt"], "request_id": r["id"]} for r in on + off]


def blobs(engine: LocalEngine, name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in engine.output if line.startswith('{"_aws"') and f'"{name}"' in line]


def test_each_request_is_classified_by_its_arm_and_results_are_split_by_it(
        artifacts: dict[str, str], answered_records: list[dict[str, Any]]) -> None:
    engine = engine_for(artifacts["challenger"], artifacts["champion"])
    assert engine.functions["ClassifierFunction"].environment["ROUTER_MODEL_URI"] == "ssm:" + POINTER
    expected = {CHAMPION: {"arm": CHAMPION, "id": "v1", "version": artifacts["champion"][-64:][:12], "source": "s3"},
                CHALLENGER: {"arm": CHALLENGER, "id": "v2", "version": artifacts["challenger"][-64:][:12],
                             "source": "s3"}}
    runner = ShadowRunner({"SHADOW_SAMPLE_RATE": "1"})
    for request in requests_on_both_arms(answered_records):
        result = engine.run(request)
        assert result.status == "SUCCEEDED", result.cause
        arm = CHALLENGER if on_challenger_arm(request["request_id"], SHARE) else CHAMPION
        assert result.output["classification"]["model"] == expected[arm]
        runner.run_started(result.started)
    results = blobs(engine, "Results")
    assert sorted(b["Arm"] for b in results) == [CHALLENGER] * 3 + [CHAMPION] * 3
    assert all({"service", "Arm"} in [set(d) for m in b["_aws"]["CloudWatchMetrics"] for d in m["Dimensions"]]
               for b in results)
    assert not blobs(engine, "RouterModelFallback")
    # The outcome records keep the arm and the version (what `model-router promote` compares).
    assert sorted((r["meta"]["route"]["arm"], r["meta"]["route"]["model_version"]) for r in runner.records) == sorted(
        [(CHALLENGER, expected[CHALLENGER]["version"])] * 3 + [(CHAMPION, expected[CHAMPION]["version"])] * 3)


def test_a_bad_challenger_changes_the_model_not_the_answer(
        artifacts: dict[str, str], model_bucket: Any, answered_records: list[dict[str, Any]]) -> None:
    # The object under the challenger's key was replaced after it was pinned.
    swapped = pinned("router-models/v3.json.gz", tiny_model(3.0))
    model_bucket.put_object(Bucket=BUCKET, Key="router-models/v3.json.gz", Body=tiny_model(4.0))
    engine = engine_for(swapped, artifacts["champion"])
    requests = requests_on_both_arms(answered_records)
    for request in requests:
        result = engine.run(request)
        assert result.status == "SUCCEEDED", result.cause
        model = result.output["classification"]["model"]
        assert (model["arm"], model["id"]) == (CHAMPION, "v1")
        on = on_challenger_arm(request["request_id"], SHARE)
        assert model.get("fallbacks") == ([{"arm": CHALLENGER, "reason": "checksum-mismatch"}] if on else None)
    by_arm = [b for b in blobs(engine, "RouterModelFallback") if "Arm" in b]
    assert [b["Arm"] for b in by_arm] == [CHALLENGER] * 3
    warnings = [json.loads(line) for line in engine.output
                if '"level":"WARNING"' in line and "router model artifact not used" in line]
    assert len(warnings) == 1 and warnings[0]["reason"] == "checksum-mismatch"  # once per container, no traceback
    assert "exception" not in warnings[0] and sha256(tiny_model(4.0)) in warnings[0]["detail"]
