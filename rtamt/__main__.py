"""``python -m rtamt`` and the ``rtamt`` command."""

import os

try:
    import signal
    import sys
except KeyboardInterrupt:  # Ctrl-C while the interpreter was still starting: nothing is open yet
    os._exit(130)

STOPPING = (signal.SIGINT, signal.SIGTERM)


def _end_while_loading(signum: int, frame) -> None:  # noqa: ANN001
    os._exit(128 + signum)  # nothing is open yet: no port, no output file


def run() -> int:
    """The command line. SIGINT or SIGTERM while the libraries load and the arguments are read ends the
    program at once with 128 + the signal (nothing is open yet): raised as a KeyboardInterrupt inside a
    native module's initialisation (onnxruntime's) it becomes an ImportError with a traceback. The
    handlers go back just before the command starts. A signal the process started by ignoring stays
    ignored."""
    previous = {number: signal.getsignal(number) for number in STOPPING}

    def give_back() -> None:
        for number, handler in previous.items():
            signal.signal(number, handler)

    for number, handler in previous.items():
        if handler is not signal.SIG_IGN:
            signal.signal(number, _end_while_loading)
    try:
        from rtamt.cli import main
    except BaseException:
        give_back()
        raise
    try:
        return main(before_command=give_back)
    except KeyboardInterrupt:  # before a command takes the signal over
        return 130
    finally:
        give_back()


if __name__ == "__main__":
    sys.exit(run())
