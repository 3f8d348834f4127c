"""Online note tracker: rules, streaming equals one pass, no hanging notes, MIDI file output."""

from __future__ import annotations

from pathlib import Path

import mido
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtamt.constants import HOP_S, MIDI_MIN
from rtamt.midi import channel_for, write_midi_file
from rtamt.tracker import NoteTracker, TrackerConfig, events_to_notes

CONFIG = TrackerConfig(onset_threshold=0.5, frame_threshold=0.3, sustain_threshold=0.7, sustain_frames=6,
                       off_frames=3, min_frames=4)  # fmt: skip


def probs(frames: int) -> np.ndarray:
    return np.zeros((frames, 2, 84), dtype=np.float32)


def add_note(p: np.ndarray, pitch: int, start: int, end: int, peak: float = 0.9) -> None:
    i = pitch - MIDI_MIN
    p[start - 1, 0, i], p[start, 0, i], p[start + 1, 0, i] = 0.3, peak, 0.4
    p[start:end, 1, i] = 0.8


def run(p: np.ndarray, config: TrackerConfig = CONFIG) -> list:
    tracker = NoteTracker(config)
    return tracker.process(p) + tracker.flush()


def test_a_clean_note_gives_one_note_with_its_times() -> None:
    p = probs(100)
    add_note(p, 60, 20, 50)
    events = run(p)
    assert [(e.on, e.pitch, e.frame) for e in events] == [(True, 60, 20), (False, 60, 50)]
    assert events[0].decided == 21  # decided one frame after the onset frame
    assert events[1].decided == 52  # third quiet frame
    assert events[0].velocity == round(30 + 97 * 0.9)


def test_the_rise_rule_decides_a_frame_sooner_and_once_per_plateau() -> None:
    p = probs(100)
    i = 60 - MIDI_MIN
    p[18:26, 0, i] = [0.2, 0.4, 0.6, 0.8, 0.9, 0.7, 0.6, 0.3]  # a wide onset plateau, peak at 22
    p[20:50, 1, i] = 0.8
    rise = TrackerConfig(**{**CONFIG.__dict__, "onset_rise": True})
    events = run(p, rise)
    assert [(e.on, e.frame, e.decided) for e in events] == [(True, 20, 20), (False, 50, 52)]
    assert NoteTracker(rise).latency_s == 0.0 and NoteTracker(CONFIG).latency_s == HOP_S
    assert [(e.on, e.frame, e.decided) for e in run(p)][0] == (True, 22, 23)  # the peak rule waits for the top
    p[40:44, 0, i] = [0.3, 0.7, 0.8, 0.2]  # crossing again while sounding: a re-strike at 41
    assert [(e.on, e.frame) for e in run(p, rise)] == [(True, 20), (False, 41), (True, 41), (False, 50)]
    early = TrackerConfig(**{**rise.__dict__, "rise_backdate_frames": 2})
    assert [(e.on, e.frame, e.decided) for e in run(p, early)][:3] == [(True, 18, 20), (False, 39, 41), (True, 39, 41)]
    p[5:12, 1, i] = 0.8  # an earlier note on the pitch, ended at 12 (decided at 14)
    p[15, 0, i] = 0.6  # reaches the threshold at 15: placed 4 frames earlier would overlap that note
    later = TrackerConfig(**{**rise.__dict__, "rise_backdate_frames": 4})
    assert [(e.on, e.frame, e.decided) for e in run(p, later)][:3] == [(True, 5, 10), (False, 12, 14), (True, 12, 15)]


def test_weak_onsets_are_ignored_and_sustained_energy_starts_a_backdated_note() -> None:
    p = probs(100)
    add_note(p, 64, 10, 12, peak=0.45)  # below the onset threshold; frames only 2 long
    i = 67 - MIDI_MIN
    p[40:70, 1, i] = 0.9  # no onset at all, but sustained
    notes = events_to_notes(run(p))
    assert notes == [(40 * HOP_S, 70 * HOP_S, 67, round(30 + 97 * 0.9))]


