"""fal-client 1.0.3 flows, run in a child process by tests/test_mock_fal.py.

This is recipe A of :mod:`mockserver.sdk_recipes`: the parent starts ``EmbeddedMock(tls=True)`` and sets
``FAL_QUEUE_RUN_HOST=127.0.0.1:PORT/fal``, ``FAL_RUN_HOST=127.0.0.1:PORT/fal-run``, ``SSL_CERT_FILE`` (the
mock's CA) and ``FAL_KEY`` in this process's environment *before* it starts, so the unmodified SDK reads them
at import exactly as in a user's program.

Usage: ``python tests/fal_sdk_flows.py FLOW ARGS_JSON`` where ARGS_JSON holds ``admin`` (the mock's
``/__mock`` URL) and flow options. Prints one JSON line ``{"result": ..., "records": [...], "seconds": s}``; ``records``
are the SDK's HTTP responses (method, URL, headers, base64 body), which the parent checks against the
contract. The only addition to the SDK is an httpx response hook that records; nothing is patched.
"""

from __future__ import annotations

import base64
import json
import ssl
import sys
import threading
import time
import urllib.request
from typing import Any

import fal_client
import httpx

T2V = "fal-ai/sora-2/text-to-video"
REMIX = "fal-ai/sora-2/video-to-video/remix"
RECORDS: list[dict] = []
ARGS: dict[str, Any] = {}


def record_hook(response: httpx.Response) -> None:
    """httpx response hook: keep a JSON-ready copy of every response the SDK receives."""
    response.read()
    req = response.request
    RECORDS.append({"method": req.method, "url": str(req.url), "request_headers": dict(req.headers),
                    "status": response.status_code, "headers": list(response.headers.multi_items()),
                    "body": base64.b64encode(response.content).decode()})


