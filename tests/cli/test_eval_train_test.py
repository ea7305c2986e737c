"""`model-router eval --train FILES --test FILES`: every fitted router (the references, and a learned router
fitted by the project's trainer) is fitted on the --train files only and every number is measured on the
--test files only; local files, .gz and s3:// prefixes (moto) alike, outcome records as train or test data;
bad input is one line and exit 2."""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cli_user import run_main
from moto import mock_aws
from outcome_fixtures import HAIKU, OPUS, SONNET, hand_built, outcome_record, write_jsonl

from model_router_tools.replay.datasets import read_records, sample_path

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")
SOURCE = "toy"  # not a source the shipped learned router was trained on: no training-rows warning
MODELS = {"economy": "gemma-2-9b-it", "standard": "llama-3.1-8b-instruct",
          "premium": "llama-3.1-nemotron-51b-instruct"}
FAST = ("--bootstrap", "0", "--policy", "always-economy", "--policy", "always-premium", "--policy", "ref: tfidf-lr")
BUCKET = "router-eval-data"


def _records() -> list[dict[str, Any]]:
    """The bundled sample's LLMRouter records (three tiers recorded), as a source of their own."""
    return [{**r, "source": SOURCE, "id": r["id"].replace("llmrouter", SOURCE)}
            for r in read_records(sample_path()) if r["source"] == "llmrouter"]


def _write(folder: Path, name: str, records: list[dict[str, Any]]) -> Path:
    """A shared-format file (gzip'd for a .gz name) with the source's tier map beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{SOURCE}.models.json").write_text(json.dumps({"source": SOURCE, "tiers": MODELS}))
    text = "".join(json.dumps(r) + "\n" for r in records)
    path = folder / name
    path.write_bytes(gzip.compress(text.encode())) if name.endswith(".gz") else path.write_text(text)
    return path


@pytest.fixture
def split_files(tmp_path: Path) -> tuple[Path, Path]:
    records = _records()
    return _write(tmp_path / "train", "train.jsonl.gz", records[:100]), _write(tmp_path / "test", "test.jsonl",
                                                                               records[100:160])


def _rows(source: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in source["policies"]}


@pytest.fixture
def fitted_on(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What the TF-IDF reference router and the trainer were given, and what the router was asked to predict."""
    reference = pytest.importorskip("model_router_tools.eval.reference")
    from model_router_tools.training import router as trainer

    seen: dict[str, Any] = {"reference": [], "predicted": [], "trainer": []}

    class Spy(reference.TfidfLogRegRouter):  # type: ignore[misc, name-defined]
        def fit(self, records: Any, paths: Any, **options: Any) -> Any:
            seen["reference"].append(sorted(r["prompt"] for r in records))
            return super().fit(records, paths, **options)

        def predict_many(self, prompts: Any) -> Any:
            seen["predicted"].extend(prompts)
            return super().predict_many(prompts)

    real_trainer = trainer.train_tier_model

    def spy_trainer(records: Any, **options: Any) -> Any:
        seen["trainer"].append(sorted(r["prompt"] for r in records))
        return real_trainer(records, **options)

    monkeypatch.setattr(reference, "TfidfLogRegRouter", Spy)
    monkeypatch.setattr(trainer, "train_tier_model", spy_trainer)
    return seen


# -- the effect ----------------------------------------------------------------------------------------------------


