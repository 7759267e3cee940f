"""What ships, as git records it: the tag, artifact SHAs, scope, inventory and the freeze.

Plan sections 1 (scope), 2 (change inventory), 5 (schedule and freeze) and 8 (artifacts).
The judging functions are pure (lists of names and commits in, a verdict out); the
`*_check` functions read the checkout through `deploybook.systems.git` and return `Checks`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from deploybook.config import SEMVER, Params, PreconditionsSpec
from deploybook.core.checks import Check, Checks, Status, run_check
from deploybook.runbooks.preconditions.planfiles import plan_files
from deploybook.systems import git as repo
from deploybook.systems.git import Commit

_LIST_LIMIT = 15


def _listed(lines: list[str]) -> list[str]:
    more = [f"… and {len(lines) - _LIST_LIMIT} more"] if len(lines) > _LIST_LIMIT else []
    return [f"  {line}" for line in lines[:_LIST_LIMIT]] + more


# --- section 8: the release tag and artifact SHAs --------------------------------------------


def judge_tag(
    release: str,
    exists: bool,
    on_branch: bool | None,
    branch: str,
    previous: str | None = None,
    previous_exists: bool = True,
    previous_before: bool = True,
) -> tuple[Status, str]:
    """SemVer, present in the checkout, on the protected branch, after the previous release."""
    if not SEMVER.match(release):
        return Status.FAIL, f"release {release!r} is not a SemVer tag vX.Y.Z"
    if not exists:
        return Status.FAIL, f"tag {release} does not exist in the checkout: fetch tags or create it"
    if on_branch is None:
        return Status.FAIL, f"branch {branch} not found in the checkout (nor origin/{branch})"
    if not on_branch:
        return Status.FAIL, f"tag {release} is not on the protected branch {branch}"
    if previous and not previous_exists:
        return Status.FAIL, f"previous release tag {previous} does not exist in the checkout"
    if previous and not previous_before:
        return Status.FAIL, f"previous release {previous} is not an ancestor of {release}"
    after = f", after {previous}" if previous else ""
    return Status.PASS, f"{release} is SemVer, exists and is on {branch}{after}"


def release_tag(params: Params, release: str, previous_release: str | None = None) -> Checks:
    """Plan section 8: the release tag is SemVer ``vX.Y.Z``, exists and is on the branch."""
    path, branch = params.checkout.path, params.preconditions.release_branch

    def probe() -> tuple[Status, str]:
        exists = repo.tag_exists(path, release) if SEMVER.match(release) else False
        ref = repo.resolve_branch(path, branch)
        on_branch = None if ref is None or not exists else repo.is_ancestor(path, release, ref)
        prev_exists = bool(previous_release) and repo.tag_exists(path, previous_release)
        prev_before = prev_exists and exists and repo.is_ancestor(path, previous_release, release)
        status, evidence = judge_tag(
            release, exists, on_branch, branch, previous_release or None, prev_exists, prev_before
        )
        if status is Status.PASS:
            evidence += f"\ncommit {repo.commit_sha(path, release)}"
        return status, evidence

    return Checks([run_check("release tag is SemVer and on the protected branch", "8", probe)])


def artifacts(params: Params, release: str) -> Checks:
    """Plan section 8: record the commit and each component's tree SHA at the tag.

    The check's data is what the cell glues (`scraps.Artifacts`), so the rollout can require
    production to ship exactly what staging tested: ``{"release", "commit", "tag_object",
    "components": {name: {"sha", "kind", "paths"}}}``.
    """
    path, spec = params.checkout.path, params.preconditions

    def probe() -> tuple[Status, str, dict[str, Any]]:
        if not repo.tag_exists(path, release):
            return Status.FAIL, f"tag {release} does not exist: no artifact SHAs to record", {}
        record: dict[str, Any] = {
            "release": release,
            "commit": repo.commit_sha(path, release),
            "tag_object": repo.object_sha(path, release),
            "components": {},
        }
        lines, missing = [f"commit {record['commit']} (tag object {record['tag_object']})"], []
        for name, paths in spec.artifacts.items():
            shas = {p: repo.tree_sha(path, release, p) for p in paths}
            absent = [p for p, sha in shas.items() if sha is None]
            if absent:
                missing.append(f"{name}: {', '.join(absent)} not at {release}")
                continue
            sha = next(iter(shas.values())) if len(shas) == 1 else _combined(shas)
            record["components"][name] = {"sha": sha, "kind": "git-tree", "paths": paths}
            lines.append(f"{name}: {sha} (git tree of {', '.join(paths)})")
        for name, digest in spec.artifact_digests.items():
            record["components"][name] = {"sha": digest, "kind": "image-digest", "paths": []}
            lines.append(f"{name}: {digest} (image digest from params)")
        if missing:
            return (
                Status.FAIL,
                "\n".join(["artifact paths missing at the tag:", *missing, *lines]),
                record,
            )
        names = ", ".join(record["components"])
        return Status.PASS, "\n".join([f"recorded artifact SHAs for {names}", *lines]), record

    return Checks([run_check("artifact SHAs recorded", "8", probe)])


def _combined(shas: Mapping[str, str | None]) -> str:
    import hashlib

    text = "\n".join(f"{p} {sha}" for p, sha in sorted(shas.items()))
    return hashlib.sha1(text.encode()).hexdigest()  # noqa: S324 - an identifier, not security


# --- section 1: scope ------------------------------------------------------------------------


def scope_patterns(spec: PreconditionsSpec) -> list[re.Pattern[str]]:
    """Params' out-of-scope regexes plus, per excluded epic, `epic5` names and 5.x story ids."""
    patterns = [re.compile(p, re.IGNORECASE) for p in spec.out_of_scope]
    for epic in spec.out_of_scope_epics:
        e = re.escape(epic)
        patterns.append(re.compile(rf"(?<![a-z])epic[\s_-]*{e}(?![\d.])", re.IGNORECASE))
        patterns.append(re.compile(rf"(?<![\d.]){e}\.\d+(?![\d])"))
    return patterns


