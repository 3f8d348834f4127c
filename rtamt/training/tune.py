"""Choose the note tracker's thresholds on the synthetic validation splits and store them in the model.

    python -m rtamt.training.tune --model models/backbone.onnx --workers 2 --write  # accurate
    python -m rtamt.training.tune --mode low-latency --max-latency-ms 45 --max-latency-p95-ms 100 --write  # live
    python -m rtamt.training.tune curve --limits 30 35 40 45 50 60 80 --workers 2 --write  # --latency-budget
    python -m rtamt.training.tune leads --write  # onset-time calibration of every stored setting
    python -m rtamt.training.tune stored --acoustics 0  # stored settings' figures, per octave, heard in rooms
    (the tracker's searches pool the first --limit examples of data/synth/valid and data/synth-live/valid;
    --cache FILE keeps the backbone's outputs for the next search of the same model, splits and limit;
    --acoustics SEED hears every example through a room drawn from the seed instead of dry)
    python -m rtamt.training.data build --out data/synth-valid2 --seed 1 --hours 0 --valid-hours 1 --test-hours 0
    python -m rtamt.training.tune clusters --data data/synth/valid data/synth-valid2/valid --limit 200 --workers 2 --write
    python -m rtamt.training.tune clusters --mode low-latency --max-decision-frames 2 \
        --data data/synth/valid data/synth-valid2/valid --limit 200 --workers 2 --write

The backbone runs once per example; the tracker is then replayed with each candidate setting (coordinate
search, one parameter at a time, maximising mean note onset F1, ties broken by with-offset F1). With
``--max-latency-ms`` (``--max-latency-p95-ms``) a setting only counts if the median (95th percentile)
note-on latency of its matched notes (stream time from the true onset to the note-on leaving the chain,
model look-ahead included) stays within the limit.
The clusterer search replays the tracker's notes and scores mixes of 2-5 instruments (a second
validation split of the same held-out timbres, built with another seed, makes 152 mixes).
Only validation splits are used: the test splits, BACH10 and maps-dev never influence the settings.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import product
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rtamt.backbone import Backbone
from rtamt.chain import Chain
from rtamt.constants import HOP_S, MIDI_MIN, N_PITCHES, SAMPLE_RATE
from rtamt.evaluate import note_metrics, onset_latencies, onset_peak_summary, onset_peaks
from rtamt.frontend import model_analysis_stages
from rtamt.pipeline import MODES, settings_key
from rtamt.tracker import LEAD_FIELDS, NoteEvent, NoteTracker, TrackedBlock, TrackerConfig, events_to_notes, track_whole
from rtamt.training.export import write_metadata
from rtamt.watchdog import default_stop_signals

if TYPE_CHECKING:
    from rtamt.sustain import SustainStage

SEARCH: dict[str, list] = {
    "onset_threshold": [0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5],
    "frame_threshold": [0.1, 0.15, 0.2, 0.3, 0.4, 0.5],
    "off_frames": [1, 2, 3, 5, 8],
    "sustain_threshold": [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.01],
    "sustain_frames": [2, 3, 4, 5, 6, 8, 16],
    "min_frames": [1, 2, 4, 6],
    "backdate_frames": [0, 2, 4, 8, 12, 16],
    "onset_rise": [False, True],
    "rise_backdate_frames": [0, 1, 2],
    "restrike_threshold": [None, 0.1, 0.15, 0.2, 0.3, 0.4],
    "bump_threshold": [None, 0.05, 0.1, 0.15, 0.2, 0.3],
    "bump_sustain_threshold": [0.15, 0.2, 0.25, 0.3, 0.35, 0.4],
}

# Under a latency limit the search starts from the best setting of this grid over the parameters that
# decide how soon a note starts.
LATENCY_GRID: dict[str, list] = {
    "onset_rise": [False, True],
    "sustain_frames": [1, 2, 3, 4, 6],
    "onset_threshold": [0.2, 0.3, 0.4, 0.5],
    "sustain_threshold": [0.3, 0.5, 0.7],
}

Data = list[tuple[np.ndarray, list[tuple]]]

# The tracker's validation: unseen timbres of the default material, and of the material live users play
# (pedalled piano, guitar, voice; `python -m rtamt.training.data build --profile live ...`).
VALIDATION = [Path("data/synth/valid"), Path("data/synth-live/valid")]


def recorded(audio: np.ndarray, acoustics: int | None, split_dir: Path, index: int) -> np.ndarray:
    """``audio`` as a microphone in a room would hear it (augment.RECORDING), drawn from the seed ``acoustics``,
    the split and the example's index; unchanged when ``acoustics`` is None."""
    if acoustics is None:
        return audio
    from zlib import crc32

    from rtamt.training.augment import RECORDING, augment

    rng = np.random.default_rng([acoustics, crc32(str(split_dir).encode()), index])
    return augment(audio, rng, RECORDING)[0]  # no detuning: the time scale is 1


