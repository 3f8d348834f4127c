"""Multi-part works of the music21 corpus as per-part note lists in seconds, for synthesising training audio.

Each part of a work is later rendered by its own instrument. J.S. Bach (and anything with "bach" in its
path) and five chorale titles are excluded everywhere: a Bach chorale evaluation set must stay unseen.

    python -m rtamt.training.corpus --out data/cache/corpus.json.gz --max-works 400 --monophonic 100
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import multiprocessing
import os
import random
import re
import signal
import sys
import unicodedata
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
from music21 import chord, converter, corpus, harmony, note, stream, tempo

from rtamt.watchdog import default_stop_signals

CORPUS_ROOT = Path(corpus.__file__).parent
DEFAULT_QUARTER_BPM = 90.0  # tempo of works (or of the start of works) without any tempo mark
DEFAULT_VELOCITY = 80
MAX_SECONDS = 240.0
MIN_PART_NOTES = 4
OPUS_MAX_SCORES = 5  # scores taken from a multi-score file (enough for every voice of a Josquin ABC file)
TIE_EPS_Q = 1e-6  # quarter lengths: a tied note continues a note that ends within this of its onset
TIME_DECIMALS = 4  # seconds are stored to 0.1 ms
CACHE_VERSION = 1
FILE_TIMEOUT_S = 300  # a worker gives up on a file after this long
WORKER_MAX_TASKS = 50  # restart workers now and then: music21 keeps caches that grow
SPLIT_VALID_PERCENT = 5
SPLIT_TEST_PERCENT = 5

EXCLUDED_SUBSTRING = "bach"
EXCLUDED_TITLES = (
    "Ach Gott und Herr",
    "Ach lieben Christen",
    "Christe der du bist Tag und Licht",
    "Christe du Beistand",
    "Die Nacht ist kommen",
)
# Folk collections: one melody per tune, many tunes per file. Lead sheets: one melody plus chord symbols.
MONOPHONIC_DIRS = frozenset(
    ["ryansMammoth", "essenFolksong", "oneills1850", "airdsAirs", "nottingham-dataset", "miscFolk"]
    + ["leadSheet"]
)
NON_MUSIC_DIRS = frozenset({"demos", "theoryExercises"})  # music21's format test files
# Formats holding notes, best first, for works stored twice: Beethoven op. 18 no. 1 as .krn (with tempo
# marks) and .mxl (without). Roman-numeral analyses (.rntxt) are left out.
FORMAT_PREFERENCE = (".krn", ".mxl", ".musicxml", ".xml", ".abc")
_ABC_REFERENCE = re.compile(r"^X:\s*(\d+)", re.MULTILINE)

Note = tuple[float, float, int, int]  # onset_s, offset_s, midi_pitch, velocity
TempoMap = tuple[np.ndarray, np.ndarray, np.ndarray]  # segment start (quarters), its time (s), s per quarter


def _normalise(text: str) -> str:
    """Lower case, accents and everything but letters and digits removed."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", text.lower())


_EXCLUDED_KEYS = (EXCLUDED_SUBSTRING, *(_normalise(title) for title in EXCLUDED_TITLES))


@dataclass
class PartNotes:
    """One part of a work: its notes sorted by onset."""

    name: str
    notes: list[Note]


@dataclass
class Work:
    """One work (``source`` is the corpus-relative path of its file)."""

    source: str
    title: str
    parts: list[PartNotes]


def corpus_relative(path: str | Path) -> str:
    """``path`` relative to the music21 corpus folder (unchanged when it lies elsewhere), with ``/``."""
    path = Path(path)
    if path.is_absolute() and path.is_relative_to(CORPUS_ROOT):
        return path.relative_to(CORPUS_ROOT).as_posix()
    return path.as_posix()


def composer_of(source: str) -> str:
    """The corpus folder a work lies in (its composer or collection)."""
    return corpus_relative(source).split("/")[0]


def is_excluded(path_or_title: str) -> bool:
    """True for Bach (any "bach" in the path or title) and the five held-out chorale titles."""
    key = _normalise(corpus_relative(path_or_title))
    return any(excluded in key for excluded in _EXCLUDED_KEYS)


