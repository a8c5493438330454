"""The template language of provider.yaml: error envelopes (``errors``) and the mock's bodies (``mock``).

A template is JSON-shaped data (dicts, lists, scalars). Rendering (:func:`fill`) returns a deep copy in which
every string that is *exactly* ``$name`` (``name`` of lower-case letters, digits and ``_``, starting with a
letter or ``_``) is replaced by the value of variable ``name``, keeping that value's JSON type (a number
stays a number, an object an object, None becomes null). ``$name?`` is the same, except that when the value
is None the entry is left out (a key of an object, an item of a list) instead of rendered as null. Nothing
else is substituted: no ``$name`` inside a longer string, no keys. A ``$name`` with no variable of that name
is an authoring error of provider.yaml and raises :class:`TemplateError`.

A template *by state* (:func:`by_state`) is an object ``{common: T, <state>: T, ...}``: the template for one
state is ``common`` merged with that state's entry (:func:`merge`: objects merge key by key, recursively; any
other value of the state's entry replaces ``common``'s).

Variables come as a plain mapping (``{"message": "...", "type": "..."}``) or as :class:`Vars`, whose values
are computed on first use (a body template names only some of many variables, and some are costly).

The variables of error envelopes (``Contract.error_body``): ``$message $type $code $param $status``. The
variables of the mock's templates are listed in ``mockserver/rendering/variables.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

VAR = re.compile(r"^\$([a-z_][a-z0-9_]*)(\??)$")
_OMIT = object()


class TemplateError(KeyError):
    """A template names a variable that is not defined. ``str(err)`` is one line naming it."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "template error"


class Vars(Mapping[str, Any]):
    """Lazily computed template variables: ``{name: zero-argument function}``; each is computed once."""

    def __init__(self, fns: Mapping[str, Callable[[], Any]]):
        self._fns = dict(fns)
        self._cache: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._cache:
            self._cache[name] = self._fns[name]()
        return self._cache[name]

    def __contains__(self, name: object) -> bool:
        return name in self._fns

    def __iter__(self) -> Iterator[str]:
        return iter(self._fns)

    def __len__(self) -> int:
        return len(self._fns)


def variable(value: Any) -> str | None:
    """The variable name a template string stands for (``"$message"`` and ``"$message?"`` -> ``"message"``),
    else None."""
    if isinstance(value, str) and value[:1] == "$":
        m = VAR.match(value)
        return m.group(1) if m else None
    return None


def fill(template: Any, values: Mapping[str, Any], where: str = "template") -> Any:
    """Render ``template`` with ``values`` (see the module docstring for the rules).

    Args:
        template: JSON-shaped data from provider.yaml.
        values: variable name (without ``$``) -> value, a plain mapping or :class:`Vars`.
        where: names the template in an error message (``"fal provider.yaml mock.status"``).

    Returns:
        The rendered data (a whole template that is ``$name?`` with a None value renders as None).

    Raises:
        TemplateError: the template names a variable ``values`` does not define.
    """
    out = _fill(template, values, where)
    return None if out is _OMIT else out


def _fill(template: Any, values: Mapping[str, Any], where: str) -> Any:
    if isinstance(template, str):
        if template[:1] != "$":
            return template
        m = VAR.match(template)
        if m is None:
            return template
        name = m.group(1)
        if name not in values:
            raise TemplateError(f"unknown template variable {template} in {where}")
        value = values[name]
        return _OMIT if value is None and m.group(2) else value
    if isinstance(template, dict):
        out = {}
        for k, v in template.items():
            value = _fill(v, values, where)
            if value is not _OMIT:
                out[k] = value
        return out
    if isinstance(template, list):
        return [value for value in (_fill(v, values, where) for v in template) if value is not _OMIT]
    return template


def merge(base: Any, over: Any) -> Any:
    """``over`` merged onto ``base``: two objects merge key by key (recursively); otherwise ``over`` wins.
    Returns new containers for merged objects (the inputs are not changed)."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = merge(base[k], v) if k in base else v
        return out
    return over


def by_state(template: Any, state: str) -> Any:
    """The template for ``state`` of a template by state: ``merge(template["common"], template[state])``
    (either may be absent: ``{}``). A template that is not an object is returned as is."""
    if not isinstance(template, dict):
        return template
    return merge(template.get("common") or {}, template.get(state) or {})


def variables(template: Any) -> set[str]:
    """Every variable name a template uses (to check a template against the variables it will get)."""
    out: set[str] = set()
    if isinstance(template, dict):
        for v in template.values():
            out |= variables(v)
    elif isinstance(template, list):
        for v in template:
            out |= variables(v)
    else:
        name = variable(template)
        if name is not None:
            out.add(name)
    return out


__all__ = ["VAR", "TemplateError", "Vars", "by_state", "fill", "merge", "variable", "variables"]
