"""The transcription chain, assembled from the model files: the one implementation that files, live
input and benchmarks all run."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from rtamt.backbone import Backbone
from rtamt.chain import Chain
from rtamt.constants import SAMPLE_RATE
from rtamt.cqt import SlidingCQT
from rtamt.hcqt import HarmonicStack
from rtamt.models import cqt_config_of, models_dir
from rtamt.normalize import EnergyNorm
from rtamt.resample import Resampler
from rtamt.tracker import NoteTracker, TrackerConfig


@dataclass
class Transcriber:
    """The chain plus direct handles on the stages that callers report on."""

    chain: Chain
    cqt: SlidingCQT
    backbone: Backbone
    tracker: NoteTracker


def build_transcriber(input_rate: int = SAMPLE_RATE, model_dir: str | os.PathLike | None = None,
                      tracker: TrackerConfig | None = None, threads: int = 1) -> Transcriber:  # fmt: skip
    """Audio at ``input_rate`` in, NoteEvents out. The front end uses the settings the backbone was
    trained with; tracker thresholds come from the model file unless given."""
    directory = Path(model_dir) if model_dir else models_dir()
    backbone = Backbone(directory / "backbone.onnx", threads=threads)
    if tracker is None and "tracker" in backbone.meta:
        tracker = TrackerConfig.from_json(backbone.meta["tracker"])
    cqt = SlidingCQT(cqt_config_of(backbone.meta))
    note_tracker = NoteTracker(tracker)
    chain = Chain([Resampler(input_rate), cqt, EnergyNorm(), HarmonicStack(), backbone, note_tracker])
    return Transcriber(chain, cqt, backbone, note_tracker)
