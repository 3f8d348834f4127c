"""Streaming ONNX model stages: the backbone (onsets and frames) and the timbre encoder (embeddings).

Each model takes a chunk of HCQT frames plus the cached left context of its temporal layers and returns
its outputs plus the new caches, so any chunking gives the same result as one pass. A model trained with
look-ahead L describes frame t in its output at input frame t + L: the stage drops its first L outputs
and ``flush`` feeds L silent frames, so output frame t always means frame t.
"""

from __future__ import annotations

import os

import numpy as np

from rtamt.chain import Stage
from rtamt.constants import HOP_S, N_HCQT_BINS, N_PITCHES
from rtamt.models import ModelError, cqt_config_of, open_session
from rtamt.normalize import SILENCE


class StreamingModel(Stage):
    """(n, 8, 252) HCQT frames in, (n, channels, 84) out; subclasses name the model kind and outputs. A
    backbone with the fast onset path reads (n, 8 + N_FAST, 252); a model given more channels than it
    reads takes the first ones (the timbre encoder beside such a backbone)."""

    kind = ""
    channels = 0

    def __init__(self, path: str | os.PathLike, threads: int = 1) -> None:
        self.session, self.meta = open_session(path, self.kind, threads)
        self.lookahead = int(self.meta["lookahead_frames"])
        inputs = self.session.get_inputs()
        self.input_channels = int(inputs[0].shape[1])
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
        return np.zeros((0, self.channels, N_PITCHES), dtype=np.float32)

    def arrange(self, outputs: list[np.ndarray]) -> np.ndarray:
        """The model's non-cache outputs -> (n, channels, 84)."""
        raise NotImplementedError

    def process(self, block: np.ndarray) -> np.ndarray:
        if len(block) == 0:
            return self.empty_output()
        if block.shape[1] < self.input_channels:
            raise ModelError(f"the {self.kind} model reads {self.input_channels} front-end channels, the front end "
                             f"gives {block.shape[1]}: build the front end from the model's metadata")  # fmt: skip
        block = block[:, : self.input_channels]
        hcqt = np.ascontiguousarray(block.transpose(1, 0, 2)[None], dtype=np.float32)  # (1, 8, n, 252)
        results = self.session.run(self._output_names, {"hcqt": hcqt, **dict(zip(self._cache_names, self._caches))})
        n_out = len(results) - len(self._caches)
        self._caches = results[n_out:]
        out = self.arrange(results[:n_out])
        skipped = min(self._to_skip, len(out))
        self._to_skip -= skipped
        return out[skipped:]

    def flush(self) -> np.ndarray:
        """Feed ``lookahead`` silent frames so that the last real frames get their outputs."""
        tail = self.process(np.full((self.lookahead, self.input_channels, N_HCQT_BINS), SILENCE, dtype=np.float32))
        self.reset()
        return tail


class Backbone(StreamingModel):
    """Output (n, 2, 84): [:, 0] onset probability, [:, 1] frame probability."""

    name = "backbone"
    kind = "backbone"
    channels = 2

    def arrange(self, outputs: list[np.ndarray]) -> np.ndarray:
        onset, frame = outputs
        return np.stack([onset[0], frame[0]], axis=1)  # each (n, 84)


class TimbreEncoder(StreamingModel):
    """Output (n, D, 84): a unit-length timbre embedding for every pitch and frame."""

    name = "timbre-encoder"
    kind = "timbre"

    def __init__(self, path: str | os.PathLike, threads: int = 1) -> None:
        super().__init__(path, threads)
        self.channels = int(self.meta["dim"])

    def arrange(self, outputs: list[np.ndarray]) -> np.ndarray:
        return outputs[0][0].transpose(1, 0, 2)  # (D, n, 84) -> (n, D, 84)


class NoteModels(Stage):
    """Backbone and timbre encoder side by side on the same HCQT: output (n, 2 + D, 84)."""

    name = "note-models"

    def __init__(self, backbone: Backbone, encoder: TimbreEncoder) -> None:
        if backbone.lookahead != encoder.lookahead:
            raise ModelError(f"backbone looks {backbone.lookahead} frames ahead, the timbre encoder "
                             f"{encoder.lookahead}: they must agree")  # fmt: skip
        if cqt_config_of(backbone.meta) != cqt_config_of(encoder.meta):  # as settings: defaults may be left out
            raise ModelError("backbone and timbre encoder were trained on different front-end settings")
        self.backbone, self.encoder = backbone, encoder

    @property
    def latency_s(self) -> float:
        return self.backbone.latency_s

    def reset(self) -> None:
        self.backbone.reset()
        self.encoder.reset()

    def empty_output(self) -> np.ndarray:
        return np.zeros((0, 2 + self.encoder.channels, N_PITCHES), dtype=np.float32)

    def process(self, block: np.ndarray) -> np.ndarray:
        return np.concatenate([self.backbone.process(block), self.encoder.process(block)], axis=1)

    def flush(self) -> np.ndarray:
        return np.concatenate([self.backbone.flush(), self.encoder.flush()], axis=1)
