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
import signal
import sys
import threading
from collections.abc import Callable

from rtamt.constants import EXIT_SIGNAL_BASE

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


def default_stop_signals() -> None:
    """In a forked worker process: SIGINT and SIGTERM unblocked and handled as the system does. A fork
    inherits its parent's handlers and signal mask (:class:`StopSignals` takes both signals to stop
    cleanly), and a worker that only records SIGTERM outlives ``Pool.terminate``: the pool's owner then
    waits for it for ever."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, StopSignals.SIGNALS)
    for number in StopSignals.SIGNALS:
        signal.signal(number, signal.SIG_DFL)


class StopSignals:
    """Ctrl-C (SIGINT) and SIGTERM as a request to stop, from the moment :meth:`install` is called: the
    first sets ``requested`` (and remembers ``signal``) and arms ``deadline``, which ends the process with
    128 + the signal within ``deadline_s`` whatever hangs; a second ends it at once.

    The signals are blocked in the main thread (and so in every thread started later, the audio and MIDI
    libraries' included) and taken by a thread of their own with sigtimedwait. A signal delivered to a
    thread in the middle of a system call interrupts it, and libjack does not retry an interrupted socket
    read: the JACK client then fails to open a port, PortAudio aborts, or (with Python's default handler) a
    KeyboardInterrupt is swallowed inside a ctypes callback or unwinds through a half-open JACK client,
    which crashed the process at exit. A thread started before :meth:`install` may still receive one; a
    Python handler that does the same covers it."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, deadline_s: float, message: str = "stopping took too long: ended at once") -> None:
        self.requested = threading.Event()
        self.signal: int | None = None
        self.deadline = ExitDeadline()
        self._deadline_s = deadline_s
        self._message = message
        self._closed = threading.Event()
        self._previous: dict[int, object] = {}

    def install(self) -> StopSignals:
        """Take over SIGINT and SIGTERM (only from the main thread; elsewhere nothing changes)."""
        if threading.current_thread() is not threading.main_thread():
            return self
        self._previous = {number: signal.signal(number, self._from_handler) for number in self.SIGNALS}
        signal.pthread_sigmask(signal.SIG_BLOCK, self.SIGNALS)
        threading.Thread(target=self._wait, name="rtamt-signals", daemon=True).start()
        return self

    def close(self) -> None:
        """Give SIGINT and SIGTERM back as they were (a signal that arrived meanwhile stays recorded)."""
        if not self._previous:
            return
        self._closed.set()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, self.SIGNALS)
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous = {}

    def _wait(self) -> None:
        while not self._closed.is_set():
            info = signal.sigtimedwait(self.SIGNALS, 0.25)
            if info is not None:
                self.receive(info.si_signo)

    def _from_handler(self, signum: int, frame) -> None:  # noqa: ANN001
        self.receive(signum)

    def receive(self, signum: int) -> None:
        """A stop request: the first asks politely, the second ends the process."""
        if self.signal is not None:
            print("\nrtamt: a second signal: ended at once", file=sys.stderr)
            exit_now(EXIT_SIGNAL_BASE + signum)
        self.signal = signum
        self.requested.set()
        self.deadline.arm(self._deadline_s, EXIT_SIGNAL_BASE + signum, self._message)

    @property
    def name(self) -> str | None:
        """SIGINT or SIGTERM once one arrived."""
        return None if self.signal is None else signal.Signals(self.signal).name


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
import signal, sys
signal.pthread_sigmask(signal.SIG_UNBLOCK, (signal.SIGINT, signal.SIGTERM))  # blocked in the parent
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
    """Replace this process with a fresh run of the same command line (its hung threads go with it). SIGINT
    and SIGTERM stay blocked across the exec (see :class:`StopSignals`): one that arrives while the new
    process starts waits for it to take them over."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
