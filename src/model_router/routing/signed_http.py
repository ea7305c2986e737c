"""S3 GetObject and SSM GetParameter as SigV4-signed HTTPS requests made with botocore's own signer and HTTP
session, without botocore clients.

Why: building an S3 and an SSM client loads and decodes their service models and endpoint rule sets, ~150 ms
of CPU on a cold start for two calls whose wire format is one line each; that was most of what loading the
router model from S3 added to a classifier's cold start (bench/bench_model_load.py, docs/rollout.md). What the
clients would have done that matters here is kept: the credential chain, SigV4, connect/read timeouts, one retry
on throttling, 5xx and connection errors, a bucket in another region (followed once), ``AWS_ENDPOINT_URL_<SERVICE>``
and ``AWS_ENDPOINT_URL``. Each request goes through the session's ``before-send`` event first, as a client's
would, so moto (and anything else hooked there) answers it in tests and benches.

Errors are botocore's: :class:`ClientError` with the service's code and message, or a :class:`BotoCoreError`
(no credentials, connection, timeout), so callers handle them as they would a client's.
"""

from __future__ import annotations

import json
import os
import random
import time
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.exceptions import ClientError, HTTPClientError, NoCredentialsError
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.httpsession import URLLib3Session
from botocore.response import StreamingBody

CONNECT_TIMEOUT_S = 2.0  # a cold start waits on these: seconds, not minutes
READ_TIMEOUT_S = 5.0
ATTEMPTS = 2  # one retry, as the clients were configured
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRY_CODES = frozenset({"Throttling", "ThrottlingException", "ThrottledException", "SlowDown",
                         "RequestLimitExceeded", "TooManyRequestsException", "InternalError", "ServiceUnavailable"})


def _region(session: Any) -> str:
    return session.get_config_variable("region") or os.environ.get("AWS_REGION") or "us-east-1"


def _endpoint(service: str, region: str) -> tuple[str, bool]:
    """The service's base URL and whether it came from the environment (a custom endpoint: S3 path-style)."""
    custom = os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}") or os.environ.get("AWS_ENDPOINT_URL")
    if custom:
        return custom.rstrip("/"), True
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://{service}.{region}.{suffix}", False


class SignedClient:
    """One AWS service's signed requests on a botocore session (its credentials and events)."""

    service = ""
    signer: type[SigV4Auth] = SigV4Auth

    def __init__(self, session: Any, region: str | None = None):
        self._session = session
        self.region = region or _region(session)
        self._http = URLLib3Session(timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S))

    def _send(self, operation: str, build: Any) -> AWSResponse:
        """Send the request ``build(region)`` makes, signed afresh for each attempt; the last response or error."""
        region = self.region
        for attempt in range(1, ATTEMPTS + 1):
            request: AWSRequest = build(region)
            credentials = self._session.get_credentials()
            if credentials is None:
                raise NoCredentialsError()
            self.signer(credentials.get_frozen_credentials(), self.service, region).add_auth(request)
            prepared = request.prepare()
            try:
                # The same hook a botocore client calls before sending: moto and stubs answer here.
                hooked = [reply for _, reply in self._session.emit(
                    f"before-send.{self.service}.{operation}", request=prepared) if reply is not None]
                response: AWSResponse = hooked[0] if hooked else self._http.send(prepared)
            except (HTTPClientError, BotoConnectionError):  # connection refused, timeouts, reset
                if attempt == ATTEMPTS:
                    raise
                _backoff(attempt)
                continue
            moved = response.headers.get("x-amz-bucket-region")
            if response.status_code in (301, 400) and moved and moved != region and attempt < ATTEMPTS:
                region = moved  # a bucket in another region: ask there, as the S3 client would
                continue
            if response.status_code < 300:
                return response
            code, message = self._error(response)
            if attempt < ATTEMPTS and (response.status_code in RETRY_STATUSES or code in RETRY_CODES):
                _backoff(attempt)
                continue
            raise ClientError({"Error": {"Code": code, "Message": message},
                               "ResponseMetadata": {"HTTPStatusCode": response.status_code}}, operation)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _error(self, response: AWSResponse) -> tuple[str, str]:
        raise NotImplementedError


class LightS3(SignedClient):
    """``get_object`` only, returning what a client's would: ``ContentLength`` and a streaming ``Body``."""

    service = "s3"
    signer = S3SigV4Auth

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        def build(region: str) -> AWSRequest:
            base, custom = _endpoint("s3", region)
            path = quote(Key, safe="/~")
            if custom or "." in Bucket:  # a custom endpoint or a dotted bucket name: path-style
                url = f"{base}/{Bucket}/{path}"
            else:
                scheme, host = base.split("://", 1)
                url = f"{scheme}://{Bucket}.{host}/{path}"
            request = AWSRequest(method="GET", url=url)
            request.stream_output = True  # the caller checks ContentLength before reading the body
            return request

        response = self._send("GetObject", build)
        length = int(response.headers.get("content-length") or 0)
        return {"ContentLength": length, "Body": StreamingBody(response.raw, length)}

    def _error(self, response: AWSResponse) -> tuple[str, str]:
        body = response.content or b""
        try:
            root = ElementTree.fromstring(body)
        except ElementTree.ParseError:
            return str(response.status_code), body[:200].decode("utf-8", "replace")
        return root.findtext("Code") or str(response.status_code), root.findtext("Message") or ""


class LightSsm(SignedClient):
    """``get_parameter`` only (a String parameter: the champion pointer)."""

    service = "ssm"

    def get_parameter(self, *, Name: str) -> dict[str, Any]:
        def build(region: str) -> AWSRequest:
            return AWSRequest(method="POST", url=_endpoint("ssm", region)[0] + "/",
                              data=json.dumps({"Name": Name}).encode(),
                              headers={"Content-Type": "application/x-amz-json-1.1",
                                       "X-Amz-Target": "AmazonSSM.GetParameter"})

        parsed: dict[str, Any] = json.loads(self._send("GetParameter", build).content)
        return parsed

    def _error(self, response: AWSResponse) -> tuple[str, str]:
        try:
            body = json.loads(response.content or b"{}")
        except ValueError:
            return str(response.status_code), (response.content or b"")[:200].decode("utf-8", "replace")
        code = str(body.get("__type") or response.status_code).rsplit("#", 1)[-1]
        return code, str(body.get("message") or body.get("Message") or "")


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, 0.1 * 2 ** attempt))  # full jitter, short: a cold start is waiting
