"""JSON pointers (RFC 6901) and local ``$ref`` resolution: the one implementation both tools use.

Two kinds of pointer appear in this project:

- *document pointers* locate a node of a contract document, written as URI fragments: ``#/components/schemas/Video``
  (:func:`pointer` builds one, :func:`resolve_pointer` reads one and raises when it is absent);
- *body pointers* locate a field of a request or response body: ``/video/id`` (:func:`get_pointer` reads one
  and never raises, :func:`set_pointer` writes one).

``$ref`` chains are followed by :func:`deref` (node in, node out), :func:`deref_pointer` (pointer in, node and
pointer out) and :func:`ref_chain` (every node on the way). Only local references (``#...``) are followed;
vendored contracts hold no other kind (``specs.validate.unresolved_refs`` reports them).

A ``$ref`` with sibling keywords (``{"$ref": ..., "description": ...}``) is treated according to ``siblings``:

``"ignore"`` (default)  follow the reference and drop the siblings (OpenAPI 3.0 reading);
``"merge"``             follow it and lay the siblings over the target (OpenAPI 3.1 reading, one level);
``"stop"``              do not follow it (the caller merges it itself, e.g. a schema flattener).

Nothing here imports the rest of the project.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

Siblings = Literal["ignore", "merge", "stop"]

#: How many references a chain may hold before following stops (a cycle of ``$ref`` cannot hang a caller).
MAX_DEPTH = 32


def escape(token: Any) -> str:
    """One raw token (``"a/b~c"``) as a pointer token (``"a~1b~0c"``)."""
    return str(token).replace("~", "~0").replace("/", "~1")


def unescape(token: str) -> str:
    """One pointer token (``"a~1b~0c"``) as the raw key (``"a/b~c"``)."""
    return token.replace("~1", "/").replace("~0", "~")


def pointer(*tokens: Any) -> str:
    """A document pointer (``#/paths/~1videos/post``) from raw tokens (``"paths", "/videos", "post"``)."""
    return "#/" + "/".join(escape(t) for t in tokens)


def tokens(ptr: str) -> list[str]:
    """The raw tokens of a pointer, with or without the leading ``#`` (``"#/a/b~1c"`` -> ``["a", "b/c"]``);
    ``"#"``, ``"#/"``, ``"/"`` and ``""`` name the whole document (``[]``)."""
    text = ptr[1:] if ptr.startswith("#") else ptr
    if text in ("", "/"):
        return []
    return [unescape(t) for t in text[1:].split("/")] if text.startswith("/") else [unescape(t) for t in text.split("/")]


def resolve_pointer(doc: Any, ptr: str) -> Any:
    """The node of ``doc`` a document pointer (``#/components/schemas/Video``) names.

    Args:
        doc: a parsed JSON/YAML document (dicts and lists).
        ptr: a pointer with or without the leading ``#``.

    Raises:
        KeyError: the pointer names nothing in ``doc`` (a missing key, a list index out of range or not a
            number, or a step into a scalar). ``str(err)`` is the pointer.
    """
    node = doc
    for token in tokens(ptr):
        if isinstance(node, list):
            if not token.isdigit() or int(token) >= len(node):
                raise KeyError(ptr)
            node = node[int(token)]
        elif isinstance(node, dict) and token in node:
            node = node[token]
        else:
            raise KeyError(ptr)
    return node


def get_pointer(body: Any, ptr: str) -> Any:
    """The value at a body pointer (``/video/id``) of a parsed request or response body, or None when absent.

    Form bodies whose nested fields arrive flattened (``video[id]``, as the openai SDK sends them) are
    understood too. Empty tokens are skipped (``/a//b`` reads ``/a/b``). Unlike :func:`resolve_pointer` it
    never raises.
    """
    toks = [t for t in tokens(ptr) if t]
    if isinstance(body, dict) and len(toks) > 1:
        flat = toks[0] + "".join(f"[{t}]" for t in toks[1:])
        if flat in body:
            return body[flat]
    node = body
    for token in toks:
        if isinstance(node, dict):
            node = node.get(token)
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return None
    return node


def set_pointer(body: dict, ptr: str, value: Any) -> None:
    """Set ``value`` at a body pointer (``/video/id``) of ``body`` in place, creating objects on the way (a
    step that is not an object is replaced by one). A flattened form key that already holds the field
    (``video[id]``) is set instead. Empty tokens are skipped; an empty pointer changes nothing."""
    toks = [t for t in tokens(ptr) if t]
    if not toks:
        return
    if len(toks) > 1:
        flat = toks[0] + "".join(f"[{t}]" for t in toks[1:])
        if flat in body:
            body[flat] = value
            return
    node = body
    for t in toks[:-1]:
        if not isinstance(node.get(t), dict):
            node[t] = {}
        node = node[t]
    node[toks[-1]] = value


def _ref(node: Any, siblings: Siblings) -> str | None:
    """The local reference a node makes (to be followed under ``siblings``), or None."""
    if not isinstance(node, dict):
        return None
    ref = node.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#"):
        return None
    if siblings == "stop" and len(node) > 1:
        return None
    return ref


def deref_pointer(doc: Any, ptr: str, *, siblings: Siblings = "ignore",
                  max_depth: int = MAX_DEPTH) -> tuple[Any, str]:
    """Resolve a document pointer and follow the ``$ref`` chain from there.

    Returns ``(node, pointer of node)``: the first node on the chain that is not a reference (or, after
    ``max_depth`` references, the last one reached). With ``siblings="merge"`` the node is a new dict holding
    the target with the referring node's siblings over it, and the pointer is the target's.

    Raises:
        KeyError: ``ptr`` or a reference on the chain names nothing in ``doc``.
    """
    node = resolve_pointer(doc, ptr)
    for _ in range(max_depth):
        ref = _ref(node, siblings)
        if ref is None:
            break
        target = resolve_pointer(doc, ref)
        if siblings == "merge" and len(node) > 1 and isinstance(target, dict):
            target = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        node, ptr = target, ref
    return node, ptr


def deref(doc: Any, node: Any, *, siblings: Siblings = "ignore", missing: Any = None, strict: bool = False,
          max_depth: int = MAX_DEPTH) -> Any:
    """Follow local ``$ref`` chains from ``node`` (``{"$ref": "#/components/parameters/VideoId"}``) to the
    object they name; a node that is not a reference is returned unchanged.

    Args:
        doc: the document the references point into.
        node: any node (typically taken from ``doc``).
        siblings: what to do with keywords next to ``$ref`` (module docstring).
        missing: returned for a reference that names nothing (``{}`` when None, so ``.get`` still works).
        strict: raise instead of returning ``missing``.
        max_depth: references followed at most (the node reached then is returned).

    Raises:
        KeyError: only with ``strict``, for a reference that names nothing.
    """
    for _ in range(max_depth):
        ref = _ref(node, siblings)
        if ref is None:
            return node
        try:
            target = resolve_pointer(doc, ref)
        except KeyError:
            if strict:
                raise
            return {} if missing is None else missing
        if siblings == "merge" and len(node) > 1 and isinstance(target, dict):
            target = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        node = target
    return node


def ref_chain(doc: Any, node: Any, *, max_depth: int = MAX_DEPTH) -> Iterator[Any]:
    """Every node on a ``$ref`` chain, ``node`` first, then each target in turn (siblings ignored); stops
    at a node that is not a reference, at a reference that names nothing, or after ``max_depth`` steps.
    Use it to read annotations placed anywhere on the way (``x-mock-only`` on a shared response)."""
    yield node
    for _ in range(max_depth):
        ref = _ref(node, "ignore")
        if ref is None:
            return
        try:
            node = resolve_pointer(doc, ref)
        except KeyError:
            return
        yield node


__all__ = ["MAX_DEPTH", "deref", "deref_pointer", "escape", "get_pointer", "pointer", "ref_chain",
           "resolve_pointer", "set_pointer", "tokens", "unescape"]
