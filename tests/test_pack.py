"""A packed synthetic set unpacks into the same shard layout: notes and metadata unchanged, audio of the
same length and close to the original (Vorbis is lossy)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rtamt.constants import SAMPLE_RATE
from rtamt.training.pack import pack, unpack


def fake_shard(directory: Path, lengths: list[int], seed: int, name: str = "shard-00000") -> np.ndarray:
    directory.mkdir(parents=True, exist_ok=True)
    t = np.arange(sum(lengths)) / SAMPLE_RATE
    audio = (8000 * np.sin(2 * np.pi * (220 + 110 * seed) * t)).astype(np.int16)
    offsets = np.cumsum([0, *lengths[:-1]])
    meta = {"rate": SAMPLE_RATE, "examples": [{"offset": int(o), "length": n} for o, n in zip(offsets, lengths)]}
    np.save(directory / f"{name}.audio.npy", audio)
    np.save(directory / f"{name}.notes.npy", np.array([[0.1, 0.5, 60, 90, 0, 0]], dtype=np.float32))
    (directory / f"{name}.json").write_text(json.dumps(meta))
    return audio


def test_pack_then_unpack_restores_the_shards(tmp_path: Path) -> None:
    originals = {split: fake_shard(tmp_path / "src" / split, [SAMPLE_RATE, SAMPLE_RATE // 2], seed)
                 for seed, split in enumerate(("train", "valid"))}  # fmt: skip
    sizes = pack(tmp_path / "src", tmp_path / "pack", train_shards=1, quality=0.2)
    assert set(sizes["megabytes"]) == {"train", "valid"}
    unpack(tmp_path / "pack", tmp_path / "out")
    for split, original in originals.items():
        src, out = tmp_path / "src" / split, tmp_path / "out" / split
        assert (out / "shard-00000.json").read_text() == (src / "shard-00000.json").read_text()
        np.testing.assert_array_equal(np.load(out / "shard-00000.notes.npy"), np.load(src / "shard-00000.notes.npy"))
        decoded = np.load(out / "shard-00000.audio.npy")
        assert decoded.dtype == np.int16 and len(decoded) == len(original)
        assert np.corrcoef(decoded.astype(float), original.astype(float))[0, 1] > 0.95


def test_pack_takes_the_training_shards_asked_for(tmp_path: Path) -> None:
    for index in range(3):
        fake_shard(tmp_path / "src" / "train", [SAMPLE_RATE // 4], index, f"shard-{index:05d}")
    fake_shard(tmp_path / "src" / "valid", [SAMPLE_RATE // 4], 0)
    pack(tmp_path / "src", tmp_path / "pack", train_shards=1, quality=0.2, first_shard=1)
    assert sorted(p.name for p in (tmp_path / "pack" / "train").glob("*.ogg")) == ["shard-00001.ogg"]
    assert sorted(p.name for p in (tmp_path / "pack" / "valid").glob("*.ogg")) == ["shard-00000.ogg"]
