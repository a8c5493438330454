"""A new provider of each known family is a spec folder, with no Python (issue 9).

For each family this test builds, in a temporary folder, a NEW provider: a copy of an existing one whose
YAML data is transformed (never a hand-written file) so that it has other request and job-object field
names, other status words, another id prefix, another auth header and scheme, another error envelope and
another host:

================ =========== =====================================================================================
new provider     made from   renamed
================ =========== =====================================================================================
``clipforge``    openai      prompt -> text, progress -> percent; statuses waiting/rendering/done/broken; ids
                 (video_     ``clip_``; ``X-Clip-Key: <key>`` (raw); envelope ``{"fault": {...}}``
                 object)
``reelqueue``    sunra       prompt -> text, queue_position -> position; statuses WAITING/WORKING/DONE/BROKEN/
                 (queue)     STOPPED; ids ``rq_``; ``Authorization: Token <key>``; envelope ``{"fault": {...}}``
``framejob``     aigateway   prompt -> text, created -> submitted_at; statuses pending/working/busy/finished/
                 (job)       crashed/stopped; ids ``fj_``; ``X-Frame-Token: Key <key>``; envelope ``{"fault": ...}``
``instantclip``  onerouter   prompt -> text, data -> clips; statuses waiting/rendering/done/broken; ids ``ic_``;
                 (sync)      ``X-Instant-Auth: Token <key>``; envelope ``{"fault": {...}}``
================ =========== =====================================================================================

The specs loader is pointed at that folder (``specs.SPECS_DIR``, with ``provider.schema.yaml``, the admin contract
and ``sources/`` beside the new providers), then

- the mock serves each new provider (``test_the_mock_serves_...``): a job goes through its lifecycle in the new
  words and fields, every answer validates against the new contract, and errors come in the new envelope;
- the main job (``conformance.runner.execute`` with every check, against the embedded mock) passes against
  each (``test_the_main_job_passes_against_...``).

The renamed job fields are placed with provider.yaml ``fields`` (data the conformance suite reads), so
``test_renamed_job_fields_are_judged`` shows their checks judged, not skipped. :data:`CONFORMANCE_HARD_CODES`
lists the names the suite still takes from a protocol family's wire shape rather than from provider.yaml.
"""

from __future__ import annotations

import copy
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

import specs
from mockserver.embedded import EmbeddedMock
from mockserver.validation import HostValidator

REAL_SPECS = Path(specs.__file__).resolve().parent
KEY = "sk-new-provider-0123456789"

#: Places where the conformance suite names a job field, status word or provider instead of reading it from the
#: contract / provider.yaml (file: what). A renamed field there is not judged; see the module docstring.
CONFORMANCE_HARD_CODES = (
    "conformance/drivers/job.py JobDriver.result: the output is body['result'] with 'url'/'file_url'",
    "conformance/drivers/queue.py QueueDriver.submit: 'request_id', 'status_url', 'response_url', 'cancel_url'",
    "conformance/drivers/base.py Driver.neutral: an ambiguous status is resolved with 'error', 'success', "
    "'error_type'",
    "conformance/drivers/base.py Driver.declared_media: 'size'/'resolution', 'width'/'height', 'seconds'/'duration'",
    "conformance/drivers/video_object.py VideoObjectDriver.content_url: the variant query is '?variant='",
    "conformance/target.py open_target: project-level webhooks are configured only for the provider id 'openai' "
    "(openai_webhook_url); this test sets the embedded mock's URL itself for clipforge",
)


@dataclass
class Recipe:
    """How a new provider is made from an existing one (data transformations only)."""

    new: str
    source: str
    family: str
    origin: str                      # the new host origin (scheme://host)
    prefix: str                      # the new id prefix
    statuses: dict[str, str]         # old status word -> new word
    fields: dict[str, str]           # old field name -> new name (request and job-object fields)
    auth: dict[str, Any]             # provider.yaml auth: header, schemes, preferred, env
    renamed_job_field: tuple[str, str]   # (old, new) job-object field the mock must render under its new name
    envelope: tuple[str, str] = ("error", "fault")
    checks_reading_renamed: tuple[str, ...] = ()   # checks that read the renamed job field by its old name


