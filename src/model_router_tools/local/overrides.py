"""The function environment a local run adds for its command-line flags (invoke, demo, batch)."""

from __future__ import annotations

import os
from pathlib import Path

from model_router.settings import SettingsError


def local_overrides(*, dataset: str | os.PathLike[str] | None = None, strategy: str | None = None,
                    threshold: float | None = None, faults: str | None = None) -> dict[str, str]:
    """The environment a local run adds to the template's for its command-line flags.

    Checked here as the functions would check them, so a bad flag is one SettingsError naming it before a
    run starts, not a failure of every call in it.
    """
    # Imported here: the CLI's modules import this one at start-up, and the providers pull in jsonschema.
    from model_router_tools.faults.provider import FAULTS_VARIABLE, FaultPlan, FaultSpecError
    from model_router_tools.replay.provider import DATASET_VARIABLE

    env: dict[str, str] = {}
    if dataset:
        path = Path(dataset)
        if not path.is_file():
            raise SettingsError(f"--dataset: {dataset}: {'is a directory' if path.is_dir() else 'no such file'}")
        env[DATASET_VARIABLE] = str(path.resolve())
    if strategy:
        env["DEFAULT_STRATEGY"] = strategy
    if threshold is not None:
        if not 0 <= threshold <= 1:  # NaN fails this too
            raise SettingsError(f"--threshold {threshold}: a confidence threshold is a number in [0, 1]")
        env["CONFIDENCE_THRESHOLD"] = str(threshold)
    if faults:
        try:
            FaultPlan.parse(faults)
        except FaultSpecError as exc:
            raise SettingsError(f"--faults: {exc}") from None
        env[FAULTS_VARIABLE] = faults
    return env