def test_a_sustained_start_is_backdated_to_its_onset_bump() -> None:
    p = probs(100)
    i = 67 - MIDI_MIN
    p[35:80, 1, i] = 0.8  # over the sustain threshold from frame 35
    p[31:36, 0, i] = [0.05, 0.1, 0.3, 0.2, 0.1]  # a soft attack: an onset bump under the threshold at 33
    p[20, 0, i] = 0.45  # an older, larger bump outside the back-dating window
    events = run(p, TrackerConfig(**{**CONFIG.__dict__, "backdate_frames": 8}))
    assert [(e.on, e.frame, e.decided) for e in events][0] == (True, 33, 40)  # decided at 35 + 6 - 1
    capped = run(p, TrackerConfig(**{**CONFIG.__dict__, "backdate_frames": 1}))
    assert capped[0].frame == 34
    flat = run(p, TrackerConfig(**{**CONFIG.__dict__, "backdate_frames": 0}))
    assert flat[0].frame == 35


def test_an_onset_bump_and_a_lower_frame_probability_together_start_a_note_at_once() -> None:
    p = probs(100)
    i = 67 - MIDI_MIN
    p[31:36, 0, i] = [0.05, 0.1, 0.2, 0.15, 0.1]  # a soft attack: a bump at 33, under the onset threshold
    p[35:37, 1, i] = 0.35  # the frame probability climbs slowly
    p[37:80, 1, i] = 0.8  # over the sustain threshold from 37
    assert [(e.on, e.frame, e.decided) for e in run(p)][0] == (True, 33, 42)  # sustained start: 37 + 6 - 1
    joint = TrackerConfig(**{**CONFIG.__dict__, "bump_threshold": 0.15, "bump_sustain_threshold": 0.3})
    events = run(p, joint)
    assert [(e.on, e.frame, e.decided) for e in events][0] == (True, 33, 35)  # decided when both agree
    assert [(e.on, e.frame) for e in events] == [(True, 33), (False, 80)]
    assert run(p, TrackerConfig(**{**joint.__dict__, "bump_threshold": 0.25}))[0].decided == 42  # bump too small
    assert run(p, TrackerConfig(**{**joint.__dict__, "bump_sustain_threshold": 0.4}))[0].decided == 37
    p[31:36, 0, i] = 0.0  # no bump: the lower frame probability alone starts nothing
    assert run(p, joint)[0].decided == 42


def test_a_backdated_start_never_overlaps_the_previous_note_on_its_pitch() -> None:
    p = probs(120)
    i = 67 - MIDI_MIN
    p[10:40, 1, i] = 0.9  # a sustained note, ends at 40 (three quiet frames needed)
    p[40:44, 1, i] = 0.1  # quiet
    p[38, 0, i] = 0.3  # an onset bump (under the threshold) while the previous note still sounds
    p[44:48, 1, i] = [0.2, 0.3, 0.5, 0.65]
    p[48:90, 1, i] = 0.9
    notes = events_to_notes(run(p))
    assert len(notes) == 2
    assert notes[1][0] >= notes[0][1]


def test_restrike_on_a_sounding_pitch_and_minimum_duration() -> None:
    p = probs(120)
    add_note(p, 72, 10, 80)
    add_note(p, 72, 40, 80)  # repeated note while the first still sounds
    p[:, 1, 72 - MIDI_MIN][10:80] = 0.8
    notes = events_to_notes(run(p))
    assert [(round(a / HOP_S), round(b / HOP_S)) for a, b, _, _ in notes] == [(10, 40), (40, 80)]
    q = probs(60)
    add_note(q, 50, 10, 11)  # frame activity for one frame only
    (note,) = events_to_notes(run(q))
    assert round((note[1] - note[0]) / HOP_S) == CONFIG.min_frames


def test_a_restrike_threshold_applies_to_sounding_pitches_only() -> None:
    p = probs(120)
    add_note(p, 72, 10, 80)
    add_note(p, 72, 40, 80, peak=0.35)  # a soft re-strike, under the onset threshold (its top at 41)
    add_note(p, 60, 60, 90, peak=0.35)  # a soft fresh onset, too short for the sustained rule
    p[60:64, 1, 60 - MIDI_MIN] = 0.8
    p[64:90, 1, 60 - MIDI_MIN] = 0.0
    p[:, 1, 72 - MIDI_MIN][10:80] = 0.8
    assert [(e.on, e.pitch, e.frame) for e in run(p)] == [(True, 72, 10), (False, 72, 80)]
    soft = TrackerConfig(**{**CONFIG.__dict__, "restrike_threshold": 0.3})
    assert [(e.on, e.pitch, e.frame) for e in run(p, soft)] == [(True, 72, 10), (False, 72, 41), (True, 72, 41), (False, 72, 80)]


