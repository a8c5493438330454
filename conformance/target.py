"""What the suite talks to: the embedded mock, a mock elsewhere, a proxy, or the real provider.

- No ``--base-url``: :class:`mockserver.embedded.EmbeddedMock` is started in-process (system clock at a
  high ``speed`` so lifecycles finish fast, a generated API key so wrong keys are rejected); every provider
  host is at ``mock.base_url(provider, host)``.
- ``--base-url URL`` on our mock (``GET <origin>/__mock/health`` answers ``{"mock": "sora-remix-mock"}``):
  the health document lists every mount with its ``base_url``, so one URL (the mock root, or one provider's
  base URL on it) maps every provider host, fal's two hosts included. Such a target is *free*.
- ``--base-url URL`` elsewhere: the URL is the primary host of the single provider under test
  (provider.yaml ``hosts[0]``); other hosts come from ``--host-url HOST=URL`` (``run=https://fal.run``).
  Operations on a host without a URL are skipped, never sent to a default host. Such a target is *not free*:
  the spend guard applies, unless the user declares it free with ``--free-target`` (a third-party mock, a
  staging server that bills nothing). Nothing else counts as free: a loopback address can be a recording
  proxy in front of a real provider.

Only our own mock is *ours*: there every expectation of the suite counts, conventions of our mock included.
Against any other target (free or not) only documented expectations can fail a run (see
:class:`conformance.registry.Source`).
"""

from __future__ import annotations

import json
import os
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import specs

from .http import Credentials

MOCK_NAME = "sora-remix-mock"
DEFAULT_SPEED = 10.0


class TargetError(Exception):
    """The target cannot be used (unreachable URL, bad mapping, missing key). ``str(err)`` is one line."""


@dataclass
class Target:
    """A resolved target.

    Attributes:
        kind: ``"embedded"`` (in-process mock), ``"mock"`` (our mock at a URL) or ``"remote"``.
        label: human-readable description for reports.
        hosts: ``{(provider, host_id): base_url}`` for every host with a known URL.
        mock_root: root URL of our mock (admin API at ``/__mock``), None for a remote target.
        credentials: ``{provider: Credentials}``.
        embedded: the running EmbeddedMock (kind ``embedded``) or None.
        clock: the mock's clock (``"system"``/``"manual"``) when known.
    """

    kind: str
    label: str
    hosts: dict[tuple[str, str], str]
    mock_root: str | None
    credentials: dict[str, Credentials]
    embedded: Any = None
    clock: str | None = None
    notes: list[str] = field(default_factory=list)
    enforces_key: bool = False
    free_target: bool = False
    receiver: Any = None  # conformance.webhooks.WebhookReceiver when every host is on this machine
    project_webhooks: dict[str, str] = field(default_factory=dict)  # provider -> receiver path it posts to

    @property
    def ours(self) -> bool:
        """True when the target is our own mock (embedded, or answering ``/__mock/health`` as ours)."""
        return self.kind in ("embedded", "mock")

    @property
    def free(self) -> bool:
        """True when no operation costs money: our mock, or a target the user declared ``--free-target``."""
        return self.ours or self.free_target

    @property
    def loopback(self) -> bool:
        return all(urlsplit(u).hostname in ("127.0.0.1", "localhost", "::1") for u in self.hosts.values())

    def base_url(self, provider: str, host: str) -> str | None:
        """Base URL of a provider host, or None when the target has no URL for it."""
        return self.hosts.get((provider, host))

    def admin(self, method: str, path: str, body: Any = None, timeout: float = 30.0) -> Any:
        """Call our mock's admin API. Raises TargetError when the target is not our mock or on failure."""
        if not self.mock_root:
            raise TargetError("the target is not the mock: no admin API")
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"{self.mock_root.rstrip('/')}/__mock/{path.lstrip('/')}", data=data,
                                     method=method, headers={"Content-Type": "application/json"})
        try:
            with _opener(self.loopback).open(req, timeout=timeout) as resp:
                return json.loads(resp.read() or b"null")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise TargetError(f"mock admin {method} {path} failed: {exc}") from None

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "label": self.label, "free": self.free, "ours": self.ours,
                "free_target": self.free_target,
                "hosts": {f"{p}/{h}": u for (p, h), u in sorted(self.hosts.items())},
                "notes": self.notes}

    def close(self) -> None:
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None
        if self.receiver is not None:
            self.receiver.close()
            self.receiver = None


