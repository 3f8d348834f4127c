"""Live engine: audio device (or a file played in real time) -> chain -> sinks, never blocking audio.

The audio callback only copies the device's block into a lock-free single-producer/single-consumer ring
buffer (no allocation, no lock, no I/O); a worker thread reads the ring, runs the chain and sends every
event to each sink (rtamt/sinks.py: MIDI port, MIDI file, JSON lines, OSC, plugins).
When the worker falls behind by more than ``max_backlog_s`` it skips the oldest audio and counts the
dropped blocks. Stop, errors, Ctrl-C and the end of a file all end with note-offs for sounding notes.
A watchdog ends the run within two seconds, with a message and a non-zero status, when the audio input
stops delivering or the JACK server goes away (see rtamt.watchdog); ``--reconnect`` waits for them instead.
"""

from __future__ import annotations

import bisect
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rtamt.audio import probe, read_blocks
from rtamt.chain import Chain
from rtamt.constants import (
    EXIT_DEVICE,
    HOP,
    LIVE_BACKEND_CLOSE_S,
    LIVE_INPUT_TIMEOUT_S,
    LIVE_RECONNECT_POLL_S,
    LIVE_STOP_DEADLINE_S,
    LIVE_WORKER_PRIORITY,
    SAMPLE_RATE,
)
from rtamt.pipeline import Transcriber
from rtamt.sustain import PedalChange, interleave
from rtamt.tracker import NoteEvent
from rtamt.watchdog import (
    JackMonitor,
    StopSignals,
    abandon,
    backend_abandoned,
    backend_back,
    call_with_timeout,
    jack_server_running,
    restart_process,
    wait_until,
)

HOP_HISTORY = 20_000  # per-hop compute times kept for the statistics (a fixed ring: no growth over hours)

if TYPE_CHECKING:
    from rtamt.sinks import EventSink


class LiveError(Exception):
    """A device or port problem, with a message for the user."""


class RingBuffer:
    """Single-producer single-consumer ring of float32 samples.

    The producer (audio callback) only copies into preallocated memory and advances its counter; the
    consumer only advances its own. Counters grow without bound, so no index is ever shared for writing.
    A block that does not fit is dropped whole and counted.
    """

    def __init__(self, capacity: int) -> None:
        self._buf = np.zeros(capacity, dtype=np.float32)
        self.capacity = capacity
        self._written = 0
        self._read = 0
        self.dropped_blocks = 0
        self.dropped_samples = 0

    def write(self, data: np.ndarray) -> bool:
        n = len(data)
        if n > self.capacity - (self._written - self._read):
            self.dropped_blocks += 1
            self.dropped_samples += n
            return False
        start = self._written % self.capacity
        first = min(n, self.capacity - start)
        self._buf[start : start + first] = data[:first]
        self._buf[: n - first] = data[first:]
        self._written += n  # publish after the copy
        return True

    def available(self) -> int:
        return self._written - self._read

    def read(self, count: int) -> np.ndarray:
        count = min(count, self.available())
        start = self._read % self.capacity
        first = min(count, self.capacity - start)
        out = np.concatenate([self._buf[start : start + first], self._buf[: count - first]])
        self._read += count
        return out

    def skip(self, count: int) -> None:
        self._read += min(count, self.available())


