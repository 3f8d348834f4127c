"""The live view's web server: aiohttp in its own thread and event loop, one websocket per open page.

Every ``tick_s`` the loop drains the sink, keeps per-channel counts and a short history (for pages that
open later), and broadcasts one JSON message to every page. Each page has a bounded queue; a page that
falls that far behind is disconnected (it reconnects and resynchronises), so nothing ever waits for a
slow or closed tab. The worker never touches this thread: it only appends to the sink's deque.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from collections.abc import Callable
from importlib import resources

from aiohttp import WSMsgType, web

from rtamt.constants import MIDI_MAX, MIDI_MIN
from rtamt.palette import CHANNEL_COLOURS
from rtamt.view.sink import ViewEvent, ViewSink

STATIC = ("index.html", "view.js", "view.css")
CONTENT_TYPES = {"html": "text/html", "js": "text/javascript", "css": "text/css"}
HISTORY = 3000  # events a newly opened page gets (enough for the roll's window; counts are kept exactly)
CLIENT_QUEUE = 120  # messages (4 s at 30 per second) a page may lag before it is dropped


class _Page:
    """One connected page: its socket and its outgoing queue."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=CLIENT_QUEUE)

    def offer(self, text: str | None) -> bool:
        """Queue a message; False (and a close queued instead) when the page is too far behind."""
        try:
            self.queue.put_nowait(text)
            return True
        except asyncio.QueueFull:
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(None)
            return False


class ViewServer:
    """Serves the page and streams the sink's events plus ``status()`` to every connected page."""

    def __init__(self, sink: ViewSink, status: Callable[[], dict], info: dict, host: str = "127.0.0.1",
                 tick_s: float = 1 / 30) -> None:  # fmt: skip
        self.sink = sink
        self.status = status
        self.info = info
        self.host = host
        self.tick_s = tick_s
        self.port = 0
        self.counts: dict[int, int] = {}
        self.history: deque[ViewEvent] = deque(maxlen=HISTORY)
        self.pages: set[_Page] = set()
        self.lagging = 0  # pages disconnected for falling behind
        self._ready = threading.Event()
        self._error: OSError | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="rtamt-view", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    # -- lifecycle (caller's thread) -----------------------------------------------------------------
    def start(self, port: int) -> None:
        """Bind and serve; returns once the port is open (raises OSError when it cannot be)."""
        self.port = port
        self._thread.start()
        self._ready.wait(10.0)
        if self._error is not None:
            raise self._error
        if not self._ready.is_set():
            raise OSError("the view server did not start within 10 s")

    def stop(self, timeout: float = 3.0) -> None:
        """Send the last events and an end message to every page, then close; never raises."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stopping.set)
            except RuntimeError:  # the loop has already gone
                pass
        self._thread.join(timeout)

    # -- server thread -------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except OSError as err:
            self._error = err
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        app = web.Application()
        app.router.add_get("/", self._static)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/events", self._socket)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
            self.port = runner.addresses[0][1]
            self._ready.set()
            while not self._stopping.is_set():
                self._pump()
                try:
                    await asyncio.wait_for(self._stopping.wait(), self.tick_s)
                except TimeoutError:
                    pass
            self._pump()
            for page in list(self.pages):
                page.offer(json.dumps({"type": "end"}))
                page.offer(None)
            for _ in range(50):  # up to 0.5 s for the pages to receive the end
                if not self.pages:
                    break
                await asyncio.sleep(0.01)
        finally:
            await runner.cleanup()

    def _pump(self) -> None:
        events = self.sink.drain()
        for event in events:
            if event[0]:
                self.counts[event[2]] = self.counts.get(event[2], 0) + 1
        self.history.extend(events)
        if self.pages:
            text = json.dumps({"type": "tick", "events": events, **self._status()})
            for page in list(self.pages):
                if not page.offer(text):
                    self.lagging += 1

    def _status(self) -> dict:
        return {**self.status(), "view_dropped": self.sink.dropped, "lagging_pages": self.lagging}

    def _hello(self) -> str:
        return json.dumps({
            "type": "hello", "palette": CHANNEL_COLOURS, "pitch_min": MIDI_MIN, "pitch_max": MIDI_MAX,
            "counts": {str(k): v for k, v in self.counts.items()}, "events": list(self.history),
            **self.info, **self._status(),
        })  # fmt: skip

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info.get("name", "index.html")
        if name not in STATIC:
            raise web.HTTPNotFound()
        body = resources.files("rtamt.view").joinpath("static", name).read_bytes()
        return web.Response(body=body, content_type=CONTENT_TYPES[name.rsplit(".", 1)[1]],
                            headers={"Cache-Control": "no-store"})  # fmt: skip

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=5.0)
        await ws.prepare(request)
        page = _Page(ws)
        page.offer(self._hello())  # counts and history as of now; every later tick follows in order
        self.pages.add(page)
        sender = asyncio.create_task(self._send(page))
        try:
            async for message in ws:  # the page sends nothing; this ends when it goes away
                if message.type == WSMsgType.ERROR:
                    break
        finally:
            self.pages.discard(page)
            sender.cancel()
        return ws

    async def _send(self, page: _Page) -> None:
        try:
            while True:
                text = await page.queue.get()
                if text is None:
                    await page.ws.close()
                    return
                await page.ws.send_str(text)
        except (ConnectionError, RuntimeError):
            self.pages.discard(page)
