"""Note-on latency benchmark on recordings, the stored latency-accuracy curve and the latency budget."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtamt.audio import probe
from rtamt.budget import BudgetError, CurvePoint, live_settings, pick, stored_curve
from rtamt.cli import main
from rtamt.constants import HOP_S, JACK_TRANSPORT_MAX_MS, JACK_XRUN_MAX_SHARE, MIDI_MIN
from rtamt.tracker import TrackerConfig

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
MODELS = ROOT / "models"


def shipped_meta() -> dict:
    from rtamt.models import open_session

    return open_session(MODELS / "backbone.onnx", "backbone")[1]


points = st.lists(st.tuples(st.floats(5, 300), st.floats(0, 1)), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(curve=points, budgets=st.lists(st.floats(0, 320), min_size=2, max_size=6))
def test_a_tighter_budget_never_picks_a_slower_setting(curve: list, budgets: list) -> None:
    stored = [CurvePoint(f"p{i}", TrackerConfig(sustain_frames=i + 1), m, None, f) for i, (m, f) in enumerate(curve)]
    picked = []
    for budget in sorted(budgets):
        try:
            point = pick(stored, budget)
        except BudgetError:
            assert budget < min(m for m, _ in curve)
            continue
        assert point.latency_ms_median <= budget
        assert point.onset_f1 == max(p.onset_f1 for p in stored if p.latency_ms_median <= budget)
        picked.append(point.latency_ms_median)
    assert picked == sorted(picked)


def test_the_shipped_curve_and_a_budget_under_it_is_a_clear_error() -> None:
    """The shipped model stores its two named settings and a curve searched under median limits
    (python -m rtamt.training.tune curve): a tighter budget never gets a slower or more accurate point."""
    curve = stored_curve(shipped_meta())
    labels = [p.label for p in curve]
    assert "accurate" in labels and "low-latency" in labels and len(curve) > 2
    fast = min(curve, key=lambda p: p.latency_ms_median)
    assert pick(curve, fast.latency_ms_median) == fast
    assert pick(curve, 1000.0) == max(curve, key=lambda p: p.onset_f1)
    budgets = sorted(p.latency_ms_median for p in curve)
    picked = [pick(curve, budget) for budget in budgets]
    assert [p.latency_ms_median for p in picked] == sorted(p.latency_ms_median for p in picked)
    assert [p.onset_f1 for p in picked] == sorted(p.onset_f1 for p in picked)
    with pytest.raises(BudgetError, match=f"has a validation median of {fast.latency_ms_median:g} ms"):
        pick(curve, fast.latency_ms_median - 1)


def test_live_refuses_a_budget_below_the_fastest_setting(capsys: pytest.CaptureFixture) -> None:
    code = main(["live", "--input", str(EXAMPLES / "duet" / "mix.flac"), "--no-midi", "--quiet", "--latency-budget", "5"])
    assert code == 2
    assert "no stored tracker setting fits a 5 ms note-on latency budget" in capsys.readouterr().err


def test_a_stored_curve_is_read_with_the_named_points(random_model_dir: Path, tmp_path: Path) -> None:
    from rtamt.models import open_session
    from rtamt.training.export import write_metadata

    model = tmp_path / "backbone.onnx"
    shutil.copy(random_model_dir / "backbone.onnx", model)
    assert live_settings(tmp_path, "low-latency", None) is None  # no stored settings: the tracker's defaults
    accurate, fast = TrackerConfig(sustain_frames=8), TrackerConfig(sustain_frames=1, onset_rise=True)
    write_metadata(model, "tracker", accurate.to_json())
    write_metadata(model, "tracker_provenance", json.dumps({"onset_f1": 0.7, "latency_ms_median": 90.0}))
    write_metadata(model, "tracker_curve", json.dumps([
        {"label": "median <= 40 ms", "tracker": fast.__dict__, "onset_f1": 0.6, "latency_ms_median": 38.0,
         "latency_ms_p95": 90.0},
        {"label": "same as accurate", "tracker": accurate.__dict__, "onset_f1": 0.7, "latency_ms_median": 90.0}]))
    meta = open_session(model, "backbone")[1]
    curve = stored_curve(meta)
    assert [(p.label, p.tracker) for p in curve] == [("accurate", accurate), ("median <= 40 ms", fast)]
    assert live_settings(tmp_path, "low-latency", 50.0).tracker == fast
    assert live_settings(tmp_path, "low-latency", 95.0).tracker == accurate
    assert live_settings(tmp_path, "low-latency", None).tracker == accurate  # no low-latency point: accurate
    assert stored_curve({k: v for k, v in meta.items() if k != "tracker_provenance"})[0].onset_f1 is None


def test_the_traced_curve_is_monotone_and_within_its_limits() -> None:
    from rtamt.training.tune import trace_curve

    rng = np.random.default_rng(5)
    data = []
    for _ in range(2):
        p = np.zeros((160, 2, 84), dtype=np.float32)
        reference = []
        for pitch, start in zip(rng.integers(40, 90, 5), rng.integers(10, 110, 5)):
            i = int(pitch) - MIDI_MIN
            p[start : start + 3, 0, i] = [0.25, float(rng.uniform(0.2, 0.9)), 0.3]
            p[start + int(rng.integers(0, 4)) : start + 40, 1, i] = float(rng.uniform(0.4, 0.9))  # slow or quick rise
            reference.append((start * HOP_S, (start + 40) * HOP_S, int(pitch)))
        p += (rng.random(p.shape) ** 8).astype(np.float32) * 0.5
        data.append((p, reference))
    grid_only = trace_curve(data, lookahead=2, limits=[25.0, 35.0, 50.0, 80.0], rounds=0)
    walked = trace_curve(data, lookahead=2, limits=[25.0, 35.0, 50.0, 80.0], rounds=1)
    for curve in (grid_only, walked):
        assert curve, "at least one limit is feasible"
        assert all(c["latency_ms_median"] <= c["max_latency_ms"] for c in curve)
        medians, f1 = [c["latency_ms_median"] for c in curve], [c["onset_f1"] for c in curve]
        assert medians == sorted(medians) and f1 == sorted(f1)  # faster points are never more accurate
        assert all(TrackerConfig.from_json(json.dumps(c["tracker"])) for c in curve)
    assert max(c["onset_f1"] for c in walked) >= max(c["onset_f1"] for c in grid_only)  # the walk only improves


def test_latency_bench_on_a_folder_with_its_sweep(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("matplotlib")
    from rtamt.evaluate import evaluate_folder
    from rtamt.pipeline import build_transcriber

    out = tmp_path / "sweep"
    assert main(["bench", "latency", "--data", str(EXAMPLES), "--sweep", "--no-cache", "--out", str(out)]) == 0
    result = json.loads(capsys.readouterr().out)
    stream = result["stream"]
    assert stream["label"].startswith("stream time")
    lat, acc = stream["latency"], stream["accuracy"]
    assert 0 < lat["matched_notes"] <= acc["notes_ref"]
    assert sum(lat["histogram"]["counts"]) == lat["matched_notes"] == sum(r["notes"] for r in stream["by_octave"])
    assert lat["median_ms"] <= lat["p95_ms"]
    # replaying the cached model outputs gives what the whole chain gives
    reference = evaluate_folder(EXAMPLES, build_transcriber(mode="low-latency"), lambda _: None)["mean"]
    assert acc["onset_f1"] == reference["onset_f1"] and acc["frame_f1"] == reference["frame_f1"]
    assert lat["median_ms"] == reference["latency_ms_median"] and lat["p95_ms"] == reference["latency_ms_p95"]
    for row in stream["by_octave"]:
        assert row["floor_ms"][0] < row["floor_ms"][1]  # two periods: shorter for the octave's top note
    front = sorted((p for p in result["sweep"] if p.get("pareto")), key=lambda p: p["latency_ms_median"])
    assert [p["onset_f1"] for p in front] == sorted(p["onset_f1"] for p in front)
    assert {"low-latency", "accurate", "low-latency: bump 0.1, frame 0.35"} <= {p["label"] for p in result["sweep"]}
    assert out.with_suffix(".png").stat().st_size > 1000
    markdown = out.with_suffix(".md").read_text()
    assert "| setting | note-on latency median / p95 |" in markdown and "| low-latency: bump 0.1, frame 0.35 |" in markdown


def test_latency_from_the_attack_does_not_move_with_the_annotations(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Annotations 30 ms before the sound: the alignment shows it and the latency from the attack stays."""
    import csv

    results = {}
    for name, shift_s in (("exact", 0.0), ("early", -0.03)):
        piece = tmp_path / name / "duet"
        piece.mkdir(parents=True)
        shutil.copy(EXAMPLES / "duet" / "mix.flac", piece / "mix.flac")
        with open(EXAMPLES / "duet" / "notes.csv") as source, open(piece / "notes.csv", "w", newline="") as target:
            rows = list(csv.DictReader(source))
            writer = csv.DictWriter(target, fieldnames=list(rows[0]))
            writer.writeheader()
            for row in rows:
                writer.writerow({**row, "onset_s": f"{float(row['onset_s']) + shift_s:.6f}"})
        assert main(["bench", "latency", "--data", str(tmp_path / name), "--no-cache"]) == 0
        results[name] = json.loads(capsys.readouterr().out)
    exact, early = (results[k] for k in ("exact", "early"))
    aligned = [r["annotation_alignment"]["all"]["median_ms"] for r in (exact, early)]
    assert 25.0 <= aligned[1] - aligned[0] <= 35.0, aligned
    from_label = [r["stream"]["latency"]["median_ms"] for r in (exact, early)]
    from_attack = [r["stream"]["latency_from_attack"]["median_ms"] for r in (exact, early)]
    assert from_label[1] - from_label[0] >= 15.0, from_label
    assert abs(from_attack[1] - from_attack[0]) <= 12.0, from_attack
    assert exact["stream"]["latency_from_attack"]["matched_notes"] <= exact["stream"]["latency"]["matched_notes"]


