"""Benchmarks run by ``rtamt bench``: compute per hop against the 11.61 ms hop budget, and latency."""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

import numpy as np

from rtamt.chain import Chain
from rtamt.constants import HOP, HOP_S, JACK_MATCH_TOLERANCE_S, N_HCQT_BINS, SAMPLE_RATE
from rtamt.cqt import CQTConfig, SlidingCQT
from rtamt.hcqt import HarmonicStack
from rtamt.normalize import EnergyNorm


EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "duet"  # the bundled duet: mix.flac, notes.csv


def looped_example(samples: int, device_rate: int) -> np.ndarray:
    """The bundled duet at ``device_rate``, looped to ``samples`` samples: the stream the live benchmarks feed."""
    from rtamt.audio import read_all
    from rtamt.resample import resample

    audio, rate = read_all(EXAMPLE / "mix.flac")
    return np.resize(resample(audio, rate, device_rate), samples)


def test_signal(seconds: float, seed: int = 0) -> np.ndarray:
    """Harmonic tones changing every 250 ms over soft noise: the CQT's cost does not depend on content."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    audio = 0.01 * rng.standard_normal(n)
    segment = SAMPLE_RATE // 4
    for start in range(0, n, segment):
        f0 = 440.0 * 2 ** ((rng.integers(28, 96) - 69) / 12)
        sl = slice(start, start + segment)
        for harmonic in range(1, 6):
            if f0 * harmonic < SAMPLE_RATE / 2:
                audio[sl] += 0.2 / harmonic * np.sin(2 * np.pi * f0 * harmonic * t[sl])
    return audio.astype(np.float32)


def time_per_block(chain: Chain, audio: np.ndarray, block: int, hops_done=None) -> tuple[np.ndarray, np.ndarray]:
    """Wall time in ms of each ``chain.process`` call over ``audio`` cut into ``block``-sample blocks, and
    after each call the number of hops the chain has completed (``hops_done()``, zeros without it)."""
    times = np.empty(len(audio) // block)
    hops = np.zeros(len(times), dtype=np.int64)
    for i in range(len(times)):
        piece = audio[i * block : (i + 1) * block]
        start = time.perf_counter()
        chain.process(piece)
        times[i] = (time.perf_counter() - start) * 1000.0
        if hops_done is not None:
            hops[i] = hops_done()
    return times, hops


def per_hop_compute(block_ms: np.ndarray, hops_done: np.ndarray) -> np.ndarray:
    """Compute spent per hop: the time of every block from just after one hop completed up to the block
    that completed the next one (split evenly when a block completes several)."""
    completed = np.diff(hops_done, prepend=0)
    ends = np.flatnonzero(completed > 0)
    if len(ends) == 0:
        return block_ms[:0]
    starts = np.concatenate([[0], ends[:-1] + 1])
    spent = np.add.reduceat(block_ms[: ends[-1] + 1], starts)
    return np.repeat(spent / completed[ends], completed[ends])


def cpu_steal() -> int:
    """Jiffies the hypervisor took from this virtual machine so far (0 where /proc/stat has no steal)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) if len(fields) > 8 else 0
    except OSError:
        return 0


def bench_cqt(seconds: float = 60.0, config: CQTConfig | None = None) -> dict:
    """Sliding CQT + energy norm + harmonic stack, fed one hop (256 samples) per call, one thread."""
    cqt = SlidingCQT(config)
    chain = Chain([cqt, EnergyNorm(), HarmonicStack()])
    audio = test_signal(seconds)
    time_per_block(chain, audio[: 20 * HOP], HOP)  # compile and warm up
    chain.reset()
    per_hop, _ = time_per_block(chain, audio, HOP)
    chain.reset()
    start = time.perf_counter()
    for i in range(0, len(audio), 8192):
        chain.process(audio[i : i + 8192])
    offline_s = time.perf_counter() - start
    return {
        "benchmark": "cqt",
        "stages": [stage.name for stage in chain.stages],
        "config": cqt.config.to_dict(),
        "audio_seconds": seconds,
        "hops": int(len(per_hop)),
        "hop_budget_ms": round(HOP_S * 1000.0, 3),
        "per_hop_ms_median": round(float(np.median(per_hop)), 4),
        "per_hop_ms_p99": round(float(np.percentile(per_hop, 99)), 4),
        "per_hop_ms_max": round(float(per_hop.max()), 4),
        "real_time_factor_per_hop": round(float(per_hop.sum() / 1000.0 / seconds), 5),
        "real_time_factor_8192_blocks": round(offline_s / seconds, 5),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "octave_latency_ms": cqt.octave_latency(),
    }


def bench_backbone(frames: int = 3000, model_dir: str | Path | None = None) -> dict:
    """Backbone inference fed one frame at a time with its caches, one onnxruntime thread."""
    from rtamt.backbone import Backbone
    from rtamt.models import models_dir

    stage = Backbone(Path(model_dir or models_dir()) / "backbone.onnx", threads=1)
    hcqt = np.random.default_rng(0).normal(-8, 3, size=(frames, stage.input_channels, N_HCQT_BINS)).astype(np.float32)
    for i in range(50):
        stage.process(hcqt[i : i + 1])
    stage.reset()
    times = np.empty(frames)
    for i in range(frames):
        start = time.perf_counter()
        stage.process(hcqt[i : i + 1])
        times[i] = (time.perf_counter() - start) * 1000.0
    return {
        "benchmark": "backbone",
        "parameters": int(stage.meta.get("parameters", 0)),
        "lookahead_frames": stage.lookahead,
        "frames": frames,
        "per_frame_ms_median": round(float(np.median(times)), 4),
        "per_frame_ms_p99": round(float(np.percentile(times, 99)), 4),
        "hop_budget_ms": round(HOP_S * 1000.0, 3),
    }


