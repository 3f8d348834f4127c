"""Ctrl-C (or SIGTERM) at chosen moments of `rtamt live`'s start-up: the exit status and how long it took.

    python benchmarks/signal_startup.py [--signal SIGINT] [--delays 0.1 0.2 ...]

Starts a JACK dummy server, then for each delay starts `rtamt live --input system --midi-api jack`, sends
the signal that many seconds later and records the exit status (130 for SIGINT, 143 for SIGTERM are
right), the seconds from the signal to the exit and the end of stderr. Prints one JSON line per run and
a summary. Needs jackd (Debian package jackd2).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

SERVER = "rtamt-signal-bench"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signal", default="SIGINT", choices=["SIGINT", "SIGTERM"])
    parser.add_argument("--delays", type=float, nargs="+", default=[round(d, 2) for d in np.arange(0.1, 2.51, 0.1)])
    args = parser.parse_args()
    from rtamt import jack_e2e

    reason = jack_e2e.jack_available()
    if reason:
        print(f"signal_startup: {reason}", file=sys.stderr)
        return 1
    number = signal.Signals[args.signal]
    env = dict(os.environ, JACK_NO_START_SERVER="1", JACK_DEFAULT_SERVER=SERVER)
    command = [sys.executable, "-m", "rtamt", "live", "--quiet", "--input", "system", "--midi-api", "jack"]
    runs = []
    with jack_e2e.jack_server(name=SERVER):
        for delay in args.delays:
            live = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
            time.sleep(delay)
            live.send_signal(number)
            sent = time.monotonic()
            try:
                _, err = live.communicate(timeout=20)
                run = {"delay_s": delay, "exit": live.returncode, "seconds": round(time.monotonic() - sent, 2)}
            except subprocess.TimeoutExpired:
                live.kill()
                _, err = live.communicate()
                run = {"delay_s": delay, "exit": "hung (killed after 20 s)", "seconds": None}
            run["stderr_end"] = err.strip().splitlines()[-1][-200:] if err.strip() else ""
            runs.append(run)
            print(json.dumps(run), flush=True)
    right = [r for r in runs if r["exit"] == 128 + number and r["seconds"] < 2.0]
    print(json.dumps({"signal": args.signal, "runs": len(runs), "exit_right_within_2_s": len(right)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
