"""Command line: a thin layer over the library (``rtamt transcribe``, ``live``, ``eval``, ``bench``, ...)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from rtamt import __version__
from rtamt.audio import AudioInputError, probe
from rtamt.constants import (
    EXIT_BAD_INPUT,
    EXIT_DEVICE,
    EXIT_NO_MODEL,
    EXIT_OUTPUT,
    EXIT_SIGNAL_BASE,
    EXIT_USAGE,
    LIVE_STOP_DEADLINE_S,
    LIVE_WORKER_PRIORITY,
)
from rtamt.cqt import CQTConfig
from rtamt.live import LiveError
from rtamt.models import ModelError, models_dir
from rtamt.outputs import Output, OutputError, open_output
from rtamt.pipeline import MODES, Transcriber, build_transcriber
from rtamt.plugins import PluginError
from rtamt.rig import Rig, load_rig
from rtamt.tracker import TrackerConfig
from rtamt.validate import check_args, instruments, positive_float, positive_int, rt_priority
from rtamt.view import DEFAULT_PORT as DEFAULT_VIEW_PORT
from rtamt.watchdog import backend_abandoned, exit_now


def cmd_transcribe(args: argparse.Namespace) -> int:
    probe(args.audio)  # an unreadable input is reported before the output is touched
    with open_output(args.output, [args.audio]) as output:  # checked before the work; removed unless written
        return transcribe_to(args, output)


def transcribe_to(args: argparse.Namespace, output: Output) -> int:
    """The work of ``rtamt transcribe`` once input and output are checked."""
    from rtamt.api import transcribe

    result = transcribe(args.audio, instruments=args.instruments, exact=args.exact, refine=args.refine,
                        transcriber=build_rig_transcriber(args))  # fmt: skip
    print(result.summary())
    midi = result.midi()
    output.commit(lambda tmp: midi.save(str(tmp)))
    tracks = len(midi.tracks) - 1
    mode = {"single": "no timbre model yet: every note on channel 1", "online": "timbres assigned online",
            "refined": "timbres refined in hindsight"}[result.timbres]
    print(f"wrote {args.output} ({tracks} track{'s' if tracks != 1 else ''}; {mode})")
    if args.plot:
        from rtamt.plot import plot_roll

        plot_roll(result.events, args.plot, f"{Path(args.audio).name}: rtamt's notes, one colour per MIDI channel")
        print(f"wrote {args.plot}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from rtamt.evaluate import evaluate_folder, evaluate_separation, evaluate_shards

    transcriber = build_transcriber(model_dir=args.models, mode=args.mode, sustain=args.sustain)
    say = (lambda message: print(message, file=sys.stderr)) if args.json else print
    report = {"model": transcriber.backbone.meta, "tracker": transcriber.tracker.config.__dict__}
    if args.data:
        report["folder"] = {"path": str(args.data), **evaluate_folder(args.data, transcriber, say, args.plot)}
    if args.separation and args.data:
        report["separation"] = evaluate_separation(args.data, progress=say, mode=args.mode, model_dir=args.models,
                                                   sustain=args.sustain, shifts_ms=tuple(args.shifts))  # fmt: skip
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
    from rtamt.budget import BudgetError, live_settings
    from rtamt.live import resolve_midi_api, run_live
    from rtamt.watchdog import StopSignals, jack_server_running

    signals = StopSignals(LIVE_STOP_DEADLINE_S).install()  # before any backend is touched
    try:
        point = live_settings(args.models or models_dir(), args.mode, args.latency_budget)
    except BudgetError as err:
        print(f"rtamt: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    budgeted = point is not None and args.latency_budget is not None
    if budgeted and not args.quiet:
        print(f"latency budget {args.latency_budget:g} ms: tracker settings '{point.label}' (validation median "
              f"{point.latency_ms_median:g} ms, onset F1 {point.onset_f1:g})", file=sys.stderr)  # fmt: skip
    transcriber = build_rig_transcriber(args, point.tracker if budgeted else None)
    specs = live_sink_specs(args)
    api = resolve_midi_api(args.midi_api)  # auto: JACK when a JACK server runs
    if api == "jack" and "midi-port" in specs and not jack_server_running():
        raise LiveError("no JACK server is running: start one (e.g. jackd -d alsa), or use --midi-api alsa "
                        "or --no-midi")
    midi_port = {"virtual": args.virtual_port or "rtamt", "port": args.midi_port, "api": api}
    if signals.signal is not None:  # stopped while loading: nothing opened yet
        return EXIT_SIGNAL_BASE + signals.signal
    sinks = open_sinks(specs, {"midi-port": midi_port}, args.rig)
    try:
        summary = run_live(transcriber, args.input, args.realtime, args.samplerate, sinks, status=not args.quiet,
                           view_port=args.view,
                           expected_latency_ms=point.latency_ms_median if point is not None else None,
                           stats_every=args.stats_every, reconnect=args.reconnect, signals=signals,
                           priority=args.priority)  # fmt: skip
    finally:  # run_live closes them after the stream; this covers a failure before it starts
        for sink in sinks:
            sink.close()
    print(json.dumps(summary), file=sys.stderr)
    if summary["stopped_by"] in ("SIGINT", "SIGTERM"):  # like transcribe: 130 for Ctrl-C, 143 for SIGTERM
        return EXIT_SIGNAL_BASE + signal.Signals[summary["stopped_by"]]
    return 0


def build_rig_transcriber(args: argparse.Namespace, tracker: TrackerConfig | None = None) -> Transcriber:
    """The chain the options (and the rig file's settings) describe, with the rig's stages inserted and its
    tracker and clusterer settings over the model file's (or over ``tracker``, e.g. a latency budget's)."""
    transcriber = build_transcriber(model_dir=args.models, tracker=tracker, instruments=args.instruments,
                                    exact=args.exact, mode=args.mode, sustain=args.sustain)  # fmt: skip
    rig = args.rig
    if rig is None:
        return transcriber
    if rig.tracker or rig.clusterer:
        tracker = rig.override(transcriber.tracker.config, rig.tracker, "tracker")
        clusters = transcriber.assigner.config if transcriber.assigner is not None else None
        if rig.clusterer and clusters is not None:
            clusters = rig.override(clusters, rig.clusterer, "clusterer")
        transcriber = build_transcriber(model_dir=args.models, tracker=tracker, clusters=clusters, instruments=args.instruments,
                                        exact=args.exact, mode=args.mode, sustain=args.sustain)  # fmt: skip
    rig.insert_stages(transcriber.chain)
    return transcriber


def live_sink_specs(args: argparse.Namespace) -> list[str]:
    """The sinks ``rtamt live`` sends to besides the rig file's: every --sink, else (when the rig names
    none either) the MIDI port unless --no-midi; plus JSON lines on stdout with --events json."""
    default = [] if args.no_midi or (args.rig is not None and args.rig.sinks) else ["midi-port"]
    specs = list(args.sink or default)
    if args.events == "json":
        specs.append("jsonl")
    return specs


def open_sinks(specs: list[str], defaults: dict[str, dict], rig: Rig | None = None) -> list:
    """Build the rig file's sinks and every sink a spec names (``defaults`` by sink name); if one fails,
    close those already open."""
    from rtamt.plugins import build, make, parse_spec

    sinks: list = []
    try:
        for entry in rig.sinks if rig is not None else []:
            options = {k: v for k, v in entry.items() if k != "name"}
            sinks.append(build("sinks", entry["name"], {**defaults.get(entry["name"], {}), **options}))
        for spec in specs:
            sinks.append(make("sinks", spec, defaults.get(parse_spec(spec)[0])))
    except BaseException:
        for sink in sinks:
            sink.close()
        raise
    return sinks


def cmd_plugins(args: argparse.Namespace) -> int:
    from rtamt.plugins import GROUPS, listing

    for kind, found in listing().items():
        print(f"{kind} (entry-point group {GROUPS[kind]}):")
        width = max(map(len, found), default=0)
        for name, origin in found.items():
            print(f"  {name:<{width}}  {origin}")
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    from rtamt.live import list_devices

    print(list_devices())
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from rtamt.bench import bench_backbone, bench_cqt, bench_latency

    if args.what == "backbone":
        print(json.dumps(bench_backbone(model_dir=args.models), indent=2))
        return 0
    if not (args.what == "latency" and args.data) and (args.sweep or args.jack or args.out or args.no_cache):
        print("rtamt: --sweep, --jack, --out and --no-cache need `bench latency --data DIR`", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.what == "latency" and args.data:
        from rtamt.latency import bench_command, default_cache_dir

        results = bench_command(args.data, args.models, args.mode, args.sweep, args.jack,
                                None if args.no_cache else default_cache_dir(), args.out,
                                lambda message: print(message, file=sys.stderr))  # fmt: skip
        print(json.dumps(results if len(results) > 1 else results[0], indent=2))
        return 0
    if args.what == "latency":
        print(json.dumps(bench_latency(args.minutes, args.block, jack=not args.no_jack, model_dir=args.models), indent=2))
        return 0
    if args.what == "soak":
        from rtamt.soak import bench_soak

        print(json.dumps(bench_soak(args.minutes, args.stats_every), indent=2))
        return 0
    result = bench_cqt(args.seconds, CQTConfig(args.lookahead, args.gamma, args.window_peak))
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
    parser.add_argument("--window-peak", type=float, default=0.5,
                        help="where each analysis window peaks, 0.5 (symmetric) to <1 (at its newest sample)")  # fmt: skip


def add_mode_option(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--mode", choices=MODES, default=default,
                        help="tracker and clusterer settings chosen for accuracy or under a note-on latency limit "
                             f"(default {default})")  # fmt: skip


def add_models_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", type=Path, help="folder with backbone.onnx (and timbre.onnx) to use instead of "
                                                    "the shipped models (or set RTAMT_MODELS)")  # fmt: skip
    parser.add_argument("--no-sustain", dest="sustain", action="store_false",
                        help="leave the sustain-pedal stage out: notes end when their sound ends, and no CC64 is "
                             "sent (by default, under a detected pedal, notes end at their key releases and "
                             "CC64 keeps them sounding)")  # fmt: skip


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, metavar="RIG.toml",
                        help="a rig file: settings (mode, instruments, exact, models), [[stages]] to insert "
                             "and [[sinks]]; options on the command line win")  # fmt: skip


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
                            help="re-cluster all notes at the end (hindsight k-means: --instruments K with --exact, else as many "
                                 "timbres as found online): better for ensembles, worse for one instrument split over channels")  # fmt: skip
    add_models_option(transcribe)
    add_config_option(transcribe)
    transcribe.add_argument("--plot", metavar="PNG", help="also draw the notes as a piano roll (needs the plot extra)")
    transcribe.set_defaults(func=cmd_transcribe)

    evaluate = sub.add_parser("eval", help="accuracy and latency against ground truth")
    evaluate.add_argument("data", nargs="?", type=Path, help="folder of pieces: */mix.flac + */notes.csv")
    evaluate.add_argument("--synthetic", type=Path, help="a synthetic split, e.g. data/synth/test")
    evaluate.add_argument("--limit", type=positive_int, help="at most this many synthetic examples")
    evaluate.add_argument("--per-piece", action="store_true", help="include every piece's scores")
    evaluate.add_argument("--separation", action="store_true",
                          help="also every 2/3/4-stem mix of each piece: timbre separation (needs the stem files)")  # fmt: skip
    evaluate.add_argument("--shifts", type=float, nargs="+", default=[0.0], metavar="MS",
                          help="with --separation: run every mix once per delay in milliseconds (e.g. 0 3.9 7.7: the "
                               "same music shifted under a hop) and pool them, with the online figure per delay")  # fmt: skip
    evaluate.add_argument("--json", action="store_true", help="print the report as JSON")
    add_models_option(evaluate)
    evaluate.add_argument("--plot", metavar="DIR", type=Path,
                          help="with DATA_DIR: one PNG per piece, reference against rtamt (hits, misses, false notes)")  # fmt: skip
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
    live.add_argument("--events", choices=["json"], help="also print every note event on stdout (the jsonl sink)")
    live.add_argument("--sink", action="append", metavar="SPEC",
                      help="send events here (repeatable): midi-port, midi-file:path=F.mid, jsonl[:path=F], "
                           "osc:host=H,port=P, an installed plugin's name or module:attr; options after a "
                           "colon as key=value,... (rtamt plugins lists them; default: midi-port)")  # fmt: skip
    live.add_argument("--quiet", action="store_true", help="no status line")
    live.add_argument("--view", nargs="?", type=int, const=DEFAULT_VIEW_PORT, metavar="PORT",
                      help=f"serve a live piano roll on http://127.0.0.1:PORT/ (default {DEFAULT_VIEW_PORT}; 0: any free port)")  # fmt: skip
    live.add_argument("--reconnect", action="store_true",
                      help="when the input or the JACK server goes away, wait for it to come back and "
                           "start again (default: note-offs, a message and exit status 4)")
    live.add_argument("--priority", type=rt_priority, default=LIVE_WORKER_PRIORITY, metavar="N",
                      help="SCHED_FIFO priority of the worker thread where permitted (default "
                           f"{LIVE_WORKER_PRIORITY}, under JACK's; 0: normal scheduling)")  # fmt: skip
    live.add_argument("--stats-every", type=positive_float, metavar="SECONDS",
                      help="print a JSON statistics line (per-hop p99, drops, memory) on stderr this often")
    add_timbre_options(live)
    add_mode_option(live, "low-latency")
    add_models_option(live)
    add_config_option(live)
    live.add_argument("--latency-budget", type=float, metavar="MS",
                      help="the most accurate tracker settings stored with the model whose validation median "
                           "note-on latency fits MS (overrides --mode's tracker settings; clusterer of --mode)")  # fmt: skip
    live.set_defaults(func=cmd_live)

    plugins = sub.add_parser("plugins", help="list the sinks and stages available by name (built in, installed)")
    plugins.set_defaults(func=cmd_plugins)

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
    bench.add_argument("--data", type=Path, nargs="+",
                       help="latency: folders of pieces (*/mix.flac + */notes.csv): per-note latency and accuracy "
                            "on those recordings instead of the looped example")  # fmt: skip
    bench.add_argument("--models", type=Path, help="backbone, latency: folder with backbone.onnx (and timbre.onnx) "
                       "instead of the shipped models")  # fmt: skip
    add_mode_option(bench, "low-latency")
    bench.add_argument("--sweep", action="store_true",
                       help="latency --data: trace the latency-accuracy curve over the tracker's decision settings")
    bench.add_argument("--jack", action="store_true",
                       help="latency --data: also play every piece through JACK in real time (end to end)")
    bench.add_argument("--out", type=Path, help="latency --data: write OUT.json (and with --sweep OUT.md, OUT.png)")
    bench.add_argument("--no-cache", action="store_true", help="latency --data: do not cache the model outputs")
    add_frontend_options(bench)
    bench.set_defaults(func=cmd_bench)
    parser.commands = {"transcribe": transcribe, "live": live}  # the commands that take --config
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse; with --config, the rig file's settings become the command's defaults and the command line is
    parsed again (so its options win). ``args.rig`` is the rig (None without --config)."""
    args = parser.parse_args(argv)
    rig = None
    if getattr(args, "config", None) is not None:
        rig = load_rig(args.config)
        parser.commands[args.command].set_defaults(**rig.settings)
        args = parser.parse_args(argv)
    args.rig = rig
    return args


def main(argv: list[str] | None = None, before_command: Callable[[], None] | None = None) -> int:
    """Parse, check and run one command. ``before_command`` runs once the arguments are checked, just
    before the command starts (``rtamt`` gives its signal handlers back there)."""
    parser = build_parser()
    try:
        args = parse_args(parser, argv)
    except PluginError as err:
        print(f"rtamt: {err}", file=sys.stderr)
        return EXIT_USAGE
    check_args(parser, args)
    if before_command is not None:
        before_command()
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
    except PluginError as err:
        print(f"rtamt: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_SIGNAL_BASE + signal.SIGINT


if __name__ == "__main__":
    sys.exit(main())
