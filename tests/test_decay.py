"""How notes decay, and the clusterer's percussive rule: the level row of the model frames (aligned and
streaming), the decay measure, one decaying instrument kept on one channel across registers, and
instruments that hold their notes compared as before."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtamt.cluster import ClusterConfig, OnlineClusterer, TimbreAssigner, decay_db_per_s
from rtamt.constants import DECAY_MIN_FRAMES, HOP_S, N_HCQT_BINS, N_PITCHES
from rtamt.models import models_dir
from rtamt.tracker import TrackerConfig
from tests.conftest import split_randomly

DIM = 12
NEPER_PER_DB = np.log(10.0) / 10.0


def levels_falling(db_per_s: float, frames: int = 48, attack: int = 3) -> np.ndarray:
    """A note's level (natural log power): a short rise, then a straight fall or rise in dB."""
    seconds = np.arange(frames) * HOP_S
    db = db_per_s * np.clip(seconds - attack * HOP_S, 0.0, None)
    db[:attack] = np.linspace(-20.0, 0.0, attack, endpoint=False)
    return db * NEPER_PER_DB


def test_decay_measures_the_fall_in_db_per_second() -> None:
    assert decay_db_per_s(levels_falling(-25.0)) == pytest.approx(-25.0, abs=0.5)
    assert decay_db_per_s(levels_falling(0.0)) == pytest.approx(0.0, abs=0.5)
    assert decay_db_per_s(levels_falling(8.0)) == pytest.approx(8.0, abs=0.5)  # a swell
    assert decay_db_per_s(levels_falling(-25.0, frames=DECAY_MIN_FRAMES - 1)) is None


def test_a_held_note_stepped_down_by_another_voice_does_not_decay() -> None:
    """Another voice's entry raises the normalising level: a held note's level steps down once. The
    median change ignores the step; a straight-line fit would call the note decaying."""
    held = levels_falling(0.0)
    held[25:] -= 8.0 * NEPER_PER_DB
    assert decay_db_per_s(held) > -3.0
    seconds = np.arange(len(held)) * HOP_S
    assert np.polyfit(seconds, held / NEPER_PER_DB, 1)[0] < -10.0


@pytest.mark.skipif(not (models_dir() / "timbre.onnx").exists(), reason="no shipped models")
@settings(max_examples=6, deadline=None)
@given(sizes=st.lists(st.integers(1, 40), min_size=1, max_size=6))
def test_note_models_level_row_is_the_fundamental_of_the_same_frame_in_any_chunking(sizes: list[int]) -> None:
    from rtamt.backbone import Backbone, NoteModels, TimbreEncoder

    directory = models_dir()
    models = NoteModels(Backbone(directory / "backbone.onnx"), TimbreEncoder(directory / "timbre.onnx"))
    rng = np.random.default_rng(3)
    hcqt = rng.normal(-6.0, 2.0, (90, models.backbone.input_channels, N_HCQT_BINS)).astype(np.float32)
    one = np.concatenate([models.process(hcqt), models.flush()])
    assert one.shape == (90, 2 + models.encoder.channels + 1, N_PITCHES)
    assert np.array_equal(one[:, -1], hcqt[:, 1, 1::3])  # harmonic 1 (shift 0), centre bin of each pitch
    chunked = np.concatenate([models.process(b) for b in split_randomly(hcqt, sizes)] + [models.flush()])
    np.testing.assert_allclose(chunked, one, atol=1e-4)


def register_embedding(register: int, timbre: int = 0) -> np.ndarray:
    """One instrument whose embedding turns with register, as the encoder's does on a real piano: the
    neighbouring registers have a cosine of 0.83, under the join threshold of 0.85, and it falls further."""
    basis = np.linalg.qr(np.random.default_rng(1).standard_normal((DIM, DIM)))[0]
    return np.cos(register * 0.6) * basis[2 * timbre] + np.sin(register * 0.6) * basis[2 * timbre + 1]


