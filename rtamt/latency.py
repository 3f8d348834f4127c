"""Note-on latency benchmark on any folder of recordings (``*/mix.flac`` + ``*/notes.csv``).

Per matched note (mir_eval, 50 ms onset tolerance): the **stream time** at which its note-on leaves the
chain (decision frame + model look-ahead + resampler delay; compute time not included) minus its true
onset; with ``--jack``, the same note-ons timed **end to end through a JACK graph** (wall clock from the
audio entering JACK to the MIDI arriving). Reported: the distribution (median, p95, histogram), latency
by octave against the two-period floor (2 / f0), and accuracy (onset, with-offset and frame F1). The
model outputs of each piece are cached, so the sweep over tracker decision settings re-runs only the
tracker (and the clusterer's decision window, which holds every note-on).

Beside each figure measured from the annotations: where those annotations lie against the sound
(``annotation_alignment``: the audio's own attack time of each note, :mod:`rtamt.attacks`) and the
stream-time latency measured from that attack instead (``latency_from_attack``), so that data whose
annotations lead or trail the sound can be read for what the chain itself adds.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from rtamt.attacks import alignment_summary, attack_offsets_s, energy_rise
from rtamt.audio import probe, read_blocks
from rtamt.chain import Chain
from rtamt.cluster import ClusterConfig, TimbreAssigner
from rtamt.constants import (
    HOP_S,
    JACK_MATCH_TOLERANCE_S,
    LATENCY_HIST_BIN_MS,
    LATENCY_HIST_MAX_MS,
    MIDI_MIN,
    SWEEP_BUMPS,
    SWEEP_ONSET_RULES,
    SWEEP_ONSET_THRESHOLDS,
    SWEEP_SUSTAIN_FRAMES,
    pitch_to_hz,
)  # fmt: skip
from rtamt.evaluate import _arrays, _mir_eval, matched_note_ons, note_metrics, note_on_latency_s, read_notes_csv
from rtamt.pipeline import build_transcriber
from rtamt.sustain import PedalChange, SustainStage
from rtamt.tracker import NoteEvent, NoteTracker, TrackerConfig, events_to_notes

STREAM_LABEL = "stream time: note-on decision + model look-ahead + resampler delay, minus the true onset"
JACK_LABEL = "end to end through JACK: MIDI arrival minus the moment the true onset entered JACK (wall clock)"


@dataclass
class PieceOutputs:
    """One piece's model outputs (n, 2 [+ D], 84), its reference notes and the chain's emit delay."""

    name: str
    frames: np.ndarray
    reference: list[tuple[float, float, int]]
    emit_delay_s: float
    duration_s: float
    attack_offset_s: np.ndarray  # per reference note: its attack in the audio minus its onset (NaN: not found)


def piece_dirs(data_dir: Path) -> list[Path]:
    """Sub-folders holding mix.flac and notes.csv, sorted."""
    pieces = sorted(p for p in Path(data_dir).iterdir() if (p / "mix.flac").exists() and (p / "notes.csv").exists())
    if not pieces:
        raise SystemExit(f"{data_dir}: no folders with mix.flac and notes.csv")
    return pieces


def _models_key(model_dir: Path) -> str:
    digest = hashlib.sha256()
    for name in ("backbone.onnx", "timbre.onnx"):
        if (model_dir / name).exists():
            digest.update((model_dir / name).read_bytes())
    return digest.hexdigest()[:16]


def piece_outputs(piece: Path, model_dir: Path | None, cache_dir: Path | None) -> PieceOutputs:
    """Run the chain up to the models on one piece, and find each reference note's attack in the audio (or
    load both from the cache: keyed by the model files' contents and the audio file's path, size and
    modification time)."""
    info = probe(piece / "mix.flac")
    transcriber = build_transcriber(info.samplerate, model_dir)
    emit_delay = transcriber.backbone.lookahead * HOP_S + transcriber.chain.stages[0].latency_s
    reference = [(on, off, midi) for on, off, midi, _ in read_notes_csv(piece / "notes.csv")]
    stat = (piece / "mix.flac").stat()
    key = hashlib.sha256(f"f32|{_models_key(transcriber.model_dir)}|{piece.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
                         .encode()).hexdigest()[:24]  # fmt: skip
    path = cache_dir / f"{piece.name}-{key}.npy" if cache_dir is not None else None
    attacks_path = path.with_suffix(".attacks.npy") if path is not None else None
    if path is not None and path.exists() and attacks_path.exists():
        frames, attacks = np.load(path), np.load(attacks_path)
    else:
        chain = transcriber.chain
        front = Chain(chain.stages[: chain.index("harmonic-stack")])  # resampler, CQT, normalisation
        models = Chain(chain.stages[chain.index("harmonic-stack") : chain.index("note-tracker")])
        log_power = front.run(read_blocks(piece / "mix.flac", 4096))
        frames = models.run([log_power]).astype(np.float32)
        attacks = attack_offsets_s(energy_rise(log_power, chain.stages[chain.index("cqt")].latency_ms), reference)
        if path is not None:
            _save_atomic(path, frames)
            _save_atomic(attacks_path, attacks)
    return PieceOutputs(piece.name, frames, reference, emit_delay, info.duration_s, attacks)


def _save_atomic(path: Path, array: np.ndarray) -> None:
    """Write an array so that a run stopped half-way leaves no truncated cache entry."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.partial")
    with open(partial, "wb") as handle:
        np.save(handle, array)
    partial.replace(path)