def admin(method: str, path: str, body: Any = None) -> Any:
    """Call the mock's admin API (its CA comes from SSL_CERT_FILE, like the SDK's)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{ARGS['admin']}/{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10, context=ssl.create_default_context()) as resp:
        return json.loads(resp.read() or b"null")


def advance(seconds: float) -> None:
    admin("POST", "clock/advance", {"seconds": seconds})


def status_json(s: fal_client.Status) -> dict:
    if isinstance(s, fal_client.Queued):
        return {"type": "Queued", "position": s.position}
    if isinstance(s, fal_client.InProgress):
        return {"type": "InProgress", "logs": s.logs}
    return {"type": "Completed", "logs": s.logs, "metrics": s.metrics, "error": s.error, "error_type": s.error_type}


def error_json(exc: fal_client.FalClientHTTPError) -> dict:
    return {"status": exc.status_code, "message": exc.message, "error_type": exc.error_type}


def catch(fn, *args, **kwargs) -> dict:
    """``{"ok": value}`` or ``{"error": {status, message, error_type}}`` of a fal-client call."""
    try:
        return {"ok": fn(*args, **kwargs)}
    except fal_client.FalClientHTTPError as exc:
        return {"error": error_json(exc)}


def driver(updates: list[dict]):
    """An ``on_queue_update`` callback that records each update and moves the manual clock on: past the
    queue wait when Queued, by 1 s (half of the 2 s generation) when InProgress."""

    def on_update(s: fal_client.Status) -> None:
        updates.append(status_json(s))
        if isinstance(s, fal_client.Queued):
            advance(0.5)
        elif isinstance(s, fal_client.InProgress):
            advance(1.0)

    return on_update


class Ticker:
    """Advance the manual clock by ``step`` seconds every 20 ms while a blocking call runs."""

    def __init__(self, step: float = 0.5):
        self.step = step
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.wait(0.02):
            advance(self.step)

    def __enter__(self) -> Ticker:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(5)


# -- flows -------------------------------------------------------------------------------------------------
def flow_subscribe_remix() -> dict:
    updates: list[dict] = []
    ids: list[str] = []
    t2v = fal_client.subscribe(T2V, arguments={"prompt": "a cat on a windowsill", "duration": 8,
                                               "aspect_ratio": "16:9", "delete_video": False},
                               with_logs=True, on_queue_update=driver(updates), on_enqueue=ids.append, interval=0.01)
    marker = len(updates)
    remix = fal_client.subscribe(REMIX, arguments={"video_id": t2v["video_id"], "prompt": "the cat turns purple"},
                                 with_logs=True, on_queue_update=driver(updates), on_enqueue=ids.append,
                                 interval=0.01)
    return {"t2v": t2v, "remix": remix, "updates": updates[:marker], "remix_updates": updates[marker:],
            "request_ids": ids}


def flow_submit_status_result_cancel() -> dict:
    handles = [fal_client.submit(T2V, {"prompt": f"lighthouse {i}", "delete_video": False}) for i in range(3)]
    first, _, last = handles
    out: dict[str, Any] = {"request_ids": [h.request_id for h in handles]}
    out["queued"] = [status_json(fal_client.status(T2V, h.request_id)) for h in handles]
    advance(0.25)
    out["last_after_quarter"] = status_json(fal_client.status(T2V, last.request_id))
    out["cancel_queued"] = catch(fal_client.cancel, T2V, last.request_id)
    out["cancelled_status"] = status_json(last.status(with_logs=True))
    out["cancelled_result"] = catch(fal_client.result, T2V, last.request_id)
    advance(0.25)
    out["running_with_logs"] = status_json(fal_client.status(T2V, first.request_id, with_logs=True))
    out["running_without_logs"] = status_json(first.status(with_logs=False))
    advance(2.0)
    out["completed"] = status_json(first.status(with_logs=True))
    out["result"] = catch(fal_client.result, T2V, first.request_id)
    out["handle_get"] = handles[1].get()
    out["cancel_completed"] = catch(fal_client.cancel, T2V, first.request_id)
    return out


def flow_run() -> dict:
    with Ticker():
        t2v = fal_client.run(T2V, {"prompt": "a red kite", "aspect_ratio": "9:16", "duration": 4,
                                   "delete_video": False})
        remix = fal_client.run(REMIX, {"video_id": t2v["video_id"], "prompt": "the kite is green",
                                       "delete_video": False})
    return {"t2v": t2v, "remix": remix}


def flow_delete_video() -> dict:
    updates: list[dict] = []
    ids: list[str] = []
    kept = fal_client.subscribe(T2V, arguments={"prompt": "kept", "delete_video": False},
                                on_queue_update=driver(updates), on_enqueue=ids.append, interval=0.01)
    deleted = fal_client.subscribe(T2V, arguments={"prompt": "deleted by default"},
                                   on_queue_update=driver(updates), interval=0.01)
    return {
        "deleted_video_id": deleted["video_id"],
        "remix_deleted": catch(fal_client.submit, REMIX, {"video_id": deleted["video_id"], "prompt": "again"}),
        "remix_by_request_id": catch(fal_client.submit, REMIX, {"video_id": ids[0], "prompt": "again"}),
        "remix_kept": catch(lambda: fal_client.submit(REMIX, {"video_id": kept["video_id"], "prompt": "ok"}).request_id),
    }


def flow_unknown() -> dict:
    rid = "00000000-0000-4000-8000-000000000000"
    return {"status": catch(fal_client.status, T2V, rid), "result": catch(fal_client.result, T2V, rid),
            "cancel": catch(fal_client.cancel, T2V, rid),
            "remix": catch(fal_client.submit, REMIX, {"video_id": "video_123", "prompt": "x"})}


def flow_failure() -> dict:
    updates: list[dict] = []
    headers = {"X-Mock-Fault": ARGS["header"]} if ARGS.get("header") else {}
    got = catch(fal_client.subscribe, T2V, arguments={"prompt": "something the checker flags"}, headers=headers,
                with_logs=True, on_queue_update=driver(updates), interval=0.01)
    return {"subscribe": got, "updates": updates}


def flow_webhook() -> dict:
    handle = fal_client.submit(T2V, {"prompt": "webhook me", "delete_video": False}, webhook_url=ARGS["hook"])
    advance(3.0)
    return {"request_id": handle.request_id, "result": fal_client.result(T2V, handle.request_id)}


FLOWS = {name[5:]: fn for name, fn in globals().items() if name.startswith("flow_")}


def main() -> None:
    ARGS.update(json.loads(sys.argv[2]) if len(sys.argv) > 2 else {})
    fal_client.sync_client._client.event_hooks["response"].append(record_hook)  # noqa: SLF001 - record only
    started = time.monotonic()
    result = FLOWS[sys.argv[1]]()
    print(json.dumps({"result": result, "records": RECORDS, "seconds": time.monotonic() - started}))


if __name__ == "__main__":
    main()
