"""Sliding, causal constant-Q transform computed octave by octave with numba kernels.

Each octave is analysed at its own sample rate: the top octave (4.1-8.1 kHz) at 22,050 Hz, every lower
octave after one more low-pass-and-decimate-by-2 step. The low-pass is a minimum-phase FIR (a few samples
of group delay instead of the ~22 of its linear-phase twin) with >= 89 dB of alias rejection over the
band the lower octaves use. Every bin's window ends at the frame's time plus the declared look-ahead, so
the stage never waits for more audio than that; what it costs is the window's own centre delay, which
:attr:`SlidingCQT.latency_ms` reports per bin.

Windows: Blackman-Harris, length ``rate / (f / Q + gamma)``: ``gamma = 0`` is the constant-Q transform
of the published model (1.6 s windows at C1); ``gamma > 0`` is a variable-Q transform whose low octaves
get shorter windows, i.e. less latency for less frequency resolution. ``window_peak > 0.5`` skews each
window towards its newest sample (a long rising half, a short falling half), which moves a bin's group
delay from half its window towards the present at the same window length, for wider spectral skirts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numba
import numpy as np
import scipy.signal

from rtamt.chain import Stage
from rtamt.constants import BINS_PER_OCTAVE, HOP, N_BINS, N_OCTAVES, Q_FACTOR, SAMPLE_RATE, bin_frequencies

# Decimation low-pass, relative to the rate it filters: pass what the lower octaves use (<= 0.19 r),
# reject what would alias onto it (>= 0.317 r).
_LOWPASS_PASS = 0.19
_LOWPASS_STOP = 0.317
_LOWPASS_ATTENUATION_DB = 90.0


@dataclass(frozen=True)
class CQTConfig:
    """Front-end analysis settings; stored with every model trained on them."""

    lookahead_frames: int = 0  # windows end this many hops after the frame's time
    gamma_hz: float = 0.0  # variable-Q bandwidth offset; 0 = constant Q
    window_peak: float = 0.5  # where each window peaks, oldest (0) to newest (1) sample; 0.5 = symmetric

    def __post_init__(self) -> None:
        if self.lookahead_frames < 0:
            raise ValueError("lookahead_frames must be >= 0")
        if self.gamma_hz < 0:
            raise ValueError("gamma_hz must be >= 0")
        if not 0.5 <= self.window_peak < 1.0:
            raise ValueError("window_peak must be in [0.5, 1)")

    def to_dict(self) -> dict:
        return asdict(self)


def octave_level(bin_index: int | np.ndarray) -> int | np.ndarray:
    """Decimation level of a bin: 0 for the top octave (full rate), N_OCTAVES - 1 for the lowest."""
    return N_OCTAVES - 1 - np.asarray(bin_index) // BINS_PER_OCTAVE


def decimation_lowpass() -> np.ndarray:
    """The minimum-phase anti-alias FIR used before every decimation by 2."""
    taps, beta = scipy.signal.kaiserord(_LOWPASS_ATTENUATION_DB, 2 * (_LOWPASS_STOP - _LOWPASS_PASS))
    linear = scipy.signal.firwin(taps, _LOWPASS_PASS + _LOWPASS_STOP, window=("kaiser", beta))
    return scipy.signal.minimum_phase(linear, half=False, n_fft=1 << 14)


def blackman_harris(length: int) -> np.ndarray:
    """Symmetric 4-term Blackman-Harris window."""
    if length == 1:
        return np.ones(1)
    phase = 2.0 * np.pi * np.arange(length) / (length - 1)
    return 0.35875 - 0.48829 * np.cos(phase) + 0.14128 * np.cos(2 * phase) - 0.01168 * np.cos(3 * phase)


def skewed_window(length: int, peak: float) -> np.ndarray:
    """A Blackman-Harris window of ``length`` samples whose maximum lies at fraction ``peak`` of it.

    The rising half of a Blackman-Harris window of ``2 * peak * length`` samples, then the falling half of
    one of ``2 * (1 - peak) * length``; both halves are flat where they meet. ``peak = 0.5`` is
    :func:`blackman_harris`.
    """
    if peak == 0.5 or length < 4:
        return blackman_harris(length)
    rise = min(max(int(round(peak * length)), 1), length - 1)
    fall = length - rise
    return np.concatenate([blackman_harris(2 * rise)[:rise], blackman_harris(2 * fall)[fall:]])


def window_delay(window: np.ndarray) -> float:
    """Group delay of a window at its centre frequency: samples from its newest sample to its centroid."""
    return float(window.size - 1 - (np.arange(window.size) * window).sum() / window.sum())


@dataclass
class KernelBank:
    """All bins' complex kernels, flattened for the numba kernels."""

    levels: np.ndarray  # (N_BINS,) decimation level of each bin
    lengths: np.ndarray  # (N_BINS,) window length in samples at the bin's own rate
    delays: np.ndarray  # (N_BINS,) window group delay in samples at the bin's own rate
    offsets: np.ndarray  # (N_BINS,) start of each kernel in real/imag
    real: np.ndarray
    imag: np.ndarray
    lowpass: np.ndarray

    def kernel(self, bin_index: int) -> np.ndarray:
        """Complex kernel of one bin (applied to the newest ``lengths[bin]`` samples of its octave)."""
        start, length = self.offsets[bin_index], self.lengths[bin_index]
        return self.real[start : start + length] + 1j * self.imag[start : start + length]


