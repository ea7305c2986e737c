"""Classify a request and plan its route: which tier to start at, and what the run may do after.

Routers share one small interface (:class:`Router`) and a registry (:data:`ROUTERS`), as in RouteLLM.
None of them calls a model: the classifier Lambda must stay cheap and fast.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from model_router.contracts.request import all_text, cache_ttl, cached_prefix_text, prompt_text
from model_router.errors import InvalidRequest
from model_router.pricing import Price, estimate_tokens
from model_router.routing.llm_verdict import LlmVerdict, classifier_cost, not_asked
from model_router.routing.regex_guard import DIGITS, GuardedRegex
from model_router.tiers import COMPLEXITY_TO_TIER, TIER_ORDER, Tier

if TYPE_CHECKING:
    from model_router.routing.learned import TierModel

# The learned router's model for one request and what the classification records of it (routing/arms.py).
RouterModelChoice = Callable[[], "tuple[TierModel | None, dict[str, Any]]"]

# Budget checks need an output length before the model has answered: assume this many tokens
# (or maxTokens when smaller). Documented in the README's cost section.
EXPECTED_OUTPUT_TOKENS = 512

SIMPLE_TASKS = {"chat", "qa", "classification", "extraction", "summarization", "translation", "rewrite"}
MODERATE_TASKS = {"code", "math", "analysis", "writing", "creative"}
COMPLEX_TASKS = {"reasoning", "planning"}

_CODE = GuardedRegex(re.compile(
    r"```|\bdef \w+\(|\bclass \w+[:(]|\bfunction\s*\w*\(|#include|\bSELECT\b.+\bFROM\b|=>|\bimport \w+|"
    r"\b(write|implement|refactor|debug|fix) (a |an |the |this |my )?(python |java |sql |js |go |rust )?"
    r"(function|program|script|class|method|code|query|bug)|\btraceback\b|\bstack trace\b",
    re.IGNORECASE | re.DOTALL,
), "```", "def ", "class ", "function", "#include", "select", "=>", "import ", "write ", "implement ", "refactor ",
    "debug ", "fix ", "traceback", "stack trace")
_MATH = GuardedRegex(re.compile(
    # (?<!\d): start only where a run of digits starts; from every digit of a long run, \d+ would backtrack
    # through the rest of it (quadratic: minutes on a 120 KB string of digits). The same prompts match.
    r"\\frac|\\int|\\sum|\$[^$]+\$|(?<!\d)\d+\s*[-+*/^×÷]\s*\d|\b(solve|equation|integral|derivative|prove|"
    r"probability|theorem|calculate|compute|how many|how much|percent|ratio)\b",
    re.IGNORECASE,
), "\\", "$", *DIGITS, "solve", "equation", "integral", "derivative", "prove", "probability", "theorem", "calculate",
    "compute", "how many", "how much", "percent", "ratio")
_PROOF = GuardedRegex(re.compile(r"\b(prove|derive|show that|proof)\b", re.IGNORECASE),
                      "prove", "derive", "show that", "proof")
_MULTI_STEP = GuardedRegex(re.compile(
    r"\b(step[- ]by[- ]step|explain why|compare|contrast|analy[sz]e|design|trade-?offs?|justify|evaluate|"
    r"pros and cons|plan|strategy|architecture|first,? .{0,80}then|critique|in detail)\b",
    re.IGNORECASE | re.DOTALL,
), "step", "explain why", "compare", "contrast", "analy", "design", "trade", "justify", "evaluate", "pros and cons",
    "plan", "strategy", "architecture", "first", "critique", "in detail")
_FORMAT = GuardedRegex(re.compile(r"\b(json|yaml|xml|csv|markdown table|as a table|bullet points)\b", re.IGNORECASE),
                       "json", "yaml", "xml", "csv", "markdown table", "as a table", "bullet points")
_LIST_ITEM = re.compile(r"^\s*(\d+[.)]|[-*])\s+", re.MULTILINE)


@dataclass(frozen=True)
class Features:
    """Cheap, deterministic features of a request (no model call, no network)."""

    input_tokens: int
    prompt_tokens: int
    turns: int
    task_type: str | None
    code: bool
    math: bool
    proof: bool
    multi_step: int
    structured_output: bool
    questions: int
    list_items: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)  # every field is a scalar

    @classmethod
    def of(cls, request: dict[str, Any]) -> Features:
        prompt = prompt_text(request)
        lowered = prompt.lower()
        return cls(
            input_tokens=estimate_tokens(all_text(request)),
            prompt_tokens=estimate_tokens(prompt),
            turns=len(request["messages"]),
            task_type=request.get("task_type"),
            code=bool(_CODE.search(prompt, lowered)),
            math=bool(_MATH.search(prompt, lowered)),
            proof=bool(_PROOF.search(prompt, lowered)),
            multi_step=_MULTI_STEP.count(prompt, lowered),
            structured_output="response_format" in request or bool(_FORMAT.search(prompt, lowered)),
            questions=prompt.count("?"),
            list_items=len(_LIST_ITEM.findall(prompt)),
        )


@dataclass(frozen=True)
class Classification:
    complexity: str
    tier: Tier
    strategy: str
    score: float
    reason: str
    signals: dict[str, Any]
    # Learned router only: each tier's predicted chance of answering well (the scorer's prior).
    tier_probabilities: dict[str, float] | None = None
    # Learned router only: the numbers behind the start (predicted output tokens and cost per tier, gains,
    # utilities, the rule and its cost weight). Budget checks read expected_output_tokens.
    route_estimates: dict[str, Any] | None = None
    # Learned router only: the model that classified the request and its arm (routing/arms.py: ArmChoice.describe).
    model: dict[str, Any] | None = None
    # Strategies llm and learned+llm: what the LLM classifier said, or why it was not asked or not used, and what
    # its call cost (routing/llm_classifier.py: LlmVerdict.to_dict).
    llm: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        # Shallow: every field is a scalar or a flat/one-level dict built for this classification alone
        # (dataclasses.asdict deep-copies recursively, a third of the classifier step's time).
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["tier"] = self.tier.value
        for name in ("signals", "tier_probabilities", "route_estimates", "model"):
            if out[name] is not None:
                out[name] = dict(out[name])
        if self.llm is None:
            del out["llm"]  # only the strategies that may ask a classifier model record it
        return out

    @property
    def classification_usd(self) -> float:
        """What classifying cost: the LLM classifier's call, when one was made (no other router calls a model)."""
        return classifier_cost(self.llm)


