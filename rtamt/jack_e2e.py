"""End-to-end measurement on a real JACK graph: audio in through JACK, MIDI out through JACK.

A JACK server with the dummy backend (no sound card) runs under its own name; ``rtamt live`` reads the
PortAudio JACK input and sends MIDI on a JACK virtual port; a player client plays a recording with
known notes into rtamt's input and records rtamt's MIDI with frame timestamps. Onset accuracy and
note-on latency come from those timestamps. Needs jackd (Debian jackd2) and the JACK-Client package.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from rtamt.audio import read_all
from rtamt.midi import ALL_NOTES_OFF
from rtamt.resample import resample

SERVER = "rtamt-e2e"


def jack_available() -> str | None:
    """None if the end-to-end run can happen here, else the reason it cannot."""
    if shutil.which("jackd") is None:
        return "jackd is not installed (apt-get install jackd2)"
    try:
        import jack  # noqa: F401
    except (ImportError, OSError) as err:
        return f"the JACK-Client package is unavailable ({err})"
    return None


@contextmanager
def jack_server(rate: int = 48_000, period: int = 256, name: str = SERVER):
    """A dummy-backend JACK server named ``name``, with JACK_DEFAULT_SERVER pointing at it. A server that
    was killed (as reliability tests do) is started once more and stopped cleanly: a killed jackd leaves
    its entry in JACK's table of at most 8 servers, and only a server of the same name reclaims it."""
    server = _start_server(rate, period, name)
    previous = os.environ.get("JACK_DEFAULT_SERVER")
    os.environ["JACK_DEFAULT_SERVER"] = name
    try:
        yield server
    finally:
        if previous is None:
            os.environ.pop("JACK_DEFAULT_SERVER", None)
        else:
            os.environ["JACK_DEFAULT_SERVER"] = previous
        if server.poll() is None:
            _stop_server(server)
        elif server.returncode == -signal.SIGKILL:
            _stop_server(_start_server(rate, period, name))
        server.log.close()