def design_kernels(config: CQTConfig) -> KernelBank:
    """Window lengths and kernels of every bin. A sinusoid of amplitude A gives |X| = A / 2."""
    freqs = bin_frequencies()
    levels = octave_level(np.arange(N_BINS)).astype(np.int64)
    rates = SAMPLE_RATE / 2.0 ** levels
    lengths = np.ceil(rates / (freqs / Q_FACTOR + config.gamma_hz)).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    real = np.empty(int(lengths.sum()))
    imag = np.empty_like(real)
    delays = np.empty(N_BINS)
    for b in range(N_BINS):
        window = skewed_window(int(lengths[b]), config.window_peak)
        delays[b] = window_delay(window)
        phase = 2.0 * np.pi * freqs[b] / rates[b] * np.arange(lengths[b])
        scale = 1.0 / window.sum()
        real[offsets[b] : offsets[b] + lengths[b]] = window * np.cos(phase) * scale
        imag[offsets[b] : offsets[b] + lengths[b]] = -window * np.sin(phase) * scale
    return KernelBank(levels, lengths, delays, offsets, real, imag, decimation_lowpass())


@numba.njit(cache=True, fastmath=True)
def _run_hops(audio, n_hops, buf, buf_off, buf_len, level_hop, lowpass, k_re, k_im, k_off, k_len, k_level, out):
    """Push ``n_hops`` hops of ``audio`` through the octave buffers; write each hop's bin powers to ``out``."""
    n_levels = buf_off.size
    taps = lowpass.size
    for h in range(n_hops):
        for d in range(n_levels):
            off = buf_off[d]
            length = buf_len[d]
            hop = level_hop[d]
            for i in range(length - hop):
                buf[off + i] = buf[off + i + hop]
            tail = off + length - hop
            if d == 0:
                for i in range(hop):
                    buf[tail + i] = audio[h * hop + i]
            else:
                # Sample j of this level is the low-passed previous level at its newest sample of pair j.
                newest = buf_off[d - 1] + buf_len[d - 1] - level_hop[d - 1] + 1
                for j in range(hop):
                    p = newest + 2 * j
                    acc = 0.0
                    for i in range(taps):
                        acc += lowpass[i] * buf[p - i]
                    buf[tail + j] = acc
        for b in range(k_len.size):
            n = k_len[b]
            start = buf_off[k_level[b]] + buf_len[k_level[b]] - n
            ko = k_off[b]
            re = 0.0
            im = 0.0
            for m in range(n):
                v = buf[start + m]
                re += v * k_re[ko + m]
                im += v * k_im[ko + m]
            out[h, b] = re * re + im * im


