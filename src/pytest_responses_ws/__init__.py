"""pytest-responses-ws: record, replay and measure OpenAI Responses API sessions in pytest.

The plugin loads through the ``pytest11`` entry point; tests use the ``rws`` fixture.
Everything importable from here is public API.
"""

from . import faults
from ._version import __version__
from .cassette.model import CASSETTE_VERSION, Cassette, RecordedEvent, Turn
from .errors import (
    CassetteError,
    CassetteFormatError,
    CassetteMissError,
    CassetteNotFoundError,
    RecordingError,
    RwsError,
)
from .handle import RwsHandle
from .settings import RecordMode, Settings, Timing

__all__ = [
    "CASSETTE_VERSION",
    "Cassette",
    "CassetteError",
    "CassetteFormatError",
    "CassetteMissError",
    "CassetteNotFoundError",
    "RecordMode",
    "RecordedEvent",
    "RecordingError",
    "RwsError",
    "RwsHandle",
    "Settings",
    "Timing",
    "Turn",
    "__version__",
    "faults",
]