def bench_latency(minutes: float = 10.0, block: int = 256, device_rate: int = 48_000, jack: bool = True,
                  model_dir: str | Path | None = None) -> dict:  # fmt: skip
    """Algorithmic latency of each stage, whole-chain compute per hop over a long stream fed in device-sized
    blocks at ``device_rate``, memory at the start and end, and the measured JACK end-to-end note-on
    latency on the bundled example (when jackd is available)."""
    from rtamt.pipeline import build_transcriber

    transcriber = build_transcriber(device_rate, model_dir, mode="low-latency")  # as `rtamt live`
    resampler = transcriber.resampler
    total = int(minutes * 60 * device_rate)
    stream = looped_example(total, device_rate)
    time_per_block(transcriber.chain, stream[: 50 * block], block)  # warm up
    transcriber.chain.reset()
    rss_start, steal_start, wall_start = _rss_mb(), cpu_steal(), time.monotonic()
    per_block, hops_done = time_per_block(transcriber.chain, stream, block, lambda: resampler.samples_out // HOP)
    rss_end, steal = _rss_mb(), cpu_steal() - steal_start
    per_hop = per_hop_compute(per_block, hops_done)
    steal_share = steal / os.sysconf("SC_CLK_TCK") / (time.monotonic() - wall_start) / (os.cpu_count() or 1)
    octaves = transcriber.cqt.octave_latency()
    algorithmic = {
        "input_block_ms": round(block / device_rate * 1000, 2),
        "resampler_ms": round(resampler.latency_s * 1000, 2),
        "cqt_group_delay_ms_by_octave": {f"{o['f_low_hz']:.0f}-{o['f_high_hz']:.0f} Hz": o["latency_ms_max"] for o in octaves},
        "model_lookahead_ms": round(transcriber.backbone.latency_s * 1000, 2),
        "note_decision_ms": round(transcriber.tracker.latency_s * 1000, 2),
        "sustained_start_decision_ms": round((transcriber.tracker.config.sustain_frames - 1) * HOP_S * 1000, 2),
    }  # fmt: skip
    if transcriber.assigner is not None:  # the note-on waits for the timbre decision window
        algorithmic["timbre_decision_ms"] = round(transcriber.assigner.decision_window_s * 1000, 2)
    result = {
        "benchmark": "latency",
        "algorithmic": algorithmic,
        "stream_minutes": minutes,
        "block_samples": block,
        "device_rate": device_rate,
        "per_block_ms_median": round(float(np.median(per_block)), 4),
        "per_block_ms_p99": round(float(np.percentile(per_block, 99)), 4),
        "per_hop_ms_median": round(float(np.median(per_hop)), 4),
        "per_hop_ms_p99": round(float(np.percentile(per_hop, 99)), 4),
        "per_hop_ms_max": round(float(per_hop.max()), 4),
        "hop_budget_ms": round(HOP_S * 1000.0, 3),
        "real_time_factor": round(float(per_block.sum() / 1000.0 / (total / device_rate)), 4),
        "cpu_steal_share": round(steal_share, 4),  # CPU time the hypervisor took during the run
        "load_average_1min_end": round(os.getloadavg()[0], 2),  # other work on the machine: the p99 suffers
        "rss_mb_start": rss_start,
        "rss_mb_end": rss_end,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
    }
    if jack:
        result["jack_end_to_end"] = jack_end_to_end(EXAMPLE)
    return result


def jack_end_to_end(example: Path) -> dict:
    """Note-on latency measured through a real JACK graph (see rtamt.jack_e2e)."""
    from rtamt import jack_e2e
    from rtamt.evaluate import note_metrics, read_notes_csv
    from rtamt.latency import arrival_latencies

    reason = jack_e2e.jack_available()
    if reason:
        return {"skipped": reason}
    with jack_e2e.jack_server():
        run = jack_e2e.play_and_record(example / "mix.flac", ["--input", "system", "--midi-api", "jack"])
    notes, hanging = jack_e2e.events_to_notes(run["events"])
    reference = [(on, off, midi) for on, off, midi, _ in read_notes_csv(example / "notes.csv")]
    estimate = [(on, off, pitch) for on, off, pitch, _ in notes]
    metrics = note_metrics(reference, estimate, onset_tolerance=JACK_MATCH_TOLERANCE_S)
    latency = arrival_latencies(reference, [(on, pitch) for on, _, pitch in estimate])[0] * 1000.0
    return {
        "onset_f1_200ms": metrics["onset_f1"],
        "matched_notes": len(latency),
        "note_on_latency_ms_median": round(float(np.median(latency)), 1) if len(latency) else None,
        "note_on_latency_ms_p95": round(float(np.percentile(latency, 95)), 1) if len(latency) else None,
        "hanging_notes": hanging,
        "xruns": run["xruns"],  # with xruns the machine was too loaded to trust the timing
        "jack_rate": run["rate"],
    }


def _rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024.0, 1)
    return 0.0