def heuristic_complexity(features: Features) -> tuple[str, float, list[str]]:
    """Score the request's difficulty from its features; returns (label, score, reasons)."""
    score = 0.0
    reasons: list[str] = []

    def add(points: float, why: str) -> None:
        nonlocal score
        score += points
        reasons.append(f"{why} ({points:+g})")

    if features.task_type in SIMPLE_TASKS:
        add(-1, f"task_type={features.task_type}")
    elif features.task_type in MODERATE_TASKS:
        add(2, f"task_type={features.task_type}")
    elif features.task_type in COMPLEX_TASKS:
        add(3, f"task_type={features.task_type}")
    if features.code:
        add(2, "code")
    if features.math:
        add(2, "math")
    if features.proof:
        add(1, "proof/derivation")
    if features.multi_step:
        add(min(features.multi_step, 3), f"{features.multi_step} multi-step marker(s)")
    if features.list_items >= 3:
        add(1, f"{features.list_items} numbered/bulleted items")
    if features.questions >= 3:
        add(1, f"{features.questions} questions")
    if features.structured_output:
        add(1, "structured output requested")
    if features.input_tokens > 6000:
        add(2, f"long input (~{features.input_tokens} tokens)")
    elif features.input_tokens > 1500:
        add(1, f"long input (~{features.input_tokens} tokens)")
    if features.turns >= 5:
        add(1, f"{features.turns} turns")
    if score <= 0 and features.prompt_tokens < 30:
        add(-1, f"short prompt (~{features.prompt_tokens} tokens)")
    label = "simple" if score <= 1 else "moderate" if score <= 4 else "complex"
    if not reasons:
        reasons.append("no complexity markers")
    return label, score, reasons


