"""Vendored provider contracts: ``specs.load("fal")`` returns the parsed contract and metadata.

Each provider is a folder ``specs/<id>/`` holding ``openapi.yaml`` (OpenAPI 3.1 wire contract) and
``provider.yaml`` (metadata validated by ``specs/provider.schema.yaml``). The authoring convention is in
``docs/contracts.md``. The admin API of the mock server has its own contract, ``specs/mockadmin/``.

Public API:

- :func:`load` -- one provider's :class:`Contract` (cached).
- :func:`provider_ids` -- the ids of every vendored provider, sorted.
- :func:`load_all` -- every provider's contract.
- :func:`load_admin` -- the mock admin API contract (an OpenAPI dict).
- :func:`mount_prefix` -- the URL path a host is served under by the mock.
- :class:`SpecError` / :class:`UnknownProviderError` -- the only errors raised.

``specs`` is the contract kernel both tools are built on (``mockserver`` and ``conformance``); it imports
neither. Its modules:

- :mod:`specs.pointers` -- JSON pointers and ``$ref`` resolution;
- :mod:`specs.templates` -- the template language of provider.yaml (error envelopes, mock bodies);
- :mod:`specs.expressions` -- OpenAPI runtime expressions (callback URLs);
- :mod:`specs.ids` -- id formats (``ids.format``) and id generation;
- :mod:`specs.families` -- the table of protocol families (roles, capabilities, implementations);
- :mod:`specs.cassette` -- the cassette format (recorded traffic, read by the mock's replay);
- :mod:`specs.media` -- MP4 probing;
- :mod:`specs.validate` -- checks of the contract documents themselves.
"""

from __future__ import annotations

import copy
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from .families import FAMILY_NAMES, SOURCED_KINDS
from .pointers import get_pointer
from .templates import TemplateError, fill

SPECS_DIR = Path(__file__).resolve().parent
ADMIN_ID = "mockadmin"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
NEUTRAL_STATES = ("queued", "in_progress", "completed", "failed", "cancelled")
FAMILIES = FAMILY_NAMES  # the rows of specs/families.py

#: The request-field mapping every provider starts from (provider.yaml ``mock.params`` overrides entries):
#: neutral parameter -> ``{pointer, default?, map?}``. See :meth:`Contract.params_rules`.
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "prompt": {"pointer": "/prompt"},
    "seconds": {"pointer": "/seconds", "default": 4},
    "size": {"pointer": "/size", "default": "720x1280"},
    "model": {"pointer": "/model"},
    "delete_video": {"pointer": "/delete_video", "default": False},
}


class SpecError(Exception):
    """A contract or metadata file is missing, unreadable or invalid. ``str(err)`` is one clear line."""


class UnknownProviderError(SpecError):
    """The provider id has no folder under ``specs/``."""


def provider_ids() -> list[str]:
    """Return the ids of all vendored providers (folders with a ``provider.yaml``), sorted."""
    return sorted(p.parent.name for p in SPECS_DIR.glob("*/provider.yaml"))


