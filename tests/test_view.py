"""Live view: the sink never waits, the server streams to every page, and the page in headless Chromium
draws what `rtamt live` sent."""

from __future__ import annotations

import asyncio
import io
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from rtamt.audio import read_blocks
from rtamt.palette import CHANNEL_COLOURS, rgb_of, timbre_of
from rtamt.tracker import NoteEvent
from rtamt.view.sink import ViewSink

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "duet"
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1280,720"]  # fmt: skip


def test_palette_channels_map_back_to_timbres() -> None:
    from rtamt.midi import channel_for

    assert len(set(CHANNEL_COLOURS)) == 16
    assert [timbre_of(channel_for(t)) for t in range(15)] == list(range(15))


def test_sink_never_waits_and_counts_what_falls_out() -> None:
    sink = ViewSink(position=lambda: 1.5, capacity=1000)
    event = NoteEvent(on=True, pitch=60, frame=100, decided=101, velocity=80, timbre=1)
    start = time.perf_counter()
    for _ in range(100_000):  # nobody drains: a closed or stalled server
        sink.send(event)
    per_send_us = (time.perf_counter() - start) / 100_000 * 1e6
    assert per_send_us < 20, per_send_us
    assert sink.sent == 100_000 and sink.dropped == 99_000
    drained = sink.drain()
    assert len(drained) == 1000 and sink.drain() == []
    on, pitch, channel, velocity, onset, sent_at = drained[0]
    assert (on, pitch, channel, velocity, sent_at) == (True, 60, 1, 80, 1.5)
    assert onset == pytest.approx(event.time_s, abs=1e-4)


def test_a_page_too_far_behind_is_dropped_not_waited_for() -> None:
    pytest.importorskip("aiohttp", reason="the view extra (aiohttp) is not installed")
    from rtamt.view.server import CLIENT_QUEUE, _Page

    async def fill() -> tuple[list[bool], list]:
        page = _Page(ws=None)
        accepted = [page.offer(f"message {i}") for i in range(CLIENT_QUEUE + 1)]
        return accepted, [page.queue.get_nowait() for _ in range(page.queue.qsize())]

    accepted, queued = asyncio.run(fill())
    assert accepted == [True] * CLIENT_QUEUE + [False]
    assert queued == [None]  # the backlog is discarded and the page is closed (it reconnects and resyncs)


