"""Render one instrument part to audio with the FluidSynth command-line synthesiser.

Each part is rendered alone (one program, one channel), so stems and per-note instrument labels are exact;
mixing happens in numpy. Reverb and chorus are off: room sound is an augmentation applied later.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np
import soundfile as sf

SOUNDFONT_DIRS = (Path("/usr/share/sounds/sf2"), Path("/usr/share/sounds/sf3"))
SOUNDFONT_PACKAGES = "fluid-soundfont-gm timgm6mb-soundfont musescore-general-soundfont"
TICKS_PER_BEAT = 960
TEMPO_US = 500_000  # 120 bpm: one beat = 0.5 s, so seconds convert to ticks exactly


@dataclass(frozen=True)
class Note:
    """One note of one part, in seconds."""

    onset_s: float
    offset_s: float
    pitch: int
    velocity: int = 90


def soundfont_path(name: str) -> Path:
    """Path of a soundfont installed by Debian's packages (FluidR3_GM, TimGM6mb, MuseScore_General)."""
    for directory in SOUNDFONT_DIRS:
        for candidate in (directory / f"{name}.sf2", directory / f"{name}.sf3"):
            if candidate.exists():
                return candidate
    raise FileNotFoundError(f"soundfont {name} not found (apt-get install {SOUNDFONT_PACKAGES})")


def seconds_to_ticks(seconds: float) -> int:
    return round(seconds * TICKS_PER_BEAT * 1_000_000 / TEMPO_US)


def part_to_midi(notes: list[Note], program: int, channel: int = 0, name: str = "") -> mido.MidiTrack:
    """One MIDI track holding ``notes`` on ``channel`` with a program change at time 0."""
    track = mido.MidiTrack()
    if name:
        track.append(mido.MetaMessage("track_name", name=name, time=0))
    track.append(mido.Message("program_change", program=program, channel=channel, time=0))
    events = []
    for note in notes:
        events.append((seconds_to_ticks(note.onset_s), 1, note.pitch, note.velocity))
        events.append((seconds_to_ticks(note.offset_s), 0, note.pitch, 0))
    events.sort()  # note-offs (0) before note-ons (1) at the same tick
    now = 0
    for tick, is_on, pitch, velocity in events:
        kind = "note_on" if is_on else "note_off"
        track.append(mido.Message(kind, note=pitch, velocity=velocity, channel=channel, time=tick - now))
        now = tick
    return track


def midi_file(tracks: list[mido.MidiTrack]) -> mido.MidiFile:
    """A type-1 MIDI file at 120 bpm holding ``tracks``."""
    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    tempo = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=TEMPO_US, time=0)])
    midi.tracks.extend([tempo, *tracks])
    return midi


def render_part(notes: list[Note], program: int, soundfont: str, rate: int, tail_s: float = 1.0) -> np.ndarray:
    """Render ``notes`` played by GM ``program`` (0-based) with ``soundfont`` to mono float32 at ``rate``."""
    if shutil.which("fluidsynth") is None:
        raise RuntimeError("fluidsynth is not installed (apt-get install fluidsynth)")
    end_s = max((note.offset_s for note in notes), default=0.0) + tail_s
    with tempfile.TemporaryDirectory() as tmp:
        mid_path, wav_path = os.path.join(tmp, "part.mid"), os.path.join(tmp, "part.wav")
        midi_file([part_to_midi(notes, program)]).save(mid_path)
        subprocess.run(
            ["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.5", "-r", str(rate),
             "-F", wav_path, str(soundfont_path(soundfont)), mid_path],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        audio, _ = sf.read(wav_path, dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    length = int(end_s * rate)
    return np.pad(mono, (0, max(0, length - len(mono))))[:length]
