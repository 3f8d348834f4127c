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

# Fast onset path (optional, rtamt.frontend.FastPathTap): a second, short-window CQT whose harmonic-stack
# channels FAST_CHANNELS (harmonics 1-3) follow the 8 HCQT channels, for the backbone's onset branch only.
FAST_CHANNELS: tuple[int, ...] = (1, 2, 3)
N_FAST: int = len(FAST_CHANNELS)

DEFAULT_BLOCK: int = 1024  # samples per block when reading files
MAX_INPUT_CHANNELS: int = 256  # an array with more columns than this is taken for (channels, samples): refused


def bin_frequencies() -> np.ndarray:
    """Centre frequency in Hz of each of the N_BINS CQT bins."""
    return FMIN * 2.0 ** (np.arange(N_BINS) / BINS_PER_OCTAVE)


def pitch_to_hz(midi: float | np.ndarray) -> float | np.ndarray:
    """Equal-tempered frequency of a MIDI pitch (A4 = 440 Hz)."""
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=float) - 69.0) / 12.0)

# Note-on latency benchmark (rtamt/latency.py).
LATENCY_HIST_BIN_MS: float = 10.0  # histogram bin width
LATENCY_HIST_MAX_MS: float = 300.0  # the last bin also holds every later note-on
JACK_MATCH_TOLERANCE_S: float = 0.2  # note-ons timed on arrival are matched to true onsets within this
# Documented JACK transport delay: the end-to-end median may exceed the stream-time median by up to this
# (two 256-sample JACK periods at 48 kHz, PortAudio's input buffer, the worker's 2 ms poll, MIDI out).
JACK_TRANSPORT_MAX_MS: float = 30.0
JACK_XRUN_MAX_SHARE: float = 0.01  # a JACK timing with more cycles missed than this share is not trusted
# The sweep varies these decision settings around each stored tracker setting.
SWEEP_SUSTAIN_FRAMES: tuple[int, ...] = (1, 2, 4, 8)
SWEEP_ONSET_THRESHOLDS: tuple[float, ...] = (0.3, 0.4, 0.5)
# (onset_rise, rise_backdate_frames): the peak rule, and the rise rule placed a frame earlier (with a 2-frame
# clusterer window an unplaced rise waited a frame for it; with the 1-frame live window both placements leave
# on arrival, and the stored low-latency setting is the unplaced one)
SWEEP_ONSET_RULES: tuple[tuple[bool, int], ...] = ((False, 0), (True, 1))
# (bump_threshold, bump_sustain_threshold): the joint-evidence start (rtamt.tracker) added to each stored setting
SWEEP_BUMPS: tuple[tuple[float, float], ...] = ((0.1, 0.35), (0.05, 0.3))

# Exit statuses of the command line.
EXIT_BAD_INPUT: int = 2  # bad arguments or unusable audio
EXIT_NO_MODEL: int = 3
EXIT_DEVICE: int = 4  # audio device or MIDI port missing, or gone during `rtamt live`
EXIT_OUTPUT: int = 5  # the output must not or cannot be written
EXIT_USAGE: int = 6  # a plugin, sink or rig file that cannot be found or built
EXIT_SIGNAL_BASE: int = 128  # ended by signal N: 128 + N (Ctrl-C: 130, SIGTERM: 143)

# Command line limits and live reliability timings.
MAX_INSTRUMENTS: int = 15  # one MIDI channel per instrument: 16 channels minus the drum channel (10)
LIVE_INPUT_TIMEOUT_S: float = 0.5  # no audio callback for this long: the input has stopped
LIVE_BACKEND_CLOSE_S: float = 0.4  # longest wait for an audio or MIDI backend call while shutting down
LIVE_STOP_DEADLINE_S: float = 1.8  # after a stop request the process ends within this, whatever hangs
# SCHED_FIFO priority asked for the live worker thread (0: normal scheduling). Under JACK's audio threads
# (jackd -P defaults to 10 and clients' process threads run just under it), over every ordinary program.
LIVE_WORKER_PRIORITY: int = 5
LIVE_RECONNECT_POLL_S: float = 1.0  # --reconnect: how often to look for the input or JACK server again
