"""`rtamt live` never hangs: a JACK server that dies, a file that fails part-way, a closed stdout, signals;
and its event times stay true to the input after dropped audio."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from rtamt.constants import HOP, SAMPLE_RATE
from rtamt.live import LiveEngine, LiveError, resolve_midi_api
from rtamt.sinks import MidiPortSink
from rtamt.tracker import NoteEvent

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "duet"
EXIT_WITHIN_S = 2.0


def live_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "rtamt", "live", "--quiet", *args]


def unclosed_notes(stdout: str) -> int:
    """Note-ons in an --events json stream without a later note-off."""
    sounding: dict[tuple[int, int], int] = {}
    for line in stdout.splitlines():
        if line.startswith("{"):
            event = json.loads(line)
            key = (event["channel"], event["pitch"])
            sounding[key] = 1 if event["on"] else 0
    return sum(sounding.values())


def wait_for_line(stream, timeout_s: float) -> str:  # noqa: ANN001
    """The next line of a subprocess pipe ('' at its end or after ``timeout_s``)."""
    import selectors

    selector = selectors.DefaultSelector()
    selector.register(stream, selectors.EVENT_READ)
    if not selector.select(timeout_s):
        return ""
    return stream.readline()


@pytest.fixture
def jack_server():
    from rtamt import jack_e2e

    reason = jack_e2e.jack_available()
    if reason:
        pytest.skip(reason)
    with jack_e2e.jack_server(name="rtamt-rel-kill") as server:
        yield server


def killed_server_run(server: subprocess.Popen, args: list[str]) -> tuple[int, float, str, str]:
    """Start `rtamt live ARGS` on the test's JACK server, kill the server once notes flow (or after 4 s
    without --events), and return the exit status, the seconds from the kill to the exit, stdout, stderr."""
    live = subprocess.Popen(
        live_command(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, JACK_NO_START_SERVER="1"),
    )
    try:
        first = wait_for_line(live.stdout, 60) if "--events" in args else (time.sleep(6) or "")
        assert live.poll() is None, live.stderr.read()
        server.kill()
        killed = time.monotonic()
        rest, err = live.communicate(timeout=20)
        return live.returncode, time.monotonic() - killed, first + rest, err
    finally:
        if live.poll() is None:
            live.kill()


def test_jack_server_dying_ends_live_from_the_device_within_2_s(jack_server: subprocess.Popen) -> None:
    code, seconds, _, err = killed_server_run(jack_server, ["--input", "system", "--midi-api", "jack"])
    assert code == 4, err
    assert "the JACK server stopped" in err and "Traceback" not in err
    assert seconds < EXIT_WITHIN_S


def test_jack_server_dying_under_notes_sends_note_offs_and_exits(jack_server: subprocess.Popen) -> None:
    code, seconds, out, err = killed_server_run(
        jack_server,
        ["--input", str(EXAMPLE / "mix.flac"), "--realtime", "--midi-api", "jack", "--events", "json"],
    )
    assert code == 4, err
    assert "the JACK server stopped" in err
    assert seconds < EXIT_WITHIN_S
    assert out.count('"on": true') >= 1 and unclosed_notes(out) == 0


def test_midi_api_auto_prefers_a_running_jack_server(jack_server: subprocess.Popen) -> None:
    assert resolve_midi_api("auto") == "jack"
    assert resolve_midi_api("alsa") == "alsa"


def test_midi_api_failure_names_the_ways_out() -> None:
    try:
        MidiPortSink("rtamt-test", api="alsa").close()
    except LiveError as err:
        assert "--midi-api jack" in str(err) and "--no-midi" in str(err)
    else:
        pytest.skip("the ALSA sequencer works here")


@pytest.mark.parametrize("damage", ["nan", "truncated"])
def test_a_file_failing_mid_stream_ends_live_with_an_error(damage: str, tmp_path: Path) -> None:
    audio, rate = sf.read(EXAMPLE / "mix.flac", dtype="float32")
    if damage == "nan":
        path = tmp_path / "take.wav"
        audio[len(audio) // 2] = np.nan
        sf.write(path, audio, rate, subtype="FLOAT")
        message = "non-finite sample (NaN or Inf)"
    else:
        path = tmp_path / "take.flac"
        data = (EXAMPLE / "mix.flac").read_bytes()
        path.write_bytes(data[: len(data) // 2])
        message = "read failed"
    done = subprocess.run(
        live_command("--input", str(path), "--no-midi", "--events", "json"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and str(path) in done.stderr and "Traceback" not in done.stderr
    assert done.stdout.count('"on": true') >= 1 and unclosed_notes(done.stdout) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_a_mistyped_input_file_is_reported_as_missing() -> None:
    done = subprocess.run(
        live_command("--input", "tkae1.flac", "--no-midi"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "tkae1.flac: no such file" in done.stderr and "audio input" not in done.stderr


def test_events_into_a_closed_pipe_end_quietly() -> None:
    """`rtamt live --events json | head -2`: no traceback, note-offs still sent, status 0."""
    live = subprocess.Popen(
        live_command("--input", str(EXAMPLE / "mix.flac"), "--realtime", "--no-midi", "--events", "json"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        lines = [live.stdout.readline() for _ in range(2)]
        assert all(line.startswith(b"{") for line in lines)
        live.stdout.close()  # what `head` does after two lines
        err = live.stderr.read().decode()
        live.wait(30)
    finally:
        if live.poll() is None:
            live.kill()
    assert live.returncode == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err
    assert json.loads(err.strip().splitlines()[-1])["stopped_by"] == "stdout closed"


class OnsetChain:
    """Stands in for the transcriber: one note-on at the first non-zero sample it sees, in its own time."""

    def __init__(self, rate: int) -> None:
        self.rate, self.seen, self.fired = rate, 0, False

    def start(self, rate: int) -> None:
        self.rate, self.seen, self.fired = rate, 0, False

    def process(self, block: np.ndarray) -> list[NoteEvent]:
        loud = np.flatnonzero(block)
        events = []
        if len(loud) and not self.fired:
            frame = round((self.seen + loud[0]) / self.rate * SAMPLE_RATE / HOP)
            events, self.fired = [NoteEvent(True, 60, frame, frame, 90)], True
        self.seen += len(block)
        return events

    def flush(self) -> list[NoteEvent]:
        return []


def test_event_times_after_dropped_audio_match_the_input() -> None:
    """When the worker skips queued audio, an event's input time adds the skipped audio back."""
    rate = 48_000
    events: list[float] = []
    engine = LiveEngine(
        OnsetChain(rate),
        rate,
        1,
        None,
        on_event=lambda event, now: events.append(engine.input_time(event)),
        max_backlog_s=0.5,
    )
    audio = np.zeros(int(3.5 * rate), dtype=np.float32)
    audio[int(3.2 * rate) :] = 0.5  # the onset is at 3.2 s of input
    assert engine.ring.write(audio)  # 3.5 s queued before the worker starts: 3 s of it are skipped
    engine.input_done.set()
    engine.start()
    engine.join(10)
    assert engine.error is None and engine.ring.dropped_blocks == 1
    assert engine.stats.skipped_samples == 3 * rate
    assert events == [pytest.approx(3.2, abs=HOP / SAMPLE_RATE)]


