"""Instrument idioms that live users play: pedalled piano, strummed and picked guitar, sung lines.

The generic material (``material.py``) keeps every part inside a 1-2.5 octave window and plays it with
key presses only. Real pianists hold the sustain pedal (CC64) so notes ring on after the key is released
and overlap; they voice a melody over an accompaniment across the whole keyboard, with octaves, dense
chords and fast runs. Guitarists strum chords string by string a few milliseconds apart and let strings
ring until the same string is played again. Singers glide between notes, with vibrato. Each function
returns :class:`~rtamt.training.material.Line` objects, one per instrument, ready for ``data.py``.
"""

from __future__ import annotations

import numpy as np

from rtamt.training.instruments import INSTRUMENTS, Instrument
from rtamt.training.material import MIN_NOTE_S, Harmony, Line, random_harmony
from rtamt.training.render import Note

PIANO_PROGRAMS = (0, 0, 0, 1, 1, 2, 3, 4, 5)  # acoustic pianos weighted up (duplicates)
GUITAR_PROGRAMS = (24, 25, 26, 27)
VOICE_PROGRAMS = (52, 53, 54, 85, 91)
GUITAR_STRINGS = (40, 45, 50, 55, 59, 64)  # standard tuning, E2 A2 D3 G3 B3 E4
GUITAR_FRETS = 15
BEND_RANGE_SEMITONES = 2  # the GM default pitch-bend range


def _pick(rng: np.random.Generator, candidates: tuple[int, ...], pool: list[int]) -> Instrument | None:
    """One of ``candidates`` that the split's program ``pool`` allows, or None."""
    allowed = [p for p in candidates if p in pool]
    return INSTRUMENTS[int(rng.choice(allowed))] if allowed else None


def _chord_pitch_classes(harmony: Harmony, bar: int) -> list[int]:
    return sorted(harmony.chord_classes(bar))


def _root_class(harmony: Harmony, bar: int) -> int:
    degree = harmony.roots[bar % len(harmony.roots)] % len(harmony.scale)
    return (harmony.tonic + harmony.scale[degree]) % 12


def pedal_changes(rng: np.random.Generator, harmony: Harmony, duration_s: float) -> list[tuple[float, int]]:
    """Sustain-pedal (CC64) events: down just after each harmony change, up just before the next one
    (legato pedalling), sometimes half a bar or held through two bars, sometimes lifted for a while."""
    bar_s = harmony.beat_s * harmony.beats_per_bar
    events: list[tuple[float, int]] = []
    t = 0.0
    while t < duration_s:
        span = bar_s * float(rng.choice([0.5, 1.0, 1.0, 2.0]))
        if rng.random() < 0.12:  # a dry passage
            t += span
            continue
        down = t + rng.uniform(0.03, 0.12)
        up = t + span - rng.uniform(0.01, 0.06)
        if up > down + 0.1:
            events += [(down, 127), (up, 0)]
        t += span
    return events


def sounding_offsets(notes: list[Note], pedal: list[tuple[float, int]]) -> list[Note]:
    """Notes (in the given order) with their offsets moved to when they stop sounding: a key released
    while the pedal is down rings until the pedal comes up, or until the same key is struck again."""
    ups = [t for t, value in pedal if value < 64]
    downs = [t for t, value in pedal if value >= 64]
    intervals = [(d, min([u for u in ups if u > d], default=float("inf"))) for d in downs]
    next_strike: dict[int, float] = {}  # index -> onset of the next note on the same key
    by_pitch: dict[int, list[int]] = {}
    for i in sorted(range(len(notes)), key=lambda i: notes[i].onset_s):
        by_pitch.setdefault(notes[i].pitch, []).append(i)
    for same_key in by_pitch.values():
        for a, b in zip(same_key, same_key[1:]):
            next_strike[a] = notes[b].onset_s
    out: list[Note] = []
    for i, note in enumerate(notes):
        end = note.offset_s
        for down, up in intervals:
            if down < end < up:
                end = up
                break
        end = min(end, next_strike.get(i, float("inf")))
        out.append(Note(note.onset_s, max(end, note.offset_s), note.pitch, note.velocity))
    return out


