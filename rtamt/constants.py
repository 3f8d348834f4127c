"""Every fixed number of the rtamt pipeline, in one place.

Frame convention: frame ``n`` has time stamp ``n * HOP / SAMPLE_RATE`` seconds; its analysis windows end
at that time plus the front end's look-ahead. Pitch ``p`` (MIDI 24..107) is index ``p - MIDI_MIN`` of the
84-pitch maps and bins ``3 * index .. 3 * index + 2`` of the 252-bin harmonic stack (centre bin
``3 * index + 1``).
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE: int = 22_050
HOP: int = 256
HOP_S: float = HOP / SAMPLE_RATE  # 11.61 ms

BINS_PER_OCTAVE: int = 36
BINS_PER_SEMITONE: int = BINS_PER_OCTAVE // 12
N_OCTAVES: int = 8
N_BINS: int = BINS_PER_OCTAVE * N_OCTAVES  # 288

MIDI_MIN: int = 24  # C1
MIDI_MAX: int = 107  # B7
N_PITCHES: int = MIDI_MAX - MIDI_MIN + 1  # 84

# Lowest CQT bin: a third of a semitone under C1, so that C1 is the centre of bins 0..2.
FMIN: float = 440.0 * 2.0 ** ((MIDI_MIN - 69) / 12) * 2.0 ** (-1 / BINS_PER_OCTAVE)  # 32.07 Hz

# Q of the constant-Q transform: bins are one 36th of an octave apart.
Q_FACTOR: float = 1.0 / (2.0 ** (1 / BINS_PER_OCTAVE) - 1.0)  # 51.44

# Harmonic stack: log-CQT shifted by these many bins (sub-harmonic, harmonics 1..7).
HARMONIC_SHIFTS: tuple[int, ...] = (-36, 0, 36, 57, 72, 84, 93, 101)
N_HARMONICS: int = len(HARMONIC_SHIFTS)
N_HCQT_BINS: int = 3 * N_PITCHES  # 252

DEFAULT_BLOCK: int = 1024  # samples per block when reading files


def bin_frequencies() -> np.ndarray:
    """Centre frequency in Hz of each of the N_BINS CQT bins."""
    return FMIN * 2.0 ** (np.arange(N_BINS) / BINS_PER_OCTAVE)


def frame_time(frame: int | np.ndarray) -> float | np.ndarray:
    """Time stamp in seconds of frame index ``frame``."""
    return frame * HOP_S


def pitch_to_hz(midi: float | np.ndarray) -> float | np.ndarray:
    """Equal-tempered frequency of a MIDI pitch (A4 = 440 Hz)."""
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=float) - 69.0) / 12.0)

# Exit statuses of the command line.
EXIT_BAD_INPUT: int = 2  # bad arguments or unusable audio
EXIT_NO_MODEL: int = 3
EXIT_DEVICE: int = 4  # audio device or MIDI port missing, or gone during `rtamt live`
EXIT_OUTPUT: int = 5  # the output must not or cannot be written
EXIT_SIGNAL_BASE: int = 128  # ended by signal N: 128 + N (Ctrl-C: 130, SIGTERM: 143)

# Command line limits and live reliability timings.
MAX_INSTRUMENTS: int = 15  # one MIDI channel per instrument: 16 channels minus the drum channel (10)
LIVE_INPUT_TIMEOUT_S: float = 0.5  # no audio callback for this long: the input has stopped
LIVE_BACKEND_CLOSE_S: float = 0.4  # longest wait for an audio or MIDI backend call while shutting down
LIVE_STOP_DEADLINE_S: float = 1.8  # after a stop request the process ends within this, whatever hangs
LIVE_RECONNECT_POLL_S: float = 1.0  # --reconnect: how often to look for the input or JACK server again
