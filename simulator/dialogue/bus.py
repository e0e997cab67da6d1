"""Per-dialogue publish/subscribe over bounded anyio memory object streams.

Publishing stamps the event with the dialogue id and the next sequence number, keeps
it in the dialogue's log (what the recorder reads), forwards it to the run-level sink,
and sends it to every subscriber whose filter matches. Streams are bounded, so a slow
subscriber slows publishers instead of growing memory. Closing the bus closes every
subscriber's stream: receivers see ``EndOfStream``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
import msgspec
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from schemas import Event

__all__ = ["DialogueBus", "EventSink"]

EventSink = Callable[[Event], Awaitable[None]]


@dataclass(slots=True)
class _Subscriber:
    kinds: frozenset[type] | None
    send: MemoryObjectSendStream[Event]
    receive: MemoryObjectReceiveStream[Event]


class DialogueBus:
    """The event bus of one dialogue."""

    def __init__(self, dialogue_id: str, *, sink: EventSink | None = None, buffer: int = 64) -> None:
        self.dialogue_id = dialogue_id
        self.events: list[Event] = []
        self._sink = sink
        self._buffer = buffer
        self._subscribers: list[_Subscriber] = []
        self._closed = False

    def subscribe(self, *kinds: type) -> MemoryObjectReceiveStream[Event]:
        """A stream of the events published from now on, of the given types (all when none)."""
        if self._closed:
            raise anyio.ClosedResourceError
        send, receive = anyio.create_memory_object_stream[Event](self._buffer)
        self._subscribers.append(_Subscriber(frozenset(kinds) if kinds else None, send, receive))
        return receive

    async def end(self, stream: MemoryObjectReceiveStream[Event]) -> None:
        """End the subscription ``stream`` came from: its reader sees EndOfStream once it has
        read what was sent before; the other subscribers are not touched."""
        for sub in self._subscribers:
            if sub.receive is stream:
                self._subscribers.remove(sub)
                await sub.send.aclose()
                return

    async def publish(self, event: Event) -> Event:
        """Stamp, log and deliver ``event``; returns the stamped event.

        Raises ClosedResourceError once the bus is closed.
        """
        if self._closed:
            raise anyio.ClosedResourceError
        stamped = msgspec.structs.replace(event, dialogue_id=self.dialogue_id, seq=len(self.events))
        self.events.append(stamped)
        if self._sink is not None:
            await self._sink(stamped)
        for sub in self._subscribers:
            if sub.kinds is None or type(stamped) in sub.kinds:
                try:
                    # Straight into the buffer when it has room (no trip round the event
                    # loop per event); a full buffer makes the publisher wait, as before.
                    try:
                        sub.send.send_nowait(stamped)
                    except anyio.WouldBlock:
                        await sub.send.send(stamped)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    pass  # that subscriber went away; the others still get it
        return stamped

    async def aclose(self) -> None:
        """Close every subscriber's stream (they see EndOfStream); later publishes fail."""
        self._closed = True
        for sub in self._subscribers:
            await sub.send.aclose()
        self._subscribers.clear()

    @property
    def closed(self) -> bool:
        return self._closed
