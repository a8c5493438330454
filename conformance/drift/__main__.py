"""``python -m conformance.drift record|drift|diff ...`` (standalone until wired into conformance/cli.py)."""

from .cli import main

raise SystemExit(main())