def probabilities(model: Path, split_dir: Path, limit: int, acoustics: int | None = None) -> Data:
    """Backbone outputs (n, 2, 84) and reference notes of the first ``limit`` examples (heard through a room,
    see :func:`recorded`, when ``acoustics`` is a seed)."""
    from rtamt.training.dataset import ShardSet

    backbone = Backbone(model)
    chain = Chain([*model_analysis_stages(backbone.meta), backbone])
    shards = ShardSet(split_dir)
    out = []
    for index, example in enumerate(shards.examples[:limit]):
        chain.reset()
        probs = chain.run([recorded(shards.segment(index, 0, example.length), acoustics, split_dir, index)])
        out.append((probs, [(float(n[0]), float(n[1]), int(n[2])) for n in example.notes]))
        print(f"\rbackbone {index + 1}/{min(limit, len(shards.examples))}", end="", file=sys.stderr)
    print(file=sys.stderr)
    return out


def acoustics_argument(parser: argparse.ArgumentParser) -> None:
    """--acoustics SEED: the validation examples heard through rooms (:func:`recorded`) instead of dry."""
    parser.add_argument("--acoustics", type=int, default=None, metavar="SEED",
                        help="hear every example through a room, with colour and noise, drawn from this seed "
                             "(augment.RECORDING), instead of dry")  # fmt: skip


def validation_arguments(parser: argparse.ArgumentParser) -> None:
    """--model, --data, --limit, --cache and --acoustics: the backbone and the validation examples a tracker
    search replays, how they are heard, and where their outputs are kept."""
    parser.add_argument("--model", type=Path, default=Path("models/backbone.onnx"))
    parser.add_argument("--data", type=Path, nargs="+", default=VALIDATION,
                        help="validation splits, their examples pooled")
    parser.add_argument("--limit", type=int, default=40, help="validation examples to use from each split")
    parser.add_argument("--cache", type=Path, default=None,
                        help="keep the backbone's outputs in this file and reuse them (same model, data and limit)")
    acoustics_argument(parser)


def graph_digest(model: Path) -> str:
    """Hash of an ONNX model's graph: it leaves out the settings ``--write`` stores in the metadata."""
    import hashlib

    import onnx

    return hashlib.sha256(onnx.load(str(model)).graph.SerializeToString()).hexdigest()


def cached(cache: Path | None, key: tuple, compute: Callable[[], list]) -> list:
    """``compute()``, kept in the pickle file ``cache`` under ``key`` and reused while the key is the same."""
    import pickle

    if cache is not None and cache.exists():
        stored_key, data = pickle.loads(cache.read_bytes())
        if stored_key == key:
            return data
    data = compute()
    if cache is not None:
        cache.write_bytes(pickle.dumps((key, data)))
    return data


def cached_probabilities(model: Path, splits: list[Path], limit: int, cache: Path | None,
                         acoustics: int | None = None) -> Data:  # fmt: skip
    """:func:`probabilities` of the first ``limit`` examples of each split, pooled, kept in ``cache`` (keyed
    by the model's graph, the splits, the limit and the acoustics seed)."""
    key = (graph_digest(model), [str(s) for s in splits], limit) + (() if acoustics is None else (acoustics,))
    return cached(cache, key, lambda: [example for split in splits
                                       for example in probabilities(model, split, limit, acoustics)])  # fmt: skip


Score = tuple[float, float, float, float]
SCORE_NAMES = ("onset_f1", "offset_f1", "latency_ms_median", "latency_ms_p95")  # the fields of a Score


def tracked(config: TrackerConfig, data: Data) -> list[list[NoteEvent]]:
    """The tracker's events on each example's model outputs, the stream's end included."""
    tracker = NoteTracker(config)
    events = []
    for probs, _ in data:
        tracker.reset()
        events.append(tracker.process(probs) + tracker.flush())
    return events


def score(config: TrackerConfig, data: Data, lookahead: int) -> Score:
    """Mean onset F1, mean with-offset F1, and the median and 95th percentile note-on latency (ms) of
    matched notes."""
    return score_events(tracked(config, data), data, lookahead)


def score_events(tracked_events: list[list[NoteEvent]], data: Data, lookahead: int) -> Score:
    """:func:`score` of events already tracked (:func:`tracked`) on ``data``."""
    onset, offset, latency = [], [], []
    for events, (_, reference) in zip(tracked_events, data):
        metrics = note_metrics(reference, events_to_notes(events), frames=False)
        onset.append(metrics["onset_f1"])
        offset.append(metrics["offset_f1"])
        latency.append(onset_latencies(reference, events, lookahead * HOP_S))
    latencies = np.concatenate(latency)
    median, p95 = (np.percentile(latencies, [50, 95]) * 1000) if len(latencies) else (0.0, 0.0)
    return float(np.mean(onset)), float(np.mean(offset)), float(median), float(p95)


_SCORED: list = []  # (data, lookahead) for the worker processes, set before they fork


