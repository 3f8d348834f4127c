"""Where each annotated onset lies against the sound (rtamt.attacks: the steepest rise of the note's
harmonic energy, group delays taken out; no model).

    python benchmarks/onset_alignment.py ../shared/data/bach10 ../shared/data/maps-dev [--json OUT]
    python benchmarks/onset_alignment.py --split data/synth/valid --limit 40   # rendered: labels exact

Printed per folder or split and octave: the median and quartiles of attack minus annotation in ms
(positive: the sound rises after the annotated time). `rtamt bench latency --data DIR` reports the same
beside each latency figure.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from rtamt.attacks import alignment_summary, attack_offsets_s, energy_rise
from rtamt.chain import Chain
from rtamt.constants import SAMPLE_RATE
from rtamt.cqt import CQTConfig, SlidingCQT
from rtamt.frontend import build_frontend


def analyse(examples, gamma_hz: float) -> dict:
    """examples: (audio blocks, sample rate, [(onset_s, offset_s, midi, ...)]) triples."""
    offsets, pitches = [], []
    for blocks, rate, notes in examples:
        stages = build_frontend(rate, CQTConfig(lookahead_frames=0, gamma_hz=gamma_hz)).stages
        front = Chain(stages[:-1])  # resampler, CQT, normalisation: no harmonic stack
        cqt = next(stage for stage in stages if isinstance(stage, SlidingCQT))
        offsets.append(attack_offsets_s(energy_rise(front.run(blocks), cqt.latency_ms), notes))
        pitches.append(np.array([int(n[2]) for n in notes], dtype=int))
        print(".", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return alignment_summary(np.concatenate(offsets), np.concatenate(pitches))


def folder_examples(folder: Path):
    from rtamt.audio import probe, read_blocks
    from rtamt.evaluate import read_notes_csv
    from rtamt.latency import piece_dirs

    for piece in piece_dirs(folder):
        yield read_blocks(piece / "mix.flac", 4096), probe(piece / "mix.flac").samplerate, read_notes_csv(piece / "notes.csv")


def split_examples(split: Path, limit: int):
    from rtamt.training.dataset import ShardSet

    shards = ShardSet(split)
    for index, example in enumerate(shards.examples[:limit]):
        notes = [(float(n[0]), float(n[1]), int(n[2])) for n in example.notes]
        yield [shards.segment(index, 0, example.length)], SAMPLE_RATE, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", type=Path, nargs="*", help="folders of pieces (mix.flac + notes.csv)")
    parser.add_argument("--split", type=Path, nargs="*", default=[], help="rendered shard splits")
    parser.add_argument("--limit", type=int, default=40, help="examples per split")
    parser.add_argument("--gamma-hz", type=float, default=10.0, help="the front end's gamma (the shipped model's)")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    result = {str(f): analyse(folder_examples(f), args.gamma_hz) for f in args.folders}
    result |= {str(s): analyse(split_examples(s, args.limit), args.gamma_hz) for s in args.split}
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
