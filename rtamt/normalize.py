"""Causal energy normalisation of CQT power: log power relative to a running level, gain invariant.

The published EnergyNorm divides every frame by the whole clip's spread of frame energy, which needs the
whole clip. Here the reference level is an envelope follower on the mean bin power: it rises with a short
attack time and falls with a long release time. Scaling the input by ``g`` scales both the power and the
envelope by ``g**2``, so the output ``log(power / level + EPS)`` does not change once the envelope has
settled (a few attack times after the first sound). A floor on the level keeps digital silence finite.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from rtamt.chain import Stage
from rtamt.constants import HOP_S, N_BINS

EPS = 1e-6  # relative floor: -60 dB under the mean bin power
LEVEL_FLOOR = 1e-12  # mean bin power of ~ -100 dBFS; below it the level stops following
SILENCE = math.log(EPS)  # output value of a silent bin


@numba.njit(cache=True)
def _normalise(power, level, attack, release, out):
    """Envelope-follow the mean power frame by frame; return the level after the last frame."""
    n_frames, n_bins = power.shape
    for t in range(n_frames):
        energy = 0.0
        for b in range(n_bins):
            energy += power[t, b]
        energy /= n_bins
        coef = attack if energy > level else release
        level += coef * (energy - level)
        ref = max(level, LEVEL_FLOOR)
        for b in range(n_bins):
            out[t, b] = math.log(power[t, b] / ref + EPS)
    return level


class EnergyNorm(Stage):
    """CQT power frames (n, 288) -> normalised log power (n, 288), causal, state = one running level."""

    name = "energy-norm"

    def __init__(self, attack_s: float = 0.05, release_s: float = 5.0) -> None:
        self.attack_s = attack_s
        self.release_s = release_s
        self._attack = 1.0 - math.exp(-HOP_S / attack_s)
        self._release = 1.0 - math.exp(-HOP_S / release_s)
        self.reset()

    def reset(self) -> None:
        self.level = 0.0

    def empty_output(self) -> np.ndarray:
        return np.zeros((0, N_BINS), dtype=np.float32)

    def process(self, block: np.ndarray) -> np.ndarray:
        power = np.ascontiguousarray(block, dtype=np.float64)
        out = np.empty(power.shape, dtype=np.float32)
        self.level = _normalise(power, self.level, self._attack, self._release, out)
        return out

    def flush(self) -> np.ndarray:
        self.reset()
        return self.empty_output()