def test_flush_ends_every_sounding_note() -> None:
    p = probs(50)
    for pitch in (40, 52, 77):
        add_note(p, pitch, 10, 50)
    tracker = NoteTracker(CONFIG)
    events = tracker.process(p)
    assert sum(e.on for e in events) == 3 and not any(not e.on for e in events)
    tail = tracker.flush()
    assert sorted(e.pitch for e in tail) == [40, 52, 77] and all(not e.on for e in tail)
    assert len(events_to_notes(events + tail)) == 3


def with_leads(config: TrackerConfig, onset: int, sustain: int) -> TrackerConfig:
    return TrackerConfig(**{**config.__dict__, "onset_lead_frames": (onset,) * 84, "sustain_lead_frames": (sustain,) * 84})


def test_calibrated_leads_move_reported_starts_not_decisions() -> None:
    p = probs(200)
    add_note(p, 60, 20, 50)  # started by its onset
    p[80:110, 1, 67 - MIDI_MIN] = 0.9  # started by sustained energy (no onset bump: at 80)
    p[140:170, 1, 70 - MIDI_MIN] = 0.9  # started by sustained energy, back-dated to an onset bump at 138
    p[137:140, 0, 70 - MIDI_MIN] = [0.1, 0.3, 0.2]
    plain, led = run(p), run(p, with_leads(CONFIG, onset=1, sustain=3))
    assert [(e.on, e.pitch, e.frame, e.decided) for e in led] == [(e.on, e.pitch, e.frame, e.decided) for e in plain]
    assert [(e.pitch, round(e.time_s / HOP_S)) for e in led if e.on] == [(60, 19), (67, 77), (70, 135)]
    assert [round(e.time_s / HOP_S) for e in led if not e.on] == [50, 110, 170]  # note-offs keep their time
    assert run(p, with_leads(CONFIG, onset=0, sustain=0)) == plain
    with pytest.raises(ValueError):
        TrackerConfig(onset_lead_frames=(1, 2))  # one per pitch or none
    assert TrackerConfig.from_json(with_leads(CONFIG, 1, 3).to_json()) == with_leads(CONFIG, 1, 3)


def test_a_calibrated_start_never_precedes_the_previous_note_on_its_pitch() -> None:
    p = probs(200)
    p[10:40, 1, 67 - MIDI_MIN] = 0.9  # ends at 40
    p[44:90, 1, 67 - MIDI_MIN] = 0.9  # starts by sustained energy at 44: a lead of 5 would overlap
    first_off, second_on = [e for e in run(p, with_leads(CONFIG, 0, 5)) if e.pitch == 67][1:3]
    assert round(first_off.time_s / HOP_S) == 40 and round(second_on.time_s / HOP_S) == 40
    q = probs(120)
    add_note(q, 72, 10, 80)
    add_note(q, 72, 40, 80)  # a re-strike at 40: the old note ends where the new one is reported to start
    q[:, 1, 72 - MIDI_MIN][10:80] = 0.8
    events = run(q, with_leads(CONFIG, onset=2, sustain=0))
    assert [(e.on, round(e.time_s / HOP_S)) for e in events] == [(True, 8), (False, 38), (True, 38), (False, 80)]
    r = probs(60)
    add_note(r, 50, 1, 30)  # a lead past the stream's start is cut at frame 0
    assert run(r, with_leads(CONFIG, onset=4, sustain=0))[0].time_s == 0.0


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(1, 50), min_size=1, max_size=10), seed=st.integers(0, 1000), rise=st.booleans(),
       leads=st.booleans(), bump=st.booleans())
