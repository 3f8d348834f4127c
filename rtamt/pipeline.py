"""The transcription chain, assembled from the model files: the one implementation that files, live
input, benchmarks and the library all run."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import numpy as np

from rtamt.audio import as_mono
from rtamt.backbone import Backbone, NoteModels, TimbreEncoder
from rtamt.chain import Chain
from rtamt.cluster import ClusterConfig, TimbreAssigner
from rtamt.constants import HOP_S
from rtamt.cqt import SlidingCQT
from rtamt.frontend import model_analysis_stages
from rtamt.models import models_dir
from rtamt.resample import Resampler
from rtamt.sustain import PedalChange, SustainModel, SustainStage
from rtamt.tracker import NoteEvent, NoteTracker, TrackerConfig

MODES = ("accurate", "low-latency")


def settings_key(meta: dict, key: str, mode: str) -> str | None:
    """The metadata key holding ``key``'s settings for ``mode``: ``key_low_latency`` when the model has
    settings chosen under a latency limit, else ``key``; None when the model has neither."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    preferred = f"{key}_low_latency" if mode == "low-latency" else key
    for candidate in (preferred, key):
        if candidate in meta:
            return candidate
    return None


class Transcriber:
    """The transcription chain built from the model files, for streaming blocks yourself: audio blocks in
    (mono, or ``(samples, channels)`` downmixed), note events out.

    >>> transcriber = Transcriber(sample_rate=44_100)
    >>> events = transcriber.process(block)   # what became ready, possibly nothing
    >>> events += transcriber.flush()         # end of stream: every note ended; ready for a new stream

    The chain is built once; the sample rate belongs to the stream (``sample_rate`` here, or
    :meth:`start` for each new stream). Tracker and clusterer settings come from the model files unless
    given: those chosen for accuracy (``mode`` "accurate", files) or under a note-on latency limit
    ("low-latency", live). ``instruments`` caps the number of timbres (exactly that many with ``exact``);
    ``timbre=False`` leaves the timbre model out (every note on one channel). With a timbre model and
    ``models/sustain.onnx`` (unless ``sustain=False``) the sustain-pedal stage ends notes at their key
    releases under the pedal and reports the pedal (:meth:`take_pedal`). Handles on the stages that
    callers report on: ``chain``, ``cqt``, ``backbone``, ``tracker``, ``sustain`` and ``assigner`` (None
    without their models) and ``model_dir`` (where the models came from)."""

    def __init__(self, sample_rate: int | None = None, *, models: str | os.PathLike | None = None,
                 mode: str = "accurate", instruments: int | None = None, exact: bool = False,
                 tracker: TrackerConfig | None = None, clusters: ClusterConfig | None = None,
                 timbre: bool = True, sustain: bool = True, threads: int = 1) -> None:  # fmt: skip
        directory = Path(models) if models else models_dir()
        backbone = Backbone(directory / "backbone.onnx", threads=threads)
        tracker_key = settings_key(backbone.meta, "tracker", mode)
        if tracker is None and tracker_key:
            tracker = TrackerConfig.from_json(backbone.meta[tracker_key])
        front = [Resampler(), *model_analysis_stages(backbone.meta)]
        cqt = next(stage for stage in front if isinstance(stage, SlidingCQT))
        timbre_path = directory / "timbre.onnx"
        self.model_dir, self.cqt, self.backbone = directory, cqt, backbone
        self.assigner: TimbreAssigner | None = None
        self.sustain: SustainStage | None = None
        if timbre and timbre_path.exists():
            encoder = TimbreEncoder(timbre_path, threads=threads)
            clusters_key = settings_key(encoder.meta, "clusterer", mode)
            if clusters is None:
                clusters = ClusterConfig(**json.loads(encoder.meta[clusters_key])) if clusters_key else ClusterConfig()
            clusters = replace(clusters, max_clusters=instruments or clusters.max_clusters, exact=exact or clusters.exact)
            self.tracker = NoteTracker(tracker, keep_frames=True)
            self.assigner = TimbreAssigner(tracker, clusters, tracked=True)
            middle: list = []
            if sustain and (directory / "sustain.onnx").exists():
                self.sustain = SustainStage(SustainModel(directory / "sustain.onnx", threads=threads))
                self.sustain.check_encoder(encoder.channels)
                middle = [self.sustain]
            self.chain = Chain([*front, NoteModels(backbone, encoder), self.tracker, *middle, self.assigner])
        else:
            self.tracker = NoteTracker(tracker)
            self.chain = Chain([*front, backbone, self.tracker])
        self.resampler: Resampler = front[0]
        if sample_rate is not None:
            self.start(sample_rate)

    @property
    def sample_rate(self) -> int | None:
        """The current stream's input sample rate (None before :meth:`start`)."""
        return self.resampler.input_rate

    @property
    def emit_delay_s(self) -> float:
        """Stream time from a frame's arrival at the chain input to the tracker seeing it: the resampler's
        delay plus the backbone's look-ahead."""
        return self.resampler.latency_s + self.backbone.lookahead * HOP_S

    def start(self, sample_rate: int) -> None:
        """Begin a new stream of audio at ``sample_rate`` Hz (any state is forgotten)."""
        self.chain.start(sample_rate)

    def process(self, block: np.ndarray) -> list[NoteEvent]:
        """Feed one block; return the note events that became ready (possibly none). Raises
        :class:`~rtamt.audio.AudioInputError` on NaN or infinite samples."""
        if self.sample_rate is None:
            raise ValueError("set the input's sample rate first: Transcriber(sample_rate=...) or "
                             ".start(rate)")  # fmt: skip
        mono = as_mono(block, self.sample_rate)
        return self.chain.process(mono) if len(mono) else []

    def flush(self) -> list[NoteEvent]:
        """End the stream: the last events, every sounding note ended; ready for a new stream at the same
        rate."""
        return self.chain.flush()

    def reset(self) -> None:
        """Forget the stream so far (the rate stays)."""
        self.chain.reset()

    def take_pedal(self) -> list[PedalChange]:
        """The sustain-pedal changes decided since the last call (none without the sustain stage); after
        :meth:`flush` the pedal is always up."""
        return self.sustain.take_changes() if self.sustain is not None else []

    def run(self, blocks: Iterable[np.ndarray]) -> list[NoteEvent]:
        """Every block through the chain, then the flush: all events of one stream."""
        events = [event for block in blocks for event in self.process(block)]
        return events + self.flush()


def build_transcriber(input_rate: int | None = None, model_dir: str | os.PathLike | None = None,
                      tracker: TrackerConfig | None = None, clusters: ClusterConfig | None = None,
                      instruments: int | None = None, exact: bool = False, threads: int = 1,
                      timbre: bool = True, mode: str = "accurate", sustain: bool = True) -> Transcriber:  # fmt: skip
    """A :class:`Transcriber` (positional form). Without ``input_rate`` the stream's rate must be given
    by ``start(rate)`` before audio arrives: no rate is ever assumed."""
    return Transcriber(input_rate, models=model_dir, mode=mode, instruments=instruments, exact=exact,
                       tracker=tracker, clusters=clusters, timbre=timbre, sustain=sustain, threads=threads)  # fmt: skip