@dataclass(frozen=True)
class CacheContext:
    """What a request's cachePoints make each tier's input cost (a simple model, docs/costs.md): the tier that
    answered the previous turn (``previous_tier``) holds the cache and reads the cached prefix at the cache-read
    price; any other tier whose model documents prompt caching pays the prefix at the cache-write price of the
    request's ttl (it writes the cache anew); a tier without documented caching pays it as plain input."""

    prefix_tokens: int
    ttl: str
    cacheable: frozenset[Tier]
    previous_tier: Tier | None = None

    @classmethod
    def of(cls, request: dict[str, Any], cacheable: frozenset[Tier]) -> CacheContext | None:
        prefix = cached_prefix_text(request)
        if prefix is None:
            return None
        previous = request.get("routing", {}).get("previous_tier")
        return cls(estimate_tokens(prefix), cache_ttl(request), cacheable, Tier(previous) if previous else None)

    def input_cost(self, tier: Tier, price: Price, input_tokens: int, output_tokens: int) -> float:
        prefix = min(self.prefix_tokens, input_tokens)
        if tier not in self.cacheable:
            return price.cost(input_tokens, output_tokens)
        if tier == self.previous_tier:
            return price.cost(input_tokens - prefix, output_tokens, cache_read_tokens=prefix)
        return price.cost(input_tokens - prefix, output_tokens, cache_write_tokens={self.ttl: prefix})

    def to_dict(self) -> dict[str, Any]:
        return {"prefix_tokens": self.prefix_tokens, "ttl": self.ttl,
                "cacheable": [t.value for t in TIER_ORDER if t in self.cacheable],
                "previous_tier": self.previous_tier.value if self.previous_tier else None}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> CacheContext | None:
        if not data:
            return None
        previous = data.get("previous_tier")
        return cls(int(data["prefix_tokens"]), str(data["ttl"]), frozenset(Tier(t) for t in data["cacheable"]),
                   Tier(previous) if previous else None)


@dataclass(frozen=True)
class RouteContext:
    """What a router may take into account besides the request: the tiers it may start at, and the
    confidence the workflow will ask of an answer."""

    tiers: tuple[Tier, ...]
    threshold: float
    # What a pre-call cost estimate needs (the learned router's cost-aware start rule).
    prices: dict[Tier, Price] | None = None
    max_tokens: int | None = None
    # The learned router's model and its arm for this request (steps/classify.py, from routing/arms.py);
    # None: the bundled model, unrecorded (offline callers).
    router_model: RouterModelChoice | None = None
    # The request's cachePoints and the tier holding their cache (None: it marks none).
    cache: CacheContext | None = None
    # Strategies llm and learned+llm: the classifier model (None: this caller has none, they fall back to learned)
    # and the learned router's decision margin below which learned+llm asks it.
    llm: LlmClassifier | None = None
    llm_margin: float = 0.05
    # The request's max_cost_usd: the classifier is not asked when its call would leave no room for an answer.
    budget: float | None = None


class LlmClassifier(Protocol):
    """The LLM classifier as the llm strategies use it (routing/llm_classifier.py: LlmClassifier)."""

    model_id: str

    def estimate(self, request: dict[str, Any]) -> tuple[int, float]: ...

    def ask(self, request: dict[str, Any]) -> LlmVerdict: ...


class Router(Protocol):
    """Pick the starting tier for a request. Must not call a model."""

    name: ClassVar[str]
    escalates: ClassVar[bool]

    def classify(self, request: dict[str, Any], features: Features, context: RouteContext) -> Classification: ...


class HeuristicRouter:
    """Content/complexity-based: features -> simple/moderate/complex -> Haiku/Sonnet/Opus."""

    name: ClassVar[str] = "heuristic"
    escalates: ClassVar[bool] = True

    def classify(self, request: dict[str, Any], features: Features, context: RouteContext) -> Classification:
        label, score, reasons = heuristic_complexity(features)
        tier = COMPLEXITY_TO_TIER[label]
        return Classification(label, tier, self.name, score, "; ".join(reasons), features.as_dict())


