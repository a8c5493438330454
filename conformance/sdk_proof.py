"""``conformance compare FROM TO... --runtime``: the runtime proof of a migration report.

The FROM provider's official SDK (the openai SDK for ``openai``: provider.yaml ``sdk``) runs its own flow,
unmodified, against our embedded mock of FROM and of each TO provider: create a video, poll it to its end,
remix it, download its MP4, then extend an uploaded video and make a character (the rest of the Videos API).
Each step is reported as ``works`` or ``fails`` with how it fails: an HTTP status and the provider's error, an
answer the SDK accepts but that is not what the step needs (a job object instead of a video, a JSON link
instead of MP4 bytes), or an error the SDK raises before sending anything.

Where the SDK is pointed comes from the contracts: a TO provider's provider.yaml ``compatibility`` (the base
URL and model its docs tell an SDK user to set, the docs' claim verbatim, and which FROM operations the docs
document), mapped onto the mock's URL of that host; a provider without it gets its primary host. The report
then says plainly where a provider's docs promise more than its contract delivers.

The embedded mock is started by :func:`conformance.target.open_target` (the one place the suite starts it);
every request goes to 127.0.0.1. When a step cannot run because an earlier one failed (no video to remix),
the source is a completed video seeded through the mock's admin API (``POST /__mock/videos``), so every step
is tried on its own. Steps run with ``max_retries=0``, a 10 s request timeout and a 20 s bound per step.
"""

from __future__ import annotations

import re
import threading
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import specs

from .target import TargetError, open_target

#: The flow, in order: (step name, what it does with the SDK). ``character`` creates and reads back one.
STEPS: tuple[tuple[str, str], ...] = (
    ("create", "videos.create(prompt, seconds, size[, model])"),
    ("poll", "videos.poll(id) to a terminal status"),
    ("remix", "videos.remix(id, prompt)"),
    ("download", "videos.download_content(id) -> MP4 bytes"),
    ("extend", "videos.extend(prompt, seconds, video=<uploaded MP4>)"),
    ("character", "videos.create_character(name, video) + get_character(id)"),
)
#: The FROM roles each step needs (provider.yaml ``compatibility.documents`` keys).
STEP_ROLES: dict[str, tuple[str, ...]] = {
    "create": ("create",), "poll": ("retrieve",), "remix": ("remix",), "download": ("content",),
    "extend": ("extend",), "character": ("character_create", "character_retrieve"),
}
STEP_TIMEOUT = 20.0    # seconds one step may take (the SDK's poll loop included)
REQUEST_TIMEOUT = 10.0  # seconds per request of the SDK
POLL_INTERVAL_MS = 20   # the SDK's poll_interval_ms (the mock's jobs take ~0.25 s at the suite's speed)
SAMPLE_MP4 = Path(__file__).with_name("samples") / "upload.mp4"


class ProofError(Exception):
    """The runtime proof cannot run (no SDK for FROM, the SDK not installed, the mock not startable): one line."""


@dataclass
class StepResult:
    """One step against one provider: ``ok``, and ``how`` (what worked, or how it failed, in one phrase)."""

    step: str
    ok: bool
    how: str

    @property
    def cell(self) -> str:
        return "works" if self.ok else f"fails: {self.how}"


@dataclass
class ProviderProof:
    """The flow against one provider's mock: where the SDK was pointed, each step, and the docs' claim."""

    id: str
    sdk_base_url: str          # the provider's real URL the SDK is pointed at (mapped onto the mock)
    model: str | None
    claim: str | None
    claim_source: str | None
    undocumented: list[str]    # FROM roles the provider's docs do not document (compatibility.documents false)
    steps: list[StepResult] = field(default_factory=list)

    @property
    def works(self) -> list[str]:
        return [s.step for s in self.steps if s.ok]

    @property
    def fails(self) -> list[str]:
        return [s.step for s in self.steps if not s.ok]


@dataclass
class RuntimeProof:
    """Every provider's proof: FROM first (the reference), then each TO in the order given."""

    sdk: str
    providers: list[ProviderProof]

    def statements(self) -> list[str]:
        """One plain sentence per TO: what its docs promise against what its contract delivers."""
        out = []
        total = len(STEPS)
        for p in self.providers[1:]:
            works = f"{len(p.works)} of {total} steps of the {self.sdk} SDK's flow work"
            failing = f" (fail: {', '.join(p.fails)})" if p.fails else ""
            undocumented = (f"; its docs do not document {', '.join(p.undocumented)}" if p.undocumented else "")
            if p.claim:
                verdict = "its docs promise more than its contract delivers" if p.fails else "its contract delivers it"
                out.append(f"`{p.id}`: the docs promise \"{p.claim}\" ({p.claim_source}); {verdict}: {works}"
                           f"{failing}{undocumented}.")
            else:
                out.append(f"`{p.id}`: the docs make no claim about the {self.sdk} SDK; {works}{failing}"
                           f"{undocumented}.")
        return out


