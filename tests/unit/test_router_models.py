"""Champion and challenger router models: the URI grammar and its pin, the settings, the artifact store on moto's
S3 and SSM (a bad artifact is a fallback with a reason and one warning, never a failed request), the arm a request
is on, and what the classification, the metrics and the outcome record carry of it."""

from __future__ import annotations

import datetime
import json
import logging
import re
from typing import Any

import pytest
from aws_lambda_powertools import Metrics
from router_model_fixtures import BUCKET, PREFIX, model_bucket, pinned, sha256, tiny_model, upload

from model_router.emf import record_classification, record_decision
from model_router.routing import arms, artifacts
from model_router.routing.arms import CHALLENGER, CHAMPION, arm_point, choose_model, on_challenger_arm
from model_router.routing.artifacts import RETRY_AFTER_S, ArtifactError, ModelStore, bundled_model
from model_router.routing.model_uri import check_champion_source, parse_model_uri
from model_router.settings import Settings, SettingsError
from model_router.shadow.sampling import sample_point
from model_router.steps.classify import classify_step

__all__ = ["model_bucket"]  # the fixture, imported for the tests below
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")
PIN = "ab" * 32


# -- the URI and its pin -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "bucket", "key", "name"), [
    (f"s3://models/router/v3.json.gz#sha256={PIN}", "models", "router/v3.json.gz", "v3"),
    (f"s3://my.models-1/a/b/2026-12-01.json#sha256={PIN}", "my.models-1", "a/b/2026-12-01.json", "2026-12-01"),
    (f" s3://models/top.json.gz#sha256={PIN} ", "models", "top.json.gz", "top"),
])
def test_an_artifact_uri_names_its_bucket_key_and_pinned_bytes(text: str, bucket: str, key: str, name: str) -> None:
    uri = parse_model_uri(text)
    assert (uri.bucket, uri.key, uri.sha256, uri.name, uri.version) == (bucket, key, PIN, name, PIN[:12])
    assert str(uri) == text.strip()
    assert uri.gzipped == key.endswith(".gz")


@pytest.mark.parametrize(("text", "problem"), [
    ("https://models/v3.json.gz", "is not an s3:// URI"),
    ("s3://models/v3.json.gz", "has no #sha256= pin: append #sha256=$(sha256sum FILE)"),
    (f"s3://models/v3.pkl#sha256={PIN}", "the key must name a .json or .json.gz file"),
    (f"s3://models/.json.gz#sha256={PIN}", "the key must name a .json or .json.gz file"),
    ("s3://models/v3.json.gz#sha256=ABC", "the pin must be 64 lower-case hex digits"),
    (f"s3://models/v3.json.gz#sha256={PIN.upper()}", "the pin must be 64 lower-case hex digits"),
    (f"s3://Models/v3.json.gz#sha256={PIN}", "is not s3://BUCKET/KEY.json.gz#sha256="),
    (f"s3://models/my model.json.gz#sha256={PIN}", "is not s3://BUCKET/KEY.json.gz#sha256="),
    (f"s3://models/v3.json.gz#sha256={PIN}#x", "is not s3://BUCKET/KEY.json.gz#sha256="),
])
def test_a_bad_uri_says_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_model_uri(text)
    assert str(raised.value).startswith(repr(text.strip()))
    assert problem in str(raised.value)


@pytest.mark.parametrize("source", ["", "bundled", "ssm:/stack/router/champion-model-uri", "ssm:plain-name",
                                    f"s3://models/v3.json.gz#sha256={PIN}"])
def test_champion_sources(source: str) -> None:
    check_champion_source(source)


@pytest.mark.parametrize("source", ["ssm:", "ssm:/has space", "s3://models/v3.json.gz", "latest"])
def test_bad_champion_sources(source: str) -> None:
    with pytest.raises(ValueError):
        check_champion_source(source)


# -- settings --------------------------------------------------------------------------------------------------------


def test_settings_default_to_the_bundled_model_and_no_challenger() -> None:
    settings = Settings.from_mapping({})
    assert (settings.router_model_uri, settings.challenger_model_uri, settings.challenger_share) == (None, None, 0.0)


