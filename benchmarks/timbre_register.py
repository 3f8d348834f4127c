"""How much of the timbre encoder's embedding is register: the mean embedding at each pitch over many
instruments, and the online clusterer fed embeddings with that mean taken out, or fed nothing but it.

    python benchmarks/timbre_register.py ../shared/data/maps-dev ../shared/data/bach10 [--models DIR] \
        [--train data/synth-g/train data/synth-live/train] [--valid data/synth/valid data/synth-valid2/valid] \
        [--json benchmarks/results/timbre_register.json]

The pitch means come from training examples only (``--train``, the first ``--train-limit`` of each split):
per pitch, the mean of the encoder's unit embeddings over the frames whose frame probability is over 0.5.
Their length tells how alike every instrument's embedding at one pitch is (1: identical), and the cosine
of the means an octave or more apart how far the embedding turns with register. The clusterer (shipped
tracker and clusterer settings, the join threshold varied) then runs on the recordings' cached model
outputs (``rtamt.latency.piece_outputs``; the sustain stage still reads the embeddings as encoded) and on the validation mixes (``--valid``: separation F and the
share of mixes with as many channels as instruments, as ``python -m rtamt.training.tune clusters`` scores
them), three ways: the embeddings as encoded; centred (each embedding minus ``alpha`` times its pitch's
mean); and the pitch's mean alone, a clusterer that hears register and nothing else. A measurement, not a
setting: nothing here is stored in the models.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from rtamt.chain import Chain
from rtamt.cluster import ClusterConfig, TimbreAssigner
from rtamt.evaluate import notes_by_instrument, separation_metrics
from rtamt.latency import default_cache_dir, piece_dirs, piece_outputs
from rtamt.models import models_dir
from rtamt.pipeline import build_transcriber
from rtamt.tracker import NoteTracker, TrackedBlock, TrackerConfig
from rtamt.training import tune

ACTIVE = 0.5  # frame probability over which a frame's embedding counts towards its pitch's mean


def pitch_means(frames: list[np.ndarray]) -> np.ndarray:
    """(n, 2 + D, 84) model frames -> (D, 84): per pitch, the mean embedding over its active frames."""
    total = np.zeros((frames[0].shape[1] - 2, frames[0].shape[2]))
    count = np.zeros(frames[0].shape[2])
    for block in frames:
        active = block[:, 1, :] > ACTIVE
        total += np.einsum("np,ndp->dp", active, block[:, 2:, :])
        count += active.sum(axis=0)
    return total / np.maximum(count, 1)


def with_embeddings(frames: np.ndarray, means: np.ndarray, alpha: float | None) -> np.ndarray:
    """Model frames with each embedding minus ``alpha`` times its pitch's mean, or (``alpha`` None) replaced
    by that mean: register alone."""
    out = frames.copy()
    out[:, 2:, :] = means[None] if alpha is None else frames[:, 2:, :] - alpha * means[None]
    return out


class RegisterView(TimbreAssigner):
    """The clusterer behind a tracker stage, seeing the embeddings as :func:`with_embeddings` changes them
    (the sustain stage before it still reads them as encoded)."""

    def __init__(self, tracker: TrackerConfig, config: ClusterConfig, means: np.ndarray, alpha: float | None) -> None:
        super().__init__(tracker, config, tracked=True)
        self.means, self.alpha = means, alpha

    def process(self, block: TrackedBlock) -> list:
        if block.frames.shape[1] > 2:
            block = replace(block, frames=with_embeddings(block.frames, self.means, self.alpha))
        return super().process(block)


def register_summary(means: np.ndarray) -> dict:
    """Length of the pitch means by octave, and their mean cosine 1-3 octaves apart."""
    norms = np.linalg.norm(means, axis=0)
    unit = means / np.maximum(norms, 1e-9)
    return {"mean_length_by_octave": [round(float(norms[o : o + 12].mean()), 3) for o in range(0, len(norms), 12)],
            "cosine_octaves_apart": {str(k): round(float(np.mean(np.sum(unit[:, : -12 * k] * unit[:, 12 * k :], axis=0))), 3)
                                     for k in (1, 2, 3)}}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", type=Path, nargs="+")
    parser.add_argument("--models", type=Path, default=None)
    parser.add_argument("--train", type=Path, nargs="+", default=[Path("data/synth-g/train"), Path("data/synth-live/train")])
    parser.add_argument("--train-limit", type=int, default=50)
    parser.add_argument("--valid", type=Path, nargs="*", default=[Path("data/synth/valid"), Path("data/synth-valid2/valid")])
    parser.add_argument("--valid-limit", type=int, default=200)
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.25, 0.5])
    parser.add_argument("--joins", type=float, nargs="+", default=[0.7, 0.8, 0.85, 0.9, 0.95])
    parser.add_argument("--cache", type=Path, default=default_cache_dir(), help="model-output cache folder")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    directory = args.models or models_dir()
    base = build_transcriber(model_dir=directory)
    training = [frames for split in args.train for frames, _ in tune.model_frames(directory, [split], args.train_limit)]
    means = pitch_means(training)
    report: dict = {"models": str(directory), "train": [str(s) for s in args.train], "train_examples": len(training),
                    "register": register_summary(means), "variants": []}  # fmt: skip
    print(json.dumps(report["register"]), file=sys.stderr)

    folders = {folder: [(piece_outputs(piece, directory, args.cache), notes_by_instrument(piece / "notes.csv"))
                        for piece in piece_dirs(folder)] for folder in args.folders}  # fmt: skip
    valid = tune.model_frames(directory, args.valid, args.valid_limit) if args.valid else []
    tracker, stored = base.tracker.config, base.assigner.config
    sustain = [base.sustain] if base.sustain is not None else []

    variants = [("as encoded", 0.0)] + [(f"centred {a}", a) for a in args.alphas] + [("register alone", None)]
    for label, alpha in variants:
        for join in args.joins:
            config = replace(stored, join_threshold=join)
            row: dict = {"embedding": label, "alpha": alpha, "join_threshold": join}
            chain = Chain([NoteTracker(tracker, keep_frames=True), *sustain, RegisterView(tracker, config, means, alpha)])
            for folder, pieces in folders.items():
                scores = [separation_metrics(reference, chain.run([out.frames])) for out, reference in pieces]
                row[folder.name] = {"channels": round(float(np.mean([s["channels"] for s in scores])), 2),
                                    "pieces_on_one_channel": sum(s["channels"] == 1 for s in scores),
                                    "separation_f": round(float(np.mean([s["separation_f"] for s in scores])), 3)}  # fmt: skip
            if valid:
                moved = [(with_embeddings(frames, means, alpha), reference) for frames, reference in valid]
                f, exact = tune.score_clusterer(moved, tracker, config)
                row["validation"] = {"mixes": len(valid), "separation_f": round(f, 4), "channels_equal_k": round(exact, 3),
                                     "sum": round(f + exact, 4)}  # fmt: skip
            report["variants"].append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    text = json.dumps(report, indent=1)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
