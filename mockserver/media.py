"""Real, small media assets for completed jobs: MP4 video, WebP thumbnail, JPEG spritesheet.

Everything is generated in memory with PyAV (``av``) and Pillow, deterministically (same arguments, same
bytes), and cached in a thread-safe LRU so repeated downloads do not re-encode.

- Video: H.264 (``libx264``, ``preset=veryfast``) in MP4, ``yuv420p``, flat frames whose
  colour changes every frame; ``fps`` frames per second with the smallest ``fps`` in 1..10 that makes
  ``seconds * fps`` an integer (1 fps for whole seconds).  An 8 s 1280x720 clip is ~3 KB and encodes in
  ~0.1 s (protocols.md §5).  Falls back to MPEG-4 Part 2 (``mpeg4``) if the av build has no libx264.
- Thumbnail (OpenAI ``variant=thumbnail``, ``image/webp`` per the openai-openapi spec): the first frame's
  colour, aspect ratio of the video, scaled down so the long side is at most :data:`THUMBNAIL_MAX_SIDE` px.
- Spritesheet (OpenAI ``variant=spritesheet``; JPEG per the video-generation guide, which saves it as
  ``.jpg`` — the content type is [?] in protocols.md §1): a grid of ``frames`` tiles, ``ceil(sqrt(frames))``
  columns, each tile the video's aspect ratio scaled so its long side is :data:`SPRITE_TILE_MAX_SIDE` px.

Limits (bad input raises ``ValueError``, never crashes): width/height even integers in 2..:data:`MAX_SIDE`,
seconds in (0, :data:`MAX_SECONDS`], spritesheet frames in 1..:data:`MAX_SPRITE_FRAMES`.
"""

from __future__ import annotations

import colorsys
import io
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from fractions import Fraction

import av
from PIL import Image

from specs.media import probe_mp4  # the probe is in the kernel (the conformance suite probes downloads too)

__all__ = [
    "MAX_SECONDS",
    "MAX_SIDE",
    "MAX_SPRITE_FRAMES",
    "SPRITE_TILE_MAX_SIDE",
    "THUMBNAIL_MAX_SIDE",
    "cache_clear",
    "cache_info",
    "parse_size",
    "probe_mp4",
    "spritesheet_jpeg",
    "thumbnail_size",
    "thumbnail_webp",
    "video_mp4",
]

MAX_SIDE = 4096
MAX_SECONDS = 120.0
MAX_SPRITE_FRAMES = 100
THUMBNAIL_MAX_SIDE = 512
SPRITE_TILE_MAX_SIDE = 160
CACHE_SIZE = 64

_SIZE_RE = re.compile(r"([1-9][0-9]{0,4})x([1-9][0-9]{0,4})")


def parse_size(size: str) -> tuple[int, int]:
    """Parse a provider size string ``"WxH"`` (e.g. OpenAI ``"1280x720"``) into ``(width, height)`` pixels.

    Only a lowercase ``x`` separator and positive integers without leading zeros are accepted.

    Raises:
        ValueError: anything else (wrong type, ``"1280X720"``, ``"0x720"``, ``" 1280x720"``, ...).
    """
    if not isinstance(size, str):
        raise ValueError(f"size must be a string like '1280x720', got {type(size).__name__}")
    m = _SIZE_RE.fullmatch(size)
    if m is None:
        raise ValueError(f"size must look like '1280x720' (WIDTHxHEIGHT), got {size!r}")
    return int(m.group(1)), int(m.group(2))


# -------------------------------------------------------------------------------------------- validation


def _check_dims(width: int, height: int) -> None:
    for name, v in (("width", width), ("height", height)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"{name} must be an int, got {v!r}")
        if not 2 <= v <= MAX_SIDE or v % 2:
            raise ValueError(f"{name} must be an even number of pixels in 2..{MAX_SIDE}, got {v}")