class LearnedRouter:
    """A model trained on recorded outcomes predicts, from the prompt, each tier's chance of answering well,
    its score gain over the economy tier and its answer length. With the cost-aware rule (the one training
    picked), start at the tier whose predicted quality best pays for its predicted extra cost at the
    threshold's price (:func:`cost_weight`); else at the cheapest tier predicted to do nearly as well as
    the best (the margin shrinks as the confidence threshold rises)."""

    name: ClassVar[str] = "learned"
    escalates: ClassVar[bool] = True

    def classify(self, request: dict[str, Any], features: Features, context: RouteContext) -> Classification:
        from model_router.routing.learned import load_tier_model  # the weights load on first use only

        label, score, reasons = heuristic_complexity(features)
        model, described = context.router_model() if context.router_model is not None else (load_tier_model(), None)
        if model is None:
            tier = COMPLEXITY_TO_TIER[label]
            why = "no learned weights shipped: heuristic route (" + "; ".join(reasons) + ")"
            return Classification(label, tier, self.name, score, why, features.as_dict(), model=described)
        prediction = model.predict_route(prompt_text(request))
        probabilities = prediction.probabilities
        estimates: dict[str, Any] = {"rule": "margin"}
        if prediction.output_tokens:
            estimates["expected_output_tokens"] = dict(prediction.output_tokens)
        prices, max_tokens = context.prices, context.max_tokens
        if prediction.rule == "cost" and prices is not None and max_tokens is not None:
            costs = {t.value: expected_cost(prices[t], features, max_tokens, prediction.output_tokens[t.value],
                                            tier=t, cache=context.cache)
                     for t in context.tiers}
            tier = cost_aware_start(prediction.utilities, costs, context.tiers, context.threshold)
            lam = cost_weight(context.threshold)
            sure = decision_margin("cost", context.tiers, context.threshold, probabilities=probabilities,
                                   utilities=prediction.utilities, costs=costs)
            estimates.update(
                rule="cost", blend=model.start_rule.get("blend"),
                lambda_per_usd=None if math.isinf(lam) else round(lam, 4),
                expected_cost_usd={k: round(v, 8) for k, v in costs.items()},
                gains={t.value: round(prediction.gains[t.value], 4) for t in context.tiers},
                utilities={t.value: round(prediction.utilities[t.value], 4) for t in context.tiers},
            )
            shown = "; ".join(
                f"{t.label} p {probabilities[t.value]:.2f} gain {prediction.gains[t.value]:+.2f} "
                f"~{prediction.output_tokens[t.value]} out tokens ${costs[t.value]:.5f}" for t in context.tiers)
            price = "nothing (threshold 0)" if math.isinf(lam) else f"{lam:.1f} per USD"
            why = (f"predicted {shown}: best predicted quality minus {price} x extra cost "
                   f"(threshold {context.threshold:.2f})")
        else:
            tier = start_tier(probabilities, context.tiers, context.threshold)
            sure = decision_margin("margin", context.tiers, context.threshold, probabilities=probabilities)
            shown = ", ".join(f"{t.label} {probabilities[t.value]:.2f}" for t in context.tiers)
            why = (f"predicted success {shown}: cheapest tier within {margin(context.threshold):.2f} of the best "
                   f"(threshold {context.threshold:.2f})")
        estimates["decision_margin"] = None if sure is None else round(sure, 6)
        return Classification(label, tier, self.name, score, why, features.as_dict(),
                              {t.value: round(probabilities[t.value], 4) for t in TIER_ORDER}, estimates,
                              described)


def margin(threshold: float) -> float:
    """How much lower a cheaper tier's predicted success may be and still be preferred.

    threshold 1.0 -> 0 (the best-predicted tier), 0.8 -> 0.1, 0.0 -> 0.5 (nearly always the cheapest).
    """
    return max(0.0, 1.0 - threshold) / 2


def start_tier(probabilities: dict[str, float], tiers: tuple[Tier, ...], threshold: float) -> Tier:
    """The cheapest of ``tiers`` predicted to do nearly as well as the best of them (within the margin)."""
    best = max(probabilities[t.value] for t in tiers)
    return next(t for t in tiers if probabilities[t.value] >= best - margin(threshold))