class SlidingCQT(Stage):
    """Audio at 22,050 Hz in blocks of any size -> CQT power frames (n, 288), one per 256 samples.

    Frame ``n`` (time ``n * HOP / SAMPLE_RATE``) is emitted as soon as ``(n + lookahead) * HOP`` samples
    have arrived; frame 0 with no look-ahead covers only the silence before the stream.
    """

    name = "cqt"

    def __init__(self, config: CQTConfig | None = None) -> None:
        self.config = config or CQTConfig()
        self.bank = design_kernels(self.config)
        n_levels = N_OCTAVES
        self._level_hop = np.array([HOP >> d for d in range(n_levels)], dtype=np.int64)
        taps = self.bank.lowpass.size
        self._buf_len = np.array(
            [
                max(int(self.bank.lengths[self.bank.levels == d].max()), taps - 1 + int(self._level_hop[d]))
                for d in range(n_levels)
            ],
            dtype=np.int64,
        )
        self._buf_off = np.concatenate([[0], np.cumsum(self._buf_len)[:-1]]).astype(np.int64)
        self.latency_ms = self._bin_latency_ms()
        self.reset()

    @property
    def latency_s(self) -> float:
        """Frames leave ``lookahead`` hops after their time stamp (the window delay is in latency_ms)."""
        return self.config.lookahead_frames * HOP / SAMPLE_RATE

    def reset(self) -> None:
        self._buf = np.zeros(int(self._buf_len.sum()))
        self._pending = np.zeros(0)
        self._samples_in = 0
        self._started = False
        # Frame n is the analysis after hop n + lookahead; the analysis after zero hops is frame 0 when
        # there is no look-ahead, and analyses 1 .. lookahead - 1 come before frame 0 otherwise.
        self._to_skip = max(self.config.lookahead_frames - 1, 0)

    def empty_output(self) -> np.ndarray:
        return np.zeros((0, N_BINS), dtype=np.float32)

    def process(self, block: np.ndarray) -> np.ndarray:
        block = np.asarray(block, dtype=np.float64).reshape(-1)
        self._samples_in += block.size
        pending = np.concatenate([self._pending, block]) if self._pending.size else block
        n_hops = pending.size // HOP
        self._pending = pending[n_hops * HOP :].copy()
        frames = np.empty((n_hops, N_BINS), dtype=np.float64)
        if n_hops:
            b = self.bank
            _run_hops(
                np.ascontiguousarray(pending[: n_hops * HOP]), n_hops, self._buf, self._buf_off, self._buf_len,
                self._level_hop, b.lowpass, b.real, b.imag, b.offsets, b.lengths, b.levels, frames,
            )  # fmt: skip
        if not self._started:
            self._started = True
            if self.config.lookahead_frames == 0:
                frames = np.concatenate([np.zeros((1, N_BINS)), frames])
        if self._to_skip:
            skipped = min(self._to_skip, len(frames))
            frames = frames[skipped:]
            self._to_skip -= skipped
        return frames.astype(np.float32)

    def flush(self) -> np.ndarray:
        """Complete the frames whose time stamps lie within the stream, feeding silence past its end."""
        last_frame = self._samples_in // HOP
        needed = (last_frame + self.config.lookahead_frames) * HOP - self._samples_in
        tail = self.process(np.zeros(max(needed, 0)))
        self.reset()
        return tail

    def _bin_latency_ms(self) -> np.ndarray:
        """Group delay of each bin's content behind the frame's time stamp, in ms."""
        freqs = bin_frequencies()
        levels = self.bank.levels
        delay = 1.0 + self.bank.delays * 2.0**levels  # window centroid, in input samples
        for d in range(1, N_OCTAVES):
            rate = SAMPLE_RATE / 2.0 ** (d - 1)
            below = levels >= d  # bins that went through decimation step d
            _, gd = scipy.signal.group_delay((self.bank.lowpass, 1), w=freqs[below], fs=rate)
            delay[below] += gd * 2.0 ** (d - 1)
        delay -= self.config.lookahead_frames * HOP
        return delay / SAMPLE_RATE * 1000.0

    def octave_latency(self) -> list[dict]:
        """Per-octave summary of window length and group delay (ms), lowest octave first."""
        freqs = bin_frequencies()
        rows = []
        for octave in range(N_OCTAVES):
            sl = slice(octave * BINS_PER_OCTAVE, (octave + 1) * BINS_PER_OCTAVE)
            level = N_OCTAVES - 1 - octave
            window_ms = self.bank.lengths[sl] * 2.0**level / SAMPLE_RATE * 1000.0
            rows.append(
                {
                    "octave": octave,
                    "f_low_hz": round(float(freqs[sl][0]), 2),
                    "f_high_hz": round(float(freqs[sl][-1]), 2),
                    "window_ms_max": round(float(window_ms.max()), 2),
                    "latency_ms_min": round(float(self.latency_ms[sl].min()), 2),
                    "latency_ms_max": round(float(self.latency_ms[sl].max()), 2),
                }
            )
        return rows
