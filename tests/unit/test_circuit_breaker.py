"""The circuit breaker (src/model_router/circuit.py): when it opens, what it counts, where its state lives.

In-memory store with a hand-driven clock; the DynamoDB store against moto's DynamoDB (real boto3 client,
the table as template.yaml defines it) and botocore's Stubber for the failure paths.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from model_router import errors
from model_router.circuit import (
    BreakerPolicy,
    CircuitBreaker,
    CircuitBreakingProvider,
    DynamoDBBreakerStore,
    MemoryBreakerStore,
    breaker_for,
    reset_breakers,
    with_circuit_breaker,
)
from model_router.providers.base import CallLog, ModelCall, ModelReply
from model_router.settings import Settings, SettingsError
from model_router.tiers import Tier
from model_router_tools.local.template import load_template

POLICY = BreakerPolicy(min_calls=4, failure_rate=0.5, window_s=60, cooldown_s=30)
SONNET_CALL = ModelCall(tier=Tier.SONNET, model_id="us.anthropic.claude-sonnet-4-6",
                        messages=[{"role": "user", "content": [{"text": "hi"}]}])
HAIKU_CALL = ModelCall(tier=Tier.HAIKU, model_id="us.anthropic.claude-haiku-4-5-20251001-v1:0",
                       messages=[{"role": "user", "content": [{"text": "hi"}]}])


class Clock:
    def __init__(self, now: float = 600_000.0):  # the start of a 60 s window
        self.now = now

    def __call__(self) -> float:
        return self.now


class ScriptedProvider:
    """Raises the queued errors in order, then answers."""

    name = "scripted"

    def __init__(self, *failures: type[errors.ModelInvocationError]):
        self.failures = list(failures)
        self.log = CallLog()

    def converse(self, call: ModelCall) -> ModelReply:
        self.log.record(call)
        if self.failures:
            raise self.failures.pop(0)("injected", tier=call.tier.value, model_id=call.model_id)
        return ModelReply("ok", "end_turn", 1, 1, 1.0, "scripted")


def breaker(store: Any = None, clock: Clock | None = None) -> CircuitBreaker:
    return CircuitBreaker(store or MemoryBreakerStore(), POLICY, clock or Clock())


def fail(provider: CircuitBreakingProvider, call: ModelCall = SONNET_CALL) -> str:
    try:
        provider.converse(call)
    except errors.ModelInvocationError as exc:
        return type(exc).__name__
    return "answered"


def test_opens_after_enough_availability_failures_and_skips_without_calling() -> None:
    inner = ScriptedProvider(*[errors.ThrottlingException] * 4)
    provider = CircuitBreakingProvider(inner, breaker())
    assert [fail(provider) for _ in range(4)] == ["ThrottlingException"] * 4
    assert fail(provider) == "CircuitOpenException"
    assert len(inner.log) == 4, "an open circuit must not call the model"


def test_other_tiers_are_unaffected() -> None:
    inner = ScriptedProvider(*[errors.ThrottlingException] * 4)
    provider = CircuitBreakingProvider(inner, breaker())
    for _ in range(4):
        fail(provider)
    assert fail(provider, HAIKU_CALL) == "answered"


def test_stays_closed_below_min_calls_or_below_the_failure_rate() -> None:
    inner = ScriptedProvider(*[errors.ThrottlingException] * 3)
    provider = CircuitBreakingProvider(inner, breaker())
    assert [fail(provider) for _ in range(3)] == ["ThrottlingException"] * 3
    assert fail(provider) == "answered"  # 3 of 4 failed, but below min_calls until this call, which succeeded
    # One failure among many successes: 1 of 6 < 50%.
    inner2 = ScriptedProvider()
    provider2 = CircuitBreakingProvider(inner2, breaker())
    for _ in range(5):
        assert fail(provider2) == "answered"
    inner2.failures.append(errors.ServiceUnavailableException)
    assert fail(provider2) == "ServiceUnavailableException"
    assert fail(provider2) == "answered"


@pytest.mark.parametrize("error", [errors.ModelErrorException, errors.ValidationException,
                                   errors.ContentFilteredException, errors.ContextWindowExceededException])
def test_answers_that_are_bad_do_not_count_as_unavailability(error: type[errors.ModelInvocationError]) -> None:
    provider = CircuitBreakingProvider(ScriptedProvider(*[error] * 6), breaker())
    assert [fail(provider) for _ in range(6)] == [error.__name__] * 6
    assert fail(provider) == "answered"


@pytest.mark.parametrize("error", [errors.ThrottlingException, errors.ServiceUnavailableException,
                                   errors.InternalServerException, errors.ModelNotReadyException,
                                   errors.ModelTimeoutException])
def test_every_availability_error_counts(error: type[errors.ModelInvocationError]) -> None:
    provider = CircuitBreakingProvider(ScriptedProvider(*[error] * 4), breaker())
    for _ in range(4):
        fail(provider)
    assert fail(provider) == "CircuitOpenException"


def test_closes_after_the_cool_down_and_a_failing_probe_reopens_it() -> None:
    clock = Clock()
    inner = ScriptedProvider(*[errors.ThrottlingException] * 5)
    provider = CircuitBreakingProvider(inner, breaker(clock=clock))
    for _ in range(4):
        fail(provider)
    clock.now += POLICY.cooldown_s - 1
    assert fail(provider) == "CircuitOpenException"
    clock.now += 2  # cool-down over (same 60 s window: its counts still say 4 of 4 failed)
    assert fail(provider) == "ThrottlingException"  # the probe is called
    assert fail(provider) == "CircuitOpenException"  # and its failure reopens at once
    assert len(inner.log) == 5


def test_a_new_window_starts_from_zero() -> None:
    clock = Clock(600.0)  # the start of a 60 s window
    inner = ScriptedProvider(*[errors.ThrottlingException] * 6)
    provider = CircuitBreakingProvider(inner, breaker(clock=clock))
    for _ in range(3):
        fail(provider)
    clock.now += POLICY.window_s
    for _ in range(3):
        assert fail(provider) == "ThrottlingException"  # 3 in the new window: below min_calls
    assert fail(provider) == "answered"


def test_the_skip_message_says_why_and_for_how_long() -> None:
    provider = CircuitBreakingProvider(ScriptedProvider(*[errors.ThrottlingException] * 4), breaker())
    for _ in range(4):
        fail(provider)
    with pytest.raises(errors.CircuitOpenException, match=r"Sonnet is cooling down for 30 s more") as caught:
        provider.converse(SONNET_CALL)
    assert caught.value.tier == "sonnet"


# -- settings ------------------------------------------------------------------------------------------


def test_settings_pick_the_store() -> None:
    assert Settings.from_mapping({}).circuit_breaker == "off"
    assert Settings.from_mapping({"CIRCUIT_BREAKER": "memory"}).circuit_breaker == "memory"
    table = Settings.from_mapping({"CIRCUIT_BREAKER_TABLE": "breaker"})
    assert (table.circuit_breaker, table.circuit_breaker_table) == ("dynamodb", "breaker")
    off = Settings.from_mapping({"CIRCUIT_BREAKER_TABLE": "breaker", "CIRCUIT_BREAKER_COOLDOWN_SECONDS": "0"})
    assert off.circuit_breaker == "off"


@pytest.mark.parametrize(("env", "named"), [
    ({"CIRCUIT_BREAKER": "sometimes"}, "CIRCUIT_BREAKER"),
    ({"CIRCUIT_BREAKER": "dynamodb"}, "CIRCUIT_BREAKER_TABLE"),
    ({"CIRCUIT_BREAKER_FAILURE_RATE": "1.5"}, "CIRCUIT_BREAKER_FAILURE_RATE"),
    ({"CIRCUIT_BREAKER_MIN_CALLS": "many"}, "CIRCUIT_BREAKER_MIN_CALLS"),
])
def test_bad_breaker_settings_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_mapping(env)


def test_breaker_off_leaves_the_provider_alone_and_breakers_are_shared_per_configuration() -> None:
    reset_breakers()
    inner = ScriptedProvider()
    assert with_circuit_breaker(inner, Settings.from_mapping({})) is inner
    memory = Settings.from_mapping({"CIRCUIT_BREAKER": "memory", "MODEL_TIER": "sonnet"})
    other_tier = Settings.from_mapping({"CIRCUIT_BREAKER": "memory", "MODEL_TIER": "haiku"})
    assert breaker_for(memory) is breaker_for(other_tier)  # one store per process: every tier's invoker sees it
    reset_breakers()


# -- DynamoDB --------------------------------------------------------------------------------------------


def template_table() -> dict[str, Any]:
    from model_router_tools.local.engine import PROJECT_ROOT

    props: dict[str, Any] = load_template(PROJECT_ROOT / "template.yaml")["Resources"]["CircuitBreakerTable"][
        "Properties"]
    return props


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        props = template_table()
        client.create_table(TableName="breaker", BillingMode=props["BillingMode"],
                            AttributeDefinitions=props["AttributeDefinitions"], KeySchema=props["KeySchema"])
        yield client


def test_dynamodb_store_counts_windows_opens_once_and_sets_ttl(dynamodb: Any) -> None:
    clock = Clock(6000.0)
    store = DynamoDBBreakerStore("breaker", client=dynamodb)
    inner = ScriptedProvider(*[errors.ThrottlingException] * 4)
    provider = CircuitBreakingProvider(inner, breaker(store, clock))
    for _ in range(4):
        fail(provider)
    assert fail(provider) == "CircuitOpenException"
    assert len(inner.log) == 4
    window = dynamodb.get_item(TableName="breaker", Key={"pk": {"S": "sonnet#window#100"}})["Item"]
    assert (window["calls"]["N"], window["failures"]["N"]) == ("4", "4")
    assert int(window["expires_at"]["N"]) == 102 * 60  # kept one window past its end, then TTL removes it
    state = dynamodb.get_item(TableName="breaker", Key={"pk": {"S": "sonnet#state"}})["Item"]
    assert float(state["open_until"]["N"]) == clock.now + POLICY.cooldown_s
    assert "4 of 4 calls failed" in state["reason"]["S"]
    # A second container tripping while it is open must not extend the cool-down (conditional update).
    assert store.trip("sonnet", clock.now + 999, clock.now, "again") is False
    assert float(store.open_until("sonnet")) == clock.now + POLICY.cooldown_s
    # Another invoker container (a new store on the same table) sees the open circuit.
    other = CircuitBreakingProvider(ScriptedProvider(), breaker(DynamoDBBreakerStore("breaker", client=dynamodb),
                                                                 clock))
    assert fail(other) == "CircuitOpenException"


def test_the_table_has_ttl_on_the_attribute_the_store_writes() -> None:
    props = template_table()
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]


def test_an_unreachable_table_never_blocks_a_model_call() -> None:
    client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        stub.add_client_error("get_item", "ProvisionedThroughputExceededException", http_status_code=400)
        stub.add_client_error("update_item", "InternalServerError", http_status_code=500)
        inner = ScriptedProvider()
        provider = CircuitBreakingProvider(inner, breaker(DynamoDBBreakerStore("breaker", client=client)))
        assert fail(provider) == "answered"
        stub.assert_no_pending_responses()
    assert len(inner.log) == 1


def test_dynamodb_requests_are_the_ones_iam_allows() -> None:
    """The invokers' IAM allows GetItem and UpdateItem on the table, nothing else: the store uses only those."""
    client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    clock = Clock(6000.0)
    with Stubber(client) as stub:
        stub.add_response("get_item", {}, {"TableName": "breaker", "Key": {"pk": {"S": "sonnet#state"}},
                                           "ProjectionExpression": "open_until"})
        stub.add_response("update_item", {"Attributes": {"calls": {"N": "1"}, "failures": {"N": "0"}}})
        provider = CircuitBreakingProvider(ScriptedProvider(),
                                           breaker(DynamoDBBreakerStore("breaker", client=client), clock))
        assert fail(provider) == "answered"
        stub.assert_no_pending_responses()
