"""A Bedrock Converse provider with a botocore Stubber on its client, for tests that script Bedrock's replies.

Dummy credentials: the stub answers before anything is sent, but the client must be constructible without
touching a real profile.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.stub import Stubber

from model_router.providers.bedrock import BedrockConverseProvider


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> BedrockConverseProvider:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
                        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials")}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return BedrockConverseProvider(region="us-east-1", connect_timeout_s=5.0, read_timeout_s=100.0)


@pytest.fixture
def stub(provider: BedrockConverseProvider) -> Iterator[Stubber]:
    with Stubber(provider.client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()
