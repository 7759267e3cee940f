"""The papermill engine of a headless run: fewer saves, and a kernel that may be started ahead.

papermill's own engine writes the whole output notebook (a few hundred kB, ~15 ms) when a
cell starts *and* when it completes. Only the start save tells anything a reader of a
partial record needs — which cell was running when the runner died — and it already carries
every earlier cell's outputs: the completion save is overwritten a moment later by the next
cell's start save. So this engine saves at notebook start, at each cell start and at the end
(papermill's ``notebook_complete`` runs in a ``finally``: a dead kernel or a failed cell
still leaves the full partial record the runner then annotates), and skips the completion
saves, half the writes of a run; the saves while it runs skip nbformat's validation.

The engine also accepts a kernel started before the run (`kernel.Prestarted`): a kernel
boots in about a second, which the rehearsal spends while the previous runbook runs. The
kernel is one of this run's own (its own process group and manager, never shared between
runs); only ``DEPLOYBOOK_RECORD``, which names this run's record and is known only once the
run starts, is set in the kernel before the first cell, by a silent execution that binds
no name and counts no execution. The engine shuts that kernel down itself as nbclient
would its own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nbclient.util import run_sync
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines
from papermill.log import logger
from papermill.utils import merge_kwargs, remove_args

from deploybook.ops import kernel

ENGINE_NAME = "deploybook"


class RecordManager(NotebookExecutionManager):
    """papermill's execution manager without the save at each cell's completion."""

    # Called once, at the first cell start at least this long after the notebook started:
    # the rehearsal starts the next runbook's kernel there, after this run's own start-up.
    on_running: Callable[[], None] | None = None
    on_running_after_s = 1.0

    def notebook_start(self, **kwargs: Any) -> None:
        self._started_at = time.monotonic()
        super().notebook_start(**kwargs)

    def cell_start(self, cell: Any, cell_index: int | None = None, **kwargs: Any) -> None:
        super().cell_start(cell, cell_index, **kwargs)
        hook = self.on_running
        if hook is not None and time.monotonic() - self._started_at >= self.on_running_after_s:
            self.on_running = None
            hook()

    _completing = False
    _final = False

    def save(self, **kwargs: Any) -> None:
        """Write the notebook as it stands. While it runs, compact JSON: papermill's writer
        validates the whole notebook against nbformat's schema and splits every string into
        lines on each save (half its cost) for a file the next save replaces; the last save
        (`notebook_complete`, crashed runs too) is papermill's own."""
        if self._completing:
            return
        if self._final:
            super().save(**kwargs)
            return
        if nb := kwargs.get("nb"):
            self.nb = nb
        if self.output_path:
            # No indent: json's C encoder only serves compact output (3 ms instead of 11 ms
            # a save, twenty-odd saves a run); the last save writes the usual layout.
            text = json.dumps(self.nb, sort_keys=True, ensure_ascii=False)
            Path(self.output_path).write_text(text + "\n", encoding="utf-8")
        self.last_save_time = self.now()

    def notebook_complete(self, **kwargs: Any) -> None:
        hook, self.on_running = self.on_running, None
        if hook is not None:  # a run shorter than on_running_after_s: start it now
            hook()
        self._final = True
        super().notebook_complete(**kwargs)

    def cell_complete(self, cell: Any, cell_index: int | None = None, **kwargs: Any) -> None:
        # papermill's body minus its save (the next cell start or notebook_complete saves).
        self._completing = True
        try:
            super().cell_complete(cell, cell_index, **kwargs)
        finally:
            self._completing = False


class _HandedClient(PapermillNotebookClient):
    """nbclient on a kernel started before the run: sets the run's environment first."""

    env_update: dict[str, str] = {}

    async def async_start_new_kernel_client(self) -> Any:
        kc = await super().async_start_new_kernel_client()
        if self.env_update:
            code = f"__import__('os').environ.update({self.env_update!r})"
            msg_id = kc.execute(code, silent=True, store_history=False)
            reply = await self.async_wait_for_reply(msg_id)
            if reply is None or reply["content"].get("status") != "ok":
                raise RuntimeError(f"could not set the run's environment in its kernel: {reply}")
        return kc

    # nbclient's synchronous path (papermill's) calls this, bound to the base coroutine.
    start_new_kernel_client = run_sync(async_start_new_kernel_client)


class DeploybookEngine(NBClientEngine):
    """papermill's nbclient engine with `RecordManager` and an optional handed-in kernel."""

    @classmethod
    def execute_notebook(
        cls,
        nb: Any,
        kernel_name: str,
        output_path: str | None = None,
        progress_bar: bool = True,
        log_output: bool = False,
        autosave_cell_every: int = 30,
        on_running: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> Any:
        nb_man = RecordManager(
            nb,
            output_path=output_path,
            progress_bar=progress_bar,
            log_output=log_output,
            autosave_cell_every=autosave_cell_every,
        )
        nb_man.on_running = on_running
        nb_man.notebook_start()
        try:
            cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
        finally:
            nb_man.cleanup_pbar()
            nb_man.notebook_complete()
        return nb_man.nb

    @classmethod
    def execute_managed_notebook(
        cls,
        nb_man: NotebookExecutionManager,
        kernel_name: str,
        log_output: bool = False,
        stdout_file: Any = None,
        stderr_file: Any = None,
        start_timeout: int = 60,
        execution_timeout: int | None = None,
        km: Any = None,
        env_update: dict[str, str] | None = None,
        released: Callable[[Any], None] | None = None,
        **kwargs: Any,
    ) -> Any:
        kwargs = remove_args(["input_path"], **kwargs)
        safe_kwargs = remove_args(["timeout", "startup_timeout"], **kwargs)
        final_kwargs = merge_kwargs(
            safe_kwargs,
            timeout=execution_timeout if execution_timeout else kwargs.get("timeout"),
            startup_timeout=start_timeout,
            kernel_name=kernel_name,
            log=logger,
            log_output=log_output,
            stdout_file=stdout_file,
            stderr_file=stderr_file,
        )
        if km is None:
            return PapermillNotebookClient(nb_man, **final_kwargs).execute()
        client = _HandedClient(nb_man, km=km, **final_kwargs)
        client.env_update = dict(env_update or {})
        idle = False
        try:
            executed = client.execute()  # a failed cell is raised by papermill afterwards
            idle = True  # every cell sent has answered
            return executed
        finally:
            # nbclient leaves a kernel it was handed running; stop it gracefully (its atexit
            # hooks run), then drop the channels. (nbclient has done so already when the
            # kernel never answered.) An idle kernel is only asked to shut down and handed
            # to ``released``, which awaits its exit while the record is finished; a kernel
            # that may be busy (the run was interrupted) is stopped as nbclient stops its own.
            if client.km is not None:
                if idle and released is not None:
                    if client.kc is not None:
                        client.kc.stop_channels()
                    released(kernel.release(client.km))
                    client.kc = client.km = None
                else:
                    run_sync(client._async_cleanup_kernel)()


papermill_engines.register(ENGINE_NAME, DeploybookEngine)