def _velocity(rng: np.random.Generator, base: float, t: float, arc_s: float) -> int:
    """A dynamic arc over the phrase plus a little randomness."""
    return int(np.clip(base + 18 * np.sin(2 * np.pi * t / arc_s) + rng.normal(0, 6), 15, 127))


def piano_piece(rng: np.random.Generator, instrument: Instrument, duration_s: float) -> Line:
    """Two hands on one piano: a left-hand accompaniment (bass notes, octaves, broken chords, block
    chords) and a right-hand melody (with chords, octaves and fast scale runs), across the keyboard, with
    dynamics, the melody voiced above the accompaniment, and the sustain pedal."""
    harmony = random_harmony(rng, duration_s)
    bar_s = harmony.beat_s * harmony.beats_per_bar
    arc_s = bar_s * rng.uniform(2, 8)
    low, high = max(instrument.low, 21), min(instrument.high, 108)
    left_center = int(rng.integers(max(low, 33), 56))
    right_center = int(rng.integers(62, min(high, 96)))
    base = float(rng.uniform(45, 100))
    left_style = str(rng.choice(["alberti", "bass-chord", "octaves", "block", "arpeggio"]))
    notes: list[Note] = []
    jitter = float(rng.uniform(0.0, 0.01))

    def add(onset: float, length: float, pitch: int, velocity: int) -> None:
        if low <= pitch <= high and onset < duration_s:
            start = max(0.0, onset + rng.normal(0, jitter))
            notes.append(Note(start, start + max(length, MIN_NOTE_S), int(pitch), velocity))

    for bar in range(int(duration_s / bar_s) + 1):
        t0 = bar * bar_s
        classes = _chord_pitch_classes(harmony, bar)
        root = _root_class(harmony, bar)
        bass = left_center - 12 + (root - left_center) % 12
        tones = [p for p in range(left_center - 7, left_center + 10) if p % 12 in classes]
        acc = base - 12
        if left_style == "alberti" and len(tones) >= 3:
            step = harmony.beat_s / 2
            pattern = [tones[0], tones[2], tones[1], tones[2]]
            for k in range(int(round(bar_s / step))):
                add(t0 + k * step, step * 0.9, pattern[k % 4], _velocity(rng, acc, t0, arc_s))
        elif left_style == "octaves":
            for k in range(harmony.beats_per_bar):
                add(t0 + k * harmony.beat_s, harmony.beat_s * 0.8, bass, _velocity(rng, acc + 4, t0, arc_s))
                add(t0 + k * harmony.beat_s, harmony.beat_s * 0.8, bass + 12, _velocity(rng, acc, t0, arc_s))
        elif left_style == "arpeggio":
            step = harmony.beat_s / float(rng.choice([2, 3, 4]))
            ladder = [bass] + [p for p in range(bass + 1, bass + 25) if p % 12 in classes]
            for k in range(int(round(bar_s / step))):
                add(t0 + k * step, step * 2, ladder[k % len(ladder)], _velocity(rng, acc, t0, arc_s))
        else:  # bass note on the downbeat, chords on the other beats (or one block chord)
            add(t0, harmony.beat_s, bass, _velocity(rng, acc + 6, t0, arc_s))
            beats = range(1, harmony.beats_per_bar) if left_style == "bass-chord" else [0]
            for k in beats:
                for pitch in tones[:4]:
                    add(t0 + k * harmony.beat_s + rng.uniform(0, 0.015), harmony.beat_s * 0.9, pitch,
                        _velocity(rng, acc - 4, t0, arc_s))  # fmt: skip
        # right hand
        t = t0
        while t < t0 + bar_s - 1e-6:
            kind = rng.choice(["note", "chord", "octave", "run", "rest"], p=[0.5, 0.2, 0.1, 0.12, 0.08])
            length = harmony.beat_s * float(rng.choice([0.5, 1.0, 1.0, 1.5, 2.0]))
            scale = harmony.pitches(right_center - 10, right_center + 14)
            pitch = int(rng.choice(scale)) if len(scale) else right_center
            melody = _velocity(rng, base + 10, t, arc_s)
            if kind == "note":
                add(t, length, pitch, melody)
            elif kind == "chord":
                chord = [p for p in range(pitch - 9, pitch) if p % 12 in classes][-int(rng.integers(2, 4)) :]
                add(t, length, pitch, melody)
                for p in chord:
                    add(t + rng.uniform(0, 0.012), length, p, melody - int(rng.integers(10, 25)))
            elif kind == "octave":
                add(t, length, pitch, melody)
                add(t, length, pitch - 12, melody - 8)
            elif kind == "run":
                step = harmony.beat_s / float(rng.choice([4, 6, 8]))
                direction = int(rng.choice([-1, 1]))
                run = harmony.pitches(low, high)
                index = int(np.searchsorted(run, pitch))
                count = int(rng.integers(4, 13))
                for k in range(count):
                    i = index + direction * k
                    if 0 <= i < len(run):
                        add(t + k * step, step * 1.1, int(run[i]), _velocity(rng, base, t, arc_s))
                length = count * step
            t += length
        if rng.random() < 0.15:  # the melody moves register
            right_center = int(np.clip(right_center + rng.choice([-12, -7, 7, 12]), 60, min(high, 98)))
    pedal = pedal_changes(rng, harmony, duration_s) if rng.random() < 0.85 else []
    return Line(instrument, "piano", notes, pedal=pedal)


