"""The live view's sink: note events from the worker into a bounded deque, without ever waiting."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from rtamt.midi import channel_for
from rtamt.tracker import NoteEvent

# (on, pitch, channel, velocity, onset time in stream seconds, stream position when sent)
ViewEvent = tuple[bool, int, int, int, float, float]


class ViewSink:
    """``send`` is called by the live worker: one tuple appended to a deque (thread-safe, no lock, no
    allocation beyond the tuple, no I/O). When the server does not drain it (closed, stopped, starved)
    the oldest events fall out and are counted in ``dropped``; the worker never waits."""

    def __init__(self, position: Callable[[], float] = lambda: 0.0, capacity: int = 65536) -> None:
        self._events: deque[ViewEvent] = deque(maxlen=capacity)
        self._position = position
        self.sent = 0
        self.dropped = 0
        self.closed = False
        self.on_close: Callable[[], None] | None = None
        self.url = ""

    def send(self, event: NoteEvent) -> None:
        """Queue one note event for the page (worker thread)."""
        if len(self._events) == self._events.maxlen:
            self.dropped += 1
        self._events.append((event.on, event.pitch, channel_for(event.timbre), event.velocity,
                             round(event.time_s, 4), round(self._position(), 4)))  # fmt: skip
        self.sent += 1

    def drain(self) -> list[ViewEvent]:
        """Everything queued so far, oldest first (server thread)."""
        out = []
        while True:
            try:
                out.append(self._events.popleft())
            except IndexError:
                return out

    def close(self) -> None:
        """Stop serving (after the worker has finished: the last events still go out)."""
        if self.closed:
            return
        self.closed = True
        if self.on_close is not None:
            self.on_close()
