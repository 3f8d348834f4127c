"""benchmarks/onset_alignment.py: the energy onset it finds follows where the sound starts, not the label."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from rtamt.constants import SAMPLE_RATE, pitch_to_hz

ROOT = Path(__file__).resolve().parent.parent


def load_alignment():
    spec = importlib.util.spec_from_file_location("onset_alignment", ROOT / "benchmarks" / "onset_alignment.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def plucked(midi: int, starts_s: list[float], seconds: float = 6.0) -> np.ndarray:
    """Harmonic tones with a 2 ms attack and an exponential decay, struck at ``starts_s``."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    audio = np.zeros_like(t)
    f0 = float(pitch_to_hz(midi))
    for start in starts_s:
        local = t - start
        envelope = np.where(local >= 0, np.minimum(local / 0.002, 1.0) * np.exp(-np.clip(local, 0, None) / 0.4), 0.0)
        audio += envelope * sum(np.sin(2 * np.pi * f0 * h * local) / h for h in range(1, 8))
    return 0.1 * audio + 1e-4 * np.random.default_rng(0).standard_normal(t.size)


def test_a_label_that_leads_the_sound_shows_up_as_a_positive_offset() -> None:
    alignment = load_alignment()
    starts = [1.0, 2.0, 3.0, 4.0]
    for midi in (45, 72):  # a low note (long, late bins) and a high one
        audio = plucked(midi, starts)
        exact = alignment.analyse([([audio], SAMPLE_RATE, [(s, s + 0.5, midi) for s in starts])], gamma_hz=10.0)["all"]
        early = alignment.analyse([([audio], SAMPLE_RATE, [(s - 0.03, s + 0.5, midi) for s in starts])], gamma_hz=10.0)["all"]
        assert abs(exact["median_ms"]) <= 12.0, (midi, exact)  # the group delay is taken out
        assert 20.0 <= early["median_ms"] - exact["median_ms"] <= 40.0, (midi, exact, early)
