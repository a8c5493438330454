"""Compatibility name of the rendering stage: the family adapters live in :mod:`mockserver.rendering`."""

from ..rendering import ADAPTERS, Family, JobFamily, QueueFamily, SyncFamily, VideoObjectFamily, family_for

__all__ = ["ADAPTERS", "Family", "JobFamily", "QueueFamily", "SyncFamily", "VideoObjectFamily", "family_for"]