# The cost-aware start rule prices predicted quality in USD. At threshold t the router pays up to
# REFERENCE_COST_USD * t / (1 - t) of extra expected cost per unit of predicted recorded score (0..1):
# 1 cent at 0.5, 4 cents at 0.8 (the default), nothing at 0, anything at 1. One cent puts the curve's
# bend mid-range of the threshold sweep (half a cent crowded it towards 1: CV APGR 0.643 vs 0.650).
REFERENCE_COST_USD = 0.01


def cost_weight(threshold: float) -> float:
    """lam(t) = (1 - t) / t / REFERENCE_COST_USD: predicted score one USD of extra cost must buy.

    Monotone decreasing in the threshold: infinite at 0 (always the cheapest tier), 0 at 1 and above
    (the best-predicted tier whatever it costs).
    """
    if threshold <= 0:
        return math.inf
    return max(0.0, 1.0 - threshold) / threshold / REFERENCE_COST_USD


def cost_aware_start(utilities: dict[str, float], costs: dict[str, float], tiers: tuple[Tier, ...],
                     threshold: float) -> Tier:
    """The tier maximising ``utility - lam(threshold) * (cost - cost of the cheapest tier)``; ties go to
    the cheaper tier. ``utilities``: predicted quality per tier; ``costs``: the pre-call cost estimate."""
    lam = cost_weight(threshold)
    chosen = tiers[0]
    if math.isinf(lam):
        return chosen
    base = costs[chosen.value]
    best = utilities[chosen.value]
    for tier in tiers[1:]:
        value = utilities[tier.value] - lam * (costs[tier.value] - base)
        if value > best:
            chosen, best = tier, value
    return chosen


def decision_margin(rule: str, tiers: tuple[Tier, ...], threshold: float, *, probabilities: dict[str, float],
                    utilities: dict[str, float] | None = None, costs: dict[str, float] | None = None) -> float | None:
    """How sure the learned router's start is: how far its inputs are from picking another tier.

    None: nothing to decide (one tier; or threshold 0, where the cheapest tier starts whatever the predictions).
    Cost rule: the best tier's value ``utility - lam * (cost - cheapest's cost)`` minus the runner-up's.
    Margin rule: how near any tier's predicted success comes to the bar ``best - margin(threshold)``.
    ``learned+llm`` asks the LLM classifier below a bound on this (LlmClassifierMargin); the evaluation
    simulates that policy with this same function.
    """
    if len(tiers) < 2:
        return None
    if rule == "cost" and utilities is not None and costs is not None:
        lam = cost_weight(threshold)
        if math.isinf(lam):
            return None
        base = costs[tiers[0].value]
        values = sorted((utilities[t.value] - lam * (costs[t.value] - base) for t in tiers), reverse=True)
        return values[0] - values[1]
    bar = max(probabilities[t.value] for t in tiers) - margin(threshold)
    return min(abs(probabilities[t.value] - bar) for t in tiers)


class LlmRouter:
    """Ask a small model (the LLM classifier) whether the request is simple, moderate or complex and start at
    Haiku, Sonnet or Opus; the learned router's start when the classifier errs, times out, replies anything
    but one of those words, or is not allowed here. The scorer escalates as usual."""

    name: ClassVar[str] = "llm"
    escalates: ClassVar[bool] = True

    def classify(self, request: dict[str, Any], features: Features, context: RouteContext) -> Classification:
        estimate = context.llm.estimate(request) if context.llm is not None else None
        skip = _llm_not_needed(request, features, context, estimate)
        verdict = _ask_llm(request, context, skip)
        return _with_verdict(self.name, verdict, None, request, features, context, estimate)


class LearnedLlmRouter:
    """The learned router, and the LLM classifier only where the learned router is unsure: its decision margin
    (:func:`decision_margin`) below LlmClassifierMargin. Pays for a classifier call on those requests alone."""

    name: ClassVar[str] = "learned+llm"
    escalates: ClassVar[bool] = True

    def classify(self, request: dict[str, Any], features: Features, context: RouteContext) -> Classification:
        learned = LearnedRouter().classify(request, features, context)
        estimate = context.llm.estimate(request) if context.llm is not None else None
        sure = (learned.route_estimates or {}).get("decision_margin")
        bound = context.llm_margin
        if sure is None:
            skip: str | None = "the learned router had nothing to decide (one tier, or threshold 0)"
        elif sure >= bound:
            skip = f"the learned router is sure enough (decision margin {sure:.4f} >= {bound:g})"
        else:
            skip = _llm_not_needed(request, features, context, estimate)
        verdict = _ask_llm(request, context, skip).with_margin(sure, bound)
        return _with_verdict(self.name, verdict, learned, request, features, context, estimate)


