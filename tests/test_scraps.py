"""The contract between runbooks: typed, versioned scraps, and no scrap name spelled elsewhere."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
import pytest

from deploybook.session import records, scraps

LIB = Path(__file__).resolve().parents[1] / "lib" / "deploybook"
# A scrap named by a string literal: glue("x", …), .scrap("x"), having="x", SCRAP = "x".
LITERAL = re.compile(
    r"""\b(?:glue|scrap|read_scrap)\(\s*["']|having\s*=\s*["']|\bSCRAP\s*=\s*["']"""
)


def _notebook(path: Path, glued: dict[str, tuple[Any, int | None]]) -> Path:
    """A record holding scraps as the runner writes them (version None: an old record)."""
    outputs = []
    for name, (data, version) in glued.items():
        payload = {"name": name, "data": data, "encoder": "json", "version": 1}
        if version is not None:
            payload["schema_version"] = version
        outputs.append(
            nbformat.v4.new_output(
                "display_data",
                data={scraps.SCRAP_MIMETYPE: payload},
                metadata={"scrapbook": {"name": name, "data": True, "display": False}},
            )
        )
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_code_cell("# glued", outputs=outputs))
    nbformat.write(notebook, path)
    return path


def test_no_scrap_name_literal_outside_scraps_module() -> None:
    offenders = []
    for path in sorted(LIB.rglob("*.py")):
        if path.name == "scraps.py" and path.parent.name == "session":
            continue
        if "sandbox/fixture/" in path.as_posix():
            continue  # the Americano app's own sources, not deploybook's
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if LITERAL.search(line):
                offenders.append(f"{path.relative_to(LIB)}:{number}: {line.strip()}")
    assert not offenders, "scrap names spelled outside session/scraps.py:\n" + "\n".join(offenders)


def test_every_scrap_model_names_one_scrap_and_its_writers() -> None:
    assert len(scraps.SCRAPS) == 16
    for name, model in scraps.SCRAPS.items():
        assert model.NAME == name and model.WRITTEN_BY and model.SCHEMA_VERSION >= 1


SAMPLES: list[Any] = [
    scraps.SnapshotFacts(
        path="/s/x.dump",
        size=10,
        sha256="ab" * 32,
        format="custom",
        created_at="2025-10-29T09:00:00Z",
        database="americano",
        inventory={"row_counts": {"concepts": 3}},
    ),
    scraps.PreviousVersions({"api": "v1.3.0", "web": "v1.3.0"}),
    scraps.MigrationImpact(
        target={"target": "scratch", "verified_copy": True, "restores": 1},
        lines=[
            "content_chunks: writes blocked ~74.20 s (CREATE INDEX … USING hnsw; m statement 1)"
        ],
        total_s=74.2,
        window={"fits": True, "text": "fits the window: migrations 74.20 s"},
    ),
    scraps.AppliedMigrations(["20251014090000_understanding_validation"]),
    scraps.RolloutOutcome(stage="staging", status="completed", execute=True, steps=[]),
    scraps.BreachFacts(service="api", metric="error_rate", peak=1.0, threshold=0.05),
    scraps.SpotCheckRecords.model_validate([{"item": "Login (4.1)", "confirmed": False}]),
    scraps.WatchSamples.model_validate(
        [
            {
                "timestamp": "2025-10-29T09:00:05+00:00",
                "t_s": 5.0,
                "service": "api",
                "values": {"error_rate": None, "p95_ms": None, "queue_depth": None},
                "requests": None,
                "version": None,
                "error": "GET http://api/metrics: connection refused",
            }
        ]
    ),
    scraps.SignOffRecords([{"role": "PM", "name": "Pat", "at": "now", "source": "parameter"}]),
    scraps.RollbackOutcome(dry_run=False, verified=True, recovery_s=12.5, reverted=[]),
]


@pytest.mark.parametrize("model", SAMPLES, ids=lambda m: m.NAME)
def test_round_trip_through_a_record(tmp_path: Path, model: Any) -> None:
    path = _notebook(tmp_path / "r.ipynb", {model.NAME: (model.data(), model.SCHEMA_VERSION)})
    back = type(model).read(path)
    assert back == model and back.data() == model.data()


def test_old_records_without_a_schema_version_still_read(tmp_path: Path) -> None:
    """Records written before typed scraps: no schema version, the shapes of the time."""
    breach = {"service": "api", "label": "5xx rate", "peak": 1.0, "duration_s": 660.0}
    path = _notebook(
        tmp_path / "old.ipynb",
        {
            "previous_versions": ({"api": "v1.3.0"}, None),
            "snapshot": ({"path": "outputs/s.dump", "inventory": {"row_counts": {}}}, None),
            "rollout": ({"stage": "production", "status": "refused", "execute": True}, None),
            "breach": (breach, None),
            "signoffs": ({"PM": "Ann Lee"}, None),
        },
    )
    assert scraps.PreviousVersions.read(path).root == {"api": "v1.3.0"}
    assert scraps.SnapshotFacts.read(path).row_counts == {}
    refused = scraps.RolloutOutcome.read(path)
    assert refused.status == "refused" and not refused.completed and refused.steps == []
    assert scraps.BreachFacts.read(path).data() == breach  # nothing added to what was read
    assert scraps.SignOffRecords.read(path).root == {"PM": "Ann Lee"}
    assert scraps.AppliedMigrations.read(path) is None


@pytest.mark.parametrize(
    ("glued", "message"),
    [
        (
            {"snapshot": ({"size": "big"}, 1)},
            r"scrap 'snapshot' \(schema version 1\) is not a valid SnapshotFacts: path: Field "
            r"required; size: .*run 02-migration-dry-run or 03-rollout again",
        ),
        (
            {"snapshot": ({"path": "x.dump"}, 99)},
            r"scrap 'snapshot' has schema version 99, newer than the 2 this deploybook reads: "
            r"upgrade deploybook",
        ),
        (
            {"previous_versions": (["v1.3.0"], None)},
            r"scrap 'previous_versions' \(schema version 0\) is not a valid PreviousVersions",
        ),
    ],
    ids=["malformed", "newer-schema", "old-wrong-shape"],
)
def test_bad_scrap_is_a_clear_error_naming_the_record(
    tmp_path: Path, glued: dict[str, Any], message: str
) -> None:
    path = _notebook(tmp_path / "bad.ipynb", glued)
    model = scraps.SCRAPS[next(iter(glued))]
    with pytest.raises(scraps.ScrapInvalid, match=message) as caught:
        model.read(path)
    assert str(caught.value).startswith(str(path))


def test_records_find_by_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from deploybook.core import audit

    outputs = tmp_path / "outputs"
    path = audit.record_path(outputs, "staging", "v1.4.0", "03-rollout", None)
    path.parent.mkdir(parents=True)
    _notebook(path, {"previous_versions": ({"api": "v1.3.0"}, 1)})
    audit.append_ledger(
        outputs,
        "staging",
        record=str(path.relative_to(outputs)),
        runbook="03-rollout",
        release="v1.4.0",
        status="passed",
    )
    found = records.find(
        "staging", "v1.4.0", "03-rollout", having=scraps.PreviousVersions, outputs=outputs
    )
    assert found is not None and found.read(scraps.PreviousVersions).root == {"api": "v1.3.0"}
    assert (
        records.find("staging", "v1.4.0", "03-rollout", having=scraps.BreachFacts, outputs=outputs)
        is None
    )
    assert records.read_scraps(path) == {"previous_versions": {"api": "v1.3.0"}}
