"""Where a router model artifact lives, and how the champion is named: the URI grammar the settings, the
classifier and ``model-router promote`` share.

An artifact is ``s3://<bucket>/<key>.json[.gz]#sha256=<64 hex digits>``: the fragment pins the exact bytes
of the object (``sha256sum`` of the file as uploaded, gzip'd or not). The classifier uses an object only
when its SHA-256 is the pinned one, so an overwritten, truncated or swapped object never serves: the owner
says which bytes, S3 only stores them. A URI without the pin is refused.

The champion is one of: the bundled model (``""`` or ``bundled``), an artifact URI, or ``ssm:<name>``: an
SSM parameter whose value is ``bundled`` or an artifact URI (what the deployed stack uses, so that
``model-router promote`` and ``rollback`` move the champion without a deploy). The challenger is an
artifact URI. Standard library only: the settings import this at every cold start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

BUNDLED = "bundled"
SSM_SCHEME = "ssm:"
SUFFIXES = (".json.gz", ".json")
# S3 bucket names: 3-63 lower-case letters, digits, dots and hyphens. Keys: no whitespace and no '#'.
_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>[^#\s]+)#sha256=(?P<sha256>[^#\s]*)$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
# SSM parameter names: letters, digits and _.-/ (a hierarchical name starts with '/'), at most 2048.
_SSM_NAME = re.compile(r"^[A-Za-z0-9_./-]{1,2048}$")
FORM = "s3://BUCKET/KEY.json.gz#sha256=<64 hex digits>"


@dataclass(frozen=True)
class ModelUri:
    """An artifact: its bucket and key, and the SHA-256 its bytes must have."""

    bucket: str
    key: str
    sha256: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}#sha256={self.sha256}"

    @property
    def gzipped(self) -> bool:
        return self.key.endswith(".gz")

    @property
    def name(self) -> str:
        """The object's file name without its suffix: the model's id (``s3://b/router/v3.json.gz`` -> ``v3``)."""
        base = self.key.rsplit("/", 1)[-1]
        return next(base.removesuffix(s) for s in SUFFIXES if base.endswith(s))

    @property
    def version(self) -> str:
        """The first 12 hex digits of the pinned SHA-256: what classifications and metrics call the version."""
        return self.sha256[:12]


def parse_model_uri(text: str) -> ModelUri:
    """``text`` as an artifact URI; ValueError saying what is wrong with it (and the form it should have)."""
    text = text.strip()
    if not text.startswith("s3://"):
        raise ValueError(f"{text!r} is not an s3:// URI ({FORM})")
    if "#" not in text:
        raise ValueError(f"{text!r} has no #sha256= pin: append #sha256=$(sha256sum FILE) of the uploaded file "
                         f"({FORM})")
    match = _URI.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not {FORM} (a bucket name, a key without spaces or '#', one #sha256= pin)")
    key, digest = match["key"], match["sha256"]
    if not key.endswith(SUFFIXES) or key.rsplit("/", 1)[-1] in SUFFIXES:
        raise ValueError(f"{text!r}: the key must name a .json or .json.gz file")
    if not _HEX64.match(digest):
        raise ValueError(f"{text!r}: the pin must be 64 lower-case hex digits (sha256sum's output)")
    return ModelUri(match["bucket"], key, digest)


def ssm_name(text: str) -> str | None:
    """The parameter name of an ``ssm:<name>`` champion source, None for any other source."""
    return text.strip()[len(SSM_SCHEME):] if text.strip().startswith(SSM_SCHEME) else None


def check_champion_source(text: str) -> None:
    """ValueError unless ``text`` is a champion source: ``""``, ``bundled``, an artifact URI or ``ssm:<name>``."""
    text = text.strip()
    if text in ("", BUNDLED):
        return
    name = ssm_name(text)
    if name is not None:
        if not _SSM_NAME.match(name):
            raise ValueError(f"{text!r}: ssm: is followed by an SSM parameter name (letters, digits, _.-/)")
        return
    parse_model_uri(text)
