"""Live engine: lock-free ring buffer, live path equals the offline path, end-to-end through JACK."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from rtamt.audio import read_all, read_blocks
from rtamt.evaluate import note_metrics, read_notes_csv
from rtamt.live import LiveEngine, RingBuffer, feed_file, realtime_scheduling
from rtamt.pipeline import build_transcriber
from rtamt.sinks import JsonLinesSink
from rtamt.tracker import TrackerConfig

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "duet"
MODELS = Path(__file__).resolve().parent.parent / "models"
# End-to-end through JACK on the bundled example with the shipped model. Live note-ons carry their arrival
# time, so the match allows 500 ms for latency: the shipped tracker settings have 150-190 ms note-on latency
# and a 200 ms window proved flaky under load (0.65 in one run, 0.18 in another). The bar guards the live
# path against losing notes; accuracy itself is measured by `rtamt eval`, latency by `rtamt bench latency`.
E2E_ONSET_TOLERANCE_S = 0.5
E2E_ONSET_F1_BAR = 0.3
# The untrained model's probabilities sit near 0.01 (onset) and 0.05 (frame): thresholds at their upper
# percentiles make it fire (about a thousand notes on the duet), so that live = offline compares events.
RANDOM_MODEL_TRACKER = TrackerConfig(onset_threshold=0.0102, frame_threshold=0.048, sustain_threshold=0.053,
                                     sustain_frames=3)  # fmt: skip


def test_ring_buffer_wraps_and_counts_drops() -> None:
    ring = RingBuffer(10)
    assert ring.write(np.arange(6, dtype=np.float32))
    np.testing.assert_array_equal(ring.read(4), [0, 1, 2, 3])
    assert ring.write(np.arange(6, 14, dtype=np.float32))  # wraps around the end
    assert not ring.write(np.ones(3, dtype=np.float32))  # would overflow: dropped whole
    assert (ring.dropped_blocks, ring.dropped_samples) == (1, 3)
    np.testing.assert_array_equal(ring.read(100), np.arange(4, 14))
    assert ring.available() == 0
    ring.write(np.arange(5, dtype=np.float32))
    ring.skip(3)
    np.testing.assert_array_equal(ring.read(5), [3, 4])


def test_ring_buffer_survives_a_concurrent_producer() -> None:
    ring = RingBuffer(4096)
    total = 200_000
    data = np.arange(total, dtype=np.float32)

    def produce() -> None:
        pos = 0
        while pos < total:
            if ring.write(data[pos : pos + 100]):
                pos += 100

    thread = threading.Thread(target=produce)
    thread.start()
    received = []
    while sum(len(r) for r in received) < total:
        received.append(ring.read(ring.available()))
    thread.join()
    np.testing.assert_array_equal(np.concatenate(received), data)


def test_live_engine_from_a_file_equals_the_offline_chain(random_model_dir: Path, tmp_path: Path) -> None:
    offline = build_transcriber(44_100, random_model_dir, tracker=RANDOM_MODEL_TRACKER)
    expected = offline.chain.run(read_blocks(EXAMPLE / "mix.flac"))
    assert sum(event.on for event in expected) >= 100, "no events: the comparison would prove nothing"
    events = []
    sink = JsonLinesSink(tmp_path / "events.jsonl")
    live = build_transcriber(model_dir=random_model_dir, tracker=RANDOM_MODEL_TRACKER)  # no rate: set per stream
    engine = LiveEngine(live.chain, 44_100, 1, [sink],
                        on_event=lambda event, now: events.append(event), max_backlog_s=None)  # fmt: skip
    engine.start()
    feed_file(engine, str(EXAMPLE / "mix.flac"), realtime=False)
    engine.join(120)
    sink.close()
    assert engine.error is None
    assert events == expected
    assert engine.ring.dropped_blocks == 0
    lines = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [(r["on"], r["pitch"]) for r in lines] == [(e.on, e.pitch) for e in expected]


def test_run_live_as_a_library_gives_ctrl_c_back(random_model_dir: Path, tmp_path: Path) -> None:
    from rtamt.live import run_live

    audio = tmp_path / "short.wav"
    sf.write(audio, np.random.default_rng(0).standard_normal(22_050).astype(np.float32) * 0.1, 22_050)
    handler = signal.getsignal(signal.SIGINT)
    transcriber = build_transcriber(model_dir=random_model_dir, tracker=RANDOM_MODEL_TRACKER)
    summary = run_live(transcriber, str(audio), False, None, [JsonLinesSink(tmp_path / "e.jsonl")], status=False)
    assert summary["stopped_by"] == "end of input"
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])  # not left blocked
    assert signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, [])
    assert signal.getsignal(signal.SIGINT) is handler


def test_end_to_end_through_jack() -> None:
    from rtamt import jack_e2e

    reason = jack_e2e.jack_available()
    if reason:
        pytest.skip(reason)
    with jack_e2e.jack_server():
        run = jack_e2e.play_and_record(EXAMPLE / "mix.flac", ["--input", "system", "--midi-api", "jack"])
    assert run["returncode"] == 130, run["stderr"]  # stopped by Ctrl-C, as transcribe
    notes, hanging = jack_e2e.events_to_notes(run["events"])
    assert hanging == 0, "notes left sounding after stop"
    reference = [(on, off, midi) for on, off, midi, _ in read_notes_csv(EXAMPLE / "notes.csv")]
    metrics = note_metrics(reference, [(on, off, pitch) for on, off, pitch, _ in notes], E2E_ONSET_TOLERANCE_S)
    assert len(notes) >= 20, f"only {len(notes)} notes arrived"
    assert metrics["onset_f1"] >= E2E_ONSET_F1_BAR, metrics


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_live_stops_cleanly_on_signals_even_when_started_ignoring_sigint(signum: int, tmp_path: Path) -> None:
    """A background job of a script starts with SIGINT ignored; Ctrl-C or a kill must still end the stream
    promptly with a note-off for every note-on. The input lasts a minute, so only the signal can end the
    run within 20 s of audio."""
    audio, rate = read_all(EXAMPLE / "mix.flac")
    long_input = tmp_path / "long.flac"
    sf.write(long_input, np.tile(audio, 4), rate)  # 72 s
    live = subprocess.Popen(
        [sys.executable, "-m", "rtamt", "live", "--input", str(long_input), "--realtime", "--no-midi",
         "--events", "json", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )  # fmt: skip
    try:
        first = live.stdout.readline()  # the first note event: the stream is running
        assert first, live.stderr.read()
        live.send_signal(signum)
        rest, stderr = live.communicate(timeout=30)
    finally:
        if live.poll() is None:
            live.kill()
    assert live.returncode == 128 + signum, stderr  # 130 for Ctrl-C, 143 for SIGTERM
    events = [json.loads(line) for line in [first, *rest.splitlines()] if line.startswith("{")]
    sounding: dict[tuple[int, int], int] = {}
    for event in events:
        key = (event["channel"], event["pitch"])
        sounding[key] = sounding.get(key, 0) + (1 if event["on"] else -1)
    assert all(count <= 0 for count in sounding.values()), "a note was left sounding"
    summary = json.loads(stderr.strip().splitlines()[-1])
    assert summary["audio_s"] < 20, "the stream ran on after the signal"
    assert summary["worker_scheduling"].startswith(("SCHED_FIFO 5", "normal ("))


def test_real_time_scheduling_is_asked_for_the_calling_thread_only() -> None:
    seen: dict = {}

    def worker() -> None:
        seen["said"] = realtime_scheduling(5)
        seen["policy"] = os.sched_getscheduler(0)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    if seen["said"].startswith("SCHED_FIFO"):
        assert seen["said"] == "SCHED_FIFO 5" and seen["policy"] == os.SCHED_FIFO
    else:  # no permission here: it says so and nothing changed
        assert seen["said"].startswith("normal (") and seen["policy"] == os.SCHED_OTHER
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the calling thread only
    assert realtime_scheduling(0) == "normal"
