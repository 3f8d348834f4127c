"""Carry part of a built synthetic set to another machine (e.g. a GPU box) and back into shards.

    python -m rtamt.training.pack pack --src data/synth --out pack --train-shards 6 --quality 0.2
    python -m rtamt.training.pack pack --out pack --first-shard 6 --train-shards 6   # the next 6, fresh audio
    python -m rtamt.training.pack unpack --src pack --out /tmp/synth

Needs only numpy and soundfile (no music21, no FluidSynth), so it runs where the set cannot be built.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from rtamt.constants import SAMPLE_RATE


def pack(src: Path, out: Path, train_shards: int, quality: float, first_shard: int = 0) -> dict:
    """Copy a built set into a small, portable form (to train on another machine): every valid shard and
    ``train_shards`` training shards from number ``first_shard`` on, their audio as Ogg Vorbis
    (lossy, ``quality`` 0..1) next to the unchanged note tables and metadata. :func:`unpack` restores
    the shard layout."""
    sizes: dict[str, int] = {}
    for split in ("train", "valid"):
        metas = sorted((src / split).glob("shard-*.json"))
        if split == "train":  # examples are drawn independently, so any run of shards is a fair sample
            metas = metas[first_shard : first_shard + train_shards]
        (out / split).mkdir(parents=True, exist_ok=True)
        for meta in metas:
            base = str(meta)[: -len(".json")]
            target = out / split / Path(base).name
            audio = np.load(f"{base}.audio.npy")
            with sf.SoundFile(f"{target}.ogg", "w", SAMPLE_RATE, 1, format="OGG", subtype="VORBIS",
                              compression_level=1 - quality) as ogg:  # fmt: skip
                for start in range(0, len(audio), 1 << 16):  # libsndfile's Vorbis writer crashes on huge writes
                    ogg.write(audio[start : start + (1 << 16)])
            np.save(f"{target}.notes.npy", np.load(f"{base}.notes.npy"))
            (out / split / meta.name).write_text(meta.read_text())
            sizes[split] = sizes.get(split, 0) + Path(f"{target}.ogg").stat().st_size
    return {"megabytes": {k: round(v / 2**20, 1) for k, v in sizes.items()}}


def unpack(src: Path, out: Path) -> None:
    """Decode a :func:`pack`-ed set back into memory-mappable shards under ``out``."""
    for ogg in sorted(src.glob("*/shard-*.ogg")):
        packed = ogg.with_suffix("")
        target = out / ogg.parent.name / packed.name
        target.parent.mkdir(parents=True, exist_ok=True)
        meta = Path(f"{packed}.json").read_text()
        samples = max(ex["offset"] + ex["length"] for ex in json.loads(meta)["examples"])  # the examples back to back
        audio, rate = sf.read(ogg, dtype="int16")
        if rate != SAMPLE_RATE:
            raise ValueError(f"{ogg}: {rate} Hz, expected {SAMPLE_RATE}")
        fitted = np.zeros(samples, dtype=np.int16)
        fitted[: min(samples, len(audio))] = audio[:samples]
        np.save(f"{target}.audio.npy", fitted)
        np.save(f"{target}.notes.npy", np.load(f"{packed}.notes.npy"))
        Path(f"{target}.json").write_text(meta)  # last: marks the shard complete


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rtamt.training.pack", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    packer = sub.add_parser("pack", help="compress part of a built set")
    packer.add_argument("--src", type=Path, default=Path("data/synth"))
    packer.add_argument("--out", type=Path, required=True)
    packer.add_argument("--train-shards", type=int, default=6, help="training shards (30 min each) to take")
    packer.add_argument("--first-shard", type=int, default=0, help="number of the first training shard to take")
    packer.add_argument("--quality", type=float, default=0.2, help="Vorbis quality, 0..1")
    unpacker = sub.add_parser("unpack", help="decode a packed set into shards")
    unpacker.add_argument("--src", type=Path, required=True)
    unpacker.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "pack":
        print(json.dumps(pack(args.src, args.out, args.train_shards, args.quality, args.first_shard)))
    else:
        unpack(args.src, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
