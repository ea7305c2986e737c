"""Model providers behind one interface: Bedrock Converse, replay of recorded outcomes, fault injection."""

from __future__ import annotations

from functools import lru_cache

from model_router.providers.base import ModelCall, ModelProvider, ModelReply
from model_router.settings import Settings

__all__ = ["ModelCall", "ModelProvider", "ModelReply", "provider_for"]


@lru_cache(maxsize=16)
def _cached(kind: str, dataset: str | None, region: str | None, connect: float, read: float,
            faults: str | None, outcome_only: bool) -> ModelProvider:
    provider: ModelProvider
    if kind == "replay":
        from model_router.providers.replay import ReplayProvider

        provider = ReplayProvider(dataset, outcome_only=outcome_only)
    else:
        from model_router.providers.bedrock import BedrockConverseProvider

        provider = BedrockConverseProvider(region=region, connect_timeout_s=connect, read_timeout_s=read)
    if faults:
        from model_router.providers.faults import FaultInjectingProvider, FaultPlan

        provider = FaultInjectingProvider(provider, FaultPlan.parse(faults))
    return provider


def provider_for(settings: Settings) -> ModelProvider:
    """One provider (and so one boto3 client) per container and configuration."""
    return _cached(
        settings.model_provider,
        settings.replay_dataset,
        settings.bedrock_region,
        settings.bedrock_connect_timeout_s,
        settings.bedrock_read_timeout_s,
        settings.fault_injection,
        settings.replay_outcome_only,
    )


def reset_providers() -> None:
    """Forget cached providers (tests and the local engine use this between runs)."""
    _cached.cache_clear()
