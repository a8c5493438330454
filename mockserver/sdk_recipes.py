"""Point the official, unmodified provider SDKs at the mock.

fal-client 1.0.3 (``fal_client/auth.py``, ``client.py``)
    Reads ``FAL_RUN_HOST`` and ``FAL_QUEUE_RUN_HOST`` **at import** and builds ``https://{host}/`` from them
    (the scheme is fixed; a host value may carry a port and a path prefix). Recipe A (what a user does,
    and what tests/test_mock_fal.py does in a subprocess): start the mock with TLS and set, *before* the
    process imports ``fal_client``::

        SSL_CERT_FILE=<mock CA, EmbeddedMock.ca_path or `mockserver --tls` output>
        FAL_KEY=anything
        FAL_QUEUE_RUN_HOST=127.0.0.1:PORT/fal
        FAL_RUN_HOST=127.0.0.1:PORT/fal-run

    :func:`fal_env` builds that environment. httpx 0.28 reads ``SSL_CERT_FILE`` when fal-client creates its
    HTTP client (on first use), so the variable must be set before the first call, too.

    Recipe B (in-process, plain HTTP, fal_client already imported): :func:`point_fal_client_at` rewrites
    ``fal_client.client.QUEUE_URL_FORMAT`` / ``RUN_URL_FORMAT``, module globals that fal-client reads on
    every call (reference/protocols.md §2 names this monkeypatch).

sunra-client 0.6.0 (``sunra_client/auth.py``, ``client.py``)
    Reads ``SUNRA_HOST`` at import and forces ``https://api.{SUNRA_HOST}/v1/queue/``. ``api.localhost`` does
    not resolve on this box (reference/protocols.md §3), so the environment alone cannot reach the mock
    without an ``/etc/hosts`` entry. :func:`point_sunra_client_at` rewrites
    ``sunra_client.client.QUEUE_URL_FORMAT`` (read on every submit and by the request-id helpers, whose
    ``{QUEUE_URL_FORMAT}/requests/{id}`` double slash the mock accepts). ``sunra_client.stream()`` builds its
    URL from ``SUNRA_HOST`` instead and still needs the ``/etc/hosts`` route (``127.0.0.1 api.localhost``,
    ``SUNRA_HOST=localhost:PORT/sunra``, TLS, ``SSL_CERT_FILE``; the mock's certificate covers
    ``api.localhost``).

Each ``point_*`` function returns a zero-argument callable that restores the previous values.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

__all__ = ["fal_env", "point_fal_client_at", "point_sunra_client_at"]


def _host_and_path(base_url: str, what: str) -> str:
    parts = urlsplit(base_url)
    if parts.scheme != "https":
        raise ValueError(f"{what} must be an https:// URL (fal-client 1.0.3 hard-codes https), got {base_url!r}")
    if not parts.netloc:
        raise ValueError(f"{what} must be an absolute URL, got {base_url!r}")
    return parts.netloc + parts.path.rstrip("/")


def fal_env(queue_base_url: str, run_base_url: str, ca_path: str | None = None,
            key: str = "mock-key") -> dict[str, str]:
    """Environment variables that make a *new* process's fal-client 1.0.3 talk to the mock (recipe A).

    Args:
        queue_base_url: the mock's fal queue base URL, ``https://127.0.0.1:PORT/fal``
            (``EmbeddedMock.base_url("fal", "queue")`` of a ``tls=True`` mock).
        run_base_url: the mock's fal.run base URL, ``https://127.0.0.1:PORT/fal-run``.
        ca_path: the mock's CA certificate (PEM path) for ``SSL_CERT_FILE``; None leaves it unset.
        key: the value of ``FAL_KEY`` (the mock accepts any key unless started with ``--api-key``).

    Returns:
        ``{"FAL_QUEUE_RUN_HOST": "127.0.0.1:PORT/fal", "FAL_RUN_HOST": "127.0.0.1:PORT/fal-run",
        "FAL_KEY": key, "SSL_CERT_FILE": ca_path}``: merge into ``os.environ`` of the child process.

    Raises:
        ValueError: a base URL that is not absolute ``https://`` (fal-client cannot use plain HTTP this way;
            use :func:`point_fal_client_at` for that).
    """
    env = {"FAL_QUEUE_RUN_HOST": _host_and_path(queue_base_url, "queue_base_url"),
           "FAL_RUN_HOST": _host_and_path(run_base_url, "run_base_url"),
           "FAL_KEY": key}
    if ca_path:
        env["SSL_CERT_FILE"] = str(ca_path)
    return env


def point_fal_client_at(queue_base_url: str, run_base_url: str | None = None) -> Callable[[], None]:
    """Make the already imported fal-client 1.0.3 send queue (and run) calls to the mock (recipe B).

    Sets ``fal_client.client.QUEUE_URL_FORMAT = queue_base_url + "/"`` and, when given,
    ``RUN_URL_FORMAT = run_base_url + "/"``. Any scheme works (``http://127.0.0.1:PORT/fal``). Affects every
    fal-client call in this process, including ``fal_client.status/result/cancel(app, request_id)``.

    Args:
        queue_base_url: ``EmbeddedMock.base_url("fal", "queue")``.
        run_base_url: ``EmbeddedMock.base_url("fal", "run")``, or None to leave fal.run alone.

    Returns:
        A callable that restores the previous values.
    """
    import fal_client.client as fc

    before = (fc.QUEUE_URL_FORMAT, fc.RUN_URL_FORMAT)
    fc.QUEUE_URL_FORMAT = queue_base_url.rstrip("/") + "/"
    if run_base_url is not None:
        fc.RUN_URL_FORMAT = run_base_url.rstrip("/") + "/"

    def restore() -> None:
        fc.QUEUE_URL_FORMAT, fc.RUN_URL_FORMAT = before

    return restore


def point_sunra_client_at(base_url: str) -> Callable[[], None]:
    """Make the already imported sunra-client 0.6.0 send its queue calls to the mock.

    Sets ``sunra_client.client.QUEUE_URL_FORMAT = base_url + "/v1/queue/"`` (the SDK's own layout under the
    host). ``submit``/``subscribe`` and the request-id helpers ``status/result/cancel(request_id)`` then reach
    the mock; ``stream()`` does not (see the module docstring).

    Args:
        base_url: the mock's sunra base URL, ``http://127.0.0.1:PORT/sunra``
            (``EmbeddedMock.base_url("sunra")``); with an https mock also set ``SSL_CERT_FILE``.

    Returns:
        A callable that restores the previous value.
    """
    import sunra_client.client as sc

    before = sc.QUEUE_URL_FORMAT
    sc.QUEUE_URL_FORMAT = base_url.rstrip("/") + "/v1/queue/"

    def restore() -> None:
        sc.QUEUE_URL_FORMAT = before

    return restore
