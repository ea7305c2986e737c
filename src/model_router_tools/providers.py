"""The offline providers, registered with the runtime's provider registry (model_router.providers).

The Lambda layer holds only Bedrock; the local engine, the evaluation and the tests call
:func:`register_local_providers` so that ``MODEL_PROVIDER=replay``, ``FAULT_INJECTION``, ``JUDGE=recorded`` and
``LLM_CLASSIFIER_CLIENT=replay`` mean something.
"""

from __future__ import annotations

from model_router_tools.faults import provider as fault_provider
from model_router_tools.replay import classifier as replay_classifier
from model_router_tools.replay import judge as recorded_judge
from model_router_tools.replay import provider as replay_provider


def register_local_providers() -> None:
    """Replay of recorded outcomes, the fault injector as a wrapper, the recorded judge and the replay LLM
    classifier (idempotent)."""
    replay_provider.register()
    fault_provider.register()
    recorded_judge.register()
    replay_classifier.register()
