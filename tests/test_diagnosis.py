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


def test_timbre_distance_table_bins_pairs_by_pitch_distance_and_instrument() -> None:
    spec = importlib.util.spec_from_file_location("timbre_distance", ROOT / "benchmarks" / "timbre_distance.py")
    distance = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(distance)
    frames = np.zeros((100, 2 + 3, N_PITCHES), dtype=np.float32)
    frames[:, 1, :] = 1.0  # every pitch sounding
    frames[:, 2, :] = 1.0  # instrument "a" points along the first axis at every pitch...
    frames[50:, 2, :], frames[50:, 3, :] = 0.0, 1.0  # ...and "b", from frame 50, along the second
    t = 10 * HOP_S
    reference = {"a": [(0.0, t, 60), (t, 2 * t, 60), (2 * t, 3 * t, 72)], "b": [(6 * t, 7 * t, 61)]}
    rows = {row["semitones"]: row for row in distance.distance_table([(frames, reference)], max_notes=10)}
    assert rows["0-0"]["same_pairs"] == 1 and rows["0-0"]["same_cosine"] == 1.0  # a 60 with a 60
    assert rows["1-2"]["other_pairs"] == 2 and rows["1-2"]["other_cosine"] == 0.0  # b 61 with both a 60
    assert rows["12-23"]["same_pairs"] == 2 and rows["12-23"]["other_pairs"] == 0  # a 72 with both a 60
    assert rows["6-11"]["other_pairs"] == 1 and rows["6-11"]["auc"] is None  # b 61 with a 72: no same pair
