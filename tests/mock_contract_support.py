"""Shared helpers of the mock-vs-contract tests (test_mock_admin/contract/fuzz/bad_requests).

- :class:`AdminChecked` / :class:`HostChecked`: httpx response hooks that validate every response against
  the admin contract (``specs/mockadmin/openapi.yaml``) or a provider host's contract
  (:class:`mockserver.validation.HostValidator`, i.e. openapi-core: status code, headers, body and
  content type). A response outside the contract raises ``AssertionError`` in the test that got it.
- :func:`auth_header`: a valid ``Authorization`` value in a provider's preferred scheme (provider.yaml).
- :func:`schema_errors`: validate a value against a schema of a contract (for bodies of paths the contract
  does not declare, e.g. a 405 on an undeclared method).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

import specs
from mockserver.validation import HostValidator

KEY = "sk-contract-test-key-0123456789"


def auth_header(contract: specs.Contract, key: str = KEY) -> dict[str, str]:
    """``{header: value}`` with ``key`` in the provider's preferred scheme (provider.yaml ``auth``)."""
    auth = contract.auth
    value = key if auth["preferred"] == "raw" else f"{auth['preferred']} {key}"
    return {auth["header"]: value}


class _Req:
    """openapi-core request protocol for an httpx request (path given relative to the server root)."""

    def __init__(self, host_url: str, path: str, request: httpx.Request):
        self.host_url = host_url
        self.path = path
        self.method = request.method.lower()
        self.body = None
        self.content_type = request.headers.get("content-type", "")
        self.parameters = RequestParameters(query=ImmutableMultiDict(list(request.url.params.multi_items())),
                                            header=Headers(list(request.headers.items())))


class _Resp:
    def __init__(self, response: httpx.Response):
        self.status_code = response.status_code
        self.data = response.content
        self.content_type = response.headers.get("content-type", "")
        self.headers = Headers(list(response.headers.items()))


def schema_errors(document: dict, pointer: str, value: Any) -> list[str]:
    """Messages of ``value`` against the schema at ``pointer`` (``#/components/schemas/Error``) of an
    OpenAPI 3.1 ``document`` (local ``$ref`` resolved); empty when valid."""
    import jsonschema
    from referencing import Registry
    from referencing.jsonschema import DRAFT202012

    registry = Registry().with_resource("urn:contract", DRAFT202012.create_resource(document))
    validator = jsonschema.Draft202012Validator({"$ref": "urn:contract" + pointer}, registry=registry)
    return [e.message for e in validator.iter_errors(value)]


class AdminChecked:
    """httpx response hook: every admin response must match ``specs/mockadmin/openapi.yaml``.

    A 405 (an undeclared method on a declared path) is checked against ``components.responses
    .MethodNotAllowed`` (Error body and an ``Allow`` header), since no operation declares it.
    """

    def __init__(self):
        self.document = specs.load_admin()
        self.openapi = OpenAPI.from_dict(self.document)
        server = urlsplit(self.document["servers"][0]["url"])
        self.host_url = f"{server.scheme}://{server.netloc}"
        self.checked: list[tuple[str, str, int]] = []

    def __call__(self, response: httpx.Response) -> None:
        response.read()
        req = response.request
        if response.status_code == 405:
            assert response.headers.get("Allow"), "405 without an Allow header"
            errors = schema_errors(self.document, "#/components/schemas/Error", response.json())
        else:
            errors = [str(e) for e in self.openapi.iter_response_errors(
                _Req(self.host_url, req.url.path, req), _Resp(response))]
        assert not errors, f"{req.method} {req.url.path} -> {response.status_code} is outside the admin " \
                           f"contract: {errors}\n{response.text[:500]}"
        self.checked.append((req.method, req.url.path, response.status_code))


class HostChecked:
    """httpx response hook: every response of a provider host must match its contract (HostValidator).

    ``base_url`` is the mock's base URL of that host; request paths are taken relative to it. A 405 (no
    operation has this method on the path) is checked as the response of the first method in ``Allow``.
    """

    def __init__(self, contract: specs.Contract, host_id: str, base_url: str):
        self.contract = contract
        self.host_id = host_id
        self.validator = HostValidator(contract, host_id)
        self.prefix = urlsplit(base_url).path.rstrip("/")
        self.checked: list[tuple[str, str, int]] = []

    def errors(self, response: httpx.Response) -> list[str]:
        response.read()
        req = response.request
        path = req.url.path.removeprefix(self.prefix)
        method = req.method
        if response.status_code == 405 and response.headers.get("Allow"):
            method = response.headers["Allow"].split(",")[0].strip()
        return self.validator.response_errors(method, path, dict(req.url.params), dict(req.headers),
                                              response.status_code, response.content,
                                              response.headers.get("content-type", ""), dict(response.headers))

    def __call__(self, response: httpx.Response) -> None:
        errors = self.errors(response)
        req = response.request
        assert not errors, (f"{self.contract.id}/{self.host_id}: {req.method} {req.url.path} -> "
                            f"{response.status_code} is outside the contract: {errors}\n{response.text[:500]}")
        self.checked.append((req.method, req.url.path, response.status_code))
