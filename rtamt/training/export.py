"""Shared by the model trainers: the settings every run has, device and checkpoint helpers, streaming ONNX
export with rtamt metadata, metadata edits, and the train/export command line built from a config
dataclass."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TypeVar

import torch

from rtamt.constants import N_FAST, N_HARMONICS, N_HCQT_BINS
from rtamt.cqt import CQTConfig
from rtamt.models import LAYOUT
from rtamt.training.models import parameter_count, time_major


@dataclass
class RunConfig:
    """Settings every training run has; each trainer's config adds its own (and may change defaults)."""

    steps: int = 1200
    batch: int = 8
    crop_frames: int = 430
    lookahead: int = 2
    gamma_hz: float = 10.0
    window_peak: float = 0.5  # skew of the front end's windows (rtamt.cqt.CQTConfig)
    lr: float = 2e-3
    seed: int = 0
    workers: int = 1
    device: str = "cpu"  # "cuda" trains on a GPU (the front end still runs in the CPU data workers)
    threads: int = 2  # torch's CPU threads in the training process
    max_minutes: float = 0.0  # save a checkpoint and stop after this much wall time (0: no limit)
    init: str = ""  # a checkpoint whose weights start a fine-tune (optimiser and schedule start afresh)
    valid_items: int = 96
    checkpoint_every: int = 100
    stop_after: int = 0  # end the run after this many steps (0: at `steps`), the schedule still spanning `steps`
    key_offsets: bool = False  # targets end at key releases, not when a pedalled note stops sounding

    @property
    def cqt(self) -> CQTConfig:
        return CQTConfig(lookahead_frames=0, gamma_hz=self.gamma_hz, window_peak=self.window_peak)

    @property
    def fast_cqt(self) -> CQTConfig | None:
        """The fast onset path's front end (rtamt.frontend.FastPathTap), if the model reads one."""
        return None

    def out_of_time(self, elapsed_s: float) -> bool:
        """Whether a run that has trained for ``elapsed_s`` seconds has used up ``max_minutes``."""
        return self.max_minutes > 0 and elapsed_s > 60 * self.max_minutes


RunConfigT = TypeVar("RunConfigT", bound=RunConfig)


def export_streaming(model: torch.nn.Module, kind: str, outputs: list[str], time_axes: dict[str, int],
                     lookahead: int, cqt: CQTConfig, out: Path, extra: dict | None = None, opset: int = 17,
                     fast: CQTConfig | None = None) -> None:  # fmt: skip
    """Write ``model`` in its time-major form (see :func:`time_major`) as ONNX with inputs hcqt (1, 8, n, 252)
    (8 + N_FAST channels for a backbone with the fast onset path, whose CQT settings ``fast`` gives)
    plus its caches and outputs ``outputs`` plus the new caches; ``time_axes`` names each output's frame
    axis. Metadata: kind, layout, look-ahead, front-end settings, parameter count and ``extra``."""
    if bool(getattr(model, "fast", False)) != (fast is not None):
        raise ValueError("a model with the fast onset path is exported with its fast CQT settings, and only such a model")

    streaming = time_major(model).eval()
    caches = streaming.initial_caches(1)
    cache_in = [f"cache_{i}" for i in range(len(caches))]
    cache_out = [f"new_cache_{i}" for i in range(len(caches))]
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        streaming, (torch.zeros(1, N_HARMONICS + (N_FAST if fast else 0), 4, N_HCQT_BINS), *caches), str(out),
        input_names=["hcqt", *cache_in],
        output_names=[*outputs, *cache_out], opset_version=opset, dynamo=False,
        dynamic_axes={"hcqt": {2: "frames"}, **{name: {axis: "frames"} for name, axis in time_axes.items()}},
    )  # fmt: skip
    meta = {"rtamt_model": kind, "layout": LAYOUT, "lookahead_frames": str(lookahead), "cqt_config": json.dumps(cqt.to_dict()),
            "parameters": str(parameter_count(model)), **(extra or {})}  # fmt: skip
    if fast is not None:
        meta["fast_cqt_config"] = json.dumps(fast.to_dict())
    set_metadata(out, meta)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB, {meta['parameters']} parameters)")


def load_checkpoint(path: Path) -> dict:
    """A checkpoint written by :func:`save_checkpoint`, its tensors on the CPU whatever device trained it."""
    return torch.load(path, map_location="cpu", weights_only=False)


def checkpoint_config(state: dict, config_class: type[RunConfigT], **overrides: object) -> RunConfigT:
    """A checkpoint's run settings as ``config_class``, with ``overrides``; settings this version no longer
    has are left out, so older checkpoints load."""
    known = {f.name for f in fields(config_class)}
    return config_class(**{**{k: v for k, v in state["config"].items() if k in known}, **overrides})


