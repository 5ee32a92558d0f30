"""Acting on injected faults: the I/O half of :mod:`..core.faults` for both transports.

The engine decides which faults fire on a turn and hands the adapters an
:class:`~..core.faults.Injection`; the helpers here do what it says: wait (every wait is
bounded by the fault's own validation, :data:`~..core.faults.MAX_DELAY_S`), and drop a
connection without a WebSocket close frame or the end of an HTTP body, as a network
failure would.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from ..core.faults import Injection


def drop_connection(send: Any) -> bool:
    """Close the TCP connection under an ASGI ``send`` at once: no close frame, no end of body.

    uvicorn's protocols (h11, websockets-sansio) expose their transport on the object
    ``send`` is bound to. Data already written is still delivered (a close, not an
    abort), so the client gets exactly the events before the cut. False if the transport
    is out of reach (another server): the caller then ends the answer another way.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if not isinstance(transport, asyncio.Transport):
        return False
    transport.close()
    return True


def wait_before(injection: Injection, index: int) -> float:
    """Seconds the injection adds before event ``index`` (0-based) of a turn."""
    if index == 0:
        return injection.first_event_s
    return injection.between_events_s


async def injected_wait(injection: Injection, index: int) -> None:
    """Wait what the injection adds before event ``index`` (bounded: at most MAX_DELAY_S)."""
    seconds = wait_before(injection, index)
    if seconds > 0:
        await asyncio.sleep(seconds)


async def await_disconnect(receive: Any, bound_s: float = 2.0) -> None:
    """After dropping an HTTP connection, wait (bounded) until the server noticed it.

    Returning from the ASGI app earlier would make uvicorn answer a 500 on the closing
    transport.
    """
    with contextlib.suppress(asyncio.TimeoutError, Exception):
        await asyncio.wait_for(receive(), bound_s)
