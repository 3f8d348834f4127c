"""The timbre pool: melodic General MIDI programs with realistic ranges, and the train/held-out split.

Programs are 0-based GM numbers. Drums, sound effects (112-127), synth effects (96-103) and the orchestra
hit are left out. About 29% of the remaining programs are held out of training, two per family, so that
validation measures generalisation to unseen timbres; soundfonts are split the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

FAMILIES = (
    "piano", "chromatic percussion", "organ", "guitar", "bass", "strings", "ensemble", "brass",
    "reed", "pipe", "synth lead", "synth pad", "synth effects", "ethnic", "percussive", "sound effects",
)  # fmt: skip

# name, lowest and highest MIDI pitch it plausibly plays, can it play chords
_PROGRAMS: dict[int, tuple[str, int, int, bool]] = {
    0: ("acoustic grand piano", 21, 108, True), 1: ("bright acoustic piano", 21, 108, True),
    2: ("electric grand piano", 28, 103, True), 3: ("honky-tonk piano", 28, 103, True),
    4: ("electric piano 1", 28, 103, True), 5: ("electric piano 2", 28, 103, True),
    6: ("harpsichord", 29, 89, True), 7: ("clavinet", 36, 96, True),
    8: ("celesta", 60, 108, True), 9: ("glockenspiel", 79, 108, False), 10: ("music box", 60, 96, True),
    11: ("vibraphone", 53, 89, True), 12: ("marimba", 45, 96, True), 13: ("xylophone", 65, 108, False),
    14: ("tubular bells", 60, 77, False), 15: ("dulcimer", 48, 84, True),
    16: ("drawbar organ", 36, 96, True), 17: ("percussive organ", 36, 96, True), 18: ("rock organ", 36, 96, True),
    19: ("church organ", 24, 96, True), 20: ("reed organ", 36, 89, True), 21: ("accordion", 53, 89, True),
    22: ("harmonica", 60, 84, False), 23: ("tango accordion", 53, 89, True),
    24: ("nylon guitar", 40, 83, True), 25: ("steel guitar", 40, 83, True), 26: ("jazz guitar", 40, 83, True),
    27: ("clean electric guitar", 40, 86, True), 28: ("muted electric guitar", 40, 76, True),
    29: ("overdriven guitar", 40, 86, True), 30: ("distortion guitar", 40, 86, True),
    31: ("guitar harmonics", 52, 88, False),
    32: ("acoustic bass", 28, 55, False), 33: ("finger bass", 28, 60, False), 34: ("pick bass", 28, 60, False),
    35: ("fretless bass", 28, 60, False), 36: ("slap bass 1", 28, 60, False), 37: ("slap bass 2", 28, 60, False),
    38: ("synth bass 1", 24, 60, False), 39: ("synth bass 2", 24, 60, False),
    40: ("violin", 55, 100, False), 41: ("viola", 48, 88, False), 42: ("cello", 36, 76, False),
    43: ("contrabass", 28, 60, False), 44: ("tremolo strings", 36, 96, True),
    45: ("pizzicato strings", 36, 91, True), 46: ("orchestral harp", 24, 103, True), 47: ("timpani", 40, 57, False),
    48: ("string ensemble 1", 28, 96, True), 49: ("string ensemble 2", 28, 96, True),
    50: ("synth strings 1", 36, 96, True), 51: ("synth strings 2", 36, 96, True),
    52: ("choir aahs", 43, 81, True), 53: ("voice oohs", 43, 81, True), 54: ("synth voice", 43, 84, True),
    56: ("trumpet", 55, 82, False), 57: ("trombone", 40, 72, False), 58: ("tuba", 28, 58, False),
    59: ("muted trumpet", 55, 82, False), 60: ("french horn", 41, 77, False), 61: ("brass section", 40, 84, True),
    62: ("synth brass 1", 36, 84, True), 63: ("synth brass 2", 36, 84, True),
    64: ("soprano sax", 56, 87, False), 65: ("alto sax", 49, 80, False), 66: ("tenor sax", 44, 75, False),
    67: ("baritone sax", 36, 68, False), 68: ("oboe", 58, 91, False), 69: ("english horn", 52, 81, False),
    70: ("bassoon", 34, 75, False), 71: ("clarinet", 50, 91, False),
    72: ("piccolo", 74, 102, False), 73: ("flute", 60, 96, False), 74: ("recorder", 60, 91, False),
    75: ("pan flute", 60, 91, False), 76: ("blown bottle", 60, 84, False), 77: ("shakuhachi", 55, 84, False),
    78: ("whistle", 72, 96, False), 79: ("ocarina", 60, 84, False),
    80: ("square lead", 36, 96, False), 81: ("sawtooth lead", 36, 96, False), 82: ("calliope lead", 48, 96, False),
    83: ("chiff lead", 48, 96, False), 84: ("charang lead", 40, 88, False), 85: ("voice lead", 48, 84, False),
    86: ("fifths lead", 36, 84, False), 87: ("bass and lead", 28, 84, False),
    88: ("new age pad", 36, 96, True), 89: ("warm pad", 36, 96, True), 90: ("polysynth pad", 36, 96, True),
    91: ("choir pad", 43, 84, True), 92: ("bowed pad", 36, 96, True), 93: ("metallic pad", 36, 96, True),
    94: ("halo pad", 36, 96, True), 95: ("sweep pad", 36, 96, True),
    104: ("sitar", 48, 84, False), 105: ("banjo", 48, 84, True), 106: ("shamisen", 50, 84, False),
    107: ("koto", 55, 91, True), 108: ("kalimba", 60, 84, True), 109: ("bagpipe", 55, 77, False),
    110: ("fiddle", 55, 96, False), 111: ("shanai", 60, 84, False),
}  # fmt: skip

# Two per family, chosen to span the family (not by how hard they are).
HELD_OUT_PROGRAMS: frozenset[int] = frozenset(
    {3, 6, 11, 13, 19, 22, 25, 29, 33, 38, 41, 46, 49, 53, 57, 60, 65, 68, 72, 75, 81, 85, 89, 93, 105, 107}
)

TRAIN_SOUNDFONTS: tuple[str, ...] = ("FluidR3_GM", "MuseScore_General")
HELD_OUT_SOUNDFONTS: tuple[str, ...] = ("TimGM6mb",)


@dataclass(frozen=True)
class Instrument:
    """A GM program with its playing range."""

    program: int
    name: str
    low: int
    high: int
    chords: bool

    @property
    def family(self) -> str:
        return FAMILIES[self.program // 8]


INSTRUMENTS: dict[int, Instrument] = {p: Instrument(p, *spec) for p, spec in _PROGRAMS.items()}


def programs(held_out: bool) -> list[int]:
    """Training programs (held_out=False) or held-out programs (held_out=True), ascending."""
    return sorted(p for p in INSTRUMENTS if (p in HELD_OUT_PROGRAMS) == held_out)
