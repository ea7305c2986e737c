"""``model-router report --outcomes``: what a deployment's outcome records say about its routing.

From the records the shadow workflow writes (replay.outcome_records), every figure weighted by
1 / sample_probability (a self-normalised Horvitz-Thompson mean: the uncertainty sampler shadows uncertain
requests more often, and the weights undo that):

* per start tier (meta.route.start_tier): how many records, and how often each tier below premium answered
  as well as premium did (its judged score >= premium's), with a 95% Wilson interval;
* the routed answers' quality (meta.route.tier's score) against always-premium's on the same requests: both
  weighted means and their paired difference, with 95% intervals; the routed spend against premium's; the same
  per router model arm (meta.route.arm: champion and challenger) when the records carry more than one;
* what shadowing costs: in all, the judge's share, and per 1,000 routed requests at the observed sample
  rate (sum of shadow costs / sum of weights: each record's cost times its sample probability, per request);
* the judge methods, the outcomes without a score (failed tiers, unreadable verdicts) and the records' notes.

Intervals are closed-form (uncertainty.weighted_mean_interval, uncertainty.wilson_interval on Kish's
effective sample size), so the report needs no numpy.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from model_router.tiers import Tier
from model_router_tools.eval.uncertainty import weighted_mean_interval, wilson_interval
from model_router_tools.replay.outcome_records import OutcomeSet, sample_weight

ERROR_SHOWN = 80  # characters of an outcome's error kept when errors are counted


def _score(record: dict[str, Any], model: str) -> float | None:
    value = record["outcomes"][model]["score"]
    return None if value is None else float(value)


def _premium_cost(record: dict[str, Any], premium_model: str) -> float:
    """What always-premium would have cost: meta.route.premium_cost_usd, else the premium outcome's cost."""
    value = record["meta"]["route"].get("premium_cost_usd")
    return float(value if value is not None else record["outcomes"][premium_model]["cost_usd"])


def _interval(result: tuple[float, list[float]] | None, n: int) -> dict[str, Any] | None:
    if result is None:
        return None
    value, ci95 = result
    return {"value": round(value, 4), "ci95": ci95, "n": n}


