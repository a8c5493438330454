"""The lifecycle layer of the suite: events and the monitor (:mod:`.events`), the actions (:mod:`.actions`),
the state machine (:mod:`.machine`) and the skip reasons (:mod:`.skips`). The checks themselves are in
:mod:`conformance.checks.lifecycle`.
"""

from .actions import Lifecycle, deletes_output
from .events import Event, Monitor, observations
from .machine import make_machine, run_lifecycle
from .skips import skip_reason

__all__ = ["Event", "Lifecycle", "Monitor", "deletes_output", "make_machine", "observations", "run_lifecycle",
           "skip_reason"]