def guitar_voicing(rng: np.random.Generator, classes: list[int], root: int) -> list[tuple[int, int]]:
    """(string, pitch) pairs of a playable chord: the root on one of the three lowest strings, then one
    chord tone per higher string inside a four-fret hand position."""
    position = int(rng.integers(0, 8))
    frets = [0] + list(range(max(position, 1), min(position + 4, GUITAR_FRETS) + 1))
    chord: list[tuple[int, int]] = []
    for string in range(int(rng.choice([0, 1, 2])), len(GUITAR_STRINGS)):
        wanted = classes if chord else [root]  # the lowest string played sounds the root
        options = [GUITAR_STRINGS[string] + f for f in frets if (GUITAR_STRINGS[string] + f) % 12 in wanted]
        if options:
            chord.append((string, int(rng.choice(options))))
    return chord


def guitar_part(rng: np.random.Generator, instrument: Instrument, duration_s: float, style: str | None = None) -> Line:
    """Strummed chords (``style`` "strum": down strokes low to high, up strokes high to low, 5-30 ms between
    strings) or finger-picked arpeggios ("pick"); every string rings until it is played again or the chord
    changes. Without a style, two in three parts strum."""
    harmony = random_harmony(rng, duration_s)
    bar_s = harmony.beat_s * harmony.beats_per_bar
    style = style or str(rng.choice(["strum", "strum", "pick"]))
    spread = float(rng.uniform(0.005, 0.03))
    base = float(rng.uniform(55, 105))
    ringing: dict[int, list] = {}  # string -> [onset, pitch, velocity]
    notes: list[Note] = []

    def stop(string: int, t: float) -> None:
        held = ringing.pop(string, None)
        if held is not None:
            notes.append(Note(held[0], max(t, held[0] + MIN_NOTE_S), held[1], held[2]))

    def pluck(string: int, pitch: int, t: float, velocity: int) -> None:
        stop(string, t)
        if t < duration_s:
            ringing[string] = [t, pitch, int(np.clip(velocity, 15, 127))]

    for bar in range(int(duration_s / bar_s) + 1):
        t0 = bar * bar_s
        chord = guitar_voicing(rng, _chord_pitch_classes(harmony, bar), _root_class(harmony, bar))
        if not chord:
            continue
        if rng.random() < 0.5:  # chord change mutes the strings the new chord does not use
            for string in set(ringing) - {s for s, _ in chord}:
                stop(string, t0)
        if style == "strum":
            pattern = rng.choice(["D...D...", "D.D.D.D.", "D.DUD.DU", "D..UD.DU", "D...DUDU"])
            step = bar_s / len(pattern)
            for k, stroke in enumerate(pattern):
                if stroke == ".":
                    continue
                strings = chord if stroke == "D" else list(reversed(chord))[: int(rng.integers(2, len(chord) + 1))]
                accent = 12 if k == 0 else (0 if stroke == "D" else -12)
                gap = min(spread, 0.8 * step / len(strings))  # the stroke ends before the next one
                t = t0 + k * step
                for string, pitch in strings:
                    pluck(string, pitch, t, base + accent + rng.normal(0, 6))
                    t += gap * rng.uniform(0.7, 1.3)
        else:
            order = [0, 3, 2, 4, 1, 5, 3, 4] if len(chord) >= 6 else list(range(len(chord))) * 2
            step = harmony.beat_s / float(rng.choice([2, 3, 4]))
            for k in range(int(round(bar_s / step))):
                string, pitch = chord[order[k % len(order)] % len(chord)]
                pluck(string, pitch, t0 + k * step, base + (8 if k == 0 else 0) + rng.normal(0, 6))
    for string in list(ringing):
        stop(string, min(duration_s, ringing[string][0] + bar_s * 2))
    notes = [n for n in notes if instrument.low <= n.pitch <= instrument.high and n.onset_s < duration_s]
    return Line(instrument, "guitar", sorted(notes, key=lambda n: (n.onset_s, n.pitch)))


