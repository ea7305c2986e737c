"""Judge every tier's answer to one request: checks where an answer can be checked, an LLM judge otherwise.

In order, per request:

1. ``response_format``: an answer that is not JSON matching the caller's schema scores 0 (the scorer's own
   check, :func:`model_router.scoring.format_check.format_problem`); the ones that match go on.
2. ``final_answer``: when the reference answer (the premium tier's, else the highest tier that answered)
   states a numeric final answer and none of its stated equations is wrong, each other answer scores 1
   when its final answer agrees and its own arithmetic holds, else 0. The reference scores 1: this measures
   "as good as the premium answer", which is what routing needs; it does not know the truth.
3. ``llm``: an LLM judge through Converse (``JudgeModelId``), pairwise against the reference answer with the
   positions swapped (A/B, then B/A) to cancel position bias, MT-Bench's fixed rubric and a 1-10 rating per
   answer; a tier's score is its mean rating / 10. A verdict that cannot be read in either position leaves
   that tier unscored (counted, never guessed).

Judges are chosen by name (``JUDGE``) from a registry, like providers: ``converse`` ships in the layer; the
local engine registers ``recorded`` (recorded scores stand in for a judge) from model_router_tools.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from model_router.pricing import price_for
from model_router.providers import ModelCall, ModelProvider, provider_for
from model_router.scoring.arithmetic import stated_equations
from model_router.scoring.final_answer import final_answer
from model_router.scoring.format_check import format_problem
from model_router.settings import Settings
from model_router.tiers import TIER_ORDER, Tier

PROMPT_VERSION = "judge-v1"
FAILED_FORMATS = ("json_invalid", "json_schema_violation")
MAX_VERDICT_TOKENS = 512
# How close two final answers must be to agree (relative), as the scorer compares numbers.
AGREEMENT_TOLERANCE = 1e-6

PAIRWISE_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI assistants to "
    "the user question displayed below. Consider correctness first, then helpfulness, relevance, depth and level "
    "of detail. Avoid any position bias: the order in which the responses are presented must not influence your "
    "decision. Do not let the length of the responses influence your evaluation, and do not favour either "
    "assistant by name. Be as objective as possible. Briefly explain, then rate each response on a scale of 1 "
    "to 10, ending with exactly these two lines:\nRating A: [[n]]\nRating B: [[n]]"
)
SINGLE_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the response provided by an AI assistant to "
    "the user question displayed below. Consider correctness first, then helpfulness, relevance, depth and level "
    "of detail. Be as objective as possible. Briefly explain, then rate the response on a scale of 1 to 10, "
    "ending with exactly this line:\nRating: [[n]]"
)
_RATING = {name: re.compile(rf"Rating {name}\s*:\s*\[\[\s*(\d+(?:\.\d+)?)\s*\]\]", re.IGNORECASE) for name in "AB"}
_SINGLE_RATING = re.compile(r"Rating\s*:\s*\[\[\s*(\d+(?:\.\d+)?)\s*\]\]", re.IGNORECASE)


@dataclass
class TierVerdict:
    score: float | None
    judged_by: str
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"score": self.score, "judged_by": self.judged_by, "error": self.error}


@dataclass
class Judgement:
    """Every tier's verdict, and what the judging cost (its model calls)."""

    verdicts: dict[Tier, TierVerdict]
    method: str  # the last method that decided a verdict: response_format | final_answer | llm | recorded | none
    model_id: str | None = None
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    unreadable: int = 0  # verdicts the judge gave that could not be parsed
    note: str | None = None
    prompt_version: str = PROMPT_VERSION

    def to_dict(self) -> dict[str, Any]:
        judge: dict[str, Any] = {"method": self.method, "model_id": self.model_id,
                                 "prompt_version": self.prompt_version, "cost_usd": round(self.cost_usd, 8),
                                 "calls": self.calls,
                                 "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                                 "unreadable_verdicts": self.unreadable}
        if self.note:
            judge["note"] = self.note
        return {"verdicts": {tier.value: v.to_dict() for tier, v in self.verdicts.items()}, "judge": judge}


@dataclass(frozen=True)
class JudgeInput:
    """One request and the answer text of every tier that answered it (failed tiers are left out)."""

    request: dict[str, Any]
    answers: dict[Tier, str]
    models: dict[Tier, str] = field(default_factory=dict)  # tier -> the model id that answered


class Judge(Protocol):
    def judge(self, item: JudgeInput) -> Judgement: ...


JudgeFactory = Callable[[Settings], Judge]


def reference_tier(answers: dict[Tier, str]) -> Tier:
    """The answer the others are compared with: the premium tier's, else the highest tier that answered."""
    return max(answers, key=lambda tier: tier.rank)


def conversation_text(request: dict[str, Any]) -> str:
    """The request as the judge reads it: the system prompt and every turn, the last one being the question."""
    parts = [f"[System]\n{block['text']}" for block in request.get("system") or [] if "text" in block]
    for message in request["messages"]:
        text = "\n".join(block["text"] for block in message["content"] if "text" in block)
        parts.append(f"[{message['role'].capitalize()}]\n{text}")
    return "\n\n".join(parts)


def pairwise_prompt(question: str, answer_a: str, answer_b: str) -> str:
    return (f"[User Question]\n{question}\n\n"
            f"[The Start of Assistant A's Answer]\n{answer_a}\n[The End of Assistant A's Answer]\n\n"
            f"[The Start of Assistant B's Answer]\n{answer_b}\n[The End of Assistant B's Answer]")


def single_prompt(question: str, answer: str) -> str:
    return (f"[User Question]\n{question}\n\n"
            f"[The Start of Assistant's Answer]\n{answer}\n[The End of Assistant's Answer]")


def _rating(pattern: re.Pattern[str], text: str) -> float | None:
    matches = pattern.findall(text)
    if not matches:
        return None
    value = float(matches[-1])  # the last one: the explanation may quote the format first
    return value if 1 <= value <= 10 else None


def parse_pairwise(text: str) -> tuple[float | None, float | None]:
    """(rating of A, rating of B), each None when missing or outside 1-10."""
    return _rating(_RATING["A"], text), _rating(_RATING["B"], text)


def parse_single(text: str) -> float | None:
    return _rating(_SINGLE_RATING, text)


# -- checks the scorer already knows how to make ---------------------------------------------------------


def format_verdicts(answers: dict[Tier, str], response_format: dict[str, Any]) -> dict[Tier, TierVerdict]:
    """Score 0 for every answer that fails the caller's response_format; the others are not decided here."""
    failed: dict[Tier, TierVerdict] = {}
    for tier, text in answers.items():
        kind, message = format_problem(text, response_format)
        if kind in FAILED_FORMATS:
            failed[tier] = TierVerdict(0.0, "response_format", f"{kind}: {message}"[:300] if message else kind)
    return failed


def _arithmetic_holds(text: str) -> bool:
    return all(equation.correct for equation in stated_equations(text))


def _agree(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=AGREEMENT_TOLERANCE, abs_tol=AGREEMENT_TOLERANCE)


def final_answer_verdicts(answers: dict[Tier, str], reference: Tier) -> dict[Tier, TierVerdict] | None:
    """Agreement with the reference answer's final number, or None when that is not a sound check here."""
    expected, how = final_answer(answers[reference])
    if expected is None or how != "marked" or not _arithmetic_holds(answers[reference]):
        return None
    verdicts = {reference: TierVerdict(1.0, "final_answer")}
    for tier, text in answers.items():
        if tier is reference:
            continue
        value, _ = final_answer(text)
        ok = value is not None and _agree(value, expected) and _arithmetic_holds(text)
        verdicts[tier] = TierVerdict(1.0 if ok else 0.0, "final_answer",
                                     None if ok else "final answer differs from the reference answer's")
    return verdicts


# -- the LLM judge -----------------------------------------------------------------------------------------


class ConverseJudge:
    """Checks first, then pairwise LLM verdicts through the deployment's provider (Bedrock Converse)."""

    def __init__(self, provider: ModelProvider, settings: Settings):
        self.provider = provider
        self.model_id = settings.judge_model_id
        self.price = price_for(settings.judge_model_id, settings.price_overrides)
        # A nominal tier for the call record: the tier this model serves, if it is one of them.
        self.tier = next((t for t in TIER_ORDER if settings.model_ids[t] == self.model_id), Tier.SONNET)

    @classmethod
    def from_settings(cls, settings: Settings) -> ConverseJudge:
        return cls(provider_for(settings), settings)

    def judge(self, item: JudgeInput) -> Judgement:
        answers = dict(item.answers)
        verdicts: dict[Tier, TierVerdict] = {}
        method = "none"
        response_format = item.request.get("response_format")
        if response_format:
            failed = format_verdicts(answers, response_format)
            verdicts.update(failed)
            method = "response_format" if failed else method
            answers = {tier: text for tier, text in answers.items() if tier not in failed}
        if not answers:
            return Judgement(verdicts, method)
        reference = reference_tier(answers)
        checked = final_answer_verdicts(answers, reference) if len(answers) > 1 else None
        if checked is not None:
            verdicts.update(checked)
            return Judgement(verdicts, "final_answer")
        judgement = Judgement(verdicts, "llm", model_id=self.model_id)
        question = conversation_text(item.request)
        if len(answers) == 1:
            text = self._ask(judgement, SINGLE_SYSTEM, single_prompt(question, answers[reference]))
            rating = parse_single(text)
            judgement.unreadable += rating is None
            verdicts[reference] = TierVerdict(None if rating is None else rating / 10, "llm",
                                              None if rating is not None else "the judge's verdict could not be read")
            return judgement
        reference_ratings: list[float] = []
        for tier, text in answers.items():
            if tier is reference:
                continue
            mine: list[float] = []
            # Reference first, then second: a judge that favours a position favours both answers once.
            for first, second, reference_is_a in ((answers[reference], text, True), (text, answers[reference], False)):
                a, b = parse_pairwise(self._ask(judgement, PAIRWISE_SYSTEM, pairwise_prompt(question, first, second)))
                if a is None or b is None:
                    judgement.unreadable += 1
                    continue
                ours, theirs = (b, a) if reference_is_a else (a, b)
                mine.append(ours)
                reference_ratings.append(theirs)
            verdicts[tier] = (TierVerdict(sum(mine) / len(mine) / 10, "llm") if mine
                              else TierVerdict(None, "llm", "the judge's verdict could not be read in either position"))
        verdicts[reference] = (TierVerdict(sum(reference_ratings) / len(reference_ratings) / 10, "llm")
                               if reference_ratings else
                               TierVerdict(None, "llm", "the judge's verdict could not be read in any comparison"))
        return judgement

    def _ask(self, judgement: Judgement, system: str, prompt: str) -> str:
        call = ModelCall(tier=self.tier, model_id=self.model_id,
                         messages=[{"role": "user", "content": [{"text": prompt}]}],
                         system=[{"text": system}],
                         inference={"maxTokens": MAX_VERDICT_TOKENS, "temperature": 0.0})
        reply = self.provider.converse(call)
        judgement.calls += 1
        judgement.input_tokens += reply.input_tokens
        judgement.output_tokens += reply.output_tokens
        judgement.cost_usd += self.price.cost(reply.input_tokens, reply.output_tokens)
        return reply.text


class JudgeError(ValueError):
    """``JUDGE`` names no registered judge."""


_JUDGES: dict[str, JudgeFactory] = {"converse": ConverseJudge.from_settings}
_UNPAID: set[str] = set()  # judges that call no model (the recorded one): nothing to reserve for them
_lock = threading.Lock()


def register_judge(name: str, factory: JudgeFactory, *, calls_model: bool = True) -> None:
    """Make ``JUDGE=name`` build its judge with ``factory(settings)`` (the local engine registers ``recorded``)."""
    with _lock:
        _JUDGES[name] = factory
        if calls_model:
            _UNPAID.discard(name)
        else:
            _UNPAID.add(name)


def judge_for(settings: Settings) -> Judge:
    factory = _JUDGES.get(settings.judge)
    if factory is None:
        registered = ", ".join(sorted(_JUDGES))
        raise JudgeError(f"JUDGE: {settings.judge!r} is not a registered judge (registered: {registered};"
                         " offline judges register from model_router_tools and are never in the Lambda layer)")
    return factory(settings)


def judge_estimate_usd(settings: Settings, input_tokens: int, output_tokens: int, other_tiers: int) -> float:
    """A pre-call estimate of the judge's cost: two pairwise calls per tier compared with the reference, each
    reading the question and two answers (nothing for a judge that calls no model)."""
    if settings.judge in _UNPAID:
        return 0.0
    price = price_for(settings.judge_model_id, settings.price_overrides)
    calls = max(1, 2 * other_tiers)
    return calls * price.cost(input_tokens + 2 * output_tokens + 300, 200)