def test_settings_read_the_router_model_variables() -> None:
    uri = f"s3://models/v3.json.gz#sha256={PIN}"
    settings = Settings.from_mapping({"ROUTER_MODEL_URI": "ssm:/s/router/champion-model-uri",
                                      "CHALLENGER_MODEL_URI": uri, "CHALLENGER_SHARE": "0.1"})
    assert (settings.router_model_uri, settings.challenger_model_uri, settings.challenger_share) == (
        "ssm:/s/router/champion-model-uri", uri, 0.1)


@pytest.mark.parametrize(("env", "message"), [
    ({"ROUTER_MODEL_URI": "s3://models/v3.json.gz"}, "ROUTER_MODEL_URI: 's3://models/v3.json.gz' has no #sha256= pin"),
    ({"ROUTER_MODEL_URI": "latest"}, "ROUTER_MODEL_URI: 'latest' is not an s3:// URI"),
    ({"CHALLENGER_MODEL_URI": "ssm:/x"}, "CHALLENGER_MODEL_URI: 'ssm:/x' is not an s3:// URI"),
    ({"CHALLENGER_SHARE": "1.5"}, "CHALLENGER_SHARE=1.5 is outside [0.0, 1.0]"),
    ({"CHALLENGER_SHARE": "half"}, "CHALLENGER_SHARE='half' is not a number"),
])
def test_bad_router_model_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_mapping(env)
    assert str(raised.value).startswith(message)


# -- the store: S3 artifacts, checked against their pin ------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO)
    return caplog


def _warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == logging.WARNING]


def _counting(client: Any, operation: str) -> list[int]:
    calls: list[int] = []
    client.meta.events.register(f"before-call.*.{operation}", lambda **_: calls.append(1))
    return calls


def test_an_artifact_is_read_once_and_checked_against_its_pin(model_bucket: Any,
                                                              logged: pytest.LogCaptureFixture) -> None:
    data = tiny_model(0.0)
    uri = parse_model_uri(upload(model_bucket, "v1.json.gz", data))
    store = ModelStore(s3=model_bucket)
    calls = _counting(model_bucket, "GetObject")
    first = store.model(uri, CHAMPION)
    assert store.model(uri, CHAMPION) is first and len(calls) == 1
    assert (first.id, first.version, first.source) == ("v1", sha256(data)[:12], "s3")
    assert first.model is not None and first.model.bias == {"haiku": 0.0, "sonnet": 1.0, "opus": 2.0}
    assert not _warnings(logged)
    (loaded,) = [r for r in logged.records if r.getMessage() == "router model loaded"]
    assert loaded.model_version == first.version  # type: ignore[attr-defined]


