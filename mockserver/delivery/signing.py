"""Webhook signing schemes: one row per algorithm; which one a provider uses, and its header names, is
provider.yaml ``mock.webhook.signing`` (``{scheme: ..., <options>}``).

======================= ==================================================================================
scheme                  headers
======================= ==================================================================================
``standard_webhooks``   ``webhook-id``, ``webhook-timestamp``, ``webhook-signature: v1,<base64 HMAC-SHA256 of
                        "{id}.{timestamp}.{body}">`` with the base64 key after ``whsec_`` (Standard Webhooks, as
                        ``openai`` 3.57.0 ``lib/_webhooks.py`` verifies it). Secret: ``MockConfig.openai_webhook_secret``.
``hmac_sha256_hex``     ``<timestamp_header>: <unix s>`` and ``<signature_header>: <hex HMAC-SHA256 of
                        "{timestamp}.{body}">`` (aigateway: ``aig-timestamp`` / ``aig-signature``, reference/
                        protocols.md §4). Secret: ``MockConfig.aigateway_webhook_secret``.
======================= ==================================================================================

No ``signing`` (fal, sunra: unconfirmed in reference/protocols.md): deliveries are unsigned.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from typing import Any


def sign_standard_webhook(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<sig>`` for the Standard Webhooks scheme used by OpenAI (``whsec_`` base64 secret)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def sign_hex(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"{timestamp}.{body}"`` (aigateway's ``aig-signature``)."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def _standard(spec: dict, secret: str, delivery_id: int, timestamp: int, body: bytes) -> dict[str, str]:
    msg_id = f"wh_{delivery_id:08d}"
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": sign_standard_webhook(secret, msg_id, timestamp, body)}


def _hmac_hex(spec: dict, secret: str, delivery_id: int, timestamp: int, body: bytes) -> dict[str, str]:
    return {spec["timestamp_header"]: str(timestamp), spec["signature_header"]: sign_hex(secret, timestamp, body)}


#: scheme -> (headers function ``(spec, secret, delivery id, unix timestamp, body) -> headers``, the
#: ``MockConfig`` attribute holding the secret, the options the spec must give).
SCHEMES: dict[str, tuple[Callable[..., dict[str, str]], str, tuple[str, ...]]] = {
    "standard_webhooks": (_standard, "openai_webhook_secret", ()),
    "hmac_sha256_hex": (_hmac_hex, "aigateway_webhook_secret", ("timestamp_header", "signature_header")),
}


def check_signing(spec: Any, where: str) -> None:
    """Check a provider.yaml ``signing`` spec (None: unsigned).

    Raises:
        ValueError: an unknown scheme or a missing option (one line naming ``where``).
    """
    if spec is None:
        return
    if not isinstance(spec, dict) or spec.get("scheme") not in SCHEMES:
        raise ValueError(f"{where}: signing scheme must be one of {', '.join(SCHEMES)}")
    missing = [o for o in SCHEMES[spec["scheme"]][2] if not isinstance(spec.get(o), str)]
    if missing:
        raise ValueError(f"{where}: signing scheme {spec['scheme']} needs {', '.join(missing)}")


def signature_headers(spec: dict | None, config: Any, delivery_id: int, timestamp: int,
                      body: bytes) -> dict[str, str]:
    """The signature headers of one delivery attempt (empty when ``spec`` is None).

    Args:
        spec: provider.yaml ``mock.webhook.signing`` (checked by :func:`check_signing`) or None.
        config: the server's :class:`mockserver.config.MockConfig` (holds the secrets).
        delivery_id: the delivery's id (Standard Webhooks ``webhook-id``).
        timestamp: real unix seconds (receivers compare it with their own clock).
        body: the exact bytes sent.
    """
    if not spec:
        return {}
    headers_of, secret_attr, _ = SCHEMES[spec["scheme"]]
    return headers_of(spec, getattr(config, secret_attr), delivery_id, timestamp, body)


__all__ = ["SCHEMES", "check_signing", "sign_hex", "sign_standard_webhook", "signature_headers"]
