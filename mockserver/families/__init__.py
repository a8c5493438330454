"""Protocol families: one adapter class per wire dialect (see ``../shared/DESIGN.md``).

=============== ======================= ==================================================================
family          providers               shape
=============== ======================= ==================================================================
``video_object`` openai, gptge          POST returns a ``video`` object; poll ``GET /videos/{id}``
``queue``       fal, sunra              submit -> request_id + URLs; IN_QUEUE / IN_PROGRESS / COMPLETED
``job``         aigateway               POST returns a ``job`` (202); poll ``GET /jobs/{id}``
``sync``        onerouter, fal.run      one call blocks until the video is ready
=============== ======================= ==================================================================
"""

from __future__ import annotations

import importlib

_MODULES = {"video_object": ("video_object", "VideoObjectFamily"), "queue": ("queue", "QueueFamily"),
            "job": ("job", "JobFamily"), "sync": ("sync", "SyncFamily")}


def family_for(name: str):
    """The adapter class for a family name from provider.yaml. Raises KeyError for an unknown family."""
    module, cls = _MODULES[name]
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)
