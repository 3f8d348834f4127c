"""Streaming resampler stage: any input rate to the pipeline's 22,050 Hz, same result in any chunking."""

from __future__ import annotations

import numpy as np
import soxr

from rtamt.chain import Stage
from rtamt.constants import SAMPLE_RATE

DEFAULT_QUALITY = "HQ"


class Resampler(Stage):
    """Mono float32 resampling with libsoxr's streaming engine (delay-compensated, phase-linear).

    Output sample ``k`` is the signal at time ``k / SAMPLE_RATE``: soxr holds back its filter delay instead
    of shifting the signal, and :attr:`latency_s` measures how much it holds back. When the input is
    already at 22,050 Hz the stage passes blocks through untouched.
    """

    name = "resample"

    def __init__(self, input_rate: int, quality: str = DEFAULT_QUALITY) -> None:
        if input_rate <= 0:
            raise ValueError(f"sample rate must be positive, got {input_rate}")
        self.input_rate = int(input_rate)
        self.quality = quality
        self.passthrough = self.input_rate == SAMPLE_RATE
        self._stream: soxr.ResampleStream | None = None
        self._latency_s = 0.0 if self.passthrough else self._measure_latency()
        self.reset()

    def _new_stream(self) -> soxr.ResampleStream:
        return soxr.ResampleStream(self.input_rate, SAMPLE_RATE, 1, dtype="float32", quality=self.quality)

    def _measure_latency(self) -> float:
        """Time the engine holds back in steady state: one second in, (1 s - latency) out."""
        probe = self._new_stream()
        produced = len(probe.resample_chunk(np.zeros(self.input_rate, dtype=np.float32), last=False))
        return 1.0 - produced / SAMPLE_RATE

    @property
    def latency_s(self) -> float:
        return self._latency_s

    def reset(self) -> None:
        self._stream = None if self.passthrough else self._new_stream()

    def process(self, block: np.ndarray) -> np.ndarray:
        block = np.ascontiguousarray(block, dtype=np.float32)
        if self._stream is None:
            return block.copy()
        return self._stream.resample_chunk(block, last=False)

    def flush(self) -> np.ndarray:
        if self._stream is None:
            return self.empty_output()
        tail = self._stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        self._stream = self._new_stream()
        return tail
