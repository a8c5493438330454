"""What a family adapter gets for one request (:class:`Ctx`)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from specs import Contract, Operation

from ..http import dumps, error_response


class Ctx:
    """Everything a family adapter needs for one request that passed validation.

    Attributes:
        state: the server's :class:`mockserver.state.MockState`.
        mount: the provider host being called (:class:`mockserver.state.HostMount`).
        op: the contract operation (role, kind, source, model ...).
        route: the route (:class:`mockserver.middleware.Route`: request-id headers ...).
        request: the aiohttp request.
        path_params: path parameters from the contract's path template (``{name: value}``).
        body: parsed request body (JSON value, dict of multipart fields, or None).
        api_key: the caller's key (never logged).
    """

    __slots__ = ("state", "mount", "op", "route", "request", "path_params", "body", "api_key")

    def __init__(self, state: Any, mount: Any, op: Operation, route: Any, request: web.Request,
                 path_params: dict[str, str], body: Any, api_key: str | None):
        self.state = state
        self.mount = mount
        self.op = op
        self.route = route
        self.request = request
        self.path_params = path_params
        self.body = body
        self.api_key = api_key

    @property
    def contract(self) -> Contract:
        """The provider's contract."""
        return self.mount.contract

    @property
    def provider(self) -> str:
        """The provider id."""
        return self.mount.provider

    @property
    def path_id(self) -> str:
        """The first path parameter's value (the job id of a read, cancel, delete ...), or ``""``."""
        return next(iter(self.path_params.values()), "")

    @property
    def path_param(self) -> str | None:
        """The first path parameter's name (the ``param`` of a 404 about it), or None."""
        return next(iter(self.path_params), None)

    def json(self, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
        """A JSON answer (compact)."""
        return web.json_response(data, status=status, headers=headers, dumps=dumps)

    def error(self, kind: str, message: str | None = None, param: str | None = None,
              status: int | None = None, headers: dict[str, str] | None = None) -> web.Response:
        """The provider's error envelope for a neutral error kind (``not_found``, ``validation`` ...).

        Raises:
            specs.SpecError: the provider declares no such kind (a mock bug: answered as a 500).
        """
        return error_response(self.contract, kind, message, param, status, headers)


__all__ = ["Ctx"]
