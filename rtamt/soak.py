"""Soak benchmark: `rtamt live` for a long time on a real JACK graph, fed the bundled example in a loop.

A dummy-backend JACK server (no sound card) runs under its own name; a player client loops the example
into rtamt's audio input and records rtamt's MIDI output; ``rtamt live --stats-every`` reports per-hop
compute, drops and memory at regular intervals. At the end rtamt gets Ctrl-C, and every note-on it sent
must have had its note-off. Needs jackd (Debian jackd2) and the JACK-Client package.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from rtamt import jack_e2e
from rtamt.audio import read_all
from rtamt.bench import EXAMPLE, cpu_steal
from rtamt.resample import resample


def bench_soak(minutes: float, stats_every_s: float = 30.0, audio_path: Path = EXAMPLE / "mix.flac") -> dict:
    """Run the soak for ``minutes`` and return memory at start and end, drops, hanging notes and per-hop
    p99 per reporting interval (the first report, after ``stats_every_s``, is the start)."""
    reason = jack_e2e.jack_available()
    if reason:
        return {"benchmark": "soak", "skipped": reason}
    with jack_e2e.jack_server(name=f"rtamt-soak-{os.getpid()}") as server:
        run = _play_looped(audio_path, minutes * 60.0, stats_every_s)
        server_messages = jack_e2e.server_log(server)
    _, hanging = jack_e2e.events_to_notes(run["events"])
    reports = run["reports"]
    summary = run["summary"]
    result = {
        "benchmark": "soak",
        "minutes": minutes,
        "stats_every_s": stats_every_s,
        "input": audio_path.name + " looped",
        "jack_rate": run["rate"],
        "returncode": run["returncode"],
        "stopped_by": summary.get("stopped_by"),
        "audio_s": summary.get("audio_s"),
        "notes_sent": sum(1 for e in run["events"] if (e[1] & 0xF0) == 0x90 and e[3] > 0),
        "hanging_notes": hanging,  # in the MIDI received through JACK
        "hanging_notes_sent": run["sent_unclosed"],  # in what rtamt reports sending (--events json)
        "dropped_blocks": summary.get("dropped_blocks"),
        "jack_xrun_messages": sum("xrun" in line.lower() for line in server_messages.splitlines()),
        "skipped_s": summary.get("skipped_s"),
        "cpu_steal_share": run["steal_share"],
        "load_average_1min_end": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "per_hop_ms_median_all": summary.get("per_hop_ms_median"),
        "reports": reports,
    }
    if run["returncode"] != 130 or hanging:  # not stopped cleanly by the soak's Ctrl-C: say why
        result["stderr_tail"] = run["stderr_tail"]
    if reports:
        start, end = reports[0]["rss_mb"], reports[-1]["rss_mb"]
        p99 = [r["per_hop_ms_p99"] for r in reports]
        result.update(
            {
                "rss_mb_start": start,
                "rss_mb_end": end,
                "rss_growth_pct": round(100.0 * (end - start) / start, 2),
                "per_hop_ms_p99_first": p99[0],
                "per_hop_ms_p99_last": p99[-1],
                "per_hop_ms_p99_max": max(p99),
                "per_hop_ms_p99_median": round(float(np.median(p99)), 3),
            }
        )
    return result


def _play_looped(audio_path: Path, seconds: float, stats_every_s: float) -> dict:
    """``rtamt live`` on the JACK graph fed ``audio_path`` in a loop for ``seconds``; its MIDI as
    (seconds, status, note, velocity), its --stats-every reports, its final summary and exit status."""
    import jack

    client = jack.Client(
        "rtamt-soak-player", no_start_server=True, servername=os.environ["JACK_DEFAULT_SERVER"]
    )
    rate = client.samplerate
    audio, file_rate = read_all(audio_path)
    audio = resample(audio, file_rate, rate).astype(np.float32)
    loop = np.concatenate([audio, audio[: client.blocksize]])  # one period of wrap-around, read contiguously
    out_port = client.outports.register("out")
    midi_port = client.midi_inports.register("midi_in")
    state = {"position": -1}
    received: list[tuple[int, bytes]] = []

    @client.set_process_callback
    def process(frames: int) -> None:
        buffer = out_port.get_array()
        position = state["position"]
        if position < 0:
            buffer[:] = 0.0
        else:
            buffer[:] = loop[position : position + frames]
            state["position"] = (position + frames) % len(audio)
        for offset, data in midi_port.incoming_midi_events():
            received.append((client.last_frame_time + offset, bytes(data)))

    env = dict(os.environ, JACK_NO_START_SERVER="1")
    command = [
        sys.executable,
        "-m",
        "rtamt",
        "live",
        "--quiet",
        "--input",
        "system",
        "--midi-api",
        "jack",
        "--events",
        "json",
        "--stats-every",
        str(stats_every_s),
    ]
    live = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    sent: dict[tuple[int, int], int] = {}  # what rtamt says it sent: 1 while a (channel, pitch) sounds
    readers = [
        threading.Thread(target=lambda: lines.extend(live.stderr), daemon=True),
        threading.Thread(target=_follow_events, args=(live.stdout, sent), daemon=True),
    ]
    for reader in readers:
        reader.start()
    with client:
        try:
            audio_ins, midi_outs = jack_e2e._wait_for_rtamt_ports(client, live)
            for port in audio_ins:
                client.connect(out_port, port)
            client.connect(midi_outs[0], midi_port)
            state["position"] = 0
            steal_start, wall_start = cpu_steal(), time.monotonic()
            deadline = wall_start + seconds
            while time.monotonic() < deadline and live.poll() is None:
                time.sleep(min(1.0, max(deadline - time.monotonic(), 0.0)))
            steal = (cpu_steal() - steal_start) / os.sysconf("SC_CLK_TCK")
            steal_share = steal / (time.monotonic() - wall_start) / (os.cpu_count() or 1)
            live.send_signal(signal.SIGINT)
            live.wait(30)
            time.sleep(0.3)  # the last note-offs travel one JACK cycle
        finally:
            if live.poll() is None:
                live.kill()
    for reader in readers:
        reader.join(5)
    start_frame = received[0][0] if received else 0
    events = [((frame - start_frame) / rate, d[0], d[1], d[2]) for frame, d in received if len(d) == 3]
    reports, summary = [], {}
    for line in lines:
        if line.startswith("{"):
            parsed = json.loads(line)
            if "stats" in parsed:
                reports.append(parsed["stats"])
            else:
                summary = parsed
    return {
        "events": events,
        "reports": reports,
        "summary": summary,
        "returncode": live.returncode,
        "sent_unclosed": sum(sent.values()),
        "rate": rate,
        "steal_share": round(steal_share, 4),
        "stderr_tail": "".join(lines)[-2000:],
    }


def _follow_events(stream, sounding: dict[tuple[int, int], int]) -> None:  # noqa: ANN001
    """Read rtamt's --events json: ``sounding`` ends holding 1 for every note-on without a note-off."""
    for line in stream:
        if line.startswith("{"):
            event = json.loads(line)
            if "on" in event:  # a note (the other records are sustain-pedal changes)
                sounding[(event["channel"], event["pitch"])] = 1 if event["on"] else 0