@dataclass
class LiveStats:
    """What the status line and the final report show."""

    blocks: int = 0
    samples: int = 0
    hop_ms: np.ndarray = field(default_factory=lambda: np.zeros(HOP_HISTORY))  # ring, see add_hop
    hops: int = 0  # per-hop times recorded so far (the ring holds the last HOP_HISTORY)
    level_db: float = -120.0
    notes: int = 0
    sounding: int = 0
    channels: set[int] = field(default_factory=set)
    nonfinite: int = 0
    skipped_samples: int = 0
    expected_latency_ms: float | None = None  # validation median note-on latency of the settings running
    pedal_down: bool = False  # the sustain pedal as last sent
    pedal_downs: int = 0  # times it went down
    scheduling: str = "normal"  # what the worker thread runs under (see realtime_scheduling)

    def add_hop(self, ms: float) -> None:
        self.hop_ms[self.hops % HOP_HISTORY] = ms
        self.hops += 1

    def recent_hops(self, count: int) -> np.ndarray:
        """The last ``count`` per-hop times (at most HOP_HISTORY; [0.0] when there are none)."""
        count = min(count, self.hops, HOP_HISTORY)
        if count == 0:
            return np.zeros(1)
        end = self.hops % HOP_HISTORY
        older = self.hop_ms[HOP_HISTORY - max(count - end, 0) :]  # the part before the ring wrapped
        return np.concatenate([older, self.hop_ms[max(end - count, 0) : end]])

    def summary(self, ring: RingBuffer, rate: int) -> dict:
        hops = self.recent_hops(HOP_HISTORY)
        return {
            "audio_s": round(self.samples / rate, 2), "notes": self.notes, "channels": len(self.channels),
            "pedal_downs": self.pedal_downs,
            "per_hop_ms_median": round(float(np.median(hops)), 3), "per_hop_ms_p99": round(float(np.percentile(hops, 99)), 3),
            "dropped_blocks": ring.dropped_blocks, "skipped_s": round(self.skipped_samples / rate, 3),
            "nonfinite_samples": self.nonfinite, "worker_scheduling": self.scheduling,
        }  # fmt: skip


