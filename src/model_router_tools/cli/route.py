"""``model-router route``: where any request would go, and why, without calling a model.

It runs the Classify Request step's own code (:func:`model_router.steps.classify.classify_step`) with the deployment's
default settings, so the start tier, the classification and the plan are exactly what the workflow would
start from; the per-tier costs are the pre-call estimates the workflow's budget checks use
(:func:`model_router.steps.decide.expected_attempt_cost`) and the escalation path is the one its scorer step
would walk (:func:`model_router.steps.decide.escalation_path`). No replay data is needed: this works for any
prompt, recorded or not.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from model_router.contracts import json_text as strict_json
from model_router.pricing import tier_prices
from model_router.settings import Settings
from model_router.tiers import TIER_ORDER, Tier
from model_router_tools.cli.console import rich_console
from model_router_tools.cli.errors import EXIT_OK, EXIT_USAGE, UsageError
from model_router_tools.cli.types import STRATEGIES

TIER_NAMES = [t.value for t in TIER_ORDER]

NOTE = ("No model was called: the start tier is the classifier's decision; success probabilities, output tokens "
        "and costs are its estimates before any answer exists. A real run's cost depends on the answer's length, "
        "and whether it escalates on the answer's score.")
LEARNED_NOTE = ("The learned router's predictions come from recorded outcomes of open and commercial models standing "
                "in for Haiku/Sonnet/Opus (src/model_router/data/router_model.md), not from Claude.")

# What a small model's one-word reply adds before the first answer (the source design's ~200-400 ms), for the
# rendering only: route measures nothing.
CLASSIFIER_LATENCY_MS = [200, 400]

DESCRIPTION = """\
Classify one request with the Classify Request step's own code and the deployment's default settings,
and show its route plan: the start tier and why, the signals, each tier's estimated success, output
tokens and cost, the escalation path and the caps that applied. No model is called and no recorded data
is needed: it works for any prompt.

    model-router route "What is 2+2?"
    model-router route --max-tier sonnet --max-cost 0.01 "Prove that there are infinitely many primes."
    model-router route -f examples/structured.json --json   # from a checkout
