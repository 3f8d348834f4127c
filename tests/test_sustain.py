"""The sustain-pedal stage: key releases under the pedal, the pedal's changes, streaming, and CC64 out."""

from __future__ import annotations

import shutil
from dataclasses import replace
from types import SimpleNamespace
from pathlib import Path

import mido
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtamt.constants import HOP_S, MIDI_MIN, N_PITCHES
from rtamt.midi import SUSTAIN_PEDAL, build_midi
from rtamt.models import ModelError
from rtamt.pipeline import build_transcriber
from rtamt.audio import read_blocks
from rtamt.live import LiveEngine, feed_file
from rtamt.sinks import MidiFileSink, Sink
from rtamt.sustain import WARM_UP_FRAMES, PedalChange, SustainConfig, SustainModel, SustainStage, frame_features, interleave
from rtamt.tracker import NoteEvent, NoteTracker, TrackedBlock, TrackerConfig, events_to_notes

SHIPPED = Path(__file__).resolve().parent.parent / "models" / "sustain.onnx"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "duet" / "mix.flac"
DIM = 4  # embedding channels of the fake frames


class FakeModel:
    """Held probability read from the frames: the first embedding channel of pitch 0 (set by the test)."""

    embedding_dim = DIM
    config = SustainConfig(threshold=0.5, legato_gap_s=0.1)

    def reset(self) -> None:
        pass

    def process(self, features: np.ndarray) -> np.ndarray:
        return features[:, 2 * N_PITCHES]  # pooled channel 0; every pitch carries the same value


def frames_with(held: np.ndarray) -> np.ndarray:
    frames = np.zeros((len(held), 2 + DIM, N_PITCHES), dtype=np.float32)
    frames[:, 1] = 0.01
    frames[:, 2] = held[:, None]
    return frames


def on(pitch: int, frame: int) -> NoteEvent:
    return NoteEvent(True, pitch, frame, frame + 1, 80)


def off(pitch: int, frame: int) -> NoteEvent:
    return NoteEvent(False, pitch, frame, frame + 1)


def run(stage: SustainStage, held: np.ndarray, events: dict[int, list[NoteEvent]], final: list[NoteEvent]) -> list[NoteEvent]:
    block = TrackedBlock(frames_with(held), [events.get(i, []) for i in range(len(held))], final)
    out = stage.process(block)
    return [e for events in (*out.events, out.final) for e in events]


W = WARM_UP_FRAMES  # the pedal stays up over a stream's first frames: the tests play after them


def test_under_the_pedal_a_note_on_releases_the_keys_before_it() -> None:
    stage = SustainStage(FakeModel())
    gap = round(0.1 / HOP_S) + 1
    held = np.ones(W + 100)
    events = {W: [on(60, W), on(64, W)], W + 2: [on(67, W + 2)], W + 2 + gap: [on(72, W + 2 + gap)],
              W + 50: [off(60, W + 50), off(64, W + 50), off(67, W + 50)], W + 60: [off(72, W + 60)]}  # fmt: skip
    out = run(stage, held, events, [])
    notes = {n[2]: n for n in events_to_notes(out)}
    cut = (W + 2 + gap) * HOP_S
    assert notes[60][1] == pytest.approx(cut) and notes[64][1] == pytest.approx(cut) and notes[67][1] == pytest.approx(cut)
    assert notes[72][1] == pytest.approx((W + 60) * HOP_S)  # the last note follows the sound
    assert len([e for e in out if not e.on]) == 4  # the tracker's later note-offs are swallowed
    assert stage.take_changes() == [PedalChange(True, W, W)]  # not before the warm-up is over


def test_a_cut_span_releases_only_the_keys_near_the_new_note() -> None:
    gap = round(0.1 / HOP_S) + 1
    events = {W: [on(40, W), on(72, W)], W + gap: [on(76, W + gap)], W + 50: [off(40, W + 50), off(72, W + 50), off(76, W + 50)]}
    ends = {}
    for span in (None, 12, 3):
        lift = FakeModel.config
        stage = SustainStage(FakeModel(), SustainConfig(lift.threshold, lift.legato_gap_s, cut_span=span))
        ends[span] = {n[2]: round(n[1] / HOP_S) - W for n in events_to_notes(run(stage, np.ones(W + 60), events, []))}
    assert ends[None] == {40: gap, 72: gap, 76: 50}  # every earlier key let go
    assert ends[12] == {40: 50, 72: gap, 76: 50}  # the bass 36 semitones away is still held
    assert ends[3] == {40: 50, 72: 50, 76: 50}  # nothing within 3 semitones


