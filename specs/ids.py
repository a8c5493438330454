"""Id formats of provider.yaml ``ids.format``: how a provider's job ids look (see docs/contracts.md).

The mock draws its ids with :func:`new_id`; the conformance suite draws ids that look like a provider's but
do not exist (``unknown_id_is_404``) the same way. Nothing here imports the rest of the project.
"""

from __future__ import annotations

import random
import uuid

#: Id formats of ``ids.format`` in provider.yaml (the enum of ``specs/provider.schema.yaml``).
ID_FORMATS: frozenset[str] = frozenset({"uuid4", "hex32", "hex48", "ulid", "opaque"})

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_OPAQUE = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def new_id(rng: random.Random, prefix: str = "", fmt: str = "uuid4", wall_ms: int | None = None) -> str:
    """Generate one id: ``prefix`` + a body in format ``fmt``, drawing randomness only from ``rng``.

    Formats (``ids.format`` in provider.yaml):
        uuid4: ``764cabcf-b745-4b3e-ae38-1200304cf45b`` (version-4 UUID, e.g. fal request ids);
        hex32: 32 lowercase hex digits;
        hex48: 48 lowercase hex digits (OpenAI ``video_68f0...4dc5``, seed 000 / openai-python);
        ulid:  26 Crockford base32 chars, 48-bit ``wall_ms`` timestamp + 80 random bits;
        opaque: 32 chars of [0-9A-Za-z].

    Args:
        rng: a seeded ``random.Random`` (reproducible runs with ``--seed``).
        prefix: put before the body (provider.yaml ``ids.prefix``, e.g. ``video_``).
        fmt: one of :data:`ID_FORMATS`.
        wall_ms: unix milliseconds for the ULID time part (required for ``ulid``; ignored otherwise).

    Raises:
        ValueError: on an unknown format, or ``ulid`` without a valid ``wall_ms``.
    """
    if fmt == "uuid4":
        body = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    elif fmt == "hex32":
        body = f"{rng.getrandbits(128):032x}"
    elif fmt == "hex48":
        body = f"{rng.getrandbits(192):048x}"
    elif fmt == "ulid":
        if wall_ms is None or not 0 <= wall_ms < 1 << 48:
            raise ValueError(f"ulid ids need wall_ms in [0, 2**48), got {wall_ms!r}")
        n = (int(wall_ms) << 80) | rng.getrandbits(80)
        body = "".join(_CROCKFORD[(n >> (5 * i)) & 31] for i in range(25, -1, -1))
    elif fmt == "opaque":
        body = "".join(rng.choice(_OPAQUE) for _ in range(32))
    else:
        raise ValueError(f"unknown id format {fmt!r}; expected one of {sorted(ID_FORMATS)}")
    return prefix + body


__all__ = ["ID_FORMATS", "new_id"]