def test_streaming_equals_one_pass(sizes: list[int], seed: int, rise: bool, leads: bool, bump: bool) -> None:
    rng = np.random.default_rng(seed)
    p = (rng.random((300, 2, 84)) ** 6).astype(np.float32)  # sparse peaks
    config = TrackerConfig(**{**CONFIG.__dict__, "onset_rise": rise, "rise_backdate_frames": 2 * rise,
                              "bump_threshold": 0.2 if bump else None, "bump_sustain_threshold": 0.3})  # fmt: skip
    if leads:
        config = TrackerConfig(**{**config.__dict__, "onset_lead_frames": tuple(rng.integers(0, 4, 84)),
                                  "sustain_lead_frames": tuple(rng.integers(0, 4, 84))})  # fmt: skip
    expected = run(p, config)
    tracker = NoteTracker(config)
    got, pos, i = [], 0, 0
    while pos < len(p):
        got += tracker.process(p[pos : pos + sizes[i % len(sizes)]])
        pos, i = pos + sizes[i % len(sizes)], i + 1
    got += tracker.flush()
    assert got == expected
    events_to_notes(got)  # raises if any note were left without its note-off


def test_midi_file_has_one_track_per_timbre_and_no_hanging_notes(tmp_path: Path) -> None:
    p = probs(200)
    add_note(p, 60, 10, 60)
    add_note(p, 64, 30, 90)
    add_note(p, 60, 100, 150)
    events = run(p)
    timbres = [0 if e.pitch == 60 else 2 for e in events]
    out = tmp_path / "out.mid"
    assert write_midi_file(out, events, timbres) == 2
    midi = mido.MidiFile(out)
    assert [t.name for t in midi.tracks[1:]] == ["timbre 1", "timbre 3"]
    for track in midi.tracks[1:]:
        ons = [m for m in track if m.type == "note_on" and m.velocity > 0]
        offs = [m for m in track if m.type == "note_off"]
        assert len(ons) == len(offs) > 0
        assert len({m.channel for m in ons}) == 1
    assert channel_for(0) == 0 and channel_for(9) == 10  # channel 10 (drums) is skipped
    assert not (tmp_path / "out.mid.tmp").exists()
    assert midi.length == pytest.approx(150 * HOP_S, abs=0.01)


def test_modes_pick_the_accurate_or_the_low_latency_settings(random_model_dir: Path, tmp_path: Path) -> None:
    import shutil

    pytest.importorskip("onnx")
    from rtamt.pipeline import build_transcriber
    from rtamt.training.export import write_metadata

    model = tmp_path / "backbone.onnx"
    shutil.copy(random_model_dir / "backbone.onnx", model)
    accurate = TrackerConfig(sustain_frames=8)
    write_metadata(model, "tracker", accurate.to_json())
    assert build_transcriber(model_dir=tmp_path, mode="low-latency").tracker.config == accurate  # falls back
    fast = TrackerConfig(sustain_frames=3, onset_threshold=0.2)
    write_metadata(model, "tracker_low_latency", fast.to_json())
    assert build_transcriber(model_dir=tmp_path, mode="low-latency").tracker.config == fast
    assert build_transcriber(model_dir=tmp_path).tracker.config == accurate
    with pytest.raises(ValueError):
        build_transcriber(model_dir=tmp_path, mode="fast")


def test_settings_stored_before_the_onset_peak_rule_still_load() -> None:
    old = '{"onset_threshold": 0.4, "frame_threshold": 0.15, "sustain_threshold": 0.3, "sustain_frames": 8, ' \
          '"off_frames": 2, "min_frames": 6, "rise_floor": 0.02, "rise_max_frames": 12}'
    config = TrackerConfig.from_json(old)
    assert config.backdate_frames == 12 and config.sustain_frames == 8
    assert TrackerConfig.from_json(config.to_json()) == config
    assert not config.onset_rise and config.rise_backdate_frames == 0  # settings stored before the rise rule
    shipped = '{"onset_threshold": 0.5, "frame_threshold": 0.2, "sustain_threshold": 0.5, "sustain_frames": 1, ' \
              '"off_frames": 3, "min_frames": 4, "backdate_frames": 16}'
    assert TrackerConfig.from_json(shipped) == TrackerConfig(0.5, 0.2, 0.5, 1, 3, 4, 16, onset_rise=False)


