"""Train the sustain model (rtamt/sustain.py): is the pedal holding notes past their key releases?

    python -m rtamt.training.sustain features --data data/synth-live/train --out data/sustain/train
    python -m rtamt.training.sustain features --data data/synth-live/valid --out data/sustain/live-valid
    python -m rtamt.training.sustain features --data data/synth-valid2/valid --out data/sustain/valid2 --limit 60
    python -m rtamt.training.sustain train --train data/sustain/train --out runs/sustain
    python -m rtamt.training.sustain export --run runs/sustain --out models/sustain.onnx \
        --valid data/sustain/live-valid data/sustain/valid2
    python -m rtamt.training.sustain score --model models/sustain.onnx --valid DIR... [--cut-spans all 12]

``features`` runs the shipped backbone and timbre encoder over each example (the tracker's input frames,
float16) and stores the per-frame target: 1 where a note sounds more than ``HELD_MARGIN_S`` past its key
release (the set's key-off column; built with ``--profile live`` the pedalled piano has one). ``train``
fits the GRU on random crops (focal-free binary cross-entropy). ``export`` writes the ONNX model and
chooses the pedal threshold and the legato gap on the validation caches: the note tracker's stored
``accurate`` settings and the sustain stage replayed on each example, scored by with-offset F1 against the key releases (where the
notes of a key-pressing player end; for instruments without a pedal the same as the sound), mean per
split and then over splits. The settings and their figures go into the model's metadata. ``score`` gives
that score for a model at its stored settings (with other cut spans), e.g. on another encoder's frames.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from rtamt.backbone import Backbone, NoteModels, TimbreEncoder
from rtamt.chain import Chain
from rtamt.constants import HOP_S
from rtamt.evaluate import note_metrics
from rtamt.frontend import model_analysis_stages
from rtamt.models import LAYOUT
from rtamt.sustain import WARM_UP_FRAMES, SustainConfig, SustainModel, SustainStage, feature_count, frame_features
from rtamt.tracker import TrackerConfig, events_to_notes, track_whole
from rtamt.training.export import load_checkpoint, save_checkpoint, set_metadata
from rtamt.training.models import parameter_count

HELD_MARGIN_S = 0.05  # a frame is 'held' where a note sounds more than this past its key release
THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.01)  # 1.01: the pedal never goes down (notes as tracked)
LEGATO_GAPS_S = (0.03, 0.05, 0.1, 0.2)
RELEASE_FRAMES = (0, 4, 8, 16, 32)  # pedal hold: frames under the threshold before it comes up
PRESS_FRAMES = (1,)  # frames over the threshold before it goes down
CUT_SPANS: tuple[int | None, ...] = (None,)  # semitones around a note-on within which it ends notes (None: all)


def held_target(frames: int, notes: np.ndarray, key_offs: np.ndarray) -> np.ndarray:
    """(frames,) 1.0 where some note sounds more than HELD_MARGIN_S past its key release."""
    times = np.arange(frames) * HOP_S
    target = np.zeros(frames, dtype=np.float32)
    for note, key_off in zip(notes, key_offs):
        if note[1] - key_off > HELD_MARGIN_S:
            target[np.searchsorted(times, key_off) : np.searchsorted(times, note[1] - HELD_MARGIN_S)] = 1.0
    return target


def features(data: Path, out: Path, models: Path, limit: int, start: int = 0) -> None:
    """Model frames, held targets and notes of examples ``start`` to ``limit`` of one split, one .npz each
    (an interrupted run resumes: finished examples are skipped; processes given other ranges can share
    ``out``)."""
    from rtamt.training.dataset import ShardSet

    backbone, encoder = Backbone(models / "backbone.onnx"), TimbreEncoder(models / "timbre.onnx")
    front = Chain([*model_analysis_stages(backbone.meta), NoteModels(backbone, encoder)])
    shards = ShardSet(data)
    out.mkdir(parents=True, exist_ok=True)
    count = min(limit, len(shards.examples))
    partial = out / f"partial-{os.getpid()}.npz"
    for index in range(start, count):
        path = out / f"example-{index:05d}.npz"
        if path.exists():
            continue
        example = shards.examples[index]
        frames = front.run([shards.segment(index, 0, example.length)])
        target = held_target(len(frames), example.notes, example.key_offs)
        np.savez(partial, frames=frames.astype(np.float16), held=target, notes=example.notes, key_offs=example.key_offs)
        partial.replace(path)
        print(f"\r{data}: {index + 1}/{count}", end="", file=sys.stderr)
    print(file=sys.stderr)


def load_cache(folder: Path) -> list[dict]:
    """Every example of a features folder: frames (float32), held target, notes, key releases."""
    paths = sorted(Path(folder).glob("example-*.npz"))
    if not paths:
        raise SystemExit(f"{folder}: no example-*.npz (run `python -m rtamt.training.sustain features` first)")
    return [{k: (v.astype(np.float32) if k == "frames" else v) for k, v in np.load(p).items()} for p in paths]


class SustainNet(torch.nn.Module):
    """Standardised frame features -> linear + ReLU -> GRU -> held logit per frame."""

    def __init__(self, features: int, hidden: int = 24) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(features))
        self.register_buffer("std", torch.ones(features))
        self.inp = torch.nn.Linear(features, hidden)
        self.gru = torch.nn.GRU(hidden, hidden, batch_first=True)
        self.out = torch.nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        z, state = self.gru(torch.relu(self.inp((x - self.mean) / self.std)), state)
        return self.out(z)[..., 0], state


class Streaming(torch.nn.Module):
    """The export form: probabilities and the carried GRU state."""

    def __init__(self, net: SustainNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, features: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logit, state = self.net(features, state)
        return torch.sigmoid(logit), state


def validate(net: SustainNet, examples: list[dict]) -> dict:
    """Frame-level loss, precision and recall at 0.5 and 0.2, on whole examples."""
    with torch.no_grad():
        held = np.concatenate([torch.sigmoid(net(torch.tensor(frame_features(e["frames"]))[None])[0])[0].numpy()
                               for e in examples])  # fmt: skip
    target = np.concatenate([e["held"] for e in examples]) > 0.5
    loss = float(torch.nn.functional.binary_cross_entropy(torch.tensor(held).clamp(1e-6, 1 - 1e-6),
                                                          torch.tensor(target, dtype=torch.float32)))  # fmt: skip
    result = {"loss": round(loss, 4), "held share": round(float(target.mean()), 3)}
    for threshold in (0.5, 0.2):
        hit = held >= threshold
        result[f"precision@{threshold}"] = round(float((hit & target).sum() / max(hit.sum(), 1)), 3)
        result[f"recall@{threshold}"] = round(float((hit & target).sum() / max(target.sum(), 1)), 3)
    return result


def train(train_dirs: list[Path], valid_dirs: list[Path], out: Path, steps: int, hidden: int, lr: float,
          crop: int, batch: int, seed: int) -> None:  # fmt: skip
    """Fit the GRU on random crops; checkpoint and log in ``out``."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    examples = [e for d in train_dirs for e in load_cache(d)]
    valid = [e for d in valid_dirs for e in load_cache(d)]
    inputs = [frame_features(e["frames"]) for e in examples]
    net = SustainNet(inputs[0].shape[1], hidden)
    sample = np.concatenate([x[::10] for x in inputs])
    net.mean.copy_(torch.tensor(sample.mean(axis=0)))
    net.std.copy_(torch.tensor(sample.std(axis=0) + 1e-3))
    optimiser = torch.optim.AdamW(net.parameters(), lr, weight_decay=1e-3)
    log: dict = {"examples": len(examples), "valid examples": len(valid), "parameters": parameter_count(net), "steps": []}
    start = time.time()
    warm = WARM_UP_FRAMES  # frames at a crop's start that get no loss (the GRU starts from zero state)
    for step in range(steps):
        xs, ys = [], []
        for _ in range(batch):
            i = int(rng.integers(len(inputs)))
            a = int(rng.integers(0, max(len(inputs[i]) - crop, 1)))
            xs.append(inputs[i][a : a + crop])
            ys.append(examples[i]["held"][a : a + crop])
        n = min(len(x) for x in xs)
        logit, _ = net(torch.tensor(np.stack([x[:n] for x in xs])))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logit[:, warm:], torch.tensor(np.stack([y[:n] for y in ys]))[:, warm:])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        for group in optimiser.param_groups:
            group["lr"] = lr * 0.5 * (1 + np.cos(np.pi * (step + 1) / steps))
        if (step + 1) % 100 == 0 or step + 1 == steps:
            figures = validate(net, valid)
            log["steps"].append({"step": step + 1, "train loss": round(loss.item(), 4), "valid": figures,
                                 "minutes": round((time.time() - start) / 60, 2)})  # fmt: skip
            print(f"step {step + 1}: train loss {loss.item():.4f}, valid {figures}", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    config = {"hidden": hidden, "features": inputs[0].shape[1], "steps": steps, "lr": lr, "crop": crop, "batch": batch, "seed": seed}
    save_checkpoint(out, {"model": net.state_dict(), "config": config, "log": log})


def replay_offset_f1(model: SustainModel, tracker: TrackerConfig, examples: list[dict], config: SustainConfig) -> float:
    """Mean with-offset F1 against the key releases, the tracker and sustain stage replayed on each example."""
    stage = SustainStage(model, config)
    scores = []
    for example in examples:
        notes = sustained_notes(example["frames"], tracker, stage)
        reference = [(float(n[0]), float(k), int(n[2])) for n, k in zip(example["notes"], example["key_offs"])]
        scores.append(note_metrics(reference, notes, frames=False)["offset_f1"])
    return float(np.mean(scores))


def sustained_notes(frames: np.ndarray, tracker: TrackerConfig, stage: SustainStage) -> list[tuple]:
    """The notes of model frames through the note tracker and the sustain stage (no clusterer)."""
    block = track_whole(frames, tracker, stage)
    return events_to_notes([e for events in (*block.events, block.final) for e in events])


def split_figures(model: SustainModel, tracker: TrackerConfig, splits: dict[str, list[dict]], config: SustainConfig) -> dict:
    """:func:`replay_offset_f1` of one setting on each validation split, and their mean (the choosing score)."""
    per_split = {name: round(replay_offset_f1(model, tracker, examples, config), 4) for name, examples in splits.items()}
    return {"per split": per_split, "mean": round(float(np.mean(list(per_split.values()))), 4)}


def export(run: Path, out: Path, valid_dirs: list[Path], backbone_path: Path, gaps: tuple[float, ...] = LEGATO_GAPS_S,
           releases: tuple[int, ...] = RELEASE_FRAMES, presses: tuple[int, ...] = PRESS_FRAMES,
           spans: tuple[int | None, ...] = CUT_SPANS) -> None:  # fmt: skip
    """ONNX with metadata; the threshold, legato gap, pedal holds and cut span chosen on the validation caches."""

    state = load_checkpoint(run / "checkpoint.pt")
    config = state["config"]
    net = SustainNet(config["features"], config["hidden"])
    net.load_state_dict(state["model"])
    hidden = torch.zeros(1, 1, config["hidden"])
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(Streaming(net).eval(), (torch.zeros(1, 4, config["features"]), hidden), str(out),
                      input_names=["features", "state"], output_names=["held", "state_out"], opset_version=17,
                      dynamo=False, dynamic_axes={"features": {1: "frames"}, "held": {1: "frames"}})  # fmt: skip
    meta = {"rtamt_model": "sustain", "layout": LAYOUT, "embedding_dim": str(config["features"] - feature_count(0)),
            "parameters": str(parameter_count(net)), "training": json.dumps(config)}  # fmt: skip
    set_metadata(out, meta)
    tracker = TrackerConfig.from_json(Backbone(backbone_path).meta["tracker"])
    model = SustainModel(out)
    splits = {str(d): load_cache(d) for d in valid_dirs}
    candidates = [SustainConfig(threshold=t, legato_gap_s=g, press_frames=p, release_frames=r, cut_span=c)
                  for c in spans for p in presses for r in releases for g in gaps for t in THRESHOLDS
                  if t < 1 or (r == 0 and p == 1 and c == spans[0])]  # fmt: skip
    figures = {}
    for candidate in candidates:
        figures[config_key(candidate)] = split_figures(model, tracker, splits, candidate)
        print(f"{config_key(candidate)}: {figures[config_key(candidate)]}", file=sys.stderr)
    best = max(candidates, key=lambda c: figures[config_key(c)]["mean"])
    chosen = json.loads(best.to_json())
    chosen["_provenance"] = {"chosen by": "with-offset F1 against key releases, tracker 'accurate'",
                             "validation": [str(d) for d in valid_dirs], "figures": figures}  # fmt: skip
    set_metadata(out, {"sustain": json.dumps(chosen)})
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB, {meta['parameters']} parameters): {config_key(best)}")