def training_device(name: str, threads: int) -> torch.device:
    """The torch device a trainer runs on ("cpu" or "cuda"), with ``threads`` CPU threads for torch."""
    torch.set_num_threads(threads)
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {name}: no CUDA device is available here")
    return torch.device(name)


def to_device(batch: dict[str, torch.Tensor], device: torch.device, keep: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    """The batch's tensors moved to ``device`` (those named in ``keep`` stay where they are)."""
    return {k: v if k in keep else v.to(device, non_blocking=True) for k, v in batch.items()}


def save_checkpoint(out: Path, state: dict) -> None:
    """Write out/checkpoint.pt atomically (a crash mid-write keeps the previous one) and out/log.json."""
    torch.save(state, out / "checkpoint.tmp")
    (out / "checkpoint.tmp").replace(out / "checkpoint.pt")
    (out / "log.json").write_text(json.dumps(state["log"], indent=1))


def set_metadata(model: Path, entries: dict[str, str]) -> None:
    """Set metadata entries of an ONNX file in place (an entry of the same key is replaced)."""
    import onnx

    proto = onnx.load(str(model))
    kept = [p for p in proto.metadata_props if p.key not in entries]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    for key, value in entries.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(model))


def write_metadata(model: Path, key: str, value: str) -> None:
    """Set one metadata entry of an ONNX file in place."""
    set_metadata(model, {key: value})


def train_export_cli(argv: list[str] | None, prog: str, description: str, config_class: type, run: str,
                     model: str, train: Callable, export: Callable) -> int:  # fmt: skip
    """`train` (every config field is an option) and `export` subcommands."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train")
    t.add_argument("--data", type=Path, default=Path("data/synth"))
    t.add_argument("--out", type=Path, default=Path(run))
    for name, field in config_class.__dataclass_fields__.items():
        if isinstance(field.default, bool):
            t.add_argument(f"--{name.replace('_', '-')}", action="store_true", default=field.default)
        else:
            t.add_argument(f"--{name.replace('_', '-')}", type=type(field.default), default=field.default)
    e = sub.add_parser("export")
    e.add_argument("--run", type=Path, default=Path(run))
    e.add_argument("--out", type=Path, default=Path(model))
    e.add_argument("--settings-from", type=Path, metavar="ONNX",
                   help="copy the tuned tracker/clusterer settings of this model file (same weights, new export)")
    b = sub.add_parser("blend", help="average the weights of two checkpoints of one architecture into a run folder")
    b.add_argument("first", type=Path, help="checkpoint whose weights count 1 - WEIGHT")
    b.add_argument("second", type=Path, help="checkpoint whose weights count WEIGHT (its settings are kept)")
    b.add_argument("--weight", type=float, required=True)
    b.add_argument("--out", type=Path, required=True, help="run folder for OUT/checkpoint.pt (then `export --run OUT`)")
    args = parser.parse_args(argv)
    if args.command == "train":
        train(args.data, args.out, config_class(**{n: getattr(args, n) for n in config_class.__dataclass_fields__}))
        return 0
    if args.command == "blend":
        args.out.mkdir(parents=True, exist_ok=True)
        state = blend_checkpoints(load_checkpoint(args.first), load_checkpoint(args.second), args.weight)
        torch.save(state, args.out / "checkpoint.pt")
        print(f"wrote {args.out / 'checkpoint.pt'}: {1 - args.weight:g} x {args.first} + {args.weight:g} x {args.second}")
        return 0
    settings = tuned_settings(args.settings_from) if args.settings_from else {}
    export(args.run, args.out)
    for key, value in settings.items():
        write_metadata(args.out, key, value)
    return 0


def blend_checkpoints(first: dict, second: dict, weight: float) -> dict:
    """A checkpoint whose model weights are ``(1 - weight) * first + weight * second`` (two runs of one
    architecture, e.g. a fine-tune and the model it started from: points between them trade what each
    learned). Settings, step and log are the second's; no optimiser state, so it resumes only with
    ``--init``. Integer buffers (counters) are taken from the second."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"blend weight {weight} is outside 0..1")
    a, b = first["model"], second["model"]
    if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
        raise ValueError("the two checkpoints hold different architectures; only one architecture's weights blend")
    model = {k: (1.0 - weight) * a[k] + weight * b[k] if b[k].is_floating_point() else b[k].clone() for k in b}
    return {"model": model, "config": second["config"], "step": second["step"],
            "log": list(second.get("log", [])) + [{"blend": weight}]}  # fmt: skip


def tuned_settings(model: Path) -> dict[str, str]:
    """The tuned tracker and clusterer settings (and their provenance) stored in an ONNX file."""
    import onnx

    proto = onnx.load(str(model))
    return {p.key: p.value for p in proto.metadata_props if p.key.startswith(("tracker", "clusterer"))}