def _opener(loopback: bool) -> urllib.request.OpenerDirector:
    if loopback:  # never send loopback traffic through a proxy from the environment
        return urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener()


def probe_mock(url: str, timeout: float = 5.0) -> dict | None:
    """``GET <origin of url>/__mock/health``: the health document if ``url`` is on our mock, else None.

    Raises:
        TargetError: the URL is malformed or nothing answers at it (connection refused, DNS, timeout).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise TargetError(f"--base-url must be an http(s) URL, not {url!r}")
    origin = f"{parts.scheme}://{parts.netloc}"
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    req = urllib.request.Request(origin + "/__mock/health", headers={"Accept": "application/json"})
    try:
        with _opener(loopback).open(req, timeout=timeout) as resp:
            body = resp.read(1 << 20)
    except urllib.error.HTTPError:
        return None  # something answered: reachable, not our mock
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TargetError(f"cannot reach {url}: {reason}") from None
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if isinstance(doc, dict) and doc.get("mock") == MOCK_NAME:
        return doc
    return None


def _rebase(url: str, origin: str) -> str:
    """Put ``url``'s path under ``origin`` (the mock may report another public address than the one used)."""
    parts = urlsplit(url)
    return origin.rstrip("/") + parts.path.rstrip("/")


def credentials_for(provider: str, api_key_env: dict[str, str], default: str | None,
                    required: bool) -> Credentials:
    """Credentials of ``provider``: the key from ``--api-key-env`` (per provider, or for all) or from
    provider.yaml ``auth.env``; ``default`` when unset and not ``required``.

    Raises:
        TargetError: the key is required but the variable is not set.
    """
    auth = specs.load(provider).auth
    env = api_key_env.get(provider) or api_key_env.get("*") or auth["env"]
    key = os.environ.get(env)
    if not key:
        if required:
            raise TargetError(f"{env} is not set: export the {provider} API key or name another variable "
                              "with --api-key-env NAME")
        key = default or "conformance-key"
    return Credentials(header=auth["header"], scheme=auth.get("preferred") or auth["schemes"][0], key=key,
                       env=env)


