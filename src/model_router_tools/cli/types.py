"""argparse ``type=`` functions for the command line's flags, shared by every command that takes them.

Each refuses a value that means nothing (NaN, a negative count, a threshold of 2, a fault nobody knows)
when the command line is parsed, so the user gets one line naming the flag instead of a run that fails
later, or worse, silently ignores it.
"""

from __future__ import annotations

import argparse
import math

# routing.strategy in request.schema.json (the router registry, model_router.routing.plan.ROUTERS, which the CLI
# does not import at start-up; tests/cli check the three agree).
STRATEGIES = ["heuristic", "learned", "cascade", "static", "llm", "learned+llm"]

# routing.max_cost_usd in request.schema.json: exclusiveMinimum 0, maximum 100.
MAX_COST_USD_LIMIT = 100.0

# The same bound as the settings' SHADOW_MAX_USD_PER_DAY.
MAX_DAILY_BUDGET_USD = 1_000_000


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def unit_interval(text: str) -> float:
    """A number in [0, 1]: a confidence threshold, a tolerance on quality."""
    value = _finite(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is outside [0, 1]")
    return value


def sample_rate(text: str) -> float:
    """A share of requests in (0, 1]: 0 would sample nothing, so it is not a rate to ask for."""
    value = _finite(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is outside (0, 1]")
    return value


def daily_budget_usd(text: str) -> float:
    """USD per day, 0 (spend nothing) up to the template parameter's bound."""
    value = _finite(text)
    if not 0 <= value <= MAX_DAILY_BUDGET_USD:
        raise argparse.ArgumentTypeError(f"{text!r} is outside [0, {MAX_DAILY_BUDGET_USD:g}] USD")
    return value


def threshold_list(text: str) -> str:
    """Comma-separated thresholds, each in [0, 1] ('' for none); returned as given, for the command to split."""
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            unit_interval(part)
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None
    return text


def positive_number(text: str) -> float:
    """A finite number above 0: seconds, hours."""
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def max_cost_usd(text: str) -> float:
    """A request's budget in USD, with the request contract's bounds (above 0, at most 100)."""
    value = _finite(text)
    if not 0 < value <= MAX_COST_USD_LIMIT:
        raise argparse.ArgumentTypeError(f"{text!r} is outside (0, {MAX_COST_USD_LIMIT:g}] USD")
    return value


def positive_int(text: str) -> int:
    """A count of at least 1: requests, prompts."""
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def non_negative_int(text: str) -> int:
    """A count where 0 means none: bootstrap resamples, workflow checks."""
    value = _whole(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def fault_spec(text: str) -> str:
    """A ``--faults`` spec FaultPlan.parse accepts (returned as given: it becomes FAULT_INJECTION)."""
    from model_router_tools.faults.provider import FaultPlan, FaultSpecError

    try:
        FaultPlan.parse(text)
    except FaultSpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text
