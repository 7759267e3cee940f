"""`deploybook audit push` / `audit verify --from` against a real S3 server (Ceph radosgw).

A mock would accept whatever we send; radosgw stores the bytes and the SHA-256 metadata
and answers HEAD/GET/LIST as a real store does, so idempotence, the metadata and the
remote verification are proved end to end. Started once for the module (~20 s), killed
at its end.
"""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from deploybook.core import audit
from deploybook.ops.cli import main
from deploybook.systems import objectstore
from tests.radosgw import S3Endpoint

pytestmark = pytest.mark.orchestrator


@pytest.fixture
def s3_env(s3: S3Endpoint, monkeypatch: pytest.MonkeyPatch) -> S3Endpoint:
    """The endpoint and keys as deploybook reads them: endpoint plain, keys as secrets."""
    monkeypatch.setenv(objectstore.ENDPOINT_VAR, s3.url)
    monkeypatch.setenv(objectstore.KEY_ID_VAR, s3.access_key)
    monkeypatch.setenv(objectstore.SECRET_VAR, s3.secret_key)
    return s3


def _boto(s3: S3Endpoint):
    return boto3.client(
        "s3",
        endpoint_url=s3.url,
        aws_access_key_id=s3.access_key,
        aws_secret_access_key=s3.secret_key,
        region_name="us-east-1",
    )


def _outputs(root: Path) -> Path:
    """Two records, their HTML and a ledger, plus a snapshot and a lock that stay local."""
    for n, name in enumerate(("01-preconditions", "02-migration-dry-run"), 1):
        rel = f"staging/v1.4.0/2026120{n}T000000Z-{name}"
        (root / f"{rel}.ipynb").parent.mkdir(parents=True, exist_ok=True)
        (root / f"{rel}.ipynb").write_text(f'{{"cells": [], "n": {n}}}')
        (root / f"{rel}.html").write_text(f"<p>{name}</p>")
        audit.append_ledger(
            root,
            "staging",
            runbook=name,
            status="passed",
            record=f"{rel}.ipynb",
            html=f"{rel}.html",
        )
    (root / "staging/v1.4.0/snapshots/s1").mkdir(parents=True)
    (root / "staging/v1.4.0/snapshots/s1/toc.dat").write_bytes(b"database rows")
    (root / "staging/.locks").mkdir()
    (root / "staging/.locks/rollout.lock").write_text("pid 1")
    return root


def test_push_is_idempotent_with_sha256_metadata_and_verifies_remotely(
    s3_env: S3Endpoint, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = _boto(s3_env)
    client.create_bucket(Bucket="records")
    outputs = _outputs(tmp_path / "outputs")
    url = "s3://records/epic-4"

    assert main(["audit", "push", url, "--outputs", str(outputs)]) == 0
    first = capsys.readouterr().out
    assert "ok: 5 sent, 0 unchanged" in first
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="records")["Contents"])
    assert keys[-1] == "epic-4/staging/v1.4.0/20261202T000000Z-02-migration-dry-run.ipynb"
    assert "epic-4/staging/ledger.jsonl" in keys
    assert not [k for k in keys if "snapshots" in k or ".locks" in k]
    ledger = outputs / "staging/ledger.jsonl"
    head = client.head_object(Bucket="records", Key="epic-4/staging/ledger.jsonl")
    assert head["Metadata"]["sha256"] == audit.sha256_file(ledger)
    assert s3_env.secret_key not in first and s3_env.access_key not in first

    assert main(["audit", "push", url, "--outputs", str(outputs)]) == 0
    assert "ok: 0 sent, 5 unchanged" in capsys.readouterr().out

    assert main(["audit", "verify", "--from", url]) == 0
    assert "ok: 2 ledger entries verified from 5 objects" in capsys.readouterr().out

    # A record edited in the store (metadata kept) and one rewritten with fresh metadata:
    # the first fails its SHA-256, the second its ledger entry.
    rel = "epic-4/staging/v1.4.0/20261201T000000Z-01-preconditions.ipynb"
    meta = client.head_object(Bucket="records", Key=rel)["Metadata"]
    client.put_object(Bucket="records", Key=rel, Body=b'{"cells": ["edited"]}', Metadata=meta)
    assert main(["audit", "verify", "--from", url]) == 1
    out = capsys.readouterr().out
    assert "bytes do not match its sha256 metadata" in out
    assert "was edited after it was recorded" in out


def test_push_to_a_missing_bucket_names_it_and_never_the_keys(
    s3_env: S3Endpoint, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = _outputs(tmp_path / "outputs")
    assert main(["audit", "push", "s3://no-such-bucket/x", "--outputs", str(outputs)]) == 1
    err = capsys.readouterr().err
    assert "no such bucket" in err and "s3://no-such-bucket/x" in err
    assert s3_env.secret_key not in err
    assert main(["audit", "push", "https://example/x", "--outputs", str(outputs)]) == 2
    assert "expected s3://BUCKET[/PREFIX]" in capsys.readouterr().err
