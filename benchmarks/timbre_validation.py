"""The timbre encoder's validation figures for saved checkpoints, on one validation split.

    python benchmarks/timbre_validation.py models/checkpoints/timbre-live.pt models/checkpoints/timbre-xreg.pt \
        [--data data/synth-live/valid] [--cross-register-weight 2.0] [--cross-mix]

For each checkpoint: the contrastive loss (positives an octave or more apart weighted 1 + W), the mean
cosine of same-instrument bins, of different-instrument bins, of same-instrument bins an octave or more
apart, and of different-instrument bins within two semitones (which register cannot tell apart), as the
training run's validation reports them (64 crops, fixed bins); per crop, or with ``--cross-mix`` over each
batch of 8 crops (another crop's sound a negative), whatever the checkpoint was trained with (a
``--mix-weight`` or ``--near-negative-weight`` it was trained with is left out, so the losses compare).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from rtamt.training.dataset import SynthCrops
from rtamt.training.export import checkpoint_config, load_checkpoint
from rtamt.training.models import TimbreEncoder
from rtamt.training.timbre import TimbreConfig, validate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", type=Path, nargs="+")
    parser.add_argument("--data", type=Path, default=Path("data/synth-live/valid"))
    parser.add_argument("--cross-register-weight", type=float, default=2.0)
    parser.add_argument("--cross-mix", action="store_true",
                        help="score every checkpoint with one loss over each batch of crops (else per crop)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for checkpoint in args.checkpoints:
        state = load_checkpoint(checkpoint)
        config = checkpoint_config(state, TimbreConfig, batch=8, cross_register_weight=args.cross_register_weight,
                                   cross_mix=args.cross_mix, mix_weight=0.0,
                                   near_negative_weight=0.0)  # fmt: skip
        model = TimbreEncoder(config.dim, config.width, config.register_film)
        model.load_state_dict(state["model"])
        crops = SynthCrops(args.data, config.crop_frames, items=config.valid_items, train=False, cqt=config.cqt)
        loader = torch.utils.data.DataLoader(crops, batch_size=8, num_workers=0)
        print(json.dumps({"checkpoint": str(checkpoint), **validate(model, loader, config, torch.device("cpu"))}))


if __name__ == "__main__":
    main()
