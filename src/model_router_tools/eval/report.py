"""`model-router eval`: policies vs baselines on recorded outcomes, as a table, JSON and a plot.

On outcome records (a deployment's own traffic, source "shadow"; replay.outcome_records) the same table is
computed from the recorded scores and costs, every mean weighted by 1 / sample_probability, with an
"as routed" row (the answers the callers got); what could not be computed is said per source.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model_router.pricing import Price, orchestration_cost, price_for, tier_prices
from model_router.routing.learned import TierModel, load_tier_model
from model_router.routing.llm_classifier import CLASSIFIER_OVERHEAD_TOKENS, CLASSIFIER_REPLY_TOKENS
from model_router.settings import Settings, default_threshold
from model_router.tiers import DATA_TIER_NAMES, TIER_ORDER, Tier
from model_router_tools.eval import metrics, uncertainty
from model_router_tools.eval.harness import (
    LLM_ACCURACY,
    LLM_MARGIN,
    THRESHOLDS,
    Case,
    Point,
    Policy,
    add_confidences,
    add_learned,
    add_predictions,
    add_verdict_confidences,
    budget_cap,
    evaluate,
    per_request,
    prepare,
)
from model_router_tools.eval.policies import (
    DEFAULT_POLICY,
    FITTED_LEARNED,
    LLM_POLICIES,
    PRODUCT_POLICIES,
    default_policy_names,
    in_table_order,
)
from model_router_tools.eval.scorer_eval import scorer_reliability
from model_router_tools.replay.datasets import (
    STAND_IN_NOTE,
    TierMap,
    check_dataset,
    is_holdout,
    maps_for,
    portable_path,
    read_records,
    sample_path,
    tier_map_of,
    tier_maps,
)
from model_router_tools.replay.outcome_records import (
    OUTCOME_SOURCE,
    DatasetError,
    OutcomeSet,
    is_outcome_dataset,
    is_s3,
    load_outcomes,
    s3_shared_datasets,
)

TIER_ROLES = {tier.value: role for role, tier in DATA_TIER_NAMES.items()}  # haiku -> economy, ...
# What an outcome-records report says about its numbers when the records carry no note of their own.
OUTCOME_NOTE = ("Outcome records of the deployment's own traffic: judged scores and recorded costs, every mean "
                "weighted by 1 / sample_probability.")


REFERENCE_ROUTERS = {"ref: tfidf-lr": "TfidfLogRegRouter", "ref: knn-minilm": "KnnEmbeddingRouter"}
# --split fit/all score rows the reference routers would otherwise be fitted on: they are cross-fitted instead,
# every request scored by a model fitted on the other folds (folds by a salted hash of the prompt text, so a
# prompt and its repeats fall in one fold).
CROSS_FIT_FOLDS = 5
_FOLD_SALT = b"model-router-crossfit:"
FITTED_KEY = "learned-train"  # the classifier name of the learned router fitted on --train
# What the llm and learned+llm rows rest on, said beside them in the table and the JSON.
LLM_NOTE = ("llm / learned+llm: the LLM classifier is simulated, not called: its verdict is the cheapest tier with a "
            "right recorded answer (the premium tier when none is right: a request nobody answers right is "
            "'complex') with probability --llm-accuracy, else another tier uniformly at random (seeded by the "
            "record id). This is generous: the real classifier reads only the prompt and its mistakes follow "
            "difficulty rather than being uniform; its latency, errors and timeouts (fallback to the learned router) "
            "are not modelled. Each call is priced at the classifier model's price (the deployment's default, the "
            "Haiku tier's model) as the runtime estimates it: the text it reads + "
            f"{CLASSIFIER_OVERHEAD_TOKENS} instruction tokens in, {CLASSIFIER_REPLY_TOKENS} out, included in the "
            "row's cost.")


@dataclass
class FitPool:
    """What the fitted routers (the references; with --train the learned router too) are fitted on: records
    in the shared format and the tier maps of their sources, and why records were left out of it."""

    records: list[dict[str, Any]]
    maps: dict[str, TierMap]
    what: str  # how the report names it: "the fit split", "every record" (of --dataset), "--train"
    left_out: list[str] = field(default_factory=list)

    def prompts(self) -> set[str]:
        return {r["prompt"] for r in self.records}


def fold_of(prompt: str, folds: int = CROSS_FIT_FOLDS) -> int:
    return int(hashlib.sha256(_FOLD_SALT + prompt.encode("utf-8")).hexdigest()[:8], 16) % folds


def _add_references(cases: list[Case], wanted: set[str], pool: FitPool, log: Any, *, cross_fit: bool,
                    reasons: dict[str, str]) -> None:
    """Fit the wanted reference routers on ``pool`` and attach their predictions; with ``cross_fit``, per fold,
    on the pool's records of the other folds, predicting that fold's requests. Unavailable: a note (and a
    reason for the row) instead."""
    names = [name for name in REFERENCE_ROUTERS if name in wanted]
    if not names:
        return
    if not pool.records:
        for name in names:
            reasons[name.removeprefix("ref: ")] = f"nothing to fit it on: {'; '.join(pool.left_out)}"
        return
    try:  # optional and heavy (scikit-learn, sentence-transformers): only when a reference router is asked for
        from model_router_tools.eval import reference
    except ImportError as exc:
        log(f"reference routers skipped: {exc}")
        return
    for name in names:
        router_class = getattr(reference, REFERENCE_ROUTERS[name])
        key = name.removeprefix("ref: ")
        started = time.perf_counter()
        heads: set[str] = set()  # the tiers the router predicts (has a head for)
        try:
            if not cross_fit:
                router = router_class().fit(pool.records, [], maps=pool.maps, every_record=True)
                add_predictions(cases, key, _recording(router, heads))
                log(f"fitted {name} in {time.perf_counter() - started:.1f} s")
            else:
                for fold in range(CROSS_FIT_FOLDS):
                    scored = [c for c in cases if c.prompt is not None and fold_of(c.prompt) == fold]
                    others = [r for r in pool.records if fold_of(r["prompt"]) != fold]
                    if scored and not others:
                        raise ValueError(f"every record is in one of the {CROSS_FIT_FOLDS} folds")
                    if scored:
                        router = router_class().fit(others, [], maps=pool.maps, every_record=True)
                        add_predictions(scored, key, _recording(router, heads))
                log(f"fitted {name} {CROSS_FIT_FOLDS} times (cross-fitting: each request scored by the model "
                    f"fitted on the other folds) in {time.perf_counter() - started:.1f} s")
        except ImportError as exc:
            log(f"{name} skipped: {exc}")
            continue
        except ValueError as exc:  # too few records (or words) to fit on
            for case in cases:
                case.probabilities.pop(key, None)
            reasons[key] = f"cannot be fitted here ({exc}; {len(pool.records)} records to fit on)"
            log(f"{name} skipped: {reasons[key]}")
            continue
        missing = sorted({t.value for c in cases if c.prompt is not None and key not in c.probabilities
                          for t in c.tiers} - heads, key=lambda t: Tier(t).rank)
        if missing:
            reasons[key] = _no_head(missing, pool.what)


def _recording(router: Any, heads: set[str]) -> Callable[[list[str]], list[dict[str, float]]]:
    """``router.predict_many``, adding the tiers it predicts to ``heads``."""
    def predict(prompts: list[str]) -> list[dict[str, float]]:
        predictions: list[dict[str, float]] = router.predict_many(prompts)
        for prediction in predictions:
            heads.update(prediction)
        return predictions

    return predict


def _no_head(missing: Sequence[str], what: str) -> str:
    return (f"fitted without a {'/'.join(missing)} head (no record of {what} has a model of its own for that "
            "tier), and these requests record it")


def _add_fitted_learned(cases: list[Case], pool: FitPool, prices: dict[Tier, Price], log: Any,
                        reasons: dict[str, str]) -> None:
    """`--train`: fit a learned router on the pool with the project's trainer (model-router train's, every
    record, the same grids and seed) and attach its predictions as FITTED_KEY."""
    if not pool.records:
        reasons[FITTED_KEY] = f"nothing to fit it on: {'; '.join(pool.left_out)}"
        return
    try:  # the train extra (numpy, scipy, scikit-learn)
        from model_router_tools.training.router import train_tier_model
    except ImportError as exc:
        reasons[FITTED_KEY] = f"training needs the train extra ({exc})"
        log(f"{FITTED_LEARNED.name} skipped: {reasons[FITTED_KEY]}")
        return
    started = time.perf_counter()
    try:
        doc = train_tier_model(pool.records, maps=pool.maps, every_record=True)
    except ValueError as exc:  # too few records or labels to fit on
        reasons[FITTED_KEY] = f"cannot be fitted on the --train records: {exc}"
        log(f"{FITTED_LEARNED.name} skipped: {reasons[FITTED_KEY]}")
        return
    model = TierModel.from_document(doc)
    add_learned(cases, model, prices, name=FITTED_KEY)
    missing = [t.value for t in TIER_ORDER if t.value not in model.tiers]
    if missing:
        reasons[FITTED_KEY] = _no_head(missing, pool.what)
    log(f"fitted {FITTED_LEARNED.name} on {len(pool.records)} records in {time.perf_counter() - started:.1f} s")


def training_pool(names: Sequence[str], loaded: Mapping[str, OutcomeSet]) -> FitPool:
    """Every record of the --train datasets, in the shared format: shared-format files as they are; outcome
    records (``loaded``) as source "shadow" with their meta.tiers as its tier map, when they have what a text
    router is fitted on (the prompt, and a score for every tier); the others are counted in ``left_out``."""
    records: list[dict[str, Any]] = []
    shared = [name for name in names if name not in loaded]
    for name in shared:
        records.extend(read_records(name))
    maps = maps_for(shared) if shared else {}
    without_prompt = unscored = total = 0
    for outcome_set in loaded.values():
        maps[OUTCOME_SOURCE] = tier_map_of(OUTCOME_SOURCE, outcome_set.tiers)
        for record in outcome_set.records:
            total += 1
            if not isinstance(record.get("prompt"), str):
                without_prompt += 1
                continue
            outcomes = {model: record["outcomes"][model] for model in outcome_set.tiers.values()}
            if any(o["score"] is None for o in outcomes.values()):
                unscored += 1
                continue
            records.append({"id": record["id"], "source": OUTCOME_SOURCE, "task": record["task"],
                            "prompt": record["prompt"],
                            "outcomes": {m: {"score": o["score"], "response": o.get("response")}
                                         for m, o in outcomes.items()}})
    left_out = []
    if without_prompt:
        left_out.append(f"{without_prompt} of {total} --train outcome records have no prompt (StoreShadowPrompts "
                        "off: only meta.features.hashed), and the fitted routers read the text")
    if unscored:
        left_out.append(f"{unscored} of {total} --train outcome records lack a score for a tier (the labels)")
    return FitPool(records, maps, "--train", left_out)


def shipped_training_rows(cases: Sequence[Case], model: TierModel) -> int:
    """How many of ``cases`` may be training rows of the shipped learned router: shared-format records of the
    sources it was fitted on (its metadata.records) outside the holdout split (it was fitted on the fit split
    of the shared dev data; src/model_router/data/router_model.md)."""
    trained = set((model.metadata.get("records") or {}).keys())
    return sum(1 for c in cases if c.routed is None and c.prompt is not None and c.source in trained
               and not is_holdout(c.prompt))


def prompt_hash(record: dict[str, Any]) -> str | None:
    """sha256 of the prompt text; an outcome record's meta.prompt_sha256 (its prompt may not be stored)."""
    if isinstance(record.get("prompt"), str):
        return hashlib.sha256(record["prompt"].encode("utf-8")).hexdigest()
    digest = (record.get("meta") or {}).get("prompt_sha256")
    return str(digest) if digest else None


