"""The front end as one chain: resample -> sliding CQT -> energy normalisation -> harmonic stack, optionally
with a short-window fast onset path beside it."""

from __future__ import annotations

from collections import deque

import numpy as np

from rtamt.chain import Chain, Stage
from rtamt.constants import FAST_CHANNELS, N_FAST, N_HARMONICS, N_HCQT_BINS, SAMPLE_RATE
from rtamt.cqt import CQTConfig, SlidingCQT
from rtamt.hcqt import HarmonicStack
from rtamt.models import cqt_config_of, fast_config_of
from rtamt.normalize import EnergyNorm
from rtamt.resample import Resampler


def analysis_stages(config: CQTConfig | None = None, fast: CQTConfig | None = None) -> list[Stage]:
    """Audio at SAMPLE_RATE in, HCQT frames out: (n, 8, 252), or with a fast path (n, 8 + N_FAST, 252)."""
    main: list[Stage] = [SlidingCQT(config), EnergyNorm(), HarmonicStack()]
    if fast is None:
        return main
    tap = FastPathTap(fast, (config or CQTConfig()).lookahead_frames)
    return [tap, *main, FastPathJoin(tap)]


def model_analysis_stages(backbone_meta: dict) -> list[Stage]:
    """The analysis stages (:func:`analysis_stages`) a backbone was trained on, from its metadata."""
    return analysis_stages(cqt_config_of(backbone_meta), fast_config_of(backbone_meta))


def build_frontend(input_rate: int = SAMPLE_RATE, config: CQTConfig | None = None, fast: CQTConfig | None = None) -> Chain:
    """Audio at ``input_rate`` in, HCQT frames out (see :func:`analysis_stages`)."""
    return Chain([Resampler(input_rate), *analysis_stages(config, fast)])


class FastPathTap(Stage):
    """Passes the audio on unchanged and runs a second CQT on it with short windows (``fast``, e.g. a large
    variable-Q offset), normalised and stacked as the HCQT is; its frames wait for :class:`FastPathJoin`.
    Both analyses have the same hop and look-ahead, so every block gives both the same number of frames.
    The fast frames react to an attack within a frame or two, where the HCQT's long low windows take
    30-45 ms; only the backbone's onset branch reads them."""

    name = "fast-path"

    def __init__(self, fast: CQTConfig, lookahead_frames: int) -> None:
        if fast.lookahead_frames != lookahead_frames:
            raise ValueError("the fast path needs the main front end's look-ahead")
        self.config = fast
        self.chain = Chain(analysis_stages(fast))
        self.frames: deque[np.ndarray] = deque()

    def reset(self) -> None:
        self.chain.reset()
        self.frames.clear()

    def process(self, block: np.ndarray) -> np.ndarray:
        self.frames.extend(self.chain.process(block)[:, list(FAST_CHANNELS)])
        return block

    def flush(self) -> np.ndarray:
        self.frames.extend(self.chain.flush()[:, list(FAST_CHANNELS)])
        return self.empty_output()


class FastPathJoin(Stage):
    """HCQT frames (n, 8, 252) in; the same frames with the tap's fast channels appended, (n, 8 + N_FAST, 252)."""

    name = "fast-path-join"

    def __init__(self, tap: FastPathTap) -> None:
        self.tap = tap

    def reset(self) -> None:
        """The tap holds the state."""

    def empty_output(self) -> np.ndarray:
        return np.zeros((0, N_HARMONICS + N_FAST, N_HCQT_BINS), dtype=np.float32)

    def process(self, block: np.ndarray) -> np.ndarray:
        if len(self.tap.frames) < len(block):
            raise RuntimeError(f"fast path out of step: {len(self.tap.frames)} frames for {len(block)}")
        fast = [self.tap.frames.popleft() for _ in range(len(block))]
        if not fast:
            return self.empty_output()
        return np.concatenate([block, np.stack(fast)], axis=1)