@contextmanager
def forked_pool(workers: int, shared: list, items: list) -> Iterator:
    """A pool of ``workers`` forked processes (None for one) that see the module list ``shared`` filled
    with ``items``; the pool ends and ``shared`` is emptied on exit, also on errors."""
    from multiprocessing import get_context

    shared[:] = items
    pool = get_context("fork").Pool(workers, default_stop_signals) if workers > 1 else None
    try:
        yield pool
    finally:
        if pool:
            pool.terminate()
            pool.join()
        shared.clear()


def _score_job(config: TrackerConfig) -> Score:
    data, lookahead = _SCORED[0]
    return score(config, data, lookahead)


def latency_grid(start: TrackerConfig | None) -> list[TrackerConfig]:
    """``start`` with every combination of LATENCY_GRID's values."""
    base = start or TrackerConfig()
    return [replace(base, **dict(zip(LATENCY_GRID, values))) for values in product(*LATENCY_GRID.values())]


def search(data: Data, lookahead: int, rounds: int = 2, max_latency_ms: float | None = None,
           start: TrackerConfig | None = None, max_p95_ms: float | None = None, workers: int = 1,
           grid: bool = True, objective: str = "onset") -> tuple[TrackerConfig, Score]:  # fmt: skip
    """Coordinate search from ``start``; a setting over a latency limit (median, 95th percentile) never wins.
    Under a limit the walk starts from the best point of the latency grid (unless ``grid`` is false).
    ``objective`` "onset" ranks by onset F1 (with-offset F1 breaks ties), "onset+offset" by their sum.
    ``workers`` processes score the candidates of a step side by side (same result as one)."""
    def key(result: Score) -> tuple[bool, float, float]:
        within = (max_latency_ms is None or result[2] <= max_latency_ms) and (max_p95_ms is None or result[3] <= max_p95_ms)
        return (within, result[0] + result[1], result[0]) if objective == "onset+offset" else (within, result[0], result[1])

    with forked_pool(workers, _SCORED, [(data, lookahead)]) as pool:
        scores = pool.map if pool else lambda f, jobs: [f(job) for job in jobs]
        candidates = [start or TrackerConfig()]
        if grid and (max_latency_ms is not None or max_p95_ms is not None):  # a greedy walk from outside the limit gets stuck
            candidates = latency_grid(start)
        best, best_score = max(zip(candidates, scores(_score_job, candidates)), key=lambda scored: key(scored[1]))
        for _ in range(rounds):
            for name, values in SEARCH.items():
                candidates = [replace(best, **{name: value}) for value in values]
                for candidate, result in zip(candidates, scores(_score_job, candidates)):
                    if key(result) > key(best_score):  # in order: the first of equals wins, as one by one
                        best, best_score = candidate, result
                print(f"{name}: best {getattr(best, name)} -> onset F1 {best_score[0]:.4f}, "
                      f"latency {best_score[2]:.0f} / p95 {best_score[3]:.0f} ms", file=sys.stderr)  # fmt: skip
    return best, best_score


