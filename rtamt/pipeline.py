"""The transcription chain, assembled from the model files: the one implementation that files, live
input and benchmarks all run."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

from rtamt.backbone import Backbone, NoteModels, TimbreEncoder
from rtamt.chain import Chain
from rtamt.cluster import ClusterConfig, TimbreAssigner
from rtamt.constants import SAMPLE_RATE
from rtamt.cqt import SlidingCQT
from rtamt.hcqt import HarmonicStack
from rtamt.models import cqt_config_of, models_dir
from rtamt.normalize import EnergyNorm
from rtamt.resample import Resampler
from rtamt.tracker import NoteTracker, TrackerConfig


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


@dataclass
class Transcriber:
    """The chain plus direct handles on the stages that callers report on."""

    chain: Chain
    cqt: SlidingCQT
    backbone: Backbone
    tracker: NoteTracker
    assigner: TimbreAssigner | None  # None without a timbre model: every note on one channel
    model_dir: Path  # where the models came from (to rebuild the chain for another input rate)


def build_transcriber(input_rate: int = SAMPLE_RATE, model_dir: str | os.PathLike | None = None,
                      tracker: TrackerConfig | None = None, clusters: ClusterConfig | None = None,
                      instruments: int | None = None, exact: bool = False, threads: int = 1,
                      timbre: bool = True, mode: str = "accurate") -> Transcriber:  # fmt: skip
    """Audio at ``input_rate`` in, NoteEvents out. The front end uses the settings the models were trained
    with; tracker and clusterer settings come from the model files unless given: those chosen for
    accuracy (``mode`` "accurate", files) or under a note-on latency limit ("low-latency", live).
    ``instruments`` caps the number of timbres (exactly that many with ``exact``)."""
    directory = Path(model_dir) if model_dir else models_dir()
    backbone = Backbone(directory / "backbone.onnx", threads=threads)
    tracker_key = settings_key(backbone.meta, "tracker", mode)
    if tracker is None and tracker_key:
        tracker = TrackerConfig.from_json(backbone.meta[tracker_key])
    cqt = SlidingCQT(cqt_config_of(backbone.meta))
    front = [Resampler(input_rate), cqt, EnergyNorm(), HarmonicStack()]
    timbre_path = directory / "timbre.onnx"
    if timbre and timbre_path.exists():
        encoder = TimbreEncoder(timbre_path, threads=threads)
        clusters_key = settings_key(encoder.meta, "clusterer", mode)
        if clusters is None:
            clusters = ClusterConfig(**json.loads(encoder.meta[clusters_key])) if clusters_key else ClusterConfig()
        clusters = replace(clusters, max_clusters=instruments or clusters.max_clusters, exact=exact or clusters.exact)
        assigner = TimbreAssigner(tracker, clusters)
        chain = Chain([*front, NoteModels(backbone, encoder), assigner])
        return Transcriber(chain, cqt, backbone, assigner.tracker, assigner, directory)
    note_tracker = NoteTracker(tracker)
    return Transcriber(Chain([*front, backbone, note_tracker]), cqt, backbone, note_tracker, None, directory)
