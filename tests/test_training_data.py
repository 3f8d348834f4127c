"""Synthetic training data: determinism, label/audio alignment, disjoint splits, shapes and ranges."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("music21")

from rtamt.constants import HOP, N_PITCHES, SAMPLE_RATE  # noqa: E402
from rtamt.training import data  # noqa: E402
from rtamt.training.augment import AugmentConfig, augment  # noqa: E402
from rtamt.training.fluid import Synth  # noqa: E402
from rtamt.training.instruments import (  # noqa: E402
    HELD_OUT_PROGRAMS, HELD_OUT_SOUNDFONTS, INSTRUMENTS, TRAIN_SOUNDFONTS, programs,
)  # fmt: skip
from rtamt.training.labels import NO_INSTRUMENT, SHARED_BIN, targets  # noqa: E402
from rtamt.training.material import Line  # noqa: E402
from rtamt.training.render import Note, soundfont_path  # noqa: E402
from tests.conftest import needs_synth  # noqa: E402

CONFIG = data.BuildConfig(seed=7)


@needs_synth
def test_examples_are_deterministic_for_a_seed() -> None:
    a, b = data.make_example("train", 5, CONFIG), data.make_example("train", 5, CONFIG)
    np.testing.assert_array_equal(a.audio, b.audio)
    np.testing.assert_array_equal(a.notes, b.notes)
    assert a.meta == b.meta
    other = data.make_example("train", 6, CONFIG)
    assert other.meta != a.meta or not np.array_equal(other.audio, a.audio)


@needs_synth
@pytest.mark.parametrize("soundfont", ["FluidR3_GM", "TimGM6mb"])
@pytest.mark.parametrize("program", [0, 40, 71, 73])
def test_audio_starts_at_the_labelled_onsets(soundfont: str, program: int) -> None:
    """Each note's sound begins within 1 ms of its label (the first sample where the render differs from
    a render without that note by -40 dB of the note's peak), and the energy rises there."""
    onsets = [0.5, 2.0337, 3.5101]  # far enough apart that each release has died before the next note
    line = Line(INSTRUMENTS[program], "melody", [Note(t, t + 0.4, 60 + 5 * k, 100) for k, t in enumerate(onsets)])
    events, notes = data.line_events(line, SAMPLE_RATE, soundfont)
    synth = Synth(soundfont_path(soundfont), SAMPLE_RATE)
    audio = synth.render(program, events, 5 * SAMPLE_RATE)
    for k, (onset_s, _, pitch, *_) in enumerate(notes):
        without = synth.render(program, [e for e in events if e.a != pitch], 5 * SAMPLE_RATE)
        note = audio - without
        at = int(round(onset_s * SAMPLE_RATE))
        peak = np.abs(note[at - 2205 : at + data.PROBE_BLOCKS * 64]).max()
        first = int(np.flatnonzero(np.abs(note) >= 10 ** (data.AUDIBLE_DB / 20) * peak)[0])
        assert abs(first - at) <= SAMPLE_RATE // 1000, f"sound starts {1000 * (first - at) / SAMPLE_RATE:.2f} ms off"
        grid_onset = [e.sample for e in events if e.kind == 3 and e.a == pitch][0] / SAMPLE_RATE
        assert abs(grid_onset - onsets[k]) <= 1.5e-3  # the 64-sample grid moves note-ons by <= 1.45 ms
        rms_before = np.sqrt(np.mean(audio[at - 220 : at] ** 2))
        rms_after = np.sqrt(np.mean(audio[at + 110 : at + 551] ** 2))
        assert rms_after > 3 * rms_before + 1e-4


def test_programs_and_soundfonts_are_split() -> None:
    train, held = set(programs(held_out=False)), set(programs(held_out=True))
    assert not train & held and held == HELD_OUT_PROGRAMS
    assert len(held) / (len(train) + len(held)) >= 0.2
    assert len({INSTRUMENTS[p].family for p in held}) >= 10  # across families
    assert not set(TRAIN_SOUNDFONTS) & set(HELD_OUT_SOUNDFONTS)
    assert all(p < 112 and p not in range(96, 104) for p in INSTRUMENTS)  # no drums, no effects


