"""The Lambda layer holds the runtime only: no offline tooling, none of its libraries, no replay data; and a
deployed function cannot select a provider the layer does not hold."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from model_router_tools.layer import layer_problems

ROOT = Path(__file__).resolve().parents[2]
LAYER_SOURCE = ROOT / "layer" / "model_router"


def test_the_layer_is_built_from_the_runtime_package_only() -> None:
    assert LAYER_SOURCE.resolve() == (ROOT / "src" / "model_router").resolve()
    assert layer_problems(LAYER_SOURCE.resolve()) == []


def test_the_handlers_import_only_what_the_layer_holds() -> None:
    # functions/*/app.py deploy beside the layer: an import of the tools would fail at init in Lambda.
    assert layer_problems(ROOT / "functions") == []


def test_the_layer_check_finds_tooling_imports_and_replay_data(tmp_path: Path) -> None:
    copy = tmp_path / "model_router"
    shutil.copytree(LAYER_SOURCE.resolve(), copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "engine.py").write_text("import moto\nfrom model_router_tools.local import engine\nimport requests\n")
    (copy / "data" / "sample.jsonl.gz").write_bytes(b"")
    problems = layer_problems(copy)
    assert any("engine.py imports moto" in p for p in problems)
    assert any("engine.py imports model_router_tools" in p for p in problems)
    assert any("engine.py imports requests" in p for p in problems)
    assert any("sample.jsonl.gz" in p for p in problems)


def test_the_layer_requirements_hold_no_offline_library() -> None:
    text = (ROOT / "layer" / "requirements.txt").read_text().lower()
    for library in ("moto", "scikit-learn", "numpy", "matplotlib", "rich", "pyyaml"):
        assert library not in text


def test_a_deployed_function_cannot_select_the_replay_provider() -> None:
    # A fresh interpreter with nothing but the runtime imported, as in Lambda: replay is not registered.
    code = ("from model_router.providers import ProviderError, provider_for\n"
            "from model_router.settings import Settings\n"
            "try:\n    provider_for(Settings(model_provider='replay'))\n"
            "except ProviderError as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "MODEL_PROVIDER: 'replay' is not a registered provider" in out
    assert "registered: bedrock" in out


def test_a_deployed_function_cannot_select_the_recorded_judge() -> None:
    # As for providers: the shadow judge registry holds only the Converse judge until the tools register theirs.
    code = ("from model_router.shadow.judge import JudgeError, judge_for\n"
            "from model_router.settings import Settings\n"
            "try:\n    judge_for(Settings(judge='recorded'))\n"
            "except JudgeError as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "JUDGE: 'recorded' is not a registered judge" in out
    assert "registered: converse;" in out
