"""Credentials: the provider's auth scheme(s), read from provider.yaml ``auth``, never from the provider id.

``auth.header`` names the header (``Authorization``, ``X-Api-Key`` ...); each entry of ``auth.schemes`` is
either a scheme word sent before the key (``Bearer`` -> ``Authorization: Bearer <key>``, ``Key``, ``Token``,
any word) or ``raw``: the bare key with no scheme word.
"""

from __future__ import annotations

from specs import Contract

#: The scheme name of a bare key (no scheme word before it).
RAW = "raw"
_MEMO_SIZE = 1024


class Authenticator:
    """Checks the credentials of requests to one provider.

    Args:
        contract: the provider's contract (``provider.yaml`` ``auth``: ``header`` and ``schemes``).
        required_key: when set (``--api-key``), every other key is rejected.

    Verdicts are memoised per header value in a small bounded table of this instance (clients repeat one
    header; the table belongs to the server that made the instance).
    """

    def __init__(self, contract: Contract, required_key: str | None = None):
        auth = contract.auth
        self.header: str = auth["header"]
        self.schemes: tuple[str, ...] = tuple(auth["schemes"])
        self.required_key = required_key
        forms = [("<key>" if s == RAW else f"{s} <key>") for s in self.schemes]
        self.hint = "expected " + " or ".join(forms)
        self._memo: dict[str | None, tuple[str | None, str | None]] = {}

    def check(self, headers) -> tuple[str | None, str | None]:
        """Check a request's headers (any mapping with ``get``).

        Returns:
            ``(api_key, None)`` when accepted, or ``(None, reason)`` when rejected (a one-line reason for
            the provider's ``unauthorized`` envelope).
        """
        value = headers.get(self.header)
        verdict = self._memo.get(value)
        if verdict is None:
            verdict = self._check(value)
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            self._memo[value] = verdict
        return verdict

    def _check(self, value: str | None) -> tuple[str | None, str | None]:
        if value is None or not value.strip():
            return None, f"missing credentials: send the {self.header} header ({self.hint})"
        value = value.strip()
        scheme, _, rest = value.partition(" ")
        if rest.strip():
            if scheme not in self.schemes or scheme == RAW:
                return None, f"{scheme} credentials are not accepted here ({self.hint})"
            key = rest.strip()
        elif RAW in self.schemes:
            key = value
        else:
            return None, f"malformed {self.header} header ({self.hint})"
        if self.required_key is not None and key != self.required_key:
            return None, "invalid API key"
        return key, None


__all__ = ["RAW", "Authenticator"]