def test_notes_within_the_gap_or_the_warm_up_stay_and_without_the_pedal_nothing_changes() -> None:
    gap = round(0.1 / HOP_S) + 1
    events = {W: [on(60, W)], W + gap - 2: [on(64, W + gap - 2)], W + 40: [off(60, W + 40), off(64, W + 40)]}
    for held in (np.ones(W + 60), np.zeros(W + 60)):
        stage = SustainStage(FakeModel())
        notes = events_to_notes(run(stage, held, events, []))
        assert [n[1] for n in notes] == pytest.approx([(W + 40) * HOP_S] * 2)
    for start, held in ((W, np.zeros(W + 60)), (0, np.ones(W + 60))):  # no pedal; pedal during the warm-up
        events = {start: [on(60, start)], start + 20: [on(64, start + 20)], W + 40: [off(60, W + 40), off(64, W + 40)]}
        notes = events_to_notes(run(SustainStage(FakeModel()), held, events, []))
        assert notes[0][1] == pytest.approx((W + 40) * HOP_S)


def test_a_released_key_struck_again_starts_a_new_note_and_flush_lifts_the_pedal() -> None:
    stage = SustainStage(FakeModel())
    events = {W: [on(60, W)], W + 20: [on(64, W + 20)], W + 30: [off(60, W + 30), on(60, W + 30)]}  # 60 re-struck
    out = run(stage, np.ones(W + 40), events, [off(60, W + 40), off(64, W + 40)])
    notes = events_to_notes(out)
    assert [(round(n[0] / HOP_S) - W, round(n[1] / HOP_S) - W, n[2]) for n in notes] == [(0, 20, 60), (20, 30, 64), (30, 40, 60)]
    stage.flush()
    assert stage.take_changes() == [PedalChange(True, W, W), PedalChange(False, W + 40, W + 40)]
    assert not stage.down and stage.take_changes() == []


def test_the_hold_keeps_the_pedal_down_through_short_dips_and_no_hold_lifts_it_at_once() -> None:
    gap = round(0.1 / HOP_S) + 1
    held = np.ones(W + 100)
    held[W + 30 : W + 33] = 0.0  # a 3-frame dip
    held[W + 60 :] = 0.0  # the pedal really comes up
    events = {W: [on(60, W)], W + 31: [on(64, W + 31)], W + 31 + gap: [on(67, W + 31 + gap)],
              W + 90: [off(60, W + 90), off(64, W + 90), off(67, W + 90)]}  # fmt: skip
    lift = FakeModel.config
    for hold, changes, cut in ((4, [(True, W), (False, W + 64)], W + 31),  # up on the 5th frame under
                               (0, [(True, W), (False, W + 30), (True, W + 33), (False, W + 60)], W + 31 + gap)):  # fmt: skip
        stage = SustainStage(FakeModel(), SustainConfig(lift.threshold, lift.legato_gap_s, release_frames=hold))
        notes = {n[2]: n for n in events_to_notes(run(stage, held, events, []))}
        assert [(c.down, c.frame) for c in stage.take_changes()] == changes
        assert notes[60][1] == pytest.approx(cut * HOP_S)  # cut by the note-on in the dip only while the pedal holds
        assert notes[64][1] == pytest.approx((W + 31 + gap) * HOP_S)  # the pedal is down again (or still) by then


def test_a_blip_shorter_than_the_press_hold_leaves_the_pedal_up() -> None:
    held = np.zeros(W + 60)
    held[W + 10 : W + 12] = 1.0  # 2 frames over the threshold
    held[W + 30 : W + 40] = 1.0  # 10 frames
    lift = FakeModel.config
    for press, changes in ((3, [(True, W + 32), (False, W + 40)]),
                           (1, [(True, W + 10), (False, W + 12), (True, W + 30), (False, W + 40)])):  # fmt: skip
        stage = SustainStage(FakeModel(), SustainConfig(lift.threshold, lift.legato_gap_s, press_frames=press))
        run(stage, held, {}, [])
        assert [(c.down, c.frame) for c in stage.take_changes()] == changes


def test_pedal_changes_go_between_the_events_by_decision_frame() -> None:
    events = [on(60, 0), off(60, 9), on(62, 10)]  # decided at 1, 10, 11
    down, up = PedalChange(True, 10, 10), PedalChange(False, 11, 11)
    assert interleave(events, [down, up]) == [events[0], down, events[1], events[2], up]