def read_yaml(path: Path) -> Any:
    """Parse a YAML (or JSON) file. Raises :class:`SpecError` with one line: unreadable, not UTF-8, or
    invalid YAML (with its line number)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SpecError(f"{path} is not UTF-8 text") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise SpecError(f"invalid YAML in {path}{where}: {getattr(exc, 'problem', exc)}") from None


@functools.lru_cache(maxsize=1)
def _provider_schema() -> dict:
    return read_yaml(SPECS_DIR / "provider.schema.yaml")


def validate_provider_metadata(data: Any, where: str = "provider.yaml") -> None:
    """Validate parsed ``provider.yaml`` data against ``specs/provider.schema.yaml``.

    Raises :class:`SpecError` naming the first problem and its location.
    """
    import jsonschema

    validator = jsonschema.Draft202012Validator(_provider_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        loc = "/".join(str(p) for p in err.absolute_path) or "(root)"
        raise SpecError(f"{where}: {loc}: {err.message}")


@dataclass(frozen=True)
class Operation:
    """One operation of a contract, as seen from the host that serves it.

    ``path`` is the full path relative to the host root (``host_base_url``), i.e. any path prefix of a
    path-level server is already applied. ``role``/``kind``/``source``/``model``/``billable`` come from the
    ``x-role``/``x-kind``/``x-source``/``x-model``/``x-billable`` extensions (see docs/contracts.md).
    """

    provider: str
    host: str
    method: str
    path: str
    spec_path: str
    operation_id: str
    role: str
    kind: str | dict | None
    source: dict | None
    model: str | None
    billable: bool
    definition: dict = field(repr=False, compare=False, hash=False)

    def kind_for(self, body: Any) -> str | None:
        """The job kind (``generate``/``remix``) of a request to this operation.

        ``x-kind`` is either a plain string or ``{pointer, map, default}``: the value at the JSON pointer
        in the request body picks the kind (see docs/contracts.md).
        """
        if not isinstance(self.kind, dict):
            return self.kind
        node = get_pointer(body, str(self.kind.get("pointer", "")))
        try:
            return self.kind.get("map", {}).get(node, self.kind.get("default"))
        except TypeError:  # an unhashable value (object, list) at the pointer picks no entry
            return self.kind.get("default")

    @property
    def kinds(self) -> frozenset[str]:
        """Every job kind a request to this operation can create (``x-kind`` string, or the values and default of
        its mapping); empty for an operation that creates no job."""
        if isinstance(self.kind, dict):
            default = self.kind.get("default")
            return frozenset(self.kind.get("map", {}).values()) | ({default} if default else frozenset())
        return frozenset({self.kind}) if self.kind else frozenset()

    @property
    def may_remix(self) -> bool:
        """True when some request to this operation is a remix (needs ``x-source``)."""
        return "remix" in self.kinds

    @property
    def sourced(self) -> bool:
        """True when some request to this operation makes a job from a source video (a remix or an extension,
        :data:`specs.families.SOURCED_KINDS`), so it needs ``x-source``."""
        return bool(self.kinds & SOURCED_KINDS)

    @property
    def path_regex(self) -> re.Pattern:
        """A regex matching concrete request paths of this operation (path parameters are one segment)."""
        pattern = re.sub(r"\\\{([^}]+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.path))
        return re.compile(f"^{pattern}$")


@dataclass
class Contract:
    """A provider's parsed contract (``openapi``) and metadata (``provider``).

    Attributes:
        id: provider id (``"fal"``).
        openapi: the OpenAPI 3.1 document as a dict (``$ref`` left unresolved).
        provider: the parsed ``provider.yaml``.
        directory: the folder both files were read from.
    """

    id: str
    openapi: dict
    provider: dict
    directory: Path

    # -- metadata helpers -------------------------------------------------------------------------
    @property
    def family(self) -> str:
        return self.provider["family"]

    @property
    def hosts(self) -> list[dict]:
        """Hosts from ``provider.yaml``: dicts with ``id``, ``base_url``, ``family``, ``mount``."""
        return self.provider["hosts"]

    def host(self, host_id: str) -> dict:
        for h in self.hosts:
            if h["id"] == host_id:
                return h
        raise SpecError(f"{self.id}: no host {host_id!r} in provider.yaml")

    @property
    def auth(self) -> dict:
        return self.provider["auth"]

    @property
    def price_per_second_usd(self) -> float | None:
        """USD per generated second from ``provider.yaml`` ``pricing``, or None if undocumented."""
        return (self.provider.get("pricing") or {}).get("usd_per_second")

    def job_fields(self) -> dict[str, str]:
        """Where the provider's job object carries each neutral field, as JSON pointers: provider.yaml
        ``fields`` (e.g. ``{"progress": "/percent"}``). Names: ``id``, ``status``, ``progress``,
        ``queue_position``, ``error``, ``lineage`` (the remix source), ``created``, ``started``, ``completed``,
        ``expires``. A name left out is read by its usual name (``/progress``; ``/id`` or ``/request_id``;
        ``*_at`` timestamps; ``remixed_from*``). Returns a fresh dict of the declared entries only."""
        return dict(self.provider.get("fields") or {})

    def status_value(self, neutral: str) -> str:
        """The provider's status string for a neutral state (first matching entry of ``statuses``)."""
        for entry in self.provider["statuses"]:
            if entry["neutral"] == neutral:
                return entry["value"]
        raise SpecError(f"{self.id}: provider.yaml maps no status onto neutral state {neutral!r}")

    def neutral_states(self, value: str) -> list[str]:
        """Neutral states a provider status value can mean (fal's ``COMPLETED`` means several)."""
        return [e["neutral"] for e in self.provider["statuses"] if e["value"] == value]

    def error_kind(self, kind: str) -> dict:
        """The ``errors.kinds`` entry for a neutral error kind (status, type, code, optional template)."""
        kinds = self.provider["errors"]["kinds"]
        if kind not in kinds:
            raise SpecError(f"{self.id}: provider.yaml errors.kinds has no {kind!r}")
        return kinds[kind]

    def error_body(self, kind: str, message: str | None = None, param: str | None = None,
                   status: int | None = None) -> tuple[int, Any]:
        """Render the provider's error envelope for a neutral error kind.

        Args:
            kind: a key of ``errors.kinds`` in provider.yaml (``not_found``, ``unauthorized``, ...).
            message: human-readable message; defaults to the kind's ``message`` or the kind name.
            param: the offending parameter or field, if any.
            status: overrides the kind's HTTP status.

        Returns:
            ``(http_status, body)`` where body is JSON-ready data shaped like the provider's envelope.

        The envelope is provider.yaml ``errors.template`` (or the kind's own ``template``) rendered by
        :func:`specs.templates.fill` with the variables ``$message $type $code $param $status``.

        Raises:
            SpecError: the kind is not declared, or its template names another variable.
        """
        spec = self.error_kind(kind)
        http_status = status or spec.get("status", 400)
        values = {
            "message": message or spec.get("message") or kind.replace("_", " "),
            "type": spec.get("type", kind),
            "code": spec.get("code", spec.get("type", kind)),
            "param": param,
            "status": http_status,
        }
        template = spec.get("template", self.provider["errors"]["template"])
        try:
            return http_status, fill(template, values, f"{self.id} provider.yaml errors.kinds.{kind}")
        except TemplateError as exc:
            raise SpecError(str(exc)) from None

    def params_rules(self) -> dict[str, dict[str, Any]]:
        """The request-field mapping of this provider: :data:`DEFAULT_PARAMS` updated with provider.yaml
        ``mock.params`` (entries that are objects with a ``pointer``).

        Returns a fresh dict (callers may change it): neutral parameter -> rule, e.g.
        ``{"seconds": {"pointer": "/duration", "default": 4}, "size": {"pointer": "/aspect_ratio", "map":
        {"16:9": "1280x720"}, "default": "1280x720"}, ...}``. The mock reads a job's parameters with it
        (``seconds`` in seconds, ``size`` as ``WxH``); the conformance suite builds request bodies with it.
        """
        rules = {k: dict(v) for k, v in DEFAULT_PARAMS.items()}
        for k, v in ((self.provider.get("mock") or {}).get("params") or {}).items():
            if isinstance(v, dict) and "pointer" in v:
                rules[k] = dict(v)
        return rules

    def mount_prefix(self, host_id: str, at_root: bool = False) -> str:
        """The URL path one of this provider's hosts is served under by the mock (see :func:`mount_prefix`).

        Raises:
            SpecError: no such host.
        """
        return mount_prefix(self.host(host_id), at_root)

    # -- contract helpers -------------------------------------------------------------------------
    def operations(self) -> list[Operation]:
        """Every operation of the contract with the host that serves it (cached per contract)."""
        cached = self.__dict__.get("_ops")
        if cached is None:
            cached = self.__dict__["_ops"] = self._collect_operations()
        return cached

    def operation(self, operation_id: str) -> Operation:
        for op in self.operations():
            if op.operation_id == operation_id:
                return op
        raise SpecError(f"{self.id}: no operation {operation_id!r}")

    def operations_by_role(self, role: str, host: str | None = None) -> list[Operation]:
        return [o for o in self.operations() if o.role == role and (host is None or o.host == host)]

    def _host_for_server(self, server_url: str) -> tuple[str, str]:
        """Map a server URL onto (host id, path prefix below the host's base URL)."""
        target = urlsplit(server_url)
        for h in self.hosts:
            base = urlsplit(h["base_url"])
            if base.netloc != target.netloc:
                continue
            base_path = base.path.rstrip("/")
            tpath = target.path.rstrip("/")
            if tpath == base_path or tpath.startswith(base_path + "/"):
                return h["id"], tpath[len(base_path):]
        raise SpecError(f"{self.id}: server {server_url!r} matches no host in provider.yaml")

    def _collect_operations(self) -> list[Operation]:
        doc = self.openapi
        top_servers = doc.get("servers") or [{"url": self.hosts[0]["base_url"]}]
        ops: list[Operation] = []
        for spec_path, item in (doc.get("paths") or {}).items():
            servers = item.get("servers") or top_servers
            host_id, prefix = self._host_for_server(servers[0]["url"])
            for method in HTTP_METHODS:
                op = item.get(method)
                if not isinstance(op, dict):
                    continue
                op_servers = op.get("servers")
                o_host, o_prefix = (host_id, prefix) if not op_servers else self._host_for_server(
                    op_servers[0]["url"])
                ops.append(Operation(
                    provider=self.id, host=o_host, method=method.upper(), path=o_prefix + spec_path,
                    spec_path=spec_path, operation_id=op.get("operationId", f"{method}_{spec_path}"),
                    role=op.get("x-role", ""), kind=op.get("x-kind"), source=op.get("x-source"),
                    model=op.get("x-model"), billable=bool(op.get("x-billable", False)), definition=op,
                ))
        return ops

    def host_document(self, host_id: str) -> dict:
        """A plain single-server OpenAPI document for one host.

        Paths are rewritten to be relative to the host's ``base_url`` (path prefixes of path-level
        servers applied), path/operation-level ``servers`` are dropped, and ``servers`` is the host's
        base URL. ``components``, ``security`` and ``webhooks`` are kept. The result is a deep copy.
        """
        cache = self.__dict__.setdefault("_host_docs", {})
        if host_id in cache:
            return copy.deepcopy(cache[host_id])
        host = self.host(host_id)
        doc = {k: copy.deepcopy(v) for k, v in self.openapi.items() if k not in ("paths", "servers")}
        doc["servers"] = [{"url": host["base_url"]}]
        paths: dict[str, dict] = {}
        for op in self.operations():
            if op.host != host_id:
                continue
            src_item = self.openapi["paths"][op.spec_path]
            item = paths.setdefault(op.path, {k: copy.deepcopy(v) for k, v in src_item.items()
                                              if k not in HTTP_METHODS and k != "servers"})
            op_def = copy.deepcopy(op.definition)
            op_def.pop("servers", None)
            item[op.method.lower()] = op_def
        doc["paths"] = paths
        cache[host_id] = doc
        return copy.deepcopy(doc)


