"""The policies `model-router eval` compares, by name: the baselines (always one tier, the oracle), the
product policies (what a deployment can be configured to do, each run by a router strategy in the real
workflow), the LLM-classifier policies (opt-in, analytic only) and the reference routers (analytic only). The
harness (:mod:`.harness`) simulates them, the report (:mod:`.report`) tabulates them and the workflow check
(:mod:`.workflow`) executes the product ones.
"""

from __future__ import annotations

from model_router_tools.eval.harness import LlmClassifier, Policy

BASELINES = (
    Policy("always-economy", "every request to Haiku", "fixed:haiku", thresholded=False, strategy="static"),
    Policy("always-standard", "every request to Sonnet", "fixed:sonnet", thresholded=False, strategy="static"),
    Policy("always-premium", "every request to Opus", "fixed:opus", thresholded=False, strategy="static"),
    Policy("oracle", "cheapest tier whose recorded answer is right", "oracle", thresholded=False),
)
# Outcome records only: what the deployment did, from each record's meta.route (its cost is the routed spend).
OBSERVED = (
    Policy("as routed", "the answers the callers got (outcome records' meta.route)", "routed", thresholded=False),
)
PRODUCT_POLICIES = (
    Policy("heuristic", "heuristic classifier (foundation), scorer escalates", "heuristic", escalate=True,
           strategy="heuristic"),
    Policy("cascade", "start at Haiku, scorer escalates", "cheapest", escalate=True, strategy="cascade"),
    Policy("learned", "learned classifier alone", "learned", prior="learned", strategy="learned"),
    Policy("learned+cascade", "learned classifier, scorer escalates (the default)", "learned", escalate=True,
           prior="learned", strategy="learned"),
    Policy("learned+cascade capped", "learned+cascade with max_cost_usd", "learned", escalate=True,
           prior="learned", capped=True, strategy="learned"),
    Policy("cascade capped", "cascade with max_cost_usd", "cheapest", escalate=True, capped=True,
           strategy="cascade"),
)
# The llm and learned+llm router strategies, with the LLM classifier's verdict simulated from the recorded
# outcomes (harness.llm_verdict: right with probability --llm-accuracy, uniform mistakes). Opt-in: only when named
# with --policy or when --llm-accuracy / --llm-margin is given, so the default report is unchanged. Analytic only:
# the workflow check (--workflow) does not run them, because the replay classifier answers the recorded verdict, a
# perfect one; at --llm-accuracy 1 the sweep and the real workflow agree (tests/offline/test_eval_llm.py).
# As routing.plan's routers do: learned+llm always runs the learned router, so the scorer's prior and its "next
# tier not predicted to do better" stop are the learned router's (as in learned+cascade); llm runs it only to fall
# back on, so a used verdict leaves the scorer without a prior ("gap"). Its start is "learned": the fallback.
LLM_POLICIES = (
    Policy("llm", "LLM classifier's verdict (simulated) picks the start, scorer escalates (analytic only)",
           "learned", escalate=True, llm=LlmClassifier("always")),
    Policy("learned+llm", "learned start; the LLM classifier (simulated) picks it when the learned decision margin "
           "is below --llm-margin; scorer escalates (analytic only)", "learned", escalate=True, prior="learned",
           llm=LlmClassifier("below-margin")),
)
REFERENCES = (
    Policy("ref: tfidf-lr", "reference: TF-IDF + logistic regression (analytic only)", "tfidf-lr"),
    Policy("ref: knn-minilm", "reference: kNN over MiniLM embeddings (analytic only)", "knn-minilm"),
)
# `eval --train/--test` only: a learned router fitted on the --train files by the project's trainer
# (model-router train's), beside the shipped one; its classifier's predictions are stored as "learned-train".
FITTED_LEARNED = Policy("learned (fitted on --train)", "learned classifier fitted on the --train files, alone "
                        "(analytic only)", "learned-train", prior="learned-train")
DEFAULT_POLICY = "learned+cascade"


def policy_names() -> list[str]:
    """Every policy `model-router eval --policy` knows (baselines, as routed, product policies, the learned
    router fitted on --train, the LLM-classifier policies, references, random)."""
    return [p.name for p in (*BASELINES, *OBSERVED, *PRODUCT_POLICIES, FITTED_LEARNED, *LLM_POLICIES,
                             *REFERENCES)] + ["random"]


def default_policy_names(llm: bool = False) -> list[str]:
    """The policies evaluated when none is named: every one but the LLM-classifier policies, which come only
    with ``llm`` (eval --llm-accuracy / --llm-margin given)."""
    opt_in = set() if llm else {p.name for p in LLM_POLICIES}
    return [name for name in policy_names() if name not in opt_in]


def in_table_order(train: bool) -> list[Policy]:
    """The policies in the order of the report's rows; the learned router fitted on --train (only then)
    right after the shipped one."""
    product: list[Policy] = []
    for policy in PRODUCT_POLICIES:
        product.append(policy)
        if train and policy.name == "learned":
            product.append(FITTED_LEARNED)
    return [*BASELINES, *OBSERVED, *product, *LLM_POLICIES, *REFERENCES]