"""
JSON_FIELDS = """\
--json prints one object (no prompt text in it):
  start_tier        the tier the workflow would call first (haiku, sonnet or opus)
  model_id          that tier's Bedrock model id (the deployment's default)
  classification    Classify Request's output, verbatim: complexity, tier, strategy, score, reason,
                    signals (the features), tier_probabilities and route_estimates (learned router only)
  plan              the run's limits, verbatim: threshold, max_cost_usd, tiers, min_tier, max_tier,
                    escalate, fallback, max_tokens
  caps              what the request set: tier (a caller's override), min_tier, max_tier, tiers
                    (routing.tiers), max_cost_usd, confidence_threshold, strategy (null: not set)
  tiers             per tier: model_id, allowed, success_probability, gain, utility (learned router,
                    else null), expected_output_tokens, expected_cost_usd (one call, pre-call
                    estimate), price_per_1m_tokens {input, output} in USD
  escalation_path   the tiers the run would answer on if every answer scored under the threshold
  budget_stops_escalation  whether max_cost_usd cuts that path short
  model_called      always false
  classifier_call   strategies llm and learned+llm, when the workflow would ask the LLM classifier first:
                    model_id, input_tokens, expected_cost_usd, expected_latency_ms [low, high] (null:
                    no call; the classification says why). The start shown is then the learned
                    router's, which the workflow uses should that call fail
  note              what the numbers are (estimates) and where they come from
"""


def add_parser(sub: Any) -> None:
    route = sub.add_parser(
        "route",
        help="where a prompt would go and why: tier, estimates, cost per tier (no model call, any prompt)",
        description=DESCRIPTION,
        epilog=JSON_FIELDS + "\nexit status: 0 planned, 2 invalid request (Router.InvalidRequest: FIELD: why) or "
                             "bad usage",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    route.add_argument("prompt", nargs="?", help="the prompt text (or use --file)")
    route.add_argument("--file", "-f", help="a request JSON file (request.schema.json); - for stdin")
    route.add_argument("--tier", choices=TIER_NAMES, help="force the starting tier (a caller's override)")
    route.add_argument("--strategy", choices=STRATEGIES)
    route.add_argument("--threshold", type=float, help="confidence threshold for this request")
    route.add_argument("--max-cost", type=float, help="max_cost_usd for this request")
    route.add_argument("--min-tier", choices=TIER_NAMES)
    route.add_argument("--max-tier", choices=TIER_NAMES)
    route.add_argument("--json", action="store_true", help="print the plan as JSON (fields below)")
    route.set_defaults(func=run)


def read_request_file(name: str) -> Any:
    """The JSON value in file ``name`` (``-``: stdin), parsed strictly."""
    try:
        if name == "-":
            stream = getattr(sys.stdin, "buffer", None)
            data: str | bytes = stream.read() if stream is not None else sys.stdin.read()
        else:
            data = Path(name).read_bytes()
    except OSError as exc:
        raise UsageError(f"--file: cannot read {name}: {exc.strerror or exc}") from None
    try:
        return strict_json.loads(data)
    except strict_json.JSONTextError as exc:
        raise UsageError(f"--file: {'stdin' if name == '-' else name} is not valid JSON: {exc}") from None


def request_from_args(args: argparse.Namespace) -> Any:
    """The request a command line describes: PROMPT or --file, then the routing flags on top (a flag wins
    over the file). Anything else is left for the request contract to judge."""
    if args.prompt is not None and args.file:
        raise UsageError("give a prompt or --file REQUEST.json, not both")
    if args.file:
        request = read_request_file(args.file)
    elif args.prompt is not None:
        request = {"prompt": args.prompt}
    else:
        raise UsageError("give a prompt or --file REQUEST.json")
    if not isinstance(request, dict):
        return request  # the contract names it: "(request): must be a JSON object"
    flags = {"strategy": args.strategy, "confidence_threshold": args.threshold, "max_cost_usd": args.max_cost,
             "min_tier": args.min_tier, "max_tier": args.max_tier}
    given = {key: value for key, value in flags.items() if value is not None}
    if given:
        routing = request.get("routing", {})
        request["routing"] = {**routing, **given} if isinstance(routing, dict) else routing
    if args.tier:
        request["tier"] = args.tier
    return request


def preview(request: Any, settings: Settings) -> dict[str, Any]:
    """The route plan for ``request`` (the machine form ``--json`` prints), or ``{"valid": False, "invalid":
    {...}}`` as Classify Request returns it for a request the contract rejects."""
    # The workflow's own steps (the request contract: jsonschema; the learned router) are imported when a
    # request is planned, not for `--help`.
    from model_router.routing.llm_classifier import LlmClassifier
    from model_router.routing.plan import expected_output
    from model_router.steps.classify import classify_step
    from model_router.steps.decide import escalation_path, expected_attempt_cost

    llm = LlmClassifier(settings, offline=True)
    state = classify_step({"request": request}, settings, llm)
    if not state["valid"]:
        return state
    classification, plan = state["classification"], state["plan"]
    start = Tier(state["route"]["tier"])
    prices = tier_prices(settings.model_ids, settings.price_overrides)
    probabilities = classification.get("tier_probabilities") or {}
    estimates = classification.get("route_estimates") or {}
    predicted_tokens = estimates.get("expected_output_tokens") or {}
    tiers = {}
    for tier in TIER_ORDER:
        tiers[tier.value] = {
            "model_id": settings.model_ids[tier],
            "allowed": tier.value in plan["tiers"],
            "success_probability": probabilities.get(tier.value),
            "gain": (estimates.get("gains") or {}).get(tier.value),
            "utility": (estimates.get("utilities") or {}).get(tier.value),
            "expected_output_tokens": min(plan["max_tokens"], expected_output(predicted_tokens.get(tier.value))),
            "expected_cost_usd": round(expected_attempt_cost(state, tier, settings), 8),
            "price_per_1m_tokens": {"input": prices[tier].input_per_1m, "output": prices[tier].output_per_1m},
        }
    path, budget_cut = escalation_path(state, settings)
    routing = request.get("routing", {})
    caps = {"tier": request.get("tier"),
            **{key: routing.get(key) for key in ("min_tier", "max_tier", "tiers", "max_cost_usd",
                                                 "confidence_threshold", "strategy")}}
    learned = bool(probabilities)
    return {
        "valid": True,
        "start_tier": start.value,
        "model_id": settings.model_ids[start],
        "classification": classification,
        "plan": plan,
        "caps": caps,
        "tiers": tiers,
        "escalation_path": [t.value for t in path],
        "budget_stops_escalation": budget_cut,
        "model_called": False,
        "classifier_call": None if llm.wanted is None else {
            "model_id": llm.model_id, "input_tokens": llm.wanted[0], "expected_cost_usd": round(llm.wanted[1], 8),
            "expected_latency_ms": CLASSIFIER_LATENCY_MS},
        "note": NOTE + (" " + LEARNED_NOTE if learned else ""),
    }


def run(args: argparse.Namespace) -> int:
    request = request_from_args(args)
    # The deployment's defaults (template.yaml's parameters), not this shell's environment.
    plan = preview(request, Settings())
    if not plan["valid"]:
        print(f"Router.InvalidRequest: {plan['invalid']['cause']}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        plan.pop("valid")
        print(json.dumps(plan, indent=2, ensure_ascii=False))
        return EXIT_OK
    render(plan)
    return EXIT_OK


def _money(value: float) -> str:
    return f"${value:.6f}"


def _signals(signals: dict[str, Any]) -> str:
    shown = []
    for key, value in signals.items():
        if value is True:
            shown.append(key.replace("_", " "))
        elif isinstance(value, int) and not isinstance(value, bool) and value:
            shown.append(f"{key.replace('_', ' ')} {value}")
        elif isinstance(value, str):
            shown.append(f"{key}={value}")
    return ", ".join(shown) or "none"


def render(plan: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    console = rich_console()
    cls, limits, caps = plan["classification"], plan["plan"], plan["caps"]
    start = Tier(plan["start_tier"])
    console.print(f"[bold]Start tier: {start.label}[/bold] ({plan['model_id']})  strategy {cls['strategy']}, "
                  f"complexity {cls['complexity']} (score {cls['score']:g}), "
                  f"task type {cls['signals'].get('task_type') or 'not given'}")
    console.print(f"  why: {escape(cls['reason'])}")
    console.print(f"  signals: {escape(_signals(cls['signals']))}")
    call = plan["classifier_call"]
    if call is not None:
        low, high = call["expected_latency_ms"]
        console.print(f"  [bold]needs a model call first:[/bold] the LLM classifier ({call['model_id']}), "
                      f"~{call['input_tokens']} input tokens, ~{_money(call['expected_cost_usd'])}, "
                      f"~{low}-{high} ms before the first answer; route calls no model, so the start above is the "
                      "learned router's (the workflow's own on a failed call)")

    table = Table(title="Per tier (estimates before any call)")
    learned = any(row["success_probability"] is not None for row in plan["tiers"].values())
    headers = ["tier", "allowed"]
    if learned:
        headers += ["P(answers well)", "gain", "utility"]
    headers += ["output tokens", "cost of one call", "USD per 1M in / out"]
    for header in headers:
        table.add_column(header, justify="left" if header in ("tier", "allowed") else "right")

    def number(value: float | None, text: str) -> str:
        return "" if value is None else text.format(value)

    for name, row in plan["tiers"].items():
        label = Tier(name).label + (" (start)" if name == start.value else "")
        cells = [label, "yes" if row["allowed"] else "no"]
        if learned:
            cells += [number(row["success_probability"], "{:.2f}"), number(row["gain"], "{:+.3f}"),
                      number(row["utility"], "{:.3f}")]
        price = row["price_per_1m_tokens"]
        cells += [f"~{row['expected_output_tokens']}", _money(row["expected_cost_usd"]),
                  f"{price['input']:g} / {price['output']:g}"]
        table.add_row(*cells)
    console.print(table)

    path = " → ".join(Tier(t).label for t in plan["escalation_path"])
    if not limits["escalate"]:
        console.print(f"Escalation: off ({start.label} only; failures may still fall back)")
    elif len(plan["escalation_path"]) == 1:
        cut = " (max_cost_usd leaves no room for a higher tier)" if plan["budget_stops_escalation"] else ""
        console.print(f"Escalation path: {path}: no higher allowed tier{cut}")
    else:
        cut = "; max_cost_usd stops it there" if plan["budget_stops_escalation"] else ""
        console.print(f"Escalation path: {path} (each step only if the answer scores under "
                      f"{limits['threshold']:.2f}{cut})")
    budget = limits["max_cost_usd"]
    console.print(
        "Caps: "
        f"tier override {caps['tier'] or 'none'}; "
        f"tiers {', '.join(limits['tiers'])} (min_tier {limits['min_tier']}, max_tier {limits['max_tier']}"
        f"{', routing.tiers given' if caps['tiers'] else ''}); "
        f"max_cost_usd {'none' if budget is None else f'{budget:g}'}; "
        f"threshold {limits['threshold']:g}{' (request)' if caps['confidence_threshold'] is not None else ''}; "
        f"maxTokens {limits['max_tokens']}; fallback {'on' if limits['fallback'] else 'off'}"
    )
    console.print(f"[dim]{escape(plan['note'])}[/dim]")
