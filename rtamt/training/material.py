"""MIDI material for synthesis: a rule-based generator with musical structure, and corpus excerpts.

Everything here is note lists in seconds (:class:`Line`); instruments are chosen with the material
so that every line stays in its instrument's realistic range. Rendering and mixing live in ``data.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rtamt.training.corpus import Work
from rtamt.training.instruments import INSTRUMENTS, Instrument
from rtamt.training.render import Note

SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "harmonic minor": (0, 2, 3, 5, 7, 8, 11),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "pentatonic": (0, 2, 4, 7, 9),
    "blues": (0, 3, 5, 6, 7, 10),
    "chromatic": tuple(range(12)),
}
SCALE_WEIGHTS = (0.3, 0.2, 0.1, 0.1, 0.08, 0.1, 0.05, 0.07)
# Chord roots as scale-degree steps, with the usual pull towards I, IV, V and vi.
PROGRESSION_STEPS = (0, 3, 4, 5, 1, 2, 6)
PROGRESSION_WEIGHTS = (0.22, 0.2, 0.24, 0.14, 0.1, 0.05, 0.05)
MIN_NOTE_S = 0.04


@dataclass
class Line:
    """One part: its instrument, its notes and its expressive controls."""

    instrument: Instrument
    role: str
    notes: list[Note]
    vibrato: int = 0  # modulation wheel (CC1) value, 0..127
    bends: list[tuple[float, int]] = field(default_factory=list)  # (time s, 14-bit pitch bend)
    pedal: list[tuple[float, int]] = field(default_factory=list)  # (time s, sustain pedal CC64 value)


@dataclass
class Harmony:
    """Key, scale, tempo and the chord of every bar."""

    tonic: int
    scale: tuple[int, ...]
    beat_s: float
    beats_per_bar: int
    roots: list[int]  # scale-degree index of each bar's chord root

    def pitches(self, low: int, high: int) -> np.ndarray:
        """All scale pitches in [low, high]."""
        return np.array([p for p in range(low, high + 1) if (p - self.tonic) % 12 in self.scale])

    def chord_classes(self, bar: int) -> set[int]:
        """Pitch classes of the triad (plus seventh, sometimes) on the bar's root."""
        n = len(self.scale)
        root = self.roots[bar % len(self.roots)]
        degrees = (root, root + 2, root + 4) if n >= 7 else (root, root + 1, root + 3)
        return {(self.tonic + self.scale[d % n]) % 12 for d in degrees}


def random_harmony(rng: np.random.Generator, duration_s: float) -> Harmony:
    names = list(SCALES)
    scale = SCALES[names[rng.choice(len(names), p=SCALE_WEIGHTS)]]
    beat_s = 60.0 / rng.uniform(54, 168)
    beats_per_bar = int(rng.choice([2, 3, 4, 4, 4, 6]))
    bars = int(np.ceil(duration_s / (beat_s * beats_per_bar))) + 1
    roots, root = [], 0
    for _ in range(bars):
        roots.append(root)
        root = int(rng.choice(PROGRESSION_STEPS, p=PROGRESSION_WEIGHTS))
    return Harmony(int(rng.integers(12)), scale, beat_s, beats_per_bar, roots)


def comfortable_range(instrument: Instrument, role: str, rng: np.random.Generator) -> tuple[int, int]:
    """A register inside the instrument's range: low for bass lines, a 1-2.5 octave window otherwise."""
    low, high = instrument.low, instrument.high
    span = int(rng.integers(12, 31))
    if role == "bass":
        return low, min(high, low + span)
    if high - low <= span:
        return low, high
    start = int(rng.integers(low, high - span + 1))
    return start, start + span


def _durations(rng: np.random.Generator, role: str, beat_s: float) -> float:
    choices = {
        "melody": ((0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4), (0.08, 0.3, 0.05, 0.3, 0.08, 0.12, 0.04, 0.03)),
        "counter": ((0.5, 1, 1.5, 2, 3, 4), (0.15, 0.35, 0.1, 0.25, 0.08, 0.07)),
        "bass": ((0.5, 1, 2, 3, 4), (0.15, 0.35, 0.3, 0.08, 0.12)),
    }[role]
    return float(rng.choice(choices[0], p=choices[1])) * beat_s


def _expression(rng: np.random.Generator) -> tuple[float, float, int]:
    """Timing jitter (s), legato factor and base velocity of a part."""
    return float(rng.uniform(0.0, 0.012)), float(rng.uniform(0.55, 1.0)), int(rng.integers(50, 115))


