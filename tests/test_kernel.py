"""The contract kernel's mechanics (specs/): pointers and $ref, templates, runtime expressions, ids, the
request-field mapping, mount prefixes and the family table, which both tools read."""

from __future__ import annotations

import random

import pytest

import specs
from specs import expressions as ex
from specs import families, ids, pointers, templates

DOC = {
    "components": {
        "schemas": {
            "A": {"$ref": "#/components/schemas/B"},
            "B": {"type": "object", "x-mark": "b"},
            "C": {"$ref": "#/components/schemas/B", "description": "sibling"},
            "Loop1": {"$ref": "#/components/schemas/Loop2"},
            "Loop2": {"$ref": "#/components/schemas/Loop1"},
            "Broken": {"$ref": "#/components/schemas/Nope"},
            "a/b~c": {"type": "string"},
        },
        "list": [{"v": 1}, {"v": 2}],
    }
}


# -- pointers ----------------------------------------------------------------------------------------------
def test_pointer_round_trip():
    ptr = pointers.pointer("components", "schemas", "a/b~c")
    assert ptr == "#/components/schemas/a~1b~0c"
    assert pointers.tokens(ptr) == ["components", "schemas", "a/b~c"]
    assert pointers.resolve_pointer(DOC, ptr) == {"type": "string"}
    assert pointers.resolve_pointer(DOC, "#") is DOC and pointers.resolve_pointer(DOC, "#/") is DOC
    assert pointers.resolve_pointer(DOC, "/components/list/1") == {"v": 2}


@pytest.mark.parametrize("ptr", ["#/components/nope", "#/components/list/5", "#/components/list/x",
                                 "#/components/schemas/B/type/deeper"])
def test_resolve_pointer_raises_key_error(ptr):
    with pytest.raises(KeyError):
        pointers.resolve_pointer(DOC, ptr)


def test_get_and_set_pointer_on_bodies():
    body = {"video": {"id": "v1"}, "items": [{"x": 1}]}
    assert pointers.get_pointer(body, "/video/id") == "v1"
    assert pointers.get_pointer(body, "/items/0/x") == 1
    assert pointers.get_pointer(body, "/items/9/x") is None
    assert pointers.get_pointer("text", "/a") is None
    assert pointers.get_pointer({"video[id]": "flat"}, "/video/id") == "flat"  # the openai SDK's form fields
    out: dict = {"a": "scalar"}
    pointers.set_pointer(out, "/a/b", 1)
    pointers.set_pointer(out, "/c/d/e", 2)
    assert out == {"a": {"b": 1}, "c": {"d": {"e": 2}}}
    flat = {"video[id]": "old"}
    pointers.set_pointer(flat, "/video/id", "new")
    assert flat == {"video[id]": "new"}
    pointers.set_pointer(flat, "", "ignored")
    assert flat == {"video[id]": "new"}


def test_deref_modes():
    schemas = DOC["components"]["schemas"]
    assert pointers.deref(DOC, schemas["A"]) == {"type": "object", "x-mark": "b"}
    assert pointers.deref(DOC, schemas["C"]) == {"type": "object", "x-mark": "b"}
    assert pointers.deref(DOC, schemas["C"], siblings="merge") == {"type": "object", "x-mark": "b",
                                                                    "description": "sibling"}
    assert pointers.deref(DOC, schemas["C"], siblings="stop") is schemas["C"]
    assert pointers.deref(DOC, schemas["Broken"]) == {}
    assert pointers.deref(DOC, schemas["Broken"], missing=None) == {}
    with pytest.raises(KeyError):
        pointers.deref(DOC, schemas["Broken"], strict=True)
    assert "$ref" in pointers.deref(DOC, schemas["Loop1"])  # a $ref cycle ends, it does not hang
    assert pointers.deref(DOC, {"$ref": "other.yaml#/x"}) == {"$ref": "other.yaml#/x"}  # not local: left alone


def test_deref_pointer_and_ref_chain():
    node, ptr = pointers.deref_pointer(DOC, "#/components/schemas/A")
    assert ptr == "#/components/schemas/B" and node["x-mark"] == "b"
    assert pointers.deref_pointer(DOC, "#/components/schemas/C", siblings="stop")[1] == "#/components/schemas/C"
    with pytest.raises(KeyError):
        pointers.deref_pointer(DOC, "#/components/schemas/Broken")
    chain = list(pointers.ref_chain(DOC, DOC["components"]["schemas"]["A"]))
    assert chain == [{"$ref": "#/components/schemas/B"}, {"type": "object", "x-mark": "b"}]
    assert len(list(pointers.ref_chain(DOC, DOC["components"]["schemas"]["Broken"]))) == 1


def test_validate_keeps_the_pointer_names():
    from specs import validate

    assert validate.get_pointer is pointers.get_pointer and validate.deref is pointers.deref
    assert validate.resolve_pointer is pointers.resolve_pointer and validate.pointer is pointers.pointer


