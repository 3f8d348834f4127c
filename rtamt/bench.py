"""Benchmarks run by ``rtamt bench``: compute per hop against the 11.61 ms hop budget, and latency."""

from __future__ import annotations

import resource
import time

import numpy as np

from rtamt.chain import Chain
from rtamt.constants import HOP, HOP_S, SAMPLE_RATE
from rtamt.cqt import CQTConfig, SlidingCQT
from rtamt.hcqt import HarmonicStack
from rtamt.normalize import EnergyNorm


def test_signal(seconds: float, seed: int = 0) -> np.ndarray:
    """Harmonic tones changing every 250 ms over soft noise: the CQT's cost does not depend on content."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    audio = 0.01 * rng.standard_normal(n)
    segment = SAMPLE_RATE // 4
    for start in range(0, n, segment):
        f0 = 440.0 * 2 ** ((rng.integers(28, 96) - 69) / 12)
        sl = slice(start, start + segment)
        for harmonic in range(1, 6):
            if f0 * harmonic < SAMPLE_RATE / 2:
                audio[sl] += 0.2 / harmonic * np.sin(2 * np.pi * f0 * harmonic * t[sl])
    return audio.astype(np.float32)


def time_per_block(chain: Chain, audio: np.ndarray, block: int) -> np.ndarray:
    """Wall time in ms of each ``chain.process`` call over ``audio`` cut into ``block``-sample blocks."""
    times = np.empty(len(audio) // block)
    for i in range(len(times)):
        piece = audio[i * block : (i + 1) * block]
        start = time.perf_counter()
        chain.process(piece)
        times[i] = (time.perf_counter() - start) * 1000.0
    return times


def bench_cqt(seconds: float = 60.0, config: CQTConfig | None = None) -> dict:
    """Sliding CQT + energy norm + harmonic stack, fed one hop (256 samples) per call, one thread."""
    cqt = SlidingCQT(config)
    chain = Chain([cqt, EnergyNorm(), HarmonicStack()])
    audio = test_signal(seconds)
    time_per_block(chain, audio[: 20 * HOP], HOP)  # compile and warm up
    chain.reset()
    per_hop = time_per_block(chain, audio, HOP)
    chain.reset()
    start = time.perf_counter()
    for i in range(0, len(audio), 8192):
        chain.process(audio[i : i + 8192])
    offline_s = time.perf_counter() - start
    return {
        "benchmark": "cqt",
        "stages": [stage.name for stage in chain.stages],
        "config": cqt.config.to_dict(),
        "audio_seconds": seconds,
        "hops": int(len(per_hop)),
        "hop_budget_ms": round(HOP_S * 1000.0, 3),
        "per_hop_ms_median": round(float(np.median(per_hop)), 4),
        "per_hop_ms_p99": round(float(np.percentile(per_hop, 99)), 4),
        "per_hop_ms_max": round(float(per_hop.max()), 4),
        "real_time_factor_per_hop": round(float(per_hop.sum() / 1000.0 / seconds), 5),
        "real_time_factor_8192_blocks": round(offline_s / seconds, 5),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "octave_latency_ms": cqt.octave_latency(),
    }
