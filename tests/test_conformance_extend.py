"""The extension checks (``extend_lineage``, ``extend_duration``) against the mock behind a corrupting proxy:
a clean proxy passes them; an extension that forgets its source, or declares only its own segment instead of
the stitched total, fails the right one. A contract without an extend operation skips them with the reason."""

from __future__ import annotations

import json

import pytest
from test_conformance_broken import _json, _video_objects, run_against

CHECKS = ["extend_lineage", "extend_duration"]


def _extensions(fn):
    """Corruption: apply ``fn(obj)`` to every video object that an extension request created (its id learnt
    from the answer to ``POST .../videos/extensions``), in every later answer too."""

    def corrupt(proxy, request, status, headers, data):
        doc = _json(data)
        if doc is None or request.path.startswith("/__mock"):
            return status, headers, data
        ids = proxy.state.setdefault("extensions", set())
        if request.method == "POST" and request.path.endswith("/videos/extensions") and status == 200:
            ids.add(doc.get("id"))
        for obj in _video_objects(doc):
            if obj.get("id") in ids:
                fn(obj)
        return status, headers, json.dumps(doc).encode()

    return corrupt


def _forget_source(obj):
    obj["remixed_from_video_id"] = None


def _segment_only(obj):
    obj["seconds"] = "4"  # the extension's own segment, not the stitched total (source + extension >= 8)


def test_clean_extensions_pass_both_checks():
    results = run_against("openai", None, CHECKS)
    for check in CHECKS:
        o = results.outcome("openai", check)
        assert o is not None and o.failed == 0 and o.passed > 0, (check, o and o.failures[:1])


@pytest.mark.parametrize(("corrupt", "check", "words"), [
    (_extensions(_forget_source), "extend_lineage", "remixed_from is None"),
    (_extensions(_segment_only), "extend_duration", "the job declares 4 s"),
], ids=["lineage lost", "seconds not stitched"])
def test_a_broken_extension_fails_the_right_check(corrupt, check, words):
    results = run_against("openai", corrupt, CHECKS)
    o = results.outcome("openai", check)
    assert o is not None and o.failed > 0, [(x.check, x.status) for x in results.outcomes()]
    assert words in o.failures[0].message
    other = next(c for c in CHECKS if c != check)
    assert results.outcome("openai", other).failed == 0


def test_a_contract_without_extend_skips_the_checks_with_the_reason():
    results = run_against("gptge", None, CHECKS)
    for check in CHECKS:
        o = results.outcome("gptge", check)
        assert o.passed == 0 and o.failed == 0
        assert "no extend operation" in (o.skip_reason or ""), o