def _frame_rate(seconds: float) -> int:
    """Smallest fps in 1..10 making ``seconds * fps`` a whole number of frames."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds):
        raise ValueError(f"seconds must be a finite number, got {seconds!r}")
    if not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"seconds must be in (0, {MAX_SECONDS:g}], got {seconds!r}")
    for fps in range(1, 11):
        n = seconds * fps
        if abs(n - round(n)) < 1e-9:
            return fps
    raise ValueError(f"seconds must be a multiple of 0.1, got {seconds!r}")


def _colour(i: int) -> tuple[int, int, int]:
    """Deterministic, clearly distinct RGB colour for frame ``i``."""
    r, g, b = colorsys.hsv_to_rgb((i * 0.137) % 1.0, 0.55, 0.85)
    return round(r * 255), round(g * 255), round(b * 255)


def _yuv(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """BT.601 limited-range Y, Cb, Cr of an RGB colour."""
    r, g, b = rgb
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    cb = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    cr = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return round(y), round(cb), round(cr)


# ------------------------------------------------------------------------------------------------ cache

_cache: OrderedDict[tuple, bytes] = OrderedDict()
_lock = threading.Lock()
_stats = {"hits": 0, "misses": 0}


def _cached(key: tuple, make: Callable[[], bytes]) -> bytes:
    """Return the cached bytes for ``key``, building them with ``make()`` (outside the lock) on a miss.

    If two threads miss at once, both encode but the first result stored wins, so every caller of the
    same key gets the identical bytes object.
    """
    with _lock:
        data = _cache.get(key)
        if data is not None:
            _cache.move_to_end(key)
            _stats["hits"] += 1
            return data
        _stats["misses"] += 1
    data = make()
    with _lock:
        data = _cache.setdefault(key, data)
        _cache.move_to_end(key)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return data


def cache_clear() -> None:
    """Empty the asset cache and reset its counters."""
    with _lock:
        _cache.clear()
        _stats.update(hits=0, misses=0)


def cache_info() -> dict[str, int]:
    """``{"hits", "misses", "size", "maxsize"}`` of the asset cache (entries, not bytes)."""
    with _lock:
        return {**_stats, "size": len(_cache), "maxsize": CACHE_SIZE}


# ------------------------------------------------------------------------------------------------ video


def _has_libx264() -> bool:
    try:
        av.codec.Codec("libx264", "w")
    except Exception:  # any failure means "not available"
        return False
    return True


_VIDEO_CODEC = "libx264" if _has_libx264() else "mpeg4"


def _encode_mp4(width: int, height: int, seconds: float) -> bytes:
    fps = _frame_rate(seconds)
    frames = round(seconds * fps)
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream(_VIDEO_CODEC, rate=fps)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, fps)
        if _VIDEO_CODEC == "libx264":
            stream.options = {"preset": "veryfast"}
        for i in range(frames):
            frame = av.VideoFrame(width, height, "yuv420p")
            for plane, value in zip(frame.planes, _yuv(_colour(i)), strict=True):
                plane.update(bytes([value]) * plane.buffer_size)
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def video_mp4(width: int, height: int, seconds: float) -> bytes:
    """A valid MP4 (``video/mp4``) of exactly ``width`` x ``height`` pixels lasting ``seconds`` seconds.

    Args:
        width, height: even ints in 2..4096 (yuv420p needs even sizes; all provider sizes are even).
        seconds: duration in seconds, (0, 120], a multiple of 0.1 (OpenAI uses 4, 8 or 12).

    Returns:
        The MP4 bytes (H.264 if the av build has libx264, else MPEG-4 Part 2); cached per arguments.

    Raises:
        ValueError: on arguments outside the limits above.
    """
    _check_dims(width, height)
    _frame_rate(seconds)
    return _cached(("mp4", width, height, float(seconds)), lambda: _encode_mp4(width, height, seconds))


# ----------------------------------------------------------------------------------------------- images


def _fit(width: int, height: int, max_side: int) -> tuple[int, int]:
    """Scale (width, height) down, keeping the aspect ratio, so the long side is at most ``max_side``."""
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def thumbnail_size(width: int, height: int) -> tuple[int, int]:
    """Pixel size of :func:`thumbnail_webp` for a video of ``width`` x ``height`` (long side <= 512)."""
    _check_dims(width, height)
    return _fit(width, height, THUMBNAIL_MAX_SIDE)


def _encode_webp(width: int, height: int) -> bytes:
    img = Image.new("RGB", _fit(width, height, THUMBNAIL_MAX_SIDE), _colour(0))
    buf = io.BytesIO()
    img.save(buf, format="WEBP", quality=80)
    return buf.getvalue()


def thumbnail_webp(width: int, height: int) -> bytes:
    """A WebP image (``image/webp``) thumbnail of a ``width`` x ``height`` video: its first frame's colour.

    Scaled down to :func:`thumbnail_size` (long side at most 512 px, aspect kept); cached.

    Raises:
        ValueError: width/height not even ints in 2..4096.
    """
    _check_dims(width, height)
    return _cached(("webp", width, height, None), lambda: _encode_webp(width, height))


def _encode_sprites(width: int, height: int, frames: int) -> bytes:
    tile_w, tile_h = _fit(width, height, SPRITE_TILE_MAX_SIDE)
    cols = math.ceil(math.sqrt(frames))
    rows = math.ceil(frames / cols)
    sheet = Image.new("RGB", (cols * tile_w, rows * tile_h), (0, 0, 0))
    for i in range(frames):
        tile = Image.new("RGB", (tile_w, tile_h), _colour(i))
        sheet.paste(tile, ((i % cols) * tile_w, (i // cols) * tile_h))
    buf = io.BytesIO()
    sheet.save(buf, format="JPEG", quality=75)
    return buf.getvalue()


def spritesheet_jpeg(width: int, height: int, frames: int) -> bytes:
    """A JPEG (``image/jpeg``) grid of ``frames`` tiles of a ``width`` x ``height`` video.

    Layout: ``cols = ceil(sqrt(frames))``, ``rows = ceil(frames / cols)``, row-major; each tile keeps the
    video's aspect ratio with its long side scaled to at most 160 px; tile ``i`` has frame ``i``'s colour.
    Image size is ``(cols * tile_w, rows * tile_h)``.  Cached.

    Raises:
        ValueError: width/height not even ints in 2..4096, or frames not an int in 1..100.
    """
    _check_dims(width, height)
    if isinstance(frames, bool) or not isinstance(frames, int) or not 1 <= frames <= MAX_SPRITE_FRAMES:
        raise ValueError(f"frames must be an int in 1..{MAX_SPRITE_FRAMES}, got {frames!r}")
    return _cached(("jpeg", width, height, frames), lambda: _encode_sprites(width, height, frames))
