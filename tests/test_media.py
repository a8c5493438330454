"""Tests of mockserver.media: generated MP4/WebP/JPEG assets, the asset cache, probe_mp4, parse_size."""

from __future__ import annotations

import io
import math
import threading

import av
import pytest
from PIL import Image

from mockserver import media

OPENAI_SIZES = ["720x1280", "1280x720", "1024x1792", "1792x1024"]  # openai VideoSize enum


@pytest.fixture(autouse=True)
def _fresh_cache():
    media.cache_clear()
    yield
    media.cache_clear()


@pytest.mark.parametrize("seconds", [4, 8, 12])
@pytest.mark.parametrize("size", OPENAI_SIZES)
def test_video_round_trips_through_probe(size, seconds):
    width, height = media.parse_size(size)
    data = media.video_mp4(width, height, seconds)
    info = media.probe_mp4(data)
    assert info["width"] == width and info["height"] == height
    assert abs(info["duration_seconds"] - seconds) < 0.1
    assert info["codec"] in ("h264", "mpeg4")
    # an independent decode of every frame agrees with the probe
    with av.open(io.BytesIO(data)) as container:
        assert container.format.name.startswith("mov,mp4")
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        assert frames and all((f.width, f.height) == (width, height) for f in frames)
        # the last frame starts one frame interval before the declared end
        end = float(frames[-1].pts * frames[-1].time_base) + 1 / float(stream.average_rate)
        assert abs(end - seconds) < 0.1


def test_video_is_h264_when_libx264_is_available():
    info = media.probe_mp4(media.video_mp4(1280, 720, 4))
    expected = "h264" if "libx264" in av.codecs_available else "mpeg4"
    assert info["codec"] == expected


def test_fractional_seconds_use_a_higher_frame_rate():
    info = media.probe_mp4(media.video_mp4(640, 360, 4.5))
    assert abs(info["duration_seconds"] - 4.5) < 0.1


def test_frames_change_colour_so_the_video_is_not_a_single_still():
    data = media.video_mp4(64, 64, 4)
    with av.open(io.BytesIO(data)) as container:
        lumas = [bytes(f.planes[0])[0] for f in container.decode(video=0)]
    assert len(lumas) == 4
    assert len(set(lumas)) > 1


def test_thumbnail_is_webp_with_video_aspect():
    data = media.thumbnail_webp(1280, 720)
    img = Image.open(io.BytesIO(data))
    img.load()
    assert img.format == "WEBP"
    assert img.size == media.thumbnail_size(1280, 720)
    assert max(img.size) <= media.THUMBNAIL_MAX_SIDE
    assert math.isclose(img.size[0] / img.size[1], 1280 / 720, rel_tol=0.01)
    small = Image.open(io.BytesIO(media.thumbnail_webp(320, 180)))
    assert small.size == (320, 180)  # never scaled up


@pytest.mark.parametrize("frames, grid", [(1, (1, 1)), (4, (2, 2)), (8, (3, 3)), (12, (4, 3))])
def test_spritesheet_is_a_jpeg_grid(frames, grid):
    data = media.spritesheet_jpeg(720, 1280, frames)
    img = Image.open(io.BytesIO(data))
    img.load()
    assert img.format == "JPEG"
    cols, rows = grid
    tile_w, tile_h = img.size[0] // cols, img.size[1] // rows
    assert img.size == (cols * tile_w, rows * tile_h)
    assert max(tile_w, tile_h) <= media.SPRITE_TILE_MAX_SIDE
    assert math.isclose(tile_w / tile_h, 720 / 1280, rel_tol=0.02)
    if frames > 1:  # tiles differ: first and second tile centres have different colours
        a = img.getpixel((tile_w // 2, tile_h // 2))
        b = img.getpixel((tile_w + tile_w // 2, tile_h // 2))
        assert sum(abs(x - y) for x, y in zip(a, b, strict=True)) > 30


def test_cache_returns_identical_bytes_without_reencoding():
    first = media.video_mp4(1280, 720, 8)
    info = media.cache_info()
    assert (info["misses"], info["hits"]) == (1, 0)
    second = media.video_mp4(1280, 720, 8)
    assert second is first
    assert media.cache_info()["hits"] == 1
    assert media.thumbnail_webp(1280, 720) is media.thumbnail_webp(1280, 720)
    assert media.spritesheet_jpeg(1280, 720, 8) is media.spritesheet_jpeg(1280, 720, 8)
    # different keys are different assets; kinds do not collide
    assert media.video_mp4(1280, 720, 4) != first
    assert media.cache_info()["size"] == 4
    media.cache_clear()
    again = media.video_mp4(1280, 720, 8)
    assert again == first  # deterministic encode
    assert again is not first


def test_cache_is_bounded_lru():
    for s in range(1, media.CACHE_SIZE + 3):
        media.spritesheet_jpeg(16, 16, s % media.MAX_SPRITE_FRAMES + 1)
    assert media.cache_info()["size"] == media.CACHE_SIZE


def test_cache_is_thread_safe_and_consistent():
    results: list[bytes] = []
    errors: list[BaseException] = []

    def worker():
        try:
            results.append(media.video_mp4(320, 240, 4))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 8 and all(r is results[0] for r in results)
    assert media.cache_info()["size"] == 1


@pytest.mark.parametrize(
    "args",
    [(1281, 720, 4), (0, 720, 4), (720, -2, 4), (8192, 720, 4), (1280, 720, 0), (1280, 720, -4),
     (1280, 720, 121), (1280, 720, float("nan")), (1280, 720, 4.05), ("1280", 720, 4), (True, 720, 4)],
)
def test_video_rejects_bad_arguments(args):
    with pytest.raises(ValueError):
        media.video_mp4(*args)


@pytest.mark.parametrize("args", [(1280, 720, 0), (1280, 720, 101), (1280, 720, 2.0), (1281, 720, 4)])
def test_spritesheet_rejects_bad_arguments(args):
    with pytest.raises(ValueError):
        media.spritesheet_jpeg(*args)


def test_thumbnail_rejects_odd_size():
    with pytest.raises(ValueError):
        media.thumbnail_webp(1279, 720)


@pytest.mark.parametrize(
    "data",
    [b"", b"garbage" * 100, "not bytes", None, "webp"],
)
def test_probe_rejects_non_mp4(data):
    if data == "webp":
        data = media.thumbnail_webp(64, 64)
    with pytest.raises(ValueError):
        media.probe_mp4(data)


def test_probe_rejects_truncated_mp4():
    data = media.video_mp4(1280, 720, 4)
    with pytest.raises(ValueError, match="MP4"):
        media.probe_mp4(data[: len(data) // 3])


def test_parse_size():
    assert media.parse_size("1280x720") == (1280, 720)
    assert media.parse_size("720x1280") == (720, 1280)
    for bad in ["1280X720", "1280*720", "x720", "1280x", "0x720", "01280x720", " 1280x720", "1280x720\n",
                "-1280x720", "1280x720x3", "", None, 1280, b"1280x720", "99999999x1"]:
        with pytest.raises(ValueError):
            media.parse_size(bad)