def _llm_not_needed(request: dict[str, Any], features: Features, context: RouteContext,
                    estimate: tuple[int, float] | None) -> str | None:
    """Why a classifier call would be money for nothing on this request, if it would. ``estimate``: the call's
    (input tokens, USD) before it is made (None: no classifier)."""
    if "tier" in request:
        return "the caller named a start tier"
    if len(context.tiers) < 2:
        return f"only {context.tiers[0].label} is allowed"
    if context.budget is not None and estimate is not None and context.prices is not None:
        classifier_usd = estimate[1]
        cheapest = expected_cost(context.prices[context.tiers[0]], features, context.max_tokens or 1,
                                 tier=context.tiers[0], cache=context.cache)
        if classifier_usd + cheapest > context.budget:
            return (f"max_cost_usd={context.budget} leaves no room for a classifier call (~${classifier_usd:.6f}) "
                    f"and a {context.tiers[0].label} answer (~${cheapest:.6f})")
    return None


def _ask_llm(request: dict[str, Any], context: RouteContext, skip: str | None) -> LlmVerdict:
    if context.llm is None:
        return not_asked("", "no LLM classifier is configured for this caller", kind="not_allowed")
    if skip is not None:
        return not_asked(context.llm.model_id, skip)
    return context.llm.ask(request)


def _with_verdict(name: str, verdict: LlmVerdict, learned: Classification | None, request: dict[str, Any],
                  features: Features, context: RouteContext, estimate: tuple[int, float] | None) -> Classification:
    """The classification a verdict gives: its tier when the classifier was used, else the learned router's."""
    if learned is None and verdict.tier is None:
        learned = LearnedRouter().classify(request, features, context)
    tier = verdict.tier
    if tier is not None:
        assert verdict.verdict is not None
        why = f"LLM classifier {verdict.model_id} ({verdict.prompt_version}) said {verdict.verdict}"
        if verdict.learned_margin is not None:
            why += f" (asked: learned decision margin {verdict.learned_margin:.4f} < {verdict.margin_bound:g})"
        complexity, score = verdict.verdict, heuristic_complexity(features)[1]
    else:
        assert learned is not None
        tier, complexity, score = learned.tier, learned.complexity, learned.score
        if verdict.outcome == "fallback":
            why = f"LLM classifier not used ({verdict.fallback_kind}: {verdict.reason}); learned: {learned.reason}"
        else:
            why = f"{learned.reason}; LLM classifier not asked: {verdict.reason}"
    estimates = dict(learned.route_estimates or {}) if learned else {}
    if context.llm is not None and estimate is not None:
        # What one classifier call costs on this request, asked or not (route shows it; the real cost is in llm).
        estimates["llm_classifier"] = {"model_id": context.llm.model_id, "input_tokens": estimate[0],
                                       "expected_cost_usd": round(estimate[1], 8)}
    return Classification(
        complexity, tier, name, score, why, features.as_dict(),
        learned.tier_probabilities if learned else None, estimates or None,
        learned.model if learned else None, verdict.to_dict())


class CascadeRouter:
    """Start at the cheapest allowed tier and let the scorer escalate (FrugalGPT-style cascade)."""

    name: ClassVar[str] = "cascade"
    escalates: ClassVar[bool] = True

    def classify(self, request: dict[str, Any], features: Features, context: RouteContext) -> Classification:
        label, score, reasons = heuristic_complexity(features)
        why = f"cascade starts at the cheapest tier (complexity {label}: {'; '.join(reasons)})"
        return Classification(label, context.tiers[0], self.name, score, why, features.as_dict())


