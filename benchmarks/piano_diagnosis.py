"""Where real piano is lost (issue 16): tracker thresholds, onset recall by octave, band limit.

    python benchmarks/piano_diagnosis.py thresholds ../shared/data/maps-dev ../shared/data/bach10 [--models DIR]
    python benchmarks/piano_diagnosis.py octaves ../shared/data/maps-dev [--models DIR]
    python benchmarks/piano_diagnosis.py misses ../shared/data/maps-dev [--split data/synth/valid data/synth-live/valid]
    python benchmarks/piano_diagnosis.py offsets ../shared/data/maps-dev ../shared/data/bach10 [--models DIR]
    python benchmarks/piano_diagnosis.py pedal ../shared/data/maps-dev ../shared/data/bach10 [--models DIR]
    python benchmarks/piano_diagnosis.py lowpass --data data/synth-live/valid [--models DIR]
    python benchmarks/piano_diagnosis.py resynth ../shared/data/maps-dev --out /tmp/maps-fluid [--soundfont FluidR3_GM]
    python benchmarks/piano_diagnosis.py eqmatch ../shared/data/maps-dev --like /tmp/maps-fluid --out /tmp/maps-eq

The model outputs of each recording come from ``rtamt.latency.piece_outputs`` (cached under ``--cache``, by
default the latency benchmark's cache folder). ``thresholds`` re-runs the note tracker with a grid of onset
and frame thresholds on every piece (a diagnosis on evaluation data, not a way to choose settings);
``octaves`` gives the onset recall per octave with the model's stored settings; ``misses`` sorts the
reference notes under C5 of folders (and of the first 40 examples of each ``--split``) by what became of
them: found (onset within 50 ms), inside an earlier detected note of the same pitch (a re-strike the
tracker did not start), never seen (frame probability under 0.3 over the note's first 15 frames), or
other (seen, but started too late or not at all); ``offsets`` compares the note ends of onset-matched notes
with the annotated ones (duration ratio, end minus annotated end, share within mir_eval's offset tolerance)
and gives the with-offset F1 as tracked and with every note cut at the next note-on at least
``LEGATO_GAP_S`` after its start (a stand-in for a pianist's key release under the pedal, to see how much
of the with-offset loss is where a note is taken to end; a diagnosis, not a rule to ship); ``pedal`` gives,
per piece, the share of frames with the sustain stage's pedal down (rtamt/sustain.py) and the with-offset
F1, frame F1 and channels of the accurate chain without and with that stage; ``lowpass`` scores the
first solo-piano idiom examples of a synthetic split as rendered and low-passed at 7.8 kHz (MAPS is 16 kHz
audio); ``resynth`` renders each recording's note list with a soundfont's grand piano (velocity 80, no pedal,
16 kHz like MAPS) into a folder of the same layout, so ``octaves`` on both tells the real piano's sound
apart from what is played; ``eqmatch`` gives each recording the long-term spectrum of the same piece in
another folder (a zero-phase filter from the ratio of the two average spectra, smoothed over a third of an
octave), to test whether the spectral balance alone explains a gap.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from rtamt.audio import read_all
from rtamt.backbone import Backbone
from rtamt.cluster import ClusterConfig
from rtamt.constants import HOP_S, SAMPLE_RATE
from rtamt.evaluate import matched_note_ons, matched_notes, note_metrics
from rtamt.latency import PieceOutputs, default_cache_dir, piece_dirs, piece_outputs, replay
from rtamt.models import models_dir
from rtamt.pipeline import build_transcriber
from rtamt.sustain import PedalChange, SustainStage
from rtamt.tracker import TrackerConfig, events_to_notes


def thresholds(pieces: list[tuple[str, PieceOutputs]], base: TrackerConfig) -> dict:
    out = {}
    for onset, frame in itertools.product([0.2, 0.3, 0.5], [0.1, 0.2, 0.3]):
        config = replace(base, onset_threshold=onset, frame_threshold=frame)
        by_set: dict[str, list[float]] = {}
        for folder, piece in pieces:
            notes = events_to_notes(replay(piece, config, None))
            by_set.setdefault(folder, []).append(note_metrics(piece.reference, notes, frames=False)["onset_f1"])
        out[f"onset {onset} frame {frame}"] = {name: round(float(np.mean(v)), 3) for name, v in by_set.items()}
    return out


def octaves(pieces: list[tuple[str, PieceOutputs]], config: TrackerConfig) -> dict:
    hits, totals = np.zeros(10), np.zeros(10)
    for _, piece in pieces:
        for i, _ in matched_note_ons(piece.reference, replay(piece, config, None)):
            hits[piece.reference[i][2] // 12] += 1
        for *_, midi in piece.reference:
            totals[midi // 12] += 1
    return {f"C{o - 1}-B{o - 1}": {"notes": int(totals[o]), "onset_recall": round(hits[o] / totals[o], 3)}
            for o in range(10) if totals[o]}  # fmt: skip


MISS_TOP_MIDI = 72  # misses: notes under C5, where real piano is lost
MISS_SEEN_FRAMES = 15  # a note counts as seen when its frame probability reaches 0.3 within these frames


def miss_kinds(examples: list[tuple[np.ndarray, list[tuple]]], config: TrackerConfig) -> dict:
    """Share of the reference notes under C5 of (model outputs (n, 2+, 84), reference notes) examples by
    what became of them (see the module docstring)."""
    from rtamt.constants import MIDI_MIN
    from rtamt.tracker import NoteTracker

    kinds = {"found": 0, "inside an earlier detected note": 0, "never seen": 0, "other": 0}
    for probs, reference in examples:
        tracker = NoteTracker(config)
        detected: dict[int, list[tuple[float, float]]] = {}
        for on, off, pitch, _ in events_to_notes(tracker.process(probs[:, :2]) + tracker.flush()):
            detected.setdefault(pitch, []).append((on, off))
        for on, _, pitch in reference:
            if not MIDI_MIN <= pitch < MISS_TOP_MIDI:
                continue
            notes = np.array(detected.get(pitch, [(np.inf, np.inf)]))
            first = int(round(on / HOP_S))
            if np.min(np.abs(notes[:, 0] - on)) <= 0.05:
                kind = "found"
            elif np.any((notes[:, 0] < on - 0.05) & (notes[:, 1] > on + 0.03)):
                kind = "inside an earlier detected note"
            elif probs[first : first + MISS_SEEN_FRAMES, 1, pitch - MIDI_MIN].max(initial=0.0) < 0.3:
                kind = "never seen"
            else:
                kind = "other"
            kinds[kind] += 1
    total = max(sum(kinds.values()), 1)
    return {"notes": total, **{k: round(v / total, 3) for k, v in kinds.items()}}


LEGATO_GAP_S = 0.1  # offsets: a note is cut at the first later note-on at least this long after its start


def cut_at_next_onset(notes: list[tuple], gap_s: float = LEGATO_GAP_S) -> list[tuple]:
    """Each note (onset_s, offset_s, midi, ...) ended at the first other note-on at least ``gap_s`` after
    its start, when that comes before its own end (never shorter than 50 ms)."""
    onsets = np.sort([n[0] for n in notes])
    out = []
    for on, off, *rest in notes:
        later = onsets[onsets >= on + gap_s]
        end = min(off, later[0]) if len(later) else off
        out.append((on, max(end, on + 0.05), *rest))
    return out


def offsets(pieces: list[tuple[str, PieceOutputs]], config: TrackerConfig) -> dict:
    """Per folder: how the ends of onset-matched notes lie against the annotated ends, and the with-offset
    F1 as tracked and with notes cut at the next note-on."""
    out: dict[str, dict] = {}
    for folder in dict.fromkeys(name for name, _ in pieces):
        ratios, errors, tracked, cut = [], [], [], []
        for _, piece in (item for item in pieces if item[0] == folder):
            notes = events_to_notes(replay(piece, config, None))
            for i, j in matched_notes(piece.reference, notes):
                (ref_on, ref_off, _), (on, off) = piece.reference[i], notes[j][:2]
                ratios.append((off - on) / max(ref_off - ref_on, 1e-3))
                errors.append(off - ref_off)
            tracked.append(note_metrics(piece.reference, notes, frames=False)["offset_f1"])
            cut.append(note_metrics(piece.reference, cut_at_next_onset(notes), frames=False)["offset_f1"])
        errors_ms = np.array(errors) * 1000
        out[folder] = {
            "matched notes": len(ratios),
            "duration ratio quartiles": np.round(np.percentile(ratios, [25, 50, 75]), 2).tolist(),
            "end minus annotated end, quartiles (ms)": np.round(np.percentile(errors_ms, [25, 50, 75]), 1).tolist(),
            "share ending over 50 ms late": round(float(np.mean(errors_ms > 50)), 3),
            "share ending over 50 ms early": round(float(np.mean(errors_ms < -50)), 3),
            "with-offset F1": round(float(np.mean(tracked)), 3),
            f"with-offset F1, cut at the next note-on {LEGATO_GAP_S:g} s on": round(float(np.mean(cut)), 3),
        }
    return out


def pedal(pieces: list[tuple[str, PieceOutputs]], config: TrackerConfig, clusters: ClusterConfig,
          sustain: SustainStage) -> dict:  # fmt: skip
    """Per folder and piece: the pedal-down share of frames, and the chain's figures without and with the
    sustain stage."""
    out: dict[str, dict] = {}
    for folder, piece in pieces:
        changes: list[PedalChange] = []
        row: dict = {}
        for name, stage in (("without", None), ("with", sustain)):
            events = replay(piece, config, clusters, stage, changes)
            scores = note_metrics(piece.reference, events_to_notes(events))
            row[name] = {"offset_f1": round(scores["offset_f1"], 3), "frame_f1": round(scores["frame_f1"], 3),
                         "channels": len({e.timbre for e in events if e.on})}  # fmt: skip
        down = sum(c.frame * (-1 if c.down else 1) for c in changes)  # every down has its up
        row["pedal down share"] = round(down / max(len(piece.frames), 1), 3)
        row["pedal downs per minute"] = round(sum(c.down for c in changes) / max(len(piece.frames) * HOP_S / 60, 1e-9), 1)
        out.setdefault(folder, {})[piece.name] = row
    for rows in out.values():
        rows["mean"] = {key: round(float(np.mean([r[key] if key.startswith("pedal") else r["with"][key]
                                                   for r in rows.values()])), 3)
                        for key in ("pedal down share", "pedal downs per minute", "offset_f1", "frame_f1", "channels")}  # fmt: skip
    return out


def lowpass(split: Path, model: Path, count: int = 8) -> dict:
    import scipy.signal

    from rtamt.evaluate import evaluate_piece
    from rtamt.training.dataset import ShardSet

    shards = ShardSet(split)
    sources = [ex["source"] for meta in sorted(split.glob("shard-*.json")) for ex in json.loads(meta.read_text())["examples"]]
    chosen = [i for i, source in enumerate(sources) if source == "idiom:piano"][:count]
    sos = scipy.signal.butter(12, 7800, fs=SAMPLE_RATE, output="sos")
    transcriber = build_transcriber(model_dir=model, timbre=False)
    scores: dict[str, list[float]] = {"as rendered": [], "low-passed at 7.8 kHz": []}
    for index in chosen:
        example = shards.examples[index]
        audio = shards.segment(index, 0, example.length)
        notes = [(float(n[0]), float(n[1]), int(n[2])) for n in example.notes]
        for name, version in zip(scores, (audio, scipy.signal.sosfilt(sos, audio).astype(np.float32))):
            transcriber.start(SAMPLE_RATE)
            blocks = [version[k : k + 4096] for k in range(0, len(version), 4096)]
            scores[name].append(evaluate_piece(transcriber, blocks, notes, example.length / SAMPLE_RATE)["onset_f1"])
    return {"examples": len(chosen), **{name: round(float(np.mean(v)), 3) for name, v in scores.items()}}


def write_piece(piece: Path, out: Path, audio: np.ndarray, rate: int) -> None:
    """``audio`` (peak at half scale) as OUT/<piece name>/mix.flac, beside a copy of the piece's notes.csv."""
    import soundfile as sf

    target = out / piece.name
    target.mkdir(parents=True, exist_ok=True)
    sf.write(target / "mix.flac", audio * (0.5 / (float(np.max(np.abs(audio))) or 1.0)), rate)
    shutil.copyfile(piece / "notes.csv", target / "notes.csv")


