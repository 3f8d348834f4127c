"""The real dev sets in the benchmark report: every set, beside basic-pitch, with channels per piece."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_report(results: Path):
    spec = importlib.util.spec_from_file_location("report", ROOT / "benchmarks" / "report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.RESULTS = results
    return module


def piece(f1: float, channels: int) -> dict:
    return {"onset_f1": f1, "offset_f1": f1 / 2, "frame_f1": 0.8, "channels": channels}


def test_the_report_has_every_dev_set_beside_basic_pitch(tmp_path: Path) -> None:
    for name, pieces in (("bach10", {"01-A": piece(0.7, 4)}), ("maps-dev", {"p1": piece(0.5, 3), "p2": piece(0.6, 1)})):
        mean = {"onset_f1": 0.61, "offset_f1": 0.2, "frame_f1": 0.8, "channels_mean": 2.0,
                "latency_ms_median": 100.0, "latency_ms_p95": 180.0}  # fmt: skip
        (tmp_path / f"real_{name}.json").write_text(json.dumps({"folder": {"mean": mean, "pieces": pieces}}))
        (tmp_path / f"basic_pitch_{name}.json").write_text(json.dumps({"mean": {"onset_f1": 0.639, "offset_f1": 0.272,
                                                                                "frame_f1": 0.7}, "pieces": {}}))  # fmt: skip
    lines = load_report(tmp_path).real_sets()
    text = "\n".join(lines)
    assert "BACH10 pieces 01–05" in text and "maps-dev (8 real piano pieces)" in text
    assert sum("basic-pitch 0.4.0" in line for line in lines) == 2
    assert "| maps-dev | p1 | 0.500 | — | 0.250 | — | 3 |" in lines  # per piece, channels with K unknown
    assert "| 2.00 | 100.0 / 180.0 ms |" in text  # channels per piece (mean), note-on latency
    assert load_report(tmp_path / "none").real_sets() == []


def test_validation_latency_sits_beside_the_recordings_per_octave(tmp_path: Path) -> None:
    def octave(low: int, median: float, notes: int) -> dict:
        return {"midi": [low, low + 11], "notes": notes, "median_ms": median}

    def stored(acoustics: int | None, rows: list[dict]) -> dict:
        figures = {"onset_f1": 0.67, "offset_f1": 0.36, "latency_ms_median": 41.5, "latency_ms_p95": 138.3}
        return {"examples": 80, "acoustics": acoustics, "low-latency": {**figures, "by_octave": rows},
                "onset_head": {"onset_probability_at_true_onsets": {"p50": 0.2}}}

    report = load_report(tmp_path)
    dry, rooms = stored(None, [octave(48, 57.0, 10), octave(60, 38.7, 20)]), stored(0, [octave(60, 40.8, 19)])
    (tmp_path / "latency_sweep.json").write_text(json.dumps([{"data": "../shared/data/bach10",
                                                              "stream": {"by_octave": [octave(36, 95.7, 5)]}}]))  # fmt: skip
    lines = report.validation_octaves_section(dry, rooms)
    assert "| octave (MIDI) | validation, dry | validation, rooms | bach10 |" in lines
    assert "| 36–47 | — | — | 95.7 ms (5) |" in lines and "| 60–71 | 38.7 ms (20) | 40.8 ms (19) | — |" in lines
    assert "`--acoustics 0`" in lines[0]
    assert report.validation_octaves_section(dry, None) == []


def test_eval_reports_channels_per_piece() -> None:
    pytest.importorskip("mir_eval")
    from rtamt.evaluate import evaluate_folder
    from rtamt.pipeline import build_transcriber

    result = evaluate_folder(ROOT / "examples", build_transcriber(), lambda _: None)
    assert result["pieces"]["duet"]["channels"] == 2  # flute and cello, K unknown
    assert result["mean"]["channels_mean"] == 2.0


def test_separation_report_refines_with_the_timbres_found_online(tmp_path: Path) -> None:
    """``rtamt eval --separation``: beside the online figure and the one refined with K given, the notes
    refined into as many timbres as the online clusterer found (K unknown, what ``--refine`` gives); with
    K timbres found the two refinements agree."""
    import soundfile as sf

    from rtamt.evaluate import STEMS, evaluate_separation

    rate, seconds = 22_050, 3.0
    t = np.arange(int(rate * seconds)) / rate
    piece, rows = tmp_path / "01-test", ["instrument,onset_s,offset_s,midi"]
    piece.mkdir()
    for index, name in enumerate(STEMS):
        audio = np.zeros_like(t)
        for start in (0.2, 1.2, 2.1):
            midi = 48 + 7 * index + int(start)
            f0, span = 440.0 * 2 ** ((midi - 69) / 12), (t >= start) & (t < start + 0.7)
            tone = sum(np.sin(2 * np.pi * h * f0 * t) / h ** (0.5 + index) for h in range(1, 8))
            audio += 0.2 * span * tone * np.exp(-3.0 * np.clip(t - start, 0, None))
            rows.append(f"{name},{start},{start + 0.7},{midi}")
        sf.write(piece / f"{name}.flac", audio, rate)
    (piece / "notes.csv").write_text("\n".join(rows) + "\n")
    result = evaluate_separation(tmp_path, sizes=(2,), progress=lambda _: None, shifts_ms=(0.0, 3.9))
    assert len(result["mixes"]) == 12 and "refined_found_separation_f" in result["by_size"]["2"]
    for row in result["mixes"]:
        assert row["refined_found"]["channels"] <= max(row["timbres_found"], 1)
        if row["timbres_found"] == row["k"]:
            assert row["refined_found"] == row["refined_k"]
    # --shifts: each mix also delayed, labels moved alike; the pooled figure is the mean of the per-shift ones
    by_size = result["by_size"]["2"]
    per_shift = by_size["online_separation_f_by_shift_ms"]
    assert set(per_shift) == {"0", "3.9"} and by_size["mixes"] == 12
    assert abs(by_size["online_separation_f"] - np.mean(list(per_shift.values()))) < 1e-3
    assert min(per_shift.values()) > 0.3  # the shifted labels still line up with the shifted notes
    for shift, f in per_shift.items():
        rows = [r["online"]["separation_f"] for r in result["mixes"] if f"{r['shift_ms']:g}" == shift]
        assert len(rows) == 6 and abs(np.mean(rows) - f) < 1e-3
