"""Sinks: the base class's note bookkeeping, the MIDI file, JSON lines and OSC sinks, several at once from
the command line, and the message where virtual MIDI ports cannot exist."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import mido
import pytest

from rtamt.live import LiveError
from rtamt.plugins import PluginError, make, parse_spec
from rtamt.sinks import JsonLinesSink, MidiFileSink, MidiPortSink, Sink
from rtamt.tracker import NoteEvent

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "duet" / "mix.flac"


class Recorder(Sink):
    name = "recorder"

    def __init__(self) -> None:
        super().__init__()
        self.got: list[NoteEvent] = []
        self.released = False

    def emit(self, event: NoteEvent) -> None:
        self.got.append(event)

    def release(self) -> None:
        self.released = True


def on(pitch: int, frame: int, timbre: int = 0) -> NoteEvent:
    return NoteEvent(True, pitch, frame, frame + 1, 90, timbre)


def off(pitch: int, frame: int, timbre: int = 0) -> NoteEvent:
    return NoteEvent(False, pitch, frame, frame + 1, 0, timbre)


def test_sink_ends_restrikes_drops_stray_offs_and_closes_every_sounding_note() -> None:
    sink = Recorder()
    for event in [on(60, 0), on(60, 5), off(62, 6), on(64, 7, timbre=1), off(60, 9)]:
        sink.send(event)
    assert [(e.on, e.pitch, e.frame) for e in sink.got] == [(True, 60, 0), (False, 60, 5), (True, 60, 5),
                                                            (True, 64, 7), (False, 60, 9)]  # fmt: skip
    sink.close()
    assert sink.got[-1] == NoteEvent(False, 64, 9, 9, 0, 1) and sink.released and not sink.sounding
    sink.released = False
    sink.close()  # a second close does nothing
    assert not sink.released
    count = len(sink.got)
    sink.send(on(67, 12))  # a slow worker's late note after the close is dropped: no note-on after the note-offs
    assert len(sink.got) == count and not sink.sounding


def test_midi_file_sink_writes_one_track_per_timbre_and_ends_hanging_notes(tmp_path: Path) -> None:
    sink = MidiFileSink(tmp_path / "out.mid")
    for event in [on(60, 0), on(67, 2, timbre=1), off(60, 40), on(72, 50)]:
        sink.send(event)
    sink.close()
    midi = mido.MidiFile(tmp_path / "out.mid")
    assert sink.tracks == 2 and len(midi.tracks) == 3
    for track in midi.tracks[1:]:
        ons = [m.note for m in track if m.type == "note_on" and m.velocity > 0]
        offs = [m.note for m in track if m.type == "note_off" or (m.type == "note_on" and m.velocity == 0)]
        assert sorted(ons) == sorted(offs) and ons  # every note ended
    assert {m.channel for m in midi.tracks[2] if m.type == "note_on"} == {1}


def test_jsonl_sink_appends_one_object_per_event(tmp_path: Path) -> None:
    sink = JsonLinesSink(tmp_path / "events.jsonl")
    sink.send(on(60, 10, timbre=1))
    sink.close()
    rows = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [(r["on"], r["pitch"], r["channel"]) for r in rows] == [(True, 60, 2), (False, 60, 2)]
    assert rows[0]["time_s"] == pytest.approx(10 * 256 / 22050, abs=1e-4)


def test_sink_specs_parse_names_options_and_module_attrs() -> None:
    assert parse_spec("osc:host=127.0.0.1,port=9000") == ("osc", {"host": "127.0.0.1", "port": "9000"})
    assert parse_spec("midi-port") == ("midi-port", {})
    assert parse_spec("tests.test_sinks:Recorder") == ("tests.test_sinks:Recorder", {})
    assert parse_spec("pkg.mod:Thing:path=a.txt") == ("pkg.mod:Thing", {"path": "a.txt"})
    assert type(make("sinks", "tests.test_sinks:Recorder")).__name__ == "Recorder"
    with pytest.raises(PluginError, match="no sink named 'nope'; available: .*jsonl.*osc"):
        make("sinks", "nope")
    with pytest.raises(PluginError, match="key=value"):
        parse_spec("osc:9000")


class FakeMidiOut:
    """Stands in for python-rtmidi's MidiOut: keeps every message sent."""

    def __init__(self) -> None:
        self.sent: list[list[int]] = []

    def send_message(self, message: list[int]) -> None:
        self.sent.append(list(message))

    def close_port(self) -> None:
        pass


