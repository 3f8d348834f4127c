"""``python -m rtamt`` and the ``rtamt`` command."""

import signal
import sys


def run() -> int:
    """The command line. Ctrl-C or SIGTERM while the libraries load is noted, not raised, and ends the
    program with 128 + the signal: a KeyboardInterrupt inside a native module's initialisation
    (onnxruntime's) becomes an ImportError with a traceback."""
    stopping = (signal.SIGINT, signal.SIGTERM)
    interrupted: list[int] = []
    previous = {number: signal.signal(number, lambda signum, frame: interrupted.append(signum)) for number in stopping}
    try:
        from rtamt.cli import main
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if interrupted:
        return 128 + interrupted[0]
    try:
        return main()
    except KeyboardInterrupt:  # before a command takes the signal over
        return 130


if __name__ == "__main__":
    sys.exit(run())