def test_server_streams_to_two_pages_while_a_third_never_reads() -> None:
    """Two pages get the same counts and events; a page that never reads delays nothing; stopping the
    server ends every page's stream with an end message, promptly."""
    aiohttp = pytest.importorskip("aiohttp", reason="the view extra (aiohttp) is not installed")
    from rtamt.view.server import ViewServer

    sink = ViewSink(position=lambda: 2.0)
    server = ViewServer(sink, lambda: {"pos": 2.0, "level_db": -20.0}, {"source": "test"}, tick_s=0.005)
    server.start(0)

    def note(pitch: int, timbre: int, on: bool = True) -> NoteEvent:
        return NoteEvent(on=on, pitch=pitch, frame=10, decided=11, velocity=70, timbre=timbre)

    sink.send(note(60, 0))  # before any page: reaches pages through the hello's history and counts
    time.sleep(0.05)
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", server.port))
    stalled.sendall(
        b"GET /events HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )

    async def session() -> tuple[list[dict], list[dict], float]:
        async with aiohttp.ClientSession() as http:
            page = await http.get(server.url)
            assert "<canvas" in await page.text()
            first = await http.ws_connect(server.url + "events")
            second = await http.ws_connect(server.url + "events")
            for pitch in range(61, 71):
                for _ in range(200):  # bulk, so that the stalled page's buffers fill
                    sink.send(note(pitch, pitch % 2, on=False))
                sink.send(note(pitch, pitch % 2))
                await asyncio.sleep(0.01)
            sink.send(note(72, 3))
            await asyncio.sleep(0.1)
            start = time.perf_counter()
            await asyncio.get_running_loop().run_in_executor(None, server.stop)
            stop_s = time.perf_counter() - start
            received = []
            for ws in (first, second):
                received.append([json.loads(message.data) async for message in ws])
            return received[0], received[1], stop_s

    first, second, stop_s = asyncio.run(session())
    stalled.close()
    assert stop_s < 2.0
    for messages in (first, second):
        assert messages[0]["type"] == "hello" and messages[0]["counts"] == {"0": 1}
        assert messages[0]["palette"] == list(CHANNEL_COLOURS)
        assert messages[-1]["type"] == "end"
        ons = [e for m in messages[1:] if m["type"] == "tick" for e in m["events"] if e[0]]
        assert [e[1] for e in ons] == [*range(61, 71), 72]
        assert [e[2] for e in ons[-3:]] == [1, 0, 3]  # channel of timbre 3 (0-based) is 3
        assert all(m["pos"] == 2.0 for m in messages[:-1])


def fake_engine() -> SimpleNamespace:
    """The counters ``engine_status`` reads, as a LiveEngine has them."""
    stats = SimpleNamespace(samples=44100, level_db=-12.0, skipped_samples=0, hop_ms=[1.0, 2.0], nonfinite=0)
    return SimpleNamespace(stats=stats, rate=44100, ring=SimpleNamespace(dropped_blocks=0))


def test_a_taken_port_is_a_clear_live_error() -> None:
    pytest.importorskip("aiohttp", reason="the view extra (aiohttp) is not installed")
    from rtamt.live import LiveError
    from rtamt.view import open_view

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(LiveError, match="cannot serve the live view"):
            open_view(taken.getsockname()[1], fake_engine(), "test")
    view = open_view(0, fake_engine(), "test")
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", view.url)
    view.close()


@pytest.mark.skipif(
    not (EXAMPLE.parent.parent / "models" / "backbone.onnx").exists(), reason="shipped model missing"
)
def test_stopping_the_view_mid_stream_leaves_the_stream_whole() -> None:
    """Stopping the view's server while notes are coming leaves the stream whole: the worker finishes and
    sends exactly the offline chain's events, every one also offered to the view's sink."""
    pytest.importorskip("aiohttp", reason="the view extra (aiohttp) is not installed")
    from rtamt.audio import probe
    from rtamt.live import LiveEngine, feed_file
    from rtamt.pipeline import build_transcriber
    from rtamt.view import open_view

    rate = probe(EXAMPLE / "mix.flac").samplerate
    seen: list[NoteEvent] = []
    first = threading.Event()
    view = None

    def on_event(event: NoteEvent, now: float) -> None:
        seen.append(event)
        view.send(event)
        first.set()

    engine = LiveEngine(build_transcriber(rate, mode="low-latency"), rate, 1, None, on_event, None)
    view = open_view(0, engine, "test")
    engine.start()
    feeder = threading.Thread(target=feed_file, args=(engine, str(EXAMPLE / "mix.flac"), False), daemon=True)
    feeder.start()
    assert first.wait(60)
    view.close()  # the server goes away while notes are still coming
    engine.join(60)
    assert not engine._thread.is_alive() and engine.error is None
    assert view.sent == len(seen) and engine.stats.notes == sum(e.on for e in seen) > 20
    offline = build_transcriber(rate, mode="low-latency").chain.run(read_blocks(EXAMPLE / "mix.flac", 512))
    assert seen == offline


def test_live_cli_view_streams_every_note_to_a_websocket_client() -> None:
    """`rtamt live --view 0` without a browser: a websocket client counts exactly the note-ons printed by
    --events json, per channel, and gets the end of the stream."""
    aiohttp = pytest.importorskip("aiohttp", reason="the view extra (aiohttp) is not installed")
    live = subprocess.Popen(
        [sys.executable, "-m", "rtamt", "live", "--input", str(EXAMPLE / "mix.flac"), "--no-midi", "--events",
         "json", "--quiet", "--view", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = live.stderr.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert match, line + live.stderr.read()

        async def read() -> tuple[dict, list[dict]]:
            async with aiohttp.ClientSession() as http, http.ws_connect(match.group(0) + "events") as ws:
                messages = [json.loads(message.data) async for message in ws]
            return messages[0], messages[1:]

        hello, rest = asyncio.run(read())
        out, err = live.communicate(timeout=120)
    finally:
        if live.poll() is None:
            live.kill()
    assert live.returncode == 0, err
    sent = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    counts = {int(channel): n for channel, n in hello["counts"].items()}
    for message in rest:
        for event in message.get("events", []):
            counts[event[2]] = counts.get(event[2], 0) + event[0]
    expected: dict[int, int] = {}
    for event in sent:
        expected[event["channel"] - 1] = expected.get(event["channel"] - 1, 0) + event["on"]
    assert counts == expected and sum(counts.values()) > 20
    assert rest[-1]["type"] == "end"


def find_chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def colour_pixels(png: bytes) -> dict[int, int]:
    """Pixels of each channel's exact colour in a screenshot."""
    from PIL import Image

    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3).astype(np.int32)
    packed = image[:, 0] << 16 | image[:, 1] << 8 | image[:, 2]
    counts = {}
    for channel in range(16):
        r, g, b = rgb_of(channel)
        counts[channel] = int(np.count_nonzero(packed == (r << 16 | g << 8 | b)))
    return counts


def test_live_view_in_headless_chromium(tmp_path: Path) -> None:
    """`rtamt live --input FILE --realtime --view`: two tabs follow the stream (one opened late), a third
    closed mid-stream stalls nothing; each remaining page's note count equals the note-ons sent, and its
    roll shows rectangles in two channels' colours."""
    pytest.importorskip("aiohttp", reason="the view extra (aiohttp) is not installed")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (test extra) is not installed")
    pytest.importorskip("PIL", reason="Pillow (with matplotlib, plot extra) is not installed")
    found = find_chromium()
    if found is None:
        pytest.skip("Chromium and chromedriver not found (Debian: apt-get install chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in [*CHROME_FLAGS, f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}"]:
        options.add_argument(flag)
    options.binary_location = found[0]
    browser = webdriver.Chrome(options=options, service=Service(found[1]))
    live = subprocess.Popen(
        [sys.executable, "-m", "rtamt", "live", "--input", str(EXAMPLE / "mix.flac"), "--realtime", "--no-midi",
         "--events", "json", "--quiet", "--view", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = live.stderr.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert match, line + live.stderr.read()
        started = time.monotonic()
        browser.get(match.group(0))
        first = browser.current_window_handle
        browser.switch_to.new_window("tab")
        browser.get(match.group(0))
        closed = browser.current_window_handle
        time.sleep(3)
        browser.close()  # a tab closed mid-stream
        browser.switch_to.window(first)
        time.sleep(3)
        browser.switch_to.new_window("tab")  # a tab opened late catches up from the server's history
        browser.get(match.group(0))
        late = browser.current_window_handle
        out, err = live.communicate(timeout=90)
        wall = time.monotonic() - started
        assert live.returncode == 0, err
        summary = json.loads(err.strip().splitlines()[-1])
        assert wall < summary["audio_s"] + 10, "the stream stalled"
        events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        note_ons = [e for e in events if e["on"]]
        assert summary["notes"] == len(note_ons) > 20
        for handle in (first, late):
            assert handle != closed
            browser.switch_to.window(handle)
            for _ in range(50):
                if browser.execute_script("return document.body.dataset.state") == "ended":
                    break
                time.sleep(0.1)
            assert browser.execute_script("return document.body.dataset.state") == "ended"
            assert int(browser.find_element("id", "notes-total").text) == len(note_ons)
            for item in browser.find_elements("css selector", "#legend li"):
                channel = int(item.get_attribute("data-channel"))
                assert int(item.get_attribute("data-count")) == sum(e["channel"] == channel for e in note_ons)
            canvas = browser.find_element("id", "roll").screenshot_as_png
            (tmp_path / f"roll-{handle[-6:]}.png").write_bytes(canvas)
            pixels = colour_pixels(canvas)
            drawn = {channel for channel, count in pixels.items() if count >= 40}
            sent = {e["channel"] - 1 for e in note_ons}
            assert len(drawn) >= 2 and drawn <= sent, (pixels, sent)
        fps = browser.execute_script(
            "return new Promise(done => { let n = 0; const t0 = performance.now();"
            " const f = () => { n++; if (performance.now() - t0 < 1000) requestAnimationFrame(f); else done(n); };"
            " requestAnimationFrame(f); })")  # fmt: skip
        assert fps >= 30, f"{fps} frames in a second"
    finally:
        browser.quit()
        if live.poll() is None:
            live.kill()