def test_midi_port_sink_ends_with_all_notes_off_on_every_channel_it_played(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A note-off the MIDI system loses on the way (a JACK cycle overrun drops events) must not leave a
    synth sounding: stopping sends All Notes Off on every channel a note went out on, not only on the
    channels with a note still sounding, and again in a later JACK cycle, when the port closes."""
    pytest.importorskip("rtmidi")
    monkeypatch.setattr("rtamt.sinks.PORT_RELEASE_S", 0.0)
    sink = MidiPortSink.__new__(MidiPortSink)
    Sink.__init__(sink)
    sink.channels, sink._played_since_all_off, sink._out = set(), False, FakeMidiOut()
    out = sink._out
    for event in [on(60, 0), off(60, 4), on(64, 5, timbre=1)]:
        sink.send(event)
    sink.all_off()
    assert out.sent[-3:] == [[0x81, 64, 64], [0xB0, 123, 0], [0xB1, 123, 0]]  # channel 0 has nothing sounding
    count = len(out.sent)
    sink.close()  # nothing played since: no note-offs, and All Notes Off once more just before the port closes
    assert out.sent[count:] == [[0xB0, 123, 0], [0xB1, 123, 0]]


def test_all_notes_off_ends_the_notes_of_its_channel_only() -> None:
    from rtamt.jack_e2e import events_to_notes

    events = [(0.0, 0x90, 60, 90), (0.1, 0x91, 62, 90), (0.2, 0x90, 64, 90), (0.5, 0xB0, 123, 0)]
    notes, hanging = events_to_notes(events)
    assert notes == [(0.0, 0.5, 60, 0), (0.2, 0.5, 64, 0)] and hanging == 1


def test_without_virtual_ports_the_message_names_midi_port(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("rtmidi")
    monkeypatch.setattr(sys, "platform", "win32")
    with pytest.raises(LiveError, match="loopback MIDI driver .*loopMIDI.*--midi-port NAME"):
        MidiPortSink()


def test_live_sends_the_same_notes_to_osc_and_jsonl_at_once() -> None:
    """`rtamt live --sink osc:... --sink jsonl` on the example: a local UDP port receives every event the
    JSON lines show, in order."""
    pytest.importorskip("pythonosc")
    from pythonosc.osc_message import OscMessage

    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(60)
    port = receiver.getsockname()[1]
    received: list[tuple] = []
    done = threading.Event()

    def listen() -> None:
        while not done.is_set():
            try:
                data = receiver.recv(65536)
            except OSError:
                return
            message = OscMessage(data)
            received.append((message.address, *message.params))

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    run = subprocess.run([sys.executable, "-m", "rtamt", "live", "--input", str(EXAMPLE), "--quiet",
                          "--sink", f"osc:host=127.0.0.1,port={port}", "--sink", "jsonl"],
                         capture_output=True, text=True, timeout=300, env={**os.environ})  # fmt: skip
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    expected = [("/rtamt/note", r["channel"], r["pitch"], max(r["velocity"], 1) if r["on"] else 0)
                for r in lines]  # fmt: skip
    deadline = threading.Event()
    for _ in range(100):  # UDP on the loopback: give the last datagrams a moment
        if len(received) >= len(expected):
            break
        deadline.wait(0.05)
    done.set()
    receiver.close()
    assert len(lines) >= 40 and sum(r["on"] for r in lines) * 2 == len(lines)
    assert [r[:4] for r in received] == expected
    assert [r[4] for r in received] == pytest.approx([r["time_s"] for r in lines], abs=1e-3)


def test_an_unknown_sink_is_a_clear_error() -> None:
    run = subprocess.run([sys.executable, "-m", "rtamt", "live", "--input", str(EXAMPLE), "--quiet",
                          "--sink", "nope"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 6 and "no sink named 'nope'" in run.stderr


def test_sinks_are_closed_when_the_input_cannot_be_opened(tmp_path: Path) -> None:
    """The MIDI file sink still writes its (empty) file: the sinks opened before the input failed are
    closed."""
    try:
        import sounddevice  # noqa: F401
    except (ImportError, OSError) as err:  # PortAudio missing: the device lookup itself fails
        pytest.skip(f"needs PortAudio (apt-get install libportaudio2): {err}")
    out = tmp_path / "never.mid"
    run = subprocess.run([sys.executable, "-m", "rtamt", "live", "--input", "no-such-device-xyz", "--quiet",
                          "--sink", f"midi-file:path={out}"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 4, run.stderr
    assert out.exists() and len(mido.MidiFile(out).tracks) == 1
