"""What an Americano stand-in calls: its env's database and its env's chatmock.

Blocking work (psycopg) runs in daemon threads, so a slow database never delays the
daemon's exit on SIGTERM; failures come back as `DatabaseUnavailable` or an error text.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .receivers import http_call

if TYPE_CHECKING:
    from .services import ServiceInstance

CHAT_MODEL = "gpt-4o-mini"
CHATMOCK_TIMEOUT_S = 10.0
DB_CONNECT_TIMEOUT_S = 3


class DatabaseUnavailable(Exception):
    """The environment's database could not be reached."""


async def _in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    # Daemon threads, not the default executor: a slow DB must never delay a SIGTERM exit.
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if not future.done():
            future.set_exception(error) if error else future.set_result(result)

    def work() -> None:
        try:
            result, error = fn(*args), None
        except BaseException as exc:  # handed to the awaiting coroutine
            result, error = None, exc
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:
            pass  # the loop has closed: the daemon is exiting

    threading.Thread(target=work, daemon=True).start()
    return await future


def _query(url: str | None, statements: list[str]) -> list[tuple]:
    """Rows of the first statement whose table exists; [] when none does."""
    import psycopg
    from psycopg import errors

    if not url:
        raise DatabaseUnavailable("no database_url configured for this environment")
    try:
        conn = psycopg.connect(
            url,
            connect_timeout=DB_CONNECT_TIMEOUT_S,
            autocommit=True,
            options="-c statement_timeout=5000",
        )
    except psycopg.Error as exc:
        info = psycopg.conninfo.conninfo_to_dict(url)
        where = f"{info.get('host', '?')}:{info.get('port', 5432)}/{info.get('dbname', '?')}"
        raise DatabaseUnavailable(f"database unreachable at {where}: {type(exc).__name__}") from exc
    with conn:
        for sql in statements:
            try:
                return conn.execute(sql).fetchall()
            except (errors.UndefinedTable, errors.UndefinedColumn):
                continue
    return []


async def _ask_chatmock(svc: ServiceInstance, system: str, user: str) -> tuple[Any, str | None]:
    """Ask this env's chatmock; returns (parsed JSON content, None) or (None, error)."""
    url = svc.peers.get("chatmock", "") + "/v1/chat/completions"
    payload = {
        "model": CHAT_MODEL,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
    }
    try:
        status, body = await http_call("POST", url, payload, timeout=CHATMOCK_TIMEOUT_S)
    except TimeoutError:
        return None, f"LLM service (chatmock) timed out after {CHATMOCK_TIMEOUT_S:.0f}s"
    except OSError as exc:
        return None, f"LLM service (chatmock) unreachable: {exc.strerror or type(exc).__name__}"
    if status != 200:
        return None, f"LLM service (chatmock) answered HTTP {status}"
    try:
        return json.loads(json.loads(body)["choices"][0]["message"]["content"]), None
    except (ValueError, KeyError, IndexError, TypeError):
        return None, "LLM service (chatmock) returned a malformed completion"
