"""Accuracy and latency of the streaming chain on folders in the BACH10 layout (mix.flac + notes.csv)
and on synthetic test shards. Metrics: mir_eval note onset F1 (50 ms), with offsets (ratio 0.2), frame
F1 (mir_eval.multipitch on a 10 ms grid), and stream-time note-on latency of matched notes."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from rtamt.audio import probe, read_all, read_blocks
from rtamt.constants import HOP_S, MIDI_MIN, SAMPLE_RATE, pitch_to_hz
from rtamt.pipeline import Transcriber, build_transcriber
from rtamt.tracker import NoteEvent, events_to_notes

ONSET_TOLERANCE_S = 0.05
FRAME_GRID_S = 0.01


def _mir_eval():
    try:
        import mir_eval
    except ImportError as err:
        raise SystemExit("rtamt eval needs mir_eval: pip install 'rtamt[test]'") from err
    return mir_eval


def read_notes_csv(path: str | Path) -> list[tuple[float, float, int, str]]:
    """(onset_s, offset_s, midi, instrument) rows of a notes.csv."""
    with open(path) as handle:
        return [(float(r["onset_s"]), float(r["offset_s"]), int(round(float(r["midi"]))), r["instrument"])
                for r in csv.DictReader(handle)]  # fmt: skip


def notes_by_instrument(path: str | Path) -> dict[str, list[tuple[float, float, int]]]:
    """A notes.csv's (onset_s, offset_s, midi) notes per instrument, as separation_metrics takes them."""
    reference: dict[str, list[tuple[float, float, int]]] = {}
    for on, off, midi, instrument in read_notes_csv(path):
        reference.setdefault(instrument, []).append((on, off, midi))
    return reference


def _arrays(notes: Iterable[tuple]) -> tuple[np.ndarray, np.ndarray]:
    rows = list(notes)
    if not rows:
        return np.zeros((0, 2)), np.zeros(0)
    intervals = np.array([[r[0], max(r[1], r[0] + 1e-3)] for r in rows])
    return intervals, pitch_to_hz(np.array([r[2] for r in rows], dtype=float))


def _frames(intervals: np.ndarray, freqs: np.ndarray, end_s: float) -> tuple[np.ndarray, list[np.ndarray]]:
    times = np.arange(0.0, end_s, FRAME_GRID_S)
    active: list[list[float]] = [[] for _ in times]
    for (on, off), f in zip(intervals, freqs):
        for k in range(int(np.ceil(on / FRAME_GRID_S)), min(int(np.ceil(off / FRAME_GRID_S)), len(times))):
            active[k].append(f)
    return times, [np.array(a) for a in active]


def note_metrics(reference: list[tuple], estimate: list[tuple], onset_tolerance: float = ONSET_TOLERANCE_S,
                 frames: bool = True) -> dict:  # fmt: skip
    """Onset-only, with-offset and (unless ``frames`` is false) frame precision/recall/F1 of estimate
    against reference notes."""
    mir_eval = _mir_eval()
    ref_i, ref_p = _arrays(reference)
    est_i, est_p = _arrays(estimate)
    result: dict = {"notes_ref": len(ref_p), "notes_est": len(est_p)}
    if len(ref_p) and len(est_p):
        p, r, f, _ = mir_eval.transcription.precision_recall_f1_overlap(
            ref_i, ref_p, est_i, est_p, onset_tolerance=onset_tolerance, offset_ratio=None)  # fmt: skip
        _, _, f2, _ = mir_eval.transcription.precision_recall_f1_overlap(
            ref_i, ref_p, est_i, est_p, onset_tolerance=onset_tolerance, offset_ratio=0.2)  # fmt: skip
    else:
        p = r = f = f2 = 0.0
    result.update(onset_p=p, onset_r=r, onset_f1=f, offset_f1=f2)
    if not frames:
        return {k: (round(float(v), 4) if isinstance(v, float) else v) for k, v in result.items()}
    end = max([0.0] + [i[1] for i in ref_i] + [i[1] for i in est_i]) + 0.1
    ref_t, ref_f = _frames(ref_i, ref_p, end)
    est_t, est_f = _frames(est_i, est_p, end)
    scores = mir_eval.multipitch.evaluate(ref_t, ref_f, est_t, est_f)
    p3, r3 = scores["Precision"], scores["Recall"]
    result["frame_f1"] = 2 * p3 * r3 / (p3 + r3) if p3 + r3 > 0 else 0.0
    return {k: (round(float(v), 4) if isinstance(v, float) else v) for k, v in result.items()}


