"""Keeping `rtamt live` responsive when what it talks to dies: bounded backend calls, a JACK server
monitor, and a deadline that ends the process whatever hangs.

A JACK server that dies leaves PortAudio's and RtMidi's JACK clients blocked (stopping a PortAudio stream,
closing a port, even PortAudio's own clean-up at exit can wait forever). So backend calls made while
shutting down run in a helper thread with a time limit (:func:`call_with_timeout`), a call that overran is
remembered (:func:`backend_abandoned`: the process must then end with ``os._exit``), and
:class:`ExitDeadline` ends the process with a chosen status if shutting down takes too long.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading
from collections.abc import Callable

_abandoned: list[str] = []  # names of backend calls that did not return in time

JACK_NO_START_SERVER = 0x01
_ERROR_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_char_p)
_SHUTDOWN_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


def call_with_timeout(name: str, call: Callable[[], object], timeout_s: float) -> bool:
    """Run ``call`` in a helper thread; True if it returned (or raised) within ``timeout_s``, else the
    call is left behind, remembered as abandoned, and False."""
    thread = threading.Thread(target=_quietly, args=(call,), name=f"rtamt-{name}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        abandon(name)
        return False
    return True


def abandon(name: str) -> None:
    """Remember a backend that is left unclosed (the process must end with :func:`exit_now`)."""
    _abandoned.append(name)


def _quietly(call: Callable[[], object]) -> None:
    try:
        call()
    except Exception:  # a backend failing while it is being closed has nothing left to report
        pass


def backend_abandoned() -> list[str]:
    """Backend calls that never returned: the process cannot exit normally (use :func:`exit_now`)."""
    return list(_abandoned)


def exit_now(code: int) -> None:
    """Flush stdout and stderr and end the process at once, skipping clean-up that could hang."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a closed pipe: nothing more can be said
            pass
    os._exit(code)


class ExitDeadline:
    """Ends the process with ``code`` unless :meth:`cancel` is called within ``seconds`` of :meth:`arm`."""

    def __init__(self) -> None:
        self._cancelled = threading.Event()
        self._armed = False
        self.code = 0

    def arm(self, seconds: float, code: int, message: str | None = None) -> None:
        """Start the countdown (only the first call counts; later ones may only change the status)."""
        self.code = code
        if self._armed:
            return
        self._armed = True
        self._cancelled.clear()

        def expire() -> None:
            if not self._cancelled.wait(seconds):
                if message:
                    print(f"\nrtamt: {message}", file=sys.stderr)
                exit_now(self.code)

        threading.Thread(target=expire, name="rtamt-deadline", daemon=True).start()

    def cancel(self) -> None:
        self._cancelled.set()
        self._armed = False


def _libjack() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("jack")
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    lib.jack_client_open.restype = ctypes.c_void_p
    lib.jack_client_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
    lib.jack_on_shutdown.argtypes = [ctypes.c_void_p, _SHUTDOWN_CALLBACK, ctypes.c_void_p]
    lib.jack_client_close.argtypes = [ctypes.c_void_p]
    return lib


_QUIET = _ERROR_CALLBACK(lambda message: None)


class JackMonitor:
    """A silent JACK client whose only job is to notice the server going away (``dead`` is then set).

    Opens nothing when libjack is missing or no server runs (``connected`` is then False); never starts a
    server. The server in use is JACK_DEFAULT_SERVER's, as for every other JACK client of the process.
    """

    def __init__(self, name: str = "rtamt-watchdog") -> None:
        self.dead = threading.Event()
        self._client = None
        self._callback = _SHUTDOWN_CALLBACK(lambda arg: self.dead.set())  # kept alive with the monitor
        self._lib = _libjack()
        if self._lib is None:
            return
        self._lib.jack_set_error_function(_QUIET)
        self._lib.jack_set_info_function(_QUIET)
        status = ctypes.c_int()
        self._client = self._lib.jack_client_open(name.encode(), JACK_NO_START_SERVER, ctypes.byref(status))
        if self._client:
            self._lib.jack_on_shutdown(self._client, self._callback, None)

    @property
    def connected(self) -> bool:
        return bool(self._client)

    def close(self, timeout_s: float) -> None:
        """Leave the JACK graph (skipped when the server is gone: closing would wait for it)."""
        client, self._client = self._client, None
        if client and not self.dead.is_set():
            call_with_timeout("jack-monitor-close", lambda: self._lib.jack_client_close(client), timeout_s)


def jack_server_running() -> bool:
    """Whether a JACK server answers (quietly: no libjack messages, no server started)."""
    monitor = JackMonitor("rtamt-probe")
    running = monitor.connected
    monitor.close(1.0)
    return running


def wait_until(check: Callable[[], bool], poll_s: float, stop: threading.Event) -> bool:
    """Poll ``check`` every ``poll_s`` until it is true (True) or ``stop`` is set (False)."""
    while not stop.is_set():
        if check():
            return True
        stop.wait(poll_s)
    return False


_PROBE = """
import sys
from rtamt.watchdog import jack_server_running
if sys.argv[1] == "jack" and not jack_server_running():
    sys.exit(1)
if sys.argv[2] != "-":
    from rtamt.live import find_input_device
    find_input_device(None if sys.argv[2] == "default" else sys.argv[2])
"""


def backend_back(jack: bool, input_spec: str | None, timeout_s: float = 10.0) -> bool:
    """Whether the JACK server (``jack``) and the audio input (``input_spec``; "-" for a file) answer
    again, asked in a fresh process: this one's audio and JACK libraries may still wait on the old server."""
    import subprocess

    spec = "default" if input_spec is None else input_spec
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, "jack" if jack else "-", spec],
            capture_output=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def restart_process() -> None:
    """Replace this process with a fresh run of the same command line (its hung threads go with it)."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
