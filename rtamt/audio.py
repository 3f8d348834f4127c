"""Reading audio files block by block, with checks that fail loudly and early.

Any format libsndfile reads (WAV, FLAC, OGG, MP3, AIFF, ...), any channel count (downmixed to mono by
averaging) and any sample rate (the chain resamples). Problems raise :class:`AudioInputError` naming the
file: unreadable or empty files and non-finite samples. Clipping is not an error; it is counted.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from rtamt.constants import DEFAULT_BLOCK, MAX_INPUT_CHANNELS

CLIP_LEVEL = 0.999  # |sample| at or above this counts as clipped


class AudioInputError(Exception):
    """Audio that cannot be used, with a message that names the file and the problem."""


@dataclass
class AudioInfo:
    """What is known about an audio file before reading its samples."""

    path: str
    samplerate: int
    channels: int
    frames: int
    format: str

    @property
    def duration_s(self) -> float:
        return self.frames / self.samplerate


@dataclass
class InputStats:
    """Counts gathered while the samples pass by."""

    samples: int = 0
    clipped: int = 0
    peak: float = 0.0

    def update(self, block: np.ndarray) -> None:
        if block.size:
            magnitude = np.abs(block)
            self.samples += block.size
            self.clipped += int(np.count_nonzero(magnitude >= CLIP_LEVEL))
            self.peak = max(self.peak, float(magnitude.max()))


def probe(path: str | os.PathLike) -> AudioInfo:
    """Open ``path`` and report its format; raise AudioInputError if it is missing, unreadable or empty."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise AudioInputError(f"{path}: no such file")
    if os.path.isdir(path):
        raise AudioInputError(f"{path}: is a directory, not an audio file")
    try:
        info = sf.info(path)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioInputError(f"{path}: not a readable audio file ({err})") from None
    if info.frames <= 0 or info.samplerate <= 0 or info.channels <= 0:
        raise AudioInputError(f"{path}: the file holds no audio samples")
    return AudioInfo(path, int(info.samplerate), int(info.channels), int(info.frames), str(info.format))


def downmix(block: np.ndarray) -> np.ndarray:
    """Average the channels of a (samples, channels) block into a float32 mono block."""
    if block.ndim == 1:
        return block.astype(np.float32, copy=False)
    return block.mean(axis=1, dtype=np.float64).astype(np.float32)


def check_finite(block: np.ndarray, where: str, first_sample: int, samplerate: int) -> None:
    """Raise AudioInputError if ``block`` holds NaN or infinite samples."""
    if not np.all(np.isfinite(block)):
        bad = int(np.flatnonzero(~np.isfinite(block))[0]) + first_sample
        raise AudioInputError(
            f"{where}: non-finite sample (NaN or Inf) at {bad / samplerate:.3f} s (sample {bad})"
        )


def as_mono(block: np.ndarray, sample_rate: int, first_sample: int = 0, where: str = "audio") -> np.ndarray:
    """A block of samples as mono float32: ``(samples,)`` as it is, ``(samples, channels)`` averaged over
    its channels (never interleaved). Raises AudioInputError on NaN or infinite samples, ValueError on a
    shape that cannot be audio."""
    array = np.asarray(block)
    if array.ndim == 2 and array.shape[1] > MAX_INPUT_CHANNELS:
        raise ValueError(f"{where}: expected (samples, channels), got shape {array.shape}: more than "
                         f"{MAX_INPUT_CHANNELS} channels (transpose a (channels, samples) array)")
    if array.ndim not in (1, 2):
        raise ValueError(f"{where}: expected (samples,) or (samples, channels), got shape {array.shape}")
    if np.issubdtype(array.dtype, np.signedinteger):
        array = array / float(np.iinfo(array.dtype).max + 1)
    elif not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{where}: expected float or signed integer samples, got {array.dtype}")
    mono = downmix(array)
    check_finite(mono, where, first_sample, sample_rate)
    return mono


def read_blocks(
    path: str | os.PathLike, block_size: int = DEFAULT_BLOCK, stats: InputStats | None = None
) -> Iterator[np.ndarray]:
    """Yield mono float32 blocks of ``block_size`` samples (the last may be shorter) at the file's rate."""
    info = probe(path)
    position = 0
    try:
        with sf.SoundFile(info.path) as handle:
            for raw in handle.blocks(blocksize=block_size, dtype="float32", always_2d=True):
                mono = downmix(raw)
                check_finite(mono, info.path, position, info.samplerate)
                if stats is not None:
                    stats.update(mono)
                position += mono.size
                yield mono
    except sf.LibsndfileError as err:
        raise AudioInputError(f"{info.path}: read failed after {position} samples ({err})") from None
    if position == 0:
        raise AudioInputError(f"{info.path}: the file holds no audio samples")


def read_all(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Whole file as mono float32 at its own sample rate, with the same checks as :func:`read_blocks`."""
    info = probe(path)
    audio = np.concatenate(list(read_blocks(path, block_size=65536)))
    return audio, info.samplerate
