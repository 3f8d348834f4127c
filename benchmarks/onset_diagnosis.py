"""Why notes are missed on a folder of pieces (BACH10 layout): how strongly the onset head fires at true
onsets, and which tracker rule started each correct note.

    python benchmarks/onset_diagnosis.py ../shared/data/bach10 [--models DIR] [--mode accurate|low-latency]

A note-on decided one frame after its frame came from an onset peak; a later decision from the
sustained-energy rule. Also the stream-time note-on latency of the correct notes (as ``rtamt bench
latency`` measures it) by how many frames after its placed frame each was decided: 0 (the rise rule, or a
sustained start with no earlier bump), 1, or 2 and more (sustained starts back-dated to an earlier onset
bump). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from rtamt.audio import probe, read_blocks
from rtamt.evaluate import matched_note_ons, note_on_latency_s, onset_peak_summary, onset_peaks, read_notes_csv
from rtamt.pipeline import MODES, build_transcriber
from rtamt.tracker import NoteTracker

NEAR_FRAMES = 4  # look this many frames either side of a true onset for the onset head's peak


def diagnose(data_dir: Path, model_dir: Path | None, mode: str) -> dict:
    peaks_at_onsets: list[float] = []
    started = {"onset peak": 0, "sustained start": 0}
    by_delay: dict[str, list[float]] = {"0 frames": [], "1 frame": [], "2+ frames": []}
    for piece in sorted(p for p in data_dir.iterdir() if (p / "mix.flac").exists()):
        transcriber = build_transcriber(probe(piece / "mix.flac").samplerate, model_dir, timbre=False, mode=mode)
        probs = transcriber.chain[:-1].run(read_blocks(piece / "mix.flac", 4096))  # (n, 2, 84)
        tracker = NoteTracker(transcriber.tracker.config)
        events = tracker.process(probs) + tracker.flush()
        reference = [(on, off, midi) for on, off, midi, _ in read_notes_csv(piece / "notes.csv")]
        peaks_at_onsets += onset_peaks(probs, reference, NEAR_FRAMES)
        for index, event in matched_note_ons(reference, events):
            delay = event.decided - event.frame
            started["onset peak" if delay <= 1 else "sustained start"] += 1
            latency_ms = 1000 * note_on_latency_s(event, reference[index][0], transcriber.emit_delay_s)
            by_delay["0 frames" if delay <= 0 else "1 frame" if delay == 1 else "2+ frames"].append(latency_ms)
    return {
        **onset_peak_summary(peaks_at_onsets),
        "correct_notes_started_by": started,
        "latency_ms_by_decision_delay": {
            name: {"share": round(len(v) / max(sum(map(len, by_delay.values())), 1), 3),
                   "median": round(float(np.median(v)), 1) if v else None,
                   "p95": round(float(np.percentile(v, 95)), 1) if v else None}
            for name, v in by_delay.items()},  # fmt: skip
        "tracker": transcriber.tracker.config.__dict__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--models", type=Path)
    parser.add_argument("--mode", choices=MODES, default="accurate")
    args = parser.parse_args()
    print(json.dumps(diagnose(args.data, args.models, args.mode), indent=2))


if __name__ == "__main__":
    main()
