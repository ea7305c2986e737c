"""Evaluate routing policies on recorded outcomes: quality, cost, and the cost-quality curve.

Kept apart from serving. Each record is prepared once (what every tier would answer, cost and score,
the classifiers' predictions, the scorer's confidence in each answer); policies are then swept over
thresholds analytically with the same decision rules as src/model_router/steps/decide.py. The workflow
module re-runs the operating points through the real state machine and checks the two agree.

Replayed answers of real models stand in for Claude tiers (datasets.STAND_IN_NOTE).

Outcome records (a deployment's own traffic, source "shadow": replay.outcome_records) are prepared the same
way with their recorded costs, the route the caller got (the "as routed" policy) and a weight of
1 / sample_probability; a tier whose score is null is left out of ``score``; without a prompt, the learned
router predicts from the record's hashed features and the policies that read text are not available.
"""

from __future__ import annotations

import hashlib
import random
import statistics
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from model_router.contracts.request import validate_request
from model_router.pricing import Price, estimate_tokens
from model_router.routing.llm_classifier import CLASSIFIER_OVERHEAD_TOKENS, CLASSIFIER_REPLY_TOKENS, classified_text
from model_router.routing.plan import (
    Features,
    cost_aware_start,
    decision_margin,
    expected_cost,
    heuristic_complexity,
    margin,
    start_tier,
)
from model_router.scoring.score import score_answer
from model_router.tiers import COMPLEXITY_TO_TIER, TIER_ORDER, TIER_TO_COMPLEXITY, Tier
from model_router_tools.replay.datasets import (
    CORRECT,
    TierMap,
    cheapest_right_tier,
    is_holdout,
    outcome_is_holdout,
    read_records,
    tier_maps,
)
from model_router_tools.replay.outcome_records import (
    OutcomeSet,
    is_outcome_dataset,
    load_outcomes,
    record_features,
    record_signals,
    record_tiers,
    sample_weight,
)
from model_router_tools.replay.provider import normalise, recorded_reply

# Thresholds swept for every policy that has one; above 1 nothing is ever confident enough.
THRESHOLDS: tuple[float, ...] = (*(round(i / 50, 2) for i in range(51)), 1.01)

Predictor = Callable[[list[str]], list[dict[str, float]]]

LLM_ACCURACY = 0.8  # the simulated verdict's default accuracy (eval --llm-accuracy)
LLM_MARGIN = 0.05  # learned+llm asks below this decision margin: the deployment's LlmClassifierMargin default
_VERDICT_SEED = "model-router-llm-verdict:"  # fixed: the same record gets the same draw in every run


@dataclass
class Case:
    """One recorded request, with what each of its tiers would do."""

    record_id: str
    source: str
    task: str
    prompt: str | None  # None: an outcome record without StoreShadowPrompts
    tiers: tuple[Tier, ...]
    score: dict[Tier, float]  # an outcome record's tier without a score (failed, or unjudged) is absent
    cost: dict[Tier, float]
    expected: dict[Tier, float]  # the pre-call estimate budget checks use (empty: no features to estimate from)
    complexity: str
    heuristic_tier: Tier
    signals: dict[str, Any]  # the classifier's features of the request (empty: unknown)
    answers_recorded: bool
    # Which model answered for each tier (the source's tier map, or an outcome record's meta.tiers).
    models: dict[Tier, str] = field(default_factory=dict)
    # Outcome records: 1 / sample_probability (every mean is weighted by it), the router's hashed prompt
    # features, the route the caller got (start tier first, the answering tier last) and the sampler.
    weight: float = 1.0
    hashed: dict[int, float] | None = None
    routed: Outcome | None = None
    sampler: str | None = None
    # classifier name -> tier -> predicted chance of success
    probabilities: dict[str, dict[Tier, float]] = field(default_factory=dict)
    # prior mode ("gap" or a classifier name) -> tier -> the scorer's confidence in that tier's answer
    confidence: dict[str, dict[Tier, float]] = field(default_factory=dict)
    # classifier name -> tier -> its own pre-call cost estimate (the learned model's predicted output length)
    predicted_cost: dict[str, dict[Tier, float]] = field(default_factory=dict)
    # classifier name -> tier -> the utility its cost-aware start rule weighs (absent: the margin rule)
    utilities: dict[str, dict[Tier, float]] = field(default_factory=dict)
    # What the LLM classifier reads of the request, in tokens (the text it is sent, without its instructions;
    # None: neither a prompt nor the request's features to estimate it from).
    classified_tokens: int | None = None


