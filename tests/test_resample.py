"""The streaming resampler: accuracy, no aliasing, declared delay, any rate."""

from __future__ import annotations

import numpy as np
import pytest

from rtamt.constants import SAMPLE_RATE
from rtamt.resample import Resampler, resample


@pytest.mark.parametrize("rate", [8_000, 16_000, 44_100, 48_000, 96_000, 44_056])
def test_in_band_sines_come_through_exactly(rate: int) -> None:
    t = np.arange(2 * rate) / rate
    for freq in (110.0, 1000.0, min(0.4 * rate, 8000.0)):
        out = resample(np.sin(2 * np.pi * freq * t).astype(np.float32), rate)
        assert len(out) == -(-2 * rate * SAMPLE_RATE // rate)
        ref = np.sin(2 * np.pi * freq * np.arange(len(out)) / SAMPLE_RATE)
        assert np.abs(out[1000:-1000] - ref[1000:-1000]).max() < 1e-4


@pytest.mark.parametrize("rate", [44_100, 48_000, 96_000])
def test_content_above_the_output_nyquist_is_rejected(rate: int) -> None:
    t = np.arange(rate) / rate
    out = resample(np.sin(2 * np.pi * 0.3 * rate * t).astype(np.float32), rate)  # >= 13 kHz
    assert 20 * np.log10(np.abs(out[1000:-1000]).max()) < -75


@pytest.mark.parametrize("rate", [44_100, 48_000])
def test_declared_delay_is_what_the_stream_holds_back(rate: int) -> None:
    stage = Resampler(rate)
    produced = sum(len(stage.process(np.zeros(256, dtype=np.float32))) for _ in range(400))
    received_s = 400 * 256 / rate
    held_back_s = received_s - produced / SAMPLE_RATE
    # equal up to the granularity of one output and one input sample
    assert abs(held_back_s - stage.latency_s) <= 1 / SAMPLE_RATE + 1 / rate
    assert stage.latency_s < 0.004


def test_output_rate_can_be_chosen() -> None:
    audio = np.sin(2 * np.pi * 440 * np.arange(44_100) / 44_100).astype(np.float32)
    out = resample(audio, 44_100, 48_000)
    assert len(out) == 48_000
    ref = np.sin(2 * np.pi * 440 * np.arange(48_000) / 48_000)
    assert np.abs(out[500:-500] - ref[500:-500]).max() < 1e-4


def test_same_rate_passes_through() -> None:
    audio = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    stage = Resampler(SAMPLE_RATE)
    assert stage.latency_s == 0.0
    np.testing.assert_array_equal(np.concatenate([stage.process(audio), stage.flush()]), audio)


@pytest.mark.parametrize("rate", [16_000, 48_000])
def test_polyphase_bank_equals_reading_the_table(rate: int, monkeypatch: pytest.MonkeyPatch) -> None:
    audio = np.random.default_rng(3).standard_normal(rate).astype(np.float32)
    with_bank = resample(audio, rate)
    monkeypatch.setattr("rtamt.resample.MAX_BANK_ENTRIES", 0)
    assert Resampler(rate)._bank is None
    np.testing.assert_allclose(with_bank, resample(audio, rate), atol=1e-6)
