"""Probing of MP4 bytes: what both tools need to know about a video (the mock checks what it serves in its
tests, the conformance suite checks what a target serves). Encoders stay in ``mockserver/media.py``.

PyAV (``av``) is imported here, and only here in specs: importing :mod:`specs` alone does not load it.
"""

from __future__ import annotations

import io

import av


def probe_mp4(data: bytes) -> dict:
    """Inspect MP4 bytes with av: ``{"width": int, "height": int, "duration_seconds": float, "codec": str}``.

    Demuxes as MP4 (not any format ffmpeg can guess) and decodes the first frame, so a truncated or
    non-MP4 download is rejected.  ``codec`` is the ffmpeg decoder name (``"h264"``, ``"mpeg4"``, ...);
    width and height are pixels, the duration is seconds.

    Raises:
        ValueError: if ``data`` is not bytes, not a decodable MP4, or has no video stream.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValueError(f"expected MP4 bytes, got {type(data).__name__}")
    if not data:
        raise ValueError("not an MP4: empty data")
    try:
        with av.open(io.BytesIO(bytes(data)), "r", format="mp4") as container:
            if not container.streams.video:
                raise ValueError("not a video MP4: no video stream")
            stream = container.streams.video[0]
            if container.duration is not None:
                duration = container.duration / av.time_base
            elif stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            else:
                raise ValueError("MP4 declares no duration")
            first = next(container.decode(stream), None)
            if first is None:
                raise ValueError("MP4 video stream has no decodable frame")
            return {
                "width": stream.codec_context.width,
                "height": stream.codec_context.height,
                "duration_seconds": float(duration),
                "codec": stream.codec_context.name,
            }
    except av.error.FFmpegError as exc:  # some of these subclass ValueError; give them one clear message
        raise ValueError(f"not a decodable MP4: {exc.strerror or exc}") from exc
    except ValueError:
        raise
    except Exception as exc:  # av raises many error types on garbage input
        raise ValueError(f"not a decodable MP4: {exc}") from exc


__all__ = ["probe_mp4"]
