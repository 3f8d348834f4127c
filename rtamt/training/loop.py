"""The training loop both trainers share (backbone and timbre encoder).

AdamW with a linear warm-up into a cosine schedule over ``config.steps``; the data stream continues where
a resumed run stopped; gradients clipped at norm 5; validation and an atomic checkpoint every
``checkpoint_every`` steps, at the end and when ``max_minutes`` runs out; ``stop_after`` ends a run early
with the schedule still spanning ``steps``. A run resumes from out/checkpoint.pt when it exists (optimiser,
schedule, log and the trainer's generator included); otherwise ``init`` fine-tunes from a checkpoint's
weights with a fresh optimiser and schedule.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from rtamt.constants import HOP_S
from rtamt.training.dataset import SynthCrops
from rtamt.training.export import RunConfig, load_checkpoint, save_checkpoint, to_device
from rtamt.training.models import parameter_count

CLIP_NORM = 5.0
WEIGHT_DECAY = 1e-4


@dataclass
class Task:
    """What a trainer brings to the loop."""

    model: torch.nn.Module
    loss: Callable[[dict], tuple[torch.Tensor | None, str]]  # batch -> (loss, or None to skip; progress text)
    validate: Callable[[torch.utils.data.DataLoader], dict]  # validation loader -> metrics for the log
    init: Callable[[dict], None]  # a checkpoint's model weights -> the model (fine-tuning)
    warmup_steps: int
    train_seed: int  # seed of the training crops' stream
    keep_on_cpu: tuple[str, ...] = ()  # batch entries the loss reads on the CPU
    generator: torch.Generator | None = None  # the loss's own random stream, saved with the checkpoint
    lr_scales: dict[str, float] | None = None  # parameter-name prefix -> multiple of the learning rate


def parameter_groups(model: torch.nn.Module, lr: float, scales: dict[str, float] | None) -> list[dict]:
    """The optimiser's parameter groups: parameters whose name starts with a prefix in ``scales`` learn at
    that multiple of ``lr`` (e.g. parts grown onto a trained model), the rest at ``lr``."""
    groups: dict[float, list[torch.nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        scale = next((s for prefix, s in (scales or {}).items() if name.startswith(prefix)), 1.0)
        groups.setdefault(scale, []).append(parameter)
    return [{"params": params, "lr": lr * scale} for scale, params in sorted(groups.items())]


def train_loop(data: Path, out: Path, config: RunConfig, task: Task, device: torch.device) -> int:
    """Train ``task.model`` on data/train, validating on data/valid, checkpointing into ``out``; returns the
    step reached."""
    model = task.model
    optimizer = torch.optim.AdamW(parameter_groups(model, config.lr, task.lr_scales), weight_decay=WEIGHT_DECAY)

    def schedule(step: int) -> float:
        warmup = min(1.0, (step + 1) / task.warmup_steps)
        return warmup * 0.5 * (1 + math.cos(math.pi * min(step / config.steps, 1.0)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    checkpoint = out / "checkpoint.pt"
    step, log = 0, []
    if checkpoint.exists():
        state = load_checkpoint(checkpoint)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, log = state["step"], state["log"]
        if task.generator is not None:
            task.generator.set_state(state["generator"])
        print(f"resumed at step {step}", file=sys.stderr)
    elif config.init:
        task.init(load_checkpoint(Path(config.init))["model"])
        print(f"fine-tuning from {config.init}", file=sys.stderr)
    (out / "config.json").write_text(json.dumps(asdict(config), indent=2))
    train_set = SynthCrops(data / "train", config.crop_frames, items=config.batch * config.steps, train=True,
                           cqt=config.cqt, seed=task.train_seed, key_offsets=config.key_offsets, fast=config.fast_cqt)  # fmt: skip
    valid_set = SynthCrops(data / "valid", config.crop_frames, items=config.valid_items, train=False, cqt=config.cqt,
                           key_offsets=config.key_offsets, fast=config.fast_cqt)  # fmt: skip
    sampler = range(step * config.batch, config.steps * config.batch)  # resume where the data stream was
    loader = torch.utils.data.DataLoader(train_set, batch_size=config.batch, sampler=sampler,
                                         num_workers=config.workers, persistent_workers=config.workers > 0)  # fmt: skip
    valid_loader = torch.utils.data.DataLoader(valid_set, batch_size=config.batch, num_workers=min(config.workers, 4))
    started, audio_s, running = time.perf_counter(), 0.0, None
    for batch in loader:
        batch = to_device(batch, device, keep=task.keep_on_cpu)
        batch["hcqt"] = batch["hcqt"].contiguous(memory_format=torch.channels_last)
        loss, progress = task.loss(batch)
        if loss is not None:
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
            optimizer.step()
            running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        scheduler.step()
        step += 1
        audio_s += config.batch * config.crop_frames * HOP_S
        elapsed = time.perf_counter() - started
        print(f"\rstep {step}/{config.steps} loss {running or 0:.3f} {progress} lr {scheduler.get_last_lr()[0]:.2e} "
              f"{audio_s / elapsed:.1f} s audio/s", end="", file=sys.stderr)  # fmt: skip
        out_of_time = config.out_of_time(elapsed)
        if step % config.checkpoint_every == 0 or step == config.steps or out_of_time:
            log.append({"step": step, "train_loss": round(running or 0, 4), "minutes": round(elapsed / 60, 2),
                        **task.validate(valid_loader)})  # fmt: skip
            print(f"\n{json.dumps(log[-1])}", file=sys.stderr)
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict(), "step": step, "log": log, "config": asdict(config)}  # fmt: skip
            if task.generator is not None:
                state["generator"] = task.generator.get_state()
            save_checkpoint(out, state)
        if step == config.stop_after or out_of_time:
            break
    print(f"\ntrained {parameter_count(model)} parameters for {step} steps", file=sys.stderr)
    return step
