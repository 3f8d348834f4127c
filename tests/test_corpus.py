"""Corpus note extraction: exclusions, determinism, note sanity, splits and the cache round trip."""

from __future__ import annotations

from collections import Counter

import pytest

corpus = pytest.importorskip("rtamt.training.corpus")  # needs music21 (the `train` extra)

SMALL_WORK = "palestrina/Agnus_I_67.krn"  # four voices, parses in well under a second


@pytest.fixture(scope="module")
def all_works() -> list[str]:
    return corpus.list_works()


@pytest.mark.parametrize(
    "text",
    [
        "bach/bwv255.mxl",
        "/somewhere/music21/corpus/bach/bwv66.6.mxl",
        "cpebach/h186.mxl",
        "J.S. BACH",
        "Ach Gott und Herr",
        "Ach, lieben Christen!",
        "CHRISTE, DER DU BIST TAG UND LICHT",
        "Christe du Beistand",
        "Die Nacht ist kommen",
        "bwv 296 - die nacht ist kommen.krn",
    ],
)
def test_is_excluded_catches_bach_and_hymns(text: str) -> None:
    assert corpus.is_excluded(text)


@pytest.mark.parametrize(
    "text", ["palestrina/Agnus_I_67.krn", "beach/prayer_of_a_tired_child.musicxml", "Kyrie"]
)
def test_is_excluded_keeps_others(text: str) -> None:
    assert not corpus.is_excluded(text)


def test_list_works_excludes_and_is_deterministic() -> None:
    works = corpus.list_works(max_works=50)
    assert len(works) == 50
    assert works == corpus.list_works(max_works=50)
    assert works != corpus.list_works(max_works=50, seed=1)
    assert not any(corpus.is_excluded(path) or "bach" in path.lower() for path in works)
    assert not any(corpus.composer_of(path) in corpus.MONOPHONIC_DIRS for path in works)


def test_list_works_monophonic_only_folk() -> None:
    works = corpus.list_works(max_works=20, monophonic=True)
    assert len(works) == 20
    assert all(corpus.composer_of(path) in corpus.MONOPHONIC_DIRS for path in works)


def test_extract_work_notes_are_sane() -> None:
    works = corpus.extract_work(str(corpus.CORPUS_ROOT / SMALL_WORK))
    assert len(works) == 1
    work = works[0]
    assert work.source == SMALL_WORK
    assert len(work.parts) >= 2
    for part in work.parts:
        assert len(part.notes) >= corpus.MIN_PART_NOTES
        onsets = [note[0] for note in part.notes]
        assert onsets == sorted(onsets)
        for onset, offset, pitch, velocity in part.notes:
            assert 0.0 <= onset < offset <= corpus.MAX_SECONDS
            assert 0 <= pitch <= 127
            assert 1 <= velocity <= 127
            assert 0.05 < offset - onset < 30.0  # seconds, not quarters or ticks
    end = max(part.notes[-1][1] for part in work.parts)
    assert 20.0 < end <= corpus.MAX_SECONDS


def test_extract_work_truncates_and_survives_bad_files(tmp_path) -> None:
    short = corpus.extract_work(SMALL_WORK, max_seconds=10.0)
    assert short and all(note[1] <= 10.0 for part in short[0].parts for note in part.notes)
    bad = tmp_path / "broken.krn"
    bad.write_text("**kern\n*this is not humdrum\n4qq\n")
    assert corpus.extract_work(str(bad)) == []
    assert corpus.extract_work(str(tmp_path / "missing.mxl")) == []
    assert corpus.extract_work("bach/bwv66.6.mxl") == []


def test_split_of_is_deterministic_and_balanced(all_works: list[str]) -> None:
    splits = [corpus.split_of(path) for path in all_works]
    assert splits == [corpus.split_of(path) for path in all_works]
    assert corpus.split_of(all_works[0]) == corpus.split_of(corpus.corpus_relative(all_works[0]))
    counts = Counter(splits)
    assert set(counts) == {"train", "valid", "test"}
    n = len(all_works)
    assert abs(counts["train"] / n - 0.90) < 0.03
    assert abs(counts["valid"] / n - 0.05) < 0.02
    assert abs(counts["test"] / n - 0.05) < 0.02


def test_build_and_load_cache_round_trip(tmp_path, monkeypatch) -> None:
    palestrina = [path for path in corpus.list_works() if corpus.composer_of(path) == "palestrina"][:3]
    # three quick files (the seeded choice may hold a string quartet)
    monkeypatch.setattr(
        corpus, "list_works", lambda n, seed=0, monophonic=False: [] if monophonic else palestrina
    )
    out = tmp_path / "cache" / "corpus.json.gz"
    summary = corpus.build_cache(out, max_works=3, workers=1, progress=False)
    works = corpus.load_cache(out)
    assert [work.source for work in works] == [corpus.corpus_relative(path) for path in palestrina]
    assert works == [work for path in palestrina for work in corpus.extract_work(path)]
    assert summary["works"] == 3 and summary["files"] == 3 and summary["empty_files"] == 0
    assert summary["parts"] == sum(len(work.parts) for work in works)
    assert summary["notes"] == sum(len(part.notes) for work in works for part in work.parts)
    assert summary["composers"] == {"palestrina": 3}
    assert 0.0 < summary["hours"] < 3 * corpus.MAX_SECONDS / 3600
    assert list(tmp_path.joinpath("cache").iterdir()) == [out]  # no temporary file left behind