def records_and_sources(names: Sequence[str], loaded: Mapping[str, Any]) -> tuple[dict[str, dict[str, Any]],
                                                                               dict[str, str]]:
    """Every record by id, and the dataset each source came from, in one pass over each dataset (``loaded``:
    the outcome-record sets already read, by name)."""
    records_by_id: dict[str, dict[str, Any]] = {}
    paths_by_source: dict[str, str] = {}
    for path in names:
        for record in loaded[path].records if path in loaded else read_records(path):
            records_by_id[record["id"]] = record
            paths_by_source[record["source"]] = path
    return records_by_id, paths_by_source


def run_eval(
    paths: Sequence[str | Path],
    *,
    policies: Sequence[str] | None = None,
    prices: dict[Tier, Price],
    threshold: float = 0.8,
    split: str = "holdout",
    limit: int | None = None,
    log: Any = None,
    bootstrap: int = uncertainty.BOOTSTRAP_SAMPLES,
    train: Sequence[str | Path] | None = None,
    shown: Mapping[str, str] | None = None,
    llm_accuracy: float | None = None,
    llm_margin: float | None = None,
    classifier_price: Price | None = None,
) -> dict[str, Any]:
    """Evaluate every policy on every source in ``paths``; returns the machine-readable report.
    ``bootstrap``: resamples for the APGR intervals (0: none).

    ``train`` (``eval --train/--test``): ``paths`` are the test files, every record of them measured
    (``split`` is not used), and every fitted router (the references, and a learned router fitted by the
    project's trainer) is fitted on the ``train`` files only. Without it the references are fitted on the fit
    split of the shared-format ``paths``, and cross-fitted (:data:`CROSS_FIT_FOLDS`) when the requests scored
    include rows of it (``split`` fit or all). ``shown``: the name a path is reported by (an s3:// object that
    was copied locally). ``llm_accuracy`` / ``llm_margin``: the simulated LLM classifier's accuracy and
    learned+llm's margin (defaults LLM_ACCURACY, LLM_MARGIN); either one given adds the LLM-classifier policies to
    the default ones (otherwise they come only when named in ``policies``); ``classifier_price``: what a
    classifier call is priced at (default: the deployment's classifier model, Settings.classifier_model_id)."""
    log = log or (lambda message: print(message, file=sys.stderr))
    shown = shown or {}
    names = [dataset_name(p) for p in paths]
    asked_llm = llm_accuracy is not None or llm_margin is not None
    wanted = set(policies or default_policy_names(llm=asked_llm))
    llm_setting = {"accuracy": LLM_ACCURACY if llm_accuracy is None else llm_accuracy,
                   "margin": LLM_MARGIN if llm_margin is None else llm_margin}
    if classifier_price is None and wanted & {p.name for p in LLM_POLICIES}:
        settings = Settings.from_mapping({})
        classifier_price = price_for(settings.classifier_model_id, settings.price_overrides)
    llm_policies = {p.name: dataclasses.replace(p, llm=dataclasses.replace(
        p.llm, accuracy=llm_setting["accuracy"], margin=llm_setting["margin"], price=classifier_price))
        for p in LLM_POLICIES if p.llm is not None}
    started = time.perf_counter()
    loaded = load_outcome_sets(names)
    label = "test" if train is not None else split
    cases = prepare(names, prices=prices, split="all" if train is not None else split, limit=limit, loaded=loaded)
    log(f"prepared {len(cases)} {label} requests in {time.perf_counter() - started:.1f} s")
    shared = [name for name in names if name not in loaded]
    warnings: list[str] = []
    reasons: dict[str, str] = {}  # classifier -> why it has no predictions here

    records_by_id, paths_by_source = records_and_sources(names, loaded)

    model = load_tier_model()
    if model is not None:
        add_learned(cases, model, prices)
        seen = shipped_training_rows(cases, model)
        if seen and wanted & {p.name for p in (*PRODUCT_POLICIES, *LLM_POLICIES) if "learned" in (p.start, p.prior)}:
            sources = ", ".join(sorted((model.metadata.get("records") or {}).keys()))
            warnings.append(
                f"the learned rows include training rows: the shipped learned router was fitted on the fit split of "
                f"the shared dev data ({sources}; src/model_router/data/router_model.md), and {seen} of "
                f"{len(cases)} requests scored here are records of those sources outside the holdout split, so "
                "they may be among its training rows; "
                + ("--split holdout (the default) scores only rows it was not fitted on" if train is None else
                   f"the row '{FITTED_LEARNED.name}' is fitted on --train only" if FITTED_LEARNED.name in wanted
                   else f"the row '{FITTED_LEARNED.name}' (fitted on --train only) is not asked for here"))

    train_names = [dataset_name(p) for p in train] if train is not None else []
    fitting: dict[str, Any] | None = None
    if train is not None:
        train_sets = load_outcome_sets(train_names)
        pool = training_pool(train_names, train_sets)
        warnings.extend(f"fitted routers: {line}" for line in pool.left_out if pool.records)
        train_hashes = {h for h in map(prompt_hash, pool.records) if h}
        for outcome_set in train_sets.values():  # privacy-mode records too: their meta.prompt_sha256
            train_hashes.update(h for h in map(prompt_hash, outcome_set.records) if h)
        both = sum(1 for c in cases if prompt_hash(records_by_id[c.record_id]) in train_hashes)
        if both:
            warnings.append(f"{both} of {len(cases)} --test requests have a prompt that is also in --train (the same "
                            "sha256): the fitted routers have seen them, so their numbers on those are not held out")
        _add_references(cases, wanted, pool, log, cross_fit=False, reasons=reasons)
        if FITTED_LEARNED.name in wanted:
            _add_fitted_learned(cases, pool, prices, log, reasons)
        routers = [n for n in (*REFERENCE_ROUTERS, FITTED_LEARNED.name) if n in wanted]
        fitting = {"mode": "train", "train": [shown.get(n, n) for n in train_names], "records": len(pool.records),
                   "routers": routers, "left_out": pool.left_out}
    elif shared and wanted & REFERENCE_ROUTERS.keys():
        every = split == "all"
        pool = FitPool([r for p in shared for r in read_records(p) if every or not is_holdout(r["prompt"])],
                       maps_for(shared), "every record" if every else "the fit split")
        fitted_on = pool.prompts()
        cross_fit = any(c.prompt in fitted_on for c in cases)
        if cross_fit:
            fitting = {"mode": "cross-fit", "folds": CROSS_FIT_FOLDS, "pool": pool.what}
        _add_references(cases, wanted, pool, log, cross_fit=cross_fit, reasons=reasons)

    add_confidences(cases, records_by_id, paths_by_source, "gap")
    if model is not None:
        add_confidences(cases, records_by_id, paths_by_source, "learned")
    for policy in LLM_POLICIES:
        if policy.name in wanted and (policy.prior == "gap" or model is not None):
            add_verdict_confidences(cases, records_by_id, paths_by_source, policy.prior)

    by_source: dict[str, list[Case]] = defaultdict(list)
    for case in cases:
        by_source[case.source].append(case)
    reports = [
        _source_report(source, group, wanted, threshold, prices, bootstrap, log, train=train is not None,
                       reasons=reasons, configured=llm_policies)
        for source, group in sorted(by_source.items())
    ]
    notes: list[str] = [STAND_IN_NOTE] if shared else []
    for source_report in reports:  # which recorded model stands in for each tier (figure captions)
        outcomes = source_report.get("outcome_records")
        if outcomes is not None:  # outcome records: their own tier map, and the notes they carry
            sets = [loaded[name] for name in loaded]
            source_report["stand_ins"] = {t.value: m for t, m in sets[0].tiers.items()}
            outcomes["notes"] = list(dict.fromkeys(note for one in sets for note in one.notes))
            outcomes["duplicates"] = sum(one.duplicates for one in sets)
            notes.extend(note for note in outcomes["notes"] or [OUTCOME_NOTE] if note not in notes)
            continue
        tier_map = tier_maps(paths_by_source[source_report["source"]])[source_report["source"]]
        source_report["stand_ins"] = {t.value: tier_map.models[t] for t in tier_map.recorded_tiers}
    shown_names = [shown.get(n, n) for n in names]
    report: dict[str, Any] = {
        "dataset": shown_names if len(shown_names) > 1 else shown_names[0],
        "split": label,
        "n": len(cases),
        "threshold": threshold,
        "prices": {t.value: {"input_per_1m": p.input_per_1m, "output_per_1m": p.output_per_1m}
                   for t, p in prices.items()},
        "note": " ".join(notes),
        "policies": reports[0]["policies"] if len(reports) == 1 else [],
        "sources": reports,
    }
    if fitting is not None:
        report["fitted"] = fitting
    if wanted & llm_policies.keys() and classifier_price is not None:
        price = classifier_price
        report["llm_classifier"] = {
            **llm_setting, "simulated": True, "overhead_tokens": CLASSIFIER_OVERHEAD_TOKENS,
            "reply_tokens": CLASSIFIER_REPLY_TOKENS,
            "price_per_1m": {"input": price.input_per_1m, "output": price.output_per_1m}, "note": LLM_NOTE}
    if warnings:
        report["warnings"] = warnings
    return report


