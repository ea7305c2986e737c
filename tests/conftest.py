"""Shared fixtures: the real state machine on the local engine, the vendored replay sample."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from model_router.providers import reset_providers
from model_router_tools.local.engine import LocalEngine
from model_router_tools.providers import register_local_providers
from model_router_tools.replay.datasets import read_records, sample_path


@pytest.fixture(scope="session", autouse=True)
def local_providers() -> None:
    """MODEL_PROVIDER=replay and FAULT_INJECTION, as the local engine registers them (the layer has neither)."""
    register_local_providers()


@pytest.fixture(scope="session")
def records() -> list[dict[str, Any]]:
    return list(read_records(sample_path()))


@pytest.fixture(scope="session")
def answered_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records whose recorded answers the replay provider can return (GSM8K, MT-Bench)."""
    return [r for r in records if all(o.get("response") for o in r["outcomes"].values())]


# Path tests pin the heuristic router so the paths they walk do not move when the learned weights are
# retrained; the learned router runs through the real workflow in tests/offline/test_eval.py. They walk
# three-tier paths, and the bundled sources with answer text record two tiers: Sonnet replays the premium
# model there (REPLAY_BORROWED_TIERS, mechanics only; demo, invoke, batch and eval never borrow).
# They pin the confidence threshold too, so a newly calibrated operating point (data/operating_point.json) does
# not move them either.
PATH_TEST_ENV = {"DEFAULT_STRATEGY": "heuristic", "REPLAY_BORROWED_TIERS": "1", "CONFIDENCE_THRESHOLD": "0.8"}


@pytest.fixture(scope="session")
def engine() -> LocalEngine:
    """The router state machine with the replay provider and no faults (parsed once per session)."""
    return LocalEngine(env_overrides=PATH_TEST_ENV)


@pytest.fixture
def engine_with() -> Callable[..., LocalEngine]:
    """Build an engine with extra function environment, e.g. engine_with(FAULT_INJECTION="haiku.throttle=1")."""
    made: list[LocalEngine] = []

    def build(**env: str) -> LocalEngine:
        engine = LocalEngine(env_overrides={**PATH_TEST_ENV, **env})
        made.append(engine)
        return engine

    yield build  # type: ignore[misc]
    reset_providers()
