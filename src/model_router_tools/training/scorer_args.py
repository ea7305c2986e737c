"""The ``train-scorer`` command's description and arguments, apart from model_router_tools.training.scorer so the
command line can offer them without importing numpy, scipy, scikit-learn and the scorer (kept light: argparse only).
"""

from __future__ import annotations

import argparse

DESCRIPTION = """Fit the scorer's calibration offline, and measure it (numpy + scikit-learn: the ``train`` extra).

One row per (record, recorded model answer) of the sources that keep answer texts (RouteLLM GSM8K and
MT-Bench), fit split only (``not is_holdout(prompt)``). Label: that answer's recorded score >= 0.5.
RouteLLM's models stand in for the tiers: Mixtral-8x7B (economy) for Haiku, GPT-4 (premium) for Opus.
Features: :func:`model_router.scoring.features.answer_features`, the same code the Scorer Lambda runs. Model: an
L2-regularised logistic regression with sign-bounded weights (a wrong calculation may never raise
confidence), C picked by 5-fold cross-validation grouped by prompt (log loss), weights unscaled to raw
features and rounded, written with its provenance to ``src/model_router/data/scorer_model.json``.

The prior comes in two kinds, and every row enters once with each, so one model is calibrated for both:

* the classifier's, ``prior_fn(prompt, tier)``: ``--prior auto`` (default) uses the learned tier model
  (:mod:`model_router.routing.learned`) when it ships, out-of-fold: the shipped model saw the fit prompts, so it
  is refitted 5 times (:func:`model_router_tools.training.router.train_tier_model`, its own hyper-parameters and
  datasets, found beside ``--dataset`` or given with ``--tier-dataset``) without each fold's prompts and
  predicts that fold (minutes); without a tier model, the tier's base success rate on the fit split. The
  workflow passes this prior when the learned router classified the request
  (``classification.tier_probabilities``);
* the tier table's (:data:`model_router.scoring.score.PRIOR_BY_GAP` by the heuristic classification): what the
  Scorer Lambda uses when no prior is passed (the heuristic, cascade and static strategies).

Retrain (one command; again whenever the tier model changes)::

    model-router train-scorer --dataset ../shared/data/routellm-gsm8k.dev.jsonl.gz \\
        --dataset ../shared/data/routellm-mtbench.dev.jsonl.gz --report scorer-report.json
    # same as: python -m model_router_tools.training.scorer --dataset ... --dataset ...

:func:`scorer_report` is the evaluation (holdout split only): AUROC for "this answer is right", the
false-accept rate at the 0.8 threshold, the accept rate, reliability bins; plain numbers, no plotting.
The recorded scores are read here only: the runtime scorer never sees them.
"""

PRIOR_MODES = ("auto", "learned-oof", "learned", "base-rate")
SEED = 0
MODEL_NAME = "scorer_model.json"  # the file in model_router/data (model_router.scoring.model.MODEL_NAME)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", action="append", required=True, metavar="PATH",
                        help="recorded-outcomes JSONL(.gz) with answer texts (repeat: GSM8K and MT-Bench)")
    parser.add_argument("--out", default=None, metavar="PATH",
                        help=f"model file to write (default: the package's data/{MODEL_NAME})")
    parser.add_argument("--prior", choices=PRIOR_MODES, default="auto",
                        help="the classifier prior: auto = the learned tier model's out-of-fold prior when the "
                             "tier model ships (refitted 5 times: minutes), else the tier base rate")
    parser.add_argument("--tier-dataset", action="append", metavar="PATH",
                        help="the tier model's training datasets, for the out-of-fold prior (default: the files "
                             "its metadata names, looked up beside --dataset)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--report", metavar="PATH", help="also write the holdout report (JSON) here")