def list_works(max_works: int | None = None, seed: int = 0, *, monophonic: bool = False) -> list[str]:
    """Corpus paths of usable works: multi-part art music, or with ``monophonic`` the folk collections only.

    Sorted, shuffled with ``seed``, then cut to ``max_works``.
    """
    rank = {ext: i for i, ext in enumerate(FORMAT_PREFERENCE)}
    chosen: dict[str, str] = {}
    for path in sorted(str(p) for p in corpus.getPaths()):
        relative = corpus_relative(path)
        folder, ext = relative.split("/")[0], Path(path).suffix.lower()
        if ext not in rank or folder in NON_MUSIC_DIRS or (folder in MONOPHONIC_DIRS) != monophonic:
            continue
        if is_excluded(relative):
            continue
        key = relative[: -len(ext)]
        if key not in chosen or rank[ext] < rank[Path(chosen[key]).suffix.lower()]:
            chosen[key] = path
    paths = sorted(chosen.values())
    random.Random(seed).shuffle(paths)
    return paths if max_works is None else paths[:max_works]


def _parse(path: Path, number: int | None = None) -> stream.Stream:
    return converter.parse(path, number=number, forceSource=True, storePickle=False)


def _parse_scores(path: Path) -> list[stream.Score]:
    """The scores of one file: itself, the first few tunes of a collection, or its voices merged."""
    if path.suffix.lower() == ".abc":
        text = path.read_text(encoding="latin-1")
        numbers = list(dict.fromkeys(int(n) for n in _ABC_REFERENCE.findall(text)))
        if len(numbers) > OPUS_MAX_SCORES:  # a tune collection: parse only the tunes we keep
            return [_as_score(_parse(path, n)) for n in numbers[:OPUS_MAX_SCORES]]
    parsed = _parse(path)
    if not isinstance(parsed, stream.Opus):
        return [_as_score(parsed)]
    scores = list(parsed.scores)
    titles = {score.metadata.title if score.metadata else None for score in scores}
    if len(scores) > 1 and len(titles) == 1 and all(len(score.parts) == 1 for score in scores):
        return [parsed.mergeScores()]  # one voice per score, as in the Josquin ABC files
    return scores[:OPUS_MAX_SCORES]


def _as_score(parsed: stream.Stream) -> stream.Score:
    if isinstance(parsed, stream.Opus):
        return parsed.scores.first()
    if isinstance(parsed, stream.Score):
        return parsed
    raise TypeError(f"unexpected parse result {type(parsed).__name__}")


def _tempo_map(score: stream.Score) -> TempoMap:
    """Segment starts in quarters, their times in seconds, and seconds per quarter within each segment.

    The first tempo mark also applies before it; without any mark, quarter = ``DEFAULT_QUARTER_BPM``.
    Marks found in several parts at one offset count once (the top part's).
    """
    marks: dict[float, float] = {}
    for indication in score.recurse().getElementsByClass(tempo.TempoIndication):
        mark = indication.getSoundingMetronomeMark()
        bpm = mark.getQuarterBPM() if mark is not None else None
        if bpm and bpm > 0:
            marks.setdefault(float(indication.getOffsetInHierarchy(score)), float(bpm))
    offsets = sorted(marks)
    bpms = [marks[q] for q in offsets] or [DEFAULT_QUARTER_BPM]
    starts_q = np.array([0.0, *offsets[1:]])
    seconds_per_q = 60.0 / np.array(bpms)
    starts_s = np.concatenate([[0.0], np.cumsum(np.diff(starts_q) * seconds_per_q[:-1])])
    return starts_q, starts_s, seconds_per_q


def _to_seconds(quarters: np.ndarray, tempo_map: TempoMap) -> np.ndarray:
    starts_q, starts_s, seconds_per_q = tempo_map
    segment = np.maximum(np.searchsorted(starts_q, quarters, side="right") - 1, 0)
    return starts_s[segment] + (quarters - starts_q[segment]) * seconds_per_q[segment]


def _velocity(element: note.NotRest, fallback: int) -> int:
    if element.hasVolumeInformation() and element.volume.velocity is not None:
        return max(1, int(element.volume.velocity))  # velocity 0 would be a note-off
    return fallback