def _note(rng, onset, length, pitch, legato, jitter, velocity) -> Note | None:
    start = max(0.0, onset + rng.normal(0.0, jitter)) if jitter else onset
    end = onset + max(length * legato, MIN_NOTE_S)
    vel = int(np.clip(velocity + rng.normal(0, 8), 20, 127))
    return Note(start, end, int(pitch), vel) if end - start >= MIN_NOTE_S else None


def melodic_line(rng, harmony: Harmony, duration_s: float, low: int, high: int, role: str) -> list[Note]:
    """Mostly stepwise line in the scale, with leaps, repeated notes, rests and phrase endings."""
    pitches = harmony.pitches(low, high)
    if len(pitches) < 3:
        return []
    jitter, legato, velocity = _expression(rng)
    index = int(rng.integers(len(pitches) // 4, max(len(pitches) * 3 // 4, len(pitches) // 4 + 1)))
    t, notes, phrase_end = 0.0, [], rng.uniform(4, 10) * harmony.beat_s
    while t < duration_s:
        length = _durations(rng, role, harmony.beat_s)
        if t >= phrase_end:  # a breath between phrases
            t += float(rng.choice([0.5, 1.0, 2.0])) * harmony.beat_s
            phrase_end = t + rng.uniform(4, 12) * harmony.beat_s
            continue
        if rng.random() < 0.1:  # rest
            t += length
            continue
        move = rng.choice([0, 1, -1, 2, -2, 3, -3, 4, -4, 7, -7], p=[0.1, 0.22, 0.22, 0.12, 0.12, 0.05, 0.05, 0.04, 0.04, 0.02, 0.02])
        index += int(move)
        if index < 0 or index >= len(pitches):
            index = int(np.clip(2 * np.clip(index, 0, len(pitches) - 1) - index, 0, len(pitches) - 1))
        contour = 12 * np.sin(2 * np.pi * t / (harmony.beat_s * 16))
        note = _note(rng, t, length, pitches[index], legato, jitter, velocity + contour)
        if note:
            notes.append(note)
        t += length
    return notes


def bass_line(rng, harmony: Harmony, duration_s: float, low: int, high: int) -> list[Note]:
    """Chord roots on the downbeat, fifths or passing notes in between."""
    jitter, legato, velocity = _expression(rng)
    bar_s = harmony.beat_s * harmony.beats_per_bar
    notes, style = [], rng.choice(["roots", "root-fifth", "walking"])
    for bar in range(int(duration_s / bar_s) + 1):
        classes = sorted(harmony.chord_classes(bar))
        root_class = (harmony.tonic + harmony.scale[harmony.roots[bar % len(harmony.roots)] % len(harmony.scale)]) % 12
        candidates = [p for p in range(low, min(high, low + 14) + 1) if p % 12 == root_class] or [low]
        root = candidates[0]
        if style == "roots":
            beats = [(0, harmony.beats_per_bar)]
        elif style == "root-fifth":
            half = harmony.beats_per_bar / 2
            beats = [(0, half), (half, half)]
        else:
            beats = [(b, 1) for b in range(harmony.beats_per_bar)]
        for k, (beat, length) in enumerate(beats):
            onset = bar * bar_s + beat * harmony.beat_s
            if onset >= duration_s:
                break
            pitch = root if k == 0 else int(np.clip(root + rng.choice([7, 5, 2, -1, 4, 12]), low, high))
            if style == "walking" and k > 0:
                pitch = int(rng.choice([p for p in range(low, high + 1) if p % 12 in classes] or [root]))
            note = _note(rng, onset, length * harmony.beat_s, pitch, legato, jitter, velocity)
            if note:
                notes.append(note)
    return notes


def chord_line(rng, harmony: Harmony, duration_s: float, low: int, high: int, arpeggio: bool) -> list[Note]:
    """Block chords (held or repeated) or arpeggios of each bar's chord, voiced inside the register."""
    jitter, legato, velocity = _expression(rng)
    bar_s = harmony.beat_s * harmony.beats_per_bar
    step = harmony.beat_s * float(rng.choice([0.25, 0.5, 1.0] if arpeggio else [1.0, 2.0, harmony.beats_per_bar]))
    size = int(rng.integers(2, 5))
    notes = []
    for bar in range(int(duration_s / bar_s) + 1):
        classes = harmony.chord_classes(bar)
        tones = [p for p in range(low, high + 1) if p % 12 in classes]
        if len(tones) < 2:
            continue
        start = int(rng.integers(0, max(1, len(tones) - size)))
        voicing = tones[start : start + size]
        t = bar * bar_s
        k = 0
        while t < min((bar + 1) * bar_s, duration_s) - 1e-6:
            chord = [voicing[k % len(voicing)]] if arpeggio else voicing
            for pitch in chord:
                note = _note(rng, t, step, pitch, legato, jitter * 0.5, velocity - 8)
                if note:
                    notes.append(note)
            t += step
            k += 1
    return notes


def random_piece(rng: np.random.Generator, instruments: list[Instrument], duration_s: float) -> list[Line]:
    """A piece for the given instruments: the lowest plays bass, chord instruments may accompany."""
    harmony = random_harmony(rng, duration_s)
    ordered = sorted(instruments, key=lambda inst: (inst.low + inst.high) / 2)
    lines = []
    for position, instrument in enumerate(ordered):
        if position == 0 and len(ordered) > 1 and instrument.low <= 48:
            role = "bass"
        elif instrument.chords and len(ordered) > 1 and rng.random() < 0.6:
            role = str(rng.choice(["chords", "arpeggio"]))
        else:
            role = "melody" if position == len(ordered) - 1 or rng.random() < 0.5 else "counter"
        low, high = comfortable_range(instrument, role, rng)
        if role == "bass":
            notes = bass_line(rng, harmony, duration_s, low, high)
        elif role in ("chords", "arpeggio"):
            notes = chord_line(rng, harmony, duration_s, low, high, arpeggio=role == "arpeggio")
        else:
            notes = melodic_line(rng, harmony, duration_s, low, high, role)
        lines.append(Line(instrument, role, notes, *expressive_controls(rng, role, notes)))
    return lines


def expressive_controls(rng: np.random.Generator, role: str, notes: list[Note]) -> tuple[int, list]:
    """Vibrato depth for some sustained lines, and pitch-bend scoops into a few melody notes."""
    vibrato = int(rng.integers(20, 90)) if role in ("melody", "counter") and rng.random() < 0.3 else 0
    bends: list[tuple[float, int]] = []
    if role == "melody" and rng.random() < 0.15:
        for note in notes:
            if rng.random() < 0.15 and note.offset_s - note.onset_s > 0.2:
                depth = int(rng.integers(300, 1200))  # up to ~ a quarter tone below, with 2-semitone range
                bends += [(note.onset_s, 8192 - depth), (note.onset_s + 0.03, 8192 - depth // 2),
                          (note.onset_s + 0.06, 8192)]  # fmt: skip
    return vibrato, bends


def _fit_octaves(notes: list[Note], instrument: Instrument) -> list[Note] | None:
    """Shift a part by octaves into the instrument's range; None if it cannot fit with <10% dropped."""
    pitches = np.array([n.pitch for n in notes])
    best = None
    for shift in (0, 12, -12, 24, -24):
        inside = np.mean((pitches + shift >= instrument.low) & (pitches + shift <= instrument.high))
        if best is None or inside > best[0]:
            best = (inside, shift)
    if best[0] < 0.9:
        return None
    shift = best[1]
    return [
        Note(n.onset_s, n.offset_s, n.pitch + shift, n.velocity)
        for n in notes
        if instrument.low <= n.pitch + shift <= instrument.high
    ]


def corpus_piece(
    rng: np.random.Generator, work: Work, pool: list[int], duration_s: float, max_parts: int = 5
) -> list[Line]:
    """An excerpt of a corpus work, tempo-scaled and transposed, each part on a different instrument."""
    stretch = float(rng.uniform(0.8, 1.25))
    transpose = int(rng.integers(-5, 6))
    length = max((n[1] for part in work.parts for n in part.notes), default=0.0) * stretch
    start = float(rng.uniform(0, max(0.0, length - duration_s)))
    parts = [part for part in work.parts if part.notes]
    if len(parts) > max_parts:
        parts = [parts[i] for i in sorted(rng.choice(len(parts), max_parts, replace=False))]
    lines, used = [], set()
    for part in parts:
        jitter, legato, base_velocity = _expression(rng)
        notes = []
        for onset, offset, pitch, velocity in part.notes:
            onset, offset = onset * stretch - start, offset * stretch - start
            if 0 <= onset < duration_s and offset - onset >= MIN_NOTE_S:
                # Corpus velocities are nearly all 80: keep their differences, vary the part's level.
                note = _note(rng, onset, min(offset, duration_s) - onset, int(pitch) + transpose,
                             max(legato, 0.85), jitter, base_velocity + (velocity - 80) / 2)  # fmt: skip
                if note:
                    notes.append(note)
        if len(notes) < 2:
            continue
        for program in rng.permutation(pool):
            instrument = INSTRUMENTS[int(program)]
            if program in used:
                continue
            fitted = _fit_octaves(notes, instrument)
            if fitted:
                used.add(int(program))
                vibrato, bends = expressive_controls(rng, "counter", fitted)
                lines.append(Line(instrument, "corpus", fitted, vibrato, bends))
                break
    return lines
