"""`train` on a deployment's outcome records: privacy-mode records (no prompt text) train on their stored
features to the very model the same records with their prompts give; tiers that failed are masked; the
command reads a file, a directory or an S3 prefix and writes the provenance of what it read."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from outcome_fixtures import outcome_record, write_jsonl

from model_router.tiers import Tier
from model_router_tools.cli.main import main as cli_main

pytest.importorskip("sklearn")
FAST = {"c_grid": (1.0, 4.0), "smoothing_grid": (0.0, 0.5), "folds": 3, "alpha_grid": (1.0, 10.0)}
TIERS = (Tier.HAIKU, Tier.OPUS)


def records_from(sample: list[dict[str, Any]], *, store_prompt: bool, fail_every: int = 0) -> list[dict[str, Any]]:
    """Outcome records of the sample's GSM8K prompts, scored as the sample recorded them."""
    gsm8k = [r for r in sample if r["source"] == "routellm-gsm8k"]
    weak, strong = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"
    out = []
    for n, record in enumerate(gsm8k):
        scores: dict[Tier, float | None] = {Tier.HAIKU: record["outcomes"][weak]["score"],
                                            Tier.OPUS: record["outcomes"][strong]["score"]}
        if fail_every and n % fail_every == 0:
            scores[Tier.HAIKU] = None  # the shadow's Haiku call failed: no label
        out.append(outcome_record(n, scores, prompt=record["prompt"], store_prompt=store_prompt, tiers=TIERS,
                                  task="gsm8k"))
    return out


def maps() -> dict[str, Any]:
    from outcome_fixtures import MODELS

    from model_router_tools.replay.datasets import tier_map_of

    return {"shadow": tier_map_of("shadow", {t: MODELS[t] for t in TIERS})}


def test_privacy_mode_records_train_the_model_their_prompts_would(records: list[dict[str, Any]]) -> None:
    from model_router_tools.training.router import dumps_model, train_tier_model

    with_text = train_tier_model(records_from(records, store_prompt=True), maps=maps(), **FAST)
    features_only = train_tier_model(records_from(records, store_prompt=False), maps=maps(), **FAST)
    assert dumps_model(with_text) == dumps_model(features_only)
    assert with_text["metadata"]["records"]["shadow"]["fit"] > 100


def test_a_tier_that_failed_in_the_shadow_is_masked_not_a_zero(records: list[dict[str, Any]]) -> None:
    from model_router_tools.training.router import tier_labels, train_tier_model

    data = records_from(records, store_prompt=False, fail_every=4)
    labels = tier_labels(data, maps())
    assert labels[0]["haiku"] is None and labels[1]["haiku"] in (0, 1)
    doc = train_tier_model(data, maps=maps(), **FAST)
    full = train_tier_model(records_from(records, store_prompt=False), maps=maps(), **FAST)
    assert doc["tiers"]["haiku"]["rows"] < full["tiers"]["haiku"]["rows"] == full["tiers"]["opus"]["rows"]
    assert doc["tiers"]["opus"]["rows"] == full["tiers"]["opus"]["rows"]


def test_train_reads_outcome_records_from_a_file_or_s3_and_says_what_it_read(
        tmp_path: Path, records: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    data = records_from(records, store_prompt=False)
    source = write_jsonl(tmp_path / "outcomes.jsonl", data)
    assert cli_main(["train", "--dataset", str(source), "--out", str(tmp_path / "m.json.gz")]) == 0
    doc = json.loads(gzip.decompress((tmp_path / "m.json.gz").read_bytes()))
    (read,) = doc["metadata"]["datasets"]
    assert read["kind"] == "outcome records" and read["records"] == len(data) and len(read["sha256"]) == 64
    assert read["tiers"] == {"haiku": data[0]["meta"]["tiers"]["economy"], "opus": data[0]["meta"]["tiers"]["premium"]}
    assert doc["metadata"]["trained_at"].endswith("Z")
    provenance = (tmp_path / "m.md").read_text()
    assert "--dataset outcomes.jsonl" in provenance or "outcomes.jsonl" in provenance
    assert "1 set(s) of outcome records" in capsys.readouterr().err

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="outcomes")
        for record in data:
            s3.put_object(Bucket="outcomes", Key=f"outcomes/dt=2026-12-02/{record['id']}.jsonl",
                          Body=json.dumps(record).encode() + b"\n")
        assert cli_main(["train", "--dataset", "s3://outcomes/outcomes/", "--out", str(tmp_path / "s3.json.gz")]) == 0
    from_s3 = json.loads(gzip.decompress((tmp_path / "s3.json.gz").read_bytes()))
    assert from_s3["metadata"]["datasets"][0]["sha256"] == read["sha256"]  # the same records, the same hash
    assert from_s3["tiers"] == doc["tiers"]


def test_train_refuses_outcome_records_of_another_deployment_s_tiers_in_one_run(
        tmp_path: Path, records: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    two = write_jsonl(tmp_path / "a.jsonl", records_from(records, store_prompt=False)[:20])
    three = write_jsonl(tmp_path / "b.jsonl", [outcome_record(n, {t: 1.0 for t in Tier}) for n in range(20)])
    code = cli_main(["train", "--dataset", str(two), "--dataset", str(three), "--out", str(tmp_path / "m.json.gz")])
    err = capsys.readouterr().err
    assert code == 2 and "other models per tier" in err and "Traceback" not in err
    assert not (tmp_path / "m.json.gz").exists()
