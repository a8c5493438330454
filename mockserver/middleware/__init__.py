"""Stage *middleware*: what wraps the pipeline of every route, composed once per route.

Layers, outermost first (:func:`mockserver.app.build_app` lists them):

================ ======================================================================================
``store_guard``  only with a shared store: a store that went away is a 503, not a traceback (:mod:`.store_guard`)
``journal``      record provider requests for ``GET /__mock/journal`` (:mod:`.journal`)
``replay``       answer from a recorded cassette when it holds the request (``--replay``; :mod:`.replay`)
``request_ids``  stamp request-id headers on every provider answer; a mock bug becomes the provider's
                 ``server_error`` envelope (:mod:`.request_id`)
``faults``       injected faults and the rate limit, a table from fault kind to action (:mod:`.faults`)
================ ======================================================================================

:mod:`.compose` holds the one composer: a layer declines the routes it can never apply to, and a layer that
applies to some requests only has a fast path that hands the others straight on.
"""

from .compose import ROUTE_KINDS, Composer, Handler, Layer, Route, compose, when
from .faults import (
           ACTIONS,
           FAULT_HEADER,
           FAULT_KINDS,
           REQUEST_KINDS,
           FaultBook,
           FaultError,
           FaultRule,
           Faults,
           parse_fault,
)
from .journal import FAULT_KEY, Journal, JournalEntry
from .replay import REPLAY_HEADER, Replay, Replayer
from .request_id import RequestIds, request_id_header_names
from .store_guard import StoreGuard

__all__ = ["ACTIONS", "FAULT_HEADER", "FAULT_KEY", "FAULT_KINDS", "REPLAY_HEADER", "REQUEST_KINDS", "ROUTE_KINDS",
           "Composer", "FaultBook", "FaultError", "FaultRule", "Faults", "Handler", "Journal", "JournalEntry", "Layer",
           "Replay", "Replayer", "RequestIds", "Route", "StoreGuard", "compose", "parse_fault", "request_id_header_names", "when"]
