"""Downloadable assets of completed jobs: real MP4, WebP and JPEG bytes, with HTTP ``Range`` support.

Assets are generated on demand by :mod:`mockserver.media` (cached by size and duration), so a job costs no
memory for its files. Every provider's URL style is kept by the family adapters; the bytes come from here.
"""

from __future__ import annotations

import re

from aiohttp import web

from . import media

#: variant -> (content type, file extension)
VARIANTS = {
    "video": ("video/mp4", "mp4"),
    "thumbnail": ("image/webp", "webp"),
    "spritesheet": ("image/jpeg", "jpg"),
}


def asset_bytes(params: dict, variant: str) -> bytes:
    """The bytes of one asset of a job whose ``params`` carry ``size`` ("WxH") and ``seconds`` (int).

    Raises:
        KeyError: unknown variant.
        ValueError: bad size in params.
    """
    width, height = media.parse_size(str(params.get("size", "720x1280")))
    seconds = int(params.get("seconds", 4))
    if variant == "video":
        return media.video_mp4(width, height, seconds)
    if variant == "thumbnail":
        return media.thumbnail_webp(width, height)
    if variant == "spritesheet":
        return media.spritesheet_jpeg(width, height, min(max(1, seconds), media.MAX_SPRITE_FRAMES))
    raise KeyError(variant)


def file_name(job_id: str, variant: str) -> str:
    return f"{job_id}_{variant}.{VARIANTS[variant][1]}" if variant != "video" else f"{job_id}.mp4"


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def bytes_response(request: web.Request, data: bytes, content_type: str,
                   filename: str | None = None) -> web.Response:
    """Serve ``data`` honouring a single-range ``Range: bytes=a-b`` header (206 / 416), like a CDN."""
    headers = {"Accept-Ranges": "bytes"}
    if filename:
        headers["Content-Disposition"] = f'inline; filename="{filename}"'
    total = len(data)
    rng = request.headers.get("Range")
    if rng:
        m = _RANGE.match(rng.strip())
        if m and (m.group(1) or m.group(2)):
            if m.group(1):
                start = int(m.group(1))
                end = min(int(m.group(2)), total - 1) if m.group(2) else total - 1
            else:  # suffix range: the last N bytes
                n = int(m.group(2))
                start, end = max(0, total - n), total - 1
            if start < total and start <= end:
                headers["Content-Range"] = f"bytes {start}-{end}/{total}"
                return web.Response(body=data[start:end + 1], status=206, content_type=content_type,
                                    headers=headers)
            headers["Content-Range"] = f"bytes */{total}"
            return web.Response(status=416, headers=headers, content_type=content_type)
    return web.Response(body=data, status=200, content_type=content_type, headers=headers)
