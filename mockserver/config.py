"""Configuration of a mock server instance (from CLI flags, a profile file, or code)."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import specs

from .errors import ConfigError
from .store.backend import parse_store_url


@dataclass
class MockConfig:
    """Everything a mock server instance needs to start.

    Attributes:
        providers: provider ids to serve (default: all vendored providers).
        single_provider: serve ``providers[0]``'s primary host at ``/`` (``--provider ID``).
        host, port: bind address (port 0 picks a free port).
        clock: ``"system"`` (virtual time = real time x ``speed``) or ``"manual"`` (frozen until advanced).
        speed: time scale for the system clock (2.0 = jobs finish twice as fast).
        seed: seed for every random choice (ids, probabilistic faults, latency draws).
        api_key: when set, every other key is rejected with 401.
        timings: per-provider overrides ``{provider: {"queued_seconds": s, "in_progress_seconds": s}}``.
        faults: fault rules to install at start (dicts, see :mod:`mockserver.middleware.faults`).
        rate_limit: ``(requests, per_seconds)`` token bucket per API key, or None.
        tls: serve HTTPS with a locally generated CA.
        tls_dir: where to write the CA and server certificate (default: a temp dir).
        openai_webhook_url: where project-level webhooks go (providers whose contract declares top-level
            ``webhooks``, e.g. OpenAI; None = not sent).
        openai_webhook_secret: ``whsec_...`` secret of the ``standard_webhooks`` signing scheme (OpenAI's;
            :mod:`mockserver.delivery.signing`).
        aigateway_webhook_secret: secret of the ``hmac_sha256_hex`` signing scheme (aigateway's
            ``aig-signature``).
        webhook_max_attempts: delivery attempts per event (1 + retries).
        webhook_backoff: first retry delay in seconds (doubles each attempt).
        journal_size: number of requests kept in the admin journal.
        replay: path to a cassette to replay (served instead of the live engine where it matches).
        public_base_url: absolute base URL used in links the mock returns (defaults to the bound address).
        store: where jobs, faults, the clock and the journal live: ``memory`` (default; this process only),
            ``sqlite:///PATH`` (durable on one host) or ``redis://HOST:PORT/DB`` (shared by many processes and
            hosts); :mod:`mockserver.store`.
        workers: processes serving one port (``mockserver serve --workers N``); above 1 needs a shared store.
        worker: index of this process in a group of workers (set by the supervisor; None when alone).  A
            worker leaves the store's fault rules as its supervisor installed them.
    """

    providers: list[str] = field(default_factory=specs.provider_ids)
    single_provider: bool = False
    host: str = "127.0.0.1"
    port: int = 8000
    clock: str = "system"
    speed: float = 1.0
    seed: int = 0
    api_key: str | None = None
    timings: dict[str, dict[str, float]] = field(default_factory=dict)
    faults: list[dict[str, Any]] = field(default_factory=list)
    rate_limit: tuple[float, float] | None = None
    tls: bool = False
    tls_dir: str | None = None
    openai_webhook_url: str | None = None
    openai_webhook_secret: str = "whsec_bW9jay13ZWJob29rLXNlY3JldC1mb3ItdGVzdHM="
    aigateway_webhook_secret: str = "aig-mock-webhook-secret"
    webhook_max_attempts: int = 4
    webhook_backoff: float = 0.5
    journal_size: int = 500
    replay: str | None = None
    public_base_url: str | None = None
    store: str = "memory"
    workers: int = 1
    worker: int | None = None

    def validate(self) -> None:
        """Check values; raises :class:`ConfigError` with one clear line."""
        known = specs.provider_ids()
        if not isinstance(self.providers, list | tuple) or not all(isinstance(p, str) for p in self.providers):
            raise ConfigError(f"providers must be a list of provider ids (known: {', '.join(known)}), "
                              f"not {self.providers!r}")
        if not self.providers:
            raise ConfigError(f"providers must name at least one provider (known: {', '.join(known)})")
        for pid in self.providers:
            if pid not in known:
                raise ConfigError(f"unknown provider {pid!r} (known: {', '.join(known)})")
        if self.single_provider and len(self.providers) != 1:
            raise ConfigError("--provider serves exactly one provider at the root")
        if self.clock not in ("system", "manual"):
            raise ConfigError(f"--clock must be 'system' or 'manual', not {self.clock!r}")
        if not _is_number(self.speed) or not self.speed > 0 or not math.isfinite(self.speed):
            raise ConfigError(f"--speed must be a positive number, not {self.speed!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ConfigError(f"--seed must be an integer, not {self.seed!r}")
        if not isinstance(self.port, int) or isinstance(self.port, bool) or not 0 <= self.port <= 65535:
            raise ConfigError(f"--port {self.port!r} is out of range 0..65535")
        if not isinstance(self.timings, dict):
            raise ConfigError(f"timings must be a mapping of provider id to timing, not {self.timings!r}")
        if not isinstance(self.faults, list | tuple):
            raise ConfigError(f"faults must be a list of fault rules, not {self.faults!r}")
        kind = parse_store_url(self.store).kind
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise ConfigError(f"--workers must be a whole number >= 1, not {self.workers!r}")
        if self.workers > 1 and kind == "memory":
            raise ConfigError(f"--workers {self.workers} needs a shared --store (sqlite:///PATH or "
                              "redis://HOST:PORT/DB): memory jobs live in one process")
        for pid, t in self.timings.items():
            if pid not in known:
                raise ConfigError(f"timings for unknown provider {pid!r}")
            if not isinstance(t, dict):
                raise ConfigError(f"timings.{pid} must be a mapping like {{queued_seconds: 1, in_progress_seconds: 5}}, "
                                  f"not {t!r}")
            for k, v in t.items():
                if k not in ("queued_seconds", "in_progress_seconds", "asset_ttl_seconds"):
                    raise ConfigError(f"unknown timing {k!r} for {pid} (queued_seconds, in_progress_seconds, "
                                      "asset_ttl_seconds)")
                if not _is_number(v) or v < 0 or not math.isfinite(v):
                    raise ConfigError(f"timing {pid}.{k} must be a number >= 0")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_rate(text: str) -> tuple[float, float]:
    """Parse ``N/s``, ``N/m`` or ``N/h`` into ``(N, seconds)``. Raises ConfigError."""
    try:
        n, unit = text.strip().split("/")
        per = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}[unit]
        count = float(n)
        if count <= 0:
            raise ValueError
        return count, per
    except (ValueError, KeyError):
        raise ConfigError(f"--rate-limit must look like 10/s, 600/m or 1000/h, not {text!r}") from None


PROFILE_SCHEMA_PATH = Path(specs.__file__).resolve().parent / "mockprofile.schema.yaml"


@functools.lru_cache(maxsize=1)
def profile_schema() -> dict[str, Any]:
    """The JSON Schema of profile files (``specs/mockprofile.schema.yaml``), parsed."""
    return yaml.safe_load(PROFILE_SCHEMA_PATH.read_text(encoding="utf-8"))


def load_profile(path: str | Path) -> dict[str, Any]:
    """Read a profile file: UTF-8 YAML (JSON is a subset), a mapping of the settings that
    ``specs/mockprofile.schema.yaml`` describes (providers, clock, speed, seed, api_key, rate_limit, timings,
    faults, openai_webhook_url, openai_webhook_secret, webhook_max_attempts, webhook_backoff, store, workers).

    Returns the mapping (``{}`` for an empty file).

    Raises:
        ConfigError: unreadable, not UTF-8, not YAML, not a mapping, or a value the schema rejects; one line
            naming the file and the setting (``profile p.yaml: timings.fal: 5 is not of type 'object'``).
    """
    import jsonschema

    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read profile {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"profile {path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                          f"{exc.start})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"profile {path} is not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"profile {path} must be a mapping of settings (specs/mockprofile.schema.yaml), "
                          f"not a {type(data).__name__}")
    validator = jsonschema.Draft202012Validator(profile_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is not None:
        loc = ".".join(str(p) for p in error.absolute_path)
        message = error.message
        if error.validator == "additionalProperties" and not error.absolute_path:
            unknown = sorted(str(k) for k in data if k not in profile_schema()["properties"])
            message = f"unknown setting(s) {', '.join(unknown)} (settings: {', '.join(profile_schema()['properties'])})"
        if len(message) > 240:
            message = message[:237] + "..."
        raise ConfigError(f"profile {path}: {loc + ': ' if loc else ''}{message}")
    return data


__all__ = ["ConfigError", "MockConfig", "load_profile", "parse_rate"]
