"""The shadow workflow's daily budget (``ShadowMaxUsdPerDay``): one counter per UTC day.

Before a shadow asks anything, Check Shadow Budget reserves its estimated cost with one conditional
update: the reservation succeeds only if the day's spend stays within the cap, so concurrent shadows
cannot overshoot it together. Write Outcome Record then settles the difference between what the calls
cost and what was reserved. A failed shadow keeps its reservation (its calls may have been paid for), so
the counter never under-counts. When the cap is reached, sampling stops for the rest of the day.

The counter lives in DynamoDB when deployed (as the circuit breaker's state does; TTL removes old days)
and in memory for local runs. A store that cannot be reached fails the shadow, not the router: no
counter, no shadow spend.
"""

from __future__ import annotations

import datetime
import threading
from decimal import Decimal
from functools import lru_cache
from typing import Any, Protocol

from model_router.settings import Settings

KEEP_DAYS = 35  # how long a day's counter stays (TTL): a month of spend can be read back


def budget_day(now: datetime.datetime | None = None) -> str:
    return (now or datetime.datetime.now(tz=datetime.UTC)).strftime("%Y-%m-%d")


class BudgetLedger(Protocol):
    def reserve(self, day: str, amount_usd: float, limit_usd: float) -> tuple[bool, float]:
        """Add ``amount_usd`` to the day's spend if it stays within ``limit_usd``; (whether it did, the spend after)."""
        ...

    def settle(self, day: str, delta_usd: float) -> float:
        """Add ``delta_usd`` (negative: a refund of an over-estimate) to the day's spend; the spend after."""
        ...


class MemoryLedger:
    def __init__(self) -> None:
        self._spent: dict[str, float] = {}
        self._lock = threading.Lock()

    def reserve(self, day: str, amount_usd: float, limit_usd: float) -> tuple[bool, float]:
        with self._lock:
            spent = self._spent.get(day, 0.0)
            if spent + amount_usd > limit_usd:
                return False, spent
            self._spent[day] = spent + amount_usd
            return True, self._spent[day]

    def settle(self, day: str, delta_usd: float) -> float:
        with self._lock:
            self._spent[day] = max(0.0, self._spent.get(day, 0.0) + delta_usd)
            return self._spent[day]

    def spent(self, day: str) -> float:
        with self._lock:
            return self._spent.get(day, 0.0)


def _usd(value: float) -> Decimal:
    return Decimal(str(round(value, 10)))


class DynamoDBLedger:
    """``pk = shadow-spend#<day>``, ``spent_usd`` (a number), ``expires_at`` (TTL)."""

    def __init__(self, table: str, client: Any):
        self.table = table
        self.client = client

    @staticmethod
    def _key(day: str) -> dict[str, Any]:
        return {"pk": {"S": f"shadow-spend#{day}"}}

    @staticmethod
    def _expires(day: str) -> str:
        start = datetime.datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=datetime.UTC)
        return str(int((start + datetime.timedelta(days=KEEP_DAYS)).timestamp()))

    def reserve(self, day: str, amount_usd: float, limit_usd: float) -> tuple[bool, float]:
        if amount_usd > limit_usd:  # a missing item passes the condition below: refuse what can never fit here
            return False, 0.0
        try:
            reply = self.client.update_item(
                TableName=self.table, Key=self._key(day),
                UpdateExpression="ADD spent_usd :amount SET expires_at = if_not_exists(expires_at, :expires)",
                ConditionExpression="attribute_not_exists(spent_usd) OR spent_usd <= :room",
                ExpressionAttributeValues={":amount": {"N": str(_usd(amount_usd))},
                                           ":room": {"N": str(_usd(limit_usd - amount_usd))},
                                           ":expires": {"N": self._expires(day)}},
                ReturnValues="UPDATED_NEW", ReturnValuesOnConditionCheckFailure="ALL_OLD")
        except self.client.exceptions.ConditionalCheckFailedException as exc:
            item = exc.response.get("Item") or {}
            return False, float(item.get("spent_usd", {}).get("N", "0"))
        return True, float(reply["Attributes"]["spent_usd"]["N"])

    def settle(self, day: str, delta_usd: float) -> float:
        reply = self.client.update_item(
            TableName=self.table, Key=self._key(day),
            UpdateExpression="ADD spent_usd :delta SET expires_at = if_not_exists(expires_at, :expires)",
            ExpressionAttributeValues={":delta": {"N": str(_usd(delta_usd))}, ":expires": {"N": self._expires(day)}},
            ReturnValues="UPDATED_NEW")
        return float(reply["Attributes"]["spent_usd"]["N"])


_memory = MemoryLedger()


@lru_cache(maxsize=4)
def _dynamodb_ledger(table: str) -> DynamoDBLedger:
    import boto3  # only where a table is configured

    return DynamoDBLedger(table, boto3.client("dynamodb"))


def ledger_for(settings: Settings) -> BudgetLedger:
    """DynamoDB when the stack gives a table; the process's memory otherwise (local runs)."""
    if settings.shadow_budget_table:
        return _dynamodb_ledger(settings.shadow_budget_table)
    return _memory


def memory_ledger() -> MemoryLedger:
    """The local runs' ledger (tests and the local batch read and reset it)."""
    return _memory


def reset_memory_ledger() -> None:
    global _memory
    _memory = MemoryLedger()
