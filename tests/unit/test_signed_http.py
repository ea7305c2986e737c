"""The router model store's two AWS calls without botocore clients (routing/signed_http.py): answered by moto
through the session's before-send hook, as a client's would be; errors, retries, redirects and endpoints."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError
from router_model_fixtures import BUCKET, REGION, clean_aws_environment, model_bucket, tiny_model, upload

from model_router.routing import signed_http
from model_router.routing.artifacts import ArtifactError, ModelStore
from model_router.routing.model_uri import parse_model_uri
from model_router.routing.signed_http import LightS3, LightSsm

__all__ = ["model_bucket"]  # the fixture, used by name


class _Raw:
    """A raw body for scripted responses (botocore's AWSResponse reads ``stream()``)."""

    def __init__(self, body: bytes):
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body

    def read(self, *_: Any) -> bytes:
        body, self._body = self._body, b""
        return body


def scripted(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> AWSResponse:
    return AWSResponse("https://scripted", status, headers or {}, _Raw(body))


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signed_http, "_backoff", lambda attempt: None)


@pytest.fixture
def session(model_bucket: Any) -> Any:
    """A fresh botocore session (moto's hook registered, the fixture's fake credentials)."""
    return botocore.session.get_session()


def intercept(session: Any, event: str, replies: list[Any]) -> list[Any]:
    """Answer the first len(replies) requests on ``event`` with them in turn (an exception is raised; None: moto
    answers); then moto answers every request. Returns the requests seen."""
    seen: list[Any] = []

    def handler(request: Any, **_: Any) -> Any:
        seen.append(request)
        if replies:
            reply = replies.pop(0)
            if isinstance(reply, Exception):
                raise reply
            return reply
        return None

    session.register(event, handler)
    return seen


def test_get_object_reads_the_object_signed_for_s3(model_bucket: Any, session: Any) -> None:
    data = tiny_model(0.5)
    upload(model_bucket, "a model/v 1.json.gz", data)
    seen = intercept(session, "before-send.s3.GetObject", [])
    response = LightS3(session).get_object(Bucket=BUCKET, Key="router-models/a model/v 1.json.gz")
    assert response["ContentLength"] == len(data)
    assert response["Body"].read() == data
    request = seen[0]
    assert request.url == f"https://{BUCKET}.s3.{REGION}.amazonaws.com/router-models/a%20model/v%201.json.gz"
    assert f"/{REGION}/s3/aws4_request" in request.headers["Authorization"]
    assert request.headers["X-Amz-Content-SHA256"]


def test_s3_errors_are_client_errors_with_the_service_code(model_bucket: Any, session: Any) -> None:
    with pytest.raises(ClientError) as missing_key:
        LightS3(session).get_object(Bucket=BUCKET, Key="router-models/none.json.gz")
    assert missing_key.value.response["Error"]["Code"] == "NoSuchKey"
    with pytest.raises(ClientError) as missing_bucket:
        LightS3(session).get_object(Bucket="no-such-bucket", Key="k")
    assert missing_bucket.value.response["Error"]["Code"] == "NoSuchBucket"


def test_get_parameter_reads_the_pointer_and_names_a_missing_one(model_bucket: Any, session: Any) -> None:
    import boto3

    boto3.client("ssm", region_name=REGION).put_parameter(Name="/stack/router/champion-model-uri",
                                                          Value="bundled", Type="String")
    seen = intercept(session, "before-send.ssm.GetParameter", [])
    ssm = LightSsm(session)
    assert ssm.get_parameter(Name="/stack/router/champion-model-uri")["Parameter"]["Value"] == "bundled"
    assert seen[0].headers["X-Amz-Target"] == "AmazonSSM.GetParameter"
    assert f"/{REGION}/ssm/aws4_request" in seen[0].headers["Authorization"]
    with pytest.raises(ClientError) as missing:
        ssm.get_parameter(Name="/stack/none")
    assert missing.value.response["Error"]["Code"] == "ParameterNotFound"


def test_one_retry_on_throttling_5xx_and_connection_errors(model_bucket: Any, session: Any) -> None:
    data = tiny_model(1.0)
    upload(model_bucket, "v.json.gz", data)
    s3 = LightS3(session)
    slow_down = scripted(503, b"<Error><Code>SlowDown</Code><Message>Reduce your request rate</Message></Error>")
    seen = intercept(session, "before-send.s3.GetObject",
                     [slow_down, None, EndpointConnectionError(endpoint_url="https://x"), None])
    assert s3.get_object(Bucket=BUCKET, Key="router-models/v.json.gz")["Body"].read() == data  # after a 503
    assert len(seen) == 2
    assert s3.get_object(Bucket=BUCKET, Key="router-models/v.json.gz")["Body"].read() == data  # after a refusal
    assert len(seen) == 4

    throttled = scripted(400, b'{"__type": "ThrottlingException", "message": "Rate exceeded"}')
    intercept(session, "before-send.ssm.GetParameter", [throttled, throttled])
    with pytest.raises(ClientError) as twice:  # two attempts, then the error
        LightSsm(session).get_parameter(Name="/any")
    assert twice.value.response["Error"] == {"Code": "ThrottlingException", "Message": "Rate exceeded"}


def test_a_client_error_is_not_retried(model_bucket: Any, session: Any) -> None:
    seen = intercept(session, "before-send.s3.GetObject",
                     [scripted(403, b"<Error><Code>AccessDenied</Code><Message>no</Message></Error>")])
    with pytest.raises(ClientError, match="AccessDenied"):
        LightS3(session).get_object(Bucket=BUCKET, Key="k")
    assert len(seen) == 1


def test_a_bucket_in_another_region_is_followed_once(model_bucket: Any, session: Any) -> None:
    data = tiny_model(2.0)
    upload(model_bucket, "moved.json.gz", data)
    moved = scripted(301, b"<Error><Code>PermanentRedirect</Code><Message>elsewhere</Message></Error>",
                     {"x-amz-bucket-region": "eu-west-1"})
    seen = intercept(session, "before-send.s3.GetObject", [moved])
    assert LightS3(session).get_object(Bucket=BUCKET, Key="router-models/moved.json.gz")["Body"].read() == data
    assert seen[1].url.startswith(f"https://{BUCKET}.s3.eu-west-1.amazonaws.com/")
    assert "/eu-west-1/s3/aws4_request" in seen[1].headers["Authorization"]


def test_endpoint_overrides_and_path_style(monkeypatch: pytest.MonkeyPatch, session: Any) -> None:
    seen = intercept(session, "before-send.s3.GetObject", [scripted(200, b"x", {"content-length": "1"})] * 3)
    LightS3(session).get_object(Bucket="dotted.bucket", Key="k")
    assert seen[-1].url == f"https://s3.{REGION}.amazonaws.com/dotted.bucket/k"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://localhost:4566/")
    LightS3(session).get_object(Bucket=BUCKET, Key="k")
    assert seen[-1].url == f"http://localhost:4566/{BUCKET}/k"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://s3.local:9000")
    LightS3(session, region="cn-north-1").get_object(Bucket=BUCKET, Key="k")
    assert seen[-1].url == f"http://s3.local:9000/{BUCKET}/k"
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    assert signed_http._endpoint("ssm", "cn-north-1") == ("https://ssm.cn-north-1.amazonaws.com.cn", False)


def test_no_credentials_is_a_botocore_error_the_store_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    clean_aws_environment(monkeypatch)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    session = botocore.session.get_session()
    with pytest.raises(NoCredentialsError):
        LightSsm(session).get_parameter(Name="/any")
    store = ModelStore(ssm=LightSsm(session), s3=LightS3(session))
    with pytest.raises(ArtifactError) as problem:
        store.model(parse_model_uri(f"s3://{BUCKET}/m.json.gz#sha256={'0' * 64}"), "champion")
    assert problem.value.reason == "unreachable"
    assert isinstance(NoCredentialsError(), BotoCoreError)


def test_the_default_store_reads_through_the_signed_calls(model_bucket: Any) -> None:
    """ModelStore() builds its own calls (no client injected): the model and the pointer come from moto."""
    import boto3

    data = tiny_model(3.0)
    uri = upload(model_bucket, "default.json.gz", data)
    boto3.client("ssm", region_name=REGION).put_parameter(Name="/s/router/champion-model-uri", Value=uri,
                                                          Type="String")
    store = ModelStore()
    assert isinstance(store, ModelStore)
    loaded = store.champion("ssm:/s/router/champion-model-uri")
    assert loaded.source == "s3" and loaded.version == uri[-64:][:12]
