"""S3-compatible object storage (AWS S3, Ceph radosgw, MinIO…) through boto3, errors mapped once.

Records leave the machine that ran them so every reviewer can reach them; the store is
named by URL (``s3://bucket/prefix``), its endpoint comes from the environment
(``DEPLOYBOOK_S3_ENDPOINT``, else boto3's own ``AWS_ENDPOINT_URL``/AWS defaults), and its
credentials are secrets named like the rest: ``DEPLOYBOOK_S3_ACCESS_KEY_ID`` and
``DEPLOYBOOK_S3_SECRET_ACCESS_KEY`` when set (registered with the scrubber, never printed),
else boto3's usual chain (``AWS_*`` variables, an instance or workload role).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from deploybook.core import secrets
from deploybook.errors import ConfigError, DeploybookError

ENDPOINT_VAR = "DEPLOYBOOK_S3_ENDPOINT"
REGION_VAR = "DEPLOYBOOK_S3_REGION"
KEY_ID_VAR = "DEPLOYBOOK_S3_ACCESS_KEY_ID"
SECRET_VAR = "DEPLOYBOOK_S3_SECRET_ACCESS_KEY"
SHA_META = "sha256"  # user metadata key: x-amz-meta-sha256 = hex SHA-256 of the object's bytes


class ObjectStoreError(DeploybookError):
    """The store refused or could not be reached; the message names the URL, never a key."""


@dataclass(frozen=True)
class Location:
    """``s3://bucket/prefix`` split; ``key(rel)`` is where a file under outputs/ goes."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> Location:
        """Refuse anything but ``s3://bucket[/prefix]`` before any connection is made."""
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
            raise ConfigError(f"{url!r}: expected s3://BUCKET[/PREFIX]")
        return cls(parts.netloc, parts.path.strip("/"))

    def key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def url(self, rel: str = "") -> str:
        return f"s3://{self.bucket}/{self.key(rel)}" if rel else f"s3://{self.bucket}/{self.prefix}"


def client(environ: Mapping[str, str] | None = None) -> Any:
    """A boto3 S3 client for the configured endpoint (path-style: radosgw/MinIO by address)."""
    import boto3
    from botocore.config import Config

    env = os.environ if environ is None else environ
    kwargs: dict[str, Any] = {"region_name": env.get(REGION_VAR) or "us-east-1"}
    if endpoint := env.get(ENDPOINT_VAR):
        kwargs["endpoint_url"] = endpoint
    key_id, secret = secrets.read_secret(KEY_ID_VAR, env), secrets.read_secret(SECRET_VAR, env)
    if key_id.is_set != secret.is_set:
        raise ConfigError(f"set both {KEY_ID_VAR} and {SECRET_VAR}, or neither")
    if key_id.is_set:  # read_secret registered both values with the scrubber
        kwargs["aws_access_key_id"] = key_id.reveal()
        kwargs["aws_secret_access_key"] = secret.reveal()
    config = Config(
        s3={"addressing_style": "path"},
        retries={"max_attempts": 4, "mode": "standard"},
        connect_timeout=10,
        read_timeout=60,
    )
    return boto3.client("s3", config=config, **kwargs)


def _mapped(exc: Exception, what: str) -> ObjectStoreError:
    """One message for every boto error: what failed, the store's code, scrubbed."""
    code = (getattr(exc, "response", None) or {}).get("Error", {}).get("Code")
    detail = code or type(exc).__name__
    if code == "NoSuchBucket":
        detail = "no such bucket (create it first)"
    return ObjectStoreError(secrets.scrub(f"{what}: {detail}: {exc}"))


def head_sha(s3: Any, loc: Location, rel: str) -> str | None:
    """The stored object's SHA-256 metadata; None when there is no such object."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        head = s3.head_object(Bucket=loc.bucket, Key=loc.key(rel))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise _mapped(exc, f"HEAD {loc.url(rel)}") from None
    except BotoCoreError as exc:
        raise _mapped(exc, f"HEAD {loc.url(rel)}") from None
    return head.get("Metadata", {}).get(SHA_META)


def put(s3: Any, loc: Location, rel: str, data: bytes, sha: str, content_type: str) -> None:
    """Store ``data`` with its SHA-256 as metadata (checked by the store via Content-MD5)."""
    import base64
    import hashlib

    from botocore.exceptions import BotoCoreError, ClientError

    md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
    try:
        s3.put_object(
            Bucket=loc.bucket,
            Key=loc.key(rel),
            Body=data,
            ContentMD5=md5,
            ContentType=content_type,
            Metadata={SHA_META: sha},
        )
    except (BotoCoreError, ClientError) as exc:
        raise _mapped(exc, f"PUT {loc.url(rel)}") from None


def listing(s3: Any, loc: Location) -> Iterator[str]:
    """Every key under the prefix, relative to it."""
    from botocore.exceptions import BotoCoreError, ClientError

    start = loc.key("")
    prefix = start if not start or start.endswith("/") else start + "/"
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=loc.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"][len(prefix) :]
    except (BotoCoreError, ClientError) as exc:
        raise _mapped(exc, f"LIST {loc.url()}") from None


def get(s3: Any, loc: Location, rel: str) -> tuple[bytes, str | None]:
    """An object's bytes and its SHA-256 metadata (None when it carries none)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        answer = s3.get_object(Bucket=loc.bucket, Key=loc.key(rel))
        return answer["Body"].read(), answer.get("Metadata", {}).get(SHA_META)
    except (BotoCoreError, ClientError) as exc:
        raise _mapped(exc, f"GET {loc.url(rel)}") from None