RECIPES = [
    Recipe("clipforge", "openai", "video_object", "https://api.clipforge.example", "clip_",
           {"queued": "waiting", "in_progress": "rendering", "completed": "done", "failed": "broken"},
           {"prompt": "text", "progress": "percent"},
           {"header": "X-Clip-Key", "schemes": ["raw"], "preferred": "raw", "env": "CLIPFORGE_API_KEY"},
           ("progress", "percent"), checks_reading_renamed=("progress_valid", "progress_monotonic",
                                                             "progress_complete")),
    Recipe("reelqueue", "sunra", "queue", "https://api.reelqueue.example", "rq_",
           {"IN_QUEUE": "WAITING", "IN_PROGRESS": "WORKING", "COMPLETED": "DONE", "FAILED": "BROKEN",
            "CANCELLED": "STOPPED"},
           {"prompt": "text", "queue_position": "position"},
           {"header": "Authorization", "schemes": ["Token"], "preferred": "Token", "env": "REELQUEUE_KEY"},
           ("queue_position", "position"), checks_reading_renamed=("queue_position_monotonic",)),
    Recipe("framejob", "aigateway", "job", "https://api.framejob.example", "fj_",
           {"queued": "pending", "running": "working", "processing": "busy", "completed": "finished",
            "failed": "crashed", "cancelled": "stopped"},
           {"prompt": "text", "created": "submitted_at"},
           {"header": "X-Frame-Token", "schemes": ["Key"], "preferred": "Key", "env": "FRAMEJOB_TOKEN"},
           ("created", "submitted_at")),
    Recipe("instantclip", "onerouter", "sync", "https://video.instantclip.example", "ic_",
           {"queued": "waiting", "in_progress": "rendering", "completed": "done", "failed": "broken"},
           {"prompt": "text", "data": "clips"},
           {"header": "X-Instant-Auth", "schemes": ["Token"], "preferred": "Token", "env": "INSTANTCLIP_KEY"},
           ("data", "clips")),
]
BY_NAME = {r.new: r for r in RECIPES}


