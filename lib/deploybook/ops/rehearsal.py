"""`make rehearse`: the whole release on the sandbox, in the plan's order.

Brings a fresh stack up, runs the runbooks as CI would (papermill, one record each),
including a rollback drill whose smoke watch is *expected* to fail, then takes the stack
down and says where the records are. Exit 0 only when every step ended as expected.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploybook.config import read_params_yaml
from deploybook.core import paths
from deploybook.errors import DeploybookError
from deploybook.sandbox import stack, traffic

RELEASE = stack.RELEASE
PREVIOUS = stack.PREVIOUS
SIGNOFFS = {
    "PM": "Pat Manager",
    "Web": "Wendy Web",
    "API": "Andy Api",
    "Services": "Sam Services",
    "QA": "Quinn QA",
}


@dataclass
class Step:
    """One runbook run of the rehearsal and the outcome it should have."""

    runbook: str
    env: str
    parameters: dict[str, Any] = field(default_factory=dict)
    expect: str = "passed"
    before: Any = None  # a callable run first (e.g. inject a fault)
    because: str | None = None  # an expected failure must fail for this reason
    # run around the runbook (e.g. user traffic during the watch); stopped whatever happens
    during: Callable[[], AbstractContextManager[Any]] | None = None
    breached: str | None = None  # the breach scrap must name this metric (e.g. error_rate)


# The drill's users: a fixed rate against the production API for the whole of 04 (bounded).
DRILL_TRAFFIC_PER_S = 20.0
DRILL_TRAFFIC_MAX_S = 300.0


def _inject_release_bug() -> None:
    """The drill's trigger: v1.4.0 of the production API answers 5xx (cured by rollback)."""
    fault = {"error_rate": 1.0, "status": 503, "version": RELEASE}
    stack.admin("/admin/sandbox-production/api/fault", fault)
    print("  injected: sandbox-production api v1.4.0 answers 503 to every request")


def _drill_traffic() -> traffic.Traffic:
    """Users keep using the API during the drill's watch, so its 5xx rate is measured."""
    print(f"  traffic: {DRILL_TRAFFIC_PER_S:g} requests/s to sandbox-production api during 04")
    return traffic.against(
        "sandbox-production", rate_per_s=DRILL_TRAFFIC_PER_S, max_s=DRILL_TRAFFIC_MAX_S
    )


def _breached_metric(record: Any) -> str | None:
    """The metric named by a record's breach scrap (what 05-rollback reads), if any."""
    from deploybook.session.glued import read_glued

    try:
        scrap = read_glued(record).get("breach")
    except (OSError, ValueError):
        return None
    data = scrap.data if scrap is not None else None
    return data.get("metric") if isinstance(data, dict) else None


def _archive_earlier_records(outputs: Path) -> Path | None:
    """Move the sandbox environments' earlier records to ``outputs/rehearsals/<stamp>/``.

    A rehearsal starts a fresh stack: the records of the one before describe databases and
    services that no longer exist, and a release overview that kept them would list every
    earlier rehearsal's runs (and take longer to build at every run). They stay verifiable
    where they are moved to: ``deploybook audit verify --outputs <that folder>``.
    """
    from deploybook.core.audit import utc_stamp

    earlier = [outputs / env for env in stack.ENVS if (outputs / env).is_dir()]
    if not earlier:
        return None
    target = outputs / "rehearsals" / utc_stamp()
    target.mkdir(parents=True)
    for folder in earlier:
        folder.rename(target / folder.name)
    print(f"earlier sandbox records moved to {target} (deploybook audit verify --outputs {target})")
    return target


def _warm_imports() -> threading.Thread:
    """Import papermill and nbconvert (~0.8 s) and prepare the HTML renderer (~1.7 s) while
    the stack starts, which mostly waits on PostgreSQL and the daemon, not on this process."""

    def work() -> None:
        import papermill  # noqa: F401

        from deploybook.core import audit

        audit.warm_renderer()  # the first record's HTML would pay it otherwise

    thread = threading.Thread(target=work, name="warm-imports", daemon=True)
    thread.start()
    return thread


def _render_review(record: Path) -> Path:
    """The record's code-free ``.review.html``, as `build_report(review=True)` would make it.

    Run on a worker thread while the next runbook runs (this process mostly waits on the
    kernel then), instead of all ten at the end; the thread shares this process's secret
    registry, so the page is scrubbed like every other."""
    from deploybook.core import audit

    return audit.render_html(record, no_input=True)


def _spot_checks_done(env: str) -> dict[str, str]:
    """The rehearsal's QA confirms every manual spot check its params file lists."""
    raw = read_params_yaml(paths.project_root() / "params" / f"{env}.yaml")
    return {item: SIGNOFFS["QA"] for item in raw.get("spot_checks") or []}


