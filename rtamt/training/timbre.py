"""Train the causal timbre encoder with a contrastive loss and export it as a streaming ONNX model.

    python -m rtamt.training.timbre train --data data/synth --out runs/timbre --steps 700
    python -m rtamt.training.timbre export --run runs/timbre --out models/timbre.onnx

Loss: supervised InfoNCE over the active (pitch, frame) bins of each crop, temperature 0.15: an anchor's
positives are the bins its own instrument plays, its negatives every other active bin of the same mix.
Bins where two instruments share a pitch are left out. With ``--cross-register-weight W`` a positive an
octave or more from its anchor counts 1 + W times (one instrument's low and high registers pulled
together). With ``--cross-mix`` the loss is taken over the bins of every crop of the batch at once, an
instrument slot labelled by its sound (bank and program): the same sound in another crop is a positive and
every other sound a negative, so a solo crop (which alone has no negatives) teaches too, and the register
an instrument happens to play in one mix no longer tells it apart; ``--mix-weight W`` adds W times the
per-crop loss, which alone teaches telling a mix's parts apart. With ``--near-negative-weight W`` a negative
within ``NEAR_SEMITONES`` of its anchor's pitch counts 1 + W times in the loss's denominator: register
cannot tell those apart, so they teach timbre (the shipped encoder separates a quartet mostly by register,
models/README.md timbre item 10). The encoder never sees the backbone:
both read the same HCQT, so the backbone stays frozen by construction.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from rtamt.training.backbone import WARM_FRAMES, load_grown
from rtamt.training.export import (
    RunConfig, export_streaming, load_checkpoint, to_device, train_export_cli, training_device,
)  # fmt: skip
from rtamt.training.loop import Task, train_loop
from rtamt.training.models import TimbreEncoder


@dataclass
class TimbreConfig(RunConfig):
    steps: int = 700
    dim: int = 12
    width: int = 16
    temperature: float = 0.15
    bins_per_crop: int = 384
    valid_items: int = 64
    cross_register_weight: float = 0.0  # extra weight of positives REGISTER_SEMITONES or more apart
    register_film: bool = False  # per-bin scale and shift before the head (TimbreEncoder)
    cross_mix: bool = False  # one loss over the batch's crops: the same sound in another crop is a positive
    mix_weight: float = 0.0  # with cross_mix: plus this weight times the per-crop loss (tell a mix's parts apart)
    near_negative_weight: float = 0.0  # extra weight of negatives within NEAR_SEMITONES of the anchor's pitch


REGISTER_SEMITONES = 12  # "another register": an octave or more apart
NEAR_SEMITONES = 2  # "the same register": a negative this close in pitch cannot be told apart by register


def sample_bins(instrument: torch.Tensor, count: int, lookahead: int, generator: torch.Generator):
    """Up to ``count`` active bins (pitch, frame) of one crop that belong to exactly one instrument."""
    frames = instrument.shape[1]
    valid = instrument[:, WARM_FRAMES : frames - lookahead] >= 0
    pitch, frame = torch.nonzero(valid, as_tuple=True)
    if len(pitch) > count:
        pick = torch.randperm(len(pitch), generator=generator)[:count]
        pitch, frame = pitch[pick], frame[pick]
    return pitch, frame + WARM_FRAMES


def supcon_loss(embeddings: torch.Tensor, labels: torch.Tensor, temperature: float,
                pitch: torch.Tensor | None = None, cross_register_weight: float = 0.0,
                near_negative_weight: float = 0.0) -> torch.Tensor | None:  # fmt: skip
    """Supervised InfoNCE: mean over anchors with a positive of -mean log p(positive | anchor), the positives
    ``REGISTER_SEMITONES`` or more from the anchor's ``pitch`` weighted 1 + ``cross_register_weight``, the
    negatives within ``NEAR_SEMITONES`` of it counted 1 + ``near_negative_weight`` times."""
    if len(labels) < 2:
        return None
    logits = embeddings @ embeddings.T / temperature
    self_mask = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    logits = logits.masked_fill(self_mask, -1e9)
    positive = (labels[:, None] == labels[None, :]) & ~self_mask
    if pitch is not None and near_negative_weight:
        near = ((pitch[:, None] - pitch[None, :]).abs() <= NEAR_SEMITONES) & ~positive & ~self_mask
        logits = logits + float(np.log1p(near_negative_weight)) * near.float()
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    has_positive = positive.any(dim=1)
    if not has_positive.any():
        return None
    weight = positive.float()
    if pitch is not None and cross_register_weight:
        far = (pitch[:, None] - pitch[None, :]).abs() >= REGISTER_SEMITONES
        weight = weight * (1.0 + cross_register_weight * far.float())
    mean_log = (log_prob * weight).sum(1)[has_positive] / weight.sum(1)[has_positive]
    return -mean_log.mean()


def batch_loss(model: TimbreEncoder, batch: dict, config: TimbreConfig, generator: torch.Generator):
    """Mean contrastive loss over the crops of a batch (with ``cross_mix``, one loss over the bins of all
    its crops, plus ``mix_weight`` times the mean per-crop loss), the mean positive and negative cosine,
    the mean cosine of positives an octave or more apart, and of negatives within NEAR_SEMITONES (over the
    groups of the main loss)."""
    embedding, *_ = model(batch["hcqt"])
    groups = []  # (embeddings, labels, pitches) the loss is taken over: one per crop, or the batch pooled
    crops = []  # per crop, labelled by the instrument's slot in its mix
    for b in range(embedding.shape[0]):  # bins are drawn on the CPU (the generator's device)
        pitch, frame = sample_bins(batch["instrument"][b], config.bins_per_crop, config.lookahead, generator)
        if len(pitch) < 2:
            continue
        slots = batch["instrument"][b][pitch, frame]
        labels = batch["timbre"][b][slots] if config.cross_mix else slots  # the slot's sound, in every crop
        pitch, frame = pitch.to(embedding.device), frame.to(embedding.device)
        e = embedding[b, :, pitch, frame + config.lookahead].T  # output t + L describes frame t
        groups.append((e, labels.to(embedding.device), pitch))
        crops.append((e, slots.to(embedding.device), pitch))
    within = None
    if config.cross_mix and groups:
        groups = [tuple(torch.cat(parts) for parts in zip(*groups))]
        if config.mix_weight > 0:
            per_crop = [supcon_loss(e, labels, config.temperature, pitch, config.cross_register_weight,
                                    config.near_negative_weight) for e, labels, pitch in crops]  # fmt: skip
            per_crop = [loss for loss in per_crop if loss is not None]
            within = config.mix_weight * torch.stack(per_crop).mean() if per_crop else None
    losses, pos_sims, neg_sims, far_sims, near_sims = [], [], [], [], []
    for e, labels, pitch in groups:
        loss = supcon_loss(e, labels, config.temperature, pitch, config.cross_register_weight, config.near_negative_weight)
        if loss is not None:
            losses.append(loss)
            with torch.no_grad():
                sims = e @ e.T
                same = labels[:, None] == labels[None, :]
                off = ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
                pos_sims.append(sims[same & off].mean())
                if (~same).any():
                    neg_sims.append(sims[~same].mean())
                far = same & ((pitch[:, None] - pitch[None, :]).abs() >= REGISTER_SEMITONES)
                if far.any():
                    far_sims.append(sims[far].mean())
                near = ~same & ((pitch[:, None] - pitch[None, :]).abs() <= NEAR_SEMITONES)
                if near.any():
                    near_sims.append(sims[near].mean())
    if not losses:
        return None, 0.0, 0.0, float("nan"), float("nan")
    mean = lambda xs: float(torch.stack(xs).mean()) if xs else float("nan")  # noqa: E731
    total = torch.stack(losses).mean() + (within if within is not None else 0.0)
    return total, mean(pos_sims), mean(neg_sims), mean(far_sims), mean(near_sims)


def train(data: Path, out: Path, config: TimbreConfig) -> None:
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    device = training_device(config.device, config.threads)
    generator = torch.Generator().manual_seed(config.seed)
    model = TimbreEncoder(config.dim, config.width, config.register_film).to(device)

    def loss(batch: dict) -> tuple[torch.Tensor | None, str]:
        value, pos, neg, *_ = batch_loss(model, batch, config, generator)
        return value, f"pos {pos:.2f} neg {neg:.2f}"

    task = Task(model, loss, lambda loader: validate(model, loader, config, device), partial(load_grown, model),
                warmup_steps=50, train_seed=config.seed + 1, keep_on_cpu=("instrument", "timbre"),
                generator=generator)  # fmt: skip
    train_loop(data, out, config, task, device)


@torch.no_grad()
def validate(model: TimbreEncoder, loader, config: TimbreConfig, device: torch.device) -> dict:
    model.eval()
    generator = torch.Generator().manual_seed(0)
    losses, pos, neg, far, near = [], [], [], [], []
    for batch in loader:
        loss, p, n, f, c = batch_loss(model, to_device(batch, device, keep=("instrument", "timbre")), config, generator)
        if loss is not None:
            losses.append(float(loss))
            pos.append(p)
            if not np.isnan(n):
                neg.append(n)
            if not np.isnan(f):
                far.append(f)
            if not np.isnan(c):
                near.append(c)
    model.train()
    return {"valid_loss": round(float(np.mean(losses)), 4), "valid_pos_cos": round(float(np.mean(pos)), 3),
            "valid_neg_cos": round(float(np.mean(neg)), 3),
            "valid_far_pos_cos": round(float(np.mean(far)), 3) if far else None,
            "valid_near_neg_cos": round(float(np.mean(near)), 3) if near else None}  # fmt: skip


def export(run: Path, out: Path) -> None:
    """Streaming ONNX: hcqt (1, 8, n, 252) + caches in; embedding (1, D, n, 84) + new caches out."""
    state = load_checkpoint(run / "checkpoint.pt")
    config = TimbreConfig(**state["config"])
    model = TimbreEncoder(config.dim, config.width, config.register_film)
    model.load_state_dict(state["model"])
    export_streaming(model, "timbre", ["embedding"], {"embedding": 2}, config.lookahead, config.cqt, out,
                     {"dim": str(config.dim), "train_steps": str(state["step"])})  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    return train_export_cli(argv, "python -m rtamt.training.timbre", __doc__.split("\n")[0], TimbreConfig,
                            "runs/timbre", "models/timbre.onnx", train, export)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