@dataclass(frozen=True)
class Policy:
    name: str
    description: str
    start: str  # "fixed:<tier>", "heuristic", "cheapest", "oracle" or a classifier name
    escalate: bool = False
    prior: str = "gap"  # which confidences the scorer sees: "gap" or a classifier name
    capped: bool = False
    thresholded: bool = True
    # The router strategy that runs this policy in the real workflow (None: analytic only).
    strategy: str | None = None
    # The simulated LLM classifier (the llm and learned+llm strategies; None: not asked).
    llm: LlmClassifier | None = None


@dataclass(frozen=True)
class LlmClassifier:
    """The LLM classifier as the evaluation simulates it (:func:`llm_verdict`): ``ask`` "always" (the llm
    strategy) or "below-margin" (learned+llm: only when the learned router's decision margin is below
    ``margin``); its verdict is right with probability ``accuracy``; each call is priced at ``price`` (the
    classifier model's; None: the policy cannot be simulated until the report sets it)."""

    ask: str  # "always" or "below-margin"
    accuracy: float = LLM_ACCURACY
    margin: float = LLM_MARGIN
    price: Price | None = None

    def call_cost(self, case: Case) -> float:
        """One classifier call as the runtime estimates it (llm_classifier.estimated_cost): the text it reads and
        its instructions in, a one-word verdict out."""
        if self.price is None:
            raise ValueError("the LLM classifier has no price: set LlmClassifier.price")
        if case.classified_tokens is None:
            raise ValueError(f"{case.record_id}: no prompt or features to price the LLM classifier's call on")
        return self.price.cost(case.classified_tokens + CLASSIFIER_OVERHEAD_TOKENS, CLASSIFIER_REPLY_TOKENS)


@dataclass
class Outcome:
    tier: Tier
    attempts: list[Tier]
    cost: float  # everything the request paid: the models and, when it was asked, the LLM classifier
    status: str
    classifier_cost: float | None = None  # the LLM classifier's call (included in ``cost``); None: not asked


def true_label(case: Case) -> Tier:
    """What a perfect LLM classifier would answer: the cheapest tier whose recorded answer is right (the oracle's
    pick), or the premium tier when none is (a request nobody answers right is "complex"); the replay classifier's
    recorded verdict (replay.classifier.recorded_verdict) on the case's tiers."""
    return cheapest_right_tier(case.score, case.tiers) or case.tiers[-1]


def llm_verdict(case: Case, accuracy: float) -> Tier:
    """The simulated LLM classifier's verdict: the true label with probability ``accuracy``, else one of the
    case's other tiers uniformly. The draw comes from an RNG seeded by the record id alone, so a record gets the
    same verdict in every run and whatever the row order; and the same uniform draw at every accuracy, so a
    verdict right at accuracy A stays right at any higher one.

    Generous on purpose: the real classifier reads only the prompt, and its mistakes follow difficulty (hard
    requests it calls simple), where these are uniform and blind to it."""
    truth = true_label(case)
    others = [t for t in case.tiers if t != truth]
    rng = random.Random(int(hashlib.sha256((_VERDICT_SEED + case.record_id).encode("utf-8")).hexdigest()[:16], 16))
    if rng.random() < accuracy or not others:
        return truth
    return rng.choice(others)


def prepare(
    paths: Iterable[str | Path],
    *,
    prices: dict[Tier, Price],
    split: str = "holdout",
    max_output_tokens: int = 2048,
    limit: int | None = None,
    loaded: Mapping[str, OutcomeSet] | None = None,
) -> list[Case]:
    """Load records (``split``: holdout, fit or all) and compute what each tier would cost and score.

    Outcome records (:func:`is_outcome_dataset`) are read from ``loaded`` when given there by path, else
    loaded; their split comes from the prompt hash (:func:`outcome_is_holdout`) and repeated prompts are
    all kept (each is a request the deployment answered)."""
    cases: list[Case] = []
    for path in paths:
        if str(path) in (loaded or {}) or is_outcome_dataset(path):
            outcomes = (loaded or {}).get(str(path)) or load_outcomes(path)
            for record in outcomes.records:
                if split != "all" and outcome_is_holdout(record) != (split == "holdout"):
                    continue
                cases.append(outcome_case(record, prices, max_output_tokens))
                if limit and len(cases) >= limit:
                    return cases
            continue
        maps = tier_maps(str(path))
        seen: set[str] = set()
        for record in read_records(path):
            key = normalise(record["prompt"])
            # The replay provider answers a repeated prompt with its first record: evaluate that one only.
            if key in seen or (split != "all" and is_holdout(record["prompt"]) != (split == "holdout")):
                continue
            seen.add(key)
            case = _case(record, maps[record["source"]], prices, max_output_tokens)
            if case is not None:
                cases.append(case)
            if limit and len(cases) >= limit:
                return cases
    return cases


