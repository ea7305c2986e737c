"""The ``recorded`` judge: the recorded scores of the stand-in models judge the shadow workflow's answers.

Replayed answers are recorded answers of other models, each with the score its source recorded
(correctness against the reference, or MT-Bench's GPT-4 judge rating / 10). Locally those scores stand in
for the judge, exactly: no judge model is called and none is paid for. Every verdict says so.
"""

from __future__ import annotations

from collections.abc import Mapping

from model_router.settings import Settings, current_environment
from model_router.shadow.judge import Judge, JudgeInput, Judgement, TierVerdict, register_judge
from model_router.tiers import Tier
from model_router_tools.replay.datasets import tier_maps
from model_router_tools.replay.provider import BORROWED_TIERS_VARIABLE, DATASET_VARIABLE, ReplayProvider, flag

JUDGE_NOTE = ("Replay: the recorded scores of the stand-in models (correctness against the reference, or "
              "MT-Bench's GPT-4 judge rating / 10) stand in for the judge; no judge model was called.")


class RecordedJudge:
    def __init__(self, provider: ReplayProvider):
        self.provider = provider

    def judge(self, item: JudgeInput) -> Judgement:
        record = self.provider.lookup(item.request["messages"])
        verdicts: dict[Tier, TierVerdict] = {}
        if record is None:
            for tier in item.answers:
                verdicts[tier] = TierVerdict(None, "recorded", "the prompt is not among the recorded ones")
            return Judgement(verdicts, "recorded", note=JUDGE_NOTE)
        tier_map = tier_maps(str(self.provider.dataset))[record["source"]]
        for tier in item.answers:
            outcome = record["outcomes"].get(tier_map.models[tier]) or {}
            score = outcome.get("score")
            verdicts[tier] = (TierVerdict(float(score), "recorded") if isinstance(score, int | float)
                              else TierVerdict(None, "recorded", "no recorded score for this tier's model"))
        return Judgement(verdicts, "recorded", note=JUDGE_NOTE)


def _from_environment(_settings: Settings) -> Judge:
    env: Mapping[str, str] = current_environment()
    return RecordedJudge(ReplayProvider(env.get(DATASET_VARIABLE),
                                        borrowed_tiers=flag(env.get(BORROWED_TIERS_VARIABLE))))


def register() -> None:
    """Make ``JUDGE=recorded`` available to the runtime (local runs only)."""
    register_judge("recorded", _from_environment, calls_model=False)
