"""Channels and separation of the online clusterer on real recordings, for clusterer settings side by side.

    python benchmarks/real_clusters.py ../shared/data/maps-dev ../shared/data/bach10 \
        --set register_aware=true [--models DIR]

Uses each piece's model outputs as ``rtamt bench latency --data`` caches them (``rtamt.latency.piece_outputs``,
kept under ``--cache``, by default the benchmark's cache folder), then replays the note tracker and the
online clusterer for the shipped clusterer settings and for each ``--set`` variant. Per piece: channels
spawned (K unknown) against the instruments in notes.csv, and separation F (onset F1 of channels matched
one-to-one to instruments, averaged over instruments; also after the hindsight refinement files get, into
as many timbres as were found online), and the polyphony of the channels and of the
instruments: the share of notes that start while another note of the same channel (instrument) sounds, online
and refined. A monophonic instrument's channel that stays near zero could tell it from a piano's (it does
not: session 18 measured BACH10's channels as polyphonic as maps-dev's, because they mix instruments, and
session 28 found refinement lowers it on the piano as much as on the quartets). ``--confusion`` adds, per
piece, how many notes of each instrument each online channel carries (a note-on counts for an instrument
when one of its notes of that pitch starts within 50 ms). For measurement only: the settings are chosen on
synthetic validation data (``python -m rtamt.training.tune clusters``).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from rtamt.api import refined_events
from rtamt.evaluate import notes_by_instrument, separation_metrics
from rtamt.latency import default_cache_dir, piece_dirs, piece_outputs, replay
from rtamt.models import models_dir
from rtamt.pipeline import build_transcriber
from rtamt.tracker import note_pairs


def polyphony(notes: list[tuple[float, float]]) -> float:
    """Share of (onset, offset) notes that start while another of them sounds."""
    ordered = sorted(notes)
    inside = sum(any(on2 < on < off2 for on2, off2 in ordered[:i]) for i, (on, _) in enumerate(ordered))
    return inside / max(len(ordered), 1)


def channel_polyphony(events: list) -> float:
    """Mean :func:`polyphony` of the channels of ``events``."""
    channels: dict[int, list[tuple[float, float]]] = {}
    for on, off in note_pairs(events):
        channels.setdefault(on.timbre, []).append((on.time_s, off))
    return round(float(np.mean([polyphony(n) for n in channels.values()] or [0.0])), 3)


def confusion(reference: dict[str, list[tuple]], events: list, tolerance_s: float = 0.05) -> dict[str, dict[str, int]]:
    """Per channel, its note-ons counted by the instrument with a note of that pitch starting within
    ``tolerance_s`` (``"none"`` when no instrument has one)."""
    table: dict[str, dict[str, int]] = {}
    for on, _ in note_pairs(events):
        owner = next((name for name, notes in sorted(reference.items())
                      if any(pitch == on.pitch and abs(start - on.time_s) <= tolerance_s for start, _, pitch in notes)),
                     "none")  # fmt: skip
        row = table.setdefault(str(on.timbre), {})
        row[owner] = row.get(owner, 0) + 1
    return dict(sorted(table.items(), key=lambda item: int(item[0])))


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
    parser.add_argument("--cache", type=Path, default=default_cache_dir(), help="model-output cache folder")
    parser.add_argument("--confusion", action="store_true", help="per piece, the instruments on each channel")
    args = parser.parse_args(argv)

    directory = args.models or models_dir()
    base = build_transcriber(model_dir=directory, mode=args.mode)
    if base.assigner is None:
        raise SystemExit(f"{directory}: no timbre model, so no clusterer to compare")
    pieces = [piece for folder in args.folders for piece in piece_dirs(folder)]
    outputs = [piece_outputs(piece, directory, args.cache) for piece in pieces]
    variants = {"shipped": base.assigner.config}
    for text in args.set:
        changes = {name: parse_value(value) for name, value in (item.split("=", 1) for item in text.split(","))}
        variants[text] = replace(base.assigner.config, **changes)
    report: dict = {"models": str(directory), "mode": args.mode, "variants": {}}
    for name, config in variants.items():
        rows = {}
        for piece, piece_out in zip(pieces, outputs):
            reference = notes_by_instrument(piece / "notes.csv")
            assigners: list = []
            events = replay(piece_out, base.tracker.config, config, base.sustain, assigners=assigners)
            row = separation_metrics(reference, events)
            refined = refined_events(assigners[0].completed, assigners[0].timbres_found)
            row["refined_separation_f"] = separation_metrics(reference, refined)["separation_f"]
            row["channel_polyphony"] = channel_polyphony(events)
            row["refined_channel_polyphony"] = channel_polyphony(refined)
            row["instrument_polyphony"] = round(float(np.mean([polyphony([(a, b) for a, b, _ in n])
                                                               for n in reference.values()])), 3)  # fmt: skip
            if args.confusion:
                row["confusion"] = confusion(reference, events)
            rows[f"{piece.parent.name}/{piece.name}"] = row
        report["variants"][name] = {"config": asdict(config), "pieces": rows}
        print(f"{name}:", file=sys.stderr)
        for piece, row in rows.items():
            print(f"  {piece:45s} K {row['k']} channels {row['channels']:2d} separation F {row['separation_f']:.3f} "
                  f"(refined {row['refined_separation_f']:.3f}) "
                  f"polyphony: channels {row['channel_polyphony']:.2f}, instruments {row['instrument_polyphony']:.2f}",
                  file=sys.stderr)  # fmt: skip
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