def _start_server(rate: int, period: int, name: str) -> subprocess.Popen:
    """jackd with the dummy backend, once it answers."""
    import jack

    env = dict(os.environ, JACK_NO_AUDIO_RESERVATION="1")
    # its messages go to a file: a pipe nobody reads fills up in a long run (xrun reports) and blocks jackd
    log = tempfile.TemporaryFile()
    server = subprocess.Popen(
        ["jackd", "--no-realtime", "-n", name, "-d", "dummy", "-r", str(rate), "-p", str(period)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    server.log = log  # read by server_log
    for _ in range(100):
        try:
            jack.Client("rtamt-probe", no_start_server=True, servername=name).close()
            return server
        except jack.JackOpenError:
            if server.poll() is not None:
                raise RuntimeError(f"jackd exited: {server_log(server)[-500:]}") from None
            time.sleep(0.1)
    _stop_server(server)
    raise RuntimeError("jackd did not start within 10 s")


def server_log(server: subprocess.Popen) -> str:
    """What a server started by :func:`jack_server` has printed so far."""
    server.log.seek(0)
    return server.log.read().decode(errors="replace")


def _stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(5)
    except subprocess.TimeoutExpired:  # a server stuck on a client that went away
        server.kill()
        server.wait(5)


def play_and_record(audio_path: Path, rtamt_args: list[str], tail_s: float = 1.5, timeout_s: float = 120.0,
                    stop_timeout_s: float = 45.0) -> dict:  # fmt: skip
    """Run ``rtamt live`` on the JACK graph, play ``audio_path`` into it, record its MIDI.

    Returns the MIDI events as (seconds after playback start, status, note, velocity), whether rtamt exited
    cleanly after SIGINT, its stderr tail, and the xruns seen while playing. Must run inside :func:`jack_server`.
    """
    import jack

    server = os.environ.get("JACK_DEFAULT_SERVER", SERVER)
    client = jack.Client("rtamt-player", no_start_server=True, servername=server)
    rate = client.samplerate
    audio, file_rate = read_all(audio_path)
    audio = resample(audio, file_rate, rate)
    out_port = client.outports.register("out")
    midi_port = client.midi_inports.register("midi_in")
    state = {"position": -1, "start_frame": None, "xruns": 0}
    received: list[tuple[int, bytes]] = []

    @client.set_xrun_callback
    def xrun(delay_usecs: float) -> None:  # a late client: the graph skipped audio (an overloaded machine)
        if state["position"] >= 0:
            state["xruns"] += 1

    @client.set_process_callback
    def process(frames: int) -> None:
        buffer = out_port.get_array()
        position = state["position"]
        if position < 0:
            buffer[:] = 0.0
        else:
            if state["start_frame"] is None:
                state["start_frame"] = client.last_frame_time
            chunk = audio[position : position + frames]
            buffer[: len(chunk)] = chunk
            buffer[len(chunk) :] = 0.0
            state["position"] = position + frames
        for offset, data in midi_port.incoming_midi_events():
            received.append((client.last_frame_time + offset, bytes(data)))

    env = dict(os.environ, JACK_NO_START_SERVER="1")
    live = subprocess.Popen([sys.executable, "-m", "rtamt", "live", "--quiet", *rtamt_args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    with client:
        try:
            audio_ins, midi_outs = _wait_for_rtamt_ports(client, live)
            for port in audio_ins:
                client.connect(out_port, port)
            client.connect(midi_outs[0], midi_port)
            time.sleep(1.0)  # let rtamt's input settle before the music starts
            state["position"] = 0
            deadline = time.monotonic() + timeout_s
            while state["position"] < len(audio) + tail_s * rate and time.monotonic() < deadline:
                time.sleep(0.05)
            live.send_signal(signal.SIGINT)
            try:
                stderr = live.communicate(timeout=stop_timeout_s)[1].decode(errors="replace")
            except subprocess.TimeoutExpired:
                live.kill()
                stderr = live.communicate()[1].decode(errors="replace")
                raise RuntimeError(f"rtamt live did not stop within {stop_timeout_s:.0f} s of Ctrl-C; its stderr:\n"
                                   f"{stderr[-2000:]}") from None  # fmt: skip
            time.sleep(0.3)  # the last note-offs travel one JACK cycle
        finally:
            if live.poll() is None:
                live.kill()
    start = state["start_frame"] or 0
    events = [((frame - start) / rate, data[0], data[1], data[2]) for frame, data in received if len(data) == 3]
    return {"events": events, "returncode": live.returncode, "stderr": stderr[-2000:], "rate": rate,
            "xruns": state["xruns"]}


def _wait_for_rtamt_ports(client, live: subprocess.Popen, timeout_s: float = 60.0) -> tuple[list, list]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if live.poll() is not None:
            raise RuntimeError(f"rtamt live exited early: {live.stderr.read().decode()[-1000:]}")
        audio_ins = [p for p in client.get_ports(is_audio=True, is_input=True)
                     if not p.name.startswith(("system:", "rtamt-player:"))]  # fmt: skip
        midi_outs = [p for p in client.get_ports(is_midi=True, is_output=True) if "rtamt" in p.name
                     and not p.name.startswith("rtamt-player:")]  # fmt: skip
        if audio_ins and midi_outs:
            return audio_ins, midi_outs
        time.sleep(0.2)
    raise RuntimeError("rtamt's JACK ports did not appear")


def events_to_notes(events: list[tuple[float, int, int, int]]) -> tuple[list[tuple], int]:
    """Pair note-ons and note-offs per (channel, pitch): (onset_s, offset_s, pitch, channel), plus the
    number of note-ons never turned off. All Notes Off (controller 123) ends every note of its channel,
    as it does in a synth."""
    sounding: dict[tuple[int, int], float] = {}
    notes = []
    for t, status, note, velocity in sorted(events, key=lambda e: e[0]):
        channel = status & 0x0F
        if (status & 0xF0) == 0xB0 and note == ALL_NOTES_OFF:
            for key in sorted(k for k in sounding if k[0] == channel):
                notes.append((sounding.pop(key), t, key[1], channel))
            continue
        key = (channel, note)
        if (status & 0xF0) == 0x90 and velocity > 0:
            if key in sounding:
                notes.append((sounding.pop(key), t, note, channel))
            sounding[key] = t
        elif (status & 0xF0) == 0x80 or ((status & 0xF0) == 0x90 and velocity == 0):
            if key in sounding:
                notes.append((sounding.pop(key), t, note, channel))
    return sorted(notes), len(sounding)
