"""Drift detection: record provider traffic into cassettes, compare it with the contract, diff contracts.

Modules (each usable as a library):

- :mod:`specs.cassette` -- the cassette format (:class:`Cassette`, :class:`Interaction`), JSON on disk (in the
  contract kernel: the mock's ``--replay`` reads it too).
- :mod:`.redact` -- secret redaction applied when traffic is captured.
- :mod:`.recorder` -- :class:`Recorder`: httpx transports that record any client's traffic.
- :mod:`.flows` -- scripted per-family flows (``run_flow``) over the conformance family drivers, under the
  spend guard.
- :mod:`.observed` -- ``check_cassette``: observed traffic vs the contract.
- :mod:`.specdiff` -- ``diff_contracts``: contract vs contract.
- :mod:`.findings` -- :class:`Finding`, :class:`Report` and the text/JSON/JUnit/Markdown renderers.
- :mod:`.cli` -- ``add_subcommands(subparsers)`` + ``run(args)`` for ``record``, ``drift``, ``diff``.

Replay of cassettes is served by the mock: ``mockserver serve --replay CASSETTE`` (mockserver/replay.py).
"""

from specs.cassette import Cassette, CassetteError, Interaction

from .findings import Finding, Report, render
from .observed import check_cassette
from .recorder import Recorder
from .redact import Redactor
from .specdiff import diff_contracts

__all__ = ["Cassette", "CassetteError", "Finding", "Interaction", "Recorder", "Redactor", "Report",
           "check_cassette", "diff_contracts", "render"]
