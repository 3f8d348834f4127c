"""How alike the timbre encoder makes two notes of one instrument, and two notes of two instruments, by
the distance between their pitches, on real recordings and on validation mixes.

    python benchmarks/timbre_distance.py ../shared/data/maps-dev ../shared/data/bach10 [--models DIR] \
        [--valid data/synth/valid data/synth-valid2/valid data/synth-live/valid] \
        [--frames-cache data/cache/cluster-frames.pkl] [--json benchmarks/results/timbre_distance.json]

Each reference note gets its whole-note embedding as the clusterer forms it (the frame-probability-weighted
mean of the encoder's output at the note's pitch over the note, unit length). Within each piece or mix,
every pair of notes (at most ``--notes`` notes drawn per piece) is binned by pitch distance; per bin: the
mean cosine of same-instrument pairs and of different-instrument pairs, and how well the cosine tells them
apart (ROC AUC; 0.5 is chance). The real recordings are read through ``rtamt bench latency``'s model-output
cache; the validation mixes through ``python -m rtamt.training.tune clusters``'s (``--frames-cache``, same
key). A measurement, not a setting.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from rtamt.constants import HOP_S, MIDI_MIN, N_PITCHES
from rtamt.evaluate import notes_by_instrument
from rtamt.latency import default_cache_dir, piece_dirs, piece_outputs
from rtamt.models import models_dir
from rtamt.training import tune

BINS = [(0, 0), (1, 2), (3, 5), (6, 11), (12, 23), (24, 99)]  # semitones apart, inclusive

References = dict[str, list[tuple[float, float, int]]]


def note_embedding(frames: np.ndarray, onset: float, offset: float, pitch: int) -> np.ndarray | None:
    """Unit whole-note embedding from model frames (n, 2 + D, 84), or None if the note has no weight."""
    start = int(round(onset / HOP_S))
    end = min(len(frames), max(start + 1, int(round(offset / HOP_S))))
    index = pitch - MIDI_MIN
    if start >= len(frames) or not 0 <= index < N_PITCHES:
        return None
    weights = frames[start:end, 1, index]
    total = (weights[:, None] * frames[start:end, 2:, index]).sum(axis=0)
    norm = float(np.linalg.norm(total))
    return total / norm if norm > 1e-9 else None


def distance_table(pieces: list[tuple[np.ndarray, References]], max_notes: int, seed: int = 0) -> list[dict]:
    """Per pitch-distance bin: pairs and mean cosine of same- and different-instrument note pairs, and AUC."""
    same: dict[tuple, list[float]] = {b: [] for b in BINS}
    other: dict[tuple, list[float]] = {b: [] for b in BINS}
    rng = np.random.default_rng(seed)
    for frames, reference in pieces:
        notes = [(name, pitch, e) for name, listed in reference.items() for on, off, pitch in listed
                 if (e := note_embedding(frames, on, off, pitch)) is not None]  # fmt: skip
        if len(notes) > max_notes:
            notes = [notes[i] for i in rng.choice(len(notes), max_notes, replace=False)]
        if len(notes) < 2:
            continue
        cosines = np.array([e for _, _, e in notes]) @ np.array([e for _, _, e in notes]).T
        pitches = np.array([p for _, p, _ in notes])
        names = np.array([n for n, _, _ in notes])
        upper = np.triu_indices(len(notes), 1)
        distance = np.abs(pitches[:, None] - pitches[None])[upper]
        together = (names[:, None] == names[None])[upper]
        values = cosines[upper]
        for low, high in BINS:
            inside = (distance >= low) & (distance <= high)
            same[(low, high)].extend(values[inside & together].tolist())
            other[(low, high)].extend(values[inside & ~together].tolist())
    rows = []
    for b in BINS:
        s, o = same[b], other[b]
        auc = roc_auc_score([1] * len(s) + [0] * len(o), s + o) if s and o else None
        rows.append({"semitones": f"{b[0]}-{b[1]}", "same_pairs": len(s), "other_pairs": len(o),
                     "same_cosine": round(float(np.mean(s)), 3) if s else None,
                     "other_cosine": round(float(np.mean(o)), 3) if o else None,
                     "auc": round(float(auc), 3) if auc is not None else None})  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", type=Path, nargs="*")
    parser.add_argument("--models", type=Path, default=None)
    parser.add_argument("--valid", type=Path, nargs="*",
                        default=[Path("data/synth/valid"), Path("data/synth-valid2/valid"), Path("data/synth-live/valid")])
    parser.add_argument("--valid-limit", type=int, default=300)
    parser.add_argument("--frames-cache", type=Path, default=None, help="as tune clusters --cache")
    parser.add_argument("--notes", type=int, default=400, help="notes drawn per piece or mix")
    parser.add_argument("--cache", type=Path, default=default_cache_dir(), help="model-output cache folder")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    directory = args.models or models_dir()
    report: dict = {"models": str(directory), "notes_per_piece": args.notes, "sets": {}}
    for folder in args.folders:
        pieces = [(piece_outputs(piece, directory, args.cache).frames, notes_by_instrument(piece / "notes.csv"))
                  for piece in piece_dirs(folder)]  # fmt: skip
        report["sets"][str(folder)] = distance_table(pieces, args.notes)
    if args.valid:
        mixes = tune.cached_model_frames(directory, args.valid, args.valid_limit, 1, args.frames_cache)
        report["sets"]["validation: " + " ".join(str(d) for d in args.valid)] = distance_table(mixes, args.notes)
    for name, rows in report["sets"].items():
        print(name, file=sys.stderr)
        for row in rows:
            print(f"  {row['semitones']:>5} semitones: one instrument {row['same_cosine']} ({row['same_pairs']} pairs), "
                  f"two {row['other_cosine']} ({row['other_pairs']}), AUC {row['auc']}", file=sys.stderr)  # fmt: skip
    text = json.dumps(report, indent=1)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
