"""Stage *delivery*: webhooks. A job whose request (or provider project) names a webhook URL gets its terminal
event POSTed there, signed as provider.yaml ``mock.webhook.signing`` describes (:mod:`.signing`), with retries
(:mod:`.webhooks`). What the event says is rendered by the family adapter from provider.yaml templates.
"""

from .signing import SCHEMES, check_signing, sign_hex, sign_standard_webhook, signature_headers
from .webhooks import Delivery, WebhookDispatcher

__all__ = ["SCHEMES", "Delivery", "WebhookDispatcher", "check_signing", "sign_hex", "sign_standard_webhook",
           "signature_headers"]