def dataset_name(path: str | Path) -> str:
    """How a --dataset is named in the report: an s3:// URI as given, a path normalised."""
    return str(path) if is_s3(path) else str(Path(path))


def load_outcome_sets(names: Sequence[str]) -> dict[str, OutcomeSet]:
    """The outcome records among ``names``, by name; DatasetError when two of them have other tier maps
    (they are evaluated as one source, "shadow")."""
    loaded = {name: load_outcomes(name) for name in names if is_outcome_dataset(name)}
    sets = list(loaded.values())
    for other in sets[1:]:
        if other.tiers != sets[0].tiers:
            raise DatasetError(f"{other.where}: its meta.tiers differ from {sets[0].where}'s: outcome records of "
                               "different tier maps are evaluated apart")
    return loaded


def _subset(policy: Policy, cases: list[Case], complete: list[Case]) -> list[Case]:
    """The requests a policy is measured on: those with a score for every tier it may answer from."""
    if policy.start.startswith("fixed:"):
        tier = Tier(policy.start.split(":", 1)[1])
        return [c for c in cases if tier in c.score]
    if policy.start == "routed":
        return [c for c in cases if c.routed is not None and c.routed.tier in c.score]
    return complete


def _unavailable(policy: Policy, cases: list[Case], complete: list[Case],
                 reasons: Mapping[str, str] | None = None) -> str | None:
    """Why ``policy`` cannot be computed on these requests (None: it can). ``reasons``: why a fitted
    classifier has no predictions (nothing to fit it on, a tier it has no head for)."""
    if policy.start.startswith("fixed:"):
        tier = Tier(policy.start.split(":")[1])
        if tier not in cases[0].tiers:
            return f"no {tier.value} tier here (no model recorded for it)"
        return None if any(tier in c.score for c in cases) else f"no request has a {tier.value} score"
    if policy.start == "routed":
        if not all(c.routed is not None for c in cases):
            return "only outcome records carry the route taken"
        return None if _subset(policy, cases, complete) else "no request has a score for its routed answer"
    if not complete:
        return "no request has a score for every tier"
    no_prompt = sum(c.prompt is None for c in complete)
    needed = {policy.prior, policy.start} - {"gap", "heuristic", "cheapest", "oracle"}
    for name in sorted(needed):
        if all(name in c.probabilities for c in complete):
            continue
        if name in (reasons or {}):
            return (reasons or {})[name]
        if name == FITTED_KEY:
            return "fitted only with --train/--test"
        if name != "learned":
            return (f"the reference router reads the prompt text: {no_prompt} of {len(complete)} records have none "
                    "(StoreShadowPrompts off)" if no_prompt else
                    "reference routers are fitted on a shared-format --dataset's fit split (none given), or need "
                    "the train extra")
        if load_tier_model() is None:
            return "no learned weights shipped"
        unusable = sum(c.prompt is None and c.hashed is None for c in complete)
        if unusable:
            return f"{unusable} of {len(complete)} records have neither a prompt nor meta.features.hashed"
        return ("the learned router's cost estimates need the request's features: records without a prompt "
                "need meta.features.signals")
    if policy.escalate and not all(policy.prior in c.confidence for c in complete):
        return (f"the scorer reads the prompt and each tier's answer: {no_prompt} of {len(complete)} records have "
                "no prompt (StoreShadowPrompts off)")
    if policy.capped and not all(c.expected for c in complete):
        return "the budget cap's estimates need the request's features (meta.features.signals or the prompt)"
    if policy.llm is not None and not all(c.classified_tokens is not None for c in complete):
        return ("the LLM classifier's cost needs the request's text or its input tokens (the prompt or "
                "meta.features.signals)")
    return None


