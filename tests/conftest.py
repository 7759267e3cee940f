import sys
from pathlib import Path

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