def matched_notes(reference: list[tuple], estimate: list[tuple]) -> list[tuple[int, int]]:
    """(reference index, estimate index) of every pair of notes (onset_s, offset_s, midi, ...) matched by
    onset and pitch (mir_eval, 50 ms), one-to-one."""
    if not reference or not estimate:
        return []
    ref_i, ref_p = _arrays(reference)
    est_i, est_p = _arrays(estimate)
    return list(_mir_eval().transcription.match_notes(ref_i, ref_p, est_i, est_p, onset_tolerance=ONSET_TOLERANCE_S,
                                                      offset_ratio=None))  # fmt: skip


def matched_note_ons(reference: list[tuple], events: list[NoteEvent]) -> list[tuple[int, NoteEvent]]:
    """(reference index, note-on event) of every reference note matched by onset and pitch (mir_eval,
    50 ms), one-to-one."""
    ons = [e for e in events if e.on]
    return [(i, ons[j]) for i, j in matched_notes(reference, [(e.time_s, e.time_s + 0.1, e.pitch) for e in ons])]


def note_on_latency_s(on: NoteEvent, onset_s: float, emit_delay_s: float) -> float:
    """Stream-time latency of one note-on: when it left the chain minus the true onset. A note-on decided
    at tracker frame d leaves once audio up to frame d + backbone look-ahead has arrived, plus the
    resampler's delay (``emit_delay_s``)."""
    return on.decided * HOP_S + emit_delay_s - onset_s


def onset_latencies(reference: list[tuple], events: list[NoteEvent], emit_delay_s: float) -> np.ndarray:
    """Stream-time note-on latency (:func:`note_on_latency_s`) of each matched note."""
    return np.array([note_on_latency_s(on, reference[i][0], emit_delay_s) for i, on in matched_note_ons(reference, events)])


def onset_peaks(probs: np.ndarray, reference: list[tuple], near_frames: int = 4) -> list[float]:
    """For each reference note, the onset head's highest probability at its pitch within ``near_frames``
    frames of its onset (``probs``: the backbone's (n, 2, 84) outputs)."""
    peaks = []
    for onset_s, _, midi in reference:
        frame = int(round(onset_s / HOP_S))
        window = probs[max(0, frame - near_frames) : frame + near_frames + 1, 0, int(midi) - MIDI_MIN]
        peaks.append(float(window.max()) if len(window) else 0.0)
    return peaks


def onset_peak_summary(peaks: list[float]) -> dict:
    """Percentiles of :func:`onset_peaks` and the share of notes over each threshold."""
    values = np.array(peaks)
    return {"notes": len(values),
            "onset_probability_at_true_onsets": {f"p{q}": round(float(np.percentile(values, q)), 3) for q in (10, 25, 50, 75, 90)},
            "share_above": {str(t): round(float(np.mean(values > t)), 3) for t in (0.1, 0.2, 0.3, 0.4, 0.5)}}  # fmt: skip


def run_stream(transcriber: Transcriber, blocks: Iterable[np.ndarray]) -> tuple[list[NoteEvent], float]:
    """Feed the blocks through the chain; return the events and the processing time."""
    start = time.perf_counter()
    events = transcriber.chain.run(blocks)
    return events, time.perf_counter() - start


def evaluate_piece(transcriber: Transcriber, blocks: Iterable[np.ndarray], reference: list[tuple],
                   duration_s: float) -> dict:  # fmt: skip
    transcriber.chain.reset()
    events, seconds = run_stream(transcriber, blocks)
    notes = events_to_notes(events)
    result = note_metrics(reference, notes)
    latency = onset_latencies(reference, events, transcriber.emit_delay_s)
    result["latency_ms_median"] = round(float(np.median(latency)) * 1000, 1) if len(latency) else None
    result["latency_ms_p95"] = round(float(np.percentile(latency, 95)) * 1000, 1) if len(latency) else None
    result["real_time_factor"] = round(seconds / duration_s, 4)
    result["channels"] = len({e.timbre for e in events if e.on})  # K unknown: channels the clusterer opened
    result["_latencies"] = latency
    result["_events"] = events
    return result