def _weighted(cases: list[Case], values: Sequence[float]) -> float:
    return sum(c.weight * v for c, v in zip(cases, values, strict=True))


def _source_report(source: str, cases: list[Case], wanted: set[str], threshold: float,
                   prices: dict[Tier, Price], samples: int, log: Any, *, train: bool = False,
                   reasons: Mapping[str, str] | None = None,
                   configured: Mapping[str, Policy] | None = None) -> dict[str, Any]:
    """Every wanted policy's row and curve on one source's requests. Each policy is measured on the requests
    with a score for the tiers it may answer from (all of them, for everything but the fixed tiers and
    "as routed"); means are weighted by ``case.weight`` (1 except for outcome records). ``configured``: policies
    by name that replace the table's own (the LLM-classifier ones with their accuracy, margin and price)."""
    premium, economy = cases[0].tiers[-1], cases[0].tiers[0]
    outcome_records = any(c.routed is not None for c in cases)
    # Requests with a score for every tier: what the oracle, the routers and the APGR anchors are measured on.
    complete = [c for c in cases if len(c.score) == len(c.tiers)]
    premium_cost = sum(c.weight * c.cost[premium] for c in complete)
    n = sum(c.weight for c in complete)
    q_e = q_p = c_e = 0.0
    if complete:
        economy_point = evaluate(complete, Policy("e", "", f"fixed:{economy.value}", thresholded=False), None,
                                 premium_cost)
        premium_point = evaluate(complete, Policy("p", "", f"fixed:{premium.value}", thresholded=False), None,
                                 premium_cost)
        q_e, q_p, c_e = economy_point.quality, premium_point.quality, economy_point.cost_fraction
    cap: float | None = None
    rows: list[dict[str, Any]] = []
    left_out: list[dict[str, str]] = []
    notes: list[str] = []
    curves: dict[str, tuple[list[list[float]], list[list[float]]]] = {}
    # One tier recorded: there is nothing to route between, and APGR (a share of the economy-premium gap) has
    # no gap to measure. The routing rows would all equal always-<that tier>: they are left out, said once.
    single = economy == premium
    if single:
        notes.append(f"one tier recorded ({economy.value}): every routing policy degenerates to always-"
                     f"{TIER_ROLES[economy.value]} (nothing to route between), so the routing rows, APGR and its "
                     "bootstrap are left out")
    # APGR and CPT are shares of the premium-economy quality gap: without a gap they are noise over noise.
    meaningful = not single and metrics.gap_is_meaningful(q_e, q_p)
    if complete and not single and not meaningful:
        verdict = (metrics.NOT_MEANINGFUL if abs(q_p - q_e) < metrics.MIN_GAP else
                   "not meaningful: the premium tier scores below the economy tier on these requests")
        notes.append(f"APGR and CPT: {verdict} (always-premium {q_p:.3f}, always-economy {q_e:.3f}; they divide by "
                     f"the gap, which is below {metrics.MIN_GAP:g}): left out, with their bootstrap")
    for listed in in_table_order(train):
        if listed.name not in wanted:
            continue
        policy = (configured or {}).get(listed.name, listed)
        why = _unavailable(policy, cases, complete, reasons)
        if why is not None and not outcome_records and (policy is FITTED_LEARNED or policy.start in (reasons or {})):
            notes.append(f"{policy.name}: left out: {why}")  # a fitted router that could not be used here
        if why is None and single and policy.start not in ("oracle", "routed") and not policy.start.startswith(
                "fixed:"):
            why = f"one tier recorded ({economy.value}): nothing to route between"
        if why is not None:
            if outcome_records:
                left_out.append({"policy": policy.name, "why": why})
            continue
        if policy.capped and cap is None:
            cap = budget_cap(complete)
        policy_cap = cap if policy.capped else None
        measured = _subset(policy, cases, complete)
        measured_premium = sum(c.weight * c.cost[premium] for c in measured)
        point = evaluate(measured, policy, threshold if policy.thresholded else None, measured_premium, policy_cap)
        row = _row(policy, point, sum(c.weight for c in measured), measured_premium)
        if outcome_records:  # the requests this row is measured on (those with the scores it needs)
            row["n"] = len(measured)
        if policy.thresholded:
            per_threshold = [per_request(complete, policy, t, policy_cap) for t in THRESHOLDS]
            curves[policy.name] = ([c for c, _ in per_threshold], [q for _, q in per_threshold])
            # The same sums evaluate() makes, in the same order.
            pairs = [(_weighted(complete, c) / premium_cost if premium_cost else 0.0, _weighted(complete, q) / n)
                     for c, q in per_threshold]
            row.update(
                apgr=round(metrics.apgr(pairs, c_e, q_e, q_p), 4) if meaningful else None,
                cpt_50=_round(metrics.cpt(pairs, 50, c_e, q_e, q_p)) if meaningful else None,
                cpt_80=_round(metrics.cpt(pairs, 80, c_e, q_e, q_p)) if meaningful else None,
                premium_parity_cost=_round(metrics.premium_parity_cost(pairs, q_p)),
                curve=[{"threshold": t, "quality": round(q, 4), "cost_fraction": round(c, 4)}
                       for t, (c, q) in zip(THRESHOLDS, pairs, strict=True)],
            )
        if policy_cap is not None:
            row["max_cost_usd"] = round(policy_cap, 8)
        rows.append(row)
    if "random" in wanted:
        if complete and not single:
            rows.append(_random_row(rows, q_e, q_p, c_e, premium_cost, n, economy, premium))
            if not meaningful:
                rows[-1].update(apgr=None, cpt_50=None, cpt_80=None)
        elif outcome_records:
            left_out.append({"policy": "random", "why": "no request has a score for every tier" if not complete
                             else f"one tier recorded ({economy.value}): nothing to route between"})
    # The policy the others are compared with: the default; on outcome records without the texts its scorer
    # reads, the first policy with a curve (the learned router).
    reference = DEFAULT_POLICY if not outcome_records or DEFAULT_POLICY in curves else next(iter(curves), None)
    comparisons, bootstrap = _apgr_uncertainty(complete, rows, curves, economy, premium,
                                               samples if meaningful else 0, log, reference)
    report = {"source": source, "n": len(cases), "tiers": [t.value for t in cases[0].tiers],
              "always_premium_quality": round(q_p, 4), "always_economy_quality": round(q_e, 4),
              "policies": rows, "apgr_comparisons": comparisons}
    if bootstrap:
        report["apgr_bootstrap"] = bootstrap
    if outcome_records:
        report["apgr_reference"] = reference
        report["outcome_records"] = _outcome_summary(cases, complete, left_out)
    if notes:
        report["notes"] = notes
    return report