def test_threshold_search_with_workers_equals_one_process() -> None:
    from rtamt.training.tune import search

    rng = np.random.default_rng(3)
    data = []
    for _ in range(2):
        p = probs(120)
        reference = []
        for pitch, start in zip(rng.integers(40, 90, 4), rng.integers(5, 80, 4)):
            add_note(p, int(pitch), int(start), int(start) + 30, peak=float(rng.uniform(0.2, 0.9)))
            reference.append((start * HOP_S, (start + 30) * HOP_S, int(pitch)))
        p += (rng.random(p.shape) ** 8).astype(np.float32) * 0.6  # spurious peaks
        data.append((p, reference))
    one = search(data, lookahead=2, rounds=0, max_latency_ms=40.0)  # the latency grid
    assert search(data, lookahead=2, rounds=0, max_latency_ms=40.0, workers=2) == one
    assert one[1][2] <= 40.0 and 0.0 < one[1][0] <= 1.0
    walk = search(data, lookahead=2, rounds=1)  # the coordinate walk
    assert search(data, lookahead=2, rounds=1, workers=2) == walk


def test_the_onset_plus_offset_objective_trades_a_little_onset_f1_for_offsets(monkeypatch) -> None:
    from rtamt.training import tune

    def fake_score(config: TrackerConfig, data, lookahead: int) -> tuple[float, float, float, float]:
        onset = 0.70 if config.frame_threshold == 0.15 else 0.69
        offset = 0.40 if config.frame_threshold == 0.3 else 0.30
        return onset, offset, 50.0, 100.0

    monkeypatch.setattr(tune, "score", fake_score)
    start = TrackerConfig(frame_threshold=0.2)
    by_onset, _ = tune.search([], lookahead=2, rounds=1, start=start)
    by_both, (onset, offset, _, _) = tune.search([], lookahead=2, rounds=1, start=start, objective="onset+offset")
    assert by_onset.frame_threshold == 0.15 and by_both.frame_threshold == 0.3
    assert (onset, offset) == (0.69, 0.40)


def test_a_search_pool_ends_even_when_the_parent_only_records_sigterm() -> None:
    """A Python SIGTERM handler left in the parent (``rtamt live`` used as a library takes the signal to stop
    cleanly) must not keep forked workers alive through terminate(): the search would wait for ever."""
    import signal
    import threading
    import time

    from rtamt.training.tune import forked_pool

    received = []
    previous = signal.signal(signal.SIGTERM, lambda number, _: received.append(number))
    shared: list = []
    results: list = []

    def run() -> None:
        with forked_pool(2, shared, [1]) as pool:
            results.extend(pool.map(abs, [-1, -2, -3]))
            pool.map_async(time.sleep, [60.0, 60.0])  # busy workers when the pool ends
            time.sleep(0.5)

    try:
        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        worker.join(30.0)
        assert not worker.is_alive(), "the pool's workers outlived terminate()"
        assert results == [1, 2, 3] and not received
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_fitted_leads_undo_a_known_lag() -> None:
    from rtamt.training.tune import fit_leads, matches_per_pitch

    data = []
    for shift in range(3):
        p = probs(200)
        reference = []
        for k, pitch in enumerate((48, 50, 53, 55)):
            start = 20 + 40 * k + shift
            p[start + 5 : start + 30, 1, pitch - MIDI_MIN] = 0.9  # energy arrives 5 frames (58 ms) late
            reference.append((start * HOP_S, (start + 30) * HOP_S, pitch))
        data.append((p, reference))
    assert matches_per_pitch(CONFIG, data).sum() == 0  # outside the 50 ms tolerance
    fitted = fit_leads(CONFIG, data, "sustain_lead_frames", max_lead=6)
    assert fitted.onset_lead_frames == () and 1 <= fitted.sustain_lead_frames[50 - MIDI_MIN] <= 6
    assert matches_per_pitch(fitted, data).sum() == 12  # every note now within tolerance