class StaticRouter:
    """Always the caller's tier (or Sonnet): no escalation, fallback only."""

    name: ClassVar[str] = "static"
    escalates: ClassVar[bool] = False

    def classify(self, request: dict[str, Any], features: Features, context: RouteContext) -> Classification:
        label, score, _ = heuristic_complexity(features)
        tier = Tier(request.get("tier", Tier.SONNET.value))
        return Classification(label, tier, self.name, score, f"static route to {tier.label}", features.as_dict())


ROUTERS: dict[str, type[Router]] = {
    HeuristicRouter.name: HeuristicRouter,
    LearnedRouter.name: LearnedRouter,
    CascadeRouter.name: CascadeRouter,
    StaticRouter.name: StaticRouter,
    LlmRouter.name: LlmRouter,
    LearnedLlmRouter.name: LearnedLlmRouter,
}


def expected_cost(price: Price, features: Features, max_tokens: int, output_tokens: int | None = None, *,
                  tier: Tier | None = None, cache: CacheContext | None = None) -> float:
    """A call's pre-call cost estimate: the request's input tokens and ``output_tokens`` (the learned
    model's prediction for the tier) or else EXPECTED_OUTPUT_TOKENS, at most ``max_tokens``; with ``cache``, the
    cached prefix priced as ``tier`` would pay it (:class:`CacheContext`)."""
    output = min(max_tokens, expected_output(output_tokens))
    if cache is None or tier is None:
        return price.cost(features.input_tokens, output)
    return cache.input_cost(tier, price, features.input_tokens, output)


def expected_output(output_tokens: int | None) -> int:
    return EXPECTED_OUTPUT_TOKENS if output_tokens is None else output_tokens


def allowed_tiers(routing: dict[str, Any]) -> tuple[Tier, ...]:
    """The tiers a request may use, cheapest first: ``routing.tiers`` within ``min_tier``..``max_tier``."""
    low = Tier(routing.get("min_tier", TIER_ORDER[0].value))
    high = Tier(routing.get("max_tier", TIER_ORDER[-1].value))
    named = {Tier(t) for t in routing.get("tiers", [t.value for t in TIER_ORDER])}
    return tuple(t for t in TIER_ORDER if low.rank <= t.rank <= high.rank and t in named)


