"""A copy of a dev set (folders of ``*.flac`` + ``notes.csv``) with every recording delayed and scaled alike,
to measure how far a figure moves under changes that leave the music as it was:

    python benchmarks/perturbed_copy.py ../shared/data/bach10 /tmp/bach10-d4 --delay-ms 3.9 --gain-db 0
    rtamt eval /tmp/bach10-d4 --separation --json

A delay that is not a whole number of hops (11.61 ms) moves every note against the analysis frames; a gain
moves every probability a little. The annotated times move with the delay, so the music and its labels
stay as they were. For measurement only: nothing is chosen on these copies. For separation alone, ``rtamt eval
DIR --separation --shifts 0 3.9 7.7`` delays the mixes in memory and pools the figures.
"""

from __future__ import annotations

import argparse
import csv
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf


def perturb_piece(source: Path, target: Path, delay_s: float, gain: float) -> None:
    """Every recording of one piece delayed by ``delay_s`` (silence in front) and scaled by ``gain``
    (clipped to full scale), its notes.csv times moved by the delay; other files copied as they are."""
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.iterdir()):
        if path.suffix == ".flac":
            audio, rate = sf.read(path, dtype="float64", always_2d=True)
            silence = np.zeros((int(round(delay_s * rate)), audio.shape[1]))
            sf.write(target / path.name, np.clip(np.concatenate([silence, audio * gain]), -1.0, 1.0), rate,
                     subtype="PCM_16")  # fmt: skip
        elif path.name == "notes.csv":
            with path.open() as f:
                rows = list(csv.DictReader(f))
            with (target / path.name).open("w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["onset_s", "offset_s", "midi"])
                writer.writeheader()
                for row in rows:
                    for key in ("onset_s", "offset_s"):
                        row[key] = f"{float(row[key]) + delay_s:.6f}"
                    writer.writerow(row)
        elif path.is_file():
            shutil.copy2(path, target / path.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path, help="a dev set: one folder per piece")
    parser.add_argument("target", type=Path)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--gain-db", type=float, default=0.0)
    args = parser.parse_args(argv)
    pieces = sorted(p for p in args.source.iterdir() if (p / "notes.csv").exists())
    if not pieces:
        parser.error(f"{args.source}: no piece folders with a notes.csv")
    for piece in pieces:
        perturb_piece(piece, args.target / piece.name, args.delay_ms / 1000.0, 10.0 ** (args.gain_db / 20.0))
    print(f"{len(pieces)} pieces -> {args.target} (delay {args.delay_ms} ms, gain {args.gain_db} dB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