def test_calibration_keeps_stored_tables_that_score_higher() -> None:
    """Two neighbouring pitches lag differently: the smoothed fit must give both one lead, so a stored
    table with each pitch's own lead matches more notes, and calibration keeps it."""
    from dataclasses import replace

    from rtamt.constants import N_PITCHES
    from rtamt.training.tune import calibrate, matches_per_pitch

    data = []
    for shift in range(3):
        p = probs(400)
        reference = []
        for k, (pitch, lag) in enumerate(((48, 9), (50, 0), (50, 0), (48, 9), (50, 0))):
            start = 20 + 60 * k + shift
            p[start + lag : start + lag + 30, 1, pitch - MIDI_MIN] = 0.9
            reference.append((start * HOP_S, (start + 30) * HOP_S, pitch))
        data.append((p, reference))
    leads = [0] * N_PITCHES
    leads[48 - MIDI_MIN] = 9  # 104 ms: no lead within the 50 ms tolerance suits both pitches
    stored = replace(CONFIG, sustain_lead_frames=tuple(leads))
    assert matches_per_pitch(stored, data).sum() == 15  # each pitch's own lead matches every note

    config, figures = calibrate(stored, data, lookahead=0, max_lead=10)
    assert figures["kept"] and config == stored
    assert figures["with"]["onset_f1"] > figures["fitted"]["onset_f1"]

    fresh, fresh_figures = calibrate(CONFIG, data, lookahead=0, max_lead=10)  # nothing stored to keep
    assert not fresh_figures["kept"] and matches_per_pitch(fresh, data).sum() < 15


def test_stored_settings_are_scored_without_a_search(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """``tune stored`` scores each tracker setting the model stores on the (cached) validation outputs: a
    clear onset and frame at every reference note scores onset F1 1 in both modes."""
    import json
    import pickle

    from rtamt.backbone import Backbone
    from rtamt.models import models_dir
    from rtamt.training.tune import VALIDATION, graph_digest, main

    model = models_dir() / "backbone.onnx"
    p = probs(200)
    reference = []
    for k, pitch in enumerate((48, 55, 62)):
        start = 20 + 50 * k
        p[start, 0, pitch - MIDI_MIN] = 0.95
        p[start : start + 30, 1, pitch - MIDI_MIN] = 0.9
        reference.append((start * HOP_S, (start + 30) * HOP_S, pitch))
    key = (graph_digest(model), [str(s) for s in VALIDATION], 40)
    cache = tmp_path / "outputs.pkl"
    cache.write_bytes(pickle.dumps((key, [(p, reference)])))
    assert main(["stored", "--model", str(model), "--cache", str(cache)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["examples"] == 1
    assert report["accurate"]["onset_f1"] == 1.0 and report["low-latency"]["onset_f1"] == 1.0
    curve = json.loads(Backbone(model).meta["tracker_curve"])  # every point --latency-budget picks from
    assert [point["label"] for point in report["curve"]] == [point["label"] for point in curve]
    assert all(point["onset_f1"] == 1.0 for point in report["curve"])
    assert report["onset_head"]["notes"] == 3 and report["onset_head"]["share_above"]["0.5"] == 1.0
    assert report["onset_head"]["onset_probability_at_true_onsets"]["p10"] == pytest.approx(0.95)
    octaves = report["low-latency"]["by_octave"]  # C3-B3 holds two of the notes, C4-B4 the third
    assert [(row["midi"], row["notes"]) for row in octaves] == [([48, 59], 2), ([60, 71], 1)]
    # the acoustics seed is part of the cache key: the dry outputs are not reused for rooms
    from rtamt.training import tune

    heard: list = []
    monkeypatch.setattr(tune, "probabilities", lambda model, split, limit, acoustics: heard.append(acoustics) or [])
    assert tune.cached_probabilities(model, list(VALIDATION), 40, cache)[0][1] == reference and heard == []
    assert tune.cached_probabilities(model, list(VALIDATION), 40, cache, acoustics=0) == [] and heard == [0, 0]


def test_tune_cache_reuses_results_only_under_the_same_key(tmp_path) -> None:
    from rtamt.training.tune import cached

    calls: list[int] = []

    def compute() -> list[int]:
        calls.append(1)
        return [len(calls)]

    path = tmp_path / "frames.pkl"
    assert cached(path, ("model", 10), compute) == [1]
    assert cached(path, ("model", 10), compute) == [1]  # reused: not computed again
    assert cached(path, ("model", 20), compute) == [2]  # another key (e.g. another limit): computed again
    assert cached(None, ("model", 20), compute) == [3]  # no cache file: always computed
