"""Bounded user traffic against a stand-in: what makes a metrics source measure something.

A real service under watch serves its users; an idle sandbox serves nobody, so the 5xx
rate of its ``/metrics`` is undefined. `Traffic` sends the Americano API's user requests
at a fixed rate from a background thread for at most ``max_s`` seconds (or ``max_requests``)
and is stopped by its context manager, whatever happens inside. The stand-in counts every
answer in ``http_requests_total{status}`` like the real API, so a scrape (or a Prometheus
query) of it measures the 5xx rate this traffic met. It changes nothing else.

    with traffic.against("sandbox-production") as t:
        run_runbook("04-smoke", ...)
    t.statuses  # {"503": 80}
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from deploybook.errors import SandboxError

# The API's user requests (method, path, JSON body): reads and adaptive questions.
API_REQUESTS: tuple[tuple[str, str, dict[str, Any] | None], ...] = (
    ("GET", "/validation/scenarios/metrics?dateRange=7days", None),
    ("POST", "/adaptive/question/next", {"session_id": "traffic-1", "objective_id": "obj-1"}),
    ("GET", "/validation/scenarios/metrics?dateRange=7days", None),
    ("POST", "/adaptive/question/next", {"session_id": "traffic-2", "objective_id": "obj-2"}),
)


class Traffic:
    """A fixed request rate against one base URL, in a thread; bounded and stoppable."""

    def __init__(
        self,
        base_url: str,
        rate_per_s: float = 20.0,
        *,
        max_s: float = 300.0,
        max_requests: int | None = None,
        requests: tuple[tuple[str, str, dict[str, Any] | None], ...] = API_REQUESTS,
        timeout_s: float = 5.0,
    ) -> None:
        if rate_per_s <= 0 or max_s <= 0 or not requests:
            raise ValueError("traffic needs rate_per_s > 0, max_s > 0 and at least one request")
        self.base_url, self.rate_per_s, self.max_s = base_url.rstrip("/"), rate_per_s, max_s
        self.max_requests, self.requests, self.timeout_s = max_requests, requests, timeout_s
        self.statuses: Counter[str] = Counter()  # "503" -> n; "error" for no answer
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def sent(self) -> int:
        return sum(self.statuses.values())

    def start(self) -> Traffic:
        if self._thread is not None:
            raise RuntimeError("traffic already started")
        self._thread = threading.Thread(target=self._run, name="sandbox-traffic", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout_s + 1)

    def __enter__(self) -> Traffic:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        period, started = 1.0 / self.rate_per_s, time.monotonic()
        with httpx.Client(base_url=self.base_url, timeout=self.timeout_s) as client:
            n = 0
            while not self._stop.is_set():
                if time.monotonic() - started >= self.max_s:
                    break
                if self.max_requests is not None and n >= self.max_requests:
                    break
                method, path, body = self.requests[n % len(self.requests)]
                try:
                    status = str(client.request(method, path, json=body).status_code)
                except httpx.HTTPError:
                    status = "error"
                self.statuses[status] += 1
                n += 1
                self._stop.wait(max(0.0, started + n * period - time.monotonic()))


def against(env: str, service: str = "api", *, state: Path | None = None, **kwargs: Any) -> Traffic:
    """Traffic (not yet started) against a service of the running sandbox stack."""
    from deploybook.sandbox import stack

    current = stack.read_state(state.resolve() if state else None)
    try:
        url = current["envs"][env]["services"][service]  # type: ignore[index]
    except (TypeError, KeyError):
        raise SandboxError(
            f"no {env}/{service} in the running sandbox: run `deploybook sandbox up` first"
        ) from None
    return Traffic(url, **kwargs)