def main(argv: list[str] | None = None) -> int:
    """Tracker thresholds (default) or, with the first argument ``clusters``, the clusterer's settings."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["clusters"]:
        return main_clusters(argv[1:])
    if argv[:1] == ["curve"]:
        return main_curve(argv[1:])
    if argv[:1] == ["leads"]:
        return main_leads(argv[1:])
    if argv[:1] == ["stored"]:
        return main_stored(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m rtamt.training.tune", description=__doc__.split("\n")[0])
    validation_arguments(parser)
    parser.add_argument("--rounds", type=int, default=2, help="passes of the coordinate search")
    parser.add_argument("--max-latency-ms", type=float, default=None,
                        help="only settings whose median note-on latency stays within this count")
    parser.add_argument("--max-latency-p95-ms", type=float, default=None,
                        help="only settings whose 95th-percentile note-on latency stays within this count")
    parser.add_argument("--mode", choices=MODES, default="accurate",
                        help="store as the accurate (files) or the low-latency (live) settings")
    parser.add_argument("--write", action="store_true", help="store the chosen thresholds in the model file")
    parser.add_argument("--workers", type=int, default=1, help="processes scoring candidate settings")
    parser.add_argument("--objective", choices=("onset", "onset+offset"), default="onset",
                        help="rank settings by onset F1, or by onset F1 plus with-offset F1")  # fmt: skip
    args = parser.parse_args(argv)
    backbone = Backbone(args.model)
    key = "tracker_low_latency" if args.mode == "low-latency" else "tracker"
    start = TrackerConfig.from_json(backbone.meta["tracker"]) if "tracker" in backbone.meta else None
    data = cached_probabilities(args.model, args.data, args.limit, args.cache, args.acoustics)
    best, (onset, offset, latency, p95) = search(data, backbone.lookahead, args.rounds, args.max_latency_ms, start,
                                                 args.max_latency_p95_ms, args.workers, objective=args.objective)  # fmt: skip
    provenance = {"split": " ".join(map(str, args.data)), "examples": len(data), "onset_f1": round(onset, 4),
                  "offset_f1": round(offset, 4), "latency_ms_median": round(latency, 1),
                  "latency_ms_p95": round(p95, 1), "max_latency_ms": args.max_latency_ms,
                  "max_latency_p95_ms": args.max_latency_p95_ms, "rate": SAMPLE_RATE, "objective": args.objective,
                  "acoustics": args.acoustics}  # fmt: skip
    print(json.dumps({key: best.__dict__, **provenance}, indent=2))
    if args.write:
        write_metadata(args.model, key, best.to_json())
        write_metadata(args.model, f"{key}_provenance", json.dumps(provenance))
    return 0


def latency_by_octave(tracked_events: list[list[NoteEvent]], data: Data, lookahead: int) -> list[dict]:
    """Note-on latency of the matched notes per octave, pooled over the examples (as ``rtamt bench latency``
    reports it for recordings), from events already tracked (:func:`tracked`) on ``data``."""
    from rtamt.latency import by_octave, matched_latencies

    latency, pitches = [], []
    for events, (_, reference) in zip(tracked_events, data):
        seconds, pitch, _ = matched_latencies(reference, events, lookahead * HOP_S)
        latency.append(seconds)
        pitches.append(pitch)
    return by_octave(np.concatenate(latency), np.concatenate(pitches))


def main_stored(argv: list[str]) -> int:
    """python -m rtamt.training.tune stored --model X.onnx --cache F: the score of each tracker setting the
    model stores (``accurate``, ``low-latency``) on the validation examples, without a search (how a
    candidate model is compared with the shipped one at the shipped settings) and of each point of its
    latency curve, with the note-on latency per octave and how strongly the onset head fires at the true
    onsets (as benchmarks/onset_diagnosis.py reports it for recordings)."""
    parser = argparse.ArgumentParser(prog="python -m rtamt.training.tune stored")
    validation_arguments(parser)
    args = parser.parse_args(argv)
    backbone = Backbone(args.model)
    data = cached_probabilities(args.model, args.data, args.limit, args.cache, args.acoustics)

    def figures(events: list[list[NoteEvent]]) -> dict:
        return stored_figures(dict(zip(SCORE_NAMES, score_events(events, data, backbone.lookahead))))

    report = {"model": str(args.model), "examples": len(data), "acoustics": args.acoustics,
              "onset_head": onset_peak_summary([peak for probs, reference in data for peak in onset_peaks(probs, reference)])}  # fmt: skip
    for mode in MODES:
        key = settings_key(backbone.meta, "tracker", mode)
        if key is None:
            continue
        events = tracked(TrackerConfig.from_json(backbone.meta[key]), data)  # replayed once for both
        report[mode] = {**figures(events), "by_octave": latency_by_octave(events, data, backbone.lookahead)}
    if "tracker_curve" in backbone.meta:  # the points `rtamt live --latency-budget` chooses from
        report["curve"] = [{"label": point["label"], **figures(tracked(TrackerConfig.from_json(json.dumps(point["tracker"])), data))}
                           for point in json.loads(backbone.meta["tracker_curve"])]  # fmt: skip
    print(json.dumps(report, indent=2))
    return 0


def trace_curve(data: Data, lookahead: int, limits: list[float], start: TrackerConfig | None = None,
                rounds: int = 1, workers: int = 1) -> list[dict]:  # fmt: skip
    """For each median note-on latency limit, the best point of the latency grid (scored once for every
    limit) within it, walked on by ``rounds`` of coordinate search under that limit; of those, the settings
    no other beats on both median latency and onset F1, fastest first (so onset F1 rises along the list)."""
    from dataclasses import asdict

    from rtamt.latency import pareto

    candidates = latency_grid(start)
    with forked_pool(workers, _SCORED, [(data, lookahead)]) as pool:
        scored = list(zip(candidates, (pool.map if pool else map)(_score_job, candidates)))
    points = []
    for limit in sorted(limits):
        fits = [(config, result) for config, result in scored if result[2] <= limit]
        if not fits:  # nothing in the grid within the limit
            continue
        best, result = max(fits, key=lambda fit: (fit[1][0], fit[1][1]))
        if rounds:
            best, result = search(data, lookahead, rounds, limit, best, None, workers, grid=False)
        onset, offset, median, p95 = result
        points.append({"label": f"median <= {limit:g} ms", "max_latency_ms": limit, "tracker": asdict(best),
                       "onset_f1": round(onset, 4), "offset_f1": round(offset, 4),
                       "latency_ms_median": round(median, 1), "latency_ms_p95": round(p95, 1)})  # fmt: skip
    return [points[i] for i in pareto(points)]


def main_curve(argv: list[str]) -> int:
    """python -m rtamt.training.tune curve --limits 30 40 50 60 80 --write: the latency-accuracy curve that
    ``rtamt live --latency-budget`` chooses from (metadata ``tracker_curve``)."""
    parser = argparse.ArgumentParser(prog="python -m rtamt.training.tune curve", description=main_curve.__doc__)
    validation_arguments(parser)
    parser.add_argument("--rounds", type=int, default=1, help="passes of each coordinate search")
    parser.add_argument("--limits", type=float, nargs="+", default=[30.0, 35.0, 40.0, 45.0, 50.0, 60.0, 80.0],
                        help="median note-on latency limits (ms), one search each")  # fmt: skip
    parser.add_argument("--workers", type=int, default=1, help="processes scoring candidate settings")
    parser.add_argument("--write", action="store_true", help="store the curve in the model file")
    args = parser.parse_args(argv)
    backbone = Backbone(args.model)
    start = TrackerConfig.from_json(backbone.meta["tracker"]) if "tracker" in backbone.meta else None
    data = cached_probabilities(args.model, args.data, args.limit, args.cache, args.acoustics)
    curve = trace_curve(data, backbone.lookahead, args.limits, start, args.rounds, args.workers)
    provenance = {"split": " ".join(map(str, args.data)), "examples": len(data), "limits_ms": args.limits, "rate": SAMPLE_RATE,
                  "acoustics": args.acoustics}
    print(json.dumps({"tracker_curve": curve, **provenance}, indent=2))
    if args.write:
        write_metadata(args.model, "tracker_curve", json.dumps(curve))
        write_metadata(args.model, "tracker_curve_provenance", json.dumps(provenance))
    return 0


def matches_per_pitch(config: TrackerConfig, data: Data) -> np.ndarray:
    """Reference notes matched by onset and pitch (50 ms), per pitch index, over all examples."""
    from rtamt.evaluate import matched_note_ons

    counts = np.zeros(N_PITCHES)
    tracker = NoteTracker(config)
    for probs, reference in data:
        tracker.reset()
        for index, _ in matched_note_ons(reference, tracker.process(probs) + tracker.flush()):
            counts[reference[index][2] - MIDI_MIN] += 1
    return counts


def fit_leads(config: TrackerConfig, data: Data, name: str, max_lead: int = 4, half_width: int = 6) -> TrackerConfig:
    """``config`` with its lead table ``name`` fitted: per pitch, the lead (frames, 0..``max_lead``) that
    matches the most reference notes of the pitches within ``half_width`` semitones of it. Matching pairs
    notes of one pitch only, and a lead moves no note of another pitch and changes no note count, so each
    pitch's choice maximises its neighbourhood's onset F1; the neighbourhood keeps the choice steady where
    a pitch has few notes (ties: the smaller lead). Pitches with no matched note in their neighbourhood
    take the nearest fitted pitch's lead."""
    counts = np.stack([matches_per_pitch(replace(config, **{name: (lead,) * N_PITCHES}), data)
                       for lead in range(max_lead + 1)])  # fmt: skip
    kernel = np.ones(2 * half_width + 1)
    smoothed = np.stack([np.convolve(row, kernel, mode="same") for row in counts])
    fitted = np.flatnonzero(smoothed.sum(axis=0) > 0)
    if not len(fitted):
        return replace(config, **{name: ()})
    best = np.argmax(smoothed, axis=0)
    nearest = fitted[np.argmin(np.abs(np.arange(N_PITCHES)[:, None] - fitted[None, :]), axis=1)]
    return replace(config, **{name: tuple(int(lead) for lead in best[nearest])})