def test_train_fits_every_router_on_train_files_and_test_measures_on_test_files(
        split_files: tuple[Path, Path], fitted_on: dict[str, Any], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    train, test = split_files
    privacy = write_jsonl(tmp_path / "outcomes.jsonl", hand_built())  # outcome records: no prompts
    out = tmp_path / "r.json"
    outcome = run_main(capsys, "eval", "--train", str(train), "--test", str(test), str(privacy), "--bootstrap", "0",
                       "--json", str(out))
    assert outcome.code == 0, outcome.err
    report = json.loads(out.read_text())
    train_prompts = sorted(r["prompt"] for r in read_records(train))
    test_prompts = {r["prompt"] for r in read_records(test)}
    # Fitted on every --train record (no holdout split), once; asked about --test prompts only.
    assert fitted_on["reference"] == [train_prompts] and fitted_on["trainer"] == [train_prompts]
    assert set(fitted_on["predicted"]) == test_prompts
    # Measured on every --test record, and on nothing else.
    assert report["split"] == "test" and report["n"] == 60 + 4
    assert report["dataset"] == [str(test), str(privacy)]
    assert report["fitted"]["mode"] == "train" and report["fitted"]["records"] == 100
    assert report["fitted"]["train"] == [str(train)]
    by_source = {s["source"]: s for s in report["sources"]}
    toy = by_source[SOURCE]
    premium = [r["outcomes"][MODELS["premium"]]["score"] for r in read_records(test)]
    assert toy["n"] == 60 and toy["always_premium_quality"] == round(sum(premium) / len(premium), 4)
    names = [row["name"] for row in toy["policies"]]
    assert names.index("learned (fitted on --train)") == names.index("learned") + 1  # beside the shipped one
    fitted = _rows(toy)["learned (fitted on --train)"]
    assert fitted["apgr"] is not None and fitted["curve"]
    assert _rows(toy)["ref: tfidf-lr"]["apgr"] is not None
    # The outcome records without prompts: the fitted learned router predicts from their hashed features; the
    # reference router reads text, so its row is left out with the reason.
    shadow = by_source["shadow"]
    assert "learned (fitted on --train)" in _rows(shadow)
    left_out = {entry["policy"]: entry["why"] for entry in shadow["outcome_records"]["left_out"]}
    assert "the reference router reads the prompt text" in left_out["ref: tfidf-lr"]
    assert "warnings" not in report
    printed = " ".join(outcome.out.split())
    assert f"fitted on the 100 usable records of --train {train}" in printed


def test_a_prompt_in_both_train_and_test_is_warned_about_with_the_count(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = _records()
    train = _write(tmp_path / "a", "train.jsonl", records[:80] + records[100:105])  # 5 test prompts
    test = _write(tmp_path / "b", "test.jsonl", records[100:140])
    out = tmp_path / "r.json"
    outcome = run_main(capsys, "eval", "--train", str(train), "--test", str(test), *FAST, "--json", str(out))
    assert outcome.code == 0, outcome.err
    (warning,) = json.loads(out.read_text())["warnings"]
    assert warning.startswith("5 of 40 --test requests have a prompt that is also in --train (the same sha256)")
    assert "warning: 5 of 40 --test requests" in " ".join(outcome.out.split())


def test_outcome_records_as_train_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With prompts (StoreShadowPrompts) they are fitted on; without, the fitted routers cannot use them: said,
    not a crash. Their meta.prompt_sha256 counts for the overlap warning either way."""
    test_records = _records()[:40]
    test = _write(tmp_path / "test", "test.jsonl", test_records)
    stored = [outcome_record(n, {HAIKU: float(n % 2), SONNET: float(n % 3 > 0), OPUS: 1.0},
                             prompt=r["prompt"] if n < 3 else f"Another question, number {n}?", store_prompt=True)
              for n, r in enumerate(test_records)]
    private = [outcome_record(n, {HAIKU: 1.0, SONNET: 1.0, OPUS: 1.0}) for n in range(100, 110)]
    with_text = write_jsonl(tmp_path / "stored" / "outcomes.jsonl", stored)
    out = tmp_path / "r.json"
    outcome = run_main(capsys, "eval", "--train", str(with_text), "--test", str(test), *FAST, "--json", str(out))
    assert outcome.code == 0, outcome.err
    report = json.loads(out.read_text())
    assert report["fitted"]["records"] == 40
    assert _rows(report["sources"][0])["ref: tfidf-lr"]["apgr"] is not None
    assert report["warnings"][0].startswith("3 of 40 --test requests have a prompt that is also in --train")

    without_text = write_jsonl(tmp_path / "private" / "outcomes.jsonl", private)
    outcome = run_main(capsys, "eval", "--train", str(without_text), "--test", str(test), *FAST, "--json", str(out))
    assert outcome.code == 0, outcome.err
    printed = " ".join(outcome.out.split())
    assert ("ref: tfidf-lr: left out: nothing to fit it on: 10 of 10 --train outcome records have no prompt "
            "(StoreShadowPrompts off: only meta.features.hashed), and the fitted routers read the text") in printed
    assert "ref: tfidf-lr" not in _rows(json.loads(out.read_text())["sources"][0])


# -- bad input: one line, exit 2 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("flags", "problem"), [
    (["--train", "{train}"], "error: --train needs --test"),
    (["--test", "{test}"], "error: --test needs --train"),
    (["--train", "{train}", "--test", "{test}", "--split", "all"], "error: --split applies to --dataset"),
    (["--train", "{train}", "--test", "{test}", "--dataset", "{test}"], "error: --dataset with --train/--test"),
    (["--policy", "learned (fitted on --train)"], "error: --policy 'learned (fitted on --train)': only with "
                                                  "--train/--test"),
    (["--train", "{missing}", "--test", "{test}"], "error: --train: {missing}: no such file"),
    (["--train", "{train}", "--test", "{bad}"], "error: --test: {bad}:1: not valid JSON"),
    (["--train", "{train}", "--test"], "error: --test: expected at least one argument"),
])
def test_bad_train_test_input_is_one_line_and_exit_2(split_files: tuple[Path, Path], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str], flags: list[str],
                                                     problem: str) -> None:
    train, test = split_files
    bad = test.with_name("bad.jsonl")
    bad.write_text("{not json\n")
    names = {"train": str(train), "test": str(test), "missing": str(tmp_path / "nope.jsonl"), "bad": str(bad)}
    outcome = run_main(capsys, "eval", *[f.format(**names) for f in flags])
    assert outcome.code == 2
    assert outcome.error_line().startswith(problem.format(**names))


# -- s3:// (moto) -------------------------------------------------------------------------------------------------


@pytest.fixture
def s3_data(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Shared-format files as ../shared/data holds them (records .jsonl.gz, the tier map beside them) under
    train/ and test/, and outcome records under outcomes/."""
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    records = _records()
    models = json.dumps({"source": SOURCE, "tiers": MODELS})
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        for prefix, part in (("train", records[:80]), ("test", records[100:140])):
            body = gzip.compress("".join(json.dumps(r) + "\n" for r in part).encode())
            s3.put_object(Bucket=BUCKET, Key=f"{prefix}/{SOURCE}.dev.jsonl.gz", Body=body)
            s3.put_object(Bucket=BUCKET, Key=f"{prefix}/{SOURCE}.models.json", Body=models.encode())
        for record in hand_built():
            s3.put_object(Bucket=BUCKET, Key=f"outcomes/dt=2026-12-01/{record['id']}.jsonl",
                          Body=json.dumps(record) + "\n")
        yield s3


def test_train_and_test_read_s3_prefixes(s3_data: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.json"
    outcome = run_main(capsys, "eval", "--train", f"s3://{BUCKET}/train/", "--test", f"s3://{BUCKET}/test/",
                       f"s3://{BUCKET}/outcomes/", *FAST, "--json", str(out))
    assert outcome.code == 0, outcome.err
    report = json.loads(out.read_text())
    # Reported by their s3:// names, never by the local copies'.
    assert report["dataset"] == [f"s3://{BUCKET}/test/{SOURCE}.dev.jsonl.gz", f"s3://{BUCKET}/outcomes/"]
    assert report["fitted"]["train"] == [f"s3://{BUCKET}/train/{SOURCE}.dev.jsonl.gz"]
    assert report["fitted"]["records"] == 80
    assert {s["source"]: s["n"] for s in report["sources"]} == {SOURCE: 40, "shadow": 4}
    assert _rows(next(s for s in report["sources"] if s["source"] == SOURCE))["ref: tfidf-lr"]["apgr"] is not None
    assert "model-router-eval-" not in outcome.out + outcome.err  # no temporary path shown
    # A shared-format prefix works for --dataset too, and a single object beside its tier map.
    one = f"s3://{BUCKET}/test/{SOURCE}.dev.jsonl.gz"
    outcome = run_main(capsys, "eval", "--dataset", one, "--split", "all", *FAST, "--json", str(out))
    assert outcome.code == 0, outcome.err
    assert json.loads(out.read_text())["dataset"] == one


@pytest.mark.parametrize(("flags", "problem"), [
    (["--train", f"s3://{BUCKET}/nothing/", "--test", f"s3://{BUCKET}/test/"],
     f"error: --train: s3://{BUCKET}/nothing/: no .jsonl or .jsonl.gz objects under this prefix"),
    (["--train", f"s3://{BUCKET}/train/", "--test", "s3://no-such-bucket/test/"],
     "error: eval --test: s3://no-such-bucket/test/: ListObjectsV2: NoSuchBucket: "),
])
def test_s3_problems_name_the_flag_in_one_line(s3_data: Any, capsys: pytest.CaptureFixture[str], flags: list[str],
                                               problem: str) -> None:
    outcome = run_main(capsys, "eval", *flags, *FAST)
    assert outcome.code == 2
    assert outcome.error_line().startswith(problem)


def test_s3_shared_records_without_a_tier_map_are_one_line(s3_data: Any, capsys: pytest.CaptureFixture[str]) -> None:
    s3_data.delete_object(Bucket=BUCKET, Key=f"test/{SOURCE}.models.json")
    outcome = run_main(capsys, "eval", "--train", f"s3://{BUCKET}/train/", "--test", f"s3://{BUCKET}/test/", *FAST)
    assert outcome.code == 2
    assert outcome.error_line().startswith(
        f"error: --test: s3://{BUCKET}/test/{SOURCE}.dev.jsonl.gz: record 1: source '{SOURCE}' has no tier map")