def test_the_store_keeps_the_two_models_last_used(model_bucket: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    uris = [parse_model_uri(upload(model_bucket, f"v{n}.json.gz", tiny_model(float(n)))) for n in range(3)]
    store = ModelStore(s3=model_bucket)
    calls = _counting(model_bucket, "GetObject")
    first, second = store.model(uris[0], CHAMPION), store.model(uris[1], CHALLENGER)
    assert store.model(uris[0], CHAMPION) is first  # used again: the most recent now
    store.model(uris[2], CHAMPION)  # a third (a promote): the least recently used, v1, is dropped
    assert len(calls) == 3
    assert store.model(uris[0], CHAMPION) is first and len(calls) == 3
    assert store.model(uris[1], CHALLENGER) is not second and len(calls) == 4  # read again


def test_an_uncompressed_json_artifact_loads_too(model_bucket: Any) -> None:
    data = tiny_model(0.5, gzipped=False)
    uri = parse_model_uri(upload(model_bucket, "plain.json", data))
    assert ModelStore(s3=model_bucket).model(uri, CHALLENGER).model is not None


@pytest.mark.parametrize(("stored", "uri_of", "reason", "detail"), [
    # The object was overwritten after the owner pinned it: its bytes are not the pinned ones.
    (tiny_model(9.0), lambda key: pinned(key, tiny_model(0.0)), "checksum-mismatch",
     "the object's SHA-256 is " + sha256(tiny_model(9.0)) + ", the URI pins " + sha256(tiny_model(0.0))),
    # The owner pinned a file that is not a router model.
    (b"\x1f\x8b not really gzip", lambda key: pinned(key, b"\x1f\x8b not really gzip"), "corrupt",
     "the pinned object is not a router model: not gzip data"),
    (b'{"format": "something else"}', lambda key: pinned(key, b'{"format": "something else"}'), "corrupt",
     "the pinned object is not a router model: not gzip data"),
    (None, lambda key: pinned(key, tiny_model(0.0)), "unreachable", "GetObject: NoSuchKey: "),
    (None, lambda key: pinned(key, tiny_model(0.0), bucket="no-such-bucket"), "unreachable",
     "GetObject: NoSuchBucket: "),
])
def test_a_bad_artifact_is_an_error_with_its_reason_and_one_warning_without_a_traceback(
        model_bucket: Any, logged: pytest.LogCaptureFixture, stored: bytes | None, uri_of: Any, reason: str,
        detail: str) -> None:
    key = PREFIX + "bad.json.gz"
    if stored is not None:
        model_bucket.put_object(Bucket=BUCKET, Key=key, Body=stored)
    uri = parse_model_uri(uri_of(key))
    clock = Clock()
    store = ModelStore(s3=model_bucket, clock=clock)
    calls = _counting(model_bucket, "GetObject")
    for _ in range(3):  # the failure is kept: one read, one warning
        with pytest.raises(ArtifactError) as raised:
            store.model(uri, CHALLENGER)
        assert raised.value.reason == reason and raised.value.detail.startswith(detail), raised.value.detail
    (warning,) = _warnings(logged)
    assert warning.exc_info is None and warning.reason == reason  # type: ignore[attr-defined]
    assert (warning.arm, warning.uri) == (CHALLENGER, str(uri))  # type: ignore[attr-defined]
    assert len(calls) == 1
    # Tried again once RETRY_AFTER_S has passed; a fixed object (the pinned bytes) then serves.
    if uri.bucket == BUCKET:
        model_bucket.put_object(Bucket=BUCKET, Key=uri.key, Body=tiny_model(0.0))
    clock.now += RETRY_AFTER_S - 1
    with pytest.raises(ArtifactError):
        store.model(uri, CHALLENGER)
    clock.now += 1
    if uri.bucket == BUCKET and uri.sha256 == sha256(tiny_model(0.0)):
        assert store.model(uri, CHALLENGER).version == sha256(tiny_model(0.0))[:12]
    else:  # still bad: one more read, one more warning
        with pytest.raises(ArtifactError):
            store.model(uri, CHALLENGER)
    assert len(calls) == 2


def test_an_object_too_large_to_be_a_model_is_not_read(model_bucket: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(artifacts, "MAX_MODEL_BYTES", 100)
    data = tiny_model(0.0)
    uri = parse_model_uri(upload(model_bucket, "big.json.gz", data))
    with pytest.raises(ArtifactError, match=f"too-large: {len(data)} bytes, more than 100"):
        ModelStore(s3=model_bucket).model(uri, CHAMPION)


# -- the champion pointer (SSM) ------------------------------------------------------------------------------------

PARAMETER = "/stack/router/champion-model-uri"


@pytest.fixture
def ssm(model_bucket: Any) -> Any:
    import boto3

    return boto3.client("ssm", region_name="us-east-1")


def test_the_champion_pointer_is_read_then_kept_for_its_ttl(model_bucket: Any, ssm: Any) -> None:
    one, two = upload(model_bucket, "v1.json.gz", tiny_model(1.0)), upload(model_bucket, "v2.json.gz", tiny_model(2.0))
    ssm.put_parameter(Name=PARAMETER, Value=one, Type="String")
    clock = Clock()
    store = ModelStore(s3=model_bucket, ssm=ssm, clock=clock)
    reads = _counting(ssm, "GetParameter")
    assert store.champion("ssm:" + PARAMETER).id == "v1"
    ssm.put_parameter(Name=PARAMETER, Value=two, Type="String", Overwrite=True)  # promote
    clock.now += artifacts.POINTER_TTL_S - 1
    assert store.champion("ssm:" + PARAMETER).id == "v1" and len(reads) == 1
    clock.now += 1
    assert store.champion("ssm:" + PARAMETER).id == "v2" and len(reads) == 2
    ssm.put_parameter(Name=PARAMETER, Value="bundled", Type="String", Overwrite=True)  # rollback to the bundled
    clock.now += artifacts.POINTER_TTL_S
    assert store.champion("ssm:" + PARAMETER) is bundled_model()


def test_a_pointer_that_cannot_be_reread_keeps_its_last_value(model_bucket: Any, ssm: Any,
                                                              logged: pytest.LogCaptureFixture) -> None:
    one = upload(model_bucket, "v1.json.gz", tiny_model(1.0))
    ssm.put_parameter(Name=PARAMETER, Value=one, Type="String")
    clock = Clock()
    store = ModelStore(s3=model_bucket, ssm=ssm, clock=clock)
    assert store.champion("ssm:" + PARAMETER).id == "v1"
    ssm.delete_parameter(Name=PARAMETER)
    clock.now += artifacts.POINTER_TTL_S
    reads = _counting(ssm, "GetParameter")
    assert store.champion("ssm:" + PARAMETER).id == "v1"
    assert store.champion("ssm:" + PARAMETER).id == "v1" and len(reads) == 1  # not re-read on every request
    (warning,) = _warnings(logged)
    assert warning.reason == "pointer-unreadable" and warning.serving == one  # type: ignore[attr-defined]


def test_a_pointer_never_read_or_naming_no_artifact_is_an_error(model_bucket: Any, ssm: Any,
                                                                logged: pytest.LogCaptureFixture) -> None:
    store = ModelStore(s3=model_bucket, ssm=ssm, clock=Clock())
    for _ in range(2):
        with pytest.raises(ArtifactError, match="pointer-unreadable: GetParameter /stack/router/champion-model-uri: "
                                                "ParameterNotFound"):
            store.champion("ssm:" + PARAMETER)
    ssm.put_parameter(Name="/other", Value="s3://models/v1.json.gz", Type="String")
    for _ in range(2):
        with pytest.raises(ArtifactError, match=re.escape(
                "bad-pointer: /other: 's3://models/v1.json.gz' has no #sha256= pin")):
            store.champion("ssm:/other")
    assert [w.reason for w in _warnings(logged)] == ["pointer-unreadable", "bad-pointer"]  # type: ignore


def test_the_champion_may_be_named_directly_or_be_the_bundled_model(model_bucket: Any) -> None:
    store = ModelStore(s3=model_bucket)
    assert store.champion(None) is store.champion("") is store.champion("bundled") is bundled_model()
    assert store.champion(upload(model_bucket, "v1.json.gz", tiny_model(1.0))).source == "s3"


# -- arms ------------------------------------------------------------------------------------------------------------


def test_the_arm_is_fixed_by_the_request_id_and_independent_of_shadow_sampling() -> None:
    ids = [f"req-{n}" for n in range(4000)]
    assert [arm_point(i) for i in ids[:5]] == [arm_point(i) for i in ids[:5]]
    challenger = [on_challenger_arm(i, 0.2) for i in ids]
    assert 0.18 < sum(challenger) / len(ids) < 0.22
    assert not any(on_challenger_arm(i, 0.0) for i in ids) and all(on_challenger_arm(i, 1.0) for i in ids)
    # Another salt than the shadow sampler's: among challenger requests, the shadowed share is the overall one.
    shadowed = [sample_point(i) < 0.2 for i in ids]
    both = sum(c and s for c, s in zip(challenger, shadowed, strict=True))
    assert abs(both / sum(challenger) - sum(shadowed) / len(ids)) < 0.04


def _settings(**env: str) -> Settings:
    return Settings.from_mapping(env)


def _ids_on(arm: str, share: float, n: int = 3) -> list[str]:
    found = [f"req-{i}" for i in range(1000) if on_challenger_arm(f"req-{i}", share) == (arm == CHALLENGER)]
    return found[:n]


def test_a_share_of_requests_goes_to_the_challenger(model_bucket: Any) -> None:
    champion = upload(model_bucket, "v1.json.gz", tiny_model(1.0))
    challenger = upload(model_bucket, "v2.json.gz", tiny_model(2.0))
    settings = _settings(ROUTER_MODEL_URI=champion, CHALLENGER_MODEL_URI=challenger, CHALLENGER_SHARE="0.3")
    store = ModelStore(s3=model_bucket)
    for request_id in _ids_on(CHALLENGER, 0.3):
        assert choose_model(settings, request_id, store).describe() == {
            "arm": CHALLENGER, "id": "v2", "version": challenger[-64:][:12], "source": "s3"}
    for request_id in _ids_on(CHAMPION, 0.3):
        assert choose_model(settings, request_id, store).describe() == {
            "arm": CHAMPION, "id": "v1", "version": champion[-64:][:12], "source": "s3"}
    # Share 0 or no challenger: the champion only.
    for off in (_settings(ROUTER_MODEL_URI=champion, CHALLENGER_MODEL_URI=challenger),
                _settings(ROUTER_MODEL_URI=champion, CHALLENGER_SHARE="1")):
        assert {choose_model(off, i, store).arm for i in _ids_on(CHALLENGER, 0.3)} == {CHAMPION}


def test_once_promoted_the_challenger_is_the_champion_and_there_is_no_split(model_bucket: Any) -> None:
    same = upload(model_bucket, "v2.json.gz", tiny_model(2.0))
    settings = _settings(ROUTER_MODEL_URI=same, CHALLENGER_MODEL_URI=same, CHALLENGER_SHARE="1")
    assert choose_model(settings, "req-1", ModelStore(s3=model_bucket)).arm == CHAMPION


def test_a_bad_challenger_falls_back_to_the_champion_and_a_bad_champion_to_the_bundled_model(
        model_bucket: Any) -> None:
    good = upload(model_bucket, "v1.json.gz", tiny_model(1.0))
    swapped = pinned(PREFIX + "v1.json.gz", tiny_model(5.0))  # the pin of other bytes
    missing = pinned(PREFIX + "gone.json.gz", tiny_model(1.0))
    store = ModelStore(s3=model_bucket)
    [on_challenger], [on_champion] = _ids_on(CHALLENGER, 0.5, 1), _ids_on(CHAMPION, 0.5, 1)
    bad_challenger = _settings(ROUTER_MODEL_URI=good, CHALLENGER_MODEL_URI=swapped, CHALLENGER_SHARE="0.5")
    assert choose_model(bad_challenger, on_challenger, store).describe() == {
        "arm": CHAMPION, "id": "v1", "version": good[-64:][:12], "source": "s3",
        "fallbacks": [{"arm": CHALLENGER, "reason": "checksum-mismatch"}]}
    assert "fallbacks" not in choose_model(bad_challenger, on_champion, store).describe()
    bad_champion = _settings(ROUTER_MODEL_URI=missing, CHALLENGER_MODEL_URI=good, CHALLENGER_SHARE="0.5")
    assert choose_model(bad_champion, on_champion, store).describe() == {
        "arm": CHAMPION, "id": "router_model", "version": "bundled", "source": "bundled",
        "fallbacks": [{"arm": CHAMPION, "reason": "unreachable"}]}
    assert choose_model(bad_champion, on_challenger, store).describe()["arm"] == CHALLENGER
    both = _settings(ROUTER_MODEL_URI=missing, CHALLENGER_MODEL_URI=swapped, CHALLENGER_SHARE="0.5")
    assert choose_model(both, on_challenger, store).describe()["fallbacks"] == [
        {"arm": CHALLENGER, "reason": "checksum-mismatch"}, {"arm": CHAMPION, "reason": "unreachable"}]


# -- what the classification, the metrics and the outcome record carry ----------------------------------------------


@pytest.fixture
def store(model_bucket: Any, monkeypatch: pytest.MonkeyPatch) -> ModelStore:
    """The classifier's per-container store, fresh for the test, on moto."""
    fresh = ModelStore(s3=model_bucket)
    monkeypatch.setattr(arms, "STORE", fresh)
    return fresh


def _classify(settings: Settings, request_id: str, **request: Any) -> dict[str, Any]:
    state = classify_step({"request": {"prompt": "What is 2 + 2?", "request_id": request_id, **request}}, settings)
    assert state["valid"], state
    return state


def test_the_classification_records_the_model_and_its_arm(model_bucket: Any, store: ModelStore) -> None:
    challenger = upload(model_bucket, "v2.json.gz", tiny_model(2.0))
    settings = _settings(CHALLENGER_MODEL_URI=challenger, CHALLENGER_SHARE="0.5")
    [on_challenger], [on_champion] = _ids_on(CHALLENGER, 0.5, 1), _ids_on(CHAMPION, 0.5, 1)
    assert _classify(settings, on_challenger)["classification"]["model"] == {
        "arm": CHALLENGER, "id": "v2", "version": challenger[-64:][:12], "source": "s3"}
    assert _classify(settings, on_champion)["classification"]["model"] == {
        "arm": CHAMPION, "id": "router_model", "version": "bundled", "source": "bundled"}
    # The challenger's model routes its requests: its biases favour Opus (no weights, margin rule).
    assert _classify(settings, on_challenger)["classification"]["tier_probabilities"]["opus"] > 0.98
    # A router without a model records none, and loads none.
    heuristic = _classify(settings, on_challenger, routing={"strategy": "heuristic"})
    assert heuristic["classification"]["model"] is None


def _blobs(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]


def _dimension_sets(blob: dict[str, Any]) -> list[set[str]]:
    return [set(d) for m in blob["_aws"]["CloudWatchMetrics"] for d in m["Dimensions"]]


def test_decisions_and_fallbacks_are_counted_by_arm(model_bucket: Any, store: ModelStore,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    swapped = pinned(PREFIX + "v9.json.gz", tiny_model(5.0))
    model_bucket.put_object(Bucket=BUCKET, Key=PREFIX + "v9.json.gz", Body=tiny_model(6.0))
    settings = _settings(CHALLENGER_MODEL_URI=swapped, CHALLENGER_SHARE="0.5")
    [on_challenger] = _ids_on(CHALLENGER, 0.5, 1)
    state = _classify(settings, on_challenger)
    capsys.readouterr()
    metrics = Metrics(namespace="Test", service="model-router")
    record_classification(metrics, state)
    metrics.flush_metrics()
    emitted = _blobs(capsys)
    (decision,) = [b for b in emitted if "ClassifierDecisions" in b]
    assert (decision["Arm"], decision["Strategy"]) == (CHAMPION, "learned")
    assert _dimension_sets(decision) == [{"service", "Tier", "Strategy", "Arm"}]
    by_arm = [b for b in emitted if "RouterModelFallback" in b and "Arm" in b]
    assert [(b["Arm"], b["RouterModelFallback"]) for b in by_arm] == [(CHALLENGER, [1.0])]
    (rollup,) = [b for b in emitted if "RouterModelFallback" in b and "Arm" not in b]
    assert _dimension_sets(rollup) == [{"service"}]
    # Without a model (heuristic): Arm "none", no fallback.
    heuristic = _classify(settings, on_challenger, routing={"strategy": "heuristic"})
    capsys.readouterr()
    record_classification(metrics, heuristic)
    metrics.flush_metrics()
    emitted = _blobs(capsys)
    assert [b["Arm"] for b in emitted if "ClassifierDecisions" in b] == ["none"]
    assert not [b for b in emitted if "RouterModelFallback" in b]


def _accepted(arm: str | None) -> dict[str, Any]:
    attempt = {"attempt": 1, "tier": "haiku", "outcome": "accepted", "confidence": 0.9, "error": None}
    return {"decision": {"action": "accept", "status": "answered"}, "attempts": [attempt], "best": {"tier": "haiku"},
            "classification": {"model": {"arm": arm} if arm else None},
            "cost": {"total_usd": 0.01, "models_usd": 0.009, "orchestration_usd": 0.001,
                     "premium_estimate_usd": 0.05, "savings_usd": 0.041}}


@pytest.mark.parametrize(("arm", "sets"), [
    (CHALLENGER, [{"service"}, {"service", "Tier"}, {"service", "Status"}, {"service", "Arm"}]),
    (None, [{"service"}, {"service", "Tier"}, {"service", "Status"}]),
])
def test_results_cost_and_savings_are_broken_down_by_arm(capsys: pytest.CaptureFixture[str], arm: str | None,
                                                         sets: list[set[str]]) -> None:
    metrics = Metrics(namespace="Test", service="model-router")
    record_decision(metrics, "score", _accepted(arm), now=datetime.datetime.now(datetime.UTC))
    metrics.flush_metrics()
    (result,) = [b for b in _blobs(capsys) if "Results" in b]
    assert _dimension_sets(result) == sets
    assert result.get("Arm") == arm
    names = {m["Name"] for d in result["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {"Results", "CostUSD", "SavingsUSD"} <= names
