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

    meta = case.meta
    data = meta.phase.data if meta is not None else None
    if (isinstance(data, CoveragePhaseData) and data.scenario == CoverageScenario.OBJECT_UNEXPECTED_PROPERTIES
            and data.parameter_location == ParameterLocation.QUERY
            and all(not c.mode.is_negative for loc, c in meta.components.items() if loc != ParameterLocation.QUERY)):
        return None
    return _builtin_negative_data_rejection(ctx, response, case)


#: The admin API's documented 400s for schema-valid bodies (specs/mockadmin/openapi.yaml, addFaults and
#: seedVideo): a fault target, or a seeded length or size, that the *served* provider's contract does not have.
#: The admin contract cannot enumerate these (they depend on which providers the server serves).
ADMIN_CONTRACT_400 = {("addFaults", "fault operation "), ("seedVideo", " contract (allowed: ")}


def positive_data_acceptance(ctx, response, case):
    """schemathesis' ``positive_data_acceptance``, minus the admin API's documented 400s of
    :data:`ADMIN_CONTRACT_400` (checked by message, so any other 400 of a schema-valid request still fails)."""
    if response.status_code == 400 and case.operation.schema.raw_schema["servers"][0]["url"] == ADMIN_SERVER:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = ""
        op_id = case.operation.definition.raw.get("operationId")
        if any(op_id == op and needle in message for op, needle in ADMIN_CONTRACT_400):
            return None
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
