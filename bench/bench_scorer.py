"""Score Answer on hostile input: milliseconds per scorer step, worst case first.

A caller controls the response_format (its patterns, its size, its shape) and, through the prompt, much
of the answer. Each case below runs the scorer's whole step (decisions.score_step, what the Lambda
runs) on the deployment's default settings and prints the slowest of the repeats; the budget is 50 ms.

    python bench/bench_scorer.py [--repeats 5]
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

from model_router.decisions import score_step
from model_router.settings import Settings
from model_router.steps import classify_step

BUDGET_MS = 50.0
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per case (the slowest is reported)")
    args = parser.parse_args()
    settings = Settings()
    worst = 0.0
    print(f"scorer_budget: {BUDGET_MS:.0f} ms per Score Answer step")
    for name, response_format, answer in cases():
        state = state_for(response_format, answer, settings)
        score_step(copy.deepcopy(state), settings)  # warm: model file, compiled patterns
        samples = []
        for _ in range(args.repeats):
            fresh = copy.deepcopy(state)
            started = time.perf_counter()
            out = score_step(fresh, settings)
            samples.append((time.perf_counter() - started) * 1000)
        slowest = max(samples)
        worst = max(worst, slowest)
        reasons = "; ".join(out["attempts"][-1]["reasons"])[:70]
        print(f"scorer_case: {slowest:7.2f} ms max, {percentile(samples, 50):7.2f} ms p50  {name}  [{reasons}]")
    verdict = "within" if worst <= BUDGET_MS else "OVER"
    print(f"scorer_worst_case: {worst:.1f} ms ({verdict} the {BUDGET_MS:.0f} ms budget)")


if __name__ == "__main__":
    main()
