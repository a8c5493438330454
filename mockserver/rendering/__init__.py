"""Stage *rendering*: the family adapters, one class per wire dialect (see ``/work/shared/DESIGN.md``).

=============== ======================= ==================================================================
family          providers               shape
=============== ======================= ==================================================================
``video_object`` openai, gptge          POST returns a ``video`` object; poll ``GET /videos/{id}``
``queue``       fal, sunra              submit -> request_id + URLs; IN_QUEUE / IN_PROGRESS / COMPLETED
``job``         aigateway               POST returns a ``job`` (202); poll ``GET /jobs/{id}``
``sync``        onerouter, fal.run      one call blocks until the video is ready
=============== ======================= ==================================================================

An adapter runs the lifecycle engine for the operation's role and renders the answer from provider.yaml
``mock`` templates (:mod:`.variables` lists their variables), so a provider of a known family needs no Python.
Which adapter serves a family is a column of the family table in the kernel (:mod:`specs.families`).
"""

from __future__ import annotations

from specs import families

from .base import Family
from .context import Ctx
from .job import JobFamily
from .queue import QueueFamily
from .sync import SyncFamily
from .video_object import VideoObjectFamily

#: Adapter classes by dotted name, as :mod:`specs.families` names them.
ADAPTERS: dict[str, type[Family]] = {f"{cls.__module__}.{cls.__qualname__}": cls
                                     for cls in (VideoObjectFamily, QueueFamily, JobFamily, SyncFamily)}


def family_for(name: str) -> type[Family]:
    """The adapter class for a family name from provider.yaml (the ``adapter`` of its row in
    :data:`specs.families.TABLE`).

    Raises:
        KeyError: an unknown family, or one whose adapter is not in this package.
    """
    adapter = families.get(name).adapter
    if adapter not in ADAPTERS:
        raise KeyError(f"family {name!r}: no mock adapter {adapter!r} in mockserver.rendering")
    return ADAPTERS[adapter]


__all__ = ["ADAPTERS", "Ctx", "Family", "JobFamily", "QueueFamily", "SyncFamily", "VideoObjectFamily", "family_for"]
