"""Compose and render the bundled example: a 17-second duet for flute and cello (original, D minor).

    python examples/make_duet.py        # needs the `train` extra and FluidSynth (see README)

Writes examples/duet/: score.mid (one track per instrument), notes.csv (instrument, onset_s, offset_s,
midi; the BACH10 layout) and mix.flac (44.1 kHz mono, both parts rendered alone with FluidR3_GM and
mixed in numpy, peak at -1 dBFS).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import soundfile as sf

from rtamt.training.render import Note, midi_file, part_to_midi, render_part

OUT = Path(__file__).resolve().parent / "duet"
RATE = 44_100
BEAT_S = 60.0 / 112
LEAD_IN_BEATS = 1.0  # the music starts after about half a second of silence
NAMES = {"C": 0, "C#": 1, "D": 2, "Eb": 3, "E": 4, "F": 5, "F#": 6, "G": 7, "G#": 8, "A": 9, "Bb": 10, "B": 11}

# (note name with octave, or "r" for a rest; length in beats)
FLUTE = [
    ("D5", 1), ("E5", 1), ("F5", 1), ("G5", 1), ("A5", 2), ("F5", 1), ("D5", 1),
    ("Bb5", 1), ("A5", 1), ("G5", 1), ("F5", 1), ("E5", 2), ("C#5", 1), ("A4", 1),
    ("D5", 0.5), ("F5", 0.5), ("A5", 1), ("D6", 1.5), ("r", 0.5), ("C6", 1), ("Bb5", 1), ("A5", 1), ("G5", 1),
    ("F5", 1), ("E5", 1), ("D5", 1), ("C#5", 1), ("D5", 3), ("r", 1),
]
CELLO = [
    ("D3", 2), ("A2", 2), ("D3", 1), ("C3", 1), ("Bb2", 1), ("A2", 1),
    ("G2", 2), ("G3", 2), ("A2", 2), ("A3", 1), ("A3", 1),
    ("Bb2", 2), ("F3", 2), ("E3", 1), ("G3", 1), ("C#3", 1), ("E3", 1),
    ("F3", 1), ("G3", 1), ("A3", 1), ("A2", 1), ("D3", 3), ("r", 1),
]
PARTS = {"flute": (73, FLUTE, 0.8, 96), "cello": (42, CELLO, 1.0, 84)}  # GM program (0-based), line, gain, vel


def midi_number(name: str) -> int:
    return 12 * (int(name[-1]) + 1) + NAMES[name[:-1]]


def line_to_notes(line: list[tuple[str, float]], velocity: int) -> list[Note]:
    notes, beat = [], LEAD_IN_BEATS
    for name, beats in line:
        if name != "r":
            onset, offset = beat * BEAT_S, (beat + beats) * BEAT_S - 0.03  # slightly detached
            notes.append(Note(round(onset, 4), round(offset, 4), midi_number(name), velocity))
        beat += beats
    return notes


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    tracks, rows, stems = [], [], []
    for channel, (name, (program, line, gain, velocity)) in enumerate(PARTS.items()):
        notes = line_to_notes(line, velocity)
        tracks.append(part_to_midi(notes, program, channel=channel, name=name))
        rows += [(name, n.onset_s, n.offset_s, n.pitch) for n in notes]
        stems.append(gain * render_part(notes, program, "FluidR3_GM", RATE))
    length = max(len(stem) for stem in stems)
    mix = sum(np.pad(stem, (0, length - len(stem))) for stem in stems)
    mix *= 10 ** (-1 / 20) / np.abs(mix).max()
    sf.write(OUT / "mix.flac", mix.astype(np.float32), RATE, subtype="PCM_16")
    midi_file(tracks).save(OUT / "score.mid")
    with open(OUT / "notes.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["instrument", "onset_s", "offset_s", "midi"])
        writer.writerows(sorted(rows, key=lambda row: (row[1], row[3])))
    print(f"wrote {OUT}: {len(rows)} notes, {length / RATE:.1f} s")


if __name__ == "__main__":
    main()
