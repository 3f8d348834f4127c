"""Where the live chain's per-hop compute goes: each stage's time per hop, and the garbage collector.

Feeds the bundled duet, looped, through the chain `rtamt live` builds (low-latency settings, 48 kHz device
blocks of 256 samples, as `rtamt bench latency`) and times every stage of every block. Per hop, as in the
bench: the time of the blocks from just after one hop completed up to the block that completed the next.
It also counts the collector's runs and their durations while the stream plays, to tell collector pauses
from other work on the machine in the tail of the per-hop times.

    python benchmarks/stage_profile.py --seconds 60 [--models DIR]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import time

import numpy as np

from rtamt.bench import looped_example, per_hop_compute
from rtamt.constants import HOP
from rtamt.pipeline import build_transcriber


def profile(seconds: float, model_dir: str | None, device_rate: int = 48_000, block: int = 256) -> dict:
    transcriber = build_transcriber(device_rate, model_dir, mode="low-latency")
    stream = looped_example(int(seconds * device_rate), device_rate)
    stages = transcriber.chain.stages
    blocks = len(stream) // block
    times = np.zeros((blocks, len(stages)))
    hops = np.zeros(blocks, dtype=np.int64)
    collections: list[tuple[int, float]] = []
    started = [0.0]

    def on_collect(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            collections.append((info["generation"], (time.perf_counter() - started[0]) * 1000.0))

    def feed(record: bool) -> None:
        for i in range(blocks if record else 50):
            piece = stream[i * block : (i + 1) * block]
            for j, stage in enumerate(stages):
                if len(piece) == 0:
                    break
                start = time.perf_counter()
                piece = stage.process(piece)
                times[i, j] = (time.perf_counter() - start) * 1000.0
            hops[i] = transcriber.resampler.samples_out // HOP

    feed(record=False)  # warm up
    transcriber.chain.reset()
    times[:] = 0.0
    gc.callbacks.append(on_collect)
    try:
        feed(record=True)
    finally:
        gc.callbacks.remove(on_collect)
    whole = per_hop_compute(times.sum(axis=1), hops)

    def summary(per_hop: np.ndarray) -> dict:
        return {"median_ms": round(float(np.median(per_hop)), 4), "p99_ms": round(float(np.percentile(per_hop, 99)), 4),
                "mean_ms": round(float(per_hop.mean()), 4)}  # fmt: skip

    return {
        "stream_seconds": seconds,
        "hops": int(len(whole)),
        "whole_chain": {**summary(whole), "max_ms": round(float(whole.max()), 4)},
        "by_stage": {stage.name: summary(per_hop_compute(times[:, j], hops)) for j, stage in enumerate(stages)},
        "collections": {f"generation {g}": {"runs": sum(1 for c in collections if c[0] == g),
                                            "max_ms": round(max((c[1] for c in collections if c[0] == g), default=0.0), 3)}
                        for g in range(3)},  # fmt: skip
        "load_average_1min_end": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the looped stream")
    parser.add_argument("--models", default=None, help="model folder (default: the shipped models)")
    args = parser.parse_args()
    print(json.dumps(profile(args.seconds, args.models), indent=1))


if __name__ == "__main__":
    main()
