"""Sinks: where note events go. A sink takes ``send(event)`` for every event in stream order, ``pedal(change)``
for each sustain-pedal change between them, and ``close()``, which ends every note still sounding, lifts
the pedal and releases the sink. Built in: a MIDI output port, a
MIDI file (one track per timbre), JSON lines and OSC; more come from plugins (rtamt/plugins.py).

Sinks run in the live engine's worker thread, never in the audio callback.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import replace
from typing import IO, Protocol, runtime_checkable

import mido

from rtamt.live import LiveError
from rtamt.midi import ALL_NOTES_OFF, SUSTAIN_PEDAL, channel_for, write_midi_file
from rtamt.sustain import PedalChange
from rtamt.tracker import NoteEvent

PORT_RELEASE_S = 0.25  # wait before closing a MIDI port, so the MIDI system delivers the last note-offs
OSC_ADDRESS = "/rtamt/note"
OSC_PEDAL_ADDRESS = "/rtamt/pedal"


@runtime_checkable
class EventSink(Protocol):
    """Anything with ``send(event)`` and ``close()`` can be a sink (a second ``close`` must do nothing)."""

    def send(self, event: NoteEvent) -> None: ...

    def close(self) -> None: ...


class Sink(ABC):
    """Base for sinks: keeps what sounds, so that a re-strike ends the previous note first, a note-off
    for a silent note is dropped, and :meth:`close` ends every sounding note and lifts the pedal.
    Subclasses implement :meth:`emit` (one well-formed event), :meth:`emit_pedal` if they carry the
    sustain pedal and, if they hold something, :meth:`release`. Thread-safe: when stopping, the engine
    may end the notes from another thread while a slow worker still sends; what it sends after
    :meth:`close` is dropped, so no note-on can follow the last note-offs."""

    name = "sink"

    def __init__(self) -> None:
        self.sounding: dict[tuple[int, int], NoteEvent] = {}  # (timbre, pitch) -> its note-on
        self.sent = 0  # note-ons sent
        self._frame = 0  # latest frame seen: where close() ends what still sounds
        self.pedal_down = False
        self.closed = False
        self._lock = threading.RLock()

    def send(self, event: NoteEvent) -> None:
        with self._lock:
            if self.closed:
                return
            key = (event.timbre, event.pitch)
            self._frame = max(self._frame, event.frame)
            if event.on:
                if key in self.sounding:  # re-strike: end the previous note first
                    self.emit(replace(event, on=False, velocity=0))
                self.sounding[key] = event
                self.sent += 1
            elif self.sounding.pop(key, None) is None:
                return
            self.emit(event)

    def pedal(self, change: PedalChange) -> None:
        """A sustain-pedal change (repeats of the current state are dropped)."""
        with self._lock:
            if change.down != self.pedal_down and not self.closed:
                self.pedal_down = change.down
                self._frame = max(self._frame, change.frame)
                self.emit_pedal(change)

    @abstractmethod
    def emit(self, event: NoteEvent) -> None:
        """Deliver one event (note-ons and note-offs arrive paired)."""

    def emit_pedal(self, change: PedalChange) -> None:
        """Deliver a sustain-pedal change (sinks without a pedal drop it)."""

    def all_off(self) -> None:
        """A note-off for every sounding note, then the pedal up."""
        with self._lock:
            last = self._frame
            for (timbre, pitch), on in sorted(self.sounding.items()):
                end = max(self._frame, on.frame + 1)
                self.emit(NoteEvent(False, pitch, end, end, 0, timbre))
                last = max(last, end)
            self.sounding.clear()
            if self.pedal_down:
                self.pedal_down = False
                self.emit_pedal(PedalChange(False, last, last))

    def release(self) -> None:
        """Give back what the sink holds (port, file); called once by :meth:`close`."""

    def close(self) -> None:
        """End every sounding note and release the sink; a second call does nothing."""
        with self._lock:
            if self.closed:
                return
            self.all_off()
            self.closed = True
        self.release()


class MidiPortSink(Sink):
    """Note events to a MIDI output port (python-rtmidi): a virtual port named ``virtual`` or the existing
    port whose name contains ``port``; ``api`` auto, jack or alsa."""

    name = "midi-port"

    def __init__(self, virtual: str | None = "rtamt", port: str | None = None, api: str = "auto") -> None:
        super().__init__()
        import rtmidi

        self.channels: set[int] = set()  # MIDI channels a note went out on: the pedal goes to each
        self._played_since_all_off = False  # a note-on went out since the last all_off

        if not port and sys.platform == "win32":
            raise LiveError(no_virtual_ports_message("Windows MIDI cannot create virtual ports"))
        apis = {"auto": rtmidi.API_UNSPECIFIED, "jack": rtmidi.API_UNIX_JACK, "alsa": rtmidi.API_LINUX_ALSA}
        if api not in apis:
            raise LiveError(f"MIDI api {api!r} unknown: one of {sorted(apis)}")
        self.api = api
        try:
            self._out = rtmidi.MidiOut(apis[api], name="rtamt")
        except rtmidi.SystemError as err:
            hint = "is a JACK server running?" if api == "jack" else "with a JACK server use --midi-api jack"
            raise LiveError(f"no MIDI system available through {api} ({err}); {hint}, or use --no-midi") from None
        if port:
            ports = self._out.get_ports()
            matches = [i for i, name in enumerate(ports) if port.lower() in name.lower()]
            if not matches:
                raise LiveError(f"MIDI port {port!r} not found; available: {ports or 'none'}")
            self._out.open_port(matches[0])
            self.port_name = ports[matches[0]]
            return
        try:
            self._out.open_virtual_port(virtual or "rtamt")
        except (rtmidi.SystemError, NotImplementedError) as err:
            reason = f"cannot open a virtual MIDI port here ({err})"
            raise LiveError(no_virtual_ports_message(reason)) from None
        self.port_name = virtual or "rtamt"

    def emit(self, event: NoteEvent) -> None:
        channel = channel_for(event.timbre)
        if event.on and channel not in self.channels:
            self.channels.add(channel)
            if self.pedal_down:  # a channel opened under the pedal gets it too
                self._send_pedal(channel, True)
        if event.on:
            self._played_since_all_off = True
            velocity = max(event.velocity, 1)
            message = mido.Message("note_on", channel=channel, note=event.pitch, velocity=velocity)
        else:
            message = mido.Message("note_off", channel=channel, note=event.pitch)
        self._out.send_message(message.bytes())

    def emit_pedal(self, change: PedalChange) -> None:
        for channel in sorted(self.channels):
            self._send_pedal(channel, change.down)

    def _send_pedal(self, channel: int, down: bool) -> None:
        message = mido.Message("control_change", channel=channel, control=SUSTAIN_PEDAL, value=127 if down else 0)
        self._out.send_message(message.bytes())

    def all_off(self) -> None:
        """Note-off for every sounding note and the pedal up, then All Notes Off on every channel a note
        went out on since the last call: a note-off the MIDI system lost on the way (a JACK graph that
        overran a cycle drops events) cannot leave a synth sounding."""
        with self._lock:
            super().all_off()
            if self._played_since_all_off:
                self._all_notes_off()
            self._played_since_all_off = False

    def _all_notes_off(self) -> None:
        for channel in sorted(self.channels):
            self._out.send_message(mido.Message("control_change", channel=channel, control=ALL_NOTES_OFF).bytes())

    def release(self) -> None:
        time.sleep(PORT_RELEASE_S)  # a loaded machine can hold back a JACK cycle well beyond its period
        self._all_notes_off()  # again, in a later cycle: an overrun cycle may have dropped the first
        self._out.close_port()
        del self._out


def no_virtual_ports_message(reason: str) -> str:
    """What to do where the MIDI system cannot create a virtual port (Windows MME)."""
    return (f"{reason}; install a loopback MIDI driver (e.g. loopMIDI on Windows), then send to its port "
            "with --midi-port NAME (rtamt devices lists the ports)")  # fmt: skip


class MidiFileSink(Sink):
    """Note events into a type-1 MIDI file at ``path``, one track per timbre, written (atomically) on
    close."""

    name = "midi-file"

    def __init__(self, path: str | os.PathLike = "rtamt.mid") -> None:
        super().__init__()
        self.path = path
        self.events: list[NoteEvent] = []
        self.pedal_changes: list[PedalChange] = []
        self.tracks = 0

    def emit(self, event: NoteEvent) -> None:
        self.events.append(event)

    def emit_pedal(self, change: PedalChange) -> None:
        self.pedal_changes.append(change)

    def release(self) -> None:
        self.tracks = write_midi_file(self.path, self.events, [e.timbre for e in self.events], pedal=self.pedal_changes)


class JsonLinesSink(Sink):
    """One JSON object per event, on stdout (``path`` "-") or appended to a file: ``t`` (monotonic clock
    when sent), ``on``, ``pitch``, ``velocity``, ``channel`` (1-16), ``time_s`` (position in the input:
    ``time_of(event)``, by default its stream time; the live engine adds back audio it skipped); a
    sustain-pedal change as ``t``, ``pedal`` ("down" or "up") and ``time_s``. When the
    reader of stdout goes away (``| head``) it stops writing and calls ``on_broken_pipe``."""

    name = "jsonl"

    def __init__(self, path: str | os.PathLike = "-") -> None:
        super().__init__()
        self._own = os.fspath(path) != "-"
        self._out: IO[str] = open(path, "a") if self._own else sys.stdout  # noqa: SIM115 - closed in release
        self.time_of: Callable[[NoteEvent | PedalChange], float] = lambda event: event.time_s
        self.on_broken_pipe: Callable[[], None] | None = None
        self.broken = False

    def emit(self, event: NoteEvent) -> None:
        self._write({"t": round(time.monotonic(), 4), "on": event.on, "pitch": event.pitch,
                     "velocity": event.velocity, "channel": channel_for(event.timbre) + 1,
                     "time_s": round(self.time_of(event), 4)})  # fmt: skip

    def emit_pedal(self, change: PedalChange) -> None:
        self._write({"t": round(time.monotonic(), 4), "pedal": "down" if change.down else "up",
                     "time_s": round(self.time_of(change), 4)})  # fmt: skip

    def _write(self, record: dict) -> None:
        if self.broken:
            return
        try:
            self._out.write(json.dumps(record) + "\n")
            self._out.flush()
        except BrokenPipeError:  # stdout's reader went away: stop quietly, the other sinks carry on
            self.broken = True
            os.dup2(os.open(os.devnull, os.O_WRONLY), self._out.fileno())  # no error again at exit
            if self.on_broken_pipe is not None:
                self.on_broken_pipe()

    def release(self) -> None:
        if self._own:
            self._out.close()


class OscSink(Sink):
    """Open Sound Control over UDP (python-osc, the ``osc`` extra): every event as ``address`` with
    channel (1-16), pitch, velocity (0 ends the note) and stream time in seconds, and each sustain-pedal
    change as ``pedal_address`` with 1 (down) or 0 (up) and stream time, for Max, Pd, TouchDesigner,
    SuperCollider."""

    name = "osc"

    def __init__(self, host: str = "127.0.0.1", port: int | str = 9000, address: str = OSC_ADDRESS,
                 pedal_address: str = OSC_PEDAL_ADDRESS) -> None:  # fmt: skip
        super().__init__()
        try:
            from pythonosc.udp_client import SimpleUDPClient
        except ImportError:
            raise ImportError("the osc sink needs python-osc: pip install 'rtamt-live[osc]'") from None
        self.address, self.pedal_address = address, pedal_address
        self._client = SimpleUDPClient(host, int(port))

    def emit(self, event: NoteEvent) -> None:
        velocity = max(event.velocity, 1) if event.on else 0
        self._client.send_message(self.address, [channel_for(event.timbre) + 1, event.pitch, velocity,
                                                 float(event.time_s)])  # fmt: skip

    def emit_pedal(self, change: PedalChange) -> None:
        self._client.send_message(self.pedal_address, [int(change.down), float(change.time_s)])


BUILTIN_SINKS: dict[str, type[Sink]] = {
    cls.name: cls for cls in (MidiPortSink, MidiFileSink, JsonLinesSink, OscSink)
}