def resynth(folders: list[Path], out: Path, soundfont: str, velocity: tuple[int, int] = (80, 80), rt60_s: float = 0.0,
            seed: int = 0, rate: int = 16_000) -> dict:
    from rtamt.evaluate import read_notes_csv
    from rtamt.training.render import Note, render_part

    written = {}
    for folder in folders:
        for piece in piece_dirs(folder):
            rows = read_notes_csv(piece / "notes.csv")
            rng = np.random.default_rng(seed)
            notes = [Note(on, max(off, on + 0.05), midi, int(rng.integers(velocity[0], velocity[1] + 1)))
                     for on, off, midi, _ in rows]  # fmt: skip
            audio = render_part(notes, 0, soundfont, rate)
            if rt60_s > 0:
                import scipy.signal

                from rtamt.training.augment import room_impulse

                audio = scipy.signal.fftconvolve(audio, room_impulse(rng, rt60_s, rate))[: len(audio)]
            write_piece(piece, out, audio, rate)
            written[piece.name] = round(len(audio) / rate, 1)
    return written


def average_spectrum(audio: np.ndarray, rate: int, freqs: np.ndarray) -> np.ndarray:
    """Welch power spectrum of ``audio``, smoothed over a third of an octave, sampled at ``freqs``."""
    import scipy.signal

    f, power = scipy.signal.welch(audio, rate, nperseg=4096)
    smooth = np.array([power[(f >= c * 2 ** (-1 / 6)) & (f <= c * 2 ** (1 / 6))].mean() for c in f[1:]])
    return np.interp(freqs, f[1:], smooth) + 1e-20


