"""The stage chain: the whole pipeline is a list of streaming stages run in order.

A stage takes a block (samples or frames, time on axis 0), returns whatever output became ready (possibly
nothing), keeps its own state between calls, and declares its latency. ``flush`` ends the stream: it
returns what the stage still holds and leaves the stage ready for a new stream. Files and live devices drive the same :class:`Chain`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence

import numpy as np


class Stage(ABC):
    """One streaming step of the pipeline."""

    name: str = "stage"

    @property
    def latency_s(self) -> float:
        """Algorithmic delay this stage adds between an input's time and its output's availability."""
        return 0.0

    @abstractmethod
    def process(self, block: np.ndarray) -> np.ndarray:
        """Consume ``block`` and return the output that is now complete (axis 0 is time)."""

    def flush(self) -> np.ndarray:
        """End of stream: return what is still held back and start afresh. The default holds nothing."""
        return self.empty_output()

    @abstractmethod
    def reset(self) -> None:
        """Forget all state, as if freshly built."""

    def empty_output(self) -> np.ndarray:
        """A zero-length block of this stage's output type."""
        return np.zeros(0, dtype=np.float32)


class Chain:
    """Stages run in order; the output of each is the input of the next. List-like: ``len(chain)``,
    ``chain[i]``, ``chain["cqt"]`` (by stage name, also to replace one), ``chain.index(name)``,
    ``chain.insert(i, stage)``;
    calling the chain processes a block. The input's sample rate belongs to the stream, not to the chain:
    :meth:`start` sets it (on every stage that takes one) and starts a fresh stream."""

    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = list(stages)

    def __len__(self) -> int:
        return len(self.stages)

    def __iter__(self) -> Iterator[Stage]:
        return iter(self.stages)

    def __getitem__(self, key: int | slice | str) -> Stage | Chain:
        if isinstance(key, str):
            return self.stages[self.index(key)]
        if isinstance(key, slice):
            return Chain(self.stages[key])
        return self.stages[key]

    def __setitem__(self, key: int | str, stage: Stage) -> None:
        """Replace the stage at a position or of a name."""
        self.stages[self.index(key) if isinstance(key, str) else key] = stage

    def __contains__(self, name: object) -> bool:
        return any(stage.name == name for stage in self.stages)

    def __call__(self, block: np.ndarray) -> np.ndarray | list:
        return self.process(block)

    def __repr__(self) -> str:
        return f"Chain([{', '.join(stage.name for stage in self.stages)}])"

    def index(self, name: str) -> int:
        """Position of the first stage called ``name``."""
        for position, stage in enumerate(self.stages):
            if stage.name == name:
                return position
        raise KeyError(f"no stage named {name!r} in {self!r}")

    def insert(self, position: int, stage: Stage) -> None:
        self.stages.insert(position, stage)

    def append(self, stage: Stage) -> None:
        self.stages.append(stage)

    def start(self, sample_rate: int) -> None:
        """Begin a new stream whose audio arrives at ``sample_rate``: every stage with a
        ``set_input_rate`` method is told the rate, and every stage is reset."""
        for stage in self.stages:
            if hasattr(stage, "set_input_rate"):
                stage.set_input_rate(sample_rate)
        self.reset()

    @property
    def latency_s(self) -> float:
        return sum(stage.latency_s for stage in self.stages)

    def process(self, block: np.ndarray) -> np.ndarray:
        return self._run_from(0, block)

    def flush(self) -> np.ndarray:
        """End the stream: flush every stage in order, passing what each releases downstream."""
        outputs = []
        for index, stage in enumerate(self.stages):
            released = stage.flush()
            outputs.append(self._run_from(index + 1, released))
        return self._concatenate(outputs)

    def reset(self) -> None:
        for stage in self.stages:
            stage.reset()

    def run(self, blocks: Iterable[np.ndarray]) -> np.ndarray:
        """Offline use: feed every block, flush, and return all output concatenated."""
        outputs = [self.process(block) for block in blocks]
        outputs.append(self.flush())
        return self._concatenate(outputs)

    def empty_output(self) -> np.ndarray:
        return self.stages[-1].empty_output() if self.stages else np.zeros(0, dtype=np.float32)

    def _run_from(self, start: int, block: np.ndarray) -> np.ndarray:
        for stage in self.stages[start:]:
            if len(block) == 0:
                return self.empty_output()
            block = stage.process(block)
        return block

    def _concatenate(self, outputs: list) -> np.ndarray | list:
        """Join outputs: arrays along time, event lists end to end."""
        outputs = [out for out in outputs if len(out)]
        if not outputs:
            return self.empty_output()
        if isinstance(outputs[0], list):
            return [item for out in outputs for item in out]
        return np.concatenate(outputs)
