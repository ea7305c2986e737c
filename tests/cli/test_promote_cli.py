"""`model-router promote` and `rollback` on moto's S3 and SSM: every flag for its effect, every bad input one line
and exit 2, the refusal one line with its interval and exit 1, and the champion pointer's history as rollback
walks it.

The two router models are tiny artifacts (tests/router_model_fixtures.py) whose routing is known: with no
weights, ``tiny_model(-1)`` starts every request at Opus and ``tiny_model(5)`` at Haiku (at threshold 0.8 every
tier's predicted success is within the margin of the best), while at threshold 1.0 both start at Opus (no margin).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from cli_user import run_main
from outcome_fixtures import HAIKU, OPUS, SONNET, outcome_record, write_jsonl
from router_model_fixtures import REGION, model_bucket, pinned, tiny_model, upload

from model_router.settings import default_threshold
from model_router_tools.rollout.pointer import Version, rollback_target

__all__ = ["model_bucket"]
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")
STACK = "router"
PARAMETER = f"/{STACK}/router/champion-model-uri"
OPUS_ALWAYS, HAIKU_ALWAYS = tiny_model(-1.0), tiny_model(5.0)
FAST = ("--bootstrap", "200")


@pytest.fixture
def stack(model_bucket: Any) -> dict[str, Any]:
    """The champion (always Opus) behind the stack's pointer, a challenger (always Haiku) beside it."""
    champion = upload(model_bucket, "v1.json.gz", OPUS_ALWAYS)
    challenger = upload(model_bucket, "v2.json.gz", HAIKU_ALWAYS)
    ssm = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(Name=PARAMETER, Value=champion, Type="String", Description="the stack's")
    return {"champion": champion, "challenger": challenger, "ssm": ssm, "s3": model_bucket}


def records(tmp_path: Path, haiku_misses: int, n: int = 40) -> Path:
    """``n`` records on which Opus always scores 1 and Haiku too, except on the first ``haiku_misses``."""
    made = [outcome_record(i, {HAIKU: 0.0 if i < haiku_misses else 1.0, SONNET: 1.0, OPUS: 1.0}, routed=OPUS)
            for i in range(n)]
    return write_jsonl(tmp_path / f"outcomes-{haiku_misses}.jsonl", made)


def champion_now(stack: dict[str, Any]) -> str:
    value: str = stack["ssm"].get_parameter(Name=PARAMETER)["Parameter"]["Value"]
    return value


def promote(capsys: pytest.CaptureFixture[str], stack: dict[str, Any], outcomes: Path, *extra: str) -> Any:
    return run_main(capsys, "promote", "--stack", STACK, "--challenger", stack["challenger"], "--outcomes",
                    str(outcomes), *FAST, *extra)


# -- promote ---------------------------------------------------------------------------------------------------------