class LiveEngine:
    """Runs a chain (or a Transcriber's chain) on audio arriving in ``ring`` at ``rate`` with ``channels``
    interleaved, and sends every event to each of ``sinks`` in order. The chain starts a stream at
    ``rate``."""

    def __init__(self, transcriber: Transcriber | Chain, rate: int, channels: int,
                 sinks: Sequence[EventSink] | None = None, on_event: Callable[[NoteEvent, float], None] | None = None,
                 max_backlog_s: float | None = 0.5, stop: threading.Event | None = None,
                 priority: int = 0) -> None:  # fmt: skip
        self.transcriber = transcriber
        self.chain: Chain = transcriber.chain if isinstance(transcriber, Transcriber) else transcriber
        self.chain.start(rate)
        if getattr(transcriber, "assigner", None) is not None:  # nothing refines a live stream afterwards:
            transcriber.assigner.keep_notes = False  # keeping every finished note would grow for ever
        self.rate = rate
        self.channels = channels
        self.sinks = list(sinks or [])
        self._sounding: set[tuple[int, int]] = set()  # (timbre, pitch), for the status line
        self.on_event = on_event
        self.ring = RingBuffer(int(rate * channels * 4.0))
        # None: never skip audio (a file fed as fast as possible waits for the worker instead)
        self.max_backlog = None if max_backlog_s is None else int(max_backlog_s * rate) * channels
        self.stats = LiveStats()
        self.stop = stop if stop is not None else threading.Event()  # e.g. StopSignals.requested
        self.priority = priority  # the worker's SCHED_FIFO priority when permitted (0: normal scheduling)
        self.input_done = threading.Event()
        self.error: BaseException | None = None
        self.input_error: BaseException | None = None  # set by a feeder that could not go on
        self.callbacks = 0  # audio callbacks so far: the watchdog's sign of life from the input
        self._skip_at: list[int] = []  # processed samples at each skip of queued audio ...
        self._skipped_total: list[int] = []  # ... and the samples skipped up to and including it
        self._thread = threading.Thread(target=self._run, name="rtamt-worker", daemon=True)

    # -- audio side ---------------------------------------------------------------------------------
    def callback(self, indata: np.ndarray, frames: int, time_info, status) -> None:  # noqa: ANN001
        """sounddevice callback: copy only."""
        self.callbacks += 1
        self.ring.write(indata.reshape(-1))

    # -- worker side --------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        self.stats.scheduling = realtime_scheduling(self.priority)
        try:
            min_read = HOP * self.channels
            while not self.stop.is_set():
                available = self.ring.available()
                if available < min_read:
                    if self.input_done.is_set():
                        break
                    time.sleep(0.002)
                    continue
                if self.max_backlog is not None and available > self.max_backlog:
                    excess = (available - self.max_backlog) // self.channels * self.channels
                    self.ring.skip(excess)
                    self.stats.skipped_samples += excess // self.channels
                    self.ring.dropped_blocks += 1
                    self._skip_at.append(self.stats.samples)
                    self._skipped_total.append(self.stats.skipped_samples)
                block = self.ring.read(self.ring.available() // self.channels * self.channels)
                self._process(block.reshape(-1, self.channels).mean(axis=1))
            self._emit(self.chain.flush())
        except BaseException as err:  # reported by the caller; note-offs still go out
            self.error = err
        finally:
            for sink in self.sinks:  # from this thread, after its last send: nothing is left sounding
                all_off = getattr(sink, "all_off", None)
                if all_off is not None:
                    all_off()

    def _process(self, mono: np.ndarray) -> None:
        bad = ~np.isfinite(mono)
        if bad.any():
            self.stats.nonfinite += int(bad.sum())
            mono = np.where(bad, 0.0, mono).astype(np.float32)
        peak = float(np.abs(mono).max()) if len(mono) else 0.0
        self.stats.level_db = 20 * np.log10(max(peak, 1e-6))
        start = time.perf_counter()
        events = self.chain.process(mono)
        elapsed_ms = (time.perf_counter() - start) * 1000
        hops = max(len(mono) * SAMPLE_RATE / self.rate / HOP, 1e-9)
        self.stats.add_hop(elapsed_ms / hops)
        self.stats.samples += len(mono)
        self.stats.blocks += 1
        self._emit(events)

    def _emit(self, events: list[NoteEvent]) -> None:
        """Send the events, with the sustain-pedal changes decided meanwhile between them, to every sink."""
        now = time.monotonic()
        take_pedal = getattr(self.transcriber, "take_pedal", None)
        for event in interleave(events, take_pedal() if take_pedal else []):
            if isinstance(event, PedalChange):
                self.stats.pedal_down = event.down
                self.stats.pedal_downs += int(event.down)
                for sink in self.sinks:
                    pedal = getattr(sink, "pedal", None)  # a plugin's sink may not take the pedal
                    if pedal is not None:
                        pedal(event)
                continue
            for sink in self.sinks:
                sink.send(event)
            if event.on:
                self.stats.notes += 1
                self.stats.channels.add(event.timbre)
                self._sounding.add((event.timbre, event.pitch))
            else:
                self._sounding.discard((event.timbre, event.pitch))
            if self.on_event is not None:
                self.on_event(event, now)
        self.stats.sounding = len(self._sounding)

    def input_time(self, event: NoteEvent) -> float:
        """Position of ``event`` in the input in seconds: its stream time plus the audio skipped before it."""
        index = bisect.bisect_right(self._skip_at, round(event.time_s * self.rate))
        return event.time_s + (self._skipped_total[index - 1] / self.rate if index else 0.0)

    def status_line(self) -> str:
        s = self.stats
        hops = s.recent_hops(200)
        load = 100 * np.mean(hops) / (HOP / SAMPLE_RATE * 1000)
        return (f"in {s.level_db:6.1f} dBFS | notes {s.notes:5d} | sounding {s.sounding:2d} | channels {len(s.channels):2d} "
                f"| pedal {'down' if s.pedal_down else 'up  '} "
                f"| load {load:5.1f}% (p99 {np.percentile(hops, 99):5.2f} ms/hop) | dropped {self.ring.dropped_blocks}"
                + (f" | note-on ~{s.expected_latency_ms:.0f} ms (validation median)" if s.expected_latency_ms else ""))  # fmt: skip


def realtime_scheduling(priority: int) -> str:
    """Ask for real-time scheduling (SCHED_FIFO at ``priority``) for the calling thread, so that other
    programs on the machine (a browser drawing the live view, a build) cannot delay a hop; returns what
    the thread runs under. Needs permission: root, CAP_SYS_NICE, or an rtprio limit (Debian's jackd2
    package offers one for the audio group)."""
    if priority <= 0:
        return "normal"
    if not hasattr(os, "sched_setscheduler"):
        return "normal (no real-time scheduling on this system)"
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))  # 0: this thread (Linux)
    except OSError as err:
        return f"normal (real-time scheduling not permitted: {err.strerror})"
    return f"SCHED_FIFO {priority}"