def _outcome_summary(cases: list[Case], complete: list[Case], left_out: list[dict[str, str]]) -> dict[str, Any]:
    """What an outcome-records source's numbers rest on: samplers and weights, unscored tiers, policies left out."""
    probabilities = [1.0 / c.weight for c in cases]
    return {
        "records": len(cases),
        "samplers": dict(sorted(Counter(str(c.sampler) for c in cases).items())),
        "sample_probability": {"min": round(min(probabilities), 6), "max": round(max(probabilities), 6)},
        "weighting": "every mean weighted by 1 / sample_probability (self-normalised)",
        "unscored": {t.value: sum(t in c.tiers and t not in c.score for c in cases) for t in cases[0].tiers
                     if any(t not in c.score for c in cases)},
        "every_tier_scored": len(complete),
        "without_prompt": sum(c.prompt is None for c in cases),
        "left_out": left_out,
    }


def _apgr_uncertainty(cases: list[Case], rows: list[dict[str, Any]],
                      curves: dict[str, tuple[list[list[float]], list[list[float]]]], economy: Tier, premium: Tier,
                      samples: int, log: Any, reference: str | None = DEFAULT_POLICY
                      ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Bootstrap intervals for each curve's APGR (``apgr_ci95``) and the ``reference`` policy's APGR (the
    default's) minus each other policy's, on the same resampled requests; and, when resamples had to be left
    out (their premium-economy gap below ``metrics.MIN_GAP``: no meaningful APGR), how many and whether the
    intervals still mean anything (if not, there are none)."""
    if not curves or samples <= 0:
        return [], None
    fixed = {tier: per_request(cases, Policy("fixed", "", f"fixed:{tier.value}", thresholded=False), None)
             for tier in (economy, premium)}
    weights = [c.weight for c in cases]
    resampled = uncertainty.apgr_samples(curves, fixed[economy], fixed[premium], samples=samples,
                                         sample_weights=weights if any(w != 1.0 for w in weights) else None)
    dropped = uncertainty.dropped(resampled)
    summary = None
    if dropped:
        summary = {"resamples": samples, "dropped": dropped, "min_gap": metrics.MIN_GAP,
                   "meaningful": not uncertainty.too_many_dropped(dropped, samples)}
        if not summary["meaningful"]:
            return [], summary
    for row in rows:
        if row["name"] in resampled:
            row["apgr_ci95"] = uncertainty.interval(resampled[row["name"]])
    if reference is None or reference not in resampled:
        return [], summary
    return uncertainty.compare(resampled, reference, [name for name in curves if name != reference]), summary


def _decision_line(source: dict[str, Any]) -> str:
    """The orchestration of the routing decision against model spend on this source, per workflow type: the
    largest share over its routing policies (baselines and the oracle left out)."""
    routed = [r for r in source["policies"] if r.get("decision_share_of_models") and r["name"] not in (
        "always-economy", "always-standard", "always-premium", "random", "oracle")] or source["policies"]
    worst = {k: max((r.get("decision_share_of_models") or {}).get(k, 0.0) for r in routed) for k in WORKFLOW_TYPES}
    return ("decision cost / model spend, worst routing policy: "
            + ", ".join(f"{k} {v:.2%}" for k, v in worst.items()) + " (control steps only; model wait excluded)")


def _uncertainty_lines(source: dict[str, Any]) -> list[str]:
    """The default policy's (an outcome-records source: its reference policy's) APGR interval and its paired
    differences from the others, one line each."""
    reference = source.get("apgr_reference", DEFAULT_POLICY)
    bootstrap = source.get("apgr_bootstrap")
    left_out = ""
    if bootstrap:
        counted = (f"{bootstrap['dropped']} of {bootstrap['resamples']} bootstrap resamples have a premium-economy "
                   f"quality gap below {bootstrap['min_gap']:g}")
        if not bootstrap["meaningful"]:
            return [f"APGR intervals and paired differences: {metrics.NOT_MEANINGFUL} ({counted}: more than the "
                    "2.5% a 95% interval leaves in each tail)"]
        left_out = f" ({counted}: left out, their APGR is not meaningful)"
    own = next((r for r in source["policies"] if r["name"] == reference and r.get("apgr_ci95")), None)
    if own is None:
        return []
    low, high = own["apgr_ci95"]
    lines = [f"APGR {reference} {own['apgr']:.3f}, 95% bootstrap interval {low:.3f}..{high:.3f}{left_out}; "
             f"paired differences (same resampled requests):"]
    for row in source.get("apgr_comparisons", []):
        low, high = row["ci95"]
        if low == high == row["apgr_difference"] == 0:
            lines.append(f"  - {row['versus']}: the same curve")
            continue
        verdict = "higher" if low > 0 else "lower" if high < 0 else "not distinguishable"
        lines.append(f"  - {row['versus']}: {row['apgr_difference']:+.3f} [{low:+.3f}, {high:+.3f}] {verdict} "
                     f"(higher in {row['share_of_resamples_better']:.0%} of resamples)")
    return lines


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


WORKFLOW_TYPES = ("STANDARD", "EXPRESS")
EXPRESS_MEMORY_GB = 0.0625  # Express bills duration in 64 MB steps; the router's state is far below that


def decision_cost(workflow_type: str, attempts: float) -> float:
    """The routing decision's own cost per request (no model time): STANDARD, its state transitions; EXPRESS, one
    request plus the duration of the control steps; both, the Lambda requests and the control Lambdas' time
    (15 ms each at 256 MB). Model wait (the invoker Lambda's and, on EXPRESS, the execution's duration while a
    model answers) is left out: see docs/costs.md for its per-second price."""
    control_seconds = (1 + 2 * attempts) * 0.015
    return orchestration_cost(workflow_type, state_transitions=round(3 + 3 * attempts),
                              lambda_invocations=round(1 + 2 * attempts),
                              lambda_gb_seconds=control_seconds * 0.25,
                              express_gb_seconds=control_seconds * EXPRESS_MEMORY_GB)


def _row(policy: Policy, point: Point, n: float, premium_cost: float) -> dict[str, Any]:
    attempts = point.attempts_per_request
    decision = {kind: decision_cost(kind, attempts) for kind in WORKFLOW_TYPES}
    model_per_request = point.cost_usd / n if n else 0.0
    counted = policy.start not in ("oracle",)
    return {
        "name": policy.name,
        "description": policy.description,
        "threshold": point.threshold,
        "quality": round(point.quality, 4),
        "cost_per_1k_usd": round(1000 * point.cost_usd / n, 6) if n else 0.0,
        "cost_fraction_of_premium": round(point.cost_fraction, 4),
        "tier_share": {k: round(v, 4) for k, v in point.tier_share.items()},
        "escalation_rate": round(point.escalation_rate, 4),
        "attempts_per_request": round(attempts, 4),
        "decision_cost_per_1k_usd": round(1000 * decision["STANDARD"], 6) if counted else 0.0,
        # The same decision on each workflow type, as a share of the policy's model spend.
        "decision_cost_per_1k_usd_by_workflow": {k: round(1000 * v, 6) if counted else 0.0
                                                 for k, v in decision.items()},
        "decision_share_of_models": {k: round(v / model_per_request, 5) if counted and model_per_request else 0.0
                                     for k, v in decision.items()},
        "rejected_rate": round(point.rejected, 4),
        "apgr": None, "apgr_ci95": None, "cpt_50": None, "cpt_80": None, "premium_parity_cost": None,
        "curve": [],
        **(_classifier_fields(policy, point, n) if policy.llm is not None else {}),
    }


def _classifier_fields(policy: Policy, point: Point, n: float) -> dict[str, Any]:
    """An LLM-classifier row's own numbers at the operating point: how often the classifier was asked and what
    it cost (included in the row's cost), with the simulation's settings."""
    assert policy.llm is not None
    return {
        "llm_accuracy": policy.llm.accuracy,
        "llm_margin": policy.llm.margin if policy.llm.ask == "below-margin" else None,
        "classifier_call_rate": round(point.classifier_call_rate, 4),
        "classifier_cost_per_1k_usd": round(1000 * point.classifier_cost_usd / n, 6) if n else 0.0,
        "classifier_share_of_cost": round(point.classifier_cost_usd / point.cost_usd, 4) if point.cost_usd else 0.0,
    }


def _random_row(rows: list[dict[str, Any]], q_e: float, q_p: float, c_e: float, premium_cost: float,
                n: float, economy: Tier = Tier.HAIKU, premium: Tier = Tier.OPUS) -> dict[str, Any]:
    """Random routing between the source's economy and premium tiers (its cheapest and dearest recorded ones),
    matched to the default policy's cost."""
    anchor = next((r for r in rows if r["name"] == DEFAULT_POLICY), None) or next(
        (r for r in rows if r["curve"]), None)
    fraction = anchor["cost_fraction_of_premium"] if anchor else (1 + c_e) / 2
    share = min(1.0, max(0.0, (fraction - c_e) / (1 - c_e))) if c_e < 1 else 0.0
    quality = q_e + share * (q_p - q_e)
    return {
        "name": "random", "description": f"random economy/premium mix at matched cost ({share:.0%} premium)",
        "threshold": None, "quality": round(quality, 4),
        "cost_per_1k_usd": round(1000 * fraction * premium_cost / n, 6) if n else 0.0,
        "cost_fraction_of_premium": round(fraction, 4),
        "tier_share": {t.value: round(1 - share, 4) if t == economy else round(share, 4) if t == premium else 0.0
                       for t in TIER_ORDER},
        "escalation_rate": 0.0, "attempts_per_request": 1.0, "decision_cost_per_1k_usd": 0.0,
        "decision_cost_per_1k_usd_by_workflow": dict.fromkeys(WORKFLOW_TYPES, 0.0),
        "decision_share_of_models": dict.fromkeys(WORKFLOW_TYPES, 0.0),
        "rejected_rate": 0.0, "apgr": 0.5, "apgr_ci95": None, "cpt_50": 0.5, "cpt_80": 0.8, "premium_parity_cost": None,
        "curve": [],
    }


# -- presentation -------------------------------------------------------------------------------------
def print_report(report: dict[str, Any]) -> None:
    from rich.console import Console  # late for start-up time: only the printed table needs rich
    from rich.markup import escape
    from rich.table import Table

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 170)
    for source in report["sources"]:
        table = Table(title=f"{source['source']}: {source['n']} {report['split']} requests, tiers "
                            f"{'/'.join(source['tiers'])}, threshold {report['threshold']}")
        llm = any("classifier_call_rate" in row for row in source["policies"])
        for column in ("policy", "quality", "$/1k", "cost/premium", "H/S/O share", "escalated", "decision $/1k",
                       "decision/models STD|EXP", "APGR", "CPT50", "CPT80", "parity cost",
                       *(("LLM asked", "LLM $ share") if llm else ())):
            table.add_column(column, justify="left" if column == "policy" else "right")
        for row in source["policies"]:
            share = row["tier_share"]
            asked = (_fmt(row.get("classifier_call_rate"), "{:.0%}"), _fmt(row.get("classifier_share_of_cost"),
                                                                          "{:.1%}")) if llm else ()
            table.add_row(
                row["name"], f"{row['quality']:.3f}", f"{row['cost_per_1k_usd']:.4f}",
                f"{row['cost_fraction_of_premium']:.1%}",
                "/".join(f"{share[t.value]:.0%}" for t in TIER_ORDER),
                f"{row['escalation_rate']:.0%}", f"{row['decision_cost_per_1k_usd']:.4f}",
                "|".join(f"{row['decision_share_of_models'][k]:.2%}" for k in WORKFLOW_TYPES),
                _fmt(row["apgr"], "{:.3f}"), _fmt(row["cpt_50"], "{:.1%}"), _fmt(row["cpt_80"], "{:.1%}"),
                _fmt(row["premium_parity_cost"], "{:.1%}"), *asked,
            )
        console.print(table)
        console.print(_decision_line(source))
        for line in _uncertainty_lines(source):
            console.print(line)
        for line in source.get("notes", []):
            console.print(escape(line))
        for line in outcome_lines(source):
            console.print(escape(line))
    for line in fitting_lines(report):
        console.print(escape(line))
    if report.get("llm_classifier"):
        setting = report["llm_classifier"]
        console.print(escape(f"LLM classifier (simulated): accuracy {setting['accuracy']:g}, learned+llm margin "
                             f"{setting['margin']:g}. {setting['note']}"))
    if any("outcome_records" not in source for source in report["sources"]) or not report["sources"]:
        console.print(f"[dim]{escape(report['note'])} Quality = mean recorded score of the accepted answer; costs "
                      f"are Claude list prices on estimated tokens (ceil(chars/4); per-task estimates where no "
                      f"answer text exists).[/dim]")
    else:
        console.print(f"[dim]{escape(report['note'])} Quality = weighted mean judged score of the accepted answer; "
                      f"costs are the recorded ones.[/dim]")


def fitting_lines(report: dict[str, Any]) -> list[str]:
    """What the fitted routers were fitted on, when it is not simply the fit split of other rows, and the
    warnings (rows that may include training rows, prompts in both --train and --test)."""
    fitted = report.get("fitted") or {}
    lines = []
    if fitted.get("mode") == "cross-fit":
        lines.append(f"reference routers: cross-fitted ({fitted['folds']} folds by prompt, over {fitted['pool']}): "
                     "each request is scored by a model fitted on the other folds, never on itself")
    elif fitted.get("mode") == "train" and fitted["routers"]:
        routers = ", ".join(fitted["routers"])
        lines.append(f"fitted routers ({routers}): fitted on the {fitted['records']} usable records of --train "
                     f"{', '.join(fitted['train'])}; every number is measured on --test")
    lines.extend(f"warning: {warning}" for warning in report.get("warnings", []))
    return lines


def outcome_lines(source: dict[str, Any]) -> list[str]:
    """What an outcome-records source's table rests on: the samplers and the weighting, the requests without a
    score for a tier, the policies left out and why, and the records' own notes."""
    summary = source.get("outcome_records")
    if summary is None:
        return []
    probability = summary["sample_probability"]
    shown = (f"{probability['min']:g}" if probability["min"] == probability["max"]
             else f"{probability['min']:g}..{probability['max']:g}")
    samplers = ", ".join(f"{name} {count}" for name, count in summary["samplers"].items())
    lines = [f"outcome records: {summary['records']} requests (sampler: {samplers}; sample probability {shown}; "
             f"{summary.get('duplicates', 0)} duplicate ids, the last kept); {summary['weighting']}"]
    for tier, count in summary["unscored"].items():
        lines.append(f"{count} records lack a score for tier {tier}: left out of always-{TIER_ROLES[tier]} "
                     f"(and of the policies that may answer from any tier: {summary['every_tier_scored']} records "
                     "have every tier scored)")
    if summary["without_prompt"]:
        lines.append(f"{summary['without_prompt']} records have no prompt (StoreShadowPrompts off): the learned "
                     "router predicts from meta.features.hashed")
    for entry in summary["left_out"]:
        lines.append(f"left out: {entry['policy']}: {entry['why']}")
    lines.extend(f"note: {note}" for note in summary.get("notes", []))
    return lines


def _fmt(value: float | None, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


# One look per policy, the same in every figure: distinct colour, marker and line style (readable in grey
# too); the default policy drawn heaviest. Fixed-tier baselines and the oracle are single points.
CURVE_STYLES: dict[str, dict[str, Any]] = {
    "learned+cascade": {"color": "#009e73", "marker": "D", "linestyle": "-", "linewidth": 2.6},
    "learned+cascade capped": {"color": "#009e73", "marker": "d", "linestyle": "--", "linewidth": 1.4},
    "learned": {"color": "#0072b2", "marker": "o", "linestyle": "-", "linewidth": 1.6},
    "cascade": {"color": "#e69f00", "marker": "s", "linestyle": "-", "linewidth": 1.6},
    "cascade capped": {"color": "#e69f00", "marker": "s", "linestyle": "--", "linewidth": 1.2,
                       "markerfacecolor": "white"},
    "heuristic": {"color": "#8c564b", "marker": "v", "linestyle": "-.", "linewidth": 1.4},
    "ref: tfidf-lr": {"color": "#cc79a7", "marker": "^", "linestyle": ":", "linewidth": 1.8},
    "ref: knn-minilm": {"color": "#d55e00", "marker": "P", "linestyle": ":", "linewidth": 1.8},
}
POINT_STYLES: dict[str, dict[str, Any]] = {
    "always-economy": {"color": "#555555", "marker": "<", "s": 70},
    "always-standard": {"color": "#555555", "marker": "o", "s": 60},
    "always-premium": {"color": "black", "marker": ">", "s": 70},
    "oracle": {"color": "#f0c000", "marker": "*", "s": 190, "edgecolors": "black", "linewidths": 0.6},
    "random": {"color": "#999999", "marker": "x", "s": 60},
}
FIGURE_WIDTH_PX, FIGURE_DPI = 900, 100
SCORER_FIGURE = "scorer-reliability.png"


def figure_paths(out: str | Path, sources: Sequence[str], scorer: bool) -> dict[str, Path]:
    """Where ``--plot PATH`` writes each figure, by source (and "scorer"). PATH is a directory (created if
    missing): ``curves-<source>.png`` per source and ``scorer-reliability.png``. A PATH ending in ``.png`` is
    a stem instead: ``<stem>-<source>.png`` and ``<stem>-scorer-reliability.png`` beside it."""
    out = Path(out)
    if out.suffix.lower() == ".png":
        folder, stem = out.parent, out.stem
        named = {source: folder / f"{stem}-{source}.png" for source in sources}
        if scorer:
            named["scorer"] = folder / f"{stem}-{SCORER_FIGURE}"
        return named
    named = {source: out / f"curves-{source}.png" for source in sources}
    if scorer:
        named["scorer"] = out / SCORER_FIGURE
    return named


def _stand_in_caption(source: dict[str, Any]) -> str:
    summary = source.get("outcome_records")
    if summary is not None:  # a deployment's own traffic: its own notes say whether models stood in
        return " ".join(summary.get("notes") or [OUTCOME_NOTE])
    models = source.get("stand_ins") or {}
    if models:
        shown = "; ".join(f"{Tier(t).label} = {m.rsplit('/', 1)[-1]}" for t, m in models.items())
        return (f"Replay: recorded answers of real models stand in for the Claude tiers ({shown}); "
                "Claude list prices, estimated tokens.")
    return STAND_IN_NOTE


def plot_report(report: dict[str, Any], out: str | Path, scorer: dict[str, Any] | None = None) -> list[Path]:
    """One cost-quality figure per source (and one for the scorer's reliability), each ~900 px wide:
    see :func:`figure_paths` for where they go. Returns the files written."""
    import matplotlib  # optional (the report extra), and slow to import: only for --plot

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sources = report["sources"]
    paths = figure_paths(out, [s["source"] for s in sources], bool(scorer))
    written: list[Path] = []
    for source in sources:
        fig = _source_figure(plt, source, report)
        written.append(_save(plt, fig, paths[source["source"]]))
    if scorer:
        written.append(_save(plt, _scorer_figure(plt, scorer), paths["scorer"]))
    return written


def _save(plt: Any, fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=FIGURE_DPI)
    plt.close(fig)
    return path


def _source_figure(plt: Any, source: dict[str, Any], report: dict[str, Any]) -> Any:
    fig, ax = plt.subplots(figsize=(FIGURE_WIDTH_PX / FIGURE_DPI, 5.6))
    operating = report.get("threshold")
    for row in source["policies"]:
        if row["curve"]:
            style = dict(CURVE_STYLES.get(row["name"], {"marker": ".", "linestyle": "-"}))
            xs = [100 * p["cost_fraction"] for p in row["curve"]]
            ys = [p["quality"] for p in row["curve"]]
            default = ", the default" if row["name"] == DEFAULT_POLICY else ""
            label = f"{row['name']} (APGR {_fmt(row['apgr'], '{:.2f}')}){default}"
            ax.plot(xs, ys, label=label, markevery=5, markersize=5, zorder=4 if row["name"] == DEFAULT_POLICY else 3,
                    **style)
            if row["cost_fraction_of_premium"] is not None and row["threshold"] is not None:
                # The policy at the operating threshold: a ringed marker on its curve.
                ax.scatter([100 * row["cost_fraction_of_premium"]], [row["quality"]], s=90, facecolors="none",
                           edgecolors=style.get("color", "black"), linewidths=1.6, zorder=6)
        else:
            style = POINT_STYLES.get(row["name"], {"marker": "o"})
            ax.scatter([100 * row["cost_fraction_of_premium"]], [row["quality"]], label=row["name"], zorder=5,
                       **style)
    if operating is not None:
        ax.scatter([], [], s=90, facecolors="none", edgecolors="black", linewidths=1.6,
                   label=f"at threshold {operating:g} (the deployment's)")
    premium = source.get("always_premium_quality")
    if premium is not None:
        ax.axhline(premium, color="black", linewidth=0.6, linestyle=(0, (2, 3)), zorder=1)
    ax.set_xlabel("model cost as % of always-premium (Opus)")
    ax.set_ylabel("quality (mean recorded score, 0-1)")
    ax.xaxis.set_major_formatter(matplotlib_percent())
    ax.grid(alpha=0.3)
    noise = " (too few to read: noise)" if source["n"] < 50 else ""
    ax.set_title(f"{source['source']}: cost vs quality, {source['n']} {report.get('split', '')} requests{noise}, "
                 f"tiers {'/'.join(source['tiers'])}", fontsize=11, loc="left")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
              title="policy (curves: threshold 0 to 1)", title_fontsize=8)
    fig.text(0.01, 0.015, _stand_in_caption(source) + "  Dotted line: always-premium quality.", fontsize=7.5,
             color="#444444", wrap=True)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def matplotlib_percent() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda value, _pos: f"{value:.0f}%")