def _case(record: dict[str, Any], tier_map: TierMap, prices: dict[Tier, Price], max_tokens: int) -> Case | None:
    try:
        request = validate_request({"prompt": record["prompt"]})
    except ValueError:
        return None  # a prompt the router rejects (counted by the caller as not evaluable)
    features = Features.of(request)
    complexity, _, _ = heuristic_complexity(features)
    tiers = tuple(tier_map.recorded_tiers)
    score: dict[Tier, float] = {}
    cost: dict[Tier, float] = {}
    answers = True
    input_tokens = estimate_tokens(record["prompt"])
    for tier in tiers:
        outcome = record["outcomes"][tier_map.models[tier]]
        score[tier] = float(outcome["score"])
        text = outcome.get("response")
        answers = answers and isinstance(text, str)
        reply = recorded_reply(text or "", isinstance(text, str), record["task"], max_tokens)
        cost[tier] = prices[tier].cost(input_tokens, reply.output_tokens)
    return Case(
        record_id=record["id"],
        source=record["source"],
        task=record["task"],
        prompt=record["prompt"],
        tiers=tiers,
        score=score,
        cost=cost,
        expected={t: expected_cost(prices[t], features, max_tokens) for t in tiers},
        complexity=complexity,
        heuristic_tier=COMPLEXITY_TO_TIER[complexity],
        signals=asdict(features),
        answers_recorded=answers,
        models={t: tier_map.models[t] for t in tiers},
        classified_tokens=estimate_tokens(classified_text(request)),
    )


def _features_of(record: dict[str, Any]) -> Features | None:
    """The request's features: the classifier's own (meta.features.signals), else from the stored prompt."""
    signals = record_signals(record)
    if signals is not None:
        try:
            return Features(**signals)
        except TypeError:
            pass  # signals of another shape: not the classifier's features
    if isinstance(record.get("prompt"), str):
        try:
            return Features.of(validate_request({"prompt": record["prompt"]}))
        except ValueError:
            return None
    return None


def outcome_case(record: dict[str, Any], prices: dict[Tier, Price], max_tokens: int = 2048) -> Case:
    """One outcome record (checked by load_outcomes) as a Case: recorded costs and scores, the route the
    caller got, its weight. ``prices`` only price the pre-call estimates budget checks use."""
    models = record_tiers(record)
    tiers = tuple(models)
    outcomes = {t: record["outcomes"][models[t]] for t in tiers}
    features = _features_of(record)
    complexity = heuristic_complexity(features)[0] if features is not None else "unknown"
    route = record["meta"]["route"]
    routed_tier, start = Tier(route["tier"]), Tier(route["start_tier"])
    attempts = int(route.get("attempts", 1))
    # Only the number of attempts and the first and last tier are recorded: the trail's length is what counts.
    trail = [start] + [routed_tier] * (attempts - 1) if attempts > 1 else [routed_tier]
    return Case(
        record_id=record["id"],
        source=record["source"],
        task=record["task"],
        prompt=record["prompt"],
        tiers=tiers,
        score={t: float(o["score"]) for t, o in outcomes.items() if o["score"] is not None},
        cost={t: float(o["cost_usd"]) for t, o in outcomes.items()},
        expected={t: expected_cost(prices[t], features, max_tokens) for t in tiers} if features is not None else {},
        complexity=complexity,
        heuristic_tier=COMPLEXITY_TO_TIER.get(complexity, tiers[-1]),
        signals=asdict(features) if features is not None else {},
        answers_recorded=all(isinstance(o.get("response"), str) for o in outcomes.values()),
        models=models,
        weight=sample_weight(record),
        hashed=record_features(record),
        routed=Outcome(routed_tier, trail, float(route["cost_usd"]), str(route.get("status") or "answered")),
        sampler=record["meta"]["sampler"],
        classified_tokens=_classified_tokens(record, features),
    )