def open_target(providers: list[str], *, base_url: str | None = None, host_urls: dict[str, str] | None = None,
                api_key_env: dict[str, str] | None = None, speed: float = DEFAULT_SPEED, seed: int = 0,
                probe_timeout: float = 5.0, free_target: bool = False) -> Target:
    """Resolve (and for the embedded mock, start) the target of a run.

    Args:
        providers: provider ids under test.
        base_url: ``--base-url`` or None for the embedded mock.
        host_urls: ``--host-url`` values ``{host_id or "provider/host_id": url}``.
        api_key_env: ``--api-key-env`` values ``{provider or "*": ENV_NAME}``.
        speed: time scale of the embedded mock's clock (virtual seconds per real second).
        seed: seed of the embedded mock (ids, fault draws).
        free_target: the user declares (``--free-target``) that a target that is not our mock bills nothing.

    Raises:
        TargetError: unreachable URL, a remote URL with several providers, a missing API key, or a
            ``--host-url`` naming no host.
    """
    host_urls = dict(host_urls or {})
    api_key_env = dict(api_key_env or {})
    contracts = {pid: specs.load(pid) for pid in providers}
    if base_url is None:
        if host_urls:
            raise TargetError("--host-url needs --base-url")
        from mockserver.embedded import EmbeddedMock

        from .webhooks import WebhookReceiver, project_webhooks

        key = "sk-conformance-" + secrets.token_hex(8)
        receiver = WebhookReceiver()  # project-level webhooks (OpenAI) go where the server starts: here
        project = {pid: receiver.project_url(pid) for pid in providers if project_webhooks(contracts[pid])}
        extra = {"openai_webhook_url": project["openai"]} if "openai" in project else {}
        mock = EmbeddedMock(providers=list(providers), speed=speed, seed=seed, api_key=key, journal_size=50,
                            **extra)
        try:
            mock.start()
        except BaseException:
            receiver.close()
            raise
        hosts = {(pid, h["id"]): mock.base_url(pid, h["id"]) for pid in providers for h in contracts[pid].hosts}
        creds = {}
        for pid in providers:
            auth = contracts[pid].auth
            creds[pid] = Credentials(header=auth["header"], scheme=auth.get("preferred") or auth["schemes"][0],
                                     key=key, env=auth["env"])
        return Target(kind="embedded", label=f"embedded mock at {mock.url} (speed {speed:g})", hosts=hosts,
                      mock_root=mock.url, credentials=creds, embedded=mock, clock="system", enforces_key=True,
                      receiver=receiver, project_webhooks={p: u.split(receiver.base, 1)[1] for p, u in
                                                           project.items()})

    base_url = base_url.rstrip("/")
    health = probe_mock(base_url, timeout=probe_timeout)
    if health is not None:
        parts = urlsplit(base_url)
        origin = f"{parts.scheme}://{parts.netloc}"
        hosts: dict[tuple[str, str], str] = {}
        for m in health.get("mounts") or []:
            if isinstance(m, dict) and m.get("provider") in contracts and m.get("base_url"):
                hosts[(m["provider"], m.get("host") or contracts[m["provider"]].hosts[0]["id"])] = _rebase(
                    m["base_url"], origin)
        missing = [pid for pid in providers if not any(p == pid for p, _ in hosts)]
        if missing:
            raise TargetError(f"the mock at {origin} does not serve {', '.join(missing)} "
                              f"(it serves {', '.join(sorted({p for p, _ in hosts})) or 'nothing'})")
        _apply_host_urls(hosts, host_urls, providers, contracts)
        creds = {pid: credentials_for(pid, api_key_env, None, required=False) for pid in providers}
        return Target(kind="mock", label=f"mock at {origin}", hosts=hosts, mock_root=origin, credentials=creds,
                      clock=health.get("clock"))

    if len(providers) != 1:
        raise TargetError("--base-url names one provider's host unless it is the mock: give exactly one "
                          "--provider (or point --base-url at a mock root)")
    pid = providers[0]
    primary = contracts[pid].hosts[0]["id"]
    hosts = {(pid, primary): base_url}
    _apply_host_urls(hosts, host_urls, providers, contracts)
    creds = {pid: credentials_for(pid, api_key_env, None, required=True)}
    target = Target(kind="remote", label=f"{pid} at {base_url}", hosts=hosts, mock_root=None, credentials=creds,
                    free_target=free_target)
    if free_target:
        target.label += " (declared free)"
        target.notes.append(f"{pid}: --free-target: the target is assumed to bill nothing, so every check runs as on "
                            "our mock; it is not our mock, so only documented expectations can fail the run")
    for h in contracts[pid].hosts:
        if (pid, h["id"]) not in hosts:
            target.notes.append(f"{pid}: no URL for host {h['id']!r} ({h['base_url']}); its operations are "
                                f"skipped (give --host-url {h['id']}=URL)")
    return target


def _apply_host_urls(hosts: dict, host_urls: dict[str, str], providers: list[str], contracts: dict) -> None:
    for name, url in host_urls.items():
        provider, _, host = name.rpartition("/")
        matched = False
        for pid in providers:
            if provider and provider != pid:
                continue
            for h in contracts[pid].hosts:
                if h["id"] == host:
                    parts = urlsplit(url)
                    if parts.scheme not in ("http", "https") or not parts.netloc:
                        raise TargetError(f"--host-url {name}={url}: not an http(s) URL")
                    hosts[(pid, host)] = url.rstrip("/")
                    matched = True
        if not matched:
            known = ", ".join(sorted({h["id"] for pid in providers for h in contracts[pid].hosts}))
            raise TargetError(f"--host-url {name}: no such host (hosts: {known})")
