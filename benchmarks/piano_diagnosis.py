"""Where real piano is lost (issue 16): tracker thresholds, onset recall by octave, band limit.

    python benchmarks/piano_diagnosis.py thresholds --cache /tmp/real-frames.pkl [--models DIR]
    python benchmarks/piano_diagnosis.py octaves --cache /tmp/real-frames.pkl [--models DIR]
    python benchmarks/piano_diagnosis.py lowpass --data data/synth-live/valid [--models DIR]

``--cache`` is the model-output cache that ``benchmarks/real_clusters.py FOLDERS --cache FILE`` writes
(the same models). ``thresholds`` re-runs the note tracker with a grid of onset and frame thresholds on
every cached piece (a diagnosis on evaluation data, not a way to choose settings); ``octaves`` gives the
onset recall per octave on maps-dev with the model's stored settings; ``lowpass`` scores the first
solo-piano idiom examples of a synthetic split as rendered and low-passed at 7.8 kHz (MAPS is 16 kHz audio).
"""

from __future__ import annotations

import argparse
import itertools
import json
import pickle
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from rtamt.backbone import Backbone
from rtamt.constants import SAMPLE_RATE
from rtamt.evaluate import note_metrics, read_notes_csv
from rtamt.models import models_dir
from rtamt.tracker import NoteTracker, TrackerConfig, events_to_notes


def cached(path: Path) -> list[tuple[Path, np.ndarray]]:
    key, frames = pickle.loads(path.read_bytes())
    return [(Path(p), f) for p, f in zip(key[1], frames)]


def tracked_notes(config: TrackerConfig, frames: np.ndarray) -> list[tuple]:
    tracker = NoteTracker(config)
    return events_to_notes(tracker.process(frames[:, :2, :]) + tracker.flush())


def reference(piece: Path) -> list[tuple[float, float, int]]:
    return [(on, off, midi) for on, off, midi, _ in read_notes_csv(piece / "notes.csv")]


def thresholds(pieces: list[tuple[Path, np.ndarray]], base: TrackerConfig) -> dict:
    out = {}
    for onset, frame in itertools.product([0.2, 0.3, 0.5], [0.1, 0.2, 0.3]):
        config = replace(base, onset_threshold=onset, frame_threshold=frame)
        by_set: dict[str, list[float]] = {}
        for piece, frames in pieces:
            f1 = note_metrics(reference(piece), tracked_notes(config, frames), frames=False)["onset_f1"]
            by_set.setdefault(piece.parent.name, []).append(f1)
        out[f"onset {onset} frame {frame}"] = {name: round(float(np.mean(v)), 3) for name, v in by_set.items()}
    return out


def octaves(pieces: list[tuple[Path, np.ndarray]], config: TrackerConfig) -> dict:
    import mir_eval

    hits, totals = np.zeros(10), np.zeros(10)
    for piece, frames in pieces:
        if piece.parent.name != "maps-dev":
            continue
        ref, est = reference(piece), tracked_notes(config, frames)
        hz = lambda m: 440.0 * 2 ** ((np.asarray(m, dtype=float) - 69) / 12)  # noqa: E731
        matched = mir_eval.transcription.match_notes(
            np.array([[a, b] for a, b, _ in ref]), hz([m for *_, m in ref]),
            np.array([[a, max(b, a + 0.01)] for a, b, _, _ in est]).reshape(-1, 2), hz([n[2] for n in est]),
            onset_tolerance=0.05, offset_ratio=None,
        )  # fmt: skip
        for i, _ in matched:
            hits[ref[i][2] // 12] += 1
        for *_, midi in ref:
            totals[midi // 12] += 1
    return {f"C{o - 1}-B{o - 1}": {"notes": int(totals[o]), "onset_recall": round(hits[o] / totals[o], 3)}
            for o in range(10) if totals[o]}  # fmt: skip


def lowpass(split: Path, model: Path, count: int = 8) -> dict:
    import scipy.signal

    from rtamt.evaluate import evaluate_piece
    from rtamt.pipeline import build_transcriber
    from rtamt.training.dataset import ShardSet

    shards = ShardSet(split)
    sources = [ex["source"] for meta in sorted(split.glob("shard-*.json")) for ex in json.loads(meta.read_text())["examples"]]
    chosen = [i for i, source in enumerate(sources) if source == "idiom:piano"][:count]
    sos = scipy.signal.butter(12, 7800, fs=SAMPLE_RATE, output="sos")
    transcriber = build_transcriber(model_dir=model, timbre=False)
    scores: dict[str, list[float]] = {"as rendered": [], "low-passed at 7.8 kHz": []}
    for index in chosen:
        example = shards.examples[index]
        audio = shards.segment(index, 0, example.length)
        notes = [(float(n[0]), float(n[1]), int(n[2])) for n in example.notes]
        for name, version in zip(scores, (audio, scipy.signal.sosfilt(sos, audio).astype(np.float32))):
            transcriber.start(SAMPLE_RATE)
            blocks = [version[k : k + 4096] for k in range(0, len(version), 4096)]
            scores[name].append(evaluate_piece(transcriber, blocks, notes, example.length / SAMPLE_RATE)["onset_f1"])
    return {"examples": len(chosen), **{name: round(float(np.mean(v)), 3) for name, v in scores.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["thresholds", "octaves", "lowpass"])
    parser.add_argument("--cache", type=Path, help="model outputs written by benchmarks/real_clusters.py")
    parser.add_argument("--data", type=Path, default=Path("data/synth-live/valid"))
    parser.add_argument("--models", type=Path, default=None)
    args = parser.parse_args(argv)
    model = args.models or models_dir()
    config = TrackerConfig.from_json(Backbone(model / "backbone.onnx").meta["tracker"])
    if args.what == "lowpass":
        result = lowpass(args.data, model)
    elif args.cache is None:
        parser.error(f"{args.what} needs --cache")
    else:
        pieces = cached(args.cache)
        result = thresholds(pieces, config) if args.what == "thresholds" else octaves(pieces, config)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
