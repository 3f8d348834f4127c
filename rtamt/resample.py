"""Streaming resampler stage: any input rate to the pipeline's 22,050 Hz with ~2.3 ms of delay.

Band-limited interpolation: output sample k is the input signal evaluated at input position
x_k = k * fin / fout (exact rational arithmetic, so there is no drift over hours) by a Kaiser-windowed sinc
of half-width M input samples, read from a finely sampled table with linear interpolation. The low-pass
passes up to 0.9 of the output Nyquist and reaches 80 dB of rejection at the output Nyquist, so nothing
aliases into the band. Output k needs inputs up to x_k + M: the stage's delay is M / fin (about 2.3 ms),
and it is the same in any chunking because every output is computed from absolute sample indices.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from rtamt.audio import check_finite
from rtamt.chain import Stage
from rtamt.constants import SAMPLE_RATE

PASSBAND = 0.9  # fraction of the lower Nyquist frequency that is passed flat
ATTENUATION_DB = 80.0
TABLE_STEPS = 512  # kernel table points per input sample
MAX_BANK_ENTRIES = 1 << 20  # polyphase bank size limit (phases x taps); rarer rates read the table directly


def design_kernel(input_rate: int, output_rate: int) -> tuple[np.ndarray, int]:
    """Kernel table (sampled every 1/TABLE_STEPS input samples over [-M, M]) and the half-width M."""
    nyquist = min(input_rate, output_rate) / 2
    cutoff = PASSBAND * nyquist
    transition = (nyquist - cutoff) / input_rate  # cycles per input sample
    taps = (ATTENUATION_DB - 8) / (2.285 * 2 * np.pi * transition)
    half = int(math.ceil(taps / 2))
    beta = 0.1102 * (ATTENUATION_DB - 8.7)
    t = np.arange(-half * TABLE_STEPS, half * TABLE_STEPS + 1) / TABLE_STEPS
    band = (cutoff + nyquist) / input_rate  # sinc cutoff at the centre of the transition band, x2
    kernel = band * np.sinc(band * t) * np.kaiser(len(t), beta)
    return kernel, half


@numba.njit(cache=True)
def _interpolate(buf, buf_start, next_out, up, down, table, half, steps, limit, out):
    """Compute outputs next_out, next_out+1, ... while their inputs are in buf (buf[0] is input index
    buf_start, the last available input index is buf_start + len(buf) - 1) and fewer than ``limit``
    have been written; return how many were."""
    last = buf_start + buf.size - 1
    count = 0
    while count < limit:
        k = next_out + count
        numerator = k * down
        base = numerator // up  # integer part of x_k
        frac = (numerator - base * up) / up
        if base + half > last:
            break
        acc = 0.0
        for n in range(base - half + 1, base + half + 1):
            t = (base - n) + frac  # x_k - n, in (-half, half]
            position = (t + half) * steps
            j = int(position)
            w = position - j
            h = table[j] * (1.0 - w) + table[min(j + 1, table.size - 1)] * w
            acc += buf[n - buf_start] * h
        out[count] = acc
        count += 1
    return count


def polyphase_bank(table: np.ndarray, half: int, up: int) -> np.ndarray:
    """(up, 2 * half) kernel values: row p holds the taps of every output whose position x_k has fractional
    part p / up, read from ``table`` exactly as :func:`_interpolate` reads them."""
    frac = np.arange(up)[:, None] / up
    j = np.arange(2 * half)[None, :]
    position = (2 * half - 1 - j + frac) * TABLE_STEPS  # (t + half) * steps with t = half - 1 - j + frac
    index = position.astype(np.int64)
    w = position - index
    return table[index] * (1.0 - w) + table[np.minimum(index + 1, table.size - 1)] * w


@numba.njit(cache=True)
def _polyphase(buf, buf_start, next_out, up, down, bank, half, limit, out):
    """:func:`_interpolate` with the taps of each phase precomputed in ``bank``."""
    last = buf_start + buf.size - 1
    taps = 2 * half
    count = 0
    while count < limit:
        numerator = (next_out + count) * down
        base = numerator // up
        if base + half > last:
            break
        row = bank[numerator - base * up]
        first = base - half + 1 - buf_start
        acc = 0.0
        for j in range(taps):
            acc += buf[first + j] * row[j]
        out[count] = acc
        count += 1
    return count


class Resampler(Stage):
    """Mono float32 blocks at ``input_rate`` -> blocks at ``output_rate`` (the pipeline's 22,050 Hz unless
    told otherwise); passes through when the rates are equal. The input rate belongs to the stream: it may
    be given later (:meth:`set_input_rate`, called by ``Chain.start``), and processing before it is known
    raises an error rather than assuming a rate."""

    name = "resample"

    def __init__(self, input_rate: int | None = None, output_rate: int = SAMPLE_RATE) -> None:
        if output_rate <= 0:
            raise ValueError(f"sample rates must be positive, got output rate {output_rate}")
        self.output_rate = int(output_rate)
        self.input_rate: int | None = None
        self._designs: dict[int, tuple] = {}  # kernel design per input rate: each rate is designed once
        self._half = 0
        self.reset()
        if input_rate is not None:
            self.set_input_rate(input_rate)

    def set_input_rate(self, input_rate: int) -> None:
        """Resample from ``input_rate`` from now on (the stream starts afresh)."""
        if input_rate is None or int(input_rate) <= 0:
            raise ValueError(f"sample rates must be positive, got {input_rate} -> {self.output_rate}")
        self.input_rate = int(input_rate)
        self.passthrough = self.input_rate == self.output_rate
        if self.input_rate not in self._designs:
            g = math.gcd(self.input_rate, self.output_rate)
            up, down = self.output_rate // g, self.input_rate // g
            table, half = design_kernel(self.input_rate, self.output_rate)
            fits = up * 2 * half <= MAX_BANK_ENTRIES
            bank = polyphase_bank(table, half, up) if fits and not self.passthrough else None
            self._designs[self.input_rate] = (up, down, table, half, bank)
        self._up, self._down, self._table, self._half, self._bank = self._designs[self.input_rate]
        self.reset()

    @property
    def latency_s(self) -> float:
        if self.input_rate is None:
            raise ValueError("the resampler's input rate is not set yet (Chain.start(sample_rate))")
        return 0.0 if self.passthrough else self._half / self.input_rate

    def reset(self) -> None:
        self._buf = np.zeros(self._half, dtype=np.float64)  # silence before the stream
        self._buf_start = -self._half
        self._next_out = 0
        self._received = 0
        self._seen = 0  # input samples so far, passthrough included (to say where a bad sample is)
        self.samples_out = 0  # output samples returned so far

    def process(self, block: np.ndarray) -> np.ndarray:
        """Resample ``block``; raise AudioInputError if it holds NaN or Inf (they would silence the chain)."""
        if self.input_rate is None:
            raise ValueError("the input's sample rate is not set: start the stream with its rate first "
                             "(Chain.start(sample_rate) or Transcriber(sample_rate=...))")  # fmt: skip
        block = np.asarray(block, dtype=np.float32).reshape(-1)
        check_finite(block, "audio given to the transcriber", self._seen, self.input_rate)
        self._seen += block.size
        if self.passthrough:
            self.samples_out += block.size
            return block.copy()
        self._received += block.size
        self._buf = np.concatenate([self._buf, block.astype(np.float64)])
        return self._run(limit=None)

    def _run(self, limit: int | None) -> np.ndarray:
        available = (self._buf_start + self._buf.size) * self._up // self._down + 2
        room = max(available - self._next_out, 0)
        if limit is not None:
            room = min(room, limit)
        out = np.empty(room, dtype=np.float64)
        if self._bank is not None:
            count = _polyphase(self._buf, self._buf_start, self._next_out, self._up, self._down, self._bank,
                               self._half, room, out)  # fmt: skip
        else:
            count = _interpolate(self._buf, self._buf_start, self._next_out, self._up, self._down, self._table,
                                 self._half, TABLE_STEPS, room, out)  # fmt: skip
        self._next_out += count
        self.samples_out += count
        keep_from = (self._next_out * self._down) // self._up - self._half + 1  # oldest input still needed
        drop = max(0, keep_from - self._buf_start)
        if drop:
            self._buf = self._buf[drop:]
            self._buf_start += drop
        return out[:count].astype(np.float32)

    def flush(self) -> np.ndarray:
        """Outputs for every time before the end of the input, completed with silence after it."""
        if self.input_rate is None or self.passthrough:
            return self.empty_output()
        total = -(-self._received * self._up // self._down)  # outputs with x_k < received
        self._buf = np.concatenate([self._buf, np.zeros(self._half + 1)])
        tail = self._run(limit=max(total - self._next_out, 0))
        self.reset()
        return tail


def resample(audio: np.ndarray, input_rate: int, output_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Whole-signal convenience: ``audio`` from ``input_rate`` to ``output_rate``."""
    stage = Resampler(input_rate, output_rate)
    return np.concatenate([stage.process(audio), stage.flush()])
