"""Where real piano is lost (issue 16): tracker thresholds, onset recall by octave, band limit.

    python benchmarks/piano_diagnosis.py thresholds ../shared/data/maps-dev ../shared/data/bach10 [--models DIR]
    python benchmarks/piano_diagnosis.py octaves ../shared/data/maps-dev [--models DIR]
    python benchmarks/piano_diagnosis.py lowpass --data data/synth-live/valid [--models DIR]

The model outputs of each recording come from ``rtamt.latency.piece_outputs`` (cached under ``--cache``, by
default the latency benchmark's cache folder). ``thresholds`` re-runs the note tracker with a grid of onset
and frame thresholds on every piece (a diagnosis on evaluation data, not a way to choose settings);
``octaves`` gives the onset recall per octave with the model's stored settings; ``lowpass`` scores the
first solo-piano idiom examples of a synthetic split as rendered and low-passed at 7.8 kHz (MAPS is 16 kHz
audio).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from rtamt.backbone import Backbone
from rtamt.constants import SAMPLE_RATE
from rtamt.evaluate import matched_note_ons, note_metrics
from rtamt.latency import PieceOutputs, default_cache_dir, piece_dirs, piece_outputs, replay
from rtamt.models import models_dir
from rtamt.tracker import TrackerConfig, events_to_notes


def thresholds(pieces: list[tuple[str, PieceOutputs]], base: TrackerConfig) -> dict:
    out = {}
    for onset, frame in itertools.product([0.2, 0.3, 0.5], [0.1, 0.2, 0.3]):
        config = replace(base, onset_threshold=onset, frame_threshold=frame)
        by_set: dict[str, list[float]] = {}
        for folder, piece in pieces:
            notes = events_to_notes(replay(piece, config, None))
            by_set.setdefault(folder, []).append(note_metrics(piece.reference, notes, frames=False)["onset_f1"])
        out[f"onset {onset} frame {frame}"] = {name: round(float(np.mean(v)), 3) for name, v in by_set.items()}
    return out


def octaves(pieces: list[tuple[str, PieceOutputs]], config: TrackerConfig) -> dict:
    hits, totals = np.zeros(10), np.zeros(10)
    for _, piece in pieces:
        for i, _ in matched_note_ons(piece.reference, replay(piece, config, None)):
            hits[piece.reference[i][2] // 12] += 1
        for *_, midi in piece.reference:
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
    parser.add_argument("folders", type=Path, nargs="*", help="folders of recordings (thresholds, octaves)")
    parser.add_argument("--cache", type=Path, default=default_cache_dir(), help="model-output cache folder")
    parser.add_argument("--data", type=Path, default=Path("data/synth-live/valid"))
    parser.add_argument("--models", type=Path, default=None)
    args = parser.parse_args(argv)
    model = args.models or models_dir()
    config = TrackerConfig.from_json(Backbone(model / "backbone.onnx").meta["tracker"])
    if args.what == "lowpass":
        result = lowpass(args.data, model)
    elif not args.folders:
        parser.error(f"{args.what} needs folders of recordings")
    else:
        pieces = [(folder.name, piece_outputs(piece, model, args.cache))
                  for folder in args.folders for piece in piece_dirs(folder)]  # fmt: skip
        result = thresholds(pieces, config) if args.what == "thresholds" else octaves(pieces, config)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
