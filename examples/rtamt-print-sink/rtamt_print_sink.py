"""An example rtamt plugin package: ``print``, a sink that prints every note event, and ``level-gate``, an
audio stage that silences blocks quieter than a threshold. Installed, rtamt finds both by name:

    rtamt plugins
    rtamt live --input song.flac --sink print
    rtamt live --config rig.toml      # [[stages]] name = "level-gate", before = "resample"
"""

from __future__ import annotations

import sys

import numpy as np

from rtamt.chain import Stage
from rtamt.midi import channel_for
from rtamt.sinks import Sink
from rtamt.tracker import NoteEvent


class PrintSink(Sink):
    """``prefix on|off channel=C pitch=P velocity=V time=T`` for every event, on stdout (C: MIDI channel
    1-16)."""

    name = "print"

    def __init__(self, prefix: str = "note") -> None:
        super().__init__()
        self.prefix = prefix

    def emit(self, event: NoteEvent) -> None:
        kind = "on" if event.on else "off"
        channel = channel_for(event.timbre) + 1
        print(f"{self.prefix} {kind} channel={channel} pitch={event.pitch} velocity={event.velocity} "
              f"time={event.time_s:.3f}", file=sys.stdout, flush=True)  # fmt: skip


class LevelGate(Stage):
    """Audio in, audio out: a block whose peak is under ``threshold_db`` dBFS becomes silence."""

    name = "level-gate"

    def __init__(self, threshold_db: float | str = -60.0) -> None:
        self.threshold = 10 ** (float(threshold_db) / 20)

    def reset(self) -> None:
        pass

    def process(self, block: np.ndarray) -> np.ndarray:
        if len(block) and float(np.abs(block).max()) < self.threshold:
            return np.zeros_like(block)
        return block