@pytest.mark.skipif(not SHIPPED.exists(), reason="no shipped sustain model")
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=st.lists(st.integers(1, 90), min_size=1, max_size=8))
def test_the_sustain_stage_streams(sizes: list[int]) -> None:
    """Random model frames through tracker and sustain stage: any chunking gives the same events and pedal."""
    rng = np.random.default_rng(5)
    model = SustainModel(SHIPPED)
    frames = rng.random((300, 2 + model.embedding_dim, N_PITCHES)).astype(np.float32)
    frames[:, :2] = frames[:, :2] ** 3  # sparse notes
    config = TrackerConfig()
    held = np.sort(model.process(frame_features(frames)))
    threshold = float(held[len(held) // 2] + held[len(held) // 2 + 1]) / 2  # the pedal goes down and up

    def through(chunks: list[np.ndarray]) -> tuple[list, list, list]:
        tracker, stage = NoteTracker(config, keep_frames=True), SustainStage(model, SustainConfig(threshold=threshold, press_frames=2, release_frames=3))
        blocks = [stage.process(tracker.process(chunk)) for chunk in chunks] + [stage.process(tracker.flush())]
        stage.flush()
        pedal = [bool(down) for b in blocks for down in b.pedal]  # what the clusterer after it reads
        return [e for b in blocks for events in (*b.events, b.final) for e in events], stage.take_changes(), pedal

    expected = through([frames])
    edges = np.cumsum(sizes)
    chunks = [c for c in np.split(frames, edges[edges < len(frames)]) if len(c)]
    assert through(chunks) == expected
    assert expected[1] and not expected[1][-1].down
    assert len(expected[2]) == len(frames) and any(expected[2]) and not all(expected[2])


def test_midi_file_carries_the_pedal_on_every_track_and_close_lifts_it(tmp_path: Path) -> None:
    sink = MidiFileSink(tmp_path / "out.mid")
    sink.send(NoteEvent(True, 60, 0, 1, 90, timbre=0))
    sink.pedal(PedalChange(True, 10, 10))
    sink.send(NoteEvent(True, 40, 10, 11, 90, timbre=1))
    sink.send(NoteEvent(False, 60, 10, 11, timbre=0))  # released under the pedal at the same moment
    sink.close()  # note 40 still sounds and the pedal is down: both end
    midi = mido.MidiFile(tmp_path / "out.mid")
    for track in midi.tracks[1:]:
        pedal = [m.value for m in track if m.type == "control_change" and m.control == SUSTAIN_PEDAL]
        assert pedal == [127, 0]
    first = [m.type for m in midi.tracks[1] if m.type in ("control_change", "note_off")]
    assert first == ["control_change", "note_off", "control_change"]  # down before the release at one tick


def test_build_midi_without_pedal_has_no_controller_messages() -> None:
    midi = build_midi([NoteEvent(True, 60, 0, 1, 90), NoteEvent(False, 60, 20, 21)])
    assert not [m for t in midi.tracks for m in t if m.type == "control_change"]


@pytest.mark.skipif(not SHIPPED.exists(), reason="no shipped sustain model")
def test_a_corrupt_sustain_model_is_a_clear_error_and_the_chain_runs_without_one(tmp_path: Path) -> None:
    for name in ("backbone.onnx", "timbre.onnx"):
        shutil.copy(SHIPPED.parent / name, tmp_path / name)
    transcriber = build_transcriber(22_050, tmp_path)
    assert transcriber.sustain is None and transcriber.take_pedal() == []
    assert build_transcriber(22_050, SHIPPED.parent).sustain is not None
    (tmp_path / "sustain.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelError, match="sustain.onnx: not a valid ONNX model"):
        build_transcriber(22_050, tmp_path)


def test_held_target_marks_notes_ringing_past_their_key_release() -> None:
    pytest.importorskip("torch")
    from rtamt.training.sustain import held_target

    notes = np.array([[0.0, 2.0, 60, 80, 0], [0.5, 1.0, 64, 80, 0]], dtype=np.float32)
    target = held_target(200, notes, np.array([1.0, 1.0]))  # the first rings a second past its key-off
    times = np.arange(200) * HOP_S
    assert target[(times > 1.01) & (times < 1.94)].all()
    assert not target[times < 0.99].any() and not target[times > 1.96].any()


def test_the_cut_span_option_reads_all_or_semitones_and_names_its_candidates() -> None:
    pytest.importorskip("torch")
    from rtamt.training.sustain import config_key, cut_span

    assert [cut_span(text) for text in ("all", "12")] == [None, 12]
    assert config_key(SustainConfig(0.05, 0.05, 1, 16)) == "threshold 0.05, gap 0.05, press 1, release 16"
    assert config_key(SustainConfig(0.05, 0.05, 1, 16, cut_span=12)).endswith(", span 12")
    assert SustainConfig.from_json(SustainConfig(cut_span=7).to_json()).cut_span == 7


@pytest.mark.skipif(not SHIPPED.exists(), reason="no shipped sustain model")
def test_score_replays_a_model_at_its_stored_settings_for_each_cut_span(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from rtamt.training.sustain import config_key, score

    frames = np.zeros((300, 2 + 12, N_PITCHES), dtype=np.float16)
    frames[60:200, 1, [20, 50]] = 0.9  # two notes sounding together
    frames[60:63, 0, [20, 50]] = 0.9
    notes = np.array([[60 * HOP_S, 200 * HOP_S, MIDI_MIN + 20, 80, 0], [60 * HOP_S, 200 * HOP_S, MIDI_MIN + 50, 80, 0]])
    np.savez(tmp_path / "example-00000.npz", frames=frames, held=np.zeros(300), notes=notes, key_offs=notes[:, 1])
    figures = score(SHIPPED, [tmp_path], SHIPPED.parent / "backbone.onnx", (None, 12))
    stored = SustainModel(SHIPPED).config
    assert list(figures) == [config_key(replace(stored, cut_span=None)), config_key(replace(stored, cut_span=12))]
    for entry in figures.values():
        assert entry["per split"] == {str(tmp_path): entry["mean"]} and entry["mean"] == pytest.approx(1.0)


class RecordingSink(Sink):
    """Keeps what it is given, notes and pedal, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list = []

    def emit(self, event: NoteEvent) -> None:
        self.received.append(event)

    def emit_pedal(self, change: PedalChange) -> None:
        self.received.append(change)


@pytest.mark.skipif(not SHIPPED.exists(), reason="no shipped sustain model")
def test_live_engine_sends_the_pedal_before_the_notes_it_holds_and_lifts_it_at_the_end() -> None:
    transcriber = build_transcriber(model_dir=SHIPPED.parent)
    transcriber.sustain.config = SustainConfig(threshold=0.0)  # the pedal always down: every key released
    sink = RecordingSink()
    engine = LiveEngine(transcriber, 44_100, 1, [sink], max_backlog_s=None)
    engine.start()
    feed_file(engine, str(EXAMPLE), realtime=False)
    engine.join(120)
    sink.close()
    assert engine.error is None
    pedal = [i for i, item in enumerate(sink.received) if isinstance(item, PedalChange)]
    assert [sink.received[i].down for i in pedal] == [True, False]
    notes = [item for item in sink.received if isinstance(item, NoteEvent)]
    first_off = next(i for i, item in enumerate(sink.received) if isinstance(item, NoteEvent) and not item.on)
    assert sum(e.on for e in notes) >= 20 and pedal[0] < first_off and pedal[1] == len(sink.received) - 1
    offline = build_transcriber(44_100, SHIPPED.parent, sustain=False).chain.run(read_blocks(EXAMPLE))
    assert len(notes) == len(offline)  # the same notes, ended sooner
    assert sum(e.time_s for e in notes if not e.on) < sum(e.time_s for e in offline if not e.on)


def test_osc_sends_the_pedal_to_its_own_address() -> None:
    pytest.importorskip("pythonosc")
    from rtamt.sinks import OscSink

    sink = OscSink(port=9)  # UDP: nothing needs to listen
    sent: list[tuple] = []
    sink._client = SimpleNamespace(send_message=lambda address, values: sent.append((address, *values)))
    sink.send(NoteEvent(True, 60, 0, 1, 90))
    sink.pedal(PedalChange(True, 10, 10))
    sink.close()  # note-off, then the pedal up
    assert [s[0] for s in sent] == ["/rtamt/note", "/rtamt/pedal", "/rtamt/note", "/rtamt/pedal"]
    assert sent[1][1:] == (1, pytest.approx(10 * HOP_S)) and sent[3][1] == 0
