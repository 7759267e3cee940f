"""pytest plugin for nbval runs of the runbooks (load with ``-p nbval_plugin``).

Scrapbook scraps are data for later runbooks, not display: their JSON holds timestamps and
durations that a sanitize pattern cannot reach (nbval only sanitizes strings), and what
they record is shown beside them in the checks tables, which nbval does compare. So their
mimetype is skipped like nbval already skips widget views and images. Without
``--nbval-sanitize-with`` the runbooks' sanitize file is used.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SCRAP_MIMETYPE = "application/scrapbook.scrap.json+json"
SANITIZE_FILE = Path(__file__).with_name("nbval_sanitize.cfg")


def pytest_configure(config: pytest.Config) -> None:
    option = config.option
    if getattr(option, "nbval", False) and not getattr(option, "nbval_sanitize_with", None):
        option.nbval_sanitize_with = str(SANITIZE_FILE)


def pytest_collectstart(collector: pytest.Collector) -> None:
    from nbval.plugin import IPyNbFile

    if isinstance(collector, IPyNbFile) and SCRAP_MIMETYPE not in collector.skip_compare:
        collector.skip_compare = (*collector.skip_compare, SCRAP_MIMETYPE)