def calibrate(config: TrackerConfig, data: Data, lookahead: int, max_lead: int) -> tuple[TrackerConfig, dict]:
    """``config`` with its lead tables fitted (sustained starts first: they are the later ones), and the
    validation figures without and with them. Tables ``config`` already has are kept where they score a
    higher onset F1 on ``data`` than the fitted ones, with-offset F1 breaking ties (the fit maximises each
    pitch's smoothed neighbourhood, not the total), so a calibration never lowers a stored setting's
    validation figure; ``kept`` says so."""
    before = replace(config, **{name: () for name in LEAD_FIELDS})
    fitted = before
    for name in reversed(LEAD_FIELDS):
        fitted = fit_leads(fitted, data, name, max_lead)
    def figures_of(candidate: TrackerConfig) -> dict[str, float]:
        return {k: round(v, 4) for k, v in zip(SCORE_NAMES, score(candidate, data, lookahead))}

    figures = {"without": figures_of(before), "with": figures_of(fitted), "kept": False}
    if config != before and config != fitted:
        stored = figures_of(config)
        if (stored["onset_f1"], stored["offset_f1"]) > (figures["with"]["onset_f1"], figures["with"]["offset_f1"]):
            figures.update({"fitted": figures["with"], "with": stored, "kept": True})
            return config, figures
    return fitted, figures


def stored_figures(figures: dict[str, float]) -> dict[str, float]:
    """Validation figures as the stored settings keep them: F1 to 4 decimals, latencies to 0.1 ms."""
    return {k: round(v, 1 if k.startswith("latency") else 4) for k, v in figures.items()}