def _sounding(part: stream.Part) -> Iterator[tuple[float, float, int, int, bool]]:
    """(onset_q, offset_q, pitch, velocity, tied_on) of each pitched note, chord members one by one."""
    flat = part.flatten()
    for element in flat.notes:
        if isinstance(element, harmony.Harmony) or element.duration.isGrace or element.quarterLength <= 0:
            continue
        onset = float(flat.elementOffset(element))
        offset = onset + float(element.quarterLength)
        if isinstance(element, note.Note):
            members = [element]
            fallback = DEFAULT_VELOCITY
        elif isinstance(element, chord.Chord):  # not PercussionChord: unpitched parts are skipped
            members = list(element.notes)
            fallback = _velocity(element, DEFAULT_VELOCITY)
        else:
            continue
        for member in members:
            tied_on = member.tie is not None and member.tie.type in ("start", "continue")
            yield onset, offset, member.pitch.midi, _velocity(member, fallback), tied_on


def _merge(sounding: Iterable[tuple[float, float, int, int, bool]]) -> list[list[float]]:
    """Notes in quarters, sorted, tied notes merged, same-pitch overlaps removed (a later note cuts an
    earlier one short; of equal onsets the longest stays).

    Ties are merged here, note by note, rather than with music21's ``stripTies``: that takes 10+ s on some
    string quartets (against 0.3 s here) and joins untied repeated notes of partly tied chords.
    """
    notes: list[list[float]] = []
    last: dict[int, tuple[list[float], bool]] = {}  # pitch -> (latest note, tied on)
    for onset, offset, pitch, velocity, tied_on in sorted(sounding, key=lambda n: (n[0], n[2], -n[1])):
        if not 0 <= pitch <= 127:
            continue
        previous = last.get(pitch)
        if previous is not None:
            prev_note, prev_tied = previous
            if prev_tied and abs(prev_note[1] - onset) < TIE_EPS_Q:
                prev_note[1] = offset
                last[pitch] = (prev_note, tied_on)
                continue
            if onset <= prev_note[0]:
                continue
            prev_note[1] = min(prev_note[1], onset)
        current = [onset, offset, pitch, velocity]
        notes.append(current)
        last[pitch] = (current, tied_on)
    return notes


def _part_notes(part: stream.Part, tempo_map: TempoMap, max_seconds: float) -> list[Note]:
    quarters = _merge(_sounding(part))
    if not quarters:
        return []
    table = np.array(quarters)
    onsets = np.round(_to_seconds(table[:, 0], tempo_map), TIME_DECIMALS)
    offsets = np.round(np.minimum(_to_seconds(table[:, 1], tempo_map), max_seconds), TIME_DECIMALS)
    return [
        (float(on), float(off), int(pitch), int(velocity))
        for on, off, pitch, velocity in zip(onsets, offsets, table[:, 2], table[:, 3])
        if on < max_seconds and off > on
    ]


def _score_to_work(score: stream.Score, source: str, max_seconds: float) -> Work | None:
    metadata = score.metadata
    title = (metadata.title if metadata is not None else None) or Path(source).stem
    composer = (metadata.composer if metadata is not None else None) or ""
    if is_excluded(title) or is_excluded(composer):
        return None
    tempo_map = _tempo_map(score)
    parts = []
    for index, part in enumerate(score.parts):
        notes = _part_notes(part, tempo_map, max_seconds)
        if len(notes) >= MIN_PART_NOTES:
            parts.append(PartNotes(name=str(part.partName or f"part{index + 1}"), notes=notes))
    return Work(source=source, title=str(title), parts=parts) if parts else None


def extract_work(path: str, max_seconds: float = MAX_SECONDS) -> list[Work]:
    """The works of one corpus file (absolute or corpus-relative path) as notes in seconds; [] on any error,
    for excluded works, and when no part has ``MIN_PART_NOTES`` notes."""
    source = corpus_relative(path)
    if is_excluded(source):
        return []
    file_path = Path(path) if Path(path).is_absolute() else CORPUS_ROOT / path
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scores = _parse_scores(file_path)
            works = [_score_to_work(score, source, max_seconds) for score in scores]
    except Exception:  # noqa: BLE001 -- one bad file must never stop a build
        return []
    return [work for work in works if work is not None]


