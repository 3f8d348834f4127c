"""Streaming equals offline: random block sizes give the same output as one pass, for every stage."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtamt.chain import Chain, Stage
from rtamt.constants import HOP, SAMPLE_RATE
from rtamt.cqt import CQTConfig, SlidingCQT
from rtamt.frontend import build_frontend
from rtamt.hcqt import HarmonicStack
from rtamt.normalize import EnergyNorm
from rtamt.resample import Resampler
from tests.conftest import music_like, split_randomly

block_sizes = st.lists(st.one_of(st.integers(1, 300), st.integers(301, 8192)), min_size=1, max_size=12)
SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])

AUDIO = music_like(1.6, seed=11)
AUDIO_44K = music_like(1.6, seed=12, rate=44_100)


def one_pass(stage: Stage | Chain, data: np.ndarray) -> np.ndarray:
    stage.reset()
    return np.concatenate([stage.process(data), stage.flush()])


def in_blocks(stage: Stage | Chain, blocks: list[np.ndarray]) -> np.ndarray:
    stage.reset()
    return np.concatenate([stage.process(block) for block in blocks] + [stage.flush()])


@SETTINGS
@given(sizes=block_sizes)
def test_resampler_streams(sizes: list[int]) -> None:
    stage = Resampler(44_100)
    expected = one_pass(stage, AUDIO_44K)
    got = in_blocks(stage, split_randomly(AUDIO_44K, sizes))
    assert len(expected) == round(len(AUDIO_44K) * SAMPLE_RATE / 44_100)
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)


@SETTINGS
@given(sizes=block_sizes, lookahead=st.integers(0, 3))
def test_cqt_streams(sizes: list[int], lookahead: int) -> None:
    stage = SlidingCQT(CQTConfig(lookahead_frames=lookahead))
    expected = one_pass(stage, AUDIO)
    got = in_blocks(stage, split_randomly(AUDIO, sizes))
    assert got.shape == expected.shape == (len(AUDIO) // HOP + 1, 288)
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)


@SETTINGS
@given(sizes=st.lists(st.integers(1, 40), min_size=1, max_size=10))
def test_energy_norm_streams(sizes: list[int]) -> None:
    power = SlidingCQT().process(AUDIO)
    stage = EnergyNorm()
    expected = one_pass(stage, power)
    got = in_blocks(stage, split_randomly(power, sizes))
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)


@SETTINGS
@given(sizes=block_sizes)
def test_frontend_chain_streams(sizes: list[int]) -> None:
    chain = build_frontend(44_100)
    expected = one_pass(chain, AUDIO_44K)
    got = in_blocks(chain, split_randomly(AUDIO_44K, sizes))
    assert got.shape == expected.shape
    assert got.shape[1:] == (8, 252)
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)


def test_chain_runs_stages_in_order_and_sums_latency() -> None:
    chain = Chain([SlidingCQT(CQTConfig(lookahead_frames=2)), EnergyNorm(), HarmonicStack()])
    assert chain.latency_s == 2 * HOP / SAMPLE_RATE
    frames = chain.run([AUDIO])
    assert frames.shape == (len(AUDIO) // HOP + 1, 8, 252)
    # After flush the chain starts a fresh stream: the same input gives the same output.
    np.testing.assert_array_equal(chain.run([AUDIO]), frames)


def test_chain_is_list_like_and_takes_the_rate_per_stream() -> None:
    resampler, cqt, norm, stack = Resampler(), SlidingCQT(), EnergyNorm(), HarmonicStack()
    chain = Chain([resampler, cqt, stack])
    chain.insert(chain.index("harmonic-stack"), norm)
    assert len(chain) == 4 and chain[1] is cqt and chain["energy-norm"] is norm and "cqt" in chain
    assert list(chain) == [resampler, cqt, norm, stack] and len(chain[1:]) == 3
    chain["energy-norm"] = replacement = EnergyNorm(attack_s=0.1)
    assert chain[2] is replacement
    chain[2] = norm
    with pytest.raises(KeyError, match="no stage named 'nope'"):
        chain["nope"]
    with pytest.raises(ValueError, match="sample rate is not set"):
        chain(AUDIO_44K[:1024])
    chain.start(44_100)
    expected = build_frontend(44_100).run([AUDIO_44K])
    np.testing.assert_array_equal(chain.run([AUDIO_44K]), expected)
    chain.start(SAMPLE_RATE)  # another stream at another rate, same chain
    np.testing.assert_array_equal(chain.run([AUDIO]), build_frontend().run([AUDIO]))


def test_empty_stream_gives_the_silent_first_frame_only() -> None:
    chain = build_frontend()
    frames = chain.run([])
    assert frames.shape == (1, 8, 252)