# -- the flow --------------------------------------------------------------------------------------------------
def _short(text: str, limit: int = 140) -> str:
    text = re.sub(r"http://127\.0\.0\.1:\d+", "<mock>", str(text))
    text = re.sub(r";\s*boundary=[^\s,;]+", "", text)  # a multipart boundary is random
    text = re.sub(r"\b(video|job|char|req)_[0-9A-Za-z]{12,}", r"\1_…", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _api_failure(exc: BaseException) -> str:
    """How an SDK exception failed: ``HTTP 404 (invalid_request_error): message`` for an answer, else the
    exception's type and message (raised by the SDK before or without an answer)."""
    import openai

    if isinstance(exc, openai.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        err = body.get("error") if isinstance(body.get("error"), dict) else body
        kind = err.get("type") or err.get("code") if isinstance(err, dict) else None
        message = err.get("message") if isinstance(err, dict) and err.get("message") else exc.message
        return f"HTTP {exc.status_code}" + (f" ({kind})" if kind else "") + f": {_short(message)}"
    if isinstance(exc, openai.APITimeoutError):
        return f"no answer within {REQUEST_TIMEOUT:g} s"
    if isinstance(exc, openai.APIConnectionError):
        return f"no answer: {_short(exc)}"
    return f"raised by the SDK: {type(exc).__name__}: {_short(exc)}"


def _bounded(fn: Callable[[], StepResult], step: str) -> StepResult:
    """Run one step in a thread, bounded by :data:`STEP_TIMEOUT`; an exception becomes a failed step."""
    out: list[StepResult] = []

    def body() -> None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # "The Sora API is scheduled to ... shut down"
                out.append(fn())
        except Exception as exc:  # noqa: BLE001 - every SDK failure is a finding of the proof
            out.append(StepResult(step, False, _api_failure(exc)))

    t = threading.Thread(target=body, name=f"sdk-proof-{step}", daemon=True)
    t.start()
    t.join(STEP_TIMEOUT)
    return out[0] if out else StepResult(step, False, f"did not finish within {STEP_TIMEOUT:g} s")


def _mapped_base(contract: specs.Contract, target, sdk_base_url: str) -> str:
    """The mock URL standing for ``sdk_base_url``: the host whose real base URL it extends, rebased."""
    for h in sorted(contract.hosts, key=lambda h: -len(h["base_url"])):
        real = h["base_url"].rstrip("/")
        if sdk_base_url.rstrip("/") == real or sdk_base_url.startswith(real + "/"):
            return target.base_url(contract.id, h["id"]).rstrip("/") + sdk_base_url.rstrip("/")[len(real):]
    raise ProofError(f"{contract.id}: compatibility.sdk_base_url {sdk_base_url} is under no host of the contract")


def _video_like(from_contract: specs.Contract, obj: Any) -> str | None:
    """Why an object the SDK parsed as a Video is not one of FROM's video objects (None when it is): the
    ``object`` and ``status`` words come from FROM's contract (its ``statuses`` and job schema)."""
    statuses = {s["value"] for s in from_contract.provider["statuses"]}
    extra = getattr(obj, "model_extra", None) or {}
    kind = getattr(obj, "object", None) or extra.get("object")
    status = getattr(obj, "status", None)
    if not isinstance(getattr(obj, "id", None), str):
        return "the answer names no id"
    if kind != "video":
        return f"answered 200 with a {kind!r} object, not a video (status {status!r})"
    if status not in statuses:
        return f"answered a video whose status {status!r} is not one of {sorted(statuses)}"
    return None


def prove_one(from_contract: specs.Contract, contract: specs.Contract, target, key: str) -> ProviderProof:
    """Run the flow (:data:`STEPS`) with the FROM SDK against ``contract``'s provider on ``target`` (an
    embedded-mock :class:`conformance.target.Target`). Never raises for a failing step."""
    import openai

    compat = contract.provider.get("compatibility") or {}
    if contract.id == from_contract.id or not compat:
        sdk_base_url = contract.hosts[0]["base_url"]
    else:
        sdk_base_url = compat["sdk_base_url"]
    documents = compat.get("documents") or {}
    proof = ProviderProof(contract.id, sdk_base_url, compat.get("model"), compat.get("claim"),
                          compat.get("source"), sorted(r for r, known in documents.items() if not known))
    client = openai.OpenAI(base_url=_mapped_base(contract, target, sdk_base_url), api_key=key, max_retries=0,
                           timeout=REQUEST_TIMEOUT)
    model = {"model": proof.model} if proof.model else {}
    state: dict[str, Any] = {}

    def seeded() -> str | None:
        """A completed video of the provider from the mock's admin API (when the flow made none)."""
        try:
            made = target.admin("POST", "videos", {"provider": contract.id, "seconds": 4, "size": "720x1280"})
        except TargetError:
            return None
        return made.get("id") if isinstance(made, dict) else None

    def create() -> StepResult:
        video = client.videos.create(prompt="A lighthouse at dusk, waves rolling in", seconds="4", size="720x1280",
                                     **model)
        why = _video_like(from_contract, video)
        if why:
            return StepResult("create", False, why)
        state["id"] = video.id
        return StepResult("create", True, f"a {video.status} video")

    def poll() -> StepResult:
        vid, note = (state["id"], "") if "id" in state else (seeded(), " (a video seeded through the mock's "
                                                                       "admin API)")
        if vid is None:
            return StepResult("poll", False, "not reached: create made no video and none could be seeded")
        video = client.videos.poll(vid, poll_interval_ms=POLL_INTERVAL_MS)
        why = _video_like(from_contract, video)
        if why:
            return StepResult("poll", False, why + note)
        if video.status != "completed":
            return StepResult("poll", False, f"polling stopped at status {video.status!r}{note}")
        state["done"], state["note"] = video.id, note
        return StepResult("poll", True, "completed" + note)

    def source() -> tuple[str | None, str]:
        if "done" in state:
            return state["done"], state.get("note", "")
        sid = seeded()
        return sid, " (a video seeded through the mock's admin API)"

    def remix() -> StepResult:
        sid, note = source()
        if sid is None:
            return StepResult("remix", False, "not reached: no completed video to remix")
        video = client.videos.remix(sid, prompt="The same scene at night")
        why = _video_like(from_contract, video)
        if why:
            return StepResult("remix", False, why + note)
        if video.remixed_from_video_id != sid:
            return StepResult("remix", False, f"the remix names source {video.remixed_from_video_id!r}{note}")
        return StepResult("remix", True, "a new video naming its source" + note)

    def download() -> StepResult:
        sid, note = source()
        if sid is None:
            return StepResult("download", False, "not reached: no completed video to download")
        content = client.videos.download_content(sid)
        data = content.read()
        ctype = content.response.headers.get("content-type", "no content type").split(";")[0]
        from specs.media import probe_mp4

        try:
            info = probe_mp4(data)
        except ValueError:
            shape = ""
            try:
                doc = content.response.json()
                if isinstance(doc, dict):
                    shape = ": a JSON link {" + ", ".join(sorted(doc)) + "}"
            except ValueError:
                pass
            return StepResult("download", False, f"answered {content.response.status_code} {ctype}, not MP4 bytes"
                              f"{shape}{note}")
        return StepResult("download", True, f"a {info['width']}x{info['height']} MP4 of "
                          f"{info['duration_seconds']:.0f} s{note}")

    def extend() -> StepResult:
        video = client.videos.extend(prompt="The storm arrives", seconds="4",
                                     video=("clip.mp4", SAMPLE_MP4.read_bytes(), "video/mp4"))
        why = _video_like(from_contract, video)
        if why:
            return StepResult("extend", False, why)
        return StepResult("extend", True, f"a video of {video.seconds} s (the stitched total)")

    def character() -> StepResult:
        made = client.videos.create_character(name="Captain Fox",
                                              video=("hero.mp4", SAMPLE_MP4.read_bytes(), "video/mp4"))
        if not isinstance(made.id, str):
            return StepResult("character", False, "the answer names no character id")
        got = client.videos.get_character(made.id)
        if got.id != made.id or got.name != "Captain Fox":
            return StepResult("character", False, f"read back {got.id!r} named {got.name!r}")
        return StepResult("character", True, "made and read back")

    for name, fn in (("create", create), ("poll", poll), ("remix", remix), ("download", download),
                     ("extend", extend), ("character", character)):
        proof.steps.append(_bounded(fn, name))
    client.close()
    return proof


def prove(from_id: str, to_ids: list[str], *, seed: int = 0) -> RuntimeProof:
    """Start the embedded mock of FROM and every TO (:func:`conformance.target.open_target`) and run the FROM
    SDK's flow against each (FROM first).

    Raises:
        ProofError: FROM has no SDK (provider.yaml ``sdk``), it is not the openai SDK (the only flow written),
            the SDK is not installed, or the mock cannot start.
    """
    try:
        frm = specs.load(from_id)
        tos = [specs.load(t) for t in to_ids]
    except specs.SpecError as exc:
        raise ProofError(str(exc)) from None
    sdk = frm.provider.get("sdk") or {}
    if sdk.get("name") != "openai":
        raise ProofError(f"it runs the openai SDK's flow; {from_id}'s SDK is "
                         f"{sdk.get('name') or 'not declared'} (provider.yaml sdk)")
    try:
        import openai  # noqa: F401 - the SDK under test
    except ImportError:
        raise ProofError("--runtime needs the openai package (pip install 'sora-remix-mock[sdks]')") from None
    ids = list(dict.fromkeys([from_id, *to_ids]))
    try:
        target = open_target(ids, seed=seed)
    except TargetError as exc:
        raise ProofError(str(exc)) from None
    try:
        out = []
        for c in [frm, *[t for t in tos if t.id != from_id]]:
            out.append(prove_one(frm, c, target, target.credentials[c.id].key))
    finally:
        target.close()
    return RuntimeProof(f"{sdk['name']} {sdk.get('version', '')}".strip(), out)


# -- rendering -------------------------------------------------------------------------------------------------
def render_markdown(proof: RuntimeProof) -> str:
    """The step × provider table (``works`` / ``fails: how``), where each SDK was pointed, and the statements."""
    esc = _md
    ids = [p.id for p in proof.providers]
    lines = [f"**Runtime proof**: the {proof.sdk} SDK's own flow, unmodified, against the embedded mock of each "
             "provider (`conformance/sdk_proof.py`).", ""]
    lines += ["| step (SDK call) | " + " | ".join(f"`{i}`" for i in ids) + " |", "|---" * (len(ids) + 1) + "|"]
    for i, (step, call) in enumerate(STEPS):
        cells = [esc(p.steps[i].cell) for p in proof.providers]
        lines.append(f"| {step} (`{call}`) | " + " | ".join(cells) + " |")
    bases = [f"`{p.id}` `{p.sdk_base_url}`" + (f" with model `{p.model}`" if p.model else "")
             for p in proof.providers]
    lines += ["", "SDK base URL (the provider's real URL, served by the mock): " + "; ".join(bases) + "."]
    lines += ["", "After a failed create, poll, remix and download run on a completed video seeded through the mock's "
              "admin API, so each step is tried on its own (`--format json` says which). `fails: HTTP ...` is the "
              "provider's own status and error envelope as the mock answers it."]
    lines += [""] + [f"- {esc(s)}" for s in proof.statements()]
    return "\n".join(lines) + "\n"


def render_text(proof: RuntimeProof) -> str:
    """The same as :func:`render_markdown`, as plain lines for a terminal."""
    lines = [f"Runtime proof: the {proof.sdk} SDK's flow against the embedded mock"]
    for p in proof.providers:
        lines.append(f"  {p.id} (SDK base URL {p.sdk_base_url}{', model ' + p.model if p.model else ''})")
        lines += [f"    {s.step:<10} {s.cell}" for s in p.steps]
    lines += [f"  {s}" for s in proof.statements()]
    return "\n".join(lines) + "\n"


def to_json(proof: RuntimeProof) -> dict:
    """JSON-ready: ``{"sdk", "steps": [[name, call]], "providers": [{id, sdk_base_url, model, claim, claim_source,
    undocumented, steps: [{step, ok, how}]}], "statements": [...]}``."""
    return {"sdk": proof.sdk, "steps": [list(s) for s in STEPS],
            "providers": [asdict(p) for p in proof.providers], "statements": proof.statements()}


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


__all__ = ["STEPS", "ProofError", "ProviderProof", "RuntimeProof", "StepResult", "prove", "prove_one",
           "render_markdown", "render_text", "to_json"]