def evaluate_folder(data_dir: Path, transcriber: Transcriber, progress: Callable[[str], None] = print,
                    plot_dir: Path | None = None) -> dict:  # fmt: skip
    """Every sub-folder with mix.flac and notes.csv (BACH10 layout); with ``plot_dir``, a PNG per piece of
    the reference against rtamt's notes."""
    pieces = sorted(p for p in Path(data_dir).iterdir() if (p / "mix.flac").exists() and (p / "notes.csv").exists())
    if not pieces:
        raise SystemExit(f"{data_dir}: no folders with mix.flac and notes.csv")
    results = {}
    for piece in pieces:
        info = probe(piece / "mix.flac")
        transcriber.start(info.samplerate)
        reference = [(on, off, midi) for on, off, midi, _ in read_notes_csv(piece / "notes.csv")]
        results[piece.name] = evaluate_piece(transcriber, read_blocks(piece / "mix.flac", 4096), reference,
                                             info.duration_s)  # fmt: skip
        events = results[piece.name].pop("_events")
        if plot_dir is not None:
            from rtamt.plot import plot_comparison

            Path(plot_dir).mkdir(parents=True, exist_ok=True)
            plot_comparison(reference, events, Path(plot_dir) / f"{piece.name}.png",
                            f"{piece.name}: onset F1 {results[piece.name]['onset_f1']:.3f}")  # fmt: skip
        progress(f"{piece.name}: onset F1 {results[piece.name]['onset_f1']:.3f}")
    return summarise(results)


def evaluate_shards(split_dir: Path, transcriber: Transcriber, limit: int | None = None,
                    progress: Callable[[str], None] = print) -> dict:  # fmt: skip
    """Examples of a synthetic split (audio at 22,050 Hz straight from the shards)."""
    from rtamt.training.dataset import ShardSet

    shards = ShardSet(split_dir)
    transcriber.start(SAMPLE_RATE)
    results = {}
    for index, example in enumerate(shards.examples[:limit]):
        audio = shards.segment(index, 0, example.length)
        blocks = [audio[i : i + 4096] for i in range(0, len(audio), 4096)]
        reference = [(float(n[0]), float(n[1]), int(n[2])) for n in example.notes]
        result = evaluate_piece(transcriber, blocks, reference, example.length / SAMPLE_RATE)
        slots = sorted({int(n[4]) for n in example.notes})
        if transcriber.assigner is not None and len(slots) >= 2:
            by_slot = {str(k): [(float(n[0]), float(n[1]), int(n[2])) for n in example.notes if int(n[4]) == k] for k in slots}
            result["separation"] = separation_metrics(by_slot, result.pop("_events"))
        result.pop("_events", None)
        results[f"example-{index:04d}"] = result
        if index % 10 == 0:
            progress(f"example {index}: onset F1 {results[f'example-{index:04d}']['onset_f1']:.3f}")
    return summarise(results)


STEMS = ("violin", "clarinet", "saxophone", "bassoon")


def separation_metrics(reference: dict[str, list[tuple]], events: list[NoteEvent]) -> dict:
    """Match channels to instruments one-to-one (Hungarian) to maximise the summed onset F1; average over
    the K instruments (an instrument left without a channel scores 0)."""
    from scipy.optimize import linear_sum_assignment

    by_channel: dict[int, list[NoteEvent]] = {}
    for event in events:
        by_channel.setdefault(event.timbre, []).append(event)
    channels = sorted(by_channel)
    instruments = sorted(reference)
    scores = np.zeros((len(channels), len(instruments)))
    for a, channel in enumerate(channels):
        notes = events_to_notes(by_channel[channel])
        for b, name in enumerate(instruments):
            scores[a, b] = note_metrics(reference[name], notes, frames=False)["onset_f1"] if notes and reference[name] else 0.0
    rows, cols = linear_sum_assignment(-scores) if len(channels) else ([], [])
    return {"separation_f": round(float(scores[rows, cols].sum() / len(instruments)), 4), "channels": len(channels),
            "k": len(instruments)}  # fmt: skip


