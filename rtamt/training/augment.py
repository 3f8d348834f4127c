"""Cheap load-time augmentation of a mixture crop: gain, detune, room, noise, EQ tilt, clipping.

Every transform keeps the labels valid: detuning resamples the audio and returns the time scale that
note times must be multiplied by; the room impulse response is causal (starts at its direct sound).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.signal
import soxr

from rtamt.constants import SAMPLE_RATE


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of each transform."""

    gain_db: tuple[float, float] = (-18.0, 6.0)
    detune_cents: float = 30.0
    p_detune: float = 0.5
    p_reverb: float = 0.5
    rt60_s: tuple[float, float] = (0.15, 1.4)
    p_noise: float = 0.4
    snr_db: tuple[float, float] = (15.0, 50.0)
    p_tilt: float = 0.5
    tilt_db_per_octave: float = 3.0
    p_clip: float = 0.05


# How a recording sounds, for validation (`python -m rtamt.training.tune --acoustics SEED`): a microphone always
# hears a room, so the room is always there; colour, noise and level range as in training; no detuning (the
# labels stay exact) and no clipping.
RECORDING = AugmentConfig(p_detune=0.0, p_reverb=1.0, p_clip=0.0)


def room_impulse(rng: np.random.Generator, rt60_s: float, rate: int = SAMPLE_RATE) -> np.ndarray:
    """Synthetic room: direct sound, a few early reflections, exponentially decaying noise tail."""
    length = int(rt60_s * rate)
    t = np.arange(length) / rate
    tail = rng.standard_normal(length) * np.exp(-6.9 * t / rt60_s)  # -60 dB at rt60
    tail = scipy.signal.lfilter([1.0], [1.0, -rng.uniform(0.2, 0.7)], tail)  # air absorbs the highs
    tail[: int(rng.uniform(0.005, 0.02) * rate)] = 0.0  # pre-delay before the diffuse tail
    ir = tail * rng.uniform(0.1, 0.5) / np.sqrt(np.sum(tail**2) + 1e-12)
    for _ in range(int(rng.integers(2, 6))):
        ir[int(rng.uniform(0.002, 0.03) * rate)] += rng.uniform(-0.4, 0.4)
    ir[0] = 1.0
    return ir


def colored_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Noise with power spectrum ~ 1 / f**exponent (0 white, 1 pink, 2 brown), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n)
    freqs[0] = freqs[1]
    noise = np.fft.irfft(spectrum / freqs ** (exponent / 2), n)
    return noise / (np.sqrt(np.mean(noise**2)) + 1e-12)


def tilt(audio: np.ndarray, db_per_octave: float, rate: int = SAMPLE_RATE) -> np.ndarray:
    """Spectral tilt around 1 kHz (a crude microphone/room colouring)."""
    spectrum = np.fft.rfft(audio)
    freqs = np.maximum(np.fft.rfftfreq(len(audio), 1.0 / rate), 20.0)
    spectrum *= 10 ** (db_per_octave * np.log2(freqs / 1000.0) / 20)
    return np.fft.irfft(spectrum, len(audio))


def augment(audio: np.ndarray, rng: np.random.Generator, config: AugmentConfig = AugmentConfig()) -> tuple[np.ndarray, float]:
    """Augmented copy of ``audio`` (float32) and the factor by which note times scale (detune)."""
    x = audio.astype(np.float64)
    time_scale = 1.0
    if rng.random() < config.p_detune:
        ratio = 2 ** (rng.uniform(-1, 1) * config.detune_cents / 1200)  # play back faster = higher
        x = soxr.resample(x, SAMPLE_RATE * ratio, SAMPLE_RATE, quality="MQ")
        time_scale = 1.0 / ratio
    if rng.random() < config.p_reverb:
        x = scipy.signal.fftconvolve(x, room_impulse(rng, rng.uniform(*config.rt60_s)))[: len(x)]
    if rng.random() < config.p_tilt:
        x = tilt(x, rng.uniform(-1, 1) * config.tilt_db_per_octave)
    rms = np.sqrt(np.mean(x**2)) + 1e-12
    if rng.random() < config.p_noise:
        snr = rng.uniform(*config.snr_db)
        x = x + colored_noise(rng, len(x), rng.uniform(0, 2)) * rms * 10 ** (-snr / 20)
    x *= 10 ** (rng.uniform(*config.gain_db) / 20) / (np.abs(x).max() + 1e-12) * 0.5
    if rng.random() < config.p_clip:
        x = np.clip(x * rng.uniform(1.5, 4.0), -1.0, 1.0)
    return x.astype(np.float32), time_scale