@dataclass(frozen=True)
class ScopeItem:
    """Something that ships with the release: a pending migration, a SQL file, a commit."""

    kind: str
    name: str
    ident: str  # what `scope_allow` matches: the name, or a commit SHA by prefix


def judge_scope(
    items: Iterable[ScopeItem], patterns: list[re.Pattern[str]], allow: Iterable[str]
) -> tuple[Status, str, list[dict[str, str]]]:
    """Everything matching an out-of-scope pattern is listed; unallowed ones fail."""
    allow = [a.strip() for a in allow]
    items = list(items)
    hits, allowed = [], []
    for item in items:
        match = next((m for p in patterns if (m := p.search(item.name))), None)
        if match is None:
            continue
        ok = any(item.ident == a or item.name == a or item.ident.startswith(a) for a in allow)
        row = {"kind": item.kind, "name": item.name, "matched": match.group(0)}
        (allowed if ok else hits).append(row)
    describe = [f"{r['kind']} {r['name']} (matches {r['matched']!r})" for r in hits]
    note = [f"allowed by params: {r['kind']} {r['name']}" for r in allowed]
    counted = ", ".join(
        f"{sum(1 for i in items if i.kind == k)} {k}s" for k in dict.fromkeys(i.kind for i in items)
    )
    if hits:
        return (
            Status.FAIL,
            "\n".join(
                [
                    f"{len(hits)} out-of-scope item(s) in the release: {describe[0]}",
                    *_listed(describe),
                    *note,
                ]
            ),
            hits + allowed,
        )
    return (
        Status.PASS,
        "\n".join([f"nothing out of scope among {counted or 'no items'}", *note]),
        allowed,
    )


def scope(params: Params, release: str, previous_release: str | None) -> Checks:
    """Plan section 1: no out-of-scope work (e.g. Epic 5) among what ships since the last tag;
    the codebases the plan names exist at the tag."""
    path, spec = params.checkout.path, params.preconditions
    folder = params.checkout.migrations_dir

    def probe() -> tuple[Status, str, Any]:
        if not (spec.out_of_scope or spec.out_of_scope_epics):
            return Status.SKIP, "no out-of-scope patterns configured (preconditions.out_of_scope)"
        if not previous_release:
            return (
                Status.FAIL,
                "previous_release is not set: cannot tell what is new in this release",
            )
        dirs, files = repo.entries_at(path, release, folder)
        before, _ = repo.entries_at(path, previous_release, folder)
        items = [ScopeItem("pending migration", d, d) for d in dirs if d not in set(before)]
        items += [ScopeItem("loose SQL file", f, f) for f in files if f.endswith(".sql")]
        items += [
            ScopeItem("commit", f"{c.short} {c.subject}", c.sha)
            for c in repo.commits_between(path, previous_release, release)
        ]
        return judge_scope(items, scope_patterns(spec), spec.scope_allow)

    return Checks(
        [run_check("nothing out of scope ships", "1", probe), *plan_files(params, release, "1")]
    )


# --- section 2: change inventory -------------------------------------------------------------


def judge_inventory(
    inventory: Mapping[str, list[str]], present: set[str], release: str
) -> tuple[Status, str]:
    """Every file the plan's inventory names exists at the tag; a missing one names its story."""
    missing = [(story, f) for story, files in inventory.items() for f in files if f not in present]
    total = sum(len(files) for files in inventory.values())
    if missing:
        lines = [f"{f} (story {story}) is missing at {release}" for story, f in missing]
        return Status.FAIL, "\n".join(
            [f"{len(missing)} of {total} inventory file(s) missing: {lines[0]}", *lines[1:]]
        )
    per_story = [f"{story}: {', '.join(files)}" for story, files in inventory.items()]
    return Status.PASS, "\n".join(
        [f"all {total} inventory files of {len(inventory)} stories exist at {release}", *per_story]
    )


