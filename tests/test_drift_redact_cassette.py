"""Redaction rules, the cassette format and the httpx recorder (no server needed: httpx.MockTransport)."""

from __future__ import annotations

import gzip
import hashlib
import json

import httpx
import pytest

from conformance.drift.recorder import Recorder
from conformance.drift.redact import REDACTED, Redactor
from specs.cassette import Cassette, CassetteError, encode_body


def test_headers_credentials_are_redacted_and_other_headers_kept():
    r = Redactor()
    out = r.headers([("Authorization", "Key abc123:def456"), ("X-API-Key", "zzz999yyy"), ("Cookie", "s=1"),
                     ("Content-Type", "application/json"), ("X-Fal-Request-Id", "r-1")])
    assert out["authorization"] == REDACTED
    assert out["x-api-key"] == REDACTED
    assert out["cookie"] == REDACTED
    assert out["content-type"] == "application/json"
    assert out["x-fal-request-id"] == "r-1"


def test_url_secret_query_values_and_signed_urls():
    r = Redactor()
    assert r.url("https://h/x?api_key=s3cr3t-value&limit=2") == f"https://h/x?api_key={REDACTED}&limit=2"
    signed = r.url("https://cdn.example/v.mp4?X-Amz-Credential=AKIA1&X-Amz-Expires=60&X-Amz-Signature=abcd1234ef")
    assert "AKIA1" not in signed and "abcd1234ef" not in signed and "60" not in signed.split("?")[1]
    assert signed.startswith("https://cdn.example/v.mp4?")
    assert r.url("https://user:pw@h/p") == f"https://{REDACTED}@h/p"
    assert r.url("https://h/videos/video_1?limit=2") == "https://h/videos/video_1?limit=2"


def test_body_fields_by_name_and_learnt_values():
    r = Redactor()
    data = r.data({"prompt": "a key scene", "api_key": "k-98765abc", "nested": {"access_token": "t0k3n-xyz"},
                   "max_tokens": 12, "echo": "you sent k-98765abc"})
    assert data["api_key"] == REDACTED and data["nested"]["access_token"] == REDACTED
    assert data["prompt"] == "a key scene" and data["max_tokens"] == 12
    # a value redacted by name is learnt: later echoes of it are scrubbed too
    assert "k-98765abc" not in r.text("error: invalid key k-98765abc")
    assert "k-98765abc" not in json.dumps(data)


def test_known_secrets_and_key_shapes_in_text():
    r = Redactor(["sk-canary-0123456789"])
    text = r.text("got sk-canary-0123456789 and sk-canary-0123456789%21 and Bearer abcdef0123456789xyz")
    assert "sk-canary" not in text and "abcdef0123456789xyz" not in text
    assert r.text("The key consideration is pacing") == "The key consideration is pacing"


def test_encode_body_kinds():
    r = Redactor()
    assert encode_body(b"", "application/json", r) == ("empty", None)
    assert encode_body(b'{"a": 1}', "application/json; charset=utf-8", r) == ("json", {"a": 1})
    assert encode_body(b"data: {}\n\n", "text/event-stream", r) == ("text", "data: {}\n\n")
    assert encode_body(b"a=1&token=zz99xx88", "application/x-www-form-urlencoded", r) == (
        "form", {"a": "1", "token": REDACTED})
    blob = bytes(range(256)) * 4
    enc, summary = encode_body(blob, "video/mp4", r)
    assert enc == "binary"
    assert summary == {"content_type": "video/mp4", "length": 1024, "sha256": hashlib.sha256(blob).hexdigest()}
    body = (b"--B\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nhi\r\n"
            b"--B\r\nContent-Disposition: form-data; name=\"api_key\"\r\n\r\nmp-secret-1234\r\n"
            b"--B\r\nContent-Disposition: form-data; name=\"video\"; filename=\"v.mp4\"\r\n"
            b"Content-Type: video/mp4\r\n\r\n\x00\x01\x02\r\n--B--\r\n")
    enc, parts = encode_body(body, "multipart/form-data; boundary=B", r)
    assert enc == "multipart"
    assert parts["prompt"] == "hi" and parts["api_key"] == REDACTED
    assert parts["video"]["binary"]["length"] == 3


def test_recorder_captures_redacts_and_reserves_bodies(tmp_path):
    video = b"\x00\x00\x00\x18ftypmp42" + bytes(2000)

    def app(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/content"):
            return httpx.Response(200, content=video, headers={"Content-Type": "video/mp4"})
        payload = gzip.compress(json.dumps({"id": "video_1", "status": "queued",
                                            "echo": request.headers.get("authorization")}).encode())
        return httpx.Response(200, content=payload, headers={"Content-Type": "application/json",
                                                             "Content-Encoding": "gzip"})

    rec = Recorder(provider="openai", hosts={"api": "https://api.test/v1"}, secrets=["sk-rec-secret-42"],
                   store_binary=True)
    client = httpx.Client(transport=rec.transport(httpx.MockTransport(app)))
    with rec.step("create", expect="success"):
        r1 = client.post("https://api.test/v1/videos", json={"prompt": "x"},
                         headers={"Authorization": "Bearer sk-rec-secret-42"})
    r2 = client.get("https://api.test/v1/videos/video_1/content")
    # the client still sees the real (decoded) answers
    assert r1.json()["id"] == "video_1" and r2.content == video
    path = rec.cassette.save(tmp_path / "c.json")
    text = path.read_text()
    assert "sk-rec-secret-42" not in text
    loaded = Cassette.load(path)
    first, second = loaded.interactions
    assert (first.seq, first.label, first.expect, first.host) == (0, "create", "success", "api")
    assert first.request["body"] == {"prompt": "x"}
    echo = first.response["body"]["echo"]  # the provider echoed the key back: scrubbed
    assert REDACTED in echo and "sk-rec" not in echo
    assert second.response["body_encoding"] == "binary"
    assert second.response["body"]["length"] == len(video)
    assert loaded.blob(second.response["body"]["sha256"]) == video


def test_cassette_load_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CassetteError, match="not valid JSON"):
        Cassette.load(bad)
    bad.write_text('{"cassette_version": 7, "interactions": []}')
    with pytest.raises(CassetteError, match="not a cassette"):
        Cassette.load(bad)
    bad.write_text('{"cassette_version": 1, "interactions": [{"request": {}}]}')
    with pytest.raises(CassetteError, match="interaction 0"):
        Cassette.load(bad)
    with pytest.raises(CassetteError, match="cannot read"):
        Cassette.load(tmp_path / "missing.json")