def feed_file(engine: LiveEngine, path: str, realtime: bool, block: int = 512) -> None:
    """Play a file into the engine's ring like a device would (paced in real time if asked). A file that
    fails part-way (a non-finite sample, a truncated file) stops the engine with ``input_error`` set."""
    try:
        _feed(engine, path, realtime, block)
    except BaseException as err:
        engine.input_error = err
        engine.stop.set()
    finally:
        engine.input_done.set()


def _feed(engine: LiveEngine, path: str, realtime: bool, block: int) -> None:
    start = time.perf_counter()
    fed = 0
    for samples in read_blocks(path, block):
        if engine.stop.is_set():
            break
        if realtime:
            due = start + fed / engine.rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        while (
            not realtime and engine.ring.available() > engine.ring.capacity // 2 and not engine.stop.is_set()
        ):
            time.sleep(0.001)  # as fast as possible, but without overrunning the ring
        engine.ring.write(samples)
        engine.callbacks += 1
        fed += len(samples)


def find_input_device(spec: str | None) -> tuple[int | None, dict]:
    """sounddevice input device by index or name substring (None: the default input)."""
    import sounddevice as sd

    try:
        devices = sd.query_devices()
    except Exception as err:  # PortAudio missing or broken
        raise LiveError(f"audio system unavailable ({err})") from None
    inputs = [(i, d) for i, d in enumerate(devices) if d["max_input_channels"] > 0]
    if not inputs:
        raise LiveError("no audio input device found (rtamt devices lists what there is)")
    if spec is None:
        default = sd.default.device[0]
        matches = [(i, d) for i, d in inputs if i == default] or inputs[:1]
    elif spec.isdigit():
        matches = [(i, d) for i, d in inputs if i == int(spec)]
    else:
        matches = [(i, d) for i, d in inputs if spec.lower() in d["name"].lower()]
    if not matches:
        raise LiveError(f"audio input {spec!r} not found; inputs: {[d['name'] for _, d in inputs]}")
    return matches[0]


def list_devices() -> str:
    """Audio inputs with host API and rate, and MIDI outputs."""
    lines = ["audio inputs:"]
    try:
        import sounddevice as sd

        apis = sd.query_hostapis()
        for i, d in enumerate(sd.query_devices()):
            if d["max_input_channels"] > 0:
                lines.append(f"  [{i}] {d['name']} ({apis[d['hostapi']]['name']}, {d['max_input_channels']} ch, "
                             f"{d['default_samplerate']:.0f} Hz)")  # fmt: skip
    except Exception as err:
        lines.append(f"  unavailable: {err}")
    lines.append("MIDI outputs:")
    try:
        import rtmidi
    except ImportError as err:
        return "\n".join([*lines, f"  unavailable: {err}"])
    for api in rtmidi.get_compiled_api():
        api_name = rtmidi.get_api_display_name(api)
        try:
            ports = rtmidi.MidiOut(api).get_ports()
        except rtmidi.SystemError as err:
            lines.append(f"  {api_name}: unavailable ({str(err).splitlines()[0]})")
            continue
        lines += [f"  {name} ({api_name})" for name in ports] or [f"  {api_name}: no ports"]
    return "\n".join(lines)


def resolve_midi_api(api: str) -> str:
    """``auto``: JACK when a JACK server is running, else ALSA."""
    if api != "auto":
        return api
    return "jack" if jack_server_running() else "alsa"


def _is_jack_device(device: dict) -> bool:
    import sounddevice as sd

    return "jack" in sd.query_hostapis(device["hostapi"])["name"].lower()