def main_leads(argv: list[str]) -> int:
    """python -m rtamt.training.tune leads --write: the onset-time calibration (lead tables) of every
    stored tracker setting (accurate, low-latency and each point of the latency curve), fitted on the
    validation split; each setting's stored validation figures become those with the calibration."""
    from rtamt.latency import pareto

    parser = argparse.ArgumentParser(prog="python -m rtamt.training.tune leads", description=main_leads.__doc__)
    validation_arguments(parser)
    parser.add_argument("--max-lead", type=int, default=4, help="largest lead tried (frames)")
    parser.add_argument("--write", action="store_true", help="store the calibrated settings in the model file")
    args = parser.parse_args(argv)
    backbone = Backbone(args.model)
    data = cached_probabilities(args.model, args.data, args.limit, args.cache, args.acoustics)
    report, entries = {}, {}
    for key in ("tracker", "tracker_low_latency"):
        if key not in backbone.meta:
            continue
        config, figures = calibrate(TrackerConfig.from_json(backbone.meta[key]), data, backbone.lookahead, args.max_lead)
        provenance = json.loads(backbone.meta.get(f"{key}_provenance", "{}"))
        provenance.update(stored_figures(figures["with"]))
        provenance["onset_leads"] = {"split": " ".join(map(str, args.data)), "examples": len(data), "max_lead": args.max_lead,
                                     "acoustics": args.acoustics, **figures}
        entries[key], entries[f"{key}_provenance"] = config.to_json(), json.dumps(provenance)
        report[key] = figures
    if "tracker_curve" in backbone.meta:
        points = []
        for point in json.loads(backbone.meta["tracker_curve"]):
            config, figures = calibrate(TrackerConfig.from_json(json.dumps(point["tracker"])), data,
                                        backbone.lookahead, args.max_lead)  # fmt: skip
            points.append({**point, "tracker": json.loads(config.to_json()), **stored_figures(figures["with"])})
            report[point["label"]] = figures
        entries["tracker_curve"] = json.dumps([points[i] for i in pareto(points)])
    print(json.dumps(report, indent=1))
    if args.write:
        for key, value in entries.items():
            write_metadata(args.model, key, value)
    return 0


@dataclass(frozen=True)
class RecordedChain:
    """The note tracker, and the sustain stage if one is given, run once over one example as the chain runs
    them: the clusterer's input (frames, events, pedal) replayed for every clusterer setting the search
    tries."""

    tracker: TrackerConfig
    block: TrackedBlock

    @classmethod
    def record(cls, tracker: TrackerConfig, frames: np.ndarray, stage: SustainStage | None = None) -> RecordedChain:
        return cls(tracker, track_whole(frames, tracker, stage))


ClusterData = list[tuple[np.ndarray, dict[str, list[tuple]]]]


def model_frames(model_dir: Path, split_dirs: list[Path], limit: int, min_instruments: int = 1,
                 acoustics: int | None = None) -> ClusterData:  # fmt: skip
    """Backbone + timbre encoder outputs (n, 2 + D, 84) and per-instrument reference notes of the first
    ``limit`` examples with at least ``min_instruments`` instruments, taken from the splits in order (solo
    examples score whether one instrument stays on one channel); heard through a room (:func:`recorded`)
    when ``acoustics`` is a seed."""
    from rtamt.backbone import NoteModels, TimbreEncoder
    from rtamt.training.dataset import ShardSet

    backbone = Backbone(model_dir / "backbone.onnx")
    models = NoteModels(backbone, TimbreEncoder(model_dir / "timbre.onnx"))
    chain = Chain([*model_analysis_stages(backbone.meta), models])
    out = []
    for split_dir in split_dirs:
        if len(out) >= limit:
            break
        shards = ShardSet(split_dir)
        for index, example in enumerate(shards.examples):
            slots = sorted({int(n[4]) for n in example.notes})
            if len(out) >= limit:
                break
            if len(slots) < min_instruments:
                continue
            chain.reset()
            frames = chain.run([recorded(shards.segment(index, 0, example.length), acoustics, split_dir, index)])
            reference = {str(k): [(float(n[0]), float(n[1]), int(n[2])) for n in example.notes if int(n[4]) == k] for k in slots}
            out.append((frames, reference))
            print(f"\rmodels {len(out)}/{limit}", end="", file=sys.stderr)
    print(file=sys.stderr)
    return out


def cached_model_frames(model_dir: Path, split_dirs: list[Path], limit: int, min_instruments: int,
                        cache: Path | None, acoustics: int | None = None) -> ClusterData:  # fmt: skip
    """:func:`model_frames`, kept in ``cache`` (keyed by both models' graphs, the splits, the limit, the
    instrument minimum and the acoustics seed)."""
    digests = (graph_digest(model_dir / "backbone.onnx"), graph_digest(model_dir / "timbre.onnx"))
    key = (digests, [str(d) for d in split_dirs], limit, min_instruments) + (() if acoustics is None else (acoustics,))
    return cached(cache, key, lambda: model_frames(model_dir, split_dirs, limit, min_instruments, acoustics))


