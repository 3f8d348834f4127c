"""Torch dataset streaming random crops of the synthetic shards, with the front end run on the fly.

Each item: a crop of a mixture (plus pre-roll so that the causal CQT windows and the running normaliser
are warm), augmented, passed through the same front-end stages as the runtime, and its labels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rtamt.chain import Chain
from rtamt.constants import HOP, HOP_S, SAMPLE_RATE
from rtamt.cqt import CQTConfig
from rtamt.frontend import analysis_stages
from rtamt.training.augment import AugmentConfig, augment
from rtamt.training.labels import OFFSET, ONSET, targets

PREROLL_FRAMES = 172  # 2.0 s: longer than the longest CQT window (1.6 s)
MAX_SLOTS = 16  # instrument slots per example that a crop's timbre ids can name (mixes have up to 5)


@dataclass(frozen=True)
class ExampleRef:
    shard: int
    offset: int
    length: int
    notes: np.ndarray  # (n, 5) onset, offset, pitch, velocity, instrument slot
    key_offs: np.ndarray  # (n,) key releases (the offsets where the set has no key-off column)
    timbres: tuple[int, ...] = ()  # per instrument slot: the set-wide id of its sound (bank and program)


class ShardSet:
    """All examples of one split, audio memory-mapped."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.audio: list[np.ndarray] = []
        self.examples: list[ExampleRef] = []
        self.timbre_names: dict[str, int] = {}  # "bank|program|name" -> set-wide timbre id
        for shard, meta_path in enumerate(sorted(self.directory.glob("shard-*.json"))):
            meta = json.loads(meta_path.read_text())
            base = str(meta_path)[: -len(".json")]
            self.audio.append(np.load(f"{base}.audio.npy", mmap_mode="r"))
            notes = np.load(f"{base}.notes.npy")
            for i, ex in enumerate(meta["examples"]):
                rows = notes[notes[:, 5] == i]
                key_offs = rows[:, 6] if rows.shape[1] > 6 else rows[:, 1]
                timbres = tuple(self.timbre_id(ex, slot) for slot in range(len(ex.get("instruments", []))))
                self.examples.append(ExampleRef(shard, ex["offset"], ex["length"], rows[:, :5], key_offs, timbres))
        if not self.examples:
            raise FileNotFoundError(f"no shards under {self.directory} (build them with rtamt.training.data)")

    def timbre_id(self, example: dict, slot: int) -> int:
        """The set-wide id of one instrument slot's sound: the same bank and program in any example share it."""
        inst = example["instruments"][slot]
        name = f"{example.get('soundfont')}|{inst.get('program')}|{inst.get('name')}"
        return self.timbre_names.setdefault(name, len(self.timbre_names))

    def segment(self, index: int, start: int, length: int) -> np.ndarray:
        """Samples [start, start + length) of example ``index`` as float32, zero outside the example."""
        ex = self.examples[index]
        out = np.zeros(length, dtype=np.float32)
        a, b = max(start, 0), min(start + length, ex.length)
        if b > a:
            out[a - start : b - start] = self.audio[ex.shard][ex.offset + a : ex.offset + b] / 32768.0
        return out


class SynthCrops(torch.utils.data.Dataset):
    """``items`` crops of ``crop_frames`` frames. Random crops and augmentation when ``train`` is true;
    otherwise a fixed, evenly spread set of un-augmented crops (for validation)."""

    def __init__(
        self,
        directory: str | Path,
        crop_frames: int = 430,
        items: int = 1000,
        train: bool = True,
        cqt: CQTConfig = CQTConfig(),
        augmentation: AugmentConfig = AugmentConfig(),
        seed: int = 0,
        key_offsets: bool = False,
        fast: CQTConfig | None = None,
    ) -> None:
        self.shards = ShardSet(directory)
        self.crop_frames = crop_frames
        self.items = items
        self.train = train
        self.cqt = cqt
        self.fast = fast  # the fast onset path's front end: its channels follow the 8 HCQT channels
        self.augmentation = augmentation
        self.seed = seed
        self.key_offsets = key_offsets  # frame targets end at key releases instead of when the sound ends
        self.epoch = 0
        self._frontend: Chain | None = None

    def __len__(self) -> int:
        return self.items

    def frontend(self) -> Chain:
        if self._frontend is None:  # built lazily, once per worker process
            self._frontend = Chain(analysis_stages(self.cqt, self.fast))
        return self._frontend

    def crop_position(self, item: int, rng: np.random.Generator) -> tuple[int, int]:
        """Example index and crop start frame (relative to the example) of an item."""
        n_examples = len(self.shards.examples)
        if self.train:
            example = int(rng.integers(n_examples))
        else:
            example = item % n_examples
        frames = self.shards.examples[example].length // HOP
        latest = max(frames - self.crop_frames, 1)
        start = int(rng.integers(0, latest)) if self.train else (item // n_examples * 97) % latest
        return example, start

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, item, int(self.train)])
        example, start = self.crop_position(item, rng)
        needed = PREROLL_FRAMES + self.crop_frames
        total = (needed + 8 + needed // 30) * HOP  # margin: detuning shortens the audio by up to 1.8%
        first_sample = (start - PREROLL_FRAMES) * HOP
        audio = self.shards.segment(example, first_sample, total)
        time_scale = 1.0
        if self.train:
            audio, time_scale = augment(audio, rng, self.augmentation)
        chain = self.frontend()
        chain.reset()
        frames = chain.run([audio])[PREROLL_FRAMES:needed]
        notes = self.shards.examples[example].notes.copy()
        if self.key_offsets:
            notes[:, OFFSET] = self.shards.examples[example].key_offs
        notes[:, [ONSET, OFFSET]] = (notes[:, [ONSET, OFFSET]] - first_sample / SAMPLE_RATE) * time_scale
        labels = targets(notes, self.crop_frames, start_s=PREROLL_FRAMES * HOP_S)
        timbre = np.full(MAX_SLOTS, -1, dtype=np.int64)  # slot -> set-wide timbre id (-1: none)
        slots = self.shards.examples[example].timbres[:MAX_SLOTS]
        timbre[: len(slots)] = slots
        return {
            "hcqt": torch.from_numpy(np.ascontiguousarray(frames.transpose(1, 2, 0))),  # (8 [+ N_FAST], 252, T)
            "onset": torch.from_numpy(labels["onset"]),
            "frame": torch.from_numpy(labels["frame"]),
            "instrument": torch.from_numpy(labels["instrument"].astype(np.int64)),
            "timbre": torch.from_numpy(timbre),
        }