def mount_prefix(host: dict, at_root: bool = False) -> str:
    """The URL path prefix a provider host is served under by the mock: its ``mount`` (``/fal``; nothing
    when the host is served at the root of a single-provider mock, ``at_root``) plus the path of its
    ``base_url`` (``/v1`` of ``https://api.openai.com/v1``). ``host`` is an entry of provider.yaml ``hosts``."""
    base_path = urlsplit(host["base_url"]).path.rstrip("/")
    return ("" if at_root else host["mount"]) + base_path


def _check_ids(contract: Contract) -> None:
    meta = contract.provider
    if meta.get("id") != contract.id:
        raise SpecError(f"{contract.directory / 'provider.yaml'}: id {meta.get('id')!r} does not match "
                        f"folder name {contract.id!r}")
    if not str(contract.openapi.get("openapi", "")).startswith("3.1"):
        raise SpecError(f"{contract.directory / 'openapi.yaml'}: not an OpenAPI 3.1 document")
    if not isinstance(contract.openapi.get("paths"), dict):
        raise SpecError(f"{contract.directory / 'openapi.yaml'}: has no paths")


@functools.cache
def load(provider_id: str) -> Contract:
    """Load and cache one provider's contract and metadata.

    Args:
        provider_id: one of :func:`provider_ids` (``"openai"``, ``"fal"``, ``"sunra"``, ...).

    Returns:
        The :class:`Contract`. The same object is returned on later calls (treat it as read-only).

    Raises:
        UnknownProviderError: no such provider folder (the message lists the known ids).
        SpecError: a file is missing, is not valid YAML, or ``provider.yaml`` breaks its schema.
    """
    if not isinstance(provider_id, str) or provider_id not in provider_ids():
        known = ", ".join(provider_ids())
        raise UnknownProviderError(f"unknown provider {provider_id!r} (known: {known})")
    directory = SPECS_DIR / provider_id
    meta = read_yaml(directory / "provider.yaml")
    validate_provider_metadata(meta, str(directory / "provider.yaml"))
    doc = read_yaml(directory / "openapi.yaml")
    if not isinstance(doc, dict):
        raise SpecError(f"{directory / 'openapi.yaml'}: not a mapping")
    contract = Contract(id=provider_id, openapi=doc, provider=meta, directory=directory)
    _check_ids(contract)
    contract.operations()  # fail early on servers that match no host
    return contract


def load_all() -> dict[str, Contract]:
    """Load every vendored provider: ``{id: Contract}`` in id order. Raises like :func:`load`."""
    return {pid: load(pid) for pid in provider_ids()}


@functools.lru_cache(maxsize=1)
def load_admin() -> dict:
    """The OpenAPI 3.1 contract of the mock server's admin API (``/__mock/``), as a dict.

    Raises:
        SpecError: the file is missing or invalid YAML.
    """
    doc = read_yaml(SPECS_DIR / ADMIN_ID / "openapi.yaml")
    if not isinstance(doc, dict):
        raise SpecError(f"{SPECS_DIR / ADMIN_ID / 'openapi.yaml'}: not a mapping")
    return doc


__all__ = [
    "ADMIN_ID", "DEFAULT_PARAMS", "FAMILIES", "NEUTRAL_STATES", "SPECS_DIR", "Contract", "Operation", "SpecError",
    "UnknownProviderError", "load", "load_admin", "load_all", "mount_prefix", "provider_ids", "read_yaml",
    "validate_provider_metadata",
]
