"""Build the synthetic multi-timbre training set: material -> per-part FluidSynth renders -> numpy mixes.

    python -m rtamt.training.data build --hours 20 --out data/synth --seed 0
    python -m rtamt.training.data preview --out data/synth/preview --count 4

Layout: OUT/{train,valid,test}/shard-NNNNN.audio.npy (int16 mixes back to back, memory-mappable),
shard-NNNNN.notes.npy (float32 rows: onset_s, offset_s, pitch, velocity, instrument slot, example, key_off_s;
the offset is when the note stops sounding, the key-off when its key was released: they differ under the
sustain pedal; sets built before the pedal have no key_off_s column) and
shard-NNNNN.json (per example: offset, length, source, soundfont, instruments). Deterministic for a seed;
an interrupted build resumes by skipping finished shards.

Splits: ``train`` uses training programs and training soundfonts only. ``valid`` and ``test`` use unseen
timbres only: held-out programs, or the held-out soundfont, or both; their corpus works are disjoint
from training's (by hash of the work's path).
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import soundfile as sf

from rtamt.constants import SAMPLE_RATE
from rtamt.midi import SUSTAIN_PEDAL
from rtamt.training import corpus
from rtamt.training.fluid import BLOCK, Event, Synth
from rtamt.training.instruments import (
    HELD_OUT_SOUNDFONTS, INSTRUMENTS, TRAIN_SOUNDFONTS, programs,
)  # fmt: skip
from rtamt.training.idioms import idiom_piece, sounding_offsets
from rtamt.training.material import Line, corpus_piece, random_piece
from rtamt.training.render import Note, midi_file, part_to_midi, soundfont_path
from rtamt.watchdog import default_stop_signals

SPLIT_IDS = {"train": 0, "valid": 1, "test": 2}
EXAMPLE_S = 30.0
TAIL_S = 1.0  # release time rendered after the last bar
SHARD_EXAMPLES = 60  # 30 minutes of audio per shard
MIN_BLOCKS = 3  # shortest rendered note: 3 x 64 samples = 8.7 ms
DEFAULT_CORPUS = Path("data/cache/corpus.json.gz")


@dataclass(frozen=True)
class BuildConfig:
    seed: int = 0
    source_weights: tuple[float, ...] = (0.45, 0.4, 0.15, 0.0)  # random, corpus, solo/duet, idiom
    soundfonts: tuple[str, ...] = TRAIN_SOUNDFONTS  # training banks (valid/test always add the held-out ones)
    instrument_counts: tuple[float, ...] = (0.1, 0.25, 0.28, 0.22, 0.15)  # P(1..5 instruments)


# What live users play (issue 16): instrument idioms (pedalled piano, guitar, voice) take the largest
# share, and a third training bank (csound's GM bank) widens the timbres; held-out banks stay held out.
PROFILES: dict[str, BuildConfig] = {
    "default": BuildConfig(),
    "live": BuildConfig(
        source_weights=(0.25, 0.2, 0.1, 0.45), soundfonts=(*TRAIN_SOUNDFONTS, "sf_GMbank")
    ),
}


@dataclass
class Example:
    audio: np.ndarray  # int16
    notes: np.ndarray  # float32 (n, 6): onset, offset, pitch, velocity, instrument slot, key-off
    meta: dict


_SYNTHS: dict[str, Synth] = {}
_WORKS: dict[str, list[corpus.Work]] = {}


def _synth(name: str) -> Synth:
    if name not in _SYNTHS:
        _SYNTHS[name] = Synth(soundfont_path(name), SAMPLE_RATE)
    return _SYNTHS[name]


def timbre_choice(
    rng: np.random.Generator, split: str, soundfonts: tuple[str, ...] = TRAIN_SOUNDFONTS
) -> tuple[str, list[int]]:
    """Soundfont and program pool of one example; valid/test always contain an unseen dimension."""
    if split == "train":
        return str(rng.choice(soundfonts)), programs(held_out=False)
    if rng.random() < 0.5:
        return str(rng.choice(HELD_OUT_SOUNDFONTS)), programs(held_out=False) + programs(held_out=True)
    return str(rng.choice(soundfonts)), programs(held_out=True)


_LAGS: dict[tuple[str, int, int], float | None] = {}
AUDIBLE_DB = -40.0  # a note "starts" when it first reaches this level relative to its peak
SILENT_PEAK = 1e-4  # a test note quieter than this: the preset has no sample for that key
PROBE_BLOCKS = 138  # 0.4 s: the peak that AUDIBLE_DB refers to is taken over a note's first 0.4 s


def onset_lag(soundfont: str, program: int, pitch: int) -> float | None:
    """Seconds from note-on to the audible start of this preset's key (sample lead-in, attack), or None
    if the key is silent in this soundfont. Measured once per key on an isolated note."""
    key = (soundfont, program, pitch)
    if key not in _LAGS:
        events = [Event(0, 3, pitch, 100), Event(PROBE_BLOCKS * BLOCK, 0, pitch)]
        probe = _synth(soundfont).render(program, events, PROBE_BLOCKS * BLOCK)
        peak = float(np.abs(probe).max())
        if peak < SILENT_PEAK:
            _LAGS[key] = None
        else:
            first = int(np.flatnonzero(np.abs(probe) >= peak * 10 ** (AUDIBLE_DB / 20))[0])
            _LAGS[key] = first / SAMPLE_RATE
    return _LAGS[key]


def line_events(
    line: Line, rate: int, soundfont: str | None = None
) -> tuple[list[Event], list[tuple[float, float, int, int]]]:
    """Synth events on the 64-sample grid and the notes as they sound (onset, offset, pitch, velocity,
    key-off; times in seconds). The offset is when the note stops sounding (the key-off, or under the
    sustain pedal the pedal's release), the key-off when its key was released.

    A note that starts while the same key still sounds ends the earlier one there (one key, one voice).
    With a soundfont, each label's onset moves to the key's audible start and keys the soundfont leaves
    silent are dropped; without one, labels are the note-on times.
    """
    grid = lambda seconds: int(round(seconds * rate / BLOCK)) * BLOCK  # noqa: E731
    rendered: list[list[int]] = []
    sounding: dict[int, int] = {}  # pitch -> index into rendered
    for note in sorted(line.notes, key=lambda n: (n.onset_s, n.pitch)):
        if soundfont is not None and onset_lag(soundfont, line.instrument.program, note.pitch) is None:
            continue
        on = grid(note.onset_s)
        off = max(grid(note.offset_s), on + MIN_BLOCKS * BLOCK)
        previous = sounding.get(note.pitch)
        if previous is not None and rendered[previous][1] > on:
            if on - rendered[previous][0] < MIN_BLOCKS * BLOCK:
                continue  # would retrigger at once: keep the earlier note
            rendered[previous][1] = on
        sounding[note.pitch] = len(rendered)
        rendered.append([on, off, note.pitch, note.velocity])
    events = [Event(0, 1, 1, line.vibrato)] if line.vibrato else []
    events += [Event(grid(t), 2, value) for t, value in line.bends]
    events += [Event(grid(t), 1, SUSTAIN_PEDAL, value) for t, value in line.pedal]
    keys = [Note(on / rate, off / rate, pitch, velocity) for on, off, pitch, velocity in rendered]
    sounding = sounding_offsets(keys, [(grid(t) / rate, value) for t, value in line.pedal]) if line.pedal else keys
    notes = []
    for (on, off, pitch, velocity), heard in zip(rendered, sounding):
        events += [Event(on, 3, pitch, velocity), Event(off, 0, pitch)]
        lag = onset_lag(soundfont, line.instrument.program, pitch) if soundfont is not None else 0.0
        shortest = on / rate + lag + MIN_BLOCKS * BLOCK / rate
        notes.append((on / rate + lag, max(heard.offset_s, shortest), pitch, velocity, max(off / rate, shortest)))
    return events, notes


def compose(rng: np.random.Generator, split: str, config: BuildConfig) -> tuple[str, str, list[Line]]:
    """Choose a source, a soundfont and instruments, and make the lines of one example."""
    soundfont, pool = timbre_choice(rng, split, config.soundfonts)
    source = str(rng.choice(["random", "corpus", "solo", "idiom"][: len(config.source_weights)], p=config.source_weights))
    if source == "idiom":
        lines = idiom_piece(rng, pool, EXAMPLE_S)
        if lines:
            return "idiom:" + "+".join(line.role for line in lines), soundfont, lines
        source = "random"
    works = _WORKS.get(source, [])
    if source in ("corpus", "solo") and works and (source == "corpus" or rng.random() < 0.5):
        work = works[int(rng.integers(len(works)))]
        lines = corpus_piece(rng, work, pool, EXAMPLE_S)
        if lines:
            return f"{source}:{work.source.split('/corpus/')[-1]}", soundfont, lines
    count = int(rng.choice([1, 2])) if source == "solo" else 1 + int(rng.choice(5, p=config.instrument_counts))
    chosen = [INSTRUMENTS[int(p)] for p in rng.choice(pool, size=count, replace=False)]
    return ("solo" if source == "solo" else "random"), soundfont, random_piece(rng, chosen, EXAMPLE_S)


def make_example(split: str, index: int, config: BuildConfig) -> Example:
    """Example ``index`` of ``split``: the same for the same seed, whatever the order of the build."""
    rng = np.random.default_rng([config.seed, SPLIT_IDS[split], index])
    source, soundfont, lines = compose(rng, split, config)
    length = int((EXAMPLE_S + TAIL_S) * SAMPLE_RATE)
    mix = np.zeros(length)
    rows, instruments = [], []
    for line in lines:
        events, notes = line_events(line, SAMPLE_RATE, soundfont)
        if not notes:
            continue
        stem = _synth(soundfont).render(line.instrument.program, events, length)[:length].astype(np.float64)
        rms = np.sqrt(np.mean(stem[np.abs(stem) > 1e-4] ** 2)) if np.any(np.abs(stem) > 1e-4) else 0.0
        if rms == 0.0:
            continue
        mix += stem / rms * 10 ** (rng.uniform(-10, 0) / 20)
        slot = len(instruments)
        instruments.append({"program": line.instrument.program, "name": line.instrument.name,
                            "family": line.instrument.family, "role": line.role})  # fmt: skip
        rows += [(on, off, pitch, velocity, slot, key_off) for on, off, pitch, velocity, key_off in notes]
    peak = np.abs(mix).max()
    audio = (mix / peak * 10 ** (-1 / 20) * 32767).astype(np.int16) if peak > 0 else mix.astype(np.int16)
    notes = np.array(sorted(rows), dtype=np.float32).reshape(-1, 6)
    meta = {"split": split, "index": index, "source": source, "soundfont": soundfont, "instruments": instruments}
    return Example(audio, notes, meta)


def split_works(works: dict[str, list[corpus.Work]], split: str) -> dict[str, list[corpus.Work]]:
    """The corpus material one split may use: its own multi-part works ("corpus") and tunes ("solo")."""
    return {"corpus": works.get(split, []), "solo": works.get(f"solo-{split}", [])}


def _init_worker(works: dict[str, list[corpus.Work]]) -> None:
    default_stop_signals()
    _WORKS.update(works)


def _make(args: tuple[str, int, BuildConfig]) -> Example:
    return make_example(*args)


def write_shard(directory: Path, shard: int, examples: list[Example]) -> None:
    """Write one shard atomically (the .json, written last, marks it complete)."""
    base = directory / f"shard-{shard:05d}"
    audio = np.concatenate([ex.audio for ex in examples])
    offsets = np.cumsum([0] + [len(ex.audio) for ex in examples])
    notes = np.concatenate(
        [np.column_stack([ex.notes[:, :5], np.full(len(ex.notes), i, dtype=np.float32), ex.notes[:, 5:]])
         for i, ex in enumerate(examples)]
    )
    np.save(f"{base}.audio.npy", audio)
    np.save(f"{base}.notes.npy", notes.astype(np.float32))
    meta = [dict(ex.meta, offset=int(offsets[i]), length=len(ex.audio)) for i, ex in enumerate(examples)]
    tmp = f"{base}.json.tmp"
    with open(tmp, "w") as handle:
        json.dump({"rate": SAMPLE_RATE, "examples": meta}, handle)
    os.replace(tmp, f"{base}.json")


def load_works(cache: Path) -> dict[str, list[corpus.Work]]:
    """Corpus works by split: multi-part works under the split's name, monophonic tunes under
    "solo-<split>"; a work belongs to one split only (by hash of its path)."""
    by_split: dict[str, list[corpus.Work]] = {}
    for work in corpus.load_cache(cache):
        split = corpus.split_of(work.source)
        by_split.setdefault(f"solo-{split}" if len(work.parts) == 1 else split, []).append(work)
    return by_split


def build_split(out: Path, split: str, hours: float, config: BuildConfig, works: dict, workers: int) -> dict:
    """Render ``hours`` of ``split`` into shards under out/split; returns timing."""
    directory = out / split
    directory.mkdir(parents=True, exist_ok=True)
    n_examples = max(1, int(round(hours * 3600 / EXAMPLE_S)))
    shards = [range(s, min(s + SHARD_EXAMPLES, n_examples)) for s in range(0, n_examples, SHARD_EXAMPLES)]
    todo = [(i, r) for i, r in enumerate(shards) if not (directory / f"shard-{i:05d}.json").exists()]
    start = time.perf_counter()
    rendered = 0
    if todo:
        tasks = [(split, index, config) for _, r in todo for index in r]
        with multiprocessing.get_context("forkserver").Pool(workers, _init_worker, (split_works(works, split),)) as pool:
            results = pool.imap(_make, tasks, chunksize=1)
            for shard, r in todo:
                examples = []
                for _ in r:
                    examples.append(next(results))
                    rendered += 1
                    _progress(split, rendered, len(tasks), start)
                write_shard(directory, shard, examples)
        print(file=sys.stderr)
    elapsed = time.perf_counter() - start
    return {"examples": n_examples, "rendered_now": rendered, "seconds": round(elapsed, 1)}


def _progress(split: str, done: int, total: int, start: float) -> None:
    elapsed = time.perf_counter() - start
    rate = done * EXAMPLE_S / 3600 / max(elapsed, 1e-9) * 60  # hours of audio per minute
    bar = "#" * int(30 * done / total)
    print(f"\r{split:5s} [{bar:30s}] {done}/{total} examples, {rate:.2f} h audio/min", end="", file=sys.stderr)


def summarise(directory: Path) -> dict:
    """Hours, notes, instruments, sources and polyphony histogram of a built split."""
    hours, n_notes = 0.0, 0
    programs_used: Counter = Counter()
    sources: Counter = Counter()
    soundfonts: Counter = Counter()
    polyphony = np.zeros(12, dtype=np.int64)
    for meta_path in sorted(directory.glob("shard-*.json")):
        meta = json.loads(meta_path.read_text())
        notes = np.load(str(meta_path).replace(".json", ".notes.npy"))
        n_notes += len(notes)
        for i, ex in enumerate(meta["examples"]):
            hours += ex["length"] / meta["rate"] / 3600
            sources[ex["source"].split(":")[0]] += 1
            soundfonts[ex["soundfont"]] += 1
            programs_used.update(inst["name"] for inst in ex["instruments"])
            mine = notes[notes[:, 5] == i]
            grid = np.zeros(int(EXAMPLE_S * 20) + 1, dtype=np.int64)  # 50 ms grid
            for on, off in mine[:, :2]:
                grid[int(on * 20) : max(int(off * 20), int(on * 20) + 1)] += 1
            polyphony += np.bincount(np.minimum(grid, 11), minlength=12)
    return {
        "hours": round(hours, 3),
        "examples": int(sum(sources.values())),
        "notes": n_notes,
        "sources": dict(sources),
        "soundfonts": dict(soundfonts),
        "distinct_instruments": len(programs_used),
        "instruments_top10": dict(programs_used.most_common(10)),
        "polyphony_histogram_50ms": {str(k) if k < 11 else "11+": int(v) for k, v in enumerate(polyphony)},
    }


def write_preview(out: Path, split: str, count: int, config: BuildConfig, works: dict) -> None:
    """Render ``count`` examples to FLAC + MIDI (one track per instrument) + notes.csv for listening."""
    out.mkdir(parents=True, exist_ok=True)
    _WORKS.update(split_works(works, split))
    for index in range(count):
        ex = make_example(split, index, config)
        stem = out / f"{split}-{index:03d}"
        sf.write(f"{stem}.flac", ex.audio, SAMPLE_RATE)
        tracks = []
        for slot, inst in enumerate(ex.meta["instruments"]):
            notes = [Note(float(r[0]), float(r[1]), int(r[2]), int(r[3])) for r in ex.notes if r[4] == slot]
            tracks.append(part_to_midi(notes, inst["program"], channel=slot if slot < 9 else slot + 1, name=inst["name"]))
        midi_file(tracks).save(f"{stem}.mid")
        with open(f"{stem}.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["instrument", "onset_s", "offset_s", "midi"])
            names = [inst["name"] for inst in ex.meta["instruments"]]
            writer.writerows((names[int(r[4])], f"{r[0]:.4f}", f"{r[1]:.4f}", int(r[2])) for r in ex.notes)
        print(f"{stem}.flac: {ex.meta['source']}, {ex.meta['soundfont']}, "
              f"{', '.join(i['name'] for i in ex.meta['instruments'])}, {len(ex.notes)} notes")  # fmt: skip


def ensure_corpus(cache: Path, max_works: int, monophonic: int, workers: int) -> None:
    if not cache.exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        corpus.build_cache(cache, max_works=max_works, workers=workers, monophonic_works=monophonic)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rtamt.training.data", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("build", "preview"):
        p = sub.add_parser(name)
        p.add_argument("--out", type=Path, required=True)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--profile", choices=list(PROFILES), default="default",
                       help="material mix: default (session 1-8 sets) or live (idioms, more banks)")
        p.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
        p.add_argument("--corpus-works", type=int, default=400, help="multi-part corpus works to extract")
        p.add_argument("--corpus-monophonic", type=int, default=150, help="monophonic tunes to extract")
        p.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    build = sub.choices["build"]
    build.add_argument("--hours", type=float, default=20.0, help="hours of training mixes")
    build.add_argument("--valid-hours", type=float, default=0.5)
    build.add_argument("--test-hours", type=float, default=0.5)
    preview = sub.choices["preview"]
    preview.add_argument("--split", choices=list(SPLIT_IDS), default="train")
    preview.add_argument("--count", type=int, default=4)
    args = parser.parse_args(argv)

    config = replace(PROFILES[args.profile], seed=args.seed)
    ensure_corpus(args.corpus, args.corpus_works, args.corpus_monophonic, args.workers)
    works = load_works(args.corpus)
    if args.command == "preview":
        write_preview(args.out, args.split, args.count, config, works)
        return 0
    report = {"config": asdict(config), "splits": {}}
    for split, hours in (("valid", args.valid_hours), ("test", args.test_hours), ("train", args.hours)):
        timing = build_split(args.out, split, hours, config, works, args.workers)
        summary = summarise(args.out / split)
        if timing["rendered_now"]:
            minutes = timing["seconds"] / 60
            timing["hours_per_2_minutes"] = round(timing["rendered_now"] * EXAMPLE_S / 3600 / minutes * 2, 3)
        report["splits"][split] = {**summary, "build": timing}
    (args.out / "summary.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