def inventory(params: Params, release: str) -> Checks:
    """Plan section 2: the change inventory's files exist at the release tag (and the
    section 19 references, not critical)."""
    spec = params.preconditions

    def probe() -> tuple[Status, str]:
        if not spec.inventory:
            return Status.SKIP, "no change inventory configured (preconditions.inventory)"
        if not repo.tag_exists(params.checkout.path, release):
            return Status.FAIL, f"tag {release} does not exist: cannot read the inventory files"
        return judge_inventory(
            spec.inventory, repo.files_at(params.checkout.path, release), release
        )

    return Checks(
        [
            run_check("change inventory present at the tag", "2", probe),
            *plan_files(params, release, "19"),
        ]
    )


# --- section 5: schedule and freeze ----------------------------------------------------------


def window_start(params: Params, now: datetime | None = None) -> tuple[datetime, bool]:
    """T, the deployment window's start (UTC), and whether params set it (else: now)."""
    configured = params.schedule.window_start
    if configured is None:
        return (now or datetime.now(UTC)).replace(microsecond=0), False
    return (configured if configured.tzinfo else configured.replace(tzinfo=UTC)), True


def judge_freeze(
    commits: list[Commit], freeze_start: datetime, allow: Iterable[str], branch: str
) -> tuple[Status, str, list[dict[str, Any]]]:
    """No commit on the protected branch since the freeze began, unless params allow it."""
    allow = [a.strip() for a in allow]
    inside = [c for c in commits if c.when >= freeze_start]
    bad = [c for c in inside if not any(c.sha.startswith(a) for a in allow)]
    rows = [
        {"sha": c.sha, "when": c.when.isoformat(), "subject": c.subject, "allowed": c not in bad}
        for c in inside
    ]
    since = f"{freeze_start:%Y-%m-%d %H:%M} UTC"
    if bad:
        return (
            Status.FAIL,
            "\n".join(
                [
                    f"{len(bad)} commit(s) on {branch} inside the freeze (since {since}): "
                    + bad[0].line()
                ]
                + _listed([c.line() for c in bad])
                + [f"allowed by params: {c.line()}" for c in inside if c not in bad]
            ),
            rows,
        )
    note = f"; {len(inside)} allowed by params" if inside else ""
    return Status.PASS, f"no commits on {branch} since the freeze began ({since}){note}", rows


def schedule(params: Params, release: str, now: datetime | None = None) -> Checks:
    """Plan section 5: the window is known and nothing landed on the branch in the freeze."""
    sched, spec = params.schedule, params.preconditions
    start, configured = window_start(params, now)
    freeze_start = start - timedelta(hours=sched.freeze_hours)
    end = start + timedelta(minutes=sched.window_minutes)
    rollback_end = end + timedelta(minutes=sched.rollback_window_minutes)
    now = now or datetime.now(UTC)
    plan = (
        f"window {start:%Y-%m-%d %H:%M}–{end:%H:%M} UTC ({sched.window_minutes} min); freeze from "
        f"{freeze_start:%Y-%m-%d %H:%M} UTC (T-{sched.freeze_hours}h); rollback window until "
        f"{rollback_end:%Y-%m-%d %H:%M} UTC ({sched.rollback_window_minutes} min)"
    )
    if not configured:
        window = Check(
            "deployment window scheduled",
            "5",
            Status.WARN,
            f"schedule.window_start is not set: assuming the window starts now\n{plan}",
            False,
        )
    elif end < now:
        window = Check(
            "deployment window scheduled", "5", Status.WARN, f"the window is over\n{plan}", False
        )
    else:
        window = Check("deployment window scheduled", "5", Status.PASS, plan, False)

    def probe() -> tuple[Status, str, Any]:
        path = params.checkout.path
        ref = repo.resolve_branch(path, spec.release_branch)
        if ref is None:
            return Status.FAIL, f"branch {spec.release_branch} not found in the checkout"
        commits = repo.commits_since(path, ref, freeze_start)
        return judge_freeze(commits, freeze_start, spec.freeze_allow, spec.release_branch)

    return Checks([window, run_check("no commits inside the freeze", "5", probe)])


def schedule_plot(params: Params, release: str, now: datetime | None = None) -> Any:
    """The schedule timeline (plan section 5), with any commit inside the freeze marked."""
    from deploybook.core.plots import plot_schedule

    start, configured = window_start(params, now)
    freeze_start = start - timedelta(hours=params.schedule.freeze_hours)
    steps = []
    ref = repo.resolve_branch(params.checkout.path, params.preconditions.release_branch)
    if ref is not None:
        allow = params.preconditions.freeze_allow
        for c in repo.commits_since(params.checkout.path, ref, freeze_start)[:10]:
            allowed = any(c.sha.startswith(a) for a in allow)
            steps.append(
                {
                    "name": f"commit {c.short}",
                    "start": c.when,
                    "end": c.when + timedelta(minutes=1),
                    "status": "warn" if allowed else "fail",
                }
            )
    return plot_schedule(
        steps,
        start,
        deployment_window_min=params.schedule.window_minutes,
        rollback_window_min=params.schedule.rollback_window_minutes,
        freeze_h=params.schedule.freeze_hours,
        now=now or datetime.now(UTC),
        title=f"{release} schedule" + ("" if configured else " (window start not set: T = now)"),
    )
