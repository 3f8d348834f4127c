"""Instrument idioms for training data: pedalled piano, strummed guitar, sung lines, the live profile."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("music21")

from rtamt.constants import SAMPLE_RATE  # noqa: E402
from rtamt.training import data, idioms  # noqa: E402
from rtamt.training.augment import AugmentConfig, augment  # noqa: E402
from rtamt.training.fluid import Synth  # noqa: E402
from rtamt.training.instruments import INSTRUMENTS, programs  # noqa: E402
from rtamt.training.material import Line, random_harmony  # noqa: E402
from rtamt.training.render import Note, soundfont_path  # noqa: E402
from tests.conftest import _SYNTH_MISSING  # noqa: E402


def _need_synth(*banks: str) -> None:
    """Skip with the reason when FluidSynth or a soundfont this test renders with is missing."""
    if _SYNTH_MISSING:
        pytest.skip(_SYNTH_MISSING)
    for bank in banks:
        try:
            soundfont_path(bank)
        except FileNotFoundError as err:
            pytest.skip(f"{err} (the live profile also needs csound-soundfont)")


def test_sounding_offsets_follow_the_pedal_and_stop_at_a_restrike() -> None:
    keys = [Note(0.0, 0.3, 60), Note(0.5, 0.6, 64), Note(1.0, 1.1, 60), Note(2.5, 2.6, 67)]
    pedal = [(0.2, 127), (2.0, 0)]
    heard = idioms.sounding_offsets(keys, pedal)
    assert [n.pitch for n in heard] == [60, 64, 60, 67]  # order kept
    assert heard[0].offset_s == pytest.approx(1.0)  # held by the pedal, cut by the same key struck again
    assert heard[1].offset_s == pytest.approx(2.0)  # rings until the pedal comes up
    assert heard[2].offset_s == pytest.approx(2.0)
    assert heard[3].offset_s == pytest.approx(2.6)  # released after the pedal: its own key-off
    assert idioms.sounding_offsets(keys, []) == keys


def test_pedal_holds_the_sound_after_the_key_is_released() -> None:
    _need_synth()
    piano = INSTRUMENTS[0]
    keys = [Note(0.2, 0.5, 60, 100)]
    dry = Line(piano, "piano", keys)
    wet = Line(piano, "piano", keys, pedal=[(0.1, 127), (2.5, 0)])
    (dry_events, dry_notes), (wet_events, wet_notes) = (data.line_events(x, SAMPLE_RATE, "FluidR3_GM") for x in (dry, wet))
    assert dry_notes[0][1] == pytest.approx(0.5, abs=0.003)
    assert wet_notes[0][1] == pytest.approx(2.5, abs=0.003)  # the label follows the pedal
    assert wet_notes[0][4] == pytest.approx(0.5, abs=0.003)  # and keeps the key release
    synth = Synth(soundfont_path("FluidR3_GM"), SAMPLE_RATE)
    n = 3 * SAMPLE_RATE
    dry_audio, wet_audio = synth.render(0, dry_events, n), synth.render(0, wet_events, n)
    window = slice(int(1.2 * SAMPLE_RATE), int(1.6 * SAMPLE_RATE))  # after the key-off, before the pedal-up
    rms = lambda x: float(np.sqrt(np.mean(x[window] ** 2)))  # noqa: E731
    assert rms(wet_audio) > 10 * rms(dry_audio)


def test_piano_piece_spans_the_keyboard_with_pedal_and_two_hands() -> None:
    rng = np.random.default_rng(3)
    spans, pedalled = [], 0
    for _ in range(8):
        line = idioms.piano_piece(rng, INSTRUMENTS[0], 30.0)
        pitches = [n.pitch for n in line.notes]
        spans.append(max(pitches) - min(pitches))
        pedalled += bool(line.pedal)
        onsets = np.array([n.onset_s for n in line.notes])
        assert np.sum(np.isclose(onsets[:, None], onsets[None, :], atol=0.02)) > len(onsets)  # chords/octaves
    assert np.median(spans) >= 36  # at least three octaves: one instrument across registers
    assert pedalled >= 5


def test_guitar_strums_string_by_string_and_lets_strings_ring() -> None:
    line = idioms.guitar_part(np.random.default_rng(0), INSTRUMENTS[24], 20.0, style="strum")
    onsets = np.array(sorted(n.onset_s for n in line.notes))
    gaps = np.diff(onsets)
    strum_gaps = gaps[(gaps > 0) & (gaps < 0.05)]
    assert len(strum_gaps) > 5 and np.all(strum_gaps >= 0.002)  # strings a few ms apart, not simultaneous
    assert all(n.pitch >= idioms.GUITAR_STRINGS[0] for n in line.notes)  # nothing below the low E string
    # let-ring: notes overlap (several strings sound together)
    overlaps = sum(1 for a in line.notes for b in line.notes if a is not b and a.onset_s < b.onset_s < a.offset_s)
    assert overlaps > len(line.notes)


def test_guitar_voicings_are_playable() -> None:
    rng = np.random.default_rng(1)
    for _ in range(50):
        chord = idioms.guitar_voicing(rng, [0, 4, 7], 0)
        strings = [s for s, _ in chord]
        assert strings == sorted(set(strings))  # one note per string
        for string, pitch in chord:
            fret = pitch - idioms.GUITAR_STRINGS[string]
            assert 0 <= fret <= idioms.GUITAR_FRETS and pitch % 12 in (0, 4, 7)
        assert chord[0][1] % 12 == 0  # root in the bass


def test_voice_line_has_vibrato_and_glides_in_range() -> None:
    rng = np.random.default_rng(2)
    line = idioms.voice_line(rng, INSTRUMENTS[52], 30.0, random_harmony(rng, 30.0))
    assert line.vibrato > 0 and line.bends
    assert all(INSTRUMENTS[52].low <= n.pitch <= INSTRUMENTS[52].high for n in line.notes)
    assert all(0 <= value < 16384 for _, value in line.bends)


def test_live_profile_examples_are_deterministic_and_use_idioms() -> None:
    _need_synth(*data.PROFILES["live"].soundfonts)
    config = replace(data.PROFILES["live"], seed=11, source_weights=(0.0, 0.0, 0.0, 1.0))
    a, b = data.make_example("train", 2, config), data.make_example("train", 2, config)
    np.testing.assert_array_equal(a.audio, b.audio)
    np.testing.assert_array_equal(a.notes, b.notes)
    assert a.meta["source"].startswith("idiom:")
    train_programs = set(programs(held_out=False))
    assert all(inst["program"] in train_programs for inst in a.meta["instruments"])


def test_room_and_noise_are_applied() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    dry = (0.3 * np.sin(2 * np.pi * 440 * t) * (t < 0.3)).astype(np.float32)
    only_room = AugmentConfig(p_detune=0, p_reverb=1, p_noise=0, p_tilt=0, p_clip=0, gain_db=(0, 0))
    wet, _ = augment(dry, rng, only_room)
    tail = slice(int(0.31 * SAMPLE_RATE), int(0.5 * SAMPLE_RATE))
    rms = lambda x: float(np.sqrt(np.mean(x**2)))  # noqa: E731
    assert rms(dry[tail]) == 0.0
    assert rms(wet[tail]) > 1e-3 * rms(wet[: int(0.3 * SAMPLE_RATE)])  # the room rings on after the tone
    only_noise = AugmentConfig(p_detune=0, p_reverb=0, p_noise=1, p_tilt=0, p_clip=0, gain_db=(0, 0), snr_db=(20, 20))
    noisy, _ = augment(dry, rng, only_noise)
    assert rms(noisy[tail]) > 1e-3 * rms(noisy[: int(0.3 * SAMPLE_RATE)])  # noise where the tone is silent


def test_shards_keep_key_releases_and_training_can_target_them(tmp_path) -> None:
    from rtamt.constants import HOP_S
    from rtamt.training.dataset import ShardSet, SynthCrops

    length = 8 * SAMPLE_RATE
    notes = np.array([[3.0, 6.0, 60, 90, 0, 3.5]], dtype=np.float32)  # sounds to 6.0 s, key released at 3.5 s
    example = data.Example(np.zeros(length, dtype=np.int16), notes, {"source": "test", "soundfont": "x", "instruments": []})
    (tmp_path / "train").mkdir()
    data.write_shard(tmp_path / "train", 0, [example])
    shards = ShardSet(tmp_path / "train")
    assert shards.examples[0].key_offs.tolist() == [3.5]
    frames = {}
    for key_offsets in (False, True):
        crops = SynthCrops(tmp_path / "train", crop_frames=600, items=1, train=False, key_offsets=key_offsets)
        frames[key_offsets] = float(crops[0]["frame"][60 - 24].sum())
    assert frames[False] * HOP_S == pytest.approx(3.0, abs=0.05)
    assert frames[True] * HOP_S == pytest.approx(0.5, abs=0.05)
