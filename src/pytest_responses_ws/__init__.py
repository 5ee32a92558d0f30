"""pytest-responses-ws: record, replay and measure OpenAI Responses API sessions in pytest.

The plugin loads through the ``pytest11`` entry point; tests use the ``rws`` fixture.
Everything importable from here is public API. Names are imported when first used, so a
pytest run that loads the plugin but never uses it does not pay for them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from . import faults
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

#: Where each public name lives.
_PUBLIC = {
    "CASSETTE_VERSION": ".cassette.model",
    "Cassette": ".cassette.model",
    "RecordedEvent": ".cassette.model",
    "Turn": ".cassette.model",
    "CassetteError": ".errors",
    "CassetteFormatError": ".errors",
    "CassetteMissError": ".errors",
    "CassetteNotFoundError": ".errors",
    "RecordingError": ".errors",
    "RwsError": ".errors",
    "RwsHandle": ".handle",
    "RecordMode": ".settings",
    "Settings": ".settings",
    "Timing": ".settings",
}

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


def __getattr__(name: str) -> Any:
    if name == "faults":
        return importlib.import_module(".faults", __name__)
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