CLUSTER_SEARCH: dict[str, list] = {
    "join_threshold": [0.5, 0.6, 0.7, 0.8, 0.85, 0.9],
    "evidence": [1, 2, 3, 5, 8],
    "evidence_min_frames": [0, 8, 16, 24, 32, 48, 64],
    "merge_threshold": [0.8, 0.85, 0.9, 0.95, 1.01],
    "decision_frames": [1, 2, 3, 4, 6],
    "register_aware": [False, True],
    "pedal_join_threshold": [None, 0.5, 0.6, 0.7, 0.8],  # only with the sustain stage replayed (--sustain)
}

# The coordinate search starts from the best point of this grid: how close a note must be to join a
# cluster and how long novel notes must be to count as evidence for a new one act together.
CLUSTER_GRID: dict[str, list] = {
    "join_threshold": [0.7, 0.75, 0.8, 0.85, 0.9],
    "evidence_min_frames": [0, 16, 32, 48, 64],
}

_RECORDED: list[tuple[dict, RecordedChain]] = []  # set before the worker processes fork


def _mix_score(args: tuple) -> tuple[float, bool]:
    from rtamt.cluster import TimbreAssigner
    from rtamt.evaluate import separation_metrics

    config, index = args
    reference, recorded = _RECORDED[index]
    assigner = TimbreAssigner(recorded.tracker, config, tracked=True)
    events = assigner.process(recorded.block) + assigner.flush()
    result = separation_metrics(reference, events)
    return result["separation_f"], result["channels"] == result["k"]


def mean_over_counts(scores: list[tuple[int, float]]) -> float:
    """Mean of (instrument count, score) pairs over the mixes of each count, then over the counts (no count
    is favoured, as K is unknown)."""
    by_count: dict[int, list[float]] = {}
    for count, score in scores:
        by_count.setdefault(count, []).append(score)
    return float(np.mean([np.mean(v) for v in by_count.values()]))


def cluster_score(config, pool=None) -> tuple[float, float]:
    """Separation F and the share of mixes given as many channels as instruments, each averaged with
    :func:`mean_over_counts`."""
    jobs = [(config, index) for index in range(len(_RECORDED))]
    results = pool.map(_mix_score, jobs) if pool else [_mix_score(job) for job in jobs]
    counts = [len(reference) for reference, _ in _RECORDED]
    f = mean_over_counts([(k, f) for k, (f, _) in zip(counts, results)])
    exact = mean_over_counts([(k, float(e)) for k, (_, e) in zip(counts, results)])
    return f, exact


def recorded_inputs(data: ClusterData, tracker: TrackerConfig, sustain_path: Path | None = None) -> list[tuple]:
    """Each example's reference with its clusterer input recorded: the tracker's events, or with
    ``sustain_path`` the tracker's and the sustain stage's (the pedal, and notes ended at key releases), as
    the chain has them."""
    stage = None
    if sustain_path is not None:
        from rtamt.sustain import SustainModel, SustainStage

        stage = SustainStage(SustainModel(sustain_path))
    return [(reference, RecordedChain.record(tracker, frames, stage)) for frames, reference in data]


def score_clusterer(data: ClusterData, tracker: TrackerConfig, config, sustain_path: Path | None = None) -> tuple[float, float]:
    """:func:`cluster_score` of one clusterer setting on ``data``, its notes from ``tracker`` (the search's
    score, for a caller that changes the model frames: e.g. the embeddings, benchmarks/timbre_register.py)."""
    _RECORDED[:] = recorded_inputs(data, tracker, sustain_path)
    return cluster_score(config)


