"""Frame-level targets at hop 256 from note tables: onsets, frames and the instrument of each bin."""

from __future__ import annotations

import numpy as np

from rtamt.constants import HOP_S, MIDI_MAX, MIDI_MIN, N_PITCHES

NO_INSTRUMENT = -1  # silent bin
SHARED_BIN = -2  # two instruments on the same pitch at once: ambiguous for the timbre loss

# Columns of a note table (float32 array, one row per note).
ONSET, OFFSET, PITCH, VELOCITY, INSTRUMENT = range(5)


def note_frames(onset_s: np.ndarray, offset_s: np.ndarray, start_s: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """First and one-past-last frame of each note (at least one frame long) in a crop starting at start_s."""
    first = np.round((onset_s - start_s) / HOP_S).astype(np.int64)
    last = np.maximum(np.round((offset_s - start_s) / HOP_S).astype(np.int64), first + 1)
    return first, last


def targets(notes: np.ndarray, n_frames: int, start_s: float = 0.0) -> dict[str, np.ndarray]:
    """Onset (84, T), frame (84, T) float32 maps and instrument (84, T) int16 ids for a crop.

    The onset target is one frame per note (the frame nearest its onset); notes cut by the crop's start
    keep their frames but lose their onset. Pitches outside MIDI 24..107 are ignored.
    """
    onset = np.zeros((N_PITCHES, n_frames), dtype=np.float32)
    frame = np.zeros((N_PITCHES, n_frames), dtype=np.float32)
    instrument = np.full((N_PITCHES, n_frames), NO_INSTRUMENT, dtype=np.int16)
    if len(notes) == 0:
        return {"onset": onset, "frame": frame, "instrument": instrument}
    first, last = note_frames(notes[:, ONSET], notes[:, OFFSET], start_s)
    pitch = np.round(notes[:, PITCH]).astype(np.int64) - MIDI_MIN
    keep = (pitch >= 0) & (pitch <= MIDI_MAX - MIDI_MIN) & (last > 0) & (first < n_frames)
    for f0, f1, p, inst in zip(first[keep], last[keep], pitch[keep], notes[keep, INSTRUMENT].astype(np.int16)):
        a, b = max(f0, 0), min(f1, n_frames)
        frame[p, a:b] = 1.0
        segment = instrument[p, a:b]
        segment[(segment != NO_INSTRUMENT) & (segment != inst)] = SHARED_BIN
        segment[segment == NO_INSTRUMENT] = inst
        if f0 >= 0:
            onset[p, f0] = 1.0
    return {"onset": onset, "frame": frame, "instrument": instrument}