# -- templates ---------------------------------------------------------------------------------------------
def test_fill_replaces_exact_variables_keeping_types():
    tpl = {"n": "$count", "obj": "$obj", "none": "$missing_ok", "text": "cost $count", "keep": "$", "list": ["$count"],
           "$count": "key"}
    out = templates.fill(tpl, {"count": 3, "obj": {"a": [1]}, "missing_ok": None})
    assert out == {"n": 3, "obj": {"a": [1]}, "none": None, "text": "cost $count", "keep": "$", "list": [3],
                   "$count": "key"}
    assert templates.variables(tpl) == {"count", "obj", "missing_ok"}


def test_fill_rejects_unknown_variables():
    with pytest.raises(templates.TemplateError, match=r"\$nope in fal provider.yaml mock"):
        templates.fill({"a": ["$nope"]}, {}, "fal provider.yaml mock")
    with pytest.raises(KeyError):  # TemplateError is a KeyError: callers that caught KeyError still do
        templates.fill("$nope", {})


def test_vars_are_lazy_and_computed_once():
    calls = []
    values = templates.Vars({"a": lambda: calls.append("a") or 1, "b": lambda: calls.append("b") or 2})
    assert templates.fill(["$a", "$a"], values) == [1, 1]
    assert calls == ["a"] and "b" in values and values.get("c") is None


def test_error_templates_use_only_error_variables():
    known = {"message", "type", "code", "param", "status"}
    for c in specs.load_all().values():
        errors = c.provider["errors"]
        assert templates.variables(errors["template"]) <= known, c.id
        for kind, spec in errors["kinds"].items():
            assert templates.variables(spec.get("template")) <= known, (c.id, kind)
            status, _ = c.error_body(kind, "m", "p")
            assert status == spec.get("status", 400)


def test_error_body_with_an_unknown_variable_is_a_spec_error():
    c = specs.load("openai")
    broken = specs.Contract(id="x", openapi=c.openapi, provider={**c.provider, "errors": {
        "template": {"error": "$mesage"}, "kinds": c.provider["errors"]["kinds"]}}, directory=c.directory)
    with pytest.raises(specs.SpecError, match=r"\$mesage"):
        broken.error_body("not_found")


# -- runtime expressions -----------------------------------------------------------------------------------
@pytest.mark.parametrize("text,want", [
    ("{$request.query.fal_webhook}", ("request", "query", "fal_webhook")),
    ("$request.query.a.b", ("request", "query", "a.b")),
    ("{$request.header.X-Hook}", ("request", "header", "X-Hook")),
    ("{$request.body#/webhook_url}", ("request", "body", "/webhook_url")),
    ("$request.path.id", ("request", "path", "id")),
    ("$response.body#/id", ("response", "body", "/id")),
    ("$response.header.Location", ("response", "header", "Location")),
    ("$statusCode", ("", "statusCode", "")),
])
def test_parse_expressions(text, want):
    e = ex.parse(text)
    assert (e.side, e.source, e.name) == want


@pytest.mark.parametrize("text", ["https://example.com/hook", "$request.cookie.x", "$response.query.x",
                                  "{$request.query.}", "$requests.body#/x"])
def test_unsupported_expressions(text):
    with pytest.raises(ex.ExpressionError):
        ex.parse(text)
    assert ex.parse_request_expression(text) is None


def test_parse_request_expression_gives_where_the_url_is():
    assert ex.parse_request_expression("{$request.query.webhook}") == ("query", "webhook")
    assert ex.parse_request_expression("{$request.body#/webhook_url}") == ("body", "/webhook_url")
    assert ex.parse_request_expression("$request.body") == ("body", "/")
    assert ex.parse_request_expression("$response.body#/x") is None


def test_evaluate_and_expand():
    req = ex.Message(query={"fal_webhook": "https://h/q"}, headers={"X-Hook": "https://h/h"},
                     path={"id": "j1"}, body={"webhook_url": "https://h/b", "n": 3}, url="https://api/x",
                     method="POST")
    resp = ex.Message(headers={"location": "/l"}, body={"id": "r1"}, status=201)
    assert ex.evaluate("{$request.query.fal_webhook}", req) == "https://h/q"
    assert ex.evaluate("$request.header.x-hook", req) == "https://h/h"  # header names fold case
    assert ex.evaluate("$request.body#/n", req) == 3
    assert ex.evaluate("$request.body", req) == req.body
    assert ex.evaluate("$request.path.id", req) == "j1"
    assert ex.evaluate("$response.header.Location", req, resp) == "/l"
    assert ex.evaluate("$statusCode", req, resp) == 201 and ex.evaluate("$method", req) == "POST"
    assert ex.evaluate("$request.query.other", req) is None
    assert ex.expand("{$request.body#/webhook_url}/done?id={$response.body#/id}", req, resp) == "https://h/b/done?id=r1"
    assert ex.expand("{$request.query.missing}/x", req) is None
    assert ex.expand("https://plain", req) == "https://plain"


