"""Causal energy normalisation: gain invariance after warm-up, finite silence, harmonic stack layout."""

from __future__ import annotations

import numpy as np

from rtamt.constants import HARMONIC_SHIFTS, HOP, N_BINS, SAMPLE_RATE
from rtamt.cqt import SlidingCQT
from rtamt.hcqt import HarmonicStack, stack_indices
from rtamt.normalize import SILENCE, EnergyNorm
from tests.conftest import music_like


def normalised(audio: np.ndarray) -> np.ndarray:
    return EnergyNorm().process(SlidingCQT().process(audio))


def test_output_is_gain_invariant_after_warm_up() -> None:
    audio = music_like(6.0, seed=2)
    loud, quiet = normalised(audio), normalised(0.01 * audio)
    warm = int(1.0 * SAMPLE_RATE / HOP)
    assert np.abs(loud[warm:] - quiet[warm:]).max() <= 1e-3
    # and it really is a different signal from the un-normalised log power
    raw_loud = np.log(SlidingCQT().process(audio) + 1e-12)
    raw_quiet = np.log(SlidingCQT().process(0.01 * audio) + 1e-12)
    assert np.abs(raw_loud[warm:] - raw_quiet[warm:]).max() > 5.0


def test_a_gain_drop_mid_stream_is_forgotten_at_the_release_rate() -> None:
    """After a 26 dB drop the running level decays with the 5 s release time constant, so 30 s later the
    output matches a stream that was quiet all along (excess ln(1 + 399 e^-6) = 0.66 nats at most)."""
    audio = music_like(40.0, seed=4)
    stepped = audio.copy()
    step = 5 * SAMPLE_RATE
    stepped[step:] *= 0.05
    reference, out = normalised(0.05 * audio), normalised(stepped)
    just_after = slice(step // HOP + 20, step // HOP + 120)
    settled = slice(int(35.0 * SAMPLE_RATE / HOP), None)
    assert np.median(np.abs(out[just_after] - reference[just_after])) > 3.0
    assert np.median(np.abs(out[settled] - reference[settled])) < 0.66


def test_digital_silence_is_finite_and_constant() -> None:
    out = normalised(np.zeros(SAMPLE_RATE))
    assert np.all(out == np.float32(SILENCE))


def test_harmonic_stack_shifts_bins() -> None:
    frame = np.arange(N_BINS, dtype=np.float32)[None, :]
    stacked = HarmonicStack().process(frame)[0]
    for channel, shift in enumerate(HARMONIC_SHIFTS):
        for column in (0, 100, 251):
            source = column + shift
            expected = source if 0 <= source < N_BINS else np.float32(SILENCE)
            assert stacked[channel, column] == expected
    assert stack_indices().shape == (8, 252)


def test_harmonic_stack_lines_up_harmonics_of_a_tone() -> None:
    """A harmonic tone at C4 lights the C4 column of the first five harmonic channels."""
    t = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
    f0 = 261.63
    audio = sum(0.2 * np.sin(2 * np.pi * f0 * k * t) for k in range(1, 6))
    hcqt = HarmonicStack().process(normalised(audio.astype(np.float32)))[-1]
    column = 3 * (60 - 24) + 1
    for channel in range(1, 6):  # harmonics 1..5 all sound at the C4 column
        assert hcqt[channel, column] > SILENCE + 10.0
    assert hcqt[0, column] < hcqt[1, column] - 8.0  # nothing at the sub-harmonic C3