@pytest.mark.parametrize("split", ["valid", "test"])
def test_evaluation_splits_only_use_unseen_timbres(split: str) -> None:
    for index in range(12):
        rng = np.random.default_rng([CONFIG.seed, data.SPLIT_IDS[split], index])
        soundfont, pool = data.timbre_choice(rng, split)
        assert soundfont in HELD_OUT_SOUNDFONTS or set(pool) <= HELD_OUT_PROGRAMS


@needs_synth
def test_training_examples_use_training_timbres_only() -> None:
    for index in range(6):
        meta = data.make_example("train", index, CONFIG).meta
        assert meta["soundfont"] in TRAIN_SOUNDFONTS
        assert all(inst["program"] not in HELD_OUT_PROGRAMS for inst in meta["instruments"])


@needs_synth
def test_notes_stay_in_their_instruments_range() -> None:
    for index in range(6):
        ex = data.make_example("train", index, CONFIG)
        for onset, offset, pitch, velocity, slot, _key_off in ex.notes:
            inst = INSTRUMENTS[ex.meta["instruments"][int(slot)]["program"]]
            assert inst.low <= pitch <= inst.high
            assert 0 <= onset < offset <= len(ex.audio) / SAMPLE_RATE
            assert 1 <= velocity <= 127


def test_targets_mark_onsets_frames_and_instruments() -> None:
    hop_s = HOP / SAMPLE_RATE
    notes = np.array([[10 * hop_s, 20 * hop_s, 60, 90, 0], [15 * hop_s, 18 * hop_s, 60, 90, 1],
                      [5 * hop_s, 7 * hop_s, 30, 90, 1]], dtype=np.float32)  # fmt: skip
    t = targets(notes, 30)
    assert t["onset"].shape == t["frame"].shape == t["instrument"].shape == (N_PITCHES, 30)
    assert np.flatnonzero(t["onset"][60 - 24]).tolist() == [10, 15]
    assert np.flatnonzero(t["frame"][60 - 24]).tolist() == list(range(10, 20))
    assert t["instrument"][60 - 24, 12] == 0 and t["instrument"][60 - 24, 16] == SHARED_BIN
    assert t["instrument"][30 - 24, 5] == 1 and t["instrument"][30 - 24, 8] == NO_INSTRUMENT
    assert t["onset"].sum() == 3


def test_augmentation_keeps_audio_usable_and_reports_detune() -> None:
    rng = np.random.default_rng(0)
    audio = np.sin(2 * np.pi * 440 * np.arange(SAMPLE_RATE * 2) / SAMPLE_RATE).astype(np.float32)
    everything = AugmentConfig(p_detune=1.0, p_reverb=1.0, p_noise=1.0, p_tilt=1.0, p_clip=1.0)
    out, scale = augment(audio, rng, everything)
    assert np.all(np.isfinite(out)) and np.abs(out).max() <= 1.0
    assert len(out) == pytest.approx(len(audio) * scale, abs=2)
    assert 2 ** (-30 / 1200) <= scale <= 2 ** (30 / 1200)


