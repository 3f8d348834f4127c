"""The backbone's validation figures for saved checkpoints, on one validation split, with a chosen front end.

    python benchmarks/backbone_validation.py models/checkpoints/backbone-onset.pt \
        [--data data/synth-g/valid] [--window-peak 0.5 0.7]

For each checkpoint and each window peak (rtamt.cqt.CQTConfig): onset and frame loss, frame F1 and the
frame-level onset-peak F1 at a few thresholds, as a training run's validation reports them (96 crops). A
checkpoint scored under a window peak it was not trained with shows what the front end alone changes.
For a model with GRUs, ``corrections`` gives the standard deviation of each GRU's correction of the onset
and frame logits over those crops: how much a grown part has come to count.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from rtamt.training.backbone import TrainConfig, validate
from rtamt.training.dataset import SynthCrops
from rtamt.training.export import checkpoint_config, load_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", type=Path, nargs="+")
    parser.add_argument("--data", type=Path, default=Path("data/synth-g/valid"))
    parser.add_argument("--window-peak", type=float, nargs="+", default=None,
                        help="front-end window peaks to score with (default: each checkpoint's own)")  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(1)
    for checkpoint in args.checkpoints:
        state = load_checkpoint(checkpoint)
        for peak in args.window_peak or [checkpoint_config(state, TrainConfig).window_peak]:
            config = checkpoint_config(state, TrainConfig, window_peak=peak, batch=16)
            model = config.build_model()
            model.load_state_dict(state["model"])
            crops = SynthCrops(args.data, config.crop_frames, items=config.valid_items, train=False, cqt=config.cqt,
                               fast=config.fast_cqt)  # fmt: skip
            loader = torch.utils.data.DataLoader(crops, batch_size=16, num_workers=0)
            corrections: dict[str, list[torch.Tensor]] = {}
            hooks = [module.register_forward_hook(lambda _m, _i, out, name=name: corrections.setdefault(name, []).append(out))
                     for name, module in model.named_modules() if name in ("refine", "context_refine")]  # fmt: skip
            figures = validate(model, loader, config, torch.device("cpu"))
            for hook in hooks:
                hook.remove()
            spread = {name: {"onset": round(float(torch.cat([o[..., 0].flatten() for o in outs]).std()), 4),
                             "frame": round(float(torch.cat([o[..., 1].flatten() for o in outs]).std()), 4)}
                      for name, outs in corrections.items()}  # fmt: skip
            print(json.dumps({"checkpoint": str(checkpoint), "window_peak": peak, **figures, "corrections": spread}))


if __name__ == "__main__":
    main()