def run_live(transcriber: Transcriber | Chain, input_spec: str | None, realtime: bool, samplerate: int | None,
             sinks: Sequence[EventSink], status: bool = True, view_port: int | None = None,
             expected_latency_ms: float | None = None, stats_every: float | None = None,
             reconnect: bool = False, signals: StopSignals | None = None,
             priority: int = LIVE_WORKER_PRIORITY) -> dict:  # fmt: skip
    """The `rtamt live` command: the chain on the input (device or file), every event to each sink; the
    sinks are closed at the end (every note ended). Returns the final statistics (``stopped_by`` says why
    it ended); raises LiveError when the input or the JACK server stops (after note-offs), unless
    ``reconnect``, which waits for them to come back and restarts the command. ``view_port``: also serve
    the live view there. ``expected_latency_ms``: the validation median note-on latency of the settings
    running, shown on the status line. ``stats_every`` prints a JSON statistics line on stderr every that
    many seconds. ``signals``: Ctrl-C and SIGTERM handling already installed by the caller (otherwise installed
    here and given back on return); one that arrived before the stream starts ends the run before it opens
    the input.
    ``priority``: the worker thread's SCHED_FIFO priority where permitted (0: normal scheduling)."""
    from rtamt.sinks import JsonLinesSink, MidiPortSink

    if signals is None:  # installed here, given back on return (a caller using this as a library keeps its own)
        own = StopSignals(LIVE_STOP_DEADLINE_S).install()
        try:
            return run_live(transcriber, input_spec, realtime, samplerate, sinks, status, view_port,
                            expected_latency_ms, stats_every, reconnect, own, priority)  # fmt: skip
        finally:
            own.close()

    is_file = input_spec is not None and Path(input_spec).is_file()
    device = None
    if is_file:
        rate, channels = probe(input_spec).samplerate, 1
    else:
        index, device = find_input_device(input_spec)
        rate = int(samplerate or device["default_samplerate"])
        channels = min(2, device["max_input_channels"])
    midi_ports = [sink for sink in sinks if isinstance(sink, MidiPortSink)]
    api = midi_ports[0].api if midi_ports else None
    jack_input = device is not None and _is_jack_device(device)
    jack = api == "jack" or jack_input
    monitor = JackMonitor() if jack else None
    stopped_by = {"reason": "end of input"}
    backlog = None if is_file and not realtime else 0.5
    engine = LiveEngine(transcriber, rate, channels, sinks, None, backlog, stop=signals.requested, priority=priority)
    engine.stats.expected_latency_ms = expected_latency_ms
    view = None
    if view_port is not None:
        from rtamt.view import open_view

        kind = ("file, real time" if realtime else "file, as fast as possible") if is_file else "audio input"
        view = open_view(
            view_port, engine, f"{input_spec or 'default input'} ({kind})"
        )  # the caller closes sinks
        engine.sinks.append(view)
        print(f"rtamt: live view at {view.url}", file=sys.stderr, flush=True)

    def stdout_closed() -> None:  # `--events json | head`: stop quietly, note-offs still go out
        stopped_by["reason"] = "stdout closed"
        engine.stop.set()

    for sink in sinks:
        if isinstance(sink, JsonLinesSink):
            sink.time_of = engine.input_time  # positions in the input, also after skipped audio
            sink.on_broken_pipe = stdout_closed
    stream = None
    deadline = signals.deadline
    engine.start()
    failure = None
    try:
        starting = not engine.stop.is_set()  # else a signal came while setting up: nothing to open
        if starting and is_file:
            feeder = threading.Thread(target=feed_file, args=(engine, input_spec, realtime), daemon=True)
            feeder.start()
        elif starting:
            import sounddevice as sd

            try:
                # the device's low-latency buffering (sounddevice's default is its high-latency setting)
                stream = sd.InputStream(device=index, samplerate=rate, channels=channels, dtype="float32",
                                        latency="low", callback=engine.callback)  # fmt: skip
                stream.start()
            except Exception as err:
                raise LiveError(f"cannot open audio input {device['name']!r} at {rate} Hz ({err})") from None
        failure = _watch(engine, stream, monitor, status, stats_every)
    finally:
        if failure and not reconnect:
            deadline.arm(LIVE_STOP_DEADLINE_S, EXIT_DEVICE, f"{failure}; ended without waiting for it")
        engine.stop.set()
        # JACK clients of a dead server are left alone: closing them waits for it (RtMidi's even holds the
        # interpreter lock meanwhile), and the process then ends with os._exit
        jack_dead = monitor is not None and monitor.dead.is_set()
        if stream is not None and jack_dead and jack_input:
            abandon("audio-input-close")
        elif stream is not None:
            close = lambda: (stream.abort(), stream.close())  # noqa: E731
            call_with_timeout("audio-input-close", close, LIVE_BACKEND_CLOSE_S)
        engine.join(2 * LIVE_BACKEND_CLOSE_S)
        for sink in sinks:
            if isinstance(sink, MidiPortSink) and jack_dead and api == "jack":
                abandon("midi-close")  # the worker sent its note-offs (they go out if the server still can)
                sink.closed = True  # and nobody closes it later
            elif not getattr(sink, "closed", False):
                name = getattr(sink, "name", "sink")
                if engine._thread.is_alive():  # the worker hangs (in a backend): note-offs from here
                    call_with_timeout(f"{name}-notes-off", sink.all_off, LIVE_BACKEND_CLOSE_S)
                call_with_timeout(f"{name}-close", sink.close, LIVE_BACKEND_CLOSE_S + 0.3)
        if view is not None:
            view.close()
        if monitor is not None:
            monitor.close(LIVE_BACKEND_CLOSE_S)
        if status:
            print("\r" + engine.status_line(), file=sys.stderr)
    if not backend_abandoned():
        deadline.cancel()
    if engine.input_error is not None:
        raise engine.input_error
    if engine.error is not None:
        raise engine.error
    if failure and reconnect and signals.signal is None:
        print(f"rtamt: {failure}; waiting for it to come back (--reconnect; Ctrl-C to stop)", file=sys.stderr)
        print(json.dumps(engine.stats.summary(engine.ring, rate)), file=sys.stderr)
        engine.stop.clear()
        spec = "-" if is_file else input_spec
        if wait_until(lambda: backend_back(jack, spec), LIVE_RECONNECT_POLL_S, engine.stop):
            print("rtamt: back; starting again", file=sys.stderr)
            restart_process()
        failure = None
    if failure:
        raise LiveError(failure)
    if signals.signal is not None:
        stopped_by["reason"] = signals.name
    return {**engine.stats.summary(engine.ring, rate), "stopped_by": stopped_by["reason"]}