def _sign_approvals(env: str = "sandbox-production") -> list[Path]:
    """Sign ``env``'s five approvals in-process, with the stack's throwaway role keys.

    Run after 02 passed (the approvals bind its record) and before 03 verifies them, as the
    approvers would on a real night; the private keys stay in the state dir."""
    from deploybook.ops.approve import sign_roles
    from deploybook.sandbox import signers

    keys = signers.approvers(paths.state_dir())
    stored = sign_roles(env, RELEASE, keys, names=SIGNOFFS)
    print(f"  signed {', '.join(keys)} with the sandbox's throwaway keys")
    return stored


def plan() -> list[Step]:
    """The rehearsal, in the plan's order, then the rollback drill."""
    lead = {"previous_release": PREVIOUS, "operator": "rehearsal-lead"}
    prod = "sandbox-production"
    steps = []
    for env in ("sandbox", prod):
        # No expect_version: 04 expects what the 03 record says (the release).
        smoke = {**lead, "spot_checks_confirmed": _spot_checks_done(env)}
        steps += [
            Step("01-preconditions", env, {**lead, "rate_limits_reviewed_by": "Sam Services"}),
            Step("02-migration-dry-run", env, dict(lead)),
            # sandbox: typed names (its params' shortcut); sandbox-production: production's
            # signed approvals, signed by the sandbox's throwaway approvers after its 02.
            Step("03-rollout", env, {**lead, "execute": True, "approvals": SIGNOFFS})
            if env == "sandbox"
            else Step("03-rollout", env, {**lead, "execute": True}, before=_sign_approvals),
            Step("04-smoke", env, smoke),
        ]
    steps += [
        Step(
            "04-smoke",
            prod,
            dict(smoke),  # spot checks confirmed: the drill must fail on the breach alone
            expect="failed",
            because="SLA breached",
            before=_inject_release_bug,
            during=_drill_traffic,
            breached="error_rate",  # measured on the 5xx of real requests, nothing else
        ),
        Step(
            "05-rollback",
            prod,
            {**lead, "execute": True, "confirm_restore": stack.database_name(prod)},
        ),
    ]
    return steps


def rehearse(keep_up: bool = False) -> int:
    """Run the rehearsal; returns the process exit code."""
    from deploybook.ops.kernel import Prestarted, prestart
    from deploybook.ops.runner import kernel_environment, run_runbook

    root = str(paths.project_root())

    started = time.monotonic()
    print("deploybook rehearsal: fresh sandbox stack")
    # Before the warm-up thread: deleting the old cluster is thousands of unlink calls, each
    # waiting for the GIL while that thread imports (seconds instead of a fraction of one).
    stack.down(purge=True, progress=None)
    _archive_earlier_records(paths.outputs_dir())
    warming = _warm_imports()
    results = []
    reviews: list[Future[Path]] = []
    renderer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="review-html")
    # Each run starts the next run's kernel while it runs (a kernel boots in about a second);
    # one left over when the rehearsal stops is stopped below.
    ready: Prestarted | None = None
    try:
        # The first run's kernel boots while the stack starts (mostly waits on PostgreSQL).
        ready = prestart(kernel_environment(os.environ, paths.outputs_dir().resolve()), root)
        stack.up()
        warming.join()
        steps = plan()
        for number, step in enumerate(steps, 1):
            if step.before:
                step.before()
            print(f"\n▶ {step.runbook} on {step.env} (expect {step.expect})", flush=True)
            handed, ready = ready, None
            with step.during() if step.during else contextlib.nullcontext():
                result = run_runbook(
                    step.runbook,
                    step.env,
                    RELEASE,
                    dict(step.parameters),
                    kernel_ready=handed,
                    prestart_next=number < len(steps),
                )
            ready = result.next_kernel
            ok = result.status == step.expect and (step.because or "") in (result.error or "")
            if step.breached:
                metric = _breached_metric(result.record)
                if metric != step.breached:
                    print(f"  breach on {metric!r}, expected {step.breached!r}")
                    ok = False
            results.append((step, result, ok))
            reviews.append(renderer.submit(_render_review, result.record))
            mark = "ok" if ok else "UNEXPECTED"
            print(f"  {result.status} in {result.duration_s:.1f} s [{mark}] → {result.record}")
            if result.error:
                print(f"  {result.error}")
            if not ok:
                break
    except DeploybookError as exc:
        print(f"rehearsal stopped: {exc}")
        return exc.exit_code or 1
    finally:
        if ready is not None:
            ready.stop()
        if not keep_up:
            stack.down(progress=None)
        wait(reviews)  # a failed render is redone by build_report below
        renderer.shutdown()
    outputs = paths.outputs_dir()
    print(f"\nrecords under {outputs} (ledger: {outputs}/<env>/ledger.jsonl)")
    from deploybook.session.overview import build_report

    for env in sorted({step.env for step, _, _ in results}):
        print(f"overview: {build_report(env, RELEASE, outputs, review=True)}")
    all_ok = bool(results) and all(ok for _, _, ok in results) and len(results) == len(plan())
    print(f"rehearsal {'passed' if all_ok else 'FAILED'} in {time.monotonic() - started:.1f} s")
    return 0 if all_ok else 1
