"""The result contract (result.schema.json) on a real result of the workflow, and refused when broken."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest

from model_router.contracts.request import validate_result

# -- the result contract ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine_result(engine: Any) -> dict[str, Any]:
    result = engine.run({"prompt": "Compose an engaging travel blog post about a recent trip to Hawaii, "
                                   "highlighting cultural experiences and must-see attractions.",
                         "request_id": "contract-1", "metadata": {"team": "qa"}})
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    output: dict[str, Any] = result.output
    return output


def test_engine_result_validates_against_the_result_schema(engine_result: dict[str, Any]) -> None:
    validate_result(engine_result)
    assert engine_result["request_id"] == "contract-1"
    assert engine_result["metadata"] == {"team": "qa"}


@pytest.mark.parametrize(
    "breakage",
    [
        pytest.param(lambda r: r.pop("answer"), id="missing answer"),
        pytest.param(lambda r: r.update(status="done"), id="unknown status"),
        pytest.param(lambda r: r.update(confidence=1.5), id="confidence above 1"),
        pytest.param(lambda r: r.update(tier="gpt-4"), id="unknown tier"),
        pytest.param(lambda r: r.update(extra=True), id="unknown field"),
        pytest.param(lambda r: r.update(attempts=[]), id="no attempts"),
        pytest.param(lambda r: r["attempts"][0].update(outcome="maybe"), id="unknown attempt outcome"),
        pytest.param(lambda r: r["attempts"][0].pop("cost_usd"), id="attempt without cost"),
        pytest.param(lambda r: r["cost"].update(models_usd=-0.1), id="negative cost"),
        pytest.param(lambda r: r["usage"].update(input_tokens=1.5), id="fractional tokens"),
    ],
)
def test_validate_result_rejects_a_broken_result(engine_result: dict[str, Any], breakage: Any) -> None:
    broken = copy.deepcopy(engine_result)
    breakage(broken)
    with pytest.raises(jsonschema.ValidationError):
        validate_result(broken)
