"""Backbone stage: HCQT frames -> onset and frame probabilities per pitch, streaming through ONNX with
the cached left context of every temporal layer carried between calls."""

from __future__ import annotations

import os

import numpy as np

from rtamt.chain import Stage
from rtamt.constants import HOP_S, N_HARMONICS, N_HCQT_BINS, N_PITCHES
from rtamt.models import open_session
from rtamt.normalize import SILENCE


class Backbone(Stage):
    """(n, 8, 252) HCQT frames in, (n, 2, 84) out: [:, 0] onset, [:, 1] frame probability.

    The model looks ``lookahead`` frames ahead: its output for frame t is ready once frame t + lookahead
    has arrived, so the stage's output lags its input by that many frames (flush completes the tail).
    """

    name = "backbone"

    def __init__(self, path: str | os.PathLike, threads: int = 1) -> None:
        self.session, self.meta = open_session(path, "backbone", threads)
        self.lookahead = int(self.meta["lookahead_frames"])
        inputs = self.session.get_inputs()
        self._cache_names = [i.name for i in inputs[1:]]
        self._cache_shapes = [tuple(i.shape) for i in inputs[1:]]
        self._output_names = [o.name for o in self.session.get_outputs()]
        self.reset()

    @property
    def latency_s(self) -> float:
        return self.lookahead * HOP_S

    def reset(self) -> None:
        self._caches = [np.zeros(shape, dtype=np.float32) for shape in self._cache_shapes]
        self._to_skip = self.lookahead

    def empty_output(self) -> np.ndarray:
        return np.zeros((0, 2, N_PITCHES), dtype=np.float32)

    def process(self, block: np.ndarray) -> np.ndarray:
        if len(block) == 0:
            return self.empty_output()
        hcqt = np.ascontiguousarray(block.transpose(1, 2, 0)[None], dtype=np.float32)  # (1, 8, 252, n)
        feeds = {"hcqt": hcqt, **dict(zip(self._cache_names, self._caches))}
        onset, frame, *self._caches = self.session.run(self._output_names, feeds)
        out = np.stack([onset[0], frame[0]], axis=0).transpose(2, 0, 1)  # (n, 2, 84)
        skipped = min(self._to_skip, len(out))
        self._to_skip -= skipped
        return out[skipped:]

    def flush(self) -> np.ndarray:
        """Feed ``lookahead`` silent frames so that the last real frames get their outputs."""
        tail = self.process(np.full((self.lookahead, N_HARMONICS, N_HCQT_BINS), SILENCE, dtype=np.float32))
        self.reset()
        return tail
