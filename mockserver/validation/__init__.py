"""Stage *request validation*: is a request one the contract accepts, and who sends it.

- :mod:`.auth` -- credentials per provider.yaml ``auth`` (:class:`Authenticator`);
- :mod:`.openapi` -- requests and responses against an OpenAPI document with openapi-core
  (:class:`HostValidator` for a provider host, :class:`DocumentValidator` for any document: the admin API's;
  :class:`BodyValidator`: one operation's JSON body with a compiled JSON Schema validator);
- :mod:`.bodies` -- request bodies (JSON, multipart, urlencoded) parsed for the family adapters.

A request that fails here is answered in the provider's own error envelope (``unauthorized``,
``validation``), never a 500.
"""

from .auth import RAW, Authenticator
from .bodies import (
    MAX_BODY_BYTES,
    MAX_TEXT_BYTES,
    BodyTooLarge,
    check_size,
    form_field_names,
    multipart_parts,
    parse_body,
    parse_json_body,
    text_fields,
)
from .openapi import BodyValidator, DocumentValidator, HostValidator

__all__ = ["MAX_BODY_BYTES", "MAX_TEXT_BYTES", "RAW", "Authenticator", "BodyTooLarge", "BodyValidator",
           "DocumentValidator", "HostValidator", "check_size", "form_field_names", "multipart_parts", "parse_body",
           "parse_json_body", "text_fields"]
