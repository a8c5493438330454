"""Stateful mock server for the Sora 2 remix providers, driven by the contracts in ``specs/``.

Entry points: the ``mockserver`` CLI (:mod:`mockserver.cli`), :func:`mockserver.app.build_app` (an aiohttp
application), :class:`mockserver.embedded.EmbeddedMock` (run in-process on a free port) and the pytest
plugin :mod:`mockserver.pytest_plugin`.
"""

__version__ = "0.1.0"
