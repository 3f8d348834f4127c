"""Command line arguments checked in one place, before any work starts.

Argparse types reject single bad values (``--instruments -3``); :func:`check_args` rejects bad
combinations and missing inputs (``--exact`` without ``--instruments``, ``rtamt eval`` without data) by
calling ``parser.error``, which prints the usage and the reason and exits with status 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rtamt.constants import MAX_INSTRUMENTS

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".au", ".w64", ".caf", ".opus")


def whole_number(text: str) -> int:
    """An argument that must be an integer (argparse reports the error with the option's name)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def instruments(text: str) -> int:
    """``--instruments``: a whole number from 1 to MAX_INSTRUMENTS (one MIDI channel each)."""
    value = whole_number(text)
    if not 1 <= value <= MAX_INSTRUMENTS:
        raise argparse.ArgumentTypeError(
            f"must be 1 to {MAX_INSTRUMENTS} (one MIDI channel per instrument, channel 10 is kept for "
            f"drums), not {value}"
        )
    return value


def positive_int(text: str) -> int:
    """A whole number above 0."""
    value = whole_number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, not {value}")
    return value


def rt_priority(text: str) -> int:
    """``--priority``: 0 (normal scheduling) or a SCHED_FIFO priority, 1 to 99."""
    value = whole_number(text)
    if not 0 <= value <= 99:
        raise argparse.ArgumentTypeError(f"must be 0 (normal scheduling) to 99, not {value}")
    return value


def positive_float(text: str) -> float:
    """A finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
    return value


def looks_like_file(spec: str) -> bool:
    """Whether a ``--input`` value names a file rather than a device (a path separator or an audio suffix)."""
    return "/" in spec or spec.lower().endswith(AUDIO_SUFFIXES)


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Reject argument combinations and missing inputs before any work (exits 2 through ``parser.error``)."""
    if getattr(args, "exact", False) and getattr(args, "instruments", None) is None:
        parser.error("--exact needs --instruments K (exactly K instruments)")
    if args.command == "eval":
        _check_eval(parser, args)
    if args.command == "live" and args.input is not None and looks_like_file(args.input):
        path = Path(args.input)
        if not path.exists():
            parser.error(f"--input {args.input}: no such file")
        if path.is_dir():
            parser.error(f"--input {args.input}: is a directory, not an audio file")
    if args.command == "live" and args.realtime and (args.input is None or not Path(args.input).is_file()):
        parser.error("--realtime paces an input file: give --input FILE")


def _check_eval(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.separation and args.data is None:
        parser.error("--separation needs DATA_DIR")
    if args.shifts != [0.0] and not args.separation:
        parser.error("--shifts delays the mixes of --separation: give --separation too")
    if any(not 0.0 <= shift <= 1000.0 for shift in args.shifts) or len(set(args.shifts)) != len(args.shifts):
        parser.error("--shifts: distinct delays from 0 to 1000 ms")
    if args.data is None and args.synthetic is None:
        parser.error(
            "nothing to evaluate: give DATA_DIR (folders of mix.flac + notes.csv) and/or --synthetic SPLIT"
        )
    for label, path in (("DATA_DIR", args.data), ("--synthetic", args.synthetic)):
        if path is not None and not path.is_dir():
            parser.error(f"{label} {path}: no such folder")
    if args.models is not None and not (args.models / "backbone.onnx").is_file():
        parser.error(f"--models {args.models}: no backbone.onnx there")
    if args.data is not None:
        from rtamt.evaluate import STEMS

        stems = [f"{name}.flac" for name in STEMS]
        pieces = [
            p for p in args.data.iterdir() if (p / "mix.flac").is_file() and (p / "notes.csv").is_file()
        ]
        if not pieces:
            parser.error(f"DATA_DIR {args.data}: no sub-folders with mix.flac and notes.csv")
        if args.separation and not any(all((p / stem).is_file() for stem in stems) for p in pieces):
            parser.error(f"--separation: no piece in {args.data} has all the stem files ({', '.join(stems)})")
