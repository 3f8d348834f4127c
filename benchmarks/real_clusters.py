"""Channels and separation of the online clusterer on real recordings, for clusterer settings side by side.

    python benchmarks/real_clusters.py ../shared/data/maps-dev ../shared/data/bach10 \
        --set register_aware=true --cache /tmp/real-frames.pkl

Runs the models once per piece (kept in ``--cache``, keyed by the models' files), then replays the note
tracker and the online clusterer for the shipped clusterer settings and for each ``--set`` variant.
Per piece: channels spawned (K unknown) against the instruments in notes.csv, and separation F (onset F1
of channels matched one-to-one to instruments, averaged over instruments). For measurement only: the
settings are chosen on synthetic validation data (``python -m rtamt.training.tune clusters``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import sys
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from rtamt.audio import probe, read_blocks
from rtamt.backbone import NoteModels
from rtamt.chain import Chain
from rtamt.cluster import TimbreAssigner
from rtamt.cqt import SlidingCQT
from rtamt.evaluate import read_notes_csv, separation_metrics
from rtamt.hcqt import HarmonicStack
from rtamt.models import cqt_config_of, models_dir
from rtamt.normalize import EnergyNorm
from rtamt.pipeline import build_transcriber
from rtamt.resample import Resampler
from rtamt.training.tune import RecordedTracker


def model_key(directory: Path) -> str:
    digest = hashlib.sha1()
    for name in ("backbone.onnx", "timbre.onnx"):
        digest.update((directory / name).read_bytes())
    return digest.hexdigest()


def piece_frames(directory: Path, pieces: list[Path]) -> list[np.ndarray]:
    """Backbone + timbre encoder outputs (n, 2 + D, 84) of every piece's mix.flac."""
    transcriber = build_transcriber(model_dir=directory)
    models = next(stage for stage in transcriber.chain.stages if isinstance(stage, NoteModels))
    out = []
    for piece in pieces:
        rate = probe(piece / "mix.flac").samplerate
        chain = Chain([Resampler(rate), SlidingCQT(cqt_config_of(transcriber.backbone.meta)), EnergyNorm(),
                       HarmonicStack(), models])  # fmt: skip
        chain.reset()
        out.append(chain.run(read_blocks(piece / "mix.flac", 4096)))
        print(f"models: {piece.name}", file=sys.stderr)
    return out


def parse_value(text: str):
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    return json.loads(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", type=Path, nargs="+")
    parser.add_argument("--models", type=Path, default=None)
    parser.add_argument("--mode", default="accurate", choices=("accurate", "low-latency"))
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE[,NAME=VALUE]",
                        help="a clusterer variant to compare with the shipped settings (repeatable)")
    parser.add_argument("--cache", type=Path, default=None)
    args = parser.parse_args(argv)

    directory = args.models or models_dir()
    base = build_transcriber(model_dir=directory, mode=args.mode)
    pieces = [p for folder in args.folders for p in sorted(folder.iterdir()) if (p / "notes.csv").exists()]
    key = (model_key(directory), [str(p) for p in pieces])
    frames = None
    if args.cache and args.cache.exists():
        stored_key, stored = pickle.loads(args.cache.read_bytes())
        frames = stored if stored_key == key else None
    if frames is None:
        frames = piece_frames(directory, pieces)
        if args.cache:
            args.cache.write_bytes(pickle.dumps((key, frames)))
    variants = {"shipped": base.assigner.config}
    for text in args.set:
        changes = {name: parse_value(value) for name, value in (item.split("=", 1) for item in text.split(","))}
        variants[text] = replace(base.assigner.config, **changes)
    report: dict = {"models": str(directory), "mode": args.mode, "variants": {}}
    for name, config in variants.items():
        rows = {}
        for piece, piece_out in zip(pieces, frames):
            reference: dict[str, list[tuple]] = {}
            for on, off, midi, instrument in read_notes_csv(piece / "notes.csv"):
                reference.setdefault(instrument, []).append((on, off, midi))
            assigner = TimbreAssigner(RecordedTracker(base.tracker.config, piece_out), config)
            rows[f"{piece.parent.name}/{piece.name}"] = separation_metrics(
                reference, assigner.process(piece_out) + assigner.flush()
            )
        report["variants"][name] = {"config": asdict(config), "pieces": rows}
        print(f"{name}:", file=sys.stderr)
        for piece, row in rows.items():
            print(f"  {piece:45s} K {row['k']} channels {row['channels']:2d} separation F {row['separation_f']:.3f}",
                  file=sys.stderr)  # fmt: skip
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