def eqmatch(folders: list[Path], like: Path, out: Path, max_gain_db: float = 40.0) -> dict:
    gains = {}
    for folder in folders:
        for piece in piece_dirs(folder):
            audio, rate = read_all(piece / "mix.flac")
            model_audio, model_rate = read_all(like / piece.name / "mix.flac")
            audio, model_audio = audio.astype(np.float64), model_audio.astype(np.float64)
            if model_rate != rate:
                raise SystemExit(f"{piece.name}: {rate} Hz against {model_rate} Hz")
            freqs = np.fft.rfftfreq(len(audio), 1 / rate)
            probe_freqs = np.maximum(freqs, 20.0)
            gain_db = 10 * np.log10(average_spectrum(model_audio, rate, probe_freqs)
                                    / average_spectrum(audio, rate, probe_freqs))  # fmt: skip
            gain_db = np.clip(gain_db - np.median(gain_db), -max_gain_db, max_gain_db)
            write_piece(piece, out, np.fft.irfft(np.fft.rfft(audio) * 10 ** (gain_db / 20), len(audio)), rate)
            gains[piece.name] = {f"{hz} Hz": round(float(np.interp(hz, freqs, gain_db)), 1) for hz in (60, 250, 1000, 4000)}
    return gains


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["thresholds", "octaves", "misses", "offsets", "pedal", "lowpass", "resynth",
                                                   "eqmatch"])
    parser.add_argument("folders", type=Path, nargs="*", help="folders of recordings (thresholds, octaves, offsets)")
    parser.add_argument("--cache", type=Path, default=default_cache_dir(), help="model-output cache folder")
    parser.add_argument("--data", type=Path, default=Path("data/synth-live/valid"))
    parser.add_argument("--models", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("/tmp/piano-resynth"), help="resynth: output folder")
    parser.add_argument("--soundfont", default="FluidR3_GM", help="resynth: soundfont name")
    parser.add_argument("--velocity", type=int, nargs=2, default=(80, 80), help="resynth: velocity range (uniform)")
    parser.add_argument("--like", type=Path, help="eqmatch: folder whose pieces' spectra to match")
    parser.add_argument("--rt60", type=float, default=0.0, help="resynth: synthetic room's RT60 in s (0: dry)")
    parser.add_argument("--split", type=Path, nargs="*", default=[], help="misses: validation splits too (40 examples each)")
    args = parser.parse_args(argv)
    model = args.models or models_dir()
    config = TrackerConfig.from_json(Backbone(model / "backbone.onnx").meta["tracker"])
    if args.what == "lowpass":
        result = lowpass(args.data, model)
    elif args.what == "eqmatch":
        result = eqmatch(args.folders, args.like, args.out)
    elif args.what == "resynth":
        result = resynth(args.folders, args.out, args.soundfont, tuple(args.velocity), args.rt60)
    elif args.what == "misses":
        from rtamt.training.tune import probabilities

        result = {str(folder): miss_kinds([(p.frames, p.reference) for p in (piece_outputs(d, model, args.cache)
                                                                              for d in piece_dirs(folder))], config)
                  for folder in args.folders}  # fmt: skip
        result |= {str(split): miss_kinds(probabilities(model / "backbone.onnx", split, 40), config) for split in args.split}
    elif not args.folders:
        parser.error(f"{args.what} needs folders of recordings")
    else:
        pieces = [(folder.name, piece_outputs(piece, model, args.cache))
                  for folder in args.folders for piece in piece_dirs(folder)]  # fmt: skip
        if args.what == "pedal":
            chain = build_transcriber(model_dir=model)
            result = pedal(pieces, config, chain.assigner.config, chain.sustain)
        else:
            result = {"thresholds": thresholds, "octaves": octaves, "offsets": offsets}[args.what](pieces, config)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
