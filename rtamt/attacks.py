"""The audio's own attack time of annotated notes, found without a model: where an annotation lies
against the sound.

A latency benchmark measures note-ons from the annotated onsets, so annotations that lead the sound add
to every latency figure on that data. For each annotated note, :func:`attack_offsets_s` finds the frame
where the energy of its harmonics rises most: the positive log-power difference of the front end's CQT
bins at harmonics 1-7 of the pitch (the best of the 3 bins around each), each bin moved back by its own
group delay so that a rise is placed where it happened, not where the causal windows report it; searched
within ``SEARCH_FRAMES`` of the annotation and refined between frames by a parabola through the peak.
A sharp attack (piano, guitar) gives a clear peak at the strike; a slow one (bowed, blown) a broad peak
some way into the note. On rendered audio, whose labels are exact, the method places onsets a median
4 ms late (``benchmarks/onset_alignment.py --split``): half a frame of the log-power difference.
"""

from __future__ import annotations

import numpy as np

from rtamt.constants import HARMONIC_SHIFTS, HOP_S, MIDI_MIN, N_BINS, N_PITCHES

SEARCH_FRAMES = 8  # look this far either side of an annotated onset (93 ms)
HARMONICS = [shift for shift in HARMONIC_SHIFTS if shift >= 0]  # harmonics 1-7 (not the sub-harmonic)


def energy_rise(log_power: np.ndarray, bin_delay_ms: np.ndarray) -> np.ndarray:
    """(n, 288) log-power CQT frames -> (n, 84): per pitch, the summed rise of its harmonics' log power,
    placed at the frame the rise happened (each bin moved back by its group delay)."""
    rise = np.maximum(0.0, np.diff(log_power, axis=0, prepend=log_power[:1]))
    delay = np.round(np.asarray(bin_delay_ms) / (HOP_S * 1000)).astype(int)
    n = len(rise)
    out = np.zeros((n, N_PITCHES))
    for index in range(N_PITCHES):
        for shift in HARMONICS:
            centre = 3 * index + 1 + shift
            if centre >= N_BINS or delay[centre] >= n:
                continue
            band = rise[:, max(centre - 1, 0) : centre + 2].max(axis=1)
            out[: n - delay[centre], index] += band[delay[centre] :]
    return out


def attack_offsets_s(rise: np.ndarray, notes: list[tuple]) -> np.ndarray:
    """Attack time minus annotated onset (s) of each note (onset_s, _, midi, ...); NaN where the note's
    pitch is out of range or its search window leaves the recording."""
    out = np.full(len(notes), np.nan)
    for n, note in enumerate(notes):
        onset_s, midi = float(note[0]), int(note[2])
        index, frame = midi - MIDI_MIN, int(round(onset_s / HOP_S))
        lo, hi = frame - SEARCH_FRAMES, frame + SEARCH_FRAMES
        if not 0 <= index < N_PITCHES or lo < 1 or hi + 1 >= len(rise):
            continue
        window = rise[lo : hi + 1, index]
        k = int(np.argmax(window))
        shift = 0.0
        if 0 < k < len(window) - 1:  # parabola through the peak and its neighbours
            a, b, c = window[k - 1], window[k], window[k + 1]
            curvature = a - 2 * b + c
            shift = 0.5 * (a - c) / curvature if curvature < 0 else 0.0
        out[n] = (lo + k + shift) * HOP_S - onset_s
    return out


def alignment_summary(offsets_s: np.ndarray, pitches: np.ndarray, min_notes: int = 20) -> dict:
    """Median and quartiles (ms) of attack minus annotation over all notes, and per octave with at least
    ``min_notes`` notes."""

    def stats(values: np.ndarray) -> dict:
        q25, q50, q75 = np.percentile(values * 1000.0, [25, 50, 75])
        return {"notes": int(len(values)), "median_ms": round(float(q50), 1), "q25_ms": round(float(q25), 1),
                "q75_ms": round(float(q75), 1)}  # fmt: skip

    found = np.isfinite(offsets_s)
    offsets_s, pitches = np.asarray(offsets_s)[found], np.asarray(pitches)[found]
    if not len(offsets_s):
        return {"all": {"notes": 0}}
    result = {"all": stats(offsets_s)}
    for low in range(0, 128, 12):
        mine = (pitches >= low) & (pitches < low + 12)
        if mine.sum() >= min_notes:
            result[f"MIDI {low}-{low + 11}"] = stats(offsets_s[mine])
    return result
