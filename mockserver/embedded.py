"""Run the mock in-process: on a background thread (sync code, SDK tests) or on the running loop (async).

    with EmbeddedMock(MockConfig(clock="manual")) as mock:
        client = openai.OpenAI(base_url=mock.base_url("openai"), api_key="sk-test")
        mock.advance(5)

        # or, on any clock: hold a job where it is, then move just that job on
        video = client.videos.create(prompt="a cat", extra_headers={"X-Mock-Timing": "queued=hold"})
        mock.advance_job("openai", video.id, to="in_progress")

Binds 127.0.0.1 on a free port by default. With ``tls=True`` it serves HTTPS using a CA generated with
trustme and exposes ``ca_path`` (point ``SSL_CERT_FILE`` at it).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from aiohttp import web

from .app import build_app
from .config import MockConfig
from .http import STATE_KEY
from .state import MockState
from .virtual_time import SERVER_THREADS, VirtualTime, VirtualTimeError

TLS_NAMES = ["127.0.0.1", "localhost", "api.localhost", "*.localhost"]


def make_tls(directory: str | Path) -> tuple[str, Any]:
    """Create a local CA and a server certificate for 127.0.0.1/localhost with trustme.

    Returns ``(ca_pem_path, ssl_context)``; the CA file is written into ``directory``.  When ``directory``
    already holds ``mock-ca.pem`` with ``mock-server.pem`` and ``mock-server-key.pem`` (written by
    ``mockserver serve --workers N --tls``, so every worker serves the same certificate), they are used.
    """
    import ssl

    directory = Path(directory)
    ca_path = directory / "mock-ca.pem"
    chain, key = directory / "mock-server.pem", directory / "mock-server-key.pem"
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    if ca_path.is_file() and chain.is_file() and key.is_file():
        ctx.load_cert_chain(str(chain), str(key))
        return str(ca_path), ctx
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert(*TLS_NAMES)
    directory.mkdir(parents=True, exist_ok=True)
    ca.cert_pem.write_to_path(str(ca_path))
    cert.configure_cert(ctx)
    return str(ca_path), ctx


def write_tls(directory: str | Path) -> str:
    """Write a local CA, a server certificate chain and its key into ``directory`` (for a group of workers,
    which all load them through :func:`make_tls`); returns the CA file's path."""
    import trustme

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    cert = ca.issue_cert(*TLS_NAMES)
    ca.cert_pem.write_to_path(str(directory / "mock-ca.pem"))
    with open(directory / "mock-server.pem", "wb") as f:
        for blob in cert.cert_chain_pems:
            f.write(blob.bytes())
    cert.private_key_pem.write_to_path(str(directory / "mock-server-key.pem"))
    return str(directory / "mock-ca.pem")


class RunningServer:
    """A started mock: its URLs, state and shutdown. Created by :func:`start` or :class:`EmbeddedMock`."""

    def __init__(self, app: web.Application, runner: web.AppRunner, url: str, ca_path: str | None):
        self.app = app
        self.runner = runner
        self.url = url
        self.ca_path = ca_path

    @property
    def state(self) -> MockState:
        return self.app[STATE_KEY]

    def base_url(self, provider: str, host: str | None = None) -> str:
        """Absolute base URL of a provider host on this mock (``http://127.0.0.1:PORT/openai/v1``)."""
        return self.state.base_url(provider, host)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start(config: MockConfig | None = None) -> RunningServer:
    """Start the mock on the running event loop. Raises ConfigError/SpecError/OSError on bad setup."""
    config = config or MockConfig(port=0)
    app = build_app(config)
    state: MockState = app[STATE_KEY]
    ssl_ctx = None
    if config.tls:
        tls_dir = config.tls_dir or tempfile.mkdtemp(prefix="mock-tls-")
        state.ca_path, ssl_ctx = make_tls(tls_dir)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, ssl_context=ssl_ctx, reuse_address=True,
                       reuse_port=config.workers > 1)  # --workers: every worker binds the same port
    await site.start()
    sock = site._server.sockets[0]  # noqa: SLF001 - the bound port (for --port 0)
    port = sock.getsockname()[1]
    host = config.host if ":" not in config.host else f"[{config.host}]"
    url = f"{'https' if config.tls else 'http'}://{host}:{port}"
    if not config.public_base_url:
        state.public_base_url = url
    return RunningServer(app, runner, url, state.ca_path)


