"""Routes of a plain OpenAPI document (one server, paths as they are served): the admin API's contract."""

from __future__ import annotations

from typing import NamedTuple

from specs import HTTP_METHODS


class DocumentRoute(NamedTuple):
    """One operation of a document: ``METHOD`` (upper case), the path template, the operation object."""

    method: str
    path: str
    operation: dict


def routes_of(document: dict) -> list[DocumentRoute]:
    """Every operation of ``document`` as a route, in document order.

    Raises:
        ValueError: an operation without an ``operationId`` (a route needs a name to bind its handler).
    """
    out = []
    for path, item in (document.get("paths") or {}).items():
        for method in HTTP_METHODS:
            op = (item or {}).get(method)
            if not isinstance(op, dict):
                continue
            if not op.get("operationId"):
                raise ValueError(f"{method.upper()} {path}: no operationId")
            out.append(DocumentRoute(method.upper(), path, op))
    return out


def allowed_methods(routes: list[DocumentRoute], path: str) -> list[str]:
    """The methods a path answers (``HEAD`` with ``GET``), sorted: the ``Allow`` header of its 405."""
    methods: set[str] = {r.method for r in routes if r.path == path}
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


__all__ = ["DocumentRoute", "allowed_methods", "routes_of"]