def test_the_library_chain_refuses_non_finite_audio() -> None:
    from rtamt.audio import AudioInputError
    from rtamt.pipeline import build_transcriber

    audio = np.zeros(44_100, dtype=np.float32)
    audio[30_000] = np.nan
    transcriber = build_transcriber(44_100)
    with pytest.raises(AudioInputError, match=r"non-finite sample \(NaN or Inf\) at 0.680 s"):
        transcriber.chain.run([audio[:22_050], audio[22_050:]])


def test_sigint_exits_130_within_2_s_while_the_input_is_silent(jack_server: subprocess.Popen) -> None:
    live = subprocess.Popen(
        live_command("--input", "system", "--midi-api", "jack"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, JACK_NO_START_SERVER="1"),
    )
    try:
        time.sleep(6)
        assert live.poll() is None, live.stderr.read()
        live.send_signal(signal.SIGINT)
        sent = time.monotonic()
        _, err = live.communicate(timeout=20)
        assert time.monotonic() - sent < EXIT_WITHIN_S
    finally:
        if live.poll() is None:
            live.kill()
    assert live.returncode == 130, err
    assert json.loads(err.strip().splitlines()[-1])["stopped_by"] == "SIGINT"


def jack_ports(server_name: str, prefix: str) -> list[str]:
    import jack

    client = jack.Client("rtamt-test-probe", no_start_server=True, servername=server_name)
    try:
        return [p.name for p in client.get_ports() if p.name.startswith(prefix)]
    finally:
        client.close()


def wait_for(check, timeout_s: float) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.3)
    return False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_at_any_moment_of_start_up_ends_live_cleanly(jack_server: subprocess.Popen, sig: int) -> None:
    """While the libraries load, the model loads, the JACK MIDI port and the PortAudio stream open: a
    signal used to be swallowed in a ctypes callback (live ran on), interrupt libjack's socket reads (port
    or stream failed, exit 4, or PortAudio aborted) or crash the process at exit (SIGSEGV)."""
    env = dict(os.environ, JACK_NO_START_SERVER="1")
    outcomes = []
    for delay in (0.2, 0.5, 0.8, 1.0, 1.2, 1.5, 2.0, 3.0):
        live = subprocess.Popen(live_command("--input", "system", "--midi-api", "jack"), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
        try:
            time.sleep(delay)
            live.send_signal(sig)
            sent = time.monotonic()
            _, err = live.communicate(timeout=20)
            outcomes.append((delay, live.returncode, round(time.monotonic() - sent, 2), err[-300:]))
        finally:
            if live.poll() is None:
                live.kill()
    assert all(code == 128 + sig and seconds < EXIT_WITHIN_S for _, code, seconds, _ in outcomes), outcomes


def test_stop_signals_take_the_signal_in_their_own_thread_and_give_it_back() -> None:
    from rtamt.watchdog import StopSignals

    before = signal.getsignal(signal.SIGINT)
    signals = StopSignals(deadline_s=60.0).install()
    try:
        assert signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])  # blocked here, taken by sigwait
        os.kill(os.getpid(), signal.SIGINT)
        # the signal thread takes it, or (in this test process) a thread started before install() that
        # does not block it, whose Python handler then runs in this thread between two bytecodes
        deadline = time.monotonic() + 2.0
        while not signals.requested.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert signals.requested.is_set()
        assert signals.name == "SIGINT"
    finally:
        signals.deadline.cancel()
        signals.close()
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])
    assert signal.getsignal(signal.SIGINT) is before