def _classified_tokens(record: dict[str, Any], features: Features | None) -> int | None:
    """What the LLM classifier would read of an outcome record's request: its prompt, else (no prompt stored) the
    whole request's input tokens (an over-estimate for a long conversation: the classifier reads its last turn)."""
    if isinstance(record.get("prompt"), str):
        try:
            return estimate_tokens(classified_text(validate_request({"prompt": record["prompt"]})))
        except ValueError:
            pass
    return features.input_tokens if features is not None else None


def add_predictions(cases: list[Case], name: str, predict: Predictor) -> None:
    """Attach a classifier's per-tier success predictions (``predict`` takes prompts, returns dicts); cases
    without a prompt get none, and neither does a case with a tier the classifier predicts nothing for (a
    router fitted where no model was recorded for that tier has no head for it)."""
    texts = [c for c in cases if c.prompt is not None]
    for case, probabilities in zip(texts, predict([c.prompt for c in texts if c.prompt is not None]), strict=True):
        _attach(case, name, probabilities)


def _attach(case: Case, name: str, probabilities: Mapping[str, float]) -> bool:
    """Store the predictions of the tiers the classifier has; False (nothing stored) when it lacks one of the
    case's tiers."""
    if any(t.value not in probabilities for t in case.tiers):
        return False
    case.probabilities[name] = {t: float(probabilities[t.value]) for t in TIER_ORDER if t.value in probabilities}
    return True


def add_learned(cases: list[Case], model: Any, prices: dict[Tier, Price], max_tokens: int = 2048,
                name: str = "learned") -> None:
    """The learned router's predictions as the Classifier Lambda makes them: success probabilities, and
    where the model has them, its pre-call cost estimates and the utilities of its cost-aware rule.

    An outcome record without a prompt is predicted from its hashed features (the same vector the prompt
    gives); one without them, or without the signals a cost estimate needs, gets no prediction."""
    for case in cases:
        if case.prompt is not None:
            prediction = model.predict_route(case.prompt)
        elif case.hashed is not None:
            prediction = model.predict_route_features(case.hashed)
        else:
            continue
        if prediction.output_tokens and not case.signals:
            continue  # the cost estimates need the request's features (its input tokens)
        if not _attach(case, name, prediction.probabilities):
            continue  # a model fitted without one of this case's tiers
        if prediction.output_tokens and all(t.value in prediction.output_tokens for t in case.tiers):
            features = Features(**case.signals)
            case.predicted_cost[name] = {t: expected_cost(prices[t], features, max_tokens,
                                                          prediction.output_tokens[t.value]) for t in case.tiers}
        if prediction.rule == "cost" and name in case.predicted_cost:
            case.utilities[name] = {t: prediction.utilities[t.value] for t in TIER_ORDER
                                    if t.value in prediction.utilities}


def add_confidences(cases: list[Case], records_by_id: dict[str, dict[str, Any]], paths_by_source: dict[str, str],
                    prior: str, max_tokens: int = 2048, complexity: str | None = None) -> None:
    """The scorer's confidence in each tier's recorded answer, as the Scorer Lambda computes it (not for a
    case without a prompt: the scorer reads it). ``complexity``: the label the classification carries when an
    LLM classifier's verdict set it (stored as ``verdict_key(prior, complexity)``; only for cases with that
    label's tier); else the case's own (the heuristic's, which the learned router records too)."""
    for case in cases:
        if case.prompt is None or (prior != "gap" and prior not in case.probabilities):
            continue  # no prompt to score against, or no prediction to take the prior from
        if complexity is not None and COMPLEXITY_TO_TIER[complexity] not in case.tiers:
            continue  # a verdict the case's tiers cannot give
        record = records_by_id[case.record_id]
        models = case.models or tier_maps(paths_by_source[case.source])[case.source].models
        confidences: dict[Tier, float] = {}
        for tier in case.tiers:
            text = record["outcomes"][models[tier]].get("response")
            reply = recorded_reply(text or "", isinstance(text, str), case.task, max_tokens)
            kwargs: dict[str, Any] = {}
            if prior != "gap":
                kwargs["prior"] = case.probabilities[prior][tier]
            if not isinstance(text, str):
                kwargs["answer_recorded"] = False
            confidences[tier] = score_answer(
                reply.text,
                stop_reason=reply.stop_reason,
                tier=tier,
                prompt=case.prompt,
                complexity=complexity or case.complexity,
                signals=case.signals,
                **kwargs,
            ).confidence
        case.confidence[prior if complexity is None else verdict_key(prior, complexity)] = confidences