def _watch(engine: LiveEngine, stream, monitor: JackMonitor | None, status: bool,  # noqa: ANN001
           stats_every: float | None) -> str | None:  # fmt: skip
    """Wait for the worker to end, showing the status line; return what failed when the input stops
    delivering audio or the JACK server goes away (None when the worker ended by itself)."""
    last_status = last_stats = time.monotonic()
    callbacks, alive_at, hops_at = -1, time.monotonic(), 0
    while engine._thread.is_alive():
        engine.join(0.1)
        now = time.monotonic()
        if monitor is not None and monitor.dead.is_set():
            return "the JACK server stopped"
        if stream is not None:
            if engine.callbacks != callbacks:
                callbacks, alive_at = engine.callbacks, now
            elif now - alive_at > LIVE_INPUT_TIMEOUT_S or not stream.active:
                return "the audio input stopped (device disconnected?)"
        if status and now - last_status > 0.5:
            print("\r" + engine.status_line(), end="", file=sys.stderr, flush=True)
            last_status = now
        if stats_every and now - last_stats >= stats_every:
            print(json.dumps({"stats": _interval_stats(engine, hops_at)}), file=sys.stderr, flush=True)
            last_stats, hops_at = now, engine.stats.hops
    return None


def _interval_stats(engine: LiveEngine, hops_at: int) -> dict:
    """Statistics since the previous report (per-hop p99 over its hops) and totals so far."""
    from rtamt.bench import _rss_mb

    recent = engine.stats.recent_hops(engine.stats.hops - hops_at)
    return {"time": round(time.time(), 1), "audio_s": round(engine.stats.samples / engine.rate, 1),
            "per_hop_ms_p99": round(float(np.percentile(recent, 99)), 3),
            "blocks": engine.stats.hops - hops_at,
            "dropped_blocks": engine.ring.dropped_blocks, "notes": engine.stats.notes,
            "sounding": engine.stats.sounding, "rss_mb": _rss_mb()}  # fmt: skip