class MockError(Exception):
    """A helper of :class:`EmbeddedMock` (or the pytest plugin's ``sora_mock``) was used wrongly: a provider or
    host this mock does not serve, virtual time on a clock that is not manual, ... ``str(err)`` is one line."""


class MockAdminError(MockError):
    """The admin API refused a helper's request (``advance``, ``seed_video``, ``fault``, ``advance_job`` ...).

    Attributes:
        status: the HTTP status of the answer (400 bad value, 404 unknown provider/job, 409 conflict);
            ``code`` is the same number (the name ``urllib.error.HTTPError`` used, raised here before).
        message: the server's message (the admin envelope's ``error.message``).
        method, path: the admin request (``POST``, ``videos``).

    ``str(err)`` is one line: ``POST /__mock/videos: 409 id 'x' already exists for provider 'openai'``.
    """

    def __init__(self, method: str, path: str, status: int, message: str):
        self.method, self.path, self.status, self.message = method, path, status, message
        self.code = status
        super().__init__(f"{method} /__mock/{path}: {status} {message}")


class EmbeddedMock:
    """The mock on a background thread with its own event loop (for synchronous code and SDKs).

    Args:
        config: a :class:`MockConfig`; ``port`` defaults to 0 (a free port) when not given.
        **overrides: fields of MockConfig (``clock="manual"``, ``speed=50``, ``tls=True``, ...).
    """

    def __init__(self, config: MockConfig | None = None, **overrides: Any):
        if config is None:
            overrides.setdefault("port", 0)
            config = MockConfig(**overrides)
        else:
            for k, v in overrides.items():
                setattr(config, k, v)
        self.config = config
        self.server: RunningServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> EmbeddedMock:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> EmbeddedMock:
        """Start the server thread and wait until it listens (up to 60 s).

        Raises:
            ConfigError: an invalid configuration, an unusable ``store``, or ``workers`` > 1 (an embedded mock
                is one process: run ``mockserver serve --workers N`` and point clients at it).
        """
        self.config.validate()
        if self.config.workers > 1:
            from .config import ConfigError

            raise ConfigError("EmbeddedMock runs one process; for --workers N run `mockserver serve --workers N "
                              "--store ...` (several EmbeddedMocks on one shared store also agree)")
        ready = threading.Event()
        error: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                self.server = loop.run_until_complete(start(self.config))
            except BaseException as exc:  # reported to the caller's thread
                error.append(exc)
                ready.set()
                return
            SERVER_THREADS.add(threading.get_ident())  # its sleeps keep real time under virtual_time()
            ready.set()
            try:
                loop.run_forever()
                loop.run_until_complete(self.server.stop())
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]  # e.g. a request held by a hang fault
                for task in pending:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.close()
            finally:
                SERVER_THREADS.discard(threading.get_ident())

        self._thread = threading.Thread(target=run, name="mockserver", daemon=True)
        self._thread.start()
        ready.wait(60)
        if error:
            raise error[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(30)
        self._loop = None

    def call(self, fn, *args):
        """Run ``fn(*args)`` on the server's loop thread and return its result (thread-safe state access)."""
        async def wrapper():
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result(30)

    # -- conveniences -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.server.url

    @property
    def ca_path(self) -> str | None:
        return self.server.ca_path

    @property
    def state(self) -> MockState:
        return self.server.state

    def base_url(self, provider: str, host: str | None = None) -> str:
        """Absolute base URL of a provider host on this mock (``http://127.0.0.1:PORT/openai/v1``).

        Args:
            provider: provider id (``"openai"``, ``"fal"``, ...); host: a host id of its provider.yaml
                (``"queue"``, ``"run"``), None for its first host.

        Raises:
            MockError: the mock is not started, or does not serve that provider or host (one line naming
                what it serves).
        """
        if self.server is None:
            raise MockError("the mock is not started (call start() or use it as a context manager)")
        mounts = self.state.mounts
        hosts = [m.host_id for m in mounts if m.provider == provider]
        if not hosts:
            served = ", ".join(dict.fromkeys(m.provider for m in mounts))
            raise MockError(f"provider {provider!r} is not served by this mock (served: {served}); "
                            "add it to MockConfig.providers")
        if host is not None and host not in hosts:
            raise MockError(f"provider {provider!r} has no host {host!r} (hosts: {', '.join(hosts)})")
        return self.server.base_url(provider, host)

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        """Call the admin API (``/__mock/...``) and return the decoded JSON.

        Args:
            method: HTTP method; path: the path under ``/__mock/`` (``"clock/advance"``); body: a JSON value.

        Raises:
            MockAdminError: the admin API answered an error (its status and message).
            MockError: the mock cannot be reached (not started, stopped).
        """
        import ssl

        if self.server is None:
            raise MockError("the mock is not started (call start() or use it as a context manager)")
        path = path.lstrip("/")
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.url}/__mock/{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        ctx = ssl.create_default_context(cafile=self.ca_path) if self.ca_path else None
        try:
            with urllib.request.urlopen(req, timeout=30, context=ctx) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                message = json.loads(raw)["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = raw.decode("utf-8", "replace").strip()[:300] or exc.reason
            raise MockAdminError(method, path, exc.code, str(message)) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise MockError(f"{method} /__mock/{path}: cannot reach the mock at {self.url}: {reason}") from None

    def advance(self, seconds: float) -> Any:
        """Advance the manual clock by ``seconds`` (virtual, a finite number in 0..1e9); returns the clock view.

        Raises:
            MockAdminError: 400 for a bad amount, 409 when the clock is not manual.
        """
        return self.admin("POST", "clock/advance", {"seconds": seconds})

    def virtual_time(self) -> VirtualTime:
        """A context manager under which this process's sleeps advance this mock's manual clock instead of
        waiting (``time.sleep``, ``asyncio.sleep``, ``anyio.sleep``; see :mod:`mockserver.virtual_time`)::

            with mock.virtual_time() as vt:
                video = client.videos.create_and_poll(prompt="a cat")   # polls, sleeping virtually
            assert vt.advanced > 0                                          # virtual seconds slept

        Raises:
            MockError: the mock is not started or its clock is not manual, or virtual time is already active.
        """
        if self.server is None:
            raise MockError("the mock is not started (call start() or use it as a context manager)")
        if self.config.clock != "manual":
            raise MockError(f"virtual time needs a manual clock (this mock's clock is {self.config.clock!r}; "
                            "start it with clock='manual')")
        return _MockVirtualTime(self.advance)

    def advance_job(self, provider: str, job_id: str, to: str = "end") -> dict:
        """Move one job (not the clock) so that phase ``to`` begins now; returns the admin job view.

        Args:
            provider: provider id (``"openai"``, ``"fal"``, ...).
            job_id: the job's id as the provider reported it (fal/sunra ``request_id``, OpenAI video id).
            to: ``"in_progress"`` (end its queue phase now) or ``"end"`` (completed now, or failed if it
                carries an injected failure). A job already at or past ``to`` is left unchanged.

        Pairs with the ``X-Mock-Timing: queued=hold, in_progress=hold`` request header
        (:mod:`mockserver.timing`). Raises :class:`MockAdminError` 404 for an unknown provider or job, 400
        for a bad ``to``.
        """
        from urllib.parse import quote

        return self.admin("POST", f"jobs/{quote(provider, safe='')}/{quote(job_id, safe='')}/advance", {"to": to})

    def add_fault(self, **spec: Any) -> Any:
        """Install a fault (see :mod:`mockserver.middleware.faults`), e.g. ``add_fault(kind="rate_limit", times=1)``.

        Raises:
            MockAdminError: 400 for a bad kind, option or target (an ``operation`` the provider's contract
                does not have), 404 for a provider this mock does not serve.
        """
        return self.admin("POST", "faults", spec)["faults"][0]

    def seed_video(self, provider: str, **fields: Any) -> dict:
        """Create a completed source video for ``provider``; returns the admin job view (``id`` etc.).

        Args:
            provider: provider id; fields: ``seconds`` (int), ``size`` (``"1280x720"``), ``prompt``, ``model``,
                ``id``; ``seconds`` and ``size`` must be values the provider's contract allows.

        Raises:
            MockAdminError: 400 for a value the contract does not allow, 404 for a provider not served, 409 for
                an id already used.
        """
        return self.admin("POST", "videos", {"provider": provider, **fields})


class _MockVirtualTime(VirtualTime):
    """:class:`VirtualTime` whose entry errors are :class:`MockError` (the helpers' one exception family)."""

    def __enter__(self) -> VirtualTime:
        try:
            return super().__enter__()
        except VirtualTimeError as exc:
            raise MockError(str(exc)) from None