# -- transformations of the YAML data ---------------------------------------------------------------------
def _walk(node: Any, fn, path: tuple = ()) -> None:
    """Call ``fn(node, path)`` on every dict of a document, depth first."""
    if isinstance(node, dict):
        fn(node, path)
        for k, v in list(node.items()):
            _walk(v, fn, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _walk(v, fn, path + (i,))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _resolve(doc: dict, ref: str) -> Any:
    node: Any = doc
    for tok in ref.lstrip("#/").split("/"):
        node = node[tok.replace("~1", "/").replace("~0", "~")]
    return node


def _rename_keys(node: Any, names: dict[str, str]) -> Any:
    """A copy of JSON-shaped data with dict keys renamed (recursively)."""
    if isinstance(node, dict):
        return {names.get(k, k): _rename_keys(v, names) for k, v in node.items()}
    if isinstance(node, list):
        return [_rename_keys(v, names) for v in node]
    return node


def _example_value(value: Any, r: Recipe, old_prefix: str) -> Any:
    """An example instance in the new provider's words: renamed fields, status words, id prefix, envelope."""
    def conv(node: Any, key: str | None = None) -> Any:
        if isinstance(node, dict):
            if set(node) == {r.envelope[0]}:
                node = {r.envelope[1]: node[r.envelope[0]]}
            return {r.fields.get(k, k): conv(v, k) for k, v in node.items()}
        if isinstance(node, list):
            return [conv(v, key) for v in node]
        if isinstance(node, str):
            if key == "status" and node in r.statuses:
                return r.statuses[node]
            if key and (key == "id" or key.endswith("_id")) and old_prefix and node.startswith(old_prefix):
                return r.prefix + node[len(old_prefix):]
        return node
    return conv(value)


def transform_openapi(doc: dict, r: Recipe, old: dict) -> dict:
    """The source contract in the new provider's words (see the module docstring)."""
    doc = copy.deepcopy(doc)
    old_origin = _origin(old["hosts"][0]["base_url"])
    old_prefix = old["ids"]["prefix"]
    doc["info"]["title"] = f"{r.new} (a renamed copy of {r.source}, tests/test_new_provider_families.py)"
    status_nodes: list[Any] = []
    error_nodes: list[Any] = []

    def visit(node: dict, path: tuple) -> None:
        for s in node.get("servers") if isinstance(node.get("servers"), list) else []:
            if isinstance(s, dict) and isinstance(s.get("url"), str) and s["url"].startswith(old_origin):
                s["url"] = r.origin + s["url"][len(old_origin):]
        lifecycle = node.get("x-lifecycle")
        if isinstance(lifecycle, dict) and isinstance(lifecycle.get("statuses"), list):  # statuses of a sync call
            lifecycle["statuses"] = [r.statuses.get(v, v) for v in lifecycle["statuses"]]
        props = node.get("properties")
        if isinstance(props, dict):
            if "status" in props:
                status_nodes.append(props["status"])
            node["properties"] = {r.fields.get(k, k): v for k, v in props.items()}
            if isinstance(node.get("required"), list):
                node["required"] = [r.fields.get(k, k) for k in node["required"]]
        if node.get("in") == "header" and str(node.get("name", "")).lower() == old["auth"]["header"].lower():
            node["name"] = r.auth["header"]  # a declared credentials header parameter
        if isinstance(node.get("pattern"), str) and old_prefix and node["pattern"] == "^" + old_prefix:
            node["pattern"] = "^" + r.prefix
        if "example" in node and path[-1:] != ("properties",):  # (a property called "example" is a schema)
            node["example"] = _example_value(node["example"], r, old_prefix)
        if isinstance(node.get("examples"), dict):
            for ex in node["examples"].values():
                if isinstance(ex, dict) and "value" in ex:
                    ex["value"] = _example_value(ex["value"], r, old_prefix)
        if len(path) >= 2 and path[-2] == "responses" and re.fullmatch(r"[45]\d\d|[45]XX|default", str(path[-1])):
            for media in (node.get("content") or {}).values():
                if isinstance(media, dict) and "schema" in media:
                    error_nodes.append(media["schema"])
        if len(path) == 3 and path[:2] == ("components", "responses"):
            for media in (node.get("content") or {}).values():
                if isinstance(media, dict) and "schema" in media:
                    error_nodes.append(media["schema"])

    _walk(doc, visit)

    done: set[int] = set()

    def status_schema(node: Any) -> None:
        if not isinstance(node, dict) or id(node) in done:
            return
        done.add(id(node))
        if isinstance(node.get("$ref"), str):
            status_schema(_resolve(doc, node["$ref"]))
        if isinstance(node.get("enum"), list):
            node["enum"] = [r.statuses.get(v, v) if isinstance(v, str) else v for v in node["enum"]]
        if isinstance(node.get("const"), str):
            node["const"] = r.statuses.get(node["const"], node["const"])
        for key in ("allOf", "anyOf", "oneOf"):
            for sub in node.get(key) or []:
                status_schema(sub)

    for n in status_nodes:
        status_schema(n)

    renamed: set[int] = set()

    def envelope_schema(node: Any) -> None:
        if not isinstance(node, dict) or id(node) in renamed:
            return
        renamed.add(id(node))
        if isinstance(node.get("$ref"), str):
            envelope_schema(_resolve(doc, node["$ref"]))
        props = node.get("properties")
        if isinstance(props, dict) and r.envelope[0] in props:
            node["properties"] = {(r.envelope[1] if k == r.envelope[0] else k): v for k, v in props.items()}
            if isinstance(node.get("required"), list):
                node["required"] = [r.envelope[1] if k == r.envelope[0] else k for k in node["required"]]
        for key in ("allOf", "anyOf", "oneOf"):
            for sub in node.get(key) or []:
                envelope_schema(sub)

    for n in error_nodes:
        envelope_schema(n)

    scheme = {"type": "apiKey", "in": "header", "name": r.auth["header"],
              "description": f"`{r.auth['header']}: " + " | ".join("<key>" if s == "raw" else f"{s} <key>"
                                                                  for s in r.auth["schemes"]) + "`"}
    doc.setdefault("components", {})["securitySchemes"] = {"NewKey": scheme}
    doc["security"] = [{"NewKey": []}]

    def security(node: dict, path: tuple) -> None:
        if isinstance(node.get("security"), list) and path:
            node["security"] = [{"NewKey": []}]

    _walk(doc, security)
    return doc


#: The neutral job fields provider.yaml `fields` can place (specs.Contract.job_fields).
NEUTRAL_JOB_FIELDS = ("id", "status", "progress", "queue_position", "error", "lineage", "created", "started",
                      "completed", "expires")


def transform_provider(meta: dict, r: Recipe) -> dict:
    """The source provider.yaml in the new provider's words."""
    meta = copy.deepcopy(meta)
    old_origin = _origin(meta["hosts"][0]["base_url"])
    old_prefix = meta["ids"]["prefix"]
    meta.update(id=r.new, display_name=f"{r.new} (renamed copy of {r.source})", sdk=None,
                notes=f"A renamed copy of {r.source}, made by tests/test_new_provider_families.py.")
    meta.pop("expectations", None)
    for h in meta["hosts"]:
        h["base_url"] = r.origin + h["base_url"][len(old_origin):]
        h["mount"] = f"/{r.new}" + ("" if h is meta["hosts"][0] else f"-{h['id']}")
        h.pop("note", None)
    meta["auth"] = dict(r.auth)
    meta["statuses"] = [{**s, "value": r.statuses.get(s["value"], s["value"])} for s in meta["statuses"]]
    meta["ids"] = {**meta["ids"], "prefix": r.prefix,
                   "example": r.prefix + meta["ids"]["example"][len(old_prefix):]}

    def envelope(t: Any) -> Any:
        return {(r.envelope[1] if k == r.envelope[0] else k): v for k, v in t.items()} if isinstance(t, dict) else t

    meta["errors"]["template"] = envelope(meta["errors"]["template"])
    for kind in meta["errors"]["kinds"].values():
        if "template" in kind:
            kind["template"] = envelope(kind["template"])
    # where the renamed job fields are: data the conformance suite reads (provider.yaml `fields`)
    job_fields = {old: "/" + new for old, new in r.fields.items() if old in NEUTRAL_JOB_FIELDS}
    if job_fields:
        meta["fields"] = {**(meta.get("fields") or {}), **job_fields}
    mock = meta["mock"]
    params = mock.setdefault("params", {})
    params["prompt"] = {"pointer": "/" + r.fields["prompt"]}

    def words(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: words(v) for k, v in node.items()}
        if isinstance(node, list):
            return [words(v) for v in node]
        return r.statuses.get(node, node) if isinstance(node, str) else node

    for name in ("job", "submit", "result", "list", "deleted", "content", "cancel", "sync"):
        if name in mock:
            mock[name] = words(_rename_keys(mock[name], r.fields))
    if "webhook" in mock:
        mock["webhook"]["body"] = words(_rename_keys(mock["webhook"]["body"], r.fields))
    return meta


def build(r: Recipe, root: Path) -> None:
    """Write ``root/<new>/openapi.yaml`` and ``provider.yaml`` from the source provider's files."""
    src = REAL_SPECS / r.source
    old = yaml.safe_load((src / "provider.yaml").read_text(encoding="utf-8"))
    doc = yaml.safe_load((src / "openapi.yaml").read_text(encoding="utf-8"))
    out = root / r.new
    out.mkdir()
    (out / "openapi.yaml").write_text(yaml.safe_dump(transform_openapi(doc, r, old), sort_keys=False,
                                                     allow_unicode=True), encoding="utf-8")
    (out / "provider.yaml").write_text(yaml.safe_dump(transform_provider(old, r), sort_keys=False,
                                                      allow_unicode=True), encoding="utf-8")


@pytest.fixture(scope="module")
def new_specs(tmp_path_factory):
    """The specs loader pointed at a folder holding the new providers and the ones they were made from (plus the
    provider schema, the admin contract and the vendored sources the contracts cite)."""
    root = tmp_path_factory.mktemp("specs")
    shutil.copy(REAL_SPECS / "provider.schema.yaml", root / "provider.schema.yaml")
    shutil.copytree(REAL_SPECS / specs.ADMIN_ID, root / specs.ADMIN_ID)
    (root / "sources").symlink_to(REAL_SPECS / "sources", target_is_directory=True)
    for r in RECIPES:
        build(r, root)
        shutil.copytree(REAL_SPECS / r.source, root / r.source)  # the original, to judge both alike
    mp = pytest.MonkeyPatch()
    mp.setattr(specs, "SPECS_DIR", root)
    specs.load.cache_clear()
    try:
        for r in RECIPES:
            specs.load(r.new)  # loads and validates provider.yaml against the schema
        yield root
    finally:
        mp.undo()
        specs.load.cache_clear()


def test_the_new_providers_are_data_only(new_specs):
    assert sorted(specs.provider_ids()) == sorted([*BY_NAME, *(r.source for r in RECIPES)])
    for r in RECIPES:
        c = specs.load(r.new)
        assert c.family == r.family and c.directory == new_specs / r.new
        assert sorted(p.name for p in c.directory.iterdir()) == ["openapi.yaml", "provider.yaml"]
        assert c.auth["header"] == r.auth["header"] and c.provider["ids"]["prefix"] == r.prefix


# -- the mock serves each new provider --------------------------------------------------------------------
class Checked:
    """An httpx client on one host of a new provider whose every answer must validate against its contract."""

    def __init__(self, mock: EmbeddedMock, contract: specs.Contract, host: str, auth: str | None):
        self.contract = contract
        base = mock.base_url(contract.id, host)
        self.prefix = urlsplit(base).path.rstrip("/")
        self.validator = HostValidator(contract, host)
        headers = {contract.auth["header"]: auth} if auth else {}
        self.client = httpx.Client(base_url=base, headers=headers, timeout=30,
                                   event_hooks={"response": [self.check]})

    def check(self, response: httpx.Response) -> None:
        response.read()
        req = response.request
        path = req.url.path.removeprefix(self.prefix)
        errors = self.validator.response_errors(req.method, path, dict(req.url.params), dict(req.headers),
                                                response.status_code, response.content,
                                                response.headers.get("content-type", ""), dict(response.headers))
        assert not errors, f"{self.contract.id} {req.method} {path} -> {response.status_code}: {errors}"

    def __getattr__(self, name: str):
        return getattr(self.client, name)


def _credential(r: Recipe, key: str = KEY) -> str:
    scheme = r.auth["preferred"]
    return key if scheme == "raw" else f"{scheme} {key}"


def _assert_envelope(r: Recipe, response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert r.envelope[1] in body and r.envelope[0] not in body, body


def _op(c: specs.Contract, role: str) -> specs.Operation:
    for op in c.operations():
        if op.role == role:
            return op
    raise AssertionError(f"{c.id}: no {role} operation")


def _path(op: specs.Operation, **values: str) -> str:
    path = op.path
    for name in re.findall(r"\{([^}]+)\}", path):
        path = path.replace("{" + name + "}", values.get(name) or next(iter(values.values())))
    return path


def _submit_body(c: specs.Contract, r: Recipe, op: specs.Operation) -> dict:
    body: dict[str, Any] = {r.fields["prompt"]: "a heron over a pond"}
    if isinstance(op.kind, dict):  # the model picks the kind (framejob): the generate one
        body[op.kind["pointer"].strip("/")] = next(k for k, v in op.kind["map"].items() if v == "generate") \
            if "generate" in op.kind["map"].values() else op.model
    return body


@pytest.mark.parametrize("name", list(BY_NAME))
def test_the_mock_serves_the_new_provider(new_specs, name):
    r = BY_NAME[name]
    c = specs.load(r.new)
    host = c.hosts[0]["id"]
    old_field, new_field = r.renamed_job_field
    with EmbeddedMock(providers=[r.new], clock="manual", api_key=KEY, seed=5) as mock:
        api = Checked(mock, c, host, _credential(r))
        anonymous = Checked(mock, c, host, None)
        wrong = Checked(mock, c, host, _credential(r, "sk-wrong"))
        creating = next(op for op in c.operations() if op.role in ("create", "submit")) \
            if r.family != "sync" else _op(c, "run")
        # auth: missing or wrong credentials, and another scheme word, are the new envelope's 401
        _assert_envelope(r, anonymous.post(creating.path, json=_submit_body(c, r, creating)), 401)
        _assert_envelope(r, wrong.post(creating.path, json=_submit_body(c, r, creating)), 401)
        other = "Bearer " + KEY if r.auth["schemes"] != ["Bearer"] else "Basic " + KEY
        _assert_envelope(r, api.post(creating.path, json=_submit_body(c, r, creating),
                                     headers={r.auth["header"]: other}), 401)
        # a malformed request: the new envelope, never a 500
        bad = api.post(creating.path, content=b"{not json", headers={"Content-Type": "application/json"})
        assert 400 <= bad.status_code < 500 and r.envelope[1] in bad.json()
        # the journal never shows the new auth header's value
        assert all(e["headers"].get(r.auth["header"]) in (None, "[REDACTED]")
                   for e in mock.admin("GET", "journal")["requests"])

        if r.family == "sync":
            source = mock.seed_video(r.new, seconds=4, size="1280x720")
            assert source["id"].startswith(r.prefix)
            body = {r.fields["prompt"]: "add rain", creating.source["pointer"].strip("/"): source["id"],
                    "model": "sora-2"}
            done = api.post(creating.path, json=body, headers={"X-Mock-Timing": "queued=0, in_progress=0"})
            assert done.status_code == 200, done.text
            out = done.json()
            assert new_field in out and old_field not in out, out
            assert out[new_field][0]["video_id"].startswith(r.prefix)
            missing = api.post(creating.path, json={**body, creating.source["pointer"].strip("/"): r.prefix + "0" * 48})
            _assert_envelope(r, missing, 404)
            return

        created = api.post(creating.path, json=_submit_body(c, r, creating),
                           headers={"X-Mock-Timing": "queued=hold, in_progress=hold"})
        assert created.status_code < 300, created.text
        answer = created.json()
        job_id = answer.get("id") or answer.get("request_id")
        assert job_id.startswith(r.prefix)
        reading = _op(c, "retrieve") if r.family != "queue" else _op(c, "status")
        seen = []
        for to in (None, "in_progress", "end"):
            if to:
                mock.advance_job(r.new, job_id, to)
            got = api.get(_path(reading, id=job_id))
            assert got.status_code == 200, got.text
            seen.append(got.json())
        assert [s["status"] for s in seen] == [c.status_value(n) for n in ("queued", "in_progress", "completed")]
        assert all(s not in ("queued", "in_progress", "completed", "IN_QUEUE", "COMPLETED") for s in
                   [x["status"] for x in seen])
        holder = seen[0] if r.family != "job" else seen[-1]
        assert new_field in holder and old_field not in holder, holder
        if r.family == "video_object":
            assert seen[-1][r.fields["prompt"]] == "a heron over a pond" and "prompt" not in seen[-1]
        # an unknown job: the new envelope's 404
        _assert_envelope(r, api.get(_path(reading, id=r.prefix + "nope")), 404)
        # a failed job reads in the new words too
        failing = api.post(creating.path, json=_submit_body(c, r, creating),
                           headers={"X-Mock-Fault": "generation_failure", "X-Mock-Timing": "queued=0, in_progress=0"})
        fid = failing.json().get("id") or failing.json().get("request_id")
        assert api.get(_path(reading, id=fid)).json()["status"] == c.status_value("failed")


# -- the main job passes against each --------------------------------------------------------------------
def _main_job(name: str):
    from conformance import checks as registry
    from conformance.context import RunConfig
    from conformance.runner import execute
    from conformance.target import open_target

    target = open_target([name], speed=10.0, seed=7)
    try:
        if target.receiver is not None and name in target.project_webhooks:
            # CONFORMANCE_HARD_CODES[-1]: the suite configures project webhooks only for "openai"
            target.embedded.state.config.openai_webhook_url = target.receiver.project_url(name)
        config = RunConfig(providers=[name], checks=registry.select(None), seed=7, examples=6, negative_examples=3,
                           unknown_examples=2, lifecycle_runs=1, lifecycle_steps=6)
        return execute(config, target)
    finally:
        target.close()


@pytest.fixture(scope="module")
def main_jobs(new_specs):
    """The main job's results for each new provider and for the provider it was made from."""
    return {name: _main_job(name) for name in [*BY_NAME, *(r.source for r in RECIPES)]}


@pytest.mark.parametrize("name", list(BY_NAME))
def test_the_main_job_passes_against_the_new_provider(main_jobs, name):
    r = BY_NAME[name]
    results = main_jobs[name]
    failures = [(o.check, [f.message[:300] for f in o.failures[:2]]) for o in results.outcomes() if o.failed]
    assert results.ok and not results.suite_errors, (failures, results.suite_errors)
    # judged like the original: every check that passes against the source provider passes against its copy
    passed = {o.check for o in results.outcomes() if o.status == "passed"}
    original = {o.check for o in main_jobs[r.source].outcomes() if o.status == "passed"}
    missing = original - passed
    assert not missing, [(o.check, o.status, o.skip_reason) for o in results.outcomes() if o.check in missing]


@pytest.mark.parametrize("name", [r.new for r in RECIPES if r.checks_reading_renamed])
def test_renamed_job_fields_are_judged(main_jobs, name):
    results = main_jobs[name]
    for check in BY_NAME[name].checks_reading_renamed:
        outcome = results.outcome(name, check)
        assert outcome.passed > 0, (check, outcome.status, outcome.skip_reason)
