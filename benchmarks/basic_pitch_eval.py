"""Spotify basic-pitch 0.4.0 (offline, whole file, its default settings) on the same pieces and metrics.

    pip install -e '.[baseline]' && pip install --no-deps basic-pitch==0.4.0   # ONNX path, no TensorFlow
    python benchmarks/basic_pitch_eval.py ../shared/data/bach10 --out benchmarks/results/basic_pitch_bach10.json

It uses the ONNX weights that ship inside the basic-pitch package (nothing is downloaded). Each piece's
scores are kept in OUT: pieces already there are not run again, so reports (and `make bench-real`) need
basic-pitch only for pieces not yet scored. Channels: basic-pitch has one output, so always 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

import numpy as np

from rtamt.evaluate import note_metrics, read_notes_csv

SYSTEM = "basic-pitch 0.4.0 (onnx, default thresholds, offline whole file)"


def score_piece(piece: Path, model) -> dict:
    """basic-pitch's notes for one piece against its notes.csv."""
    from basic_pitch.inference import predict

    with contextlib.redirect_stdout(sys.stderr):  # basic-pitch prints progress on stdout
        _, _, note_events = predict(str(piece / "mix.flac"), model)
    estimate = [(start, end, int(pitch)) for start, end, pitch, *_ in note_events]
    reference = [(on, off, midi) for on, off, midi, _ in read_notes_csv(piece / "notes.csv")]
    return {**note_metrics(reference, estimate), "channels": 1}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", type=Path, help="folder of pieces: */mix.flac + */notes.csv")
    parser.add_argument("--out", type=Path, required=True, help="JSON results, also the per-piece cache")
    args = parser.parse_args(argv)
    pieces = sorted(p for p in args.data.iterdir() if (p / "mix.flac").exists() and (p / "notes.csv").exists())
    cached = json.loads(args.out.read_text())["pieces"] if args.out.exists() else {}
    results = {p.name: cached[p.name] for p in pieces if p.name in cached}
    missing = [p for p in pieces if p.name not in results]
    if missing:
        try:
            from basic_pitch import ICASSP_2022_MODEL_PATH
            from basic_pitch.inference import Model
        except ImportError as err:
            print(f"basic-pitch is not installed ({err}); {len(missing)} pieces not scored: see this file's docstring",
                  file=sys.stderr)  # fmt: skip
            return 1
        model = Model(Path(ICASSP_2022_MODEL_PATH).with_suffix(".onnx"))
        for piece in missing:
            results[piece.name] = score_piece(piece, model)
            print(f"{piece.name}: onset F1 {results[piece.name]['onset_f1']:.3f}", file=sys.stderr)
    results = {name: results[name] for name in sorted(results)}
    keys = ["onset_p", "onset_r", "onset_f1", "offset_f1", "frame_f1", "channels"]
    mean = {k: round(float(np.mean([r[k] for r in results.values()])), 4) for k in keys}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"system": SYSTEM, "data": str(args.data), "mean": mean, "pieces": results}, indent=2) + "\n")
    print(f"wrote {args.out}: onset F1 {mean['onset_f1']:.3f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