def _quality_and_cost(records: list[dict[str, Any]], weights: list[float],
                      tiers: dict[Tier, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The routed answers' quality against always-premium's on the same records (weighted means, their paired
    difference, 95% intervals), and the routed spend against premium's."""
    premium = list(tiers)[-1]
    scored = [(s, p, w) for r, w in zip(records, weights, strict=True)
              if (s := _score(r, tiers[Tier(r["meta"]["route"]["tier"])])) is not None
              and (p := _score(r, tiers[premium])) is not None]
    paired_weights = [w for *_, w in scored]
    quality = {
        "routed": _interval(weighted_mean_interval([s for s, _, _ in scored], paired_weights, (0.0, 1.0)),
                            len(scored)),
        "premium": _interval(weighted_mean_interval([p for _, p, _ in scored], paired_weights, (0.0, 1.0)),
                             len(scored)),
        "difference": _interval(weighted_mean_interval([s - p for s, p, _ in scored], paired_weights, (-1.0, 1.0)),
                                len(scored)),
        "n": len(scored),
    }
    total_weight = sum(weights)
    routed_cost = sum(w * float(r["meta"]["route"]["cost_usd"]) for r, w in zip(records, weights, strict=True))
    premium_cost = sum(w * _premium_cost(r, tiers[premium]) for r, w in zip(records, weights, strict=True))
    cost = {
        "routed_usd_per_request": round(routed_cost / total_weight, 8),
        "premium_usd_per_request": round(premium_cost / total_weight, 8),
        "fraction_of_premium": round(routed_cost / premium_cost, 4) if premium_cost else None,
        "savings_pct": round(100 * (1 - routed_cost / premium_cost), 2) if premium_cost else None,
        "recorded_routed_usd": round(sum(float(r["meta"]["route"]["cost_usd"]) for r in records), 8),
        "recorded_premium_usd": round(sum(_premium_cost(r, tiers[premium]) for r in records), 8),
    }
    return quality, cost


def outcome_figures(outcomes: OutcomeSet) -> dict[str, Any]:
    """Every figure of the report, as a JSON-ready dict (``--json`` prints it)."""
    records = outcomes.records
    tiers = outcomes.tiers
    premium = list(tiers)[-1]
    cheaper = [t for t in tiers if t != premium]
    weights = [sample_weight(r) for r in records]
    total_weight = sum(weights)

    by_start: dict[str, Any] = {}
    for start in [*(t.value for t in tiers), "all"]:
        group = [(r, w) for r, w in zip(records, weights, strict=True)
                 if start == "all" or r["meta"]["route"]["start_tier"] == start]
        if not group:
            continue
        rates: dict[str, Any] = {}
        for tier in cheaper:
            pairs = [(s, p, w) for r, w in group
                     if (s := _score(r, tiers[tier])) is not None and (p := _score(r, tiers[premium])) is not None]
            rates[tier.value] = _interval(wilson_interval([s >= p for s, p, _ in pairs], [w for *_, w in pairs]),
                                          len(pairs))
        by_start[start] = {"records": len(group),
                           "weighted_share": round(sum(w for _, w in group) / total_weight, 4),
                           "as_good_as_premium": rates}

    quality, cost = _quality_and_cost(records, weights, tiers)
    by_arm: dict[str, Any] = {}
    arms = sorted({str(arm) for r in records if (arm := r["meta"]["route"].get("arm"))})
    if len(arms) > 1:  # champion and challenger both routed: the same figures over each arm's records
        for arm in arms:
            mine = [(r, w) for r, w in zip(records, weights, strict=True) if r["meta"]["route"].get("arm") == arm]
            arm_quality, arm_cost = _quality_and_cost([r for r, _ in mine], [w for _, w in mine], tiers)
            versions = Counter(str(r["meta"]["route"].get("model_version")) for r, _ in mine)
            by_arm[arm] = {"records": len(mine), "model_versions": dict(versions.most_common()),
                           "quality": arm_quality, "cost": arm_cost}

    shadow_total = sum(float(r["meta"]["shadow_cost_usd"]) for r in records)
    judge_total = sum(float(r["meta"]["judge"]["cost_usd"]) for r in records)
    shadow = {
        "total_usd": round(shadow_total, 8),
        "judge_usd": round(judge_total, 8),
        "judge_share": round(judge_total / shadow_total, 4) if shadow_total else None,
        "per_record_usd": round(shadow_total / len(records), 8),
        # Each routed request is shadowed with its sample probability p: the expected shadow spend per routed
        # request is E[p x cost], estimated by sum(cost) / sum(1 / p).
        "per_1000_routed_usd": round(1000 * shadow_total / total_weight, 6),
    }

    judges = [r["meta"]["judge"] for r in records]
    unscored: dict[str, Any] = {}
    for tier, model in tiers.items():
        missing = [r["outcomes"][model] for r in records if r["outcomes"][model]["score"] is None]
        if missing:
            errors = Counter(str(o.get("error") or "no score, no error given")[:ERROR_SHOWN] for o in missing)
            unscored[tier.value] = {"count": len(missing), "errors": dict(errors.most_common())}
    probabilities = [float(r["meta"]["sample_probability"]) for r in records]
    return {
        "source": outcomes.where,
        "records": len(records),
        "duplicates": outcomes.duplicates,
        "files": outcomes.files,
        "tiers": {t.value: m for t, m in tiers.items()},
        "samplers": dict(sorted(outcomes.samplers.items())),
        "sample_probability": {"min": min(probabilities), "max": max(probabilities)},
        "weighting": "every mean weighted by 1 / sample_probability (self-normalised)",
        "by_start_tier": by_start,
        "quality": quality,
        "cost": cost,
        "by_arm": by_arm,
        "shadow": shadow,
        "judge": {
            "methods": dict(Counter(str(j["method"]) for j in judges).most_common()),
            "models": dict(Counter(str(j.get("model_id")) for j in judges if j.get("model_id")).most_common()),
            "prompt_versions": dict(Counter(str(j["prompt_version"]) for j in judges).most_common()),
            "calls": sum(int(j.get("calls") or 0) for j in judges),
            "notes": dict(Counter(str(j["note"]) for j in judges if j.get("note")).most_common()),
        },
        "route_status": dict(Counter(str(r["meta"]["route"].get("status")) for r in records).most_common()),
        "unscored": unscored,
        "notes": outcomes.notes,
    }


def _pct(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "- (no request with both scores)"
    low, high = entry["ci95"]
    return f"{entry['value']:.1%} [{low:.1%}, {high:.1%}] (n={entry['n']})"


def _mean(entry: dict[str, Any] | None, signed: bool = False) -> str:
    if entry is None:
        return "-"
    low, high = entry["ci95"]
    pattern = "{:+.3f}" if signed else "{:.3f}"
    return f"{pattern.format(entry['value'])} [{pattern.format(low)}, {pattern.format(high)}]"


def render_outcomes(fig: dict[str, Any], console: Any) -> None:
    """The figures as a table, then the notes the records carry (names from the records are escaped)."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"model-router report --outcomes: {escape(fig['source'])}", show_header=False,
                  title_justify="left")
    table.add_column("figure")
    table.add_column("value", overflow="fold")
    probability = fig["sample_probability"]
    rate = (f"{probability['min']:g}" if probability["min"] == probability["max"]
            else f"{probability['min']:g}..{probability['max']:g}")
    rows = [
        ("records", f"{fig['records']} requests from {fig['files']} file(s) ({fig['duplicates']} duplicate ids, "
                    "the last kept)"),
        ("sampled by", f"{', '.join(f'{k} {v}' for k, v in fig['samplers'].items())}; sample probability {rate}"),
        ("weighting", fig["weighting"]),
        ("tiers", ", ".join(f"{t} {m}" for t, m in fig["tiers"].items())),
    ]
    premium = list(fig["tiers"])[-1]
    for start, entry in fig["by_start_tier"].items():
        rates = "; ".join(f"{tier} {_pct(value)}" for tier, value in entry["as_good_as_premium"].items())
        label = "all start tiers" if start == "all" else f"started at {start}"
        rows.append((f"{label}: as good as {premium}",
                     f"{entry['records']} records ({entry['weighted_share']:.1%} weighted): {rates}"))
    quality = fig["quality"]
    rows += [
        ("quality: routed vs always-premium", f"{_mean(quality['routed'])} vs {_mean(quality['premium'])} "
                                              f"(n={quality['n']} with both scores)"),
        ("quality difference (routed - premium)", _mean(quality["difference"], signed=True)),
    ]
    cost = fig["cost"]
    if cost["fraction_of_premium"] is not None:
        rows.append(("cost: routed vs always-premium",
                     f"${cost['routed_usd_per_request']:.6f} vs ${cost['premium_usd_per_request']:.6f} per request "
                     f"({cost['fraction_of_premium']:.1%} of premium, saves {cost['savings_pct']}%)"))
    for arm, entry in fig.get("by_arm", {}).items():
        arm_quality, arm_cost = entry["quality"], entry["cost"]
        share = (f"; {arm_cost['fraction_of_premium']:.1%} of premium's cost"
                 if arm_cost["fraction_of_premium"] is not None else "")
        versions = ", ".join(entry["model_versions"])
        rows.append((f"arm {arm} ({versions})",
                     f"{entry['records']} records: quality {_mean(arm_quality['routed'])} vs premium "
                     f"{_mean(arm_quality['premium'])}, difference {_mean(arm_quality['difference'], signed=True)}"
                     f"{share}"))
    shadow = fig["shadow"]
    judge_share = "-" if shadow["judge_share"] is None else f"{shadow['judge_share']:.1%}"
    rows += [
        ("shadowing cost", f"${shadow['total_usd']:.6f} (judge ${shadow['judge_usd']:.6f}, {judge_share}); "
                           f"${shadow['per_record_usd']:.6f} per record"),
        ("shadowing per 1,000 routed requests", f"${shadow['per_1000_routed_usd']:.6f} at the observed sample rate"),
        ("judge methods", ", ".join(f"{k} {v}" for k, v in fig["judge"]["methods"].items())),
        ("route status", ", ".join(f"{k} {v}" for k, v in fig["route_status"].items())),
        ("unscored (failed or unjudged)", "; ".join(
            f"{tier} {entry['count']}: " + ", ".join(f"{error} {n}" for error, n in entry["errors"].items())
            for tier, entry in fig["unscored"].items()) or "0"),
    ]
    for name, value in rows:
        table.add_row(name, escape(value))
    console.print(table)
    for note in fig["notes"]:
        console.print(f"[dim]{escape(note)}[/dim]")