def split_of(source: str) -> str:
    """"train", "valid" or "test" (90 / 5 / 5 %) from a hash of the corpus-relative path."""
    digest = hashlib.sha1(corpus_relative(source).encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % 100
    if bucket < 100 - SPLIT_VALID_PERCENT - SPLIT_TEST_PERCENT:
        return "train"
    return "valid" if bucket < 100 - SPLIT_TEST_PERCENT else "test"


def _on_timeout(signum: int, frame: object) -> None:
    raise TimeoutError


def _guarded_extract(path: str) -> list[Work]:
    """``extract_work`` in a worker, abandoned after ``FILE_TIMEOUT_S`` (the timeout lands in its except)."""
    previous = signal.signal(signal.SIGALRM, _on_timeout)
    signal.alarm(FILE_TIMEOUT_S)
    try:
        return extract_work(path)
    except TimeoutError:  # raised between extract_work's try and its return
        return []
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _progress(results: Iterator[list[Work]], total: int, enabled: bool) -> Iterator[list[Work]]:
    if not enabled:
        yield from results
        return
    try:
        from tqdm import tqdm
    except ImportError:
        for done, result in enumerate(results, 1):
            print(f"\rcorpus: {done}/{total} files", end="", file=sys.stderr, flush=True)
            yield result
        print(file=sys.stderr)
        return
    yield from tqdm(results, total=total, desc="corpus", unit="file")


def _work_end(work: Work) -> float:
    return max(n[1] for part in work.parts for n in part.notes)


def summarise(works: list[Work], files: int = 0, empty_files: int = 0) -> dict:
    """Counts of works, parts, notes, hours (longest part of each work) and works per composer."""
    return {
        "files": files,
        "empty_files": empty_files,
        "works": len(works),
        "parts": sum(len(work.parts) for work in works),
        "notes": sum(len(part.notes) for work in works for part in work.parts),
        "hours": round(sum(_work_end(work) for work in works) / 3600.0, 3),
        "composers": dict(Counter(composer_of(work.source) for work in works).most_common()),
    }


def build_cache(
    out_path: str | Path,
    max_works: int | None,
    workers: int = 2,
    monophonic_works: int = 0,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Parse ``max_works`` art-music files and ``monophonic_works`` folk files in a process pool and write
    them to a gzip JSON cache at ``out_path`` (atomically); returns ``summarise`` of what was written."""
    paths = list_works(max_works, seed) + list_works(monophonic_works, seed, monophonic=True)
    works: list[Work] = []
    empty_files = 0
    with multiprocessing.Pool(max(1, workers), default_stop_signals, maxtasksperchild=WORKER_MAX_TASKS) as pool:
        results = pool.imap(_guarded_extract, paths, chunksize=1)
        for file_works in _progress(results, len(paths), progress):
            works.extend(file_works)
            empty_files += not file_works
    payload = {
        "version": CACHE_VERSION,
        "works": [
            {
                "source": work.source,
                "title": work.title,
                "parts": [{"name": part.name, "notes": [list(n) for n in part.notes]} for part in work.parts],
            }
            for work in works
        ],
    }
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    try:
        with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=6) as fh:
            json.dump(payload, fh, separators=(",", ":"))
        os.replace(tmp, out_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return summarise(works, files=len(paths), empty_files=empty_files)


def load_cache(path: str | Path) -> list[Work]:
    """The works written by ``build_cache``."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        payload = json.load(fh)
    if payload.get("version") != CACHE_VERSION:
        raise ValueError(f"{path}: cache version {payload.get('version')}, expected {CACHE_VERSION}")
    works = []
    for work in payload["works"]:
        parts = [
            PartNotes(part["name"], [(on, off, int(p), int(v)) for on, off, p, v in part["notes"]])
            for part in work["parts"]
        ]
        works.append(Work(work["source"], work["title"], parts))
    return works


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="data/cache/corpus.json.gz")
    parser.add_argument("--max-works", type=int, default=None, help="art-music files (default: all)")
    parser.add_argument("--monophonic", type=int, default=0, help="folk-collection files")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    summary = build_cache(
        args.out, args.max_works, args.workers, args.monophonic, args.seed, progress=not args.no_progress
    )
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