def search_clusters(data: ClusterData, tracker: TrackerConfig, rounds: int = 2, max_decision_frames: int | None = None,
                    workers: int = 1, stored=None, only: list[str] | None = None, sustain_path: Path | None = None):  # fmt: skip
    """Coordinate search maximising mean separation F plus the share of mixes given as many channels as
    instruments (separation F alone rewards spawning a channel for every odd note), from the best point of
    CLUSTER_GRID or the ``stored`` settings if they score higher (so a search never returns settings worse
    than those it would replace). With ``only`` it walks just those settings from the stored ones (no
    grid). Every candidate, the stored settings included, keeps its decision window within
    ``max_decision_frames``. The tracker (and with ``sustain_path`` the sustain stage after it) runs once per
    mix; ``workers`` processes score the mixes."""
    from rtamt.cluster import ClusterConfig

    if only and stored is None:
        raise ValueError("a search of only some settings starts from stored settings: none were given")

    def within_window(config: ClusterConfig) -> ClusterConfig:
        if max_decision_frames is None:
            return config
        return replace(config, decision_frames=min(config.decision_frames, max_decision_frames))

    stored = within_window(stored) if stored is not None else None
    recorded = recorded_inputs(data, tracker, sustain_path)
    with forked_pool(workers, _RECORDED, recorded) as pool:
        if only:
            best, best_score = stored, cluster_score(stored, pool)
        else:
            start = within_window(ClusterConfig())
            best, best_score = start, cluster_score(start, pool)
            if stored is not None:
                stored_score = cluster_score(stored, pool)
                print(f"stored: {stored} -> separation F {stored_score[0]:.4f}, channels = K {stored_score[1]:.2f}",
                      file=sys.stderr)  # fmt: skip
                if sum(stored_score) > sum(best_score):
                    best, best_score = stored, stored_score
            for values in product(*CLUSTER_GRID.values()):
                candidate = replace(start, **dict(zip(CLUSTER_GRID, values)))
                result = cluster_score(candidate, pool)
                if sum(result) > sum(best_score):
                    best, best_score = candidate, result
        print(f"{'stored' if only else 'grid'}: best {best} -> separation F {best_score[0]:.4f}, channels = K {best_score[1]:.2f}",
              file=sys.stderr)  # fmt: skip
        for _ in range(rounds):
            for name, values in CLUSTER_SEARCH.items():
                if only and name not in only:
                    continue
                for value in values:
                    if name == "decision_frames" and max_decision_frames is not None and value > max_decision_frames:
                        continue
                    candidate = replace(best, **{name: value})
                    result = cluster_score(candidate, pool)
                    if sum(result) > sum(best_score):  # separation F and channels = K weigh alike
                        best, best_score = candidate, result
                print(f"{name}: best {getattr(best, name)} -> separation F {best_score[0]:.4f}, "
                      f"channels = K {best_score[1]:.2f}", file=sys.stderr)  # fmt: skip
    return best, best_score


def main_clusters(argv: list[str] | None = None) -> int:
    """python -m rtamt.training.tune clusters --models models --data data/synth/valid --write"""
    from dataclasses import asdict

    from rtamt.backbone import TimbreEncoder
    from rtamt.cluster import ClusterConfig

    parser = argparse.ArgumentParser(prog="python -m rtamt.training.tune clusters")
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--data", type=Path, nargs="+", default=[Path("data/synth/valid")],
                        help="validation splits (e.g. data/synth/valid data/synth-valid2/valid)")
    parser.add_argument("--limit", type=int, default=30, help="examples to use")
    parser.add_argument("--min-instruments", type=int, default=1,
                        help="leave out examples with fewer instruments (sessions 1-8 used 2: no solos)")
    parser.add_argument("--workers", type=int, default=1, help="processes scoring the mixes")
    parser.add_argument("--mode", choices=MODES, default="accurate",
                        help="tune with that mode's tracker settings and store as that mode's clusterer")
    parser.add_argument("--max-decision-frames", type=int, default=None,
                        help="longest decision window allowed (the note-on waits for it)")
    parser.add_argument("--rounds", type=int, default=2, help="passes of the coordinate search after the grid")
    parser.add_argument("--only", nargs="+", choices=sorted(CLUSTER_SEARCH), default=None,
                        help="walk only these settings, from the stored ones (no grid)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="pickle file keeping the models' outputs on the examples between runs")
    acoustics_argument(parser)
    parser.add_argument("--sustain", action="store_true",
                        help="replay the sustain stage (models' sustain.onnx) between tracker and clusterer, as the chain does")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    backbone = Backbone(args.models / "backbone.onnx")
    tracker_key = settings_key(backbone.meta, "tracker", args.mode)
    tracker = TrackerConfig.from_json(backbone.meta[tracker_key]) if tracker_key else TrackerConfig()
    data = cached_model_frames(args.models, args.data, args.limit, args.min_instruments, args.cache, args.acoustics)
    key = "clusterer_low_latency" if args.mode == "low-latency" else "clusterer"
    encoder_meta = TimbreEncoder(args.models / "timbre.onnx").meta
    stored = ClusterConfig(**json.loads(encoder_meta[key])) if key in encoder_meta else None
    if args.only and stored is None:
        parser.error(f"--only needs stored {key} settings to start from")
    sustain_path = args.models / "sustain.onnx" if args.sustain else None
    best, (f, exact) = search_clusters(data, tracker, args.rounds, args.max_decision_frames, args.workers, stored,
                                       args.only, sustain_path)  # fmt: skip
    settings = {k: v for k, v in asdict(best).items() if k not in ("max_clusters", "exact")}
    print(json.dumps({"clusterer": settings, "separation_f": round(f, 4), "channels_equal_k": round(exact, 3),
                      "mixes": len(data), "splits": [str(d) for d in args.data], "sustain": args.sustain,
                      "acoustics": args.acoustics}, indent=2))  # fmt: skip
    if args.write:
        write_metadata(args.models / "timbre.onnx", key, json.dumps(settings))
        write_metadata(args.models / "timbre.onnx", f"{key}_provenance",
                       json.dumps({"splits": [str(d) for d in args.data], "mixes": len(data),
                                   "min_instruments": args.min_instruments, "separation_f": round(f, 4),
                                   "channels_equal_k": round(exact, 3), "sustain": args.sustain,
                                   "acoustics": args.acoustics}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