def _scorer_figure(plt: Any, scorer: dict[str, Any]) -> Any:
    fig, ax = plt.subplots(figsize=(FIGURE_WIDTH_PX / FIGURE_DPI, 5.2))
    looks = [("#0072b2", "o"), ("#e69f00", "s"), ("#009e73", "D"), ("#cc79a7", "^")]
    for (name, rep), (color, marker) in zip(scorer.items(), looks * 4, strict=False):
        bins = [b for b in rep.get("reliability", []) if b.get("count", 1)]
        ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], color=color, marker=marker,
                label=f"{name}: AUROC {rep.get('auroc') or 0:.2f}, n={rep.get('n', '?')}")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8, label="perfectly calibrated")
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("scorer confidence (bin mean)")
    ax.set_ylabel("share of those answers that are right (score >= 0.5)")
    ax.set_title("Scorer reliability on holdout answers (both recorded models)", fontsize=11, loc="left")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.grid(alpha=0.3)
    fig.text(0.01, 0.015, STAND_IN_NOTE, fontsize=7.5, color="#444444", wrap=True)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


# -- regression check -------------------------------------------------------------------------------------
def compare(new: dict[str, Any], old: dict[str, Any], tolerance: float = 0.01) -> tuple[list[str], bool]:
    """Per-policy deltas; regressed if quality drops more than ``tolerance`` at equal (or lower) cost."""
    lines, regressed = [], False
    old_sources = {s["source"]: s for s in old.get("sources", [])}
    for source in new["sources"]:
        before = old_sources.get(source["source"])
        if before is None:
            lines.append(f"{source['source']}: not in the old report")
            continue
        old_rows = {r["name"]: r for r in before["policies"]}
        for row in source["policies"]:
            prior = old_rows.get(row["name"])
            if prior is None:
                continue
            if row["curve"] and prior["curve"]:
                # Quality the new curve reaches at the old operating point's cost.
                at_cost = metrics.best_quality_at(
                    [(p["cost_fraction"], p["quality"]) for p in row["curve"]], prior["cost_fraction_of_premium"])
                drop = prior["quality"] - (at_cost if at_cost is not None else 0.0)
            elif abs(row["cost_fraction_of_premium"] - prior["cost_fraction_of_premium"]) <= 0.01:
                drop = prior["quality"] - row["quality"]
            else:
                drop = 0.0
            bad = drop > tolerance
            regressed |= bad
            lines.append(
                f"{source['source']:<18} {row['name']:<24} quality {prior['quality']:.3f} -> {row['quality']:.3f} "
                f"({row['quality'] - prior['quality']:+.3f}), cost {prior['cost_fraction_of_premium']:.1%} -> "
                f"{row['cost_fraction_of_premium']:.1%}{'  REGRESSION' if bad else ''}"
            )
    return lines, regressed