def test_validation_acoustics_are_a_room_drawn_from_the_seed() -> None:
    from pathlib import Path

    from rtamt.training.tune import recorded

    click = np.zeros(SAMPLE_RATE, dtype=np.float32)
    click[100] = 0.5
    split = Path("data/synth/valid")
    assert recorded(click, None, split, 0) is click  # dry unless a seed is given
    heard = recorded(click, 0, split, 3)
    assert len(heard) == len(click) and np.array_equal(heard, recorded(click, 0, split, 3))
    assert not np.array_equal(heard, recorded(click, 1, split, 3))
    assert not np.array_equal(heard, recorded(click, 0, split, 4))
    assert not np.array_equal(heard, recorded(click, 0, Path("data/synth-live/valid"), 3))
    for seed in range(5):  # every example gets a room: the click rings on, then dies away under any noise
        heard = recorded(click, seed, split, 0).astype(np.float64)
        early = np.sum(heard[110 : 110 + SAMPLE_RATE // 20] ** 2)
        late = np.sum(heard[-SAMPLE_RATE // 10 :] ** 2)
        assert early > 10 * late


@needs_synth
def test_tiny_build_writes_shards_that_the_dataset_reads(tmp_path, monkeypatch) -> None:
    from rtamt.training.dataset import MAX_SLOTS, ShardSet, SynthCrops

    monkeypatch.setattr(data, "SHARD_EXAMPLES", 2)
    timing = data.build_split(tmp_path, "train", 3 * data.EXAMPLE_S / 3600, CONFIG, {}, workers=1)
    assert timing["examples"] == 3 and timing["rendered_now"] == 3
    assert sorted(p.name for p in (tmp_path / "train").glob("*.json")) == ["shard-00000.json", "shard-00001.json"]
    again = data.build_split(tmp_path, "train", 3 * data.EXAMPLE_S / 3600, CONFIG, {}, workers=1)
    assert again["rendered_now"] == 0  # resumes: nothing left to do
    shards = ShardSet(tmp_path / "train")
    assert len(shards.examples) == 3
    np.testing.assert_array_equal(
        shards.audio[0][: shards.examples[0].length], data.make_example("train", 0, CONFIG).audio
    )
    summary = data.summarise(tmp_path / "train")
    assert summary["examples"] == 3 and summary["notes"] == sum(len(e.notes) for e in shards.examples)
    crops = SynthCrops(tmp_path / "train", crop_frames=100, items=4)
    item = crops[0]
    assert item["hcqt"].shape == (8, 252, 100)
    assert item["onset"].shape == item["frame"].shape == item["instrument"].shape == (84, 100)
    assert set(np.unique(item["frame"].numpy())) <= {0.0, 1.0}
    assert item["instrument"].min() >= SHARED_BIN and np.isfinite(item["hcqt"].numpy()).all()
    # Each slot's sound has one id across the set: the same bank and program in two examples share it.
    metas = [m for path in sorted((tmp_path / "train").glob("*.json")) for m in json.loads(path.read_text())["examples"]]
    sounds = [(m["soundfont"], inst["program"], inst["name"]) for m in metas for inst in m["instruments"]]
    ids = [i for example in shards.examples for i in example.timbres]
    assert len(ids) == len(sounds) and len(set(ids)) == len(set(sounds))
    assert all((ids[a] == ids[b]) == (sounds[a] == sounds[b]) for a in range(len(ids)) for b in range(len(ids)))
    example, _ = crops.crop_position(0, np.random.default_rng([crops.seed, crops.epoch, 0, 1]))
    slots = len(shards.examples[example].timbres)
    assert item["timbre"].shape == (MAX_SLOTS,) and (item["timbre"][:slots] >= 0).all() and (item["timbre"][slots:] == -1).all()


BUILD_AFTER_TORCH = """
import sys, tempfile
from pathlib import Path


def main():
    import torch

    torch.set_num_threads(2)
    for _ in range(3):  # torch's thread pool is now running
        (torch.randn(400, 400) @ torch.randn(400, 400)).sum()
    from rtamt.training import data

    data.SHARD_EXAMPLES = 2
    data.build_split(Path(tempfile.mkdtemp()), "train", 2 * data.EXAMPLE_S / 3600, data.BuildConfig(seed=7), {}, workers=1)
    print("built")


if __name__ == "__main__":
    main()
"""


@needs_synth
def test_building_shards_after_torch_ran_does_not_hang(tmp_path) -> None:
    """Render workers forked from a process whose torch thread pool had run deadlocked (the test suite hung
    in session 18); they now start from a clean server process."""
    import subprocess
    import sys

    pytest.importorskip("torch")
    script = tmp_path / "build_after_torch.py"
    script.write_text(BUILD_AFTER_TORCH)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "built"
