"""Choose the note tracker's thresholds on the synthetic validation split and store them in the model.

    python -m rtamt.training.tune --model models/backbone.onnx --data data/synth/valid --write

The backbone runs once per example; the tracker is then replayed with each candidate setting (coordinate
search, one parameter at a time, maximising mean note onset F1, ties broken by with-offset F1). Only the
validation split is used: the test split and BACH10 never influence the thresholds.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from rtamt.backbone import Backbone
from rtamt.chain import Chain
from rtamt.constants import SAMPLE_RATE
from rtamt.cqt import SlidingCQT
from rtamt.evaluate import note_metrics
from rtamt.hcqt import HarmonicStack
from rtamt.models import cqt_config_of
from rtamt.normalize import EnergyNorm
from rtamt.tracker import NoteTracker, TrackerConfig, events_to_notes

SEARCH: dict[str, list] = {
    "onset_threshold": [0.2, 0.3, 0.4, 0.5, 0.6],
    "frame_threshold": [0.15, 0.2, 0.3, 0.4, 0.5],
    "off_frames": [1, 2, 3, 5, 8],
    "sustain_threshold": [0.5, 0.6, 0.7, 0.8, 1.01],
    "sustain_frames": [4, 8, 16],
    "min_frames": [1, 2, 4, 6],
}


def probabilities(model: Path, split_dir: Path, limit: int) -> list[tuple[np.ndarray, list[tuple]]]:
    """Backbone outputs (n, 2, 84) and reference notes of the first ``limit`` examples."""
    from rtamt.training.dataset import ShardSet

    backbone = Backbone(model)
    chain = Chain([SlidingCQT(cqt_config_of(backbone.meta)), EnergyNorm(), HarmonicStack(), backbone])
    shards = ShardSet(split_dir)
    out = []
    for index, example in enumerate(shards.examples[:limit]):
        chain.reset()
        probs = chain.run([shards.segment(index, 0, example.length)])
        out.append((probs, [(float(n[0]), float(n[1]), int(n[2])) for n in example.notes]))
        print(f"\rbackbone {index + 1}/{min(limit, len(shards.examples))}", end="", file=sys.stderr)
    print(file=sys.stderr)
    return out


def score(config: TrackerConfig, data: list[tuple[np.ndarray, list[tuple]]]) -> tuple[float, float]:
    onset, offset = [], []
    tracker = NoteTracker(config)
    for probs, reference in data:
        tracker.reset()
        notes = events_to_notes(tracker.process(probs) + tracker.flush())
        metrics = note_metrics(reference, notes)
        onset.append(metrics["onset_f1"])
        offset.append(metrics["offset_f1"])
    return float(np.mean(onset)), float(np.mean(offset))


def search(data: list[tuple[np.ndarray, list[tuple]]], rounds: int = 2) -> tuple[TrackerConfig, list[dict]]:
    best = TrackerConfig()
    best_score = score(best, data)
    history = [{"config": best.__dict__, "onset_f1": best_score[0], "offset_f1": best_score[1]}]
    for _ in range(rounds):
        for name, values in SEARCH.items():
            for value in values:
                candidate = replace(best, **{name: value})
                result = score(candidate, data)
                history.append({"config": candidate.__dict__, "onset_f1": result[0], "offset_f1": result[1]})
                if result > best_score:
                    best, best_score = candidate, result
            print(f"{name}: best {getattr(best, name)} -> onset F1 {best_score[0]:.4f}", file=sys.stderr)
    return best, history


def write_into_model(model: Path, config: TrackerConfig, provenance: dict) -> None:
    import onnx

    proto = onnx.load(str(model))
    kept = [p for p in proto.metadata_props if p.key not in ("tracker", "tracker_provenance")]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    for key, value in (("tracker", config.to_json()), ("tracker_provenance", json.dumps(provenance))):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(model))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rtamt.training.tune", description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=Path("models/backbone.onnx"))
    parser.add_argument("--data", type=Path, default=Path("data/synth/valid"))
    parser.add_argument("--limit", type=int, default=40, help="validation examples to use")
    parser.add_argument("--write", action="store_true", help="store the chosen thresholds in the model file")
    args = parser.parse_args(argv)
    data = probabilities(args.model, args.data, args.limit)
    best, history = search(data)
    onset, offset = score(best, data)
    provenance = {"split": str(args.data), "examples": len(data), "onset_f1": round(onset, 4),
                  "offset_f1": round(offset, 4), "rate": SAMPLE_RATE}  # fmt: skip
    print(json.dumps({"tracker": best.__dict__, **provenance}, indent=2))
    if args.write:
        write_into_model(args.model, best, provenance)
    return 0


if __name__ == "__main__":
    sys.exit(main())
