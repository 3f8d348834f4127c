"""MIDI sinks: a multi-track MIDI file (one track per channel), written atomically."""

from __future__ import annotations

import os
from collections import defaultdict

import mido

from rtamt.outputs import open_output
from rtamt.sustain import PedalChange
from rtamt.tracker import NoteEvent

TICKS_PER_BEAT = 480
TEMPO_US = 500_000  # 120 bpm: 960 ticks per second
DRUM_CHANNEL = 9  # GM percussion (channel 10): never used for pitched notes
SUSTAIN_PEDAL = 64  # MIDI controller number (CC64)
ALL_NOTES_OFF = 123  # MIDI channel-mode controller: ends every note of its channel


def channel_for(index: int) -> int:
    """MIDI channel (0-based) of the index-th timbre: 0..15 skipping the drum channel."""
    channels = [c for c in range(16) if c != DRUM_CHANNEL]
    return channels[index % len(channels)]


def write_midi_file(path: str | os.PathLike, events: list[NoteEvent], channels: list[int] | None = None,
                    names: list[str] | None = None, programs: list[int] | None = None,
                    pedal: list[PedalChange] | None = None) -> int:  # fmt: skip
    """Write ``events`` as :func:`build_midi` does, through a temporary file (see rtamt.outputs), so a
    failure leaves nothing behind. Returns the number of tracks."""
    midi = build_midi(events, channels, names, programs, pedal)
    with open_output(path) as output:
        output.commit(lambda tmp: midi.save(str(tmp)))
    return len(midi.tracks) - 1


def build_midi(events: list[NoteEvent], channels: list[int] | None = None, names: list[str] | None = None,
               programs: list[int] | None = None, pedal: list[PedalChange] | None = None) -> mido.MidiFile:  # fmt: skip
    """``events`` (channels[i] is the timbre index of events[i], default 0) as a type-1 MIDI file with a
    tempo track and one track per timbre; each ``pedal`` change (sustain, CC64) goes into every track.
    At one tick the pedal goes down before the note-offs and comes up after them."""
    channels = channels or [0] * len(events)
    by_timbre: dict[int, list[NoteEvent]] = defaultdict(list)
    for event, timbre in zip(events, channels):
        by_timbre[timbre].append(event)
    ticks_per_s = TICKS_PER_BEAT * 1_000_000 / TEMPO_US
    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    midi.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=TEMPO_US, time=0)]))
    for timbre in sorted(by_timbre):
        channel = channel_for(timbre)
        name = names[timbre] if names else f"timbre {timbre + 1}"
        track = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0)])
        program = programs[timbre] if programs else 0
        track.append(mido.Message("program_change", program=program, channel=channel, time=0))
        stamped = [(round(e.time_s * ticks_per_s), 1 if not e.on else 3, e) for e in by_timbre[timbre]]
        stamped += [(round(c.time_s * ticks_per_s), 0 if c.down else 2, c) for c in pedal or []]
        now = 0
        for tick, _, event in sorted(stamped, key=lambda item: (item[0], item[1])):
            if isinstance(event, PedalChange):
                message = mido.Message("control_change", control=SUSTAIN_PEDAL, value=127 if event.down else 0,
                                       channel=channel, time=tick - now)  # fmt: skip
            else:
                kind = "note_on" if event.on else "note_off"
                message = mido.Message(kind, note=event.pitch, velocity=event.velocity if event.on else 0,
                                       channel=channel, time=tick - now)  # fmt: skip
            track.append(message)
            now = tick
        midi.tracks.append(track)
    return midi
