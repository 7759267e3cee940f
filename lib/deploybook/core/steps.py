"""Resumable rollout/rollback steps: the step ledger.

A rollout interrupted after "apply migrations" must not apply them again when it is rerun
with the same run id. `StepLedger` writes every step's start and end to a JSON-lines file
(one fsynced append per event, so a crash loses at most the line being written) and skips
steps that a previous attempt of the same run finished. The one-run-per-environment lock
is `deploybook.core.lock`.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from deploybook.core.clock import utcnow
from deploybook.core.secrets import scrub
from deploybook.errors import ConfigError

PLANNED, STARTED, DONE, FAILED, SKIPPED = "planned", "started", "done", "failed", "skipped"
_DETAIL_LIMIT = 2000


def _clip(text: str) -> str:
    text = scrub(text)
    return text if len(text) <= _DETAIL_LIMIT else text[: _DETAIL_LIMIT - 1] + "…"


def _detail_of(value: Any) -> str:
    """A short account of what a step returned (a command's summary, a message...)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return _clip(value)
    summary = getattr(value, "summary", None)
    if callable(summary):
        try:
            return _clip(str(summary()))
        except Exception:  # a broken summary must not fail a step that succeeded
            pass
    return _clip(repr(value))


def _jsonable(value: Any) -> Any:
    """The step's return value if it survives JSON, so a resumed run can read it back."""
    if value is None:
        return None
    if hasattr(value, "as_dict"):
        value = value.as_dict()
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return None
    return scrub(value)


@dataclass
class Step:
    """One step of a run: what it is, how it went, when, and for how long."""

    name: str
    status: str
    describe: str = ""
    started_at: str | None = None
    ended_at: str | None = None
    duration_s: float | None = None
    detail: str = ""
    value: Any = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("value")
        if d["duration_s"] is not None:
            d["duration_s"] = round(d["duration_s"], 3)
        return d


class StepLedger:
    """A JSON-lines journal of one run's steps, so a rerun resumes after the last done step.

    One file may hold many runs; events are filtered by ``run_key`` (use the run id plus
    environment and release). Steps must be idempotent *up to* their own completion: a
    step that was started but never finished (the process died) runs again.
    """

    def __init__(self, path: str | os.PathLike[str], run_key: str) -> None:
        if not run_key or not isinstance(run_key, str):
            raise ConfigError("StepLedger: run_key must be a non-empty string (e.g. the run id)")
        self.path = Path(path)
        self.run_key = run_key
        self._steps: dict[str, Step] = {}
        self._done_at: dict[str, str] = {}
        self._done_value: dict[str, Any] = {}
        self._unfinished: set[str] = set()
        self._load()

    # -- persistence ----------------------------------------------------------------------

    def _load(self) -> None:
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8", errors="replace") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    # A torn last line from a crash mid-write: the step it described did
                    # not finish, so ignoring it makes that step run again.
                    warnings.warn(
                        f"{self.path}:{lineno}: unreadable ledger line ignored",
                        stacklevel=3,
                    )
                    continue
                if not isinstance(event, dict) or event.get("run_key") != self.run_key:
                    continue
                self._apply(event)

    def _apply(self, event: dict[str, Any]) -> None:
        name, status = event["step"], event["status"]
        step = Step(
            name=name,
            status=status,
            describe=event.get("describe", ""),
            started_at=event.get("started_at"),
            ended_at=event.get("ended_at"),
            duration_s=event.get("duration_s"),
            detail=event.get("detail", ""),
            value=event.get("result"),
        )
        self._steps[name] = step
        if status == DONE:
            self._done_at[name] = step.ended_at or ""
            self._done_value[name] = step.value
            self._unfinished.discard(name)
        elif status == STARTED:
            self._unfinished.add(name)
        else:
            self._unfinished.discard(name)

    def _append(self, step: Step, result: Any = None) -> None:
        """One line per event, appended with O_APPEND under flock and fsynced."""
        event = {"run_key": self.run_key, "step": step.name, "recorded_at": utcnow()}
        event.update(step.as_dict())
        event.pop("name")
        if result is not None:
            event["result"] = result
        data = (json.dumps(scrub(event), sort_keys=True) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            # After a torn write the file may not end in a newline: start a fresh line.
            size = os.fstat(fd).st_size
            if size:
                with open(self.path, "rb") as fh:
                    fh.seek(size - 1)
                    if fh.read(1) != b"\n":
                        data = b"\n" + data
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        self._apply(event)

    # -- queries ----------------------------------------------------------------------------

    def is_done(self, name: str) -> bool:
        return name in self._done_at

    def done_value(self, name: str) -> Any:
        """What a finished step returned (as JSON), for a resumed run that skipped it."""
        return self._done_value.get(name)

    @property
    def steps(self) -> list[Step]:
        return list(self._steps.values())

    def summary(self) -> list[dict[str, Any]]:
        """One row per step (its latest state), ready for ``pandas.DataFrame``."""
        return [step.as_dict() for step in self._steps.values()]

    def to_frame(self):  # -> pandas.DataFrame, imported lazily: pandas is slow to import
        import pandas as pd

        return pd.DataFrame(self.summary(), columns=list(Step.__dataclass_fields__)[:-1])

    # -- running ----------------------------------------------------------------------------

    def run(
        self,
        name: str,
        fn: Callable[[], Any],
        *,
        execute: bool,
        describe: str,
    ) -> Step:
        """Run one step once per run: plan it, skip it if done before, or run and record it."""
        describe = scrub(describe)
        if not execute:
            plan = f"would run: {describe}"
            if self.is_done(name):
                plan = f"would skip (already done at {self._done_at[name]}): {describe}"
            step = Step(name, PLANNED, describe, detail=plan)
            self._steps[name] = step
            print(f"… {name}: {plan}", flush=True)
            return step
        if self.is_done(name):
            when = self._done_at[name]
            now = utcnow()
            step = Step(name, SKIPPED, describe, now, now, 0.0, f"already done at {when}")
            self._append(step)
            step.value = self._steps[name].value = self.done_value(name)
            print(f"– {name}: skipped (already done at {when})", flush=True)
            return step
        if name in self._unfinished:
            print(f"⚠ {name}: a previous attempt started but never finished; running it again")
        step = Step(name, STARTED, describe, started_at=utcnow())
        print(f"▶ {name}: started {step.started_at} — {describe}", flush=True)
        self._append(step)
        began = time.monotonic()
        try:
            value = fn()
        except BaseException as exc:
            step.status, step.ended_at = FAILED, utcnow()
            step.duration_s = time.monotonic() - began
            step.detail = _clip(f"{type(exc).__name__}: {exc}")
            self._append(step)
            first = step.detail.splitlines()[0] if step.detail else ""
            print(
                f"✖ {name}: failed {step.ended_at} after {step.duration_s:.2f}s — {first}",
                flush=True,
            )
            raise
        step.status, step.ended_at = DONE, utcnow()
        step.duration_s = time.monotonic() - began
        step.detail = _detail_of(value)
        self._append(step, _jsonable(value))
        step.value = value
        self._steps[name].value = value
        print(f"✔ {name}: done {step.ended_at} in {step.duration_s:.2f}s", flush=True)
        return step