def default_datasets() -> list[str]:
    """The shared dev data when it sits beside the project, else the vendored sample."""
    shared = Path("../shared/data")
    names = ["llmrouter", "routellm-mmlu", "routellm-gsm8k", "routellm-mtbench"]
    found = [shared / f"{n}.dev.jsonl.gz" for n in names]
    return [str(p) for p in found if p.exists()] or [str(sample_path())]


def resolve_s3(paths: Sequence[str | Path], into: Path) -> tuple[list[str], dict[str, str]]:
    """``paths`` to read: an ``s3://`` prefix of shared-format records is copied into ``into`` and replaced by
    its record files, each checked like a local --dataset (a problem names the s3:// object); a prefix of outcome
    records stays as it is (load_outcomes reads it). Returns the paths and {local copy: its s3:// name}."""
    resolved: list[str] = []
    shown: dict[str, str] = {}
    for number, path in enumerate(paths):
        copied = s3_shared_datasets(str(path), into / str(number)) if is_s3(path) else None
        if copied is None:
            resolved.append(str(path))
            continue
        for name, local in copied:
            try:
                check_dataset(local)
            except DatasetError as exc:
                raise DatasetError(str(exc).replace(str(local), name)) from None
            resolved.append(str(local))
            shown[str(local)] = name
    return resolved, shown


