"""The stage chain: the whole pipeline is a list of streaming stages run in order.

A stage takes a block (samples or frames, time on axis 0), returns whatever output became ready (possibly
nothing), keeps its own state between calls, and declares its latency. ``flush`` ends the stream: it
returns what the stage still holds and leaves the stage ready for a new stream. Files and live devices drive the same :class:`Chain`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence

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
    """Stages run in order; the output of each is the input of the next."""

    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = list(stages)

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
