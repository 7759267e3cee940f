"""The audit record: where executed notebooks go, their HTML, and the hash-chained ledger.

Every run writes ``outputs/<env>/<release>/<UTC-timestamp>-<runbook>.ipynb`` and an HTML
rendering beside it, then appends one line to ``outputs/<env>/ledger.jsonl`` holding the
record's SHA-256 and the previous line's hash. Editing, deleting or reordering a record or
a ledger line breaks the chain, which `verify` reports.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deploybook.core.secrets import scrub
from deploybook.errors import AuditError

GENESIS = "0" * 64


def utc_stamp(moment: datetime | None = None) -> str:
    """A filename-safe UTC timestamp that sorts in time order."""
    return (moment or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")


def record_path(
    outputs: Path, env: str, release: str, runbook: str, moment: datetime | None = None
) -> Path:
    return outputs / env / release / f"{utc_stamp(moment)}-{runbook}.ipynb"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def scrub_notebook(path: Path) -> int:
    """Scrub every string in an executed notebook in place; returns how many changed.

    Defence in depth: the library scrubs what it displays, but a traceback or a stray print
    could still carry a secret; the record is cleaned before it is hashed.
    """
    raw = path.read_text(encoding="utf-8")
    cleaned = scrub(raw)
    if cleaned != raw:
        # The notebook stays valid JSON: the mask contains no quote or backslash.
        path.write_text(cleaned, encoding="utf-8")
        return 1
    return 0


_EXPORTERS: dict[bool, Any] = {}


def _exporter(no_input: bool) -> Any:
    """One nbconvert exporter per kind for the process: building one loads and compiles
    the lab templates (most of a small record's rendering time), every time."""
    if no_input not in _EXPORTERS:
        from nbconvert import HTMLExporter

        exporter = HTMLExporter(template_name="lab")
        if no_input:
            exporter.exclude_input = True
            exporter.exclude_input_prompt = True
            exporter.exclude_output_prompt = True
        _EXPORTERS[no_input] = exporter
    return _EXPORTERS[no_input]


# One transparent pixel, as a figure's PNG output.
_PIXEL = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9Q"
    "DwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def warm_renderer() -> None:
    """Build both exporters and render a small notebook in memory: the first rendering in
    a process loads and compiles templates, markdown and highlighting (~1.7 s), which a
    caller with a moment to spare (the rehearsal, while its stack starts) pays ahead."""
    import nbformat

    v4 = nbformat.v4
    code = v4.new_code_cell("x = 1", execution_count=1)
    code.outputs = [
        v4.new_output("stream", name="stdout", text="x\n"),
        v4.new_output("display_data", data={"text/html": "<b>x</b>", "text/plain": "x"}),
        v4.new_output("display_data", data={"image/png": _PIXEL, "text/plain": "x"}),
        v4.new_output("error", ename="E", evalue="x", traceback=["\x1b[0;31mE\x1b[0m: x"]),
    ]
    sample = v4.new_notebook(cells=[v4.new_markdown_cell("# x\n\n*x* `x`"), code])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for no_input in (False, True):
            _exporter(no_input).from_notebook_node(sample)


def render_html(notebook: Path, *, no_input: bool = False) -> Path:
    """Render a record to HTML for reviewers without Jupyter (widget state included)."""
    import nbformat

    exporter = _exporter(no_input)
    with warnings.catch_warnings():
        # Scraps have their own mimetype that HTML cannot show; they are data, not display.
        warnings.simplefilter("ignore", UserWarning)
        body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    suffix = ".review.html" if no_input else ".html"
    target = notebook.with_suffix(suffix)
    target.write_text(scrub(body), encoding="utf-8")
    return target


def _entry_hash(entry: dict[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def ledger_path(outputs: Path, env: str) -> Path:
    return outputs / env / "ledger.jsonl"


def read_ledger(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise AuditError(f"{path}:{number}: not a JSON line ({exc.msg})") from None
    return entries


def append_ledger(outputs: Path, env: str, **facts: Any) -> dict[str, Any]:
    """Append one hash-chained entry for a record; files are hashed as they are now."""
    path = ledger_path(outputs, env)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        lines = [line for line in handle.read().splitlines() if line.strip()]
        previous = json.loads(lines[-1])["hash"] if lines else GENESIS
        entry: dict[str, Any] = {"seq": len(lines) + 1, "env": env, **scrub(facts)}
        for key in ("record", "html"):
            if entry.get(key):
                entry[f"{key}_sha256"] = sha256_file(outputs / entry[key])
        entry["prev_hash"] = previous
        entry["hash"] = _entry_hash(entry)
        handle.write(json.dumps(entry, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
        fcntl.flock(handle, fcntl.LOCK_UN)
    return entry


def crashed(outputs: Path, envs: list[str] | None = None) -> list[tuple[str, str]]:
    """(env, record) of each ledger entry whose run crashed: a partial record, listed and
    hashed like any other, so `verify` trusts it as what it is (not tampering)."""
    return [
        (env, e.get("record", "?"))
        for env, entries in _readable_ledgers(outputs, envs)
        for e in entries
        if e.get("status") == "crashed"
    ]


def _readable_ledgers(
    outputs: Path, envs: list[str] | None
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(env, entries) of each environment's ledger that reads; one that does not is left
    to `verify`, which reports it."""
    for env in envs or sorted(p.parent.name for p in outputs.glob("*/ledger.jsonl")):
        try:
            yield env, read_ledger(ledger_path(outputs, env))
        except AuditError:
            continue


def _line_problems(entry: dict[str, Any], index: int, previous: str) -> list[str]:
    """What is wrong with ledger line ``index`` (1-based) following a line hashed ``previous``."""
    problems = []
    if entry.get("seq") != index:
        problems.append(
            f"sequence {entry.get('seq')} where {index} was expected (a line was removed or moved)"
        )
    if entry.get("prev_hash") != previous:
        problems.append("chain broken: prev_hash does not match the line before")
    if _entry_hash(entry) != entry.get("hash"):
        problems.append("ledger line edited: its hash does not match its content")
    return problems


def _file_problem(outputs: Path, entry: dict[str, Any], key: str) -> tuple[str, str] | None:
    """(kind, what) when the file an entry lists under ``key`` is gone or changed."""
    rel = entry[key]
    file = outputs / rel
    if not file.exists():
        return MISSING, f"{key} {rel} was deleted"
    if sha256_file(file) != entry.get(f"{key}_sha256"):
        return EDITED, f"{key} {rel} was edited after it was recorded"
    return None


# What can make one record untrustworthy (`check_record`).
EDITED, MISSING, CHAIN_BROKEN, UNLISTED = "edited", "missing", "chain broken", "not in the ledger"


def check_record(outputs: Path, env: str, record: str) -> tuple[dict[str, Any] | None, str, str]:
    """Whether one record can be trusted: its ledger entry (the last listing ``record``,
    relative to ``outputs``), and ``(kind, what)`` wrong with it, both empty when nothing is.

    Trusted means: every ledger line from the first up to its entry is intact (sequence,
    chain, content hash) and the file's SHA-256 still matches its entry.
    """
    try:
        entries = read_ledger(ledger_path(outputs, env))
    except AuditError as exc:
        return None, CHAIN_BROKEN, str(exc)
    index = next(
        (i for i in range(len(entries), 0, -1) if entries[i - 1].get("record") == record), None
    )
    if index is None:
        return None, UNLISTED, f"record {record} is not in {ledger_path(outputs, env)}"
    previous = GENESIS
    for number, entry in enumerate(entries[:index], 1):
        if problems := _line_problems(entry, number, previous):
            return entries[index - 1], CHAIN_BROKEN, f"ledger line {number}: {problems[0]}"
        previous = entry.get("hash", "")
    entry = entries[index - 1]
    kind, what = _file_problem(outputs, entry, "record") or ("", "")
    return entry, kind, what


@dataclass(frozen=True)
class Problem:
    """One thing `verify` found wrong, with where it is."""

    env: str
    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.env}: {self.where}: {self.what}"


def verify(outputs: Path, envs: list[str] | None = None) -> tuple[int, list[Problem]]:
    """Check every ledger's chain and every record's hash; returns (entries, problems)."""
    envs = envs or sorted(p.parent.name for p in outputs.glob("*/ledger.jsonl"))
    problems: list[Problem] = []
    count = 0
    for env in envs:
        path = ledger_path(outputs, env)
        try:
            entries = read_ledger(path)
        except AuditError as exc:
            problems.append(Problem(env, str(path), str(exc)))
            continue
        previous = GENESIS
        listed: set[str] = set()
        for index, entry in enumerate(entries, 1):
            count += 1
            where = f"ledger line {index} ({entry.get('record', '?')})"
            problems += [
                Problem(env, where, what) for what in _line_problems(entry, index, previous)
            ]
            previous = entry.get("hash", "")
            if entry.get("copy"):
                listed.add(entry["copy"])  # a working copy: changes until sealed, not hashed
            for key in ("record", "html"):
                rel = entry.get(key)
                if not rel:
                    continue
                listed.add(rel)
                if what := _file_problem(outputs, entry, key):
                    problems.append(Problem(env, where, what[1]))
        for record in sorted((outputs / env).glob("*/*.ipynb")):
            rel = str(record.relative_to(outputs))
            if rel not in listed:
                problems.append(Problem(env, rel, "record is not in the ledger"))
    return count, problems


def unsealed(outputs: Path, envs: list[str] | None = None) -> list[tuple[str, str]]:
    """(env, copy) of every prepared copy (``deploybook open``) that no sealed record names:
    open now, or abandoned; either way not a record, and never a passed run."""
    found = []
    for env, entries in _readable_ledgers(outputs, envs):
        sealed = {e["copy"] for e in entries if e.get("copy") and e.get("record")}
        found += [
            (env, e["copy"])
            for e in entries
            if e.get("status") == "open" and e.get("copy") and e["copy"] not in sealed
        ]
    return found