def replay(outputs: PieceOutputs, tracker: TrackerConfig, clusters: ClusterConfig | None,
           sustain: SustainStage | None = None, pedal: list[PedalChange] | None = None,
           assigners: list[TimbreAssigner] | None = None) -> list[NoteEvent]:  # fmt: skip
    """The tracker (and, with a timbre model's outputs, the clusterer and the sustain stage when given, as
    the pipeline runs them) on cached model outputs; the sustain stage's pedal changes go to ``pedal``, the
    flushed clusterer (its finished notes, for hindsight refinement) to ``assigners``."""
    if clusters is None or outputs.frames.shape[1] <= 2:
        stage = NoteTracker(tracker)
        return stage.process(outputs.frames) + stage.flush()
    middle = [sustain] if sustain is not None else []
    chain = Chain([NoteTracker(tracker, keep_frames=True), *middle, TimbreAssigner(tracker, clusters, tracked=True)])
    events = chain.run([outputs.frames])
    if assigners is not None:
        assigners.append(chain["timbre-clusterer"])
    changes = sustain.take_changes() if sustain is not None else []
    if pedal is not None:
        pedal.extend(changes)
    return events


def matched_latencies(reference: list[tuple], events: list[NoteEvent],
                      emit_delay_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Stream-time note-on latency (s), reference pitch and reference index of every matched note."""
    pairs = matched_note_ons(reference, events)
    latency = np.array([note_on_latency_s(on, reference[i][0], emit_delay_s) for i, on in pairs])
    return latency, np.array([reference[i][2] for i, _ in pairs], dtype=int), np.array([i for i, _ in pairs], dtype=int)


def arrival_latencies(reference: list[tuple], arrivals: list[tuple[float, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Latency (s) and pitch of matched notes when only each note-on's arrival time is known (JACK): note-ons
    are matched to true onsets by pitch within JACK_MATCH_TOLERANCE_S of their arrival."""
    if not reference or not arrivals:
        return np.zeros(0), np.zeros(0, dtype=int)
    ref_i, ref_p = _arrays(reference)
    est_i = np.array([[t, t + 0.1] for t, _ in arrivals])
    est_p = pitch_to_hz(np.array([p for _, p in arrivals], dtype=float))
    pairs = _mir_eval().transcription.match_notes(ref_i, ref_p, est_i, est_p, onset_tolerance=JACK_MATCH_TOLERANCE_S,
                                                  offset_ratio=None)  # fmt: skip
    return (np.array([arrivals[j][0] - reference[i][0] for i, j in pairs]),
            np.array([reference[i][2] for i, _ in pairs], dtype=int))  # fmt: skip


def distribution(latency_s: np.ndarray) -> dict:
    """Count, median, p95, mean and a histogram (LATENCY_HIST_BIN_MS bins; the last holds every later one)."""
    ms = np.asarray(latency_s) * 1000.0
    if len(ms) == 0:
        return {"matched_notes": 0, "median_ms": None, "p95_ms": None}
    low = np.floor(min(ms.min(), 0.0) / LATENCY_HIST_BIN_MS) * LATENCY_HIST_BIN_MS
    edges = np.arange(low, LATENCY_HIST_MAX_MS + LATENCY_HIST_BIN_MS / 2, LATENCY_HIST_BIN_MS)
    counts, _ = np.histogram(np.minimum(ms, LATENCY_HIST_MAX_MS - 1e-6), edges)
    return {"matched_notes": len(ms), "median_ms": round(float(np.median(ms)), 1),
            "p95_ms": round(float(np.percentile(ms, 95)), 1), "mean_ms": round(float(ms.mean()), 1),
            "min_ms": round(float(ms.min()), 1), "max_ms": round(float(ms.max()), 1),
            "histogram": {"bin_ms": LATENCY_HIST_BIN_MS, "first_edge_ms": float(edges[0]),
                          "counts": counts.tolist(), "last_bin_open": True}}  # fmt: skip


def two_period_floor_ms(midi: np.ndarray | int) -> np.ndarray:
    """The physical floor of a pitch's note-on latency: two periods of its fundamental, in ms."""
    return 2000.0 / pitch_to_hz(np.asarray(midi, dtype=float))


def by_octave(latency_s: np.ndarray, pitches: np.ndarray) -> list[dict]:
    """Latency of matched notes per octave (C to B) against the two-period floor of its pitches."""
    rows = []
    ms = np.asarray(latency_s) * 1000.0
    for low in range(MIDI_MIN, 108, 12):
        mine = (pitches >= low) & (pitches < low + 12)
        if not mine.any():
            continue
        floor = two_period_floor_ms(pitches[mine])
        rows.append({"midi": [low, low + 11], "notes": int(mine.sum()), "median_ms": round(float(np.median(ms[mine])), 1),
                     "p95_ms": round(float(np.percentile(ms[mine], 95)), 1),
                     "floor_ms": [round(float(two_period_floor_ms(low + 11)), 1), round(float(two_period_floor_ms(low)), 1)],
                     "median_over_floor_ms": round(float(np.median(ms[mine] - floor)), 1)})  # fmt: skip
    return rows


def measure(pieces: list[PieceOutputs], tracker: TrackerConfig, clusters: ClusterConfig | None,
            frames: bool = True, sustain: SustainStage | None = None) -> dict:  # fmt: skip
    """Accuracy (mean over pieces), channels per piece, and stream-time latency of matched notes (pooled)
    of one setting, also measured from each note's attack in the audio."""
    rows, latencies, pitches, from_attack = {}, [], [], []
    for piece in pieces:
        events = replay(piece, tracker, clusters, sustain)
        row = note_metrics(piece.reference, events_to_notes(events), frames=frames)
        latency, pitch, matched = matched_latencies(piece.reference, events, piece.emit_delay_s)
        attack = piece.attack_offset_s[matched]
        from_attack.append((latency - attack)[np.isfinite(attack)])
        row["matched_notes"] = len(latency)
        row["channels"] = len({e.timbre for e in events if e.on})
        spread = distribution(latency)
        row["latency_ms_median"], row["latency_ms_p95"] = spread["median_ms"], spread["p95_ms"]
        rows[piece.name] = row
        latencies.append(latency)
        pitches.append(pitch)
    keys = [k for k in ("onset_p", "onset_r", "onset_f1", "offset_f1", "frame_f1") if k in rows[pieces[0].name]]
    accuracy = {k: round(float(np.mean([r[k] for r in rows.values()])), 4) for k in keys}
    accuracy["channels_mean"] = round(float(np.mean([r["channels"] for r in rows.values()])), 2)
    accuracy["notes_ref"] = int(sum(r["notes_ref"] for r in rows.values()))
    latency, pitch = np.concatenate(latencies), np.concatenate(pitches)
    return {"accuracy": accuracy, "latency": distribution(latency), "by_octave": by_octave(latency, pitch),
            "latency_from_attack": distribution(np.concatenate(from_attack)), "pieces": rows}


def stored_settings(meta: dict) -> dict[str, TrackerConfig]:
    """The tracker settings stored in a backbone's metadata: ``accurate``, ``low-latency`` and, when the
    model stores a latency-accuracy curve, each of its points."""
    from rtamt.budget import stored_curve

    return {point.label: point.tracker for point in stored_curve(meta)}


def sweep_settings(meta: dict) -> dict[str, TrackerConfig]:
    """Each stored setting with each onset rule (SWEEP_ONSET_RULES), and variants of its decision settings:
    onset rule, onset threshold (SWEEP_ONSET_THRESHOLDS) and sustained-start wait (SWEEP_SUSTAIN_FRAMES);
    and each stored setting with the joint-evidence start (SWEEP_BUMPS)."""
    out: dict[str, TrackerConfig] = {}
    for label, base in stored_settings(meta).items():
        out[label] = base
        for bump, level in SWEEP_BUMPS:
            out.setdefault(f"{label}: bump {bump:g}, frame {level:g}",
                           replace(base, bump_threshold=bump, bump_sustain_threshold=level))
        for rise, backdate in SWEEP_ONSET_RULES:
            rule = f"rise-{backdate}" if rise else "peak"
            out.setdefault(f"{label}: {rule}", replace(base, onset_rise=rise, rise_backdate_frames=backdate))
            for threshold in SWEEP_ONSET_THRESHOLDS:
                for sustain in SWEEP_SUSTAIN_FRAMES:
                    variant = replace(base, onset_rise=rise, rise_backdate_frames=backdate, sustain_frames=sustain,
                                      onset_threshold=threshold)  # fmt: skip
                    out.setdefault(f"{label}: {rule}, onset {threshold:g}, sustain {sustain}", variant)
    unique: dict[TrackerConfig, str] = {}
    for label, config in out.items():
        unique.setdefault(config, label)
    return {label: config for config, label in unique.items()}


def pareto(points: list[dict]) -> list[int]:
    """Indices of the points no other point beats on median latency (lower) and onset F1 (higher), the
    first of identical points only, sorted by latency."""
    def beats(j: int, i: int) -> bool:
        (a, b), (c, d) = [(points[k]["latency_ms_median"], -points[k]["onset_f1"]) for k in (j, i)]
        return a <= c and b <= d and ((a, b) != (c, d) or j < i)

    front = [i for i in range(len(points)) if not any(beats(j, i) for j in range(len(points)) if j != i)]
    return sorted(front, key=lambda i: points[i]["latency_ms_median"])


def sweep(pieces: list[PieceOutputs], settings: dict[str, TrackerConfig], clusters: ClusterConfig | None,
          progress: Callable[[str], None], sustain: SustainStage | None = None) -> list[dict]:  # fmt: skip
    """Onset F1 and stream-time latency of every setting (frame F1 left out: it does not change the curve)."""
    points = []
    for label, config in settings.items():
        result = measure(pieces, config, clusters, frames=False, sustain=sustain)
        a, lat = result["accuracy"], result["latency"]
        points.append({"label": label, "tracker": asdict(config), "onset_f1": a["onset_f1"], "offset_f1": a["offset_f1"],
                       "matched_notes": lat["matched_notes"], "notes_ref": a["notes_ref"],
                       "latency_ms_median": lat["median_ms"], "latency_ms_p95": lat["p95_ms"]})  # fmt: skip
        progress(f"{label}: onset F1 {a['onset_f1']:.3f}, median {lat['median_ms']} / p95 {lat['p95_ms']} ms")
    for i in pareto(points):
        points[i]["pareto"] = True
    return points


def jack_folder(piece_paths: list[Path], mode: str, model_dir: Path | None, progress: Callable[[str], None]) -> dict:
    """Every piece played in real time through a JACK graph into ``rtamt live``: latency of matched notes by
    their MIDI arrival (see rtamt.jack_e2e). Skipped, with the reason, without jackd or when its server
    cannot start."""
    from rtamt import jack_e2e

    reason = jack_e2e.jack_available()
    if reason:
        return {"skipped": reason}
    latencies, pitches, hanging, skipped_s, xruns = [], [], 0, 0.0, 0
    env_before = os.environ.get("RTAMT_MODELS")
    if model_dir is not None:
        os.environ["RTAMT_MODELS"] = str(Path(model_dir).resolve())  # the live subprocess loads these models
    try:
        with ExitStack() as stack:
            try:
                stack.enter_context(jack_e2e.jack_server())
            except RuntimeError as err:  # e.g. the machine's JACK server table is full
                return {"skipped": f"the JACK server did not start: {' '.join(str(err).split())}"}
            for piece in piece_paths:
                run = jack_e2e.play_and_record(piece / "mix.flac", ["--input", "system", "--midi-api", "jack", "--mode", mode],
                                               timeout_s=probe(piece / "mix.flac").duration_s + 60)  # fmt: skip
                notes, left = jack_e2e.events_to_notes(run["events"])
                hanging += left
                xruns += run["xruns"]
                summary = [line for line in run["stderr"].splitlines() if line.startswith("{")]
                skipped_s += json.loads(summary[-1]).get("skipped_s", 0.0) if summary else 0.0
                reference = [(on, off, midi) for on, off, midi, _ in read_notes_csv(piece / "notes.csv")]
                latency, pitch = arrival_latencies(reference, [(on, p) for on, _, p, _ in notes])
                latencies.append(latency)
                pitches.append(pitch)
                progress(f"{piece.name} (JACK): {len(latency)} matched notes")
    finally:
        if model_dir is not None:
            if env_before is None:
                os.environ.pop("RTAMT_MODELS", None)
            else:
                os.environ["RTAMT_MODELS"] = env_before
    latency, pitch = np.concatenate(latencies), np.concatenate(pitches)
    return {"label": JACK_LABEL, "match_tolerance_ms": JACK_MATCH_TOLERANCE_S * 1000, "hanging_notes": hanging,
            "audio_skipped_s": round(skipped_s, 3),  # audio the live worker dropped for falling behind
            "xruns": xruns,  # JACK cycles a client missed while playing: the timing is not to be trusted
            "latency": distribution(latency), "by_octave": by_octave(latency, pitch)}  # fmt: skip


def stream_arrivals(pieces: list[PieceOutputs], tracker: TrackerConfig, clusters: ClusterConfig | None,
                    sustain: SustainStage | None = None) -> dict:  # fmt: skip
    """The stream path timed and matched as the JACK path is (note-on emit time, matched on arrival): the
    figure to set beside the JACK one."""
    latencies = []
    for piece in pieces:
        events = replay(piece, tracker, clusters, sustain)
        arrivals = [(e.decided * HOP_S + piece.emit_delay_s, e.pitch) for e in events if e.on]
        latencies.append(arrival_latencies(piece.reference, arrivals)[0])
    return distribution(np.concatenate(latencies))


def bench_folder(data_dir: Path, model_dir: Path | None = None, mode: str = "low-latency", cache_dir: Path | None = None,
                 do_sweep: bool = False, jack: bool = False, progress: Callable[[str], None] = print) -> dict:  # fmt: skip
    """The whole latency benchmark of one folder (see the module docstring)."""
    paths = piece_dirs(data_dir)
    pieces = []
    for path in paths:
        pieces.append(piece_outputs(path, model_dir, cache_dir))
        progress(f"{path.name}: model outputs ready ({len(pieces[-1].frames)} frames)")
    transcriber = build_transcriber(model_dir=model_dir, mode=mode)
    tracker = transcriber.tracker.config
    clusters = transcriber.assigner.config if transcriber.assigner is not None else None
    result = {"benchmark": "latency-on-recordings", "data": str(data_dir), "pieces": len(pieces),
              "audio_s": round(sum(p.duration_s for p in pieces), 1), "model_dir": str(transcriber.model_dir),
              "mode": mode, "tracker": asdict(tracker), "clusterer": asdict(clusters) if clusters else None,
              "annotation_alignment": alignment_summary(
                  np.concatenate([p.attack_offset_s for p in pieces]),
                  np.array([n[2] for p in pieces for n in p.reference], dtype=int)),
              "sustain": asdict(transcriber.sustain.config) if transcriber.sustain else None,
              "stream": {"label": STREAM_LABEL, **measure(pieces, tracker, clusters, sustain=transcriber.sustain)}}  # fmt: skip
    if jack:
        result["jack"] = jack_folder(paths, mode, model_dir, progress)
        result["stream_timed_as_jack"] = stream_arrivals(pieces, tracker, clusters, transcriber.sustain)
    if do_sweep:
        result["sweep"] = sweep(pieces, sweep_settings(transcriber.backbone.meta), clusters, progress, transcriber.sustain)
    return result


def sweep_markdown(result: dict, title: str | None = None) -> str:
    """The sweep's Pareto front as a markdown table (all points are in the JSON)."""
    points = result["sweep"]
    header = ["| setting | note-on latency median / p95 | onset F1 | with-offset F1 | matched notes |", "|---|---|---|---|---|"]
    lines = [(f"**{title or Path(result['data']).name}** ({result['pieces']} pieces, {result['audio_s']} s; clusterer of "
              f"`--mode {result['mode']}`; stream time; {len([p for p in points if p.get('pareto')])} of "
              f"{len(points)} settings on the Pareto front)"), "", *header]  # fmt: skip
    def row(p: dict) -> str:
        return (f"| {p['label']} | {p['latency_ms_median']} / {p['latency_ms_p95']} ms | {p['onset_f1']:.3f} | "
                f"{p['offset_f1']:.3f} | {p['matched_notes']} of {p['notes_ref']} |")  # fmt: skip

    lines += [row(p) for p in sorted((p for p in points if p.get("pareto")), key=lambda p: p["latency_ms_median"])]
    bumps = [p for p in points if p["label"] == "low-latency" or p["label"].startswith("low-latency: bump")]
    if len(bumps) > 1:
        lines += ["", "The live setting alone and with the joint-evidence start (`bump_threshold`, "
                  "`bump_sustain_threshold`: an onset bump plus a lower frame probability start a note at once):", "",
                  *header, *(row(p) for p in bumps)]  # fmt: skip
    return "\n".join(lines) + "\n"


def plot_sweeps(results: list[dict], path: Path) -> None:
    """Median note-on latency against onset F1 for every setting, the Pareto front joined, one colour per
    folder. Needs matplotlib (the ``plot`` extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise SystemExit("the sweep plot needs matplotlib: pip install 'rtamt[plot]'") from err
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for result in results:
        points = result["sweep"]
        name = Path(result["data"]).name
        dots = axes.scatter([p["latency_ms_median"] for p in points], [p["onset_f1"] for p in points], s=12, alpha=0.4)
        front = sorted((p for p in points if p.get("pareto")), key=lambda p: p["latency_ms_median"])
        axes.plot([p["latency_ms_median"] for p in front], [p["onset_f1"] for p in front], "-o",
                  color=dots.get_facecolor()[0][:3], label=f"{name} (Pareto front)")  # fmt: skip
    axes.set_xlabel("note-on latency, median over matched notes (ms, stream time)")
    axes.set_ylabel("onset F1 (mean over pieces)")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def indented_json(value) -> str:  # noqa: ANN001
    """JSON indented by 2, with every list of numbers on one line (the tracker's per-pitch lead tables)."""
    text = json.dumps(value, indent=2)
    return re.sub(r"\[\s+([-0-9.eE,\s]+?)\s+\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", text)


def write_outputs(results: list[dict], prefix: Path) -> list[Path]:
    """PREFIX.json (every result), and for sweeps PREFIX.md (the Pareto fronts) and PREFIX.png (the plot)."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    written = [prefix.with_suffix(".json")]
    written[0].write_text(indented_json(results if len(results) > 1 else results[0]) + "\n")
    swept = [r for r in results if "sweep" in r]
    if swept:
        prefix.with_suffix(".md").write_text("\n".join(sweep_markdown(r) for r in swept))
        plot_sweeps(swept, prefix.with_suffix(".png"))
        written += [prefix.with_suffix(".md"), prefix.with_suffix(".png")]
    return written


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/rtamt/model-outputs (~/.cache by default)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rtamt" / "model-outputs"


def bench_command(data_dirs: list[Path], model_dir: Path | None, mode: str, do_sweep: bool, jack: bool,
                  cache_dir: Path | None, out: Path | None, progress: Callable[[str], None]) -> list[dict]:  # fmt: skip
    """``rtamt bench latency --data DIR...``: one result per folder, written under ``out`` when given."""
    results = [bench_folder(d, model_dir, mode, cache_dir, do_sweep, jack, progress) for d in data_dirs]
    if out is not None:
        for path in write_outputs(results, out):
            progress(f"wrote {path}")
    return results
