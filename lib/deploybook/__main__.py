"""``python -m deploybook`` is the CLI."""

from .cli import main

raise SystemExit(main())