@pytest.mark.parametrize("provider,expected", [("fal", "query"), ("sunra", "query"), ("aigateway", "body")])
def test_callback_url_of_the_contracts(provider, expected):
    c = specs.load(provider)
    op = next(o for o in c.operations() if o.definition.get("callbacks"))
    keys = ex.callback_expressions(c.openapi, op.definition)
    assert keys and ex.parse_request_expression(keys[0])[0] == expected
    where, name = ex.parse_request_expression(keys[0])
    req = ex.Message(query={name: "https://hook"}) if where == "query" else ex.Message(body={"webhook_url": "https://hook"})
    assert ex.callback_url(c.openapi, op.definition, req) == "https://hook"
    assert ex.callback_url(c.openapi, op.definition, ex.Message()) is None
    assert ex.callback_url(c.openapi, op.definition, ex.Message(body={"webhook_url": 5}, query={name: ""})) is None


# -- ids, params, mounts -----------------------------------------------------------------------------------
def test_ids_are_the_engines():
    from mockserver import engine

    assert engine.new_id is ids.new_id and engine.ID_FORMATS is ids.ID_FORMATS
    assert ids.new_id(random.Random(1), "video_", "hex48").startswith("video_")
    with pytest.raises(ValueError):
        ids.new_id(random.Random(1), "", "nope")


def test_params_rules():
    fal = specs.load("fal").params_rules()
    assert fal["seconds"] == {"pointer": "/duration", "default": 4}
    assert fal["prompt"] == specs.DEFAULT_PARAMS["prompt"]
    assert fal["resolution"]["pointer"] == "/resolution"
    fal["seconds"]["default"] = 99  # a fresh copy each time
    assert specs.load("fal").params_rules()["seconds"]["default"] == 4
    assert specs.DEFAULT_PARAMS["seconds"]["default"] == 4
    assert specs.load("openai").params_rules()["size"] == specs.DEFAULT_PARAMS["size"]


def test_mount_prefix():
    openai = specs.load("openai")
    assert openai.mount_prefix("api") == "/openai/v1" == specs.mount_prefix(openai.hosts[0])
    assert specs.mount_prefix(openai.hosts[0], at_root=True) == "/v1"
    assert [specs.load("fal").mount_prefix(h["id"]) for h in specs.load("fal").hosts] == ["/fal", "/fal-run"]


# -- the family table --------------------------------------------------------------------------------------
def test_family_names_match_the_provider_schema():
    schema = specs.read_yaml(specs.SPECS_DIR / "provider.schema.yaml")
    assert set(schema["$defs"]["family"]["enum"]) == set(families.FAMILY_NAMES) == set(specs.FAMILIES)
    with pytest.raises(KeyError, match="unknown protocol family"):
        families.get("carrier_pigeon")


def test_every_host_uses_roles_of_its_family():
    for c in specs.load_all().values():
        for h in c.hosts:
            fam = families.get(h["family"])
            roles = {o.role for o in c.operations() if o.host == h["id"]}
            assert roles <= set(fam.roles), (c.id, h["id"], roles - set(fam.roles))
            for role in roles:
                assert role in families.ROLE_ACTIONS
    for fam in families.TABLE.values():
        for caps in fam.roles.values():
            assert caps <= fam.capabilities <= set(families.CAPABILITIES), fam.name


def test_mock_adapters_are_the_ones_the_table_names():
    from mockserver.families import family_for

    for fam in families.TABLE.values():
        cls = family_for(fam.name)
        assert f"{cls.__module__}.{cls.__qualname__}" == fam.adapter and cls.name == fam.name


def test_conformance_drivers_agree_with_the_table():
    """The table's capabilities are what the drivers offer on every real host (drivers keep their own
    ``capabilities``/``_has_ops_for`` for now; this keeps the two in step)."""
    from conformance.drivers import DRIVERS

    for fam in families.TABLE.values():
        cls = DRIVERS[fam.name]
        assert f"{cls.__module__}.{cls.__qualname__}" == fam.driver
        assert set(cls.capabilities) == set(fam.capabilities), fam.name
    for c in specs.load_all().values():
        for h in c.hosts:
            fam = families.get(h["family"])
            driver = DRIVERS[fam.name].__new__(DRIVERS[fam.name])
            driver.ops = {}
            for op in c.operations():
                if op.host == h["id"]:
                    driver.ops.setdefault(op.role, []).append(op)
            for cap in families.CAPABILITIES:
                assert driver.supports(cap) == fam.supports(cap, driver.ops), (c.id, h["id"], cap)
