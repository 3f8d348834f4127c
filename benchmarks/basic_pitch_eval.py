"""Spotify basic-pitch 0.4.0 (offline, whole file, its default settings) on the same pieces and metrics.

    pip install --no-deps basic-pitch==0.4.0 && pip install librosa pretty_midi "resampy<0.4.3"
    python benchmarks/basic_pitch_eval.py ../shared/data/bach10 > benchmarks/results/basic_pitch.json

It uses the ONNX weights that ship inside the basic-pitch package (nothing is downloaded).
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import numpy as np

from rtamt.evaluate import note_metrics, read_notes_csv


def main(data_dir: str) -> None:
    from basic_pitch import ICASSP_2022_MODEL_PATH
    from basic_pitch.inference import Model, predict

    model = Model(Path(ICASSP_2022_MODEL_PATH).with_suffix(".onnx"))
    results = {}
    for piece in sorted(p for p in Path(data_dir).iterdir() if (p / "mix.flac").exists()):
        with contextlib.redirect_stdout(sys.stderr):  # basic-pitch prints progress on stdout
            _, _, note_events = predict(str(piece / "mix.flac"), model)
        estimate = [(start, end, int(pitch)) for start, end, pitch, *_ in note_events]
        reference = [(on, off, midi) for on, off, midi, _ in read_notes_csv(piece / "notes.csv")]
        results[piece.name] = note_metrics(reference, estimate)
        print(f"{piece.name}: onset F1 {results[piece.name]['onset_f1']:.3f}", file=sys.stderr)
    keys = ["onset_p", "onset_r", "onset_f1", "offset_f1", "frame_f1"]
    mean = {k: round(float(np.mean([r[k] for r in results.values()])), 4) for k in keys}
    print(json.dumps({"system": "basic-pitch 0.4.0 (onnx, default thresholds)", "mean": mean, "pieces": results}, indent=2))


if __name__ == "__main__":
    main(sys.argv[1])