def test_reconnect_waits_for_the_jack_server_and_resumes() -> None:
    from rtamt import jack_e2e

    reason = jack_e2e.jack_available()
    if reason:
        pytest.skip(reason)
    name = "rtamt-rel-reconnect"
    env = dict(os.environ, JACK_NO_START_SERVER="1", JACK_DEFAULT_SERVER=name)
    with jack_e2e.jack_server(name=name) as server:
        live = subprocess.Popen(
            live_command("--input", "system", "--midi-api", "jack", "--reconnect"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            assert wait_for(lambda: jack_ports(name, "PortAudio:") and jack_ports(name, "rtamt:"), 60), (
                live.stderr
            )
            time.sleep(1.0)  # the stream is running
            server.kill()
            server.wait(5)
            time.sleep(1.5)
            assert live.poll() is None, live.stderr.read()  # waiting, not gone
            with jack_e2e.jack_server(name=name):
                assert wait_for(lambda: jack_ports(name, "rtamt:"), 60), "rtamt did not come back"
                live.send_signal(signal.SIGINT)
                _, err = live.communicate(timeout=20)
        finally:
            if live.poll() is None:
                live.kill()
    assert live.returncode == 130, err
    assert "the JACK server stopped; waiting for it to come back" in err and "back; starting again" in err


def test_soak_reports_memory_drops_and_hanging_notes() -> None:
    from rtamt import jack_e2e
    from rtamt.soak import bench_soak

    reason = jack_e2e.jack_available()
    if reason:
        pytest.skip(reason)
    result = bench_soak(minutes=0.25, stats_every_s=4.0)
    assert result["returncode"] == 130 and result["stopped_by"] == "SIGINT"
    hanging = {key: result[key] for key in ("hanging_notes", "hanging_notes_sent", "jack_xrun_messages")}
    assert result["notes_sent"] > 10 and hanging["hanging_notes"] == 0 and hanging["hanging_notes_sent"] == 0, hanging
    assert len(result["reports"]) >= 2 and result["audio_s"] >= 10
    assert result["rss_mb_start"] > 0 and abs(result["rss_growth_pct"]) < 50
    assert 0 < result["per_hop_ms_p99_median"] <= result["per_hop_ms_p99_max"]


def test_an_input_that_stops_calling_back_is_reported_within_a_second() -> None:
    """The watchdog's other sign: no audio callback for LIVE_INPUT_TIMEOUT_S (any audio system)."""
    from rtamt.constants import LIVE_INPUT_TIMEOUT_S
    from rtamt.live import _watch

    engine = LiveEngine(OnsetChain(48_000), 48_000, 1, None)
    engine.start()
    try:
        started = time.monotonic()
        failure = _watch(engine, SimpleNamespace(active=True), None, status=False, stats_every=None)
        waited = time.monotonic() - started
    finally:
        engine.stop.set()
        engine.join(5)
    assert failure == "the audio input stopped (device disconnected?)"
    assert LIVE_INPUT_TIMEOUT_S <= waited < LIVE_INPUT_TIMEOUT_S + 0.5


@pytest.mark.skipif(not (ROOT / "models" / "timbre.onnx").exists(), reason="no timbre model shipped")
def test_a_live_stream_keeps_no_growing_note_list() -> None:
    """`rtamt live` runs for hours: the clusterer keeps finished notes for --refine only, so a live stream
    gives the same events as the offline chain while its memory of notes stays empty."""
    from rtamt.audio import read_blocks
    from rtamt.live import feed_file
    from rtamt.pipeline import build_transcriber

    offline = build_transcriber(44_100)
    offline.start(44_100)
    expected = offline.chain.run(read_blocks(EXAMPLE / "mix.flac"))
    assert len(offline.assigner.completed) > 10
    events: list[NoteEvent] = []
    transcriber = build_transcriber(44_100)
    engine = LiveEngine(
        transcriber, 44_100, 1, None, on_event=lambda event, now: events.append(event), max_backlog_s=None
    )
    engine.start()
    feed_file(engine, str(EXAMPLE / "mix.flac"), realtime=False)
    engine.join(120)
    assert engine.error is None and events == expected
    assert transcriber.assigner.finished == [] and transcriber.assigner.completed == []
