"""Router model artifacts for tests: small tier model documents (every weight zero, so each loads in
milliseconds), their pinned URIs, and a moto S3 bucket and SSM parameter for them.

``tiny_model(bias)``: the three tiers' biases are ``bias``, ``bias + 1``, ``bias + 2``: a different ``bias``
is a different file, so a different SHA-256 and version.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from model_router.routing.learned import FEATURES_VERSION, HASH_BITS, MODEL_FORMAT, N_BUCKETS

BUCKET = "router-models-bucket"
PREFIX = "router-models/"
REGION = "us-east-1"
_EMPTY = {"index": "", "value": "", "count": 0, "scale": 1.0}


def tiny_model(bias: float = 0.0, *, gzipped: bool = True) -> bytes:
    document = {
        "format": MODEL_FORMAT, "features_version": FEATURES_VERSION, "n_buckets": N_BUCKETS, "hash_bits": HASH_BITS,
        "tiers": {tier: {"weights": _EMPTY, "bias": bias + i, "calibration": {"a": 1.0, "b": 0.0}}
                  for i, tier in enumerate(("haiku", "sonnet", "opus"))},
        "metadata": {"test": True},
    }
    text = json.dumps(document).encode()
    return gzip.compress(text, mtime=0) if gzipped else text


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pinned(key: str, data: bytes, bucket: str = BUCKET) -> str:
    """The artifact URI of ``data`` stored at ``key``: s3://bucket/key#sha256=<its SHA-256>."""
    return f"s3://{bucket}/{key}#sha256={sha256(data)}"


def clean_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No credentials or profile of the machine's: moto's fakes only, in one region."""
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.fixture
def model_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A moto S3 client with the model bucket created (moto's SSM in the same mock)."""
    import boto3
    from moto import mock_aws

    clean_aws_environment(monkeypatch)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        yield s3


def upload(s3: Any, key: str, data: bytes) -> str:
    """Put ``data`` at PREFIX + ``key`` in the model bucket; its pinned URI."""
    s3.put_object(Bucket=BUCKET, Key=PREFIX + key, Body=data)
    return pinned(PREFIX + key, data)