def test_jack_and_stream_paths_agree_within_the_transport_delay() -> None:
    from rtamt import jack_e2e
    from rtamt.latency import jack_folder, piece_outputs, stream_arrivals
    from rtamt.pipeline import build_transcriber

    reason = jack_e2e.jack_available()
    if reason:
        pytest.skip(reason)
    jack = jack_folder([EXAMPLES / "duet"], "low-latency", None, lambda _: None)
    if "skipped" in jack:
        pytest.skip(jack["skipped"])
    transcriber = build_transcriber(mode="low-latency")
    stream = stream_arrivals([piece_outputs(EXAMPLES / "duet", None, None)], transcriber.tracker.config,
                             transcriber.assigner.config)  # fmt: skip
    cycles = probe(EXAMPLES / "duet" / "mix.flac").duration_s * 48_000 / 256  # jack_e2e's server: 48 kHz, 256 frames
    if jack["audio_skipped_s"] > 0 or jack["xruns"] > JACK_XRUN_MAX_SHARE * cycles:
        pytest.skip(f"the machine was too loaded to time JACK: {jack['xruns']} xruns, rtamt live dropped "
                    f"{jack['audio_skipped_s']} s of audio")  # fmt: skip
    assert jack["hanging_notes"] == 0 and jack["latency"]["matched_notes"] >= 0.9 * stream["matched_notes"]
    # JACK runs at 48 kHz, the stream path at the file's rate: their resampled signals may put a decision
    # one frame apart, hence the one-hop allowance below zero
    assert -HOP_S * 1000 <= jack["latency"]["median_ms"] - stream["median_ms"] <= JACK_TRANSPORT_MAX_MS