def test_an_equally_good_cheaper_challenger_is_promoted(stack: dict[str, Any], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    done = promote(capsys, stack, records(tmp_path, haiku_misses=0))
    assert done.code == 0, done.err
    assert champion_now(stack) == stack["challenger"]
    history = stack["ssm"].get_parameter_history(Name=PARAMETER)["Parameters"]
    assert [(p["Version"], p.get("Description")) for p in history] == [(1, "the stack's"),
                                                                      (2, "model-router promote")]
    lines = done.out.splitlines()
    assert lines[0].startswith(
        f"40 outcome records (weighted by 1 / sample probability); threshold {default_threshold():g};")
    assert "champion   " + stack["champion"] in lines[1] and "starts haiku 0%, sonnet 0%, opus 100%" in lines[1]
    assert "challenger " + stack["challenger"] in lines[2] and "starts haiku 100%, sonnet 0%, opus 0%" in lines[2]
    assert "cost 20.0% of always-premium" in lines[2]  # recorded costs: Haiku $0.001 vs Opus $0.005
    assert "quality +0.0000 of premium quality, 95% paired bootstrap interval [+0.0000, +0.0000] (200 resamples)" \
        in lines[3]
    assert f"promoted: {PARAMETER} = {stack['challenger']} (version 2; was {stack['champion']}, version 1)" in done.out


def test_a_worse_challenger_is_refused_in_one_line_with_its_interval(stack: dict[str, Any], tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    done = promote(capsys, stack, records(tmp_path, haiku_misses=20))
    assert done.code == 1
    line = done.error_line()
    assert line.startswith("error: refused: the challenger's quality is -0.5000 of premium quality against the "
                           "champion's, 95% interval [")
    assert line.endswith(f"on 40 records, which reaches below -0.01 (--tolerance): the champion stays "
                         f"{stack['champion']}")
    assert champion_now(stack) == stack["champion"]


def test_tolerance_sets_how_large_a_loss_is_refused(stack: dict[str, Any], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    slightly_worse = records(tmp_path, haiku_misses=2)  # -0.05 of premium quality
    assert promote(capsys, stack, slightly_worse, "--dry-run").code == 1
    done = promote(capsys, stack, slightly_worse, "--tolerance", "0.3", "--dry-run")
    assert done.code == 0, done.err
    assert "does not reach below -0.3" in done.out


def test_threshold_is_the_start_rule_s(stack: dict[str, Any], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    # At threshold 1.0 the challenger starts at the best-predicted tier too (Opus): no loss, so promoted.
    done = promote(capsys, stack, records(tmp_path, haiku_misses=20), "--threshold", "1", "--dry-run")
    assert done.code == 0, done.err
    assert "threshold 1.0" in done.out and "starts haiku 0%, sonnet 0%, opus 100%" in done.out.splitlines()[2]


def test_dry_run_compares_and_changes_nothing(stack: dict[str, Any], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    done = promote(capsys, stack, records(tmp_path, haiku_misses=0), "--dry-run")
    assert done.code == 0, done.err
    assert done.out.splitlines()[-1] == (f"dry run: would set {PARAMETER} from {stack['champion']} (version 1) to "
                                         f"{stack['challenger']}")
    assert champion_now(stack) == stack["champion"]


def test_bootstrap_sets_the_resamples(stack: dict[str, Any], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    done = run_main(capsys, "promote", "--stack", STACK, "--challenger", stack["challenger"], "--outcomes",
                    str(records(tmp_path, 0)), "--bootstrap", "150", "--dry-run")
    assert done.code == 0 and "(150 resamples)" in done.out


def test_region_names_where_the_stack_is(stack: dict[str, Any], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    west = boto3.client("ssm", region_name="us-west-2")
    west.put_parameter(Name="/west/router/champion-model-uri", Value="bundled", Type="String")
    outcomes = str(records(tmp_path, 0))
    argv = ("promote", "--stack", "west", "--challenger", stack["challenger"], "--outcomes", outcomes, *FAST,
            "--dry-run")
    missing = run_main(capsys, *argv)  # the default region (us-east-1) has no such parameter
    assert missing.code == 2 and "ParameterNotFound" in missing.error_line()
    done = run_main(capsys, *argv, "--region", "us-west-2")
    assert done.code == 0, done.err
    assert "champion   bundled (router_model, version bundled)" in done.out


def test_a_challenger_already_the_champion_is_left_alone(stack: dict[str, Any], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    stack["ssm"].put_parameter(Name=PARAMETER, Value=stack["challenger"], Type="String", Overwrite=True)
    done = promote(capsys, stack, records(tmp_path, 0))
    assert done.code == 0 and done.out == f"{PARAMETER} already names {stack['challenger']} (version 2): nothing " \
                                          "to promote\n"


@pytest.mark.parametrize(("argv", "message"), [
    (("--stack", "1bad"), "error: --stack: '1bad' is not a CloudFormation stack name"),
    (("--stack", "nowhere"), "error: promote: GetParameter: ParameterNotFound: "),
    (("--challenger", "s3://router-models-bucket/router-models/v2.json.gz"), "error: --challenger: "
     "'s3://router-models-bucket/router-models/v2.json.gz' has no #sha256= pin"),
    (("--challenger", pinned("router-models/v2.json.gz", b"other bytes")),
     "error: --challenger " + pinned("router-models/v2.json.gz", b"other bytes") + ": checksum-mismatch: "),
    (("--challenger", pinned("router-models/gone.json.gz", b"x")),
     "error: --challenger " + pinned("router-models/gone.json.gz", b"x") + ": unreachable: GetObject: NoSuchKey"),
    (("--outcomes", "no-such-file.jsonl"), "error: --outcomes: no-such-file.jsonl: no such file"),
    (("--tolerance", "2"), "error: --tolerance: "),
    (("--threshold", "-1"), "error: --threshold: "),
    (("--bootstrap", "50"), "error: --bootstrap 50: at least 100 resamples for a 95% interval"),
    (("--bootstrap", "many"), "error: --bootstrap: "),
])
def test_bad_input_is_one_line_and_exit_2(stack: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          argv: tuple[str, ...], message: str) -> None:
    given = dict(zip(argv[::2], argv[1::2], strict=True))
    defaults = {"--stack": STACK, "--challenger": stack["challenger"], "--outcomes": str(records(tmp_path, 0))}
    flags = [item for flag, value in {**defaults, **given}.items() for item in (flag, value)]
    done = run_main(capsys, "promote", *flags)
    assert done.code == 2, done.err
    assert done.error_line().startswith(message), done.err
    assert champion_now(stack) == stack["champion"]


def test_records_without_the_router_s_features_cannot_be_compared(stack: dict[str, Any], tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    bare = write_jsonl(tmp_path / "bare.jsonl", [outcome_record(i, {HAIKU: 1.0, SONNET: 1.0, OPUS: 1.0},
                                                                features=False) for i in range(3)])
    done = promote(capsys, stack, bare)
    assert done.code == 2
    assert done.error_line() == (f"error: --outcomes: {bare}: no record both models can route with every tier "
                                 "scored (3 no router features (meta.features))")


def test_a_champion_pointer_naming_no_artifact_is_one_line_and_exit_1(stack: dict[str, Any], tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    stack["ssm"].put_parameter(Name=PARAMETER, Value="latest", Type="String", Overwrite=True)
    done = promote(capsys, stack, records(tmp_path, 0))
    assert done.code == 1
    assert done.error_line().startswith(f"error: promote: the champion {PARAMETER} = 'latest' cannot be compared "
                                        "with ('latest' is not an s3:// URI")


# -- rollback --------------------------------------------------------------------------------------------------------


def test_rollback_restores_the_champion_before_the_promotion(stack: dict[str, Any], tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert promote(capsys, stack, records(tmp_path, 0)).code == 0
    done = run_main(capsys, "rollback", "--stack", STACK)
    assert done.code == 0, done.err
    assert done.out.startswith(f"rolled back: {PARAMETER} = {stack['champion']} (version 3, as version 1; was "
                               f"{stack['challenger']})")
    assert champion_now(stack) == stack["champion"]
    history = stack["ssm"].get_parameter_history(Name=PARAMETER)["Parameters"]
    assert history[-1]["Description"] == "model-router rollback to version 1"
    # Nothing before version 1: a second rollback says so, and does not undo the first.
    again = run_main(capsys, "rollback", "--stack", STACK)
    assert again.code == 1
    assert again.error_line() == (f"error: rollback: {PARAMETER} has no earlier champion in its history (version 3 "
                                  "is the first value it had)")
    assert champion_now(stack) == stack["champion"]


def test_rollback_walks_back_through_promotions(stack: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    third = upload(stack["s3"], "v3.json.gz", tiny_model(1.5))
    for value in (stack["challenger"], third):
        stack["ssm"].put_parameter(Name=PARAMETER, Value=value, Type="String", Overwrite=True,
                                   Description="model-router promote")
    assert run_main(capsys, "rollback", "--stack", STACK).code == 0
    assert champion_now(stack) == stack["challenger"]
    assert run_main(capsys, "rollback", "--stack", STACK).code == 0
    assert champion_now(stack) == stack["champion"]


def test_rollback_dry_run_changes_nothing(stack: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    stack["ssm"].put_parameter(Name=PARAMETER, Value="bundled", Type="String", Overwrite=True)
    done = run_main(capsys, "rollback", "--stack", STACK, "--dry-run")
    assert done.code == 0, done.err
    assert done.out.startswith(f"dry run: would set {PARAMETER} from bundled (version 2) back to "
                               f"{stack['champion']} (version 1, ")
    assert champion_now(stack) == "bundled"


def test_rollback_region_and_bad_input(stack: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    west = boto3.client("ssm", region_name="us-west-2")
    west.put_parameter(Name="/west/router/champion-model-uri", Value="bundled", Type="String")
    west.put_parameter(Name="/west/router/champion-model-uri", Value=stack["champion"], Type="String",
                       Overwrite=True)
    missing = run_main(capsys, "rollback", "--stack", "west")
    assert missing.code == 2 and missing.error_line().startswith(
        "error: rollback: GetParameterHistory: ParameterNotFound: ")
    assert "check --stack: the stack creates its champion parameter" in missing.error_line()
    assert run_main(capsys, "rollback", "--stack", "west", "--region", "us-west-2").code == 0
    assert west.get_parameter(Name="/west/router/champion-model-uri")["Parameter"]["Value"] == "bundled"
    bad = run_main(capsys, "rollback", "--stack", "a_b")
    assert bad.code == 2 and bad.error_line().startswith("error: --stack: 'a_b' is not a CloudFormation stack name")
    assert run_main(capsys, "rollback").code == 2


# -- the pointer's history, by itself ---------------------------------------------------------------------------------


def _versions(*entries: tuple[str, str]) -> list[Version]:
    return [Version(i + 1, value, description) for i, (value, description) in enumerate(entries)]


@pytest.mark.parametrize(("entries", "expected"), [
    ([("A", "")], None),
    ([("A", ""), ("B", "model-router promote")], 1),
    ([("A", ""), ("A", "redeployed"), ("B", "model-router promote")], 2),
    # After a rollback to version 1, nothing earlier: no toggle back to B.
    ([("A", ""), ("B", "model-router promote"), ("A", "model-router rollback to version 1")], None),
    ([("A", ""), ("B", "p"), ("C", "p"), ("B", "model-router rollback to version 2")], 1),
    # A rollback description whose value no longer matches (edited by hand since): taken at face value.
    ([("A", ""), ("B", "p"), ("C", "model-router rollback to version 1")], 2),
    ([], None),
])
def test_rollback_target(entries: list[tuple[str, str]], expected: int | None) -> None:
    target = rollback_target(_versions(*entries))
    assert (target.version if target else None) == expected

