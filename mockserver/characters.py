"""Characters of the mock: reusable characters made from an uploaded video (OpenAI ``POST /videos/characters``,
``GET /videos/characters/{character_id}``; roles ``character_create`` / ``character_retrieve``).

A character is a resource, not a job: it has no lifecycle, only an id, a display name and a creation time. The
store is per server (:attr:`mockserver.state.MockState.characters`), per provider (characters of one provider are
invisible to another), and forgotten by ``POST /__mock/reset``. The uploaded video is not kept (nothing reads it
back). Sources: the upstream spec ``specs/sources/upstream/openai-openapi-videos.yaml`` (``CreateVideoCharacter``,
``GetVideoCharacter``, ``VideoCharacterResource``) and openai 3.57.0 ``videos.create_character`` /
``videos.get_character``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from specs.ids import ID_FORMATS, new_id

__all__ = ["Character", "CharacterStore"]


@dataclass(frozen=True, slots=True)
class Character:
    """One stored character.

    Attributes:
        provider: provider id (``specs/<id>``).
        id: its id (provider.yaml ``mock.characters.ids``: ``char_`` + 32 hex digits for openai).
        name: the display name the request gave (1..80 characters per the contract).
        created: virtual seconds of its creation (the engine's clock; reported as unix seconds).
    """

    provider: str
    id: str
    name: str
    created: float


class CharacterStore:
    """Every character of one mock server, per provider. Not thread-safe (one event loop).

    Args:
        rng: ``random.Random`` used for ids only; pass ``random.Random(seed)`` for reproducible ids.
    """

    def __init__(self, rng: random.Random | None = None) -> None:
        self.rng = rng if rng is not None else random.Random()
        self._by_id: dict[str, dict[str, Character]] = {}

    def create(self, provider: str, name: str, created: float, *, id_prefix: str = "char_",
               id_format: str = "hex32") -> Character:
        """Store a new character of ``provider`` named ``name`` at virtual time ``created`` (seconds).

        Args:
            provider: provider id.
            name: display name (stored as given; the contract bounds it).
            created: virtual seconds (``clock.now()``).
            id_prefix, id_format: how its id looks (provider.yaml ``mock.characters.ids``; formats of
                :data:`specs.ids.ID_FORMATS` except ``ulid``, which needs a wall time: use ``hex32``).

        Raises:
            ValueError: an unknown id format, or a name that is not a string.
        """
        if id_format not in ID_FORMATS or id_format == "ulid":
            raise ValueError(f"unknown character id format {id_format!r}")
        if not isinstance(name, str):
            raise ValueError(f"a character name must be a string, got {type(name).__name__}")
        mine = self._by_id.setdefault(provider, {})
        cid = new_id(self.rng, id_prefix, id_format)
        while cid in mine:  # practically never
            cid = new_id(self.rng, id_prefix, id_format)
        character = Character(provider, cid, name, float(created))
        mine[cid] = character
        return character

    def get(self, provider: str, character_id: str) -> Character:
        """The character ``character_id`` of ``provider``. Raises KeyError when there is none."""
        found = self._by_id.get(provider, {}).get(character_id)
        if found is None:
            raise KeyError(character_id)
        return found

    def reset(self, rng: random.Random | None = None) -> None:
        """Forget every character (and, if given, switch to a new id generator ``rng``)."""
        self._by_id.clear()
        if rng is not None:
            self.rng = rng

    def __len__(self) -> int:
        """Number of characters over all providers."""
        return sum(len(v) for v in self._by_id.values())