def test_the_status_line_shows_the_expected_note_on_latency() -> None:
    from rtamt.live import LiveEngine
    from rtamt.pipeline import build_transcriber

    engine = LiveEngine(build_transcriber(mode="low-latency"), 22050, 1, None)
    assert "note-on" not in engine.status_line()
    engine.stats.expected_latency_ms = 49.1
    assert "note-on ~49 ms (validation median)" in engine.status_line()


def test_sweep_options_without_recordings_are_refused(capsys: pytest.CaptureFixture) -> None:
    assert main(["bench", "latency", "--sweep", "--no-jack"]) == 2
    assert "need `bench latency --data DIR`" in capsys.readouterr().err


def test_latency_bench_runs_another_model_folder(random_model_dir: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["bench", "latency", "--data", str(EXAMPLES), "--models", str(random_model_dir), "--no-cache"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model_dir"] == str(random_model_dir)
    assert result["clusterer"] is None  # no timbre model there: the tracker alone, every note on one channel
    assert result["stream"]["accuracy"]["channels_mean"] <= 1
    assert result["stream"]["latency"]["matched_notes"] <= result["stream"]["accuracy"]["notes_ref"]


def test_result_json_keeps_number_lists_on_one_line() -> None:
    from rtamt.latency import indented_json

    value = {"tracker": {"onset_lead_frames": [0, 2, 3], "label": "a [b]"}, "points": [{"x": -1.5e-3}, {"x": 2}]}
    text = indented_json(value)
    assert json.loads(text) == value
    assert '"onset_lead_frames": [0, 2, 3]' in text and '"x": -0.0015' in text