def score(model_path: Path, valid_dirs: list[Path], backbone_path: Path, spans: tuple[int | None, ...]) -> dict:
    """A sustain model's with-offset F1 at its stored settings (with each cut span) on validation caches: to
    compare weights on the frames of other models than those they were trained on."""
    model = SustainModel(model_path)
    tracker = TrackerConfig.from_json(Backbone(backbone_path).meta["tracker"])
    splits = {str(d): load_cache(d) for d in valid_dirs}
    configs = [replace(model.config, cut_span=span) for span in spans]
    return {config_key(config): split_figures(model, tracker, splits, config) for config in configs}


def cut_span(text: str) -> int | None:
    """A ``--cut-spans`` value: semitones, or 'all'."""
    return None if text == "all" else int(text)


def config_key(config: SustainConfig) -> str:
    """How a candidate is named in the stored figures."""
    key = (f"threshold {config.threshold}, gap {config.legato_gap_s}, press {config.press_frames}, "
           f"release {config.release_frames}")
    return key if config.cut_span is None else f"{key}, span {config.cut_span}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rtamt.training.sustain", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    f = sub.add_parser("features", help="model frames and held targets of one split")
    f.add_argument("--data", type=Path, required=True)
    f.add_argument("--out", type=Path, required=True)
    f.add_argument("--models", type=Path, default=Path("models"))
    f.add_argument("--limit", type=int, default=100_000, help="end before this example")
    f.add_argument("--start", type=int, default=0, help="first example (to split a split between processes)")
    t = sub.add_parser("train", help="fit the GRU")
    t.add_argument("--train", type=Path, nargs="+", required=True)
    t.add_argument("--valid", type=Path, nargs="+", default=[Path("data/sustain/live-valid"), Path("data/sustain/valid2")])
    t.add_argument("--out", type=Path, default=Path("runs/sustain"))
    t.add_argument("--steps", type=int, default=600)
    t.add_argument("--hidden", type=int, default=24)
    t.add_argument("--lr", type=float, default=3e-3)
    t.add_argument("--crop", type=int, default=600)
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=2)
    e = sub.add_parser("export", help="ONNX, with the threshold and legato gap chosen on validation")
    e.add_argument("--run", type=Path, default=Path("runs/sustain"))
    e.add_argument("--out", type=Path, default=Path("models/sustain.onnx"))
    e.add_argument("--valid", type=Path, nargs="+", default=[Path("data/sustain/live-valid"), Path("data/sustain/valid2")])
    e.add_argument("--backbone", type=Path, default=Path("models/backbone.onnx"))
    e.add_argument("--legato-gaps", type=float, nargs="+", default=list(LEGATO_GAPS_S), help="legato gaps to try (s)")
    e.add_argument("--release-frames", type=int, nargs="+", default=list(RELEASE_FRAMES), help="pedal-up holds to try (frames)")
    e.add_argument("--press-frames", type=int, nargs="+", default=list(PRESS_FRAMES), help="pedal-down holds to try (frames)")
    e.add_argument("--cut-spans", type=cut_span, nargs="+", default=list(CUT_SPANS),
                   help="semitones around a note-on within which it ends notes, 'all' for no limit")  # fmt: skip
    c = sub.add_parser("score", help="a sustain model's validation score at its stored settings")
    c.add_argument("--model", type=Path, default=Path("models/sustain.onnx"))
    c.add_argument("--valid", type=Path, nargs="+", default=[Path("data/sustain/live-valid"), Path("data/sustain/valid2")])
    c.add_argument("--backbone", type=Path, default=Path("models/backbone.onnx"))
    c.add_argument("--cut-spans", type=cut_span, nargs="+", default=[None], help="cut spans to try, 'all' for no limit")
    args = parser.parse_args(argv)
    if args.command == "score":
        print(json.dumps(score(args.model, args.valid, args.backbone, tuple(args.cut_spans)), indent=1))
    elif args.command == "features":
        features(args.data, args.out, args.models, args.limit, args.start)
    elif args.command == "train":
        torch.set_num_threads(args.threads)
        train(args.train, args.valid, args.out, args.steps, args.hidden, args.lr, args.crop, args.batch, args.seed)
    else:
        export(args.run, args.out, args.valid, args.backbone, tuple(args.legato_gaps), tuple(args.release_frames),
               tuple(args.press_frames), tuple(args.cut_spans))
    return 0


if __name__ == "__main__":
    sys.exit(main())
