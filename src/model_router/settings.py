"""One validated settings object, read from the function's environment.

Handlers call :func:`get_settings`; nothing else in the package reads ``os.environ``. The local
engine runs every function in one process, so it gives each call the environment the template
gives that function through :func:`settings_scope` instead of mutating ``os.environ``.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from model_router.tiers import TIER_ORDER, Tier

# The newest Claude models Bedrock documents for Converse, through US cross-region inference
# profiles (README, "Models": source and date). Keep in step with template.yaml's parameter defaults.
DEFAULT_MODEL_IDS: dict[Tier, str] = {
    Tier.HAIKU: "us.anthropic.claude-haiku-4-5-20251001-v1:0",
    Tier.SONNET: "us.anthropic.claude-sonnet-4-6",
    Tier.OPUS: "us.anthropic.claude-opus-4-6-v1",
}
DEFAULT_MAX_OUTPUT_TOKENS = 2048
CIRCUIT_BREAKER_MODES = ("off", "memory", "dynamodb")
SHADOW_SAMPLERS = ("uniform", "uncertainty")
SERVICE_TIERS = ("priority", "default", "flex", "reserved")  # Converse serviceTier.type (botocore's model)
# The strategies whose Classify Request may call a classifier model (routing/llm_classifier.py).
LLM_STRATEGIES = ("llm", "learned+llm")


class SettingsError(ValueError):
    """A deployment setting is missing or malformed; names the environment variable."""


@dataclass(frozen=True)
class Settings:
    model_ids: dict[Tier, str] = field(default_factory=lambda: dict(DEFAULT_MODEL_IDS))
    # Set on invoker functions only: the one tier this function may call.
    tier: Tier | None = None
    model_provider: str = "bedrock"
    # CONFIDENCE_THRESHOLD, else the calibrated operating point (data/operating_point.json), else 0.8.
    confidence_threshold: float = field(default_factory=lambda: default_threshold())
    default_strategy: str = "learned"
    max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS
    bedrock_region: str | None = None
    bedrock_connect_timeout_s: float = 5.0
    bedrock_read_timeout_s: float = 100.0
    guardrail_id: str | None = None
    guardrail_version: str | None = None
    price_overrides: dict[str, dict[str, float]] = field(default_factory=dict)
    # Bedrock service tier of requests that name none (DEFAULT_SERVICE_TIER) and of batch lines that name none
    # (BATCH_SERVICE_TIER); a tier the model is not documented to support falls back to default with a note.
    default_service_tier: str = "default"
    batch_service_tier: str = "flex"
    # Facts data/model_features.json lacks, recorded by the deployment (MODEL_FEATURE_OVERRIDES): per model id,
    # {"prompt_caching": {"ttls": ["5m", "1h"]}, "service_tiers": {"flex": {"input": 0.5, "output": 2.5}}}.
    model_feature_overrides: dict[str, Any] = field(default_factory=dict)
    log_prompts: bool = False
    workflow_type: str = "STANDARD"
    # CloudWatch namespace of the EMF metrics (template parameter MetricsNamespace).
    metrics_namespace: str = "ModelRouter"
    # Circuit breaker (src/model_router/circuit.py): "dynamodb" when the stack gives a table, "memory" for local
    # runs that opt in, "off" otherwise (local runs stay reproducible: no state across executions).
    circuit_breaker: str = "off"
    circuit_breaker_table: str | None = None
    breaker_min_calls: int = 20
    breaker_failure_rate: float = 0.7
    breaker_window_s: float = 60.0
    breaker_cooldown_s: float = 30.0
    # Invokers: the most output tokens this function's tier may produce (requests asking more are capped).
    tier_max_output_tokens: int | None = None
    # Batch (model_router/batch): where done lines are recorded (a DynamoDB table in AWS, a SQLite file locally),
    # where results go, and the Distributed Map's concurrency and tolerated failures.
    idempotency_table: str | None = None
    idempotency_store: str | None = None
    batch_input_bucket: str | None = None
    batch_input_prefix: str = "incoming/"
    batch_results_bucket: str | None = None
    batch_results_prefix: str = "results/"
    batch_max_concurrency: int = 40
    batch_tolerated_failure_percentage: float = 0.0
    # Shadow evaluation (model_router/shadow): the share of answered requests re-asked on the other tiers, how
    # they are picked, the daily budget (a DynamoDB counter in AWS, in memory locally), where outcome records go,
    # and the judge of open-ended answers.
    shadow_sample_rate: float = 0.0
    shadow_sampler: str = "uniform"
    shadow_max_usd_per_day: float = 5.0
    shadow_budget_table: str | None = None
    shadow_outcomes_bucket: str | None = None
    shadow_outcomes_prefix: str = "outcomes/"
    store_shadow_prompts: bool = False
    judge_model_id: str = DEFAULT_MODEL_IDS[Tier.SONNET]
    judge: str = "converse"
    # Router model artifacts (routing/model_uri.py, routing/arms.py): the champion (None: the bundled model; an
    # s3:// URI pinned by its SHA-256, or ssm:<parameter> naming one), the challenger and its share of requests.
    router_model_uri: str | None = None
    challenger_model_uri: str | None = None
    challenger_share: float = 0.0
    # The LLM classifier (routing/llm_classifier.py, strategies llm and learned+llm): whether the deployment allows
    # its model call (ALLOW_LLM_CLASSIFIER; IAM grants it only then), its model (CLASSIFIER_MODEL_ID, else the Haiku
    # tier's), its own wall-clock budget, the learned router's decision margin below which learned+llm asks it,
    # and the client making the call (LLM_CLASSIFIER_CLIENT: converse in Lambda; local runs register replay).
    allow_llm_classifier: bool = False
    classifier_model: str | None = None
    classifier_timeout_s: float = 2.0
    llm_classifier_margin: float = 0.05
    classifier_client: str = "converse"

    @property
    def model_id(self) -> str:
        if self.tier is None:
            raise SettingsError("MODEL_TIER is not set: this function is not an invoker")
        return self.model_ids[self.tier]

    @property
    def classifier_model_id(self) -> str:
        return self.classifier_model or self.model_ids[Tier.HAIKU]

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> Settings:
        def get(name: str) -> str | None:
            value = env.get(name)
            return value.strip() if value and value.strip() else None

        def number(name: str, default: float, low: float, high: float) -> float:
            raw = get(name)
            if raw is None:
                return default
            try:
                value = float(raw)
            except ValueError as exc:
                raise SettingsError(f"{name}={raw!r} is not a number") from exc
            if not low <= value <= high:
                raise SettingsError(f"{name}={value} is outside [{low}, {high}]")
            return value

        model_ids = {tier: get(f"{tier.name}_MODEL_ID") or DEFAULT_MODEL_IDS[tier] for tier in TIER_ORDER}
        tier_name = get("MODEL_TIER")
        tier = None
        if tier_name is not None:
            try:
                tier = Tier(tier_name.lower())
            except ValueError as exc:
                raise SettingsError(f"MODEL_TIER={tier_name!r} is not one of haiku, sonnet, opus") from exc
            # An invoker may be given its model directly as MODEL_ID.
            model_ids[tier] = get("MODEL_ID") or model_ids[tier]
        # Which names exist is the provider registry's to say (model_router.providers): only "bedrock" in Lambda.
        provider = (get("MODEL_PROVIDER") or "bedrock").lower()
        overrides_raw = get("PRICE_OVERRIDES")
        try:
            overrides = json.loads(overrides_raw) if overrides_raw else {}
        except json.JSONDecodeError as exc:
            raise SettingsError(f"PRICE_OVERRIDES is not valid JSON: {exc}") from exc
        if not isinstance(overrides, dict) or not all(
            isinstance(v, dict) and {"input", "output"} <= v.keys() for v in overrides.values()
        ):
            raise SettingsError('PRICE_OVERRIDES must look like {"<model id>": {"input": 1.0, "output": 5.0}}')
        service_tiers = {}
        for name, default in (("DEFAULT_SERVICE_TIER", "default"), ("BATCH_SERVICE_TIER", "flex")):
            service_tiers[name] = (get(name) or default).lower()
            if service_tiers[name] not in SERVICE_TIERS:
                raise SettingsError(f"{name}={service_tiers[name]!r} is not one of {', '.join(SERVICE_TIERS)}")
        feature_overrides = _feature_overrides(get("MODEL_FEATURE_OVERRIDES"))
        workflow_type = (get("WORKFLOW_TYPE") or "STANDARD").upper()
        if workflow_type not in ("STANDARD", "EXPRESS"):
            raise SettingsError(f"WORKFLOW_TYPE={workflow_type!r} must be STANDARD or EXPRESS")
        strategy = (get("DEFAULT_STRATEGY") or "learned").lower()
        # Imported here: the router registry pulls in the request contract (jsonschema), which the other users
        # of settings (the CLI at start-up) do not need.
        from model_router.routing.plan import ROUTERS

        if strategy not in ROUTERS:
            raise SettingsError(f"DEFAULT_STRATEGY={strategy!r} is not one of {', '.join(sorted(ROUTERS))}")
        classifier = _classifier_settings(get, number)
        if strategy in LLM_STRATEGIES and not classifier["allow_llm_classifier"]:
            raise SettingsError(f"DEFAULT_STRATEGY={strategy} calls a classifier model: it needs "
                                "ALLOW_LLM_CLASSIFIER=true (template parameter AllowLlmClassifier)")
        return cls(
            model_ids=model_ids,
            tier=tier,
            model_provider=provider,
            confidence_threshold=number("CONFIDENCE_THRESHOLD", default_threshold(), 0.0, 1.0),
            default_strategy=strategy,
            max_output_tokens=int(number("MAX_OUTPUT_TOKENS", DEFAULT_MAX_OUTPUT_TOKENS, 1, 128_000)),
            bedrock_region=get("BEDROCK_REGION") or get("AWS_REGION"),
            bedrock_connect_timeout_s=number("BEDROCK_CONNECT_TIMEOUT_SECONDS", 5.0, 0.1, 60),
            bedrock_read_timeout_s=number("BEDROCK_READ_TIMEOUT_SECONDS", 100.0, 1, 900),
            guardrail_id=get("GUARDRAIL_ID"),
            guardrail_version=get("GUARDRAIL_VERSION"),
            price_overrides=overrides,
            default_service_tier=service_tiers["DEFAULT_SERVICE_TIER"],
            batch_service_tier=service_tiers["BATCH_SERVICE_TIER"],
            model_feature_overrides=feature_overrides,
            log_prompts=_flag(get, "LOG_PROMPTS"),
            workflow_type=workflow_type,
            metrics_namespace=get("POWERTOOLS_METRICS_NAMESPACE") or "ModelRouter",
            **_circuit_breaker_settings(get, number),
            tier_max_output_tokens=(int(number("TIER_MAX_OUTPUT_TOKENS", 0, 1, 128_000))
                                    if get("TIER_MAX_OUTPUT_TOKENS") else None),
            **_batch_settings(get, number),
            **_shadow_settings(get, number),
            **_router_model_settings(get, number),
            **classifier,
        )


def _flag(get: Callable[[str], str | None], name: str) -> bool:
    """A true/false setting (any case; unset: false); anything else is refused, naming the variable."""
    value = (get(name) or "false").lower()
    if value not in ("true", "false"):
        raise SettingsError(f"{name}={value!r} must be true or false")
    return value == "true"


def _feature_overrides(raw: str | None) -> dict[str, Any]:
    """MODEL_FEATURE_OVERRIDES: facts a deployment records for its models; a service tier only with its prices."""
    if raw is None:
        return {}
    shape = ('MODEL_FEATURE_OVERRIDES must look like {"<model id>": {"prompt_caching": {"ttls": ["5m", "1h"]}, '
             '"service_tiers": {"flex": {"input": 0.5, "output": 2.5}}}}')
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"MODEL_FEATURE_OVERRIDES is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise SettingsError(shape)
    for model_id, entry in value.items():
        if not isinstance(entry, dict) or not set(entry) <= {"prompt_caching", "service_tiers"}:
            raise SettingsError(f"{shape} (model {model_id!r})")
        caching = entry.get("prompt_caching", {})
        if not isinstance(caching, dict) or not set(caching.get("ttls", ["5m"])) <= {"5m", "1h"}:
            raise SettingsError(f"{shape}: prompt_caching.ttls of {model_id!r} must be among 5m, 1h")
        for tier, prices in (entry.get("service_tiers") or {}).items():
            if tier not in SERVICE_TIERS or not isinstance(prices, dict) or not {"input", "output"} <= prices.keys():
                raise SettingsError(f"{shape}: service tier {tier!r} of {model_id!r} needs its input and output prices")
    return value


def _circuit_breaker_settings(get: Callable[[str], str | None],
                               number: Callable[[str, float, float, float], float]) -> dict[str, Any]:
    """CIRCUIT_BREAKER_TABLE set: DynamoDB; else CIRCUIT_BREAKER=memory|off (default off)."""
    table = get("CIRCUIT_BREAKER_TABLE")
    mode = (get("CIRCUIT_BREAKER") or ("dynamodb" if table else "off")).lower()
    if mode not in CIRCUIT_BREAKER_MODES:
        raise SettingsError(f"CIRCUIT_BREAKER={mode!r} is not one of {', '.join(CIRCUIT_BREAKER_MODES)}")
    if mode == "dynamodb" and not table:
        raise SettingsError("CIRCUIT_BREAKER=dynamodb needs CIRCUIT_BREAKER_TABLE")
    cooldown = number("CIRCUIT_BREAKER_COOLDOWN_SECONDS", 30.0, 0, 3600)
    return {
        "circuit_breaker": "off" if cooldown == 0 else mode,  # a zero cool-down turns the breaker off
        "circuit_breaker_table": table,
        "breaker_min_calls": int(number("CIRCUIT_BREAKER_MIN_CALLS", 20, 1, 10_000)),
        "breaker_failure_rate": number("CIRCUIT_BREAKER_FAILURE_RATE", 0.7, 0.01, 1.0),
        "breaker_window_s": number("CIRCUIT_BREAKER_WINDOW_SECONDS", 60.0, 1, 3600),
        "breaker_cooldown_s": cooldown,
    }


def _batch_settings(get: Callable[[str], str | None],
                    number: Callable[[str, float, float, float], float]) -> dict[str, Any]:
    return {
        "idempotency_table": get("IDEMPOTENCY_TABLE"),
        "idempotency_store": get("IDEMPOTENCY_STORE"),
        "batch_input_bucket": get("BATCH_INPUT_BUCKET"),
        "batch_input_prefix": get("BATCH_INPUT_PREFIX") or "incoming/",
        "batch_results_bucket": get("BATCH_RESULTS_BUCKET"),
        "batch_results_prefix": get("BATCH_RESULTS_PREFIX") or "results/",
        "batch_max_concurrency": int(number("BATCH_MAX_CONCURRENCY", 40, 1, 10_000)),
        "batch_tolerated_failure_percentage": number("BATCH_TOLERATED_FAILURE_PERCENTAGE", 0.0, 0, 100),
    }


def _router_model_settings(get: Callable[[str], str | None],
                           number: Callable[[str, float, float, float], float]) -> dict[str, Any]:
    from model_router.routing.model_uri import check_champion_source, parse_model_uri

    champion, challenger = get("ROUTER_MODEL_URI"), get("CHALLENGER_MODEL_URI")
    try:
        if champion is not None:
            check_champion_source(champion)
    except ValueError as exc:
        raise SettingsError(f"ROUTER_MODEL_URI: {exc}") from exc
    try:
        if challenger is not None:
            parse_model_uri(challenger)
    except ValueError as exc:
        raise SettingsError(f"CHALLENGER_MODEL_URI: {exc}") from exc
    return {
        "router_model_uri": champion,
        "challenger_model_uri": challenger,
        "challenger_share": number("CHALLENGER_SHARE", 0.0, 0.0, 1.0),
    }


def _classifier_settings(get: Callable[[str], str | None],
                         number: Callable[[str, float, float, float], float]) -> dict[str, Any]:
    return {
        "allow_llm_classifier": _flag(get, "ALLOW_LLM_CLASSIFIER"),
        "classifier_model": get("CLASSIFIER_MODEL_ID"),
        "classifier_timeout_s": number("CLASSIFIER_TIMEOUT_SECONDS", 2.0, 0.1, 30),
        "llm_classifier_margin": number("LLM_CLASSIFIER_MARGIN", 0.05, 0.0, 1.0),
        # Which names exist is the registry's to say (routing/llm_classifier.py): only "converse" in Lambda.
        "classifier_client": (get("LLM_CLASSIFIER_CLIENT") or "converse").lower(),
    }


def _shadow_settings(get: Callable[[str], str | None],
                     number: Callable[[str, float, float, float], float]) -> dict[str, Any]:
    sampler = (get("SHADOW_SAMPLER") or "uniform").lower()
    if sampler not in SHADOW_SAMPLERS:
        raise SettingsError(f"SHADOW_SAMPLER={sampler!r} is not one of {', '.join(SHADOW_SAMPLERS)}")
    return {
        "shadow_sample_rate": number("SHADOW_SAMPLE_RATE", 0.0, 0.0, 1.0),
        "shadow_sampler": sampler,
        "shadow_max_usd_per_day": number("SHADOW_MAX_USD_PER_DAY", 5.0, 0.0, 1_000_000),
        "shadow_budget_table": get("SHADOW_BUDGET_TABLE"),
        "shadow_outcomes_bucket": get("SHADOW_OUTCOMES_BUCKET"),
        "shadow_outcomes_prefix": get("SHADOW_OUTCOMES_PREFIX") or "outcomes/",
        "store_shadow_prompts": _flag(get, "STORE_SHADOW_PROMPTS"),
        "judge_model_id": get("JUDGE_MODEL_ID") or DEFAULT_MODEL_IDS[Tier.SONNET],
        # Which names exist is the judge registry's to say (model_router.shadow.judge): only "converse" in Lambda.
        "judge": (get("JUDGE") or "converse").lower(),
    }


DEFAULT_THRESHOLD = 0.8
OPERATING_POINT = "operating_point.json"


@lru_cache(maxsize=1)
def calibrated_operating_point() -> dict[str, Any] | None:
    """The operating point `model-router calibrate --write` chose for a quality or cost target
    (model_router/data/operating_point.json: its threshold, target, realised shares and data); None when none
    ships."""
    try:
        text = resources.files("model_router.data").joinpath(OPERATING_POINT).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        document = json.loads(text)
        threshold = document["threshold"]
    except (ValueError, KeyError, TypeError) as exc:
        raise SettingsError(f"model_router/data/{OPERATING_POINT} has no readable threshold: {exc}") from None
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
        raise SettingsError(f"model_router/data/{OPERATING_POINT}: threshold {threshold!r} is not in [0, 1]")
    return dict(document)


def default_threshold() -> float:
    """The threshold when CONFIDENCE_THRESHOLD is empty: the shipped operating point's, else DEFAULT_THRESHOLD."""
    point = calibrated_operating_point()
    return DEFAULT_THRESHOLD if point is None else float(point["threshold"])


_scoped_env: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "model_router_scoped_env", default=None
)


@lru_cache(maxsize=64)
def _settings_for(items: frozenset[tuple[str, str]]) -> Settings:
    return Settings.from_mapping(dict(items))


def current_environment() -> Mapping[str, str]:
    """The function's environment: the local engine's per-function scope, else the process's (Lambda)."""
    env = _scoped_env.get()
    return env if env is not None else os.environ


def get_settings() -> Settings:
    """The settings of the function being run (cached per distinct environment)."""
    return _settings_for(frozenset(current_environment().items()))


@contextlib.contextmanager
def settings_scope(env: Mapping[str, str]) -> Iterator[None]:
    """Run the body with ``env`` as the function environment (thread- and task-local)."""
    token = _scoped_env.set(dict(env))
    try:
        yield
    finally:
        _scoped_env.reset(token)
