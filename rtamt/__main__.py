"""``python -m rtamt`` and the ``rtamt`` command."""

import os
import signal
import sys

STOPPING = (signal.SIGINT, signal.SIGTERM)


def _end_while_loading(signum: int, frame) -> None:  # noqa: ANN001
    os._exit(128 + signum)  # nothing is open yet: no port, no output file


def run() -> int:
    """The command line. SIGINT or SIGTERM while the libraries load ends the program at once with 128 + the
    signal: raised as a KeyboardInterrupt inside a native module's initialisation (onnxruntime's) it
    becomes an ImportError with a traceback. A signal the process started by ignoring stays ignored."""
    previous = {number: signal.getsignal(number) for number in STOPPING}
    for number, handler in previous.items():
        if handler is not signal.SIG_IGN:
            signal.signal(number, _end_while_loading)
    try:
        from rtamt.cli import main
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    try:
        return main()
    except KeyboardInterrupt:  # before a command takes the signal over
        return 130


if __name__ == "__main__":
    sys.exit(run())
