"""Command line: ``rtamt transcribe``, ``rtamt bench``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rtamt import __version__
from rtamt.audio import AudioInputError, InputStats, probe, read_blocks
from rtamt.constants import HOP_S
from rtamt.cqt import CQTConfig
from rtamt.frontend import build_frontend

EXIT_BAD_INPUT = 2
EXIT_NO_MODEL = 3


def models_dir() -> Path:
    """The repository's models/ folder (shipped ONNX files and model card)."""
    return Path(__file__).resolve().parent.parent / "models"


def cmd_transcribe(args: argparse.Namespace) -> int:
    info = probe(args.audio)
    stats = InputStats()
    chain = build_frontend(info.samplerate, CQTConfig(lookahead_frames=args.lookahead, gamma_hz=args.gamma))
    start = time.perf_counter()
    frames = chain.run(read_blocks(args.audio, stats=stats))
    elapsed = time.perf_counter() - start
    print(
        f"{info.path}: {info.duration_s:.2f} s, {info.samplerate} Hz, {info.channels} channel(s), {info.format}"
    )
    print(
        f"front end: {len(frames)} frames of {frames.shape[1]}x{frames.shape[2]} HCQT "
        f"({len(frames) * HOP_S:.2f} s) in {elapsed:.2f} s, real-time factor {elapsed / info.duration_s:.3f}"
    )
    if stats.clipped:
        print(f"warning: {stats.clipped} clipped samples ({100 * stats.clipped / stats.samples:.2f}%)")
    backbone = models_dir() / "backbone.onnx"
    if not backbone.exists():
        print(
            f"rtamt: no note model yet ({backbone} is missing): stopped after the front end, "
            f"{args.output} not written",
            file=sys.stderr,
        )
        return EXIT_NO_MODEL
    raise NotImplementedError("note models are not wired in yet")


def cmd_bench(args: argparse.Namespace) -> int:
    from rtamt.bench import bench_cqt

    result = bench_cqt(args.seconds, CQTConfig(lookahead_frames=args.lookahead, gamma_hz=args.gamma))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"cqt+norm+hcqt: per hop median {result['per_hop_ms_median']:.3f} ms, "
            f"p99 {result['per_hop_ms_p99']:.3f} ms (budget {result['hop_budget_ms']} ms), "
            f"real-time factor {result['real_time_factor_per_hop']:.4f}"
        )
        for row in result["octave_latency_ms"]:
            print(
                f"  octave {row['octave']} {row['f_low_hz']:8.2f}-{row['f_high_hz']:8.2f} Hz: "
                f"window {row['window_ms_max']:7.1f} ms, latency {row['latency_ms_min']:6.1f}-"
                f"{row['latency_ms_max']:6.1f} ms"
            )
    return 0


def add_frontend_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lookahead", type=int, default=0, help="CQT look-ahead in hops (default 0)")
    parser.add_argument(
        "--gamma", type=float, default=0.0, help="variable-Q bandwidth offset in Hz (0 = constant Q)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rtamt", description="Real-time multi-instrument music transcription: live audio to live MIDI."
    )
    parser.add_argument("--version", action="version", version=f"rtamt {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    transcribe = sub.add_parser("transcribe", help="transcribe an audio file to a multi-track MIDI file")
    transcribe.add_argument("audio", help="audio file (WAV, FLAC, OGG, MP3, ...; any rate and channel count)")
    transcribe.add_argument("-o", "--output", required=True, help="MIDI file to write")
    add_frontend_options(transcribe)
    transcribe.set_defaults(func=cmd_transcribe)

    bench = sub.add_parser("bench", help="benchmarks: compute per hop and latency")
    bench.add_argument("what", choices=["cqt"], help="cqt: sliding CQT + normalisation + harmonic stack")
    bench.add_argument("--json", action="store_true", help="print the result as JSON")
    bench.add_argument("--seconds", type=float, default=60.0, help="length of the test stream")
    add_frontend_options(bench)
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except AudioInputError as err:
        print(f"rtamt: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
