"""benchmarks/piano_diagnosis.py: misses sorts what became of each reference note as documented; offsets
cuts notes at the next note-on."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from rtamt.constants import HOP_S, MIDI_MIN, N_PITCHES
from rtamt.tracker import TrackerConfig

ROOT = Path(__file__).resolve().parent.parent


def load_diagnosis():
    spec = importlib.util.spec_from_file_location("piano_diagnosis", ROOT / "benchmarks" / "piano_diagnosis.py")
    diagnosis = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(diagnosis)
    return diagnosis


def test_misses_sorts_found_restruck_unseen_and_other_notes() -> None:
    diagnosis = load_diagnosis()
    probs = np.zeros((300, 2, N_PITCHES), dtype=np.float32)
    a, b = 48 - MIDI_MIN, 50 - MIDI_MIN
    probs[20, 0, a], probs[20:120, 1, a] = 0.9, 0.9  # pitch 48: one note over frames 20-119
    probs[200:230, 1, b] = 0.5  # pitch 50: frame probability only, from frame 200
    reference = [
        (20 * HOP_S, 60 * HOP_S, 48),  # found
        (70 * HOP_S, 119 * HOP_S, 48),  # struck again inside the detected note
        (150 * HOP_S, 170 * HOP_S, 52),  # nothing in the model's output
        (190 * HOP_S, 230 * HOP_S, 50),  # seen, but started 10 frames late
        (20 * HOP_S, 40 * HOP_S, 80),  # above C5: not counted
    ]
    config = TrackerConfig(onset_threshold=0.5, frame_threshold=0.3, sustain_threshold=0.4, sustain_frames=2)
    kinds = diagnosis.miss_kinds([(probs, reference)], config)
    assert kinds == {"notes": 4, "found": 0.25, "inside an earlier detected note": 0.25, "never seen": 0.25, "other": 0.25}


def test_offsets_cut_notes_at_the_next_note_on_after_the_gap() -> None:
    cut = load_diagnosis().cut_at_next_onset
    notes = [(0.0, 2.0, 60, 80), (0.05, 1.0, 64, 80), (0.5, 0.7, 67, 80), (3.0, 3.02, 72, 80)]
    assert cut(notes, 0.1) == [
        (0.0, 0.5, 60, 80),  # the note-on at 0.05 s is under the gap; the one at 0.5 s ends it
        (0.05, 0.5, 64, 80),
        (0.5, 0.7, 67, 80),  # ends by itself before the next note-on at 3 s
        (3.0, 3.05, 72, 80),  # never shorter than 50 ms
    ]
