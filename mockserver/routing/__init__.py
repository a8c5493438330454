"""Stage *routing*: which endpoint answers a request. Provider operations are aiohttp routes built from the
contracts (:mod:`.router`); the admin API is routed from its own contract (:mod:`mockserver.admin`) with the
same :func:`routes_of`. What no route takes is dispatched to the provider's 404/405.
"""

from .document import DocumentRoute, allowed_methods, routes_of
from .router import (
           PATH_KEY,
           Dispatcher,
           add_provider_routes,
           not_found_endpoint,
           rel_path,
           route_order,
           unmounted_endpoint,
)

__all__ = ["PATH_KEY", "Dispatcher", "DocumentRoute", "add_provider_routes", "allowed_methods", "not_found_endpoint", "rel_path",
           "route_order", "routes_of", "unmounted_endpoint"]
