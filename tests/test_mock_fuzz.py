"""Schemathesis against the mock's own contracts: every provider host and the admin API.

For each host (``specs.load(pid).host_document(host_id)``, sent to ``mock.base_url(pid, host_id)``) and
for the admin API (``specs/mockadmin/openapi.yaml``), schemathesis generates positive and negative requests
(examples, coverage and fuzzing phases) and applies its built-in checks: not_a_server_error,
status_code_conformance, content_type_conformance, response_headers_conformance,
response_schema_conformance, negative_data_rejection, positive_data_acceptance, missing_required_header,
unsupported_method, ignored_auth. Requests carry a valid ``Authorization`` header in the provider's
preferred scheme (provider.yaml ``auth``). Any failure is a mock (or contract) bug.

Reproducible: a fixed seed, derandomized generation, no example database. Budget: ``MAX_EXAMPLES`` per
operation and generation mode in the fuzzing phase.

Safety: the fuzzed mocks are started with ``webhook_max_attempts=0``, so fuzzed webhook URLs
(``fal_webhook``, ``webhook``, ``webhook_url``) are never contacted; the admin API is fuzzed on a mock of
its own, because fuzzed fault rules (``hang``, ``reset``) and resets would disturb the provider fuzzing.
"""

from __future__ import annotations

import copy

import pytest
import schemathesis
from mock_contract_support import KEY, auth_header, family_problems
from schemathesis.specs.openapi.checks import negative_data_rejection as _builtin_negative_data_rejection
from schemathesis.specs.openapi.checks import positive_data_acceptance as _builtin_positive_data_acceptance

import specs
from conformance.cases import ensure_media_types
from mockserver.embedded import EmbeddedMock

MAX_EXAMPLES = 12
SEED = 20261122
CONFIG = schemathesis.Config.from_dict({
    "seed": SEED,
    "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none",
                   "with-security-parameters": False},
    "phases": {"stateful": {"enabled": False}},
    "request-timeout": 30,
})

CONTRACTS = specs.load_all()
for _contract in CONTRACTS.values():  # video/* upload parts (createCharacter, extendVideo, edits) get a real MP4
    ensure_media_types(_contract)


def oas_query_defaults(document: dict) -> dict:
    """Make the OpenAPI default ``allowEmptyValue: false`` explicit on every query parameter.

    OAS 3.1 says a query parameter may not be sent with an empty value unless ``allowEmptyValue`` is true;
    openapi-core (the mock's validator) applies that default, schemathesis deliberately does not (it treats
    ``?after=`` as valid for ``type: string``). Spelling the default out lets both read the contract alike;
    it changes nothing the contract allows.
    """
    def fix(param: dict) -> None:
        if isinstance(param, dict) and param.get("in") == "query":
            param.setdefault("allowEmptyValue", False)

    for item in document.get("paths", {}).values():
        for param in item.get("parameters", []):
            fix(param)
        for method in specs.HTTP_METHODS:
            for param in (item.get(method) or {}).get("parameters", []):
                fix(param)
    for param in (document.get("components") or {}).get("parameters", {}).values():
        fix(param)
    return document


TARGETS: dict[str, tuple[str, str] | None] = {}  # server URL -> (provider, host), None for the admin API
SCHEMAS = {}
for _pid, _contract in CONTRACTS.items():
    for _host in _contract.hosts:
        _doc = _contract.host_document(_host["id"])
        TARGETS[_doc["servers"][0]["url"]] = (_pid, _host["id"])
        SCHEMAS[f"{_pid}-{_host['id']}"] = schemathesis.openapi.from_dict(oas_query_defaults(_doc), config=CONFIG)
_ADMIN = oas_query_defaults(copy.deepcopy(specs.load_admin()))
ADMIN_SERVER = _ADMIN["servers"][0]["url"]
TARGETS[ADMIN_SERVER] = None
SCHEMAS["mockadmin"] = schemathesis.openapi.from_dict(_ADMIN, config=CONFIG)


def negative_data_rejection(ctx, response, case):
    """schemathesis' ``negative_data_rejection``, minus one false positive of schemathesis 4.32.5.

    Its coverage phase adds an undeclared query parameter to an otherwise valid query
    (``?limit=0&x-schemathesis-unknown-property=42``) and exempts the case only when the declared values
    validate; but it validates the wire strings (``"0"``) against ``type: integer`` and so reports the
    mock's 200 as "schema-violating request accepted". The contracts say nothing about undeclared query
    parameters (providers ignore them), so such a case is left to the other checks. Every other negative
    case, including undeclared body fields, goes to the built-in check unchanged.
    """
    from schemathesis.core.parameters import ParameterLocation
    from schemathesis.generation.meta import CoveragePhaseData, CoverageScenario

    if 200 <= response.status_code < 300 and _form_validity(case, response) is True:
        return None
    meta = case.meta
    data = meta.phase.data if meta is not None else None
    if (isinstance(data, CoveragePhaseData) and data.scenario == CoverageScenario.OBJECT_UNEXPECTED_PROPERTIES
            and data.parameter_location == ParameterLocation.QUERY
            and all(not c.mode.is_negative for loc, c in meta.components.items() if loc != ParameterLocation.QUERY)):
        return None
    return _builtin_negative_data_rejection(ctx, response, case)