def channels_of(notes: list[tuple[int, int, float]], config: ClusterConfig) -> list[int]:
    """(timbre, register, decay) notes, each long enough to count as evidence: the channel each went out on."""
    clusterer = OnlineClusterer(config)
    out = []
    for timbre, register, decay in notes:
        embedding = register_embedding(register, timbre)
        index, novel = clusterer.assign(embedding)
        out.append(clusterer.clusters[index].channel)
        clusterer.update(index, embedding, embedding, novel, 60, decay=decay)
    return out


BASE = ClusterConfig(join_threshold=0.85, evidence=2, evidence_min_frames=48, merge_threshold=1.01)
PERCUSSIVE = replace(BASE, percussive_bonus=1.0, percussive_db_s=-10.0, percussive_note_db_s=-5.0)
WALK = [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 2, 1, 0]  # four registers, up and back


def test_a_decaying_instrument_keeps_one_channel_across_registers() -> None:
    struck = [(0, register, -25.0) for register in WALK]
    assert len(set(channels_of(struck, BASE))) > 1  # without the rule the registers split
    assert set(channels_of(struck, PERCUSSIVE)) == {0}


def test_instruments_that_hold_their_notes_split_as_before() -> None:
    held = [(0, register, 1.0) for register in WALK]
    assert channels_of(held, PERCUSSIVE) == channels_of(held, BASE)
    duo = [(t, 0, 0.0) for t in [0] * 4 + [1] * 4 + [0, 1] * 3]
    assert channels_of(duo, PERCUSSIVE) == channels_of(duo, BASE) and len(set(channels_of(duo, BASE))) == 2


def test_a_held_instrument_beside_a_struck_one_gets_its_own_channel() -> None:
    notes = [(0, r, -25.0) for r in (0, 1, 2, 0)] + [(1, 0, 2.0)] * 4 + [(0, 3, -25.0), (1, 0, 2.0)]
    out = channels_of(notes, PERCUSSIVE)
    assert set(out[:4]) == {0} and out[-1] != out[-2] and len(set(out)) == 2


def frames_with_levels(seed: int, frames: int = 400) -> np.ndarray:
    """Model frames (n, 2 + D + 1, 84): notes of one decaying instrument in four registers and one held one."""
    rng = np.random.default_rng(seed)
    out = np.zeros((frames, 2 + DIM + 1, N_PITCHES), dtype=np.float32)
    out[:, -1] = -13.0
    for _ in range(16):
        struck = bool(rng.integers(2))
        register = int(rng.integers(4))
        pitch = 12 + 12 * register + int(rng.integers(12)) if struck else 40 + int(rng.integers(12))
        start, length = int(rng.integers(2, frames - 70)), int(rng.integers(30, 70))
        out[start, 0, pitch] = 0.9
        out[start : start + length, 1, pitch] = 0.8
        out[start : start + length, 2:-1, pitch] = register_embedding(register if struck else 0, 0 if struck else 1)
        out[start : start + length, -1, pitch] = levels_falling(-25.0 if struck else 0.0, length)
    return out


@settings(max_examples=15, deadline=None)
@given(sizes=st.lists(st.integers(1, 60), min_size=1, max_size=8), seed=st.integers(0, 100))
def test_assigner_with_levels_streams_as_one_pass(sizes: list[int], seed: int) -> None:
    frames = frames_with_levels(seed)
    tracker = TrackerConfig(onset_threshold=0.5, frame_threshold=0.3, off_frames=2, min_frames=2)
    config = replace(PERCUSSIVE, evidence_min_frames=24, decision_frames=3)
    one = TimbreAssigner(tracker, config, levels=True)
    expected = one.process(frames) + one.flush()
    chunked = TimbreAssigner(tracker, config, levels=True)
    got = [e for block in split_randomly(frames, sizes) for e in chunked.process(block)] + chunked.flush()
    assert got == expected and any(e.on for e in got)