def evaluate_separation(data_dir: Path, refine_with_k: bool = True, sizes: tuple[int, ...] = (2, 3, 4),
                        progress: Callable[[str], None] = print, mode: str = "accurate",
                        model_dir: Path | None = None, sustain: bool = True,
                        shifts_ms: tuple[float, ...] = (0.0,)) -> dict:  # fmt: skip
    """Every 2-, 3- and 4-instrument combination of each piece's stems (sums of the stem files), online
    (K unknown), refined with as many timbres as the online clusterer found (K still unknown: what
    ``transcribe --refine`` gives) and refined with K given; separation F, channels spawned against K.
    Models from ``model_dir`` (default: the shipped ones).

    Every mix runs once per delay in ``shifts_ms`` (silence in front, the labels moved alike; by default
    once, undelayed): the music is unchanged, only its alignment to the analysis frames moves, so the
    spread of the figures over the shifts shows how much of a difference between two models or settings
    is that alignment alone. The summary then pools every shift and adds the online figure per shift."""
    from itertools import combinations, product

    from rtamt.api import refined_events

    pieces = sorted(p for p in Path(data_dir).iterdir() if all((p / f"{s}.flac").exists() for s in STEMS))
    if not pieces:
        stems = ", ".join(f"{s}.flac" for s in STEMS)
        raise SystemExit(f"{data_dir}: no folders with the stem files {stems}")
    rows = []
    transcriber = build_transcriber(model_dir=model_dir, mode=mode, sustain=sustain)
    for piece in pieces:
        stems = {name: read_all(piece / f"{name}.flac") for name in STEMS}
        notes = read_notes_csv(piece / "notes.csv")
        for size in sizes:
            for combo, shift_ms in product(combinations(STEMS, size), shifts_ms):
                rate = stems[combo[0]][1]
                pad = int(round(shift_ms * rate / 1000))
                mix = np.concatenate([np.zeros(pad), np.sum([stems[name][0] for name in combo], axis=0)]).astype(np.float32)
                transcriber.start(rate)
                events = transcriber.chain.run([mix[i : i + 4096] for i in range(0, len(mix), 4096)])
                delay = pad / rate
                reference = {name: [(on + delay, off + delay, m) for on, off, m, inst in notes if inst == name]
                             for name in combo}  # fmt: skip
                online = separation_metrics(reference, events)
                row = {"piece": piece.name, "mix": "+".join(combo), "shift_ms": shift_ms, "k": size, "online": online,
                       "onset_f1_all": note_metrics([n for r in reference.values() for n in r], events_to_notes(events))["onset_f1"]}  # fmt: skip
                if refine_with_k and transcriber.assigner is not None:
                    completed, found = transcriber.assigner.completed, transcriber.assigner.timbres_found
                    row["timbres_found"] = found
                    row["refined_found"] = separation_metrics(reference, refined_events(completed, found))
                    row["refined_k"] = separation_metrics(reference, refined_events(completed, size))
                rows.append(row)
                shifted = f" delayed {shift_ms:g} ms" if shift_ms else ""
                progress(f"{piece.name} {row['mix']}{shifted}: online F {online['separation_f']:.3f} "
                         f"({online['channels']} channels for {size})")  # fmt: skip
    summary = {}
    for size in sizes:
        mine = [r for r in rows if r["k"] == size]
        if not mine:
            continue
        entry = {
            "mixes": len(mine),
            "online_separation_f": round(float(np.mean([r["online"]["separation_f"] for r in mine])), 4),
            "channels_equal_k": round(float(np.mean([r["online"]["channels"] == size for r in mine])), 4),
            "channels_mean": round(float(np.mean([r["online"]["channels"] for r in mine])), 2),
            "onset_f1_all": round(float(np.mean([r["onset_f1_all"] for r in mine])), 4),
        }
        for key in ("refined_found", "refined_k"):
            if all(key in r for r in mine):
                entry[f"{key}_separation_f"] = round(float(np.mean([r[key]["separation_f"] for r in mine])), 4)
        if len(shifts_ms) > 1:
            entry["online_separation_f_by_shift_ms"] = {
                f"{shift:g}": round(float(np.mean([r["online"]["separation_f"] for r in mine if r["shift_ms"] == shift])), 4)
                for shift in shifts_ms}  # fmt: skip
        summary[str(size)] = entry
    summary["channels_equal_k_all"] = round(float(np.mean([r["online"]["channels"] == r["k"] for r in rows])), 4)
    return {"by_size": summary, "mixes": rows}


def summarise(results: dict) -> dict:
    """Mean of each metric over pieces, pooled latency percentiles, and the per-piece rows."""
    keys = ["onset_p", "onset_r", "onset_f1", "offset_f1", "frame_f1", "real_time_factor"]
    latencies = np.concatenate([r.pop("_latencies") for r in results.values()])
    mean = {k: round(float(np.mean([r[k] for r in results.values()])), 4) for k in keys}
    mean["channels_mean"] = round(float(np.mean([r["channels"] for r in results.values()])), 2)
    separated = [r["separation"] for r in results.values() if "separation" in r]
    if separated:
        mean["separation_f"] = round(float(np.mean([r["separation_f"] for r in separated])), 4)
        mean["channels_equal_k"] = round(float(np.mean([r["channels"] == r["k"] for r in separated])), 4)
        mean["separation_mixes"] = len(separated)
    if len(latencies):
        mean["latency_ms_median"] = round(float(np.median(latencies)) * 1000, 1)
        mean["latency_ms_p95"] = round(float(np.percentile(latencies, 95)) * 1000, 1)
    return {"mean": mean, "pieces": results}