def voice_line(rng: np.random.Generator, instrument: Instrument, duration_s: float, harmony: Harmony | None = None
               ) -> Line:  # fmt: skip
    """A sung line: phrases of mostly stepwise notes, legato, with vibrato, glides into notes from the
    previous pitch (pitch bend), and breaths between phrases."""
    harmony = harmony or random_harmony(rng, duration_s)
    center = int(rng.integers(instrument.low + 6, instrument.high - 5))
    pitches = harmony.pitches(max(instrument.low, center - 7), min(instrument.high, center + 9))
    if len(pitches) < 3:
        return Line(instrument, "voice", [])
    base = float(rng.uniform(50, 110))
    notes: list[Note] = []
    bends: list[tuple[float, int]] = []
    t, index, previous = 0.0, len(pitches) // 2, None
    phrase_end = t + rng.uniform(3, 8) * harmony.beat_s
    while t < duration_s:
        if t >= phrase_end:
            t += float(rng.choice([0.5, 1.0, 1.5])) * harmony.beat_s  # breath
            phrase_end = t + rng.uniform(3, 8) * harmony.beat_s
            previous = None
            continue
        length = harmony.beat_s * float(rng.choice([0.5, 1, 1, 1.5, 2, 3]))
        index = int(np.clip(index + rng.choice([-2, -1, -1, 0, 1, 1, 2, 3, -3]), 0, len(pitches) - 1))
        pitch = int(pitches[index])
        end = min(t + length * rng.uniform(0.85, 1.0), phrase_end + harmony.beat_s)
        if end - t >= MIN_NOTE_S:
            notes.append(Note(t, end, pitch, int(np.clip(base + rng.normal(0, 8), 20, 127))))
            if previous is not None and previous != pitch and rng.random() < 0.4:
                depth = float(np.clip(previous - pitch, -BEND_RANGE_SEMITONES, BEND_RANGE_SEMITONES))
                glide = float(rng.uniform(0.04, 0.15))
                start = int(8192 + depth / BEND_RANGE_SEMITONES * 8191)
                bends += [(t, start), (t + glide / 2, (start + 8192) // 2), (t + glide, 8192)]
            previous = pitch
        t += length
    return Line(instrument, "voice", notes, vibrato=int(rng.integers(30, 100)), bends=bends)


def idiom_piece(rng: np.random.Generator, pool: list[int], duration_s: float) -> list[Line]:
    """A piece in one of the idioms: solo piano, solo guitar, piano or guitar accompanying a voice, or a
    voice duet; instruments drawn from the split's program ``pool`` (empty if the pool has none)."""
    kind = str(rng.choice(["piano", "guitar", "piano+voice", "guitar+voice", "voices"], p=[0.4, 0.25, 0.15, 0.1, 0.1]))
    lines: list[Line] = []
    if kind.startswith("piano"):
        piano = _pick(rng, PIANO_PROGRAMS, pool)
        if piano:
            lines.append(piano_piece(rng, piano, duration_s))
    if kind.startswith("guitar"):
        guitar = _pick(rng, GUITAR_PROGRAMS, pool)
        if guitar:
            lines.append(guitar_part(rng, guitar, duration_s))
    if kind.endswith("voice") or kind == "voices":
        for _ in range(2 if kind == "voices" else 1):
            voice = _pick(rng, VOICE_PROGRAMS, [p for p in pool if p not in {line.instrument.program for line in lines}])
            if voice:
                lines.append(voice_line(rng, voice, duration_s))
    return [line for line in lines if line.notes]
