"""Harmonic stacking: the log-CQT shifted by the harmonic offsets into 8 channels of 252 bins."""

from __future__ import annotations

import numpy as np

from rtamt.chain import Stage
from rtamt.constants import HARMONIC_SHIFTS, N_BINS, N_HARMONICS, N_HCQT_BINS
from rtamt.normalize import SILENCE


def stack_indices() -> np.ndarray:
    """(8, 252) index into a CQT frame padded with one silent bin at index N_BINS."""
    idx = np.array(HARMONIC_SHIFTS)[:, None] + np.arange(N_HCQT_BINS)[None, :]
    return np.where((idx >= 0) & (idx < N_BINS), idx, N_BINS)


class HarmonicStack(Stage):
    """Normalised log-CQT frames (n, 288) -> HCQT frames (n, 8, 252); bins past the edges read silence."""

    name = "harmonic-stack"

    def __init__(self) -> None:
        self._index = stack_indices()

    def reset(self) -> None:
        """Stateless."""

    def empty_output(self) -> np.ndarray:
        return np.zeros((0, N_HARMONICS, N_HCQT_BINS), dtype=np.float32)

    def process(self, block: np.ndarray) -> np.ndarray:
        padded = np.concatenate([block, np.full((len(block), 1), SILENCE, dtype=np.float32)], axis=1)
        return padded[:, self._index].astype(np.float32, copy=False)
