"""Model providers behind one interface, chosen by name (``MODEL_PROVIDER``) from a registry.

Only Bedrock Converse ships in the Lambda layer and is registered here. Offline providers (replay of
recorded outcomes) and provider wrappers (fault injection) live in model_router_tools and register
themselves when the local engine or the evaluation starts: a deployed function cannot select them,
because nothing in the layer registers them (``MODEL_PROVIDER=replay`` there is a ProviderError).

A factory reads its own options from the function's environment (:func:`model_router.settings.
current_environment`), named when it registers, so ``Settings`` knows nothing of them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from model_router.providers.base import ModelCall, ModelProvider, ModelReply, TierLimit
from model_router.settings import Settings, current_environment

__all__ = ["ModelCall", "ModelProvider", "ModelReply", "ProviderError", "TierLimit", "provider_for",
           "register_provider", "register_wrapper", "reset_providers", "tier_limit"]

ProviderFactory = Callable[[Settings, Mapping[str, str]], ModelProvider]
ProviderWrapper = Callable[[ModelProvider, str], ModelProvider]


class ProviderError(ValueError):
    """``MODEL_PROVIDER`` names no registered provider."""


@dataclass(frozen=True)
class _Registration:
    factory: ProviderFactory
    options: tuple[str, ...]  # the environment variables the factory reads (its cache key)
    limits_tiers: bool  # whether Classify Request must ask it which tiers can answer (tier_limit)


def _bedrock(settings: Settings, _env: Mapping[str, str]) -> ModelProvider:
    from model_router.providers.bedrock import BedrockConverseProvider  # boto3's client only when first used

    return BedrockConverseProvider(region=settings.bedrock_region, connect_timeout_s=settings.bedrock_connect_timeout_s,
                                   read_timeout_s=settings.bedrock_read_timeout_s)


_PROVIDERS: dict[str, _Registration] = {"bedrock": _Registration(_bedrock, (), limits_tiers=False)}
_WRAPPERS: dict[str, ProviderWrapper] = {}  # environment variable -> wrapper applied when it is set


def register_provider(name: str, factory: ProviderFactory, *, options: tuple[str, ...] = (),
                      limits_tiers: bool = False) -> None:
    """Make ``MODEL_PROVIDER=name`` build its provider with ``factory(settings, environment)``."""
    registration = _Registration(factory, options, limits_tiers)
    if _PROVIDERS.get(name) != registration:  # registering again is a no-op: cached providers stay
        _PROVIDERS[name] = registration
        reset_providers()


def register_wrapper(variable: str, wrapper: ProviderWrapper) -> None:
    """When the environment variable ``variable`` is set, wrap every provider in ``wrapper(provider, value)``."""
    if _WRAPPERS.get(variable) is not wrapper:
        _WRAPPERS[variable] = wrapper
        reset_providers()


def _registration(settings: Settings) -> _Registration:
    registration = _PROVIDERS.get(settings.model_provider)
    if registration is None:
        raise ProviderError(f"MODEL_PROVIDER: {settings.model_provider!r} is not a registered provider "
                            f"(registered: {', '.join(sorted(_PROVIDERS))}; offline providers register from "
                            "model_router_tools and are never in the Lambda layer)")
    return registration


_cache: dict[tuple[Any, ...], ModelProvider] = {}
_cache_lock = threading.Lock()


def _build(settings: Settings, *, wrapped: bool) -> ModelProvider:
    registration = _registration(settings)
    env = current_environment()
    options = {name: env[name] for name in registration.options if env.get(name) is not None}
    wrappers = tuple((name, env[name]) for name in sorted(_WRAPPERS) if wrapped and env.get(name))
    key = (settings.model_provider, settings.bedrock_region, settings.bedrock_connect_timeout_s,
           settings.bedrock_read_timeout_s, tuple(sorted(options.items())), wrappers)
    with _cache_lock:
        provider = _cache.get(key)
        if provider is None:
            provider = registration.factory(settings, options)
            for variable, value in wrappers:
                provider = _WRAPPERS[variable](provider, value)
            _cache[key] = provider
        return provider


def provider_for(settings: Settings) -> ModelProvider:
    """One provider (and so one boto3 client) per container and configuration."""
    return _build(settings, wrapped=True)


def tier_limit(settings: Settings, messages: list[dict[str, Any]]) -> TierLimit | None:
    """The tiers the configured provider can answer ``messages`` on, when not every tier (None: all of them).

    Classify Request asks this before it picks a start tier, so every way into the workflow (a direct
    execution, a batch line, the demo, an evaluation run) routes between the same tiers. Bedrock serves
    every deployed tier: answered without building its client, so the classifier stays cheap. Wrappers
    (fault injection) are left out: they change how calls fail, not which tiers exist.
    """
    if not _registration(settings).limits_tiers:
        return None
    hook = getattr(_build(settings, wrapped=False), "available_tiers", None)
    limit: TierLimit | None = hook(messages) if hook is not None else None
    return limit


def reset_providers() -> None:
    """Forget cached providers (tests and the local engine use this between runs)."""
    with _cache_lock:
        _cache.clear()
