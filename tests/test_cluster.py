"""Online timbre clustering: evidence before spawning, merging, caps, streaming equals one pass,
channels fixed at note-on, separation scoring, hindsight refinement."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtamt.chain import Chain
from rtamt.cluster import ClusterConfig, OnlineClusterer, TimbreAssigner, refine
from rtamt.constants import MIDI_MIN
from rtamt.evaluate import separation_metrics
from rtamt.tracker import NoteEvent, NoteTracker, TrackerConfig
from tests.conftest import split_randomly

DIM = 12
RNG = np.random.default_rng(0)
CENTRES = np.linalg.qr(RNG.standard_normal((DIM, DIM)))[0][:4]  # orthogonal timbres


def noisy(timbre: int, noise: float = 0.1) -> np.ndarray:
    e = CENTRES[timbre] + noise * RNG.standard_normal(DIM) / np.sqrt(DIM)
    return e / np.linalg.norm(e)


def play(clusterer: OnlineClusterer, embedding: np.ndarray) -> int:
    """One short note (its whole-note embedding equals its first frames'): the channel it was sent on."""
    index, novel = clusterer.assign(embedding)
    channel = clusterer.clusters[index].channel
    clusterer.update(index, embedding, embedding, novel, 10)
    return channel


def channels_for(sequence: list[int], config: ClusterConfig) -> list[int]:
    clusterer = OnlineClusterer(config)
    return [play(clusterer, noisy(t)) for t in sequence]


def test_one_odd_note_does_not_spawn_a_channel() -> None:
    out = channels_for([0] * 8 + [1] + [0] * 8, ClusterConfig(join_threshold=0.7, evidence=3))
    assert set(out) == {0}


def test_a_new_timbre_gets_a_channel_after_enough_evidence() -> None:
    out = channels_for([0] * 6 + [1] * 6 + [0, 1] * 4, ClusterConfig(join_threshold=0.7, evidence=3))
    assert out[:6] == [0] * 6
    assert out[6:9] == [0, 0, 0]  # gathering evidence: sent on the nearest existing channel
    assert out[9:12] == [1] * 3  # promoted when the third note of the new timbre ended
    assert out[12:] == [0, 1] * 4


def test_short_novel_notes_are_no_evidence_for_a_new_timbre() -> None:
    def run(frames: int) -> list[int]:
        clusterer = OnlineClusterer(ClusterConfig(join_threshold=0.7, evidence=2, evidence_min_frames=10))
        out = []
        for timbre in [0] * 6 + [1] * 6:
            index, novel = clusterer.assign(e := noisy(timbre))
            out.append(clusterer.clusters[index].channel)
            clusterer.update(index, e, e, novel, frames)
        return out

    assert run(9) == [0] * 12  # blips of another timbre: nothing spawns
    assert run(10) == [0] * 8 + [1] * 4  # notes long enough: the second one promotes the new timbre


def test_novel_first_frames_are_judged_again_on_the_whole_note() -> None:
    clusterer = OnlineClusterer(ClusterConfig(join_threshold=0.7, evidence=2))
    for _ in range(6):
        play(clusterer, noisy(0))
    for _ in range(5):  # attacks that look like another timbre, steady parts like the known one
        index, novel = clusterer.assign(noisy(1))
        assert novel and clusterer.clusters[index].channel == 0
        clusterer.update(index, noisy(1), noisy(0), novel, 10)
    assert len(clusterer.real()) == 1 and not clusterer._provisional()


def test_instrument_cap_and_exact_count() -> None:
    capped = channels_for([0] * 5 + [1] * 5 + [2] * 5, ClusterConfig(evidence=2, max_clusters=2))
    assert set(capped) == {0, 1}
    exact = channels_for([0] * 3 + [1] * 3 + [2] * 3, ClusterConfig(evidence=5, max_clusters=3, exact=True))
    assert exact == [0] * 3 + [1] * 3 + [2] * 3  # with K known exactly, novel notes spawn at once


def test_converging_clusters_merge_into_the_older_channel() -> None:
    clusterer = OnlineClusterer(ClusterConfig(join_threshold=0.95, evidence=1, merge_threshold=0.8))
    near = CENTRES[0] * 0.9 + CENTRES[1] * 0.44
    near /= np.linalg.norm(near)
    first, _ = clusterer.assign(CENTRES[0])
    second, _ = clusterer.assign(near)  # below the join threshold: spawns at once with evidence 1
    assert clusterer.resolve(second) == first or clusterer.clusters[second].channel == 1
    for _ in range(5):
        play(clusterer, CENTRES[0] * 0.8 + near * 0.2 / np.linalg.norm(CENTRES[0] * 0.8 + near * 0.2))
    assert len(clusterer.real()) == 1
    assert clusterer.clusters[clusterer.real()[0]].channel == 0


def test_under_the_sustain_pedal_a_note_joins_at_the_pedal_threshold() -> None:
    config = ClusterConfig(join_threshold=0.9, evidence=1, pedal_join_threshold=0.5)
    between = CENTRES[0] * 0.8 + CENTRES[1] * 0.6  # cosine 0.8 with timbre 0
    for pedal, spawned in ((False, True), (True, False)):
        clusterer = OnlineClusterer(config)
        clusterer.assign(CENTRES[0])
        index, _ = clusterer.assign(between, pedal=pedal)
        assert (clusterer.clusters[index].channel == 1) == spawned
    unset = OnlineClusterer(ClusterConfig(join_threshold=0.9, evidence=1))
    assert unset.join_threshold(True) == unset.join_threshold(False) == 0.9


def test_the_assigner_reads_the_pedal_of_the_stage_before_it() -> None:
    """A tracked block's pedal decides which join threshold a note gets: the same notes, apart under a
    high threshold without the pedal, on one channel with it."""
    frames = np.zeros((120, 2 + DIM, 84), dtype=np.float32)
    between = CENTRES[0] * 0.8 + CENTRES[1] * 0.6
    for start, pitch, embedding in ((5, 30, CENTRES[0]), (40, 60, between), (80, 62, between)):
        frames[start, 0, pitch] = 0.9
        frames[start : start + 20, 1, pitch] = 0.8
        frames[start : start + 20, 2:, pitch] = embedding[None, :]
    tracker = TrackerConfig(onset_threshold=0.5, frame_threshold=0.3, off_frames=2, min_frames=2)
    config = ClusterConfig(join_threshold=0.9, evidence=1, decision_frames=2, pedal_join_threshold=0.5)
    channels = {}
    for pedal in (False, True):
        block = NoteTracker(tracker, keep_frames=True).process(frames)
        block.pedal = np.full(len(frames), pedal)
        events = TimbreAssigner(tracker, config, tracked=True).process(block)
        channels[pedal] = [e.timbre for e in events if e.on]
    assert channels == {False: [0, 1, 1], True: [0, 0, 0]}


def test_deterministic() -> None:
    embeddings = [noisy(int(t), 0.4) for t in RNG.integers(0, 3, 60)]
    config = ClusterConfig(join_threshold=0.6, evidence=2)
    runs = []
    for _ in range(2):
        clusterer = OnlineClusterer(config)
        runs.append([play(clusterer, e) for e in embeddings])
    assert runs[0] == runs[1]


def synthetic_frames(seed: int, frames: int = 400) -> np.ndarray:
    """Model output frames (n, 2 + D, 84): notes of three timbres with their embeddings."""
    rng = np.random.default_rng(seed)
    out = np.zeros((frames, 2 + DIM, 84), dtype=np.float32)
    out[:, 2:, :] = CENTRES[3][None, :, None]
    for _ in range(25):
        timbre, pitch = int(rng.integers(3)), int(rng.integers(84))
        start = int(rng.integers(2, frames - 30))
        length = int(rng.integers(5, 25))
        out[start, 0, pitch] = 0.9
        out[start : start + length, 1, pitch] = 0.8
        out[start : start + length, 2:, pitch] = noisy(timbre, 0.2)[None, :]
    return out


@settings(max_examples=20, deadline=None)
@given(sizes=st.lists(st.integers(1, 60), min_size=1, max_size=8), seed=st.integers(0, 100))
def test_streaming_equals_one_pass(sizes: list[int], seed: int) -> None:
    frames = synthetic_frames(seed)
    tracker = TrackerConfig(onset_threshold=0.5, frame_threshold=0.3, off_frames=2, min_frames=2)
    config = ClusterConfig(join_threshold=0.7, evidence=2, decision_frames=3)
    one = TimbreAssigner(tracker, config)
    expected = one.process(frames) + one.flush()
    chunked = TimbreAssigner(tracker, config)
    got, pos, i = [], 0, 0
    while pos < len(frames):
        got += chunked.process(frames[pos : pos + sizes[i % len(sizes)]])
        pos, i = pos + sizes[i % len(sizes)], i + 1
    got += chunked.flush()
    assert got == expected
    sounding: dict[int, int] = {}
    for event in got:  # every note-off on the channel of its note-on, nothing left hanging
        if event.on:
            sounding[event.pitch] = event.timbre
            assert event.decided >= event.frame + config.decision_frames - 1
        else:
            assert sounding.pop(event.pitch) == event.timbre
    assert not sounding


def test_separation_metric_matches_channels_to_instruments() -> None:
    def note(t: float, pitch: int, timbre: int) -> list[NoteEvent]:
        frame = round(t / 0.01161)
        return [NoteEvent(True, pitch, frame, frame, 80, timbre), NoteEvent(False, pitch, frame + 20, frame + 20, 0, timbre)]

    reference = {"a": [(1.0, 1.2, 60), (2.0, 2.2, 62)], "b": [(1.0, 1.2, 40), (3.0, 3.2, 43)]}
    perfect = note(1.0, 60, 5) + note(2.0, 62, 5) + note(1.0, 40, 2) + note(3.0, 43, 2)
    result = separation_metrics(reference, perfect)
    assert result == {"separation_f": 1.0, "channels": 2, "k": 2}
    merged = [NoteEvent(e.on, e.pitch, e.frame, e.decided, e.velocity, 0) for e in perfect]
    # one channel holding everything: F1 2/3 against either instrument, the other instrument gets nothing
    assert separation_metrics(reference, merged) == {"separation_f": round(2 / 3 / 2, 4), "channels": 1, "k": 2}


def test_refine_recovers_timbres_in_hindsight() -> None:
    finished = []
    for k in range(30):
        timbre = k % 3
        on = NoteEvent(True, MIDI_MIN + k, k, k, 80, 0)
        off = NoteEvent(False, MIDI_MIN + k, k + 5, k + 5, 0, 0)
        finished.append((on, off, noisy(timbre, 0.1)))
    labels = refine(finished, k=3)
    assert labels[:3] == [0, 1, 2] and labels == [k % 3 for k in range(30)]
    assert refine(finished, k=1) == [0] * 30
    assert refine(finished[:2], k=3) == [0, 1] and refine([], k=2) == []
    duplicates = [(on, off, noisy(0, 0.0)) for on, off, _ in finished[:5]]
    assert refine(duplicates, k=3) == [0] * 5  # identical embeddings: one timbre, not an error


def test_recorded_tracker_replays_the_live_assigner_exactly() -> None:
    """The clusterer search replays the tracker's events instead of re-running it (no sustain stage): the
    live assigner's events, and the recording replays again."""
    from rtamt.training.tune import RecordedChain

    frames = synthetic_frames(7)
    tracker = TrackerConfig(onset_threshold=0.5, frame_threshold=0.3, off_frames=2, min_frames=2)
    config = ClusterConfig(join_threshold=0.7, evidence=2, decision_frames=3)
    live = TimbreAssigner(tracker, config)
    expected = live.process(frames) + live.flush()
    recorded = RecordedChain.record(tracker, frames)
    assert recorded.block.pedal is None and len(recorded.block.events) == len(frames)
    for _ in range(2):
        replayed = TimbreAssigner(recorded.tracker, config, tracked=True)
        assert replayed.process(recorded.block) + replayed.flush() == expected
    assert any(e.on for e in expected) and len({e.timbre for e in expected}) >= 2


def test_recorded_chain_replays_tracker_sustain_and_clusterer_as_the_chain_runs_them() -> None:
    """``tune clusters --sustain``: the tracker and the sustain stage recorded once, the clusterer replayed on
    them, gives the chain's events (pedal included)."""
    from dataclasses import replace
    from pathlib import Path

    from rtamt.sustain import SustainConfig, SustainModel, SustainStage
    from rtamt.training.tune import RecordedChain

    sustain = Path(__file__).resolve().parent.parent / "models" / "sustain.onnx"
    if not sustain.exists():
        pytest.skip("no shipped sustain model")
    frames = synthetic_frames(11, frames=600)
    tracker = TrackerConfig(onset_threshold=0.5, frame_threshold=0.3, off_frames=2, min_frames=2)
    config = ClusterConfig(join_threshold=0.9, evidence=1, decision_frames=3, pedal_join_threshold=-1.0)
    stage = SustainStage(SustainModel(sustain), SustainConfig(threshold=0.0))  # the pedal down after the warm-up
    chain = Chain([NoteTracker(tracker, keep_frames=True), stage, TimbreAssigner(tracker, config, tracked=True)])
    expected = chain.run([frames[:100], frames[100:]])
    recorded = RecordedChain.record(tracker, frames, stage)
    assert len(recorded.block.pedal) == len(frames) and recorded.block.pedal[-1] and not recorded.block.pedal[0]
    for _ in range(2):  # the recording replays again
        assigner = TimbreAssigner(recorded.tracker, config, tracked=True)
        assert assigner.process(recorded.block) + assigner.flush() == expected
    unpedalled = TimbreAssigner(tracker, replace(config, pedal_join_threshold=None), tracked=True)
    apart = unpedalled.process(recorded.block) + unpedalled.flush()  # notes under the pedal join whatever is there
    assert len({e.timbre for e in expected}) < len({e.timbre for e in apart}) == 3


@settings(max_examples=10, deadline=None)
@given(sizes=st.lists(st.integers(1, 60), min_size=1, max_size=8), seed=st.integers(0, 100))
def test_tracker_stage_then_clusterer_equals_the_clusterer_alone(sizes: list[int], seed: int) -> None:
    """The chain's layout (a note-tracker stage passing frames and events to the clusterer) gives the same
    events as the clusterer running its own tracker, in any chunking; latencies add up the same."""
    frames = synthetic_frames(seed)
    tracker = TrackerConfig(onset_threshold=0.5, frame_threshold=0.3, off_frames=2, min_frames=2)
    config = ClusterConfig(join_threshold=0.7, evidence=2, decision_frames=3)
    alone = TimbreAssigner(tracker, config)
    expected = alone.process(frames) + alone.flush()
    chain = Chain([NoteTracker(tracker, keep_frames=True), TimbreAssigner(tracker, config, tracked=True)])
    assert chain.run(split_randomly(frames, sizes)) == expected and any(e.on for e in expected)
    notes = [(on, off) for on, off, _ in chain["timbre-clusterer"].completed]
    assert notes == [(on, off) for on, off, _ in alone.completed]
    assert chain.latency_s == alone.latency_s


def test_cluster_search_walks_only_the_named_settings_within_the_decision_limit() -> None:
    """``tune clusters --only``: the stored settings are the start, only the named ones move, and every
    candidate (the stored settings too) keeps its decision window within the limit."""
    from dataclasses import replace

    from rtamt.training.tune import search_clusters

    tracker = TrackerConfig(onset_threshold=0.5, frame_threshold=0.3, off_frames=2, min_frames=2)
    reference = {"a": [(0.5, 0.7, 60)], "b": [(2.0, 2.2, 40)]}
    stored = ClusterConfig(join_threshold=0.7, evidence=2, decision_frames=3, merge_threshold=0.9)
    best, _ = search_clusters([(synthetic_frames(3), reference)], tracker, rounds=1, max_decision_frames=1,
                              stored=stored, only=["evidence"])  # fmt: skip
    assert best.decision_frames == 1
    assert replace(best, evidence=stored.evidence, decision_frames=stored.decision_frames) == stored
    with pytest.raises(ValueError, match="stored settings"):
        search_clusters([(synthetic_frames(3), reference)], tracker, rounds=1, only=["evidence"])
