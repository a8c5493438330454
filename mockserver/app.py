"""The mock server application: the stages of ``mockserver/`` put together (see ``docs/architecture.md``).

Path of one provider request (Prism's ``packages/http/src`` is the model; DESIGN.md "Pipeline of a request"):

    routing      aiohttp router built from each host's contract               mockserver/routing/
    middleware   journal -> replay -> request ids -> faults (one composer)    mockserver/middleware/
    validation   auth (provider.yaml) -> openapi-core -> body parsing         mockserver/validation/, pipeline.py
    rendering    family adapter: lifecycle engine + provider.yaml templates   mockserver/rendering/, engine.py
    delivery     webhooks of jobs that end (background task)                  mockserver/delivery/

The admin API (``/__mock/``) is routed and validated from its own contract (mockserver/admin/). Everything
provider-specific comes from ``specs/<id>/``; the family adapters hold the dialects.
"""

from __future__ import annotations

from aiohttp import web

from specs import mount_prefix

from . import admin
from .config import MockConfig
from .http import STATE_KEY
from .middleware import Composer, Faults, Journal, Replay, Replayer, StoreGuard
from .pipeline import operation_endpoint
from .rendering import Ctx, family_for
from .routing import add_provider_routes
from .state import HostMount, MockState
from .validation import MAX_BODY_BYTES, Authenticator, HostValidator


def _mounts(state: MockState) -> None:
    config = state.config
    for pid in config.providers:
        contract = state.contracts[pid]
        for i, host in enumerate(contract.hosts):
            ops = [op for op in contract.operations() if op.host == host["id"]]
            mount = HostMount(contract=contract, host=host, prefix=mount_prefix(host, config.single_provider and i == 0),
                              validator=HostValidator(contract, host["id"]),
                              authenticator=Authenticator(contract, config.api_key), operations=ops)
            mount.family = family_for(host["family"])(state, mount)
            state.mounts.append(mount)


def build_app(config: MockConfig | None = None) -> web.Application:
    """Build the aiohttp application for a configuration (see :class:`MockConfig`).

    Raises:
        mockserver.config.ConfigError: invalid configuration, or a cassette that cannot be replayed (one line).
        specs.SpecError: a contract cannot be loaded, or its provider.yaml ``mock`` section cannot be used by
            its family adapter (a template naming an unknown variable, an unknown signing scheme).
    """
    config = config or MockConfig()
    state = MockState(config)
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[STATE_KEY] = state
    _mounts(state)
    layers: list = [StoreGuard(state.request_ids)] if state.backend is not None else []  # a store that went away
    layers.append(Journal(state.journal))
    if config.replay:  # serve a recorded cassette before the live engine (mockserver/middleware/replay.py)
        state.replay = Replayer.load(config.replay, state)
        layers.append(Replay(state.replay))
    layers += [state.request_ids, Faults(state.faults)]
    compose = Composer(layers)
    admin.setup(app, state, compose)
    add_provider_routes(app, state.mounts, compose,
                        lambda mount, op, route: operation_endpoint(state, mount, op, route))
    app.on_startup.append(_on_startup)
    app.on_cleanup.append(_on_cleanup)
    return app


async def _on_startup(app: web.Application) -> None:
    await app[STATE_KEY].webhooks.start()


async def _on_cleanup(app: web.Application) -> None:
    await app[STATE_KEY].webhooks.stop()
    app[STATE_KEY].close()


# Names other modules and tools import from here (they live in the stages and mockserver.state).
__all__ = ["MAX_BODY_BYTES", "STATE_KEY", "Ctx", "HostMount", "MockState", "build_app"]
