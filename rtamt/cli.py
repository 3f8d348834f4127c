"""Command line: ``rtamt transcribe``, ``rtamt bench``."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from rtamt import __version__
from rtamt.audio import AudioInfo, AudioInputError, InputStats, probe, read_blocks
from rtamt.constants import EXIT_BAD_INPUT, EXIT_DEVICE, EXIT_NO_MODEL, EXIT_OUTPUT, EXIT_SIGNAL_BASE, HOP_S
from rtamt.cqt import CQTConfig
from rtamt.frontend import build_frontend
from rtamt.live import LiveError
from rtamt.midi import build_midi, channel_for
from rtamt.models import ModelError, models_dir
from rtamt.outputs import Output, OutputError, open_output
from rtamt.pipeline import MODES, build_transcriber
from rtamt.tracker import events_to_notes
from rtamt.validate import check_args, instruments, positive_float, positive_int
from rtamt.watchdog import backend_abandoned, exit_now


def cmd_transcribe(args: argparse.Namespace) -> int:
    info = probe(args.audio)
    with open_output(args.output, [args.audio]) as output:  # checked before the work; removed unless written
        return transcribe_to(args, info, output)


def transcribe_to(args: argparse.Namespace, info: AudioInfo, output: Output) -> int:
    """The work of ``rtamt transcribe`` once input and output are checked."""
    backbone = models_dir() / "backbone.onnx"
    if not backbone.exists():
        chain = build_frontend(info.samplerate)
        frames = chain.run(read_blocks(args.audio))
        print(f"front end: {len(frames)} frames of 8x252 HCQT ({len(frames) * HOP_S:.2f} s)")
        print(f"rtamt: no note model ({backbone} is missing): {args.output} not written", file=sys.stderr)
        return EXIT_NO_MODEL
    transcriber = build_transcriber(info.samplerate, instruments=args.instruments, exact=args.exact, mode=args.mode)
    stats = InputStats()
    start = time.perf_counter()
    events = transcriber.chain.run(read_blocks(args.audio, stats=stats))
    elapsed = time.perf_counter() - start
    print(f"{info.path}: {info.duration_s:.2f} s, {info.samplerate} Hz, {info.channels} channel(s)")
    if stats.clipped:
        print(f"warning: {stats.clipped} clipped samples ({100 * stats.clipped / stats.samples:.2f}%)")
    print(f"processed in {elapsed:.2f} s (real-time factor {elapsed / info.duration_s:.3f})")
    if args.refine and transcriber.assigner is not None:
        timbres = args.instruments if args.exact else transcriber.assigner.timbres_found
        events = refined_events(transcriber.assigner.completed, timbres)
    timbres = [e.timbre for e in events]
    notes = events_to_notes(events)
    if notes:
        pitches = [n[2] for n in notes]
        print(f"found {len(notes)} notes, MIDI {min(pitches)}-{max(pitches)}, "
              f"{notes[0][0]:.2f}-{max(n[1] for n in notes):.2f} s")  # fmt: skip
        for timbre in sorted(set(timbres)):
            mine = [e for e in events if e.on and e.timbre == timbre]
            low, high = min(e.pitch for e in mine), max(e.pitch for e in mine)
            print(f"  timbre {timbre + 1} (MIDI channel {channel_for(timbre) + 1}): {len(mine)} notes, MIDI {low}-{high}")
    else:
        print("found no notes")
    midi = build_midi(events, timbres)
    output.commit(lambda tmp: midi.save(str(tmp)))
    tracks = len(midi.tracks) - 1
    if transcriber.assigner is None:
        mode = "no timbre model yet: every note on channel 1"
    else:
        mode = "timbres refined in hindsight" if args.refine else "timbres assigned online"
    print(f"wrote {args.output} ({tracks} track{'s' if tracks != 1 else ''}; {mode})")
    return 0


def refined_events(completed: list, timbres: int) -> list:
    """Note events re-labelled by hindsight clustering of all whole-note embeddings into ``timbres``."""
    from rtamt.cluster import refine, relabel

    return sorted(relabel(completed, refine(completed, timbres)), key=lambda e: (e.frame, e.on))


def cmd_eval(args: argparse.Namespace) -> int:
    from rtamt.evaluate import evaluate_folder, evaluate_separation, evaluate_shards

    transcriber = build_transcriber(model_dir=args.models, mode=args.mode)
    say = (lambda message: print(message, file=sys.stderr)) if args.json else print
    report = {"model": transcriber.backbone.meta, "tracker": transcriber.tracker.config.__dict__}
    if args.data:
        report["folder"] = {"path": str(args.data), **evaluate_folder(args.data, transcriber, say)}
    if args.separation and args.data:
        report["separation"] = evaluate_separation(args.data, progress=say, mode=args.mode, model_dir=args.models)
        if not args.per_piece:
            report["separation"].pop("mixes")
    if args.synthetic:
        report["synthetic"] = {"path": str(args.synthetic),
                               **evaluate_shards(args.synthetic, transcriber, args.limit, say)}  # fmt: skip
    for key in ("folder", "synthetic"):
        if key in report and not args.per_piece:
            report[key].pop("pieces")
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key in ("folder", "synthetic"):
            if key in report:
                print(f"{report[key]['path']}: {json.dumps(report[key]['mean'])}")
        if "separation" in report:
            print(f"separation: {json.dumps(report['separation']['by_size'])}")
    return 0


def cmd_live(args: argparse.Namespace) -> int:
    from rtamt.live import run_live

    summary = run_live(
        lambda rate: build_transcriber(rate, instruments=args.instruments, exact=args.exact, mode=args.mode), args.input, args.realtime, args.samplerate, args.virtual_port,
        args.midi_port, args.midi_api, args.events == "json", no_midi=args.no_midi, status=not args.quiet,
        stats_every=args.stats_every, reconnect=args.reconnect,
    )  # fmt: skip
    print(json.dumps(summary), file=sys.stderr)
    if summary["stopped_by"] in ("SIGINT", "SIGTERM"):  # like transcribe: 130 for Ctrl-C, 143 for SIGTERM
        return EXIT_SIGNAL_BASE + signal.Signals[summary["stopped_by"]]
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    from rtamt.live import list_devices

    print(list_devices())
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from rtamt.bench import bench_backbone, bench_cqt, bench_latency

    if args.what == "backbone":
        print(json.dumps(bench_backbone(), indent=2))
        return 0
    if args.what == "latency":
        print(json.dumps(bench_latency(args.minutes, args.block, jack=not args.no_jack), indent=2))
        return 0
    if args.what == "soak":
        from rtamt.soak import bench_soak

        print(json.dumps(bench_soak(args.minutes, args.stats_every), indent=2))
        return 0
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


def add_mode_option(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--mode", choices=MODES, default=default,
                        help="tracker and clusterer settings chosen for accuracy or under a note-on latency limit "
                             f"(default {default})")  # fmt: skip


def add_timbre_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--instruments", type=instruments,
                        help="number of instruments, if known (a maximum, 1-15)")
    parser.add_argument("--exact", action="store_true", help="with --instruments: exactly that many")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rtamt", description="Real-time multi-instrument music transcription: live audio to live MIDI."
    )
    parser.add_argument("--version", action="version", version=f"rtamt {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    transcribe = sub.add_parser("transcribe", help="transcribe an audio file to a multi-track MIDI file")
    transcribe.add_argument("audio", help="audio file (WAV, FLAC, OGG, MP3, ...; any rate and channel count)")
    transcribe.add_argument("-o", "--output", required=True, help="MIDI file to write")
    add_timbre_options(transcribe)
    add_mode_option(transcribe, "accurate")
    transcribe.add_argument("--refine", action="store_true",
                            help="re-cluster all notes at the end (hindsight k-means: --instruments K with --exact, else as many timbres as found online)")  # fmt: skip
    transcribe.set_defaults(func=cmd_transcribe)

    evaluate = sub.add_parser("eval", help="accuracy and latency against ground truth")
    evaluate.add_argument("data", nargs="?", type=Path, help="folder of pieces: */mix.flac + */notes.csv")
    evaluate.add_argument("--synthetic", type=Path, help="a synthetic split, e.g. data/synth/test")
    evaluate.add_argument("--limit", type=positive_int, help="at most this many synthetic examples")
    evaluate.add_argument("--per-piece", action="store_true", help="include every piece's scores")
    evaluate.add_argument("--separation", action="store_true",
                          help="also every 2/3/4-stem mix of each piece: timbre separation (needs the stem files)")  # fmt: skip
    evaluate.add_argument("--json", action="store_true", help="print the report as JSON")
    evaluate.add_argument("--models", type=Path, help="folder with backbone.onnx (and timbre.onnx) to evaluate "
                                                      "instead of the shipped models")  # fmt: skip
    add_mode_option(evaluate, "accurate")
    evaluate.set_defaults(func=cmd_eval)

    live = sub.add_parser("live", help="live audio in, live MIDI out")
    live.add_argument("--input", help="audio input (device index or name part), or an audio file")
    live.add_argument("--realtime", action="store_true", help="play an input file at real-time pace")
    live.add_argument("--samplerate", type=positive_int,
                      help="device sample rate (default: the device's own)")
    port = live.add_mutually_exclusive_group()
    port.add_argument("--virtual-port", help="name of the virtual MIDI output port to open (default rtamt)")
    port.add_argument("--midi-port", help="send to an existing MIDI output port (name part)")
    port.add_argument("--no-midi", action="store_true", help="do not send MIDI (use with --events json)")
    live.add_argument("--midi-api", choices=["auto", "jack", "alsa"], default="auto", help="MIDI system")
    live.add_argument("--events", choices=["json"], help="also print every note event on stdout")
    live.add_argument("--quiet", action="store_true", help="no status line")
    live.add_argument("--reconnect", action="store_true",
                      help="when the input or the JACK server goes away, wait for it to come back and "
                           "start again (default: note-offs, a message and exit status 4)")
    live.add_argument("--stats-every", type=positive_float, metavar="SECONDS",
                      help="print a JSON statistics line (per-hop p99, drops, memory) on stderr this often")
    add_timbre_options(live)
    add_mode_option(live, "low-latency")
    live.set_defaults(func=cmd_live)

    devices = sub.add_parser("devices", help="list audio inputs and MIDI outputs")
    devices.set_defaults(func=cmd_devices)

    bench = sub.add_parser("bench", help="benchmarks: compute per hop and latency")
    bench.add_argument("what", choices=["cqt", "backbone", "latency", "soak"],
                       help="cqt: front end; backbone: model per frame; latency: whole chain and JACK end "
                            "to end; soak: live through JACK for --minutes (memory, drops, hanging notes, "
                            "per-hop p99)")
    bench.add_argument("--minutes", type=positive_float, default=10.0,
                       help="latency, soak: length of the stream")
    bench.add_argument("--stats-every", type=positive_float, default=30.0, metavar="SECONDS",
                       help="soak: seconds between statistics reports")
    bench.add_argument("--block", type=positive_int, default=256,
                       help="latency: device block size (samples at 48 kHz)")
    bench.add_argument("--no-jack", action="store_true", help="latency: skip the JACK end-to-end run")
    bench.add_argument("--json", action="store_true", help="print the result as JSON")
    bench.add_argument("--seconds", type=positive_float, default=60.0, help="length of the test stream")
    add_frontend_options(bench)
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(parser, args)
    code = run_command(args)
    if backend_abandoned():  # a dead JACK server would hang the audio library's clean-up at exit
        exit_now(code)
    return code


def run_command(args: argparse.Namespace) -> int:
    """Run the chosen command; known errors become a message on stderr and an exit status."""
    try:
        return args.func(args)
    except AudioInputError as err:
        print(f"rtamt: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ModelError as err:
        print(f"rtamt: {err}", file=sys.stderr)
        return EXIT_NO_MODEL
    except OutputError as err:
        print(f"rtamt: {err}", file=sys.stderr)
        return EXIT_OUTPUT
    except LiveError as err:
        print(f"\nrtamt: {err}", file=sys.stderr)
        return EXIT_DEVICE
    except KeyboardInterrupt:
        return EXIT_SIGNAL_BASE + signal.SIGINT


if __name__ == "__main__":
    sys.exit(main())
