import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from deploybook.ops import lean_imports  # noqa: E402

lean_imports.skip_unused()  # as the CLI does: papermill imports in-process without the grammars

pytest_plugins = [
    "pg_fixtures",
    "sandbox_fixtures",
    "reliability_plugin",
    "process_guard",
    "radosgw",  # the session's S3 server (Ceph radosgw), started on first use
]

# Under `pytest -n … --dist loadgroup` (make test), each module is one unit of work: its
# module-scoped stacks and fixtures start once, on one worker. The modules using the
# session's S3 server (a Ceph radosgw, tens of seconds to start) share one unit, so one
# worker starts it. Marks a test already has are kept.
_SHARED_GROUPS = {
    "test_objectstore": "radosgw",
    "test_orchestrate_airflow": "radosgw",
}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            module = getattr(getattr(item, "module", None), "__name__", item.nodeid.split("::")[0])
            item.add_marker(pytest.mark.xdist_group(_SHARED_GROUPS.get(module, module)))