def plan_route(
    request: dict[str, Any],
    *,
    default_strategy: str,
    default_threshold: float,
    prices: dict[Tier, Price],
    max_output_tokens: int,
    available: frozenset[Tier] | None = None,
    unavailable_reason: str = "",
    router_model: RouterModelChoice | None = None,
    cacheable: frozenset[Tier] = frozenset(),
    llm: LlmClassifier | None = None,
    llm_margin: float = 0.05,
) -> tuple[Classification, dict[str, Any]]:
    """Classify ``request`` (already validated) and return (classification, plan). ``available``: the tiers
    the model provider can answer this request on, when not all (providers.tier_limit), and why.
    ``router_model``: picks the learned router's model and arm (called only when that router runs).
    ``cacheable``: the tiers whose model documents prompt caching (model_features), for requests with cachePoints.
    ``llm``, ``llm_margin``: the LLM classifier of strategies llm and learned+llm (asked only when they run)."""
    routing = request.get("routing", {})
    strategy = routing.get("strategy", default_strategy)
    router = ROUTERS[strategy]()
    threshold = float(routing.get("confidence_threshold", default_threshold))
    tiers = allowed_tiers(routing)
    if not tiers:
        raise InvalidRequest("routing.tiers", "no tier is left once min_tier and max_tier are applied")
    notes: list[str] = []
    if available is not None and not set(tiers) <= available:
        kept = tuple(t for t in tiers if t in available)
        if not kept:
            raise InvalidRequest("routing.tiers", f"none of the allowed tiers ({', '.join(t.value for t in tiers)}) "
                                                  f"can answer this request: {unavailable_reason}")
        tiers = kept
        notes.append(unavailable_reason)
    features = Features.of(request)
    max_tokens = request.get("inference", {}).get("maxTokens", max_output_tokens)
    cache = CacheContext.of(request, cacheable)
    budget = routing.get("max_cost_usd")
    found = router.classify(request, features,
                            RouteContext(tiers, threshold, prices, max_tokens, router_model, cache, llm, llm_margin,
                                         budget))
    tier, reasons = found.tier, [found.reason]
    if found.llm and found.llm.get("note"):
        notes.append(found.llm["note"])  # replay: the verdict was scripted or recorded, not a model's
    predicted = (found.route_estimates or {}).get("expected_output_tokens") or {}

    def cost(t: Tier, with_cache: bool = True) -> float:
        return expected_cost(prices[t], features, max_tokens, predicted.get(t.value), tier=t,
                             cache=cache if with_cache else None)

    if "tier" in request and strategy != "static":
        tier = Tier(request["tier"])
        reasons.append(f"caller override: start at {tier.label}")
    if tier.rank < tiers[0].rank:
        reasons.append(f"raised to min_tier {tiers[0].label}")
        tier = tiers[0]
    elif tier.rank > tiers[-1].rank:
        reasons.append(f"capped at max_tier {tiers[-1].label}")
        tier = tiers[-1]
    elif tier not in tiers:
        # The nearest allowed tier above the one asked for (one exists: tier is below the top).
        moved = next(t for t in tiers if t.rank > tier.rank)
        where = "routing.tiers" if tier not in allowed_tiers(routing) else "the tiers that can answer it"
        reasons.append(f"{tier.label} is not in {where}: start at {moved.label}")
        tier = moved

    previous = cache.previous_tier if cache and cache.previous_tier in cache.cacheable else None
    if (previous is not None and previous in tiers and previous != tier and "tier" not in request
            and strategy != StaticRouter.name):
        # A cheaper tier only pays if it beats the tier holding the cache, whose prefix reads cost a tenth.
        stay, move = cost(previous), cost(tier)
        if tier.rank < previous.rank and stay <= move:
            reasons.append(f"stays on {previous.label}, which holds the prompt cache: ~${stay:.6f} there vs "
                           f"~${move:.6f} on {tier.label} after a switch that rewrites the cache")
            tier = previous
        else:
            reasons.append(f"moves from {previous.label} (cache holder, ~${stay:.6f}) to {tier.label} (~${move:.6f} "
                           "including the cache write)")

    if budget is not None:
        # The classifier's call is paid already: the answer gets what is left of the budget (it was asked only
        # when its estimate left room for the cheapest tier; should the real call have cost more, that tier).
        left = budget - found.classification_usd
        affordable = [t for t in tiers if t.rank <= tier.rank and cost(t) <= left]
        if not affordable and cost(tiers[0]) <= budget:
            affordable = [tiers[0]]
        if not affordable:
            cheapest = cost(tiers[0])
            output = min(max_tokens, expected_output(predicted.get(tiers[0].value)))
            raise InvalidRequest(
                "routing.max_cost_usd",
                f"{budget} is below the estimated ${cheapest:.6f} of one {tiers[0].label} call "
                f"(~{features.input_tokens} input + {output} output tokens)",
            )
        if affordable[-1] != tier:
            reasons.append(f"stepped down to {affordable[-1].label} to fit max_cost_usd={budget}")
            tier = affordable[-1]

    estimates = found.route_estimates
    if cache is not None:
        # Each tier's estimate with the cache (as the tier would pay it) and without (every token as input).
        estimates = dict(estimates or {})
        estimates["cache"] = {**cache.to_dict(), "expected_cost_usd": {
            t.value: {"with_cache": round(cost(t), 8), "without_cache": round(cost(t, with_cache=False), 8)}
            for t in tiers}}
    classification = Classification(
        found.complexity, tier, strategy, found.score, "; ".join(reasons) + f" -> {tier.label}", found.signals,
        found.tier_probabilities, estimates, found.model, found.llm,
    )
    plan = {
        "threshold": threshold,
        "max_cost_usd": budget,
        "tiers": [t.value for t in tiers],
        "min_tier": tiers[0].value,
        "max_tier": tiers[-1].value,
        "escalate": bool(routing.get("escalate", router.escalates)),
        "fallback": bool(routing.get("fallback", True)),
        "max_tokens": max_tokens,
    }
    if cache is not None:
        plan["cache"] = cache.to_dict()  # every later cost estimate (decide.expected_attempt_cost) prices it the same
    if notes:
        plan["notes"] = notes  # copied into the result's notes (decisions._accept)
    return classification, plan
