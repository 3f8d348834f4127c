"""The numba sliding CQT against a brute-force reference, pitch placement and reported latency."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from rtamt.constants import BINS_PER_OCTAVE, HOP, N_BINS, N_OCTAVES, SAMPLE_RATE, bin_frequencies
from rtamt.cqt import CQTConfig, SlidingCQT, decimation_lowpass
from tests.conftest import music_like, tone


def reference_power(audio: np.ndarray, cqt: SlidingCQT) -> np.ndarray:
    """Direct dot products of each bin's kernel with its octave's signal, decimated by scipy's lfilter.

    Returns the analysis after every hop h = 0 .. len(audio) // HOP (h = 0 sees only silence); frame n of
    the stage is analysis n + lookahead.
    """
    bank = cqt.bank
    levels = [audio.astype(np.float64)]
    for _ in range(1, N_OCTAVES):
        levels.append(scipy.signal.lfilter(bank.lowpass, 1.0, levels[-1])[1::2])
    n_analyses = len(audio) // HOP + 1
    power = np.zeros((n_analyses, N_BINS))
    for b in range(N_BINS):
        d = bank.levels[b]
        kernel = bank.kernel(b)
        n = len(kernel)
        padded = np.concatenate([np.zeros(n), levels[d]])
        for h in range(n_analyses):
            end = h * (HOP >> d) + n  # exclusive end in the padded signal
            power[h, b] = abs(padded[end - n : end] @ kernel) ** 2
    return power


@pytest.mark.parametrize(
    "config", [CQTConfig(), CQTConfig(lookahead_frames=2), CQTConfig(gamma_hz=8.0), CQTConfig(gamma_hz=10.0, window_peak=0.75)]
)
def test_numba_cqt_matches_brute_force(config: CQTConfig) -> None:
    audio = music_like(2.5, seed=3)
    cqt = SlidingCQT(config)
    got = np.concatenate([cqt.process(audio), cqt.flush()]).astype(np.float64)
    ref = reference_power(np.concatenate([audio, np.zeros(config.lookahead_frames * HOP)]), cqt)
    ref = ref[config.lookahead_frames :][: len(got)]
    assert got.shape == ref.shape == (len(audio) // HOP + 1, N_BINS)
    magnitude_ref, magnitude_got = np.sqrt(ref), np.sqrt(got)
    loud = magnitude_ref > 1e-4  # above -80 dB
    assert loud.sum() > 0.5 * loud.size
    rel = np.abs(magnitude_got[loud] - magnitude_ref[loud]) / magnitude_ref[loud]
    assert rel.max() <= 1e-4


@pytest.mark.parametrize("midi", [25, 38, 52, 60, 69, 84, 99, 107])
def test_pure_tone_peaks_in_its_bin(midi: int) -> None:
    cqt = SlidingCQT()
    frames = cqt.process(tone(midi, 2.5, amplitude=0.5))
    centre = 3 * (midi - 24) + 1
    assert np.argmax(frames[-1]) == centre
    # Amplitude convention: a sine of amplitude A gives |X| = A / 2 in its bin.
    assert np.sqrt(frames[-1, centre]) == pytest.approx(0.25, rel=2e-3)


def test_chirp_moves_up_through_the_bins() -> None:
    seconds = 8.0
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f0, f1 = 200.0, 3200.0  # four octaves, exponential sweep
    phase = 2 * np.pi * f0 * seconds / np.log(f1 / f0) * ((f1 / f0) ** (t / seconds) - 1)
    frames = SlidingCQT().process(0.5 * np.sin(phase))
    peaks = np.argmax(frames[SAMPLE_RATE // HOP :], axis=1)  # after the first second
    assert np.all(np.diff(peaks) >= 0)
    assert peaks[-1] - peaks[0] > 3 * BINS_PER_OCTAVE - 6


def test_decimation_lowpass_passes_and_rejects() -> None:
    freqs, response = scipy.signal.freqz(decimation_lowpass(), worN=8192, fs=1.0)
    gain_db = 20 * np.log10(np.abs(response) + 1e-30)
    assert np.abs(gain_db[freqs <= 0.19]).max() < 0.01
    assert gain_db[freqs >= 0.317].max() < -85.0


@pytest.mark.parametrize("config", [CQTConfig(), CQTConfig(gamma_hz=10.0), CQTConfig(lookahead_frames=3)])
def test_reported_latency_matches_a_click(config: CQTConfig) -> None:
    """The power-weighted centre of each bin's response to a click lies at click + latency_ms.

    Checked on bins whose window spans at least two hops: shorter windows (the top octave) leave gaps
    between frames, so the hop grid cannot locate their centre.
    """
    cqt = SlidingCQT(config)
    click_at = 2.0
    audio = np.zeros(int(5.0 * SAMPLE_RATE))
    audio[int(click_at * SAMPLE_RATE)] = 1.0
    frames = np.concatenate([cqt.process(audio), cqt.flush()]).astype(np.float64)
    times = np.arange(len(frames)) * HOP / SAMPLE_RATE
    covered = cqt.bank.lengths * 2.0**cqt.bank.levels >= 2 * HOP
    assert covered.sum() >= 5 * BINS_PER_OCTAVE
    frames = frames[:, covered]
    centre = (frames * times[:, None]).sum(axis=0) / frames.sum(axis=0)
    measured_ms = (centre - click_at) * 1000.0
    # Sampling a power-weighted centre on the hop grid is exact to within about half a hop.
    assert np.abs(measured_ms - cqt.latency_ms[covered]).max() < 0.6 * HOP / SAMPLE_RATE * 1000.0


def test_variable_q_shortens_low_windows_only_where_it_should() -> None:
    constant, variable = SlidingCQT(), SlidingCQT(CQTConfig(gamma_hz=10.0))
    assert variable.latency_ms[0] < 0.1 * constant.latency_ms[0]
    assert variable.latency_ms[-1] == pytest.approx(constant.latency_ms[-1], rel=0.1)
    assert np.all(variable.bank.lengths <= constant.bank.lengths)
    assert len(bin_frequencies()) == N_BINS


@pytest.mark.parametrize("midi", [36, 60, 84])
def test_skewed_windows_see_a_tone_sooner_in_the_same_bin(midi: int) -> None:
    """A window peaking near its newest sample: lower reported delay, the tone's bin reaches half its final
    magnitude sooner, and the bin and amplitude convention are kept."""
    symmetric, skewed = SlidingCQT(CQTConfig(gamma_hz=10.0)), SlidingCQT(CQTConfig(gamma_hz=10.0, window_peak=0.75))
    long_enough = symmetric.bank.lengths >= 8
    assert np.all(skewed.latency_ms[long_enough] < symmetric.latency_ms[long_enough])
    audio = np.concatenate([np.zeros(SAMPLE_RATE), tone(midi, 1.5, amplitude=0.5)])
    centre = 3 * (midi - 24) + 1
    half_way = []
    for cqt in (symmetric, skewed):
        frames = cqt.process(audio)
        magnitude = np.sqrt(frames[:, centre])
        assert np.argmax(frames[-1]) == centre
        assert magnitude[-1] == pytest.approx(0.25, rel=5e-3)
        half_way.append(int(np.argmax(magnitude > 0.125)))
    assert half_way[1] <= half_way[0]
    if midi < 60:  # long windows: at least a hop sooner
        assert half_way[1] < half_way[0]


def test_window_peak_is_checked() -> None:
    with pytest.raises(ValueError, match="window_peak"):
        CQTConfig(window_peak=0.3)


def test_lookahead_emits_frames_later_but_with_the_same_time_stamps() -> None:
    audio = music_like(1.0, seed=5)
    plain, ahead = SlidingCQT(), SlidingCQT(CQTConfig(lookahead_frames=2))
    first_plain, first_ahead = plain.process(audio[:2048]), ahead.process(audio[:2048])
    assert len(first_plain) == 2048 // HOP + 1
    assert len(first_ahead) == 2048 // HOP - 1
    rest_plain = np.concatenate([first_plain, plain.process(audio[2048:]), plain.flush()])
    rest_ahead = np.concatenate([first_ahead, ahead.process(audio[2048:]), ahead.flush()])
    assert len(rest_plain) == len(rest_ahead) == len(audio) // HOP + 1
    # Frame n of the look-ahead stage equals the plain stage's analysis two hops later.
    np.testing.assert_allclose(rest_ahead[:-2], rest_plain[2:], rtol=1e-6, atol=1e-12)
