"""``Expect`` request header handling shared by every route of the mock (provider hosts and admin API)."""

from __future__ import annotations

from aiohttp import HttpVersion11, web


async def expect_continue(request: web.Request) -> None:
    """``Expect`` handling of every route: ``100-continue`` is honoured, any other expectation is ignored.

    aiohttp's default answers an unknown expectation with a plain-text 417, outside every provider's
    contract; RFC 9110 §10.1.1 lets a server ignore it ("MAY respond with a 417"), so the request is served
    as if the header were absent and any error keeps the provider's own envelope.
    """
    if request.version == HttpVersion11 and request.headers.get("Expect", "").lower() == "100-continue":
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0
