"""The policies `model-router eval` compares, by name: the baselines (always one tier, the oracle), the
product policies (what a deployment can be configured to do, each run by a router strategy in the real
workflow) and the reference routers (analytic only). The harness (:mod:`.harness`) simulates them, the
report (:mod:`.report`) tabulates them and the workflow check (:mod:`.workflow`) executes the product ones.
"""

from __future__ import annotations

from model_router_tools.eval.harness import Policy

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
REFERENCES = (
    Policy("ref: tfidf-lr", "reference: TF-IDF + logistic regression (analytic only)", "tfidf-lr"),
    Policy("ref: knn-minilm", "reference: kNN over MiniLM embeddings (analytic only)", "knn-minilm"),
)
DEFAULT_POLICY = "learned+cascade"


def policy_names() -> list[str]:
    """Every policy `model-router eval --policy` knows (baselines, as routed, product policies, references,
    random)."""
    return [p.name for p in (*BASELINES, *OBSERVED, *PRODUCT_POLICIES, *REFERENCES)] + ["random"]
