"""Classify Request and Score Answer on hostile input: milliseconds per step, against a budget.

A caller controls the prompt (up to the request size limit), the response_format (its patterns, its size,
its shape) and, through the prompt, much of the answer. Each case runs a Lambda's whole step
(steps.classify_step, decisions.score_step) on the deployment's default settings and prints the slowest
of the repeats and their median; the verdict is on the worst case's median (the slowest single run also
carries garbage-collection pauses). Budgets: 50 ms for the scorer, 100 ms for the classifier on a prompt at
the size limit. Exits 1 when a case takes ten times its budget: super-linear work a caller can trigger.

    python bench/bench_hostile_input.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import percentile

from model_router.contracts.request import MAX_REQUEST_BYTES
from model_router.settings import Settings
from model_router.steps.classify import classify_step
from model_router.steps.decide import score_step

BUDGET_MS = 50.0
CLASSIFY_BUDGET_MS = 100.0
CATASTROPHIC = 10  # times the budget
# Prompts at the size limit made of one short shape repeated: runs of digits, spaces, operators, markup.
PROMPT_SHAPES = ["a", "1", " 1", "1 ", "1.", "1,", "1+", "1+1=2 ", "a1 ", "$1", "? ", ". ", "é", "([", "```",
                 "\\frac{1}{2}", "step by step ", "prove that the derivative ", "how many ",
                 "def f(x):\n    return x\n"]
HOSTILE_PATTERNS = [r"^(a|a)*$", r"^((a+))+$", r"^(a+|b)+$", r"^(\d+\.?)+$", r"^(.*a){25}$", r"^(\w|.)*X$",
                    r"^(a+)+$"]
SHORT_SUBJECT = "a" * 30 + "!"
LONG_SUBJECT = "a" * 100_000 + "!"


def _exponential_refs(levels: int) -> dict[str, Any]:
    """Each level refers twice to the next: 2**levels evaluations for a naive validator."""
    defs = {f"l{i}": {"anyOf": [{"$ref": f"#/$defs/l{i + 1}"}, {"$ref": f"#/$defs/l{i + 1}"}]} for i in range(levels)}
    defs[f"l{levels}"] = {"type": "string", "minLength": 1000}
    return {"$defs": defs, "$ref": "#/$defs/l0"}


def cases() -> list[tuple[str, dict[str, Any] | None, str]]:
    """(name, response_format, answer)."""
    out: list[tuple[str, dict[str, Any] | None, str]] = []
    for pattern in HOSTILE_PATTERNS:
        for label, subject in (("30 chars", SHORT_SUBJECT), ("100 KB", LONG_SUBJECT)):
            out.append((f"pattern {pattern} on {label}", {"type": "string", "pattern": pattern}, json.dumps(subject)))
        out.append((f"propertyNames {pattern}", {"type": "object", "propertyNames": {"pattern": pattern}},
                    json.dumps({SHORT_SUBJECT: 1, LONG_SUBJECT: 2})))
        out.append((f"patternProperties + additionalProperties {pattern}",
                    {"type": "object", "patternProperties": {pattern: {}}, "additionalProperties": False},
                    json.dumps({SHORT_SUBJECT: 1, LONG_SUBJECT: 2})))
    rows = [{"id": i, "name": f"item {i}", "tags": ["x", "y"]} for i in range(4000)]
    out.append(("100 KB JSON array, uniqueItems on objects",
                {"type": "array", "uniqueItems": True, "items": {"type": "object"}}, json.dumps(rows)[:100_000]
                .rsplit("},", 1)[0] + "}]"))
    out.append(("100 KB JSON array against a typed item schema",
                {"type": "array", "items": {"type": "object", "required": ["id", "name"],
                                            "properties": {"id": {"type": "integer"},
                                                           "name": {"type": "string", "pattern": "^item [0-9]+$"}}}},
                json.dumps(rows)[:100_000].rsplit("},", 1)[0] + "}]"))
    out.append(("$ref fan-out 2**40", _exponential_refs(40), json.dumps("short")))
    prose = ("Step 1: 12 * 7 = 84, then 84 + 16 = 100. Probably the answer is 100, I think. " * 1300)[:100_000]
    out.append(("100 KB prose with arithmetic, no response_format", None, prose))
    out.append(("100 KB of one character, no response_format", None, "a" * 100_000))
    return out


def state_for(response_format: dict[str, Any] | None, answer: str, settings: Settings) -> dict[str, Any]:
    request: dict[str, Any] = {"prompt": "Compute the totals and answer in the requested format."}
    if response_format is not None:
        request["response_format"] = response_format
    state = classify_step({"request": request, "execution_name": "bench"}, settings)
    if not state["valid"]:
        raise SystemExit(f"the bench's own request is invalid: {state['invalid']['cause']}")
    state["invocation"] = {"attempt": {
        "tier": "haiku", "model_id": settings.model_ids[next(iter(settings.model_ids))], "answer": answer,
        "stop_reason": "end_turn", "input_tokens": 40, "output_tokens": len(answer) // 4, "tokens_estimated": False,
        "latency_ms": 1.0, "cost_usd": 0.0, "provider": "bench"}}
    return state


def time_classify(settings: Settings, repeats: int) -> float:
    """The slowest Classify Request (median of the repeats) over every prompt shape and both strategies."""
    worst = 0.0
    classify_step({"request": {"prompt": "warm up"}}, settings)  # load the learned model once
    for strategy in ("learned", "heuristic"):
        for shape in PROMPT_SHAPES:
            size = MAX_REQUEST_BYTES - 200
            prompt = (shape * (size // len(shape.encode()) + 1))[: size // len(shape.encode()) * len(shape)]
            samples = []
            for _ in range(repeats):
                started = time.perf_counter()
                classify_step({"request": {"prompt": prompt, "routing": {"strategy": strategy}}}, settings)
                samples.append((time.perf_counter() - started) * 1000)
            worst = max(worst, percentile(samples, 50))
            print(f"classify_case: {max(samples):7.2f} ms max, {percentile(samples, 50):7.2f} ms p50  {strategy} "
                  f"{shape!r} x {len(prompt) // len(shape)}")
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per case")
    args = parser.parse_args()
    settings = Settings()
    worst_classify = time_classify(settings, args.repeats)
    worst = 0.0
    for name, response_format, answer in cases():
        state = state_for(response_format, answer, settings)
        score_step(copy.deepcopy(state), settings)  # warm: model file, compiled patterns
        samples = []
        for _ in range(args.repeats):
            fresh = copy.deepcopy(state)
            started = time.perf_counter()
            out = score_step(fresh, settings)
            samples.append((time.perf_counter() - started) * 1000)
        worst = max(worst, percentile(samples, 50))
        reasons = "; ".join(out["attempts"][-1]["reasons"][1:])[:60]
        print(f"scorer_case: {max(samples):7.2f} ms max, {percentile(samples, 50):7.2f} ms p50  {name}  [{reasons}]")
    failed = False
    for step, value, budget in (("classify", worst_classify, CLASSIFY_BUDGET_MS), ("scorer", worst, BUDGET_MS)):
        verdict = "within" if value <= budget else "OVER"
        print(f"{step}_worst_case: {value:.1f} ms p50 of the slowest case ({verdict} the {budget:.0f} ms budget)")
        failed = failed or value > CATASTROPHIC * budget
    if failed:
        raise SystemExit(f"a hostile input took over {CATASTROPHIC}x its budget: super-linear work")


if __name__ == "__main__":
    main()
