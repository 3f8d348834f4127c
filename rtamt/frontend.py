"""The front end as one chain: resample -> sliding CQT -> energy normalisation -> harmonic stack."""

from __future__ import annotations

from rtamt.chain import Chain
from rtamt.constants import SAMPLE_RATE
from rtamt.cqt import CQTConfig, SlidingCQT
from rtamt.hcqt import HarmonicStack
from rtamt.normalize import EnergyNorm
from rtamt.resample import Resampler


def build_frontend(input_rate: int = SAMPLE_RATE, config: CQTConfig | None = None) -> Chain:
    """Audio at ``input_rate`` in, HCQT frames (n, 8, 252) out."""
    return Chain([Resampler(input_rate), SlidingCQT(config), EnergyNorm(), HarmonicStack()])
