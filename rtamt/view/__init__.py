"""Live view: a browser page that draws, as it happens, what the live engine hears and sends.

``open_view`` starts the web server (its own thread, its own asyncio loop) and returns a ``ViewSink``,
the object the worker sends note events to: ``send(event)`` only appends to a bounded deque and never
waits; ``close()`` stops the server. The page gets events through a websocket (aiohttp, the ``view``
extra) and draws with a canvas at the browser's frame rate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rtamt.view.sink import ViewSink

if TYPE_CHECKING:
    from rtamt.live import LiveEngine

DEFAULT_PORT = 8765

__all__ = ["DEFAULT_PORT", "ViewSink", "engine_status", "open_view"]


def engine_status(engine: LiveEngine) -> dict:
    """What the page shows besides notes, read from the engine's counters (by the server thread; the
    worker only ever writes them)."""
    stats = engine.stats
    hops = [float(ms) for ms in stats.recent_hops(200)] if stats.hops else []
    return {
        "pos": stats.samples / engine.rate,
        "level_db": round(float(stats.level_db), 1),
        "dropped_blocks": engine.ring.dropped_blocks,
        "skipped_s": round(stats.skipped_samples / engine.rate, 3),
        "hop_ms_p99": round(sorted(hops)[min(len(hops) - 1, int(0.99 * len(hops)))], 3) if hops else None,
        "nonfinite": stats.nonfinite,
    }


def open_view(port: int, engine: LiveEngine, source: str, host: str = "127.0.0.1") -> ViewSink:
    """Serve the live view of ``engine`` on ``host:port`` (0: any free port); returns its sink, already
    serving. Raises ``rtamt.live.LiveError`` when the extra is missing or the port is taken."""
    from rtamt.live import LiveError

    try:
        from rtamt.view.server import ViewServer
    except ImportError as err:
        raise LiveError(f"the live view needs aiohttp ({err}): pip install 'rtamt[view]'") from None
    sink = ViewSink(position=lambda: engine.stats.samples / engine.rate)
    server = ViewServer(sink, lambda: engine_status(engine), {"source": source}, host=host)
    try:
        server.start(port)
    except OSError as err:
        raise LiveError(
            f"cannot serve the live view on {host}:{port} ({err}); try --view OTHER_PORT"
        ) from None
    sink.on_close = server.stop
    sink.url = server.url
    return sink
