"""Errors a user can cause when starting the mock (a bad flag, profile or ``--store``).

:class:`ConfigError` lives here, below every module that raises it, so the store package
(:mod:`mockserver.store`) and the configuration (:mod:`mockserver.config`, which re-exports it) need not
import each other.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A bad flag value, profile file or store. ``str(err)`` is one clear line for the CLI (exit code 2)."""


__all__ = ["ConfigError"]
