"""The protocol families: the one table both tools read (see ``../shared/DESIGN.md`` "Protocol families").

A host's ``family`` in provider.yaml names a row of :data:`TABLE`. A row says

- which operation roles (``x-role`` in openapi.yaml) the family has, and what each role does to the neutral
  job (:data:`ROLE_ACTIONS`: create, read, stream, output, cancel, list, delete);
- which *capabilities* a client of the family may use (:data:`CAPABILITIES`) and which role gives each one,
  so a host that lacks an operation (gptge has no ``list``) simply lacks that capability;
- which class implements it on each side: the mock's adapter (``mockserver.rendering``) and the suite's
  driver (``conformance.drivers``). These are names, not imports: the kernel imports neither tool.

Adding a provider of a known family needs no change here; adding a family means a row here, an adapter in the
mock and a driver in the suite (and the family name in ``provider.schema.yaml``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

#: What a client can do with a family, by capability name (the vocabulary of :attr:`Family.capabilities`).
CAPABILITIES: dict[str, str] = {
    "submit": "create a job (generate, or remix/edit where the operation allows it)",
    "poll": "read a job's current state",
    "result": "read a finished job's output (its answer names the assets)",
    "download": "fetch the bytes of an output asset",
    "cancel": "stop a job that has not finished",
    "list": "list jobs",
    "delete": "delete a finished job",
    "stream": "follow a job's status as a stream (Server-Sent Events)",
    "remix": "create a job from a finished one (x-kind / x-source of a creating operation say which)",
    "extend": "create a job that continues a finished one; its duration is the stitched total (role extend)",
    "characters": "create a reusable character from an uploaded video and read it back (a resource, not a job)",
}

#: What each role does to the neutral job of the lifecycle engine.
ROLE_ACTIONS: dict[str, str] = {
    "create": "create", "submit": "create", "run": "create and wait until terminal",
    "remix": "create", "edit": "create", "extend": "create",
    "retrieve": "read", "status": "read", "status_stream": "stream",
    "result": "output", "content": "output",
    "cancel": "cancel", "list": "list", "delete": "delete",
    "character_create": "none (stores a character)", "character_retrieve": "none (reads a character)",
}

#: Roles whose operations create a job, in the order clients look for a creating operation (``x-kind`` says
#: which kind of job: ``generate``, ``remix``, ``extend``).
CREATING_ROLES: tuple[str, ...] = ("create", "submit", "run", "remix", "edit", "extend")

#: Job kinds made from a source video named by ``x-source`` (a remix; an extension that continues its source,
#: whose ``seconds`` is the stitched total: source + extension, per the openai SDK's ``Video.seconds`` docs).
SOURCED_KINDS: frozenset[str] = frozenset({"remix", "extend"})


@dataclass(frozen=True)
class Family:
    """One protocol family.

    Attributes:
        name: the family name of provider.yaml (``queue``).
        summary: its wire shape in one line.
        roles: role -> the capabilities an operation of that role gives (``{"status": {"poll"}, ...}``).
        capabilities: every capability a client of this family may use; one that no role gives is always
            available (``submit`` and ``remix`` of the families whose creating answer is the job).
        adapter: dotted name of the mock's adapter class.
        driver: dotted name of the conformance suite's driver class.
    """

    name: str
    summary: str
    roles: dict[str, frozenset[str]] = field(hash=False)
    capabilities: frozenset[str]
    adapter: str
    driver: str

    def roles_giving(self, capability: str) -> tuple[str, ...]:
        """The roles whose operations give ``capability`` (empty: no operation is needed), sorted."""
        return tuple(sorted(r for r, caps in self.roles.items() if capability in caps))

    def supports(self, capability: str, roles_present: Iterable[str]) -> bool:
        """True when a host of this family that serves operations of ``roles_present`` offers ``capability``:
        the family has it, and some present role gives it (or no role is needed for it)."""
        if capability not in self.capabilities:
            return False
        needed = self.roles_giving(capability)
        return not needed or any(r in needed for r in roles_present)

    def capabilities_of(self, roles_present: Iterable[str]) -> frozenset[str]:
        """Every capability a host serving ``roles_present`` offers (see :meth:`supports`)."""
        present = set(roles_present)
        return frozenset(c for c in self.capabilities if self.supports(c, present))


def _roles(**roles: Iterable[str]) -> dict[str, frozenset[str]]:
    return {name: frozenset(caps) for name, caps in roles.items()}


TABLE: dict[str, Family] = {f.name: f for f in (
    Family(
        name="video_object",
        summary="POST returns a video object; poll GET /videos/{id}; download /content (openai, gptge)",
        roles=_roles(create=(), remix=(), edit=(), extend={"extend"}, retrieve={"poll"}, content={"result", "download"},
                     list={"list"}, delete={"delete"}, character_create={"characters"},
                     character_retrieve={"characters"}),
        capabilities=frozenset({"submit", "poll", "result", "download", "list", "delete", "remix", "extend",
                                "characters"}),
        adapter="mockserver.rendering.video_object.VideoObjectFamily",
        driver="conformance.drivers.video_object.VideoObjectDriver",
    ),
    Family(
        name="queue",
        summary="submit -> request_id + status/response/cancel URLs; IN_QUEUE / IN_PROGRESS / COMPLETED (fal, sunra)",
        roles=_roles(submit=(), status={"poll"}, status_stream={"stream"}, result={"result"},
                     cancel={"cancel"}),
        capabilities=frozenset({"submit", "poll", "result", "download", "cancel", "remix", "stream"}),
        adapter="mockserver.rendering.queue.QueueFamily",
        driver="conformance.drivers.queue.QueueDriver",
    ),
    Family(
        name="job",
        summary="POST returns a job (202); poll GET /jobs/{id} (aigateway)",
        roles=_roles(submit=(), retrieve={"poll", "result"}, cancel={"cancel"}),
        capabilities=frozenset({"submit", "poll", "result", "download", "cancel", "remix"}),
        adapter="mockserver.rendering.job.JobFamily",
        driver="conformance.drivers.job.JobDriver",
    ),
    Family(
        name="sync",
        summary="one call blocks until the video is ready (onerouter, fal's fal.run host)",
        roles=_roles(run=()),
        capabilities=frozenset({"submit", "result", "download", "remix"}),
        adapter="mockserver.rendering.sync.SyncFamily",
        driver="conformance.drivers.sync.SyncDriver",
    ),
)}

#: The family names, in table order (the enum of ``family`` in ``provider.schema.yaml``).
FAMILY_NAMES: tuple[str, ...] = tuple(TABLE)


def get(name: str) -> Family:
    """The row of a family name from provider.yaml.

    Raises:
        KeyError: not a known family (the message lists the known ones).
    """
    try:
        return TABLE[name]
    except KeyError:
        raise KeyError(f"unknown protocol family {name!r} (known: {', '.join(FAMILY_NAMES)})") from None


def roles_by_family() -> dict[str, set[str]]:
    """``{family: {role, ...}}``: the operation roles each family may declare (a fresh copy)."""
    return {f.name: set(f.roles) for f in TABLE.values()}


__all__ = ["CAPABILITIES", "CREATING_ROLES", "FAMILY_NAMES", "ROLE_ACTIONS", "SOURCED_KINDS", "TABLE", "Family", "get",
           "roles_by_family"]
