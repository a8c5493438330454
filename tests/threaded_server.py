"""One small aiohttp server on 127.0.0.1 (free port) on its own thread, for tests that need a peer:
webhook receivers, recording servers, corrupting proxies, deliberately broken providers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from aiohttp import web


@contextmanager
def serve(handler: Callable[[web.Request], Awaitable[web.StreamResponse]], method: str = "*") -> Iterator[str]:
    """Serve ``handler`` for every path (and ``method``) until the block ends; yields ``http://127.0.0.1:PORT``.

    Raises:
        RuntimeError: the server did not start within 10 s.
    """
    ready = threading.Event()
    box: dict = {}

    async def any_request(request: web.BaseRequest) -> web.StreamResponse:
        if method != "*" and request.method != method:
            return web.Response(status=405, headers={"Allow": method})
        return await handler(request)

    def run() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        # a low-level server: every request reaches the handler, whatever its path (a router would answer
        # a path it cannot match, e.g. one holding an encoded newline, with its own plain-text 404)
        async def setup() -> web.ServerRunner:
            runner = web.ServerRunner(web.Server(any_request), access_log=None)
            await runner.setup()
            return runner

        runner = loop.run_until_complete(setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        box["url"] = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # noqa: SLF001
        box["loop"] = loop
        ready.set()
        loop.run_forever()
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]  # e.g. a handler that never answers
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=run, name="test-server", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("test server did not start")
    try:
        yield box["url"]
    finally:
        box["loop"].call_soon_threadsafe(box["loop"].stop)
        thread.join(10)