def _form_validity(case, response) -> bool | None:
    """For a case sent as ``multipart/form-data``: does the body the mock received validate against the
    operation's schema (None: not a form, or it cannot be read)? A form carries only text and bytes, so a
    "negative" ``false`` file part arrives as a valid upload (schemathesis judges the value before
    serialization; the conformance suite makes the same exemption in ``conformance.cases``), and the coverage
    phase's "multipart body with custom encoding" sends ``""`` for every other field, which a ``minLength: 1``
    prompt refuses. Text parts are read as the mock reads them, file parts as bytes."""
    from conformance.cases import _coerce_form_value
    from conformance.schema import errors, properties
    from mockserver.validation import multipart_parts
    from specs.pointers import deref_pointer, pointer

    request = response.request
    ctype = request.headers.get("Content-Type", "")
    if not ctype.startswith("multipart/form-data") or not isinstance(request.body, bytes | bytearray):
        return None
    doc = case.operation.schema.raw_schema
    try:
        _, body_ptr = deref_pointer(doc, pointer("paths", case.operation.path, case.method.lower(), "requestBody"))
        ptr = body_ptr + "/content/multipart~1form-data/schema"
        props = properties(doc, deref_pointer(doc, ptr)[0])
        parts = multipart_parts(bytes(request.body), ctype)
    except (KeyError, TypeError, ValueError):
        return None
    seen: dict[str, object] = {}
    for part in parts:
        if part.name in seen:  # repeated: an array where the schemas here declare none
            return False
        seen[part.name] = (part.data.decode("latin-1") if part.filename
                           else _coerce_form_value(doc, props.get(part.name), part.data.decode("utf-8", "replace")))
    return not errors(doc, ptr, seen)


#: The admin API's documented 400s for schema-valid bodies (specs/mockadmin/openapi.yaml, addFaults and
#: seedVideo): a fault target, or a seeded length or size, that the *served* provider's contract does not have.
#: The admin contract cannot enumerate these (they depend on which providers the server serves).
ADMIN_CONTRACT_400 = {("addFaults", "fault operation "), ("seedVideo", " contract (allowed: ")}


def positive_data_acceptance(ctx, response, case):
    """schemathesis' ``positive_data_acceptance``, minus the admin API's documented 400s of
    :data:`ADMIN_CONTRACT_400` (checked by message, so any other 400 of a schema-valid request still fails) and
    minus form bodies that are not valid once serialized (:func:`_form_validity`)."""
    if response.status_code == 400 and case.operation.schema.raw_schema["servers"][0]["url"] == ADMIN_SERVER:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = ""
        op_id = case.operation.definition.raw.get("operationId")
        if any(op_id == op and needle in message for op, needle in ADMIN_CONTRACT_400):
            return None
    if 400 <= response.status_code < 500 and _form_validity(case, response) is False:
        return None  # not a valid request once serialized as a form (see _form_validity)
    return _builtin_positive_data_acceptance(ctx, response, case)


PROBLEMS = family_problems()  # providers whose family adapter is missing: their cases fail, never skip


@pytest.fixture(scope="module")
def provider_mock():
    # A fast system clock: blocking operations (fal.run, onerouter) finish in milliseconds.
    working = [pid for pid in CONTRACTS if pid not in PROBLEMS]
    with EmbeddedMock(providers=working, clock="system", speed=2000, api_key=KEY, seed=3,
                      webhook_max_attempts=0) as m:
        yield m


@pytest.fixture(scope="module")
def admin_mock():
    with EmbeddedMock(providers=["openai", "fal"], clock="manual", seed=4, webhook_max_attempts=0) as m:
        yield m


@schemathesis.pytest.parametrize(**SCHEMAS)
def test_fuzz(case, provider_mock, admin_mock):
    target = TARGETS[case.operation.schema.raw_schema["servers"][0]["url"]]
    checks = {"excluded_checks": [_builtin_negative_data_rejection, _builtin_positive_data_acceptance],
              "additional_checks": [negative_data_rejection, positive_data_acceptance]}
    if target is None:
        case.call_and_validate(base_url=admin_mock.url, **checks)
        return
    pid, host = target
    if pid in PROBLEMS:
        pytest.fail(PROBLEMS[pid])
    case.call_and_validate(base_url=provider_mock.base_url(pid, host), headers=auth_header(CONTRACTS[pid]),
                           **checks)