def main(args: Any) -> int:
    with tempfile.TemporaryDirectory(prefix="model-router-eval-") as folder:  # s3:// datasets' local copies
        return _main(args, Path(folder))


def _main(args: Any, folder: Path) -> int:
    settings = Settings.from_mapping({})
    prices = tier_prices(settings.model_ids, settings.price_overrides)
    if args.prices:
        data = json.loads(Path(args.prices).read_text())
        prices = {Tier(k): Price(float(v["input"]), float(v["output"]), "--prices") for k, v in data.items()}
    train = getattr(args, "train", None)
    # --train/--test: every --test record is measured (no split); else --split of --dataset.
    split = "all" if train else (args.split or "holdout")
    paths, shown = resolve_s3(getattr(args, "test", None) or args.dataset or default_datasets(), folder / "test")
    if train:
        train, shown_train = resolve_s3(train, folder / "train")
        shown.update(shown_train)
    threshold = args.threshold if args.threshold is not None else default_threshold()
    report = run_eval(paths, policies=args.policy, prices=prices, threshold=threshold, split=split,
                      limit=args.limit, bootstrap=getattr(args, "bootstrap", uncertainty.BOOTSTRAP_SAMPLES),
                      train=train, shown=shown, llm_accuracy=getattr(args, "llm_accuracy", None),
                      llm_margin=getattr(args, "llm_margin", None),
                      # --prices replaces the table: the classifier (the Haiku tier's model) costs its Haiku price.
                      classifier_price=prices[Tier.HAIKU] if args.prices else None)
    scorer = None
    if args.plot or args.scorer:
        # The scorer is measured on answer texts of the shared-format datasets (outcome records are left out).
        shared = [p for p in paths if not is_outcome_dataset(p)]
        scorer = scorer_reliability(shared, split=split) if shared else {}
        report["scorer"] = scorer
        if args.scorer and not shared:
            print("scorer: not measured: it is measured on shared-format datasets with answer texts, and every "
                  "--dataset here is outcome records", file=sys.stderr)
    if args.workflow:
        # Late for start-up time: the workflow check runs the local engine, and moto takes seconds to import.
        from model_router_tools.eval.workflow import check_operating_points

        report["workflow"] = check_operating_points(report, paths, prices=prices, sample=args.workflow,
                                                    threshold=threshold, split=split)
    print_report(report)
    if scorer:
        for name, rep in scorer.items():
            print(f"scorer on {name}: AUROC {rep['auroc']}, accept rate {rep['accept_rate']}, "
                  f"false-accept rate {rep['false_accept_rate']} at threshold {rep['threshold']} (n={rep['n']})")
    if report.get("workflow"):
        w = report["workflow"]
        print(f"real workflow: {w['executions']} executions in {w['seconds']:.1f} s "
              f"({w['executions_per_second']:.0f}/s); agreement with the analytic sweep: {w['agreement']:.2%}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    if args.plot:
        for path in plot_report(report, args.plot, scorer):
            print(f"figure: {portable_path(path)}", file=sys.stderr)
    if args.compare:
        lines, regressed = compare(report, json.loads(Path(args.compare).read_text()), args.tolerance)
        print("\n".join(lines))
        if regressed:
            print(f"regression: quality dropped by more than {args.tolerance} at equal cost", file=sys.stderr)
            return 1
    return 0