def verdict_key(prior: str, complexity: str) -> str:
    """Where the scorer's confidences are kept when an LLM verdict set the classification's complexity (the
    scorer's prior without tier probabilities, and its "too short for a ... request" check, read it)."""
    return f"{prior}@{complexity}"


def add_verdict_confidences(cases: list[Case], records_by_id: dict[str, dict[str, Any]],
                            paths_by_source: dict[str, str], prior: str, max_tokens: int = 2048) -> None:
    """:func:`add_confidences` for every verdict an LLM classifier could give (the llm and learned+llm policies)."""
    for complexity in COMPLEXITY_TO_TIER:
        add_confidences(cases, records_by_id, paths_by_source, prior, max_tokens, complexity)


def simulate(case: Case, policy: Policy, threshold: float, cap: float | None = None) -> Outcome:
    """One request under one policy: the same decisions decisions.score_step makes, without the workflow."""
    tiers = case.tiers
    if policy.start == "routed":  # what the deployment did (outcome records)
        if case.routed is None:
            raise ValueError(f"{case.record_id}: no recorded route")
        return case.routed
    if policy.start.startswith("fixed:"):
        tier = Tier(policy.start.split(":", 1)[1])
        tier = tier if tier in tiers else next((t for t in tiers if t.rank > tier.rank), tiers[-1])
        return Outcome(tier, [tier], case.cost[tier], "answered")
    if policy.start == "oracle":
        tier = next((t for t in tiers if case.score[t] >= CORRECT), tiers[0])
        return Outcome(tier, [tier], case.cost[tier], "answered")
    if policy.start == "heuristic":
        wanted = case.heuristic_tier
        tier = wanted if wanted in tiers else next((t for t in tiers if t.rank > wanted.rank), tiers[-1])
    elif policy.start == "cheapest":
        tier = tiers[0]
    elif policy.start in case.utilities:  # routing.LearnedRouter's cost-aware rule
        costs = {t.value: c for t, c in case.predicted_cost[policy.start].items()}
        tier = cost_aware_start({t.value: u for t, u in case.utilities[policy.start].items()}, costs, tiers,
                                threshold)
    else:
        probabilities = {t.value: p for t, p in case.probabilities[policy.start].items()}
        tier = start_tier(probabilities, tiers, threshold)
    classifier_cost: float | None = None
    scored_as = policy.prior  # which confidences the scorer gives (the verdict's label changes them)
    if policy.llm is not None and _asks_llm(case, policy, policy.llm, threshold):
        tier = llm_verdict(case, policy.llm.accuracy)
        classifier_cost = policy.llm.call_cost(case)
        scored_as = verdict_key(policy.prior, TIER_TO_COMPLEXITY[tier])
    # Budget checks use the router's own estimate where it has one (the learned model's output lengths).
    expected = case.predicted_cost.get(policy.start, case.expected)
    if cap is not None:
        affordable = [t for t in tiers if t.rank <= tier.rank and expected[t] <= cap]
        if not affordable:
            return Outcome(tiers[0], [], 0.0, "rejected")
        tier = affordable[-1]

    confidences = case.confidence.get(scored_as)
    if confidences is None and not policy.escalate:
        # The start tier answers whatever its confidence (a record without a prompt has none).
        return Outcome(tier, [tier], case.cost[tier] + (classifier_cost or 0.0), "answered", classifier_cost)
    if confidences is None:
        raise ValueError(f"{case.record_id}: no {scored_as} confidences to escalate on")
    attempts: list[Tier] = []
    spent = classifier_cost or 0.0
    best: tuple[Tier, float] | None = None
    while True:
        attempts.append(tier)
        spent += case.cost[tier]
        confidence = confidences[tier]
        if best is None or confidence >= best[1]:
            best = (tier, confidence)
        if confidence >= threshold:
            return Outcome(tier, attempts, spent, "answered", classifier_cost)
        higher = [t for t in tiers if t.rank > tier.rank] if policy.escalate else []
        if cap is not None and higher and spent + expected[higher[0]] > cap:
            return Outcome(best[0], attempts, spent, "budget_capped", classifier_cost)
        # The scorer's prior and this stop read the same predictions (the classification's tier_probabilities).
        predicted = case.probabilities.get(policy.prior)
        if higher and predicted is not None and predicted[higher[0]] < confidence + margin(threshold):
            return Outcome(best[0], attempts, spent, "answered_low_confidence", classifier_cost)
        if not higher:
            return Outcome(best[0], attempts, spent, "answered_low_confidence", classifier_cost)
        tier = higher[0]


def _asks_llm(case: Case, policy: Policy, llm: LlmClassifier, threshold: float) -> bool:
    """Whether the LLM classifier is asked: always (llm), or when the learned router's start is a close call
    (learned+llm: its decision margin, computed as routing.LearnedRouter does, below ``llm.margin``; None, nothing
    to decide, never asks)."""
    if len(case.tiers) < 2:
        return False  # one tier allowed: nothing to ask about
    if llm.ask == "always":
        return True
    if policy.start in case.utilities:  # the cost-aware rule: utilities and pre-call costs
        sure = decision_margin("cost", case.tiers, threshold,
                               probabilities={t.value: p for t, p in case.probabilities[policy.start].items()},
                               utilities={t.value: u for t, u in case.utilities[policy.start].items()},
                               costs={t.value: c for t, c in case.predicted_cost[policy.start].items()})
    else:
        sure = decision_margin("margin", case.tiers, threshold,
                               probabilities={t.value: p for t, p in case.probabilities[policy.start].items()})
    return sure is not None and sure < llm.margin


@dataclass
class Point:
    threshold: float | None
    quality: float
    cost_usd: float
    cost_fraction: float
    tier_share: dict[str, float]
    escalation_rate: float
    attempts_per_request: float
    rejected: float
    classifier_call_rate: float = 0.0  # share of requests the LLM classifier was asked on
    classifier_cost_usd: float = 0.0  # its calls' weighted total (included in cost_usd)


def per_request(cases: list[Case], policy: Policy, threshold: float | None,
                cap: float | None = None) -> tuple[list[float], list[float]]:
    """Each request's cost in USD and recorded quality under ``policy`` (a rejected request scores 0),
    unweighted: callers weigh them by ``case.weight``."""
    outcomes = [simulate(c, policy, threshold if threshold is not None else 1.0, cap) for c in cases]
    return ([o.cost for o in outcomes],
            [c.score[o.tier] if o.status != "rejected" else 0.0 for c, o in zip(cases, outcomes, strict=True)])


def evaluate(cases: list[Case], policy: Policy, threshold: float | None, premium_cost: float,
             cap: float | None = None) -> Point:
    """The policy's means over ``cases``, each case weighted by ``case.weight`` (self-normalised: a weighted
    mean divides by the total weight; with every weight 1 these are plain means). ``cost_usd`` is the
    weighted total and ``premium_cost`` must be weighted the same way."""
    outcomes = [simulate(c, policy, threshold if threshold is not None else 1.0, cap) for c in cases]
    pairs = list(zip(cases, outcomes, strict=True))
    n = sum(c.weight for c in cases) or 1
    cost = sum(c.weight * o.cost for c, o in pairs)
    quality = sum(c.weight * c.score[o.tier] for c, o in pairs if o.status != "rejected") / n
    share = {t.value: sum(c.weight for c, o in pairs if o.tier == t and o.status != "rejected") / n
             for t in TIER_ORDER}
    return Point(
        threshold=threshold,
        quality=quality,
        cost_usd=cost,
        cost_fraction=cost / premium_cost if premium_cost else 0.0,
        tier_share=share,
        escalation_rate=sum(c.weight for c, o in pairs if len(o.attempts) > 1) / n,
        attempts_per_request=sum(c.weight * len(o.attempts) for c, o in pairs) / n,
        rejected=sum(c.weight for c, o in pairs if o.status == "rejected") / n,
        classifier_call_rate=sum(c.weight for c, o in pairs if o.classifier_cost is not None) / n,
        classifier_cost_usd=sum(c.weight * o.classifier_cost for c, o in pairs if o.classifier_cost is not None),
    )


BUDGET_CAP_FACTOR = 1.25


def budget_cap(cases: list[Case]) -> float:
    """The cost-capped variants' max_cost_usd: 1.25 x the source's median expected premium call, so a
    typical request may still escalate once but a long one may not run the whole ladder."""
    return BUDGET_CAP_FACTOR * statistics.median(c.expected[c.tiers[-1]] for c in cases)
